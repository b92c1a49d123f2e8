"""Can the data loader keep a GPU fed? Samples per second of the training dataset per DataLoader worker.

The dataset is the one ``sete_vsr.train`` builds for the paper's stages (``configs/stage1.yaml``,
``configs/stage2.yaml``): 512-pixel HR crops, the RealBasicVSR degradation made on the fly, the unsharp-masked GT
(``data.usm_gt``) and augmentation; stage 1 items are single frames, stage 2 items clips of 5 frames. It reads the
frames of ``--root`` (default: the shared Vid4 GT clips tall enough for 512 crops, calendar and city, 576 pixels;
REDS frames are 720x1280 PNGs, a little slower to decode). Each item is timed in this process with one thread
(cv2 and torch), as a worker runs it: ``time.process_time`` seconds, so other work on a shared machine does not
distort them, split into the degradation (``degradation_s``) and everything else (``rest_s``: reading PNGs,
cropping, augmenting, the USM of the GT, conversion to tensors).

A worker delivers ``1 / item_s`` samples per second; a GPU consumes ``train_batch_size / step_s`` (3 clips per step,
both stages). The step time comes from ``benchmarks/gpu_check.py``'s JSON (``--gpu-check FILE``, ``training.stageN
.step_s``) when it has run on the GPU; otherwise it is the assumption ``--assumed-s-per-frame`` (default 0.1 s per
trained frame, fp16, gradient checkpointing: 0.3 s for stage 1, 1.5 s for stage 2), and the JSON says so. The
workers a GPU needs are ``ceil(consumed / delivered)``.

    python benchmarks/data_throughput.py [--items 12] [--stages 1 2] [--gpu-check gpu_check.json]

Prints a line per stage, then a JSON line last.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sete_vsr.train.config import load_config  # noqa: E402
from sete_vsr.train.data import build_train_dataset  # noqa: E402

DEFAULT_ROOT = ROOT.parent / "shared" / "data" / "frames" / "vid4_GT"
DEFAULT_EXCLUDE = "[foliage,walk]"  # 480 pixels tall: below the 512 crop


class Timed:
    """Wraps the dataset's degradation and adds up the CPU seconds it takes."""

    def __init__(self, degradation):
        self.degradation = degradation
        self.seconds = 0.0

    def __call__(self, frames, rng, **kwargs):
        start = time.process_time()
        try:
            return self.degradation(frames, rng, **kwargs)
        finally:
            self.seconds += time.process_time() - start


def measure(stage: str, root: Path, exclude: str, items: int) -> dict:
    """CPU seconds per item of the stage's training dataset, in total and in the degradation."""
    config = load_config(ROOT / "configs" / f"stage{stage}.yaml", [f"data.root={root}", f"data.exclude={exclude}"])
    dataset = build_train_dataset(config)
    dataset.degradation = timed = Timed(dataset.degradation)
    dataset[0]  # first call: the codecs and kernels get ready
    timed.seconds = 0.0
    start = time.process_time()
    for i in range(items):
        dataset.set_epoch(1 + i // len(dataset))  # new draws (crop, degradation) for every item
        dataset[i % len(dataset)]
    total = (time.process_time() - start) / items
    return {
        "item_s": round(total, 4),
        "degradation_s": round(timed.seconds / items, 4),
        "rest_s": round(total - timed.seconds / items, 4),
        "samples_per_s_per_worker": round(1 / total, 3),
        "frames_per_item": config.data.num_frames,
        "crop_size": config.data.crop_size,
        "train_batch_size": config.train_batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of clip folders (default: Vid4 GT)")
    parser.add_argument("--exclude", default=DEFAULT_EXCLUDE, help=f"clips left out (default {DEFAULT_EXCLUDE})")
    parser.add_argument("--items", type=int, default=12, help="items timed per stage (default 12)")
    parser.add_argument("--stages", nargs="+", choices=("1", "2"), default=["1", "2"])
    parser.add_argument("--gpu-check", type=Path, help="JSON line of benchmarks/gpu_check.py run on the GPU")
    parser.add_argument("--assumed-s-per-frame", type=float, default=0.1,
                        help="training step seconds per trained frame when no GPU check is given (default 0.1)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)

    measured = None
    if args.gpu_check is not None:
        measured = json.loads(args.gpu_check.read_text().strip().splitlines()[-1])["training"]
    stages = {}
    for stage in args.stages:
        result = measure(stage, args.root, args.exclude, args.items)
        frames = result["train_batch_size"] * result["frames_per_item"]
        if measured is not None:
            step_s, source = measured[f"stage{stage}"]["step_s"], f"measured ({args.gpu_check})"
        else:
            step_s, source = frames * args.assumed_s_per_frame, f"assumed: {args.assumed_s_per_frame} s per frame"
        consumed = result["train_batch_size"] / step_s
        result.update(
            step_s=round(step_s, 4),
            step_s_source=source,
            samples_per_s_per_gpu=round(consumed, 3),
            workers_per_gpu=math.ceil(consumed / result["samples_per_s_per_worker"]),
        )
        stages[f"stage{stage}"] = result
        print(
            f"stage {stage}: {result['item_s']:.3f} s per item of {result['frames_per_item']} frame(s) "
            f"({result['degradation_s']:.3f} s degradation) -> {result['samples_per_s_per_worker']:.2f} samples/s "
            f"per worker; a GPU at {step_s:.2f} s per step of {result['train_batch_size']} ({source}) needs "
            f"{result['workers_per_gpu']} workers"
        )
    print(json.dumps({"stages": stages, "root": str(args.root), "items": args.items, "threads_per_worker": 1}))


if __name__ == "__main__":
    main()
