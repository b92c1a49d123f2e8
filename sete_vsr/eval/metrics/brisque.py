"""BRISQUE (Mittal et al. 2012) with OpenCV's LIVE model, own NumPy/OpenCV implementation.

The SVR shipped for OpenCV's quality module (``brisque/opencv_brisque_model_live.yml``
with ``brisque/opencv_brisque_range_live.yml``, from opencv_contrib) was trained by
opencv_contrib's ``samples/brisque_trainer_livedb.cpp`` on features from
``QualityBRISQUE::computeFeatures``, so the features here follow that code (an SVR
is only valid on the features it was trained on; MATLAB ``brisque_feature.m``
features fed to this model are off by up to 10 points and go negative):

* RGB uint8 -> ``cv2.cvtColor(RGB2GRAY)`` (uint8), float32 on [0, 1];
* two scales; each is ``cv2.resize`` (``INTER_CUBIC``) of the gray image to
  ``(W // 2^s, H // 2^s)`` (scale 0 is the image itself);
* MSCN ``(I - mu) / (sigma + 1/255)`` with ``cv2.GaussianBlur`` 7x7, sigma 7/6,
  replicated borders, in float32;
* per scale: an AGGD fit of the MSCN map (shape, ``(left^2 + right^2) / 2``) and,
  for the four neighbour products (H, V, D1, D2; the neighbour outside the image
  is 0, not wrapped), AGGD fits (shape, mean, left variance, right variance):
  18 features, shape on the grid ``0.2:0.001:10``;
* features scaled to [-1, 1] with the LIVE ranges, then the epsilon-SVR with an
  RBF kernel (gamma 0.05): ``sum_i alpha_i exp(-gamma |x - sv_i|^2) - rho``,
  clamped to [0, 100] as OpenCV does.

Equal to ``cv2.quality.QualityBRISQUE_compute`` (opencv-contrib) within its
float32 SVR evaluation (``tests/test_oracles.py``), without needing the contrib
build. Lower is better. Numbers are comparable only with this implementation:
pyiqa, MATLAB's ``brisque()``, the LIVE MATLAB release and the ``brisque`` package
all differ (PROTOCOLS.md 3.2).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ...weight_dirs import find_weight
from .base import Metric, MetricInfo, MetricOptions, check_frames
from .nss import aggd_fit, aggd_mean

MODEL_FILES = ("brisque/opencv_brisque_model_live.yml", "opencv_brisque_model_live.yml", "brisque_model_live.yml")
RANGE_FILES = ("brisque/opencv_brisque_range_live.yml", "opencv_brisque_range_live.yml", "brisque_range_live.yml")
# OpenCV's neighbour offsets (rows, cols): the product at (i, j) is S(i, j) * S(i + di, j + dj)
_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def _mscn(img: np.ndarray) -> np.ndarray:
    """float32 MSCN of a float32 ``(H, W)`` image on [0, 1], as OpenCV's ``ComputeBrisqueFeature``."""
    import cv2

    mu = cv2.GaussianBlur(img, (7, 7), 7.0 / 6.0, sigmaY=0.0, borderType=cv2.BORDER_REPLICATE)
    var = cv2.GaussianBlur(img * img, (7, 7), 7.0 / 6.0, sigmaY=0.0, borderType=cv2.BORDER_REPLICATE) - mu * mu
    with np.errstate(invalid="ignore"):
        return (img - mu) / (np.sqrt(var) + np.float32(1.0 / 255.0))


def _nan_to_zero(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(x.reshape(1, -1).astype(np.float64), nan=0.0)


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """``(36,)`` BRISQUE features of one ``(H, W)`` uint8 gray image (OpenCV's ``computeFeatures``)."""
    import cv2

    base = np.asarray(gray, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
    h, w = base.shape
    feats = []
    for scale in (1, 2):
        img = base if scale == 1 else cv2.resize(base, (w // 2, h // 2), interpolation=cv2.INTER_CUBIC)
        norm = _mscn(img)
        alpha, left, right = aggd_fit(_nan_to_zero(norm))
        feats += [alpha[0], (left[0] ** 2 + right[0] ** 2) / 2]
        padded = np.pad(norm, 1)  # the neighbour outside the image is 0
        for di, dj in _NEIGHBOURS:
            prod = norm * padded[1 + di : 1 + di + norm.shape[0], 1 + dj : 1 + dj + norm.shape[1]]
            a, left, right = aggd_fit(_nan_to_zero(prod))
            feats += [a[0], aggd_mean(a, left, right)[0], left[0] ** 2, right[0] ** 2]
    return np.array(feats)


@lru_cache(maxsize=2)
def load_svr(model_path: Path, range_path: Path) -> dict:
    """Support vectors, coefficients, rho, gamma and feature ranges from OpenCV's LIVE yml files."""
    import cv2

    fs = cv2.FileStorage(str(model_path), cv2.FILE_STORAGE_READ)
    svm = fs.getNode("opencv_ml_svm")
    sv_node = svm.getNode("support_vectors")
    sv = np.array([[sv_node.at(i).at(j).real() for j in range(sv_node.at(i).size())] for i in range(sv_node.size())])
    df = svm.getNode("decision_functions").at(0)
    alpha_node = df.getNode("alpha")
    coef = np.array([alpha_node.at(i).real() for i in range(alpha_node.size())])
    model = {"sv": sv, "coef": coef, "rho": df.getNode("rho").real(), "gamma": svm.getNode("kernel").getNode("gamma").real()}
    fs.release()
    fs = cv2.FileStorage(str(range_path), cv2.FILE_STORAGE_READ)
    model["range"] = fs.getNode("range").mat().astype(np.float64)  # (2, 36): min row, max row
    fs.release()
    return model


def svr_score(features: np.ndarray, model: dict) -> np.ndarray:
    """BRISQUE scores of ``(N, 36)`` raw features with the LIVE SVR ``model``."""
    lo, hi = model["range"]
    x = -1.0 + 2.0 * (features - lo) / (hi - lo)
    d2 = ((x[:, None, :] - model["sv"][None]) ** 2).sum(axis=2)
    return np.clip(np.exp(-model["gamma"] * d2) @ model["coef"] - model["rho"], 0.0, 100.0)  # OpenCV clamps


class BRISQUE(Metric):
    """BRISQUE per frame; see the module docstring for the convention and model."""

    def __init__(self, options: MetricOptions = MetricOptions()):
        del options  # BRISQUE runs on the CPU on whole frames
        self.model_path, self.range_path = find_weight(*MODEL_FILES), find_weight(*RANGE_FILES)
        self.model = load_svr(self.model_path, self.range_path)
        self.info = MetricInfo(
            name="brisque",
            label="BRISQUE",
            higher_is_better=False,
            kind="no-reference",
            scope="frame",
            convention="OpenCV RGB2GRAY (uint8), [0,1], full frame, 2 scales (INTER_CUBIC), clamped to [0,100]",
            implementation="sete_vsr own BRISQUE = OpenCV quality-module features (QualityBRISQUE::computeFeatures) "
            f"+ LIVE SVR from {self.model_path.name}",
            needs_gt=False,
        )

    def compute(self, output, gt=None):
        import cv2

        frames = check_frames(output)
        feats = [brisque_features(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY)) for f in frames]
        return svr_score(np.stack(feats), self.model)
