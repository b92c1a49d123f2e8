"""What every metric declares, and the one call the runner makes.

A metric has a :class:`MetricInfo` (direction, kind, scope, input convention,
implementation) and ``compute(output, gt)``:

* ``output``: ``(T, H, W, 3)`` uint8 RGB frames of the method (PNG or memory,
  never a re-encoded video);
* ``gt``: the matching ground truth, or ``None`` (no-reference and
  self-consistency metrics ignore it);
* returns one value per frame (scope ``"frame"``), one per consecutive pair
  ``(t-1, t)`` for ``t = 1..T-1`` (scope ``"pair"``; NaN where the protocol
  skips a pair), or one float for the whole clip (scope ``"video"``).

The clip value is the NaN-ignoring mean over frames/pairs (the video value for
``"video"``); the dataset value is the mean over clips (mmagic/BasicSR).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class MetricOptions:
    """What the runner gives every metric: the ``device`` of deep metrics and flow backends, and the
    ``crop_border`` (pixels cropped on each side) of PSNR, SSIM and NIQE. Each metric reads what it needs."""

    device: str = "cpu"
    crop_border: int = 0


@dataclass(frozen=True)
class MetricInfo:
    """Declared facts about a metric, written next to its numbers.

    Attributes:
        name: key used on the command line and in result files (``"psnr_y"``).
        label: column/row label in tables (``"PSNR (Y)"``).
        higher_is_better: direction (drives the arrows and best/second marks).
        kind: ``"full-reference"``, ``"no-reference"`` or ``"temporal"``.
        scope: ``"frame"``, ``"pair"`` or ``"video"`` (see module docstring).
        convention: input convention (channels, range, crop, scale of the value).
        implementation: which code and model files compute it.
        needs_gt: whether the metric compares against ground truth.
    """

    name: str
    label: str
    higher_is_better: bool
    kind: str
    scope: str
    convention: str
    implementation: str
    needs_gt: bool

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def to_dict(self) -> dict:
        return {**asdict(self), "direction": "higher is better" if self.higher_is_better else "lower is better"}


class Metric(ABC):
    """A metric behind the common call; subclasses set ``info`` in ``__init__``."""

    info: MetricInfo

    @abstractmethod
    def compute(self, output: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray | float:
        """Per-frame (or per-pair) values as a float64 array, or one float for scope ``"video"``."""


def check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    """Validate ``(T, H, W, 3)`` uint8 RGB frames (a single ``(H, W, 3)`` frame gets T=1)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{what}: expected (T, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    return frames
