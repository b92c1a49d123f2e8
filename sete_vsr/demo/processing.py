"""What the demo page does, as plain functions: no web framework here, so all of it is tested without a browser.

* :func:`shared_folder` and :func:`sample_clips`: the project's shared clips offered as samples;
* :func:`demo_methods`: the methods usable here without extra files (the page's model, bicubic, and the baselines
  whose official checkpoints are on this machine); :func:`model_steps`: the model's own number of steps;
* :func:`upscale_clip`: read the first frames of a clip, write its bicubic x4 upsampling and the chosen method's
  result, each as an H.264 video and lossless PNG frames, reporting progress;
* :meth:`DemoResult.frame_pair`: the two PNG frames compared on the page.

Everything the user can get wrong raises :class:`~sete_vsr.errors.SeteVSRError` with one line, as on the command
line. At most ``max_frames`` frames are read (the low-resolution clip is held in memory, the x4 output only one chunk
or one frame at a time).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.video_io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VideoReader, open_writer
from ..errors import SeteVSRError

# The method name of the page's SeTe-VSR model.
MODEL_METHOD = "sete-vsr"
# Frames upscaled per run unless the page asks for another number.
DEFAULT_MAX_FRAMES = 16
# Frames per call of a method by name (bounds the x4 output held at once).
CHUNK_FRAMES = 8

# progress(fraction in [0, 1], description); ``gr.Progress`` instances are called the same way.
Progress = Callable[..., None]


def shared_folder() -> Path | None:
    """The project's shared data: ``$SETE_VSR_SHARED``, else ``shared/`` beside a source checkout; ``None`` if absent."""
    given = os.environ.get("SETE_VSR_SHARED")
    folder = Path(given) if given else Path(__file__).resolve().parents[2].parent / "shared"
    return folder if folder.is_dir() else None


@dataclass(frozen=True)
class Sample:
    """A clip offered on the page: its label (name, size, frames) and path (video file or frame folder)."""

    label: str
    path: Path


def sample_clips(folder: Path | None = None) -> list[Sample]:
    """The shared clips: ``data/videos/*/*`` videos and the frame folders of ``data/frames``, smallest first.

    Args:
        folder: the shared data folder (default :func:`shared_folder`); none found gives no samples.
    """
    folder = folder if folder is not None else shared_folder()
    if folder is None:
        return []
    data = folder / "data"
    videos = [p for p in sorted(data.glob("videos/*/*")) if p.suffix.lower() in VIDEO_EXTENSIONS]
    frame_folders = [
        p
        for p in sorted(data.glob("frames/*"))
        if p.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.iterdir())
    ]
    samples = []
    for path in videos + frame_folders:
        try:
            info = VideoReader(path).info
        except SeteVSRError:  # a damaged shared file is not offered
            continue
        frames = f", {info.num_frames} frames" if info.num_frames else ""
        label = f"{path.name} ({info.width}x{info.height}{frames})"
        samples.append((info.width * info.height, label, Sample(label, path)))
    return [sample for _, _, sample in sorted(samples, key=lambda item: item[:2])]


def demo_methods(model: str | None = None) -> list[tuple[str, str]]:
    """``(label, method name)`` of every method usable without extra files: the model, bicubic, found baselines.

    A baseline counts when its official checkpoint is in a weight folder or the download cache
    (:func:`~sete_vsr.baselines.registry.local_checkpoint_paths`); nothing is downloaded. Plug-in and adapted forms
    need weights or models of their own and are left to ``sete-vsr upscale``.
    """
    from ..baselines.registry import BASELINES, local_checkpoint_paths
    from ..methods import METHODS

    methods = [(f"SeTe-VSR ({model})", MODEL_METHOD)] if model else []
    methods.append((f"bicubic: {METHODS['bicubic'].label}", "bicubic"))
    for name, spec in BASELINES.items():
        if any(path.is_file() for path in local_checkpoint_paths(spec)):
            methods.append((f"{name}: {spec.description}", name))
    return methods


@dataclass(frozen=True)
class DemoResult:
    """One run of :func:`upscale_clip`.

    Attributes:
        input_video: the clip's frames upsampled x4 by bicubic interpolation (H.264).
        output_video: the method's result (H.264); the same file as ``input_video`` for bicubic.
        input_frames: folder of the bicubic frames, ``00000000.png``...
        output_frames: folder of the result's frames.
        num_frames: frames processed.
        lr_size: ``(width, height)`` of the input.
        method: the method's name.
        seconds: time taken.
    """

    input_video: Path
    output_video: Path
    input_frames: Path
    output_frames: Path
    num_frames: int
    lr_size: tuple[int, int]
    method: str
    seconds: float

    @property
    def summary(self) -> str:
        """One line: method, frames, sizes, time."""
        w, h = self.lr_size
        return (
            f"{self.method}: {self.num_frames} frames {w}x{h} -> {4 * w}x{4 * h} in {self.seconds:.1f} s "
            f"({self.seconds / self.num_frames:.2f} s/frame)"
        )

    def frame_pair(self, index: int) -> tuple[Path, Path]:
        """The PNG files of frame ``index`` (clamped to the frames there are): bicubic input, result."""
        name = f"{min(max(int(index), 0), self.num_frames - 1):08d}.png"
        return self.input_frames / name, self.output_frames / name


class _VideoAndFrames:
    """Writes each frame to an H.264 video and a PNG folder, reporting the count to ``on_frame(count)``."""

    def __init__(self, stack: ExitStack, video: Path, frames: Path, fps, on_frame: Callable[[int], None]):
        self.writers = [stack.enter_context(open_writer(video, fps)), stack.enter_context(open_writer(frames))]
        self.on_frame = on_frame
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        for writer in self.writers:
            writer.write(frame)
        self.count += 1
        self.on_frame(self.count)

    def write_frames(self, frames: Iterable[np.ndarray]) -> None:
        for frame in frames:
            self.write(frame)


def upscale_clip(
    source: str | os.PathLike,
    method: str,
    folder: str | os.PathLike,
    *,
    model: str | None = None,
    device: str | None = None,
    steps: int | None = None,
    scheduler: str | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    seed: int = 0,
    progress: Progress | None = None,
) -> DemoResult:
    """Upscale the first ``max_frames`` frames of ``source`` x4 with ``method``, and with bicubic to compare.

    Args:
        source: a video file or frame folder.
        method: :data:`MODEL_METHOD` (the SeTe-VSR ``model``) or a method of ``sete-vsr methods`` that needs no
            options (bicubic, a baseline whose checkpoint is found).
        folder: where the videos and frames are written (created; files of an earlier run there are replaced).
        model: the SeTe-VSR pipeline folder or Hub id, for :data:`MODEL_METHOD`.
        device: torch device of the model or network (default CUDA when available).
        steps: denoising steps of the model (default its recorded setting).
        scheduler: a name of :data:`sete_vsr.options.SCHEDULERS` (default the model's own sampler).
        max_frames: frames read from the start of the clip.
        seed: seed of the diffusion noise.
        progress: called as ``progress(fraction, desc=text)`` as the work advances.

    Raises:
        SeteVSRError: a missing or unreadable clip, a bad setting, an unknown method or one that cannot load.
    """
    start = time.perf_counter()
    report = progress if progress is not None else (lambda fraction, desc="": None)  # gr.Progress is falsy
    if method == MODEL_METHOD and not model:
        raise SeteVSRError("the SeTe-VSR method needs a model: start the demo with --model DIR_OR_HUB_ID")
    if steps is not None and steps < 1:
        raise SeteVSRError(f"steps must be at least 1, got {steps}")
    report(0.0, desc="reading the clip")
    reader = VideoReader(Path(source), max_frames=max_frames)
    frames = np.stack(list(reader))
    count, fps = len(frames), reader.info.fps
    folder = Path(folder)

    def bicubic_progress(done: int) -> None:
        report(0.05 + (0.95 if method == "bicubic" else 0.15) * done / count, desc=f"bicubic x4: frame {done}/{count}")

    input_video, input_frames = folder / "input.mp4", folder / "input_frames"
    with ExitStack() as stack:
        tee = _VideoAndFrames(stack, input_video, input_frames, fps, bicubic_progress)
        tee.write_frames(_chunks_of(_bicubic(), frames))
    output_video, output_frames = input_video, input_frames
    if method != "bicubic":
        output_video, output_frames = folder / "output.mp4", folder / "output_frames"
        with ExitStack() as stack:
            tee = _VideoAndFrames(stack, output_video, output_frames, fps, _result_progress(report, count))
            if method == MODEL_METHOD:
                _run_model(frames, tee, model, device, steps, scheduler, seed, report)
            else:
                tee.write_frames(_chunks_of(_method(method, device), frames))
    report(1.0, desc="done")
    return DemoResult(
        input_video=input_video,
        output_video=output_video,
        input_frames=input_frames,
        output_frames=output_frames,
        num_frames=count,
        lr_size=(reader.info.width, reader.info.height),
        method=method,
        seconds=time.perf_counter() - start,
    )


def _result_progress(report: Progress, count: int) -> Callable[[int], None]:
    def on_frame(done: int) -> None:
        report(0.8 + 0.2 * done / count, desc=f"writing the result: frame {done}/{count}")

    return on_frame


def _bicubic():
    from ..methods import load_method

    return load_method("bicubic")


def _method(name: str, device: str | None):
    from ..methods import build_method, parse_method_options

    runtime = {"progress": False, **({"device": device} if device else {})}
    return build_method(name, parse_method_options(name, {}, runtime))


def _chunks_of(method, frames: np.ndarray) -> Iterator[np.ndarray]:
    """The output frames of ``method`` on ``frames``, one at a time (computed :data:`CHUNK_FRAMES` at a time)."""
    from ..methods import upscale_in_chunks

    for chunk in upscale_in_chunks(method, frames, CHUNK_FRAMES):
        yield from chunk


@functools.lru_cache(maxsize=1)
def _pipeline(model: str, device: str | None):
    """The page's SeTe-VSR pipeline, loaded once and kept (with its own sampler, restored after each run)."""
    from ..pipelines.sete_method import load_pipeline

    pipe = load_pipeline(model, device)
    pipe.set_progress_bar_config(disable=True)
    return pipe, pipe.scheduler


def model_steps(model: str, device: str | None = None) -> int:
    """The denoising steps ``model`` records for inference (its pipeline's default), else 50; loads the model once.

    Raises:
        SeteVSRError: a model that cannot load.
    """
    pipe, _ = _pipeline(model, device)
    return int((pipe.config.get("assembled_from") or {}).get("inference", {}).get("num_inference_steps", 50))


def _run_model(frames, writer, model, device, steps, scheduler, seed, report: Progress) -> None:
    import torch

    from ..pipelines.schedulers import use_scheduler

    report(0.2, desc="loading the model")
    pipe, own_scheduler = _pipeline(model, device)

    def on_step(pipe, step, timestep, callback_kwargs):
        report(0.2 + 0.6 * (step + 1) / pipe.num_timesteps, desc=f"denoising: step {step + 1}/{pipe.num_timesteps}")
        return {}

    pipe.scheduler = own_scheduler
    try:
        if scheduler:
            use_scheduler(pipe, scheduler)
        generator = torch.Generator(pipe._execution_device).manual_seed(seed)
        pipe(frames, num_inference_steps=steps, generator=generator, write_to=writer, callback_on_step_end=on_step)
    finally:
        pipe.scheduler = own_scheduler
