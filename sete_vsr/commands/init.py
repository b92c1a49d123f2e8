"""``sete-vsr init``: assemble a SeTe-VSR pipeline folder.

Examples::

    # Untrained pipeline for stage-1 training: SD 2.1 U-Net and VAE converted, SAM2 image encoder, empty-prompt
    # embedding stored in the U-Net.
    sete-vsr init runs/sete-untrained --base stabilityai/stable-diffusion-2-1-base --semantic facebook/sam2.1-hiera-tiny

    # Tiny pipeline with random weights, to check a setup or run smoke tests: it produces noise, not super-resolution.
    sete-vsr init runs/tiny --preset tiny --random-weights

    # An ablation of the paper's Table II: no SeAM (nor semantic tokenizer); stage 2 will add the temporal transformer
    # only (or say so in the stage-2 config: temporal_transformer, tsam).
    sete-vsr init runs/sete-noseam-notsam --no-seam --no-tsam

The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse

from ..models.presets import SAM2_TINY, SD21_BASE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="folder to write the pipeline to")
    parser.add_argument("--base", default=SD21_BASE, help=f"Stable Diffusion 2.1 Hub id or folder ({SD21_BASE})")
    parser.add_argument("--semantic", default=SAM2_TINY, help=f"transformers SAM2 Hub id or folder ({SAM2_TINY})")
    parser.add_argument("--temporal", action="store_true", help="also create the stage-2 temporal modules (at zero)")
    parser.add_argument("--no-seam", action="store_true",
                        help="ablation: no semantic cross-attention (SeAM) and no semantic tokenizer in the U-Net")
    parser.add_argument("--no-temporal-transformer", action="store_true",
                        help="ablation: stage 2 (or --temporal) adds TSAM without the temporal transformer")
    parser.add_argument("--no-tsam", action="store_true",
                        help="ablation: stage 2 (or --temporal) adds the temporal transformer without TSAM")
    parser.add_argument("--window-length", type=int, default=8, help="default temporal window of the model (default 8)")
    parser.add_argument("--keep-text-encoder", action="store_true", help="keep the text encoder for optional prompts")
    parser.add_argument("--preset", choices=("tiny",), help="build a preset instead of loading pretrained models")
    parser.add_argument("--random-weights", action="store_true",
                        help="with --preset: random weights (required: the model produces noise, not super-resolution)")
    parser.add_argument("--seed", type=int, default=0, help="with --preset: seed of the random weights (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")


def run(args: argparse.Namespace) -> int:
    import os
    import shutil
    from pathlib import Path

    from ..errors import SeteVSRError

    target = Path(args.dir)
    if target.exists() and not target.is_dir():
        raise SeteVSRError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not args.overwrite:
        raise SeteVSRError(f"{target} is not empty (pass --overwrite to replace it)")
    if args.preset is not None and not args.random_weights:
        raise SeteVSRError(f"--preset {args.preset} has random weights only: pass --random-weights to confirm")
    if args.random_weights and args.preset is None:
        raise SeteVSRError("--random-weights goes with --preset (pretrained components are loaded otherwise)")
    if args.no_temporal_transformer and args.no_tsam:
        raise SeteVSRError("--no-temporal-transformer with --no-tsam leaves stage 2 nothing to add; keep one of them")

    from ..pipelines.assemble import from_sd21, tiny_pipeline

    ablation = {
        "use_seam": not args.no_seam,
        "use_temporal_transformer": not args.no_temporal_transformer,
        "use_tsam": not args.no_tsam,
    }
    if args.preset == "tiny":
        pipe = tiny_pipeline(seed=args.seed, temporal=args.temporal, unet_options=ablation)
        what = "tiny SeTe-VSR pipeline with random weights (produces noise, not super-resolution)"
    else:
        pipe = from_sd21(
            base=args.base,
            semantic=args.semantic,
            temporal=args.temporal,
            window_length=args.window_length,
            keep_text_encoder=args.keep_text_encoder,
            unet_options=ablation,
        )
        what = f"untrained SeTe-VSR pipeline from {args.base} + {args.semantic}"

    left_out = {"SeAM": args.no_seam, "temporal transformer": args.no_temporal_transformer, "TSAM": args.no_tsam}
    if any(left_out.values()):
        what += ", without " + ", ".join(name for name, flag in left_out.items() if flag)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        pipe.save_pretrained(partial)
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    except OSError as err:
        raise SeteVSRError(f"cannot write {target}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    modules = [component for component in pipe.components.values() if hasattr(component, "parameters")]
    params = sum(param.numel() for module in modules for param in module.parameters())
    print(f"saved {what} to {target} ({params / 1e6:.1f} M parameters)")
    return 0
