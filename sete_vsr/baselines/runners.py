"""The CNN baselines behind the common :class:`~sete_vsr.methods.VSRMethod` interface.

* Recurrent models (BasicVSR, BasicVSR++, RealBasicVSR) run on chunks of at most
  ``chunk_length`` frames that overlap by ``chunk_overlap`` frames of context on each side;
  only each chunk's core frames are kept. A clip no longer than ``chunk_length`` is one pass,
  identical to running the network on the whole clip (the published protocol).
* EDVR runs a sliding window of ``num_frame`` frames centred on each output frame, padded
  at the clip ends with ``reflection_circle`` indices (BasicSR's test setting).

Device memory is bounded by one chunk (or one batch of windows); frames move to the device
chunk by chunk and results come back as uint8.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import SeteVSRError
from ..method_options import RecurrentOptions, RuntimeOptions, SlidingWindowOptions
from ..vsr_method import VSRMethod
from ..options import default_device


def select_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU."""
    if device is None:
        return torch.device(default_device())
    return torch.device(device)


def frames_to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(1, T, 3, H, W)`` float in [0, 1] on ``device``."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).unsqueeze(0).float().div_(255.0)


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """``(T, 3, H, W)`` float -> ``(T, H, W, 3)`` uint8, clamped to [0, 1] and rounded (BasicSR ``tensor2img``)."""
    return x.clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _reflected_indices(size: int, new_size: int, device: torch.device) -> torch.Tensor:
    """``0 .. new_size-1`` mapped into ``[0, size)`` by mirroring at the edges (no edge repeat), like reflect padding."""
    if size == 1:
        return torch.zeros(new_size, dtype=torch.long, device=device)
    period = 2 * (size - 1)
    index = torch.arange(new_size, device=device) % period
    return torch.where(index < size, index, period - index)


def pad_spatially(x: torch.Tensor, min_size: int, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad ``(..., H, W)`` at the bottom/right to at least ``min_size`` and a multiple of ``multiple``.

    Returns the padded tensor and the original ``H``, ``W`` (crop the x4 output to ``4H x 4W``).
    """
    h, w = x.shape[-2:]
    new_h = max(min_size, -(-h // multiple) * multiple)
    new_w = max(min_size, -(-w // multiple) * multiple)
    if new_h != h:
        x = x.index_select(-2, _reflected_indices(h, new_h, x.device))
    if new_w != w:
        x = x.index_select(-1, _reflected_indices(w, new_w, x.device))
    return x, h, w


def chunk_ranges(num_frames: int, chunk_length: int, chunk_overlap: int) -> list[tuple[int, int, int, int]]:
    """Split ``num_frames`` into chunks for a recurrent network.

    Returns ``(start, stop, keep_start, keep_stop)`` tuples: the network sees frames
    ``[start, stop)`` (at most ``chunk_length``) and frames ``[keep_start, keep_stop)`` are kept;
    the kept ranges tile the clip, and each has ``chunk_overlap`` context frames on both
    sides where the clip allows.
    """
    if chunk_length <= 2 * chunk_overlap:
        raise SeteVSRError(f"chunk_length ({chunk_length}) must exceed twice chunk_overlap ({chunk_overlap})")
    if num_frames <= chunk_length:
        return [(0, num_frames, 0, num_frames)]
    ranges = []
    keep_start = 0
    while keep_start < num_frames:
        start = max(0, keep_start - chunk_overlap)
        stop = min(num_frames, start + chunk_length)
        keep_stop = stop if stop == num_frames else stop - chunk_overlap
        ranges.append((start, stop, keep_start, keep_stop))
        keep_start = keep_stop
    return ranges


def frame_window_indices(center: int, num_total: int, num_frames: int, padding: str = "reflection_circle") -> list[int]:
    """Indices of the ``num_frames`` frames around ``center`` in a clip of ``num_total`` frames.

    Out-of-clip positions are filled as BasicSR's ``generate_frame_indices`` does, e.g. for
    ``center=0, num_frames=5``: ``replicate`` [0, 0, 0, 1, 2], ``reflection`` [2, 1, 0, 1, 2],
    ``reflection_circle`` [4, 3, 0, 1, 2], ``circle`` [3, 4, 0, 1, 2]. Clips shorter than
    the window may still fall outside; those indices are clamped into the clip.
    """
    last = num_total - 1
    half = num_frames // 2
    indices = []
    for i in range(center - half, center + half + 1):
        if i < 0:
            fills = {"replicate": 0, "reflection": -i, "reflection_circle": center + half - i, "circle": num_frames + i}
            index = fills[padding]
        elif i > last:
            fills = {
                "replicate": last,
                "reflection": 2 * last - i,
                "reflection_circle": center - half - (i - last),
                "circle": i - num_frames,
            }
            index = fills[padding]
        else:
            index = i
        indices.append(min(max(index, 0), last))
    return indices


class _BaselineMethod(VSRMethod):
    """A network on a device, in eval mode, with a name and an optional progress bar."""

    def __init__(self, model: nn.Module, name: str, options: RuntimeOptions):
        self.device = select_device(options.device)
        self.model = model.to(self.device).eval()
        self.name = name
        self.progress = options.progress


class RecurrentBaselineMethod(_BaselineMethod):
    """BasicVSR / BasicVSR++ / RealBasicVSR on clips of any length.

    Args:
        model: the network, ``(1, T, 3, H, W) -> (1, T, 3, 4H, 4W)``.
        name: method name.
        options: device, progress bar and chunks (:class:`~sete_vsr.method_options.RecurrentOptions`): clips up to
            ``chunk_length`` frames run in one pass, exactly as published.
    """

    def __init__(self, model, name, options: RecurrentOptions = RecurrentOptions()):
        super().__init__(model, name, options)
        self.chunk_length = options.chunk_length
        self.chunk_overlap = options.chunk_overlap

    @torch.no_grad()
    def upscale(self, frames: np.ndarray) -> np.ndarray:
        t, h, w, _ = frames.shape
        out = np.empty((t, 4 * h, 4 * w, 3), dtype=np.uint8)
        with tqdm(total=t, unit="frame", desc=self.name, disable=not self.progress) as bar:
            for start, stop, keep_start, keep_stop in chunk_ranges(t, self.chunk_length, self.chunk_overlap):
                lr, h0, w0 = pad_spatially(frames_to_tensor(frames[start:stop], self.device), 64, 1)
                sr = self.model(lr)[0, keep_start - start : keep_stop - start, :, : 4 * h0, : 4 * w0]
                out[keep_start:keep_stop] = tensor_to_frames(sr)
                bar.update(keep_stop - keep_start)
        return out


class SlidingWindowBaselineMethod(_BaselineMethod):
    """EDVR: each output frame from the ``model.num_frame`` frames around it.

    Args:
        model: an :class:`~sete_vsr.baselines.edvr.EDVR`.
        name: method name.
        options: device, progress bar, window padding at the clip ends (:func:`frame_window_indices`) and windows
            per forward pass (:class:`~sete_vsr.method_options.SlidingWindowOptions`).
    """

    def __init__(self, model, name, options: SlidingWindowOptions = SlidingWindowOptions()):
        super().__init__(model, name, options)
        self.padding = options.padding
        self.batch_size = options.batch_size

    @torch.no_grad()
    def upscale(self, frames: np.ndarray) -> np.ndarray:
        t, h, w, _ = frames.shape
        num_frame = self.model.num_frame
        out = np.empty((t, 4 * h, 4 * w, 3), dtype=np.uint8)
        for first in tqdm(range(0, t, self.batch_size), desc=self.name, disable=not self.progress):
            centres = range(first, min(t, first + self.batch_size))
            windows = [frame_window_indices(c, t, num_frame, self.padding) for c in centres]
            needed = sorted({i for window in windows for i in window})
            lr, h0, w0 = pad_spatially(frames_to_tensor(frames[needed], self.device)[0], 4, 4)
            position = {frame: k for k, frame in enumerate(needed)}
            batch = torch.stack([lr[[position[i] for i in window]] for window in windows])
            sr = self.model(batch)[:, :, : 4 * h0, : 4 * w0]
            out[first : first + len(windows)] = tensor_to_frames(sr)
        return out


def runner_class(arch: str) -> type[_BaselineMethod]:
    """The runner of a baseline architecture: sliding windows for EDVR, recurrent chunks otherwise."""
    return SlidingWindowBaselineMethod if arch == "edvr" else RecurrentBaselineMethod
