"""No-reference metrics that need third-party models: MUSIQ and CLIP-IQA (pyiqa), DOVER.

**MUSIQ / CLIP-IQA** run through pyiqa (``pip install "sete-vsr[metrics]"``):
``pyiqa.create_metric("musiq")`` (KonIQ-10k checkpoint) and ``"clipiqa"`` (RN50,
5 antonym prompt pairs), RGB in [0, 1], full native resolution, per frame.
pyiqa never ships weights; they must already be in pyiqa's cache (or, for
MUSIQ, in a weights directory). Nothing is downloaded: with
``HF_HUB_OFFLINE=1`` set and the files missing, the metric is skipped.

**DOVER** (Wu et al. 2023) reports the fused overall score in [0, 1]
(PROTOCOLS.md 3.4): :func:`dover_fusion`. The network itself is in
:mod:`.dover` (own implementation, needs only ``DOVER.pth``).
"""

from __future__ import annotations

import os

import numpy as np

from ...weight_dirs import WeightsUnavailable, find_weight
from .base import Metric, MetricInfo, MetricOptions, check_frames

PYIQA_FILES = {
    "musiq": ("musiq_koniq_ckpt-e95806b9.pth",),
    "clipiqa": ("RN50.pt",),
}


def _pyiqa_cache_file(names: tuple[str, ...]):
    """A weights file in pyiqa's cache or our weight directories, else WeightsUnavailable."""
    from pyiqa.utils.download_util import DEFAULT_CACHE_DIR

    for name in names:
        path = os.path.join(DEFAULT_CACHE_DIR, name)
        if os.path.isfile(path):
            return path
    try:
        return str(find_weight(*names))
    except WeightsUnavailable as err:
        raise WeightsUnavailable(f"{err} (also looked in pyiqa cache {DEFAULT_CACHE_DIR})") from None


class PyIQAMetric(Metric):
    """A pyiqa no-reference metric per frame (``musiq`` or ``clipiqa``)."""

    def __init__(self, which: str, options: MetricOptions = MetricOptions()):
        device = options.device
        try:
            import pyiqa
        except ImportError:
            raise WeightsUnavailable("pyiqa not installed (pip install 'sete-vsr[metrics]')") from None
        path = _pyiqa_cache_file(PYIQA_FILES[which])
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        kwargs = {"pretrained_model_path": path} if which == "musiq" else {}
        self.model = pyiqa.create_metric(which, device=device, as_loss=False, **kwargs)
        self.device = device
        self.info = MetricInfo(
            name=which,
            label={"musiq": "MUSIQ", "clipiqa": "CLIP-IQA"}[which],
            higher_is_better=True,
            kind="no-reference",
            scope="frame",
            convention="RGB [0,1], native resolution, per frame",
            implementation=f"pyiqa {getattr(pyiqa, '__version__', '?')} '{which}' ({os.path.basename(path)})",
            needs_gt=False,
        )

    def compute(self, output, gt=None):
        import torch

        values = []
        for frame in check_frames(output):
            x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().div(255).to(self.device)
            with torch.inference_mode():
                values.append(float(self.model(x).item()))
        return np.array(values)


def dover_fusion(aesthetic_raw, technical_raw) -> dict[str, np.ndarray]:
    """DOVER's fused scores from the network's raw (aesthetic, technical) outputs.

    ``t = (tech - 0.1107) / 0.07355``, ``a = (aes + 0.08285) / 0.03774``,
    ``overall = sigmoid(0.6104 t + 0.3896 a)``; also ``aesthetic = sigmoid(a)``
    and ``technical = sigmoid(t)``. All in [0, 1] (DOVER's CSV writes them x100).
    """
    t = (np.asarray(technical_raw, dtype=np.float64) - 0.1107) / 0.07355
    a = (np.asarray(aesthetic_raw, dtype=np.float64) + 0.08285) / 0.03774

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    return {"overall": sigmoid(0.6104 * t + 0.3896 * a), "aesthetic": sigmoid(a), "technical": sigmoid(t)}


def dover_unavailable(**unused) -> Metric:
    """Former always-skip entry of ``dover`` (the registry now uses :class:`.dover.DOVERMetric`)."""
    del unused
    path = find_weight("DOVER.pth", "dover/DOVER.pth")
    raise WeightsUnavailable(
        f"found {path}, but running the DOVER network needs the VQAssessment/DOVER code, which sete-vsr does not "
        "bundle (only the score fusion, dover_fusion, is implemented)"
    )
