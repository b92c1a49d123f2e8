"""Colour correction of super-resolved frames against the upsampled LR input.

Diffusion models drift in colour (tint, contrast) even when their details are right. Both corrections keep the
generated frame's details and take its colour statistics from a reference, the LR frame upsampled x4:

* :func:`wavelet_color_fix`: the low frequencies (what is left after ``levels`` rounds of a dilated 3x3 binomial blur,
  an *a trous* wavelet decomposition) come from the reference, the high frequencies from the generated frame.
* :func:`adain_color_fix`: each channel of the generated frame is shifted and scaled to the reference's per-frame
  mean and standard deviation (adaptive instance normalisation).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ..options import COLOR_FIXES

ColorFix = Literal["wavelet", "adain"]


def _check_pair(frames: torch.Tensor, reference: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape != reference.shape:
        raise ValueError(
            f"frames and reference must be (N, C, H, W) of one shape, got {tuple(frames.shape)} and "
            f"{tuple(reference.shape)}"
        )


def wavelet_low_frequency(x: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """The coarsest band of an *a trous* wavelet decomposition of ``x``.

    Args:
        x: `(N, C, H, W)` float images.
        levels: rounds of the 3x3 binomial blur, with dilation 1, 2, 4, ... (the blur reaches about
            ``2**(levels+1)`` pixels).

    Returns:
        `(N, C, H, W)` low-frequency part; ``x - low`` is the sum of all detail bands.
    """
    channels = x.shape[1]
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (torch.outer(taps, taps) / 16).expand(channels, 1, 3, 3)
    low = x
    for level in range(levels):
        dilation = 2**level
        padded = F.pad(low, (dilation,) * 4, mode="replicate")
        low = F.conv2d(padded, kernel, groups=channels, dilation=dilation)
    return low


def wavelet_color_fix(frames: torch.Tensor, reference: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """High frequencies of ``frames`` plus low frequencies of ``reference``.

    Args:
        frames: `(N, C, H, W)` generated frames (float, any range).
        reference: `(N, C, H, W)` reference frames in the same range (the LR frames upsampled x4).
        levels: decomposition depth (see :func:`wavelet_low_frequency`).

    Returns:
        `(N, C, H, W)` corrected frames, not clamped.
    """
    _check_pair(frames, reference)
    return frames - wavelet_low_frequency(frames, levels) + wavelet_low_frequency(reference, levels)


def adain_color_fix(frames: torch.Tensor, reference: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Match each frame's per-channel mean and standard deviation to its reference frame.

    Args:
        frames: `(N, C, H, W)` generated frames (float).
        reference: `(N, C, H, W)` reference frames (the LR frames upsampled x4).
        eps: added to the standard deviations.

    Returns:
        `(N, C, H, W)` corrected frames, not clamped.
    """
    _check_pair(frames, reference)
    mean = frames.mean(dim=(2, 3), keepdim=True)
    std = frames.std(dim=(2, 3), keepdim=True) + eps
    ref_mean = reference.mean(dim=(2, 3), keepdim=True)
    ref_std = reference.std(dim=(2, 3), keepdim=True) + eps
    return (frames - mean) / std * ref_std + ref_mean


def color_correct(frames: torch.Tensor, reference: torch.Tensor, method: ColorFix) -> torch.Tensor:
    """Apply the colour correction called ``method`` (``"wavelet"`` or ``"adain"``) to `(N, C, H, W)` frames."""
    if method == "wavelet":
        return wavelet_color_fix(frames, reference)
    if method == "adain":
        return adain_color_fix(frames, reference)
    raise ValueError(f"unknown colour correction {method!r}; choose one of {COLOR_FIXES}")
