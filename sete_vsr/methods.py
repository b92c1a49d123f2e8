"""The one interface every super-resolution method offers to evaluation and the CLI.

A method takes low-resolution frames ``(T, H, W, 3)`` uint8 RGB and returns
``(T, 4H, 4W, 3)`` uint8 RGB. Methods handle long clips themselves (chunks,
windows), so callers may pass whole clips.

Methods are found by name through a table of import paths, resolved only when
a method is asked for: a broken optional dependency of one method never breaks
the others.

An instance name ``METHOD:INSTANCE`` (``sete-vsr:stage1``) is the registered
``METHOD`` under a name of its own, so that one method can be compared with
itself under other options (models of several training stages, ablations): it
has its own options, output cache and label (``sete-vsr:stage1``, or
``sete-vsr:stage1-untrained`` when the method says it is untrained).
"""

from __future__ import annotations

import importlib
import inspect
import re
from abc import ABC, abstractmethod

import numpy as np

from .errors import SeteVSRError

# name -> ("module:factory", preset keyword arguments). The factory is called
# with the presets updated by the options given to `load_method`, and returns a
# `VSRMethod`.
_METHODS: dict[str, tuple[str, dict]] = {
    "bicubic": ("sete_vsr.baselines.bicubic:BicubicUpsampler", {}),
    "sete-vsr": ("sete_vsr.pipelines.sete_method:SeTeVSRMethod", {}),
}
# the CNN baselines with official checkpoints (sete_vsr.baselines.registry.BASELINES)
_BASELINE_NAMES = (
    "basicvsr-reds4",
    "basicvsr-vimeo-bi",
    "basicvsr-vimeo-bd",
    "basicvsr-reds4-mmagic",
    "basicvsr-vimeo-bi-mmagic",
    "basicvsr-vimeo-bd-mmagic",
    "basicvsrpp-reds4",
    "realbasicvsr",
    "realbasicvsr-wogan",
    "edvr-m-reds",
    "edvr-m-wotsa-reds",
    "edvr-l-reds",
    "edvr-m-reds-mmagic",
    "edvr-l-reds-mmagic",
)
_METHODS.update({name: ("sete_vsr.baselines.registry:load_baseline", {"name": name}) for name in _BASELINE_NAMES})
# each baseline adapted to every clip before restoring it (test-time adaptation, paper 004)
_METHODS.update(
    {f"{name}+adapt": ("sete_vsr.adaptation.per_clip:TestTimeAdaptedMethod", {"base": name}) for name in _BASELINE_NAMES}
)
# a network adapted once and saved by `sete-vsr adapt --save-weights` (option weights=FILE)
_METHODS["adapted"] = ("sete_vsr.adaptation.saved_weights:load_adapted_method", {})
# BasicVSR and EDVR with SEEM (paper 000); trained weights with option seem_weights=FILE from
# `accelerate launch -m sete_vsr.plugins.train_seem`, untrained (equal to the base) without
_METHODS.update(
    {
        f"{name}+seem": ("sete_vsr.plugins.plugin_methods:SEEMMethod", {"base": name})
        for name in _BASELINE_NAMES
        if name.startswith(("basicvsr-", "edvr-"))
    }
)
# BasicVSR with the Semantic Lens blocks (paper 001), SAM2 masks and embeddings as the semantics; trained
# weights with option semantic_lens_weights=FILE from `accelerate launch -m sete_vsr.plugins.train_semantic_lens`,
# untrained (equal to the base) without
_METHODS.update(
    {
        f"{name}+semantic-lens": ("sete_vsr.plugins.plugin_methods:SemanticLensMethod", {"base": name})
        for name in _BASELINE_NAMES
        if name.startswith("basicvsr-")
    }
)


class VSRMethod(ABC):
    """A video super-resolution method behind the common interface.

    Attributes:
        name: short name used in tables and cache folders.
        scale: the upscaling factor (4 for every method in this package).
        trained: false for a method whose learned parts are at their initialisation (SEEM without weights, a
            SeTe-VSR pipeline never trained); its name then ends in ``-untrained``.
    """

    name: str = "method"
    scale: int = 4
    trained: bool = True

    @abstractmethod
    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """Super-resolve a clip.

        Args:
            frames: ``(T, H, W, 3)`` uint8 RGB low-resolution frames.

        Returns:
            ``(T, scale*H, scale*W, 3)`` uint8 RGB frames.
        """

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise SeteVSRError(f"{self.name}: expected frames of shape (T, H, W, 3), got {frames.shape}")
        if frames.dtype != np.uint8:
            raise SeteVSRError(f"{self.name}: expected uint8 frames, got {frames.dtype}")
        out = self.upscale(frames)
        t, h, w, _ = frames.shape
        expected = (t, h * self.scale, w * self.scale, 3)
        if out.shape != expected:
            raise RuntimeError(f"{self.name} returned {out.shape}, expected {expected}")
        return out


# the INSTANCE of METHOD:INSTANCE: a name fit for a label and a folder
_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def register_method(name: str, target: str, **presets) -> None:
    """Make ``load_method(name)`` call ``target`` (``"module:factory"``) with ``presets``."""
    if ":" in name:
        raise SeteVSRError(f"method names cannot hold ':' (it starts an instance name): {name!r}")
    _METHODS[name] = (target, presets)


def available_methods() -> list[str]:
    """Registered names accepted by :func:`load_method` (each also as ``NAME:INSTANCE``)."""
    return sorted(_METHODS)


def split_instance(name: str) -> tuple[str, str | None]:
    """``"sete-vsr:stage1"`` -> ``("sete-vsr", "stage1")``; a name without ``:`` -> ``(name, None)``.

    Raises:
        SeteVSRError: an instance part that is not a plain name (letters, digits, ``.``, ``_``, ``+``, ``-``).
    """
    method, colon, instance = name.partition(":")
    if not colon:
        return name, None
    if not _INSTANCE.fullmatch(instance):
        raise SeteVSRError(
            f"bad method instance {name!r}: METHOD:INSTANCE takes an INSTANCE of letters, digits, '.', '_', '+', '-'"
        )
    return method, instance


def is_method(name: str) -> bool:
    """Whether :func:`load_method` knows ``name``, a registered name or an instance of one."""
    return split_instance(name)[0] in _METHODS


def signature_options(factory) -> frozenset[str]:
    """The keyword parameters of ``factory`` (a function or a class), ``**kwargs`` left out."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in inspect.signature(factory).parameters.values() if p.kind in kinds)


def _factory(name: str):
    method = split_instance(name)[0]
    if method not in _METHODS:
        raise SeteVSRError(f"unknown method {name!r}; available: {', '.join(sorted(_METHODS))}")
    target, presets = _METHODS[method]
    module_name, factory = target.split(":")
    return getattr(importlib.import_module(module_name), factory), presets


def method_options(name: str) -> frozenset[str] | None:
    """The option names ``load_method(name, ...)`` accepts, or None when it accepts any.

    A factory that forwards ``**options`` to another one says what it accepts with an
    ``accepted_options(**presets)`` attribute; otherwise its signature does (a ``**kwargs`` without
    that attribute accepts anything). The presets of ``name`` (``base``, ...) are not options.
    """
    factory, presets = _factory(name)
    hook = getattr(factory, "accepted_options", None)
    if hook is not None:
        accepted = frozenset(hook(**presets))
    else:
        parameters = inspect.signature(factory).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        accepted = signature_options(factory)
    return accepted - set(presets)


def taken_options(name: str, options: dict) -> dict:
    """The entries of ``options`` that method ``name`` takes (all of them when it takes any option).

    For runtime options a caller offers every method (``device``, ``progress``), which a method may not need.
    """
    accepted = method_options(name)
    return {key: value for key, value in options.items() if accepted is None or key in accepted}


def check_options(name: str, options, accepted: frozenset[str] | None = None) -> None:
    """Raise a one-line :class:`SeteVSRError` unless method ``name`` accepts every key of ``options``.

    ``accepted``: :func:`method_options` of ``name`` (looked up when not given).
    """
    accepted = method_options(name) if accepted is None else accepted
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        raise SeteVSRError(
            f"method {name} does not take the option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(accepted)) or 'none'}"
        )


def load_method(name: str, **options) -> VSRMethod:
    """Build the method called ``name``; ``options`` (e.g. ``device``, ``checkpoint``) override its presets.

    An instance ``METHOD:INSTANCE`` builds ``METHOD`` and names it ``name``, or ``name-untrained`` when the built
    method is not :attr:`~VSRMethod.trained`.

    Raises:
        SeteVSRError: an unknown name, or an option the method does not take (:func:`method_options`).
    """
    factory, presets = _factory(name)
    check_options(name, options)
    method = factory(**{**presets, **options})
    if split_instance(name)[1] is not None:
        method.name = name if method.trained else f"{name}-untrained"
    return method
