"""The evaluation runner: methods x clips x metrics, with cached outputs and an optional Accelerate split.

For every clip the GT and LR are loaded once (the LR made and cached by the
dataset); every method upscales the whole clip through the common
:class:`~sete_vsr.methods.VSRMethod` interface, its output is cached as PNG
under ``<out>/outputs/<dataset>-<lr tag>/<method>[@<options hash>]/<clip>/`` and
reused on the next run (unless ``reuse=False``); then every metric is computed
on the frames in memory. Metrics whose files are missing are recorded as skipped
and the run goes on.

Method options: ``method_options`` go to every method that takes them,
``options_by_method`` to one method each; an option a method does not take is a
:class:`~sete_vsr.errors.SeteVSRError` before anything runs. The options that
change the output (all but ``device`` and ``progress``) are hashed into the cache
folder's name and written beside the frames (``method.json``, with the method's
label); a folder whose ``method.json`` is missing or records other options is
recomputed, never reused. Both records are written once outputs exist: each
clip's frames are followed by ``<clip>.complete.json`` (frame count and measured
seconds per frame, and the digest of the LR frames they were made from), and
only a clip with that record, for this run's LR frames, is reused: an
interrupted run leaves nothing that looks complete, outputs of a changed
degradation or LR source are made again, and a fully cached rerun still reports
the time each method took.

Tables, CSVs and plots name each method by its label, the built method's ``name`` (``basicvsr-vimeo-bi+seem-untrained`` for
``basicvsr-vimeo-bi+seem`` without weights; ``sete-vsr:stage1`` or
``sete-vsr:stage1-untrained`` for the instance ``sete-vsr:stage1``, see
:func:`~sete_vsr.methods.load_method`), or the given key for methods built in
code. Each instance of a method has its own options, cache folder and column.

With several processes (``accelerate launch --multi_gpu --num_processes N``, or
``torchrun``/``mpirun``), clips are split across processes with
``PartialState.split_between_processes`` and the records are gathered on the
main process, which alone returns results (and so alone writes the reports).
Each process runs on its own device: Accelerate's ``PartialState().device``
when no device is pinned (``device=None`` or ``"auto"``), the local process's
GPU for a bare ``"cuda"``; a device with an index (``"cuda:1"``) or ``"cpu"`` is
used as given (``"cpu"`` makes it a multi-CPU run over gloo). Which clips each
process ran, and on which device, is written into the results (``processes``).
A plain ``python``/``sete-vsr`` run needs no Accelerate configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SeteVSRError
from ..options import default_device, has_accelerator
from ..data.degradations import frames_digest
from .benchmark_datasets import EvalDataset, cached_frames, load_pair, write_frames
from .metrics import Metric, WeightsUnavailable, build_metric, canonical_metric_name


@dataclass
class EvalSettings:
    """Options of one evaluation run.

    Attributes:
        out: output folder (reports, plots, cached outputs and LR).
        device: torch device for methods and deep metrics; ``None`` or ``"auto"``: the process's
            own device (see the module docstring; in a single process, ``"cuda"`` when available,
            else ``"cpu"``).
        crop_border: border crop for PSNR/SSIM/NIQE.
        reuse: reuse cached method outputs and made LR frames (``False``: make both again).
        method_options: keyword options passed to every method factory that takes them (``device``...).
        options_by_method: ``{method name: {option: value}}``, options for that method only, over
            ``method_options``.
        lr_cache: where made LR frames are cached (default ``<out>/lr``).
        profile_row: row of the temporal profile, as a fraction of the height.
        progress: show tqdm progress bars.
    """

    out: Path
    device: str | None = "cpu"
    crop_border: int = 0
    reuse: bool = True
    method_options: dict = field(default_factory=dict)
    options_by_method: dict = field(default_factory=dict)
    lr_cache: Path | None = None
    profile_row: float = 0.5
    progress: bool = True


def build_metrics(
    names: list[str], dataset: EvalDataset, settings: EvalSettings, device: str | None = None
) -> tuple[dict[str, Metric], dict[str, str]]:
    """Metrics that can run, and ``name -> "skipped: why"`` for the others.

    Both are keyed by the recorded name (:func:`~sete_vsr.eval.metrics.canonical_metric_name`:
    ``ewarp`` is recorded as ``ewarp_dis``); a metric asked for twice runs once.
    ``device``: the resolved device (default: ``settings.device`` resolved in this process).
    """
    device = device or resolve_device(settings.device, None)
    metrics, skipped = {}, {}
    for name in dict.fromkeys(canonical_metric_name(n) for n in names):
        try:
            metric = build_metric(name, device=device, crop_border=settings.crop_border)
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


# what torchrun/accelerate (WORLD_SIZE) and the MPI launchers set for the number of processes
_WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _world_size() -> int:
    for variable in _WORLD_SIZE_VARIABLES:
        if os.environ.get(variable):
            return int(os.environ[variable])
    return 1


def process_state(device: str | None):
    """Accelerate's ``PartialState`` when launched as several processes, else None.

    The state is a CPU one (gloo) when Accelerate was told so (``ACCELERATE_USE_CPU``),
    when ``device`` is ``"cpu"``, or when the machine has no accelerator.
    """
    world = _world_size()
    if world <= 1:
        return None
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    on_cpu = str(device).split(":")[0] == "cpu"
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or on_cpu or not has_accelerator())
    if state.num_processes != world:
        raise SeteVSRError(
            f"launched as {world} processes but Accelerate set up {state.num_processes} "
            f"({state.distributed_type}); launch with `accelerate launch --multi_gpu --num_processes {world}` "
            "(add --device cpu to split clips over CPU processes)"
        )
    return state


def resolve_device(device: str | None, state=None) -> str:
    """The torch device this process uses for ``device`` (see the module docstring)."""
    if device in (None, "auto"):
        if state is not None:
            return str(state.device)
        return default_device()
    if device == "cuda" and state is not None:
        return str(state.device) if state.device.type == "cuda" else f"cuda:{state.local_process_index}"
    return str(device)


def _on_device(options, requested: str | None, device: str):
    """``options`` with this process's ``device``, unless they pin another one than ``requested``."""
    from ..methods import with_runtime

    if getattr(options, "device", device) in (None, "auto", requested):
        return with_runtime(options, device=device)
    return options


def _split_clips(clips: list, state) -> list:
    """This process's contiguous share of ``clips`` (all of them when ``state`` is None)."""
    if state is None:
        return list(clips)
    with state.split_between_processes(list(clips)) as part:
        return list(part)


def _lr_tag(dataset: EvalDataset) -> str:
    tag = dataset.degradation or "givenLR"
    return f"{dataset.name}-{tag}" + (f"-f{dataset.max_frames}" if dataset.max_frames else "")


class _Methods:
    """Methods built on first use (a method whose outputs are all cached is never loaded).

    ``methods`` maps each name to a :class:`~sete_vsr.methods.VSRMethod` built in code, to its parsed options
    (:func:`~sete_vsr.methods.resolve_method_options`), or to anything else for a method loaded by name with the
    options of ``settings`` (parsed and checked here, before anything runs).
    """

    def __init__(self, methods: dict, settings: EvalSettings, device: str):
        from ..methods import VSRMethod, resolve_method_options

        in_code = [name for name, given in methods.items() if isinstance(given, VSRMethod)]
        scoped = dict(settings.options_by_method)
        for name in in_code:
            if scoped.pop(name, None):
                raise SeteVSRError(f"{name} is built in code: options apply to methods loaded by name only")
        by_name = [n for n, given in methods.items() if n not in in_code and not dataclasses.is_dataclass(given)]
        parsed = resolve_method_options(by_name, settings.method_options, scoped)
        self._given, self._built, self.options = methods, {}, {}
        for name, given in methods.items():
            options = parsed.get(name, given if dataclasses.is_dataclass(given) else None)
            self.options[name] = options if options is None else _on_device(options, settings.device, device)

    def get(self, name: str):
        from ..methods import build_method

        if name not in self._built:
            given = self._given[name]
            self._built[name] = given if self.options[name] is None else build_method(name, self.options[name])
        return self._built[name]

    def output_options(self, name: str) -> dict:
        """The options of ``name`` that change its output, as JSON-ready strings, sorted."""
        from ..methods import output_options

        return {} if self.options[name] is None else output_options(self.options[name])

    def cache_folder(self, name: str) -> str:
        """``name``, or ``name@<hash>`` when it has output options (so other options never share a cache)."""
        options = self.output_options(name)
        if not options:
            return name
        return f"{name}@{hashlib.sha256(json.dumps(options).encode()).hexdigest()[:8]}"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, record: dict) -> None:
    """Write ``record`` to ``path`` atomically (other processes may read or write it too)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, path)


def _clip_record_path(method_folder: Path, clip: str) -> Path:
    """Where a clip's completion record goes: ``<method folder>/<clip>.complete.json``."""
    return method_folder / f"{clip}.complete.json"


def _unique_label(label: str, name: str, labels: dict) -> str:
    """``label``, or ``"label [name]"`` when another method already has it (two methods, one column each)."""
    taken = {v for k, v in labels.items() if k != name}
    return label if label not in taken else f"{label} [{name}]"


def evaluate(
    dataset: EvalDataset,
    methods: list[str] | dict,
    metric_names: list[str],
    settings: EvalSettings,
) -> dict | None:
    """Run the evaluation; returns the results dict on the main process (None on the others).

    Args:
        methods: method names (their options from ``settings``), or ``{name: given}`` where ``given`` is a
            :class:`~sete_vsr.methods.VSRMethod` built in code or the method's parsed options
            (:func:`sete_vsr.methods.resolve_method_options`, as ``sete-vsr eval`` gives them).
        metric_names: names for :func:`sete_vsr.eval.metrics.build_metric`.
    """
    from tqdm.auto import tqdm

    method_map = {m: m for m in methods} if isinstance(methods, list) else dict(methods)
    if not method_map:
        raise SeteVSRError("no methods to evaluate")
    out = Path(settings.out)
    lr_cache = Path(settings.lr_cache) if settings.lr_cache else out / "lr"
    state = process_state(settings.device)
    device = resolve_device(settings.device, state)
    metrics, skipped = build_metrics(metric_names, dataset, settings, device)
    clips = _split_clips(dataset.clips, state)
    loader = _Methods(method_map, settings, device)

    # labels: the name in tables, CSVs and plots (the built method's name, or the one its cache records)
    records, profiles, timings, labels = [], {}, {m: [] for m in method_map}, {}
    # one bar per method over this process's clips, the clip and stage as postfix (main process only)
    show = settings.progress and (state is None or state.is_local_main_process)
    share = f", process 0 of {state.num_processes}" if state is not None else ""
    bars = {
        name: tqdm(total=len(clips), desc=f"{dataset.name} | {name}{share}", unit="clip", disable=not show)
        for name in method_map
    }
    for clip in clips:
        for bar in bars.values():
            bar.set_postfix_str(f"{clip.name}: loading")
        gt, lr = load_pair(dataset, clip, lr_cache, reuse=settings.reuse)
        lr_digest = frames_digest(lr)
        row = int(settings.profile_row * (len(gt[0]) if gt is not None else 4 * len(lr[0])))
        profiles[clip.name] = {"GT": gt[:, row].copy()} if gt is not None else {}
        for name in method_map:
            bar = bars[name]
            method_folder = out / "outputs" / _lr_tag(dataset) / loader.cache_folder(name)
            folder = method_folder / clip.name
            record = _read_json(method_folder / "method.json")
            done = _read_json(_clip_record_path(method_folder, clip.name))
            usable = settings.reuse and record is not None and record.get("options") == loader.output_options(name)
            usable = usable and done is not None and done.get("frames") == len(lr) and done.get("lr") == lr_digest
            sr = cached_frames(folder, len(lr)) if usable else None
            if sr is None:
                bar.set_postfix_str(f"{clip.name}: upscaling {len(lr)} frames")
                method = loader.get(name)
                if name not in labels:
                    given = method_map[name]
                    labels[name] = _unique_label(name if given is method else method.name, name, labels)
                start = time.perf_counter()
                sr = method(lr)
                seconds = (time.perf_counter() - start) / len(lr)
                # the frames first, then the records that make them reusable
                write_frames(folder, sr)
                record = {"method": name, "label": labels[name], "options": loader.output_options(name)}
                _write_json(method_folder / "method.json", record)
                complete = {"frames": len(lr), "lr": lr_digest, "seconds_per_frame": seconds}
                _write_json(_clip_record_path(method_folder, clip.name), complete)
            else:
                seconds = done.get("seconds_per_frame")
                if name not in labels:
                    labels[name] = _unique_label(record.get("label", name), name, labels)
            if seconds is not None:
                timings[name].append(seconds)
            label = labels[name]
            if gt is not None and sr.shape != gt.shape:
                raise SeteVSRError(f"{label} output {sr.shape} does not match GT {gt.shape} on {clip.name}")
            profiles[clip.name][label] = sr[:, row].copy()
            for metric_name, metric in metrics.items():
                bar.set_postfix_str(f"{clip.name}: {metric_name}")
                value = metric.compute(sr, gt)
                records.append(
                    {"clip": clip.name, "method": label, "metric": metric_name, "values": np.atleast_1d(value).tolist()}
                )
            bar.set_postfix_str(clip.name, refresh=False)
            bar.update(1)
    for bar in bars.values():
        bar.close()
    index = state.process_index if state is not None else 0
    processes = [{"process": index, "device": device, "clips": [c.name for c in clips]}]

    if state is not None:
        from accelerate.utils import gather_object

        records = gather_object(records)
        profiles = {k: v for part in gather_object([profiles]) for k, v in part.items()}
        timings = {m: sum((t[m] for t in gather_object([timings])), []) for m in method_map}
        labels = {k: v for part in gather_object([labels]) for k, v in part.items()}
        processes = gather_object(processes)
        if not state.is_main_process:
            return None
    labelled = [labels.get(m, m) for m in method_map]
    results = assemble(
        dataset, labelled, metrics, skipped, records, profiles,
        {labels.get(m, m): t for m, t in timings.items()}, settings,
    )  # fmt: skip
    results["method_options"] = {
        labels.get(m, m): {"method": m, "options": loader.output_options(m)} for m in method_map
    }
    results["processes"] = processes
    return results


def _nanmean(values) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None


def assemble(dataset, methods, metrics, skipped, records, profiles, timings, settings) -> dict:
    """The results dict: per-frame, per-clip (mean over frames) and per-dataset (mean over clips) values."""
    per_frame: dict = {}
    per_clip: dict = {}
    seen = set()
    for rec in records:
        key = (rec["clip"], rec["method"], rec["metric"])
        if key in seen:  # e.g. a clip evaluated by two processes
            raise SeteVSRError(f"{rec['metric']} of {rec['method']} on {rec['clip']} was computed twice")
        seen.add(key)
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
