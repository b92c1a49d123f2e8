"""Saving adapted networks as safetensors and loading them back as methods.

The file holds the full state dict in the baselines' (BasicSR) parameter names, plus JSON metadata
that makes it self-describing (:func:`sete_vsr.baselines.checkpoints.save_weights_file`):

* ``format``: ``"sete-vsr-adapted"``;
* ``arch`` and ``arch_kwargs``: the architecture, as in
  :func:`sete_vsr.baselines.registry.build_architecture`;
* ``base``: the registry name the adaptation started from (``""`` if none);
* ``config``: the :class:`~sete_vsr.adaptation.self_supervised.AdaptationConfig`.

So ``load_adapted_method("calendar.safetensors")`` rebuilds the method without the official
checkpoint, and ``load_adapted_model`` gives the bare network.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from torch import nn

from ..errors import SeteVSRError

FORMAT = "sete-vsr-adapted"


def save_adapted_weights(
    model: nn.Module,
    path: str | os.PathLike,
    base: str | None = None,
    arch: str | None = None,
    arch_kwargs: dict | None = None,
    config=None,
) -> Path:
    """Write ``model``'s state dict and its description to ``path`` (a ``.safetensors`` file).

    Args:
        model: the adapted network.
        path: output file; written under a temporary name and renamed, so it is never partial.
        base: registry name of the starting checkpoint (``"basicvsr-vimeo-bi"``); gives
            ``arch`` and ``arch_kwargs`` when they are not passed.
        arch, arch_kwargs: the architecture, for networks outside the registry.
        config: the adaptation settings, recorded for reference.

    Returns:
        The path written.
    """
    from ..baselines.checkpoints import save_weights_file

    if arch is None:
        if base is None:
            raise SeteVSRError("save_adapted_weights needs base= (a registry name) or arch=")
        from ..baselines.registry import get_spec

        spec = get_spec(base)
        arch, arch_kwargs = spec.arch, spec.arch_kwargs
    metadata = {
        "arch": arch,
        "arch_kwargs": arch_kwargs or {},
        "base": base or "",
        "config": asdict(config) if config is not None else {},
    }
    return save_weights_file(model, path, metadata, FORMAT)


def read_adapted_weights(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(state_dict, metadata)`` of a file written by :func:`save_adapted_weights`."""
    from ..baselines.checkpoints import read_weights_file

    return read_weights_file(path, FORMAT, "adapted weights")


def _load(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    from ..baselines.checkpoints import load_state_dict_strict
    from ..baselines.registry import build_architecture

    state_dict, metadata = read_adapted_weights(path)
    model = build_architecture(metadata["arch"], **metadata["arch_kwargs"])
    load_state_dict_strict(model, state_dict, source=str(path))
    return model.eval(), metadata


def load_adapted_model(path: str | os.PathLike) -> nn.Module:
    """The adapted network stored in ``path``, strictly loaded, in eval mode, on CPU."""
    return _load(path)[0]


def load_adapted_method(weights: str | os.PathLike, name: str | None = None, **options):
    """The adapted network in ``weights`` as a :class:`~sete_vsr.methods.VSRMethod`.

    Args:
        weights: a file written by :func:`save_adapted_weights`.
        name: method name in tables (default ``"<base>+adapt"``, or the file's stem).
        **options: passed to the method wrapper (``device``, ``chunk_length``, ``progress``, ...).
    """
    from ..baselines.runners import RecurrentBaselineMethod, SlidingWindowBaselineMethod, wrapper_options
    from ..methods import check_options

    model, metadata = _load(weights)
    base = metadata.get("base")
    name = name or (f"{base}+adapt" if base else Path(weights).stem)
    check_options(f"adapted ({metadata['arch']} weights)", options, wrapper_options(metadata["arch"]))
    wrapper = SlidingWindowBaselineMethod if metadata["arch"] == "edvr" else RecurrentBaselineMethod
    return wrapper(model, name=name, **options)


def _adapted_options() -> frozenset[str]:
    """``weights``, ``name`` and the options of either method wrapper (the file's architecture decides)."""
    from ..baselines.runners import wrapper_options

    return frozenset({"weights", "name"}) | wrapper_options("basicvsr") | wrapper_options("edvr")


load_adapted_method.accepted_options = _adapted_options  # read by sete_vsr.methods.method_options


__all__ = ["load_adapted_method", "load_adapted_model", "read_adapted_weights", "save_adapted_weights"]
