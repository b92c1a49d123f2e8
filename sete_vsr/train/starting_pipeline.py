"""The pipeline a training run starts from: read from a folder or the Hub, and checked before any model is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SeteVSRError
from .config import TrainConfig


def read_pipeline_file(pretrained_model: str, filename: str) -> str | None:
    """Text of ``filename`` in a pipeline folder or Hub repository, ``None`` when it has none."""
    folder = Path(pretrained_model)
    if folder.is_dir():
        path = folder / filename
        return path.read_text() if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(pretrained_model, filename)).read_text()
    except EntryNotFoundError:
        return None
    except (HfHubHTTPError, LocalEntryNotFoundError, ValueError) as err:
        raise SeteVSRError(f"pretrained_model={pretrained_model} is neither a folder nor a reachable Hub repo: {err}")


def training_stages(model_index: dict[str, Any]) -> list[dict[str, Any]]:
    """The training record of a saved pipeline: one entry per ``sete_vsr.train`` run, oldest first."""
    return list((model_index.get("assembled_from") or {}).get("training_stages", []))


def check_starting_pipeline(config: TrainConfig) -> None:
    """Refuse a ``pretrained_model`` that is not a pipeline, or (stage 2) not a stage-1 result."""
    model_index = read_pipeline_file(config.pretrained_model, "model_index.json")
    if model_index is None:
        raise SeteVSRError(
            f"pretrained_model={config.pretrained_model} is not a SeTeVSRPipeline (no model_index.json); "
            "create one with `sete-vsr init`"
        )
    unet_config = json.loads(read_pipeline_file(config.pretrained_model, "unet/config.json") or "{}")
    if config.stage in ("1", "2") and unet_config.get("temporal"):
        raise SeteVSRError(
            f"stage {config.stage} needs a U-Net without temporal modules, but {config.pretrained_model} has them "
            "(a stage-2 result, or `sete-vsr init --temporal`)"
        )
    stages = training_stages(json.loads(model_index))
    if config.stage == "2" and (not stages or stages[-1]["stage"] != "1"):
        found = f"its last training stage is {stages[-1]['stage']!r}" if stages else "it was never trained"
        raise SeteVSRError(
            f"stage 2 starts from a stage-1 result, but {config.pretrained_model} is not one ({found}); "
            "point pretrained_model at the output_dir of a stage-1 run"
        )

