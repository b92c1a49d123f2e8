"""Video and frame-folder reading/writing: real clips, round trips, audio copy, bad input, atomic writes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from sete_vsr.data.video_io import (
    FrameFolderWriter,
    VideoReader,
    VideoWriter,
    as_rgb_frame,
    open_writer,
    read_video,
    write_video,
)
from sete_vsr.errors import SeteVSRError


def _frames(count: int = 8, height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth moving gradients (compress well, so an H.264 round trip stays close)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = [
        np.stack([(x * 4 + 8 * t) % 256, (y * 5 + 4 * t) % 256, np.full_like(x, 30 * t % 256)], -1)
        for t in range(count)
    ]
    return np.asarray(frames, dtype=np.uint8)


def _make_video_with_audio(path: Path, frames: np.ndarray, fps: int = 10, rate: int = 16000) -> None:
    """An mp4 with H.264 video and an AAC sine tone as long as the video."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for i, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = i
            container.mux(video.encode(video_frame))
        container.mux(video.encode(None))
        samples = int(rate * len(frames) / fps)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
        for start in range(0, samples, 1024):
            audio_frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            audio_frame.sample_rate, audio_frame.pts = rate, start
            container.mux(audio.encode(audio_frame))
        container.mux(audio.encode(None))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


# Real data -----------------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_read_real_clip_metadata_and_first_frames(shared):
    path = shared("data", "videos", "sam2", "01_dog.mp4")
    reader = VideoReader(path, max_frames=3)
    info = reader.info
    assert (info.width, info.height, info.fps, info.rotation) == (1280, 720, Fraction(30000, 1001), 0)
    assert info.num_frames == 3 and info.has_audio and info.bit_depth == 8
    frames = list(reader)
    assert len(frames) == 3 and frames[0].shape == (720, 1280, 3) and frames[0].dtype == np.uint8
    assert VideoReader(path).info.num_frames == 289


@pytest.mark.shared
def test_read_real_frame_folder_in_order(shared):
    folder = shared("data", "frames", "vid4_GT", "calendar")
    frames, info = read_video(folder, max_frames=2)
    assert frames.shape == (2, 576, 720, 3) and info.num_frames == 2 and info.fps is None
    expected = cv2.cvtColor(cv2.imread(str(folder / "00000001.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(frames[1], expected)
    assert VideoReader(folder).info.num_frames == 41


@pytest.mark.shared
def test_real_audio_is_copied_and_cut_to_the_video(shared, tmp_path):
    source = shared("data", "videos", "sam2", "01_dog.mp4")
    frames, info = read_video(source, max_frames=6)
    small = [cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA) for f in frames]
    out = write_video(tmp_path / "out.mp4", small, fps=info.fps, audio_from=source)
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        audio = container.streams.audio[0]
        packets = [p for p in container.demux(audio) if p.dts is not None]
    assert audio.codec_context.name == "aac"
    assert 0 < float(packets[-1].pts * packets[-1].time_base) < 6 / info.fps


# Round trips ---------------------------------------------------------------------------------------------------------


def test_mp4_round_trip_keeps_count_fps_size(tmp_path):
    frames = _frames()
    out = write_video(tmp_path / "clip.mp4", iter(frames), fps=Fraction(30000, 1001))
    read, info = read_video(out)
    assert (info.num_frames, info.height, info.width, info.fps) == (8, 48, 64, Fraction(30000, 1001))
    assert read.shape == frames.shape
    assert np.abs(read.astype(int) - frames).mean() < 4  # lossy H.264 (crf 18) of smooth content
    assert _leftovers(tmp_path) == []


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = _frames(3, 33, 47)
    read, info = read_video(write_video(tmp_path / "odd.mp4", frames, fps=10))
    assert (info.height, info.width) == (34, 48)
    assert np.abs(read[:, :33, :47].astype(int) - frames).mean() < 4


def test_png_folder_round_trip_is_lossless(tmp_path):
    frames = _frames(12, 20, 30)
    out = write_video(tmp_path / "frames", frames)
    assert sorted(p.name for p in out.iterdir())[:2] == ["00000000.png", "00000001.png"]
    read, info = read_video(out)
    assert np.array_equal(read, frames) and info.num_frames == 12
    assert _leftovers(tmp_path) == []


def test_audio_stream_is_remuxed_packet_for_packet(tmp_path):
    source = tmp_path / "with_audio.mp4"
    _make_video_with_audio(source, _frames(10, 32, 32))
    frames, info = read_video(source)
    assert info.has_audio and info.fps == 10 and info.num_frames == 10
    out = write_video(tmp_path / "out.mp4", frames, fps=info.fps, audio_from=source)
    payloads = []
    for path in (source, out):
        with av.open(str(path)) as container:
            assert container.streams.audio[0].codec_context.name == "aac"
            payloads.append([bytes(p) for p in container.demux(audio=0) if p.dts is not None])
    assert len(payloads[1]) >= len(payloads[0]) - 1 and payloads[1] == payloads[0][: len(payloads[1])]
    assert read_video(out)[1].has_audio


def test_video_without_audio_writes_video_only(tmp_path):
    source = write_video(tmp_path / "silent.mp4", _frames(2), fps=5)
    out = write_video(tmp_path / "out.mp4", _frames(2), fps=5, audio_from=source)
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video"]


def test_rotation_metadata_is_applied(tmp_path):
    path = tmp_path / "rotated.mp4"
    frame = np.zeros((16, 32, 3), np.uint8)
    frame[:8, :8] = 255  # top-left corner marked
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        stream.set_display_rotation(90)  # counterclockwise, as phones store portrait video
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts = 0
        container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    upright, info = read_video(path)
    assert info.rotation == 90 and (info.height, info.width) == (32, 16) and upright.shape[1:3] == (32, 16)
    assert upright[0, -4:, :4].mean() > 200 and upright[0, :4, :4].mean() < 50  # corner moved to bottom-left
    raw, raw_info = read_video(path, apply_rotation=False)
    assert raw.shape[1:3] == (16, 32) and raw_info.rotation == 90


# Frame formats -------------------------------------------------------------------------------------------------------


def test_in_memory_arrays_tensors_and_pil_images():
    frames = _frames(3, 8, 10)
    channels_first = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    assert np.array_equal(read_video(channels_first)[0], frames)
    assert np.array_equal(read_video(list(frames))[0], frames)
    gray = frames[..., 0]
    assert np.array_equal(read_video(gray)[0], np.repeat(gray[..., None], 3, -1))
    rgba = np.concatenate([frames, np.full_like(frames[..., :1], 7)], -1)
    assert np.array_equal(read_video(rgba)[0], frames)
    images = [Image.fromarray(gray[0]), Image.fromarray(rgba[1], "RGBA"), Image.fromarray(frames[2]).convert("P")]
    read, info = read_video(images)
    assert read.shape == (3, 8, 10, 3) and info.num_frames == 3
    assert np.array_equal(read[1], frames[1])


def test_sixteen_bit_frames_scaled_or_kept(tmp_path):
    deep = np.linspace(0, 65535, 4 * 6 * 3).reshape(4, 6, 3).astype(np.uint16)
    assert np.array_equal(as_rgb_frame(deep), np.rint(deep / 257).astype(np.uint8))
    np.testing.assert_allclose(as_rgb_frame(deep, "float32"), deep / 65535, atol=1e-7)
    folder = tmp_path / "deep"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    frames, info = read_video(folder, dtype="float32")
    assert info.bit_depth == 16 and frames.dtype == np.float32
    np.testing.assert_allclose(frames[0], deep / 65535, atol=1e-7)
    pil16 = Image.fromarray(deep[..., 0])
    assert pil16.mode.startswith("I;16")
    np.testing.assert_allclose(read_video([pil16], dtype="float32")[0][0, ..., 1], deep[..., 0] / 65535, atol=1e-7)


def test_frame_folder_natural_sort(tmp_path):
    for index in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"f{index}.png"), np.full((4, 4, 3), index, np.uint8))
    frames, _ = read_video(tmp_path)
    assert [int(f[0, 0, 0]) for f in frames] == [1, 2, 10]


# Bad input -----------------------------------------------------------------------------------------------------------


def test_missing_input(tmp_path):
    with pytest.raises(SeteVSRError, match="input not found"):
        VideoReader(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(SeteVSRError, match="cannot read video"):
        VideoReader(tmp_path / "text.mp4")


@pytest.mark.parametrize("faststart", [False, True], ids=["index-at-end", "index-first"])
@pytest.mark.parametrize("keep", [0.4, 0.8])
def test_truncated_video(tmp_path, faststart, keep):
    full = tmp_path / "full.mp4"
    if faststart:  # our writer puts the index first: frames are lost, the index survives
        write_video(full, _frames(20, 64, 64), fps=10)
    else:
        _make_video_with_audio(full, _frames(20, 64, 64))
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SeteVSRError, match="cannot read video .*cut.mp4"):
        list(VideoReader(cut))


def test_zero_frames(tmp_path):
    with av.open(str(tmp_path / "empty.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        container.start_encoding()
    with pytest.raises(SeteVSRError, match="no video frames"):
        VideoReader(tmp_path / "empty.mp4")
    (tmp_path / "folder").mkdir()
    with pytest.raises(SeteVSRError, match="no frames"):
        VideoReader(tmp_path / "folder")
    with pytest.raises(SeteVSRError, match="no frames"):
        VideoReader([])


def test_mixed_frame_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((4, 6, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((4, 8, 3), np.uint8))
    with pytest.raises(SeteVSRError, match="different sizes: 0.png is 6x4, 1.png is 8x4"):
        VideoReader(tmp_path)


def test_unwritable_output(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SeteVSRError, match="cannot write output"):
        VideoWriter(tmp_path / "file" / "out.mp4", fps=10)
    with pytest.raises(SeteVSRError, match="cannot write output"):
        FrameFolderWriter(tmp_path / "file")
    with pytest.raises(SeteVSRError, match="unsupported output"):
        open_writer(tmp_path / "out.gif")
    write_video(tmp_path / "taken.mp4", _frames(1), fps=5)
    with pytest.raises(SeteVSRError, match="already exists"):
        VideoWriter(tmp_path / "taken.mp4", fps=5, overwrite=False)


# Atomic writes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip.mp4", "frames"])
def test_failed_write_leaves_nothing(tmp_path, name):
    with pytest.raises(RuntimeError, match="interrupted"):
        with open_writer(tmp_path / name, fps=10) as writer:
            writer.write(_frames(1)[0])
            assert _leftovers(tmp_path)  # the partial output exists while writing ...
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # ... and is gone, with no final output


def test_failed_rewrite_keeps_previous_output(tmp_path):
    out = write_video(tmp_path / "clip.mp4", _frames(2), fps=10)
    before = out.read_bytes()
    with pytest.raises(RuntimeError):
        with VideoWriter(out, fps=10) as writer:
            writer.write_frames(_frames(5))
            raise RuntimeError("interrupted")
    assert out.read_bytes() == before and _leftovers(tmp_path) == []
