"""Training: the real ``accelerate launch -m sete_vsr.train`` on CPU, tiny components, real frames from ../shared.

One chain of runs is shared by the module: stage 1 (4 steps) -> stage 2 (2 steps) -> VAE stage (2 steps), each
started from the previous output folder, as a user would. Error cases and the config are checked in-process
(they fail before any model is loaded).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, shared_path
from sete_vsr.train.__main__ import main as train_main
from sete_vsr.train.config import load_config

ACCELERATE = Path(sys.executable).with_name("accelerate")
LAUNCH = [
    str(ACCELERATE), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "sete_vsr.train",
]  # fmt: skip
UNET = "unet/diffusion_pytorch_model.safetensors"
VAE = "vae/diffusion_pytorch_model.safetensors"
SEMANTIC = "semantic_encoder/diffusion_pytorch_model.safetensors"


def launch(config: str, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``accelerate launch -m sete_vsr.train configs/<config> overrides...`` on the CPU."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [*LAUNCH, str(ROOT / "configs" / config), *overrides], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        pytest.fail(f"training failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def common(frames: Path, output_dir: Path, pretrained: Path, steps: int) -> list[str]:
    """Overrides every run shares: real frames, a fixed seed, a few steps, no periodic validation."""
    return [
        f"pretrained_model={pretrained}",
        f"output_dir={output_dir}",
        f"data.root={frames}",
        f"max_train_steps={steps}",
        "seed=0",
        "validation.root=null",
    ]


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    """Names of the tensors of ``before`` whose value differs in ``after`` (bit for bit)."""
    return {name for name, tensor in before.items() if not torch.equal(tensor, after[name])}


@pytest.fixture(scope="module")
def frames() -> Path:
    if not ACCELERATE.exists():
        pytest.skip(f"accelerate launcher not found next to {sys.executable}")
    return shared_path("data", "frames", "vid4_GT")


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory) -> Path:
    """The tiny random starting pipeline, without temporal modules."""
    from sete_vsr.pipelines.assemble import tiny_pipeline

    path = tmp_path_factory.mktemp("train") / "init"
    tiny_pipeline(seed=0, temporal=False).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def stage1(frames, init_dir) -> Path:
    """4 steps of stage 1, batch 1 (3 batches per epoch), a checkpoint every step (limit 2), a final validation."""
    output_dir = init_dir.parent / "stage1"
    launch(
        "tiny_stage1.yaml",
        *common(frames, output_dir, init_dir, steps=4),
        "train_batch_size=1",
        "checkpointing_steps=1",
        "checkpoints_total_limit=2",
        f"validation.root={frames}",
        "validation.num_frames=2",
        "validation.num_inference_steps=2",
        "validation.every_n_steps=0",
    )
    return output_dir


@pytest.fixture(scope="module")
def stage2(frames, stage1) -> Path:
    output_dir = stage1.parent / "stage2"
    launch("tiny_stage2.yaml", *common(frames, output_dir, stage1, steps=2), "data.num_frames=3")
    return output_dir


@pytest.fixture(scope="module")
def vae_stage(frames, stage2) -> Path:
    output_dir = stage2.parent / "vae"
    launch("tiny_vae.yaml", *common(frames, output_dir, stage2, steps=2), "data.num_frames=3")
    return output_dir


# ------------------------------------------------------------------------------------------ the stages


@pytest.mark.slow
@pytest.mark.shared
def test_stage1_trains_the_spatial_unet_and_keeps_its_outputs(stage1, init_dir):
    before, after = load_file(init_dir / UNET), load_file(stage1 / UNET)
    assert set(before) == set(after)
    assert not any(".temporal_transformer." in name or ".tsam." in name for name in after)
    assert changed(before, after), "stage 1 changed no U-Net tensor"
    assert not changed(load_file(init_dir / VAE), load_file(stage1 / VAE))
    assert not changed(load_file(init_dir / SEMANTIC), load_file(stage1 / SEMANTIC))
    # Checkpoints every step, total limit 2 enforced; resolved config saved; validation logged.
    assert sorted(p.name for p in stage1.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    assert load_config(stage1 / "training_config.yaml").max_train_steps == 4
    assert list((stage1 / "logs").rglob("events.out.tfevents.*"))
    record = json.loads((stage1 / "model_index.json").read_text())["assembled_from"]
    assert [s["stage"] for s in record["training_stages"]] == ["1"]
    assert record["training_stages"][0]["validation/psnr"] > 0
    assert "stage 1" in (stage1 / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.shared
def test_stage2_changes_only_temporal_tensors(stage1, stage2):
    from sete_vsr.models.unet import SeTeUNetModel

    before, after = load_file(stage1 / UNET), load_file(stage2 / UNET)
    assert not changed(before, after), "stage 2 changed a tensor of the stage-1 U-Net"
    new = set(after) - set(before)
    assert new and all(".temporal_transformer." in name or ".tsam." in name for name in new)
    # The zero-initialised outputs of the new modules have moved: they were trained.
    fresh = SeTeUNetModel.from_pretrained(stage1 / "unet")
    fresh.add_temporal_modules()
    zero_at_start = [name for name, tensor in fresh.state_dict().items() if name in new and not tensor.any()]
    assert zero_at_start and any(after[name].any() for name in zero_at_start)
    assert not changed(load_file(stage1 / VAE), load_file(stage2 / VAE))
    assert not changed(load_file(stage1 / SEMANTIC), load_file(stage2 / SEMANTIC))


@pytest.mark.slow
@pytest.mark.shared
def test_vae_stage_changes_only_the_decoder_temporal_layers(stage2, vae_stage):
    before, after = load_file(stage2 / VAE), load_file(vae_stage / VAE)
    assert set(before) == set(after)
    moved = changed(before, after)
    assert moved and all(name.startswith("temporal_layers.") for name in moved)
    assert not changed(load_file(stage2 / UNET), load_file(vae_stage / UNET))
    assert not changed(load_file(stage2 / SEMANTIC), load_file(vae_stage / SEMANTIC))


@pytest.mark.slow
@pytest.mark.shared
def test_final_pipeline_loads_and_upscales_a_real_clip(vae_stage, frames):
    from sete_vsr.data.datasets import list_frames, read_frame
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    pipe = SeTeVSRPipeline.from_pretrained(vae_stage)
    assert pipe.unet.config.temporal
    record = pipe.config.assembled_from
    assert [s["stage"] for s in record["training_stages"]] == ["1", "2", "vae"]
    hr = torch.stack([torch.from_numpy(read_frame(p)[:64, :64]) for p in list_frames(frames / "walk")[:3]])
    lr = torch.nn.functional.avg_pool2d(hr.permute(0, 3, 1, 2).float(), 4).round().byte()
    generator = torch.Generator().manual_seed(0)
    output = pipe(lr.permute(0, 2, 3, 1).numpy(), num_inference_steps=2, generator=generator, output_type="np").frames
    assert output.shape == (3, 64, 64, 3)
    assert output.min() >= 0 and output.max() <= 1


@pytest.mark.slow
@pytest.mark.shared
def test_resume_gives_the_weights_of_a_straight_run(init_dir, frames):
    """4 steps straight == 2 steps, then resume from checkpoint-2 (mid-epoch) for 2.

    All three runs go through the entry point accelerate launches, in this process: the same thread count for
    all of them, so CPU reductions are bit-identical and any difference comes from the resume itself.
    """
    config = str(ROOT / "configs" / "tiny_stage1.yaml")

    def run(output_dir: Path, *extra: str) -> dict[str, torch.Tensor]:
        overrides = [*common(frames, output_dir, init_dir, steps=2), "train_batch_size=1", "checkpointing_steps=2"]
        assert train_main([config, *overrides, "report_to=none", *extra]) == 0
        return load_file(output_dir / UNET)

    straight = run(init_dir.parent / "straight", "max_train_steps=4")
    run(init_dir.parent / "resumed")
    resumed = run(init_dir.parent / "resumed", "max_train_steps=4", "resume_from_checkpoint=latest")
    assert changed(load_file(init_dir / UNET), straight)
    assert not changed(straight, resumed), "resumed weights differ from the straight run"


# --------------------------------------------------------------------------------------------- errors


def run_in_process(capsys, config: str, *overrides: str) -> str:
    """Run the entry point in this process; return its error line (it must fail with status 2)."""
    assert train_main([str(ROOT / "configs" / config), *overrides]) == 2
    return capsys.readouterr().err


@pytest.mark.shared
def test_missing_and_empty_dataset_are_clear_errors(capsys, tmp_path, init_dir):
    base = [f"pretrained_model={init_dir}", f"output_dir={tmp_path / 'out'}"]
    error = run_in_process(capsys, "tiny_stage1.yaml", *base, f"data.root={tmp_path / 'nowhere'}")
    assert "does not exist" in error and "nowhere" in error
    (tmp_path / "empty").mkdir()
    error = run_in_process(capsys, "tiny_stage1.yaml", *base, f"data.root={tmp_path / 'empty'}")
    assert "no clips found" in error
    assert not (tmp_path / "out").exists(), "an error must come before any output is written"


@pytest.mark.shared
def test_stage2_refuses_a_pipeline_that_is_not_a_stage1_result(capsys, tmp_path, init_dir, frames):
    base = [f"output_dir={tmp_path / 'out'}", f"data.root={frames}"]
    error = run_in_process(capsys, "tiny_stage2.yaml", *base, f"pretrained_model={init_dir}")
    assert "not one (it was never trained)" in error
    error = run_in_process(capsys, "tiny_stage2.yaml", *base, f"pretrained_model={tmp_path}")
    assert "not a SeTeVSRPipeline" in error


@pytest.mark.slow
@pytest.mark.shared
def test_stage2_refuses_a_stage2_result_through_accelerate_launch(stage2, frames, tmp_path):
    result = launch("tiny_stage2.yaml", *common(frames, tmp_path / "out", stage2, steps=1), check=False)
    assert result.returncode != 0
    assert "sete_vsr.train: error: stage 2 needs a U-Net without temporal modules" in result.stderr


@pytest.mark.slow
@pytest.mark.shared
def test_resume_refuses_a_checkpoint_of_another_config(capsys, stage1, frames, tmp_path):
    base = [f"pretrained_model={stage1.parent / 'init'}", f"output_dir={tmp_path}", f"data.root={frames}"]
    error = run_in_process(
        capsys, "tiny_stage1.yaml", *base, f"resume_from_checkpoint={stage1 / 'checkpoint-4'}", "only_new_modules=true"
    )
    assert "does not match the config" in error and "only_new_modules" in error
    error = run_in_process(capsys, "tiny_stage1.yaml", *base, f"resume_from_checkpoint={stage1}")
    assert "is not a checkpoint-<step> folder" in error


@pytest.mark.slow
@pytest.mark.shared
def test_push_to_hub_uploads_the_pipeline_without_checkpoints(monkeypatch, tmp_path, init_dir, frames):
    import huggingface_hub

    calls = {}
    monkeypatch.setattr(
        huggingface_hub, "create_repo", lambda repo_id, **kwargs: calls.setdefault("repo", huggingface_hub.RepoUrl(
            f"https://huggingface.co/{repo_id}")),
    )
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: calls.setdefault("upload", kwargs))
    overrides = [
        *common(frames, tmp_path / "out", init_dir, steps=1), "report_to=none", "checkpointing_steps=1",
        "push_to_hub=true", "hub_model_id=someone/sete-vsr-tiny",
    ]  # fmt: skip
    assert train_main([str(ROOT / "configs" / "tiny_stage1.yaml"), *overrides]) == 0
    upload = calls["upload"]
    assert upload["repo_id"] == "someone/sete-vsr-tiny" and Path(upload["folder_path"]) == tmp_path / "out"
    assert "checkpoint-*" in upload["ignore_patterns"]
    assert (tmp_path / "out" / "model_index.json").is_file() and (tmp_path / "out" / "checkpoint-1").is_dir()


# --------------------------------------------------------------------------------------------- config


def test_config_overrides_nested_keys_and_converts_types(tmp_path):
    config = load_config(
        ROOT / "configs" / "stage1.yaml",
        ["data.root=/data/x", "learning_rate=2e-5", "data.exclude=[a, b]", "validation.crop_size=null", "stage=2"],
    )
    assert config.data.root == "/data/x" and config.learning_rate == 2e-5 and config.stage == "2"
    assert config.data.exclude == ["a", "b"] and config.validation.crop_size is None
    from sete_vsr.train.config import save_config

    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.crop=5", "unknown config key(s) data.crop"),
        ("train_batch_size=three", "train_batch_size must be int"),
        ("stage=3", "stage must be one of"),
        ("no_equals_sign", "overrides are key=value"),
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    from sete_vsr.errors import SeteVSRError

    with pytest.raises(SeteVSRError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(ROOT / "configs" / "stage1.yaml", [override])


def test_paper_configs_hold_the_paper_values():
    stage1, stage2 = load_config(ROOT / "configs" / "stage1.yaml"), load_config(ROOT / "configs" / "stage2.yaml")
    values = [(c.stage, c.learning_rate, c.train_batch_size, c.lr_scheduler) for c in (stage1, stage2)]
    assert values == [("1", 1e-4, 3, "constant"), ("2", 5e-5, 3, "constant")]
    assert stage2.data.num_frames > 1 and stage1.data.type == stage2.data.type == "reds"
    assert load_config(ROOT / "configs" / "vae.yaml").stage == "vae"
