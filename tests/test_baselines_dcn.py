"""Deformable alignment (EDVR's DCNv2Pack, BasicVSR++'s second-order alignment) against a slow reference.

The reference is written from the definition of modulated deformable convolution:
for output pixel p, kernel point k at (ky, kx), deformable group g, sample the group's
input channels bilinearly at ``p - pad + (ky, kx) + (dy, dx)`` (zero outside the image),
multiply by the mask, and sum against the weights. Offsets are read as
``offset[:, 2 * (g * K + k)] = dy``, ``offset[:, 2 * (g * K + k) + 1] = dx``, masks as
``mask[:, g * K + k]``: that is the layout the official checkpoints were trained with.
"""

from __future__ import annotations

import torch

from sete_vsr.baselines.dcn import DCNv2Pack, SecondOrderDeformableAlignment
from sete_vsr.baselines.flow_warp import flow_warp


def bilinear_sample(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """``img (C, H, W)`` at real position ``(y, x)``; pixels outside the image count as zero."""
    _, h, w = img.shape
    y0, x0 = int(torch.floor(torch.tensor(y))), int(torch.floor(torch.tensor(x)))
    value = torch.zeros(img.shape[0], dtype=img.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                value += wy * wx * img[:, yy, xx]
    return value


def reference_deform_conv(x, offset, mask, weight, bias, padding=1):
    """Modulated deformable convolution (stride 1) with explicit loops; ``(N, C_in, H, W) -> (N, C_out, H, W)``."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    kernel_points = kh * kw
    groups = offset.shape[1] // (2 * kernel_points)
    per_group = c_in // groups
    out = torch.zeros(n, c_out, h, w, dtype=x.dtype)
    for b in range(n):
        for g in range(groups):
            channels = slice(g * per_group, (g + 1) * per_group)
            for k in range(kernel_points):
                ky, kx = divmod(k, kw)
                for py in range(h):
                    for px in range(w):
                        dy = offset[b, 2 * (g * kernel_points + k), py, px].item()
                        dx = offset[b, 2 * (g * kernel_points + k) + 1, py, px].item()
                        m = mask[b, g * kernel_points + k, py, px]
                        sample = bilinear_sample(x[b, channels], py - padding + ky + dy, px - padding + kx + dx)
                        out[b, :, py, px] += weight[:, channels, ky, kx] @ (m * sample)
    return out + bias.view(1, -1, 1, 1)


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.5) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * scale)


def test_dcnv2pack_matches_reference():
    torch.manual_seed(0)
    dcn = DCNv2Pack(4, 3, 3, padding=1, deformable_groups=2).double()
    _randomise(dcn, seed=1, scale=0.3)
    x = torch.randn(1, 4, 5, 6, dtype=torch.float64)
    feat = torch.randn(1, 4, 5, 6, dtype=torch.float64)

    out = dcn(x, feat)

    raw = dcn.conv_offset(feat)
    groups_points = 2 * 9
    offset, mask = raw[:, : 2 * groups_points], torch.sigmoid(raw[:, 2 * groups_points :])
    assert offset.abs().max() > 1.0  # offsets large enough to leave the pixel grid and the image
    expected = reference_deform_conv(x, offset, mask, dcn.weight, dcn.bias)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)


def test_second_order_alignment_matches_reference():
    torch.manual_seed(0)
    c, groups, magnitude = 2, 4, 2.0
    align = SecondOrderDeformableAlignment(
        2 * c, c, 3, padding=1, deformable_groups=groups, max_residue_magnitude=magnitude
    ).double()
    _randomise(align, seed=2, scale=0.3)
    x = torch.randn(1, 2 * c, 5, 6, dtype=torch.float64)
    extra = torch.randn(1, 3 * c, 5, 6, dtype=torch.float64)
    flow_1 = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    flow_2 = torch.randn(1, 2, 5, 6, dtype=torch.float64)

    out = align(x, extra, flow_1, flow_2)

    raw = align.conv_offset(torch.cat([extra, flow_1, flow_2], dim=1))
    k = 9
    residue, mask = raw[:, : 2 * groups * k], torch.sigmoid(raw[:, 2 * groups * k :])
    offset = torch.empty_like(residue)
    for g in range(groups):
        flow = flow_1 if g < groups // 2 else flow_2  # first half of the groups: frame i-1
        for point in range(k):
            dy, dx = 2 * (g * k + point), 2 * (g * k + point) + 1
            offset[:, dy] = magnitude * torch.tanh(residue[:, dy]) + flow[:, 1]
            offset[:, dx] = magnitude * torch.tanh(residue[:, dx]) + flow[:, 0]
    expected = reference_deform_conv(x, offset, mask, align.weight, align.bias)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)


def test_flow_guided_offsets_follow_flow_warp():
    """With zero residues, the alignment samples where ``flow_warp`` does: a conv of the warped features."""
    torch.manual_seed(0)
    c = 4
    align = SecondOrderDeformableAlignment(2 * c, c, 3, padding=1, deformable_groups=2).double()
    x = torch.randn(1, 2 * c, 12, 12, dtype=torch.float64)
    flow_1 = torch.zeros(1, 2, 12, 12, dtype=torch.float64)
    flow_1[:, 0], flow_1[:, 1] = 1.25, -0.5  # dx, dy
    flow_2 = 2 * flow_1
    extra = torch.randn(1, 3 * c, 12, 12, dtype=torch.float64)

    out = align(x, extra, flow_1, flow_2)  # freshly built: zero residues, mask 0.5

    warped = torch.cat(
        [flow_warp(x[:, :c], flow_1.permute(0, 2, 3, 1)), flow_warp(x[:, c:], flow_2.permute(0, 2, 3, 1))], dim=1
    )
    expected = 0.5 * torch.nn.functional.conv2d(warped, align.weight, padding=1) + align.bias.view(1, -1, 1, 1)
    interior = (slice(None), slice(None), slice(4, -4), slice(4, -4))  # away from the zero-padded borders
    torch.testing.assert_close(out[interior], expected[interior], rtol=1e-9, atol=1e-9)
