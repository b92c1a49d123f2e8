"""``sete-vsr adapt``: self-supervised test-time adaptation (paper 004) of a CNN baseline on one video.

Examples::

    sete-vsr adapt in.mp4 --method basicvsr-vimeo-bi --iterations 300 -o out.mp4 --save-weights in.safetensors
    sete-vsr adapt lr_frames/ --weights in.safetensors --iterations 0 -o out_frames/   # reuse adapted weights
    sete-vsr adapt in.mp4 --method basicvsr-vimeo-bi --teacher basicvsrpp-reds4 -o out.mp4   # Algorithm 2

The network restores the clip, adapts to pseudo pairs cut from that restoration (Algorithm 1;
with ``--teacher``, from the teacher's restoration: Algorithm 2), then restores the clip again
into OUTPUT (a video file, or a folder of PNG frames when the path has no extension). The pseudo
inputs are made with the degradation the network was trained for (BI or BD; ``--kernel`` names
another, and is required for the real-world RealBasicVSR).
"""

from __future__ import annotations

import argparse

# AdaptationConfig's defaults (kept here so that building the parser does not import torch; a test checks them);
# iterations and batch_size None: by network kind (KIND_DEFAULTS), named in the help
_DEFAULTS = {"iterations": None, "learning_rate": 1e-5, "batch_size": None, "patch_size": 256, "num_frames": 0,
             "freeze": ("spynet",)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="low-resolution video file or folder of frames")
    parser.add_argument("-o", "--output", required=True, help="output video (.mp4, .mkv, ...) or frame folder")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--method", default="basicvsr-vimeo-bi",
                        help="CNN baseline to adapt (default basicvsr-vimeo-bi; see `sete-vsr methods`)")
    source.add_argument("--weights", default=None, help="start from adapted weights saved by --save-weights")
    parser.add_argument("--checkpoint", default=None,
                        help="local checkpoint of --method (default: found or downloaded)")
    parser.add_argument("--teacher", default=None,
                        help="method whose restoration gives the pseudo pairs (Algorithm 2; default: the network)")
    parser.add_argument("--iterations", type=int, default=_DEFAULTS["iterations"],
                        help="adaptation steps (default: 10 for recurrent networks, the best of "
                        "benchmarks/adaptation_sweep.py; 1000 for EDVR, the paper's Vid4 setting; 0 only restores)")
    parser.add_argument("--lr", type=float, default=_DEFAULTS["learning_rate"],
                        help=f"Adam learning rate (default {_DEFAULTS['learning_rate']:g})")
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS["batch_size"],
                        help="pseudo samples per step (default: 1 for recurrent networks, 4 for EDVR)")
    parser.add_argument("--patch-size", type=int, default=_DEFAULTS["patch_size"],
                        help=f"pseudo-target side in HR pixels, multiple of 4 (default {_DEFAULTS['patch_size']})")
    parser.add_argument("--frames-per-sample", type=int, default=_DEFAULTS["num_frames"],
                        help="frames per pseudo sample for recurrent networks, 0 for the whole clip "
                        f"(default {_DEFAULTS['num_frames']})")
    parser.add_argument("--freeze", action="append", default=None, metavar="PREFIX",
                        help="keep parameters whose name starts with PREFIX fixed (repeatable; default "
                        f"{','.join(_DEFAULTS['freeze'])}, a recurrent network's flow estimator; none: all adapt)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pseudo-pair sampling (default 0)")
    parser.add_argument("--kernel", default=None,
                        help="downscaling that makes the pseudo inputs: bicubic (BI), gaussian (BD, sigma 1.6) or "
                        "gaussian:SIGMA (default: the degradation the network was trained for; BI outside the "
                        "registry; required for realbasicvsr*)")
    parser.add_argument("--save-weights", default=None, metavar="PATH", help="save the adapted network (.safetensors)")
    parser.add_argument("--max-frames", type=int, default=None, help="read only the first N frames")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when available, else CPU)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..adaptation.self_supervised import AdaptationConfig, line5_downscaling
    from ..adaptation.saved_weights import load_adapted_method, read_adapted_weights, save_adapted_weights
    from ..baselines.registry import BASELINES
    from ..data.video_io import open_writer, read_video
    from ..errors import SeteVSRError
    from ..methods import build_method, load_method, parse_method_options

    if args.weights and args.checkpoint:
        raise SeteVSRError("--checkpoint goes with --method; --weights files are complete")
    if args.save_weights and Path(args.save_weights).suffix != ".safetensors":
        raise SeteVSRError(f"--save-weights must end in .safetensors, got {args.save_weights}")
    if args.weights:
        metadata = read_adapted_weights(args.weights)[1]
        origin = {"base": metadata["base"] or None, "arch": metadata["arch"],
                  "arch_kwargs": metadata["arch_kwargs"]}
    elif args.method in BASELINES:
        origin = {"base": args.method}
    else:
        raise SeteVSRError(f"--method must be a CNN baseline with a trainable network ({', '.join(BASELINES)})")
    config = AdaptationConfig(
        iterations=args.iterations,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        num_frames=args.frames_per_sample,
        freeze=_DEFAULTS["freeze"] if args.freeze is None else tuple(p for p in args.freeze if p != "none"),
        seed=args.seed,
        degradation=line5_downscaling(origin["base"], args.kernel),
    )
    frames, info = read_video(args.input, max_frames=args.max_frames)
    progress = not args.no_progress
    if args.weights:
        method = load_adapted_method(args.weights, device=args.device, progress=progress)
    else:
        method = load_method(args.method, checkpoint=args.checkpoint, device=args.device, progress=progress)
    teacher = None
    if args.teacher:  # any method; bicubic, say, takes no device
        runtime = {"device": args.device, "progress": progress}
        teacher = build_method(args.teacher, parse_method_options(args.teacher, {}, runtime))

    with open_writer(args.output, fps=info.fps, audio_from=args.input if info.has_audio else None) as writer:
        if config.iterations == 0:
            output = method(frames)
        elif teacher is not None:
            from ..adaptation.distillation import distill

            output = distill(teacher, method, frames, config, progress).frames
        else:
            from ..adaptation.self_supervised import adapt

            output = adapt(method, frames, config, progress).frames
        writer.write_frames(output)
    if args.save_weights:
        save_adapted_weights(method.model, args.save_weights, config=config, **origin)
    print(f"wrote {writer.path}" + (f" and {args.save_weights}" if args.save_weights else ""))
    return 0
