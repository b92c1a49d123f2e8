"""The one interface every super-resolution method offers to evaluation and the CLI.

A method takes low-resolution frames ``(T, H, W, 3)`` uint8 RGB and returns
``(T, 4H, 4W, 3)`` uint8 RGB. Methods handle long clips themselves (chunks,
windows), so callers may pass whole clips.

Methods are found by name through a table of import paths, resolved only when
a method is asked for: a broken optional dependency of one method never breaks
the others.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import numpy as np

from .errors import SeteVSRError

# name -> ("module:factory", preset keyword arguments). The factory is called
# with the presets updated by the options given to `load_method`, and returns a
# `VSRMethod`.
_METHODS: dict[str, tuple[str, dict]] = {
    "bicubic": ("sete_vsr.baselines.bicubic:BicubicUpsampler", {}),
    "sete-vsr": ("sete_vsr.pipelines.method:SeTeVSRMethod", {}),
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
    {f"{name}+adapt": ("sete_vsr.adaptation.method:TestTimeAdaptedMethod", {"base": name}) for name in _BASELINE_NAMES}
)
# a network adapted once and saved by `sete-vsr adapt --save-weights` (option weights=FILE)
_METHODS["adapted"] = ("sete_vsr.adaptation.weights:load_adapted_method", {})
# BasicVSR and EDVR with SEEM (paper 000); trained weights with option seem_weights=FILE from
# `accelerate launch -m sete_vsr.plugins.train_seem`, untrained (equal to the base) without
_METHODS.update(
    {
        f"{name}+seem": ("sete_vsr.plugins.method:SEEMMethod", {"base": name})
        for name in _BASELINE_NAMES
        if name.startswith(("basicvsr-", "edvr-"))
    }
)


class VSRMethod(ABC):
    """A video super-resolution method behind the common interface.

    Attributes:
        name: short name used in tables and cache folders.
        scale: the upscaling factor (4 for every method in this package).
    """

    name: str = "method"
    scale: int = 4

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


def register_method(name: str, target: str, **presets) -> None:
    """Make ``load_method(name)`` call ``target`` (``"module:factory"``) with ``presets``."""
    _METHODS[name] = (target, presets)


def available_methods() -> list[str]:
    """Names accepted by :func:`load_method`."""
    return sorted(_METHODS)


def load_method(name: str, **options) -> VSRMethod:
    """Build the method called ``name``; ``options`` (e.g. ``device``, ``checkpoint``) override its presets."""
    if name not in _METHODS:
        raise SeteVSRError(f"unknown method {name!r}; available: {', '.join(sorted(_METHODS))}")
    target, presets = _METHODS[name]
    module_name, factory = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, factory)(**{**presets, **options})
