"""Natural-scene-statistics features shared by NIQE and BRISQUE (vectorised over rows).

Both metrics fit a generalized Gaussian (GGD) or an asymmetric generalized
Gaussian (AGGD) to mean-subtracted contrast-normalised (MSCN) coefficients by
moment matching on the shape grid ``0.2:0.001:10`` (Mittal et al., as in the
authors' MATLAB code). Every function takes a 2-D array whose rows are
independent samples (one row per image block or per image).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import gamma

SHAPE_GRID = np.arange(0.2, 10.001, 0.001)
_INV = 1.0 / SHAPE_GRID
# AGGD ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)); GGD ratio is its reciprocal.
_R_AGGD = gamma(2 * _INV) ** 2 / (gamma(_INV) * gamma(3 * _INV))
_R_GGD = 1.0 / _R_AGGD

# the neighbour products of BRISQUE and NIQE: horizontal, vertical, main and
# secondary diagonal, as MATLAB circshift offsets (rows, cols)
PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def mscn(img: np.ndarray, window: np.ndarray, mode: str) -> np.ndarray:
    """MSCN coefficients ``(I - mu) / (sigma + 1)`` of ``(..., H, W)`` float images.

    ``window`` is a normalised 2-D Gaussian; ``mode`` the scipy border mode
    (``"constant"`` is MATLAB ``filter2``'s zero padding, ``"nearest"`` BasicSR's NIQE).
    """
    w = window.reshape((1,) * (img.ndim - 2) + window.shape)
    mu = ndimage.correlate(img, w, mode=mode)
    sigma = np.sqrt(np.abs(ndimage.correlate(img * img, w, mode=mode) - mu * mu))
    return (img - mu) / (sigma + 1.0)


def ggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape ``alpha`` and variance ``sigma^2`` of a zero-mean GGD per row of ``(N, M)``."""
    sigma_sq = np.mean(x * x, axis=1)
    rho = sigma_sq / np.mean(np.abs(x), axis=1) ** 2
    alpha = SHAPE_GRID[np.argmin(np.abs(rho[:, None] - _R_GGD[None]), axis=1)]
    return alpha, sigma_sq


def aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shape ``alpha`` and left/right standard deviations of an AGGD per row of ``(N, M)``.

    Rows without negative (or positive) values give NaN, as the MATLAB code does.
    """
    neg, pos = x < 0, x > 0
    sq = x * x
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((sq * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((sq * pos).sum(axis=1) / pos.sum(axis=1))
        gamma_hat = left_std / right_std
        r_hat = np.mean(np.abs(x), axis=1) ** 2 / np.mean(sq, axis=1)
        r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    idx = np.argmin((_R_AGGD[None] - r_norm[:, None]) ** 2, axis=1)
    alpha = np.where(np.isnan(r_norm), np.nan, SHAPE_GRID[idx])
    return alpha, left_std, right_std


def aggd_mean(alpha: np.ndarray, left_std: np.ndarray, right_std: np.ndarray) -> np.ndarray:
    """Mean of the AGGD with unit-variance-scaled betas, ``(beta_r - beta_l) Gamma(2/a)/Gamma(1/a)``."""
    const = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return (right_std - left_std) * const * gamma(2 / alpha) / gamma(1 / alpha)
