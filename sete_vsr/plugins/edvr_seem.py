"""EDVR + SEEM (Lu et al., "Can SAM Boost Video Super-Resolution?", Sec. 3.4.2, Eq. 8-9).

* Alignment (Eq. 8): ``Theta = f_dam(F_{t+i}, f_seem(F_t, R_sam) + F_t)``: the reference frame's feature
  that drives the offsets is made semantic-aware. In EDVR's PCD module the reference feature enters the
  offset convolutions at three pyramid levels (full, 1/2 and 1/4 size) and in the cascading step (full
  size); each level's reference feature is refined by its own SEEM, so every ``f_dam`` sees a
  semantic-aware reference. ``R_sam`` is made at the full size and average-pooled x2 and x4 for levels 2
  and 3 (the paper does not say how ``R_sam`` reaches the smaller levels).
* Fusion and reconstruction (Eq. 9): ``F_rec = f_rec(f_seem(F_fuse, R_sam) + F_fuse)`` and
  ``F'_rec = f_seem(F_rec, R_sam) + F_rec``, which goes to the upsampler.

``R_sam = f_r(concat(I_t, M_sam))`` (Eq. 1) is computed for the reference (centre) frame only, the one
EDVR restores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..baselines.edvr import EDVR
from .sam_prior import FeatureCombination
from .seem import SEEM

__all__ = ["EDVRSEEM"]

_NEW_PREFIXES = ("sam_fr.", "seem_align.", "seem_fusion.", "seem_reconstruction.")


class EDVRSEEM(EDVR):
    """EDVR with SEEM in alignment, fusion and reconstruction; equal to EDVR at init.

    Args:
        num_masks: channels of the SAM mask prior ``M_sam`` (64 in the paper).
        sam_channels: channels of ``R_sam``.
        **edvr_kwargs: as :class:`~sete_vsr.baselines.edvr.EDVR`.

    ``forward``: ``x (N, T, 3, H, W)`` RGB in [0, 1] (``H, W`` multiples of 4) and the centre frame's
    ``masks (N, num_masks, H, W)`` in {0, 1} -> ``(N, 3, 4H, 4W)``.
    """

    def __init__(self, num_feat: int = 64, num_masks: int = 64, sam_channels: int = 64, **edvr_kwargs) -> None:
        super().__init__(num_feat=num_feat, **edvr_kwargs)
        self.sam_fr = FeatureCombination(num_masks, sam_channels)
        # Eq. 8, one per pyramid level of the reference feature: "l1" (full size), "l2" (1/2), "l3" (1/4)
        self.seem_align = nn.ModuleDict({level: SEEM(num_feat, sam_channels) for level in ("l1", "l2", "l3")})
        self.seem_fusion = SEEM(num_feat, sam_channels)  # Eq. 9, before f_rec
        self.seem_reconstruction = SEEM(num_feat, sam_channels)  # Eq. 9, after f_rec

    @classmethod
    def from_edvr(cls, base: EDVR, **kwargs) -> EDVRSEEM:
        """An EDVR + SEEM carrying ``base``'s weights (e.g. an official checkpoint); SEEM starts at zero."""
        model = cls(
            num_feat=base.conv_first.out_channels,
            num_frame=base.num_frame,
            deformable_groups=base.pcd_align.dcn_pack["l1"].deformable_groups,
            num_extract_block=len(base.feature_extraction),
            num_reconstruct_block=len(base.reconstruction),
            center_frame_idx=base.center_frame_idx,
            with_tsa=base.with_tsa,
            **kwargs,
        )
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        new = {name for name in model.state_dict() if name.startswith(_NEW_PREFIXES)}
        if unexpected or set(missing) != new:
            raise ValueError(f"not an EDVR state dict: missing {sorted(set(missing) - new)}, unexpected {unexpected}")
        return model.to(next(base.parameters()).device)

    def forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = x.shape
        if h % 4 or w % 4:
            raise ValueError(f"EDVR needs frame sides that are multiples of 4, got {h}x{w}")
        if t != self.num_frame:
            raise ValueError(f"EDVR was built for {self.num_frame} frames, got {t}")
        centre = x[:, self.center_frame_idx]
        r_sam = self.sam_fr(centre, masks)

        feat_l1 = self.feature_extraction(self.lrelu(self.conv_first(x.reshape(-1, c, h, w))))
        feat_l2 = self.lrelu(self.conv_l2_2(self.lrelu(self.conv_l2_1(feat_l1))))
        feat_l3 = self.lrelu(self.conv_l3_2(self.lrelu(self.conv_l3_1(feat_l2))))
        pyramid = [f.view(n, t, *f.shape[1:]) for f in (feat_l1, feat_l2, feat_l3)]

        ref_feats = [
            self.seem_align[f"l{k + 1}"](level[:, self.center_frame_idx], F.avg_pool2d(r_sam, 2**k) if k else r_sam)
            for k, level in enumerate(pyramid)
        ]  # Eq. 8 at each level: (N, C, H / 2^k, W / 2^k)
        aligned = torch.stack([self.pcd_align([level[:, i] for level in pyramid], ref_feats) for i in range(t)], dim=1)
        feat = self.fusion(aligned) if self.with_tsa else self.fusion(aligned.view(n, -1, h, w))
        feat = self.reconstruction(self.seem_fusion(feat, r_sam))
        return self._upsample(self.seem_reconstruction(feat, r_sam), centre)
