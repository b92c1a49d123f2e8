"""MATLAB-style imresize, the BI/BD degradations, the bicubic method, and the DUF Vid4 LR check."""

from __future__ import annotations

import numpy as np
import pytest

from sete_vsr.data.degradations import BD, BI, Downscaling, bd_degrade, bi_degrade, degrade, gaussian_kernel_1d
from sete_vsr.data.imresize import cubic, imresize, resize_matrix
from sete_vsr.errors import SeteVSRError


def _read(folder, count):
    from sete_vsr.eval.benchmark_datasets import read_frames

    return read_frames(folder, count)


def _psnr(a, b):
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean()
    return 10 * np.log10(255**2 / mse)


def test_cubic_kernel_values():
    assert cubic(np.array([0.0, 1.0, 2.0, 3.0])).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert cubic(np.array([0.5]))[0] == pytest.approx(0.5625)  # 1.5/8 - 2.5/4 + 1
    assert cubic(np.array([1.5]))[0] == pytest.approx(-0.0625)


@pytest.mark.parametrize("in_len,scale", [(16, 0.25), (7, 0.5), (5, 4.0), (9, 1.0)])
def test_resize_matrix_rows_sum_to_one(in_len, scale):
    out_len = int(np.ceil(in_len * scale))
    m = resize_matrix(in_len, out_len, scale)
    assert m.shape == (out_len, in_len)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)


def test_x4_down_weights_are_the_matlab_antialiased_kernel():
    # output 1 of a x1/4 resize sits at input 2.5 (1-based); taps at distance d weigh cubic(d/4)/4, normalised
    m = resize_matrix(32, 8, 0.25)
    d = 2.5 - np.arange(1, 33)
    expected = cubic(d / 4) / 4
    # mirrored taps left of pixel 1 fold back onto pixels 1..
    left = np.arange(-8, 1)
    for pos in left:
        expected[-pos] += cubic((2.5 - pos) / 4) / 4
    np.testing.assert_allclose(m[0], expected / expected.sum(), atol=1e-12)


def test_imresize_shapes_dtypes_and_constants():
    img = np.full((2, 13, 18, 3), 77, np.uint8)
    down = imresize(img, 0.25)
    assert down.shape == (2, 4, 5, 3) and down.dtype == np.uint8
    assert (down == 77).all()
    up = imresize(down, 4)
    assert up.shape == (2, 16, 20, 3) and (up == 77).all()
    assert imresize(np.ones((5, 6)), size=(10, 3)).shape == (10, 3)
    np.testing.assert_array_equal(imresize(img, 1.0), img)


def test_bicubic_upsampling_reproduces_linear_ramps_inside():
    ramp = np.tile(np.arange(20, dtype=np.float64), (6, 1))
    up = imresize(ramp, 4)
    u = (np.arange(1, 81) / 4 + 0.5 * (1 - 1 / 4)) - 1  # 0-based source positions
    np.testing.assert_allclose(up[:, 8:-8], np.tile(u[8:-8], (24, 1)), atol=1e-9)


def test_bi_and_bd_shapes_and_degrade_entry():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (2, 36, 44, 3), dtype=np.uint8)
    assert bi_degrade(gt).shape == (2, 9, 11, 3)
    assert bd_degrade(gt).shape == (2, 9, 11, 3)
    np.testing.assert_array_equal(degrade(gt, "bi"), bi_degrade(gt))
    np.testing.assert_array_equal(degrade(gt, "BD", seed=3), bd_degrade(gt))
    assert gaussian_kernel_1d().shape == (13,) and gaussian_kernel_1d().sum() == pytest.approx(1.0)
    with pytest.raises(SeteVSRError, match="unknown degradation"):
        degrade(gt, "nope")
    with pytest.raises(SeteVSRError, match="uint8"):
        degrade(gt.astype(np.float32), "BI")


def test_downscaling_values_degrade_as_named_and_parse_user_kernels():
    gt = np.random.default_rng(2).integers(0, 256, (2, 36, 44, 3), dtype=np.uint8)
    np.testing.assert_array_equal(BI(gt), bi_degrade(gt))
    np.testing.assert_array_equal(BD(gt, np.random.default_rng(0)), bd_degrade(gt))  # the dataset form
    wide = Downscaling.parse("gaussian:2.5")
    np.testing.assert_array_equal(wide(gt), bd_degrade(gt, sigma=2.5))
    assert not np.array_equal(wide(gt), BD(gt))
    assert (Downscaling.parse("bicubic"), Downscaling.parse(" Gaussian ")) == (BI, BD)
    assert (BI.name, BD.name, wide.name) == ("BI", "BD", "BD (sigma 2.5, 13x13)")
    for bad, message in [("lanczos", "unknown kernel"), ("bicubic:2", "unknown kernel"),
                         ("gaussian:wide", "bad Gaussian sigma"), ("gaussian:-1", "sigma > 0")]:
        with pytest.raises(SeteVSRError, match=message):
            Downscaling.parse(bad)


def test_bd_of_a_constant_is_constant():
    gt = np.full((1, 40, 40, 3), 200, np.uint8)
    assert (bd_degrade(gt) == 200).all() and (bd_degrade(gt, border="reflect101") == 200).all()


def test_bicubic_method_interface():
    from sete_vsr.methods import load_method

    method = load_method("bicubic")
    lr = np.random.default_rng(1).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    out = method(lr)
    assert out.shape == (3, 32, 40, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, imresize(lr, 4))
    np.testing.assert_array_equal(load_method("bicubic", chunk="2")(lr), out)  # options arrive as strings
    for options in ({"device": "cuda"}, {"checkpoint": "x.pth"}, {"chunks": "2"}):  # refused, not dropped
        with pytest.raises(SeteVSRError, match="bicubic does not take the option"):
            load_method("bicubic", **options)


@pytest.mark.shared
def test_duf_calendar_lr_is_bd_not_bi(shared):
    """DUF's distributed Vid4 LR is the Gaussian (BD) degradation: recorded PSNRs against our BI and BD."""
    gt = _read(shared("data", "frames", "vid4_GT", "calendar"), 3)
    duf = _read(shared("data", "frames", "vid4_calendar_LR_duf"), 3)
    psnr_bi = _psnr(bi_degrade(gt), duf)
    psnr_bd = _psnr(bd_degrade(gt), duf)
    psnr_bd_reflect = _psnr(bd_degrade(gt, border="reflect101"), duf)
    assert psnr_bi == pytest.approx(22.81, abs=0.1)  # all 41 frames: 22.81 dB
    assert psnr_bd == pytest.approx(51.1, abs=0.3)  # replicate borders, rounded
    assert psnr_bd > psnr_bd_reflect > 45
