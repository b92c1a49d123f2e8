"""Baseline registry and checkpoint reading: names, local lookup, offline errors, layouts, EMA, strictness."""

from __future__ import annotations

import pytest
import torch

from sete_vsr.baselines.basicvsr import BasicVSR
from sete_vsr.baselines.checkpoints import (
    basicsr_to_mmagic,
    extract_generator_state_dict,
    load_checkpoint,
    load_state_dict_strict,
    read_checkpoint,
)
from sete_vsr.baselines.realbasicvsr import RealBasicVSR
from sete_vsr.baselines.registry import BASELINES, get_spec, resolve_checkpoint
from sete_vsr.errors import SeteVSRError
from sete_vsr.methods import available_methods, load_method


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    """Empty weights folder and cache, offline."""
    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("SETE_VSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


def test_every_baseline_is_a_method():
    assert set(BASELINES) <= set(available_methods())
    for name in ("basicvsr-reds4", "basicvsr-vimeo-bi", "basicvsr-vimeo-bd", "basicvsrpp-reds4", "realbasicvsr",
                 "edvr-m-reds", "edvr-l-reds"):
        assert name in BASELINES


def test_specs_know_their_files():
    spec = get_spec("basicvsr-vimeo-bi")
    assert spec.sha256_prefix == "2a29695a"
    assert spec.local_names == ("BasicVSR_Vimeo90K_BIx4-2a29695a.pth", "BasicVSR_Vimeo90K_BIx4.pth")
    for spec in BASELINES.values():
        assert len(spec.sha256_prefix) == 8 and int(spec.sha256_prefix, 16) >= 0
        assert spec.url.startswith("https://")
    with pytest.raises(SeteVSRError, match="unknown baseline"):
        get_spec("basicvsr-imaginary")


def test_every_baseline_knows_the_degradation_it_was_trained_for():
    from sete_vsr.data.degradations import BD, BI

    for spec in BASELINES.values():
        # the description names the training data: "(BI x4)", "(BD x4)" or "real-world degradations"
        expected = BD if "(BD x4)" in spec.description else None if "real-world" in spec.description else BI
        assert spec.degradation == expected, spec.name
        assert ("(BI x4)" in spec.description) == (spec.degradation == BI), spec.name
    assert get_spec("basicvsr-vimeo-bd-mmagic").degradation == BD and get_spec("basicvsr-vimeo-bd").sha256_prefix
    assert [get_spec(n).degradation_name for n in ("basicvsr-vimeo-bi", "basicvsr-vimeo-bd", "realbasicvsr")] == [
        "BI", "BD", "real-world",
    ]  # fmt: skip


def test_offline_without_checkpoint_says_where_it_looked(weights_env):
    with pytest.raises(SeteVSRError) as err:
        load_method("edvr-m-reds")
    message = str(err.value)
    assert str(weights_env / "EDVR_M_x4_SR_REDS_official-32075921.pth") in message
    assert "cache" in message and "offline" in message
    assert get_spec("edvr-m-reds").url in message


def test_explicit_missing_checkpoint_is_a_clear_error(weights_env):
    with pytest.raises(SeteVSRError, match="checkpoint not found"):
        resolve_checkpoint(get_spec("basicvsr-reds4"), weights_env / "nope.pth")


def test_local_file_is_found_by_name_and_hash_checked(weights_env, shared):
    official = shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth")
    (weights_env / "BasicVSR_Vimeo90K_BIx4.pth").symlink_to(official)
    assert resolve_checkpoint(get_spec("basicvsr-vimeo-bi")) == weights_env / "BasicVSR_Vimeo90K_BIx4.pth"

    (weights_env / "BasicVSR_REDS4.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SeteVSRError, match="not the official basicvsr-reds4"):
        resolve_checkpoint(get_spec("basicvsr-reds4"))


def test_weights_dir_and_its_architecture_subfolder_are_searched(weights_env, shared, tmp_path):
    """``sete-vsr eval --weights-dir shared/weights`` finds ``basicvsr/BasicVSR_Vimeo90K_BIx4.pth``."""
    from sete_vsr.weight_dirs import set_weight_dirs

    official = shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth")
    (tmp_path / "given" / "basicvsr").mkdir(parents=True)
    (tmp_path / "given" / "basicvsr" / official.name).symlink_to(official)
    set_weight_dirs([tmp_path / "given"])
    try:
        assert resolve_checkpoint(get_spec("basicvsr-vimeo-bi")) == tmp_path / "given" / "basicvsr" / official.name
    finally:
        set_weight_dirs([])


def test_generator_selection_prefers_ema():
    a, b = torch.zeros(1), torch.ones(1)
    mmagic = {"meta": {}, "state_dict": {"generator.x": a, "generator_ema.x": b, "discriminator.y": a, "step_counter": a}}
    assert extract_generator_state_dict(mmagic) == {"x": b}
    assert extract_generator_state_dict({"meta": {}, "state_dict": {"generator.x": a}}) == {"x": a}
    assert extract_generator_state_dict({"params": {"x": a}, "params_ema": {"x": b}}) == {"x": b}
    assert extract_generator_state_dict({"params": {"x": a}}) == {"x": a}
    assert extract_generator_state_dict({"x": a}) == {"x": a}
    with pytest.raises(SeteVSRError, match="no tensors"):
        extract_generator_state_dict({"meta": {"iter": 3}})


def test_mmagic_checkpoint_file_loads_with_ema_weights(tmp_path):
    torch.manual_seed(0)
    source = RealBasicVSR(8, 1, 1)
    ema = {k: torch.randn_like(v) for k, v in basicsr_to_mmagic(source.state_dict()).items()}
    state_dict = {f"generator.{k}": torch.zeros_like(v) for k, v in ema.items()}
    state_dict.update({f"generator_ema.{k}": v for k, v in ema.items()})
    state_dict["discriminator.conv_first.weight"] = torch.zeros(4, 3, 3, 3)
    path = tmp_path / "realbasicvsr_tiny.pth"
    torch.save({"meta": {"iter": 1}, "state_dict": state_dict}, path)

    model = load_checkpoint(RealBasicVSR(8, 1, 1), path)
    assert torch.equal(model.basicvsr.backward_trunk.main[0].weight, ema["basicvsr.backward_resblocks.main.0.weight"])
    assert torch.equal(model.basicvsr.spynet.basic_module[5].basic_module[8].bias,
                       ema["basicvsr.spynet.basic_module.5.basic_module.4.conv.bias"])


def test_strict_loading_names_every_problem():
    model = BasicVSR(8, 1)
    state_dict = dict(model.state_dict())
    del state_dict["conv_last.bias"]
    state_dict["extra.weight"] = torch.zeros(1)
    state_dict["fusion.weight"] = torch.zeros(8, 15, 1, 1)
    with pytest.raises(SeteVSRError) as err:
        load_state_dict_strict(model, state_dict, source="tiny.pth")
    message = str(err.value)
    assert "tiny.pth does not fit BasicVSR" in message
    assert "missing keys: conv_last.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "fusion.weight (8, 15, 1, 1) vs (8, 16, 1, 1)" in message


class _NotATensor:
    pass


def test_checkpoints_are_read_without_unpickling_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"params": {"x": _NotATensor()}}, path)
    with pytest.raises(SeteVSRError, match="cannot read checkpoint"):
        read_checkpoint(path)
