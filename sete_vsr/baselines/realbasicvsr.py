"""RealBasicVSR (Chan et al., CVPR 2022): an image pre-cleaning module in front of BasicVSR."""

from __future__ import annotations

import torch
from torch import nn

from .basicvsr import BasicVSR
from .blocks import ConvResidualBlocks


class RealBasicVSR(nn.Module):
    """RealBasicVSR x4 (6,294,834 parameters with 64 channels, 20 cleaning and 20 propagation blocks).

    Keys: ``image_cleaning.0.main.*`` and ``image_cleaning.1`` (the cleaning module),
    ``basicvsr.*`` (a :class:`BasicVSR` with BasicSR names; mmagic checkpoints are
    converted on load).

    Args:
        mid_channels: feature channels.
        num_propagation_blocks: residual blocks per BasicVSR propagation branch.
        num_cleaning_blocks: residual blocks of the cleaning module.
        dynamic_refine_thres: cleaning stops once the mean absolute residue (0-255 scale) is below this.
        is_sequential_cleaning: clean one frame at a time (the official inference setting; bounds memory).
    """

    max_cleaning_rounds = 3

    def __init__(
        self,
        mid_channels: int = 64,
        num_propagation_blocks: int = 20,
        num_cleaning_blocks: int = 20,
        dynamic_refine_thres: float = 255.0,
        is_sequential_cleaning: bool = True,
    ):
        super().__init__()
        self.image_cleaning = nn.Sequential(
            ConvResidualBlocks(3, mid_channels, num_cleaning_blocks),
            nn.Conv2d(mid_channels, 3, 3, 1, 1),
        )
        self.basicvsr = BasicVSR(mid_channels, num_propagation_blocks)
        self.dynamic_refine_thres = dynamic_refine_thres / 255.0
        self.is_sequential_cleaning = is_sequential_cleaning

    def clean(self, lqs: torch.Tensor) -> torch.Tensor:
        """Remove degradations: ``(N, T, 3, H, W)`` -> cleaned ``(N, T, 3, H, W)``, up to 3 rounds."""
        n, t, c, h, w = lqs.shape
        for _ in range(self.max_cleaning_rounds):
            if self.is_sequential_cleaning:
                residues = torch.stack([self.image_cleaning(lqs[:, i]) for i in range(t)], dim=1)
            else:
                residues = self.image_cleaning(lqs.reshape(-1, c, h, w)).view(n, t, c, h, w)
            lqs = lqs + residues
            if torch.mean(torch.abs(residues)) < self.dynamic_refine_thres:
                break
        return lqs

    def forward(self, lqs: torch.Tensor) -> torch.Tensor:
        """``(N, T, 3, H, W)`` RGB in [0, 1] -> ``(N, T, 3, 4H, 4W)``."""
        return self.basicvsr(self.clean(lqs))
