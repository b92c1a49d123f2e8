"""The attention modules of the SeTe U-Net (paper Eq. 3 to 5).

* :class:`SemanticTransformerBlock`: a Stable Diffusion spatial transformer block with SeAM, a cross-attention
  from the spatial features to the semantic tokens between the text cross-attention and the feed-forward.
* :class:`TemporalTransformer`: self-attention across the frames at each spatial position.
* :class:`TemporalSpatialAwarenessModule` (TSAM): spatial and temporal attention on two channel halves, fused by
  an MLP.
* :class:`SeTeTransformer2DModel`: the diffusers ``Transformer2DModel`` of each U-Net level, with semantic blocks
  (or its plain blocks, without SeAM) and, in stage 2, the temporal transformer and/or TSAM after it.

Every attention is a diffusers ``Attention`` (through ``BasicTransformerBlock`` where the layout matches), so
attention processors (SDPA by default, xformers, slicing) apply to all of them. Every new branch that feeds a
pretrained path has a zero-initialised output layer. Frames are folded into the batch, `(B*F, C, H, W)`; only
the temporal modules reshape, once each.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from .conditioning import sincos_position_embedding

# Keys of ``cross_attention_kwargs`` that carry the SeTe inputs down to the blocks; consumed before any
# attention processor sees the kwargs.
SEMANTIC_TOKENS_KEY = "semantic_tokens"
NUM_FRAMES_KEY = "num_frames"


def frame_position_embedding(num_frames: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    """Sine-cosine encoding of the frame index: `(num_frames, dim)` on the device and dtype of ``like``."""
    positions = torch.arange(num_frames, device=like.device)
    return sincos_position_embedding(positions, dim).to(like.dtype)


def _zero_(layer: nn.Linear) -> nn.Linear:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class SemanticTransformerBlock(nn.Module):
    """A pretrained ``BasicTransformerBlock`` (layer-norm variant) extended with SeAM (Eq. 3).

    Runs self-attention, text cross-attention, semantic cross-attention, feed-forward, each pre-norm and
    residual. The pretrained sub-modules are taken over under their original names (``norm1``, ``attn1``,
    ``norm2``, ``attn2``, ``norm3``, ``ff``); the new ones are ``semantic_norm`` and ``semantic_attn``, whose
    output projection starts at zero.

    Args:
        block: the pretrained block; its modules are reused, not copied.
        semantic_dim: width of the semantic tokens.
    """

    def __init__(self, block: BasicTransformerBlock, semantic_dim: int):
        super().__init__()
        if block.norm_type != "layer_norm" or block.pos_embed is not None or block.only_cross_attention:
            raise ValueError("SeAM extends the layer-norm BasicTransformerBlock of Stable Diffusion 1.x/2.x only")
        if block.attn2 is None or hasattr(block, "fuser"):
            raise ValueError("SeAM needs a block with a text cross-attention and without GLIGEN")
        self.norm1, self.attn1 = block.norm1, block.attn1
        self.norm2, self.attn2 = block.norm2, block.attn2
        self.norm3, self.ff = block.norm3, block.ff
        self.semantic_norm = nn.LayerNorm(block.dim)
        self.semantic_attn = Attention(
            query_dim=block.dim,
            cross_attention_dim=semantic_dim,
            heads=block.num_attention_heads,
            dim_head=block.attention_head_dim,
            upcast_attention=block.attn1.upcast_attention,
            out_bias=True,
        )
        _zero_(self.semantic_attn.to_out[0])

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        timestep: torch.Tensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        class_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`(B*F, H*W, C)` -> `(B*F, H*W, C)`.

        ``cross_attention_kwargs[SEMANTIC_TOKENS_KEY]`` holds the semantic tokens `(B*F, T, semantic_dim)`;
        ``encoder_hidden_states`` the text embeddings `(B*F, L, cross_attention_dim)`. The argument order
        follows ``BasicTransformerBlock`` so ``Transformer2DModel`` (and its checkpointing) calls both alike.
        """
        kwargs = dict(cross_attention_kwargs or {})
        semantic_tokens = kwargs.pop(SEMANTIC_TOKENS_KEY, None)
        if semantic_tokens is None:
            raise ValueError(f"SemanticTransformerBlock needs cross_attention_kwargs[{SEMANTIC_TOKENS_KEY!r}]")
        hidden_states = self.attn1(self.norm1(hidden_states), attention_mask=attention_mask, **kwargs) + hidden_states
        hidden_states = (
            self.attn2(
                self.norm2(hidden_states),
                encoder_hidden_states=encoder_hidden_states,
                attention_mask=encoder_attention_mask,
                **kwargs,
            )
            + hidden_states
        )
        hidden_states = (
            self.semantic_attn(self.semantic_norm(hidden_states), encoder_hidden_states=semantic_tokens) + hidden_states
        )
        return self.ff(self.norm3(hidden_states)) + hidden_states


class TemporalTransformer(nn.Module):
    """Self-attention across frames at each spatial position, with frame-position encoding.

    GroupNorm per frame, linear in, sine-cosine frame positions, one transformer block (pre-norm
    self-attention over the `F` frames + GELU feed-forward, both residual), linear out (zero-initialised),
    residual.

    Args:
        channels: feature channels `C`.
        num_heads: attention heads; `C` must be divisible by it.
        norm_num_groups: groups of the input GroupNorm.
        ff_mult: feed-forward hidden width as a multiple of `C`.
    """

    def __init__(self, channels: int, num_heads: int, norm_num_groups: int = 32, ff_mult: float = 2.0):
        super().__init__()
        self.norm = nn.GroupNorm(norm_num_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.block = BasicTransformerBlock(
            channels, num_heads, channels // num_heads, activation_fn="gelu", ff_inner_dim=int(ff_mult * channels)
        )
        self.proj_out = _zero_(nn.Linear(channels, channels))

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        """`(B*F, C, H, W)` -> `(B*F, C, H, W)`."""
        batch_frames, channels, height, width = hidden_states.shape
        batch = batch_frames // num_frames
        tokens = self.norm(hidden_states).reshape(batch, num_frames, channels, height * width)
        tokens = tokens.permute(0, 3, 1, 2).reshape(batch * height * width, num_frames, channels)
        tokens = self.proj_in(tokens) + frame_position_embedding(num_frames, channels, tokens)
        tokens = self.proj_out(self.block(tokens))
        tokens = tokens.reshape(batch, height * width, num_frames, channels).permute(0, 2, 3, 1)
        return hidden_states + tokens.reshape(batch_frames, channels, height, width)


class TemporalSpatialAwarenessModule(nn.Module):
    """TSAM (Eq. 4-5): spatial and temporal attention on two channel halves, fused by an MLP.

    The channels split into a spatial half and a temporal half. The spatial half runs a pre-norm
    self-attention over the `H*W` positions of each frame and a pre-norm GELU feed-forward, both residual; the
    temporal half does the same over the `F` frames of each position (with frame positions). The halves are
    concatenated and an MLP (last layer zero-initialised) adds the fused features to the input.

    Args:
        channels: feature channels `C`, even.
        num_heads: attention heads of each half; `C/2` must be divisible by it.
        ff_mult: feed-forward hidden width as a multiple of `C/2`.
        mlp_ratio: hidden width of the fusion MLP as a multiple of `C`.
    """

    def __init__(self, channels: int, num_heads: int, ff_mult: float = 2.0, mlp_ratio: float = 1.0):
        super().__init__()
        if channels % 2 or (channels // 2) % num_heads:
            raise ValueError(f"TSAM needs C/2 divisible by the head count, got C={channels}, heads={num_heads}")
        half = channels // 2
        self.spatial_block = BasicTransformerBlock(
            half, num_heads, half // num_heads, activation_fn="gelu", ff_inner_dim=int(ff_mult * half)
        )
        self.temporal_block = BasicTransformerBlock(
            half, num_heads, half // num_heads, activation_fn="gelu", ff_inner_dim=int(ff_mult * half)
        )
        hidden = int(mlp_ratio * channels)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), _zero_(nn.Linear(hidden, channels)))

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        """`(B*F, C, H, W)` -> `(B*F, C, H, W)`."""
        batch_frames, channels, height, width = hidden_states.shape
        batch, half, tokens_per_frame = batch_frames // num_frames, channels // 2, height * width
        tokens = hidden_states.flatten(2).transpose(1, 2)  # (B*F, H*W, C)
        spatial, temporal = tokens.split(half, dim=-1)
        spatial = self.spatial_block(spatial)
        temporal = temporal.reshape(batch, num_frames, tokens_per_frame, half).transpose(1, 2)
        temporal = temporal.reshape(batch * tokens_per_frame, num_frames, half)
        temporal = self.temporal_block(temporal + frame_position_embedding(num_frames, half, temporal))
        temporal = temporal.reshape(batch, tokens_per_frame, num_frames, half).transpose(1, 2)
        fused = self.mlp(torch.cat([spatial, temporal.reshape(batch_frames, tokens_per_frame, half)], dim=-1))
        return hidden_states + fused.transpose(1, 2).reshape(batch_frames, channels, height, width)


class SeTeTransformer2DModel(Transformer2DModel):
    """A U-Net level's ``Transformer2DModel`` with SeAM blocks, then (stage 2) temporal transformer and TSAM.

    Pretrained parameter names are those of ``Transformer2DModel``; new ones live under
    ``transformer_blocks.N.semantic_*``, ``temporal_transformer.*`` and ``tsam.*``. Each new part can be left out
    (the paper's ablations): without SeAM the blocks stay the pretrained ``BasicTransformerBlock``; stage 2 may add
    the temporal transformer, TSAM or both. Build it with :meth:`from_transformer`, never with ``from_pretrained``.
    """

    @classmethod
    def from_transformer(cls, transformer: Transformer2DModel, semantic_dim: int | None) -> SeTeTransformer2DModel:
        """Copy ``transformer`` (config and tensors, in the default dtype on the CPU) and turn its blocks into
        :class:`SemanticTransformerBlock` (``semantic_dim`` wide tokens), or keep them as they are when
        ``semantic_dim`` is ``None`` (no SeAM)."""
        if not transformer.is_input_continuous:
            raise ValueError("SeTe spatial transformers need continuous (feature map) inputs")
        model = cls(**{key: value for key, value in transformer.config.items() if not key.startswith("_")})
        model.load_state_dict(transformer.state_dict())
        if semantic_dim is not None:
            model.transformer_blocks = nn.ModuleList(
                SemanticTransformerBlock(block, semantic_dim) for block in model.transformer_blocks
            )
        model.temporal_transformer = None
        model.tsam = None
        return model

    @property
    def has_temporal_modules(self) -> bool:
        """Whether a stage-2 module (temporal transformer, TSAM or both) exists."""
        return self.temporal_transformer is not None or self.tsam is not None

    def add_temporal_modules(
        self,
        norm_num_groups: int,
        temporal_ff_mult: float,
        tsam_ff_mult: float,
        tsam_mlp_ratio: float,
        temporal_transformer: bool = True,
        tsam: bool = True,
    ) -> None:
        """Create the temporal transformer and/or TSAM (zero-initialised outputs) after the spatial transformer."""
        channels = self.config.in_channels
        num_heads = self.config.num_attention_heads
        reference = self.proj_out.weight
        if temporal_transformer:
            self.temporal_transformer = TemporalTransformer(channels, num_heads, norm_num_groups, temporal_ff_mult).to(
                device=reference.device, dtype=reference.dtype
            )
        if tsam:
            self.tsam = TemporalSpatialAwarenessModule(channels, num_heads, tsam_ff_mult, tsam_mlp_ratio).to(
                device=reference.device, dtype=reference.dtype
            )

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        timestep: torch.LongTensor | None = None,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        class_labels: torch.LongTensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """`(B*F, C, H, W)` -> `(B*F, C, H, W)`.

        ``cross_attention_kwargs`` carries ``SEMANTIC_TOKENS_KEY`` (for the blocks) and ``NUM_FRAMES_KEY``
        (for the temporal modules); both are removed before any attention processor sees the kwargs.
        """
        kwargs = dict(cross_attention_kwargs or {})
        num_frames = kwargs.pop(NUM_FRAMES_KEY, None)
        hidden_states = super().forward(
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            timestep=timestep,
            added_cond_kwargs=added_cond_kwargs,
            class_labels=class_labels,
            cross_attention_kwargs=kwargs,
            attention_mask=attention_mask,
            encoder_attention_mask=encoder_attention_mask,
            return_dict=False,
        )[0]
        if self.has_temporal_modules:
            if num_frames is None:
                raise ValueError(f"temporal modules need cross_attention_kwargs[{NUM_FRAMES_KEY!r}]")
            for module in (self.temporal_transformer, self.tsam):
                if module is None:
                    continue
                if torch.is_grad_enabled() and self.gradient_checkpointing:
                    hidden_states = self._gradient_checkpointing_func(module, hidden_states, num_frames)
                else:
                    hidden_states = module(hidden_states, num_frames)
        if not return_dict:
            return (hidden_states,)
        return Transformer2DModelOutput(sample=hidden_states)
