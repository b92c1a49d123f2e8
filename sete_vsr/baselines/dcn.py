"""Modulated deformable convolution (DCNv2) through ``torchvision.ops.deform_conv2d``: no compiled extension.

Offset layout (shared by torchvision, mmcv and BasicSR): ``(N, 2*G*K, H, W)`` with
``G`` deformable groups and ``K = kh*kw`` kernel points, ordered group-major then
kernel point, each point a ``(dy, dx)`` pair; the mask is ``(N, G*K, H, W)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import deform_conv2d


class ModulatedDeformConv2d(nn.Module):
    """The weights of a DCNv2 layer (``weight (C_out, C_in, k, k)``, ``bias``) and its call to torchvision."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1, deformable_groups: int = 1
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.padding = padding
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)

    @property
    def offset_channels(self) -> int:
        """Channels of the offset branch output: ``3 * G * k * k`` (dy/dx halves then mask)."""
        return 3 * self.deformable_groups * self.kernel_size**2

    def _deform_conv(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(offset).all():  # torchvision's kernels index memory with them: fail cleanly
            raise FloatingPointError(f"{type(self).__name__}: non-finite deformable offsets (diverged weights?)")
        return deform_conv2d(x, offset, self.weight, self.bias, stride=1, padding=self.padding, mask=mask)

    @staticmethod
    def _split(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offset-branch output ``(N, 3GK, H, W)`` -> ``(offset (N, 2GK, H, W), raw mask (N, GK, H, W))``."""
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        return torch.cat((o1, o2), dim=1), mask


class DCNv2Pack(ModulatedDeformConv2d):
    """EDVR's deformable alignment: offsets and mask are predicted by ``conv_offset`` from separate features.

    ``forward(x (N, C_in, H, W), feat (N, C_in, H, W)) -> (N, C_out, H, W)``; keys
    ``weight``, ``bias``, ``conv_offset.{weight,bias}`` (``conv_offset`` is zero-initialised,
    so an untrained layer is a plain convolution).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv_offset = nn.Conv2d(self.in_channels, self.offset_channels, self.kernel_size, 1, self.padding)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        offset, mask = self._split(self.conv_offset(feat))
        return self._deform_conv(x, offset, torch.sigmoid(mask))


class SecondOrderDeformableAlignment(ModulatedDeformConv2d):
    """BasicVSR++'s flow-guided second-order deformable alignment (BasicSR ``DCNv2PackFlowGuided``).

    The offsets are residuals (bounded by ``max_residue_magnitude * tanh``) over the
    optical flows: the first half of the deformable groups samples the ``i-1``
    feature around ``flow_1``, the second half the ``i-2`` feature around ``flow_2``.
    Keys ``weight (C, 2C, 3, 3)``, ``bias``, ``conv_offset.{0,2,4,6}``.
    """

    def __init__(self, *args, max_residue_magnitude: float = 10.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_residue_magnitude = max_residue_magnitude
        c = self.out_channels
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * c + 4, c, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(c, c, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(c, c, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(c, self.offset_channels, 3, 1, 1),
        )
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(
        self, x: torch.Tensor, extra_feat: torch.Tensor, flow_1: torch.Tensor, flow_2: torch.Tensor
    ) -> torch.Tensor:
        """Align features.

        Args:
            x: ``(N, 2C, H, W)``, the ``i-1`` and ``i-2`` propagated features (not warped).
            extra_feat: ``(N, 3C, H, W)``, ``cat[warped i-1, current, warped i-2]``.
            flow_1, flow_2: ``(N, 2, H, W)`` flows ``(dx, dy)`` to frames ``i-1`` and ``i-2``.

        Returns:
            ``(N, C, H, W)`` aligned features.
        """
        out = self.conv_offset(torch.cat([extra_feat, flow_1, flow_2], dim=1))
        offset, mask = self._split(out)
        offset_1, offset_2 = torch.chunk(self.max_residue_magnitude * torch.tanh(offset), 2, dim=1)
        # offsets are (dy, dx) pairs, flows are (dx, dy)
        offset_1 = offset_1 + flow_1.flip(1).repeat(1, offset_1.size(1) // 2, 1, 1)
        offset_2 = offset_2 + flow_2.flip(1).repeat(1, offset_2.size(1) // 2, 1, 1)
        return self._deform_conv(x, torch.cat([offset_1, offset_2], dim=1), torch.sigmoid(mask))
