"""LPIPS (AlexNet, v0.1) and DISTS, own PyTorch implementations on torchvision backbones.

Neither metric ships its ImageNet backbone; both are looked up offline through
:mod:`sete_vsr.weight_dirs` and report ``skipped: weights unavailable (...)``
when absent.

LPIPS (Zhang et al. 2018, v0.1, AlexNet), the convention of pyiqa ``lpips`` and
torchmetrics with ``normalize=True``:

* RGB in [0, 1] mapped to [-1, 1], then the LPIPS scaling layer
  (shift ``(-0.030, -0.088, -0.188)``, scale ``(0.458, 0.448, 0.450)``);
* AlexNet ``features`` cut after relu1..relu5; each map is unit-normalised over
  channels (eps 1e-10), squared differences weighted by the 1x1 linear heads
  ``lin0..lin4`` of ``lpips/v0.1/alex.pth``, averaged over space, summed over
  layers. Backbone: torchvision ``alexnet-owt-7be5be79.pth``. Lower is better.

DISTS (Ding et al. 2020): VGG16 with L2 pooling (3x3 Hann window, stride 2)
instead of max pooling, ImageNet mean/std, the image itself plus
relu1_2/2_2/3_3/4_3/5_3; structure and texture similarities weighted by the
learnt alpha/beta of ``DISTS_weights-f5e65c96.pth`` (pyiqa) or ``weights.pt``
(DISTS_pytorch); no resize. Backbone: torchvision ``vgg16-397923af.pth``.
Lower is better.
"""

from __future__ import annotations

import numpy as np

from ...weight_dirs import find_weight
from .base import Metric, MetricInfo, MetricOptions, check_frames

ALEXNET_FILES = ("alexnet-owt-7be5be79.pth", "torchvision/alexnet-owt-7be5be79.pth")
LPIPS_HEAD_FILES = ("lpips/v0.1/alex.pth", "v0.1/alex.pth", "LPIPS_v0.1_alex-df73285e.pth")
VGG16_FILES = ("vgg16-397923af.pth", "torchvision/vgg16-397923af.pth")
DISTS_FILES = ("DISTS_weights-f5e65c96.pth", "dists/weights.pt", "dists_weights.pt")


def _frames_to_tensor(frames: np.ndarray, device):
    """``(T, H, W, 3)`` uint8 -> ``(T, 3, H, W)`` float32 in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.0


def _load_state(path):
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("params", state.get("state_dict", state)) if isinstance(state, dict) else state


def build_lpips_net(backbone_path, head_path):
    """The LPIPS AlexNet module: ``net(x, y)`` with ``(N, 3, H, W)`` in [0, 1] -> ``(N,)`` distances."""
    import torch
    from torch import nn
    from torchvision.models import alexnet

    features = alexnet(weights=None).features
    state = {k[len("features.") :]: v for k, v in _load_state(backbone_path).items() if k.startswith("features.")}
    features.load_state_dict(state)
    heads = _load_state(head_path)

    class LPIPSAlex(nn.Module):
        def __init__(self):
            super().__init__()
            self.slices = nn.ModuleList(features[a:b] for a, b in ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)))
            self.heads = nn.ParameterList(nn.Parameter(heads[f"lin{i}.model.1.weight"], requires_grad=False) for i in range(5))
            self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

        def forward(self, x, y):
            x, y = (x * 2 - 1 - self.shift) / self.scale, (y * 2 - 1 - self.shift) / self.scale
            total = 0
            for block, head in zip(self.slices, self.heads):
                x, y = block(x), block(y)
                nx = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                ny = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + nn.functional.conv2d((nx - ny) ** 2, head).mean(dim=(2, 3))
            return total.flatten()

    return LPIPSAlex().eval().requires_grad_(False)


def build_dists_net(backbone_path, dists_path):
    """The DISTS module: ``net(x, y)`` with ``(N, 3, H, W)`` in [0, 1] -> ``(N,)`` distances."""
    import torch
    from torch import nn
    from torchvision.models import vgg16

    features = vgg16(weights=None).features
    state = {k[len("features.") :]: v for k, v in _load_state(backbone_path).items() if k.startswith("features.")}
    features.load_state_dict(state)
    ab = _load_state(dists_path)

    class L2Pool(nn.Module):
        def __init__(self, channels):
            super().__init__()
            a = torch.tensor([0.5, 1.0, 0.5])
            g = a[:, None] * a[None]
            self.register_buffer("filt", (g / g.sum()).expand(channels, 1, 3, 3).contiguous())

        def forward(self, x):
            out = nn.functional.conv2d(x * x, self.filt, stride=2, padding=1, groups=x.shape[1])
            return (out + 1e-12).sqrt()

    class DISTS(nn.Module):
        channels = (3, 64, 128, 256, 512, 512)

        def __init__(self):
            super().__init__()
            cuts = ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30))
            pools = [nn.Identity()] + [L2Pool(c) for c in (64, 128, 256, 512)]
            self.stages = nn.ModuleList(nn.Sequential(p, features[a:b]) for p, (a, b) in zip(pools, cuts))
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
            alpha, beta = ab["alpha"].reshape(1, -1, 1, 1), ab["beta"].reshape(1, -1, 1, 1)
            total = alpha.sum() + beta.sum()
            self.register_buffer("alpha", alpha / total)
            self.register_buffer("beta", beta / total)

        def feats(self, x):
            out, h = [x], (x - self.mean) / self.std
            for stage in self.stages:
                h = stage(h)
                out.append(h)
            return out

        def forward(self, x, y):
            fx, fy = self.feats(x), self.feats(y)
            alphas = torch.split(self.alpha, self.channels, dim=1)
            betas = torch.split(self.beta, self.channels, dim=1)
            dist = 0
            for a, b, u, v in zip(alphas, betas, fx, fy):
                mu_u, mu_v = u.mean((2, 3), keepdim=True), v.mean((2, 3), keepdim=True)
                s1 = (2 * mu_u * mu_v + 1e-6) / (mu_u**2 + mu_v**2 + 1e-6)
                var_u, var_v = ((u - mu_u) ** 2).mean((2, 3), keepdim=True), ((v - mu_v) ** 2).mean((2, 3), keepdim=True)
                cov = (u * v).mean((2, 3), keepdim=True) - mu_u * mu_v
                s2 = (2 * cov + 1e-6) / (var_u + var_v + 1e-6)
                dist = dist + (a * s1).sum(1) + (b * s2).sum(1)
            return (1 - dist).flatten()

    return DISTS().eval().requires_grad_(False)


class PairwiseDeepMetric(Metric):
    """Run a two-input network on frame pairs in small batches (shared by LPIPS, DISTS, tLP)."""

    batch = 4

    def __init__(self, net, device="cpu"):
        import torch

        self.device = torch.device(device)
        self.net = net.to(self.device)

    def distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(N,)`` distances between ``(N, H, W, 3)`` uint8 frames ``a[i]`` and ``b[i]``."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(a), self.batch):
                x = _frames_to_tensor(a[i : i + self.batch], self.device)
                y = _frames_to_tensor(b[i : i + self.batch], self.device)
                out.append(self.net(x, y).double().cpu().numpy())
        return np.concatenate(out)

    def compute(self, output, gt=None):
        if gt is None:
            raise ValueError(f"{self.info.name} needs ground truth")
        return self.distances(check_frames(output, "output"), check_frames(gt, "gt"))


class LPIPS(PairwiseDeepMetric):
    """LPIPS AlexNet v0.1 per frame against GT (see module docstring)."""

    def __init__(self, options: MetricOptions = MetricOptions()):
        backbone, head = find_weight(*ALEXNET_FILES), find_weight(*LPIPS_HEAD_FILES)
        super().__init__(build_lpips_net(backbone, head), options.device)
        self.info = MetricInfo(
            name="lpips",
            label="LPIPS",
            higher_is_better=False,
            kind="full-reference",
            scope="frame",
            convention="RGB [0,1] -> [-1,1], full frame, no crop",
            implementation=f"sete_vsr own LPIPS v0.1 AlexNet ({backbone.name} + {head.name})",
            needs_gt=True,
        )


class DISTSMetric(PairwiseDeepMetric):
    """DISTS per frame against GT (see module docstring)."""

    def __init__(self, options: MetricOptions = MetricOptions()):
        backbone, weights = find_weight(*VGG16_FILES), find_weight(*DISTS_FILES)
        super().__init__(build_dists_net(backbone, weights), options.device)
        self.info = MetricInfo(
            name="dists",
            label="DISTS",
            higher_is_better=False,
            kind="full-reference",
            scope="frame",
            convention="RGB [0,1], ImageNet normalisation, full frame, no resize",
            implementation=f"sete_vsr own DISTS ({backbone.name} + {weights.name})",
            needs_gt=True,
        )
