"""The training losses: the DDPM loss of the U-Net stages (Eq. 1) and the reconstruction losses of the VAE stage.

Every random draw of a training clip (posterior sample, noise, timestep) comes from the clip's own generator
(:func:`sample_generators`), seeded by integers that name the clip, ``(seed, epoch, dataset index)``: the draws do not
depend on the history of the run, the batch the clip is in or the process that handles it, so a resumed run draws what
an uninterrupted one would, and two processes draw what one process with their batches together would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from accelerate.logging import get_logger

from ..errors import SeteVSRError
from .config import TrainConfig

logger = get_logger(__name__, log_level="INFO")


def sample_generator(device: torch.device, *key: int) -> torch.Generator:
    """A generator seeded by integers only, so its draws do not depend on history."""
    return torch.Generator(device=device).manual_seed(hash(key) % 2**63)


def sample_generators(device: torch.device, seed: int, epoch: int, indices: torch.Tensor) -> list[torch.Generator]:
    """One generator per clip of a batch, keyed by ``(seed, epoch, dataset index)`` (``indices``: the batch's
    ``"index"``, `(B,)`)."""
    return [sample_generator(device, seed, epoch, int(index)) for index in indices.tolist()]


def per_frame(generator: torch.Generator | list[torch.Generator], clips: int, num_frames: int) -> list[torch.Generator]:
    """The generator of each frame of `(B*F, ...)` draws: its clip's (one per clip in a list), or ``generator`` for all.

    Given to ``randn_tensor``, a clip's generator draws its frames one after the other.
    """
    per_clip = generator if isinstance(generator, list) else [generator] * clips
    if len(per_clip) != clips:
        raise SeteVSRError(f"{len(per_clip)} generators for a batch of {clips} clips")
    return [clip_generator for clip_generator in per_clip for _ in range(num_frames)]


def token_grid(unet: torch.nn.Module) -> int | None:
    """Side of the semantic token grid of a (possibly distributed-wrapped) SeTe U-Net; ``None`` without SeAM."""
    unet = getattr(unet, "module", unet)
    return unet.semantic_grid_size if unet.config.use_seam else None


def diffusion_loss(
    batch: dict[str, torch.Tensor],
    unet: torch.nn.Module,
    vae,
    semantic_encoder,
    noise_scheduler,
    generator: torch.Generator | list[torch.Generator],
) -> torch.Tensor:
    """The DDPM loss of Eq. 1 on a batch of clips: `||eps - eps_theta(z_t, t, LR latents, SAM2(LR))||^2`.

    The conditioning comes from :func:`sete_vsr.models.lr_inputs.encode_conditioning`, as at inference.

    One timestep per clip, independent noise per frame; ``generator``: one per clip (:func:`sample_generators`: each
    clip's posterior sample, noise and timestep come from its own, whatever batch it is in), or one for the batch.
    The target is the noise for an ``epsilon`` scheduler (the paper) and the velocity for a ``v_prediction`` one. The
    clean latents are drawn from the VAE posterior of ``batch["hr_usm"]`` when the batch has it (``data.usm_gt``), of
    ``batch["hr"]`` otherwise. A batch of the latent cache (``data.cache_dir``) brings the encoder outputs instead of
    pixels: ``"hr_moments"`` (the posterior's parameters), ``"lr_latents"`` and ``"semantic_embeds"``, each
    `(B, F, ...)`; the draws from ``generator`` are the same either way, so a cached batch gives the loss of the batch
    it was made from.
    """
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
    from diffusers.utils.torch_utils import randn_tensor

    from ..models.lr_inputs import encode_conditioning, encode_target

    with torch.no_grad():
        if "hr_moments" in batch:
            clips, num_frames = batch["hr_moments"].shape[:2]
            posterior = DiagonalGaussianDistribution(batch["hr_moments"].flatten(0, 1).to(vae.dtype))
            lr_latents = batch["lr_latents"].flatten(0, 1).float()
            semantic_embeds = batch["semantic_embeds"].flatten(0, 1).float()
        else:
            hr, lr = batch.get("hr_usm", batch["hr"]), batch["lr"]  # (B, F, 3, H, W), (B, F, 3, H/4, W/4) in [-1, 1]
            clips, num_frames = hr.shape[:2]
            posterior = DiagonalGaussianDistribution(encode_target(vae, hr.flatten(0, 1)))
            lr_latents, semantic_embeds = encode_conditioning(vae, semantic_encoder, lr.flatten(0, 1), token_grid(unet))
        frame_generators = per_frame(generator, clips, num_frames)
        latents = (posterior.sample(frame_generators) * vae.config.scaling_factor).float()
    noise = randn_tensor(latents.shape, generator=frame_generators, device=latents.device, dtype=latents.dtype)
    clip_generators = frame_generators[::num_frames]
    num_train_timesteps = noise_scheduler.config.num_train_timesteps
    timesteps = torch.cat(
        [torch.randint(0, num_train_timesteps, (1,), generator=g, device=latents.device) for g in clip_generators]
    ).repeat_interleave(num_frames)
    noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
    if noise_scheduler.config.prediction_type == "epsilon":
        target = noise
    elif noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise SeteVSRError(f"unsupported prediction_type {noise_scheduler.config.prediction_type!r}")
    prediction = unet(noisy_latents, timesteps, lr_latents, semantic_embeds, num_frames=num_frames).sample
    return F.mse_loss(prediction.float(), target.float())


def vae_loss(
    batch: dict[str, torch.Tensor],
    vae: torch.nn.Module,
    lpips_net,
    config: TrainConfig,
    generator: torch.Generator | list[torch.Generator],
) -> dict[str, torch.Tensor]:
    """Reconstruction losses of the temporal decoder on HR clips; ``"loss"`` is their weighted sum.

    ``generator`` (one per clip, or one for the batch) draws the posterior samples.

    * ``l1``: mean absolute error of the decoded frames;
    * ``lpips``: LPIPS (AlexNet) of the decoded frames, when ``lpips_net`` is available;
    * ``temporal``: L1 between the frame differences of output and target, which penalises flicker.
    """
    hr = batch["hr"]  # (B, F, 3, H, W) in [-1, 1]
    clips, num_frames = hr.shape[:2]
    target = hr.flatten(0, 1)
    frame_generators = per_frame(generator, clips, num_frames)
    output = vae(target, num_frames=num_frames, sample_posterior=True, generator=frame_generators).sample.float()
    terms = {"l1": (output - target).abs().mean()}
    if lpips_net is not None:
        terms["lpips"] = lpips_net((output.clamp(-1, 1) + 1) / 2, (target + 1) / 2).mean()
    if num_frames > 1:
        output_clips, target_clips = output.unflatten(0, (clips, num_frames)), hr
        terms["temporal"] = (output_clips.diff(dim=1) - target_clips.diff(dim=1)).abs().mean()
    weights = {"l1": config.vae_loss.l1, "lpips": config.vae_loss.lpips, "temporal": config.vae_loss.temporal}
    terms["loss"] = sum(weights[name] * value for name, value in terms.items())
    return terms


def load_lpips(device: torch.device):
    """The LPIPS network of :mod:`sete_vsr.eval.metrics.deep`, or ``None`` (logged) when its weights are missing."""
    from ..eval.metrics.deep import ALEXNET_FILES, LPIPS_HEAD_FILES, build_lpips_net
    from ..weight_dirs import WeightsUnavailable, find_weight

    try:
        backbone, head = find_weight(*ALEXNET_FILES), find_weight(*LPIPS_HEAD_FILES)
    except WeightsUnavailable as err:
        logger.info(f"LPIPS loss term skipped: {err}")
        return None
    return build_lpips_net(backbone, head).to(device)
