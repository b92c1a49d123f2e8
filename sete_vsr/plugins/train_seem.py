"""``accelerate launch -m sete_vsr.plugins.train_seem CONFIG.yaml [key=value ...]``: fine-tune BasicVSR or EDVR + SEEM.

Starts from an official checkpoint (``base``, a registry name), inserts SEEM (SEEM paper, Sec. 3.4-3.5) and trains
either everything (``tuning: full``, Tables 1, 3, 4) or only SEEM and the feature combination network ``f_r``
(``tuning: efficient``, Table 2). HR clips come from ``data.root`` (without the REDS4 and Vid4 test clips unless
``data.exclude`` says otherwise); the LR is made on the fly with the degradation the base was trained for (BI: MATLAB
bicubic x1/4, uint8; BD: 13 x 13 Gaussian blur, sigma 1.6, every 4th pixel; the registry's
``BaselineSpec.degradation``), and the frozen SAM2 mask generator makes the masks of the LR frames, at LR size, in
every step. The
run ends with ``OUTPUT_DIR/seem_model.safetensors`` (the whole SEEM model with its description, see
:mod:`sete_vsr.plugins.seem_model`), which ``load_method("<base>+seem", seem_weights=...)`` loads, next to the
resolved ``training_config.yaml``. Each ``key=value`` overrides one config value (nested keys with dots); errors the
user can fix are printed as one line and exit with status 2.

Settings (``configs/seem_basicvsr.yaml``, ``configs/seem_edvr.yaml``): SEEM states the batch size (6 for BasicVSR,
4 for EDVR), the 64 x 64 LR patches, flips and rotations, and the 8 x 8 point grid (at most 64 masks), and refers to
BasicVSR and EDVR for the rest, which are taken from their BasicSR training configs:

==================  =================================  =================================
setting             BasicVSR (REDS)                    EDVR-M (REDS)
==================  =================================  =================================
loss                Charbonnier (mean, eps 1e-12)      Charbonnier (BasicSR sums; mean here, Adam is
                                                       insensitive to the scale)
optimizer           Adam, betas (0.9, 0.99)            same
learning rate       2e-4, SPyNet 2.5e-5 (x0.125)       4e-4
schedule            cosine to 1e-7 over the run        same (one period instead of restarts)
iterations          300K                               600K
frames per clip     15                                 5 (the network's ``num_frame``)
==================  =================================  =================================

Not reproduced: BasicVSR's first 5,000 iterations with SPyNet fixed and EDVR's TSA-only warm-up (both concern
training from scratch, not fine-tuning a trained network).
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from sete_vsr.data.degradations import Downscaling
from sete_vsr.errors import SeteVSRError
from sete_vsr.plugins.sam_prior import DEFAULT_SAM2_MODEL
from sete_vsr.train.config import config_to_dict, load_dataclass_config, run_config_entry, save_config
from sete_vsr.train.checkpoints import CONFIG_NAME, checkpoint_step, find_resume_checkpoint, save_checkpoint
from sete_vsr.train.data import collate_clips

logger = get_logger(__name__, log_level="INFO")

WEIGHTS_NAME = "seem_model.safetensors"
TUNINGS = ("efficient", "full")
MASK_BACKENDS = ("auto", "sam2", "transformers")
# Keys that change what a checkpoint holds: a run resumes only from a checkpoint written with the same values.
RESUME_KEYS = ("base", "arch_kwargs", "tuning", "sam_channels", "branches")


@dataclass
class SEEMDataConfig:
    """HR training clips, cut and augmented by :class:`~sete_vsr.data.datasets.FrameFolderDataset`.

    Attributes:
        root: folder of clip folders of HR frames, ``root/<clip>/<frame>.png`` (e.g. REDS ``train_sharp``).
        exclude: clip names left out; ``null``: the evaluation clips, REDS4 (000, 011, 015, 020) and Vid4
            (calendar, city, foliage, walk), :data:`~sete_vsr.data.datasets.EVALUATION_CLIPS`.
        num_frames: consecutive frames per clip; EDVR needs its ``num_frame``.
        patch_size: HR crop side, a multiple of 4; the LR patch is a quarter of it (64 x 64 in the paper).
        augment: random horizontal/vertical flips and transposes of whole clips (the paper's flips and rotations).
        num_workers: ``DataLoader`` worker processes (the BI degradation runs there).
    """

    root: str | None = None
    exclude: list[str] | None = None
    num_frames: int = 15
    patch_size: int = 256
    augment: bool = True
    num_workers: int = 4


@dataclass
class SEEMTrainConfig:
    """One SEEM fine-tuning run; see the module docstring for where the values come from.

    Attributes:
        base: registry name of the starting network (``basicvsr-reds4``, ``edvr-m-reds``, ...).
        base_checkpoint: its checkpoint file; ``null`` finds or downloads the official one.
        arch_kwargs: architecture arguments replacing the registry's (for checkpoints of another size).
        tuning: ``full`` (every parameter) or ``efficient`` (only SEEM and ``f_r``).
        sam2: Hub id or local ``Sam2Model.save_pretrained`` folder of the frozen mask generator.
        mask_backend: ``transformers``, ``sam2`` or ``auto``
            (:func:`~sete_vsr.plugins.sam_prior.load_mask_generator`).
        points_per_side: ``N_g`` of the SAM point grid (8: at most 64 masks).
        sam_channels: channels of ``R_sam``.
        branches: BasicVSR branches that get SEEM (``backward``, ``forward``; Table 6); ignored for EDVR.
        output_dir: checkpoints, logs, the resolved config and ``seem_model.safetensors``.
        seed: seed of the model initialisation, the data draws and the data order.
        data: see :class:`SEEMDataConfig`.
        train_batch_size: clips per device per step.
        max_train_steps: optimizer steps.
        learning_rate: Adam's learning rate.
        flow_learning_rate: SPyNet's learning rate in full tuning of BasicVSR.
        min_learning_rate: where the cosine schedule ends.
        adam_beta1, adam_beta2: Adam's betas.
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
    mask_backend: str = "transformers"
    points_per_side: int = 8
    sam_channels: int = 64
    branches: list[str] = field(default_factory=lambda: ["backward", "forward"])
    output_dir: str = "seem-basicvsr"
    seed: int = 0
    data: SEEMDataConfig = field(default_factory=SEEMDataConfig)
    train_batch_size: int = 6
    max_train_steps: int = 300_000
    learning_rate: float = 2e-4
    flow_learning_rate: float = 2.5e-5
    min_learning_rate: float = 1e-7
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    charbonnier_eps: float = 1e-12
    mixed_precision: str | None = None
    checkpointing_steps: int = 5000
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    report_to: str = "tensorboard"
    logging_dir: str = "logs"


def load_seem_config(path: str | Path | None, overrides: list[str] = ()) -> SEEMTrainConfig:
    """Read a YAML config, apply ``key=value`` overrides and check the values (data and models are not opened).

    Raises:
        SeteVSRError: missing file, unknown key, malformed override, wrong type or a value out of range.
    """
    config = load_dataclass_config(SEEMTrainConfig, path, overrides)
    choices = {"tuning": (config.tuning, TUNINGS), "mask_backend": (config.mask_backend, MASK_BACKENDS)}
    choices["mixed_precision"] = (config.mixed_precision, (None, "no", "fp16", "bf16"))
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise SeteVSRError(f"{key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    positive = {
        "train_batch_size": config.train_batch_size,
        "max_train_steps": config.max_train_steps,
        "points_per_side": config.points_per_side,
        "sam_channels": config.sam_channels,
        "data.num_frames": config.data.num_frames,
    }
    for key, value in positive.items():
        if value < 1:
            raise SeteVSRError(f"{key} must be at least 1, got {value}")
    if config.data.patch_size < 4 or config.data.patch_size % 4:
        raise SeteVSRError(f"data.patch_size must be a positive multiple of 4, got {config.data.patch_size}")
    if config.checkpoints_total_limit is not None and config.checkpoints_total_limit < 1:
        raise SeteVSRError(f"checkpoints_total_limit must be at least 1 or null, got {config.checkpoints_total_limit}")
    return config


def build_dataset(config: SEEMTrainConfig, degradation: Downscaling):
    """The training clips, LR made with ``degradation``; draws depend only on ``(seed, epoch, index)``, so a resumed run
    continues exactly.

    Raises:
        SeteVSRError: no ``data.root``, a missing folder, or no usable clip in it.
    """
    from sete_vsr.data.datasets import EVALUATION_CLIPS, FrameFolderDataset

    data = config.data
    if data.root is None:
        raise SeteVSRError("data.root is required: the folder of HR clip folders")
    if not Path(data.root).is_dir():
        raise SeteVSRError(f"data.root={data.root} is not a folder")
    return FrameFolderDataset(
        data.root, data.num_frames, crop_size=data.patch_size, degradation=degradation, augment=data.augment,
        seed=config.seed, exclude=EVALUATION_CLIPS if data.exclude is None else data.exclude,
    )  # fmt: skip


def check_model_inputs(arch: str, model: torch.nn.Module, config: SEEMTrainConfig) -> None:
    """Clip length and LR patch size the base ``model`` accepts (BasicVSR's SPyNet: 64 pixels; EDVR: ``num_frame``)."""
    lr_size = config.data.patch_size // 4
    if arch == "basicvsr" and lr_size < 64:
        raise SeteVSRError(f"BasicVSR needs LR patches of 64 pixels or more: data.patch_size >= 256, got {lr_size * 4}")
    if arch == "edvr" and config.data.num_frames != model.num_frame:
        raise SeteVSRError(f"{config.base} takes {model.num_frame} frames: set data.num_frames={model.num_frame}")
    if arch == "edvr" and lr_size % 4:
        raise SeteVSRError(f"EDVR needs LR sides that are multiples of 4: data.patch_size % 16 == 0, got {lr_size * 4}")


def charbonnier_loss(output: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """``mean(sqrt((output - target)^2 + eps))``, BasicVSR's and EDVR's pixel loss."""
    return torch.sqrt((output.float() - target.float()) ** 2 + eps).mean()


def train(config: SEEMTrainConfig) -> None:
    """Fine-tune ``config.base`` with SEEM and save ``seem_model.safetensors`` in ``config.output_dir``."""
    from sete_vsr.baselines.registry import get_spec, load_baseline_model
    from sete_vsr.plugins.sam_prior import Sam2PackageMasks, load_mask_generator
    from sete_vsr.plugins.seem import freeze_all_but_seem, seem_parameters
    from sete_vsr.plugins.seem_model import SEEM_ARCHS, SEEMWithMasks, attach_seem, save_seem_weights

    # 1. Everything that can be wrong with the inputs is checked before SAM2 is loaded and training starts.
    spec = get_spec(config.base)
    if spec.arch not in SEEM_ARCHS:
        raise SeteVSRError(f"base={config.base} is a {spec.arch} network; SEEM exists for {', '.join(SEEM_ARCHS)}")
    train_dataset = build_dataset(config, spec.degradation)
    resume_path = find_resume_checkpoint(config, RESUME_KEYS)
    arch_kwargs = spec.arch_kwargs if config.arch_kwargs is None else config.arch_kwargs
    base = load_baseline_model(config.base, config.base_checkpoint, arch_kwargs)
    check_model_inputs(spec.arch, base, config)

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

    # 2. Models: the frozen mask generator in the mixed-precision dtype, SEEM inserted into the base network, whose
    # trained weights stay fp32.
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    mask_generator = load_mask_generator(
        config.mask_backend, config.sam2, config.points_per_side, device=str(accelerator.device)
    )
    mask_backend = "sam2" if isinstance(mask_generator, Sam2PackageMasks) else "transformers"
    sam2 = str(Path(config.sam2).absolute()) if Path(config.sam2).is_dir() else config.sam2  # recorded for the method
    if mask_backend == "transformers":
        mask_generator.model.to(dtype=weight_dtype)
    seem_kwargs = {"num_masks": mask_generator.num_masks, "sam_channels": config.sam_channels}
    if spec.arch == "basicvsr":
        seem_kwargs["branches"] = list(config.branches)
    seem_model = attach_seem(base, spec.arch, **seem_kwargs)
    if config.tuning == "efficient":
        freeze_all_but_seem(seem_model)
        groups = [{"params": [p for _, p in seem_parameters(seem_model)]}]
    else:
        seem_model.requires_grad_(True)
        named = list(seem_model.named_parameters())
        groups = [{"params": [p for n, p in named if not n.startswith("spynet.")]}]
        flow = [p for n, p in named if n.startswith("spynet.")]
        if flow:
            groups.append({"params": flow, "lr": config.flow_learning_rate})
    model = SEEMWithMasks(seem_model, mask_generator).train()
    trained, total = sum(p.numel() for g in groups for p in g["params"]), sum(p.numel() for p in model.parameters())
    logger.info(f"{config.tuning} tuning of {config.base} + SEEM: {trained:,} of {total:,} parameters")

    optimizer = torch.optim.Adam(groups, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2))
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset, batch_size=config.train_batch_size, shuffle=True, num_workers=config.data.num_workers,
        collate_fn=collate_clips,
    )  # fmt: skip
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.max_train_steps * accelerator.num_processes, eta_min=config.min_learning_rate
    )
    model, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, lr_scheduler
    )
    if accelerator.is_main_process:
        accelerator.init_trackers("sete-vsr-seem", config=config_to_dict(config))

    global_step = 0
    if resume_path is not None:
        logger.info(f"resuming from {resume_path}")
        accelerator.load_state(str(resume_path))
        global_step = checkpoint_step(resume_path)
    updates_per_epoch = len(train_dataloader)
    first_epoch, num_epochs = global_step // updates_per_epoch, math.ceil(config.max_train_steps / updates_per_epoch)
    centre = accelerator.unwrap_model(model).centre

    # 3. The loop: LR clips (the base's degradation) -> SAM2 masks (inside the model) -> SR -> Charbonnier loss against the HR clips.
    progress_bar = tqdm(
        range(config.max_train_steps), initial=global_step, desc="steps", disable=not accelerator.is_local_main_process
    )
    for epoch in range(first_epoch, num_epochs):
        train_dataset.set_epoch(epoch)
        train_dataloader.set_epoch(epoch)
        skipped = global_step % updates_per_epoch if epoch == first_epoch else 0
        batches = accelerator.skip_first_batches(train_dataloader, skipped) if skipped else train_dataloader
        for batch in batches:
            lr, hr = (batch["lr"] + 1) / 2, (batch["hr"] + 1) / 2  # (B, T, 3, h, w), (B, T, 3, 4h, 4w) in [0, 1]
            loss = charbonnier_loss(model(lr), hr if centre is None else hr[:, centre], config.charbonnier_eps)
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

    # 4. The SEEM model (every tensor, fp32) and what it is, for SEEMMethod.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        metadata = {
            "base": config.base, "arch": spec.arch, "arch_kwargs": arch_kwargs, "seem_kwargs": seem_kwargs,
            "tuning": config.tuning, "sam2": sam2, "mask_backend": mask_backend,
            "points_per_side": config.points_per_side, "degradation": spec.degradation_name, "steps": global_step,
            "config": asdict(config),
        }  # fmt: skip
        path = save_seem_weights(accelerator.unwrap_model(model).model, output_dir / WEIGHTS_NAME, metadata)
        logger.info(f"saved the {config.base} + SEEM model to {path}")
    accelerator.end_training()


def main(argv: list[str] | None = None) -> int:
    return run_config_entry("sete_vsr.plugins.train_seem", __doc__, load_seem_config, train, argv)


if __name__ == "__main__":
    sys.exit(main())
