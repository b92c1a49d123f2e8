"""Method options: scoping (``METHOD:KEY=VALUE``), one-line errors, labels in reports, option-keyed output caches."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from sete_vsr import methods
from sete_vsr.cli import main
from sete_vsr.commands.eval import _method_options
from sete_vsr.errors import SeteVSRError
from sete_vsr.eval.benchmark_datasets import resolve_dataset, write_frames
from sete_vsr.eval.report import write_reports
from sete_vsr.eval.runner import EvalSettings, evaluate
from sete_vsr.methods import VSRMethod, load_method, method_options
from sete_vsr.method_options import BicubicOptions
from sete_vsr.registry import Entry


@dataclass(frozen=True, kw_only=True)
class ShiftedOptions:
    shift: int = 0
    weights: str | None = None
    device: str | None = None
    progress: bool = True


class Shifted(VSRMethod):
    """Nearest x4 plus ``shift`` grey levels; named ``shifted-untrained`` unless given ``weights`` (like SEEM)."""

    built = 0
    calls = 0

    def __init__(self, options: ShiftedOptions):
        type(self).built += 1
        self.shift = options.shift
        self.trained = options.weights is not None
        self.name = "shifted" if options.weights else "shifted-untrained"

    def upscale(self, frames):
        type(self).calls += 1
        up = frames.repeat(4, axis=1).repeat(4, axis=2).astype(np.int16) + self.shift
        return up.clip(0, 255).astype(np.uint8)


@pytest.fixture
def shifted(monkeypatch):
    """Two methods by name, ``shifted-a`` and ``shifted-b``, both :class:`Shifted`."""
    for name in ("shifted-a", "shifted-b"):
        monkeypatch.setitem(methods.METHODS._entries, name, Entry(name, f"{__name__}:Shifted", "", ShiftedOptions))
    Shifted.built = Shifted.calls = 0


@pytest.fixture
def clips(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (3, 32, 40, 3)).astype(np.float32)
    write_frames(tmp_path / "data" / "a", np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in noise]).astype(np.uint8))
    return tmp_path / "data"


def test_an_option_a_method_does_not_take_is_a_one_line_error():
    with pytest.raises(SeteVSRError, match=r"basicvsr-vimeo-bi does not take the option\(s\) iterations; it takes: "):
        load_method("basicvsr-vimeo-bi", iterations="5")  # raised before any checkpoint is looked for
    with pytest.raises(SeteVSRError, match="does not take the option"):
        load_method("basicvsr-vimeo-bi+seem", iterations="5")
    assert {"iterations", "num_frames", "checkpoint", "chunk_length"} <= method_options("basicvsr-vimeo-bi+adapt")
    assert {"batch_size", "padding"} <= method_options("edvr-m-reds+adapt")
    assert {"sam2", "seem_weights", "chunk_length"} <= method_options("basicvsr-vimeo-bi+seem")
    assert "base" not in method_options("basicvsr-vimeo-bi+seem")  # presets are not options
    assert {"semantic_lens_weights", "sam2"} <= method_options("basicvsr-vimeo-bi+semantic-lens")
    assert method_options("bicubic") == {"chunk"}  # refuses anything else
    assert "kernel" in method_options("realbasicvsr+adapt")


def test_command_line_options_are_scoped():
    names = ["basicvsr-vimeo-bi", "basicvsr-vimeo-bi+adapt"]
    common, scoped = _method_options(
        ["checkpoint=/w/a=b:c.pth", "basicvsr-vimeo-bi+adapt:iterations=20", "basicvsr-vimeo-bi+adapt:seed=1"],
        names, "cpu", False,
    )  # fmt: skip
    assert common == {"device": "cpu", "progress": False, "checkpoint": "/w/a=b:c.pth"}
    assert scoped == {"basicvsr-vimeo-bi+adapt": {"iterations": "20", "seed": "1"}}
    with pytest.raises(SeteVSRError, match="none of the methods .* takes 'iterations'"):
        _method_options(["iterations=5"], ["basicvsr-vimeo-bi"], "cpu", True)
    with pytest.raises(SeteVSRError, match="edvr-m-reds is not one of --methods"):
        _method_options(["edvr-m-reds:padding=circle"], names, "cpu", True)
    for bad in ("iterations", ":iterations=5", "basicvsr-vimeo-bi:=5"):
        with pytest.raises(SeteVSRError, match="expects KEY=VALUE or METHOD:KEY=VALUE"):
            _method_options([bad], names, "cpu", True)


def test_scoped_options_labels_and_option_keyed_cache(shifted, clips, tmp_path):
    dataset = resolve_dataset("folder", clips, "BI")

    def run(shift_a="10", **scoped):
        settings = EvalSettings(
            out=tmp_path / "out",
            progress=False,
            method_options={"device": "cpu", "shift": shift_a},
            options_by_method={"shifted-b": {"weights": "w.pt", "shift": "20"}, **scoped},
        )
        return evaluate(dataset, ["shifted-a", "shifted-b", "bicubic"], ["psnr"], settings)

    results = run()
    # labels: the built methods' names (shifted-b got weights= only: it alone is "trained")
    assert results["methods"] == ["shifted-untrained", "shifted", "bicubic"]
    assert results["method_options"]["shifted"] == {"method": "shifted-b", "options": {"shift": "20", "weights": "w.pt"}}
    psnr = results["summary"]["psnr"]
    assert psnr["shifted-untrained"] > psnr["shifted"]  # shift 10 (common) vs 20 (scoped over common)
    assert Shifted.built == 2 and Shifted.calls == 2

    outputs = tmp_path / "out" / "outputs" / "folder-BI"
    folders = sorted(p.name for p in outputs.iterdir())
    assert folders[0] == "bicubic" and all("@" in f for f in folders[1:])  # bicubic takes no shift: no options
    record = json.loads(next(outputs.glob("shifted-b@*/method.json")).read_text())
    assert record == {"method": "shifted-b", "label": "shifted", "options": {"shift": "20", "weights": "w.pt"}}

    paths = write_reports(results, tmp_path / "out")
    table = paths["table"].read_text()
    assert "| Dataset | Metric | shifted-untrained | shifted | bicubic |" in table
    assert "- `shifted`: method `shifted-b` with shift=20, weights=w.pt." in table
    assert next(csv.reader(open(paths["summary"])))[3:] == ["shifted-untrained", "shifted", "bicubic"]
    assert {row["method"] for row in csv.DictReader(open(paths["per_clip"]))} == set(results["methods"])
    from sete_vsr.eval.plots import write_plots

    assert {p.name for p in write_plots(results, tmp_path / "out" / "plots")} >= {"bars.png", "per_frame_psnr.png"}

    # the same options: everything reused, no method built, labels read from the cache
    assert run()["methods"] == results["methods"] and Shifted.built == 2 and Shifted.calls == 2
    # other options for shifted-a: its own new folder, recomputed; the others reused
    again = run(shift_a="11")
    assert Shifted.calls == 3 and again["summary"]["psnr"]["shifted"] == psnr["shifted"]
    assert again["summary"]["psnr"]["shifted-untrained"] != psnr["shifted-untrained"]
    # a cache without its method.json (written by an older version, options unknown) is recomputed
    for path in outputs.glob("shifted-b@*/method.json"):
        path.unlink()
    run()
    assert Shifted.calls == 4


def test_bad_scoped_options_fail_before_anything_runs(shifted, clips, tmp_path):
    dataset = resolve_dataset("folder", clips, "BI")
    for scoped, message in [
        ({"shifted-a": {"iterations": "5"}}, r"shifted-a does not take the option\(s\) iterations"),
        ({"shifted-c": {"shift": "5"}}, "shifted-c, which is not among the methods evaluated"),
    ]:
        settings = EvalSettings(out=tmp_path / "o", progress=False, options_by_method=scoped)
        with pytest.raises(SeteVSRError, match=message):
            evaluate(dataset, ["shifted-a", "shifted-b"], ["psnr"], settings)
    assert Shifted.built == 0


def test_equal_labels_get_their_method_name(shifted, clips, tmp_path):
    settings = EvalSettings(out=tmp_path / "o", progress=False)
    results = evaluate(resolve_dataset("folder", clips, "BI"), ["shifted-a", "shifted-b"], ["psnr"], settings)
    assert results["methods"] == ["shifted-untrained", "shifted-untrained [shifted-b]"]


def test_cli_scoped_options_and_one_line_errors(shifted, clips, tmp_path, capsys):
    base = ["eval", "--dataset", "folder", "--root", str(clips), "--degradation", "BI", "--metrics", "psnr",
            "--out", str(tmp_path / "o"), "--no-progress"]  # fmt: skip
    args = [*base, "--methods", "shifted-a,shifted-b", "--method-option", "shift=5",
            "--method-option", "shifted-b:weights=w.pt"]  # fmt: skip
    assert main(args) == 0
    assert "| Dataset | Metric | shifted-untrained | shifted |" in capsys.readouterr().out
    assert (tmp_path / "o" / "plots" / "bars.png").exists()

    assert main([*base, "--methods", "shifted-a", "--method-option", "shifted-a:iterations=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "shifted-a does not take the option(s) iterations" in err and "\n" not in err
    assert main([*base, "--methods", "basicvsr-vimeo-bi", "--method-option", "iterations=5"]) == 2
    assert "none of the methods (basicvsr-vimeo-bi) takes 'iterations'" in capsys.readouterr().err


# ------------------------------------------------------------------------ named instances: one method, several columns


def test_instance_names_and_their_scoped_options():
    assert methods.split_instance("sete-vsr:stage1") == ("sete-vsr", "stage1")
    assert methods.split_instance("basicvsr-vimeo-bi+seem") == ("basicvsr-vimeo-bi+seem", None)
    assert methods.is_method("sete-vsr:stage1") and methods.is_method("bicubic") and not methods.is_method("nope:a")
    for bad in ("sete-vsr:", "sete-vsr:a:b", "sete-vsr:a/b", "sete-vsr:-a"):
        with pytest.raises(SeteVSRError, match="bad method instance"):
            methods.split_instance(bad)
    with pytest.raises(SeteVSRError, match="cannot hold ':'"):
        methods.register_method("x:y", "sete_vsr.baselines.bicubic:BicubicUpsampler", BicubicOptions)
    names = ["bicubic", "sete-vsr:stage1", "sete-vsr:stage2"]
    common, scoped = _method_options(
        ["sete-vsr:stage1:model=/runs/a:b=c", "sete-vsr:stage2:model=/runs/s2", "steps=20"], names, "cpu", False
    )
    assert common == {"device": "cpu", "progress": False, "steps": "20"}
    assert scoped == {"sete-vsr:stage1": {"model": "/runs/a:b=c"}, "sete-vsr:stage2": {"model": "/runs/s2"}}
    with pytest.raises(SeteVSRError, match="sete-vsr is not one of --methods"):
        _method_options(["sete-vsr:model=/runs/a"], names, "cpu", False)
    with pytest.raises(SeteVSRError, match=r"sete-vsr:stage1 does not take the option\(s\) iterations"):
        load_method("sete-vsr:stage1", iterations="5")


def test_instances_of_one_method_side_by_side(shifted, clips, tmp_path):
    dataset = resolve_dataset("folder", clips, "BI")
    settings = EvalSettings(
        out=tmp_path / "out",
        progress=False,
        options_by_method={"shifted-a:one": {"shift": "10"}, "shifted-a:two": {"shift": "10", "weights": "w.pt"}},
    )
    names = ["shifted-a", "shifted-a:one", "shifted-a:two"]
    results = evaluate(dataset, names, ["psnr"], settings)
    # each instance is labelled by its name, "-untrained" appended as the method says
    assert results["methods"] == ["shifted-untrained", "shifted-a:one-untrained", "shifted-a:two"]
    assert results["method_options"]["shifted-a:two"] == {
        "method": "shifted-a:two", "options": {"shift": "10", "weights": "w.pt"},
    }  # fmt: skip
    psnr = results["summary"]["psnr"]
    assert psnr["shifted-a:one-untrained"] == psnr["shifted-a:two"] != psnr["shifted-untrained"]
    folders = sorted(p.name for p in (tmp_path / "out" / "outputs" / "folder-BI").iterdir())
    assert folders[0] == "shifted-a" and [f.split("@")[0] for f in folders[1:]] == ["shifted-a:one", "shifted-a:two"]
    table = write_reports(results, tmp_path / "out")["table"].read_text()
    assert "| Dataset | Metric | shifted-untrained | shifted-a:one-untrained | shifted-a:two |" in table
    # reused from the caches, labels included
    assert evaluate(dataset, names, ["psnr"], settings)["methods"] == results["methods"] and Shifted.calls == 3


def test_cli_compares_sete_vsr_models_side_by_side(tmp_path, capsys):
    """Two SeTe-VSR pipelines in one run: an untrained one (as `sete-vsr init` writes) and a trained one."""
    import cv2

    from sete_vsr.pipelines import tiny_pipeline

    noise = np.random.default_rng(2).uniform(0, 255, (2, 32, 48, 3)).astype(np.float32)
    write_frames(tmp_path / "gt" / "clip", np.stack([cv2.GaussianBlur(f, (0, 0), 2) for f in noise]).astype(np.uint8))
    tiny_pipeline(seed=0, temporal=False).save_pretrained(tmp_path / "stage1")
    tiny_pipeline(seed=1).save_pretrained(tmp_path / "stage2")
    index_file = tmp_path / "stage2" / "model_index.json"
    index = json.loads(index_file.read_text())
    index["assembled_from"]["training_stages"] = [{"stage": "1", "steps": 4}, {"stage": "2", "steps": 4}]
    index_file.write_text(json.dumps(index))

    out = tmp_path / "out"
    args = ["eval", "--methods", "bicubic,sete-vsr:stage1,sete-vsr:stage2", "--dataset", "folder",
            "--root", str(tmp_path / "gt"), "--degradation", "BI", "--metrics", "psnr", "--out", str(out),
            "--device", "cpu", "--no-progress", "--no-plots", "--method-option", "steps=1",
            "--method-option", f"sete-vsr:stage1:model={tmp_path / 'stage1'}",
            "--method-option", f"sete-vsr:stage2:model={tmp_path / 'stage2'}"]  # fmt: skip
    assert main(args) == 0
    assert "| Dataset | Metric | bicubic | sete-vsr:stage1-untrained | sete-vsr:stage2 |" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    psnr = results["summary"]["psnr"]
    assert psnr["sete-vsr:stage1-untrained"] != psnr["sete-vsr:stage2"]  # two models, two columns
    assert results["method_options"]["sete-vsr:stage2"]["options"] == {"model": str(tmp_path / "stage2"), "steps": "1"}
    with open(out / "summary.csv") as file:
        assert next(csv.reader(file))[3:] == ["bicubic", "sete-vsr:stage1-untrained", "sete-vsr:stage2"]


# ------------------------------------------------------------------------ base, +SEEM and +adapt, tiny networks

TINY_BASICVSR = {"num_feat": 4, "num_block": 1}


@pytest.fixture
def tiny_basicvsr_vimeo_bi(tmp_path, monkeypatch):
    """``basicvsr-vimeo-bi`` as a tiny random BasicVSR checkpoint, and a tiny random SAM2 folder."""
    from sete_vsr.baselines.basicvsr import BasicVSR
    from sete_vsr.baselines.registry import BASELINES
    from sete_vsr.models.presets import tiny_sam2_model

    spec = BASELINES["basicvsr-vimeo-bi"]
    monkeypatch.setitem(BASELINES, spec.name, replace(spec, arch_kwargs=TINY_BASICVSR))
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny-basicvsr.pth"
    torch.save({"params": BasicVSR(**TINY_BASICVSR).state_dict()}, checkpoint)
    tiny_sam2_model().save_pretrained(tmp_path / "sam2")
    return {"checkpoint": str(checkpoint), "sam2": str(tmp_path / "sam2")}


def test_base_seem_and_adapt_side_by_side(tiny_basicvsr_vimeo_bi, tmp_path):
    import cv2

    noise = np.random.default_rng(1).uniform(0, 255, (2, 320, 320, 3)).astype(np.float32)
    write_frames(tmp_path / "gt" / "clip", np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in noise]).astype(np.uint8))
    names = ["basicvsr-vimeo-bi", "basicvsr-vimeo-bi+seem", "basicvsr-vimeo-bi+adapt"]
    settings = EvalSettings(
        out=tmp_path / "out",
        progress=False,
        method_options={"device": "cpu", "progress": False, "checkpoint": tiny_basicvsr_vimeo_bi["checkpoint"]},
        options_by_method={
            "basicvsr-vimeo-bi+seem": {"sam2": tiny_basicvsr_vimeo_bi["sam2"], "points_per_side": "2"},
            "basicvsr-vimeo-bi+adapt": {"iterations": "1", "num_frames": "2", "batch_size": "1",
                                        "learning_rate": "1e-2"},
        },
    )  # fmt: skip
    results = evaluate(resolve_dataset("folder", tmp_path / "gt", "BI"), names, ["psnr_y"], settings)
    assert results["methods"] == ["basicvsr-vimeo-bi", "basicvsr-vimeo-bi+seem-untrained", "basicvsr-vimeo-bi+adapt"]
    psnr = results["summary"]["psnr_y"]
    assert psnr["basicvsr-vimeo-bi+seem-untrained"] == psnr["basicvsr-vimeo-bi"]  # untrained SEEM adds zero
    assert psnr["basicvsr-vimeo-bi+adapt"] != psnr["basicvsr-vimeo-bi"]  # one adaptation step changed it
    table = write_reports(results, tmp_path / "out")["table"].read_text()
    assert "| basicvsr-vimeo-bi | basicvsr-vimeo-bi+seem-untrained | basicvsr-vimeo-bi+adapt |" in table
    assert "- `basicvsr-vimeo-bi+adapt`: method `basicvsr-vimeo-bi+adapt` with batch_size=1, checkpoint=" in table
