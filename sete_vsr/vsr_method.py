"""The one interface every super-resolution method offers: :class:`VSRMethod`.

A method takes low-resolution frames ``(T, H, W, 3)`` uint8 RGB and returns ``(T, 4H, 4W, 3)`` uint8 RGB. Methods
handle long clips themselves (chunks, windows), so callers may pass whole clips. Methods are found by name in
:mod:`sete_vsr.methods`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .errors import SeteVSRError


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
