"""NIQE and BRISQUE (own implementations): ranking sanity and recorded regression values."""

from __future__ import annotations

import numpy as np
import pytest

from sete_vsr.eval.metrics import WeightsUnavailable, build_metric
from sete_vsr.eval.metrics.external import dover_fusion
from sete_vsr.eval.metrics.nss import aggd_fit, ggd_fit


@pytest.fixture
def metric_dir(shared, monkeypatch):
    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(shared("metrics")))
    return shared("metrics")


def _frame(shared, clip):
    from sete_vsr.eval.benchmark_datasets import read_frames

    return read_frames(shared("data", "frames", "vid4_GT", clip), 1)


def test_ggd_and_aggd_fits_recover_gaussian_shape():
    x = np.random.default_rng(0).normal(0, 0.5, (2, 200_000))
    alpha, var = ggd_fit(x)
    np.testing.assert_allclose(alpha, 2.0, atol=0.05)
    np.testing.assert_allclose(var, 0.25, rtol=0.02)
    a, left, right = aggd_fit(x)
    np.testing.assert_allclose(a, 2.0, atol=0.05)
    np.testing.assert_allclose(left, 0.5, rtol=0.02)
    np.testing.assert_allclose(right, 0.5, rtol=0.02)
    assert np.isnan(aggd_fit(np.abs(x))[0]).all()  # no negative side


@pytest.mark.shared
@pytest.mark.parametrize("name", ["niqe", "brisque"])
def test_clean_frame_ranks_better_than_blurred_and_noisy(shared, metric_dir, name):
    import cv2

    frame = _frame(shared, "walk")[0]
    blurred = cv2.GaussianBlur(frame, (0, 0), 1.5)
    noisy = np.clip(frame + np.random.default_rng(0).normal(0, 10, frame.shape), 0, 255).astype(np.uint8)
    metric = build_metric(name)
    assert not metric.info.higher_is_better and metric.info.kind == "no-reference"
    clean, blur, noise = metric.compute(np.stack([frame, blurred, noisy]))
    assert clean < blur and clean < noise


# values of our own implementations on the first frame of each clip (recorded, so drift is caught
# without the oracle packages; tests/test_oracles.py compares them with BasicSR and OpenCV:
# cv2.quality.QualityBRISQUE gives 11.400824 and 23.136271 here, float32 against our float64)
RECORDED = {
    ("niqe", "calendar"): 4.912672,
    ("niqe", "walk"): 2.639528,
    ("brisque", "calendar"): 11.396586,
    ("brisque", "walk"): 23.168146,
}


@pytest.mark.shared
@pytest.mark.parametrize("name,clip", list(RECORDED))
def test_recorded_values(shared, metric_dir, name, clip):
    value = build_metric(name).compute(_frame(shared, clip))[0]
    assert value == pytest.approx(RECORDED[name, clip], abs=1e-4)


def test_missing_model_files_say_where_they_looked(tmp_path, monkeypatch):
    from sete_vsr import weight_dirs as weights

    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(tmp_path))
    monkeypatch.delenv("SETE_VSR_SHARED", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights, "_EXTRA_DIRS", [])
    monkeypatch.setattr(weights.Path, "home", staticmethod(lambda: tmp_path / "home"))
    for name in ("niqe", "brisque", "lpips", "dover"):
        with pytest.raises(WeightsUnavailable, match=f"weights unavailable .*{tmp_path}"):
            build_metric(name)


def test_dover_fusion_formula():
    neutral = dover_fusion(aesthetic_raw=-0.08285, technical_raw=0.1107)
    assert neutral["overall"] == pytest.approx(0.5) and neutral["technical"] == pytest.approx(0.5)
    scores = dover_fusion(aesthetic_raw=[-0.08285 + 0.03774], technical_raw=[0.1107 + 2 * 0.07355])
    # t = 2, a = 1 -> overall = sigmoid(0.6104 * 2 + 0.3896)
    assert scores["overall"][0] == pytest.approx(1 / (1 + np.exp(-(1.2208 + 0.3896))))
    assert scores["aesthetic"][0] == pytest.approx(1 / (1 + np.exp(-1)))
