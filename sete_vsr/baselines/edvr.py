"""EDVR (Wang et al., CVPRW 2019): pyramid/cascading/deformable (PCD) alignment and TSA fusion, x4."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import UpsampleX4Mixin, make_residual_blocks
from .dcn import DCNv2Pack


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PCDAlignment(nn.Module):
    """Align a neighbour's 3-level feature pyramid to the reference frame's.

    Levels ``l1`` (full size), ``l2`` (1/2), ``l3`` (1/4). At each level, from ``l3``
    to ``l1``, offset features are computed from ``cat[neighbour, reference]`` (plus the
    x2-upsampled, x2-scaled offset features of the coarser level) and drive a
    :class:`DCNv2Pack`; a final cascading DCN refines the ``l1`` result.
    """

    levels = ("l3", "l2", "l1")

    def __init__(self, num_feat: int = 64, deformable_groups: int = 8):
        super().__init__()
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        for level in self.levels:
            coarsest = level == "l3"
            self.offset_conv1[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
            self.offset_conv2[level] = nn.Conv2d(num_feat if coarsest else num_feat * 2, num_feat, 3, 1, 1)
            if not coarsest:
                self.offset_conv3[level] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
                self.feat_conv[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
            self.dcn_pack[level] = DCNv2Pack(num_feat, num_feat, 3, padding=1, deformable_groups=deformable_groups)
        self.cas_offset_conv1 = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.cas_offset_conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.cas_dcnpack = DCNv2Pack(num_feat, num_feat, 3, padding=1, deformable_groups=deformable_groups)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, nbr_feats: list[torch.Tensor], ref_feats: list[torch.Tensor]) -> torch.Tensor:
        """Align one neighbour: pyramids ``[l1 (N, C, H, W), l2 (N, C, H/2, W/2), l3 (N, C, H/4, W/4)]`` -> ``(N, C, H, W)``."""
        up_offset = up_feat = None
        for level in self.levels:
            k = int(level[1]) - 1
            offset = self.lrelu(self.offset_conv1[level](torch.cat([nbr_feats[k], ref_feats[k]], dim=1)))
            if up_offset is None:
                offset = self.lrelu(self.offset_conv2[level](offset))
            else:
                offset = self.lrelu(self.offset_conv2[level](torch.cat([offset, up_offset], dim=1)))
                offset = self.lrelu(self.offset_conv3[level](offset))
            feat = self.dcn_pack[level](nbr_feats[k], offset)
            if up_feat is not None:
                feat = self.feat_conv[level](torch.cat([feat, up_feat], dim=1))
            if level != "l1":
                feat = self.lrelu(feat)
                up_offset = _upsample2x(offset) * 2  # offsets double with the resolution
                up_feat = _upsample2x(feat)
        offset = self.lrelu(self.cas_offset_conv1(torch.cat([feat, ref_feats[0]], dim=1)))
        offset = self.lrelu(self.cas_offset_conv2(offset))
        return self.lrelu(self.cas_dcnpack(feat, offset))


class TSAFusion(nn.Module):
    """Temporal-spatial attention fusion of the aligned features ``(N, T, C, H, W)`` -> ``(N, C, H, W)``.

    Temporal: each frame is weighted per pixel by ``sigmoid(<embedding, centre embedding>)``.
    Spatial: a two-level max/avg-pooling pyramid gives a multiplicative and an additive
    attention map (``H`` and ``W`` must be multiples of 4).
    """

    def __init__(self, num_feat: int = 64, num_frame: int = 5, center_frame_idx: int = 2):
        super().__init__()
        self.center_frame_idx = center_frame_idx
        self.temporal_attn1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.temporal_attn2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.feat_fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)
        self.max_pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avg_pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.spatial_attn1 = nn.Conv2d(num_frame * num_feat, num_feat, 1)
        self.spatial_attn2 = nn.Conv2d(num_feat * 2, num_feat, 1)
        self.spatial_attn3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn4 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn5 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn_l1 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn_l2 = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.spatial_attn_l3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn_add1 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn_add2 = nn.Conv2d(num_feat, num_feat, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``cat[maxpool, avgpool]`` ``(N, 2C, H/2, W/2)``."""
        return torch.cat([self.max_pool(x), self.avg_pool(x)], dim=1)

    def forward(self, aligned_feat: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = aligned_feat.shape
        # temporal attention
        embedding_ref = self.temporal_attn1(aligned_feat[:, self.center_frame_idx])
        embedding = self.temporal_attn2(aligned_feat.reshape(-1, c, h, w)).view(n, t, -1, h, w)
        corr_prob = torch.sigmoid(torch.sum(embedding * embedding_ref.unsqueeze(1), dim=2))  # (N, T, H, W)
        aligned_feat = (aligned_feat * corr_prob.unsqueeze(2)).view(n, t * c, h, w)

        feat = self.lrelu(self.feat_fusion(aligned_feat))

        # spatial attention
        attn = self.lrelu(self.spatial_attn1(aligned_feat))
        attn = self.lrelu(self.spatial_attn2(self._pool(attn)))
        attn_level = self.lrelu(self.spatial_attn_l1(attn))
        attn_level = self.lrelu(self.spatial_attn_l2(self._pool(attn_level)))
        attn_level = self.lrelu(self.spatial_attn_l3(attn_level))
        attn = self.lrelu(self.spatial_attn3(attn)) + _upsample2x(attn_level)
        attn = self.lrelu(self.spatial_attn4(attn))
        attn = self.spatial_attn5(_upsample2x(attn))
        attn_add = self.spatial_attn_add2(self.lrelu(self.spatial_attn_add1(attn)))
        return feat * torch.sigmoid(attn) * 2 + attn_add


class EDVR(UpsampleX4Mixin, nn.Module):
    """EDVR x4 super-resolution from ``num_frame`` LR frames to the centre one.

    EDVR-M: ``num_feat=64, num_reconstruct_block=10`` (3,300,131 parameters);
    EDVR-L: ``num_feat=128, num_reconstruct_block=40`` (20,633,827). ``with_tsa=False``
    replaces TSA by a 1x1 fusion conv. The deblurring variants (``with_predeblur``,
    ``hr_in``) are not included.
    ``forward``: ``(N, T, 3, H, W)`` RGB in [0, 1], ``H, W`` multiples of 4 -> ``(N, 3, 4H, 4W)``.
    """

    def __init__(
        self,
        num_feat: int = 64,
        num_frame: int = 5,
        deformable_groups: int = 8,
        num_extract_block: int = 5,
        num_reconstruct_block: int = 10,
        center_frame_idx: int | None = None,
        with_tsa: bool = True,
    ):
        super().__init__()
        self.num_frame = num_frame
        self.center_frame_idx = num_frame // 2 if center_frame_idx is None else center_frame_idx
        self.with_tsa = with_tsa
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.feature_extraction = make_residual_blocks(num_extract_block, num_feat)
        self.conv_l2_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.pcd_align = PCDAlignment(num_feat, deformable_groups)
        if with_tsa:
            self.fusion = TSAFusion(num_feat, num_frame, self.center_frame_idx)
        else:
            self.fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)
        self.reconstruction = make_residual_blocks(num_reconstruct_block, num_feat)
        self._build_upsampler(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = x.shape
        if h % 4 or w % 4:
            raise ValueError(f"EDVR needs frame sides that are multiples of 4, got {h}x{w}")
        if t != self.num_frame:
            raise ValueError(f"EDVR was built for {self.num_frame} frames, got {t}")
        # feature pyramid of every frame
        feat_l1 = self.feature_extraction(self.lrelu(self.conv_first(x.reshape(-1, c, h, w))))
        feat_l2 = self.lrelu(self.conv_l2_2(self.lrelu(self.conv_l2_1(feat_l1))))
        feat_l3 = self.lrelu(self.conv_l3_2(self.lrelu(self.conv_l3_1(feat_l2))))
        pyramid = [f.view(n, t, *f.shape[1:]) for f in (feat_l1, feat_l2, feat_l3)]

        ref_feats = [level[:, self.center_frame_idx] for level in pyramid]
        aligned = torch.stack([self.pcd_align([level[:, i] for level in pyramid], ref_feats) for i in range(t)], dim=1)
        feat = self.fusion(aligned) if self.with_tsa else self.fusion(aligned.view(n, -1, h, w))
        return self._upsample(self.reconstruction(feat), x[:, self.center_frame_idx])
