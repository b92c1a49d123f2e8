"""The two conditioning inputs of the SeTe U-Net besides the timestep.

* :class:`LatentConcatConditioning`: the LR latents concatenated with the noisy latents at ``conv_in``.
* :class:`SemanticTokenizer`: SAM2 image embeddings pooled to a few hundred tokens with 2-D positions and
  projected once; every SeAM layer attends to the same tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sincos_position_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sine-cosine embedding of 1-D positions.

    Args:
        positions: `(N,)` positions (any float or integer values).
        dim: embedding width, even.

    Returns:
        `(N, dim)` float32 tensor, sines in the first half and cosines in the second.
    """
    if dim % 2:
        raise ValueError(f"sine-cosine embeddings need an even width, got {dim}")
    half = dim // 2
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=positions.device) / half
    )
    angles = positions.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d_position_embedding(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed 2-D sine-cosine embedding of a `height x width` grid, rows first.

    Returns:
        `(height * width, dim)` float32 tensor: half of the channels encode the row, half the column.
    """
    if dim % 4:
        raise ValueError(f"2-D sine-cosine embeddings need a width divisible by 4, got {dim}")
    rows = sincos_position_embedding(torch.arange(height, device=device), dim // 2)
    cols = sincos_position_embedding(torch.arange(width, device=device), dim // 2)
    return torch.cat(
        [rows[:, None, :].expand(height, width, -1), cols[None, :, :].expand(height, width, -1)], dim=-1
    ).reshape(height * width, dim)


class LatentConcatConditioning(nn.Module):
    """LR conditioning by channel concatenation at ``conv_in``, kept as its own module.

    Concatenating the LR latents to the noisy latents before a 3x3 convolution is the same as adding a
    second convolution of the LR latents to the output of the pretrained ``conv_in``. This module holds
    that second convolution (the extra input channels of a widened ``conv_in``, without bias), so the
    pretrained ``conv_in`` tensors stay untouched and another conditioning can replace this one.
    Zero-initialised: at conversion the U-Net ignores the LR latents.

    Args:
        lr_channels: channels of the LR latents (4 for the Stable Diffusion VAE).
        out_channels: output channels of ``conv_in`` (the first ``block_out_channels``).
        kernel_size: kernel size of ``conv_in``.
    """

    def __init__(self, lr_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(lr_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        nn.init.zeros_(self.conv.weight)

    def forward(self, lr_latents: torch.Tensor) -> torch.Tensor:
        """`(B*F, lr_channels, h, w)` -> `(B*F, out_channels, h, w)`, to add to ``conv_in(sample)``."""
        return self.conv(lr_latents)


class SemanticTokenizer(nn.Module):
    """SAM2 image embeddings -> semantic tokens shared by every SeAM layer.

    The embedding map is average-pooled to a square grid of ``num_tokens`` cells, a fixed 2-D sine-cosine
    position is added to each cell, and one linear projection followed by a LayerNorm maps the cells to
    ``token_dim``.

    Args:
        in_channels: channels of the SAM2 embeddings (256).
        num_tokens: number of tokens, a perfect square (256 = 16x16 by default).
        token_dim: width of the tokens, the key/value input width of every SeAM attention.
    """

    def __init__(self, in_channels: int = 256, num_tokens: int = 256, token_dim: int = 1024):
        super().__init__()
        grid = math.isqrt(num_tokens)
        if grid * grid != num_tokens:
            raise ValueError(f"num_semantic_tokens must be a perfect square (16x16=256, ...), got {num_tokens}")
        self.in_channels = in_channels
        self.grid_size = grid
        self.proj = nn.Linear(in_channels, token_dim)
        self.norm = nn.LayerNorm(token_dim)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def pool(self, semantic_embeds: torch.Tensor) -> torch.Tensor:
        """The first step of :meth:`forward`: `(N, in_channels, Hs, Ws)` -> `(N, in_channels, grid, grid)`.

        Pooling is idempotent, so ``forward(pool(x)) == forward(x)``: pipelines keep the pooled embeddings of long
        videos (``grid**2`` values per channel and frame instead of ``Hs * Ws``).
        """
        return F.adaptive_avg_pool2d(semantic_embeds, self.grid_size)

    def forward(self, semantic_embeds: torch.Tensor) -> torch.Tensor:
        """`(N, in_channels, Hs, Ws)` -> `(N, grid_size**2, token_dim)`."""
        tokens = self.pool(semantic_embeds).flatten(2).transpose(1, 2)
        positions = sincos_2d_position_embedding(self.grid_size, self.grid_size, self.in_channels, tokens.device)
        return self.norm(self.proj(tokens + positions.to(tokens.dtype)))
