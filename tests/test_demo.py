"""``sete-vsr demo``: the processing functions (bicubic, a baseline, a tiny random SeTe-VSR model), one-line errors, the
page built and served, answering through ``gradio_client`` with an upscaled video."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sete_vsr.cli import main
from sete_vsr.data.video_io import VideoReader, write_video
from sete_vsr.demo.processing import MODEL_METHOD, demo_methods, sample_clips, upscale_clip
from sete_vsr.errors import SeteVSRError


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny"
    assert main(["init", str(folder), "--preset", "tiny", "--random-weights"]) == 0
    return folder


@pytest.fixture
def clip(tmp_path) -> Path:
    frames = np.random.RandomState(0).randint(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    return write_video(tmp_path / "clip.mp4", frames, fps=10)


def video_shape(path: Path) -> tuple[int, int, int]:
    info = VideoReader(path).info
    return info.num_frames, info.height, info.width


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bicubic_run_writes_videos_frames_and_reports_progress(clip, tmp_path):
    reports = []
    result = upscale_clip(clip, "bicubic", tmp_path / "run", max_frames=3, progress=lambda f, desc: reports.append(f))
    assert video_shape(result.output_video) == video_shape(result.input_video) == (3, 64, 96)
    assert result.output_video == result.input_video and result.num_frames == 3 and result.lr_size == (24, 16)
    assert result.summary.startswith("bicubic: 3 frames 24x16 -> 96x64 in ")
    bicubic, out = result.frame_pair(99)  # clamped to the last frame
    assert bicubic.name == "00000002.png" and bicubic.is_file() and out.is_file()
    assert reports == sorted(reports) and reports[0] == 0.0 and reports[-1] == 1.0


def test_progress_objects_that_are_falsy_are_called(clip, tmp_path):
    class Progress:  # as gr.Progress, which has a length of 0 before it tracks an iterable
        def __init__(self):
            self.calls = []

        def __len__(self):
            return 0

        def __call__(self, fraction, desc=""):
            self.calls.append(desc)

    progress = Progress()
    upscale_clip(clip, "bicubic", tmp_path / "run", max_frames=2, progress=progress)
    assert progress.calls == ["reading the clip", "bicubic x4: frame 1/2", "bicubic x4: frame 2/2", "done"]


def test_tiny_model_run_with_a_scheduler(model, clip, tmp_path):
    reports = []
    result = upscale_clip(
        clip, MODEL_METHOD, tmp_path / "run", model=str(model), device="cpu", steps=2, scheduler="ddim",
        max_frames=2, progress=lambda f, desc: reports.append(desc),
    )  # fmt: skip
    assert video_shape(result.output_video) == (2, 64, 96) and video_shape(result.input_video) == (2, 64, 96)
    assert result.output_frames != result.input_frames
    assert len(list(result.output_frames.glob("*.png"))) == 2
    assert "denoising: step 2/2" in reports
    from sete_vsr.demo.processing import _pipeline

    pipe, own = _pipeline(str(model), "cpu")
    assert pipe.scheduler is own  # the chosen sampler does not stick to the cached pipeline


def test_baseline_with_a_found_checkpoint(shared, monkeypatch, clip, tmp_path):
    from sete_vsr.weight_dirs import set_weight_dirs

    set_weight_dirs([shared("weights")])
    try:
        names = [name for _, name in demo_methods()]
        assert names[0] == "bicubic" and "basicvsr-vimeo-bi" in names
        assert not any("+" in name for name in names)  # plug-in and adapted forms need more files
        result = upscale_clip(clip, "basicvsr-vimeo-bi", tmp_path / "run", device="cpu", max_frames=2)
    finally:
        set_weight_dirs([])
    assert video_shape(result.output_video) == (2, 64, 96)


def test_methods_offer_the_model_first():
    assert demo_methods("some/model")[0] == ("SeTe-VSR (some/model)", MODEL_METHOD)


def test_samples_are_the_shared_clips_smallest_first(shared, tmp_path):
    samples = sample_clips(shared())
    labels = [s.label for s in samples]
    assert "carphone_pristine.mp4 (176x144, 120 frames)" in labels
    assert "vid4_calendar_LR_duf (180x144, 41 frames)" in labels
    assert labels[0].startswith("carphone") and all(s.path.exists() for s in samples)
    assert sample_clips(tmp_path) == []


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not-a-video", "cannot read video"),
        ("missing", "input not found"),
        ("no-model", "needs a model: start the demo with --model"),
        ("zero-steps", "steps must be at least 1"),
        ("zero-frames", "max_frames must be at least 1"),
        ("unknown-method", "unknown method 'nope'"),
    ],
)
def test_bad_inputs_are_one_line_errors(clip, tmp_path, kind, message):
    source, method, settings = clip, "bicubic", {}
    if kind == "not-a-video":
        source = tmp_path / "notes.mp4"
        source.write_text("not a video")
    elif kind == "missing":
        source = tmp_path / "absent.mp4"
    elif kind == "no-model":
        method = MODEL_METHOD
    elif kind == "zero-steps":
        settings = {"steps": 0}
    elif kind == "zero-frames":
        settings = {"max_frames": 0}
    else:
        method = "nope"
    with pytest.raises(SeteVSRError) as caught:
        upscale_clip(source, method, tmp_path / "run", **settings)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_command_without_gradio_says_how_to_install(monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else find_spec(name, *a))
    assert main(["demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "sete-vsr demo: error: the demo needs Gradio: pip install 'sete-vsr[demo]' (or pip install gradio)"


def test_command_help_imports_neither_gradio_nor_torch():
    code = (
        "import sys; from sete_vsr.cli import build_parser; build_parser().parse_args(['demo', '--port', '1']); "
        "print([m for m in ('gradio', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The page with the bicubic method, on a free local port; yields its URL."""
    pytest.importorskip("gradio")
    from sete_vsr.demo.app import build_app

    app = build_app(workdir=tmp_path_factory.mktemp("demo"))
    port = free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_page_builds_with_every_control(model):
    pytest.importorskip("gradio")
    from sete_vsr.demo.app import build_app
    from sete_vsr.demo.processing import model_steps

    components = {c["props"].get("elem_id"): c["props"] for c in build_app(model=str(model)).config["components"]}
    assert {"upload", "method", "steps", "scheduler", "max-frames", "run", "frame", "input-video", "output-video",
            "download"} <= set(components)  # fmt: skip
    assert components["method"]["value"] == MODEL_METHOD and components["steps"]["visible"]
    assert components["steps"]["value"] == model_steps(str(model))  # the model's own setting by default


def test_page_with_a_bad_model_fails_at_start(tmp_path):
    pytest.importorskip("gradio")
    from sete_vsr.demo.app import build_app

    with pytest.raises(SeteVSRError, match="is not a SeTe-VSR model folder"):
        build_app(model=str(tmp_path))


def test_served_page_upscales_through_the_client(served, clip):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    summary, pair, frame, input_video, output_video, download = client.predict(
        handle_file(str(clip)), None, "bicubic", 20, "", 4, api_name="/upscale"
    )
    assert summary.startswith("bicubic: 4 frames 24x16 -> 96x64")
    assert video_shape(Path(output_video["video"] if isinstance(output_video, dict) else output_video)) == (4, 64, 96)
    assert Path(download).suffix == ".mp4"
    bicubic, result = client.predict(3, api_name="/frame")  # the session's run, frame 3
    assert Path(bicubic).name == Path(result).name == "00000003.png"


def test_served_page_shows_bad_uploads_as_one_line(served, tmp_path):
    from gradio_client import Client, handle_file

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    client = Client(served, verbose=False)
    with pytest.raises(Exception) as caught:
        client.predict(handle_file(str(bad)), None, "bicubic", 20, "", 4, api_name="/upscale")
    assert "cannot read video" in str(caught.value) and "Traceback" not in str(caught.value)


def test_command_serves_the_page_with_the_shared_weights(shared, monkeypatch, capsys):
    pytest.importorskip("gradio")
    from sete_vsr.demo import app
    from sete_vsr.weight_dirs import set_weight_dirs, weight_dirs

    calls = {}

    class Page:
        def queue(self):
            return self

        def launch(self, **settings):
            calls["launch"] = settings

    def build_app(**settings):
        calls["build"] = settings
        return Page()

    monkeypatch.setenv("SETE_VSR_SHARED", str(shared()))
    monkeypatch.setattr(app, "build_app", build_app)
    try:
        assert main(["demo", "--port", "7999", "--weights-dir", "mine", "--device", "cpu"]) == 0
        assert weight_dirs()[:2] == [Path("mine"), shared("weights")]
    finally:
        set_weight_dirs([])
    assert calls["build"] == {"model": None, "device": "cpu"}
    assert calls["launch"] == {"server_name": "127.0.0.1", "server_port": 7999, "share": False, "quiet": True}
    assert capsys.readouterr().out.strip() == "sete-vsr demo on http://127.0.0.1:7999 (Ctrl+C to stop)"
