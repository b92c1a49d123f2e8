"""``sete-vsr eval``: evaluate methods on a benchmark dataset and write tables, CSV/JSON and plots.

Example::

    sete-vsr eval --methods bicubic --dataset vid4 --root ../shared/data/frames/vid4_GT \\
        --degradation BI --metrics psnr_y,ssim_y,niqe,brisque,ewarp,tof --out runs/vid4

Options of one method: ``--method-option basicvsr-vimeo-bi+adapt:iterations=50``; of every method that takes
them: ``--method-option checkpoint=PATH``.

One method several times, side by side (models of several stages, ablations), as named instances
``METHOD:INSTANCE``, each with its own options, output cache and column::

    sete-vsr eval --methods bicubic,sete-vsr:stage1,sete-vsr:stage2 --dataset vid4 --root ... --out runs/vid4 \
        --method-option sete-vsr:stage1:model=runs/stage1 --method-option sete-vsr:stage2:model=runs/stage2

A model never trained is labelled ``...-untrained`` (``sete-vsr:stage1-untrained``, ``sete-vsr-untrained``).

Multi-process: ``accelerate launch --multi_gpu --num_processes N -m sete_vsr eval ...``
splits the clips across processes, each on its own GPU; the main process writes
the reports. On CPUs, add ``--device cpu`` (``accelerate launch --cpu`` alone
starts a single process unless run under MPI).
"""

from __future__ import annotations

import argparse

DEFAULT_METRICS = {
    "vid4": "psnr_y,ssim_y,lpips,niqe,brisque,ewarp,tof,tlp",
    "udm10": "psnr_y,ssim_y,lpips,niqe,brisque,ewarp,tof,tlp",
    "reds4": "psnr,ssim,lpips,dists,brisque,clipiqa,dover,ewarp",
    "spmcs": "psnr,ssim,lpips,dists,brisque,clipiqa,dover,ewarp",
    "folder": "psnr,ssim,lpips,niqe,brisque,ewarp",
    "videolq": "brisque,niqe,musiq,clipiqa,dover,ewarp",
    "folder-lr": "brisque,niqe,musiq,clipiqa,dover,ewarp",
}


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", required=True,
                        help="comma-separated method names (see `sete-vsr methods`), each also as a named instance "
                        "METHOD:INSTANCE (e.g. sete-vsr:stage1) with its own options, cache and column")
    parser.add_argument("--dataset", required=True, help="vid4, reds4, spmcs, udm10, videolq, folder or folder-lr")
    parser.add_argument("--root", required=True, help="dataset folder (clip folders of frames, or videos for folder*)")
    parser.add_argument("--out", required=True, help="output folder for reports, plots and cached frames")
    parser.add_argument("--metrics", default=None, help="comma-separated metric names (default: the dataset's usual set)")
    parser.add_argument("--degradation", default=None, help="BI, BD or realbasicvsr (default: the dataset's)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of random degradations (default 0)")
    parser.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames of each clip")
    parser.add_argument("--clips", default=None, help="comma-separated subset of clips")
    parser.add_argument("--crop-border", type=int, default=0, help="border crop for PSNR/SSIM/NIQE (default 0)")
    parser.add_argument("--device", default="auto",
                        help="torch device for methods and deep metrics (default auto: each process's own device "
                        "under accelerate launch, else cuda when available, else cpu; a bare 'cuda' is the local "
                        "process's GPU)")
    parser.add_argument("--weights-dir", action="append", default=[], help="folder with metric weights (repeatable)")
    parser.add_argument("--method-option", action="append", default=[], metavar="[METHOD:]KEY=VALUE",
                        help="option of one method (METHOD:KEY=VALUE, e.g. basicvsr-vimeo-bi+adapt:iterations=50 or "
                        "sete-vsr:stage1:model=DIR) or of every method that takes it (KEY=VALUE, e.g. "
                        "checkpoint=PATH); repeatable")
    parser.add_argument("--lr-cache", default=None, help="where made LR frames are cached (default OUT/lr)")
    parser.add_argument("--profile-row", type=float, default=0.5, help="temporal-profile row as a fraction of height")
    parser.add_argument("--no-reuse", action="store_true", help="recompute method outputs and made LR frames even if cached")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _method_options(items: list[str], methods: list[str], device: str, progress: bool) -> tuple[dict, dict]:
    """``--method-option`` items -> (options for every method that takes them, ``{method: options}``), as text.

    The values are converted and checked once, by :func:`~sete_vsr.methods.resolve_method_options`.

    ``METHOD:KEY=VALUE`` is for ``METHOD`` only (it must be one of ``methods`` and take ``KEY``; an instance
    ``sete-vsr:stage1`` is scoped as ``sete-vsr:stage1:KEY=VALUE``); ``KEY=VALUE`` for every method that takes ``KEY``
    (at least one must). The item splits at its first ``=``, the part before it at its last ``:``, so values may
    hold ``:`` and ``=``.
    """
    from ..errors import SeteVSRError
    from ..methods import method_options

    common = {"device": device} if progress else {"device": device, "progress": False}
    scoped: dict[str, dict] = {}
    for item in items:
        head, sep, value = item.partition("=")
        scope, colon, key = head.rpartition(":")
        if not sep or not key or (colon and not scope):
            raise SeteVSRError(f"--method-option expects KEY=VALUE or METHOD:KEY=VALUE, got {item!r}")
        if not colon:
            if not any(key in method_options(m) for m in methods):
                raise SeteVSRError(
                    f"--method-option {item}: none of the methods ({', '.join(methods)}) takes {key!r}; "
                    f"see `sete-vsr methods`"
                )
            common[key] = value
        elif scope not in methods:
            raise SeteVSRError(f"--method-option {item}: {scope} is not one of --methods ({', '.join(methods)})")
        else:
            scoped.setdefault(scope, {})[key] = value
    return common, scoped


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import SeteVSRError
    from ..eval.benchmark_datasets import resolve_dataset
    from ..eval.metrics import available_metrics
    from ..eval.report import write_reports
    from ..eval.runner import EvalSettings, evaluate
    from ..weight_dirs import set_weight_dirs
    from ..methods import available_methods, is_method, resolve_method_options

    methods = _csv(args.methods)
    unknown = [m for m in methods if not is_method(m)]
    if unknown:
        raise SeteVSRError(f"unknown method(s) {', '.join(unknown)}; available: {', '.join(available_methods())}")
    dataset = resolve_dataset(
        args.dataset, args.root, args.degradation, args.seed, args.max_frames, _csv(args.clips) if args.clips else None
    )
    metrics = _csv(args.metrics or DEFAULT_METRICS[dataset.name])
    bad = [m for m in metrics if m not in available_metrics()]
    if bad:
        raise SeteVSRError(f"unknown metric(s) {', '.join(bad)}; available: {', '.join(available_metrics())}")
    if args.max_frames is not None and args.max_frames < 1:
        raise SeteVSRError("--max-frames must be at least 1")
    set_weight_dirs(args.weights_dir)
    out = Path(args.out)
    common, scoped = _method_options(args.method_option, methods, args.device, not args.no_progress)
    options = resolve_method_options(methods, common, scoped)
    settings = EvalSettings(
        out=out,
        device=args.device,
        crop_border=args.crop_border,
        reuse=not args.no_reuse,
        lr_cache=Path(args.lr_cache) if args.lr_cache else None,
        profile_row=args.profile_row,
        progress=not args.no_progress,
    )
    results = evaluate(dataset, options, metrics, settings)
    if results is None:  # not the main process
        return 0
    paths = write_reports(results, out)
    if not args.no_plots:
        from ..eval.plots import write_plots

        write_plots(results, out / "plots")
    print(paths["table"].read_text())
    for metric, reason in results["skipped"].items():
        print(f"{metric}: {reason}")
    print(f"results in {out}")
    return 0
