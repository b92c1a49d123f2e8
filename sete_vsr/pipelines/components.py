"""The components of a SeTe-VSR pipeline: from SD 2.1 + SAM2 (untrained, ready for stage 1) or at toy width.

Each builder returns the keyword arguments of :class:`~sete_vsr.pipelines.pipeline.SeTeVSRPipeline`:

* :func:`sd21_components` (behind ``SeTeVSRPipeline.from_sd21`` and ``sete-vsr init DIR``) loads SD 2.1's U-Net, VAE,
  text encoder and tokenizer and a SAM2 image encoder, converts them (every pretrained tensor copied, every new branch
  at zero) and stores the text embedding of the empty prompt in the U-Net, so inference needs no text encoder.
* :func:`tiny_components` (behind :func:`~sete_vsr.pipelines.assemble.tiny_pipeline` and
  ``sete-vsr init --preset tiny --random-weights DIR``) builds the same layout at toy width with random weights: it
  runs every code path in seconds on a CPU and produces noise, not super-resolution.
* :func:`sd21_random_components` builds the full-size layout (SD 2.1-base, SAM2.1 Hiera-tiny) with random weights and
  no download: the real compute and memory, for benchmarks.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from .. import __version__
from ..errors import SeteVSRError
from ..models.presets import (
    SAM2_TINY,
    SD21_BASE,
    sam2_hiera_tiny_vision_config,
    sd21_base_unet2d,
    sd21_base_vae,
    tiny_autoencoder_kl,
    tiny_sam2_vision_config,
    tiny_sete_unet_options,
    tiny_unet2d,
)
from ..models.semantic_encoder import SemanticEncoder
from ..models.temporal_vae import TemporalAutoencoderKL
from ..models.unet import SeTeUNetModel
from .prompt import encode_prompt

# DDPM with Stable Diffusion 2.1's noise schedule (the base model's own scheduler config overrides these when loaded).
SD21_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}


def sd21_components(
    base: str = SD21_BASE,
    semantic: str = SAM2_TINY,
    temporal: bool = False,
    window_length: int = 8,
    keep_text_encoder: bool = False,
    unet_options: dict[str, Any] | None = None,
    vae_options: dict[str, Any] | None = None,
    semantic_options: dict[str, Any] | None = None,
    **load_kwargs: Any,
) -> dict[str, Any]:
    """The components of an untrained SeTe-VSR pipeline, from Stable Diffusion 2.1 and SAM2.

    The SD 2.1 text encoder runs once, on the empty prompt; its embedding `(1, 77, 1024)` is stored in the U-Net
    (``empty_prompt_embeds``). The scheduler is DDPM with the base model's noise schedule.

    Args:
        base: Hub id or local folder of a Stable Diffusion 2.1 pipeline (``unet/``, ``vae/``, ``text_encoder/``,
            ``tokenizer/``, ``scheduler/``).
        semantic: Hub id or local folder of a transformers SAM2 model (``Sam2Model`` or ``Sam2VisionModel``).
        temporal: also create the stage-2 temporal modules of the U-Net (zero-initialised).
        window_length: the U-Net's default temporal window (``config.num_frames``).
        keep_text_encoder: keep the text encoder and tokenizer as optional components (for prompts).
        unet_options: other SeTe U-Net options (``num_semantic_tokens``, ``semantic_token_dim``; the ablations
            ``use_seam``, ``use_temporal_transformer``, ``use_tsam``...).
        vae_options: temporal VAE options (``temporal_kernel_size``, ``temporal_attention_head_dim``).
        semantic_options: :class:`SemanticEncoder` options (``chunk_size``, ``image_size``).
        **load_kwargs: passed to every ``from_pretrained`` of ``base`` (``revision``, ``cache_dir``,
            ``local_files_only``, ``token``...).

    Returns:
        The keyword arguments of :class:`~sete_vsr.pipelines.pipeline.SeTeVSRPipeline`; its U-Net and VAE hold every
        SD 2.1 tensor unchanged.
    """
    try:
        unet2d = UNet2DConditionModel.from_pretrained(base, subfolder="unet", **load_kwargs)
        image_vae = AutoencoderKL.from_pretrained(base, subfolder="vae", **load_kwargs)
        text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder", **load_kwargs)
        tokenizer = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer", **load_kwargs)
        scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler", **load_kwargs)
    except (OSError, ValueError) as err:
        raise SeteVSRError(f"cannot load Stable Diffusion 2.1 from {base}: {_first_line(err)}") from None
    try:
        semantic_encoder = SemanticEncoder.from_transformers(semantic, **(semantic_options or {}))
    except (OSError, ValueError) as err:
        raise SeteVSRError(f"cannot load SAM2 from {semantic}: {_first_line(err)}") from None

    text_encoder.eval()
    with torch.no_grad():
        empty = encode_prompt(text_encoder, tokenizer, "", text_encoder.device)
    options = {"num_frames": window_length, "prompt_sequence_length": empty.shape[1], **(unet_options or {})}
    unet = SeTeUNetModel.from_unet2d(unet2d, temporal=temporal, **options)
    unet.set_empty_prompt_embeds(empty.to(unet.dtype))
    vae = TemporalAutoencoderKL.from_autoencoder_kl(image_vae, **(vae_options or {}))
    return {
        "vae": vae,
        "unet": unet,
        "scheduler": scheduler,
        "semantic_encoder": semantic_encoder,
        "text_encoder": text_encoder if keep_text_encoder else None,
        "tokenizer": tokenizer if keep_text_encoder else None,
        "assembled_from": {
            "base": str(base),
            "semantic": str(semantic),
            "temporal": temporal,
            "sete_vsr_version": __version__,
        },
    }


def tiny_components(seed: int = 0, temporal: bool = True, unet_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The components of a SeTe-VSR pipeline of toy width with random weights, for tests and setup checks.

    The layouts are the real ones (SD 2.1-style U-Net with 2 levels, 4-level VAE so ``vae_scale_factor`` is 8 as in
    SD, Hiera SAM2 at a 256 input). Every parameter that the conversions would start at zero (new branches, temporal
    layers) is drawn at random too, so windows, tiles and temporal layers all change the result. The global random
    state is left untouched.

    Args:
        seed: seed of the weights.
        temporal: include the U-Net's temporal modules (stage 2).
        unet_options: SeTe U-Net options over the tiny ones (e.g. ``{"use_seam": False}``).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        options = {**tiny_sete_unet_options(), **(unet_options or {})}
        unet = SeTeUNetModel.from_unet2d(tiny_unet2d(sample_size=32), temporal=temporal, **options)
        vae = tiny_autoencoder_kl(
            temporal=True,
            block_out_channels=(8, 16, 16, 16),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            norm_num_groups=8,
            temporal_attention_head_dim=8,
        )
        semantic_encoder = SemanticEncoder(vision_config=tiny_sam2_vision_config().to_dict(), image_size=256)
        with torch.no_grad():
            for model in (unet, vae, semantic_encoder):
                for param in model.parameters():
                    if not param.any():
                        param.normal_(0.0, 0.05)
            unet.set_empty_prompt_embeds(torch.randn_like(unet.empty_prompt_embeds))
    return {
        "vae": vae.eval(),
        "unet": unet.eval(),
        "scheduler": DDPMScheduler(**SD21_SCHEDULER_CONFIG),
        "semantic_encoder": semantic_encoder,
        "assembled_from": {
            "preset": "tiny",
            "seed": seed,
            "temporal": temporal,
            "sete_vsr_version": __version__,
            "training": "none (random weights: the output is noise)",
        },
    }


def sd21_random_components(seed: int = 0, temporal: bool = True, window_length: int = 8) -> dict[str, Any]:
    """The components of a full-size SeTe-VSR pipeline with random weights: SD 2.1-base and SAM2.1 Hiera-tiny layouts.

    Built exactly as :func:`sd21_components` converts the pretrained models (new branches at zero), from randomly
    initialised sources instead of downloaded ones, with a random empty-prompt embedding `(1, 77, 1024)`. For speed
    and memory measurements: the output is noise. The global random state is left untouched.

    Args:
        seed: seed of the weights.
        temporal: include the U-Net's stage-2 temporal modules.
        window_length: the U-Net's default temporal window (``config.num_frames``).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = SeTeUNetModel.from_unet2d(
            sd21_base_unet2d(), temporal=temporal, num_frames=window_length, prompt_sequence_length=77
        )
        unet.set_empty_prompt_embeds(torch.randn(1, 77, unet.config.cross_attention_dim))
        vae = TemporalAutoencoderKL.from_autoencoder_kl(sd21_base_vae())
        semantic_encoder = SemanticEncoder(vision_config=sam2_hiera_tiny_vision_config().to_dict())
    return {
        "vae": vae.eval(),
        "unet": unet.eval(),
        "scheduler": DDPMScheduler(**SD21_SCHEDULER_CONFIG),
        "semantic_encoder": semantic_encoder.eval(),
        "assembled_from": {
            "preset": "sd21-base layout",
            "seed": seed,
            "temporal": temporal,
            "sete_vsr_version": __version__,
            "training": "none (random weights: the output is noise)",
        },
    }


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
