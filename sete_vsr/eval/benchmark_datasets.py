"""Benchmark datasets for evaluation: clip layouts, GT/LR pairing and the cached LR.

A dataset is a list of :class:`EvalClip`: a name, GT frames (or none) and LR
frames, either given on disk or made once from the GT by a named degradation
(:func:`sete_vsr.data.degradations.degrade`) with a fixed per-clip seed, and
cached as ``%08d.png`` under ``<lr_cache>/<dataset>/<degradation>_seed<seed>[_f<N>]/<clip>/``, with a
``key.json`` that names what made them (a changed GT or degradation code makes them again).

Layouts (``root`` is what ``--root`` points at; a clip is a folder of frames,
or for ``folder`` also a video file):

=========  ===========================================  =====================
name       clips                                        default degradation
=========  ===========================================  =====================
vid4       calendar, city, foliage, walk (``root`` or   BI
           ``root/GT``); LR from ``root/BIx4`` or
           ``root/BDx4`` when present
reds4      000, 011, 015, 020 (``root``, ``root/GT`` or  realbasicvsr
           ``root/train_sharp``)
spmcs      every clip folder (30 in the DOVE release)   realbasicvsr
udm10      every clip folder (10; ``root`` or           BI
           ``root/GT``); LR from ``root/BIx4`` or
           ``root/BDx4`` when present
videolq    every clip folder; LR only, no GT            none (real LR)
folder     every clip folder or video file; GT          BI
folder-lr  every clip folder or video file; LR only     none
=========  ===========================================  =====================

GT and LR folders may also be given in the BasicSR layout ``root/GT/<clip>``
and ``root/<DEG>x4/<clip>`` (e.g. ``BIx4``), in which case the LR on disk is
used as is and recorded as such.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.benchmark_clips import REDS4_CLIPS, VID4_CLIPS
from ..errors import SeteVSRError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm")
LR_KEY = "key.json"  # beside cached LR frames: what made them


@dataclass(frozen=True)
class Layout:
    """How a named dataset is laid out and evaluated."""

    clips: tuple[str, ...] | None  # fixed clip names, or None for every clip found
    has_gt: bool
    default_degradation: str | None
    gt_subdirs: tuple[str, ...] = ("GT",)
    psnr_convention: str = ""


LAYOUTS: dict[str, Layout] = {
    "vid4": Layout(VID4_CLIPS, True, "BI", psnr_convention="Y channel, crop 0"),
    "reds4": Layout(REDS4_CLIPS, True, "realbasicvsr", ("GT", "train_sharp"), "RGB, crop 0"),
    "spmcs": Layout(None, True, "realbasicvsr", psnr_convention="RGB, crop 0"),
    "udm10": Layout(None, True, "BI", psnr_convention="Y channel, crop 0"),
    "videolq": Layout(None, False, None),
    "folder": Layout(None, True, "BI"),
    "folder-lr": Layout(None, False, None),
}


@dataclass
class EvalClip:
    """One clip to evaluate.

    Attributes:
        name: clip name (folder or file stem).
        gt_source: GT folder/video, or None for LR-only sets.
        lr_source: LR folder/video given on disk, or None to make it from GT.
        seed: seed for a random degradation (fixed per clip).
    """

    name: str
    gt_source: Path | None
    lr_source: Path | None
    seed: int = 0


@dataclass
class EvalDataset:
    """A resolved dataset: clips plus the facts written into results."""

    name: str
    root: Path
    clips: list[EvalClip]
    has_gt: bool
    degradation: str | None  # None: the LR is given (real or on disk)
    lr_origin: str
    max_frames: int | None = None
    info: dict = field(default_factory=dict)


def _is_clip(path: Path) -> bool:
    if path.is_dir():
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _find_clips(root: Path) -> dict[str, Path]:
    """Clip name -> source for every frame folder or video file directly in ``root``."""
    clips = {p.stem if p.is_file() else p.name: p for p in sorted(root.iterdir()) if _is_clip(p)}
    if not clips and _is_clip(root):
        clips = {root.stem if root.is_file() else root.name: root}
    return clips


def clip_seed(seed: int, clip: str) -> int:
    """A fixed seed per clip, independent of clip order: ``crc32(clip) + seed``."""
    return (zlib.crc32(clip.encode()) + int(seed)) % (2**31)


def resolve_dataset(
    name: str,
    root: str | Path,
    degradation: str | None = None,
    seed: int = 0,
    max_frames: int | None = None,
    clips: list[str] | None = None,
) -> EvalDataset:
    """Find the clips of dataset ``name`` under ``root``.

    Args:
        degradation: BI, BD or realbasicvsr to make the LR from GT; ``None`` takes
            the dataset's default (an LR folder found on disk wins over the default).
        seed: base seed of random degradations (per clip: :func:`clip_seed`).
        max_frames: evaluate only the first N frames of each clip.
        clips: evaluate only these clips.

    Raises:
        SeteVSRError: unknown dataset, missing root, no clips, missing fixed clips.
    """
    from ..data.degradations import DEGRADATIONS, DESCRIPTIONS

    key = name.lower()
    if key not in LAYOUTS:
        raise SeteVSRError(f"unknown dataset {name!r}; available: {', '.join(LAYOUTS)}")
    layout = LAYOUTS[key]
    root = Path(root).expanduser()
    if not root.exists():
        raise SeteVSRError(f"dataset root {root} does not exist")
    if degradation is not None and degradation.lower() not in DEGRADATIONS:
        raise SeteVSRError(f"unknown degradation {degradation!r}; available: BI, BD, realbasicvsr")
    if degradation is not None and not layout.has_gt:
        raise SeteVSRError(f"{key} has no ground truth, so no degradation can be applied (drop --degradation)")

    gt_root = next((root / s for s in layout.gt_subdirs if (root / s).is_dir()), root) if layout.has_gt else None
    lr_root = None
    if layout.has_gt:
        # with no degradation named, an LR folder on disk wins for the BI/BD sets (as the docstring says)
        wanted = [degradation.upper()] if degradation else ["BI", "BD"] if key in ("vid4", "udm10") else []
        lr_root = next((root / f"{d}x4" for d in wanted if (root / f"{d}x4").is_dir()), None)
        if lr_root is not None and degradation is None:
            degradation = lr_root.name[:-2]
    found = _find_clips(gt_root if layout.has_gt else root)
    names = list(layout.clips) if layout.clips else sorted(found)
    missing = [c for c in names if c not in found]
    if missing or not names:
        raise SeteVSRError(
            f"{key}: {'no clips' if not names else 'missing clips ' + ', '.join(missing)} under "
            f"{gt_root or root} (expected folders of frames{': ' + ', '.join(names) if layout.clips else ''})"
        )
    if clips:
        unknown = [c for c in clips if c not in names]
        if unknown:
            raise SeteVSRError(f"{key}: unknown clips {', '.join(unknown)}; available: {', '.join(names)}")
        names = [c for c in names if c in clips]
    if layout.has_gt and degradation is None:
        degradation = layout.default_degradation

    items = []
    for clip in names:
        lr = None
        if lr_root is not None:
            lr = lr_root / clip
            if not lr.exists():
                raise SeteVSRError(f"{key}: LR clip {lr} missing (GT has {clip})")
        items.append(
            EvalClip(clip, found[clip] if layout.has_gt else None, lr if layout.has_gt else found[clip], clip_seed(seed, clip))
        )
    info = {"psnr_convention_in_literature": layout.psnr_convention} if layout.psnr_convention else {}
    if not layout.has_gt:
        origin = "given LR frames (no ground truth)"
        info["degradation_description"] = "none: real-world LR as given, no ground truth (no-reference metrics only)"
    elif lr_root is not None:
        origin = f"LR frames on disk ({lr_root})"
        info["degradation_description"] = (
            f"{DESCRIPTIONS[degradation.lower()]} (as the folder name {lr_root.name} says; frames read from disk, "
            "not made here)"
        )
    else:
        origin = f"made from GT by {degradation} (seed {seed}, per clip crc32(name)+seed), cached as PNG"
        info["degradation_description"] = DESCRIPTIONS[degradation.lower()]
    return EvalDataset(
        key,
        root,
        items,
        layout.has_gt,
        degradation if layout.has_gt else None,
        origin,
        max_frames,
        info,
    )


def read_frames(source: Path, max_frames: int | None = None) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 RGB frames of a frame folder or video file (never re-encoded)."""
    from ..data.video_io import read_video

    frames, _ = read_video(source, max_frames=max_frames)
    return frames


def write_frames(folder: Path, frames: np.ndarray) -> None:
    """Write ``(T, H, W, 3)`` uint8 frames as ``%08d.png`` (atomically: a folder is complete or absent)."""
    from ..data.video_io import FrameFolderWriter

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FrameFolderWriter(folder, overwrite=True) as writer:
        writer.write_frames(frames)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cached_frames(folder: Path, expected: int | None = None) -> np.ndarray | None:
    """Frames cached in ``folder`` if it holds exactly ``expected`` PNGs (any number if None), else None."""
    if not folder.is_dir():
        return None
    count = sum(1 for p in folder.iterdir() if p.suffix == ".png")
    if count == 0 or (expected is not None and count != expected):
        return None
    return read_frames(folder)


def load_pair(
    dataset: EvalDataset, clip: EvalClip, lr_cache: Path, reuse: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """GT (or None) and LR frames of ``clip``; a made LR is cached under ``lr_cache`` and reused.

    The cache is reused only when its key (``key.json``: degradation, seed, digest of the GT and the degradation's
    :func:`~sete_vsr.data.degradations.fingerprint`) matches and ``reuse`` is true; otherwise the LR is made again.
    """
    from ..data.degradations import degrade, fingerprint, frames_digest

    gt = read_frames(clip.gt_source, dataset.max_frames) if clip.gt_source is not None else None
    if clip.lr_source is not None:
        lr = read_frames(clip.lr_source, dataset.max_frames)
    else:
        tag = f"{dataset.degradation}_seed{clip.seed}" + (f"_f{len(gt)}" if dataset.max_frames else "")
        folder = lr_cache / dataset.name / tag / clip.name
        key = {
            "degradation": dataset.degradation,
            "seed": clip.seed,
            "gt": frames_digest(gt),
            "code": fingerprint(dataset.degradation),
        }
        lr = cached_frames(folder, len(gt)) if reuse and _read_json(folder / LR_KEY) == key else None
        if lr is None:
            (folder / LR_KEY).unlink(missing_ok=True)  # an interrupted rewrite leaves no valid key behind
            lr = degrade(gt, dataset.degradation, clip.seed)
            write_frames(folder, lr)
            (folder / LR_KEY).write_text(json.dumps(key, indent=2) + "\n")
    if gt is not None and len(gt) != len(lr):
        raise SeteVSRError(f"{clip.name}: {len(gt)} GT frames but {len(lr)} LR frames")
    return gt, lr
