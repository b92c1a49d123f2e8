"""Segments and windows of the denoising loop: what is denoised together, and what is held between segments.

A video is denoised **segment by segment**: a segment is ``segment_length`` windows of new frames
(:attr:`WindowPlan.stride` each), and it runs every denoising step before the next one starts, so only one segment's
conditioning, noise and latents are ever held. Each
segment after the first starts with ``window_overlap`` **shared** frames, the last frames of the previous segment:
they are denoised again from the same initial noise and, at every step, the new segment's prediction for them is
blended with the one the previous segment made at that step (kept for these few frames only), with the ramps of
overlapping windows. A segment boundary is thus blended exactly as a window boundary, and the shared frames are
emitted once, from the later segment.

Inside a segment the latents `(n, C, h, w)` are cut into windows x tiles per step by a :class:`WindowPlan`:

* ``"blended"``: windows overlapping by ``window_overlap`` frames and tiles overlapping by
  ``tile_overlap``, their predictions blended at every step (:func:`~sete_vsr.models.blending.plan_regions`);
* ``"shifted"`` (the default): windows and tiles that do not overlap and whose boundaries move by half a window
  (tile) on alternate steps (:func:`~sete_vsr.models.blending.plan_shifted_regions`): every frame is evaluated once per step, every
  boundary of one step lies inside a window at the next. The first steps (a fifth by default,
  :func:`default_blended_steps`) use the blended windows and tiles: without them the first, noisiest steps' boundaries
  leave a seam that later steps do not repair (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.blending import (
    Region,
    plan_regions,
    plan_shifted_regions,
    plan_shifted_spans,
    plan_spans,
    shift_offset,
    span_weights,
)


Span = tuple[int, int]


@dataclass(frozen=True)
class WindowPlan:
    """How the latents of a segment are cut into windows x tiles at each denoising step.

    Attributes:
        mode: ``"shifted"`` or ``"blended"`` (see the module docstring).
        height: latent rows ``h`` of a frame.
        width: latent columns ``w`` of a frame.
        window_length: frames per window.
        window_overlap: frames shared by consecutive windows (``"blended"`` only).
        tile_size: latent tile side, or ``None`` for whole frames.
        tile_overlap: latent pixels shared by neighbouring tiles (``"blended"`` only).
        multiple: shifted tile bounds stay multiples of this (the U-Net's downsampling factor).
        blended_steps: ``"shifted"`` only: the first steps use the blended windows and tiles instead, so that the
            noisiest steps, which shape the result most, see no boundary.
    """

    mode: str
    height: int
    width: int
    window_length: int
    window_overlap: int
    tile_size: int | None
    tile_overlap: int
    multiple: int = 1
    blended_steps: int = 0

    @property
    def stride(self) -> int:
        """Frames from one window's start to the next one's: a segment of ``k`` windows brings ``k * stride`` new
        frames, so its windows tile it as they would tile the whole video."""
        return self.window_length - (self.window_overlap if self.mode == "blended" else 0)

    def tiles(self) -> list[tuple[Span, Span]]:
        """Every latent tile ``(rows, cols)`` some step uses, each once: the tiles the conditioning is computed for."""
        offsets = []  # None: the blended tiles; then the shifted ones of even steps, and of odd steps that differ
        if self.mode == "blended" or self.blended_steps:
            offsets.append(None)
        if self.mode == "shifted":
            offsets += [shift_offset(step, self.tile_size, self.multiple) for step in (0, 1)]
        tiles = []
        for offset in offsets:
            for rows in self._spans(self.height, offset):
                for cols in self._spans(self.width, offset):
                    if (rows, cols) not in tiles:
                        tiles.append((rows, cols))
        return tiles

    def _spans(self, length: int, offset: int | None) -> list[Span]:
        if offset is None:
            return plan_spans(length, self.tile_size, self.tile_overlap)
        return plan_shifted_spans(length, self.tile_size, offset)

    def regions(self, num_frames: int, step: int) -> list[Region]:
        """The windows x tiles of ``num_frames`` frames at denoising ``step``, window by window."""
        if self.mode == "blended" or step < self.blended_steps:
            return plan_regions(
                num_frames, self.height, self.width, self.window_length, self.window_overlap, self.tile_size,
                self.tile_overlap,
            )
        return plan_shifted_regions(
            num_frames, self.height, self.width, step, self.window_length, self.tile_size, self.multiple
        )


def default_blended_steps(num_steps: int) -> int:
    """Steps of a ``"shifted"`` run that use blended windows first: a fifth of ``num_steps``, at least one.

    Measured on the tiny random model (24 frames, windows of 6, DDIM): the largest change between neighbouring frames
    over the median one is 1.06 blended, 2.25 shifted, and 1.16 with the first 4 of 20 steps blended (1.37 with 2).
    """
    return -(-num_steps // 5)


def handoff_weights(shared: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend weights `(s, 1, 1, 1)` of the previous and of the next segment on their `s` shared frames: the ramps of two
    windows overlapping by `s` frames (:func:`~sete_vsr.models.blending.span_weights`), summing to one."""
    previous, following = span_weights([(0, shared), (0, shared)], shared)
    return previous.float().view(-1, 1, 1, 1), following.float().view(-1, 1, 1, 1)


@dataclass
class Segment:
    """The frames of one segment, the ``shared`` frames of the previous segment first; every tensor has frames first.

    The last frames of a segment are shared with the next one, as the overlap of two windows: the next segment
    denoises them again from the same initial noise, blending at every step its prediction with the previous
    segment's (recorded in ``handoff``), and only its result is emitted. So the blend is the one of overlapping windows,
    while only one segment (and the handoff of a few frames) is ever held.

    Attributes:
        lr_latents: `(n, C, h, w)` LR latents.
        semantic: `(n, n_tiles, 256, g, g)` pooled SAM2 embeddings of each tile of :meth:`WindowPlan.tiles`, or
            ``None`` for a U-Net without SeAM.
        noise: `(n, C, h, w)` initial noise (unscaled), float32.
        handoff: the previous segment's noise prediction for the `s` shared frames at each step, `(s, C, h, w)`
            each (empty for the first segment).
        shared_latents: `(s, C, h, w)` the previous segment's own result for the shared frames, emitted if no next
            segment comes.
        decode_context: `(k, C, h, w)` final latents of the frames emitted just before this segment, put in front of
            its frames when decoding so the temporal decoder sees their neighbours.
    """

    lr_latents: torch.Tensor
    semantic: torch.Tensor | None
    noise: torch.Tensor
    handoff: list[torch.Tensor]
    shared_latents: torch.Tensor
    decode_context: torch.Tensor

    @property
    def num_frames(self) -> int:
        return len(self.noise)

    @property
    def shared(self) -> int:
        """Frames at the start shared with the previous segment."""
        return len(self.shared_latents)

    def then(self, lr_latents: torch.Tensor, semantic: torch.Tensor | None, noise: torch.Tensor) -> "Segment":
        """The next segment: this one's frames (as shared frames) followed by new frames (tensors of those only)."""
        return Segment(
            torch.cat([self.lr_latents, lr_latents]),
            None if semantic is None else torch.cat([self.semantic, semantic]),
            torch.cat([self.noise, noise]),
            self.handoff,
            self.shared_latents,
            self.decode_context,
        )

    def tail(self, count: int, latents: torch.Tensor, handoff: list[torch.Tensor], decode_context: torch.Tensor):
        """What the next segment needs of this one, its last ``count`` frames shared.

        Args:
            count: frames shared with the next segment.
            latents: `(n, C, h, w)` this segment's denoised latents.
            handoff: this segment's prediction for its last ``count`` frames at each step.
            decode_context: `(k, C, h, w)` final latents of the last frames emitted.
        """
        start = self.num_frames - count
        return Segment(
            self.lr_latents[start:],
            None if self.semantic is None else self.semantic[start:],
            self.noise[start:],
            handoff,
            latents[start:],
            decode_context,
        )
