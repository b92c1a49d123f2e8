"""Building blocks shared by the CNN baselines (names follow BasicSR, so its checkpoints load as they are)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ResidualBlockNoBN(nn.Module):
    """``x + res_scale * conv2(relu(conv1(x)))``, no batch norm; ``(N, C, H, W) -> (N, C, H, W)``."""

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def make_residual_blocks(num_block: int, num_feat: int) -> nn.Sequential:
    """``num_block`` :class:`ResidualBlockNoBN` in a row (keys ``{i}.conv1``, ``{i}.conv2``)."""
    return nn.Sequential(*(ResidualBlockNoBN(num_feat) for _ in range(num_block)))


class ConvResidualBlocks(nn.Module):
    """Conv3x3 ``in -> out``, LeakyReLU(0.1), then ``num_block`` residual blocks.

    BasicSR's ``ConvResidualBlocks`` (mmagic's ``ResidualBlocksWithInputConv``);
    keys ``main.0`` (input conv) and ``main.2.{i}.conv{1,2}``.
    ``(N, in_channels, H, W) -> (N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int = 64, num_block: int = 15):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            make_residual_blocks(num_block, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class UpsampleX4Mixin:
    """The x4 reconstruction tail of BasicVSR, BasicVSR++ and EDVR, for ``nn.Module`` subclasses.

    The checkpoints keep these layers at the top level, so models inherit them rather
    than own a submodule: ``upconv1`` (``num_feat -> 4*num_feat``), ``upconv2``
    (``num_feat -> 256``), ``conv_hr`` (64 -> 64), ``conv_last`` (64 -> 3).
    """

    def _build_upsampler(self, num_feat: int) -> None:
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, 64 * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def _upsample(self, feat: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """``feat (N, num_feat, H, W)`` and the LR frame ``lr (N, 3, H, W)`` -> ``(N, 3, 4H, 4W)``.

        The network predicts a residual over the bilinear x4 upsampling of ``lr``.
        """
        out = self.lrelu(self.pixel_shuffle(self.upconv1(feat)))
        out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.lrelu(self.conv_hr(out))
        out = self.conv_last(out)
        return out + F.interpolate(lr, scale_factor=4, mode="bilinear", align_corners=False)
