"""The pipeline behaves as diffusers users expect: no deprecation or spurious warnings on the way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sete_vsr.cli import main
from sete_vsr.data.video_io import write_video


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("native") / "tiny"
    assert main(["init", str(folder), "--preset", "tiny", "--random-weights"]) == 0
    return folder


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_upscale_prints_no_deprecation_or_float32_warning(model, tmp_path, dtype):
    source = tmp_path / "in.mp4"
    write_video(source, np.random.RandomState(0).randint(0, 256, (3, 16, 24, 3), dtype=np.uint8), fps=25)
    argv = [sys.executable, "-m", "sete_vsr", "upscale", str(source), "-o", str(tmp_path / "out.mp4"),
            "--model", str(model), "--steps", "1", "--no-progress", "--dtype", dtype, "--device", "cpu"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert "FutureWarning" not in result.stderr and "torch_dtype" not in result.stderr, result.stderr
    assert "should be kept in float32" not in result.stderr, result.stderr


def test_offload_chain_frees_the_unet_before_decoding(model):
    """Model CPU offload moves a model off the device when the next one in ``model_cpu_offload_seq`` runs; the
    decoder runs right after the last denoising step, so the U-Net must be followed by the VAE in the chain."""
    import torch

    from sete_vsr import SeTeVSRPipeline

    pipe = SeTeVSRPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    calls = []
    pipe.unet.register_forward_pre_hook(lambda *args: calls.append("unet"))
    pipe.vae.decoder.conv_in.register_forward_pre_hook(lambda *args: calls.append("vae.decoder"))
    frames = np.random.RandomState(0).randint(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    pipe(frames, num_inference_steps=1, generator=torch.Generator().manual_seed(0), output_type="np")
    chain = pipe.model_cpu_offload_seq.split("->")
    first_decode = calls.index("vae.decoder")
    assert "unet" in calls[:first_decode] and "unet" not in calls[first_decode:]
    assert chain.index("vae") == chain.index("unet") + 1  # running the VAE offloads the U-Net
