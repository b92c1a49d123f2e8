"""Classic x4 degradations of benchmark test sets (BI, BD) and the name-based entry point.

* **BI**: MATLAB ``imresize(gt, 1/4, 'bicubic')`` with antialiasing
  (:func:`sete_vsr.data.imresize.imresize`), uint8 after each pass as MATLAB does.
  This is how the BasicSR/mmagic Vid4, UDM10, Vimeo-90K-T and REDS4 BIx4 sets were made.
* **BD**: 13x13 Gaussian blur with sigma 1.6 (sampled, normalised, separable),
  then every 4th pixel starting at pixel 0, so LR pixel ``i`` is centred on HR
  pixel ``4i`` (BasicSR ``duf_downsample``, DUF). Borders are replicated: this
  reproduces the Vid4 LR distributed with DUF best (checked on calendar:
  replicate borders give 57.1 dB with truncation and 51.2 dB with rounding,
  reflect-101 48.4 dB). The result is rounded to uint8.
* **realbasicvsr**: the RealBasicVSR second-order degradation on full frames
  (PROTOCOLS.md 1.6), implemented in :mod:`sete_vsr.data.realworld_degradation` and
  imported only when asked for.

:func:`degrade` is the one entry point: ``degrade(frames, "BI" | "BD" | "realbasicvsr", seed)``.
:class:`Downscaling` is a deterministic x4 degradation as a value (BI, or BD with its Gaussian's sigma): what a
network was trained for (``BaselineSpec.degradation``), and what its training and test-time adaptation degrade with.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SeteVSRError
from .imresize import imresize

SCALE = 4


def bi_degrade(frames: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """BI: MATLAB bicubic downsampling with antialiasing.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB high-resolution frames.

    Returns:
        ``(T, ceil(H/scale), ceil(W/scale), 3)`` uint8 frames.
    """
    return imresize(np.asarray(frames, dtype=np.uint8), 1.0 / scale)


def gaussian_kernel_1d(sigma: float = 1.6, size: int = 13) -> np.ndarray:
    """Sampled, normalised 1-D Gaussian of ``size`` taps (the 2-D BD kernel is its outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def bd_degrade(
    frames: np.ndarray, scale: int = SCALE, sigma: float = 1.6, size: int = 13, border: str = "replicate"
) -> np.ndarray:
    """BD: Gaussian blur (``size`` x ``size``, ``sigma``) then subsampling by ``scale``.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        border: ``"replicate"`` (default, matches DUF's distributed Vid4 LR) or
            ``"reflect101"`` (BasicSR's ``F.pad(mode='reflect')``).

    Returns:
        ``(T, ceil(H/scale), ceil(W/scale), 3)`` uint8 frames; pixel ``i`` is the
        blurred HR pixel ``scale*i``.
    """
    from scipy import ndimage

    modes = {"replicate": "nearest", "reflect101": "mirror"}
    if border not in modes:
        raise SeteVSRError(f"unknown BD border {border!r}; use one of {', '.join(modes)}")
    x = np.asarray(frames, dtype=np.float64)
    k = gaussian_kernel_1d(sigma, size)
    x = ndimage.correlate1d(x, k, axis=1, mode=modes[border])
    x = ndimage.correlate1d(x, k, axis=2, mode=modes[border])
    x = x[:, ::scale, ::scale]
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Downscaling:
    """A deterministic x4 degradation: BI (MATLAB bicubic) or BD (``size`` x ``size`` Gaussian blur, ``sigma``).

    Attributes:
        kernel: ``"bicubic"`` (BI) or ``"gaussian"`` (BD).
        sigma: the Gaussian's sigma (BD only; 1.6, the BD of Vimeo-90K and Vid4).
        size: the Gaussian's side in pixels (BD only).

    Calling it maps ``(T, H, W, 3)`` uint8 HR frames to ``(T, ceil(H/4), ceil(W/4), 3)`` uint8 LR frames; the
    optional ``rng`` makes it a dataset degradation ``(frames, rng) -> lr`` and is unused (nothing is random).
    """

    kernel: str = "bicubic"
    sigma: float = 1.6
    size: int = 13

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise SeteVSRError(f"unknown downscaling kernel {self.kernel!r}; use {' or '.join(KERNELS)}")
        if self.kernel == "gaussian" and not (self.sigma > 0 and self.size >= 1 and self.size % 2):
            raise SeteVSRError(f"a Gaussian kernel needs sigma > 0 and an odd size, got {self.sigma}, {self.size}")

    @classmethod
    def parse(cls, text: str) -> Downscaling:
        """A kernel named by the user: ``bicubic`` (BI), ``gaussian`` (BD, sigma 1.6) or ``gaussian:SIGMA``.

        Raises:
            SeteVSRError: any other text.
        """
        kernel, colon, sigma = str(text).strip().lower().partition(":")
        if kernel not in KERNELS or (colon and kernel != "gaussian"):
            raise SeteVSRError(f"unknown kernel {text!r}: use bicubic (BI), gaussian (BD, sigma 1.6) or gaussian:SIGMA")
        if not colon:
            return cls(kernel)
        try:
            return cls(kernel, sigma=float(sigma))
        except ValueError:
            raise SeteVSRError(f"bad Gaussian sigma in {text!r}: expected gaussian:SIGMA, e.g. gaussian:1.6") from None

    @property
    def name(self) -> str:
        """``"BI"``, ``"BD"`` (the standard 13 x 13, sigma 1.6) or ``"BD (sigma S, K x K)"``."""
        if self.kernel == "bicubic":
            return "BI"
        return "BD" if (self.sigma, self.size) == (1.6, 13) else f"BD (sigma {self.sigma:g}, {self.size}x{self.size})"

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if self.kernel == "bicubic":
            return bi_degrade(frames)
        return bd_degrade(frames, sigma=self.sigma, size=self.size)


KERNELS = ("bicubic", "gaussian")
BI = Downscaling("bicubic")
BD = Downscaling("gaussian", sigma=1.6, size=13)


def _realbasicvsr(frames: np.ndarray, seed: int) -> np.ndarray:
    """Lazy hook: the RealBasicVSR degradation lives in its own module."""
    try:
        module = importlib.import_module("sete_vsr.data.realworld_degradation")
    except ImportError as err:
        raise SeteVSRError(f"the realbasicvsr degradation is not available: {err}") from err
    return module.degrade_full_frames(frames, seed=seed, scale=SCALE)


# name -> function(frames, seed) -> LR frames. Names are matched case-insensitively.
DEGRADATIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "bi": lambda frames, seed: bi_degrade(frames),
    "bd": lambda frames, seed: bd_degrade(frames),
    "realbasicvsr": _realbasicvsr,
}

# What each name means, written into results next to the numbers.
DESCRIPTIONS: dict[str, str] = {
    "bi": "BI: MATLAB bicubic imresize 1/4 with antialiasing (uint8 per pass)",
    "bd": "BD: 13x13 Gaussian blur sigma 1.6, replicate borders, sample every 4th pixel from 0",
    "realbasicvsr": (
        "RealBasicVSR second-order degradation (its REDS training parameters, random order of the final "
        "video and resize+sinc groups) on full frames, final size H/4 x W/4, fixed seed per clip; "
        "differs from training (PROTOCOLS.md 1.6): the plain GT is degraded, not its unsharp-masked "
        "copy (no USM, as MGLD-VSR), whole frames instead of 256x256 crops resized to 64x64, "
        "no flips or mirrored sequence, one fixed draw per clip instead of a fresh draw per sample"
    ),
}


def degrade(frames: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """Make x4 low-resolution frames from ``(T, H, W, 3)`` uint8 GT with the degradation ``name``.

    ``seed`` only matters for random degradations (``realbasicvsr``); BI and BD
    are deterministic.
    """
    key = name.lower()
    if key not in DEGRADATIONS:
        raise SeteVSRError(f"unknown degradation {name!r}; available: {', '.join(sorted(DEGRADATIONS))}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise SeteVSRError(f"degrade expects (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    return DEGRADATIONS[key](frames, seed)


def frames_digest(frames: np.ndarray) -> str:
    """A short hex digest of ``frames``' shape, dtype and bytes: equal digests mean equal frames."""
    frames = np.ascontiguousarray(frames)
    digest = hashlib.sha256(f"{frames.shape}{frames.dtype}".encode())
    digest.update(memoryview(frames).cast("B"))
    return digest.hexdigest()[:16]


# The modules whose code makes degraded frames; with the versions of the libraries they call, they key caches.
_SOURCE_FILES = ("degradations.py", "imresize.py", "kernels.py", "realworld_degradation.py")
_LIBRARIES = ("numpy", "scipy", "opencv-python-headless", "av")


def fingerprint(name: str) -> str:
    """A digest of what makes degradation ``name``'s frames: its name, this package's degradation code, library versions.

    Caches of degraded frames are keyed on it, so a change to ``imresize``, a kernel or a noise model is never scored
    on frames the old code made. (It hashes the code rather than an output: the ``realbasicvsr`` degradation is not
    bit-reproducible from call to call, see ``sete_vsr.data.realworld_degradation``.)
    """
    from importlib.metadata import PackageNotFoundError, version

    key = name.lower()
    if key not in DEGRADATIONS:
        raise SeteVSRError(f"unknown degradation {name!r}; available: {', '.join(sorted(DEGRADATIONS))}")
    digest = hashlib.sha256(key.encode())
    for file in _SOURCE_FILES:
        digest.update((Path(__file__).parent / file).read_bytes())
    for library in _LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):
            digest.update(f"{library}=={version(library)}".encode())
    return digest.hexdigest()[:16]
