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
from ..method_options import AdaptedOptions, options_for_runner, runner_options

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


def build_adapted_method(options: AdaptedOptions):
    """Factory behind ``load_method("adapted", weights=FILE)``: the adapted network as a
    :class:`~sete_vsr.methods.VSRMethod`, run as its architecture is (chunks, or windows for EDVR).

    Args:
        options: ``weights`` (a file written by :func:`save_adapted_weights`), ``name`` in tables (default
            ``"<base>+adapt"``, or the file's stem) and the runner options of the file's architecture.

    Raises:
        SeteVSRError: a runner option set that the file's architecture does not take (``padding`` for BasicVSR).
    """
    from ..baselines.runners import runner_class
    from ..registry import non_default_options, option_names

    model, metadata = _load(options.weights)
    arch, base = metadata["arch"], metadata.get("base")
    foreign = sorted(set(non_default_options(options)) - option_names(runner_options(arch)) - {"weights", "name"})
    if foreign:
        raise SeteVSRError(f"adapted ({arch} weights) does not take the option(s) {', '.join(foreign)}")
    name = options.name or (f"{base}+adapt" if base else Path(options.weights).stem)
    return runner_class(arch)(model, name, options_for_runner(arch, options))


def load_adapted_method(weights: str | os.PathLike, **options):
    """``load_method("adapted", weights=weights, **options)``: the adapted network in ``weights`` as a method.

    ``options``: ``name``, ``device``, ``progress`` and the runner options of the file's architecture.
    """
    from ..methods import load_method

    return load_method("adapted", weights=str(weights), **options)


__all__ = ["load_adapted_method", "load_adapted_model", "read_adapted_weights", "save_adapted_weights"]
