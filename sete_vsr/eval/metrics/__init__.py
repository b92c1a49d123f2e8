"""Metrics by name: full-reference, no-reference and temporal.

``build_metric(name, **options)`` returns a :class:`~.base.Metric` whose
``info`` declares direction, kind, scope, input convention and implementation.
Modules are imported only when their metric is asked for. A metric whose files
are missing raises :class:`~sete_vsr.eval.weights.WeightsUnavailable`; the
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
dover           ↑      DOVER fused overall score (network not bundled)
ewarp[_B]       ↓      E_warp x1e-3 on the output, flow backend B (dis default,
                       farneback, raft, spynet)
tof             ↓      TecoGAN tOF (Farneback)
tlp             ↓      TecoGAN tLP x100 (needs LPIPS weights)
==============  =====  ==================================================
"""

from __future__ import annotations

import importlib

from ...errors import SeteVSRError
from ..weights import WeightsUnavailable
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
    "dover": (".external:dover_unavailable", {}),
    "ewarp": (".temporal:WarpingError", {"backend": "dis"}),
    "ewarp_farneback": (".temporal:WarpingError", {"backend": "farneback"}),
    "ewarp_raft": (".temporal:WarpingError", {"backend": "raft"}),
    "ewarp_spynet": (".temporal:WarpingError", {"backend": "spynet"}),
    "tof": (".temporal:TemporalOF", {}),
    "tlp": (".temporal:TemporalLPIPS", {}),
}


def available_metrics() -> list[str]:
    """Names accepted by :func:`build_metric`."""
    return list(METRICS)


def build_metric(name: str, **options) -> Metric:
    """Build metric ``name``; ``options`` (``device``, ``crop_border``, ...) go to its factory.

    Raises:
        SeteVSRError: unknown name.
        WeightsUnavailable: a file the metric needs is missing.
    """
    if name not in METRICS:
        raise SeteVSRError(f"unknown metric {name!r}; available: {', '.join(METRICS)}")
    target, presets = METRICS[name]
    module_name, factory = target.split(":")
    module = importlib.import_module(module_name, __name__)
    return getattr(module, factory)(**{**presets, **options})


__all__ = ["METRICS", "Metric", "MetricInfo", "WeightsUnavailable", "available_metrics", "build_metric"]
