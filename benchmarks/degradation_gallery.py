"""Picture of the RealBasicVSR degradation on a real clip, to look at.

Writes a PNG grid: the first row is the GT 256x256 crop of a few frames of a
shared clip; every other row is the 64x64 LR of the same crop for one seed
(upscaled x4 with nearest neighbour so pixels stay visible), labelled with the
clip's draws (kernel, noise, codecs, group order). A second PNG shows one
full-frame evaluation LR (``degrade_full_frames``, H/4 x W/4) beside the GT
downscaled with INTER_AREA. Prints a JSON line last.

    python benchmarks/degradation_gallery.py [--clip DIR] [--seeds 6] [--out outputs/degradation_gallery.png]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from sete_vsr.data.train_datasets import list_frames, read_frame
from sete_vsr.data.realworld_degradation import RealBasicVSRDegradation, degrade_full_frames

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "frames" / "vid4_GT" / "calendar"
SHOWN = (0, 4, 9, 14)  # frame indices shown in the grid
CROP = 256


def describe(records: list[dict]) -> str:
    """One line of the clip's main draws."""
    parts = []
    for r in records:
        stage = r["stage"]
        if not r["applied"] or stage == "usm":
            continue
        if stage.startswith("blur") or stage == "final_sinc":
            parts.append(f"{stage}:{r['kernel_type']}{r['kernel_size']}")
        elif stage.startswith("noise"):
            parts.append(f"{stage}:{r['noise_type'][0]}{r['level'][0]:.2g}{'g' if r['gray'] else ''}")
        elif stage.startswith("video"):
            parts.append(f"{stage}:{r['codec']}@{r['bitrate'] // 1000}k")
        elif stage.startswith("resize"):
            parts.append(f"{stage}:{r['mode']}x{r['scale'][0]:.2f}")
        elif stage.startswith("jpeg"):
            parts.append(f"{stage}:q{r['quality'][0]}")
    return " ".join(parts)


def labelled(row: np.ndarray, text: str) -> np.ndarray:
    """Row image (H, W, 3) RGB with a 22-pixel caption strip above it."""
    strip = np.full((22, row.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, row], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="folder of frames")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "degradation_gallery.png")
    args = parser.parse_args()

    paths = list_frames(args.clip)[: max(SHOWN) + 1]
    if len(paths) <= max(SHOWN):
        raise SystemExit(f"need {max(SHOWN) + 1} frames in {args.clip}")
    full = np.stack([read_frame(p) for p in paths])
    h, w = full.shape[1:3]
    top, left = (h - CROP) // 2, (w - CROP) // 2
    clip = full[:, top : top + CROP, left : left + CROP]

    degradation = RealBasicVSRDegradation()
    rows = [labelled(np.concatenate([clip[i] for i in SHOWN], axis=1), f"GT {args.clip.name} frames {SHOWN}")]
    seconds = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        lr, records = degradation.degrade(clip, seed)
        seconds.append(time.perf_counter() - start)
        lr = lr.astype(np.uint8)
        tiles = [cv2.resize(lr[i], (CROP, CROP), interpolation=cv2.INTER_NEAREST) for i in SHOWN]
        rows.append(labelled(np.concatenate(tiles, axis=1), f"seed {seed}: {describe(records)}"))
    grid = np.concatenate(rows, axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))

    start = time.perf_counter()
    eval_lr = degrade_full_frames(full, seed=0)
    eval_seconds = time.perf_counter() - start
    area = cv2.resize(full[0], (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    pair = np.concatenate([area, eval_lr[0]], axis=1)
    pair = cv2.resize(pair, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    full_out = args.out.with_name(args.out.stem + "_fullframe.png")
    cv2.imwrite(
        str(full_out),
        cv2.cvtColor(labelled(pair, "left: GT area x1/4   right: realbasicvsr seed 0 (x2 nearest)"), cv2.COLOR_RGB2BGR),
    )

    print(
        json.dumps(
            {
                "benchmark": "degradation_gallery",
                "png": str(args.out),
                "png_fullframe": str(full_out),
                "clip": str(args.clip),
                "gt_crop": [len(paths), CROP, CROP],
                "lr_crop": list(lr.shape[:3]),
                "seeds": args.seeds,
                "seconds_per_clip": round(float(np.mean(seconds)), 3),
                "fullframe_gt": [len(paths), h, w],
                "fullframe_lr": list(eval_lr.shape[:3]),
                "fullframe_seconds": round(eval_seconds, 3),
                "encoders": degradation.encoders,
            }
        )
    )


if __name__ == "__main__":
    main()
