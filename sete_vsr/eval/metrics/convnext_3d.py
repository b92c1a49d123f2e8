"""ConvNeXt-3D tiny (``convnext_3d_tiny``): DOVER's aesthetic backbone.

VQAssessment/DOVER ``dover/models/conv_backbone.py``: stem Conv3d (2,4,4)/(2,4,4), depths
(3,3,9,3), dims (96,192,384,768), depthwise kernels (1|3,7,7) by the inflate pattern
"131", no classifier: the spatial feature map is kept. Parameter names are those of
``DOVER.pth`` below ``aesthetic_backbone.``.
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm(nn.Module):
    """ConvNeXt's LayerNorm (eps 1e-6), channels last or first."""

    def __init__(self, dim, channels_first=False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.channels_first, self.eps = channels_first, 1e-6

    def forward(self, x):
        if not self.channels_first:
            return nn.functional.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        view = (-1,) + (1,) * (x.ndim - 2)
        return self.weight.view(view) * x + self.bias.view(view)


class Block3D(nn.Module):
    """ConvNeXt block, depthwise kernel ``(inflate, 7, 7)``: ``(B, C, T, H, W)`` in and out."""

    def __init__(self, dim, inflate):
        super().__init__()
        self.dwconv = nn.Conv3d(dim, dim, kernel_size=(inflate, 7, 7), padding=(inflate // 2, 3, 3), groups=dim)
        self.norm = LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 4, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 4, 1, 2, 3)


class ConvNeXt3D(nn.Module):
    """``convnext_3d_tiny``: ConvNeXt-T inflated to 3D, spatial feature map out.

    ``(B, 3, T, H, W)`` -> ``(B, 768, T/2, H/32, W/32)``.
    """

    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), inflate="131"):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv3d(3, dims[0], kernel_size=(2, 4, 4), stride=(2, 4, 4)), LayerNorm(dims[0], True))]
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(LayerNorm(dims[i], True), nn.Conv3d(dims[i], dims[i + 1], (1, 2, 2), stride=(1, 2, 2)))
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block3D(dims[i], int(inflate[j % len(inflate)])) for j in range(depths[i])))
            for i in range(4)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
