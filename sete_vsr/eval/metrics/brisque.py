"""BRISQUE (Mittal et al. 2012), the original LIVE formulation, own NumPy implementation.

Features follow the authors' MATLAB release (``brisque_feature.m``,
``brisquescore.m``):

* RGB uint8 -> MATLAB ``rgb2gray`` (``0.2989 R + 0.5870 G + 0.1140 B``, rounded
  to uint8), as float on 0-255;
* MSCN with a 7x7 Gaussian window (sigma 7/6) and zero padding (``filter2``);
* per scale: GGD fit of the MSCN map (shape, variance) and, for the four
  neighbour products, AGGD fits (shape, mean, left variance, right variance):
  18 features; two scales, the second after MATLAB bicubic ``imresize`` 0.5;
* features scaled to [-1, 1] with the LIVE ranges, then an epsilon-SVR with an
  RBF kernel (gamma 0.05): ``score = sum_i alpha_i exp(-gamma |x - sv_i|^2) - rho``.

Model: the LIVE SVR as shipped for OpenCV's quality module
(``brisque/opencv_brisque_model_live.yml`` with
``brisque/opencv_brisque_range_live.yml``, from opencv_contrib), read with
``cv2.FileStorage`` and evaluated here in NumPy. Lower is better (about 0 for
pristine images, up to about 100). Numbers are comparable only with this
implementation: pyiqa, OpenCV, MATLAB's ``brisque()`` and the ``brisque``
package all differ (PROTOCOLS.md 3.2).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ...data.imresize import imresize
from ...weights import find_weight
from .base import Metric, MetricInfo, check_frames
from .nss import PAIR_SHIFTS, aggd_fit, aggd_mean, ggd_fit, mscn

MODEL_FILES = ("brisque/opencv_brisque_model_live.yml", "opencv_brisque_model_live.yml", "brisque_model_live.yml")
RANGE_FILES = ("brisque/opencv_brisque_range_live.yml", "opencv_brisque_range_live.yml", "brisque_range_live.yml")
_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])  # MATLAB rgb2gray


def _window() -> np.ndarray:
    x = np.arange(7) - 3
    g = np.exp(-(x[:, None] ** 2 + x[None] ** 2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """``(36,)`` BRISQUE features of one ``(H, W)`` gray image on 0-255 (float)."""
    window = _window()
    feats = []
    img = gray.astype(np.float64)
    for scale in (1, 2):
        norm = mscn(img, window, "constant")
        alpha, var = ggd_fit(norm.reshape(1, -1))
        feats += [alpha[0], var[0]]
        for shift in PAIR_SHIFTS:
            prod = (norm * np.roll(norm, shift, axis=(0, 1))).reshape(1, -1)
            a, left, right = aggd_fit(prod)
            feats += [a[0], aggd_mean(a, left, right)[0], left[0] ** 2, right[0] ** 2]
        if scale == 1:
            img = imresize(img, 0.5)
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
    return np.exp(-model["gamma"] * d2) @ model["coef"] - model["rho"]


class BRISQUE(Metric):
    """BRISQUE per frame; see the module docstring for the convention and model."""

    def __init__(self, **unused):
        del unused
        self.model_path, self.range_path = find_weight(*MODEL_FILES), find_weight(*RANGE_FILES)
        self.model = load_svr(self.model_path, self.range_path)
        self.info = MetricInfo(
            name="brisque",
            label="BRISQUE",
            higher_is_better=False,
            kind="no-reference",
            scope="frame",
            convention="MATLAB rgb2gray (uint8), 0-255, full frame, 2 scales",
            implementation="sete_vsr own BRISQUE features (LIVE brisque_feature.m) + LIVE SVR from "
            f"{self.model_path.name}",
            needs_gt=False,
        )

    def compute(self, output, gt=None):
        frames = check_frames(output)
        gray = np.floor(frames.astype(np.float64) @ _GRAY + 0.5)
        return svr_score(np.stack([brisque_features(g) for g in gray]), self.model)
