"""PSNR/SSIM on constructed inputs with known answers (BasicSR conventions)."""

from __future__ import annotations

import numpy as np
import pytest

from sete_vsr.errors import SeteVSRError
from sete_vsr.eval.metrics import available_metrics, build_metric
from sete_vsr.eval.metrics.fullref import PSNR_CAP_DB, psnr, rgb_to_y, ssim


def _const(value, shape=(2, 24, 32, 3)):
    return np.full(shape, value, np.uint8)


def test_rgb_to_y_is_matlab_bt601():
    assert rgb_to_y(np.array([0, 0, 0])) == pytest.approx(16.0)
    assert rgb_to_y(np.array([255, 255, 255])) == pytest.approx(235.0)
    assert rgb_to_y(np.array([255, 0, 0])) == pytest.approx(16 + 65.481)


def test_psnr_known_values():
    a, b = _const(100), _const(110)
    np.testing.assert_allclose(psnr(a, b), 20 * np.log10(255 / 10))  # MSE = 100
    # gray inputs: Y differs by 10 * 219 / 255
    np.testing.assert_allclose(psnr(a, b, y_channel=True), 20 * np.log10(255 / (10 * 219 / 255)))
    assert (psnr(a, a) == PSNR_CAP_DB).all()  # identical frames: the cap, not inf


def test_psnr_is_capped_at_100_db():
    a = np.zeros((3, 32, 32, 3), np.uint8)
    b = a.copy()
    b[1, 0, 0, 0] = 1  # MSE = 1 / 3072: 10 log10(255^2 * 3072) = 83.0 dB, under the cap
    scores = psnr(a, b)
    assert scores.tolist() == [100.0, pytest.approx(10 * np.log10(255**2 * 3072)), 100.0]
    assert np.isfinite(scores.mean())


def test_psnr_one_channel_and_crop_border():
    a = _const(0, (1, 20, 20, 3))
    b = a.copy()
    b[..., 0] = 30  # only R differs: MSE = 900 / 3
    assert psnr(a, b)[0] == pytest.approx(10 * np.log10(255**2 / 300))
    c = a.copy()
    c[:, :2] = 255  # damage only the top 2 rows
    assert psnr(a, c, crop_border=2)[0] == PSNR_CAP_DB
    assert psnr(a, c)[0] == pytest.approx(10 * np.log10(255**2 / (255**2 * 2 / 20)))


def test_ssim_known_values():
    a = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(ssim(a, a), 1.0)
    np.testing.assert_allclose(ssim(a, a, y_channel=True), 1.0)
    # constant images: only the luminance term remains
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 150 + c1) / (100**2 + 150**2 + c1)
    np.testing.assert_allclose(ssim(_const(100), _const(150)), expected)
    assert ssim(a, 255 - a).mean() < 0


def test_ssim_drops_with_noise_and_is_per_frame():
    rng = np.random.default_rng(1)
    a = rng.integers(60, 200, (3, 40, 40, 3)).astype(np.uint8)
    noisy = np.clip(a + rng.normal(0, [[[[2]]], [[[10]]], [[[30]]]], a.shape), 0, 255).astype(np.uint8)
    values = ssim(noisy, a)
    assert values.shape == (3,) and values[0] > values[1] > values[2]


def test_registered_metrics_declare_direction_and_convention():
    m = build_metric("psnr_y", crop_border=4)
    assert m.info.higher_is_better and m.info.kind == "full-reference" and "crop_border=4" in m.info.convention
    assert m.info.to_dict()["direction"] == "higher is better"
    with pytest.raises(SeteVSRError, match="unknown metric"):
        build_metric("psnr_z")
    assert {"psnr", "ssim_y", "niqe", "brisque", "ewarp", "tof", "tlp", "lpips", "dover"} <= set(available_metrics())
