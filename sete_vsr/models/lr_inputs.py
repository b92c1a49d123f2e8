"""What the SeTe U-Net is conditioned on, computed from LR frames: one path for training, the latent cache and inference.

For LR frames `(N, 3, h, w)` in [-1, 1] (a training crop, or the region of a frame one latent tile covers):

* **LR latents** (:func:`encode_lr_latents`): the frames upsampled x4 with :func:`bicubic_upsample` and encoded by the
  VAE (posterior mode, times ``scaling_factor``): `(N, C, 4h/s, 4w/s)` for a VAE of scale factor `s`;
* **semantic embeddings** (:func:`semantic_embeddings`): SAM2's image embedding of the frames, the aspect ratio kept
  (the longer side resized to SAM2's input size, the rest padded and left out of the result), average-pooled to the
  U-Net's token grid `(N, 256, g, g)`. Pooling is idempotent, so the U-Net's tokenizer gives the same tokens.

The training loss (:func:`sete_vsr.train.losses.diffusion_loss`), the latent cache (:mod:`sete_vsr.train.cache`) and
:meth:`sete_vsr.pipelines.pipeline.SeTeVSRPipeline.encode_conditioning` all call :func:`encode_conditioning`; the
pipeline calls it on each latent tile's LR region, so a tile attends to the semantics of the region it denoises, as a
training crop does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SCALE = 4


def bicubic_upsample(
    frames: torch.Tensor, scale: int = SCALE, value_range: tuple[float, float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Upsample LR frames with PyTorch's bicubic kernel: the input of the LR latents.

    This is ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)`` (cubic coefficient -0.75, no
    antialiasing, which upsampling does not need), chosen for speed on any device; it is not MATLAB's ``imresize``
    (coefficient -0.5, :func:`sete_vsr.data.imresize.imresize`), which the "Bicubic" baseline column uses. Each frame's
    result depends on that frame only (the overshoot is clamped to the fixed ``value_range``).

    Args:
        frames: `(N, C, H, W)` float frames with values in ``value_range``.
        scale: upsampling factor.
        value_range: the nominal range of the frames, ``(-1, 1)`` for VAE inputs or ``(0, 1)``.

    Returns:
        `(N, C, scale*H, scale*W)` float frames clamped to ``value_range``.
    """
    low, high = value_range
    return F.interpolate(frames, scale_factor=scale, mode="bicubic", align_corners=False).clamp_(low, high)


def encode_lr_latents(vae, lr: torch.Tensor) -> torch.Tensor:
    """VAE latents of LR frames upsampled x4: `(N, 3, h, w)` in [-1, 1] -> `(N, C, 4h/s, 4w/s)` float32.

    The posterior's mode times the VAE's ``scaling_factor``; the VAE runs in its own dtype on its own device.
    """
    upsampled = bicubic_upsample(lr.float()).to(vae.device, vae.dtype)
    return (vae.encode(upsampled).latent_dist.mode() * vae.config.scaling_factor).float()


def semantic_embeddings(semantic_encoder, lr: torch.Tensor, grid_size: int) -> torch.Tensor:
    """SAM2 embeddings of LR frames, aspect ratio kept, pooled to the token grid.

    The longer side is resized to the encoder's ``image_size`` `S` and the shorter one in proportion; the frame is
    placed at the top left of an `S x S` input whose rest holds zeros after SAM2's normalisation (the mean colour),
    and only the embedding cells of the frame are pooled. A square frame is resized to `S x S` as SAM2 does.

    Args:
        semantic_encoder: a :class:`~sete_vsr.models.semantic_encoder.SemanticEncoder`.
        lr: `(N, 3, h, w)` frames in [-1, 1].
        grid_size: side `g` of the U-Net's semantic token grid (``unet.semantic_grid_size``).

    Returns:
        `(N, C_sam, g, g)` float32 embeddings.
    """
    embeds = semantic_encoder((lr.float() + 1) / 2, keep_aspect=True)
    return F.adaptive_avg_pool2d(embeds.float(), grid_size)


def encode_conditioning(
    vae, semantic_encoder, lr: torch.Tensor, grid_size: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Both conditioning inputs of `(N, 3, h, w)` LR frames in [-1, 1].

    Args:
        grid_size: the U-Net's token grid side; ``None`` for a U-Net without SeAM (SAM2 is then not run).

    Returns:
        ``(lr_latents, semantic)``: `(N, C, 4h/s, 4w/s)` and `(N, C_sam, g, g)` (or ``None``), float32 (see the module
        docstring).
    """
    semantic = None if grid_size is None else semantic_embeddings(semantic_encoder, lr, grid_size)
    return encode_lr_latents(vae, lr), semantic


def encode_target(vae, hr: torch.Tensor) -> torch.Tensor:
    """The parameters (mean and log-variance, `(N, 2 C, H/s, W/s)`) of the VAE posterior of `(N, 3, H, W)` GT frames."""
    return vae.encode(hr.to(vae.device, vae.dtype)).latent_dist.parameters
