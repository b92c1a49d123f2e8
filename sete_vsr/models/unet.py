"""The SeTe U-Net: Stable Diffusion 2.1's U-Net with LR conditioning, SeAM, temporal transformer and TSAM.

Built from a plain ``diffusers.UNet2DConditionModel`` by :meth:`SeTeUNetModel.from_unet2d`. Every tensor of
the pretrained U-Net keeps its name and value; the new weights live under their own names:

* ``lr_conditioning.*``: the LR-latent input channels of ``conv_in`` (:class:`LatentConcatConditioning`);
* ``semantic_tokenizer.*``: SAM2 embeddings -> semantic tokens, shared by all layers;
* ``*.transformer_blocks.N.semantic_norm.*`` / ``*.semantic_attn.*``: SeAM in every spatial transformer block;
* ``*.attentions.N.temporal_transformer.*`` / ``*.attentions.N.tsam.*``: stage-2 temporal modules.

SeAM (with the semantic tokenizer), the temporal transformer and TSAM can each be left out (``use_seam``,
``use_temporal_transformer``, ``use_tsam``: the paper's Table II ablations); a left-out module has no parameters.

Frames fold into the batch: inputs are `(B*F, C, h, w)` with ``num_frames`` = F passed explicitly.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.attention import AttentionMixin
from diffusers.models.attention_processor import Attention
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.utils import BaseOutput
from torch import nn

from ..errors import SeteVSRError
from .attention import NUM_FRAMES_KEY, SEMANTIC_TOKENS_KEY, SeTeTransformer2DModel
from .conditioning import LatentConcatConditioning, SemanticTokenizer

# The UNet2DConditionModel arguments of the Stable Diffusion 1.x/2.x layout, mirrored in SeTeUNetModel's
# config; every other argument of the source U-Net must keep its default value.
UNET2D_KEYS = (
    "sample_size",
    "in_channels",
    "out_channels",
    "flip_sin_to_cos",
    "freq_shift",
    "down_block_types",
    "up_block_types",
    "block_out_channels",
    "layers_per_block",
    "downsample_padding",
    "mid_block_scale_factor",
    "act_fn",
    "norm_num_groups",
    "norm_eps",
    "cross_attention_dim",
    "transformer_layers_per_block",
    "attention_head_dim",
    "use_linear_projection",
    "upcast_attention",
)

# Name fragments of the trainable sets of the two stages.
STAGE1_NEW_PREFIXES = ("lr_conditioning.", "semantic_tokenizer.")
STAGE1_NEW_FRAGMENTS = (".semantic_norm.", ".semantic_attn.")
STAGE2_FRAGMENTS = (".temporal_transformer.", ".tsam.")


@dataclass
class SeTeUNetOutput(BaseOutput):
    """Output of :class:`SeTeUNetModel`.

    Args:
        sample: `(B*F, out_channels, h, w)` predicted noise (or v / x0, as the pretrained U-Net was trained).
    """

    sample: torch.Tensor


# the attention projections a LoRA adapts (diffusers' usual targets)
LORA_PROJECTIONS = (".to_q", ".to_k", ".to_v", ".to_out.0")


class SeTeUNetModel(ModelMixin, AttentionMixin, ConfigMixin, PeftAdapterMixin):
    r"""The denoising U-Net of SeTe-VSR (paper Sec. III-B to III-D).

    The Stable Diffusion 2.1 U-Net whose spatial transformers gain a semantic cross-attention (SeAM) over
    SAM2 tokens, with the LR latents concatenated to the noisy latents at ``conv_in``, and (stage 2) a
    temporal transformer and TSAM after every spatial transformer. Every new branch starts at zero, so a
    freshly converted model reproduces the pretrained U-Net exactly.

    Build it with :meth:`from_unet2d`. The arguments mirroring ``UNet2DConditionModel`` (``sample_size`` to
    ``upcast_attention``) have the same meaning as there. The others:

    Args:
        lr_channels: channels of the LR latents.
        semantic_channels: channels of the SAM2 image embeddings (256).
        num_semantic_tokens: tokens the embeddings are pooled to, a perfect square (256 = 16x16).
        semantic_token_dim: width of the semantic tokens (the key/value input of every SeAM layer).
        temporal: whether the stage-2 temporal modules exist.
        use_seam: whether the spatial transformer blocks have SeAM, fed by the semantic tokenizer; without it,
            neither exists and ``forward`` ignores ``semantic_embeds``.
        use_temporal_transformer: whether the stage-2 modules include the temporal transformer (built when
            ``temporal``, or by :meth:`add_temporal_modules`).
        use_tsam: whether the stage-2 modules include TSAM; at least one of the two must be on once ``temporal``.
        num_frames: default temporal window length `F` used by pipelines and training (not by ``forward``).
        temporal_ff_mult: feed-forward width of the temporal transformer, a multiple of `C`.
        tsam_ff_mult: feed-forward width of each TSAM half, a multiple of `C/2`.
        tsam_mlp_ratio: hidden width of TSAM's fusion MLP, a multiple of `C`.
        prompt_sequence_length: token count of the stored empty-prompt embedding.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = [
        "SemanticTransformerBlock",
        "BasicTransformerBlock",
        "TemporalTransformer",
        "TemporalSpatialAwarenessModule",
        "ResnetBlock2D",
        "CrossAttnUpBlock2D",
        "UpBlock2D",
    ]
    _skip_layerwise_casting_patterns = ["norm"]

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 4,
        out_channels: int = 4,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        up_block_types: tuple[str, ...] = (
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ),
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1.0,
        act_fn: str = "silu",
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 1024,
        transformer_layers_per_block: int | tuple[int, ...] = 1,
        attention_head_dim: int | tuple[int, ...] = (5, 10, 20, 20),
        use_linear_projection: bool = True,
        upcast_attention: bool = False,
        lr_channels: int = 4,
        semantic_channels: int = 256,
        num_semantic_tokens: int = 256,
        semantic_token_dim: int = 1024,
        temporal: bool = False,
        use_seam: bool = True,
        use_temporal_transformer: bool = True,
        use_tsam: bool = True,
        num_frames: int = 8,
        temporal_ff_mult: float = 2.0,
        tsam_ff_mult: float = 2.0,
        tsam_mlp_ratio: float = 1.0,
        prompt_sequence_length: int = 77,
    ):
        super().__init__()
        # Build the pretrained layout with diffusers' own code, then take it over under its original names.
        unet = UNet2DConditionModel(**{key: self.config[key] for key in UNET2D_KEYS})
        self.conv_in = unet.conv_in
        self.time_proj = unet.time_proj
        self.time_embedding = unet.time_embedding
        self.down_blocks = unet.down_blocks
        self.mid_block = unet.mid_block
        self.up_blocks = unet.up_blocks
        self.conv_norm_out = unet.conv_norm_out
        self.conv_act = unet.conv_act
        self.conv_out = unet.conv_out
        self.num_upsamplers = unet.num_upsamplers

        self.lr_conditioning = LatentConcatConditioning(lr_channels, block_out_channels[0], self.conv_in.kernel_size[0])
        self.semantic_tokenizer = (
            SemanticTokenizer(semantic_channels, num_semantic_tokens, semantic_token_dim) if use_seam else None
        )
        semantic_dim = semantic_token_dim if use_seam else None
        for blocks, index, transformer in self._spatial_transformers():
            blocks[index] = SeTeTransformer2DModel.from_transformer(transformer, semantic_dim)
        self.register_buffer("empty_prompt_embeds", torch.zeros(1, prompt_sequence_length, cross_attention_dim))
        if temporal:
            self._create_temporal_modules(use_temporal_transformer, use_tsam)

    # ----------------------------------------------------------------------------------------- construction

    @classmethod
    def from_unet2d(cls, unet: UNet2DConditionModel, temporal: bool = False, **options) -> SeTeUNetModel:
        """Build a SeTe U-Net from a plain Stable Diffusion 1.x/2.x ``UNet2DConditionModel``.

        Every tensor of ``unet`` is copied unchanged under the same name; the new modules are created and
        initialised here (zero outputs), so the result reproduces ``unet`` on the noisy latents.

        Args:
            unet: the pretrained U-Net (Stable Diffusion 2.1 layout).
            temporal: also create the stage-2 temporal modules.
            **options: the SeTe-specific config arguments (``semantic_token_dim``, ``num_semantic_tokens``,
                ``use_seam``, ``use_temporal_transformer``, ``use_tsam``...).
        """
        config = dict(unet.config)
        unsupported = _non_default_unet2d_arguments(config)
        if unsupported:
            raise SeteVSRError(f"SeTeUNetModel supports the SD 2.1 U-Net layout; unsupported: {unsupported}")
        sete_keys = set(inspect.signature(cls.__init__).parameters) - set(UNET2D_KEYS) - {"self", "temporal"}
        unknown = set(options) - sete_keys
        if unknown:
            raise SeteVSRError(f"unknown SeTe U-Net options {sorted(unknown)}")
        model = cls(**{key: config[key] for key in UNET2D_KEYS}, temporal=temporal, **options)
        if model.dtype != unet.dtype:
            model.to(dtype=unet.dtype)
        missing, unexpected = model.load_state_dict(unet.state_dict(), strict=False)
        if unexpected or any(not _is_new_tensor(name) for name in missing):
            raise SeteVSRError(f"U-Net tensors not placed in the SeTe U-Net: {unexpected or missing}")
        return model.to(device=unet.device)

    def add_temporal_modules(self, temporal_transformer: bool | None = None, tsam: bool | None = None) -> None:
        """Turn a stage-1 model into a stage-2 model (temporal transformer and/or TSAM after each spatial transformer).

        The new modules start with zero outputs, so the model's output is unchanged.

        Args:
            temporal_transformer: add the temporal transformer; ``None``: as ``config.use_temporal_transformer``.
            tsam: add TSAM; ``None``: as ``config.use_tsam``.
        """
        if self.config.temporal:
            raise SeteVSRError("this SeTe U-Net already has its temporal modules")
        if temporal_transformer is None:
            temporal_transformer = self.config.use_temporal_transformer
        tsam = self.config.use_tsam if tsam is None else tsam
        self._create_temporal_modules(bool(temporal_transformer), bool(tsam))
        self.register_to_config(temporal=True, use_temporal_transformer=bool(temporal_transformer), use_tsam=bool(tsam))

    def set_empty_prompt_embeds(self, embeds: torch.Tensor) -> None:
        """Store the text embedding of the empty prompt, used when ``encoder_hidden_states`` is not given.

        Args:
            embeds: `(1, prompt_sequence_length, cross_attention_dim)` or `(prompt_sequence_length,
                cross_attention_dim)`, e.g. the SD 2.1 text encoder's last hidden state for `""`.
        """
        expected = tuple(self.empty_prompt_embeds.shape)
        if embeds.ndim == 2:
            embeds = embeds[None]
        if tuple(embeds.shape) != expected:
            raise SeteVSRError(f"empty-prompt embeddings must have shape {expected}, got {tuple(embeds.shape)}")
        self.empty_prompt_embeds.copy_(embeds.detach())

    @property
    def semantic_grid_size(self) -> int:
        """Side `g` of the semantic token grid the SAM2 embeddings are pooled to (``isqrt(num_semantic_tokens)``).

        Defined with or without SeAM, so the conditioning code can pool the embeddings either way.
        """
        return math.isqrt(self.config.num_semantic_tokens)

    def _create_temporal_modules(self, temporal_transformer: bool, tsam: bool) -> None:
        if not (temporal_transformer or tsam):
            raise SeteVSRError("stage 2 needs a temporal module: the temporal transformer, TSAM or both")
        for _, _, transformer in self._spatial_transformers():
            transformer.add_temporal_modules(
                norm_num_groups=self.config.norm_num_groups,
                temporal_ff_mult=self.config.temporal_ff_mult,
                tsam_ff_mult=self.config.tsam_ff_mult,
                tsam_mlp_ratio=self.config.tsam_mlp_ratio,
                temporal_transformer=temporal_transformer,
                tsam=tsam,
            )

    def _spatial_transformers(self) -> Iterator[tuple[nn.ModuleList, int, Transformer2DModel]]:
        """Yield `(module_list, index, transformer)` for each spatial transformer, input to output order."""
        for block in (*self.down_blocks, self.mid_block, *self.up_blocks):
            attentions = getattr(block, "attentions", None) or []
            for index, transformer in enumerate(attentions):
                yield attentions, index, transformer

    def set_attention_slice(self, slice_size: str | int | None = "auto") -> None:
        """Compute every attention (pretrained and new) in slices of heads, to save memory.

        Args:
            slice_size: ``"auto"`` (half of each layer's heads), ``"max"`` (one head at a time), a number of heads
                (capped at each layer's head count), or ``None`` to switch slicing off (back to SDPA).
        """
        if slice_size not in ("auto", "max", None) and not (isinstance(slice_size, int) and slice_size > 0):
            raise SeteVSRError(f'slice_size must be "auto", "max", a positive int or None, got {slice_size!r}')
        for module in self.modules():
            if isinstance(module, Attention):
                heads = module.sliceable_head_dim
                if slice_size == "auto":
                    module.set_attention_slice(max(1, heads // 2))
                elif slice_size == "max":
                    module.set_attention_slice(1)
                else:
                    module.set_attention_slice(None if slice_size is None else min(slice_size, heads))

    # -------------------------------------------------------------------------------------------- training

    def stage_parameters(self, stage: int, only_new_modules: bool = False) -> list[tuple[str, nn.Parameter]]:
        """The `(name, parameter)` pairs trained in a stage (paper Sec. III-D).

        Args:
            stage: 1 trains the spatial path (SeAM and semantic tokenizer when present, LR conditioning and,
                unless ``only_new_modules``, the whole pretrained U-Net); 2 trains exactly the parameters of the
                temporal modules present (temporal transformer, TSAM), everything else frozen.
            only_new_modules: stage 1 only: train just the new spatial modules (parameter-efficient).
        """
        named = list(self.named_parameters())
        if stage == 2:
            if not self.config.temporal:
                raise SeteVSRError("stage 2 needs the temporal modules: call add_temporal_modules() first")
            return [(name, param) for name, param in named if any(f in name for f in STAGE2_FRAGMENTS)]
        if stage == 1:
            spatial = [(name, param) for name, param in named if not any(f in name for f in STAGE2_FRAGMENTS)]
            if only_new_modules:
                return [(name, param) for name, param in spatial if _is_new_tensor(name)]
            return spatial
        raise SeteVSRError(f"stage must be 1 or 2, got {stage!r}")

    def lora_target_modules(self, stage: int, only_new_modules: bool = False) -> list[str]:
        """The attention projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) among a stage's parameters
        (:meth:`stage_parameters`), by module name: where a LoRA of that stage goes (``peft.LoraConfig``'s
        ``target_modules``)."""
        names = [name.removesuffix(".weight") for name, _ in self.stage_parameters(stage, only_new_modules)]
        targets = [name for name in names if name.endswith(LORA_PROJECTIONS)]
        if not targets:
            raise SeteVSRError(f"stage {stage} of this U-Net has no attention projection for a LoRA")
        return targets

    # ------------------------------------------------------------------------------------------- inference

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        lr_latents: torch.Tensor,
        semantic_embeds: torch.Tensor | None,
        num_frames: int,
        encoder_hidden_states: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> SeTeUNetOutput | tuple[torch.Tensor]:
        r"""Predict the noise of `B` clips of `F` frames, folded into the batch.

        Args:
            sample: `(B*F, in_channels, h, w)` noisy latents, frames of a clip consecutive.
            timestep: a number, a 0-d tensor, or a `(B*F,)` or `(B,)` tensor.
            lr_latents: `(B*F, lr_channels, h, w)` VAE latents of the x4-bicubic-upsampled LR frames.
            semantic_embeds: `(B*F, semantic_channels, Hs, Ws)` SAM2 image embeddings (64x64 for a 1024 input);
                ignored (and may be ``None``) without SeAM (``config.use_seam`` false).
            num_frames: frames per clip `F`; must divide the batch.
            encoder_hidden_states: `(B*F, L, cross_attention_dim)`, `(B, L, ...)` or `(1, L, ...)` text
                embeddings; by default the stored empty-prompt embedding.
            return_dict: return a :class:`SeTeUNetOutput` instead of a tuple.

        Returns:
            :class:`SeTeUNetOutput` with ``sample`` `(B*F, out_channels, h, w)`, or the tuple `(sample,)`.
        """
        batch_frames = self._check_inputs(sample, lr_latents, semantic_embeds, num_frames)
        encoder_hidden_states = self._expand_to_frames(
            self.empty_prompt_embeds if encoder_hidden_states is None else encoder_hidden_states,
            batch_frames,
            num_frames,
            "encoder_hidden_states",
        ).to(sample.dtype)
        timesteps = torch.as_tensor(timestep, device=sample.device)
        timesteps = self._expand_to_frames(timesteps.reshape(-1), batch_frames, num_frames, "timestep")
        emb = self.time_embedding(self.time_proj(timesteps).to(sample.dtype))
        context = {NUM_FRAMES_KEY: num_frames}
        if self.semantic_tokenizer is not None:
            context[SEMANTIC_TOKENS_KEY] = self.semantic_tokenizer(semantic_embeds.to(sample.dtype))

        hidden_states = self.conv_in(sample) + self.lr_conditioning(lr_latents.to(sample.dtype))
        skips = (hidden_states,)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                hidden_states, block_skips = block(
                    hidden_states=hidden_states,
                    temb=emb,
                    encoder_hidden_states=encoder_hidden_states,
                    cross_attention_kwargs=context,
                )
            else:
                hidden_states, block_skips = block(hidden_states=hidden_states, temb=emb)
            skips += block_skips

        hidden_states = self.mid_block(
            hidden_states, emb, encoder_hidden_states=encoder_hidden_states, cross_attention_kwargs=context
        )

        # Sizes not divisible by 2**num_upsamplers need the skip's size at each upsampler.
        forward_upsample_size = any(size % 2**self.num_upsamplers for size in sample.shape[-2:])
        for index, block in enumerate(self.up_blocks):
            block_skips, skips = skips[-len(block.resnets) :], skips[: -len(block.resnets)]
            is_last = index == len(self.up_blocks) - 1
            upsample_size = skips[-1].shape[2:] if forward_upsample_size and not is_last else None
            if getattr(block, "has_cross_attention", False):
                hidden_states = block(
                    hidden_states=hidden_states,
                    temb=emb,
                    res_hidden_states_tuple=block_skips,
                    encoder_hidden_states=encoder_hidden_states,
                    cross_attention_kwargs=context,
                    upsample_size=upsample_size,
                )
            else:
                hidden_states = block(
                    hidden_states=hidden_states,
                    temb=emb,
                    res_hidden_states_tuple=block_skips,
                    upsample_size=upsample_size,
                )

        hidden_states = self.conv_out(self.conv_act(self.conv_norm_out(hidden_states)))
        if not return_dict:
            return (hidden_states,)
        return SeTeUNetOutput(sample=hidden_states)

    def _check_inputs(
        self, sample: torch.Tensor, lr_latents: torch.Tensor, semantic_embeds: torch.Tensor | None, num_frames: int
    ) -> int:
        if sample.ndim != 4 or sample.shape[1] != self.config.in_channels:
            raise SeteVSRError(f"sample must be (B*F, {self.config.in_channels}, h, w), got {tuple(sample.shape)}")
        batch_frames, _, height, width = sample.shape
        if not isinstance(num_frames, int) or num_frames < 1 or batch_frames % num_frames:
            raise SeteVSRError(f"num_frames={num_frames!r} must be a positive divisor of the batch size {batch_frames}")
        expected_lr = (batch_frames, self.config.lr_channels, height, width)
        if tuple(lr_latents.shape) != expected_lr:
            raise SeteVSRError(f"lr_latents must have shape {expected_lr}, got {tuple(lr_latents.shape)}")
        if not self.config.use_seam:
            return batch_frames
        expected_semantic = (batch_frames, self.config.semantic_channels)
        if semantic_embeds is None or semantic_embeds.ndim != 4 or semantic_embeds.shape[:2] != expected_semantic:
            raise SeteVSRError(
                f"semantic_embeds must be (B*F={batch_frames}, {self.config.semantic_channels}, Hs, Ws) SAM2 image "
                f"embeddings, got {None if semantic_embeds is None else tuple(semantic_embeds.shape)}"
            )
        return batch_frames

    @staticmethod
    def _expand_to_frames(tensor: torch.Tensor, batch_frames: int, num_frames: int, name: str) -> torch.Tensor:
        """Broadcast a per-batch, per-clip or shared leading dimension to `B*F`."""
        if tensor.shape[0] == batch_frames:
            return tensor
        if tensor.shape[0] == batch_frames // num_frames:
            return tensor.repeat_interleave(num_frames, dim=0)
        if tensor.shape[0] == 1:
            return tensor.expand(batch_frames, *tensor.shape[1:])
        raise SeteVSRError(
            f"{name} has leading size {tensor.shape[0]}; "
            f"expected 1, B={batch_frames // num_frames} or B*F={batch_frames}"
        )


def _is_new_tensor(name: str) -> bool:
    """Whether a state-dict name belongs to a SeTe module rather than to the pretrained U-Net."""
    return (
        name == "empty_prompt_embeds"
        or name.startswith(STAGE1_NEW_PREFIXES)
        or any(fragment in name for fragment in STAGE1_NEW_FRAGMENTS + STAGE2_FRAGMENTS)
    )


def _non_default_unet2d_arguments(config: dict) -> list[str]:
    """Arguments of a ``UNet2DConditionModel`` config outside the SD 1.x/2.x layout SeTe supports."""
    defaults = inspect.signature(UNet2DConditionModel.__init__).parameters
    differing = []
    for key, value in config.items():
        if key.startswith("_") or key in UNET2D_KEYS or key not in defaults:
            continue
        default = defaults[key].default
        if (list(value) if isinstance(value, (list, tuple)) else value) != (
            list(default) if isinstance(default, (list, tuple)) else default
        ):
            differing.append(f"{key}={value!r}")
    return differing
