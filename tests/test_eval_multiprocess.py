"""Evaluation split over processes with Accelerate: one device per process, every clip once, main process reports."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sete_vsr.cli import main
from sete_vsr.errors import SeteVSRError
from sete_vsr.eval.runner import _on_device, assemble, resolve_device
from sete_vsr.method_options import RecurrentBaselineOptions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _state(device: str, local: int = 0):
    return SimpleNamespace(device=torch.device(device), local_process_index=local, process_index=local)


def test_each_process_gets_its_own_device():
    assert resolve_device("auto", _state("cuda:1", 1)) == "cuda:1"  # PartialState().device
    assert resolve_device(None, _state("cpu", 1)) == "cpu"
    assert resolve_device("cuda", _state("cuda:1", 1)) == "cuda:1"  # bare cuda -> the local process's GPU
    assert resolve_device("cuda", _state("cpu", 3)) == "cuda:3"
    assert resolve_device("cuda:0", _state("cuda:1", 1)) == "cuda:0"  # pinned
    assert resolve_device("cpu", _state("cuda:1", 1)) == "cpu"
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") in ("cpu", "cuda")
    # method options follow the process's device unless they pin another one
    given = RecurrentBaselineOptions(device="auto", chunk_length=50)
    assert _on_device(given, "auto", "cuda:1") == RecurrentBaselineOptions(device="cuda:1", chunk_length=50)
    assert _on_device(RecurrentBaselineOptions(), "cuda", "cuda:1").device == "cuda:1"
    assert _on_device(RecurrentBaselineOptions(device="cpu"), "cuda", "cuda:1").device == "cpu"


def test_a_clip_computed_twice_is_an_error():
    dataset = SimpleNamespace(name="d", root=".", clips=[], has_gt=True, degradation="BI", lr_origin="", max_frames=None, info={})
    metrics = {"psnr": SimpleNamespace(info=SimpleNamespace(to_dict=dict))}
    rec = {"clip": "a", "method": "m", "metric": "psnr", "values": [1.0]}
    with pytest.raises(SeteVSRError, match="computed twice"):
        assemble(dataset, ["m"], metrics, {}, [rec, dict(rec)], {}, {}, SimpleNamespace(profile_row=0.5))


@pytest.mark.slow
@pytest.mark.shared
def test_accelerate_launch_two_processes_equals_one(shared, tmp_path, capfd):
    """`accelerate launch` with 2 CPU processes on 2 frames of Vid4 (BI, bicubic) gives the single-process results.

    `accelerate launch --cpu --num_processes 2` starts one process unless run under MPI, so the
    two processes come from the torchrun launcher (`--multi_gpu`) and are CPU ones (gloo) through
    `--device cpu`.
    """
    launcher = Path(sys.executable).with_name("accelerate")  # the venv's, next to its python
    launcher = str(launcher) if launcher.exists() else shutil.which("accelerate")
    assert launcher is not None, "the accelerate CLI is not installed (accelerate is a dependency)"
    root = shared("data", "frames", "vid4_GT")
    common = ["eval", "--methods", "bicubic", "--dataset", "vid4", "--root", str(root), "--degradation", "BI",
              "--metrics", "psnr_y,ssim_y", "--max-frames", "2", "--device", "cpu", "--no-plots", "--no-progress"]
    launch = [launcher, "launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port()), "-m", "sete_vsr"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    # A known, not yet understood crash: in some launches a rank aborts at start-up ("terminate called without an
    # active exception", SIGABRT) before it evaluates anything; the code at the start of stop 12 does it too (5 of 8
    # launches in CI's environment). Only that crash is launched again, at most 4 times; any other failure fails.
    for _ in range(4):
        run = subprocess.run([*launch, *common, "--out", str(tmp_path / "two")], env=env, capture_output=True,
                             text=True, timeout=300)
        if run.returncode == 0 or "terminate called without an active exception" not in run.stderr:
            break
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("**Table: vid4**") == 1  # only the main process reports

    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    capfd.readouterr()
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    one = json.loads((tmp_path / "one" / "results.json").read_text())

    clips = ["calendar", "city", "foliage", "walk"]
    assert [p["process"] for p in two["processes"]] == [0, 1]
    assert all(p["device"] == "cpu" for p in two["processes"])
    ran = [c for p in two["processes"] for c in p["clips"]]
    assert sorted(ran) == clips and all(two["processes"][i]["clips"] for i in (0, 1))  # each clip once, both worked
    assert one["processes"] == [{"process": 0, "device": "cpu", "clips": clips}]
    for key in ("summary", "per_clip", "per_frame"):
        assert _flat(two[key]) == pytest.approx(_flat(one[key]), rel=1e-9), key
    assert set(two["per_clip"]["ssim_y"]["bicubic"]) == set(clips)


def _flat(tree, prefix: str = "") -> dict:
    """``{"a": {"b": [1, 2]}}`` -> ``{"a/b/0": 1, "a/b/1": 2}``, for comparing nested results value by value."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}/").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{prefix}{i}/").items()}
    return {prefix.rstrip("/"): tree}
