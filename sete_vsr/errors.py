"""User-facing errors.

Anything the user can fix (a missing file, a bad argument, an unreadable video,
a model folder without a component) raises :class:`SeteVSRError` with one clear
sentence. The command line prints that sentence and exits non-zero, never a
traceback.
"""

from __future__ import annotations


class SeteVSRError(Exception):
    """An error caused by the user's input or environment, with a one-line message."""


def system_error_line(err: BaseException) -> str:
    """One line for an error of the system rather than of the input, with a hint where one helps."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, MemoryError) or "out of memory" in first.lower():
        return (
            f"out of memory ({first}); lower --tile-size, --window-length or --max-frames, use --dtype fp16 "
            "or --cpu-offload"
        )
    return f"{first} (set SETE_VSR_DEBUG=1 for the traceback)"
