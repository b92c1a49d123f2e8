"""SEEM, the SAM-guided refinement module (Lu et al., "Can SAM Boost Video Super-Resolution?", Sec. 3.3).

``f_seem(F, R_sam)``: ``concat(F, R_sam)`` -> two convolutions -> ``F_m``; a channel attention block
(Eq. 2: GAP, down FC, up FC, sigmoid) gives ``F_a`` and ``F_cab = F_a * F_m`` (Eq. 3); the semantic-aware
feature is ``F_sem = F_m + F_cab``. Wherever the paper inserts SEEM (Eq. 8, 9, 13, 14) its output is added
to the feature as a residual, ``F + f_seem(F, R_sam)``, which is what :meth:`SEEM.forward` returns.

The second convolution (the last layer before the attention) starts at zero, so ``F_m = 0``,
``F_sem = 0`` and a model with SEEM inserted is exactly the base model until it is trained.

Efficient tuning (Sec. 3.4.2, Table 2) trains only the new modules, SEEM and the feature combination
network ``f_r``: :func:`seem_parameters` lists them and :func:`freeze_all_but_seem` freezes the rest.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .sam_prior import FeatureCombination

__all__ = ["SEEM", "ChannelAttention", "freeze_all_but_seem", "seem_parameters"]


class ChannelAttention(nn.Module):
    """Channel attention weights ``F_a`` of Eq. 2 (RCAN's channel attention, the paper's ref. [68]).

    ``F_p = GAP(F_m)``, ``F_d = FC_D(F_p)`` (``D -> D/r``, ReLU as in RCAN), ``F_u = FC_U(F_d)``
    (``D/r -> D``), ``F_a = sigmoid(F_u)``. The fully connected layers act on ``(B, D, 1, 1)``.

    Shapes: ``(B, D, H, W)`` -> ``(B, D, 1, 1)`` in (0, 1).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc_down = nn.Linear(channels, hidden)
        self.fc_up = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        weights = torch.sigmoid(self.fc_up(torch.relu(self.fc_down(pooled))))
        return weights[:, :, None, None]


class SEEM(nn.Module):
    """SAM-guided refinement module ``f_seem`` (Sec. 3.3, Eq. 2-3, Figure 3), used as a residual.

    Args:
        channels: ``D``, channels of the feature ``F`` it refines (and of ``F_sem``).
        sam_channels: channels of ``R_sam`` (the output of :class:`~sete_vsr.plugins.sam_prior.FeatureCombination`).
        reduction: ``r`` of the channel attention (16 as in RCAN).

    Shapes: ``feature (B, D, H, W)``, ``r_sam (B, sam_channels, H, W)`` -> ``(B, D, H, W)``.
    """

    def __init__(self, channels: int, sam_channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels + sam_channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.attention = ChannelAttention(channels, reduction)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def semantic_feature(self, feature: torch.Tensor, r_sam: torch.Tensor) -> torch.Tensor:
        """``F_sem = F_m + F_a * F_m`` (Eq. 2-3) with ``F_m = conv2(lrelu(conv1(concat(F, R_sam))))``."""
        if feature.shape[-2:] != r_sam.shape[-2:]:
            raise ValueError(f"SEEM: feature {tuple(feature.shape)} and R_sam {tuple(r_sam.shape)} differ in size")
        f_m = self.conv2(self.act(self.conv1(torch.cat([feature, r_sam], dim=1))))
        return f_m + self.attention(f_m) * f_m

    def forward(self, feature: torch.Tensor, r_sam: torch.Tensor) -> torch.Tensor:
        """``F + f_seem(F, R_sam)``, the residual use of Eq. 8, 9, 13 and 14."""
        return feature + self.semantic_feature(feature, r_sam)


def _seem_modules(model: nn.Module) -> Iterator[nn.Module]:
    for module in model.modules():
        if isinstance(module, (SEEM, FeatureCombination)):
            yield module


def seem_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every SEEM and ``f_r`` (:class:`FeatureCombination`) inside ``model``."""
    ids = {id(p) for module in _seem_modules(model) for p in module.parameters()}
    return [(name, p) for name, p in model.named_parameters() if id(p) in ids]


def freeze_all_but_seem(model: nn.Module) -> list[str]:
    """Efficient tuning: only SEEM and ``f_r`` stay trainable. Returns the names of the trainable parameters."""
    trainable = dict(seem_parameters(model))
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable)
    return list(trainable)
