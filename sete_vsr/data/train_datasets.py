"""Training datasets of video clips, with the LR made on the fly.

Sources:

* :class:`FrameFolderDataset`: any folder of frame folders, ``root/<clip>/<frame>.png``
  (png/jpg/jpeg/bmp/webp; frames in natural name order). A ``root`` that holds
  frames itself is one clip.
* :class:`REDSDataset`: the same layout, leaving out the REDS4 test clips
  000, 011, 015 and 020 by default (they are inside REDS ``train_sharp``).
* :class:`VideoFolderDataset`: any folder of video files (mp4/mkv/avi/mov/webm/m4v),
  decoded with PyAV; only the frames of the sample are decoded, after a seek
  to the nearest keyframe.
* :class:`PairedFolderDataset`: LR and HR frame folders with the same clip and
  frame names, no degradation.

**Item contract** (what the training loop receives; the default collate adds a
leading batch dimension ``B`` to every tensor and makes ``clip`` a list):

* ``"hr"``: float32 tensor ``(F, 3, H, W)`` in ``[-1, 1]``, RGB, the GT crop;
* ``"lr"``: float32 tensor ``(F, 3, H // scale, W // scale)`` in ``[-1, 1]``, RGB;
* ``"hr_usm"`` (only with ``sharpened_hr=True``): the unsharp-masked ``"hr"``
  (RealBasicVSR's pixel-loss target), same shape and range;
* ``"clip"``: ``str``, the clip (folder or file stem) name;
* ``"start"``: ``int``, index of the first frame in the clip;
* ``"index"``: ``int``, the item's index in the dataset (training keys the draws of each sample by it).

``F = num_frames`` consecutive frames from a random start; ``H = W = crop_size``
(one random position for all frames; ``crop_size=None`` keeps the whole frame,
trimmed to a multiple of ``scale``); with ``augment``, horizontal flip,
vertical flip and ``H``/``W`` transpose (square frames only) with probability
1/2 each, applied to the whole clip (and identically to LR and HR).

**Randomness.** Each item draws everything (start, crop, flips, degradation)
from one ``numpy`` generator:

* ``seed=None`` (training): seeded from torch's random generator, so it follows
  ``torch.manual_seed`` and the per-worker seeding of ``DataLoader``: runs are
  repeatable for a given torch seed and ``num_workers``, and every epoch differs.
* ``seed=int`` (validation, fixed sets): seeded from ``(seed, epoch, index)``,
  so item ``i`` is the same whatever the worker layout; :meth:`set_epoch`
  changes the draw (it reaches workers created after the call, i.e. not
  ``persistent_workers``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import SeteVSRError
from .benchmark_clips import REDS4_CLIPS
from .realworld_degradation import RealBasicVSRConfig, RealBasicVSRDegradation, USMParams, unsharp_mask

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")

Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_frames(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural name order."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: natural_key(p.name),
    )


def read_frame(path: Path) -> np.ndarray:
    """One image file as RGB ``uint8`` ``(H, W, 3)``."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SeteVSRError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _decode(path: Path, start: int, count: int, seek: bool) -> list[np.ndarray] | None:
    """Frames ``start .. start + count - 1`` of the first video stream; ``None`` if seeking gave no usable pts."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps, time_base = stream.average_rate, stream.time_base
        t0 = stream.start_time or 0
        seek = seek and start > 0 and bool(fps) and time_base is not None
        if seek:
            container.seek(t0 + int(Fraction(start) / (fps * time_base)), stream=stream)  # keyframe at or before
        out = []
        for i, frame in enumerate(container.decode(stream)):
            if seek:
                if frame.pts is None:
                    return None
                index = round((frame.pts - t0) * time_base * fps)
                if not out and index > start:  # landed past the start: timestamps are not regular
                    return None
            else:
                index = i
            if index >= start:
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == count:
                    break
        return out


def read_video_frames(path: str | Path, start: int, count: int) -> np.ndarray:
    """Frames ``start .. start + count - 1`` of a video file as RGB ``uint8`` ``(count, H, W, 3)``.

    Seeks to the keyframe before ``start`` (frame index from the timestamp and the
    average frame rate) and decodes forward; falls back to decoding from the
    beginning when the stream has no usable timestamps or frame rate.
    """
    path = Path(path)
    frames = _decode(path, start, count, seek=True)
    if frames is None:
        frames = _decode(path, start, count, seek=False)
    if len(frames) < count:
        raise SeteVSRError(f"{path} has fewer than {start + count} frames")
    return np.stack(frames)


def probe_video(path: str | Path) -> tuple[int, tuple[int, int]]:
    """``(number of frames, (H, W))`` of a video file's first video stream (counts packets if not stored)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SeteVSRError(f"{path} has no video stream")
            stream = container.streams.video[0]
            length = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            return int(length), (stream.height, stream.width)
    except av.error.FFmpegError as err:
        raise SeteVSRError(f"cannot open video {path}: {err}") from err


@dataclass(frozen=True)
class ClipInfo:
    """One clip of a dataset: ``frames`` (image files) or ``video`` (a file), its length and ``(H, W)``."""

    name: str
    length: int
    size: tuple[int, int]
    frames: tuple[Path, ...] = ()
    video: Path | None = None


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(F, H, W, 3)`` on the 0-255 scale -> float32 ``(F, 3, H, W)`` in ``[-1, 1]``."""
    x = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float()
    return x / 127.5 - 1.0


def _augment(clips: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Flip H, flip V, transpose (if square) with p=1/2 each, identically on every ``(F, H, W, C)`` array."""
    hflip, vflip, transpose = rng.uniform(size=3) < 0.5
    out = []
    for x in clips:
        if hflip:
            x = x[:, :, ::-1]
        if vflip:
            x = x[:, ::-1]
        if transpose and x.shape[1] == x.shape[2]:
            x = x.transpose(0, 2, 1, 3)
        out.append(np.ascontiguousarray(x))
    return out


class _ClipDataset(Dataset):
    """Sampling, cropping, augmentation and seeding shared by every dataset below."""

    def __init__(
        self,
        clips: list[ClipInfo],
        num_frames: int,
        crop_size: int | None,
        scale: int,
        augment: bool,
        seed: int | None,
        source: str,
    ):
        if num_frames < 1:
            raise SeteVSRError(f"num_frames must be at least 1, got {num_frames}")
        if crop_size is not None and (crop_size < scale or crop_size % scale):
            raise SeteVSRError(f"crop_size must be a positive multiple of scale={scale}, got {crop_size}")
        if not clips:
            raise SeteVSRError(f"no clips found in {source}")
        usable = [c for c in clips if c.length >= num_frames]
        if not usable:
            raise SeteVSRError(f"no clip in {source} has {num_frames} frames (longest: {max(c.length for c in clips)})")
        if len(usable) < len(clips):
            logger.warning(
                "%d clip(s) in %s shorter than %d frames are left out", len(clips) - len(usable), source, num_frames
            )
        if crop_size is not None:
            small = [c.name for c in usable if min(c.size) < crop_size]
            if small:
                raise SeteVSRError(
                    f"frames smaller than crop_size={crop_size} in {source}: clip(s) {', '.join(small[:5])}"
                )
        self.clips = usable
        self.num_frames = num_frames
        self.crop_size = crop_size
        self.scale = scale
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Change the draws of a seeded dataset (``seed`` given); no effect otherwise."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            entropy = int(torch.randint(0, 2**62, (1,)).item())
            return np.random.default_rng([entropy, index])
        return np.random.default_rng([self.seed, self.epoch, index])

    def _load(self, clip: ClipInfo, start: int) -> np.ndarray:
        """``num_frames`` frames from ``start``: RGB ``uint8`` ``(F, H, W, 3)``."""
        if clip.video is not None:
            return read_video_frames(clip.video, start, self.num_frames)
        frames = [read_frame(p) for p in clip.frames[start : start + self.num_frames]]
        if any(f.shape != frames[0].shape for f in frames):
            raise SeteVSRError(f"frames of different sizes in clip {clip.name}")
        return np.stack(frames)

    def _sample(self, index: int) -> tuple[ClipInfo, int, np.random.Generator]:
        rng = self._rng(index)
        clip = self.clips[index]
        start = int(rng.integers(0, clip.length - self.num_frames + 1))
        return clip, start, rng


class _HRDataset(_ClipDataset):
    """HR clips from some source, LR made on the fly by a degradation."""

    def __init__(
        self,
        clips: list[ClipInfo],
        num_frames: int,
        crop_size: int | None,
        scale: int,
        degradation: RealBasicVSRConfig | Degradation | None,
        augment: bool,
        seed: int | None,
        sharpened_hr: bool,
        source: str,
    ):
        super().__init__(clips, num_frames, crop_size, scale, augment, seed, source)
        if degradation is None or isinstance(degradation, RealBasicVSRConfig):
            config = degradation or RealBasicVSRConfig()
            degradation = RealBasicVSRDegradation(replace(config, target_size=None, scale=scale))
        self.degradation = degradation
        self.sharpened_hr = sharpened_hr
        # RealBasicVSR degrades the unsharp-masked GT, the "hr_usm" of the item: sharpened once, used twice.
        self.shares_usm = (
            sharpened_hr
            and isinstance(degradation, RealBasicVSRDegradation)
            and degradation.config.sharpen_input
            and degradation.config.usm == USMParams()
        )

    def __getitem__(self, index: int) -> dict:
        clip, start, rng = self._sample(index)
        hr = self._load(clip, start)
        h, w = hr.shape[1:3]
        if self.crop_size is None:
            hr = hr[:, : h - h % self.scale, : w - w % self.scale]
        else:
            top = int(rng.integers(0, h - self.crop_size + 1))
            left = int(rng.integers(0, w - self.crop_size + 1))
            hr = hr[:, top : top + self.crop_size, left : left + self.crop_size]
        if self.augment:
            (hr,) = _augment([hr], rng)
        hr_usm = np.stack([unsharp_mask(f) for f in hr]) if self.sharpened_hr else None
        if self.shares_usm:
            lr = np.asarray(self.degradation(hr, rng, sharpened=hr_usm))
        else:
            lr = np.asarray(self.degradation(hr, rng))
        expected = (hr.shape[0], hr.shape[1] // self.scale, hr.shape[2] // self.scale, 3)
        if lr.shape != expected:
            raise SeteVSRError(f"the degradation returned {lr.shape}, expected {expected}")
        item = {"hr": _to_tensor(hr), "lr": _to_tensor(lr), "clip": clip.name, "start": start, "index": index}
        if hr_usm is not None:
            item["hr_usm"] = _to_tensor(hr_usm)
        return item


def _existing_dir(root: str | Path, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SeteVSRError(f"{what} folder not found: {root}")
    return root


def _frame_folder_clips(root: Path, exclude: Iterable[str] = ()) -> list[ClipInfo]:
    """Clips of ``root/<clip>/<frame>`` (or of ``root`` itself when it holds frames)."""
    excluded = tuple(exclude)

    def is_excluded(name: str) -> bool:
        return any(name == e or name.startswith(f"{e}_") for e in excluded)

    folders = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name))
    if not folders and list_frames(root):
        folders = [root]
    clips = []
    for folder in folders:
        if is_excluded(folder.name):
            continue
        frames = list_frames(folder)
        if frames:
            with Image.open(frames[0]) as img:
                size = (img.height, img.width)
            clips.append(ClipInfo(folder.name, len(frames), size, frames=tuple(frames)))
    return clips


class FrameFolderDataset(_HRDataset):
    """Clips from ``root/<clip>/<frame>.png``; LR made on the fly. See the module docstring for items.

    Args:
        root: folder of clip folders (or one folder of frames).
        num_frames: ``F``, consecutive frames per item.
        crop_size: HR crop side (multiple of ``scale``), or ``None`` for whole frames.
        scale: LR = HR / ``scale``.
        degradation: a :class:`RealBasicVSRConfig` (its ``target_size``/``scale`` are
            set to ``crop / scale``), ``None`` for RealBasicVSR's defaults, or any
            callable ``(hr uint8 (F, H, W, 3), rng) -> (F, H/scale, W/scale, 3)`` on the 0-255 scale.
        augment: random flips/transpose of the whole clip.
        seed: ``None`` (follows torch's seed) or an int (fixed draws); see the module docstring.
        sharpened_hr: also return ``"hr_usm"``.
        exclude: clip names left out (a name also excludes ``<name>_*`` sub-image folders).
    """

    def __init__(
        self,
        root: str | Path,
        num_frames: int,
        crop_size: int | None = 256,
        scale: int = 4,
        degradation: RealBasicVSRConfig | Degradation | None = None,
        augment: bool = True,
        seed: int | None = None,
        sharpened_hr: bool = False,
        exclude: Iterable[str] = (),
    ):
        root = _existing_dir(root, "dataset")
        clips = _frame_folder_clips(root, exclude)
        super().__init__(clips, num_frames, crop_size, scale, degradation, augment, seed, sharpened_hr, str(root))


class REDSDataset(FrameFolderDataset):
    """REDS ``train_sharp`` layout (``root/<clip>/<frame>.png``) without the REDS4 test clips by default.

    Same arguments as :class:`FrameFolderDataset`; ``exclude`` defaults to
    :data:`REDS4_CLIPS` (000, 011, 015, 020), pass ``()`` to keep them.
    """

    def __init__(self, root: str | Path, num_frames: int, *, exclude: Iterable[str] = REDS4_CLIPS, **kwargs):
        super().__init__(root, num_frames, exclude=exclude, **kwargs)


class VideoFolderDataset(_HRDataset):
    """Clips from the video files in ``root`` (recursively), one clip per file; LR made on the fly.

    Same arguments as :class:`FrameFolderDataset` except ``exclude`` (file stems).
    Files are probed once here (frame count and size); items decode only their frames.
    """

    def __init__(
        self,
        root: str | Path,
        num_frames: int,
        crop_size: int | None = 256,
        scale: int = 4,
        degradation: RealBasicVSRConfig | Degradation | None = None,
        augment: bool = True,
        seed: int | None = None,
        sharpened_hr: bool = False,
        exclude: Iterable[str] = (),
    ):
        root = _existing_dir(root, "video dataset")
        excluded = set(exclude)
        files = sorted(
            (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS),
            key=lambda p: natural_key(str(p.relative_to(root))),
        )
        clips = []
        for path in files:
            if path.stem in excluded:
                continue
            length, size = probe_video(path)
            clips.append(ClipInfo(path.stem, length, size, video=path))
        super().__init__(clips, num_frames, crop_size, scale, degradation, augment, seed, sharpened_hr, str(root))


class PairedFolderDataset(_ClipDataset):
    """Ready-made LR/HR pairs: ``lr_root/<clip>/<frame>`` and ``hr_root/<clip>/<frame>``.

    Clips are matched by folder name, frames by their order; HR frames must be
    exactly ``scale`` times the LR size. ``crop_size`` is the HR side: the LR crop
    is ``crop_size // scale`` at ``(top, left)``, the HR crop at ``(scale * top, scale * left)``.
    Items follow the module's contract (``"hr_usm"`` with ``sharpened_hr``).
    """

    def __init__(
        self,
        lr_root: str | Path,
        hr_root: str | Path,
        num_frames: int,
        crop_size: int | None = 256,
        scale: int = 4,
        augment: bool = True,
        seed: int | None = None,
        exclude: Iterable[str] = (),
        sharpened_hr: bool = False,
    ):
        lr_root = _existing_dir(lr_root, "LR dataset")
        hr_root = _existing_dir(hr_root, "HR dataset")
        lr_clips = {c.name: c for c in _frame_folder_clips(lr_root, exclude)}
        hr_clips = _frame_folder_clips(hr_root, exclude)
        pairs = []
        for hr in hr_clips:
            lr = lr_clips.get(hr.name)
            if lr is None:
                raise SeteVSRError(f"clip {hr.name} of {hr_root} has no LR folder in {lr_root}")
            if lr.length != hr.length:
                raise SeteVSRError(f"clip {hr.name}: {lr.length} LR frames but {hr.length} HR frames")
            if (lr.size[0] * scale, lr.size[1] * scale) != hr.size:
                raise SeteVSRError(f"clip {hr.name}: HR {hr.size} is not x{scale} of LR {lr.size}")
            pairs.append((hr, lr))
        self.lr_clips = {hr.name: lr for hr, lr in pairs}
        self.sharpened_hr = sharpened_hr
        super().__init__([hr for hr, _ in pairs], num_frames, crop_size, scale, augment, seed, f"{hr_root} / {lr_root}")

    def __getitem__(self, index: int) -> dict:
        clip, start, rng = self._sample(index)
        hr = self._load(clip, start)
        lr = self._load(self.lr_clips[clip.name], start)
        if self.crop_size is not None:
            patch = self.crop_size // self.scale
            top = int(rng.integers(0, lr.shape[1] - patch + 1))
            left = int(rng.integers(0, lr.shape[2] - patch + 1))
            lr = lr[:, top : top + patch, left : left + patch]
            s = self.scale
            hr = hr[:, s * top : s * (top + patch), s * left : s * (left + patch)]
        if self.augment:
            hr, lr = _augment([hr, lr], rng)
        item = {"hr": _to_tensor(hr), "lr": _to_tensor(lr), "clip": clip.name, "start": start, "index": index}
        if self.sharpened_hr:
            item["hr_usm"] = _to_tensor(np.stack([unsharp_mask(f) for f in hr]))
        return item
