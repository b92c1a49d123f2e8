"""NIQE (Mittal et al. 2013), own vectorised implementation with the BasicSR/MATLAB conventions.

Convention (BasicSR ``calculate_niqe``, mmagic ``NIQE(convert_to='Y')``):

* input: RGB uint8 -> BT.601 Y (MATLAB ``rgb2ycbcr``) on 0-255, rounded;
  ``crop_border`` (default 0); the image is cut to whole 96x96 blocks;
* two scales (the second is MATLAB bicubic ``imresize`` 0.5 with antialiasing,
  in float), MSCN with the 7x7 window of the parameter file and replicated
  borders;
* 18 AGGD features per block and scale (36 per block), the blocks' mean and
  covariance compared with the pristine model:
  ``sqrt((mu_p - mu)^T pinv((S_p + S)/2) (mu_p - mu))``.

Model file: ``niqe/basicsr_niqe_pris_params.npz`` (``mu_pris_param``,
``cov_pris_param``, ``gaussian_window``; BasicSR's ``niqe_pris_params.npz``),
found through :mod:`sete_vsr.weight_dirs`. Lower is better.
"""

from __future__ import annotations

import numpy as np

from ...data.imresize import imresize
from ...weight_dirs import find_weight
from .base import Metric, MetricInfo, MetricOptions, check_frames
from .fullref import rgb_to_y
from .nss import PAIR_SHIFTS, aggd_fit, aggd_mean, mscn

PARAMS_FILES = ("niqe/basicsr_niqe_pris_params.npz", "basicsr_niqe_pris_params.npz", "niqe_pris_params.npz")
BLOCK = 96


def block_features(norm: np.ndarray, block: int) -> np.ndarray:
    """``(n_blocks, 18)`` AGGD features of the ``block`` x ``block`` tiles of an MSCN image ``(H, W)``."""
    h, w = norm.shape
    tiles = norm[: h // block * block, : w // block * block]
    tiles = tiles.reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3).reshape(-1, block, block)
    flat = tiles.reshape(len(tiles), -1)
    alpha, left, right = aggd_fit(flat)
    scale = np.sqrt(_gamma_ratio(alpha))
    feats = [alpha, (left + right) * scale / 2]
    for shift in PAIR_SHIFTS:
        prod = (tiles * np.roll(tiles, shift, axis=(1, 2))).reshape(len(tiles), -1)
        a, lft, rgt = aggd_fit(prod)
        s = np.sqrt(_gamma_ratio(a))
        feats += [a, aggd_mean(a, lft, rgt), lft * s, rgt * s]
    return np.stack(feats, axis=1)


def _gamma_ratio(alpha: np.ndarray) -> np.ndarray:
    from scipy.special import gamma

    return gamma(1 / alpha) / gamma(3 / alpha)


def niqe_gray(img: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray, window: np.ndarray) -> float:
    """NIQE of one ``(H, W)`` float image on the 0-255 scale (already rounded, cropped)."""
    h, w = img.shape
    nh, nw = h // BLOCK, w // BLOCK
    if nh == 0 or nw == 0:
        raise ValueError(f"NIQE needs at least {BLOCK}x{BLOCK} pixels, got {h}x{w}")
    img = img[: nh * BLOCK, : nw * BLOCK]
    feats = []
    for scale in (1, 2):
        feats.append(block_features(mscn(img, window, "nearest"), BLOCK // scale))
        if scale == 1:
            img = imresize(img / 255.0, 0.5) * 255.0
    dist = np.concatenate(feats, axis=1)
    mu = np.nanmean(dist, axis=0)
    cov = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
    diff = mu_pris.ravel() - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov) / 2) @ diff))


class NIQE(Metric):
    """NIQE per frame; see the module docstring for the convention."""

    def __init__(self, options: MetricOptions = MetricOptions()):
        self.params_path = find_weight(*PARAMS_FILES)
        params = np.load(self.params_path)
        self.mu, self.cov = params["mu_pris_param"], params["cov_pris_param"]
        self.window = params["gaussian_window"]
        self.crop_border = options.crop_border
        self.info = MetricInfo(
            name="niqe",
            label="NIQE",
            higher_is_better=False,
            kind="no-reference",
            scope="frame",
            convention=f"Y (BT.601, MATLAB rgb2ycbcr) rounded, 0-255, crop_border={self.crop_border}, 96x96 blocks",
            implementation=f"sete_vsr own NIQE (BasicSR/MATLAB convention), model {self.params_path.name}",
            needs_gt=False,
        )

    def compute(self, output, gt=None):
        frames = check_frames(output)
        values = []
        for frame in frames:
            y = np.round(rgb_to_y(frame))
            if self.crop_border:
                y = y[self.crop_border : -self.crop_border, self.crop_border : -self.crop_border]
            values.append(niqe_gray(y, self.mu, self.cov, self.window))
        return np.array(values)
