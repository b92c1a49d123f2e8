"""Warping by optical flow, as BasicSR's ``flow_warp`` and mmagic's ``flow_warp`` do it."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def flow_warp(
    x: torch.Tensor,
    flow: torch.Tensor,
    interp_mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = True,
) -> torch.Tensor:
    """Sample ``x`` at ``pixel + flow``.

    Args:
        x: ``(N, C, H, W)`` features or images.
        flow: ``(N, H, W, 2)`` displacement in pixels, ``(dx, dy)`` in the last dim.
        interp_mode: ``grid_sample`` mode.
        padding_mode: ``"zeros"`` (the VSR networks) or ``"border"`` (inside SPyNet).
        align_corners: grid normalisation; ``True`` maps pixel 0 to -1 and pixel W-1 to +1.

    Returns:
        ``(N, C, H, W)`` warped ``x``.
    """
    _, _, h, w = x.shape
    if flow.shape[1:3] != (h, w):
        raise ValueError(f"flow of shape {tuple(flow.shape)} does not match features of size {(h, w)}")
    grid_y, grid_x = torch.meshgrid(
        torch.arange(0, h, dtype=x.dtype, device=x.device),
        torch.arange(0, w, dtype=x.dtype, device=x.device),
        indexing="ij",
    )
    grid = torch.stack((grid_x, grid_y), dim=2) + flow  # (N, H, W, 2), pixel coordinates
    grid_x = 2.0 * grid[..., 0] / max(w - 1, 1) - 1.0
    grid_y = 2.0 * grid[..., 1] / max(h - 1, 1) - 1.0
    return F.grid_sample(
        x,
        torch.stack((grid_x, grid_y), dim=3),
        mode=interp_mode,
        padding_mode=padding_mode,
        align_corners=align_corners,
    )
