"""Temporal metrics: E_warp (Lai occlusion rule), tOF and tLP sanity."""

from __future__ import annotations

import numpy as np
import pytest

from sete_vsr.eval.metrics import build_metric
from sete_vsr.eval.metrics.flow import register_flow_backend, warp
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
    assert not occlusion_mask(fw, -fw)[:-2, :-2].any()  # consistent: visible (targets leaving the frame are occluded)
    assert occlusion_mask(fw, fw).all()  # |bw_w + fw|^2 = 32 > 0.01 * 16 + 0.5
    step = np.zeros((8, 16, 2), np.float32)
    step[:, 4:, 0] = 3.0  # motion boundary between columns 3 and 4
    mask = occlusion_mask(step, -step)
    assert mask[:, 3].all() and not mask[:, 4:12].any()


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
