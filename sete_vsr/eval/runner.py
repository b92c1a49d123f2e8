"""The evaluation runner: methods x clips x metrics, with cached outputs and an optional Accelerate split.

For every clip the GT and LR are loaded once (the LR made and cached by the
dataset); every method upscales the whole clip through the common
:class:`~sete_vsr.methods.VSRMethod` interface, its output is cached as PNG
under ``<out>/outputs/<dataset>-<lr tag>/<method>/<clip>/`` and reused on the
next run (unless ``reuse=False``); then every metric is computed on the frames
in memory. Metrics whose files are missing are recorded as skipped and the run
goes on.

With several processes (``accelerate launch``), clips are split across
processes with ``PartialState.split_between_processes`` and the records are
gathered on the main process, which alone writes the reports. A plain
``python``/``sete-vsr`` run needs no Accelerate configuration.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SeteVSRError
from .datasets import EvalDataset, cached_frames, load_pair, write_frames
from .metrics import Metric, WeightsUnavailable, build_metric


@dataclass
class EvalSettings:
    """Options of one evaluation run.

    Attributes:
        out: output folder (reports, plots, cached outputs and LR).
        device: torch device for methods and deep metrics.
        crop_border: border crop for PSNR/SSIM/NIQE.
        reuse: reuse cached method outputs.
        method_options: keyword options passed to every method factory (``device``...).
        lr_cache: where made LR frames are cached (default ``<out>/lr``).
        profile_row: row of the temporal profile, as a fraction of the height.
        progress: show tqdm progress bars.
    """

    out: Path
    device: str = "cpu"
    crop_border: int = 0
    reuse: bool = True
    method_options: dict = field(default_factory=dict)
    lr_cache: Path | None = None
    profile_row: float = 0.5
    progress: bool = True


def build_metrics(names: list[str], dataset: EvalDataset, settings: EvalSettings) -> tuple[dict[str, Metric], dict[str, str]]:
    """Metrics that can run, and ``name -> "skipped: why"`` for the others."""
    metrics, skipped = {}, {}
    for name in names:
        try:
            metric = build_metric(name, device=settings.device, crop_border=settings.crop_border)
        except WeightsUnavailable as err:
            skipped[name] = f"skipped: {err}"
            continue
        except ImportError as err:
            skipped[name] = f"skipped: backend unavailable ({err})"
            continue
        if metric.info.needs_gt and not dataset.has_gt:
            skipped[name] = f"skipped: needs ground truth, and {dataset.name} has none"
            continue
        metrics[name] = metric
    return metrics, skipped


def _split_clips(clips: list) -> tuple[list, object | None]:
    """This process's share of ``clips`` and the Accelerate state (None when single-process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return clips, None
    from accelerate import PartialState

    state = PartialState()
    with state.split_between_processes(clips) as part:
        return list(part), state


def _lr_tag(dataset: EvalDataset) -> str:
    tag = dataset.degradation or "givenLR"
    return f"{dataset.name}-{tag}" + (f"-f{dataset.max_frames}" if dataset.max_frames else "")


class _Methods:
    """Methods built on first use (a method whose outputs are all cached is never loaded)."""

    def __init__(self, methods: dict, options: dict):
        self._given, self._options, self._built = methods, options, {}

    def get(self, name: str):
        from ..methods import VSRMethod, load_method

        if name not in self._built:
            given = self._given[name]
            self._built[name] = given if isinstance(given, VSRMethod) else load_method(name, **self._options)
        return self._built[name]


def evaluate(
    dataset: EvalDataset,
    methods: list[str] | dict,
    metric_names: list[str],
    settings: EvalSettings,
) -> dict | None:
    """Run the evaluation; returns the results dict on the main process (None on the others).

    Args:
        methods: method names for :func:`sete_vsr.methods.load_method`, or
            ``{name: VSRMethod}`` for methods built in code.
        metric_names: names for :func:`sete_vsr.eval.metrics.build_metric`.
    """
    from tqdm.auto import tqdm

    method_map = {m: m for m in methods} if isinstance(methods, list) else dict(methods)
    if not method_map:
        raise SeteVSRError("no methods to evaluate")
    out = Path(settings.out)
    lr_cache = Path(settings.lr_cache) if settings.lr_cache else out / "lr"
    metrics, skipped = build_metrics(metric_names, dataset, settings)
    clips, state = _split_clips(dataset.clips)
    loader = _Methods(method_map, settings.method_options)

    records, profiles, timings = [], {}, {m: [] for m in method_map}
    bar = tqdm(total=len(clips) * len(method_map), desc=f"eval {dataset.name}", unit="run", disable=not settings.progress)
    for clip in clips:
        bar.set_postfix_str(f"{clip.name}: loading")
        gt, lr = load_pair(dataset, clip, lr_cache)
        row = int(settings.profile_row * (len(gt[0]) if gt is not None else 4 * len(lr[0])))
        profiles[clip.name] = {"GT": gt[:, row].copy()} if gt is not None else {}
        for name in method_map:
            folder = out / "outputs" / _lr_tag(dataset) / name / clip.name
            sr = cached_frames(folder, len(lr)) if settings.reuse else None
            if sr is None:
                bar.set_postfix_str(f"{name} on {clip.name}: upscaling {len(lr)} frames")
                start = time.perf_counter()
                sr = loader.get(name)(lr)
                timings[name].append((time.perf_counter() - start) / len(lr))
                write_frames(folder, sr)
            if gt is not None and sr.shape != gt.shape:
                raise SeteVSRError(f"{name} output {sr.shape} does not match GT {gt.shape} on {clip.name}")
            profiles[clip.name][name] = sr[:, row].copy()
            for metric_name, metric in metrics.items():
                bar.set_postfix_str(f"{name} on {clip.name}: {metric_name}")
                value = metric.compute(sr, gt)
                records.append(
                    {"clip": clip.name, "method": name, "metric": metric_name, "values": np.atleast_1d(value).tolist()}
                )
            bar.update(1)
    bar.close()

    if state is not None:
        from accelerate.utils import gather_object

        records = gather_object(records)
        profiles = {k: v for part in gather_object([profiles]) for k, v in part.items()}
        timings = {m: sum((t[m] for t in gather_object([timings])), []) for m in method_map}
        if not state.is_main_process:
            return None
    return assemble(dataset, list(method_map), metrics, skipped, records, profiles, timings, settings)


def _nanmean(values) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None


def assemble(dataset, methods, metrics, skipped, records, profiles, timings, settings) -> dict:
    """The results dict: per-frame, per-clip (mean over frames) and per-dataset (mean over clips) values."""
    per_frame: dict = {}
    per_clip: dict = {}
    for rec in records:
        values = [None if (v is None or np.isnan(v)) else float(v) for v in rec["values"]]
        per_frame.setdefault(rec["metric"], {}).setdefault(rec["method"], {})[rec["clip"]] = values
        clip_value = _nanmean([np.nan if v is None else v for v in values])
        per_clip.setdefault(rec["metric"], {}).setdefault(rec["method"], {})[rec["clip"]] = clip_value
    summary = {
        metric: {
            method: _nanmean([np.nan if v is None else v for v in per_clip.get(metric, {}).get(method, {}).values()])
            for method in methods
        }
        for metric in metrics
    }
    clip_names = [c.name for c in dataset.clips]
    return {
        "dataset": {
            "name": dataset.name,
            "root": str(dataset.root),
            "clips": clip_names,
            "has_gt": dataset.has_gt,
            "degradation": dataset.degradation,
            "lr_origin": dataset.lr_origin,
            "seeds": {c.name: c.seed for c in dataset.clips},
            "max_frames": dataset.max_frames,
            **dataset.info,
        },
        "methods": methods,
        "metrics": {name: m.info.to_dict() for name, m in metrics.items()},
        "skipped": skipped,
        "averaging": "per frame (or frame pair), mean per clip ignoring NaN, then mean over clips",
        "summary": summary,
        "per_clip": per_clip,
        "per_frame": per_frame,
        "seconds_per_frame": {m: _nanmean(t) for m, t in timings.items()},
        "profile_row": settings.profile_row,
        "_profiles": profiles,
    }
