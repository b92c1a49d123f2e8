"""BasicVSR (official Vimeo-90K BIx4 checkpoint) on Vid4 BI: per-clip and mean Y-PSNR / SSIM.

Protocol: LR = MATLAB bicubic x1/4 with antialiasing of the ground truth
(:func:`sete_vsr.data.degradations.bi_degrade`); each clip is super-resolved in one
recurrent pass; PSNR/SSIM on the BT.601 Y channel, no border crop, averaged over the
frames of a clip and then over clips. Published: 27.24 dB / 0.8251.

    python benchmarks/basicvsr_vid4.py                      # full Vid4, asserts 27.24 +- 0.05 dB
    python benchmarks/basicvsr_vid4.py --clips calendar --frames 8

The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sete_vsr.data.degradations import bi_degrade
from sete_vsr.eval.metrics.fullref import psnr, ssim
from sete_vsr.methods import load_method

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SETE_VSR_SHARED", ROOT.parent / "shared"))
CLIPS = ("calendar", "city", "foliage", "walk")
PUBLISHED = {"psnr_y": 27.24, "ssim_y": 0.8251}
TOLERANCE_DB = 0.05


def read_frames(folder: Path, max_frames: int | None = None) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 RGB from the sorted PNGs of ``folder``."""
    files = sorted(folder.glob("*.png"))[:max_frames]
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def evaluate_clip(method, gt: np.ndarray) -> dict:
    """BI-degrade ``gt``, upscale with ``method``, and score on Y (no crop)."""
    sr = method(bi_degrade(gt))
    return {
        "frames": len(gt),
        "psnr_y": float(psnr(sr, gt, y_channel=True).mean()),
        "ssim_y": float(ssim(sr, gt, y_channel=True).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gt-root", type=Path, default=SHARED / "data" / "frames" / "vid4_GT")
    parser.add_argument("--checkpoint", type=Path, default=SHARED / "weights" / "basicvsr" / "BasicVSR_Vimeo90K_BIx4.pth")
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--frames", type=int, default=None, help="first N frames of each clip (default: all)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    method = load_method("basicvsr-vimeo-bi", checkpoint=args.checkpoint, device=args.device, progress=False)
    per_clip = {}
    start = time.perf_counter()
    for clip in args.clips.split(","):
        t0 = time.perf_counter()
        per_clip[clip] = evaluate_clip(method, read_frames(args.gt_root / clip, args.frames))
        per_clip[clip]["seconds"] = round(time.perf_counter() - t0, 1)
        print(clip, per_clip[clip], flush=True)
    seconds = time.perf_counter() - start

    result = {
        "benchmark": "basicvsr_vid4",
        "method": "basicvsr-vimeo-bi",
        "checkpoint": args.checkpoint.name,
        "protocol": "Vid4 BI (MATLAB bicubic x1/4, antialias); Y BT.601 [16,235]; crop 0; mean over frames, then clips",
        "device": str(method.device),
        "torch_threads": torch.get_num_threads(),
        "frames_per_clip": args.frames or "all",
        "per_clip": per_clip,
        "mean_psnr_y": round(float(np.mean([c["psnr_y"] for c in per_clip.values()])), 4),
        "mean_ssim_y": round(float(np.mean([c["ssim_y"] for c in per_clip.values()])), 4),
        "published": PUBLISHED,
        "seconds": round(seconds, 1),
    }
    full_run = args.frames is None and set(per_clip) == set(CLIPS)
    if full_run:
        result["within_tolerance"] = abs(result["mean_psnr_y"] - PUBLISHED["psnr_y"]) <= TOLERANCE_DB
    print(json.dumps(result))
    return 0 if result.get("within_tolerance", True) else 1


if __name__ == "__main__":
    sys.exit(main())
