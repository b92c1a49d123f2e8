"""Temporal metrics: E_warp (Lai occlusion rule), tOF and tLP sanity."""

from __future__ import annotations

import numpy as np
import pytest

from sete_vsr.eval.metrics import build_metric
from sete_vsr.eval.metrics.flow_backends import register_flow_backend, warp
from sete_vsr.eval.metrics.temporal import crop_8x8, occlusion_mask, warping_errors


def _texture(h=72, w=96, seed=0):
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 250, 0, 255).astype(np.uint8)


def _moving(t=6, shift=1):
    big = _texture(72, 96 + shift * t)
    return np.stack([big[:, i * shift : i * shift + 96] for i in range(t)])


def test_warp_integer_shift():
    img = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    flow = np.zeros((5, 6, 2), np.float32)
    flow[..., 0] = 1
    np.testing.assert_allclose(warp(img, flow)[:, :-1], img[:, 1:])


def test_occlusion_rule():
    zero = np.zeros((8, 8, 2), np.float32)
    assert not occlusion_mask(zero, zero).any()
    fw = np.full((8, 8, 2), 2.0, np.float32)
    # consistent everywhere, also where fw points out of the frame: Lai et al.'s Resample2d clamps the
    # sample at the border (it reads the edge flow, -2), it does not read zeros
    assert not occlusion_mask(fw, -fw).any()
    assert occlusion_mask(fw, fw).all()  # |bw_w + fw|^2 = 32 > 0.01 * 16 + 0.5
    step = np.zeros((8, 16, 2), np.float32)
    step[:, 4:, 0] = 3.0  # motion boundary between columns 3 and 4
    mask = occlusion_mask(step, -step)
    assert mask[:, 3].all() and not mask[:, 4:12].any()


def test_warp_clamps_at_the_border_like_resample2d():
    img = np.arange(4 * 5, dtype=np.float32).reshape(4, 5)
    flow = np.zeros((4, 5, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.5, -0.25  # out of the frame on the right and at the top
    out = warp(img, flow)
    # Resample2d: alpha/beta from the unclamped position, indices clamped to the image
    ys, xs = np.mgrid[0:4, 0:5].astype(np.float32)
    x, y = xs + 1.5, ys - 0.25
    x0, y0 = np.floor(x), np.floor(y)
    a, b = x - x0, y - y0
    xl, xr = np.clip(x0, 0, 4).astype(int), np.clip(x0 + 1, 0, 4).astype(int)
    yt, yb = np.clip(y0, 0, 3).astype(int), np.clip(y0 + 1, 0, 3).astype(int)
    ref = (1 - a) * (1 - b) * img[yt, xl] + a * (1 - b) * img[yt, xr] + (1 - a) * b * img[yb, xl] + a * b * img[yb, xr]
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_ewarp_name_carries_the_flow_backend():
    from sete_vsr.eval.metrics import available_metrics, canonical_metric_name

    assert build_metric("ewarp").info.name == "ewarp_dis" == canonical_metric_name("ewarp")  # alias of the default
    assert build_metric("ewarp_dis").info.name == "ewarp_dis"
    assert build_metric("ewarp_farneback").info.name == "ewarp_farneback"
    assert {"ewarp", "ewarp_dis", "ewarp_raft", "ewarp_spynet"} <= set(available_metrics())
    assert "DIS, preset MEDIUM" in build_metric("ewarp").info.implementation


def test_raft_backend_follows_the_protocol(tmp_path, monkeypatch):
    """raft-things (C+T) weights only, 20 iterations, InputPadder-style centred padding, named in the implementation."""
    import torch
    import torchvision.models.optical_flow as optical_flow

    from sete_vsr.weight_dirs import WeightsUnavailable

    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(tmp_path))
    torch.manual_seed(0)
    state = optical_flow.raft_large(weights=None).state_dict()
    torch.save(state, tmp_path / "raft_large_C_T_SKHT_V2-ff5fadd5.pth")  # Sintel/KITTI/HD1K fine-tuned: not taken
    with pytest.raises(WeightsUnavailable, match="raft_large_C_T_V1"):
        build_metric("ewarp_raft")
    torch.save(state, tmp_path / "raft_large_C_T_V1-22a6c225.pth")

    calls = []
    real = optical_flow.raft_large

    def spy(**kwargs):
        model = real(**kwargs)

        def recording(a, b, num_flow_updates=12):  # no real forward (slow on CPU): flow = the pixel's (x, y)
            calls.append((tuple(a.shape), num_flow_updates))
            ys, xs = torch.meshgrid(torch.arange(a.shape[2]), torch.arange(a.shape[3]), indexing="ij")
            return [torch.stack([xs, ys]).float()[None].expand(a.shape[0], -1, -1, -1)] * num_flow_updates

        model.forward = recording
        return model

    monkeypatch.setattr(optical_flow, "raft_large", spy)
    metric = build_metric("ewarp_raft")
    assert metric.info.name == "ewarp_raft" and "RAFT" in metric.info.label
    assert "raft_large_C_T_V1-22a6c225.pth" in metric.info.implementation
    assert "20 iterations" in metric.info.implementation
    flow = metric.flow_fn(_texture(130, 140)[None], _texture(130, 140, seed=1)[None])  # RAFT needs >= 128 px
    assert flow.shape == (1, 130, 140, 2)
    assert calls == [((1, 3, 136, 144), 20)]  # padded 3+3 rows and 2+2 columns ...
    assert flow[0, 0, 0].tolist() == [2.0, 3.0] and flow[0, -1, -1].tolist() == [141.0, 132.0]  # ... cropped back


def test_static_video_has_zero_warping_error_and_flicker_is_worse():
    static = np.repeat(_texture()[None], 5, axis=0)
    metric = build_metric("ewarp")
    assert metric.info.label.startswith("E_warp (DIS)") and metric.info.scope == "pair"
    values = metric.compute(static)
    assert np.isnan(values[0]) and np.nanmax(values) < 1e-6
    flicker = np.stack([np.clip(f.astype(int) + (25 if i % 2 else -25), 0, 255) for i, f in enumerate(static)]).astype(np.uint8)
    assert np.nanmean(metric.compute(flicker)) > 1.0  # x 1e-3


def test_moving_video_error_stays_small_compared_with_flicker():
    video = _moving()
    flicker = video.copy()
    flicker[1::2] = np.clip(flicker[1::2].astype(int) + 30, 0, 255).astype(np.uint8)
    metric = build_metric("ewarp_farneback")
    assert "Farneback" in metric.info.label
    assert np.nanmean(metric.compute(video)) * 5 < np.nanmean(metric.compute(flicker))


def test_pluggable_flow_backend_zero_flow():
    def zero_backend(device="cpu"):
        return lambda src, dst: np.zeros((*src.shape[:3], 2), np.float32)

    register_flow_backend("zero", zero_backend, "Zero")
    video = _moving(t=3)
    errors = warping_errors(video, zero_backend(), downscale=1.0)
    f0, f1 = video[0] / 255.0, video[1] / 255.0
    assert errors[0] == pytest.approx(((f1 - f0) ** 2).mean(), rel=1e-5)


def test_tof_of_video_against_itself_is_zero_and_positive_otherwise():
    video = _moving(t=7)
    metric = build_metric("tof")
    values = metric.compute(video, video)
    assert np.isnan(values[:3]).all() and np.isnan(values[-2:]).all()  # cutfr = 2
    assert np.nanmax(values) == 0.0
    static = np.repeat(video[:1], 7, axis=0)
    assert np.nanmean(metric.compute(static, video)) > 0.3


def test_crop_8x8_matches_tecogan():
    frames = np.zeros((1, 576, 720, 3))
    assert crop_8x8(frames).shape[1:3] == (544, 704)
    assert crop_8x8(np.zeros((1, 100, 100, 3))).shape[1:3] == (64, 64)


@pytest.mark.shared
def test_spynet_backend_from_the_official_basicvsr_checkpoint(shared, monkeypatch):
    """SPyNet loaded out of BasicVSR_Vimeo90K_BIx4.pth recovers a known shift and drives E_warp (SPyNet)."""
    from sete_vsr.baselines.spynet import flow_backend

    flow = flow_backend(shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth"))
    video = _moving(t=3, shift=2)  # frame t+1 is frame t moved 2 px to the left
    estimate = flow(video[1:2], video[0:1])[0]  # src(x) ~ dst(x + flow): dx = +2
    inner = estimate[16:-16, 16:-16]
    assert abs(float(np.median(inner[..., 0])) - 2.0) < 0.25 and abs(float(np.median(inner[..., 1]))) < 0.25

    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(shared("weights")))  # found as basicvsr/BasicVSR_Vimeo90K_BIx4.pth
    metric = build_metric("ewarp_spynet")
    assert "SPyNet" in metric.info.label
    flicker = video.copy()
    flicker[1::2] = np.clip(flicker[1::2].astype(int) + 30, 0, 255).astype(np.uint8)
    assert np.nanmean(metric.compute(video)) * 5 < np.nanmean(metric.compute(flicker))
