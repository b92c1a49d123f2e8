"""Saving the trained component: gathered on every process, whole on the main one, under one process, DDP or FSDP.

Accelerate on a machine without a GPU turns an FSDP launch into MULTI_CPU processes with DDP (see
``configs/accelerate/fsdp.yaml``), so FSDP is played here by an accelerator stand-in: its gather answers the main
process with the full weights, as FSDP's ``FULL_STATE_DICT`` with ``rank0_only`` does, while the unwrapped module it
hands out holds other values, as a shard would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file

from sete_vsr.errors import SeteVSRError
from sete_vsr.models.presets import tiny_sete_unet_options, tiny_unet2d
from sete_vsr.models.unet import SeTeUNetModel
from sete_vsr.train.checkpoints import gather_trained_component, save_trained_component
from sete_vsr.train.config import TrainConfig
from sete_vsr.train.loop import check_distribution

UNET_FILE = "diffusion_pytorch_model.safetensors"
LORA_FILE = "pytorch_lora_weights.safetensors"


class FakeAccelerator:
    """One process of an FSDP run: ``get_state_dict`` records its calls and gives the full weights to process 0."""

    distributed_type = DistributedType.FSDP

    def __init__(self, process_index: int, full: dict[str, torch.Tensor], shard: torch.nn.Module):
        self.process_index = process_index
        self.full, self.shard = full, shard
        self.gathered: list[torch.nn.Module] = []

    @property
    def is_main_process(self) -> bool:
        return self.process_index == 0

    def get_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        self.gathered.append(model)
        return dict(self.full) if self.is_main_process else {}

    def unwrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.shard


def tiny_unet(seed: int) -> SeTeUNetModel:
    """The tiny stage-2 SeTe U-Net with every parameter drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = SeTeUNetModel.from_unet2d(tiny_unet2d(), temporal=True, **tiny_sete_unet_options())
        with torch.no_grad():
            for param in unet.parameters():
                param.normal_(0.0, 0.05)
    return unet


def add_lora(unet: SeTeUNetModel) -> SeTeUNetModel:
    """``unet`` with a rank-2 LoRA on its stage-2 attention projections, its factors drawn at random."""
    from peft import LoraConfig

    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=unet.lora_target_modules(2)))
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if ".lora_" in name:
                param.normal_(0.0, 0.05)
    return unet


def assert_same_tensors(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(saved) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(saved[name], tensor), name


def test_every_fsdp_process_gathers_and_the_main_one_saves_the_full_weights(tmp_path: Path):
    trained, shard = tiny_unet(seed=0), tiny_unet(seed=1)
    full = trained.state_dict()
    processes = [FakeAccelerator(index, full, shard) for index in (0, 1)]
    prepared = torch.nn.Identity()  # what accelerator.prepare returned; only handed to the gather

    gathered = [gather_trained_component(accelerator, prepared) for accelerator in processes]

    assert [accelerator.gathered for accelerator in processes] == [[prepared], [prepared]]
    assert gathered[1] is None
    assert gathered[0] is not shard and type(gathered[0]) is SeTeUNetModel
    save_trained_component(gathered[0], tmp_path, "unet")
    assert_same_tensors(load_file(tmp_path / "unet" / UNET_FILE), full)
    assert SeTeUNetModel.load_config(tmp_path / "unet")["temporal"] is True


def test_fsdp_ema_and_lora_are_saved_from_the_gathered_copy(tmp_path: Path):
    """The EMA weights go into the gathered copy's parameters (by name), the LoRA file holds the gathered LoRA."""
    from diffusers.training_utils import EMAModel

    trained, shard = add_lora(tiny_unet(seed=0)), add_lora(tiny_unet(seed=1))
    names = [name for name, _ in shard.named_parameters() if ".lora_" in name]
    ema = EMAModel([shard.get_parameter(name) for name in names])
    with torch.no_grad():
        for shadow in ema.shadow_params:
            shadow.add_(1.0)
    full = trained.state_dict()
    copy = gather_trained_component(FakeAccelerator(0, full, shard), torch.nn.Identity())

    save_trained_component(copy, tmp_path, "unet", ema, names)

    raw, averaged = load_file(tmp_path / "unet" / LORA_FILE), load_file(tmp_path / "unet_ema" / LORA_FILE)
    assert len(raw) == len(averaged) == len(names)
    lora = {name: tensor for name, tensor in full.items() if ".lora_" in name}
    assert sorted(t.sum().item() for t in raw.values()) == pytest.approx(sorted(t.sum().item() for t in lora.values()))
    shadows = sorted(s.sum().item() for s in ema.shadow_params)
    assert sorted(t.sum().item() for t in averaged.values()) == pytest.approx(shadows)
    assert_same_tensors(copy.state_dict(), full)  # the EMA swap is undone


@pytest.fixture
def accelerator():
    """A real single-process CPU Accelerator, its shared state reset afterwards."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)


def test_one_process_gathers_and_saves_the_unwrapped_model_itself(accelerator, monkeypatch, tmp_path: Path):
    unet = tiny_unet(seed=0)
    prepared = accelerator.prepare(unet)
    calls = []
    gather = accelerator.get_state_dict
    monkeypatch.setattr(accelerator, "get_state_dict", lambda model: calls.append(model) or gather(model))

    gathered = gather_trained_component(accelerator, prepared)

    assert calls == [prepared]
    assert gathered is accelerator.unwrap_model(prepared)
    save_trained_component(gathered, tmp_path, "unet")
    assert_same_tensors(load_file(tmp_path / "unet" / UNET_FILE), unet.state_dict())


def test_ema_is_refused_under_fsdp_only():
    with pytest.raises(SeteVSRError, match="use_ema is not supported under FSDP"):
        check_distribution(TrainConfig(use_ema=True), DistributedType.FSDP)
    for distributed_type in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.DEEPSPEED):
        check_distribution(TrainConfig(use_ema=True), distributed_type)
    check_distribution(TrainConfig(use_ema=False), DistributedType.FSDP)
