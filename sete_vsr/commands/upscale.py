"""``sete-vsr upscale``: super-resolve videos or frame folders x4, with a SeTe-VSR model or a method by name.

Examples::

    sete-vsr upscale in.mp4 -o out.mp4 --model DIR_OR_HUB_ID --steps 50
    sete-vsr upscale frames/ -o out_frames --method realbasicvsr --checkpoint RealBasicVSR_x4.pth
    sete-vsr upscale videos/ -o upscaled/ --model DIR_OR_HUB_ID          # every video of a folder
    accelerate launch --multi_gpu --num_processes 8 -m sete_vsr upscale videos/ a.mp4 -o upscaled/ --model DIR

With one input (a video file or a frame folder), ``-o`` is the output. With several inputs, or a folder of video
files, ``-o`` is a folder: ``<stem>.mp4`` for each video, ``<name>`` (PNG frames) for each frame folder. Under
``accelerate launch`` (or ``torchrun``) the inputs are dealt out to the processes in turn, each on its own device
(as ``sete-vsr eval`` does); an input whose output already exists is skipped, so a stopped run is finished by
running it again. A failed input is reported with its reason and the others go on; the main process prints the
summary (done, skipped, failed, seconds) and the command fails when an input did. A model (or method) that fails to
load on one process stops every process with the same one-line error, naming that process and the reason.

Frames are read and written streaming: a SeTe-VSR model keeps only latent-sized tensors per frame, a method by name
keeps the LR frames and one chunk of its output. The output is a video (``.mp4``, ``.mkv``, ``.mov``, ``.m4v``: H.264,
the input's fps and audio) or, for a path without extension, a folder of PNG frames; it appears only once complete.
"""

from __future__ import annotations

import argparse

from ..options import COLOR_FIXES, DTYPES, SCHEDULERS, WINDOW_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="+", help="video file, folder of frames, or folder of video files (several: "
                        "-o is a folder)")
    parser.add_argument("-o", "--output", required=True, help="output video (.mp4/.mkv/.mov/.m4v) or PNG folder; "
                        "with several inputs or a folder of videos, the folder of the outputs")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="SeTe-VSR pipeline folder or Hub id (see `sete-vsr init`)")
    source.add_argument("--method", help="a method by name instead (see `sete-vsr methods`), e.g. realbasicvsr")
    parser.add_argument("--checkpoint", help="with --method: weights file to use instead of the official one")
    parser.add_argument("--steps", type=int, default=None,
                        help="denoising steps (default: the model's recorded setting, else 50)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=None,
                        help="sampler, made from the model's scheduler config (default: the model's own)")
    parser.add_argument("--prompt", help="text prompt (needs a model saved with its text encoder; default: the "
                        "model's empty prompt, as in the paper)")
    parser.add_argument("--negative-prompt", help="prompt guided away from, with --guidance-scale above 1")
    parser.add_argument("--guidance-scale", type=float, default=1.0,
                        help="classifier-free guidance weight; above 1 each window runs twice (default 1: off)")
    parser.add_argument("--strength", "--noise-level", type=float, default=1.0, dest="strength",
                        help="noise level sampling starts from, as a fraction of the schedule in (0, 1]: 1 starts from "
                        "pure noise, lower values from the noised input and run only that share of the steps "
                        "(default 1)")
    parser.add_argument("--window-length", type=int, help="frames denoised together (default: the model's)")
    parser.add_argument("--window-overlap", type=int, help="frames shared by consecutive windows (default L/4)")
    parser.add_argument("--window-mode", choices=WINDOW_MODES, default=WINDOW_MODES[0],
                        help="shifted non-overlapping windows after a few blended steps (default), or blended "
                        "overlapping ones")
    parser.add_argument("--blended-steps", type=int, default=None,
                        help="with --window-mode shifted: first steps run blended (default a fifth of the steps)")
    parser.add_argument("--segment-length", type=int, default=None,
                        help="windows denoised together before they are written (bounds memory; default: the "
                        "pipeline's)")
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

    from ..errors import SeteVSRError
    from ..eval.runner import process_state, resolve_device

    start = time.perf_counter()
    if args.checkpoint is not None and args.method is None:
        raise SeteVSRError("--checkpoint goes with --method; a SeTe-VSR model is a folder given with --model")
    for name in ("steps", "max_frames", "chunk_frames"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SeteVSRError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    jobs, many = _jobs([Path(p) for p in args.input], Path(args.output))
    state = process_state(args.device)
    device = resolve_device(args.device, state) if state is not None else args.device
    if not many:
        if state is not None and not state.is_main_process:
            return 0  # one input: the main process upscales it
        ((source, output),) = jobs
        upscale = _upscaler(args, device)
        num_frames, info, path = upscale(source, output)
        seconds = time.perf_counter() - start
        print(
            f"upscaled {num_frames} frames {info.width}x{info.height} -> {4 * info.width}x{4 * info.height} "
            f"in {seconds:.1f} s ({seconds / num_frames:.2f} s/frame) -> {path}"
        )
        return 0

    rank, processes = (state.process_index, state.num_processes) if state is not None else (0, 1)
    share = jobs[rank::processes]  # dealt out in turn
    records = [{"input": str(source), "status": "skipped"} for source, output in share if output.exists()]
    todo = [(source, output) for source, output in share if not output.exists()]
    upscale = _upscaler_on_every_process(args, device, state, needed=bool(todo))
    for source, output in todo:
        began = time.perf_counter()
        record = {"input": str(source), "status": "done"}
        try:
            upscale(source, output)
        except Exception as err:  # noqa: BLE001 - one bad input must not stop the others; its reason is reported
            record.update(status="failed", reason=f"{type(err).__name__}: {err}")
        seconds = time.perf_counter() - began
        print(f"[process {rank}] {record['status']}: {source} ({seconds:.1f} s)", flush=True)
        records.append(record)
    if state is not None:
        from accelerate.utils import gather_object

        records = gather_object(records)
        if not state.is_main_process:
            return 0 if all(r["status"] != "failed" for r in records) else 1
    _print_summary(records, time.perf_counter() - start, Path(args.output))
    return 0 if all(r["status"] != "failed" for r in records) else 1


def _jobs(inputs: list, output) -> tuple[list[tuple], bool]:
    """``[(input, output)]`` and whether ``output`` is a folder of outputs (several inputs, or a folder of videos).

    Raises:
        SeteVSRError: a missing input, an output that would overwrite an input, or two inputs with one output name.
    """
    from ..data.train_datasets import VIDEO_EXTENSIONS
    from ..errors import SeteVSRError

    for source in inputs:
        if not source.exists():
            raise SeteVSRError(f"input not found: {source}")
    if len(inputs) == 1:
        folder = inputs[0]
        videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS) if folder.is_dir() else []
        if not videos:  # a video file or a frame folder
            if output.exists() and output.resolve() == folder.resolve():
                raise SeteVSRError(f"the output {output} would overwrite the input")
            return [(folder, output)], False
        inputs = videos
    jobs = [(p, output / (f"{p.stem}.mp4" if p.is_file() else p.name)) for p in inputs]
    names = [target.name for _, target in jobs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SeteVSRError(f"several inputs would be written to the same output: {', '.join(twice)}")
    if output.exists() and not output.is_dir():
        raise SeteVSRError(f"with several inputs -o is a folder, and {output} is a file")
    inputs_resolved = {p.resolve() for p in inputs}
    if any(target.resolve() in inputs_resolved for _, target in jobs):
        raise SeteVSRError(f"an output in {output} would overwrite its input: choose another -o folder")
    output.mkdir(parents=True, exist_ok=True)
    return jobs, True


def _upscaler(args: argparse.Namespace, device: str | None):
    """A function ``(input, output) -> (frames, VideoInfo, written path)`` with the model or method loaded once."""
    from ..data.video_io import VideoReader, open_output

    run_on = _upscale_with_model if args.model is not None else _upscale_with_method
    prepared = _load_model(args, device) if args.model is not None else _load_method(args, device)

    def upscale(source, output):
        reader = VideoReader(source, max_frames=args.max_frames, dtype="float32" if args.model else "uint8")
        with open_output(output, reader) as writer:
            run_on(args, prepared, reader, writer)
        return writer.num_frames, reader.info, writer.path

    return upscale


def _upscaler_on_every_process(args: argparse.Namespace, device: str | None, state, needed: bool):
    """The upscaler of :func:`_upscaler` (None where not ``needed``), once every process has loaded its own.

    A process whose load failed would leave the others waiting forever at the gather of the results, so under
    several processes (``state``) each one first tells the others whether its load worked, and all of them stop
    together when one failed. A single process raises its own error.

    Raises:
        SeteVSRError: the load failed on some process: the same line on every process, naming the first that failed
            and its reason.
    """
    from ..errors import SeteVSRError

    upscale, failure = None, None
    if needed:
        try:
            upscale = _upscaler(args, device)
        except Exception as err:  # noqa: BLE001 - the other processes must hear of any failure before all stop
            if state is None:
                raise
            failure = " ".join(f"{type(err).__name__}: {err}".split())  # one line
    if state is not None:
        from accelerate.utils import gather_object

        failures = [(rank, reason) for rank, reason in enumerate(gather_object([failure])) if reason is not None]
        if failures:
            rank, reason = failures[0]
            loaded = f"the model {args.model}" if args.model is not None else f"the method {args.method}"
            raise SeteVSRError(f"process {rank} could not load {loaded}: {reason}")
    return upscale


def _print_summary(records: list[dict], seconds: float, output) -> None:
    """Counts, then one line per failed input with its reason."""
    counts = {status: sum(r["status"] == status for r in records) for status in ("done", "skipped", "failed")}
    print(
        f"{len(records)} inputs -> {output}: {counts['done']} done, {counts['skipped']} skipped (output exists), "
        f"{counts['failed']} failed, in {seconds:.1f} s"
    )
    for record in records:
        if record["status"] == "failed":
            print(f"failed: {record['input']}: {record['reason']}")


def _load_model(args: argparse.Namespace, device: str | None):
    from ..pipelines.sete_method import load_pipeline

    if args.no_progress:  # also the loading bars of diffusers and transformers
        import diffusers.utils.logging
        import transformers.utils.logging

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
    pipe = load_pipeline(args.model, device, args.dtype, args.cpu_offload)
    pipe.set_progress_bar_config(disable=args.no_progress)
    if args.scheduler is not None:
        from ..pipelines.schedulers import use_scheduler

        use_scheduler(pipe, args.scheduler)
    return pipe


def _upscale_with_model(args: argparse.Namespace, pipe, reader, writer) -> None:
    import torch

    generator = torch.Generator(pipe._execution_device).manual_seed(args.seed)
    pipe(
        reader,
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        guidance_scale=args.guidance_scale,
        strength=args.strength,
        num_inference_steps=args.steps,
        window_length=args.window_length,
        window_overlap=args.window_overlap,
        window_mode=args.window_mode,
        blended_steps=args.blended_steps,
        **({} if args.segment_length is None else {"segment_length": args.segment_length}),
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        decode_chunk_size=args.decode_chunk_size,
        color_fix=None if args.color_fix == "none" else args.color_fix,
        generator=generator,
        write_to=writer,
    )


def _load_method(args: argparse.Namespace, device: str | None):
    from ..methods import build_method, parse_method_options

    runtime = {"progress": not args.no_progress, "device": device}
    given = {} if args.checkpoint is None else {"checkpoint": args.checkpoint}
    options = parse_method_options(args.method, given, {k: v for k, v in runtime.items() if v is not None})
    return build_method(args.method, options)


def _upscale_with_method(args: argparse.Namespace, method, reader, writer) -> None:
    """Run a :class:`~sete_vsr.methods.VSRMethod` on chunks of the clip with context frames, writing each chunk."""
    import numpy as np

    from ..methods import upscale_in_chunks

    frames = np.stack(list(reader))  # LR frames are 16x smaller than the output, which is written chunk by chunk
    for upscaled in upscale_in_chunks(method, frames, args.chunk_frames):
        writer.write_frames(upscaled)
