"""Validation renders during and at the end of training: PSNR, LPIPS and a bicubic / output / GT image."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger

from .config import TrainConfig
from .data import to_uint8

logger = get_logger(__name__, log_level="INFO")


@torch.no_grad()
def log_validation(
    pipeline, clip: dict[str, Any], config: TrainConfig, accelerator: Accelerator, global_step: int, weight_dtype
) -> dict[str, float]:
    """Render the validation clip, log PSNR, LPIPS and the frames (bicubic / output / GT rows) to the trackers.

    Without the LPIPS weights, ``validation/lpips_skipped`` (text: why) is logged in place of ``validation/lpips``.
    """
    from ..eval.metrics import WeightsUnavailable, build_metric

    logger.info(f"validation at step {global_step}: rendering {config.validation.num_frames} frames")
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator(device=accelerator.device).manual_seed(config.validation.seed)
    autocast = (
        torch.autocast(accelerator.device.type, dtype=weight_dtype)
        if weight_dtype != torch.float32
        else contextlib.nullcontext()
    )
    lr, gt = to_uint8(clip["lr"]), to_uint8(clip["hr"])
    with autocast:
        output = pipeline(
            lr, num_inference_steps=config.validation.num_inference_steps, generator=generator, output_type="np"
        ).frames[0]
    output = np.asarray(output)
    output = output if output.dtype == np.uint8 else (output.clip(0, 1) * 255).round().astype(np.uint8)
    output = output.reshape(gt.shape)
    metrics = {"validation/psnr": float(build_metric("psnr").compute(output, gt).mean())}
    try:
        metrics["validation/lpips"] = float(build_metric("lpips", device=accelerator.device).compute(output, gt).mean())
    except WeightsUnavailable as err:
        logger.info(f"validation LPIPS skipped: {err}")
        accelerator.log({"validation/lpips_skipped": str(err)}, step=global_step)
    accelerator.log(metrics, step=global_step)
    bicubic = F.interpolate(torch.from_numpy(lr).permute(0, 3, 1, 2).float(), size=gt.shape[1:3], mode="bicubic")
    bicubic = bicubic.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
    rows = np.concatenate([np.concatenate(list(frames), axis=1) for frames in (bicubic, output, gt)], axis=0)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("validation/bicubic_output_gt", rows, global_step, dataformats="HWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"validation": wandb.Image(rows, caption="bicubic / output / GT")}, step=global_step)
    logger.info(", ".join(f"{key}={value:.4f}" for key, value in metrics.items()))
    return metrics
