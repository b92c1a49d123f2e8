"""Result files: JSON, CSV (per frame, per clip, per dataset) and a Markdown table in the paper's layout.

The table follows SeTe-VSR's Table I: one row per (dataset, metric) with an
arrow for the direction, one column per method, the best value in bold and the
second best underlined (with three methods or more), and a caption that states
every convention (degradation, LR origin, channels, crop, implementation, flow
backend, averaging) plus the metrics that were skipped and why.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

DECIMALS = {"psnr": 2, "psnr_y": 2, "niqe": 3, "brisque": 2, "musiq": 2, "tof": 3, "tlp": 3}
DEFAULT_DECIMALS = 4


def _fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf"
    decimals = DECIMALS.get(metric, 3 if metric.startswith("ewarp") else DEFAULT_DECIMALS)
    return f"{value:.{decimals}f}"


def ranks(values: dict[str, float | None], higher_is_better: bool) -> dict[str, int]:
    """Method -> rank (0 = best) among methods with a value; ties share the better rank."""
    valid = {m: v for m, v in values.items() if v is not None and not math.isnan(v)}
    ordered = sorted(set(valid.values()), reverse=higher_is_better)
    return {m: ordered.index(v) for m, v in valid.items()}


def markdown_table(results: dict) -> str:
    """The paper-layout Markdown table with its conventions caption."""
    methods = results["methods"]
    dataset = results["dataset"]
    lines = [
        f"**Table: {dataset['name']}** ({len(dataset['clips'])} clips"
        + (f", first {dataset['max_frames']} frames each" if dataset["max_frames"] else "")
        + ")."
        + (" Best in **bold**" if len(methods) >= 2 else "")
        + (", second best <u>underlined</u>" if len(methods) >= 3 else "")
        + ("." if len(methods) >= 2 else ""),
        "",
        "| Dataset | Metric | " + " | ".join(methods) + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    first = True
    for metric, info in results["metrics"].items():
        values = results["summary"][metric]
        rank = ranks(values, info["higher_is_better"]) if len(methods) >= 2 else {}
        cells = []
        for method in methods:
            text = _fmt(metric, values.get(method))
            if rank.get(method) == 0:
                text = f"**{text}**"
            elif rank.get(method) == 1 and len(methods) >= 3:
                text = f"<u>{text}</u>"
            cells.append(text)
        label = f"{info['label']} {'↑' if info['higher_is_better'] else '↓'}"
        lines.append(f"| {dataset['name'] if first else ''} | {label} | " + " | ".join(cells) + " |")
        first = False
    lines += ["", "Conventions:", ""]
    degradation = dataset["degradation"] or "none (given LR)"
    lines.append(f"- LR: {dataset['lr_origin']}; degradation: {degradation}.")
    if dataset.get("degradation_description"):
        lines.append(f"- Degradation: {dataset['degradation_description']}.")
    lines.append(f"- Averaging: {results['averaging']}.")
    for label, spec in results.get("method_options", {}).items():
        if spec["method"] != label or spec["options"]:
            options = ", ".join(f"{key}={value}" for key, value in spec["options"].items())
            lines.append(f"- `{label}`: method `{spec['method']}`" + (f" with {options}" if options else "") + ".")
    for metric, info in results["metrics"].items():
        lines.append(f"- {info['label']} ({info['direction']}): {info['convention']}; {info['implementation']}.")
    for metric, reason in results["skipped"].items():
        lines.append(f"- `{metric}`: {reason}")
    return "\n".join(lines) + "\n"


def write_reports(results: dict, out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``per_frame.csv``, ``per_clip.csv``, ``summary.csv`` and ``table.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "per_frame": out / "per_frame.csv",
        "per_clip": out / "per_clip.csv",
        "summary": out / "summary.csv",
        "table": out / "table.md",
    }
    public = {k: v for k, v in results.items() if not k.startswith("_")}
    paths["json"].write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n")
    name = results["dataset"]["name"]
    with open(paths["per_frame"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "clip", "method", "metric", "frame", "value"])
        for metric, by_method in results["per_frame"].items():
            for method, by_clip in by_method.items():
                for clip, values in by_clip.items():
                    for t, v in enumerate(values):
                        writer.writerow([name, clip, method, metric, t, "" if v is None else v])
    with open(paths["per_clip"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "clip", "method", "metric", "value"])
        for metric, by_method in results["per_clip"].items():
            for method, by_clip in by_method.items():
                for clip, v in by_clip.items():
                    writer.writerow([name, clip, method, metric, "" if v is None else v])
    with open(paths["summary"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "metric", "direction", *results["methods"]])
        for metric, values in results["summary"].items():
            direction = results["metrics"][metric]["direction"]
            writer.writerow(
                [name, metric, direction, *("" if values.get(m) is None else values[m] for m in results["methods"])]
            )
    paths["table"].write_text(markdown_table(results))
    return paths
