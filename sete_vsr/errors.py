"""User-facing errors.

Anything the user can fix (a missing file, a bad argument, an unreadable video,
a model folder without a component) raises :class:`SeteVSRError` with one clear
sentence. The command line prints that sentence and exits non-zero, never a
traceback.
"""


class SeteVSRError(Exception):
    """An error caused by the user's input or environment, with a one-line message."""
