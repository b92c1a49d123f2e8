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
``model_index.json``), which its model card shows and a stage-2 run checks. Reproducibility: the data order of
an epoch depends only on ``(seed, epoch)``, and every draw of a clip (crop, flips, degradation, then the model's noise
and timestep) only on ``(seed, epoch, dataset index)``. A resumed run therefore continues exactly as an uninterrupted
one would, and N processes with batch B train on the samples, in the order and with the noise, of one process with
batch N*B (Accelerate hands consecutive batches of the epoch's order to the processes in turn).

:func:`main` tells the run step by step: check the inputs, start the Accelerator, load the models, prepare the
optimisation, resume, train, then save (and upload) the pipeline. The losses are in :mod:`.losses`, the validation
renders in :mod:`.validation`, the checks of the starting pipeline in :mod:`.starting_pipeline`, checkpoints in
:mod:`.checkpoints` and the end-of-run record and upload in :mod:`.publish`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, DistributedType, ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from ..errors import SeteVSRError
from ..options import has_accelerator
from .checkpoints import (
    CONFIG_NAME,
    checkpoint_step,
    find_resume_checkpoint,
    gather_trained_component,
    named_parameters,
    save_checkpoint,
    save_lora,
    save_trained_component,
)
from .config import TrainConfig, config_to_dict, save_config
from .data import build_train_dataset, check_cache_encoders, collate_clips, load_validation_clip
from .losses import diffusion_loss, load_lpips, sample_generators, vae_loss
from .publish import push_to_hub, record_training
from .starting_pipeline import check_starting_pipeline
from .validation import log_validation

logger = get_logger(__name__, log_level="INFO")


@dataclass
class Inputs:
    """What a run reads and checks before any model is loaded."""

    train_dataset: Any  # the seeded clips of build_train_dataset (set_epoch), or the latent cache
    validation_clip: dict[str, Any] | None  # "lr", "hr": (F, 3, H, W) tensors in [-1, 1]
    resume_path: Path | None
    optimizer_class: type  # torch.optim.Adam, or bitsandbytes' Adam8bit with use_8bit_adam


@dataclass
class Models:
    """The starting pipeline, the component it trains and what trains it."""

    pipeline: Any  # SeTeVSRPipeline; its vae, unet and semantic_encoder are the modules in training
    model: torch.nn.Module  # the trained component (vae or unet), wrapped by accelerator.prepare
    trainable: list[torch.nn.Parameter]
    trainable_names: list[str]  # of the trainable parameters in the unwrapped model, in the same order
    noise_scheduler: Any  # DDPMScheduler of the pipeline's scheduler config
    weight_dtype: torch.dtype  # of the frozen components
    lpips_net: torch.nn.Module | None  # VAE stage, when its weights are available
    ema: Any | None  # diffusers EMAModel of the trainable parameters, with use_ema


@dataclass
class Optimisation:
    """The prepared optimizer, schedule and data loader, and the length of the run in epochs."""

    optimizer: Any
    lr_scheduler: Any
    dataloader: torch.utils.data.DataLoader
    updates_per_epoch: int
    num_epochs: int


def check_inputs(config: TrainConfig) -> Inputs:
    """Everything that can be wrong with the inputs, checked before any model is loaded."""
    optimizer_class = torch.optim.Adam
    if config.use_8bit_adam:
        try:
            import bitsandbytes
        except ImportError as err:
            raise SeteVSRError(
                f"use_8bit_adam=true needs bitsandbytes ({err}): pip install bitsandbytes, or set use_8bit_adam=false"
            ) from err
        optimizer_class = bitsandbytes.optim.Adam8bit
    train_dataset = build_train_dataset(config)
    validation_clip = load_validation_clip(config)
    check_starting_pipeline(config)
    return Inputs(train_dataset, validation_clip, find_resume_checkpoint(config), optimizer_class)


def start_accelerator(config: TrainConfig) -> Accelerator:
    """The run's Accelerator, seeded; the main process writes the config into ``output_dir``."""
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        cpu=not has_accelerator(),  # several processes on a machine without a GPU: CPU ones over gloo
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
    check_distribution(config, accelerator.distributed_type)
    set_seed(config.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / CONFIG_NAME)
    if config.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
    return accelerator


def check_distribution(config: TrainConfig, distributed_type: DistributedType) -> None:
    """Refuse, in one line, settings the run's distribution cannot follow: EMA under FSDP (each process would average
    its own shard, which cannot be saved whole)."""
    if config.use_ema and distributed_type == DistributedType.FSDP:
        raise SeteVSRError("use_ema is not supported under FSDP; use DDP or DeepSpeed ZeRO-2 (configs/accelerate/)")


def load_models(config: TrainConfig, accelerator: Accelerator, train_dataset) -> Models:
    """The starting pipeline with the stage's parameters trainable (fp32), the frozen components in the mixed dtype.

    Stage 2 adds the temporal modules first; with ``use_ema`` the EMA of the trainable parameters is registered for
    checkpointing.
    """
    from diffusers import DDPMScheduler
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
    lpips_net = None
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
        if config.lora_rank:
            trainable = add_lora(unet, config)
        else:
            trainable = [param for _, param in unet.stage_parameters(int(config.stage), config.only_new_modules)]
    for param in trainable:
        param.requires_grad_(True)
    names = {param: name for name, param in model.named_parameters()}
    trainable_names = [names[param] for param in trainable]
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
    return Models(pipeline, model, trainable, trainable_names, noise_scheduler, weight_dtype, lpips_net, ema)


def add_lora(unet, config: TrainConfig) -> list[torch.nn.Parameter]:
    """Give ``unet`` a LoRA of ``config.lora_rank`` on the attention projections of the stage's set; its parameters."""
    from peft import LoraConfig

    targets = unet.lora_target_modules(int(config.stage), config.only_new_modules)
    alpha = config.lora_alpha if config.lora_alpha is not None else config.lora_rank
    unet.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=targets))
    return [param for name, param in unet.named_parameters() if ".lora_" in name]


def prepare_optimisation(config: TrainConfig, accelerator: Accelerator, models: Models, inputs: Inputs) -> Optimisation:
    """Optimizer, learning-rate schedule and data loader, prepared by the Accelerator with the trained model."""
    from diffusers.optimization import get_scheduler

    optimizer = inputs.optimizer_class(
        models.trainable,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.adam_weight_decay,
    )
    dataloader = torch.utils.data.DataLoader(
        inputs.train_dataset,
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
    models.model, optimizer, dataloader, lr_scheduler = accelerator.prepare(
        models.model, optimizer, dataloader, lr_scheduler
    )
    updates_per_epoch = math.ceil(len(dataloader) / config.gradient_accumulation_steps)
    num_epochs = math.ceil(config.max_train_steps / updates_per_epoch)
    if config.data.cache_dir is not None and num_epochs > inputs.train_dataset.passes:
        logger.warning(
            f"the latent cache holds {inputs.train_dataset.passes} pass(es) for {num_epochs} epochs: "
            "later epochs reuse its draws (fill it with more --passes for more variety)"
        )
    return Optimisation(optimizer, lr_scheduler, dataloader, updates_per_epoch, num_epochs)


def resume(accelerator: Accelerator, resume_path: Path | None) -> int:
    """Load the state of ``resume_path`` (model, optimizer, schedule, EMA, RNGs); the global step to start from."""
    if resume_path is None:
        return 0
    logger.info(f"resuming from {resume_path}")
    accelerator.load_state(str(resume_path))
    return checkpoint_step(resume_path)


def training_step(
    config: TrainConfig,
    accelerator: Accelerator,
    models: Models,
    optimisation: Optimisation,
    batch: dict[str, torch.Tensor],
    generators: list[torch.Generator],
) -> tuple[float, dict[str, torch.Tensor]]:
    """Forward and backward of one batch under gradient accumulation; the optimizer steps once gradients sync.

    ``generators``: one per clip of the batch (:func:`~.losses.sample_generators`).

    Returns:
        The loss averaged over all processes' clips, and the loss terms (VAE stage: ``l1``, ``lpips``,
        ``temporal`` and their sum ``loss``; empty for the U-Net stages).
    """
    terms: dict[str, torch.Tensor] = {}
    with accelerator.accumulate(models.model):
        if config.stage == "vae":
            terms = vae_loss(batch, models.model, models.lpips_net, config, generators)
            loss = terms["loss"]
        else:
            pipeline = models.pipeline
            loss = diffusion_loss(
                batch, models.model, pipeline.vae, pipeline.semantic_encoder, models.noise_scheduler, generators
            )
        average = accelerator.gather(loss.detach().repeat(config.train_batch_size)).mean().item()
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            # FSDP clips over all shards only when given the whole module's parameters (frozen ones have no grad)
            sharded = accelerator.distributed_type == DistributedType.FSDP
            accelerator.clip_grad_norm_(models.model.parameters() if sharded else models.trainable, config.max_grad_norm)
        optimisation.optimizer.step()
        optimisation.lr_scheduler.step()
        optimisation.optimizer.zero_grad()
    return average, terms


def validate(
    config: TrainConfig, accelerator: Accelerator, models: Models, clip: dict[str, Any], step: int,
    gathered: torch.nn.Module | None = None,
) -> dict[str, float]:
    """Render the validation clip with the current (EMA, when enabled) weights, then go back to training.

    ``gathered``: the trained component with all its weights (:func:`gather_trained_component`), when the prepared
    one holds only a shard (FSDP)."""
    from ..pipelines.pipeline import SeTeVSRPipeline

    ema, trainable, pipeline = models.ema, models.trainable, models.pipeline
    if ema is not None:
        ema.store(trainable)
        ema.copy_to(trainable)
    models.model.eval()
    try:
        components = {name: getattr(pipeline, name) for name in ("vae", "unet", "scheduler", "semantic_encoder")}
        if gathered is not None:
            components["vae" if config.stage == "vae" else "unet"] = gathered
        render = SeTeVSRPipeline(**components).to(accelerator.device)
        return log_validation(render, clip, config, accelerator, step, models.weight_dtype)
    finally:
        models.model.train()
        if ema is not None:
            ema.restore(trainable)


def train(
    config: TrainConfig,
    accelerator: Accelerator,
    models: Models,
    optimisation: Optimisation,
    inputs: Inputs,
    global_step: int,
) -> int:
    """Train from ``global_step`` to ``max_train_steps``, logging, checkpointing and validating on the way.

    A resumed run skips the batches of its first epoch that the checkpoint has already seen. Returns the last step.
    """
    train_dataset, dataloader = inputs.train_dataset, optimisation.dataloader
    updates_per_epoch = optimisation.updates_per_epoch
    first_epoch = global_step // updates_per_epoch
    total_batch = config.train_batch_size * accelerator.num_processes * config.gradient_accumulation_steps
    logger.info("***** Running training *****")
    clips, epochs = len(train_dataset), optimisation.num_epochs
    logger.info(f"  clips = {clips}, frames per clip = {config.data.num_frames}, epochs = {epochs}")
    logger.info(f"  batch per device = {config.train_batch_size}, total batch = {total_batch}")
    logger.info(f"  optimization steps = {config.max_train_steps}, starting at step {global_step}")

    progress_bar = tqdm(
        range(config.max_train_steps), initial=global_step, desc="steps", disable=not accelerator.is_local_main_process
    )
    train_loss = 0.0
    batches_seen = 0  # by this process in this run, to report the accumulation
    for epoch in range(first_epoch, optimisation.num_epochs):
        train_dataset.set_epoch(epoch)
        dataloader.set_epoch(epoch)
        skipped = (global_step % updates_per_epoch) * config.gradient_accumulation_steps if epoch == first_epoch else 0
        batches = accelerator.skip_first_batches(dataloader, skipped) if skipped else dataloader
        for batch in batches:
            generators = sample_generators(accelerator.device, config.seed, epoch, batch["index"])
            batches_seen += 1
            average, terms = training_step(config, accelerator, models, optimisation, batch, generators)
            train_loss += average / config.gradient_accumulation_steps
            if not accelerator.sync_gradients:
                continue
            if models.ema is not None:
                models.ema.step(models.trainable)
            global_step += 1
            progress_bar.update(1)
            logs = {"train_loss": train_loss, "lr": optimisation.lr_scheduler.get_last_lr()[0]}
            logs.update({f"train_{name}": value.item() for name, value in terms.items() if name != "loss"})
            accelerator.log(logs, step=global_step)
            progress_bar.set_postfix(loss=train_loss)
            train_loss = 0.0

            if config.checkpointing_steps and global_step % config.checkpointing_steps == 0:
                folder = save_checkpoint(accelerator, config, global_step)
                trained = gather_trained_component(accelerator, models.model)  # on every process
                if accelerator.is_main_process:
                    name = "vae" if config.stage == "vae" else "unet"
                    save_trained_component(trained, folder, name, models.ema, models.trainable_names)
            every = config.validation.every_n_steps
            periodic = every and global_step % every == 0 and global_step < config.max_train_steps  # last: at the end
            if inputs.validation_clip is not None and periodic:
                # under FSDP the render needs the whole weights, gathered by every process
                sharded = accelerator.distributed_type == DistributedType.FSDP
                gathered = gather_trained_component(accelerator, models.model) if sharded else None
                if accelerator.is_main_process:
                    validate(config, accelerator, models, inputs.validation_clip, global_step, gathered)
            if global_step >= config.max_train_steps:
                break
    logger.info(f"trained to step {global_step}: {batches_seen} batches on this process in this run")
    return global_step


def save_pipeline(
    config: TrainConfig, accelerator: Accelerator, models: Models, validation_clip: dict[str, Any] | None,
    global_step: int,
) -> None:
    """Save the whole pipeline with the trained component, validated and recorded, and upload it when asked.

    The trained component is saved in fp32; with EMA, the EMA of the trained tensors and the starting value of the
    frozen ones (the raw weights stay in the checkpoints). The frozen components come fresh from the starting
    pipeline, in full precision. Every process takes part in gathering the trained weights (FSDP shards them).
    """
    from ..pipelines.pipeline import SeTeVSRPipeline

    accelerator.wait_for_everyone()
    trained = gather_trained_component(accelerator, models.model)
    if not accelerator.is_main_process:
        return
    if models.ema is not None:
        models.ema.copy_to(named_parameters(trained, models.trainable_names))
    replaced = {"vae": trained} if config.stage == "vae" else {"unet": trained}
    final = SeTeVSRPipeline.from_pretrained(config.pretrained_model, **replaced).to(accelerator.device)
    metrics = {}
    if validation_clip is not None:
        metrics = log_validation(final, validation_clip, config, accelerator, global_step, torch.float32)
    output_dir = Path(config.output_dir)
    if config.lora_rank:
        save_lora(trained, output_dir)
        logger.info(f"saved the stage-{config.stage} LoRA to {output_dir} (pipe.load_lora_weights('{output_dir}'))")
    else:
        record_training(final, config, global_step, metrics)
        final.save_pretrained(output_dir)
        logger.info(f"saved the stage-{config.stage} pipeline to {output_dir}")
    if config.push_to_hub:
        push_to_hub(config)


def main(config: TrainConfig) -> None:
    """Train one stage as described by ``config`` (see :class:`~sete_vsr.train.config.TrainConfig`)."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    inputs = check_inputs(config)
    accelerator = start_accelerator(config)
    models = load_models(config, accelerator, inputs.train_dataset)
    optimisation = prepare_optimisation(config, accelerator, models, inputs)
    if accelerator.is_main_process:
        accelerator.init_trackers(config.tracker_project_name, config=config_to_dict(config))
    global_step = resume(accelerator, inputs.resume_path)
    global_step = train(config, accelerator, models, optimisation, inputs, global_step)
    save_pipeline(config, accelerator, models, inputs.validation_clip, global_step)
    accelerator.end_training()
