"""A saved SeTe-VSR model as diffusers and the Hub see it: its custom-pipeline entry file, and its model card on upload.

diffusers loads a pipeline class that is not its own through a *custom pipeline*: ``model_index.json`` names it as
``["<file>", "<class>"]`` and the model folder (or Hub repository) holds ``<file>.py``, which
``DiffusionPipeline.from_pretrained(MODEL, trust_remote_code=True)`` imports. A SeTe-VSR model's entry file,
:data:`ENTRY_FILE`, holds no code of its own: it imports :class:`~sete_vsr.SeTeVSRPipeline` from the installed package
(:data:`ENTRY_SOURCE`). ``SeTeVSRPipeline.from_pretrained`` never asks for ``trust_remote_code``: it lets diffusers
import the entry file only after checking that the file is exactly :data:`ENTRY_SOURCE` (:func:`entry_is_ours`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import SeteVSRError

logger = logging.getLogger(__name__)

ENTRY_MODULE = "pipeline_sete_vsr"
ENTRY_FILE = f"{ENTRY_MODULE}.py"
ENTRY_SOURCE = '''"""Entry of a SeTe-VSR model for `DiffusionPipeline.from_pretrained(MODEL, trust_remote_code=True)`.

It holds no code: the pipeline comes from the installed package (`pip install sete-vsr`).
"""

from sete_vsr import SeTeVSRPipeline

__all__ = ["SeTeVSRPipeline"]
'''
# the arguments of DiffusionPipeline.from_pretrained that say where and how to fetch a Hub file
_HUB_ARGUMENTS = ("revision", "cache_dir", "token", "local_files_only", "proxies", "force_download")


def write_entry(folder: str | os.PathLike, class_name: str) -> None:
    """Write :data:`ENTRY_FILE` into ``folder`` and name it in ``model_index.json``'s ``_class_name``."""
    folder = Path(folder)
    (folder / ENTRY_FILE).write_text(ENTRY_SOURCE, encoding="utf-8")
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["_class_name"] = [ENTRY_MODULE, class_name]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def entry_is_ours(model: str | os.PathLike, **kwargs: Any) -> bool:
    """Whether ``model`` (a folder or Hub id) names an entry file in ``model_index.json`` that is :data:`ENTRY_SOURCE`.

    Args:
        model: a model folder or Hub id.
        **kwargs: ``from_pretrained`` arguments; those that say where to fetch Hub files (``revision``, ``token``...)
            are used for the two small files read.

    Returns:
        False for a model without an entry file (saved by an older version: it loads without one).

    Raises:
        SeteVSRError: an entry file other than :data:`ENTRY_SOURCE` (someone changed the code it runs).
    """
    index_path = _fetch(model, "model_index.json", kwargs)
    class_name = json.loads(Path(index_path).read_text()).get("_class_name") if index_path else None
    if not isinstance(class_name, (list, tuple)):
        return False
    entry = _fetch(model, f"{class_name[0]}.py", kwargs)
    if entry is None or Path(entry).read_text(encoding="utf-8") != ENTRY_SOURCE:
        raise SeteVSRError(
            f"{model}: model_index.json names the pipeline file {class_name[0]}.py, which is not SeTe-VSR's entry "
            "file; load it with DiffusionPipeline.from_pretrained(..., trust_remote_code=True) only if you trust it"
        )
    return True


def _fetch(model: str | os.PathLike, filename: str, kwargs: dict) -> str | None:
    """Local path of ``filename`` of a model folder or Hub repository, or None when it has none."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        path = folder / filename
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(str(model), filename, **{k: kwargs[k] for k in _HUB_ARGUMENTS if k in kwargs})
    except EntryNotFoundError:
        return None


def remote_model_card_exists(repo_id: str, token: str | None = None) -> bool:
    """Whether the Hub repository ``repo_id`` already has a ``README.md``."""
    from huggingface_hub import file_exists

    return file_exists(repo_id, "README.md", token=token)


def keep_or_write_card(write, working_dir: str | os.PathLike, repo_id: str, token: str | None, overwrite: bool) -> None:
    """Before an upload of ``working_dir`` to ``repo_id``: ``write(working_dir)`` the new model card, unless the repo
    has one and ``overwrite`` is false, in which case its card is kept (said in the log)."""
    if not overwrite and remote_model_card_exists(repo_id, token):
        logger.warning(f"{repo_id} has a README.md: kept it (pass overwrite_model_card=True to replace it)")
        (Path(working_dir) / "README.md").unlink(missing_ok=True)
        return
    write(working_dir)
