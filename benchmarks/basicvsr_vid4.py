"""BasicVSR (official Vimeo-90K BIx4 checkpoint) beside bicubic on Vid4 BI, through ``sete-vsr eval``.

Protocol: LR = MATLAB bicubic x1/4 with antialiasing of the ground truth (``--degradation BI``); each
clip is super-resolved in one recurrent pass; PSNR/SSIM on the BT.601 Y channel, no border crop,
averaged over the frames of a clip and then over clips; tOF (TecoGAN, Farneback). Published for
BasicVSR: 27.24 dB / 0.8251. The report (table.md, CSVs, plots) is written to ``--out``.

    python benchmarks/basicvsr_vid4.py                      # full Vid4, checks 27.24 +- 0.05 dB
    python benchmarks/basicvsr_vid4.py --clips city          # one clip

The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SETE_VSR_SHARED", ROOT.parent / "shared"))
CLIPS = ("calendar", "city", "foliage", "walk")
PUBLISHED = {"psnr_y": 27.24, "ssim_y": 0.8251}
TOLERANCE = {"psnr_y": 0.05, "ssim_y": 0.001}  # dB, SSIM
METHODS = ("bicubic", "basicvsr-vimeo-bi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gt-root", type=Path, default=SHARED / "data" / "frames" / "vid4_GT")
    parser.add_argument("--weights-dir", type=Path, default=SHARED / "weights", help="holds basicvsr/BasicVSR_Vimeo90K_BIx4.pth")
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--metrics", default="psnr_y,ssim_y,tof")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "basicvsr_vid4")
    args = parser.parse_args(argv)

    command = [
        sys.executable, "-m", "sete_vsr", "eval", "--methods", ",".join(METHODS), "--dataset", "vid4",
        "--root", str(args.gt_root), "--degradation", "BI", "--metrics", args.metrics, "--clips", args.clips,
        "--weights-dir", str(args.weights_dir), "--device", args.device, "--out", str(args.out), "--no-reuse",
    ]
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    results = json.loads((args.out / "results.json").read_text())

    def rounded(values: dict) -> dict:
        return {k: round(v, 4) for k, v in values.items()}

    result = {
        "benchmark": "basicvsr_vid4",
        "methods": list(METHODS),
        "protocol": "Vid4 BI (MATLAB bicubic x1/4, antialias); Y BT.601 [16,235]; crop 0; mean over frames, then clips",
        "device": args.device,
        "per_clip": {m: {metric: rounded(results["per_clip"][metric][m]) for metric in results["per_clip"]} for m in METHODS},
        "mean": {m: {metric: round(results["summary"][metric][m], 4) for metric in results["summary"]} for m in METHODS},
        "seconds_per_frame": rounded(results["seconds_per_frame"]),
        "published": PUBLISHED,
        "report": str(args.out / "table.md"),
        "seconds": round(seconds, 1),
    }
    if set(args.clips.split(",")) == set(CLIPS):
        ours = result["mean"]["basicvsr-vimeo-bi"]
        off = {m: ours[m] for m in PUBLISHED if abs(ours[m] - PUBLISHED[m]) > TOLERANCE[m]}
        result["within_tolerance"] = not off
        for metric, value in off.items():
            print(f"FAIL: BasicVSR {metric} {value:.4f} is off the published {PUBLISHED[metric]} "
                  f"by more than {TOLERANCE[metric]}", file=sys.stderr)
    print(json.dumps(result))
    return 0 if result.get("within_tolerance", True) else 1


if __name__ == "__main__":
    sys.exit(main())
