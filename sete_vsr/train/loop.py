"""The training loop of the three SeTe-VSR stages (paper Sec. III-D, IV-A), in the spirit of diffusers' examples.

* ``stage: 1``: the SeTe U-Net without temporal modules learns the semantic spatial path and the LR conditioning
  (``stage_parameters(1, only_new_modules)``) with the epsilon-prediction DDPM loss (Eq. 1); VAE and SAM2 frozen.
* ``stage: 2``: the stage-1 U-Net gains its temporal transformer and TSAM (``add_temporal_modules()``); exactly
  ``stage_parameters(2)`` is trained on clips of several frames, everything else frozen.
* ``stage: vae``: only the temporal layers of the VAE decoder are trained, to reconstruct HR clips (L1, LPIPS when
  its weights are available, and an L1 term on frame differences).

With ``data.cache_dir``, stages 1 and 2 read the frozen encoders' outputs from a latent cache filled beforehand
(:mod:`sete_vsr.train.cache`) instead of running the VAE encoder and SAM2 on every batch.

Each run starts from a saved ``SeTeVSRPipeline`` and ends by saving the whole pipeline, with the trained component
replaced; the run is added to the pipeline's construction record (``assembled_from["training_stages"]`` in
``model_index.json``), which its model card shows and a stage-2 run checks. Reproducibility: data draws and
order depend only on ``(seed, epoch, index)`` and the model noise of each batch only on ``(seed, process, epoch,
batch)``, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from ..errors import SeteVSRError
from .checkpoints import CHECKPOINT_PREFIX, CONFIG_NAME, checkpoint_step, find_resume_checkpoint, save_checkpoint
from .config import TrainConfig, config_to_dict, save_config
from .data import (
    build_train_dataset,
    check_cache_encoders,
    collate_clips,
    load_validation_clip,
    to_uint8,
    training_degradation,
)

logger = get_logger(__name__, log_level="INFO")


# --------------------------------------------------------------------------------------------------------------- checks


def read_pipeline_file(pretrained_model: str, filename: str) -> str | None:
    """Text of ``filename`` in a pipeline folder or Hub repository, ``None`` when it has none."""
    folder = Path(pretrained_model)
    if folder.is_dir():
        path = folder / filename
        return path.read_text() if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(pretrained_model, filename)).read_text()
    except EntryNotFoundError:
        return None
    except (HfHubHTTPError, LocalEntryNotFoundError, ValueError) as err:
        raise SeteVSRError(f"pretrained_model={pretrained_model} is neither a folder nor a reachable Hub repo: {err}")


def training_stages(model_index: dict[str, Any]) -> list[dict[str, Any]]:
    """The training record of a saved pipeline: one entry per ``sete_vsr.train`` run, oldest first."""
    return list((model_index.get("assembled_from") or {}).get("training_stages", []))


def check_starting_pipeline(config: TrainConfig) -> None:
    """Refuse a ``pretrained_model`` that is not a pipeline, or (stage 2) not a stage-1 result."""
    model_index = read_pipeline_file(config.pretrained_model, "model_index.json")
    if model_index is None:
        raise SeteVSRError(
            f"pretrained_model={config.pretrained_model} is not a SeTeVSRPipeline (no model_index.json); "
            "create one with `sete-vsr init`"
        )
    unet_config = json.loads(read_pipeline_file(config.pretrained_model, "unet/config.json") or "{}")
    if config.stage in ("1", "2") and unet_config.get("temporal"):
        raise SeteVSRError(
            f"stage {config.stage} needs a U-Net without temporal modules, but {config.pretrained_model} has them "
            "(a stage-2 result, or `sete-vsr init --temporal`)"
        )
    stages = training_stages(json.loads(model_index))
    if config.stage == "2" and (not stages or stages[-1]["stage"] != "1"):
        found = f"its last training stage is {stages[-1]['stage']!r}" if stages else "it was never trained"
        raise SeteVSRError(
            f"stage 2 starts from a stage-1 result, but {config.pretrained_model} is not one ({found}); "
            "point pretrained_model at the output_dir of a stage-1 run"
        )


# --------------------------------------------------------------------------------------------------------------- losses


def batch_generator(device: torch.device, *key: int) -> torch.Generator:
    """A generator seeded by integers only (seed, process, epoch, batch), so noise does not depend on history."""
    return torch.Generator(device=device).manual_seed(hash(key) % 2**63)


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
    generator: torch.Generator,
) -> torch.Tensor:
    """The DDPM loss of Eq. 1 on a batch of clips: `||eps - eps_theta(z_t, t, LR latents, SAM2(LR))||^2`.

    The conditioning comes from :func:`sete_vsr.models.lr_inputs.encode_conditioning`, as at inference.

    One timestep per clip, independent noise per frame. The target is the noise for an ``epsilon`` scheduler (the
    paper) and the velocity for a ``v_prediction`` one. The clean latents are drawn from the VAE posterior of
    ``batch["hr_usm"]`` when the batch has it (``data.usm_gt``), of ``batch["hr"]`` otherwise. A batch of the latent
    cache (``data.cache_dir``) brings the encoder outputs instead of pixels: ``"hr_moments"`` (the posterior's
    parameters), ``"lr_latents"`` and ``"semantic_embeds"``, each `(B, F, ...)`; the draws from ``generator`` are the
    same either way, so a cached batch gives the loss of the batch it was made from.
    """
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

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
        latents = (posterior.sample(generator) * vae.config.scaling_factor).float()
    noise = torch.randn(latents.shape, generator=generator, device=latents.device)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (clips,), generator=generator, device=latents.device
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
    batch: dict[str, torch.Tensor], vae: torch.nn.Module, lpips_net, config: TrainConfig, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Reconstruction losses of the temporal decoder on HR clips; ``"loss"`` is their weighted sum.

    * ``l1``: mean absolute error of the decoded frames;
    * ``lpips``: LPIPS (AlexNet) of the decoded frames, when ``lpips_net`` is available;
    * ``temporal``: L1 between the frame differences of output and target, which penalises flicker.
    """
    hr = batch["hr"]  # (B, F, 3, H, W) in [-1, 1]
    clips, num_frames = hr.shape[:2]
    target = hr.flatten(0, 1)
    output = vae(target, num_frames=num_frames, sample_posterior=True, generator=generator).sample.float()
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


# ----------------------------------------------------------------------------------------------------------- validation


@torch.no_grad()
def log_validation(
    pipeline, clip: dict[str, Any], config: TrainConfig, accelerator: Accelerator, global_step: int, weight_dtype
) -> dict[str, float]:
    """Render the validation clip, log PSNR, LPIPS and the frames (bicubic / output / GT rows) to the trackers.

    Without the LPIPS weights, ``validation/lpips_skipped`` (text: why) is logged in place of ``validation/lpips``.
    """
    from ..eval.metrics import WeightsUnavailable, build_metric

    logger.info(f"validation at step {global_step}: rendering {config.validation.num_frames} frames")
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator(device=accelerator.device).manual_seed(config.validation.seed)
    autocast = (
        torch.autocast(accelerator.device.type, dtype=weight_dtype)
        if weight_dtype != torch.float32
        else contextlib.nullcontext()
    )
    lr, gt = to_uint8(clip["lr"]), to_uint8(clip["hr"])
    with autocast:
        output = pipeline(
            lr, num_inference_steps=config.validation.num_inference_steps, generator=generator, output_type="np"
        ).frames
    output = np.asarray(output)
    output = output if output.dtype == np.uint8 else (output.clip(0, 1) * 255).round().astype(np.uint8)
    output = output.reshape(gt.shape)
    metrics = {"validation/psnr": float(build_metric("psnr").compute(output, gt).mean())}
    try:
        metrics["validation/lpips"] = float(build_metric("lpips", device=accelerator.device).compute(output, gt).mean())
    except WeightsUnavailable as err:
        logger.info(f"validation LPIPS skipped: {err}")
        accelerator.log({"validation/lpips_skipped": str(err)}, step=global_step)
    accelerator.log(metrics, step=global_step)
    bicubic = F.interpolate(torch.from_numpy(lr).permute(0, 3, 1, 2).float(), size=gt.shape[1:3], mode="bicubic")
    bicubic = bicubic.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
    rows = np.concatenate([np.concatenate(list(frames), axis=1) for frames in (bicubic, output, gt)], axis=0)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("validation/bicubic_output_gt", rows, global_step, dataformats="HWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"validation": wandb.Image(rows, caption="bicubic / output / GT")}, step=global_step)
    logger.info(", ".join(f"{key}={value:.4f}" for key, value in metrics.items()))
    return metrics


# ------------------------------------------------------------------------------------------------------------------ end


def record_training(pipeline, config: TrainConfig, global_step: int, metrics: dict[str, float]) -> None:
    """Add this run to the pipeline's construction record, which its model card and the stage-2 check read."""
    record = dict(pipeline.config.get("assembled_from") or {})
    data = config.data
    stage = {
        "stage": config.stage,
        "steps": global_step,
        "from": config.pretrained_model,
        "ema": config.use_ema,
        "data": {"type": data.type, "root": data.root, "exclude": data.exclude, "crop_size": data.crop_size},
        "degradation": training_degradation(config),
        "window_length": data.num_frames,
        "batch_size": config.train_batch_size,
        "learning_rate": config.learning_rate,
    }
    stage.update(metrics)
    stages = [*record.get("training_stages", []), stage]
    names = {"1": "stage 1 (spatial U-Net: SeAM, LR conditioning)", "2": "stage 2 (temporal transformer, TSAM)"}
    done = "; ".join(
        f"{names.get(s['stage'], 'temporal VAE decoder')} for {s['steps']} steps"
        + (f" on {s['window_length']}-frame clips of {Path(str(s['data']['root'])).name}" if "data" in s else "")
        + (f" ({s['degradation']} degradation)" if "degradation" in s else "")
        for s in stages
    )
    record["training_stages"] = stages
    record["temporal"] = bool(pipeline.unet.config.temporal)
    record["training"] = f"{done}, with `accelerate launch -m sete_vsr.train` (last run's config: `{CONFIG_NAME}`)"
    pipeline.register_to_config(assembled_from=record)


def push_to_hub(config: TrainConfig) -> None:
    """Upload the saved pipeline (not the checkpoints or logs) to ``hub_model_id``."""
    from huggingface_hub import create_repo, upload_folder

    repo_id = create_repo(config.hub_model_id, exist_ok=True).repo_id
    upload_folder(
        repo_id=repo_id,
        folder_path=config.output_dir,
        commit_message=f"SeTe-VSR stage {config.stage}",
        ignore_patterns=[f"{CHECKPOINT_PREFIX}*", f"{config.logging_dir}/*"],
    )
    logger.info(f"pushed {config.output_dir} to https://huggingface.co/{repo_id}")


# ----------------------------------------------------------------------------------------------------------------- main


def main(config: TrainConfig) -> None:
    """Train one stage as described by ``config`` (see :class:`~sete_vsr.train.config.TrainConfig`)."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    # 1. Everything that can be wrong with the inputs is checked before any model is loaded.
    if config.use_8bit_adam:
        try:
            import bitsandbytes
        except ImportError as err:
            raise SeteVSRError(
                f"use_8bit_adam=true needs bitsandbytes ({err}): pip install bitsandbytes, or set use_8bit_adam=false"
            ) from err
    train_dataset = build_train_dataset(config)
    validation_clip = load_validation_clip(config)
    check_starting_pipeline(config)
    resume_path = find_resume_checkpoint(config)

    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=None if config.report_to == "none" else config.report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / config.logging_dir)
        ),
        # The data order of an epoch depends on (seed, epoch) only, which makes resuming exact.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    logger.info(accelerator.state, main_process_only=False)
    set_seed(config.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / CONFIG_NAME)
    if config.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True

    # 2. Models: the trained one keeps fp32 weights, the frozen ones run in the mixed-precision dtype.
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    from ..pipelines.pipeline import SeTeVSRPipeline

    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    pipeline = SeTeVSRPipeline.from_pretrained(config.pretrained_model)
    vae, unet, semantic_encoder = pipeline.vae, pipeline.unet, pipeline.semantic_encoder
    if config.data.cache_dir is not None:
        check_cache_encoders(train_dataset, vae, semantic_encoder, unet.semantic_grid_size)
    noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    for module in (vae, unet, semantic_encoder):
        module.requires_grad_(False)
    if config.stage == "vae":
        model, frozen = vae, [unet, semantic_encoder]
        trainable = list(vae.temporal_parameters())
        lpips_net = load_lpips(accelerator.device) if config.vae_loss.lpips > 0 else None
    else:
        model, frozen = unet, [vae, semantic_encoder]
        if config.stage == "2":
            unet.add_temporal_modules(temporal_transformer=config.temporal_transformer, tsam=config.tsam)
            # The window the temporal modules learn on is the pipeline's default window (unet.config.num_frames).
            unet.register_to_config(num_frames=config.data.num_frames)
        trainable = [param for _, param in unet.stage_parameters(int(config.stage), config.only_new_modules)]
    for param in trainable:
        param.requires_grad_(True)
    for module in frozen:
        module.to(accelerator.device)
        if weight_dtype != torch.float32:
            module.to(dtype=weight_dtype)
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    logger.info(f"stage {config.stage}: training {sum(p.numel() for p in trainable):,} parameters")

    ema = None
    if config.use_ema:
        ema = EMAModel(trainable, decay=config.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    adam = bitsandbytes.optim.Adam8bit if config.use_8bit_adam else torch.optim.Adam
    optimizer = adam(
        trainable,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.adam_weight_decay,
    )

    # 3. Data and schedule.
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=config.train_batch_size,
        shuffle=True,
        num_workers=config.data.num_workers,
        collate_fn=collate_clips,
    )
    lr_scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_train_steps * accelerator.num_processes,
    )
    model, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, lr_scheduler
    )
    updates_per_epoch = math.ceil(len(train_dataloader) / config.gradient_accumulation_steps)
    num_epochs = math.ceil(config.max_train_steps / updates_per_epoch)
    if config.data.cache_dir is not None and num_epochs > train_dataset.passes:
        logger.warning(
            f"the latent cache holds {train_dataset.passes} pass(es) for {num_epochs} epochs: "
            "later epochs reuse its draws (fill it with more --passes for more variety)"
        )
    if accelerator.is_main_process:
        accelerator.init_trackers(config.tracker_project_name, config=config_to_dict(config))

    global_step = 0
    if resume_path is not None:
        logger.info(f"resuming from {resume_path}")
        accelerator.load_state(str(resume_path))
        global_step = checkpoint_step(resume_path)
    first_epoch = global_step // updates_per_epoch

    total_batch = config.train_batch_size * accelerator.num_processes * config.gradient_accumulation_steps
    logger.info("***** Running training *****")
    logger.info(f"  clips = {len(train_dataset)}, frames per clip = {config.data.num_frames}, epochs = {num_epochs}")
    logger.info(f"  batch per device = {config.train_batch_size}, total batch = {total_batch}")
    logger.info(f"  optimization steps = {config.max_train_steps}, starting at step {global_step}")

    def validate(step: int) -> dict[str, float]:
        """Render the validation clip with the current (EMA, when enabled) weights, then go back to training."""
        if ema is not None:
            ema.store(trainable)
            ema.copy_to(trainable)
        model.eval()
        try:
            render = SeTeVSRPipeline(
                vae=vae, unet=unet, scheduler=pipeline.scheduler, semantic_encoder=semantic_encoder
            ).to(accelerator.device)
            return log_validation(render, validation_clip, config, accelerator, step, weight_dtype)
        finally:
            model.train()
            if ema is not None:
                ema.restore(trainable)

    # 4. The loop.
    progress_bar = tqdm(
        range(config.max_train_steps), initial=global_step, desc="steps", disable=not accelerator.is_local_main_process
    )
    train_loss = 0.0
    batches_seen = 0  # by this process in this run, to report the accumulation
    for epoch in range(first_epoch, num_epochs):
        train_dataset.set_epoch(epoch)
        train_dataloader.set_epoch(epoch)
        skipped = (global_step % updates_per_epoch) * config.gradient_accumulation_steps if epoch == first_epoch else 0
        batches = accelerator.skip_first_batches(train_dataloader, skipped) if skipped else train_dataloader
        for index, batch in enumerate(batches, start=skipped):
            generator = batch_generator(accelerator.device, config.seed, accelerator.process_index, epoch, index)
            batches_seen += 1
            with accelerator.accumulate(model):
                if config.stage == "vae":
                    terms = vae_loss(batch, model, lpips_net, config, generator)
                    loss = terms["loss"]
                else:
                    loss = diffusion_loss(batch, model, vae, semantic_encoder, noise_scheduler, generator)
                average = accelerator.gather(loss.detach().repeat(config.train_batch_size)).mean()
                train_loss += average.item() / config.gradient_accumulation_steps
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()

            if not accelerator.sync_gradients:
                continue
            if ema is not None:
                ema.step(trainable)
            global_step += 1
            progress_bar.update(1)
            logs = {"train_loss": train_loss, "lr": lr_scheduler.get_last_lr()[0]}
            if config.stage == "vae":
                logs.update({f"train_{name}": value.item() for name, value in terms.items() if name != "loss"})
            accelerator.log(logs, step=global_step)
            progress_bar.set_postfix(loss=train_loss)
            train_loss = 0.0

            if config.checkpointing_steps and global_step % config.checkpointing_steps == 0:
                save_checkpoint(accelerator, config, global_step)
            every = config.validation.every_n_steps
            periodic = every and global_step % every == 0 and global_step < config.max_train_steps  # last: at the end
            if validation_clip is not None and periodic and accelerator.is_main_process:
                validate(global_step)
            if global_step >= config.max_train_steps:
                break
    logger.info(f"trained to step {global_step}: {batches_seen} batches on this process in this run")

    # 5. Save the whole pipeline with the trained component (fp32; with EMA, the EMA of the trained tensors and the
    # starting value of the frozen ones: the raw weights stay in the checkpoints) and upload it.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        trained = accelerator.unwrap_model(model)
        if ema is not None:
            ema.copy_to(trainable)
        # Frozen components come fresh from the starting pipeline, in full precision.
        replaced = {"vae": trained} if config.stage == "vae" else {"unet": trained}
        final = SeTeVSRPipeline.from_pretrained(config.pretrained_model, **replaced).to(accelerator.device)
        metrics = {}
        if validation_clip is not None:
            metrics = log_validation(final, validation_clip, config, accelerator, global_step, torch.float32)
        record_training(final, config, global_step, metrics)
        final.save_pretrained(output_dir)
        logger.info(f"saved the stage-{config.stage} pipeline to {output_dir}")
        if config.push_to_hub:
            push_to_hub(config)
    accelerator.end_training()
