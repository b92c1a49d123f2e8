"""Search for a setting in which self-supervised adaptation (paper 004, Algorithm 1) helps BasicVSR on Vid4 BI.

Grid: learning rate x frames per pseudo sample (``0``: the whole clip) x frozen parameters (``none`` or
name prefixes such as ``spynet``) x iterations, on one or a few Vid4 clips (optionally their first N frames).
Protocol as ``benchmarks/adaptation_vid4.py``: official BasicVSR (Vimeo-90K BIx4), LR = MATLAB bicubic x1/4 of
the ground truth (:func:`sete_vsr.data.degradations.bi_degrade`), Y-PSNR (BT.601, no border crop) mean over
frames then clips; every setting starts again from the official weights.

The iterations axis costs one restoration per value, not one run: each (learning rate, frames, freeze) run goes
to the largest iteration count and the clip is restored and scored after each listed step (a seeded run scored
after step k is a k-iteration run, see ``adapt_module``'s ``callback_on_step_end``).

    python benchmarks/adaptation_sweep.py --clips city --max-frames 14 --lrs 1e-6,1e-5 --frames-per-sample 7,0 \\
        --freeze none spynet --iterations 10,30

``--workers 2`` runs two settings at a time in separate processes of ``--threads`` threads each (results do not
depend on it). Prints one line per (setting, iterations), then the Markdown table, then a JSON object (last line).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import multiprocessing
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

from adaptation_vid4 import CLIPS, SHARED, parse_freeze, read_frames
from sete_vsr.adaptation.self_supervised import AdaptationConfig, adapt_module
from sete_vsr.data.degradations import BI, bi_degrade
from sete_vsr.eval.metrics.fullref import psnr
from sete_vsr.methods import load_method


def y_psnr(sr: np.ndarray, gt: np.ndarray) -> float:
    """Clip Y-PSNR: mean over frames."""
    return float(psnr(sr, gt, y_channel=True).mean())


def numbers(text: str, kind=float) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def frames_label(num_frames: int) -> str:
    return "whole clip" if num_frames == 0 else str(num_frames)


def markdown(rows: list[dict], clips: list[str]) -> str:
    head = ["lr", "frames/sample", "frozen", "iterations", *(f"{c} gain (dB)" for c in clips),
            "mean gain (dB)", "adapt s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['lr']:g}", frames_label(r["frames_per_sample"]), r["freeze"], str(r["iterations"]),
                 *(f"{r['per_clip'][c]['gain']:+.3f}" for c in clips), f"**{r['gain']:+.3f}**"
                 if r is max(rows, key=lambda x: x["gain"]) else f"{r['gain']:+.3f}", f"{r['adapt_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_WORKER: dict = {}


def init_worker(checkpoint: str, device: str, threads: int) -> None:
    """Load the official network once per process."""
    torch.set_num_threads(threads)
    method = load_method("basicvsr-vimeo-bi", checkpoint=checkpoint, device=device, progress=False)
    _WORKER.update(method=method, official=copy.deepcopy(method.model.state_dict()))


def run_setting(config: AdaptationConfig, data: dict, checkpoints: list[int]) -> dict:
    """Adapt from the official weights on each clip of ``data``, scoring after each step in ``checkpoints``.

    Returns:
        ``{iterations: {"per_clip": {clip: {...}}, "adapt_seconds": s, "score_seconds": s}}`` and ``"cpu_seconds"``.
    """
    method, official = _WORKER["method"], _WORKER["official"]
    cpu = time.process_time()
    results = {k: {"per_clip": {}, "adapt_seconds": 0.0, "score_seconds": 0.0} for k in checkpoints}
    for clip, d in data.items():
        method.model.load_state_dict(official)
        clock = {"last": time.perf_counter(), "adapt": 0.0}

        def score(step, loss, clip=clip, d=d):
            if step not in results:
                return
            now = time.perf_counter()
            clock["adapt"] += now - clock["last"]
            after = y_psnr(method(d["lr"]), d["gt"])
            results[step]["per_clip"][clip] = {"before": round(d["before"], 4), "after": round(after, 4),
                                               "gain": round(after - d["before"], 4)}
            results[step]["adapt_seconds"] += clock["adapt"]
            results[step]["score_seconds"] += time.perf_counter() - now
            clock["last"] = time.perf_counter()

        losses = adapt_module(method.model, d["initial"], config, progress=False, callback_on_step_end=score)
        for k in checkpoints:
            results[k]["per_clip"][clip]["loss_last5"] = round(float(np.mean(losses[max(0, k - 5) : k])), 7)
    method.model.load_state_dict(official)
    return {"results": results, "cpu_seconds": time.process_time() - cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gt-root", type=Path, default=SHARED / "data" / "frames" / "vid4_GT")
    parser.add_argument("--checkpoint", type=Path, default=SHARED / "weights" / "basicvsr" / "BasicVSR_Vimeo90K_BIx4.pth")
    parser.add_argument("--clips", default="city", help=f"comma-separated, of {','.join(CLIPS)} (default city)")
    parser.add_argument("--max-frames", type=int, default=None, help="first N frames of each clip (default: all)")
    parser.add_argument("--lrs", default="1e-6,1e-5", help="learning rates (default %(default)s)")
    parser.add_argument("--frames-per-sample", default="7,0", help="0: the whole clip (default %(default)s)")
    parser.add_argument("--freeze", nargs="+", default=["none", "spynet"],
                        help="frozen-parameter settings, each comma-separated prefixes or none (default none spynet)")
    parser.add_argument("--iterations", default="10,30", help="scored after these steps (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--patch-size", type=int, default=AdaptationConfig.patch_size)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1: deterministic)")
    parser.add_argument("--workers", type=int, default=1, help="settings run at a time, one process each")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    clips = args.clips.split(",")
    checkpoints = sorted(set(numbers(args.iterations, int)))
    grid = list(itertools.product(numbers(args.lrs), numbers(args.frames_per_sample, int), args.freeze))
    configs = [AdaptationConfig(iterations=checkpoints[-1], learning_rate=lr, batch_size=args.batch_size,
                                patch_size=args.patch_size, num_frames=nf, freeze=parse_freeze(fr), seed=args.seed,
                                degradation=BI) for lr, nf, fr in grid]
    start_all = time.perf_counter()

    init_worker(str(args.checkpoint), args.device, args.threads)
    data, restore_seconds = {}, {}
    for clip in clips:
        gt = read_frames(args.gt_root / clip, args.max_frames)
        lr = bi_degrade(gt)
        start = time.perf_counter()
        initial = _WORKER["method"](lr)
        restore_seconds[clip] = round(time.perf_counter() - start, 1)
        data[clip] = {"gt": gt, "lr": lr, "initial": initial, "before": y_psnr(initial, gt)}
        print(f"{clip}: {len(gt)} frames, before {data[clip]['before']:.4f} dB, "
              f"restoration {restore_seconds[clip]:.1f} s", flush=True)

    rows = []

    def collect(setting, out):
        learning_rate, num_frames, freeze = setting
        for k in checkpoints:
            r = out["results"][k]
            row = {"lr": learning_rate, "frames_per_sample": num_frames, "freeze": freeze, "iterations": k,
                   "gain": round(float(np.mean([r["per_clip"][c]["gain"] for c in clips])), 4),
                   "adapt_seconds": round(r["adapt_seconds"], 1), "score_seconds": round(r["score_seconds"], 1),
                   "per_clip": r["per_clip"]}
            rows.append(row)
            print(f"lr {learning_rate:g}, frames {frames_label(num_frames)}, freeze {freeze}, {k} its: gain "
                  f"{row['gain']:+.4f} dB ({row['adapt_seconds']:.0f} s adapting, {row['score_seconds']:.0f} s "
                  f"restoring; run {out['cpu_seconds']:.0f} CPU s)", flush=True)

    if args.workers <= 1:
        for setting, config in zip(grid, configs):
            collect(setting, run_setting(config, data, checkpoints))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, context, init_worker,
                                 (str(args.checkpoint), args.device, args.threads)) as pool:
            futures = {pool.submit(run_setting, config, data, checkpoints): setting
                       for setting, config in zip(grid, configs)}
            for future in as_completed(futures):
                collect(futures[future], future.result())
    order = {setting: i for i, setting in enumerate(grid)}
    rows.sort(key=lambda r: (order[(r["lr"], r["frames_per_sample"], r["freeze"])], r["iterations"]))

    table = markdown(rows, clips)
    best = max(rows, key=lambda r: r["gain"])
    print(table, flush=True)
    report = {
        "benchmark": "adaptation_sweep",
        "method": "basicvsr-vimeo-bi",
        "protocol": "Vid4 BI (MATLAB bicubic x1/4, antialias); Y BT.601 [16,235], crop 0, mean over frames then clips; "
        "each setting from the official weights; gain = after - before",
        "clips": {c: len(d["gt"]) for c, d in data.items()},
        "psnr_before": round(float(np.mean([d["before"] for d in data.values()])), 4),
        "fixed": {"batch_size": args.batch_size, "patch_size": args.patch_size, "seed": args.seed,
                  "scale_range": list(AdaptationConfig.scale_range), "degradation": "BI"},
        "best": {k: best[k] for k in ("lr", "frames_per_sample", "freeze", "iterations", "gain")},
        "any_gain": best["gain"] > 0,
        "rows": rows,
        "table": table,
        "restore_seconds": restore_seconds,
        "torch_threads": args.threads,
        "workers": args.workers,
        "seconds": round(time.perf_counter() - start_all, 1),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
