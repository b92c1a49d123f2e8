"""Reading and writing videos and frame folders, streaming frame by frame.

Readers accept a video file (any container PyAV/FFmpeg reads), a folder of PNG/JPG/... frames (natural sort: ``2.png``
before ``10.png``), a list of PIL images or arrays, or one array/tensor ``(T, H, W, 3)``/``(T, 3, H, W)``. Every
frame comes out as RGB ``(H, W, 3)``:

- ``dtype="uint8"`` (default): 8-bit values; 16-bit sources (PNG/TIFF, 10/12-bit video) are rescaled to 8 bits
  (``round(v / 257)`` for 16-bit images).
- ``dtype="float32"``: values in [0, 1] at the source's full precision (16-bit frames keep all their levels).

Grayscale frames are replicated to three channels and the alpha channel of RGBA frames is dropped. Float inputs are
taken to be in [0, 1]. Video rotation metadata (phone videos) is applied by default so frames come out upright; the
original angle is reported in :class:`VideoInfo`.

Writers put mp4/mkv/mov videos (H.264 ``libx264``, ``yuv420p``, the given fps, the input's audio copied packet for
packet) or folders of ``%08d.png`` frames. Everything is written under a hidden temporary name in the destination
folder and renamed at the end, so an interrupted or failed run never leaves a file that looks complete;
:func:`open_output` opens the writer of a processed clip with the fps and audio of the clip read.

Errors the user can fix (missing input, unreadable or truncated video, no frames, frames of mixed sizes, an output
that cannot be written) raise :class:`~sete_vsr.errors.SeteVSRError` with one line.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import SeteVSRError

logger = logging.getLogger(__name__)

FrameDType = Literal["uint8", "float32"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv")
# Audio codecs the mp4/mov muxers accept as is; other codecs are dropped with a warning.
_MP4_AUDIO_CODECS = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a frame source before decoding it.

    Attributes:
        num_frames: frames that will be yielded (after ``max_frames``); for video files the container's count, which
            may be ``None`` when the container does not store it.
        height: frame height as yielded (after rotation).
        width: frame width as yielded (after rotation).
        fps: frames per second (exact fraction for video files); ``None`` for folders and in-memory frames.
        rotation: display rotation of the video in degrees counterclockwise (0 when none); applied to the frames
            when the reader's ``apply_rotation`` is true.
        bit_depth: bits per colour component of the source (8, 10, 16, ...).
        has_audio: the source is a video file with an audio stream.
        source: the path read, or ``None`` for in-memory frames.
    """

    num_frames: int | None
    height: int
    width: int
    fps: Fraction | None = None
    rotation: int = 0
    bit_depth: int = 8
    has_audio: bool = False
    source: Path | None = None


def as_rgb_frame(frame: Any, dtype: FrameDType = "uint8") -> np.ndarray:
    """Convert one frame to RGB ``(H, W, 3)``.

    Args:
        frame: a PIL image, or an array/tensor ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with ``C`` in {1, 3, 4};
            ``uint8``/``uint16`` integers or floats in [0, 1].
        dtype: ``"uint8"`` or ``"float32"`` (values in [0, 1]).

    Returns:
        A C-contiguous array ``(H, W, 3)`` of ``dtype``.
    """
    array = _pil_to_array(frame) if hasattr(frame, "getbands") else _to_numpy(frame)
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise SeteVSRError(f"a frame must be (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4; got {array.shape}")
    array = array[..., :3] if array.shape[-1] == 4 else np.repeat(array, 3 // array.shape[-1], axis=-1)
    return np.ascontiguousarray(_convert_depth(array, dtype))


def _to_numpy(frame: Any) -> np.ndarray:
    if hasattr(frame, "detach"):  # torch tensor, without importing torch
        frame = frame.detach().cpu()
        if str(frame.dtype) in ("torch.bfloat16", "torch.float16"):
            frame = frame.float()
        frame = frame.numpy()
    return np.asarray(frame)


def _pil_to_array(image: Any) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return np.asarray(image)


def _convert_depth(array: np.ndarray, dtype: FrameDType) -> np.ndarray:
    """Integer (8/16-bit) or [0, 1] float values to ``dtype``."""
    if dtype not in ("uint8", "float32"):
        raise ValueError(f"dtype must be 'uint8' or 'float32', got {dtype!r}")
    if array.dtype == np.uint8:
        return array if dtype == "uint8" else array.astype(np.float32) / 255
    if array.dtype == np.uint16:
        if dtype == "float32":
            return array.astype(np.float32) / 65535
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if array.dtype == np.bool_:
        array = array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(array.astype(np.float32), 0, 1)
        return array if dtype == "float32" else np.rint(array * 255).astype(np.uint8)
    raise SeteVSRError(f"unsupported frame dtype {array.dtype} (use uint8, uint16 or float in [0, 1])")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class VideoReader:
    """Frames of a video file, frame folder or in-memory sequence, one at a time.

    The source is probed on construction (so bad input fails early) and decoded lazily on iteration; each
    iteration starts again from the first frame and holds only the current frame (and the decoder's buffers).

    Args:
        source: path to a video file or a frame folder, a list of PIL images/arrays, or an array/tensor
            ``(T, H, W, C)``/``(T, C, H, W)`` (``(T, H, W)`` for grayscale).
        max_frames: stop after this many frames.
        dtype: ``"uint8"`` or ``"float32"`` frames (see the module docstring for 16-bit sources).
        apply_rotation: rotate video frames by their display rotation metadata.

    Example:
        >>> reader = VideoReader("clip.mp4", max_frames=16)  # doctest: +SKIP
        >>> reader.info.fps, reader.info.num_frames  # doctest: +SKIP
        (Fraction(30000, 1001), 16)
        >>> for frame in reader:  # (H, W, 3) uint8, one at a time  # doctest: +SKIP
        ...     ...
    """

    def __init__(
        self,
        source: str | os.PathLike | Iterable | Any,
        max_frames: int | None = None,
        dtype: FrameDType = "uint8",
        apply_rotation: bool = True,
    ) -> None:
        if max_frames is not None and max_frames < 1:
            raise SeteVSRError(f"max_frames must be at least 1, got {max_frames}")
        self.max_frames = max_frames
        self.dtype = dtype
        self.apply_rotation = apply_rotation
        self._files: list[Path] | None = None
        self._frames: Any = None
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise SeteVSRError(f"input not found: {path}")
            self.info = self._probe_folder(path) if path.is_dir() else self._probe_video(path)
        else:
            self.info = self._probe_memory(source)
        if max_frames is not None and self.info.num_frames is not None:
            self.info = replace(self.info, num_frames=min(self.info.num_frames, max_frames))

    def _probe_video(self, path: Path) -> VideoInfo:
        import av

        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise SeteVSRError(f"no video frames in {path} (it has no video stream)")
                stream = container.streams.video[0]
                codec = stream.codec_context
                bit_depth = codec.format.components[0].bits if codec.format is not None else 8
                rotation = 0
                for frame in container.decode(stream):  # the first frame carries the display matrix
                    rotation = int(frame.rotation)
                    break
                else:
                    raise SeteVSRError(f"no video frames in {path}")
                fps = stream.average_rate or stream.guessed_rate or stream.base_rate
                num_frames = stream.frames or None
                if num_frames is None and stream.duration is not None and fps:
                    num_frames = int(round(float(stream.duration * stream.time_base * fps)))
                has_audio = bool(container.streams.audio)
        except av.FFmpegError as err:
            raise SeteVSRError(f"cannot read video {path} (corrupt, truncated or not a video): {err}") from None
        height, width = codec.height, codec.width
        if self.apply_rotation and rotation % 180:
            height, width = width, height
        fps = Fraction(fps) if fps else None
        return VideoInfo(num_frames, height, width, fps, rotation, bit_depth, has_audio, path)

    def _probe_folder(self, path: Path) -> VideoInfo:
        from PIL import Image

        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
        if not files:
            raise SeteVSRError(f"no frames in {path} (expected {', '.join(IMAGE_EXTENSIONS)} files)")
        sizes = {}
        for file in files:
            try:
                with Image.open(file) as image:  # reads the header only
                    sizes.setdefault(image.size, file)
            except OSError:
                raise SeteVSRError(f"cannot read frame {file}") from None
        if len(sizes) > 1:
            (size_a, file_a), (size_b, file_b) = list(sizes.items())[:2]
            raise SeteVSRError(
                f"frames in {path} have different sizes: {file_a.name} is {size_a[0]}x{size_a[1]}, "
                f"{file_b.name} is {size_b[0]}x{size_b[1]}"
            )
        self._files = files
        (width, height), _ = sizes.popitem()
        first = self._read_image(files[0])  # PIL reports 16-bit RGB PNGs as 8-bit: ask OpenCV
        bit_depth = 16 if first.dtype == np.uint16 else 8
        return VideoInfo(len(files), height, width, bit_depth=bit_depth, source=path)

    def _probe_memory(self, frames: Any) -> VideoInfo:
        if hasattr(frames, "shape") and len(frames.shape) == 3 and not hasattr(frames, "getbands"):
            frames = frames[..., None]  # (T, H, W) grayscale
        if not hasattr(frames, "__len__") or len(frames) == 0:
            raise SeteVSRError("no frames given")
        first = frames[0]
        raw = _pil_to_array(first) if hasattr(first, "getbands") else _to_numpy(first)
        height, width = as_rgb_frame(raw, self.dtype).shape[:2]
        self._frames = frames
        bit_depth = 16 if raw.dtype == np.uint16 else 8
        return VideoInfo(len(frames), height, width, bit_depth=bit_depth)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._files is not None:
            frames = self._iter_folder()
        elif self._frames is not None:
            frames = (as_rgb_frame(frame, self.dtype) for frame in self._frames)
        else:
            frames = self._iter_video()
        for index, frame in enumerate(itertools.islice(frames, self.max_frames)):
            if frame.shape[:2] != (self.info.height, self.info.width):
                raise SeteVSRError(
                    f"frame {index} of {self.info.source or 'the input'} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"expected {self.info.width}x{self.info.height}"
                )
            yield frame

    @staticmethod
    def _read_image(file: Path) -> np.ndarray:
        """An image file at its own depth: ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8 or uint16."""
        import cv2

        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SeteVSRError(f"cannot read frame {file}")
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[-1] == 4 else cv2.COLOR_BGR2RGB)
        return image

    def _iter_folder(self) -> Iterator[np.ndarray]:
        for file in self._files:
            yield as_rgb_frame(self._read_image(file), self.dtype)

    def _iter_video(self) -> Iterator[np.ndarray]:
        import av

        path = self.info.source
        high_depth = self.dtype == "float32" and self.info.bit_depth > 8
        turns = (self.info.rotation // 90) % 4 if self.apply_rotation else 0
        count = 0
        try:
            with av.open(str(path)) as container:
                # Default (slice) threading: frame threading would swallow the decoder errors of a truncated file.
                for frame in container.decode(container.streams.video[0]):
                    if high_depth:
                        array = frame.to_ndarray(format="rgb48le")
                    else:
                        array = frame.to_ndarray(format="rgb24")
                    if turns:
                        array = np.rot90(array, turns)
                    count += 1
                    yield as_rgb_frame(array, self.dtype)
        except av.FFmpegError as err:
            raise SeteVSRError(f"cannot read video {path} after {count} frames (corrupt or truncated): {err}") from None
        if count == 0:
            raise SeteVSRError(f"no video frames in {path}")


def read_video(
    source: str | os.PathLike | Iterable | Any,
    max_frames: int | None = None,
    dtype: FrameDType = "uint8",
    apply_rotation: bool = True,
) -> tuple[np.ndarray, VideoInfo]:
    """Read all frames (up to ``max_frames``) into memory.

    Args:
        source, max_frames, dtype, apply_rotation: as :class:`VideoReader`.

    Returns:
        ``(frames, info)``: frames ``(T, H, W, 3)`` of ``dtype``; ``info.num_frames`` is the number actually read.
        Use :class:`VideoReader` to process long videos without holding them.
    """
    reader = VideoReader(source, max_frames, dtype, apply_rotation)
    frames = np.stack(list(reader))
    return frames, replace(reader.info, num_frames=len(frames))


class _AtomicOutput:
    """A destination written under a hidden temporary name in its folder and renamed into place on success.

    Subclasses create the temporary output in ``_open``, complete it in ``_finish`` and free resources in
    ``_release``; ``_is_folder`` says whether the output is a folder.
    """

    _is_folder = False

    def __init__(self, path: str | os.PathLike, overwrite: bool) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise SeteVSRError(f"output already exists: {self.path}")
        if self.path.is_dir() != self._is_folder and self.path.exists():
            kind = "a folder" if self.path.is_dir() else "a file"
            raise SeteVSRError(f"cannot write output {self.path}: it is {kind}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SeteVSRError(f"cannot write output {self.path}: {err.strerror or err}") from None
        self.temp_path = self.path.with_name(f".{self.path.stem}.{os.getpid()}.partial{self.path.suffix}")
        self._closed = False

    def _open(self) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Free resources after a failure (nothing to free by default)."""

    def _start(self) -> None:
        try:
            self._open()
        except Exception as err:
            self._remove_temp()
            raise SeteVSRError(f"cannot write output {self.path}: {getattr(err, 'strerror', None) or err}") from None

    def _remove_temp(self) -> None:
        if self.temp_path.is_dir():
            shutil.rmtree(self.temp_path, ignore_errors=True)
        else:
            self.temp_path.unlink(missing_ok=True)

    def close(self) -> Path:
        """Finish writing and move the output into place; returns its final path."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            self._finish()
        except BaseException:
            self._remove_temp()
            raise
        if self._is_folder and self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.temp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the temporary output; the destination is left as it was."""
        if not self._closed:
            self._closed = True
            try:
                self._release()
            finally:
                self._remove_temp()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoWriter(_AtomicOutput):
    """Write RGB frames to an H.264 video (``yuv420p``), optionally copying another video's audio.

    Odd frame sizes are padded by one replicated row/column (``yuv420p`` needs even sizes). Use as a context
    manager: leaving the block normally finalises the file; an exception deletes the partial file.

    Args:
        path: output ``.mp4``/``.m4v``/``.mov``/``.mkv`` path.
        fps: frames per second (a ``Fraction`` such as ``30000/1001`` keeps NTSC rates exact).
        audio_from: a video whose first audio stream is copied (packets remuxed, not re-encoded) and cut to the
            written video's duration; ignored when it has no audio.
        crf: x264 constant rate factor (lower is better quality; 18 is visually lossless for most content).
        preset: x264 speed preset.
        overwrite: replace an existing output.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | Fraction,
        audio_from: str | os.PathLike | None = None,
        crf: int = 18,
        preset: str = "medium",
        overwrite: bool = True,
    ) -> None:
        super().__init__(path, overwrite)
        if self.path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise SeteVSRError(f"unsupported video output {self.path} (use {', '.join(VIDEO_EXTENSIONS)})")
        self.fps = Fraction(fps).limit_denominator(100000)
        if self.fps <= 0:
            raise SeteVSRError(f"fps must be positive, got {fps}")
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.crf = crf
        self.preset = preset
        self.num_frames = 0
        self._size: tuple[int, int] | None = None
        self._container = self._stream = self._audio_source = self._audio_in = self._audio_out = None
        self._start()

    def _open(self) -> None:
        import av

        self.temp_path.touch()  # fail now, not after the first frames were computed
        options = {} if self.path.suffix.lower() == ".mkv" else {"movflags": "+faststart"}
        self._container = av.open(str(self.temp_path), mode="w", options=options)

    def _add_audio(self) -> None:
        import av

        if not self.audio_from.is_file():  # a frame folder or in-memory input has no audio
            return
        try:
            self._audio_source = av.open(str(self.audio_from))
        except av.FFmpegError:
            logger.warning("cannot read audio from %s; writing video without audio", self.audio_from)
            return
        if not self._audio_source.streams.audio:
            return
        audio = self._audio_source.streams.audio[0]
        name = audio.codec_context.name
        if self.path.suffix.lower() != ".mkv" and name not in _MP4_AUDIO_CODECS:
            logger.warning("%s audio cannot be stored in %s; writing video without audio", name, self.path.suffix)
            return
        self._audio_in = audio
        self._audio_out = self._container.add_stream_from_template(audio)

    def _open_video_stream(self, height: int, width: int) -> None:
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream_size = (width + width % 2, height + height % 2)
        stream.width, stream.height = stream_size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream
        if self.audio_from is not None:  # after the video stream, before the first packet writes the header
            self._add_audio()
        if (height % 2, width % 2) != (0, 0):
            logger.warning("padding %dx%d frames to %dx%d (yuv420p needs even sizes)", width, height, *stream_size)

    def write(self, frame: Any) -> None:
        """Append one frame: RGB ``(H, W, 3)`` uint8, or anything :func:`as_rgb_frame` accepts."""
        import av

        array = as_rgb_frame(frame, "uint8")
        if self._stream is None:
            self._open_video_stream(*array.shape[:2])
            self._size = array.shape[:2]
        elif array.shape[:2] != self._size:
            got, expected = array.shape[1::-1], self._size[::-1]
            raise ValueError(f"frame {self.num_frames} is {got[0]}x{got[1]}, the video is {expected[0]}x{expected[1]}")
        pad = ((0, self._stream.height - array.shape[0]), (0, self._stream.width - array.shape[1]), (0, 0))
        if any(p[1] for p in pad):
            array = np.pad(array, pad, mode="edge")
        video_frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        video_frame.pts = self.num_frames
        self._container.mux(self._stream.encode(video_frame))
        self.num_frames += 1

    def write_frames(self, frames: Iterable[Any]) -> None:
        """Append frames one by one (an iterator is consumed lazily)."""
        for frame in frames:
            self.write(frame)

    def _finish(self) -> None:
        try:
            if self.num_frames == 0:
                raise SeteVSRError(f"no frames were written to {self.path}")
            self._container.mux(self._stream.encode(None))
            if self._audio_out is not None:
                self._copy_audio()
        finally:
            self._release()

    def _copy_audio(self) -> None:
        duration = Fraction(self.num_frames) / self.fps
        for packet in self._audio_source.demux(self._audio_in):
            if packet.dts is None:
                continue
            if packet.pts is not None and packet.pts * packet.time_base >= duration:
                break
            packet.stream = self._audio_out
            self._container.mux(packet)

    def _release(self) -> None:
        for handle in (self._container, self._audio_source):
            if handle is not None:
                handle.close()
        self._container = self._audio_source = None


class FrameFolderWriter(_AtomicOutput):
    """Write RGB frames as ``00000000.png``, ``00000001.png``, ... into a folder, renamed into place at the end.

    Args:
        path: output folder; an existing folder is replaced when ``overwrite`` is true.
        overwrite: replace an existing output.
    """

    _is_folder = True

    def __init__(self, path: str | os.PathLike, overwrite: bool = True) -> None:
        super().__init__(path, overwrite)
        self.num_frames = 0
        self._start()

    def _open(self) -> None:
        self.temp_path.mkdir()

    def write(self, frame: Any) -> None:
        """Append one frame: RGB ``(H, W, 3)`` uint8, or anything :func:`as_rgb_frame` accepts."""
        import cv2

        array = as_rgb_frame(frame, "uint8")
        file = self.temp_path / f"{self.num_frames:08d}.png"
        if not cv2.imwrite(str(file), cv2.cvtColor(array, cv2.COLOR_RGB2BGR)):
            raise SeteVSRError(f"cannot write frame {file}")
        self.num_frames += 1

    def write_frames(self, frames: Iterable[Any]) -> None:
        """Append frames one by one (an iterator is consumed lazily)."""
        for frame in frames:
            self.write(frame)

    def _finish(self) -> None:
        if self.num_frames == 0:
            raise SeteVSRError(f"no frames were written to {self.path}")


def open_writer(
    path: str | os.PathLike,
    fps: float | Fraction | None = None,
    audio_from: str | os.PathLike | None = None,
    overwrite: bool = True,
) -> VideoWriter | FrameFolderWriter:
    """A writer chosen by the output path: a video for a video extension, a PNG folder for a path without one.

    Args:
        path: output path.
        fps: frames per second of a video output (``None``: 30).
        audio_from: video whose audio a video output copies.
        overwrite: replace an existing output.
    """
    path = Path(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return VideoWriter(path, fps or 30, audio_from=audio_from, overwrite=overwrite)
    if path.suffix == "" or path.is_dir():
        return FrameFolderWriter(path, overwrite=overwrite)
    raise SeteVSRError(f"unsupported output {path}: use a video ({', '.join(VIDEO_EXTENSIONS)}) or a folder")


def open_output(path: str | os.PathLike, reader: VideoReader) -> VideoWriter | FrameFolderWriter:
    """The writer of a processed version of ``reader``'s clip: its fps and, read from a video file, its audio.

    Use it as a context manager around the processing: leaving the block normally moves the output into place, any
    exception (interruptions included) deletes the half-written output and leaves the destination as it was.
    """
    source = reader.info.source
    audio = source if source is not None and source.is_file() else None
    return open_writer(path, fps=reader.info.fps, audio_from=audio)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[Any],
    fps: float | Fraction | None = None,
    audio_from: str | os.PathLike | None = None,
    overwrite: bool = True,
) -> Path:
    """Write frames to a video or PNG folder (chosen as :func:`open_writer`); returns the final path.

    ``frames`` may be an iterator: frames are encoded as they come, never held together.
    """
    with open_writer(path, fps, audio_from, overwrite) as writer:
        writer.write_frames(frames)
    return writer.path
