"""Checking a local pipeline folder before diffusers loads it, so a missing piece is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SeteVSRError

# Files that show a component folder holds something loadable.
_COMPONENT_FILES = {
    "scheduler": ("scheduler_config.json",),
    "tokenizer": ("tokenizer_config.json", "vocab.json", "tokenizer.json"),
}


def check_model_folder(path: Path, passed: set[str]) -> None:
    """Raise a one-line :class:`SeteVSRError` when a local pipeline folder lacks ``model_index.json`` or a component."""
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise SeteVSRError(f"{path} is not a SeTe-VSR model folder (no model_index.json)")
    try:
        index = json.loads(index_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SeteVSRError(f"cannot read {index_file}: {err}") from None
    for name, value in index.items():
        if name.startswith("_") or name in passed or not isinstance(value, list) or value[0] is None:
            continue
        folder = path / name
        if not folder.is_dir():
            raise SeteVSRError(f"model folder {path} is missing its {name!r} component (no {name}/ folder)")
        files = {file.name for file in folder.iterdir()}
        expected = _COMPONENT_FILES.get(name)
        if expected is not None:
            if not files & set(expected):
                raise SeteVSRError(f"model folder {path}: {name}/ has none of {', '.join(expected)}")
        elif "config.json" not in files or not any(file.endswith(".safetensors") for file in files):
            raise SeteVSRError(f"model folder {path}: {name}/ needs config.json and .safetensors weights")
