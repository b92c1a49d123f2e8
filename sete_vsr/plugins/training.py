"""What the plug-in trainers share: fine-tuning a registered baseline with new blocks inside it.

:mod:`sete_vsr.plugins.train_seem` (SEEM) and :mod:`sete_vsr.plugins.train_semantic_lens` (Semantic Lens) each
build their model and save their weights file; everything else is here, written once:

* :class:`PluginTrainConfig` / :class:`PluginDataConfig`: the settings both take (each trainer's config adds its
  blocks' own), :func:`check_config` their value checks;
* :func:`prepare_run` (step 1 of a run): the base network, the training clips degraded as the base was trained
  (``BaselineSpec.degradation``), the checkpoint to resume from, all checked before anything heavy is loaded;
* :func:`make_accelerator`, :func:`parameter_groups` (efficient or full tuning, SPyNet at its own rate);
* :func:`fit`: the one training loop (Charbonnier loss, Adam(W), cosine schedule, ``save_state`` checkpoints with a
  total limit, exact resume).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from ..data.degradations import Downscaling
from ..errors import SeteVSRError
from .sam_prior import DEFAULT_SAM2_MODEL
from ..train.checkpoints import CONFIG_NAME, checkpoint_step, find_resume_checkpoint, save_checkpoint
from ..train.config import check_run_settings, config_to_dict, save_config
from ..train.data import collate_clips

if TYPE_CHECKING:
    from ..baselines.registry import BaselineSpec

logger = get_logger(__name__, log_level="INFO")

TUNINGS = ("efficient", "full")


@dataclass
class PluginDataConfig:
    """HR training clips, cut and augmented by :class:`~sete_vsr.data.train_datasets.FrameFolderDataset`.

    Attributes:
        root: folder of clip folders of HR frames, ``root/<clip>/<frame>.png`` (e.g. REDS ``train_sharp``).
        exclude: clip names left out; ``null``: the evaluation clips, REDS4 (000, 011, 015, 020) and Vid4
            (calendar, city, foliage, walk), :data:`~sete_vsr.data.benchmark_clips.EVALUATION_CLIPS`.
        num_frames: consecutive frames per clip; EDVR needs its ``num_frame``.
        patch_size: HR crop side, a multiple of 4; the LR patch is a quarter of it (64 x 64 in both papers).
        augment: random horizontal/vertical flips and transposes of whole clips.
        num_workers: ``DataLoader`` worker processes (the degradation runs there).
    """

    root: str | None = None
    exclude: list[str] | None = None
    num_frames: int = 15
    patch_size: int = 256
    augment: bool = True
    num_workers: int = 4


@dataclass
class PluginTrainConfig:
    """The settings every plug-in fine-tuning run has.

    Attributes:
        base: registry name of the starting network (``basicvsr-reds4``, ``edvr-m-reds``, ...).
        base_checkpoint: its checkpoint file; ``null`` finds or downloads the official one.
        arch_kwargs: architecture arguments replacing the registry's (for checkpoints of another size).
        tuning: ``full`` (every parameter) or ``efficient`` (only the new blocks).
        sam2: Hub id or local ``Sam2Model.save_pretrained`` folder of the frozen SAM2 prior.
        points_per_side: ``N_g`` of the SAM point grid (8: at most 64 masks).
        output_dir: checkpoints, logs, the resolved config and the trained weights.
        seed: seed of the model initialisation, the data draws and the data order.
        data: see :class:`PluginDataConfig`.
        train_batch_size: clips per device per step.
        max_train_steps: optimizer steps.
        learning_rate: the optimizer's learning rate.
        flow_learning_rate: SPyNet's learning rate in full tuning of BasicVSR.
        min_learning_rate: where the cosine schedule ends.
        adam_beta1, adam_beta2: Adam's betas.
        adam_weight_decay: AdamW's decoupled weight decay (0: plain Adam).
        charbonnier_eps: ``eps`` of the Charbonnier loss ``sqrt((x - y)^2 + eps)``.
        mixed_precision: ``no``, ``fp16`` or ``bf16``; ``null`` follows ``accelerate launch``. SAM2 runs in that
            dtype; the trained weights stay fp32.
        checkpointing_steps: steps between ``accelerator.save_state`` checkpoints (0: none).
        checkpoints_total_limit: checkpoints kept (oldest deleted first); ``null`` keeps all.
        resume_from_checkpoint: ``latest``, a ``checkpoint-<step>`` folder, or ``null``.
        report_to: tracker (``tensorboard``, ``wandb``, ``all``) or ``none``.
        logging_dir: tracker folder, relative to ``output_dir``.
    """

    base: str = "basicvsr-reds4"
    base_checkpoint: str | None = None
    arch_kwargs: dict | None = None
    tuning: str = "full"
    sam2: str = DEFAULT_SAM2_MODEL
    points_per_side: int = 8
    output_dir: str = "plugin-run"
    seed: int = 0
    data: PluginDataConfig = field(default_factory=PluginDataConfig)
    train_batch_size: int = 6
    max_train_steps: int = 300_000
    learning_rate: float = 2e-4
    flow_learning_rate: float = 2.5e-5
    min_learning_rate: float = 1e-7
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    adam_weight_decay: float = 0.0
    charbonnier_eps: float = 1e-12
    mixed_precision: str | None = None
    checkpointing_steps: int = 5000
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    report_to: str = "tensorboard"
    logging_dir: str = "logs"


def check_config(config: PluginTrainConfig, positive: dict[str, int] = ()) -> None:
    """Value checks of the shared settings, and ``positive`` (``{key: value}``) of the trainer's own.

    Raises:
        SeteVSRError: a value out of range, naming its key.
    """
    if config.tuning not in TUNINGS:
        raise SeteVSRError(f"tuning must be one of {', '.join(TUNINGS)}, got {config.tuning!r}")
    counts = {
        "train_batch_size": config.train_batch_size,
        "max_train_steps": config.max_train_steps,
        "points_per_side": config.points_per_side,
        "data.num_frames": config.data.num_frames,
        **dict(positive),
    }
    check_run_settings(config.mixed_precision, counts, config.checkpoints_total_limit)
    if config.data.patch_size < 4 or config.data.patch_size % 4:
        raise SeteVSRError(f"data.patch_size must be a positive multiple of 4, got {config.data.patch_size}")
    if config.adam_weight_decay < 0:
        raise SeteVSRError(f"adam_weight_decay must be 0 or more, got {config.adam_weight_decay}")


def build_dataset(config: PluginTrainConfig, degradation: Downscaling):
    """The training clips, LR made with ``degradation``; draws depend only on ``(seed, epoch, index)``, so a resumed run
    continues exactly.

    Raises:
        SeteVSRError: no ``data.root``, a missing folder, or no usable clip in it.
    """
    from ..data.benchmark_clips import EVALUATION_CLIPS
    from ..data.train_datasets import FrameFolderDataset

    data = config.data
    if data.root is None:
        raise SeteVSRError("data.root is required: the folder of HR clip folders")
    if not Path(data.root).is_dir():
        raise SeteVSRError(f"data.root={data.root} is not a folder")
    return FrameFolderDataset(
        data.root, data.num_frames, crop_size=data.patch_size, degradation=degradation, augment=data.augment,
        seed=config.seed, exclude=EVALUATION_CLIPS if data.exclude is None else data.exclude,
    )  # fmt: skip


def check_model_inputs(arch: str, model: torch.nn.Module, config: PluginTrainConfig) -> None:
    """Clip length and LR patch size the base ``model`` accepts (BasicVSR's SPyNet: 64 pixels; EDVR: ``num_frame``)."""
    lr_size = config.data.patch_size // 4
    if arch == "basicvsr" and lr_size < 64:
        raise SeteVSRError(f"BasicVSR needs LR patches of 64 pixels or more: data.patch_size >= 256, got {lr_size * 4}")
    if arch == "edvr" and config.data.num_frames != model.num_frame:
        raise SeteVSRError(f"{config.base} takes {model.num_frame} frames: set data.num_frames={model.num_frame}")
    if arch == "edvr" and lr_size % 4:
        raise SeteVSRError(f"EDVR needs LR sides that are multiples of 4: data.patch_size % 16 == 0, got {lr_size * 4}")


def charbonnier_loss(output: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """``mean(sqrt((output - target)^2 + eps))``, BasicVSR's, EDVR's and Semantic Lens's pixel loss."""
    return torch.sqrt((output.float() - target.float()) ** 2 + eps).mean()


@dataclass
class Run:
    """What :func:`prepare_run` found: the base's registry entry and network, the clips and the resume checkpoint."""

    spec: BaselineSpec
    base: torch.nn.Module
    arch_kwargs: dict
    dataset: torch.utils.data.Dataset
    resume_path: Path | None


def prepare_run(config: PluginTrainConfig, archs: tuple[str, ...], blocks: str, resume_keys: tuple[str, ...]) -> Run:
    """Step 1 of a run: everything that can be wrong with the inputs, checked before SAM2 is loaded.

    Args:
        archs: the architectures the blocks exist for; blocks: their name, for messages (``"SEEM"``).
        resume_keys: config keys a checkpoint must share to be resumed from.

    Raises:
        SeteVSRError: an unknown base or one of another architecture, bad data, a checkpoint of another run, or
            patches the base cannot take.
    """
    from ..baselines.registry import get_spec, load_baseline_model

    spec = get_spec(config.base)
    if spec.arch not in archs:
        raise SeteVSRError(f"base={config.base} is a {spec.arch} network; {blocks} exists for {', '.join(archs)}")
    dataset = build_dataset(config, spec.degradation)
    resume_path = find_resume_checkpoint(config, resume_keys)
    arch_kwargs = spec.arch_kwargs if config.arch_kwargs is None else config.arch_kwargs
    base = load_baseline_model(config.base, config.base_checkpoint, arch_kwargs)
    check_model_inputs(spec.arch, base, config)
    return Run(spec, base, arch_kwargs, dataset, resume_path)


def run_metadata(config: PluginTrainConfig, run: Run, sam2: str, first_step: int, steps: int, **extra) -> dict:
    """What a plug-in trainer writes beside its weights: the base, SAM2, tuning, degradation, steps and config."""
    return {
        "base": config.base, "sam2": sam2, "points_per_side": config.points_per_side, "tuning": config.tuning,
        "degradation": run.spec.degradation_name, **extra,
        "first_step": first_step, "steps": steps, "config": asdict(config),
    }  # fmt: skip


def make_accelerator(config: PluginTrainConfig) -> Accelerator:
    """The run's ``Accelerator`` (seedable data order, so resuming is exact), seeded, with the config saved."""
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        log_with=None if config.report_to == "none" else config.report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / config.logging_dir)
        ),
        # The data order of an epoch depends on (seed, epoch) only, which makes resuming exact.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    set_seed(config.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / CONFIG_NAME)
    return accelerator


def weight_dtype(accelerator: Accelerator) -> torch.dtype:
    """The dtype frozen models (SAM2) run in: the mixed-precision one, else float32."""
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)


def parameter_groups(
    model: torch.nn.Module, config: PluginTrainConfig, new_parameters: Callable[[torch.nn.Module], list]
) -> list[dict]:
    """Optimizer groups of ``model`` (the network with the blocks inserted), setting ``requires_grad`` to match.

    ``efficient``: only ``new_parameters(model)`` (``(name, parameter)`` pairs) train. ``full``: every parameter,
    SPyNet's (``spynet.*``) at ``flow_learning_rate``.
    """
    if config.tuning == "efficient":
        new = new_parameters(model)
        ids = {id(p) for _, p in new}
        for p in model.parameters():
            p.requires_grad_(id(p) in ids)
        return [{"params": [p for _, p in new]}]
    model.requires_grad_(True)
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if not n.startswith("spynet.")]}]
    flow = [p for n, p in named if n.startswith("spynet.")]
    if flow:
        groups.append({"params": flow, "lr": config.flow_learning_rate})
    return groups


def fit(
    config: PluginTrainConfig,
    accelerator: Accelerator,
    model: torch.nn.Module,
    groups: list[dict],
    run: Run,
    tracker: str,
    target_frame: int | None = None,
) -> tuple[torch.nn.Module, int, int]:
    """The training loop: LR clips -> ``model`` (its prior runs inside) -> SR -> Charbonnier loss against the HR.

    Args:
        model: ``x (B, T, 3, h, w)`` in [0, 1] -> ``(B, T, 3, 4h, 4w)``, or the ``(B, 3, 4h, 4w)`` frame
            ``target_frame`` (EDVR's centre).
        groups: its optimizer groups (:func:`parameter_groups`).
        run: the clips and the checkpoint to resume from (:func:`prepare_run`).
        tracker: the trackers' project name.

    Returns:
        The trained model (unwrapped), the step the run started from (0, or the resumed checkpoint's) and the step it
        ended at.
    """
    optimizer = torch.optim.AdamW(
        groups, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
        weight_decay=config.adam_weight_decay,
    )  # fmt: skip
    train_dataloader = torch.utils.data.DataLoader(
        run.dataset, batch_size=config.train_batch_size, shuffle=True, num_workers=config.data.num_workers,
        collate_fn=collate_clips,
    )  # fmt: skip
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.max_train_steps * accelerator.num_processes, eta_min=config.min_learning_rate
    )
    model, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, lr_scheduler
    )
    if accelerator.is_main_process:
        accelerator.init_trackers(tracker, config=config_to_dict(config))

    global_step = 0
    if run.resume_path is not None:
        logger.info(f"resuming from {run.resume_path}")
        accelerator.load_state(str(run.resume_path))
        global_step = checkpoint_step(run.resume_path)
    first_step = global_step
    updates_per_epoch = len(train_dataloader)
    first_epoch, num_epochs = global_step // updates_per_epoch, math.ceil(config.max_train_steps / updates_per_epoch)

    progress_bar = tqdm(
        range(config.max_train_steps), initial=global_step, desc="steps", disable=not accelerator.is_local_main_process
    )
    for epoch in range(first_epoch, num_epochs):
        run.dataset.set_epoch(epoch)
        train_dataloader.set_epoch(epoch)
        skipped = global_step % updates_per_epoch if epoch == first_epoch else 0
        batches = accelerator.skip_first_batches(train_dataloader, skipped) if skipped else train_dataloader
        for batch in batches:
            lr, hr = (batch["lr"] + 1) / 2, (batch["hr"] + 1) / 2  # (B, T, 3, h, w), (B, T, 3, 4h, 4w) in [0, 1]
            target = hr if target_frame is None else hr[:, target_frame]
            loss = charbonnier_loss(model(lr), target, config.charbonnier_eps)
            accelerator.backward(loss)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()

            global_step += 1
            progress_bar.update(1)
            train_loss = accelerator.gather(loss.detach()[None]).mean().item()
            accelerator.log({"train_loss": train_loss, "lr": lr_scheduler.get_last_lr()[0]}, step=global_step)
            progress_bar.set_postfix(loss=train_loss)
            if config.checkpointing_steps and global_step % config.checkpointing_steps == 0:
                save_checkpoint(accelerator, config, global_step)
            if global_step >= config.max_train_steps:
                break
    accelerator.wait_for_everyone()
    return accelerator.unwrap_model(model), first_step, global_step
