"""Temporal windows, spatial tiles and the weighted merge of their predictions.

Long videos are processed in overlapping windows of frames, large frames in overlapping spatial tiles. Each window or
tile is a :class:`Region` of a tensor laid out ``(B, F, C, H, W)``; its blend weight is the product of three 1-D
profiles (frames, rows, columns) that ramp up and down inside the overlaps and are normalised so that, at every
position, the weights of all regions covering it sum to one. A :class:`BlendAccumulator` adds weighted predictions and
hands frames back as soon as no later region can touch them, so decoded frames can be streamed out.

The same code serves the pipeline's denoising loop (windows and tiles in latent space, ``scale=1``) and the temporal
VAE's chunked and tiled decoding (regions planned in latent space, weights built at pixel resolution with
``scale=vae_scale_factor``).

The denoising loop can also cut without overlap (:func:`plan_shifted_regions`): windows and tiles that do not overlap,
whose boundaries move by half a window (tile) from one denoising step to the next, so that every position is evaluated
once per step and every boundary of one step lies inside a window (tile) at the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Ramp = Literal["linear", "cosine"]


def plan_spans(length: int, span_length: int | None, overlap: int) -> list[tuple[int, int]]:
    """Cover ``range(length)`` with spans of ``span_length`` that overlap by at least ``overlap``.

    Spans start every ``span_length - overlap`` positions; the last one is aligned to the end, so every span has the
    full length (the last overlap may be larger than ``overlap``). A ``length`` not larger than ``span_length`` (or a
    ``span_length`` of ``None``) gives one span covering everything.

    Args:
        length: number of positions to cover (frames, latent rows or columns), at least 1.
        span_length: positions per span, or ``None`` for a single span.
        overlap: positions shared by consecutive spans, ``0 <= overlap < span_length``.

    Returns:
        ``[(start, end), ...]`` in increasing order, half-open, first start 0, last end ``length``.
    """
    if length < 1:
        raise ValueError(f"cannot plan spans over {length} positions")
    if span_length is not None and (span_length < 1 or not 0 <= overlap < span_length):
        raise ValueError(f"overlap must be in [0, {span_length}) for spans of {span_length}, got {overlap}")
    if span_length is None or span_length >= length:
        return [(0, length)]
    stride = span_length - overlap
    starts = list(range(0, length - span_length, stride)) + [length - span_length]
    return [(start, start + span_length) for start in starts]


def shift_offset(step: int, span_length: int | None, multiple: int = 1) -> int:
    """Where the boundaries of :func:`plan_shifted_spans` start at a denoising ``step``.

    ``0`` on even steps, half a span (rounded down to a multiple of ``multiple``) on odd steps, so that each boundary
    of one step is in the middle of a span at the next.
    """
    if span_length is None or step % 2 == 0:
        return 0
    return span_length // 2 // multiple * multiple


def plan_shifted_spans(length: int, span_length: int | None, offset: int = 0) -> list[tuple[int, int]]:
    """Cut ``range(length)`` into non-overlapping spans whose boundaries lie at ``offset + k * span_length``.

    A piece shorter than half a span at either end is merged into its neighbour, so every span holds between
    ``span_length // 2`` and ``3 * span_length // 2`` positions (when ``length >= span_length``). A ``length`` not
    larger than ``span_length`` (or a ``span_length`` of ``None``) gives one span covering everything, as
    :func:`plan_spans` does. When ``length``, ``span_length`` and ``offset`` are multiples of some number, so are all
    span bounds.

    Args:
        length: number of positions to cover, at least 1.
        span_length: positions per span, or ``None`` for a single span.
        offset: first boundary, ``0 <= offset < span_length`` (see :func:`shift_offset`).

    Returns:
        ``[(start, end), ...]`` in increasing order, half-open, disjoint, first start 0, last end ``length``.
    """
    if length < 1:
        raise ValueError(f"cannot plan spans over {length} positions")
    if span_length is None or span_length >= length:
        return [(0, length)]
    if span_length < 1 or not 0 <= offset < span_length:
        raise ValueError(f"offset must be in [0, {span_length}) for spans of {span_length}, got {offset}")
    cuts = [0, *range(offset or span_length, length, span_length), length]
    shortest = span_length // 2
    if len(cuts) > 2 and cuts[1] - cuts[0] < shortest:
        del cuts[1]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] < shortest:
        del cuts[-2]
    return list(zip(cuts[:-1], cuts[1:]))


def _ramp(n: int, kind: Ramp) -> torch.Tensor:
    """Increasing weights of shape ``(n,)`` in (0, 1) with ``ramp + ramp.flip(0) == 1``."""
    t = torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)
    if kind == "linear":
        return t
    if kind == "cosine":
        return 0.5 - 0.5 * torch.cos(math.pi * t)
    raise ValueError(f"unknown ramp {kind!r}; use 'linear' or 'cosine'")


def span_weights(spans: list[tuple[int, int]], length: int, ramp: Ramp = "cosine") -> list[torch.Tensor]:
    """Blend weights of each span, normalised so that they sum to one at every position.

    Inside a span the raw weight is 1, except where it overlaps its predecessor (ramping up) or its successor
    (ramping down); ends of the whole range are never ramped. Raw weights are strictly positive, and dividing by their
    sum makes the result exact even where three spans meet.

    Args:
        spans: half-open ``(start, end)`` spans covering ``range(length)``, sorted by start (as from
            :func:`plan_spans`).
        length: size of the covered range.
        ramp: ``"linear"`` or ``"cosine"`` (smooth at both ends of the overlap).

    Returns:
        One float64 tensor of shape ``(end - start,)`` per span.
    """
    raw = []
    for i, (start, end) in enumerate(spans):
        weight = torch.ones(end - start, dtype=torch.float64)
        if i > 0 and spans[i - 1][1] > start:
            n = min(spans[i - 1][1], end) - start
            weight[:n] = _ramp(n, ramp)
        if i + 1 < len(spans) and spans[i + 1][0] < end:
            n = end - max(spans[i + 1][0], start)
            weight[-n:] = torch.minimum(weight[-n:], _ramp(n, ramp).flip(0))
        raw.append(weight)
    total = torch.zeros(length, dtype=torch.float64)
    for (start, end), weight in zip(spans, raw):
        total[start:end] += weight
    if not bool((total > 0).all()):
        raise ValueError(f"spans {spans} do not cover all {length} positions")
    return [weight / total[start:end] for (start, end), weight in zip(spans, raw)]


@dataclass(frozen=True)
class Region:
    """One window x tile of a ``(B, F, C, H, W)`` tensor, with its separable blend weights.

    ``frames``, ``rows`` and ``cols`` index the *input* (e.g. latents); the prediction for the region may be
    ``scale`` times larger spatially (e.g. decoded pixels), and the row/column weights are given at that resolution.

    Attributes:
        frames: ``(start, end)`` frame span.
        rows: ``(start, end)`` input row span.
        cols: ``(start, end)`` input column span.
        scale: spatial size of the prediction relative to the input.
        frame_weight: shape ``(frames[1] - frames[0],)``.
        row_weight: shape ``((rows[1] - rows[0]) * scale,)``.
        col_weight: shape ``((cols[1] - cols[0]) * scale,)``.
    """

    frames: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]
    scale: int
    frame_weight: torch.Tensor
    row_weight: torch.Tensor
    col_weight: torch.Tensor

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The region of an input laid out ``(B, F, C, H, W)`` -> ``(B, f, C, h, w)``."""
        return x[:, slice(*self.frames), :, slice(*self.rows), slice(*self.cols)]

    def weight(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """Blend weight broadcastable to the prediction: shape ``(1, f, 1, h * scale, w * scale)``."""
        w = self.frame_weight[:, None, None] * self.row_weight[None, :, None] * self.col_weight[None, None, :]
        return w[None, :, None].to(dtype=dtype, device=device)


def plan_regions(
    num_frames: int,
    height: int,
    width: int,
    window_length: int | None = None,
    window_overlap: int = 0,
    tile_size: int | tuple[int, int] | None = None,
    tile_overlap: int = 0,
    scale: int = 1,
    ramp: Ramp = "cosine",
) -> list[Region]:
    """Temporal windows x spatial tiles covering a ``(num_frames, height, width)`` volume, with blend weights.

    Regions are ordered window by window (all tiles of the first window, then the next), so a
    :class:`BlendAccumulator` can release frames before the next window's first frame.

    Args:
        num_frames: frames ``F`` of the input.
        height: input height ``H`` (latent rows).
        width: input width ``W`` (latent columns).
        window_length: frames per window; ``None`` or ``>= num_frames`` gives a single window (short videos).
        window_overlap: frames shared by consecutive windows.
        tile_size: tile size (``int`` or ``(h, w)``) in input pixels; ``None`` disables tiling.
        tile_overlap: input pixels shared by neighbouring tiles.
        scale: spatial scale of the predictions relative to the input (8 for VAE decoding of latents).
        ramp: ``"linear"`` or ``"cosine"`` weights inside overlaps (see :func:`span_weights`).

    Returns:
        The regions; their weights sum to exactly one (up to float rounding) at every output position.
    """
    tile_h, tile_w = (tile_size, tile_size) if tile_size is None or isinstance(tile_size, int) else tile_size
    windows = plan_spans(num_frames, window_length, window_overlap)
    row_spans = plan_spans(height, tile_h, tile_overlap)
    col_spans = plan_spans(width, tile_w, tile_overlap)
    frame_weights = span_weights(windows, num_frames, ramp)
    row_weights = span_weights([(s * scale, e * scale) for s, e in row_spans], height * scale, ramp)
    col_weights = span_weights([(s * scale, e * scale) for s, e in col_spans], width * scale, ramp)
    return [
        Region(frames, rows, cols, scale, fw, rw, cw)
        for frames, fw in zip(windows, frame_weights)
        for rows, rw in zip(row_spans, row_weights)
        for cols, cw in zip(col_spans, col_weights)
    ]


def plan_shifted_regions(
    num_frames: int,
    height: int,
    width: int,
    step: int,
    window_length: int | None = None,
    tile_size: int | None = None,
    multiple: int = 1,
) -> list[Region]:
    """Non-overlapping windows x tiles of a ``(num_frames, height, width)`` volume for denoising ``step``.

    Windows and tiles are :func:`plan_shifted_spans` at the offsets of :func:`shift_offset`: on odd steps every
    boundary moves by half a window (tile), so each is denoised from both sides over the course of sampling while
    every position is evaluated exactly once per step. All weights are one. Regions are ordered window by window.

    Args:
        num_frames: frames ``F`` of the latents.
        height: latent rows ``H`` (a multiple of ``multiple``).
        width: latent columns ``W`` (a multiple of ``multiple``).
        step: index of the denoising step.
        window_length: frames per window; ``None`` or ``>= num_frames`` gives a single window.
        tile_size: tile side in latent pixels (a multiple of ``multiple``); ``None`` disables tiling.
        multiple: tile bounds stay multiples of this (the U-Net's downsampling factor).

    Returns:
        Regions that partition the volume, each with weights of ones.
    """
    windows = plan_shifted_spans(num_frames, window_length, shift_offset(step, window_length))
    tile_offset = shift_offset(step, tile_size, multiple)
    row_spans = plan_shifted_spans(height, tile_size, tile_offset)
    col_spans = plan_shifted_spans(width, tile_size, tile_offset)

    def ones(span: tuple[int, int]) -> torch.Tensor:
        return torch.ones(span[1] - span[0], dtype=torch.float64)

    return [
        Region(frames, rows, cols, 1, ones(frames), ones(rows), ones(cols))
        for frames in windows
        for rows in row_spans
        for cols in col_spans
    ]


class BlendAccumulator:
    """Weighted sum of region predictions into a ``(B, F, C, H, W)`` buffer that can be drained frame by frame.

    The buffer only spans frames not yet released: :meth:`add` grows it to the region's last frame and
    :meth:`pop` hands back (and forgets) the leading frames that are complete, so streaming over windows holds at
    most about one window of frames at a time.

    Args:
        batch_size: ``B``.
        channels: ``C`` of the predictions.
        height: ``H`` of the full prediction (input height x ``scale``).
        width: ``W`` of the full prediction.
        dtype: accumulation dtype (use float32 for half-precision models).
        device: buffer device.
        num_frames: frames allocated up front (when all frames are accumulated before popping, this avoids growing
            the buffer region by region).
    """

    def __init__(
        self,
        batch_size: int,
        channels: int,
        height: int,
        width: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        num_frames: int = 0,
    ) -> None:
        self._shape = (batch_size, 0, channels, height, width)
        self._buffer = torch.zeros((batch_size, num_frames, channels, height, width), dtype=dtype, device=device)
        self._start = 0

    @property
    def start(self) -> int:
        """Index of the first frame still held (frames before it were popped)."""
        return self._start

    @property
    def end(self) -> int:
        """One past the last frame any region has touched so far."""
        return self._start + self._buffer.shape[1]

    def add(self, region: Region, value: torch.Tensor) -> None:
        """Add ``region.weight * value``.

        Args:
            region: where ``value`` belongs; its first frame must not have been popped.
            value: prediction of shape ``(B, f, C, h * scale, w * scale)``.
        """
        start, end = region.frames
        if start < self._start:
            raise ValueError(f"frame {start} was already popped (buffer starts at frame {self._start})")
        if end > self.end:
            grow = torch.zeros(
                (self._shape[0], end - self.end, *self._shape[2:]), dtype=self._buffer.dtype, device=self._buffer.device
            )
            self._buffer = torch.cat([self._buffer, grow], dim=1)
        s = region.scale
        y0, y1 = region.rows[0] * s, region.rows[1] * s
        x0, x1 = region.cols[0] * s, region.cols[1] * s
        target = self._buffer[:, start - self._start : end - self._start, :, y0:y1, x0:x1]
        target += value.to(self._buffer.dtype) * region.weight(self._buffer.dtype, self._buffer.device)

    def pop(self, until: int | None = None) -> torch.Tensor:
        """Release the held frames before ``until`` (all held frames when ``None``).

        Returns:
            The merged frames ``[start, until)``, shape ``(B, until - start, C, H, W)``.
        """
        count = self._buffer.shape[1] if until is None else until - self._start
        if not 0 <= count <= self._buffer.shape[1]:
            raise ValueError(f"cannot pop until frame {until}: holding frames [{self._start}, {self.end})")
        out, self._buffer = self._buffer[:, :count], self._buffer[:, count:]
        self._start += count
        return out
