"""Does the training loop learn? Stage 1 of the tiny configuration on real frames, held-out loss before and after.

Builds the tiny random pipeline (``tiny_pipeline(temporal=False)``), trains it with ``configs/tiny_stage1.yaml`` on
the shared Vid4 GT clips calendar, city and foliage (RealBasicVSR-degraded 64px crops) for a fixed number of steps on
the CPU, and measures the denoising loss (Eq. 1, the training loss) on held-out crops of the clip ``walk``, never
trained on, with fixed crops, degradations, noise and timesteps, at the start and at the end. Prints a JSON line last.

    python benchmarks/tiny_training.py [--steps 300] [--heldout 24] [--out outputs/tiny_training]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from sete_vsr.data.train_datasets import FrameFolderDataset
from sete_vsr.pipelines.assemble import tiny_pipeline
from sete_vsr.pipelines.pipeline import SeTeVSRPipeline
from sete_vsr.train.config import load_config
from sete_vsr.train.data import collate_clips
from sete_vsr.train.loop import main as train
from sete_vsr.train.losses import diffusion_loss

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT.parent / "shared" / "data" / "frames" / "vid4_GT"
HELDOUT_CLIP = "walk"


@torch.no_grad()
def heldout_loss(pipeline: SeTeVSRPipeline, batches: list[dict[str, torch.Tensor]], seed: int) -> float:
    """Mean Eq.-1 loss of the pipeline's U-Net over fixed batches, with noise and timesteps fixed by ``seed``."""
    pipeline.unet.eval()
    losses = []
    for index, batch in enumerate(batches):
        generator = torch.Generator().manual_seed(seed + index)
        losses.append(
            diffusion_loss(batch, pipeline.unet, pipeline.vae, pipeline.semantic_encoder, pipeline.scheduler, generator)
        )
    return float(torch.stack(losses).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    parser.add_argument("--heldout", type=int, default=24, help="held-out crops (default 24)")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "tiny_training"), help="work folder (replaced)")
    args = parser.parse_args()

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    init_dir, train_dir = out / "init", out / "stage1"
    tiny_pipeline(seed=0, temporal=False).save_pretrained(init_dir)

    # Held-out set: `heldout` seeded draws (crop position, degradation) of the clip never trained on.
    heldout = FrameFolderDataset(FRAMES / HELDOUT_CLIP, num_frames=1, crop_size=64, augment=False, seed=1234)
    items = []
    for draw in range(args.heldout):
        heldout.set_epoch(draw)
        items.append(heldout[0])
    batches = [collate_clips(items[i : i + 8]) for i in range(0, len(items), 8)]

    loss_start = heldout_loss(SeTeVSRPipeline.from_pretrained(init_dir), batches, seed=0)
    overrides = [
        f"pretrained_model={init_dir}",
        f"output_dir={train_dir}",
        f"data.root={FRAMES}",
        f"max_train_steps={args.steps}",
        "validation.root=null",
        "checkpointing_steps=0",
        "report_to=none",
    ]
    config = load_config(ROOT / "configs" / "tiny_stage1.yaml", overrides)
    start = time.perf_counter()
    train(config)
    seconds = time.perf_counter() - start
    loss_end = heldout_loss(SeTeVSRPipeline.from_pretrained(train_dir), batches, seed=0)

    result = {
        "benchmark": "tiny_training",
        "stage": 1,
        "config": "configs/tiny_stage1.yaml",
        "train_clips": "vid4_GT calendar, city, foliage (64px crops, RealBasicVSR degradation)",
        "heldout": f"{args.heldout} seeded 64px crops of vid4_GT/{HELDOUT_CLIP}, fixed noise and timesteps",
        "loss_start": round(loss_start, 5),
        "loss_end": round(loss_end, 5),
        "steps": args.steps,
        "batch": config.train_batch_size,
        "learning_rate": config.learning_rate,
        "seconds": round(seconds, 1),
        "device": "cpu",
        "threads": int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
