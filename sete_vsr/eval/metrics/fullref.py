"""PSNR and SSIM with the BasicSR conventions (float64, 0-255 scale, optional Y and border crop).

* Y is ITU-R BT.601 "studio swing" luma as MATLAB ``rgb2ycbcr`` computes it:
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` on 0-255 RGB, not rounded.
* ``crop_border`` pixels are removed on every side before computing.
* PSNR: ``10 log10(255^2 / MSE)`` per frame, MSE over all pixels (and channels), capped at
  ``PSNR_CAP_DB`` = 100 dB (as BasicSR's ``calculate_psnr`` does not, but MMagic, VMAF's PSNR and most video toolkits
  do): identical frames (a method that reproduces a black frame exactly) score 100 dB instead of ``inf``, so clip and
  table means stay finite. Below the cap the value is BasicSR's.
* SSIM: Wang et al. with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  L = 255, statistics over the valid region only (5 pixels lost per side, as
  BasicSR's ``cv2.filter2D(...)[5:-5, 5:-5]``); RGB SSIM is the mean of the
  per-channel SSIMs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .base import Metric, MetricInfo, MetricOptions, check_frames

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
PSNR_CAP_DB = 100.0


def rgb_to_y(frames: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB on 0-255 -> ``(...)`` float64 BT.601 Y in [16, 235] (MATLAB ``rgb2ycbcr``)."""
    return np.asarray(frames, dtype=np.float64) @ _Y_WEIGHTS + 16.0


def _prepare(frames: np.ndarray, y_channel: bool, crop_border: int) -> np.ndarray:
    """``(T, H, W, 3)`` -> float64 ``(T, H', W', C)`` with C = 1 for Y."""
    x = rgb_to_y(frames)[..., None] if y_channel else np.asarray(frames, dtype=np.float64)
    if crop_border:
        x = x[:, crop_border:-crop_border, crop_border:-crop_border]
    return x


def psnr(output: np.ndarray, gt: np.ndarray, y_channel: bool = False, crop_border: int = 0) -> np.ndarray:
    """Per-frame PSNR (dB) of ``(T, H, W, 3)`` uint8 frames; see module conventions."""
    a = _prepare(check_frames(output, "output"), y_channel, crop_border)
    b = _prepare(check_frames(gt, "gt"), y_channel, crop_border)
    if a.shape != b.shape:
        raise ValueError(f"output {a.shape} and gt {b.shape} differ")
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(255.0**2 / mse), PSNR_CAP_DB)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _filter_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable correlation over axes 1 and 2 of ``(T, H, W, C)``, keeping only the valid part."""
    r = len(k) // 2
    x = ndimage.correlate1d(x, k, axis=1, mode="constant")[:, r:-r]
    return ndimage.correlate1d(x, k, axis=2, mode="constant")[:, :, r:-r]


def ssim(output: np.ndarray, gt: np.ndarray, y_channel: bool = False, crop_border: int = 0) -> np.ndarray:
    """Per-frame SSIM of ``(T, H, W, 3)`` uint8 frames (mean over channels); see module conventions."""
    output, gt = check_frames(output, "output"), check_frames(gt, "gt")
    if output.shape != gt.shape:
        raise ValueError(f"output {output.shape} and gt {gt.shape} differ")
    chunk = 4  # bounds float64 temporaries on large frames
    return np.concatenate(
        [
            _ssim_chunk(_prepare(output[i : i + chunk], y_channel, crop_border), _prepare(gt[i : i + chunk], y_channel, crop_border))
            for i in range(0, len(output), chunk)
        ]
    )


def _ssim_chunk(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = _gaussian_1d()
    mu_a, mu_b = _filter_valid(a, k), _filter_valid(b, k)
    var_a = _filter_valid(a * a, k) - mu_a**2
    var_b = _filter_valid(b * b, k) - mu_b**2
    cov = _filter_valid(a * b, k) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(axis=(1, 2, 3))


class FullReference(Metric):
    """PSNR or SSIM on RGB or Y, as a registered metric.

    Args:
        which: ``"psnr"`` or ``"ssim"``.
        y_channel: compute on BT.601 Y instead of RGB.
        options: ``crop_border``, pixels cropped on each side.
    """

    def __init__(self, which: str, y_channel: bool = False, options: MetricOptions = MetricOptions()):
        self._fn = {"psnr": psnr, "ssim": ssim}[which]
        self.y_channel, self.crop_border = y_channel, options.crop_border
        space = "Y (BT.601, MATLAB rgb2ycbcr)" if y_channel else "RGB"
        self.info = MetricInfo(
            name=which + ("_y" if y_channel else ""),
            label=f"{which.upper()} ({'Y' if y_channel else 'RGB'})",
            higher_is_better=True,
            kind="full-reference",
            scope="frame",
            convention=f"{space}, 0-255 float64, crop_border={self.crop_border}"
            + (", dB" if which == "psnr" else ", 11x11 Gaussian sigma 1.5, valid region"),
            implementation="sete_vsr own (BasicSR conventions)",
            needs_gt=True,
        )

    def compute(self, output, gt=None):
        if gt is None:
            raise ValueError(f"{self.info.name} needs ground truth")
        return self._fn(output, gt, self.y_channel, self.crop_border)
