"""SPyNet optical flow (Ranjan & Black, CVPR 2017), as used inside BasicVSR, BasicVSR++ and RealBasicVSR."""

from __future__ import annotations

import math
from os import PathLike

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import SeteVSRError
from .flow_warp import flow_warp


class SpyNetBasicModule(nn.Module):
    """One pyramid level: ``cat[ref, warped supp, flow]`` ``(N, 8, H, W)`` -> flow residual ``(N, 2, H, W)``.

    Keys ``basic_module.{0,2,4,6,8}`` (7x7 convs; ReLUs at the odd indices).
    """

    def __init__(self):
        super().__init__()
        channels = (8, 32, 64, 32, 16, 2)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=7, stride=1, padding=3), nn.ReLU(inplace=True)]
        self.basic_module = nn.Sequential(*layers[:-1])  # no ReLU after the last conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SpyNet(nn.Module):
    """Six-level coarse-to-fine flow estimator (1,440,300 parameters).

    ``forward(ref, supp)`` returns the flow ``(N, 2, H, W)`` (``(dx, dy)`` in pixels)
    that warps ``supp`` onto ``ref``: ``flow_warp(supp, flow.permute(0, 2, 3, 1)) ~ ref``.
    Inputs are RGB in [0, 1]; they are normalised with the ImageNet mean/std buffers.
    """

    num_levels = 6

    def __init__(self):
        super().__init__()
        self.basic_module = nn.ModuleList(SpyNetBasicModule() for _ in range(self.num_levels))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised ``x`` and its 5 average-pooled halvings, coarsest first."""
        levels = [(x - self.mean) / self.std]
        for _ in range(self.num_levels - 1):
            levels.insert(0, F.avg_pool2d(levels[0], kernel_size=2, stride=2, count_include_pad=False))
        return levels

    def _process(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """Flow for ``(N, 3, H, W)`` inputs whose sides are multiples of 32."""
        ref_levels, supp_levels = self._pyramid(ref), self._pyramid(supp)
        flow = ref.new_zeros(ref_levels[0].shape[0], 2, *ref_levels[0].shape[2:])  # zero flow at the coarsest level
        for level, (module, ref_l, supp_l) in enumerate(zip(self.basic_module, ref_levels, supp_levels)):
            if level > 0:  # each level doubles the size, and so the flow vectors
                flow = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
            warped = flow_warp(supp_l, flow.permute(0, 2, 3, 1), padding_mode="border")
            flow = module(torch.cat([ref_l, warped, flow], dim=1)) + flow
        return flow

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """``ref``, ``supp``: ``(N, 3, H, W)`` in [0, 1] -> flow ``(N, 2, H, W)``."""
        h, w = ref.shape[2:]
        h_up, w_up = math.ceil(h / 32) * 32, math.ceil(w / 32) * 32
        ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        flow = F.interpolate(self._process(ref, supp), size=(h, w), mode="bilinear", align_corners=False)
        flow[:, 0] *= w / w_up
        flow[:, 1] *= h / h_up
        return flow


def load_spynet(checkpoint: str | PathLike) -> SpyNet:
    """The SPyNet inside a BasicVSR / BasicVSR++ / RealBasicVSR checkpoint (either layout), strictly loaded, eval mode."""
    from .checkpoints import load_state_dict_strict, read_checkpoint

    state_dict = read_checkpoint(checkpoint)
    prefix = "spynet."
    spynet_state = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not spynet_state:
        raise SeteVSRError(f"{checkpoint} has no SPyNet tensors (no keys starting with {prefix!r})")
    model = SpyNet()
    load_state_dict_strict(model, spynet_state, source=f"SPyNet of {checkpoint}")
    return model.eval()


def flow_backend(checkpoint: str | PathLike, device: str = "cpu", batch_size: int = 4):
    """A flow callable for the temporal metrics: ``flow(src, dst) -> (N, H, W, 2)`` float32 numpy.

    ``src``, ``dst``: ``(N, H, W, 3)`` uint8 RGB; the flow maps ``src`` pixels into ``dst``:
    ``src(x) ~ dst(x + flow(x))`` (SPyNet's ``forward(ref=src, supp=dst)``). Pairs go through in
    batches of ``batch_size`` to bound memory.
    """
    import numpy as np

    model = load_spynet(checkpoint).to(device)

    def to_tensor(frames) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255.0).to(device)

    def flow(src, dst):
        out = []
        with torch.inference_mode():
            for start in range(0, len(src), batch_size):
                stop = start + batch_size
                out.append(model(to_tensor(src[start:stop]), to_tensor(dst[start:stop])).permute(0, 2, 3, 1).cpu())
        return torch.cat(out).numpy().astype(np.float32)

    return flow
