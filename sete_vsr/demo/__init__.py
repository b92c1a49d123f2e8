"""The demo page of ``sete-vsr demo``.

:mod:`.processing` does the work in plain functions (samples, methods usable here, upscaling a clip, frame pairs to
compare) and imports no web framework; :mod:`.app` builds the Gradio page on top of it (``pip install
'sete-vsr[demo]'``).
"""
