"""The pretrained models SeTe-VSR starts from, their layouts with random weights, and tiny components built in code.

* The full-size layouts (:func:`sd21_base_unet2d`, :func:`sd21_base_vae`, :func:`sam2_hiera_tiny_vision_config`) are
  those of Stable Diffusion 2.1-base and SAM2.1 Hiera-tiny with random weights: for speed and memory benchmarks,
  which need the real sizes but no download.
* The tiny ones (tests, `init --preset tiny`) have the same layouts at toy widths, so every code path runs on a CPU
  in seconds.

Random weights produce nothing meaningful.
"""

from __future__ import annotations

from typing import Any

# The pretrained models SeTe-VSR starts from (paper Sec. IV-A): Stable Diffusion 2.1-base and SAM2's Hiera-tiny.
SD21_BASE = "stabilityai/stable-diffusion-2-1-base"
SAM2_TINY = "facebook/sam2.1-hiera-tiny"


def sd21_base_unet2d():
    """A random-weight ``UNet2DConditionModel`` with the configuration of Stable Diffusion 2.1-base's U-Net."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=2,
        cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True,
    )


def sd21_base_vae():
    """A random-weight ``AutoencoderKL`` with the configuration of Stable Diffusion 2.1-base's VAE (scale factor 8)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        sample_size=768,
        scaling_factor=0.18215,
    )


def sam2_hiera_tiny_vision_config():
    """The ``Sam2VisionConfig`` of SAM2.1 Hiera-tiny (transformers' defaults): a 1024 input, `(256, 64, 64)` output."""
    from transformers import Sam2VisionConfig

    return Sam2VisionConfig()


def tiny_unet2d(sample_size: int = 16):
    """A random-weight ``UNet2DConditionModel`` with the Stable Diffusion 2.1 layout at toy width.

    Cross-attention down block then a plain down block, cross-attention mid block, plain up block then a
    cross-attention up block; linear projections and a per-level ``attention_head_dim`` list as in SD 2.1.
    """
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=2,
        norm_num_groups=32,
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
    )


def tiny_sete_unet_options() -> dict[str, Any]:
    """SeTe options matching :func:`tiny_unet2d`: 16 semantic tokens of width 32, short prompt, 4-frame window."""
    return {
        "num_semantic_tokens": 16,
        "semantic_token_dim": 32,
        "num_frames": 4,
        "prompt_sequence_length": 8,
    }


def tiny_sam2_vision_config():
    """A random-weight ``Sam2VisionConfig`` of the SAM2 Hiera layout at toy width.

    Four Hiera stages (strides 4, 8, 16, 32 at 1024 input) and the 256-channel FPN neck, so the image
    embedding has the real `(256, 64, 64)` shape.
    """
    from transformers import Sam2HieraDetConfig, Sam2VisionConfig

    backbone = Sam2HieraDetConfig(
        hidden_size=8,
        num_attention_heads=1,
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[8, 4, 14, 7],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[7, 7],
    )
    return Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8])


def tiny_sam2_model(seed: int = 0):
    """A random-weight promptable ``Sam2Model`` (image encoder, prompt encoder, mask decoder) for 64-pixel inputs.

    The mask generators of :mod:`sete_vsr.plugins.sam_prior` run it on any frame size in milliseconds; save it with
    ``save_pretrained(DIR)`` and pass ``sam2=DIR`` to SEEM's training and method.
    """
    import torch
    from transformers import Sam2Config, Sam2Model

    backbone = dict(
        model_type="sam2_hiera_det_model",
        image_size=[64, 64],
        hidden_size=8,
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        blocks_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 2],
        global_attention_blocks=[],
        window_positional_embedding_background_size=[2, 2],
    )
    config = Sam2Config(
        vision_config=dict(
            backbone_config=backbone,
            backbone_channel_list=[64, 32, 16, 8],
            backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
            fpn_hidden_size=16,
        ),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16),
    )
    torch.manual_seed(seed)
    return Sam2Model(config)


def tiny_autoencoder_kl(temporal: bool = False, **overrides: Any):
    """A random-weight SD-like VAE at toy width: ``block_out_channels=(32, 64)``, 4 latent channels.

    Same layout and ``scaling_factor`` (0.18215) as the Stable Diffusion 2.1 VAE but two levels, so
    ``vae_scale_factor`` is 2 instead of 8.

    Args:
        temporal: build a :class:`~sete_vsr.models.temporal_vae.TemporalAutoencoderKL` (temporal layers at
            identity, 16-channel attention heads) instead of an ``AutoencoderKL``.
        **overrides: config values replacing the defaults.
    """
    from diffusers import AutoencoderKL

    from .temporal_vae import TemporalAutoencoderKL

    config: dict[str, Any] = {
        "block_out_channels": (32, 64),
        "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
        "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
        "latent_channels": 4,
        "norm_num_groups": 32,
        "sample_size": 32,
        "scaling_factor": 0.18215,
    }
    if temporal:
        config["temporal_attention_head_dim"] = 16
    config.update(overrides)
    return (TemporalAutoencoderKL if temporal else AutoencoderKL)(**config)
