"""Semantic Lens fine-tuning (``sete_vsr.plugins.train_semantic_lens``) and its weights in the ``+semantic-lens``
method.

The runs are the real ``accelerate launch -m sete_vsr.plugins.train_semantic_lens configs/tiny_semantic_lens.yaml`` on
the CPU, with a tiny random BasicVSR and a tiny random SAM2 on 256-pixel crops of the shared Vid4 frames: 4 efficient
steps straight, the same run resumed from its step-2 checkpoint, and 1 full-tuning step. Errors are checked in-process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, SHARED, shared_path
from sete_vsr.methods import load_method
from sete_vsr.plugins.train_semantic_lens import WEIGHTS_NAME, load_semantic_lens_config
from sete_vsr.plugins.train_semantic_lens import main as train_main

ACCELERATE = Path(sys.executable).with_name("accelerate")
CONFIG = ROOT / "configs" / "tiny_semantic_lens.yaml"
TINY_BASICVSR = {"num_feat": 4, "num_block": 1}
NEW_BLOCKS = ("backward_image.", "forward_image.", "backward_space.", "forward_space.")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny random BasicVSR checkpoint (BasicSR layout) and a tiny random SAM2 folder."""
    from sete_vsr.baselines.basicvsr import BasicVSR
    from sete_vsr.models.presets import tiny_sam2_model

    folder = tmp_path_factory.mktemp("semantic-lens")
    torch.manual_seed(0)
    torch.save({"params": BasicVSR(**TINY_BASICVSR).state_dict()}, folder / "tiny-basicvsr.pth")
    tiny_sam2_model().save_pretrained(folder / "sam2")
    return {"basicvsr": folder / "tiny-basicvsr.pth", "sam2": folder / "sam2"}


def launch(output_dir: Path, tiny: dict[str, Path], *overrides: str) -> None:
    """``accelerate launch -m sete_vsr.plugins.train_semantic_lens configs/tiny_semantic_lens.yaml`` on the CPU."""
    if not ACCELERATE.exists():
        pytest.skip(f"accelerate launcher not found next to {sys.executable}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        str(ACCELERATE), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "-m", "sete_vsr.plugins.train_semantic_lens", str(CONFIG),
        f"output_dir={output_dir}", f"base_checkpoint={tiny['basicvsr']}", f"sam2={tiny['sam2']}",
        f"data.root={shared_path('data', 'frames', 'vid4_GT')}", *overrides,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"training failed ({result.returncode}):\n{result.stderr[-4000:]}")


@pytest.fixture(scope="module")
def trained(tiny) -> Path:
    """4 efficient-tuning steps (3 clips, batch 1: across an epoch end), checkpoints at steps 2 and 4."""
    output_dir = tiny["sam2"].parent / "straight"
    launch(output_dir, tiny)
    return output_dir


@pytest.mark.slow
@pytest.mark.shared
def test_efficient_tuning_changes_only_semantic_lens_tensors(trained, tiny):
    from sete_vsr.plugins.basicvsr_semantic_lens import load_semantic_lens_weights
    from sete_vsr.plugins.semantic_lens import semantic_lens_parameters

    base = torch.load(tiny["basicvsr"], weights_only=True)["params"]
    after = load_file(trained / WEIGHTS_NAME)
    assert all(torch.equal(after[name], tensor) for name, tensor in base.items()), "a base tensor changed"
    model, metadata = load_semantic_lens_weights(trained / WEIGHTS_NAME)
    assert set(after) - set(base) == {name for name, _ in semantic_lens_parameters(model)}
    assert all(name.startswith(NEW_BLOCKS) for name in set(after) - set(base))
    # the blocks' zero-initialised output layers moved: the network is no longer the base
    for name in ("forward_space.gps.conv2.weight", "forward_space.isee.to_out.weight", "forward_image.to_out.weight"):
        assert after[name].abs().sum() > 0, name
    expected = {"base": "basicvsr-vimeo-bi", "tuning": "efficient", "degradation": "BI", "num_masks": 4}
    assert {key: metadata[key] for key in expected} == expected
    assert (metadata["first_step"], metadata["steps"], metadata["sam2"]) == (0, 4, str(tiny["sam2"]))
    assert metadata["semantic_lens_kwargs"] == {"semantic_dim": 16, "attn_dim": 4, "window_size": 3}
    assert sorted(p.name for p in trained.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


@pytest.mark.slow
@pytest.mark.shared
def test_resumed_run_starts_at_the_checkpoint_and_ends_where_the_straight_run_does(trained, tiny):
    from sete_vsr.plugins.basicvsr_semantic_lens import load_semantic_lens_weights

    output_dir = trained.parent / "resumed"
    output_dir.mkdir()
    shutil.copytree(trained / "checkpoint-2", output_dir / "checkpoint-2")
    launch(output_dir, tiny, "resume_from_checkpoint=latest")
    straight, resumed = load_file(trained / WEIGHTS_NAME), load_file(output_dir / WEIGHTS_NAME)
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)
    # it trained steps 3 and 4 only, from the checkpoint's weights (a fresh run would start at 0 and not equal it)
    assert load_semantic_lens_weights(output_dir / WEIGHTS_NAME)[1]["first_step"] == 2
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    at_step_2 = load_file(trained / "checkpoint-2" / "model.safetensors")
    name = "forward_space.gps.conv2.weight"
    assert not torch.equal(at_step_2[f"model.{name}"], straight[name])  # steps 3-4 changed the blocks


@pytest.mark.slow
@pytest.mark.shared
def test_full_tuning_trains_the_base_network_too(trained, tiny):
    output_dir = trained.parent / "full"
    launch(output_dir, tiny, "tuning=full", "max_train_steps=1", "checkpointing_steps=0")
    base = torch.load(tiny["basicvsr"], weights_only=True)["params"]
    after = load_file(output_dir / WEIGHTS_NAME)
    changed = {name for name, tensor in base.items() if not torch.equal(after[name], tensor)}
    assert any(name.startswith("spynet.") for name in changed)  # at its own, smaller learning rate
    assert any(name.startswith("forward_trunk.") for name in changed)
    assert after["forward_space.gps.conv2.weight"].abs().sum() > 0


@pytest.mark.slow
@pytest.mark.shared
def test_trained_weights_load_into_the_method_and_change_it(trained, tiny, monkeypatch):
    from dataclasses import replace

    from sete_vsr.baselines.registry import BASELINES

    spec = BASELINES["basicvsr-vimeo-bi"]
    monkeypatch.setitem(BASELINES, spec.name, replace(spec, arch_kwargs=TINY_BASICVSR))
    frames = np.random.default_rng(0).integers(0, 256, (3, 20, 24, 3), dtype=np.uint8)
    method = load_method(
        "basicvsr-vimeo-bi+semantic-lens", semantic_lens_weights=str(trained / WEIGHTS_NAME), device="cpu",
        progress="false",
    )  # fmt: skip
    assert method.trained and method.name == "basicvsr-vimeo-bi+semantic-lens"
    assert method.runner.model.semantics.num_masks == 4  # the prior it was trained with, from the file
    untrained = load_method(
        "basicvsr-vimeo-bi+semantic-lens", checkpoint=str(tiny["basicvsr"]), sam2=str(tiny["sam2"]), device="cpu",
        progress="false", points_per_side="2", num_masks="4", attn_dim="4", window_size="3",
    )  # fmt: skip
    sr = method(frames)
    assert sr.shape == (3, 80, 96, 3) and not np.array_equal(sr, untrained(frames))


@pytest.mark.parametrize(
    "override, message",
    [
        ("base=edvr-m-reds", "Semantic Lens exists for basicvsr"),
        ("base=basicvsr-huge", "unknown baseline 'basicvsr-huge'"),
        ("window_size=4", "window_size must be a positive odd number, got 4"),
        ("num_masks=0", "num_masks must be at least 1"),
        ("tuning=partial", "tuning must be one of efficient, full"),
        ("adam_weight_decay=-1", "adam_weight_decay must be 0 or more"),
        ("data.root=/nonexistent/frames", "data.root=/nonexistent/frames is not a folder"),
        ("data.patch_size=128", "BasicVSR needs LR patches of 64 pixels or more"),
    ],
)
def test_bad_configs_are_one_line_errors(override, message, tiny, tmp_path, capsys):
    frames = SHARED / "data" / "frames" / "vid4_GT"
    if "data.root" not in override and not frames.is_dir():
        pytest.skip(f"shared data not found: {frames}")
    args = [
        str(CONFIG), f"output_dir={tmp_path / 'out'}", f"data.root={frames}", f"base_checkpoint={tiny['basicvsr']}",
        f"sam2={tiny['sam2']}", override,
    ]  # fmt: skip
    assert train_main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0]
    assert not (tmp_path / "out").exists()  # nothing started


def test_paper_config_holds_the_paper_values():
    config = load_semantic_lens_config(ROOT / "configs" / "semantic_lens_basicvsr.yaml")
    assert (config.data.num_frames, config.data.patch_size // 4, config.learning_rate) == (5, 64, 2e-4)
    assert (config.adam_beta1, config.adam_beta2, config.adam_weight_decay) == (0.9, 0.99, 1e-4)
    assert (config.tuning, config.data.exclude, config.base) == ("full", None, "basicvsr-reds4")
