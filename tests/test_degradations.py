"""RealBasicVSR degradation and blur kernels: shapes, statistics, drift, codecs, seeding."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from sete_vsr.data import kernels
from sete_vsr.data.realworld_degradation import (
    BlurParams,
    JPEGParams,
    NoiseParams,
    RealBasicVSRConfig,
    RealBasicVSRDegradation,
    ResizeParams,
    USMParams,
    degrade_full_frames,
    encode_decode_video,
    poisson_noise,
    random_blur,
    random_jpeg,
    random_noise,
    random_resize,
    random_video_compression,
    resolve_encoder,
    unsharp_mask,
)
from sete_vsr.errors import SeteVSRError


def _smooth_clip(t: int = 6, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A textured, smoothly moving uint8 clip (T, H, W, 3)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (h + t, w + t, 3)).astype(np.float32), (0, 0), 2)
    base = (base - base.min()) / (base.max() - base.min()) * 255
    return np.stack([base[i : i + h, i : i + w] for i in range(t)]).round().astype(np.uint8)


def _frames(clip: np.ndarray) -> list[np.ndarray]:
    return [f.astype(np.float32) for f in clip]


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("size", [7, 13, 21])
@pytest.mark.parametrize("kind", kernels.KERNEL_TYPES)
def test_kernels_sum_to_one_with_right_shape(kind, size):
    k = kernels.mixed_kernel(kind, size, 1.7, 0.6, 0.4, 1.5, 1.5, 1.2)
    assert k.shape == (size, size)
    assert np.isclose(k.sum(), 1.0, atol=1e-9)
    assert np.all(np.isfinite(k))
    if kind != "sinc":  # sinc has negative side lobes
        assert k.min() >= 0
    assert np.unravel_index(np.argmax(k), k.shape) == (size // 2, size // 2)


@pytest.mark.parametrize("kind", ["iso", "generalized_iso", "plateau_iso", "sinc"])
def test_isotropic_kernels_have_all_symmetries(kind):
    k = kernels.mixed_kernel(kind, 15, 2.0, 0.5, 1.0, 2.0, 1.5, 1.0)
    for t in (k.T, k[::-1], k[:, ::-1], np.rot90(k)):
        np.testing.assert_allclose(t, k, atol=1e-12)


def test_anisotropic_gaussian_orientation_and_variance():
    k = kernels.gaussian_kernel(41, 3.0, 1.0, 0.0, isotropic=False)
    grid = kernels.mesh_grid(41)
    var_x = (k * grid[..., 0] ** 2).sum()
    var_y = (k * grid[..., 1] ** 2).sum()
    assert var_x == pytest.approx(9.0, rel=1e-3) and var_y == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_allclose(k, k[::-1], atol=1e-12)  # mirror symmetric about both axes
    np.testing.assert_allclose(k, k[:, ::-1], atol=1e-12)
    # a quarter turn swaps the axes
    rotated = kernels.gaussian_kernel(41, 3.0, 1.0, math.pi / 2, isotropic=False)
    np.testing.assert_allclose(rotated, k.T, atol=1e-12)
    # point symmetric for any angle
    tilted = kernels.gaussian_kernel(21, 2.5, 0.8, 0.7, isotropic=False)
    np.testing.assert_allclose(tilted, tilted[::-1, ::-1], atol=1e-12)
    assert not np.allclose(tilted, tilted.T)


def test_generalized_gaussian_with_beta_one_is_gaussian_and_beta_shapes_tails():
    g = kernels.gaussian_kernel(21, 2.0, 1.2, 0.3, isotropic=False)
    gg = kernels.generalized_gaussian_kernel(21, 2.0, 1.2, 0.3, beta=1.0, isotropic=False)
    np.testing.assert_allclose(gg, g, atol=1e-12)
    heavy = kernels.generalized_gaussian_kernel(21, 2.0, beta=0.5)
    light = kernels.generalized_gaussian_kernel(21, 2.0, beta=3.0)
    iso = kernels.gaussian_kernel(21, 2.0)
    assert heavy[10, 0] > iso[10, 0] > light[10, 0]  # tails at 10 px from the centre


def test_sinc_kernel_centre_value_and_padding():
    omega = 1.3
    raw = kernels.sinc_kernel(11, omega)
    r = np.linalg.norm(kernels.mesh_grid(11), axis=-1)
    r[5, 5] = 1
    from scipy import special

    unnorm = omega * special.j1(omega * r) / (2 * np.pi * r)
    unnorm[5, 5] = omega**2 / (4 * np.pi)
    np.testing.assert_allclose(raw, unnorm / unnorm.sum(), atol=1e-12)
    padded = kernels.sinc_kernel(11, omega, pad_to=21)
    assert padded.shape == (21, 21) and np.isclose(padded.sum(), 1)
    np.testing.assert_allclose(padded[5:16, 5:16], raw)


def test_bad_kernel_arguments():
    with pytest.raises(ValueError):
        kernels.mesh_grid(8)
    with pytest.raises(ValueError):
        kernels.mixed_kernel("box", 7, 1, 1, 0, 1, 1, 1)


def test_beta_redraw_quirk_spans_between_beta_and_one():
    rng = np.random.default_rng(0)
    low = [kernels.redraw_beta(0.6, rng) for _ in range(2000)]
    high = [kernels.redraw_beta(1.8, rng) for _ in range(2000)]
    assert 0.6 <= min(low) < 0.62 and 0.98 < max(low) <= 1.0
    assert 1.0 <= min(high) < 1.02 and 1.78 < max(high) <= 1.8
    # the redraw changes the kernel from frame to frame even with a fixed beta
    k1 = kernels.mixed_kernel("plateau_iso", 15, 2, 2, 0, 1, 1.9, 1, rng)
    k2 = kernels.mixed_kernel("plateau_iso", 15, 2, 2, 0, 1, 1.9, 1, rng)
    assert not np.allclose(k1, k2)


# ----------------------------------------------------------------------------- stages and drift


def _assert_walk(values, bounds, step):
    values = np.asarray(values, dtype=np.float64)
    assert values.min() >= bounds[0] - 1e-9 and values.max() <= bounds[1] + 1e-9
    assert np.all(np.abs(np.diff(values)) <= step + 1e-9)


def test_blur_parameters_drift_per_frame_within_ranges():
    clip = _frames(_smooth_clip(t=30, h=24, w=24))
    p = BlurParams()
    kinds = set()
    for seed in range(12):
        out, rec = random_blur(clip, p, np.random.default_rng(seed))
        kinds.add(rec["kernel_type"])
        assert rec["kernel_size"] in p.kernel_sizes
        _assert_walk(rec["sigma_x"], p.sigma_x, p.sigma_x_step)
        _assert_walk(rec["sigma_y"], p.sigma_y, p.sigma_y_step)
        _assert_walk(rec["rotate_angle"], p.rotate_angle, p.rotate_angle_step)
        _assert_walk(rec["beta_gaussian"], p.beta_gaussian, p.beta_gaussian_step)
        _assert_walk(rec["beta_plateau"], p.beta_plateau, p.beta_plateau_step)
        omega_range = (math.pi / 3, math.pi) if rec["kernel_size"] < 13 else (math.pi / 5, math.pi)
        _assert_walk(rec["omega"], omega_range, p.omega_step)
        assert np.ptp(rec["sigma_x"]) > 0  # it does move
        assert len(out) == 30 and out[0].shape == clip[0].shape
    assert len(kinds) >= 3


def test_blur_stage_probability_is_per_clip():
    clip = _frames(_smooth_clip(t=2, h=16, w=16))
    applied = [random_blur(clip, BlurParams(prob=0.8), np.random.default_rng(s))[1]["applied"] for s in range(400)]
    assert 0.72 < np.mean(applied) < 0.88


def test_resize_scale_drifts_and_sizes_are_even():
    clip = _frames(_smooth_clip(t=30, h=64, w=96))
    p = ResizeParams()
    modes = set()
    for seed in range(10):
        out, rec = random_resize(clip, p, np.random.default_rng(seed))
        modes.add(rec["mode"])
        _assert_walk(rec["scale"], p.scale, p.step)
        for img, s, (h, w) in zip(out, rec["scale"], rec["sizes"]):
            assert img.shape[:2] == (h, w)
            assert h % 2 == 0 and w % 2 == 0
            assert h == 2 * int(64 * s // 2) and w == 2 * int(96 * s // 2)
    assert {"up", "down"} <= modes


def test_jpeg_quality_walk_and_effect():
    clip = _frames(_smooth_clip(t=30, h=32, w=32))
    out, rec = random_jpeg(clip, JPEGParams(), np.random.default_rng(3))
    q = np.asarray(rec["quality"])
    assert q.dtype.kind == "i" and q.min() >= 30 and q.max() <= 95
    assert np.all(np.abs(np.diff(q)) <= 3)
    assert np.mean(np.abs(out[0] - clip[0])) > 0.3


def test_jpeg_channel_order_quirk_changes_colour_handling():
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.uniform(0, 255, (4, 4, 3)).astype(np.float32), (32, 32), interpolation=cv2.INTER_CUBIC)
    clip = [np.clip(img, 0, 255).round()]
    p = JPEGParams(quality=(90, 90))
    a, _ = random_jpeg(clip, p, np.random.default_rng(0), rgb_as_bgr=True)
    b, _ = random_jpeg(clip, p, np.random.default_rng(0), rgb_as_bgr=False)
    assert not np.array_equal(a[0], b[0])
    # both are faithful compressions of the same RGB frame (colours are not swapped in the output)
    for x in (a[0], b[0]):
        assert np.mean(np.abs(x - clip[0])) < 3


def test_gaussian_noise_std_matches_level_in_documented_range():
    flat = [np.full((96, 96, 3), 128, np.float32)] * 20
    p = NoiseParams(noise_probs=(1.0, 0.0))
    for seed in range(8):
        out, rec = random_noise(flat, p, np.random.default_rng(seed))
        assert rec["noise_type"] == "gaussian"
        _assert_walk(rec["level"], p.gaussian_sigma, p.gaussian_sigma_step)
        for img, sigma in zip(out, rec["level"]):
            noise = img - 128
            assert np.std(noise) == pytest.approx(sigma, rel=0.04)
            assert 1 * 0.9 < np.std(noise) < 30 * 1.1
            if rec["gray"]:
                np.testing.assert_array_equal(noise[..., 0], noise[..., 2])
            else:
                assert not np.array_equal(noise[..., 0], noise[..., 2])
    # independent realisation per frame
    assert not np.array_equal(out[0], out[1])


def test_poisson_noise_magnitude_matches_protocols():
    """PROTOCOLS 1.4 (c): uniform-random image, scale 1: ~11.4 (0.x formula) vs ~0.71 (1.x), ratio 16."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (256, 256, 3)).astype(np.float32)
    unit = float(np.std(poisson_noise(img, rng, formula="unit")))
    byte = float(np.std(poisson_noise(img, rng, formula="byte")))
    # theory for 256 levels: 255 * sqrt(E[x/255] / 256) = 11.27 and sqrt(E[x] / 256) = 0.706
    assert 10.9 < unit < 11.7
    assert 0.68 < byte < 0.74
    assert 15.5 < unit / byte < 16.5
    # the noise is signal dependent: none at all on black
    assert np.all(poisson_noise(np.zeros((64, 64, 3), np.float32), rng) == 0)


def test_poisson_stage_level_range_and_gray():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (96, 96, 3)).astype(np.float32)
    p = NoiseParams(noise_probs=(0.0, 1.0))
    grays = set()
    for seed in range(10):
        out, rec = random_noise([img] * 4, p, np.random.default_rng(seed))
        assert rec["noise_type"] == "poisson"
        grays.add(rec["gray"])
        _assert_walk(rec["level"], p.poisson_scale, p.poisson_scale_step)
        for x, scale in zip(out, rec["level"]):
            noise = x - img
            if rec["gray"]:
                np.testing.assert_allclose(noise[..., 0], noise[..., 1], atol=1e-4)
            else:  # per-unit std ~11.3 on this image, times the level
                assert np.std(noise) / scale == pytest.approx(11.3, rel=0.06)
    assert grays == {True, False}


def test_usm_matches_the_described_algorithm():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    params = USMParams(kernel_size=7, sigma=1.5, weight=0.5, threshold=10)
    g = cv2.getGaussianKernel(7, 1.5)[:, 0]
    k2 = np.outer(g, g)

    def blur(x):  # explicit 2-D correlation with reflect-101 borders (numpy "reflect")
        pad = np.pad(x, ((3, 3), (3, 3), (0, 0)), mode="reflect")
        out = np.zeros_like(x, dtype=np.float64)
        for dy in range(7):
            for dx in range(7):
                out += k2[dy, dx] * pad[dy : dy + 20, dx : dx + 24]
        return out

    residue = img - blur(img)
    mask = (np.abs(residue) > 10).astype(np.float64)
    soft = blur(mask)
    expected = soft * np.clip(img + 0.5 * residue, 0, 255) + (1 - soft) * img
    np.testing.assert_allclose(unsharp_mask(img, params), expected, atol=2e-3)
    # defaults: 51x51 kernel, sigma from cv2's rule (8.0); sharpening raises local contrast
    clip = _smooth_clip(t=1, h=64, w=64)[0].astype(np.float32)
    sharp = unsharp_mask(clip)
    assert sharp.shape == clip.shape and sharp.dtype == np.float32
    assert np.std(cv2.Laplacian(sharp, cv2.CV_32F)) > np.std(cv2.Laplacian(clip, cv2.CV_32F))
    flat = np.full((64, 64, 3), 77, np.float32)
    np.testing.assert_allclose(unsharp_mask(flat), flat, atol=1e-3)


# ----------------------------------------------------------------------------- codecs


def test_h264_resolves_to_a_software_encoder():
    assert resolve_encoder("h264") in ("libx264", "libopenh264")
    assert resolve_encoder("mpeg4") == "mpeg4"
    with pytest.raises(SeteVSRError, match="no video encoder"):
        resolve_encoder("no-such-codec")


@pytest.mark.parametrize("codec", ["libx264", "h264", "mpeg4"])
def test_video_compression_really_changes_frames(codec):
    clip = list(_smooth_clip(t=6, h=64, w=64))
    encoder = resolve_encoder(codec)
    low = encode_decode_video(clip, encoder, 10_000)
    high = encode_decode_video(clip, encoder, 100_000)
    assert len(low) == len(clip) and low[0].shape == clip[0].shape and low[0].dtype == np.float32
    err_low = np.mean([np.abs(a - b.astype(np.float32)).mean() for a, b in zip(low, clip)])
    err_high = np.mean([np.abs(a - b.astype(np.float32)).mean() for a, b in zip(high, clip)])
    assert err_low > 1.0  # 10 kbit per frame is visibly lossy
    # more bits help libx264; mpeg4 sits at its coarsest quantiser on frames this small either way
    assert err_high < err_low if encoder == "libx264" else err_high <= err_low
    # deterministic (single-threaded encoder)
    again = encode_decode_video(clip, encoder, 10_000)
    assert all(np.array_equal(a, b) for a, b in zip(low, again))


def test_video_compression_uses_first_frame_size_and_handles_odd_sizes():
    clip = _smooth_clip(t=4, h=40, w=40)
    frames = [clip[0][:34, :30], clip[1][:36, :32], clip[2][:32, :28], clip[3][:34, :30]]
    out = encode_decode_video(frames, "libx264", 50_000)
    assert all(f.shape == (34, 30, 3) for f in out)
    odd = encode_decode_video([f[:33, :31] for f in clip], "mpeg4", 50_000)
    assert all(f.shape == (33, 31, 3) for f in odd)


def test_video_stage_draws_codec_and_bitrate():
    clip = _frames(_smooth_clip(t=3, h=32, w=32))
    deg = RealBasicVSRDegradation()
    codecs, rates = set(), []
    for seed in range(12):
        out, rec = random_video_compression(clip, deg.config.video1, np.random.default_rng(seed), deg.encoders)
        codecs.add(rec["codec"])
        rates.append(rec["bitrate"])
        assert isinstance(rec["bitrate"], int)
    assert codecs == {"libx264", "h264", "mpeg4"}
    assert 10_000 <= min(rates) and max(rates) <= 100_000


# ----------------------------------------------------------------------------- the pipeline


def test_default_config_holds_the_protocol_values():
    c = RealBasicVSRConfig()
    assert c.blur1.kernel_probs == (0.405, 0.225, 0.108, 0.027, 0.108, 0.027, 0.1)
    assert c.blur1.sigma_x == (0.2, 3.0) and c.blur2.sigma_x == (0.2, 1.5) and c.blur2.prob == 0.8
    assert c.resize1.mode_probs == (0.2, 0.7, 0.1) and c.resize1.scale == (0.15, 1.5) and c.resize1.step == 0.015
    assert c.resize2.mode_probs == (0.3, 0.4, 0.3) and c.resize2.scale == (0.3, 1.2) and c.resize2.step == 0.03
    assert c.noise1.gaussian_sigma == (1, 30) and c.noise1.poisson_scale == (0.05, 3)
    assert c.noise2.gaussian_sigma == (1, 25) and c.noise2.poisson_scale == (0.05, 2.5)
    assert c.jpeg1.quality == (30, 95) and c.jpeg1.quality_step == 3
    assert c.video1.bitrate == (10_000, 100_000) and c.video1.codecs == ("libx264", "h264", "mpeg4")
    assert c.final_sinc.kernel_types == ("sinc",) and c.final_sinc.prob == 0.8
    assert c.final_sinc.omega == pytest.approx((math.pi / 3, math.pi))
    assert c.target_size == (64, 64) and c.poisson_formula == "unit" and c.usm.kernel_size == 51


def test_same_seed_same_clip_and_different_seed_different_clip():
    clip = _smooth_clip(t=5, h=64, w=64)
    deg = RealBasicVSRDegradation(RealBasicVSRConfig(target_size=(16, 16)))
    a, b = deg(clip, 123), deg(clip, 123)
    assert a.shape == (5, 16, 16, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, deg(clip, np.random.default_rng(123)))
    # float input in [0, 1] is the same clip (up to float rounding before the codecs)
    assert np.abs(a - deg(clip.astype(np.float32) / 255, 123)).mean() < 0.5
    assert not np.array_equal(a, deg(clip, 124))
    assert a.min() >= 0 and a.max() <= 255 and np.array_equal(a, np.rint(a))
    # the caller's unsharp-masked clip (a training item's "hr_usm") gives the same clip as sharpening it again (codec
    # stages left out: see test_the_gt_is_sharpened_once_for_hr_usm_and_the_degradation)
    no_codecs = RealBasicVSRDegradation(RealBasicVSRConfig(target_size=(16, 16), video1=replace(
        RealBasicVSRConfig().video1, prob=0), video2=replace(RealBasicVSRConfig().video2, prob=0)))
    sharpened = np.stack([unsharp_mask(f) for f in clip])
    np.testing.assert_array_equal(no_codecs(clip, 5), no_codecs(clip, 5, sharpened=sharpened))


def test_pipeline_record_order_shuffle_and_sizes():
    clip = _smooth_clip(t=3, h=48, w=48)
    deg = RealBasicVSRDegradation(RealBasicVSRConfig(target_size=(12, 12)))
    orders = set()
    for seed in range(12):
        lr, rec = deg.degrade(clip, seed)
        names = [r["stage"] for r in rec]
        assert names[:10] == [
            "usm",
            "blur1",
            "resize1",
            "noise1",
            "jpeg1",
            "video1",
            "blur2",
            "resize2",
            "noise2",
            "jpeg2",
        ]
        orders.add(tuple(names[10:]))
        assert lr.shape == (3, 12, 12, 3)
    assert orders == {("video2", "final_resize", "final_sinc"), ("final_resize", "final_sinc", "video2")}
    fixed = RealBasicVSRDegradation(RealBasicVSRConfig(target_size=(12, 12), shuffle_final=False))
    for seed in range(4):
        assert [r["stage"] for r in fixed.degrade(clip, seed)[1]][10] == "video2"


def test_full_frame_evaluation_degradation():
    clip = _smooth_clip(t=3, h=72, w=100)
    lr = degrade_full_frames(clip, seed=5)
    assert lr.shape == (3, 18, 25, 3) and lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, degrade_full_frames(clip, seed=5))
    assert not np.array_equal(lr, degrade_full_frames(clip, seed=6))
    # the degraded LR is close to, but not the same as, a plain downscale
    plain = np.stack([cv2.resize(f, (25, 18), interpolation=cv2.INTER_AREA) for f in clip]).astype(np.float32)
    err = np.abs(lr.astype(np.float32) - plain).mean()
    assert 0.5 < err < 60


def test_bad_inputs_and_configs_are_clear_errors():
    deg = RealBasicVSRDegradation()
    with pytest.raises(SeteVSRError, match="shape"):
        deg(np.zeros((8, 8, 3), np.uint8), 0)
    with pytest.raises(SeteVSRError, match="poisson_formula"):
        RealBasicVSRDegradation(RealBasicVSRConfig(poisson_formula="half"))
    with pytest.raises(SeteVSRError, match="sum to 1"):
        RealBasicVSRDegradation(RealBasicVSRConfig(blur1=BlurParams(kernel_probs=(0.5,) * 7)))
    with pytest.raises(SeteVSRError, match="interpolation"):
        RealBasicVSRDegradation(
            replace(RealBasicVSRConfig(), final_interpolations=("nearest",), final_interpolation_probs=(1.0,))
        )


@pytest.mark.slow
def test_real_frames_degrade_plausibly(shared):
    """On Vid4 calendar 256 crops: LR differs from a clean downscale but keeps the structure."""
    folder = shared("data", "frames", "vid4_GT", "calendar")
    paths = sorted(folder.glob("*.png"))[:8]
    clip = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])[:, 150:406, 200:456]
    deg = RealBasicVSRDegradation()
    clean = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in clip]).astype(np.float32)
    for seed in range(4):
        lr = deg(clip, seed)
        assert lr.shape == (8, 64, 64, 3)
        corr = np.corrcoef(lr.mean(-1).ravel(), clean.mean(-1).ravel())[0, 1]
        assert corr > 0.5
        assert np.abs(lr - clean).mean() > 2
