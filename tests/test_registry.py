"""The typed registry: every entry resolves, options are parsed once by field type, junk is refused in one line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from sete_vsr.baselines.registry import ARCHITECTURES, BASELINES
from sete_vsr.cli import COMMANDS
from sete_vsr.errors import SeteVSRError
from sete_vsr.eval.metrics import METRICS
from sete_vsr.method_options import (
    RecurrentAdaptationOptions,
    RecurrentBaselineOptions,
    SeTeVSROptions,
    SlidingWindowAdaptationOptions,
    SlidingWindowBaselineOptions,
)
from sete_vsr.methods import METHODS, load_method, parse_method_options, resolve_method_options
from sete_vsr.registry import parse_options


@pytest.mark.parametrize("registry", [METHODS, METRICS, COMMANDS, ARCHITECTURES], ids=lambda r: r.kind)
def test_every_entry_resolves_and_has_a_label(registry):
    for entry in registry:
        assert entry.load() is not None and entry.label, entry.name
        if entry.options is not None:
            assert dataclasses.is_dataclass(entry.options) and entry.options.__dataclass_params__.frozen


def test_baseline_methods_come_from_the_one_table():
    base_names = {entry.presets["name"] for entry in METHODS if entry.target.endswith(":load_baseline")}
    assert base_names == set(BASELINES)
    for name, spec in BASELINES.items():
        assert f"{name}+adapt" in METHODS
        assert (f"{name}+seem" in METHODS) == (spec.arch in ("basicvsr", "edvr"))
        assert (f"{name}+semantic-lens" in METHODS) == (spec.arch == "basicvsr")
        runner = SlidingWindowBaselineOptions if spec.arch == "edvr" else RecurrentBaselineOptions
        assert METHODS[name].options is runner
    assert METHODS["edvr-m-reds+adapt"].options is SlidingWindowAdaptationOptions
    assert METHODS["basicvsr-vimeo-bi+adapt"].options is RecurrentAdaptationOptions


def test_text_is_converted_by_field_type():
    options = parse_options(
        SeTeVSROptions,
        {"model": "m", "steps": "20", "cpu_offload": "Yes", "color_fix": "wavelet", "tile_size": "", "scheduler": "unipc"},
        "sete-vsr",
    )
    assert options.steps == 20 and options.cpu_offload is True and options.color_fix == "wavelet"
    assert options.tile_size is None and options.scheduler == "unipc"
    adapt = parse_method_options("basicvsr-vimeo-bi+adapt", {"learning_rate": "1e-2", "freeze": "spynet,"})
    assert adapt.learning_rate == 0.01 and adapt.freeze == ("spynet",)
    # typed values from Python are kept
    assert parse_method_options("basicvsr-vimeo-bi+adapt", {"iterations": 3}).iterations == 3


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"cpu_offload": "flase"}, "cpu_offload expects true or false, got 'flase'"),
        ({"steps": "1.5"}, "steps expects an integer, got '1.5'"),
        ({"steps": "many"}, "steps expects an integer"),
        ({"color_fix": "blue"}, "color_fix must be one of none, wavelet, adain"),
        ({"dtype": "fp8"}, "dtype must be one of fp32, fp16, bf16"),
        ({"scheduler": "heun"}, "scheduler must be one of ddpm, ddim, dpmsolver"),
        ({"stpes": "2"}, r"does not take the option\(s\) stpes"),
    ],
)
def test_junk_is_a_one_line_error_before_anything_loads(given, message):
    with pytest.raises(SeteVSRError, match=message) as caught:
        load_method("sete-vsr", model="/nowhere", **given)
    assert "\n" not in str(caught.value)


def test_checks_of_the_options_themselves():
    with pytest.raises(SeteVSRError, match="needs a model"):
        load_method("sete-vsr")
    with pytest.raises(SeteVSRError, match=r"chunk_length \(4\) must exceed twice chunk_overlap \(2\)"):
        load_method("basicvsr-vimeo-bi", chunk_length="4", chunk_overlap="2")
    with pytest.raises(SeteVSRError, match="bicubic: chunk must be at least 1"):
        load_method("bicubic", chunk="0")
    with pytest.raises(SeteVSRError, match="padding must be one of"):
        load_method("edvr-m-reds", padding="mirror")
    with pytest.raises(SeteVSRError, match="needs the option"):
        load_method("adapted")


def test_common_options_go_where_they_are_taken():
    options = resolve_method_options(
        ["bicubic", "basicvsr-vimeo-bi"], {"device": "cpu", "chunk_length": "50"}, {"bicubic": {"chunk": "4"}}
    )
    assert options["bicubic"].chunk == 4 and not hasattr(options["bicubic"], "device")
    assert options["basicvsr-vimeo-bi"].device == "cpu" and options["basicvsr-vimeo-bi"].chunk_length == 50


def test_methods_command_lists_labels_and_options():
    out = subprocess.run(
        [sys.executable, "-m", "sete_vsr", "methods", "--options"], capture_output=True, text=True, check=True
    ).stdout
    assert "BasicVSR, Vimeo-90K (BI x4), BasicSR official" in out
    assert "    chunk: default 16" in out and "    weights: required" in out
