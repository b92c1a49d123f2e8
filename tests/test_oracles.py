"""Every metric and degradation against an independent implementation (issue 18, section 1).

Oracles are test-only packages (the ``oracles`` extra, see README "Test"): BasicSR
(``basicsr-fixed``), scikit-video, scikit-image, ``lpips``, ``dists-pytorch`` and
opencv-contrib's quality module. Each test skips when its package is missing and
runs on a few small crops of the real frames in ``../shared`` (clean and degraded).
Tolerances are tight; where a difference remains, its cause is written next to it.

Not used as an oracle: the ``brisque`` package. Its libsvm model
(``pybrisque_svm.txt``) is not the one this project uses, and its features
(skimage ``rgb2gray`` on [0, 1], hand-built window, scipy-optimised fits) are
neither OpenCV's nor MATLAB's, so there is no common number to compare.
"""

from __future__ import annotations

import numpy as np
import pytest

from sete_vsr.data.imresize import imresize

CLIPS = (("vid4_GT", "calendar", 0), ("vid4_GT", "walk", 5), ("realbasicvsr_demo_000", None, 3))


def _read(shared, folder, clip, index):
    from PIL import Image

    parts = ("data", "frames", folder) + ((clip,) if clip else ())
    return np.asarray(Image.open(shared(*parts) / f"{index:08d}.png").convert("RGB"))


@pytest.fixture(scope="module")
def crops():
    """name -> (H, W, 3) uint8: 192x288 crops of three real frames, plus blurred, noisy and BI+bicubic copies."""
    import cv2

    from conftest import shared_path

    out = {}
    for folder, clip, index in CLIPS:
        frame = _read(shared_path, folder, clip, index)[:192, :288]
        name = clip or folder
        out[name] = frame
        out[name + "-blur"] = cv2.GaussianBlur(frame, (0, 0), 1.5)
        noise = np.random.default_rng(index).normal(0, 8, frame.shape)
        out[name + "-noise"] = np.clip(frame + noise, 0, 255).astype(np.uint8)
        out[name + "-bicubic"] = imresize(imresize(frame, 0.25), 4.0)
    return out


def _bgr(img):
    return np.ascontiguousarray(img[..., ::-1])


# ----------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_ssim_match_basicsr_and_skimage(crops):
    pytest.importorskip("basicsr", reason="oracle basicsr-fixed not installed (pip install '.[oracles]')")
    skm = pytest.importorskip("skimage.metrics", reason="oracle scikit-image not installed")
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

    from sete_vsr.eval.metrics.fullref import psnr, rgb_to_y, ssim

    worst = {"psnr_y": 0.0, "ssim_y": 0.0, "ssim_rgb": 0.0, "sk_ssim": 0.0, "sk_psnr": 0.0}
    for name in ("calendar", "walk", "realbasicvsr_demo_000"):
        gt = crops[name]
        for kind in ("blur", "noise", "bicubic"):
            out = crops[f"{name}-{kind}"]
            # BasicSR takes BGR; its Y is computed in float32, ours in float64
            ref = calculate_psnr(_bgr(out), _bgr(gt), crop_border=4, test_y_channel=True)
            worst["psnr_y"] = max(worst["psnr_y"], abs(psnr(out, gt, True, 4)[0] - ref))
            ref = calculate_ssim(_bgr(out), _bgr(gt), crop_border=4, test_y_channel=True)
            worst["ssim_y"] = max(worst["ssim_y"], abs(ssim(out, gt, True, 4)[0] - ref))
            ref = calculate_ssim(out, gt, crop_border=0)
            worst["ssim_rgb"] = max(worst["ssim_rgb"], abs(ssim(out, gt)[0] - ref))
            # scikit-image with Wang et al.'s settings: Gaussian 11x11 sigma 1.5, population
            # covariance, data range 255, on the float Y; it averages the SSIM map over the
            # region 5 px inside each border, which is our valid region
            y_out, y_gt = rgb_to_y(out), rgb_to_y(gt)
            ref = skm.structural_similarity(
                y_out, y_gt, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
            )
            worst["sk_ssim"] = max(worst["sk_ssim"], abs(ssim(out, gt, True)[0] - ref))
            ref = skm.peak_signal_noise_ratio(y_gt, y_out, data_range=255)
            worst["sk_psnr"] = max(worst["sk_psnr"], abs(psnr(out, gt, True)[0] - ref))
    # measured: psnr_y 3e-7 dB, ssim_y 1.2e-8 (BasicSR's float32 Y); RGB SSIM 1.2e-14; skimage 2e-16 / 0
    assert worst["psnr_y"] < 1e-6 and worst["ssim_y"] < 1e-7, worst
    assert worst["ssim_rgb"] < 1e-12 and worst["sk_ssim"] < 1e-12 and worst["sk_psnr"] < 1e-10, worst


# ----------------------------------------------------------------------------- NIQE


@pytest.fixture(scope="module")
def niqe_metric():
    from conftest import shared_path

    from sete_vsr.eval.metrics.niqe import NIQE
    from sete_vsr.weight_dirs import set_weight_dirs, weight_dirs

    saved = weight_dirs()
    set_weight_dirs([shared_path("metrics")])
    try:
        yield NIQE()
    finally:
        set_weight_dirs(saved)


def test_niqe_matches_basicsr(crops, niqe_metric):
    pytest.importorskip("basicsr", reason="oracle basicsr-fixed not installed (pip install '.[oracles]')")
    from basicsr.metrics.niqe import calculate_niqe, niqe

    from sete_vsr.eval.metrics.fullref import rgb_to_y
    from sete_vsr.eval.metrics.niqe import niqe_gray

    m = niqe_metric
    core, full, float64_vs_float32 = [], [], []
    for name in ("calendar", "walk-blur", "realbasicvsr_demo_000-noise", "walk-bicubic"):
        img = crops[name]
        ours = m.compute(img)[0]
        # the same rounded float64 Y into BasicSR's NIQE core: the pipelines agree except that
        # BasicSR's MATLAB-like imresize runs in float32 (torch) for the second scale
        y = np.round(rgb_to_y(img))
        core.append(abs(ours - niqe(y, m.mu, m.cov, m.window)))
        # calculate_niqe casts the image to float32 first; our NIQE given that float32 Y agrees
        ref = calculate_niqe(_bgr(img).astype(np.float64), 0, convert_to="y")
        full.append(abs(niqe_gray(y.astype(np.float32), m.mu, m.cov, m.window) - ref))
        float64_vs_float32.append(abs(ours - ref))
    # measured: core 2.2e-5, float32 pipeline 2.1e-5. Float32 against float64 (ours, as MATLAB's
    # double) differs by up to 0.23 on these 192x288 crops: each shape parameter is an argmin over
    # the grid 0.2:0.001:10, so rounding noise can move a fit by one grid step, and the covariance
    # of the 6 blocks of such a crop is poorly conditioned (0.014 on a 384x576 crop).
    assert max(core) < 1e-4, core
    assert max(full) < 1e-4, full
    assert max(float64_vs_float32) > 1e-3  # the precision is what differs, so it is pinned here


def test_niqe_features_and_distance_match_scikit_video(crops, niqe_metric):
    skvideo_stats = pytest.importorskip("skvideo.utils.stats", reason="oracle scikit-video not installed")
    skvideo_mscn = pytest.importorskip("skvideo.utils.mscn", reason="oracle scikit-video not installed")
    from PIL import Image
    from scipy import io, linalg

    from conftest import shared_path
    from sete_vsr.eval.metrics.niqe import block_features
    from sete_vsr.eval.metrics.nss import mscn

    # scikit-video's NIQE (skvideo.measure.niqe) needs scipy.misc.imresize (removed from scipy)
    # and np.int (removed from numpy); its pieces are called here instead, with the same
    # resize done through PIL as scipy.misc.imresize(mode='F', interp='bicubic') did.
    params = io.loadmat(shared_path("metrics", "niqe", "skvideo_niqe_image_params.mat"))
    pop_mu, pop_cov = np.ravel(params["pop_mu"]), params["pop_cov"]
    window_1d = np.asarray(skvideo_mscn.gen_gauss_window(3, 7.0 / 6.0))
    window = np.outer(window_1d, window_1d)

    def skvideo_convention(gray, ours: bool):
        """NIQE as scikit-video computes it; from its own functions, or from ours."""
        h, w = gray.shape
        small = np.asarray(Image.fromarray(gray, mode="F").resize((w // 2, h // 2), Image.BICUBIC))
        feats = []
        for img, block in ((gray, 96), (small, 48)):
            # scikit-video's float32 MSCN map; ours in float64 from the same window is compared below
            norm = skvideo_mscn.compute_image_mscn_transform(img)[0].astype(np.float64)
            mscn_gaps.append(np.abs(mscn(img.astype(np.float64), window, "constant") - norm).max())
            # scikit-video's AGGD puts exact zeros on the right side (x >= 0), ours leaves them out
            # of both sides (MATLAB's x > 0 and x < 0); flat areas of the float32 map have a few
            # (4 to 46 here), so they are moved off zero to compare the rest of the fit
            norm[norm == 0] = 1e-12
            if ours:
                f = block_features(norm, block)
                # scikit-video's feature list repeats the left scale for both diagonals
                f[:, 13], f[:, 17] = f[:, 12], f[:, 16]
            else:
                tiles = [norm[i : i + block, j : j + block] for i in range(0, img.shape[0] - block + 1, block)
                         for j in range(0, img.shape[1] - block + 1, block)]
                f = []
                for t in tiles:
                    a, n, bl, br, _, _ = skvideo_stats.aggd_features(t.copy())
                    row = [a, (bl + br) / 2]
                    for p in skvideo_stats.paired_product(t):
                        pa, pn, pbl, pbr, _, _ = skvideo_stats.aggd_features(p.copy())
                        row += [pa, pn, pbl, pbr]
                    f.append(row)
                f = np.array(f)
                f[:, 13], f[:, 17] = f[:, 12], f[:, 16]
            feats.append(f)
        feats = np.hstack(feats)
        diff = feats.mean(axis=0) - pop_mu
        return float(np.sqrt(diff @ linalg.pinv((pop_cov + np.cov(feats.T)) / 2) @ diff)), feats

    gaps, feature_gaps, mscn_gaps = [], [], []
    for name in ("calendar", "walk-blur", "realbasicvsr_demo_000-noise"):
        gray = (crops[name].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).astype(np.float32)
        ours, f_ours = skvideo_convention(gray, ours=True)
        ref, f_ref = skvideo_convention(gray, ours=False)
        gaps.append(abs(ours - ref) / ref)
        feature_gaps.append(np.abs(f_ours - f_ref).max())
    # On the same MSCN map our block features equal scikit-video's; its MSCN is float32, ours float64
    # (measured: features 4e-16, NIQE relative 3e-13; MSCN 1.3e-3, from scikit-video's float32
    # local variance E[x^2] - mu^2 on the 0-255 scale, where cancellation costs ~1e-3)
    assert max(mscn_gaps) < 5e-3, mscn_gaps
    assert max(feature_gaps) < 1e-6, feature_gaps
    assert max(gaps) < 1e-4, gaps


# ----------------------------------------------------------------------------- BRISQUE


def test_brisque_matches_opencv_quality_module(crops):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "quality"):
        pytest.skip("oracle opencv-contrib-python-headless not installed (cv2.quality missing)")
    from conftest import shared_path
    from sete_vsr.eval.metrics.brisque import BRISQUE, brisque_features
    from sete_vsr.weight_dirs import set_weight_dirs, weight_dirs

    saved = weight_dirs()
    set_weight_dirs([shared_path("metrics")])
    try:
        metric = BRISQUE()
    finally:
        set_weight_dirs(saved)
    lo, hi = metric.model["range"]
    score_gap, feature_gap = [], []
    for name, img in crops.items():
        ref = cv2.quality.QualityBRISQUE_compute(_bgr(img), str(metric.model_path), str(metric.range_path))[0]
        score_gap.append(abs(metric.compute(img)[0] - ref))
        ref_f = np.asarray(cv2.quality.QualityBRISQUE_computeFeatures(_bgr(img)), np.float64).ravel()
        ours_f = brisque_features(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
        feature_gap.append(np.abs(2 * (ours_f - ref_f) / (hi - lo)).max())  # in the SVR's [-1, 1] units
    # OpenCV keeps everything in float32 (MSCN, squares, sums, its SVR); we fit in float64.
    # Where the local variance cancels to a negative float32 (flat, blurred areas) both get
    # NaN MSCN coefficients, which OpenCV's min/max/patchNaNs turn into zeros, as we do; the
    # remaining gap is float32 rounding (measured: features 2.3e-3 of their range, scores 0.037
    # at most, median 1.8e-3)
    assert max(feature_gap) < 5e-3, feature_gap
    assert max(score_gap) < 0.05 and np.median(score_gap) < 5e-3, score_gap


# ----------------------------------------------------------------------------- LPIPS / DISTS


@pytest.fixture(scope="module")
def random_backbones(tmp_path_factory):
    """Seeded random AlexNet and VGG16 ``features``, saved once (ImageNet weights cannot be downloaded).

    Only the convolutional part is built (on the meta device first, so the large classifier
    layers are never initialised); files hold ``features.*`` keys like torchvision's.
    """
    import torch
    from torchvision.models import alexnet, vgg16

    folder = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    out = {}
    for name, factory in (("alexnet", alexnet), ("vgg16", vgg16)):
        with torch.device("meta"):
            features = factory(weights=None).features
        features = features.to_empty(device="cpu")
        for module in features.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.reset_parameters()
        out[name] = folder / f"{name}.pth"
        torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, out[name])
        out[name + "_features"] = features.eval()
    return out


def _backbone_factory(features):
    """Stands in for a torchvision constructor in an oracle package, which only reads ``.features``."""
    import copy
    from types import SimpleNamespace

    return lambda *args, **kwargs: SimpleNamespace(features=copy.deepcopy(features))


def _pairs(crops, size=(96, 128)):
    import torch

    h, w = size
    names = ("calendar", "walk", "realbasicvsr_demo_000")
    a = np.stack([crops[n][:h, :w] for n in names for _ in range(2)])
    b = np.stack([crops[f"{n}-{k}"][:h, :w] for n in names for k in ("blur", "noise")])
    to = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    return a, b, to(a), to(b)


def test_lpips_equals_the_lpips_package(crops, random_backbones, monkeypatch):
    lpips = pytest.importorskip("lpips", reason="oracle lpips not installed (pip install '.[oracles]')")
    import torch

    from conftest import shared_path
    from sete_vsr.eval.metrics.deep import PairwiseDeepMetric, build_lpips_net

    factory = _backbone_factory(random_backbones["alexnet_features"])
    monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet", factory)
    oracle = lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()  # its shipped v0.1 linear heads
    heads = shared_path("metrics", "lpips", "v0.1", "alex.pth")
    ours = PairwiseDeepMetric(build_lpips_net(random_backbones["alexnet"], heads))
    a, b, ta, tb = _pairs(crops)
    with torch.no_grad():
        ref = oracle(ta, tb, normalize=True).flatten().double().numpy()
    got = ours.distances(a, b)
    assert np.ptp(ref) > 0  # the random backbone still separates the pairs
    # the same float32 operations in the same order (measured: identical, difference 0)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)


def test_dists_equals_dists_pytorch(crops, random_backbones, monkeypatch):
    dists_pt = pytest.importorskip("DISTS_pytorch.DISTS_pt", reason="oracle dists-pytorch not installed")
    import torch

    from sete_vsr.eval.metrics.deep import PairwiseDeepMetric, build_dists_net

    monkeypatch.setattr(dists_pt.models, "vgg16", _backbone_factory(random_backbones["vgg16_features"]))
    # its learnt alpha/beta ship as DISTS_pytorch/weights.pt (load_weights=True looks in sys.prefix)
    from pathlib import Path

    weights = Path(dists_pt.__file__).with_name("weights.pt")
    oracle = dists_pt.DISTS(load_weights=False).eval()
    ab = torch.load(weights, weights_only=True)
    oracle.alpha.data, oracle.beta.data = ab["alpha"], ab["beta"]
    ours = PairwiseDeepMetric(build_dists_net(random_backbones["vgg16"], weights))
    a, b, ta, tb = _pairs(crops)
    with torch.no_grad():
        ref = oracle(ta, tb).flatten().double().numpy()
    got = ours.distances(a, b)
    assert np.ptp(ref) > 0
    # float32: 1 - (sum of ~1500 weighted similarities) cancels to ~1e-3 (measured: 1.2e-7)
    np.testing.assert_allclose(got, ref, rtol=0, atol=5e-7)


# ----------------------------------------------------------------------------- imresize, BI, BD


def test_imresize_matches_basicsr(crops):
    pytest.importorskip("basicsr", reason="oracle basicsr-fixed not installed (pip install '.[oracles]')")
    from basicsr.utils.matlab_functions import imresize as basicsr_imresize

    from sete_vsr.data.degradations import bi_degrade

    worst_float, worst_bi, changed = 0.0, 0, 0.0
    for name in ("calendar", "walk-noise", "realbasicvsr_demo_000"):
        img = crops[name][:190, :285]  # sizes that are not multiples of the scale
        for scale in (0.25, 0.5, 4.0, 1 / 3):
            ours = imresize(img.astype(np.float64) / 255.0, scale)
            ref = basicsr_imresize(img.astype(np.float32) / 255.0, scale)
            assert ours.shape == ref.shape
            worst_float = max(worst_float, np.abs(ours - ref).max())  # BasicSR runs in float32 (torch)
        # BI: MATLAB (and ours) rounds to uint8 after the first pass, BasicSR keeps float;
        # with the float pass both agree to float32 noise before the final rounding
        ref = np.clip(np.round(basicsr_imresize(img.astype(np.float32) / 255.0, 0.25) * 255.0), 0, 255)
        float_pass = imresize(img, 0.25, uint8_passes=False)
        worst_bi = max(worst_bi, np.abs(float_pass.astype(int) - ref).max())
        changed = max(changed, np.mean(bi_degrade(img[None])[0] != ref))
    # measured: 2.6e-7 on [0, 1] (float32); uint8 identical with a float pass; MATLAB's per-pass
    # rounding changes 11% of the BI pixels by one level
    assert worst_float < 2e-6, worst_float
    assert worst_bi <= 1, worst_bi
    assert 0 < changed < 0.2, changed


def test_bd_matches_basicsr_duf_downsample(crops):
    pytest.importorskip("basicsr", reason="oracle basicsr-fixed not installed (pip install '.[oracles]')")
    import torch
    from basicsr.data.data_util import duf_downsample, generate_gaussian_kernel

    from sete_vsr.data.degradations import bd_degrade, gaussian_kernel_1d

    k = gaussian_kernel_1d(1.6, 13)
    np.testing.assert_allclose(np.outer(k, k), generate_gaussian_kernel(13, 1.6), rtol=0, atol=1e-15)
    frames = np.stack([crops["calendar"], crops["walk-noise"]])
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).double().contiguous()  # float64: no float32 noise in the oracle
    ref = duf_downsample(x, kernel_size=13, scale=4).permute(0, 2, 3, 1).numpy()
    ref = np.clip(np.floor(ref + 0.5), 0, 255)
    # BasicSR pads with reflect-101; our default replicates (it matches DUF's distributed Vid4 LR)
    ours = bd_degrade(frames, border="reflect101")
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)
    assert (bd_degrade(frames) != ours).any()  # the border convention is visible, so it is tested


# ----------------------------------------------------------------------------- RealBasicVSR primitives


def test_realbasicvsr_kernels_match_basicsr():
    degradations = pytest.importorskip("basicsr.data.degradations", reason="oracle basicsr-fixed not installed")
    from sete_vsr.data import kernels

    rng = np.random.default_rng(0)
    for _ in range(20):
        size = int(rng.choice([7, 9, 13, 21]))
        sx, sy, theta = rng.uniform(0.2, 3), rng.uniform(0.2, 3), rng.uniform(-np.pi, np.pi)
        beta, omega = rng.uniform(0.5, 4), rng.uniform(np.pi / 5, np.pi)
        for iso in (True, False):
            np.testing.assert_allclose(
                kernels.gaussian_kernel(size, sx, sy, theta, iso),
                degradations.bivariate_Gaussian(size, sx, sy, theta, isotropic=iso), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(
                kernels.generalized_gaussian_kernel(size, sx, sy, theta, beta, iso),
                degradations.bivariate_generalized_Gaussian(size, sx, sy, theta, beta, isotropic=iso),
                rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(
                kernels.plateau_kernel(size, sx, sy, theta, beta, iso),
                degradations.bivariate_plateau(size, sx, sy, theta, beta, isotropic=iso), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            kernels.sinc_kernel(size, omega, pad_to=21), degradations.circular_lowpass_kernel(omega, size, pad_to=21),
            rtol=1e-12, atol=1e-15)


def test_realbasicvsr_noise_matches_basicsr_with_the_same_draws(crops):
    degradations = pytest.importorskip("basicsr.data.degradations", reason="oracle basicsr-fixed not installed")
    from sete_vsr.data import realworld_degradation as realbasicvsr

    img = crops["walk"][:64, :96]
    for gray in (False, True):
        # BasicSR's gray is cv2 BGR2GRAY of its BGR image; without gray the draws follow the
        # array cells, so both get the same array
        src = (_bgr(img) if gray else img).astype(np.float32) / 255.0
        # Poisson on the [0, 1] scale of mmedit 0.x (our default "unit" formula) and of BasicSR
        np.random.seed(1)
        ours = realbasicvsr.poisson_noise(img, _Scripted(), gray=gray, formula="unit") / 255.0
        np.random.seed(1)
        ref = degradations.generate_poisson_noise(src, scale=1.0, gray_noise=gray)
        ref = ref[..., :1] if gray else ref
        assert ours.shape == ref.shape and np.std(ref) > 0.01
        # BasicSR's lambda and result are float32, ours float64 (measured: 1.5e-8)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
        # Gaussian through the whole RandomNoise stage (type, gray flag and sigma fixed by the
        # scripted draws, then one standard normal per pixel, or per pixel of one channel)
        params = realbasicvsr.NoiseParams(noise_probs=(1.0, 0.0), gaussian_sigma=(7.0, 7.0),
                                          gaussian_gray_prob=float(gray))
        frame = img.astype(np.float32)
        np.random.seed(2)
        noisy, record = realbasicvsr.random_noise([frame], params, _Scripted(), "unit")
        assert record["noise_type"] == "gaussian" and record["gray"] == gray
        np.random.seed(2)
        ref = degradations.generate_gaussian_noise(src, sigma=7.0, gray_noise=gray) * 255.0
        assert np.std(ref) > 5
        # float32 sigma * draw against float32(draw) * sigma / 255 * 255 (measured: 4e-6)
        np.testing.assert_allclose(noisy[0] - frame, ref, rtol=0, atol=1e-4)


class _Scripted:
    """Our ``rng`` interface on numpy's global legacy generator, which BasicSR draws its noise from.

    Choices and parameter draws are scripted (the first option with the highest probability,
    the lower bound of every range) so only the noise itself is random.
    """

    @staticmethod
    def uniform(low=0.0, high=1.0):
        return low

    @staticmethod
    def choice(n, p=None):
        return int(np.argmax(p))

    @staticmethod
    def standard_normal(shape, dtype=np.float64):
        return np.random.randn(*shape).astype(dtype)

    @staticmethod
    def poisson(lam):
        return np.random.poisson(lam)


# ----------------------------------------------------------------------------- tOF and E_warp


def _textured_clip(shape=(64, 80), band=6, seed=0):
    """uint8 RGB texture inside a uniform band (value 100) of ``band`` pixels."""
    rng = np.random.default_rng(seed)
    frame = np.full(shape + (3,), 100, np.uint8)
    inner = (shape[0] - 2 * band, shape[1] - 2 * band, 3)
    frame[band : shape[0] - band, band : shape[1] - band] = rng.integers(20, 200, inner)
    return frame


def _exact_translation(src, dst, search=4):
    """The integer translation ``d`` with ``src(x) = dst(x + d)`` (global block matching), as a flow field."""
    a, b = src[0].astype(float), dst[0].astype(float)
    h, w = a.shape[:2]
    m = search
    best = min(
        ((np.abs(a[m:h - m, m:w - m] - b[m + dy:h - m + dy, m + dx:w - m + dx]).mean(), dx, dy)
         for dy in range(-m, m + 1) for dx in range(-m, m + 1)),
    )
    return np.broadcast_to(np.float32([best[1], best[2]]), (1, h, w, 2)).copy()


def test_tof_on_known_motion_equals_the_hand_value():
    from sete_vsr.eval.metrics.temporal import TemporalOF

    base = _textured_clip((80, 96), band=0)
    v_gt, v_out, frames = (2, 1), (-1, 3), 8
    gt = np.stack([np.roll(base, (t * v_gt[1], t * v_gt[0]), axis=(0, 1)) for t in range(frames)])
    out = np.stack([np.roll(base, (t * v_out[1], t * v_out[0]), axis=(0, 1)) for t in range(frames)])
    metric = TemporalOF()
    metric.flow_fn = _exact_translation  # the exact flow of a global translation
    values = metric.compute(out, gt)
    # TecoGAN: mean over pixels of |OF_gt - OF_out|, pairs (t-1, t) with 2 < t < T - 2
    expected = np.hypot(v_gt[0] - v_out[0], v_gt[1] - v_out[1])
    assert np.isnan(values[[0, 1, 2, 6, 7]]).all()
    np.testing.assert_allclose(values[3:6], expected, rtol=1e-6)  # flows are float32


def _teco_tof(gt, out, cutfr=2):
    """TecoGAN's tOF written out plainly: Farneback of consecutive gray frames, crop to
    multiples of 32 keeping >= 8 px per side, mean L2 difference, frames cutfr < t < T - cutfr."""
    import cv2

    h, w = gt.shape[1:3]
    ch, cw = (h - 16) // 32 * 32, (w - 16) // 32 * 32
    y0, x0 = (h - ch) // 2, (w - cw) // 2

    def flow(a, b):
        ga, gb = (cv2.cvtColor(f[y0:y0 + ch, x0:x0 + cw], cv2.COLOR_RGB2GRAY) for f in (a, b))
        return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    return {t: float(np.linalg.norm(flow(gt[t - 1], gt[t]) - flow(out[t - 1], out[t]), axis=-1).mean())
            for t in range(cutfr + 1, len(gt) - cutfr)}


@pytest.mark.shared
def test_tof_matches_a_plain_tecogan_recomputation(shared):
    from sete_vsr.eval.metrics.temporal import TemporalOF

    gt = np.stack([_read(shared, "vid4_GT", "walk", i)[100:260, 200:420] for i in range(7)])
    out = imresize(imresize(gt, 0.25), 4.0)
    values = TemporalOF().compute(out, gt)
    plain = _teco_tof(gt, out)
    assert sorted(plain) == [3, 4] and np.isnan(np.delete(values, [3, 4])).all()
    for t, v in plain.items():
        assert v > 0.01
        assert values[t] == pytest.approx(v, rel=1e-6)


def _fixed_flows(fw, bw, first):
    """A flow backend returning ``fw`` from frame ``first`` and ``bw`` the other way."""

    def flow(src, dst):
        return (fw if np.array_equal(src[0], first) else bw)[None].astype(np.float32)

    return flow


def test_ewarp_on_known_motion_equals_the_hand_value():
    from sete_vsr.eval.metrics.temporal import warping_errors

    d = (3, 2)  # content moves by dx=3, dy=2: O_t(x) = O_t+1(x + d), forward flow d
    f0 = _textured_clip()
    f1 = np.roll(f0, (d[1], d[0]), axis=(0, 1))  # the uniform band wraps in, so warping is exact
    h, w = f0.shape[:2]
    fw = np.broadcast_to(np.float32(d), (h, w, 2))
    bw = -fw
    # exact flows: no occlusion, warping reproduces O_t exactly
    assert warping_errors(np.stack([f0, f1]), _fixed_flows(fw, bw, f0), downscale=1)[0] == 0
    # brighten a 10x12 region R of O_t+1: error k/255 on the |R| pixels x with x + d in R, all
    # channels, averaged over all H*W*3 mask entries
    k, r = 40, (slice(20, 30), slice(30, 42))
    f1b = f1.copy()
    f1b[r] += k
    expected = 10 * 12 / (h * w) * (k / 255) ** 2
    got = warping_errors(np.stack([f0, f1b]), _fixed_flows(fw, bw, f0), downscale=1)[0]
    assert got == pytest.approx(expected, rel=1e-6)
    # a backward flow inconsistent on R (+d instead of -d) makes exactly those pixels occluded
    # (|w(b) + f|^2 = 52 > 0.01 * 26 + 0.5): Lai's mask removes the whole error
    bw_bad = bw.copy()
    bw_bad[r] = fw[r]
    assert warping_errors(np.stack([f0, f1b]), _fixed_flows(fw, bw_bad, f0), downscale=1)[0] == 0


def _bilinear(img, flow):
    """``img(x + flow(x))`` with exact bilinear weights, sample indices clamped to the image (Resample2d)."""
    h, w = flow.shape[:2]
    x = np.clip(np.arange(w)[None, :] + flow[..., 0], 0, w - 1)
    y = np.clip(np.arange(h)[:, None] + flow[..., 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (x - x0)[..., None], (y - y0)[..., None]
    img = img.reshape(h, w, -1).astype(np.float64)
    top = img[y0, x0] * (1 - ax) + img[y0, x1] * ax
    bottom = img[y1, x0] * (1 - ax) + img[y1, x1] * ax
    return top * (1 - ay) + bottom * ay


def _lai_warping_error(f0, f1, fw, bw):
    """Lai et al.'s warping error of one pair, written out from the paper's code."""
    warped_bw = _bilinear(bw, fw)
    occ = ((warped_bw + fw) ** 2).sum(-1) > 0.01 * ((warped_bw**2).sum(-1) + (fw**2).sum(-1)) + 0.5
    gx = np.zeros_like(fw)
    gy = np.zeros_like(fw)
    gx[:, :-1] = fw[:, 1:] - fw[:, :-1]
    gy[:-1] = fw[1:] - fw[:-1]
    occ |= (gx**2 + gy**2).sum(-1) > 0.01 * (fw**2).sum(-1) + 0.002
    mask = np.repeat((~occ)[..., None], 3, axis=-1).astype(float)
    diff = _bilinear(f1 / 255.0, fw) - f0 / 255.0
    return float((mask * diff**2).sum() / mask.sum())


@pytest.mark.shared
def test_ewarp_matches_a_plain_lai_recomputation(shared):
    import cv2

    from sete_vsr.eval.metrics.flow_backends import dis_backend
    from sete_vsr.eval.metrics.temporal import WarpingError

    frames = np.stack([_read(shared, "vid4_GT", "walk", i)[100:292, 200:456] for i in range(3)])
    metric = WarpingError("dis")
    values = metric.compute(frames)
    half = np.stack([cv2.resize(f, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_LINEAR) for f in frames])
    flow = dis_backend()
    for t in range(2):
        a, b = half[t : t + 1], half[t + 1 : t + 2]
        plain = 1000 * _lai_warping_error(a[0].astype(float), b[0].astype(float), flow(a, b)[0], flow(b, a)[0])
        assert plain > 0.01
        # same rule; float32 warps (cv2.remap) against float64 ones (measured: 3e-8)
        assert values[t + 1] == pytest.approx(plain, rel=1e-6)
    assert np.isnan(values[0])
