"""Benchmark: bicubic x4 on the whole of Vid4 (BI), Y-channel PSNR/SSIM against the published 23.78 dB / 0.6347.

Usage: ``python benchmarks/eval_vid4_bicubic.py [--root ../shared/data/frames/vid4_GT] [--out runs/bench_vid4]``.
Conventions: BI = MATLAB bicubic imresize 1/4 with antialiasing (uint8 per pass),
bicubic x4 up the same way, Y = BT.601 (MATLAB rgb2ycbcr) unrounded, crop 0,
mean over the frames of each clip, then over the 4 clips. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sete_vsr.eval.benchmark_datasets import resolve_dataset
from sete_vsr.eval.runner import EvalSettings, evaluate

PUBLISHED = {"psnr_y": 23.78, "ssim_y": 0.6347}
# The published values are rounded (2 and 4 decimals); ours must round to within this of them.
TOLERANCE = {"psnr_y": 0.005, "ssim_y": 0.0005}


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(here.parent / "shared" / "data" / "frames" / "vid4_GT"))
    parser.add_argument("--out", default=str(here / "runs" / "bench_vid4_bicubic"))
    args = parser.parse_args()
    start = time.perf_counter()
    dataset = resolve_dataset("vid4", args.root, "BI")
    results = evaluate(dataset, ["bicubic"], ["psnr_y", "ssim_y"], EvalSettings(out=Path(args.out), reuse=False))
    summary = {m: results["summary"][m]["bicubic"] for m in PUBLISHED}
    for clip in dataset.clips:
        print(clip.name, {m: round(results["per_clip"][m]["bicubic"][clip.name], 4) for m in PUBLISHED})
    line = {
        "benchmark": "vid4_bicubic_BI",
        **{m: round(v, 4) for m, v in summary.items()},
        **{f"{m}_published": v for m, v in PUBLISHED.items()},
        "frames": sum(len(v) for v in results["per_frame"]["psnr_y"]["bicubic"].values()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    off = {m: summary[m] for m in PUBLISHED if abs(summary[m] - PUBLISHED[m]) > TOLERANCE[m]}
    line["within_tolerance"] = not off
    for metric, value in off.items():
        print(f"FAIL: bicubic {metric} {value:.4f} is off the published {PUBLISHED[metric]} "
              f"by more than {TOLERANCE[metric]}", file=sys.stderr)
    print(json.dumps(line))
    return 0 if not off else 1


if __name__ == "__main__":
    sys.exit(main())
