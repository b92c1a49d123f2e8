"""GPU check: inference speed and memory, and one training step of each stage, of the full SeTe-VSR configuration.

The full SD 2.1-base configuration (SAM2.1 Hiera-tiny, random weights built in code: no download) upscales 16 random
frames of 320x180 to 1280x720 at the pipeline's default windows, tiles and decoding chunks, once per dtype (bf16,
fp16) and attention backend (PyTorch SDPA, and xformers when installed), for ``--steps`` denoising steps. Timestamps
at the start and end of the denoising loop and after every step split the run into the conditioning pass, the steps
and decoding. The default ``"shifted"`` window mode runs its first fifth of the steps with blended, overlapping
windows and tiles, which cost more: the run makes its first two steps blended (``blended_steps=2``; the first one also
warms up) and the rest shifted, the second step gives a blended step's seconds and the median of the rest a shifted
step's, and 50- and 20-step runs are extrapolated as the pipeline runs them: conditioning + 10 (4) blended + 40 (16)
shifted steps + decoding. Peak device memory is ``torch.cuda.max_memory_allocated`` over each run. Memory against
length: the same bf16 pipeline, one step, on 16 and on 144 frames (more than two segments of the default 8 windows of
8 frames): the peaks should be equal, as the pipeline holds one segment at a time.

Then one stage-1 and one stage-2 training step at the paper's settings (batch 3, 512 HR crops, stage 2 on clips of 5
frames, gradient checkpointing, bf16 mixed precision, Adam), through the training loop's own pieces: the models set up
as ``sete_vsr.train.loop.main`` sets them up (frozen VAE and SAM2 in bf16, trainable U-Net parameters from
``stage_parameters`` in fp32), the loss of ``diffusion_loss`` on a batch as ``collate_clips`` returns it, and
Accelerate's backward, clipping and optimizer step. Two steps each; the second is timed (the first includes the
optimizer's state allocation), peak memory over both.

    python benchmarks/gpu_check.py                      # on the GPU (sized for at most 8 minutes on one H100)
    python benchmarks/gpu_check.py --device cpu --smoke # tiny preset and sizes, seconds: checks the script runs

Prints a line per measurement, then a JSON line last: ``inference`` (per dtype and attention backend: seconds per
frame per step, extrapolated seconds per frame at 50 and 20 steps, conditioning and decoding seconds, peak memory),
``memory_vs_length`` (peak memory per frame count and their ratio), ``training`` (per stage: step seconds, peak
memory) and the device. Memory is in GiB: the device's peak allocation on CUDA, the process's peak resident set size on a CPU (which only grows, so later figures include earlier peaks).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import time

import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging

from sete_vsr.pipelines.components import sd21_random_components, tiny_components
from sete_vsr.pipelines.pipeline import SeTeVSRPipeline
from sete_vsr.pipelines.segments import default_blended_steps

GIB = 2**30
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def components(smoke: bool, temporal: bool = True) -> dict:
    return tiny_components(seed=0, temporal=temporal) if smoke else sd21_random_components(seed=0, temporal=temporal)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / GIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # KiB on Linux


class Discard:
    """A writer that takes the pipeline's uint8 frames and keeps none (no file encoding in the timings)."""

    def write(self, frame: np.ndarray) -> None:
        pass


def attention_backends() -> list[str]:
    try:
        import xformers  # noqa: F401
    except ImportError:
        return ["sdpa"]
    return ["sdpa", "xformers"]


def time_inference(pipe: SeTeVSRPipeline, frames: np.ndarray, steps: int, device: torch.device) -> dict[str, float]:
    """One pipeline run: conditioning, per-step and decoding seconds, extrapolations and peak memory."""
    marks: list[float] = []

    def on_step_end(pipe, step, t, kwargs):
        sync(device)
        marks.append(time.perf_counter())
        return {}

    prepare = pipe.prepare_latents

    def prepare_latents(*args, **kwargs):
        latents = prepare(*args, **kwargs)
        sync(device)
        marks.append(time.perf_counter())
        return latents

    pipe.prepare_latents = prepare_latents
    blended_run = max(1, min(2, steps - 1))  # two blended steps when there are shifted ones after them
    reset_peak(device)
    sync(device)
    start = time.perf_counter()
    try:
        pipe(frames, num_inference_steps=steps, generator=torch.Generator(device).manual_seed(0), write_to=Discard(),
             callback_on_step_end=on_step_end, blended_steps=blended_run)
    finally:
        del pipe.prepare_latents
    sync(device)
    end = time.perf_counter()
    count = len(frames)
    step_times = np.diff(marks)
    blended = float(step_times[blended_run - 1])
    shifted = statistics.median(step_times[blended_run:]) if steps > blended_run else blended
    conditioning, decoding = marks[0] - start, end - marks[-1]

    def denoising(num_steps: int) -> float:  # seconds of num_steps steps, the first default_blended_steps blended
        blended_steps = default_blended_steps(num_steps)
        return blended_steps * blended + (num_steps - blended_steps) * shifted

    def per_frame(num_steps: int) -> float:
        return (conditioning + denoising(num_steps) + decoding) / count

    return {
        "s_per_frame_step": denoising(50) / 50 / count,
        "s_per_frame_step_blended": blended / count,
        "s_per_frame_step_shifted": shifted / count,
        "s_per_frame_50_steps": per_frame(50),
        "s_per_frame_20_steps": per_frame(20),
        "first_step_s": float(step_times[0]),
        "conditioning_s": conditioning,
        "decoding_s": decoding,
        "peak_memory_gib": peak_gib(device),
    }


def training_batch(stage: str, batch_size: int, crop: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch as ``collate_clips`` gives it: HR `(B, F, 3, crop, crop)`, LR `(B, F, 3, crop/4, crop/4)`, in [-1, 1]."""
    num_frames = 1 if stage == "1" else 5  # configs/stage1.yaml, configs/stage2.yaml: data.num_frames
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(batch_size, num_frames, 3, crop, crop, generator=generator) * 2 - 1
    lr = torch.nn.functional.avg_pool2d(hr.flatten(0, 1), 4).unflatten(0, (batch_size, num_frames))
    return {"hr": hr.to(device), "lr": lr.to(device)}


def time_training(stage: str, smoke: bool, batch_size: int, crop: int, device: torch.device) -> dict[str, float]:
    """Two training steps of ``stage`` ("1" or "2") at bf16 mixed precision; the second one timed."""
    from accelerate import Accelerator
    from diffusers import DDPMScheduler

    from sete_vsr.train.losses import diffusion_loss, sample_generator

    accelerator = Accelerator(mixed_precision="bf16", cpu=device.type == "cpu")
    parts = components(smoke, temporal=False)
    vae, unet, semantic_encoder = parts["vae"], parts["unet"], parts["semantic_encoder"]
    noise_scheduler = DDPMScheduler.from_config(parts["scheduler"].config)
    for module in (vae, unet, semantic_encoder):
        module.requires_grad_(False)
    if stage == "2":
        unet.add_temporal_modules()
        unet.register_to_config(num_frames=5)
    trainable = [param for _, param in unet.stage_parameters(int(stage))]
    for param in trainable:
        param.requires_grad_(True)
    for module in (vae, semantic_encoder):
        module.to(accelerator.device, dtype=torch.bfloat16)
    unet.enable_gradient_checkpointing()
    unet.train()
    optimizer = torch.optim.Adam(trainable, lr=1e-4 if stage == "1" else 5e-5)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    batch = training_batch(stage, batch_size, crop, accelerator.device)

    reset_peak(device)
    seconds = []
    for index in range(2):
        sync(device)
        start = time.perf_counter()
        generator = sample_generator(accelerator.device, 0, index)
        loss = diffusion_loss(batch, unet, vae, semantic_encoder, noise_scheduler, generator)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        sync(device)
        seconds.append(time.perf_counter() - start)
    result = {
        "step_s": seconds[1],
        "first_step_s": seconds[0],
        "peak_memory_gib": peak_gib(device),
        "trained_parameters": sum(param.numel() for param in trainable),
        "loss": float(loss.detach()),
    }
    del unet, optimizer, vae, semantic_encoder, parts, accelerator
    return result


def rounded(figures: dict) -> dict:
    return {key: round(value, 5) if isinstance(value, float) else value for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny preset and sizes: checks the script in seconds")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per setting (default 4; 2 with --smoke)")
    args = parser.parse_args()

    diffusers_logging.set_verbosity_error()  # casting whole pipelines to bf16/fp16 is intended here
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    num_frames, lr_size = (2, (16, 16)) if args.smoke else (16, (180, 320))
    batch_size, crop = (1, 32) if args.smoke else (3, 512)
    steps = 2 if args.smoke else args.steps
    frames = np.random.default_rng(0).integers(0, 256, (num_frames, *lr_size, 3), dtype=np.uint8)

    start = time.perf_counter()
    pipe = SeTeVSRPipeline(**components(args.smoke)).to(device)
    pipe.set_progress_bar_config(disable=True)
    inference: dict[str, dict[str, dict[str, float]]] = {}
    for dtype_name, dtype in DTYPES.items():
        pipe.to(dtype=dtype)
        inference[dtype_name] = {}
        for backend in attention_backends():
            if backend == "xformers":
                pipe.enable_xformers_memory_efficient_attention()
            result = time_inference(pipe, frames, steps, device)
            if backend == "xformers":
                pipe.disable_xformers_memory_efficient_attention()
            inference[dtype_name][backend] = result
            print(f"inference {dtype_name} {backend}: {result['s_per_frame_step']:.4f} s/frame/step, "
                  f"peak {result['peak_memory_gib']:.2f} GiB", flush=True)
    pipe.to(dtype=torch.bfloat16)
    lengths = (2, 6) if args.smoke else (16, 144)
    memory = {}
    for length in lengths:
        video = np.resize(frames, (length, *frames.shape[1:]))  # the frames repeated
        memory[str(length)] = time_inference(pipe, video, 1, device)["peak_memory_gib"]
    memory_vs_length = {"peak_memory_gib": memory, "ratio": memory[str(lengths[1])] / memory[str(lengths[0])]}
    print(f"memory against length (bf16, 1 step): {memory}", flush=True)
    del pipe

    training = {}
    for stage in ("1", "2"):
        training[f"stage{stage}"] = result = time_training(stage, args.smoke, batch_size, crop, device)
        print(f"training stage {stage}: {result['step_s']:.3f} s/step, peak {result['peak_memory_gib']:.2f} GiB",
              flush=True)

    print(json.dumps({
        "inference": {dtype: {backend: rounded(figures) for backend, figures in by_backend.items()}
                      for dtype, by_backend in inference.items()},
        "memory_vs_length": {"peak_memory_gib": rounded(memory_vs_length["peak_memory_gib"]),
                             "ratio": round(memory_vs_length["ratio"], 4)},
        "training": {stage: rounded(figures) for stage, figures in training.items()},
        "settings": {
            "preset": "tiny (smoke)" if args.smoke else "sd21-base layout, SAM2.1 Hiera-tiny, random weights",
            "frames": num_frames,
            "lr_size": list(lr_size),
            "steps_run": steps,
            "train_batch_size": batch_size,
            "train_crop": crop,
            "train_mixed_precision": "bf16",
            "attention_backends": attention_backends(),
        },
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "memory": "device peak allocation" if device.type == "cuda" else "process peak RSS",
        "seconds_total": round(time.perf_counter() - start, 1),
    }))


if __name__ == "__main__":
    main()
