"""FAST-VQA's video Swin-T with the gated relative position bias: DOVER's technical backbone.

``SwinTransformer3D()`` with its defaults (``swin_tiny_grpb``, VQAssessment/DOVER
``dover/models/swin_backbone.py``): patch (2,4,4), dim 96, depths (2,2,6,2), heads
(3,6,12,24), window (8,7,7), and in stages 1-3 a *gated relative position bias* (GRPB):
a second table ``fragment_position_bias_table`` is used for token pairs of the same
fragment, the ordinary table weighted by the fragment distance for the others
(``bias = rel * g + frag * (1 - g)``, ``g = |dh| + |dw|`` of the fragment indices, as
released). Parameter names are those of ``DOVER.pth`` below ``technical_backbone.``.

Numerics: window attention runs through ``scaled_dot_product_attention`` with the bias
as a float mask (the release: ``softmax(q*scale @ k^T + bias)``); results agree to
float32 rounding, not bit for bit.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


def _window_and_shift(x_size, window, shift):
    """Window and shift shrunk to the feature size where it is not larger (shift 0 there)."""
    window, shift = list(window), list(shift)
    for i, n in enumerate(x_size):
        if n <= window[i]:
            window[i], shift[i] = n, 0
    return tuple(window), tuple(shift)


def _partition(x, window):
    """``(B, D, H, W, C)`` -> ``(B * windows, Wd*Wh*Ww, C)``, windows in (b, d, h, w) order."""
    b, d, h, w, c = x.shape
    x = x.view(b, d // window[0], window[0], h // window[1], window[1], w // window[2], window[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, window[0] * window[1] * window[2], c)


def _unpartition(windows, window, b, d, h, w):
    """Inverse of :func:`_partition`: ``(B * windows, Wd, Wh, Ww, C)`` -> ``(B, D, H, W, C)``."""
    x = windows.view(b, d // window[0], h // window[1], w // window[2], window[0], window[1], window[2], -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


@lru_cache(maxsize=16)
def _shift_mask(d, h, w, window, shift, device):
    """The Swin attention mask (0 / -100) of the cyclically shifted windows, ``(windows, N, N)``."""
    labels = torch.zeros((1, d, h, w, 1))
    count = 0
    spans = [(slice(-window[k]), slice(-window[k], -shift[k]), slice(-shift[k], None)) for k in range(3)]
    for sd in spans[0]:
        for sh in spans[1]:
            for sw in spans[2]:
                labels[:, sd, sh, sw, :] = count
                count += 1
    labels = _partition(labels, window).squeeze(-1)
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0).to(device)


@lru_cache(maxsize=16)
def _fragment_gate(d, h, w, window, shift, device):
    """Gate of the GRPB, ``(windows, N, N)``: L1 distance between the fragment indices of two tokens.

    Fragment index of a token: nearest-neighbour map of a ``1 x Wh x Ww`` grid onto the
    (padded) ``D x H x W`` map, shifted like the features.
    """
    grid = torch.stack(torch.meshgrid(torch.arange(1), torch.arange(window[1]), torch.arange(window[2]), indexing="ij"))
    coords = F.interpolate(grid[None].float(), size=(d, h, w)).long().permute(0, 2, 3, 4, 1)
    coords = torch.roll(coords, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))
    coords = _partition(coords, window).float()  # windows, N, 3
    gate = 0
    for k in range(3):
        gate = gate + (coords[:, None, :, k] - coords[:, :, None, k]).abs()
    return gate.to(device)


def _relative_position_index(window):
    """``(N, N)`` index into the ``(2Wd-1)(2Wh-1)(2Ww-1)``-row bias table of every token pair of a window."""
    coords = torch.stack(torch.meshgrid(*(torch.arange(n) for n in window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    for k in range(3):
        rel[:, :, k] += window[k] - 1
    rel[:, :, 0] *= (2 * window[1] - 1) * (2 * window[2] - 1)
    rel[:, :, 1] *= 2 * window[2] - 1
    return rel.sum(-1)


class WindowAttention3D(nn.Module):
    """Window attention with the released gated relative position bias (GRPB)."""

    def __init__(self, dim, window, heads, frag_bias):
        super().__init__()
        self.heads = heads
        entries = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(entries, heads))
        if frag_bias:
            self.fragment_position_bias_table = nn.Parameter(torch.zeros(entries, heads))
        self.register_buffer("relative_position_index", _relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _bias(self, table, index, n):
        return table[index].reshape(n, n, -1).permute(2, 0, 1)  # heads, N, N

    def forward(self, x, mask, gate):
        """``x``: ``(B*windows, N, C)``; ``mask``: ``(windows, N, N)`` or None; ``gate``: ``(windows, N, N)``."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        index = self.relative_position_index[:n, :n].reshape(-1)  # slice of the full index, as released
        bias = self._bias(self.relative_position_bias_table, index, n).unsqueeze(0)  # 1, heads, N, N
        if hasattr(self, "fragment_position_bias_table"):
            # same fragment (gate 0): fragment table; else relative table x gate (+ fragment x (1 - gate))
            frag = self._bias(self.fragment_position_bias_table, index, n).unsqueeze(0)
            g = gate.unsqueeze(1)
            bias = torch.addcmul(bias * g, frag, 1 - g)
        if mask is not None:
            bias = bias + mask.unsqueeze(1)
        windows = gate.shape[0]
        if bias.shape[0] > 1 and b > windows:
            bias = bias.unsqueeze(0).expand(b // windows, -1, -1, -1, -1).reshape(b, self.heads, n, n)
        # softmax(q k^T * head_dim^-0.5 + bias) v
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """Linear dim->hidden, GELU, hidden->dim on ``(..., dim)``."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock3D(nn.Module):
    """Pre-norm (shifted) window attention and MLP, each residual; ``(B, D, H, W, C)`` in and out."""

    def __init__(self, dim, heads, window, shift, frag_bias):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window, heads, frag_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x, mask):
        b, d, h, w, c = x.shape
        window, shift = _window_and_shift((d, h, w), self.window, self.shift)
        y = self.norm1(x)
        pads = [(window[k] - n % window[k]) % window[k] for k, n in enumerate((d, h, w))]
        y = F.pad(y, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        _, dp, hp, wp, _ = y.shape
        shifted = any(s > 0 for s in shift)
        if shifted:
            y = torch.roll(y, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        gate = _fragment_gate(dp, hp, wp, window, shift, str(x.device))
        y = self.attn(_partition(y, window), mask if shifted else None, gate)
        y = _unpartition(y.view(-1, *window, c), window, b, dp, hp, wp)
        if shifted:
            y = torch.roll(y, shifts=shift, dims=(1, 2, 3))
        x = x + y[:, :d, :h, :w, :]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 spatial merge: ``(B, D, H, W, C)`` -> ``(B, D, ceil(H/2), ceil(W/2), 2C)``."""

    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        h, w = x.shape[2:4]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        parts = (x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2])
        return self.reduction(self.norm(torch.cat(parts, -1)))


class BasicLayer(nn.Module):
    """One stage: ``depth`` blocks alternating plain and shifted windows, then :class:`PatchMerging`.

    ``(B, C, D, H, W)`` -> ``(B, 2C, D, H/2, W/2)`` (``(B, C, D, H, W)`` without downsampling).
    """

    def __init__(self, dim, depth, heads, window, frag_bias, downsample):
        super().__init__()
        self.window, self.shift = window, tuple(n // 2 for n in window)
        self.blocks = nn.ModuleList(
            SwinBlock3D(dim, heads, window, (0, 0, 0) if i % 2 == 0 else self.shift, frag_bias) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x):  # (B, C, D, H, W)
        b, c, d, h, w = x.shape
        window, shift = _window_and_shift((d, h, w), self.window, self.shift)
        x = x.permute(0, 2, 3, 4, 1)
        mask = None
        if any(s > 0 for s in shift):
            padded = [math.ceil(n / window[k]) * window[k] for k, n in enumerate((d, h, w))]
            mask = _shift_mask(*padded, window, shift, str(x.device))
        for block in self.blocks:
            x = block(x, mask)
        if self.downsample is not None:
            x = self.downsample(x)
        return x.permute(0, 4, 1, 2, 3)


class PatchEmbed3D(nn.Module):
    """``(B, 3, T, H, W)`` -> ``(B, dim, T/2, H/4, W/4)``: padded to the patch, Conv3d, LayerNorm."""

    def __init__(self, patch, dim):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        d, h, w = x.shape[2:]
        p = self.patch
        x = F.pad(x, (0, (-w) % p[2], 0, (-h) % p[1], 0, (-d) % p[0]))
        x = self.proj(x)
        b, c, d, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).view(b, c, d, h, w)


class VideoSwinGRPB(nn.Module):
    """FAST-VQA's ``SwinTransformer3D()`` with its defaults (``swin_tiny_grpb``).

    ``(B, 3, T, H, W)`` -> ``(B, 768, T/2, H/32, W/32)`` feature map.
    """

    def __init__(self, patch=(2, 4, 4), dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=(8, 7, 7),
                 frag_biases=(True, True, True, False)):
        super().__init__()
        self.patch_embed = PatchEmbed3D(patch, dim)
        self.layers = nn.ModuleList(
            BasicLayer(dim * 2**i, depths[i], heads[i], window, frag_biases[i], i < len(depths) - 1)
            for i in range(len(depths))
        )
        self.norm = nn.LayerNorm(dim * 2 ** (len(depths) - 1))

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x.contiguous())
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
