"""Blur kernels of the Real-ESRGAN / RealBasicVSR degradation family.

Every kernel is a ``(K, K)`` float64 array with odd ``K`` that sums to 1, centred
on pixel ``(K // 2, K // 2)``. Coordinates follow image convention: ``x`` runs
along columns (horizontal), ``y`` along rows (vertical). For the Gaussian
family, the covariance is ``R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``,
so ``sigma_x`` is the spread along the horizontal axis before rotation by
``theta`` (radians, counter-clockwise in ``(x, y)``).

Kernel shapes, with ``q = [x, y] Sigma^-1 [x, y]^T`` (a squared Mahalanobis
distance):

* ``iso`` / ``aniso``: Gaussian ``exp(-q / 2)``;
* ``generalized_iso`` / ``generalized_aniso``: ``exp(-q^beta / 2)``, heavier
  tails for ``beta < 1``, flatter top for ``beta > 1``;
* ``plateau_iso`` / ``plateau_aniso``: ``1 / (1 + q^beta)``;
* ``sinc``: the circular low-pass filter ``omega J1(omega r) / (2 pi r)``
  (``J1`` the Bessel function of the first kind), ``omega^2 / (4 pi)`` at
  ``r = 0``; ``omega`` is the cut-off in radians per pixel (``pi`` is Nyquist).

Isotropic kinds use ``sigma_x`` only. :func:`mixed_kernel` builds any of them
from fixed parameters, which is how RealBasicVSR draws one kernel per frame;
it reproduces the re-draw of ``beta`` that BasicSR/mmagic's random kernel
functions make (``PROTOCOLS.md`` section 1.4, quirk (a)) when asked to.
"""

from __future__ import annotations

import numpy as np
from scipy import special

KERNEL_TYPES = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
    "sinc",
)


def _check_size(kernel_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")


def mesh_grid(kernel_size: int) -> np.ndarray:
    """``(K, K, 2)`` array of ``(x, y)`` offsets from the centre pixel, ``x`` along columns."""
    _check_size(kernel_size)
    r = np.arange(kernel_size, dtype=np.float64) - kernel_size // 2
    x, y = np.meshgrid(r, r)
    return np.stack([x, y], axis=-1)


def covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``(2, 2)`` covariance ``R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``."""
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T


def _mahalanobis_sq(
    kernel_size: int, sigma_x: float, sigma_y: float | None, theta: float, isotropic: bool
) -> np.ndarray:
    """``(K, K)`` squared Mahalanobis distance of every tap from the centre."""
    if isotropic:
        sigma_y, theta = sigma_x, 0.0
    elif sigma_y is None:
        raise ValueError("an anisotropic kernel needs sigma_y")
    grid = mesh_grid(kernel_size)
    inv = np.linalg.inv(covariance(sigma_x, sigma_y, theta))
    return np.einsum("hwi,ij,hwj->hw", grid, inv, grid)


def _normalise(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(
    kernel_size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0, isotropic: bool = True
) -> np.ndarray:
    """Bivariate (an)isotropic Gaussian kernel, ``(K, K)``, sums to 1."""
    q = _mahalanobis_sq(kernel_size, sigma_x, sigma_y, theta, isotropic)
    return _normalise(np.exp(-0.5 * q))


def generalized_gaussian_kernel(
    kernel_size: int,
    sigma_x: float,
    sigma_y: float | None = None,
    theta: float = 0.0,
    beta: float = 1.0,
    isotropic: bool = True,
) -> np.ndarray:
    """Bivariate generalized Gaussian ``exp(-q^beta / 2)``, ``(K, K)``, sums to 1; ``beta = 1`` is Gaussian."""
    q = _mahalanobis_sq(kernel_size, sigma_x, sigma_y, theta, isotropic)
    return _normalise(np.exp(-0.5 * np.power(q, beta)))


def plateau_kernel(
    kernel_size: int,
    sigma_x: float,
    sigma_y: float | None = None,
    theta: float = 0.0,
    beta: float = 1.0,
    isotropic: bool = True,
) -> np.ndarray:
    """Bivariate plateau kernel ``1 / (1 + q^beta)``, ``(K, K)``, sums to 1."""
    q = _mahalanobis_sq(kernel_size, sigma_x, sigma_y, theta, isotropic)
    return _normalise(1.0 / (np.power(q, beta) + 1.0))


def sinc_kernel(kernel_size: int, omega: float, pad_to: int = 0) -> np.ndarray:
    """Circular low-pass (2-D "sinc") kernel with cut-off ``omega`` rad/pixel, sums to 1.

    ``pad_to`` (odd, or 0 for none) zero-pads the result to ``(pad_to, pad_to)``.
    """
    _check_size(kernel_size)
    r = np.linalg.norm(mesh_grid(kernel_size), axis=-1)
    centre = kernel_size // 2
    r[centre, centre] = 1.0  # placeholder, the limit is set just below
    kernel = omega * special.j1(omega * r) / (2.0 * np.pi * r)
    kernel[centre, centre] = omega**2 / (4.0 * np.pi)
    kernel = _normalise(kernel)
    if pad_to > kernel_size:
        _check_size(pad_to)
        pad = (pad_to - kernel_size) // 2
        kernel = np.pad(kernel, pad)
    return kernel


def redraw_beta(beta: float, rng: np.random.Generator) -> float:
    """BasicSR's re-draw of the shape parameter from a degenerate range ``[beta, beta]``.

    ``random_bivariate_generalized_gaussian_kernel`` and
    ``random_bivariate_plateau_kernel`` draw ``U(beta_lo, 1)`` or ``U(1, beta_hi)``
    with probability 1/2 each. With ``beta_lo = beta_hi = beta`` both branches
    are the same uniform law between ``beta`` and 1, which is what this draws
    (quirk (a) of ``PROTOCOLS.md`` section 1.4).
    """
    return float(rng.uniform(min(beta, 1.0), max(beta, 1.0)))


def mixed_kernel(
    kernel_type: str,
    kernel_size: int,
    sigma_x: float,
    sigma_y: float,
    theta: float,
    beta_gaussian: float,
    beta_plateau: float,
    omega: float,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One kernel of ``kernel_type`` (see :data:`KERNEL_TYPES`) from fixed parameters, ``(K, K)``, sums to 1.

    Parameters a kind does not use are ignored (``sigma_y``/``theta`` for the
    isotropic kinds, the betas outside their family, all sigmas for ``sinc``).
    With ``rng`` given, the generalized and plateau kinds re-draw their beta
    with :func:`redraw_beta` (RealBasicVSR's behaviour); without it, beta is
    used as given.
    """
    isotropic = kernel_type.endswith("_iso") or kernel_type == "iso"
    if kernel_type in ("iso", "aniso"):
        return gaussian_kernel(kernel_size, sigma_x, sigma_y, theta, isotropic)
    if kernel_type in ("generalized_iso", "generalized_aniso"):
        beta = redraw_beta(beta_gaussian, rng) if rng is not None else beta_gaussian
        return generalized_gaussian_kernel(kernel_size, sigma_x, sigma_y, theta, beta, isotropic)
    if kernel_type in ("plateau_iso", "plateau_aniso"):
        beta = redraw_beta(beta_plateau, rng) if rng is not None else beta_plateau
        return plateau_kernel(kernel_size, sigma_x, sigma_y, theta, beta, isotropic)
    if kernel_type == "sinc":
        return sinc_kernel(kernel_size, omega)
    raise ValueError(f"unknown kernel type {kernel_type!r}; choose from {', '.join(KERNEL_TYPES)}")
