"""BasicVSR++ (Chan et al., CVPR 2022): second-order grid propagation with flow-guided deformable alignment."""

from __future__ import annotations

import torch
from torch import nn

from .basicvsr import compute_flows
from .blocks import ConvResidualBlocks, UpsampleX4Mixin
from .dcn import SecondOrderDeformableAlignment
from .flow_warp import flow_warp
from .spynet import SpyNet

PROPAGATION_ORDER = ("backward_1", "forward_1", "backward_2", "forward_2")


class BasicVSRPlusPlus(UpsampleX4Mixin, nn.Module):
    """BasicVSR++ x4 for low-resolution input (7,322,927 parameters with ``mid_channels=64, num_blocks=7``).

    Unlike BasicSR's class, ``deform_align`` always exists (BasicSR drops it when CUDA
    is absent), so official checkpoints load strictly on CPU. The high-resolution-input
    variant (``is_low_res_input=False``) and mmagic's ``cpu_cache`` are left out: long clips
    are bounded by the chunks of :class:`~sete_vsr.baselines.runners.RecurrentBaselineMethod`.
    ``forward``: ``(N, T, 3, H, W)`` RGB in [0, 1], ``H, W >= 64`` -> ``(N, T, 3, 4H, 4W)``.
    """

    def __init__(
        self,
        mid_channels: int = 64,
        num_blocks: int = 7,
        max_residue_magnitude: float = 10.0,
        deformable_groups: int = 16,
    ):
        super().__init__()
        self.mid_channels = mid_channels
        self.spynet = SpyNet()
        self.feat_extract = ConvResidualBlocks(3, mid_channels, 5)
        self.deform_align = nn.ModuleDict()
        self.backbone = nn.ModuleDict()
        for i, name in enumerate(PROPAGATION_ORDER):
            self.deform_align[name] = SecondOrderDeformableAlignment(
                2 * mid_channels,
                mid_channels,
                3,
                padding=1,
                deformable_groups=deformable_groups,
                max_residue_magnitude=max_residue_magnitude,
            )
            # input: current spatial feature, the branches propagated before, this branch
            self.backbone[name] = ConvResidualBlocks((2 + i) * mid_channels, mid_channels, num_blocks)
        self.reconstruction = ConvResidualBlocks(5 * mid_channels, mid_channels, 5)
        self._build_upsampler(mid_channels)

    def _propagate(self, feats: dict[str, list[torch.Tensor]], flows: torch.Tensor, name: str) -> None:
        """Run propagation branch ``name`` and store its per-frame features in ``feats[name]`` (time order).

        Args:
            feats: ``"spatial"`` and the branches already run, each a list of ``T`` ``(N, C, H, W)``.
            flows: ``(N, T-1, 2, H, W)``, backward flows for backward branches, forward flows otherwise.
            name: one of :data:`PROPAGATION_ORDER`.
        """
        t = len(feats["spatial"])
        backward = name.startswith("backward")
        frame_order = range(t - 1, -1, -1) if backward else range(t)
        # flow index that brings the previous frame (in propagation order) onto frame idx
        flow_index = (lambda idx: idx) if backward else (lambda idx: idx - 1)
        others = [key for key in feats if key not in ("spatial", name)]

        outputs: list[torch.Tensor] = []
        feat_prop = flows.new_zeros(flows.size(0), self.mid_channels, *flows.shape[3:])
        for i, idx in enumerate(frame_order):
            feat_current = feats["spatial"][idx]
            if i > 0:
                flow_n1 = flows[:, flow_index(idx)]
                cond_n1 = flow_warp(feat_prop, flow_n1.permute(0, 2, 3, 1))
                feat_n2 = torch.zeros_like(feat_prop)
                flow_n2 = torch.zeros_like(flow_n1)
                cond_n2 = torch.zeros_like(cond_n1)
                if i > 1:  # second order: the frame two steps back, through the composed flow
                    feat_n2 = outputs[-2]
                    flow_n2 = flows[:, flow_index(frame_order[i - 1])]
                    flow_n2 = flow_n1 + flow_warp(flow_n2, flow_n1.permute(0, 2, 3, 1))
                    cond_n2 = flow_warp(feat_n2, flow_n2.permute(0, 2, 3, 1))
                cond = torch.cat([cond_n1, feat_current, cond_n2], dim=1)
                feat_prop = self.deform_align[name](torch.cat([feat_prop, feat_n2], dim=1), cond, flow_n1, flow_n2)
            feat = torch.cat([feat_current, *(feats[key][idx] for key in others), feat_prop], dim=1)
            feat_prop = feat_prop + self.backbone[name](feat)
            outputs.append(feat_prop)
        feats[name] = outputs[::-1] if backward else outputs

    def forward(self, lqs: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = lqs.shape
        spatial = self.feat_extract(lqs.reshape(-1, c, h, w)).view(n, t, -1, h, w)
        feats: dict[str, list[torch.Tensor]] = {"spatial": list(spatial.unbind(1))}
        flows_forward, flows_backward = compute_flows(self.spynet, lqs)
        for name in PROPAGATION_ORDER:
            self._propagate(feats, flows_backward if name.startswith("backward") else flows_forward, name)

        outputs = []
        for i in range(t):
            hr = torch.cat([feats[key][i] for key in ("spatial", *PROPAGATION_ORDER)], dim=1)
            outputs.append(self._upsample(self.reconstruction(hr), lqs[:, i]))
        return torch.stack(outputs, dim=1)
