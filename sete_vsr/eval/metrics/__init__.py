"""Metrics by name: full-reference, no-reference and temporal.

``build_metric(name, device=..., crop_border=...)`` returns a :class:`~.base.Metric` whose
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

from ...errors import SeteVSRError
from ...registry import Entry, Registry
from ...weight_dirs import WeightsUnavailable
from .base import Metric, MetricInfo, MetricOptions


def _metric(name: str, target: str, label: str, **presets) -> Entry:
    return Entry(name, f"sete_vsr.eval.metrics.{target}", label, MetricOptions, presets)


# Every metric by name; factories take ``options=MetricOptions(...)`` and the entry's presets.
METRICS = Registry(
    "metric",
    (
        _metric("psnr", "fullref:FullReference", "PSNR on RGB", which="psnr"),
        _metric("psnr_y", "fullref:FullReference", "PSNR on BT.601 Y", which="psnr", y_channel=True),
        _metric("ssim", "fullref:FullReference", "SSIM on RGB", which="ssim"),
        _metric("ssim_y", "fullref:FullReference", "SSIM on BT.601 Y", which="ssim", y_channel=True),
        _metric("lpips", "deep:LPIPS", "LPIPS v0.1 AlexNet"),
        _metric("dists", "deep:DISTSMetric", "DISTS"),
        _metric("niqe", "niqe:NIQE", "NIQE, BasicSR/MATLAB convention"),
        _metric("brisque", "brisque:BRISQUE", "BRISQUE, LIVE formulation"),
        _metric("musiq", "external:PyIQAMetric", "MUSIQ through pyiqa", which="musiq"),
        _metric("clipiqa", "external:PyIQAMetric", "CLIP-IQA through pyiqa", which="clipiqa"),
        _metric("dover", "dover:DOVERMetric", "DOVER fused overall score"),
        _metric("ewarp_dis", "temporal:WarpingError", "E_warp x1e-3, DIS flow", backend="dis"),
        _metric("ewarp_farneback", "temporal:WarpingError", "E_warp x1e-3, Farneback flow", backend="farneback"),
        _metric("ewarp_raft", "temporal:WarpingError", "E_warp x1e-3, RAFT flow", backend="raft"),
        _metric("ewarp_spynet", "temporal:WarpingError", "E_warp x1e-3, SPyNet flow", backend="spynet"),
        _metric("tof", "temporal:TemporalOF", "TecoGAN tOF (Farneback)"),
        _metric("tlp", "temporal:TemporalLPIPS", "TecoGAN tLP x100"),
    ),
)


# alias -> the metric name results are recorded under
METRIC_ALIASES: dict[str, str] = {"ewarp": "ewarp_dis"}


def available_metrics() -> list[str]:
    """Names accepted by :func:`build_metric` (aliases included)."""
    return [*METRICS.names(), *METRIC_ALIASES]


def canonical_metric_name(name: str) -> str:
    """The name a metric is recorded under: ``"ewarp"`` -> ``"ewarp_dis"``, others unchanged."""
    return METRIC_ALIASES.get(name, name)


def build_metric(name: str, device: str = "cpu", crop_border: int = 0, **arguments) -> Metric:
    """Build metric ``name`` on ``device``, cropping ``crop_border`` pixels where it crops (PSNR, SSIM, NIQE).

    ``arguments``: keyword arguments of the metric's own class (DOVER's ``seed``, ``repeats``, ``views``).

    Raises:
        SeteVSRError: unknown name.
        WeightsUnavailable: a file the metric needs is missing.
    """
    name = canonical_metric_name(name)
    if name not in METRICS:
        raise SeteVSRError(f"unknown metric {name!r}; available: {', '.join(available_metrics())}")
    return METRICS[name].build(MetricOptions(device=str(device), crop_border=int(crop_border)), **arguments)


__all__ = [
    "METRICS",
    "METRIC_ALIASES",
    "Metric",
    "MetricInfo",
    "MetricOptions",
    "WeightsUnavailable",
    "available_metrics",
    "build_metric",
    "canonical_metric_name",
]
