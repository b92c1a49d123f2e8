"""Training: the real ``accelerate launch -m sete_vsr.train`` on CPU, tiny components, real frames from ../shared.

One chain of runs is shared by the module: stage 1 (4 steps, validation every 2) -> stage 2 (2 steps) -> VAE stage
(2 steps), each started from the previous output folder, as a user would. Two more launches, run side by side, cover
EMA + gradient accumulation + bf16 with and without periodic validation. Error cases and the config are checked
in-process (they fail before any model is loaded); the latent cache is checked in-process on synthetic clips.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

import pytest
import yaml
import torch
from safetensors.torch import load_file

from conftest import ROOT, shared_path
from sete_vsr.train.__main__ import main as train_main
from sete_vsr.train.config import load_config
from sete_vsr.train.checkpoints import CONFIG_NAME, find_resume_checkpoint
from sete_vsr.train.data import build_train_dataset, collate_clips
from sete_vsr.train.loop import diffusion_loss

ACCELERATE = Path(sys.executable).with_name("accelerate")
LAUNCH = [
    str(ACCELERATE), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "sete_vsr.train",
]  # fmt: skip
UNET = "unet/diffusion_pytorch_model.safetensors"
VAE = "vae/diffusion_pytorch_model.safetensors"
SEMANTIC = "semantic_encoder/diffusion_pytorch_model.safetensors"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    config: str, *overrides: str, check: bool = True, processes: int = 1, accelerate_config: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``accelerate launch [--config_file accelerate_config] -m sete_vsr.train configs/<config> overrides...`` on
    the CPU.

    Several processes come from the torchrun launcher (``--multi_gpu``: ``--cpu --num_processes 2`` starts one
    process unless run under MPI); without a GPU, training makes them CPU processes over gloo.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [*LAUNCH, str(ROOT / "configs" / config), *overrides]
    if processes > 1:
        env["CUDA_VISIBLE_DEVICES"] = ""
        command[2:5] = ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", str(_free_port())]
    if accelerate_config is not None:
        command[2:2] = ["--config_file", str(accelerate_config)]
    # The start-up crash test_eval_multiprocess.py describes ("terminate called without an active exception") is
    # launched again, at most 4 times; any other failure fails.
    for _ in range(4 if processes > 1 else 1):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode == 0 or "terminate called without an active exception" not in result.stderr:
            break
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
    assert ACCELERATE.exists(), f"accelerate launcher not found next to {sys.executable} (accelerate is a dependency)"
    return shared_path("data", "frames", "vid4_GT")


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory) -> Path:
    """The tiny random starting pipeline, without temporal modules."""
    from sete_vsr.pipelines.assemble import tiny_pipeline

    path = tmp_path_factory.mktemp("train") / "init"
    tiny_pipeline(seed=0, temporal=False).save_pretrained(path)
    return path


def validation_overrides(frames: Path, every: int) -> list[str]:
    """A 2-frame, 2-step validation render every ``every`` steps (and at the end)."""
    return [
        f"validation.root={frames}",
        "validation.num_frames=2",
        "validation.num_inference_steps=2",
        f"validation.every_n_steps={every}",
    ]


def read_events(output_dir: Path) -> dict[str, dict[str, list[int]]]:
    """``{"scalars"|"images"|"tensors": {tag: [steps]}}`` of the tensorboard event files under ``output_dir/logs``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, dict[str, list[int]]] = {"scalars": {}, "images": {}, "tensors": {}}
    for events in sorted((output_dir / "logs").rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        for kind, read in (("scalars", accumulator.Scalars), ("images", accumulator.Images)):
            for tag in tags[kind]:
                found[kind].setdefault(tag, []).extend(event.step for event in read(tag))
        for tag in tags["tensors"]:
            found["tensors"].setdefault(tag, []).extend(event.step for event in accumulator.Tensors(tag))
    return found


def read_scalars(output_dir: Path, tag: str) -> dict[int, float]:
    """``{step: value}`` of the scalar ``tag`` in the tensorboard event files under ``output_dir/logs``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values = {}
    for events in sorted((output_dir / "logs").rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            values.update({event.step: event.value for event in accumulator.Scalars(tag)})
    return values


@pytest.fixture(scope="module")
def stage1(frames, init_dir) -> Path:
    """4 steps of stage 1, batch 1 (3 batches per epoch), a checkpoint every step (limit 2), validation every 2."""
    output_dir = init_dir.parent / "stage1"
    launch(
        "tiny_stage1.yaml",
        *common(frames, output_dir, init_dir, steps=4),
        "train_batch_size=1",
        "checkpointing_steps=1",
        "checkpoints_total_limit=2",
        *validation_overrides(frames, every=2),
    )
    return output_dir


@pytest.fixture(scope="module")
def ema_runs(frames, init_dir) -> tuple[Path, Path, str]:
    """2 optimizer steps with EMA, 2 accumulated batches per step and bf16, on the 4 Vid4 clips (one epoch of
    batches of 1): once with a validation render every step, once without (side by side, one thread each).

    Returns ``(with validation, without, stderr of the first)``.
    """
    runs = {"validated": validation_overrides(frames, every=1), "plain": []}

    def run(name: str) -> subprocess.CompletedProcess:
        return launch(
            "tiny_stage1.yaml",
            *common(frames, init_dir.parent / f"ema_{name}", init_dir, steps=2),
            *runs[name],
            "data.exclude=[]",
            "train_batch_size=1",
            "gradient_accumulation_steps=2",
            "mixed_precision=bf16",
            "use_ema=true",
            "checkpointing_steps=2",
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        validated, _ = pool.map(run, runs)
    return init_dir.parent / "ema_validated", init_dir.parent / "ema_plain", validated.stderr


@pytest.fixture(scope="module")
def stage2(frames, stage1) -> Path:
    output_dir = stage1.parent / "stage2"
    launch("tiny_stage2.yaml", *common(frames, output_dir, stage1, steps=2), "data.num_frames=5")
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
    # Checkpoints every step, total limit 2 enforced; resolved config saved; validation recorded.
    assert sorted(p.name for p in stage1.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    assert load_config(stage1 / "training_config.yaml").max_train_steps == 4
    record = json.loads((stage1 / "model_index.json").read_text())["assembled_from"]
    assert [s["stage"] for s in record["training_stages"]] == ["1"]
    assert record["training_stages"][0]["validation/psnr"] > 0
    assert record["training_stages"][0]["ema"] is False
    assert "stage 1" in (stage1 / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.shared
def test_periodic_validation_logs_psnr_lpips_and_frames(stage1):
    """validation.every_n_steps=2 over 4 steps: a render at step 2, and the final one at step 4 (not two there)."""
    events = read_events(stage1)
    assert events["scalars"]["validation/psnr"] == [2, 4]
    assert events["images"]["validation/bicubic_output_gt"] == [2, 4]
    assert events["scalars"]["train_loss"] == [1, 2, 3, 4]
    # LPIPS is logged, or (without its weights) the reason it was skipped is, as text at each render.
    lpips = events["scalars"].get("validation/lpips") or events["tensors"].get("validation/lpips_skipped/text_summary")
    assert lpips == [2, 4], events


@pytest.mark.shared
def test_validation_image_shows_bicubic_output_and_gt_and_its_psnr_is_logged(stage1):
    """The logged image at the last render: its GT row is the validation clip's HR frames, its bicubic row is within
    two levels of MATLAB's bicubic of the LR frames, and the PSNR of its output row against its GT row is the logged one."""
    import io

    import PIL.Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from sete_vsr.data.imresize import imresize
    from sete_vsr.eval.metrics import build_metric
    from sete_vsr.train.data import load_validation_clip, to_uint8

    found = {}
    for events in (stage1 / "logs").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        if "validation/bicubic_output_gt" in tags["images"]:
            found["image"] = accumulator.Images("validation/bicubic_output_gt")[-1]
        if "validation/psnr" in tags["scalars"]:
            found["psnr"] = accumulator.Scalars("validation/psnr")[-1]
    image, logged = found["image"], found["psnr"]
    assert image.step == logged.step == 4
    logged_psnr = logged.value
    rows = np.asarray(PIL.Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB"))
    clip = load_validation_clip(load_config(stage1 / CONFIG_NAME, []))
    gt, lr = to_uint8(clip["hr"]), to_uint8(clip["lr"])
    frames, height, width = gt.shape[:3]
    bicubic, output, truth = (
        rows[i * height : (i + 1) * height].reshape(height, frames, width, 3).transpose(1, 0, 2, 3) for i in range(3)
    )
    np.testing.assert_array_equal(truth, gt)
    matlab = np.stack([imresize(frame, 4.0) for frame in lr])
    # torch's bicubic kernel (a = -0.75) is a little sharper than MATLAB's (a = -0.5): about one level apart on average
    assert np.abs(bicubic.astype(float) - matlab).mean() < 2.0 < np.abs(bicubic.astype(float) - gt).mean()
    assert float(build_metric("psnr").compute(output, gt).mean()) == pytest.approx(logged_psnr, abs=1e-4)
    assert np.abs(output.astype(float) - gt).mean() > 0  # a real render, not the GT copied


@pytest.mark.slow
@pytest.mark.shared
def test_ema_accumulation_and_bf16(ema_runs, init_dir):
    """EMA + accumulation 2 + bf16: fp32 trained weights, 2 optimizer steps from 4 batches, the EMA saved, and the
    validation renders (with the EMA swapped in and out) leave the training itself untouched."""
    from sete_vsr.models.unet import SeTeUNetModel

    validated, plain, stderr = ema_runs
    checkpoint = validated / "checkpoint-2"
    raw = load_file(checkpoint / "model.safetensors")
    # The validation renders changed nothing in the run: same raw weights as the run without them.
    assert not changed(raw, load_file(plain / "checkpoint-2" / "model.safetensors"))
    assert read_events(validated)["scalars"]["validation/psnr"] == [1, 2]
    # Trainable weights and optimizer state stay fp32 under bf16 (the frozen VAE and SAM2 ran in bf16).
    saved = load_file(validated / UNET)
    assert {t.dtype for t in raw.values()} == {t.dtype for t in saved.values()} == {torch.float32}
    optimizer = torch.load(checkpoint / "optimizer.bin", weights_only=True)
    assert {s["exp_avg"].dtype for s in optimizer["state"].values()} == {torch.float32}
    # Optimizer steps follow the accumulation: 2 steps (Adam, scheduler and EMA agree) from 4 batches.
    assert {int(s["step"]) for s in optimizer["state"].values()} == {2}
    assert torch.load(checkpoint / "scheduler.bin", weights_only=True)["last_epoch"] == 2
    ema = torch.load(checkpoint / "custom_checkpoint_0.pkl", weights_only=True)
    assert ema["optimization_step"] == 2
    assert "trained to step 2: 4 batches" in stderr
    # The saved U-Net holds the EMA of the trained tensors, not the raw weights the checkpoint continues from.
    names = [name for name, _ in SeTeUNetModel.from_pretrained(init_dir / "unet").stage_parameters(1, False)]
    assert len(names) == len(ema["shadow_params"])
    for name, shadow in zip(names, ema["shadow_params"]):
        assert torch.equal(saved[name], shadow), name
    assert changed({name: raw[name] for name in names}, saved)
    assert not changed({name: raw[name] for name in set(raw) - set(names)}, saved)
    record = json.loads((validated / "model_index.json").read_text())["assembled_from"]
    assert record["training_stages"][-1]["ema"] is True


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
def test_stage2_window_is_the_pipelines_default_and_the_run_is_recorded(stage2, frames):
    """Trained on 5-frame clips (the tiny init's window is 4): the saved pipeline denoises in windows of 5."""
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    pipe = SeTeVSRPipeline.from_pretrained(stage2)
    assert pipe.unet.config.num_frames == 5
    windows = []
    pipe.unet.register_forward_pre_hook(lambda module, args, kwargs: windows.append(kwargs["num_frames"]), with_kwargs=True)
    pipe.set_progress_bar_config(disable=True)
    pipe(np.zeros((12, 8, 8, 3), np.uint8), num_inference_steps=1, output_type="latent")
    assert windows and set(windows) == {5}
    record = pipe.config.assembled_from["training_stages"][-1]
    assert record["stage"] == "2" and record["window_length"] == 5 and record["degradation"] == "realbasicvsr"
    assert record["data"]["root"] == str(frames) and record["data"]["crop_size"] == 64
    card = (stage2 / "README.md").read_text()
    assert "on 5-frame clips of vid4_GT (realbasicvsr degradation)" in card


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
    from sete_vsr.data.train_datasets import list_frames, read_frame
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    pipe = SeTeVSRPipeline.from_pretrained(vae_stage)
    assert pipe.unet.config.temporal
    record = pipe.config.assembled_from
    assert [s["stage"] for s in record["training_stages"]] == ["1", "2", "vae"]
    hr = torch.stack([torch.from_numpy(read_frame(p)[:64, :64]) for p in list_frames(frames / "walk")[:3]])
    lr = torch.nn.functional.avg_pool2d(hr.permute(0, 3, 1, 2).float(), 4).round().byte()
    generator = torch.Generator().manual_seed(0)
    output = pipe(lr.permute(0, 2, 3, 1).numpy(), num_inference_steps=2, generator=generator, output_type="np").frames[0]
    assert output.shape == (3, 64, 64, 3)
    assert output.min() >= 0 and output.max() <= 1


@pytest.mark.slow
@pytest.mark.shared
def test_resume_gives_the_weights_of_a_straight_run(init_dir, frames, caplog):
    """4 steps straight == 2 steps, then resume from checkpoint-2 (mid-epoch) for 2.

    All three runs go through the entry point accelerate launches, in this process: the same thread count for
    all of them, so CPU reductions are bit-identical and any difference comes from the resume itself. A fresh run
    with the same seed would reach the same weights too, so the resumed run must also have loaded checkpoint-2 and
    trained only the 2 steps after it.
    """
    config = str(ROOT / "configs" / "tiny_stage1.yaml")

    def run(output_dir: Path, *extra: str) -> dict[str, torch.Tensor]:
        overrides = [*common(frames, output_dir, init_dir, steps=2), "train_batch_size=1", "checkpointing_steps=2"]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sete_vsr.train.loop"):
            assert train_main([config, *overrides, "report_to=none", *extra]) == 0
        return load_file(output_dir / UNET)

    straight = run(init_dir.parent / "straight", "max_train_steps=4")
    run(init_dir.parent / "resumed")
    resumed = run(init_dir.parent / "resumed", "max_train_steps=4", "resume_from_checkpoint=latest")
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.endswith(f"resuming from {init_dir.parent / 'resumed' / 'checkpoint-2'}") for m in messages), messages
    assert any(m.endswith("trained to step 4: 2 batches on this process in this run") for m in messages), messages
    assert changed(load_file(init_dir / UNET), straight)
    assert not changed(straight, resumed), "resumed weights differ from the straight run"


# --------------------------------------------------------------------------------------------- errors


def run_in_process(capsys, config: str, *overrides: str) -> str:
    """Run the entry point in this process; return its error line (it must fail with status 2)."""
    assert train_main([str(ROOT / "configs" / config), *overrides]) == 2
    return capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared
def test_two_processes_train_as_one_with_their_batches_together(init_dir, frames):
    """Stage 1 on the 4 Vid4 clips: 2 CPU processes with batch 1 == 1 process with batch 2, 4 steps (2 epochs).

    Accelerate hands the batches of an epoch's order to the processes in turn, so a step of the two processes sees
    the two clips of the one process's batch; each clip's draws are keyed by its dataset index, not by the process
    or batch, so the losses are the same, and DDP's averaged gradient is the gradient of the batch-2 mean. The
    weights agree to rounding (the batch-2 and batch-1 forward passes round differently, and Adam magnifies the
    rounding of the tiniest gradients): their distance is a small fraction of the update itself. Then 2 processes
    stopped at step 3 (mid-epoch) and resumed equal the straight 2-process run.
    """
    runs = {"one": (1, 2, []), "two": (2, 1, [])}
    runs["resumed"] = (2, 1, ["max_train_steps=3", "checkpointing_steps=3"])
    base = ["data.exclude=[]", "report_to=tensorboard"]

    def run(name: str, *extra: str) -> subprocess.CompletedProcess:
        processes, batch, more = runs[name]
        overrides = [*common(frames, init_dir.parent / f"dp_{name}", init_dir, steps=4), *base, *more, *extra]
        return launch("tiny_stage1.yaml", *overrides, f"train_batch_size={batch}", processes=processes)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, ["one", "two"]))
    run("resumed")
    resumed = run("resumed", "max_train_steps=4", "resume_from_checkpoint=latest")
    assert "trained to step 4: 1 batches on this process in this run" in resumed.stderr

    out = {name: init_dir.parent / f"dp_{name}" for name in runs}
    losses = {name: read_scalars(folder, "train_loss") for name, folder in out.items()}
    assert sorted(losses["one"]) == [1, 2, 3, 4]
    assert losses["two"] == pytest.approx(losses["one"], rel=1e-5)
    assert losses["resumed"] == losses["two"]
    weights = {name: load_file(folder / UNET) for name, folder in out.items()}
    start = load_file(init_dir / UNET)
    distance = sum((weights["two"][name] - tensor).square().sum() for name, tensor in weights["one"].items())
    update = sum((tensor - start[name]).square().sum() for name, tensor in weights["one"].items())
    assert (distance / update).sqrt() < 5e-3
    assert not changed(weights["two"], weights["resumed"]), "resumed 2-process weights differ from the straight run"


@pytest.mark.slow
@pytest.mark.shared
def test_the_ddp_accelerate_config_trains_on_two_cpu_processes(init_dir, frames):
    """configs/accelerate/ddp.yaml (its process count overridden to 2) runs the tiny stage 1 as 2 gloo processes."""
    output_dir = init_dir.parent / "ddp_config"
    result = launch(
        "tiny_stage1.yaml", *common(frames, output_dir, init_dir, steps=2), "data.exclude=[]", "train_batch_size=1",
        processes=2, accelerate_config=ROOT / "configs" / "accelerate" / "ddp.yaml",
    )  # fmt: skip
    assert "DistributedType.MULTI_CPU  Backend: gloo\nNum processes: 2" in result.stderr
    assert changed(load_file(init_dir / UNET), load_file(output_dir / UNET))


def test_accelerate_configs_name_the_unet_blocks_and_state_their_memory():
    """The FSDP config wraps the blocks of the SD 2.1-base SeTe U-Net; every config states its per-GPU memory."""
    from sete_vsr.models.presets import sd21_base_unet2d
    from sete_vsr.models.unet import SeTeUNetModel

    folder = ROOT / "configs" / "accelerate"
    fsdp = yaml.safe_load((folder / "fsdp.yaml").read_text())["fsdp_config"]
    assert fsdp["fsdp_sharding_strategy"] == "FULL_SHARD"
    with torch.device("meta"):  # the layout only, no memory
        unet = SeTeUNetModel.from_unet2d(sd21_base_unet2d(), temporal=True)
    blocks = {type(block).__name__ for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks]}
    assert set(fsdp["fsdp_transformer_layer_cls_to_wrap"].split(",")) == blocks
    assert yaml.safe_load((folder / "deepspeed_zero2.yaml").read_text())["deepspeed_config"]["zero_stage"] == 2
    for name in ("ddp.yaml", "fsdp.yaml", "deepspeed_zero2.yaml"):
        text = (folder / name).read_text()
        assert "stage 1 (916.6M trained)" in text or "916.6M parameters" in text, name
        assert "198.5M" in text and "not yet measured" in text, name


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
    base = [f"output_dir={tmp_path / 'out'}", f"data.root={frames}", "validation.root=null"]
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
    base = [
        f"pretrained_model={stage1.parent / 'init'}", f"output_dir={tmp_path}", f"data.root={frames}", "validation.root=null"
    ]
    error = run_in_process(
        capsys, "tiny_stage1.yaml", *base, f"resume_from_checkpoint={stage1 / 'checkpoint-4'}", "only_new_modules=true"
    )
    assert "does not match the config" in error and "only_new_modules" in error
    error = run_in_process(capsys, "tiny_stage1.yaml", *base, f"resume_from_checkpoint={stage1}")
    assert "is not a checkpoint-<step> folder" in error


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize(
    "override",
    [
        "seed=1",
        "train_batch_size=2",
        "gradient_accumulation_steps=2",
        "data.num_frames=2",
        "data.crop_size=32",
        "data.exclude=[]",
        "data.degradation=BI",
        "data.usm_gt=false",
        "mixed_precision=bf16",
    ],
)
def test_resume_refuses_a_change_of_what_makes_the_batches(override, stage1):
    """Any change that would make the resumed run differ from a straight one is refused, naming the key."""
    checkpoint = stage1 / "checkpoint-4"
    resume = f"resume_from_checkpoint={checkpoint}"
    assert find_resume_checkpoint(load_config(checkpoint / CONFIG_NAME, [resume])) == checkpoint
    from sete_vsr.errors import SeteVSRError

    with pytest.raises(SeteVSRError, match="does not match the config") as error:
        find_resume_checkpoint(load_config(checkpoint / CONFIG_NAME, [resume, override]))
    assert override.split("=")[0] in str(error.value)


@pytest.mark.slow
@pytest.mark.shared
def test_resume_warns_about_changed_hyper_parameters(stage1, caplog):
    checkpoint = stage1 / "checkpoint-4"
    overrides = [f"resume_from_checkpoint={checkpoint}", "learning_rate=5e-5", "max_train_steps=8"]
    with caplog.at_level(logging.WARNING, logger="sete_vsr.train.checkpoints"):
        assert find_resume_checkpoint(load_config(checkpoint / CONFIG_NAME, overrides)) == checkpoint
    assert "changed settings: learning_rate: 0.0001 -> 5e-05" in caplog.text
    assert "max_train_steps" not in caplog.text


def test_8bit_adam_without_bitsandbytes_is_a_clear_error(capsys, tmp_path):
    try:
        import bitsandbytes  # noqa: F401

        pytest.skip("bitsandbytes is installed")
    except ImportError:
        pass
    base = [f"pretrained_model={tmp_path}", f"output_dir={tmp_path / 'out'}", f"data.root={tmp_path / 'nowhere'}"]
    error = run_in_process(capsys, "tiny_stage1.yaml", *base, "use_8bit_adam=true")
    assert error.count("\n") == 1 and "use_8bit_adam=true needs bitsandbytes" in error
    assert "pip install bitsandbytes" in error
    assert not (tmp_path / "out").exists(), "the error must come before any output is written"


@pytest.mark.slow
@pytest.mark.shared
def test_push_to_hub_uploads_the_pipeline_without_checkpoints(monkeypatch, tmp_path, init_dir, frames):
    import huggingface_hub

    calls = {}
    def create_repo(repo_id, **kwargs):
        calls["repo"] = kwargs
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: calls.setdefault("upload", kwargs))
    monkeypatch.setattr(huggingface_hub, "file_exists", lambda repo_id, filename, **kw: filename == "README.md")
    overrides = [
        *common(frames, tmp_path / "out", init_dir, steps=1), "report_to=none", "checkpointing_steps=1",
        "push_to_hub=true", "hub_model_id=someone/sete-vsr-tiny", "hub_token=hf_secret", "hub_private=true", "use_ema=true",
    ]  # fmt: skip
    assert train_main([str(ROOT / "configs" / "tiny_stage1.yaml"), *overrides]) == 0
    upload = calls["upload"]
    assert upload["repo_id"] == "someone/sete-vsr-tiny" and Path(upload["folder_path"]) == tmp_path / "out"
    assert "checkpoint-*" in upload["ignore_patterns"]
    assert (tmp_path / "out" / "model_index.json").is_file() and (tmp_path / "out" / "checkpoint-1").is_dir()
    # the token and the private flag reach the Hub calls; the repository's own README.md is kept
    assert upload["token"] == "hf_secret" and "README.md" in upload["ignore_patterns"]
    assert calls["repo"]["private"] is True and calls["repo"]["token"] == "hf_secret"
    # the token is never written down
    written = [p.read_text() for p in (tmp_path / "out").rglob("*.yaml")]
    assert written and not any("hf_secret" in text for text in written)
    # each checkpoint holds the trained U-Net in diffusers layout (raw and EMA), loadable on its own
    from sete_vsr import SeTeUNetModel

    for name in ("unet", "unet_ema"):
        unet = SeTeUNetModel.from_pretrained(tmp_path / "out" / "checkpoint-1" / name)
        assert sum(p.numel() for p in unet.parameters()) > 0


# --------------------------------------------------------------------------------------- latent cache


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    """3 synthetic clips of 3 frames, 64x64 (enough for the tiny model; no shared data needed)."""
    root = tmp_path_factory.mktemp("clips")
    for k, name in enumerate(["a", "b", "c"]):
        (root / name).mkdir()
        smooth = cv2.resize(np.random.default_rng(k).integers(0, 256, (8, 8, 3), dtype=np.uint8), (64, 64))
        for i in range(3):
            cv2.imwrite(str(root / name / f"{i:03d}.png"), np.roll(smooth, 2 * i, axis=1))
    return root


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cache_overrides(clips_dir: Path, init_dir: Path, *extra: str) -> list[str]:
    return [
        f"pretrained_model={init_dir}", f"data.root={clips_dir}", "data.exclude=[]", "train_batch_size=2",
        "max_train_steps=2", "checkpointing_steps=0", "validation.root=null", "report_to=none", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def latent_cache(clips_dir, init_dir) -> Path:
    """2 passes of the tiny stage-1 config over ``clips_dir``, filled by the documented command's entry point."""
    from sete_vsr.train.cache import main as cache_main

    cache_dir = init_dir.parent / "latent_cache"
    overrides = cache_overrides(clips_dir, init_dir, f"data.cache_dir={cache_dir}")
    assert cache_main([str(ROOT / "configs" / "tiny_stage1.yaml"), *overrides, "--passes", "2"]) == 0
    return cache_dir


@pytest.mark.slow
def test_training_from_the_latent_cache_matches_the_live_encoders(latent_cache, clips_dir, init_dir, tmp_path):
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    config = str(ROOT / "configs" / "tiny_stage1.yaml")
    cached_config = load_config(config, cache_overrides(clips_dir, init_dir, f"data.cache_dir={latent_cache}"))
    cached, live = build_train_dataset(cached_config), build_train_dataset(cached_config, use_cache=False)
    assert len(cached) == len(live) == 3
    pipe = SeTeVSRPipeline.from_pretrained(init_dir)
    for epoch in (0, 1):  # one pass per epoch: the draws (crop, flips, degradation) of the live dataset
        cached.set_epoch(epoch)
        live.set_epoch(epoch)
        batches = [collate_clips([dataset[0], dataset[2]]) for dataset in (live, cached)]
        assert set(batches[1]) == {"hr_moments", "lr_latents", "semantic_embeds", "index"}
        losses = [
            diffusion_loss(b, pipe.unet, pipe.vae, pipe.semantic_encoder, pipe.scheduler, seeded(7))
            for b in batches
        ]  # fmt: skip
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=0)
    # A few steps: the cached run trains the same tensors to the same values as the live one.
    runs = {}
    for name, extra in (("live", []), ("cached", [f"data.cache_dir={latent_cache}"])):
        overrides = cache_overrides(clips_dir, init_dir, f"output_dir={tmp_path / name}", *extra)
        assert train_main([config, *overrides]) == 0
        runs[name] = load_file(tmp_path / name / UNET)
    start = load_file(init_dir / UNET)
    assert changed(start, runs["cached"]) == changed(start, runs["live"]) != set()
    # Not bit for bit (batched and per-clip encoding round differently, and Adam magnifies the rounding of the tiny
    # gradients), but the updates agree: their difference is a small fraction of the update itself.
    distance = sum((runs["cached"][name] - tensor).square().sum() for name, tensor in runs["live"].items())
    update = sum((tensor - start[name]).square().sum() for name, tensor in runs["live"].items())
    assert (distance / update).sqrt() < 1e-2


@pytest.mark.slow
def test_a_latent_cache_that_does_not_match_is_a_clear_error(capsys, latent_cache, clips_dir, init_dir, tmp_path):
    from sete_vsr.errors import SeteVSRError
    from sete_vsr.pipelines.assemble import tiny_pipeline

    base = cache_overrides(clips_dir, init_dir, f"output_dir={tmp_path / 'out'}", f"data.cache_dir={latent_cache}")
    for override, key in (("data.num_frames=2", "data.num_frames"), ("data.crop_size=32", "data.crop_size")):
        error = run_in_process(capsys, "tiny_stage1.yaml", *base, override)
        assert "does not match the config" in error and f"{key}: cache" in error
        assert "python -m sete_vsr.train.cache" in error
    error = run_in_process(capsys, "tiny_stage1.yaml", *base, f"data.cache_dir={tmp_path / 'empty'}")
    assert "holds no latent cache; fill it first: python -m sete_vsr.train.cache" in error
    assert not (tmp_path / "out").exists(), "config mismatches must come before any output is written"
    # Other encoder weights than those the cache was made with: refused once the pipeline is loaded.
    other = tmp_path / "other"
    tiny_pipeline(seed=1, temporal=False).save_pretrained(other)
    error = run_in_process(capsys, "tiny_stage1.yaml", *base, f"pretrained_model={other}")
    assert "made with other VAE/SAM2 weights" in error
    with pytest.raises(SeteVSRError, match="data.cache_dir is for stages 1 and 2"):
        load_config(ROOT / "configs" / "tiny_vae.yaml", [*base, "stage=vae"])


def test_usm_gt_is_the_diffusion_target(clips_dir, init_dir):
    """data.usm_gt (default on) gives stages 1-2 "hr_usm", and the loss diffuses it instead of "hr"."""
    from sete_vsr.pipelines.pipeline import SeTeVSRPipeline

    config = load_config(ROOT / "configs" / "tiny_stage1.yaml", cache_overrides(clips_dir, init_dir))
    assert config.data.usm_gt
    batch = collate_clips([build_train_dataset(config)[i] for i in (0, 1)])
    assert set(batch) == {"hr", "lr", "hr_usm", "index"} and not torch.equal(batch["hr"], batch["hr_usm"])
    pipe = SeTeVSRPipeline.from_pretrained(init_dir)

    def loss(b: dict[str, torch.Tensor]) -> torch.Tensor:
        return diffusion_loss(b, pipe.unet, pipe.vae, pipe.semantic_encoder, pipe.scheduler, seeded(0))

    sharpened = {"hr": batch["hr_usm"], "lr": batch["lr"]}
    assert torch.equal(loss(batch), loss(sharpened))
    assert not torch.equal(loss(batch), loss({"hr": batch["hr"], "lr": batch["lr"]}))


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


def test_stage2_chooses_its_temporal_modules(tmp_path):
    from sete_vsr.errors import SeteVSRError
    from sete_vsr.train.config import RESUME_KEYS, save_config

    stage2 = ROOT / "configs" / "stage2.yaml"
    config = load_config(stage2)
    assert config.temporal_transformer is None and config.tsam is None  # as the starting U-Net's config says
    config = load_config(stage2, ["tsam=false"])
    assert config.temporal_transformer is None and config.tsam is False
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config
    assert {"temporal_transformer", "tsam"} <= set(RESUME_KEYS)  # they change what a checkpoint holds
    with pytest.raises(SeteVSRError, match="temporal_transformer and tsam cannot both be false"):
        load_config(stage2, ["tsam=false", "temporal_transformer=false"])
    with pytest.raises(SeteVSRError, match="tsam: stage 2 chooses its temporal modules, stage 1 none"):
        load_config(ROOT / "configs" / "stage1.yaml", ["tsam=false"])


def test_paper_configs_hold_the_paper_values():
    stage1, stage2 = load_config(ROOT / "configs" / "stage1.yaml"), load_config(ROOT / "configs" / "stage2.yaml")
    values = [(c.stage, c.learning_rate, c.train_batch_size, c.lr_scheduler) for c in (stage1, stage2)]
    assert values == [("1", 1e-4, 3, "constant"), ("2", 5e-5, 3, "constant")]
    assert stage2.data.num_frames > 1 and stage1.data.type == stage2.data.type == "reds"
    assert load_config(ROOT / "configs" / "vae.yaml").stage == "vae"


@pytest.mark.parametrize(
    ("module", "config_class"),
    [
        ("sete_vsr.train", "sete_vsr.train.config:TrainConfig"),
        ("sete_vsr.plugins.train_seem", "sete_vsr.plugins.train_seem:SEEMTrainConfig"),
        ("sete_vsr.plugins.train_semantic_lens", "sete_vsr.plugins.train_semantic_lens:SemanticLensTrainConfig"),
    ],
)
def test_help_lists_every_config_key_with_its_default_and_meaning(module, config_class):
    import importlib
    import subprocess
    import sys

    from sete_vsr.train.config import config_keys

    module_name, _, name = config_class.partition(":")
    keys = config_keys(getattr(importlib.import_module(module_name), name))
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True).stdout
    listed = {line.split()[0]: line for line in out.split("Config keys", 1)[1].splitlines()[1:] if line.strip()}
    assert set(listed) == {key for key, _, _ in keys}
    for key, default, meaning in keys:
        assert meaning, f"{key} has no meaning in the docstring"
        assert meaning[:20] in listed[key]
        if default is None or isinstance(default, (bool, int, float, str)):
            assert yaml.safe_load(listed[key].split(None, 2)[1]) == default, listed[key]


@pytest.mark.slow
@pytest.mark.shared
def test_a_lora_trains_saves_and_loads_into_a_fresh_pipeline(init_dir, frames, tmp_path):
    """``lora_rank=2``: only LoRA tensors train; the saved LoRA, loaded the diffusers way into a fresh pipeline, gives
    the output of the trained network (rebuilt from the run's last checkpoint)."""
    from peft import LoraConfig
    from safetensors.torch import load_file

    from sete_vsr import SeTeVSRPipeline

    out = tmp_path / "lora"
    launch("tiny_stage1.yaml", *common(frames, out, init_dir, steps=2), "lora_rank=2", "learning_rate=1e-2",
           "checkpointing_steps=2", "report_to=none")  # fmt: skip
    assert (out / "pytorch_lora_weights.safetensors").is_file() and not (out / "model_index.json").exists()
    assert (out / "checkpoint-2" / "unet" / "pytorch_lora_weights.safetensors").is_file()
    trained_state = load_file(out / "checkpoint-2" / "model.safetensors")
    start = load_file(init_dir / UNET)
    base_names = {name.replace(".base_layer", "") for name in trained_state if ".lora_" not in name}
    assert base_names == set(start)  # the base weights are all there ...
    assert not changed(start, {n.replace(".base_layer", ""): t for n, t in trained_state.items() if ".lora_" not in n})

    lr = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)

    def upscale(pipe) -> np.ndarray:
        pipe.set_progress_bar_config(disable=True)
        return pipe(lr, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]

    loaded = SeTeVSRPipeline.from_pretrained(init_dir)
    loaded.load_lora_weights(out)
    rebuilt = SeTeVSRPipeline.from_pretrained(init_dir)
    targets = rebuilt.unet.lora_target_modules(1)
    rebuilt.unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=targets))
    rebuilt.unet.load_state_dict(trained_state)  # ... and the trained LoRA tensors, strictly
    expected = upscale(rebuilt)
    np.testing.assert_allclose(upscale(loaded), expected, atol=1e-6)
    assert np.abs(expected - upscale(SeTeVSRPipeline.from_pretrained(init_dir))).max() > 1e-3  # the LoRA matters
