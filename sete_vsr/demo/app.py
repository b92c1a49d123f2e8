"""The Gradio page of ``sete-vsr demo``: upload or pick a clip, choose a method, upscale, compare, play, download.

The work is done by :mod:`sete_vsr.demo.processing`; this module only lays out the page and turns errors into one line
shown on it (:class:`gradio.Error`), as the command line prints them. Needs ``pip install 'sete-vsr[demo]'``.

Example::

    from sete_vsr.demo.app import build_app

    build_app(model="examples/tiny-sete-vsr").queue().launch()
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import gradio as gr

from ..errors import SeteVSRError, system_error_line
from ..options import SCHEDULERS
from .processing import (
    DEFAULT_MAX_FRAMES,
    MODEL_METHOD,
    DemoResult,
    demo_methods,
    model_steps,
    sample_clips,
    upscale_clip,
)

# Bounds of the page's controls.
MAX_FRAMES_LIMIT = 120
MAX_STEPS = 200

_INTRO = """# SeTe-VSR: video super-resolution x4
Upload a video or pick a shared sample, choose a method, and upscale its first frames. The result is compared with
the input upsampled by bicubic interpolation: drag the slider over a frame, play both videos, download the result."""


def _one_line_errors(handler):
    """Show what ``handler`` raises as one line on the page: the message of a SeteVSRError, else the system error's
    line of the command line (``SETE_VSR_DEBUG=1`` lets it through with its traceback)."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except SeteVSRError as err:
            raise gr.Error(str(err)) from None
        except (OSError, MemoryError, RuntimeError) as err:
            if os.environ.get("SETE_VSR_DEBUG"):
                raise
            raise gr.Error(f"failed: {system_error_line(err)}") from None

    return wrapped


def build_app(model: str | None = None, device: str | None = None, workdir: str | os.PathLike | None = None):
    """The demo page as a :class:`gradio.Blocks` (call ``.queue().launch()`` on it).

    Args:
        model: a SeTe-VSR pipeline folder or Hub id offered as the first method (loaded now, so that a bad model fails
            here; its recorded number of steps is the page's default).
        device: torch device of the model and networks (default CUDA when available).
        workdir: folder of the runs' videos and frames (default a temporary folder removed at exit); each run
            replaces the previous run of the same page.
    """
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="sete-vsr-demo-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    workdir = Path(workdir)
    samples = sample_clips()
    methods = demo_methods(model)
    default_steps = model_steps(model, device) if model else 1  # the steps control is hidden without a model

    @_one_line_errors
    def run(upload, sample, method, steps, scheduler, max_frames, previous: DemoResult | None, progress=gr.Progress()):
        source = upload or sample
        if not source:
            raise SeteVSRError("upload a video or pick a sample first")
        if previous is not None:
            shutil.rmtree(previous.input_video.parent, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
        try:
            result = upscale_clip(
                source, method, folder, model=model, device=device, steps=int(steps), scheduler=scheduler or None,
                max_frames=int(max_frames), progress=progress,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        frame = gr.Slider(minimum=0, maximum=max(result.num_frames - 1, 1), value=0, step=1, interactive=True)
        return (
            result,
            result.summary,
            *compare_values(*result.frame_pair(0)),
            frame,
            str(result.input_video),
            str(result.output_video),
            str(result.output_video),
        )

    def show_frame(result: DemoResult | None, index):
        values = [None] * len(compare) if result is None else compare_values(*result.frame_pair(index))
        return values if len(values) > 1 else values[0]  # one output takes its value, not a list of one

    def model_controls(method):
        uses_model = method == MODEL_METHOD
        return gr.Slider(visible=uses_model), gr.Dropdown(visible=uses_model)

    with gr.Blocks(title="SeTe-VSR demo", delete_cache=(3600, 3600)) as app:
        gr.Markdown(_INTRO)
        result_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.Video(label="Input video", sources=["upload"], elem_id="upload")
                sample = gr.Dropdown(
                    choices=[(s.label, str(s.path)) for s in samples], value=str(samples[0].path) if samples else None,
                    label="or a shared sample", visible=bool(samples), elem_id="sample",
                )  # fmt: skip
                method = gr.Dropdown(choices=methods, value=methods[0][1], label="Method", elem_id="method")
                steps = gr.Slider(1, MAX_STEPS, value=default_steps, step=1, label="Denoising steps",
                                  visible=methods[0][1] == MODEL_METHOD, elem_id="steps")  # fmt: skip
                scheduler = gr.Dropdown(
                    choices=[("the model's own", ""), *((name, name) for name in SCHEDULERS)], value="",
                    label="Scheduler", visible=methods[0][1] == MODEL_METHOD, elem_id="scheduler",
                )  # fmt: skip
                max_frames = gr.Slider(1, MAX_FRAMES_LIMIT, value=DEFAULT_MAX_FRAMES, step=1,
                                       label="Frames to upscale (from the start)", elem_id="max-frames")  # fmt: skip
                button = gr.Button("Upscale x4", variant="primary", elem_id="run")
            with gr.Column(scale=2):
                summary = gr.Markdown(elem_id="summary")
                if hasattr(gr, "ImageSlider"):
                    compare = [gr.ImageSlider(label="Bicubic input | result", type="filepath", elem_id="compare")]

                    def compare_values(bicubic, result):
                        return [(str(bicubic), str(result))]

                else:  # Gradio without ImageSlider: the two frames side by side
                    with gr.Row():
                        compare = [gr.Image(label="Bicubic input", type="filepath", elem_id="compare-input"),
                                   gr.Image(label="Result", type="filepath", elem_id="compare-result")]  # fmt: skip

                    def compare_values(bicubic, result):
                        return [str(bicubic), str(result)]

                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False, elem_id="frame")
                with gr.Row():
                    input_video = gr.Video(label="Input (bicubic x4)", interactive=False, elem_id="input-video")
                    output_video = gr.Video(label="Result", interactive=False, elem_id="output-video")
                download = gr.File(label="Download the result", interactive=False, elem_id="download")

        # one source at a time: an upload clears the sample picked, picking a sample clears the upload
        upload.upload(lambda: None, outputs=sample)
        sample.input(lambda: None, outputs=upload)
        method.change(model_controls, inputs=method, outputs=[steps, scheduler])
        button.click(
            run,
            inputs=[upload, sample, method, steps, scheduler, max_frames, result_state],
            outputs=[result_state, summary, *compare, frame, input_video, output_video, download],
            api_name="upscale",
        )
        frame.change(show_frame, inputs=[result_state, frame], outputs=compare, api_name="frame")
    return app
