"""Metrics by name: full-reference, no-reference and temporal.

``build_metric(name, **options)`` returns a :class:`~.base.Metric` whose
``info`` declares direction, kind, scope, input convention and implementation.
Modules are imported only when their metric is asked for. A metric whose files
are missing raises :class:`~sete_vsr.weight_dirs.WeightsUnavailable`; the
runner reports it as ``skipped: ...`` and goes on.

==============  =====  ==================================================
name            dir.   what
==============  =====  ==================================================
psnr, psnr_y    ↑      PSNR on RGB / BT.601 Y (BasicSR conventions)
ssim, ssim_y    ↑      SSIM on RGB / Y
lpips           ↓      LPIPS v0.1 AlexNet (needs torchvision AlexNet weights)
dists           ↓      DISTS (needs torchvision VGG16 + DISTS alpha/beta)
niqe            ↓      NIQE, BasicSR/MATLAB convention, own implementation
brisque         ↓      BRISQUE, LIVE formulation, own implementation
musiq, clipiqa  ↑      through pyiqa (optional extra, cached weights)
dover           ↑      DOVER fused overall score, own implementation (needs DOVER.pth)
ewarp_B         ↓      E_warp x1e-3 on the output, flow backend B (dis,
                       farneback, raft, spynet); ``ewarp`` = ``ewarp_dis``
tof             ↓      TecoGAN tOF (Farneback)
tlp             ↓      TecoGAN tLP x100 (needs LPIPS weights)
==============  =====  ==================================================

An alias (``ewarp``) is accepted wherever a name is, and results are recorded
under the name it stands for (:func:`canonical_metric_name`), so the flow
backend is always part of a temporal metric's recorded name.
"""

from __future__ import annotations

import importlib

from ...errors import SeteVSRError
from ...weight_dirs import WeightsUnavailable
from .base import Metric, MetricInfo

# name -> ("module:factory" relative to this package, preset keyword arguments)
METRICS: dict[str, tuple[str, dict]] = {
    "psnr": (".fullref:FullReference", {"which": "psnr"}),
    "psnr_y": (".fullref:FullReference", {"which": "psnr", "y_channel": True}),
    "ssim": (".fullref:FullReference", {"which": "ssim"}),
    "ssim_y": (".fullref:FullReference", {"which": "ssim", "y_channel": True}),
    "lpips": (".deep:LPIPS", {}),
    "dists": (".deep:DISTSMetric", {}),
    "niqe": (".niqe:NIQE", {}),
    "brisque": (".brisque:BRISQUE", {}),
    "musiq": (".external:PyIQAMetric", {"which": "musiq"}),
    "clipiqa": (".external:PyIQAMetric", {"which": "clipiqa"}),
    "dover": (".dover:DOVERMetric", {}),
    "ewarp_dis": (".temporal:WarpingError", {"backend": "dis"}),
    "ewarp_farneback": (".temporal:WarpingError", {"backend": "farneback"}),
    "ewarp_raft": (".temporal:WarpingError", {"backend": "raft"}),
    "ewarp_spynet": (".temporal:WarpingError", {"backend": "spynet"}),
    "tof": (".temporal:TemporalOF", {}),
    "tlp": (".temporal:TemporalLPIPS", {}),
}


# alias -> the metric name results are recorded under
METRIC_ALIASES: dict[str, str] = {"ewarp": "ewarp_dis"}


def available_metrics() -> list[str]:
    """Names accepted by :func:`build_metric` (aliases included)."""
    return [*METRICS, *METRIC_ALIASES]


def canonical_metric_name(name: str) -> str:
    """The name a metric is recorded under: ``"ewarp"`` -> ``"ewarp_dis"``, others unchanged."""
    return METRIC_ALIASES.get(name, name)


def build_metric(name: str, **options) -> Metric:
    """Build metric ``name``; ``options`` (``device``, ``crop_border``, ...) go to its factory.

    Raises:
        SeteVSRError: unknown name.
        WeightsUnavailable: a file the metric needs is missing.
    """
    name = canonical_metric_name(name)
    if name not in METRICS:
        raise SeteVSRError(f"unknown metric {name!r}; available: {', '.join(available_metrics())}")
    target, presets = METRICS[name]
    module_name, factory = target.split(":")
    module = importlib.import_module(module_name, __name__)
    return getattr(module, factory)(**{**presets, **options})


__all__ = [
    "METRICS",
    "METRIC_ALIASES",
    "Metric",
    "MetricInfo",
    "WeightsUnavailable",
    "available_metrics",
    "build_metric",
    "canonical_metric_name",
]
