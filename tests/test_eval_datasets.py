"""Evaluation dataset layouts (REDS4, SPMCS, UDM10, VideoLQ) and the cached realbasicvsr test LR.

Each test builds a tiny fake copy of the dataset in its real on-disk layout in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from sete_vsr.cli import main
from sete_vsr.data.degradations import DESCRIPTIONS
from sete_vsr.errors import SeteVSRError
from sete_vsr.eval.benchmark_datasets import clip_seed, load_pair, resolve_dataset, write_frames
from sete_vsr.eval.report import markdown_table
from sete_vsr.eval.runner import EvalSettings, evaluate
from sete_vsr.methods import VSRMethod

SHARED_METRICS = Path(os.environ.get("SETE_VSR_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "metrics"


def _frames(t: int, h: int, w: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).uniform(0, 255, (t, h, w, 3)).astype(np.float32)
    return np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in noise]).clip(0, 255).astype(np.uint8)


def _write(folder: Path, frames: np.ndarray, pattern: str = "{:08d}.png") -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / pattern.format(i)), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return frames


class Nearest(VSRMethod):
    name = "nearest"

    def upscale(self, frames):
        return frames.repeat(4, axis=1).repeat(4, axis=2)


REDS4 = ["000", "011", "015", "020"]


@pytest.fixture
def reds_train(tmp_path) -> Path:
    """REDS as downloaded: ``train/train_sharp/<clip>/%08d.png``, REDS4 clips among others."""
    root = tmp_path / "REDS" / "train"
    for k, clip in enumerate(["000", "001", "011", "015", "020", "030"]):
        _write(root / "train_sharp" / clip, _frames(3, 64, 96, seed=k))
    return root


def test_reds4_official_layout_takes_the_four_clips(reds_train):
    ds = resolve_dataset("reds4", reds_train)
    assert [c.name for c in ds.clips] == REDS4  # 001 and 030 are not REDS4
    assert all(c.gt_source == reds_train / "train_sharp" / c.name and c.lr_source is None for c in ds.clips)
    assert ds.has_gt and ds.degradation == "realbasicvsr" and "made from GT by realbasicvsr" in ds.lr_origin
    assert [c.seed for c in ds.clips] == [clip_seed(0, c) for c in REDS4] and len({c.seed for c in ds.clips}) == 4
    assert ds.info["psnr_convention_in_literature"] == "RGB, crop 0"
    assert [c.name for c in resolve_dataset("reds4", reds_train, clips=["015", "000"]).clips] == ["000", "015"]
    # the clip seed depends on the clip's name only, never on which clips are evaluated
    assert resolve_dataset("reds4", reds_train, clips=["015"]).clips[0].seed == ds.clips[2].seed


def test_reds4_basicsr_layout_pairs_gt_with_lr_on_disk(tmp_path):
    root = tmp_path / "REDS4"
    lrs = {}
    for k, clip in enumerate(REDS4):
        _write(root / "GT" / clip, _frames(3, 64, 96, seed=k))
        lrs[clip] = _write(root / "BIx4" / clip, _frames(3, 16, 24, seed=10 + k))
    ds = resolve_dataset("reds4", root, "BI")
    assert [c.name for c in ds.clips] == REDS4
    assert ds.degradation == "BI" and "on disk" in ds.lr_origin
    assert ds.info["degradation_description"].startswith(DESCRIPTIONS["bi"])
    assert "not made here" in ds.info["degradation_description"]
    gt, lr = load_pair(ds, ds.clips[1], tmp_path / "cache")
    assert gt.shape == (3, 64, 96, 3) and np.array_equal(lr, lrs["011"])
    assert not (tmp_path / "cache").exists()  # nothing made, nothing cached
    # without a degradation the real-world default is made, the BI folder is not taken silently
    assert resolve_dataset("reds4", root).clips[0].lr_source is None


def test_reds4_missing_clip_is_an_error(tmp_path):
    for clip in ["000", "011", "020"]:
        _write(tmp_path / "GT" / clip, _frames(2, 32, 32, 0))
    with pytest.raises(SeteVSRError, match="missing clips 015"):
        resolve_dataset("reds4", tmp_path)


def test_spmcs_dove_and_mmagic_layouts(tmp_path):
    names = ["car05_001", "hdclub_003_001", "hitachi_isee5_001"]
    # DOVE's release: GT/<clip>, LQ/<clip> and their videos beside them
    dove = tmp_path / "SPMCS"
    for k, clip in enumerate(reversed(names)):
        _write(dove / "GT" / clip, _frames(3, 48, 64, k))
        _write(dove / "LQ" / clip, _frames(3, 12, 16, k))
    (dove / "GT-Video").mkdir()
    (dove / "GT-Video" / f"{names[0]}.mkv").write_bytes(b"")
    ds = resolve_dataset("spmcs", dove)
    assert [c.name for c in ds.clips] == names  # sorted, GT only (no LQ, GT-Video clips)
    assert all(c.gt_source == dove / "GT" / c.name for c in ds.clips)
    assert ds.degradation == "realbasicvsr" and ds.info["degradation_description"] == DESCRIPTIONS["realbasicvsr"]

    # mmagic's layout: GT, BIx4, BDx4 and a meta-info file
    mm = tmp_path / "mmagic" / "SPMCS"
    for k, clip in enumerate(names):
        _write(mm / "GT" / clip, _frames(3, 48, 64, k))
        _write(mm / "BIx4" / clip, _frames(3, 12, 16, k))
        _write(mm / "BDx4" / clip, _frames(3, 12, 16, 20 + k))
    (mm / "meta_info_SPMCS_GT.txt").write_text("car05_001 3 (48,64,3)\n")
    bd = resolve_dataset("spmcs", mm, "BD")
    assert [c.lr_source for c in bd.clips] == [mm / "BDx4" / c for c in names]
    assert bd.degradation == "BD" and bd.info["psnr_convention_in_literature"] == "RGB, crop 0"
    shutil.rmtree(mm / "BIx4" / names[1])
    with pytest.raises(SeteVSRError, match=f"LR clip .*{names[1]} missing"):
        resolve_dataset("spmcs", mm, "BI")


def test_udm10_layout_with_four_digit_frames(tmp_path):
    root = tmp_path / "UDM10"
    names = ["archpeople", "archwall", "auditorium"]
    lrs = {}
    for k, clip in enumerate(names):
        _write(root / "GT" / clip, _frames(4, 48, 64, k), "{:04d}.png")
        lrs[clip] = _write(root / "BIx4" / clip, _frames(4, 12, 16, 30 + k), "{:04d}.png")
    ds = resolve_dataset("udm10", root)  # BI by default, and the BIx4 folder on disk is the BI LR
    assert [c.name for c in ds.clips] == names and ds.degradation == "BI"
    assert [c.lr_source for c in ds.clips] == [root / "BIx4" / c for c in names]
    assert ds.info["psnr_convention_in_literature"] == "Y channel, crop 0"
    gt, lr = load_pair(ds, ds.clips[2], tmp_path / "cache")
    assert gt.shape == (4, 48, 64, 3) and np.array_equal(lr, lrs["auditorium"])

    gt_only = tmp_path / "gt_only"
    for k, clip in enumerate(names):
        _write(gt_only / clip, _frames(4, 48, 64, k), "{:04d}.png")
    made = resolve_dataset("udm10", gt_only, max_frames=2)
    assert made.clips[0].lr_source is None and "made from GT by BI" in made.lr_origin
    gt, lr = load_pair(made, made.clips[0], tmp_path / "cache")
    assert gt.shape == (2, 48, 64, 3) and lr.shape == (2, 12, 16, 3)


def test_videolq_has_no_gt_and_only_no_reference_metrics_by_default(tmp_path, capsys):
    root = tmp_path / "VideoLQ"
    clips = ["000", "001", "002"]
    for k, clip in enumerate(clips):
        _write(root / clip, _frames(3, 48, 64, k))
    ds = resolve_dataset("videolq", root)
    assert [c.name for c in ds.clips] == clips and not ds.has_gt and ds.degradation is None
    assert all(c.gt_source is None and c.lr_source == root / c.name for c in ds.clips)
    assert "no ground truth" in ds.lr_origin and ds.info["degradation_description"].startswith("none")
    gt, lr = load_pair(ds, ds.clips[0], tmp_path / "cache")
    assert gt is None and lr.shape == (3, 48, 64, 3)
    with pytest.raises(SeteVSRError, match="no ground truth"):
        resolve_dataset("videolq", root, "BI")

    out = tmp_path / "out"
    args = ["eval", "--methods", "bicubic", "--dataset", "videolq", "--root", str(root), "--out", str(out),
            "--no-plots", "--no-progress"]  # no --metrics: the dataset's default set
    if SHARED_METRICS.is_dir():
        args += ["--weights-dir", str(SHARED_METRICS)]
    assert main(args) == 0
    capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    assert "ewarp_dis" in results["metrics"]
    assert all(not info["needs_gt"] for info in results["metrics"].values())
    assert not any("ground truth" in reason for reason in results["skipped"].values())
    assert not {"psnr", "psnr_y", "ssim", "ssim_y", "lpips", "dists", "tof", "tlp"} & set(results["metrics"])
    assert results["dataset"]["degradation"] is None


def test_realbasicvsr_eval_lr_made_once_seeded_and_cached(reds_train, tmp_path, monkeypatch):
    ds = resolve_dataset("reds4", reds_train, clips=["000", "011"])
    clip = ds.clips[0]
    cache = tmp_path / "cache"
    gt, lr = load_pair(ds, clip, cache)
    assert gt.shape == (3, 64, 96, 3) and lr.shape == (3, 16, 24, 3) and lr.dtype == np.uint8  # H/4 x W/4
    folder = cache / "reds4" / f"realbasicvsr_seed{clip.seed}" / "000"
    assert sorted(p.name for p in folder.iterdir()) == ["00000000.png", "00000001.png", "00000002.png", "key.json"]

    # same seed -> same LR, made again from scratch in another cache
    _, again = load_pair(ds, clip, tmp_path / "other-cache")
    assert np.array_equal(again, lr)
    # another base seed -> another clip seed, another cache folder, another LR
    other = resolve_dataset("reds4", reds_train, seed=1, clips=["000"]).clips[0]
    assert other.seed != clip.seed
    _, different = load_pair(ds, other, cache)
    assert not np.array_equal(different, lr) and (cache / "reds4" / f"realbasicvsr_seed{other.seed}" / "000").is_dir()

    # reused from the cache: the degradation is not run again
    def boom(*args, **kwargs):
        raise AssertionError("the cached LR should have been reused")

    monkeypatch.setattr("sete_vsr.data.degradations.degrade", boom)
    _, cached = load_pair(ds, clip, cache)
    assert np.array_equal(cached, lr)
    monkeypatch.undo()

    # the degradation is written into the results and the table caption
    results = evaluate(ds, {"nearest": Nearest()}, ["psnr"], EvalSettings(out=tmp_path / "out", lr_cache=cache,
                                                                        progress=False))
    description = results["dataset"]["degradation_description"]
    assert description == DESCRIPTIONS["realbasicvsr"]
    for fact in ("full frames", "H/4 x W/4", "fixed seed per clip", "no USM", "64x64", "PROTOCOLS.md 1.6"):
        assert fact in description
    assert results["dataset"]["seeds"] == {"000": clip.seed, "011": ds.clips[1].seed}
    assert f"- Degradation: {description}." in markdown_table(results)


def test_made_lr_is_made_again_when_the_degradation_gt_or_reuse_change(tmp_path, monkeypatch):
    """The LR cache is keyed on the degradation's code fingerprint and the GT, and obeys ``--no-reuse``."""
    from sete_vsr.data import degradations

    write_frames(tmp_path / "data" / "clip", np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    ds = resolve_dataset("folder", tmp_path / "data", "BI")
    calls = []
    original = degradations.DEGRADATIONS["bi"]

    def counted(frames, seed):
        calls.append(len(frames))
        return original(frames, seed)

    monkeypatch.setitem(degradations.DEGRADATIONS, "bi", counted)
    _, lr = load_pair(ds, ds.clips[0], tmp_path / "cache")
    _, again = load_pair(ds, ds.clips[0], tmp_path / "cache")
    assert calls == [2] and np.array_equal(again, lr)  # made once, then reused
    load_pair(ds, ds.clips[0], tmp_path / "cache", reuse=False)
    assert calls == [2, 2]  # --no-reuse: made again

    # Changed degradation code (here a brighter BI, with the fingerprint a code change gives): not reused.
    monkeypatch.setitem(degradations.DEGRADATIONS, "bi", lambda frames, seed: np.clip(original(frames, seed) + 1, 0, 255))
    _, stale = load_pair(ds, ds.clips[0], tmp_path / "cache")
    assert np.array_equal(stale, lr)  # same fingerprint: the cache is trusted
    monkeypatch.setattr(degradations, "fingerprint", lambda name: "changed")
    _, changed = load_pair(ds, ds.clips[0], tmp_path / "cache")
    assert np.array_equal(changed, np.clip(lr + 1, 0, 255))
    # So does a changed GT.
    monkeypatch.setitem(degradations.DEGRADATIONS, "bi", original)
    write_frames(tmp_path / "data" / "clip", np.zeros((2, 32, 32, 3), np.uint8))
    _, black = load_pair(ds, ds.clips[0], tmp_path / "cache")
    assert not black.any()


def test_degradation_fingerprint_follows_the_code(tmp_path, monkeypatch):
    from sete_vsr.data import degradations

    assert degradations.fingerprint("BI") == degradations.fingerprint("bi") != degradations.fingerprint("bd")
    here = Path(degradations.__file__).parent
    for name in degradations._SOURCE_FILES:  # a copy of the code gives the same fingerprint...
        shutil.copy(here / name, tmp_path / name)
    original = degradations.fingerprint("bi")
    monkeypatch.setattr(degradations, "__file__", str(tmp_path / "degradations.py"))
    assert degradations.fingerprint("bi") == original
    with open(tmp_path / "imresize.py", "a") as source:  # ...an edited one another
        source.write("\n# an edit\n")
    assert degradations.fingerprint("bi") != original
