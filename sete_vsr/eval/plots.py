"""Plots of an evaluation (matplotlib, Agg backend, PNG).

* ``bars.png``: one panel per metric, one bar per method, value on each bar,
  direction arrow in the title;
* ``per_frame_<metric>.png``: one panel per clip, one curve per method over the
  frame index (pair metrics are plotted at the later frame of the pair);
* ``profile_<clip>.png``: temporal profiles as in SeTe-VSR's Fig. 5 — a fixed
  row of every frame stacked over time (time runs downwards), a central window
  of ``width`` columns, GT then each method side by side.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def plot_bars(results: dict, path: Path) -> Path:
    """Bar chart per metric of the per-dataset values."""
    plt = _pyplot()
    metrics = list(results["metrics"])
    methods = results["methods"]
    rows, cols = _grid(len(metrics))
    # long labels (basicvsr-vimeo-bi+seem-untrained, ...) are tilted, with room made for them below the bars
    longest = max(len(m) for m in methods)
    tilted = len(methods) > 3 or longest * len(methods) > 36
    height = 2.9 + (0.05 * longest if tilted else 0.0)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 0.4, height * rows), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, metric in zip(axes.flat, metrics):
        info = results["metrics"][metric]
        values = [results["summary"][metric].get(m) for m in methods]
        heights = [np.nan if v is None else v for v in values]
        bars = ax.bar(range(len(methods)), heights, color=[colors[i % 10] for i in range(len(methods))])
        for bar, v in zip(bars, values):
            if v is not None and np.isfinite(v):
                ax.annotate(f"{v:.4g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
        finite = [h for h in heights if np.isfinite(h)]
        if finite:
            lo, hi = min(finite + [0.0]), max(finite + [0.0])
            ax.set_ylim(lo - 0.05 * abs(lo), hi + 0.15 * (abs(hi - lo) or 1.0))
        ax.set_xticks(
            range(len(methods)), methods, fontsize=8,
            rotation=30 if tilted else 0, ha="right" if tilted else "center", rotation_mode="anchor",
        )  # fmt: skip
        ax.set_title(f"{info['label']} {'↑' if info['higher_is_better'] else '↓'}", fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    ds = results["dataset"]
    fig.suptitle(f"{ds['name']} ({ds['degradation'] or 'given LR'}), mean over clips", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_per_frame(results: dict, metric: str, path: Path) -> Path:
    """Per-frame curves of ``metric``, one panel per clip."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    info = results["metrics"][metric]
    clips = results["dataset"]["clips"]
    rows, cols = _grid(len(clips), 2)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.8 * rows), squeeze=False)
    for ax, clip in zip(axes.flat, clips):
        for method in results["methods"]:
            values = results["per_frame"][metric].get(method, {}).get(clip)
            if values:
                y = np.array([np.nan if v is None else v for v in values], dtype=float)
                ax.plot(np.arange(len(y)), y, marker="." if len(y) <= 50 else None, lw=1.2, label=method)
        ax.set_title(clip, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("frame", fontsize=8)
        ax.set_ylabel(info["label"], fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(clips):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=min(len(labels), 4))
    fig.suptitle(f"{info['label']} {'↑' if info['higher_is_better'] else '↓'} per frame", fontsize=11, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_profiles(results: dict, clip: str, path: Path, width: int = 256) -> Path:
    """Temporal profiles of ``clip``: GT (when present) and every method side by side."""
    plt = _pyplot()
    profiles = results["_profiles"][clip]
    names = [n for n in ["GT", *results["methods"]] if n in profiles]
    w = next(iter(profiles.values())).shape[1]
    x0 = max(0, (w - width) // 2)
    x1 = min(w, x0 + width)
    t = next(iter(profiles.values())).shape[0]
    height = float(np.clip(t / 24, 2.0, 6.0))
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), height + 0.7), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.imshow(profiles[name][:, x0:x1], aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([0, t - 1])
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("frame", fontsize=8)
    row = results["profile_row"]
    fig.suptitle(f"{clip}: row at {row:.0%} of the height, columns {x0}-{x1}, time downwards", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(results: dict, out: Path) -> list[Path]:
    """All plots into ``out`` (created); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if results["metrics"]:
        paths.append(plot_bars(results, out / "bars.png"))
    for metric, info in results["metrics"].items():
        if info["scope"] in ("frame", "pair"):
            paths.append(plot_per_frame(results, metric, out / f"per_frame_{metric}.png"))
    for clip in results["dataset"]["clips"]:
        if clip in results.get("_profiles", {}):
            paths.append(plot_profiles(results, clip, out / f"profile_{clip}.png"))
    return paths
