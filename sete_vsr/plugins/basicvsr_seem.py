"""BasicVSR + SEEM (Lu et al., "Can SAM Boost Video Super-Resolution?", Sec. 3.5.2, Eq. 12-14).

In each branch BasicVSR's propagation trunk is ``Ref(psi(I_t, h^_t))`` (Eq. 12): ``psi`` is the trunk's
input convolution with its LeakyReLU, ``Ref`` its residual blocks. SEEM enters twice per branch:

* Eq. 13: ``h~_t = Ref(f_seem(psi(I_t, h^_t), R_sam) + psi(I_t, h^_t))``, the refinement of the warped feature;
* Eq. 14: ``h~'_t = f_seem(h~_t, R_sam) + h~_t``, the enhancement before reconstruction.

``h~_t`` is the hidden state carried to the next time step and ``h~'_t`` is what the fusion and the
upsampler see (Eq. 14 "before reconstruction"; the paper does not say whether ``h~'`` is propagated).
``R_sam = f_r(concat(I_t, M_sam))`` (Eq. 1) comes from one shared feature combination network.
"""

from __future__ import annotations

import torch
from torch import nn

from ..baselines.basicvsr import BasicVSR, compute_flows
from ..baselines.flow_warp import flow_warp
from .sam_prior import FeatureCombination
from .seem import SEEM

__all__ = ["BasicVSRSEEM"]

BRANCHES = ("backward", "forward")


class BasicVSRSEEM(BasicVSR):
    """BasicVSR with SEEM in the backward and/or forward branch; equal to BasicVSR at init.

    Args:
        num_feat, num_block: as :class:`~sete_vsr.baselines.basicvsr.BasicVSR`.
        num_masks: channels of the SAM mask prior ``M_sam`` (64 in the paper).
        sam_channels: channels of ``R_sam``.
        branches: where SEEM goes (the paper's Table 6 ablation); both by default.

    ``forward``: ``x (N, T, 3, H, W)`` RGB in [0, 1] (``H, W >= 64``) and ``masks (N, T, num_masks, H, W)``
    in {0, 1} (from :mod:`sete_vsr.plugins.sam_prior`) -> ``(N, T, 3, 4H, 4W)``.
    """

    def __init__(
        self,
        num_feat: int = 64,
        num_block: int = 30,
        num_masks: int = 64,
        sam_channels: int = 64,
        branches: tuple[str, ...] = BRANCHES,
    ) -> None:
        super().__init__(num_feat, num_block)
        if not set(branches) <= set(BRANCHES) or not branches:
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {branches}")
        self.sam_fr = FeatureCombination(num_masks, sam_channels)
        # "<branch>_warp": Eq. 13, "<branch>_out": Eq. 14
        self.seem = nn.ModuleDict(
            {f"{b}_{place}": SEEM(num_feat, sam_channels) for b in branches for place in ("warp", "out")}
        )

    @classmethod
    def from_basicvsr(cls, base: BasicVSR, **kwargs) -> BasicVSRSEEM:
        """A BasicVSR + SEEM carrying ``base``'s weights (e.g. an official checkpoint); SEEM starts at zero."""
        model = cls(base.num_feat, len(base.forward_trunk.main[2]), **kwargs)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        new = {name for name in model.state_dict() if name.startswith(("sam_fr.", "seem."))}
        if unexpected or set(missing) != new:
            raise ValueError(
                f"not a BasicVSR state dict: missing {sorted(set(missing) - new)}, unexpected {unexpected}"
            )
        return model.to(next(base.parameters()).device)

    def _step(
        self, branch: str, frame: torch.Tensor, warped: torch.Tensor, r_sam: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One propagation step: ``(hidden state h~_t, reconstruction feature h~'_t)``, both ``(N, C, H, W)``."""
        trunk = self.backward_trunk if branch == "backward" else self.forward_trunk
        psi = trunk.main[1](trunk.main[0](torch.cat([frame, warped], dim=1)))
        if f"{branch}_warp" not in self.seem:
            hidden = trunk.main[2](psi)
            return hidden, hidden
        hidden = trunk.main[2](self.seem[f"{branch}_warp"](psi, r_sam))
        return hidden, self.seem[f"{branch}_out"](hidden, r_sam)

    def forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = x.shape
        r_sam = self.sam_fr(x.reshape(-1, c, h, w), masks.reshape(n * t, -1, h, w)).view(n, t, -1, h, w)
        flows_forward, flows_backward = compute_flows(self.spynet, x)

        backward_feats: list[torch.Tensor | None] = [None] * t
        feat_prop = x.new_zeros(n, self.num_feat, h, w)
        for i in range(t - 1, -1, -1):
            if i < t - 1:
                feat_prop = flow_warp(feat_prop, flows_backward[:, i].permute(0, 2, 3, 1))
            feat_prop, backward_feats[i] = self._step("backward", x[:, i], feat_prop, r_sam[:, i])

        outputs = []
        feat_prop = torch.zeros_like(feat_prop)
        for i in range(t):
            if i > 0:
                feat_prop = flow_warp(feat_prop, flows_forward[:, i - 1].permute(0, 2, 3, 1))
            feat_prop, feat_out = self._step("forward", x[:, i], feat_prop, r_sam[:, i])
            fused = self.lrelu(self.fusion(torch.cat([backward_feats[i], feat_out], dim=1)))
            backward_feats[i] = None
            outputs.append(self._upsample(fused, x[:, i]))
        return torch.stack(outputs, dim=1)
