"""``sete-vsr upscale``: super-resolve a video or a frame folder x4, with a SeTe-VSR model or a method by name.

Examples::

    sete-vsr upscale in.mp4 -o out.mp4 --model DIR_OR_HUB_ID --steps 50
    sete-vsr upscale frames/ -o out_frames --method realbasicvsr --checkpoint RealBasicVSR_x4.pth

Frames are read and written streaming: a SeTe-VSR model keeps only latent-sized tensors per frame, a method by name
keeps the LR frames and one chunk of its output. The output is a video (``.mp4``, ``.mkv``, ``.mov``, ``.m4v``: H.264,
the input's fps and audio) or, for a path without extension, a folder of PNG frames; it appears only once complete.
"""

from __future__ import annotations

import argparse

from ..options import COLOR_FIXES, DTYPES, SCHEDULERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="video file or folder of frames")
    parser.add_argument("-o", "--output", required=True, help="output video (.mp4/.mkv/.mov/.m4v) or PNG folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="SeTe-VSR pipeline folder or Hub id (see `sete-vsr init`)")
    source.add_argument("--method", help="a method by name instead (see `sete-vsr methods`), e.g. realbasicvsr")
    parser.add_argument("--checkpoint", help="with --method: weights file to use instead of the official one")
    parser.add_argument("--steps", type=int, default=None,
                        help="denoising steps (default: the model's recorded setting, else 50)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=None,
                        help="sampler, made from the model's scheduler config (default: the model's own)")
    parser.add_argument("--window-length", type=int, help="frames denoised together (default: the model's)")
    parser.add_argument("--window-overlap", type=int, help="frames shared by consecutive windows (default L/4)")
    parser.add_argument("--tile-size", type=int, help="latent tile size, output pixels / 8 (default: the model's "
                        "training size; 0: whole frames)")
    parser.add_argument("--tile-overlap", type=int, help="latent pixels shared by neighbouring tiles (default S/4)")
    parser.add_argument("--decode-chunk-size", type=int, help="frames per VAE pass (default: the window length)")
    parser.add_argument("--max-frames", type=int, help="process only the first N frames")
    parser.add_argument("--seed", type=int, default=0, help="seed of the diffusion noise (default 0)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="model dtype (default fp32)")
    parser.add_argument("--device", help="torch device, e.g. cuda, cuda:1, cpu (default: cuda when available)")
    parser.add_argument("--cpu-offload", action="store_true", help="keep models on the CPU until each one runs")
    parser.add_argument("--color-fix", choices=("none", *COLOR_FIXES), default="none",
                        help="correct colours against the upsampled input (default none)")
    parser.add_argument("--chunk-frames", type=int, default=100,
                        help="with --method: frames per call of the method (default 100)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ..data.video_io import VideoReader, open_output
    from ..errors import SeteVSRError

    start = time.perf_counter()
    if args.checkpoint is not None and args.method is None:
        raise SeteVSRError("--checkpoint goes with --method; a SeTe-VSR model is a folder given with --model")
    for name in ("steps", "max_frames", "chunk_frames"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SeteVSRError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    source, output = Path(args.input), Path(args.output)
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise SeteVSRError(f"the output {output} would overwrite the input")

    reader = VideoReader(source, max_frames=args.max_frames, dtype="float32" if args.model else "uint8")
    info = reader.info
    with open_output(output, reader) as writer:
        if args.model is not None:
            _upscale_with_model(args, reader, writer)
        else:
            _upscale_with_method(args, reader, writer)
    num_frames, path = writer.num_frames, writer.path
    seconds = time.perf_counter() - start
    print(
        f"upscaled {num_frames} frames {info.width}x{info.height} -> {4 * info.width}x{4 * info.height} "
        f"in {seconds:.1f} s ({seconds / num_frames:.2f} s/frame) -> {path}"
    )
    return 0


def _upscale_with_model(args: argparse.Namespace, reader, writer) -> None:
    import torch

    from ..pipelines.sete_method import load_pipeline

    if args.no_progress:  # also the loading bars of diffusers and transformers
        import diffusers.utils.logging
        import transformers.utils.logging

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
    pipe = load_pipeline(args.model, args.device, args.dtype, args.cpu_offload)
    pipe.set_progress_bar_config(disable=args.no_progress)
    if args.scheduler is not None:
        from ..pipelines.schedulers import use_scheduler

        use_scheduler(pipe, args.scheduler)
    generator = torch.Generator(pipe._execution_device).manual_seed(args.seed)
    pipe(
        reader,
        num_inference_steps=args.steps,
        window_length=args.window_length,
        window_overlap=args.window_overlap,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        decode_chunk_size=args.decode_chunk_size,
        color_fix=None if args.color_fix == "none" else args.color_fix,
        generator=generator,
        write_to=writer,
    )


def _upscale_with_method(args: argparse.Namespace, reader, writer) -> None:
    """Run a :class:`~sete_vsr.methods.VSRMethod` on chunks of the clip with context frames, writing each chunk."""
    import numpy as np

    from ..methods import build_method, parse_method_options, upscale_in_chunks

    runtime = {"progress": not args.no_progress, "device": args.device}
    given = {} if args.checkpoint is None else {"checkpoint": args.checkpoint}
    options = parse_method_options(args.method, given, {k: v for k, v in runtime.items() if v is not None})
    method = build_method(args.method, options)
    frames = np.stack(list(reader))  # LR frames are 16x smaller than the output, which is written chunk by chunk
    for upscaled in upscale_in_chunks(method, frames, args.chunk_frames):
        writer.write_frames(upscaled)
