"""BasicVSR (Chan et al., CVPR 2021): bidirectional recurrent propagation with SPyNet flow alignment."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvResidualBlocks, UpsampleX4Mixin
from .flow_warp import flow_warp
from .spynet import SpyNet


def compute_flows(spynet: SpyNet, lrs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows between neighbouring frames of ``lrs`` ``(N, T, 3, H, W)``.

    Returns:
        ``(flows_forward, flows_backward)``, each ``(N, T-1, 2, H, W)``.
        ``flows_backward[:, i]`` warps frame ``i+1`` onto frame ``i``;
        ``flows_forward[:, i]`` warps frame ``i`` onto frame ``i+1``.
    """
    n, t, c, h, w = lrs.shape
    if h < 64 or w < 64:
        raise ValueError(f"SPyNet flow needs frames of at least 64x64 pixels, got {h}x{w}")
    current = lrs[:, :-1].reshape(-1, c, h, w)
    following = lrs[:, 1:].reshape(-1, c, h, w)
    flows_backward = spynet(current, following).view(n, t - 1, 2, h, w)
    flows_forward = spynet(following, current).view(n, t - 1, 2, h, w)
    return flows_forward, flows_backward


class BasicVSR(UpsampleX4Mixin, nn.Module):
    """BasicVSR x4 (6,291,311 parameters with ``num_feat=64, num_block=30``, SPyNet included).

    Every official checkpoint uses ``num_block=30`` (BasicSR's class default is 15).
    ``forward``: ``(N, T, 3, H, W)`` RGB in [0, 1], ``H, W >= 64`` -> ``(N, T, 3, 4H, 4W)``.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 30):
        super().__init__()
        self.num_feat = num_feat
        self.spynet = SpyNet()
        self.backward_trunk = ConvResidualBlocks(num_feat + 3, num_feat, num_block)
        self.forward_trunk = ConvResidualBlocks(num_feat + 3, num_feat, num_block)
        self.fusion = nn.Conv2d(num_feat * 2, num_feat, 1, 1, 0)
        self._build_upsampler(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _, h, w = x.shape
        flows_forward, flows_backward = compute_flows(self.spynet, x)

        # backward propagation: frame t sees frames t..T-1
        backward_feats: list[torch.Tensor] = [None] * t
        feat_prop = x.new_zeros(n, self.num_feat, h, w)
        for i in range(t - 1, -1, -1):
            if i < t - 1:
                feat_prop = flow_warp(feat_prop, flows_backward[:, i].permute(0, 2, 3, 1))
            feat_prop = self.backward_trunk(torch.cat([x[:, i], feat_prop], dim=1))
            backward_feats[i] = feat_prop

        # forward propagation (frame t sees frames 0..t), fusion and upsampling
        outputs = []
        feat_prop = torch.zeros_like(feat_prop)
        for i in range(t):
            if i > 0:
                feat_prop = flow_warp(feat_prop, flows_forward[:, i - 1].permute(0, 2, 3, 1))
            feat_prop = self.forward_trunk(torch.cat([x[:, i], feat_prop], dim=1))
            fused = self.lrelu(self.fusion(torch.cat([backward_feats[i], feat_prop], dim=1)))
            backward_feats[i] = None  # free it as soon as it is used
            outputs.append(self._upsample(fused, x[:, i]))
        return torch.stack(outputs, dim=1)
