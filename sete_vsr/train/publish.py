"""The end of a run: its entry in the saved pipeline's construction record, and the upload to the Hub."""

from __future__ import annotations

from pathlib import Path

from accelerate.logging import get_logger

from .checkpoints import CHECKPOINT_PREFIX, CONFIG_NAME
from .config import TrainConfig
from .data import training_degradation

logger = get_logger(__name__, log_level="INFO")


def record_training(pipeline, config: TrainConfig, global_step: int, metrics: dict[str, float]) -> None:
    """Add this run to the pipeline's construction record, which its model card and the stage-2 check read."""
    record = dict(pipeline.config.get("assembled_from") or {})
    data = config.data
    stage = {
        "stage": config.stage,
        "steps": global_step,
        "from": config.pretrained_model,
        "ema": config.use_ema,
        "data": {"type": data.type, "root": data.root, "exclude": data.exclude, "crop_size": data.crop_size},
        "degradation": training_degradation(config),
        "window_length": data.num_frames,
        "batch_size": config.train_batch_size,
        "learning_rate": config.learning_rate,
    }
    stage.update(metrics)
    stages = [*record.get("training_stages", []), stage]
    names = {"1": "stage 1 (spatial U-Net: SeAM, LR conditioning)", "2": "stage 2 (temporal transformer, TSAM)"}
    done = "; ".join(
        f"{names.get(s['stage'], 'temporal VAE decoder')} for {s['steps']} steps"
        + (f" on {s['window_length']}-frame clips of {Path(str(s['data']['root'])).name}" if "data" in s else "")
        + (f" ({s['degradation']} degradation)" if "degradation" in s else "")
        for s in stages
    )
    record["training_stages"] = stages
    record["temporal"] = bool(pipeline.unet.config.temporal)
    record["training"] = f"{done}, with `accelerate launch -m sete_vsr.train` (last run's config: `{CONFIG_NAME}`)"
    pipeline.register_to_config(assembled_from=record)


def push_to_hub(config: TrainConfig) -> None:
    """Upload the saved pipeline (not the checkpoints or logs) to ``hub_model_id``, with ``hub_token`` and
    ``hub_private``; a ``README.md`` the repository already has is kept unless ``hub_overwrite_model_card``."""
    from huggingface_hub import create_repo, upload_folder

    from ..pipelines.hub import remote_model_card_exists

    token = config.hub_token
    repo_id = create_repo(config.hub_model_id, exist_ok=True, private=config.hub_private, token=token).repo_id
    ignore = [f"{CHECKPOINT_PREFIX}*", f"{config.logging_dir}/*"]
    if not config.hub_overwrite_model_card and remote_model_card_exists(repo_id, token):
        logger.warning(f"{repo_id} has a README.md: kept it (set hub_overwrite_model_card=true to replace it)")
        ignore.append("README.md")
    upload_folder(
        repo_id=repo_id,
        folder_path=config.output_dir,
        commit_message=f"SeTe-VSR stage {config.stage}",
        ignore_patterns=ignore,
        token=token,
    )
    logger.info(f"pushed {config.output_dir} to https://huggingface.co/{repo_id}")
