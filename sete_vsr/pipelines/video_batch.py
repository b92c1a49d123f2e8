"""The videos of one pipeline call and its batch-first result: inputs told apart, frames to tensors and back.

A call takes one video or a list of videos (each streamed in turn). One video is a path (file or frame folder), a
:class:`~sete_vsr.data.video_io.VideoReader`, an array `(T, H, W, 3)` / tensor `(T, 3, H, W)`, or a list of frames
(PIL images or `(H, W[, C])` arrays); a batch is a list of those, or a 5-D array / tensor `(B, T, ...)`. The result is
batch-first, as in diffusers' video pipelines: ``frames[0]`` is the first video.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from ..data.video_io import VideoReader
from ..errors import SeteVSRError


def _is_one_video(item: Any) -> bool:
    """Whether ``item`` is one whole video (not one frame): a path, a reader, or 4-D frames."""
    if isinstance(item, (str, os.PathLike, VideoReader)):
        return True
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return item.ndim == 4
    return isinstance(item, (list, tuple)) and len(item) > 0 and not _is_one_video(item[0])


def as_video_batch(video: Any) -> tuple[list[Any], bool]:
    """``(videos, batched)``: the videos of a call's ``video`` argument, and whether it was a batch.

    Raises:
        SeteVSRError: an empty list.
    """
    if isinstance(video, (np.ndarray, torch.Tensor)) and video.ndim == 5:
        return list(video), True
    if isinstance(video, (list, tuple)):
        if not video:
            raise SeteVSRError("no video given: the list of videos (or frames) is empty")
        if _is_one_video(video[0]):
            return list(video), True
    return [video], False


def per_video(value: Any, count: int, name: str, is_list=lambda v: isinstance(v, (list, tuple))) -> list[Any]:
    """``value`` for each of ``count`` videos: a list of ``count`` items as it is, anything else repeated.

    Raises:
        SeteVSRError: a list of another length.
    """
    if not is_list(value):
        return [value] * count
    if len(value) != count:
        raise SeteVSRError(f"{name} has {len(value)} items for {count} videos")
    return list(value)


def pad_frames(frames: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad `(N, C, H, W)` at the bottom and right to multiples of ``multiple`` (mirrored, or replicated when the frame
    is smaller than the padding)."""
    height, width = frames.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == pad_w == 0:
        return frames
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(frames, (0, pad_w, 0, pad_h), mode=mode)


def batched(iterator: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(iterator)
    while batch := list(islice(iterator, size)):
        yield batch


def to_tensor(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """`n` frames `(H, W, 3)` (float in [0, 1] or uint8) -> `(n, 3, H, W)` float32 in [0, 1] on ``device``."""
    batch = torch.from_numpy(np.stack(frames)).to(device).permute(0, 3, 1, 2)
    return batch.float() / 255 if batch.dtype == torch.uint8 else batch.float().contiguous()


def collect(blocks: list, output_type: str) -> list[PIL.Image.Image] | np.ndarray | torch.Tensor:
    """One video's collected blocks (latents, tensors or arrays, frames first) as one result of ``output_type``."""
    if output_type in ("latent", "pt"):
        return torch.cat(blocks)
    array = np.concatenate(blocks)
    if output_type == "np":
        return array
    return [PIL.Image.fromarray(frame) for frame in (array * 255).round().astype(np.uint8)]


def stack_videos(videos: list, output_type: str) -> list | np.ndarray | torch.Tensor:
    """The results of the videos of a call, batch first: ``"pil"``: a list (per video) of lists of images;
    ``"np"`` / ``"pt"`` / ``"latent"``: one array / tensor `(B, T, ...)`, or a list of them when the videos differ
    in length or size."""
    if output_type == "pil" or len({tuple(v.shape) for v in videos}) > 1:
        return videos
    return np.stack(videos) if output_type == "np" else torch.stack(videos)
