"""Training checkpoints: ``checkpoint-<step>`` folders of ``accelerator.save_state`` with the run's config beside.

Both trainers (:mod:`sete_vsr.train.loop` and :mod:`sete_vsr.plugins.train_seem`) save with :func:`save_checkpoint`,
which enforces ``checkpoints_total_limit``, and resume through :func:`find_resume_checkpoint`, which refuses a
checkpoint written with other structural settings (``resume_keys``). The trained component is gathered whole
from every process (:func:`gather_trained_component`, FSDP shards included) before it is saved.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedType

from ..errors import SeteVSRError
from .config import RESUME_KEYS, TrainConfig, flatten_config, save_config

logger = get_logger(__name__, log_level="INFO")
# For messages before the Accelerator exists (accelerate's logger refuses to log before its state is initialised).
early_logger = logging.getLogger(__name__)

CONFIG_NAME = "training_config.yaml"
CHECKPOINT_PREFIX = "checkpoint-"


def checkpoint_step(path: Path) -> int:
    """The global step in a ``checkpoint-<step>`` folder name."""
    return int(path.name[len(CHECKPOINT_PREFIX) :])


def list_checkpoints(output_dir: Path) -> list[Path]:
    """``checkpoint-<step>`` folders of ``output_dir``, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)]
    return sorted((p for p in found if p.name[len(CHECKPOINT_PREFIX) :].isdigit()), key=checkpoint_step)


def find_resume_checkpoint(config: TrainConfig, resume_keys: tuple[str, ...] = RESUME_KEYS) -> Path | None:
    """The checkpoint to resume from, after checking it was written by a run with the same structural config.

    ``latest`` with no checkpoint yet starts a fresh run (so the same command can start and continue a job).
    ``resume_keys`` are the config keys that must match (another trainer's config passes its own).

    Raises:
        SeteVSRError: the folder does not exist, is not a checkpoint of this trainer, or differs in a
            ``resume_keys`` key (:data:`~sete_vsr.train.config.RESUME_KEYS` by default).
    """
    if config.resume_from_checkpoint is None:
        return None
    if config.resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(Path(config.output_dir))
        if not checkpoints:
            early_logger.info(f"resume_from_checkpoint=latest: no checkpoint in {config.output_dir}, new run")
            return None
        path = checkpoints[-1]
    else:
        path = Path(config.resume_from_checkpoint)
    saved_config = path / CONFIG_NAME
    if not path.name.startswith(CHECKPOINT_PREFIX) or not path.name[len(CHECKPOINT_PREFIX) :].isdigit():
        raise SeteVSRError(f"resume_from_checkpoint={path} is not a {CHECKPOINT_PREFIX}<step> folder")
    if not saved_config.is_file():
        raise SeteVSRError(f"resume_from_checkpoint={path} is not a checkpoint of this trainer (no {CONFIG_NAME})")
    saved = flatten_config(yaml.safe_load(saved_config.read_text()))
    current = flatten_config(dataclasses.asdict(config))
    different = [key for key in resume_keys if saved.get(key) != current.get(key)]
    if different:
        details = ", ".join(f"{key}: checkpoint {saved.get(key)!r}, config {current.get(key)!r}" for key in different)
        raise SeteVSRError(f"checkpoint {path} does not match the config ({details})")
    ignored = {"resume_from_checkpoint", "max_train_steps"}
    changed = [key for key in current if key not in ignored and key in saved and saved[key] != current[key]]
    if changed:
        details = ", ".join(f"{key}: {saved[key]!r} -> {current[key]!r}" for key in changed)
        early_logger.warning(f"resuming from {path} with changed settings: {details}")
    return path


def save_checkpoint(accelerator: Accelerator, config: TrainConfig, global_step: int) -> Path:
    """``accelerator.save_state`` to ``checkpoint-<step>``, first deleting the oldest beyond the total limit.

    Returns the checkpoint folder.
    """
    output_dir = Path(config.output_dir)
    if accelerator.is_main_process and config.checkpoints_total_limit is not None:
        checkpoints = list_checkpoints(output_dir)
        # Keep limit - 1 old checkpoints so that there are at most `limit` once the new one is written.
        excess = len(checkpoints) - config.checkpoints_total_limit + 1
        for old in checkpoints[: max(excess, 0)]:
            logger.info(f"removing checkpoint {old} (checkpoints_total_limit={config.checkpoints_total_limit})")
            shutil.rmtree(old)
    path = output_dir / f"{CHECKPOINT_PREFIX}{global_step}"
    if accelerator.distributed_type == DistributedType.DEEPSPEED or accelerator.is_main_process:
        accelerator.save_state(str(path))
    if accelerator.is_main_process:
        save_config(config, path / CONFIG_NAME)
        logger.info(f"saved state to {path}")
    return path


def save_lora(unet, folder: Path) -> None:
    """The LoRA of ``unet`` as ``folder/pytorch_lora_weights.safetensors``, for ``pipe.load_lora_weights(folder)``."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    from ..pipelines.pipeline import SeTeVSRPipeline

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    SeTeVSRPipeline.save_lora_weights(folder, unet_lora_layers=layers, safe_serialization=True)


def gather_trained_component(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module | None:
    """The prepared ``model`` with all its weights, on the main process; ``None`` on the others.

    Every process must call this: ``accelerator.get_state_dict`` is a collective, which under FSDP (with
    ``FULL_STATE_DICT``) gathers the shards onto the main process. There the unwrapped module holds only its own
    shard, so the gathered weights go into a fresh copy (:func:`fresh_copy`). Elsewhere (one process, DDP, DeepSpeed
    ZeRO-2) the unwrapped module holds all its weights and is returned as it is.
    """
    state_dict = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return None
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.distributed_type != DistributedType.FSDP:
        return unwrapped
    full = fresh_copy(unwrapped)
    full.load_state_dict(state_dict)
    return full


def fresh_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A new module of ``model``'s class and config, with its LoRA adapters, on the CPU (weights to be loaded)."""
    copy = type(model).from_config(model.config)
    for adapter_name, adapter_config in getattr(model, "peft_config", {}).items():
        copy.add_adapter(adapter_config, adapter_name=adapter_name)
    return copy


def save_trained_component(
    model: torch.nn.Module, folder: Path, name: str, ema=None, trainable_names: Sequence[str] = ()
) -> None:
    """The trained component in diffusers layout inside a checkpoint, as diffusers' training examples keep it.

    ``folder/name`` (``unet`` or ``vae``) loads with ``SeTeUNetModel.from_pretrained`` /
    ``TemporalAutoencoderKL.from_pretrained``, or replaces the pipeline's component
    (``SeTeVSRPipeline.from_pretrained(START, unet=...)``); a LoRA run's holds the LoRA (:func:`save_lora`). With
    EMA, ``folder/<name>_ema`` holds the EMA weights.

    Args:
        model: the trained module with all its weights (:func:`gather_trained_component`).
        folder: the checkpoint folder.
        name: ``"unet"`` or ``"vae"``.
        ema: the run's ``EMAModel`` of the trained parameters, or None.
        trainable_names: the names in ``model`` of the parameters ``ema`` follows, in its order.
    """

    def write(target: Path) -> None:
        if getattr(model, "peft_config", None):
            save_lora(model, target)
        else:
            model.save_pretrained(target, safe_serialization=True)

    write(folder / name)
    if ema is not None:
        trainable = named_parameters(model, trainable_names)
        ema.store(trainable)
        ema.copy_to(trainable)
        try:
            write(folder / f"{name}_ema")
        finally:
            ema.restore(trainable)


def named_parameters(model: torch.nn.Module, names: Sequence[str]) -> list[torch.nn.Parameter]:
    """The parameters of ``model`` called ``names``, in that order."""
    return [model.get_parameter(name) for name in names]
