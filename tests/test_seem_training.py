"""SEEM fine-tuning and the ``<base>+seem`` methods.

The training runs are the real ``accelerate launch -m sete_vsr.plugins.train_seem configs/tiny_seem.yaml`` on the CPU,
with a tiny random BasicVSR (BasicSR ``{"params": ...}`` layout) and a tiny random SAM2 on 256-pixel crops of the
shared Vid4 frames: 4 steps straight, and 2 steps resumed from the straight run's step-2 checkpoint. Errors and the
untrained methods are checked in-process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, SHARED, shared_path
from sete_vsr.errors import SeteVSRError
from sete_vsr.methods import load_method
from sete_vsr.plugins.train_seem import WEIGHTS_NAME, load_seem_config
from sete_vsr.plugins.train_seem import main as train_main

ACCELERATE = Path(sys.executable).with_name("accelerate")
LAUNCH = [
    str(ACCELERATE), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "sete_vsr.plugins.train_seem",
]  # fmt: skip
TINY_BASICVSR = {"num_feat": 4, "num_block": 1}
TINY_EDVR = {"num_feat": 8, "num_frame": 3, "deformable_groups": 2, "num_extract_block": 1, "num_reconstruct_block": 1}


def save_basicsr_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    torch.save({"params": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny random BasicVSR and EDVR checkpoint and a tiny random SAM2 folder."""
    from sete_vsr.baselines.basicvsr import BasicVSR
    from sete_vsr.baselines.edvr import EDVR
    from sete_vsr.models.presets import tiny_sam2_model

    folder = tmp_path_factory.mktemp("seem")
    torch.manual_seed(0)
    paths = {
        "basicvsr": save_basicsr_checkpoint(BasicVSR(**TINY_BASICVSR), folder / "tiny-basicvsr.pth"),
        "edvr": save_basicsr_checkpoint(EDVR(**TINY_EDVR), folder / "tiny-edvr.pth"),
        "sam2": folder / "sam2",
    }
    tiny_sam2_model().save_pretrained(paths["sam2"])
    return paths


def launch(output_dir: Path, tiny: dict[str, Path], *overrides: str) -> None:
    """``accelerate launch -m sete_vsr.plugins.train_seem configs/tiny_seem.yaml`` on the CPU, tiny networks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = [
        f"output_dir={output_dir}", f"base_checkpoint={tiny['basicvsr']}", f"sam2={tiny['sam2']}",
        f"data.root={shared_path('data', 'frames', 'vid4_GT')}", *overrides,
    ]  # fmt: skip
    result = subprocess.run(
        [*LAUNCH, str(ROOT / "configs" / "tiny_seem.yaml"), *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"training failed ({result.returncode}):\n{result.stderr[-4000:]}")


@pytest.fixture(scope="module")
def trained(tiny) -> Path:
    """4 efficient-tuning steps (3 clips, batch 1: across an epoch end), checkpoints at steps 2 and 4."""
    assert ACCELERATE.exists(), f"accelerate launcher not found next to {sys.executable} (accelerate is a dependency)"
    output_dir = tiny["sam2"].parent / "straight"
    launch(output_dir, tiny, "max_train_steps=4", "checkpointing_steps=2")
    return output_dir


def vid4_lr(num_frames: int, size: int) -> np.ndarray:
    """The first Vid4 calendar frames, an HR ``size`` crop, BI-degraded: ``(num_frames, size/4, size/4, 3)`` uint8."""
    from sete_vsr.data.degradations import bi_degrade

    files = sorted(shared_path("data", "frames", "vid4_GT", "calendar").glob("*.png"))[:num_frames]
    hr = np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)[:size, :size] for f in files])
    return bi_degrade(hr)


# ------------------------------------------------------------------------------------------- training


@pytest.mark.slow
@pytest.mark.shared
def test_efficient_tuning_changes_only_seem_tensors(trained, tiny):
    from sete_vsr.plugins.seem_model import load_seem_weights

    base = torch.load(tiny["basicvsr"], weights_only=True)["params"]
    after = load_file(trained / WEIGHTS_NAME)
    assert all(torch.equal(after[name], tensor) for name, tensor in base.items()), "a base tensor changed"
    new = set(after) - set(base)
    assert new and all(name.startswith(("sam_fr.", "seem.")) for name in new)
    _, metadata = load_seem_weights(trained / WEIGHTS_NAME)
    # SEEM's last convolutions start at zero: training moved them.
    assert after["seem.forward_out.conv2.weight"].abs().sum() > 0
    expected = {"base": "basicvsr-vimeo-bi", "arch": "basicvsr", "arch_kwargs": TINY_BASICVSR, "tuning": "efficient"}
    expected["degradation"] = "BI"
    assert {key: metadata[key] for key in expected} == expected
    assert (metadata["first_step"], metadata["steps"]) == (0, 4)
    assert sorted(p.name for p in trained.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert load_seem_config(trained / "training_config.yaml").max_train_steps == 4


@pytest.mark.slow
@pytest.mark.shared
def test_full_tuning_trains_the_base_network_too(trained, tiny):
    from sete_vsr.plugins.seem_model import load_seem_weights

    output_dir = trained.parent / "full"
    launch(output_dir, tiny, "tuning=full", "max_train_steps=1", "checkpointing_steps=0", "base=basicvsr-vimeo-bd")
    base = torch.load(tiny["basicvsr"], weights_only=True)["params"]
    after = load_file(output_dir / WEIGHTS_NAME)
    assert load_seem_weights(output_dir / WEIGHTS_NAME)[1]["degradation"] == "BD"  # the base's, not BI
    changed = {name for name, tensor in base.items() if not torch.equal(after[name], tensor)}
    assert any(name.startswith("spynet.") for name in changed)  # its own, smaller learning rate
    assert any(name.startswith("forward_trunk.") for name in changed)
    assert after["seem.forward_out.conv2.weight"].abs().sum() > 0


@pytest.mark.slow
@pytest.mark.shared
def test_resumed_run_starts_at_the_checkpoint_and_ends_where_the_straight_run_does(trained, tiny):
    from sete_vsr.plugins.seem_model import load_seem_weights

    output_dir = trained.parent / "resumed"
    output_dir.mkdir()
    shutil.copytree(trained / "checkpoint-2", output_dir / "checkpoint-2")
    launch(output_dir, tiny, "max_train_steps=4", "checkpointing_steps=2", "resume_from_checkpoint=latest")
    straight, resumed = load_file(trained / WEIGHTS_NAME), load_file(output_dir / WEIGHTS_NAME)
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)
    # it trained steps 3 and 4 only, from the checkpoint's weights (a fresh run would start at 0 and not equal it)
    assert load_seem_weights(output_dir / WEIGHTS_NAME)[1]["first_step"] == 2
    at_step_2 = load_file(trained / "checkpoint-2" / "model.safetensors")
    assert not torch.equal(at_step_2["model.seem.forward_out.conv2.weight"], straight["seem.forward_out.conv2.weight"])


@pytest.mark.slow
@pytest.mark.shared
def test_trained_weights_load_into_the_method_and_upscale(trained, tiny):
    method = load_method(
        "basicvsr-vimeo-bi+seem", seem_weights=str(trained / WEIGHTS_NAME), device="cpu", progress="false"
    )
    assert method.trained and method.name == "basicvsr-vimeo-bi+seem"
    assert method.metadata["sam2"] == str(tiny["sam2"])  # the mask prior it was trained with
    lr = vid4_lr(3, 128)
    sr = method(lr)
    assert sr.shape == (3, 128, 128, 3) and sr.dtype == np.uint8
    with pytest.raises(SeteVSRError, match="trained from basicvsr-vimeo-bi"):
        load_method("basicvsr-reds4+seem", seem_weights=str(trained / WEIGHTS_NAME), device="cpu")


# -------------------------------------------------------------------------------------------- methods


@pytest.mark.parametrize(
    "name, arch_kwargs, options",
    [
        ("basicvsr-vimeo-bi", TINY_BASICVSR, {"chunk_length": "3", "chunk_overlap": "1"}),  # 2 chunks of 5 frames
        ("edvr-m-reds", TINY_EDVR, {"batch_size": "2"}),
    ],
)
def test_untrained_seem_method_equals_the_base_method(name, arch_kwargs, options, tiny, monkeypatch):
    from sete_vsr.baselines.registry import BASELINES

    monkeypatch.setitem(BASELINES, name, replace(BASELINES[name], arch_kwargs=arch_kwargs))
    checkpoint = str(tiny[BASELINES[name].arch])
    frames = np.random.default_rng(0).integers(0, 256, (5, 18, 22, 3), dtype=np.uint8)
    base = load_method(name, checkpoint=checkpoint, device="cpu", progress=False, **options)
    seem = load_method(
        f"{name}+seem", checkpoint=checkpoint, sam2=str(tiny["sam2"]), device="cpu", progress="false", **options
    )
    assert not seem.trained and seem.name == f"{name}+seem-untrained"
    assert np.array_equal(seem(frames), base(frames))


@pytest.mark.slow
@pytest.mark.shared
def test_untrained_seem_equals_official_basicvsr(tiny, shared):
    checkpoint = str(shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth"))
    lr = vid4_lr(2, 256)  # 64 x 64 LR
    base = load_method("basicvsr-vimeo-bi", checkpoint=checkpoint, device="cpu", progress=False)
    seem = load_method("basicvsr-vimeo-bi+seem", checkpoint=checkpoint, sam2=str(tiny["sam2"]), device="cpu")
    assert np.array_equal(seem(lr), base(lr))


def test_missing_sam2_weights_name_the_fix(tiny, monkeypatch):
    from sete_vsr.baselines.registry import BASELINES

    spec = BASELINES["basicvsr-vimeo-bi"]
    monkeypatch.setitem(BASELINES, spec.name, replace(spec, arch_kwargs=TINY_BASICVSR))
    with pytest.raises(SeteVSRError, match="sam2=DIR"):
        load_method(f"{spec.name}+seem", checkpoint=str(tiny["basicvsr"]), sam2=str(tiny["sam2"] / "missing"))


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "override, message",
    [
        ("base=basicvsr-huge", "unknown baseline 'basicvsr-huge'"),
        ("base=basicvsrpp-reds4", "SEEM exists for basicvsr, edvr"),
        ("data.root=/nonexistent/frames", "data.root=/nonexistent/frames is not a folder"),
        ("data.root={empty}", "no clips found in"),
        ("tuning=partial", "tuning must be one of efficient, full"),
        ("learning_rat=1e-4", "unknown config key(s) learning_rat"),
        ("data.patch_size=128", "BasicVSR needs LR patches of 64 pixels or more"),
    ],
)
def test_bad_configs_are_one_line_errors(override, message, tiny, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    frames = SHARED / "data" / "frames" / "vid4_GT"
    args = [
        str(ROOT / "configs" / "tiny_seem.yaml"), f"output_dir={tmp_path / 'out'}", f"data.root={frames}",
        f"base_checkpoint={tiny['basicvsr']}", f"sam2={tiny['sam2']}", override.format(empty=tmp_path / "empty"),
    ]  # fmt: skip
    if "data.root" not in override:
        shared_path("data", "frames", "vid4_GT")  # skips, or fails in CI, without the shared frames
    assert train_main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0]
    assert not (tmp_path / "out").exists()  # nothing started


def test_training_clips_are_degraded_as_the_base_was_trained_and_leave_out_evaluation_clips(tmp_path):
    from sete_vsr.data.degradations import BD
    from sete_vsr.plugins.training import build_dataset

    hr = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    for clip in ("000", "020_s001", "calendar", "walk", "mine"):  # REDS4 (also as sub-image folders), Vid4, ours
        (tmp_path / clip).mkdir()
        for i, frame in enumerate(hr):
            cv2.imwrite(str(tmp_path / clip / f"{i:08d}.png"), frame[..., ::-1])
    overrides = [f"data.root={tmp_path}", "data.num_frames=2", "data.patch_size=64", "data.augment=false"]
    config = load_seem_config(ROOT / "configs" / "seem_basicvsr.yaml", overrides)
    assert config.data.exclude is None  # the paper config relies on the default
    dataset = build_dataset(config, BD)
    assert [clip.name for clip in dataset.clips] == ["mine"]
    item = dataset[0]
    to_uint8 = lambda x: ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # noqa: E731
    np.testing.assert_array_equal(to_uint8(item["lr"]), BD(to_uint8(item["hr"])))
    kept = build_dataset(load_seem_config(None, [*overrides, "data.exclude=[mine]"]), BD)
    assert sorted(clip.name for clip in kept.clips) == ["000", "020_s001", "calendar", "walk"]


def test_paper_configs_hold_the_paper_values():
    basicvsr = load_seem_config(ROOT / "configs" / "seem_basicvsr.yaml")
    edvr = load_seem_config(ROOT / "configs" / "seem_edvr.yaml")
    assert (basicvsr.base, basicvsr.train_batch_size, basicvsr.data.patch_size, basicvsr.points_per_side) == (
        "basicvsr-reds4", 6, 256, 8,
    )  # fmt: skip
    assert (edvr.base, edvr.train_batch_size, edvr.data.patch_size, edvr.data.num_frames) == ("edvr-m-reds", 4, 256, 5)
    assert (basicvsr.learning_rate, edvr.learning_rate) == (2e-4, 4e-4)
