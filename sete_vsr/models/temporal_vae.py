"""Stable Diffusion's VAE with a temporal decoder (MGLD-VSR style), chunked over frames and tiled over space.

The encoder, decoder, ``quant_conv`` and ``post_quant_conv`` are exactly :class:`diffusers.AutoencoderKL`'s (same
parameter names, same latent space). Temporal layers live under ``temporal_layers.*``: one
:class:`TemporalMixingBlock` after the decoder's mid block and after each up block. Each block is residual with a
zero-initialised output, so a model converted with :meth:`TemporalAutoencoderKL.from_autoencoder_kl` decodes exactly
like the image VAE until its temporal layers are trained.

diffusers' ``AutoencoderKLTemporalDecoder`` (Stable Video Diffusion) is not used: its decoder renames every ResNet
(``resnets.N.spatial_res_block.*``), has no ``post_quant_conv``, ends with a non-identity ``time_conv_out`` 3-D conv
and blends spatial/temporal paths with a sigmoid-learned factor (0.5 at zero), so SD 2.1 VAE weights neither map
onto it name for name nor reproduce the SD decoder.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.utils.accelerate_utils import apply_forward_hook

from .blending import BlendAccumulator, plan_regions


class TemporalMixingBlock(nn.Module):
    """Residual mixing of decoder features across frames: a temporal 3-D conv pair, then temporal self-attention.

    Both branches end in a zero-initialised projection, so a fresh block is the identity. Normalisation inside the
    branches is per frame; only the temporal convolutions (a receptive field of ``kernel_size`` frames per conv) and
    the attention mix frames, so chunked decoding differs from whole-clip decoding only through those.

    Args:
        channels: feature channels ``C``.
        kernel_size: temporal kernel size of the 3-D convs (odd; spatial kernel is 1x1).
        attention_head_dim: channels per attention head; ``None`` leaves out temporal attention.
        norm_num_groups: groups of the GroupNorms (as the SD decoder, 32).
    """

    def __init__(
        self, channels: int, kernel_size: int = 3, attention_head_dim: int | None = 64, norm_num_groups: int = 32
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"temporal kernel size must be odd, got {kernel_size}")
        padding = (kernel_size // 2, 0, 0)
        self.norm1 = nn.GroupNorm(norm_num_groups, channels, eps=1e-6)
        self.conv1 = nn.Conv3d(channels, channels, (kernel_size, 1, 1), padding=padding)
        self.norm2 = nn.GroupNorm(norm_num_groups, channels, eps=1e-6)
        self.conv2 = nn.Conv3d(channels, channels, (kernel_size, 1, 1), padding=padding)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        if attention_head_dim is None:
            self.attn_norm = None
            self.attention = None
        else:
            head_dim = min(attention_head_dim, channels)
            self.attn_norm = nn.LayerNorm(channels)
            self.attention = Attention(
                query_dim=channels, heads=channels // head_dim, dim_head=head_dim, bias=True, out_bias=True
            )
            nn.init.zeros_(self.attention.to_out[0].weight)
            nn.init.zeros_(self.attention.to_out[0].bias)

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Mix features across the ``num_frames`` frames of each clip.

        Args:
            hidden_states: ``(B*F, C, H, W)``, frames of a clip consecutive.
            num_frames: ``F``.

        Returns:
            ``(B*F, C, H, W)``.
        """
        batch_frames, channels, height, width = hidden_states.shape
        batch = batch_frames // num_frames

        def clips(frames: torch.Tensor) -> torch.Tensor:  # (B*F, C, H, W) -> (B, C, F, H, W)
            return frames.reshape(batch, num_frames, channels, height, width).transpose(1, 2)

        def frames(clip: torch.Tensor) -> torch.Tensor:  # (B, C, F, H, W) -> (B*F, C, H, W)
            return clip.transpose(1, 2).reshape(batch_frames, channels, height, width)

        # GroupNorm statistics per frame, so that no frame's output depends on which frames share its chunk through
        # them (only the temporal convolutions and attention mix frames).
        delta = self.conv2(clips(F.silu(self.norm2(frames(self.conv1(clips(F.silu(self.norm1(hidden_states)))))))))
        if self.attention is not None:
            x = clips(hidden_states)
            tokens = (x + delta).permute(0, 3, 4, 2, 1).reshape(batch * height * width, num_frames, channels)
            attended = self.attention(self.attn_norm(tokens))
            delta = delta + attended.reshape(batch, height, width, num_frames, channels).permute(0, 4, 3, 1, 2)
        # Adding to the input keeps its memory layout, so the pretrained layers after an identity block run the
        # same kernels as in the image VAE (bit-exact conversion).
        return hidden_states + delta.transpose(1, 2).reshape(batch_frames, channels, height, width)


class TemporalAutoencoderKL(AutoencoderKL):
    r"""
    [`AutoencoderKL`] whose decoder mixes information across frames.

    Latents and frames fold the frames into the batch: latents ``(B*F, C_latent, h, w)``, frames ``(B*F, 3, H, W)``
    with ``H = h * vae_scale_factor``; ``num_frames`` is always passed explicitly. All AutoencoderKL arguments are
    accepted unchanged; the extra ones configure the temporal layers.

    Parameters:
        temporal_kernel_size (`int`, defaults to 3): temporal kernel of the 3-D convs in each temporal block.
        temporal_attention_head_dim (`int`, *optional*, defaults to 64): head size of the temporal self-attention;
            `None` disables temporal attention.
    """

    _no_split_modules = ["BasicTransformerBlock", "ResnetBlock2D", "TemporalMixingBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        block_out_channels: tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        act_fn: str = "silu",
        latent_channels: int = 4,
        norm_num_groups: int = 32,
        sample_size: int = 32,
        scaling_factor: float = 0.18215,
        shift_factor: float | None = None,
        latents_mean: tuple[float, ...] | None = None,
        latents_std: tuple[float, ...] | None = None,
        force_upcast: bool = True,
        use_quant_conv: bool = True,
        use_post_quant_conv: bool = True,
        mid_block_add_attention: bool = True,
        temporal_kernel_size: int = 3,
        temporal_attention_head_dim: int | None = 64,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            act_fn=act_fn,
            latent_channels=latent_channels,
            norm_num_groups=norm_num_groups,
            sample_size=sample_size,
            scaling_factor=scaling_factor,
            shift_factor=shift_factor,
            latents_mean=latents_mean,
            latents_std=latents_std,
            force_upcast=force_upcast,
            use_quant_conv=use_quant_conv,
            use_post_quant_conv=use_post_quant_conv,
            mid_block_add_attention=mid_block_add_attention,
        )
        # Feature channels after the mid block, then after each up block.
        level_channels = [block_out_channels[-1], *reversed(block_out_channels)]
        self.temporal_layers = nn.ModuleList(
            TemporalMixingBlock(channels, temporal_kernel_size, temporal_attention_head_dim, norm_num_groups)
            for channels in level_channels
        )
        self.gradient_checkpointing = False

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent pixel along each side (8 for SD)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    @classmethod
    def from_autoencoder_kl(cls, vae: AutoencoderKL, **temporal_kwargs) -> TemporalAutoencoderKL:
        """Build a temporal VAE from an image VAE, copying every tensor; temporal layers start at identity.

        Args:
            vae: the source `AutoencoderKL` (e.g. SD 2.1's), left untouched.
            **temporal_kwargs: `temporal_kernel_size`, `temporal_attention_head_dim`.

        Returns:
            A `TemporalAutoencoderKL` on the source's device and dtype whose encoder/decoder tensors equal the
            source's bit for bit.
        """
        accepted = inspect.signature(cls.__init__).parameters
        config = {key: value for key, value in vae.config.items() if key in accepted}
        model = cls(**{**config, **temporal_kwargs}).to(vae.device)
        if model.dtype != vae.dtype:
            model = model.to(dtype=vae.dtype)
        missing, unexpected = model.load_state_dict(vae.state_dict(), strict=False)
        if unexpected or any(not key.startswith("temporal_layers.") for key in missing):
            raise ValueError(f"VAE does not map onto {cls.__name__}: missing {missing}, unexpected {unexpected}")
        return model

    def temporal_parameters(self) -> list[nn.Parameter]:
        """The parameters of the temporal layers, the only ones trained in the VAE stage."""
        return list(self.temporal_layers.parameters())

    def _checkpointed(self, module: nn.Module, *args):
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(module, *args)
        return module(*args)

    def _decode_frames(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """SD decoder with a temporal block after the mid block and after each up block: ``(B*F, C, h, w)`` ->
        ``(B*F, 3, H, W)``."""
        if z.shape[0] % num_frames:
            raise ValueError(f"batch of {z.shape[0]} latents is not a whole number of {num_frames}-frame clips")
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        decoder = self.decoder
        x = decoder.conv_in(z)
        x = self._checkpointed(decoder.mid_block, x)
        x = self._checkpointed(self.temporal_layers[0], x, num_frames)
        for up_block, temporal in zip(decoder.up_blocks, self.temporal_layers[1:]):
            x = self._checkpointed(up_block, x)
            x = self._checkpointed(temporal, x, num_frames)
        x = decoder.conv_act(decoder.conv_norm_out(x))
        return decoder.conv_out(x)

    @apply_forward_hook
    def iter_decode(
        self,
        z: torch.Tensor,
        num_frames: int,
        chunk_size: int | None = None,
        chunk_overlap: int = 0,
        tile_size: int | tuple[int, int] | None = None,
        tile_overlap: int = 0,
    ) -> Iterator[torch.Tensor]:
        """Decode chunk by chunk and tile by tile, yielding frames as soon as they are final.

        Frames are decoded in windows of ``chunk_size`` frames overlapping by ``chunk_overlap`` and, when
        ``tile_size`` is set, in spatial latent tiles overlapping by ``tile_overlap``; the temporal layers of a tile
        see all frames of its chunk. Overlaps are blended with the weights of
        :func:`sete_vsr.models.blending.plan_regions`. At identity temporal weights the result equals
        :meth:`decode` up to float rounding (frames are independent); with trained temporal layers frames near chunk
        boundaries differ slightly, which the temporal overlap smooths. Peak memory is one chunk of frames.

        Args:
            z: latents ``(B*F, C_latent, h, w)`` (already divided by ``scaling_factor``).
            num_frames: ``F``.
            chunk_size: frames per chunk; ``None`` decodes all frames together.
            chunk_overlap: frames shared by consecutive chunks.
            tile_size: latent tile size (``int`` or ``(h, w)``); ``None`` decodes whole frames.
            tile_overlap: latent pixels shared by neighbouring tiles.

        Yields:
            Consecutive blocks of decoded frames ``(B, n, 3, H, W)`` in the decoder's dtype; all blocks together hold
            the ``F`` frames in order.
        """
        batch_frames, channels, height, width = z.shape
        if batch_frames % num_frames:
            raise ValueError(f"batch of {batch_frames} latents is not a whole number of {num_frames}-frame clips")
        batch = batch_frames // num_frames
        latents = z.reshape(batch, num_frames, channels, height, width)
        scale = self.vae_scale_factor
        regions = plan_regions(
            num_frames, height, width, chunk_size, chunk_overlap, tile_size, tile_overlap, scale=scale
        )
        accumulator = BlendAccumulator(
            batch, self.config.out_channels, height * scale, width * scale, torch.float32, z.device
        )
        for i, region in enumerate(regions):
            tile = region.crop(latents)
            frames = tile.shape[1]
            decoded = self._decode_frames(tile.reshape(batch * frames, *tile.shape[2:]), frames)
            accumulator.add(region, decoded.reshape(batch, frames, *decoded.shape[1:]))
            next_start = regions[i + 1].frames[0] if i + 1 < len(regions) else num_frames
            if next_start > accumulator.start:
                yield accumulator.pop(next_start).to(decoded.dtype)

    @apply_forward_hook
    def decode_chunked(
        self,
        z: torch.Tensor,
        num_frames: int,
        chunk_size: int | None = None,
        chunk_overlap: int = 0,
        tile_size: int | tuple[int, int] | None = None,
        tile_overlap: int = 0,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Decode in overlapping chunks of frames and, optionally, overlapping latent tiles (see :meth:`iter_decode`).

        Args:
            z: latents ``(B*F, C_latent, h, w)``.
            num_frames: ``F``.
            chunk_size, chunk_overlap, tile_size, tile_overlap: as :meth:`iter_decode`.
            return_dict: return a `DecoderOutput` rather than a tuple.

        Returns:
            Frames ``(B*F, 3, H, W)`` in ``DecoderOutput.sample``. For a video written to a file, stream
            :meth:`iter_decode` instead of holding all frames.
        """
        blocks = list(self.iter_decode(z, num_frames, chunk_size, chunk_overlap, tile_size, tile_overlap))
        frames = torch.cat(blocks, dim=1).flatten(0, 1)
        return DecoderOutput(sample=frames) if return_dict else (frames,)

    @apply_forward_hook
    def decode(
        self, z: torch.Tensor, num_frames: int = 1, return_dict: bool = True, generator=None
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Decode latents with the temporal decoder.

        Args:
            z: latents ``(B*F, C_latent, h, w)``.
            num_frames: ``F`` frames per clip; the default 1 decodes every latent as its own image.
            return_dict: return a `DecoderOutput` rather than a tuple.
            generator: unused, accepted for `AutoencoderKL` compatibility.

        Returns:
            Frames ``(B*F, 3, H, W)``. With :meth:`enable_tiling`, latents larger than ``tile_latent_min_size`` are
            decoded in tiles overlapping by ``tile_overlap_factor`` (see :meth:`tiled_decode`).
        """
        if self.use_tiling and max(z.shape[-2:]) > self.tile_latent_min_size:
            return self.tiled_decode(z, num_frames, return_dict=return_dict)
        frames = self._decode_frames(z, num_frames)
        return DecoderOutput(sample=frames) if return_dict else (frames,)

    @apply_forward_hook
    def tiled_decode(
        self,
        z: torch.Tensor,
        num_frames: int = 1,
        tile_size: int | tuple[int, int] | None = None,
        tile_overlap: int | None = None,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Decode in blended spatial latent tiles, all frames of a clip at once.

        Args:
            z: latents ``(B*F, C_latent, h, w)``.
            num_frames: ``F``.
            tile_size: latent tile size; defaults to ``tile_latent_min_size``.
            tile_overlap: latent overlap; defaults to ``tile_overlap_factor`` of the tile size.
            return_dict: return a `DecoderOutput` rather than a tuple.
        """
        tile_size = self.tile_latent_min_size if tile_size is None else tile_size
        if tile_overlap is None:
            smallest = tile_size if isinstance(tile_size, int) else min(tile_size)
            tile_overlap = int(smallest * self.tile_overlap_factor)
        return self.decode_chunked(
            z, num_frames, tile_size=tile_size, tile_overlap=tile_overlap, return_dict=return_dict
        )

    def forward(
        self,
        sample: torch.Tensor,
        num_frames: int = 1,
        sample_posterior: bool = False,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Encode frames ``(B*F, 3, H, W)`` and decode them with the temporal decoder (used to train the VAE stage).

        Args:
            sample: frames ``(B*F, 3, H, W)`` in [-1, 1].
            num_frames: ``F``.
            sample_posterior: sample the posterior instead of taking its mode.
            return_dict: return a `DecoderOutput` rather than a tuple.
            generator: for posterior sampling.
        """
        posterior = self.encode(sample).latent_dist
        z = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
        frames = self.decode(z, num_frames).sample
        return DecoderOutput(sample=frames) if return_dict else (frames,)

