"""The denoising loop of one video, segment by segment: encode, denoise every step, decode, emit.

For a video of `T` LR frames of `H x W` (padded to `Hp x Wp`, see ``pad_multiple``), a segment is ``segment_length``
windows of new frames, `n` in all, preceded by the `c` last frames of the previous segment (``window_overlap``),
shared as the overlap of two windows (:mod:`sete_vsr.pipelines.segments`). For each segment:

1. its new frames are read and encoded, one window at a time: the LR frames are upsampled x4 (bicubic) and
   VAE-encoded to LR latents `(n, 4, h, w)` with `h = 4 Hp / vae_scale_factor`, and SAM2 embeds each latent tile's
   LR region, pooled to the U-Net's semantic token grid (`(n, n_tiles, 256, g, g)`);
2. their initial noise `(n, 4, h, w)` is drawn (one draw per segment, in order, whatever the video's length) and
   sampling starts from it, or from the LR latents noised to the starting level (``strength``,
   :mod:`sete_vsr.pipelines.sampling`);
3. every denoising step predicts the noise of the `c + n` frames window by window and, for large frames, tile by tile
   (blended overlapping windows and tiles, or shifted non-overlapping ones, see ``window_mode``), with
   classifier-free guidance when asked, blends the `c` shared frames with the previous segment's prediction at that
   step, and the scheduler steps the segment;
4. the temporal VAE decodes the frames no later segment will change in chunks of frames (and tiles), a few frames
   emitted before in front for temporal context, and they are streamed out: optionally colour-corrected against the
   upsampled LR frames (read again from the source), then written to a writer or collected.

Only one segment is held at a time, plus the shared frames' predictions at each step, so memory does not depend on
the video's length when the frames go to a writer.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from ..data.video_io import VideoReader
from ..errors import SeteVSRError
from ..models.blending import BlendAccumulator
from ..models.lr_inputs import SCALE, bicubic_upsample, encode_lr_latents, semantic_embeddings
from .color import color_correct
from .sampling import Sampling
from .segments import Segment, WindowPlan, default_blended_steps, handoff_weights
from .video_batch import batched, collect, pad_frames, to_tensor


@dataclass(frozen=True)
class CallSettings:
    """What one call does to each of its videos (its arguments, defaults resolved and checked).

    Attributes:
        sampling: timesteps, strength and guidance.
        text: `(1, L, D)` prompt embedding, `(2, L, D)` negative then positive prompt with guidance, or ``None``
            for the U-Net's stored empty prompt.
        window_mode: ``"blended"`` or ``"shifted"``.
        window_length: frames denoised together.
        window_overlap: frames shared by consecutive windows and segments.
        segment_length: windows of new frames per segment.
        blended_steps: ``"shifted"`` mode: first steps run with blended windows; ``None``: a fifth of the steps.
        tiles: latent ``(tile_size or None, tile_overlap)``.
        decode: ``(chunk_size, chunk_overlap, tile_size or None, tile_overlap)`` of the VAE decoder.
        color_fix: ``None``, ``"wavelet"`` or ``"adain"``.
        output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"``.
        callback: ``callback(pipe, step, timestep, callback_kwargs)`` after each step, or ``None``.
        callback_inputs: names of the tensors in ``callback_kwargs``.
    """

    sampling: Sampling
    text: torch.Tensor | None
    window_mode: str
    window_length: int
    window_overlap: int
    segment_length: int
    blended_steps: int | None
    tiles: tuple[int | None, int]
    decode: tuple[int, int, int | None, int]
    color_fix: str | None
    output_type: str
    callback: Callable | None
    callback_inputs: tuple[str, ...]


class SegmentedSampling:
    """The per-video loop of :class:`~sete_vsr.pipelines.pipeline.SeTeVSRPipeline` (its ``vae``, ``unet``,
    ``scheduler`` and ``semantic_encoder``)."""

    def _progress(self, desc: str, total: int | None, unit: str) -> tqdm:
        config = {"disable": False, **getattr(self, "_progress_bar_config", {}), "desc": desc, "unit": unit}
        return tqdm(total=total, **config)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """The latent `(h, w)` of LR frames of `height x width` (after padding to :attr:`pad_multiple`)."""
        pad = self.pad_multiple
        return tuple(-(-side // pad) * pad * SCALE // self.vae_scale_factor for side in (height, width))

    def encode_conditioning(
        self,
        frames: Iterable[np.ndarray],
        window_length: int,
        vae_batch_size: int,
        device: torch.device,
        tiles: list[tuple[tuple[int, int], tuple[int, int]]] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The conditioning of some frames: LR latents of each frame and pooled SAM2 embeddings of each (frame, tile).

        Both come from :mod:`sete_vsr.models.lr_inputs`, the functions training calls on its crops: LR latents of
        the whole (padded) frames, and for each latent tile the SAM2 embedding of the LR region that tile covers, so
        that a tile attends to the semantics of what it denoises, as a training crop does. A frame the size of a
        training crop (one tile) gets exactly the conditioning of that crop in training.

        Args:
            frames: `n` LR frames `(H, W, 3)` float32 in [0, 1] (e.g. one segment's frames from the reader), read
                and encoded ``window_length`` at a time.
            window_length: frames read and encoded together.
            vae_batch_size: frames per VAE-encoder pass.
            device: execution device.
            tiles: latent ``((row_start, row_end), (col_start, col_end))`` of each tile; ``None``: one whole-frame tile.

        Returns:
            ``(lr_latents, semantic)``: `(n, C, h, w)` LR latents (times the VAE's ``scaling_factor``) and
            `(n, n_tiles, 256, g, g)` SAM2 embeddings pooled to the U-Net's token grid (``None`` for a U-Net without
            SeAM), both in the U-Net's dtype; ``(None, None)`` when there are no frames.
        """
        dtype = self.unet.dtype
        grid = self.unet.semantic_grid_size if self.unet.config.use_seam else None  # no SeAM: no SAM2 pass
        # The LR pixels of each latent tile (exact for VAE scale factors of 4 and more, rounded outwards otherwise).
        to_lr = self.vae_scale_factor / SCALE
        lr_regions = [(slice(None), slice(None))]
        if tiles is not None:
            lr_regions = [
                (slice(int(top * to_lr), math.ceil(bottom * to_lr)), slice(int(left * to_lr), math.ceil(right * to_lr)))
                for (top, bottom), (left, right) in tiles
            ]
        lr_latents, semantic = [], []
        for chunk in batched(frames, window_length):
            batch = pad_frames(to_tensor(chunk, device), self.pad_multiple) * 2 - 1  # (k, 3, Hp, Wp) in [-1, 1]
            if grid is not None:
                per_tile = [
                    semantic_embeddings(self.semantic_encoder, batch[..., rows, cols], grid).to(device, dtype)
                    for rows, cols in lr_regions
                ]
                semantic.append(torch.stack(per_tile, dim=1))
            for part in batch.split(vae_batch_size):
                lr_latents.append(encode_lr_latents(self.vae, part).to(device, dtype))
        if not lr_latents:
            return None, None
        return torch.cat(lr_latents), torch.cat(semantic) if semantic else None

    def prepare_latents(
        self,
        shape: tuple[int, int, int, int],
        generator: torch.Generator | None,
        device: torch.device,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial noise `(n, C, h, w)` in float32, unscaled: drawn (one draw for the `n` new frames of a segment), or
        ``latents``, checked."""
        if latents is None:
            return randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        if tuple(latents.shape) != shape:
            raise SeteVSRError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        return latents.to(device, torch.float32)

    def predict_noise(
        self,
        latent_model_input: torch.Tensor,
        t: torch.Tensor,
        lr_latents: torch.Tensor,
        semantic: torch.Tensor | None,
        prompt_embeds: torch.Tensor | None,
        regions: list,
        tile_index: dict[tuple[tuple[int, int], tuple[int, int]], int] | None = None,
        sampling: Sampling | None = None,
    ) -> torch.Tensor:
        """The U-Net's prediction for a segment, over its temporal windows and spatial tiles (blended where they
        overlap).

        Args:
            latent_model_input: `(n, C, h, w)` scaled noisy latents.
            t: current timestep.
            lr_latents: `(n, 4, h, w)` LR latents.
            semantic: `(n, n_tiles, 256, g, g)` pooled SAM2 embeddings of each tile's LR region, or ``None``.
            prompt_embeds: `(1, L, D)`, `(2, L, D)` (negative, positive) with guidance, or ``None`` for the stored
                empty prompt.
            regions: the :class:`~sete_vsr.models.blending.Region` windows x tiles.
            tile_index: the index on ``semantic``'s tile axis of each region's ``(rows, cols)``; default: tiles in
                the order they first appear in ``regions``.
            sampling: with ``sampling.guided``, each window runs once per prompt (batched) and the predictions are
                guided; default: no guidance.

        Returns:
            `(n, C_out, h, w)` float32 prediction.
        """
        num_frames, _, height, width = latent_model_input.shape
        guided = sampling is not None and sampling.guided
        copies = 2 if guided else 1
        video = latent_model_input[None]
        lr_video = lr_latents[None]
        accumulator = BlendAccumulator(
            1, self.unet.config.out_channels, height, width, torch.float32, latent_model_input.device, num_frames
        )
        tile_index = {} if tile_index is None else tile_index
        for region in regions:
            tile = tile_index.setdefault((region.rows, region.cols), len(tile_index))
            start, end = region.frames
            sample = region.crop(video)[0].repeat(copies, 1, 1, 1)
            prediction = self.unet(
                sample.to(self.unet.dtype),
                t,
                lr_latents=region.crop(lr_video)[0].repeat(copies, 1, 1, 1),
                semantic_embeds=None if semantic is None else semantic[start:end, tile].repeat(copies, 1, 1, 1),
                num_frames=end - start,
                encoder_hidden_states=prompt_embeds,
            ).sample
            if guided:
                prediction = sampling.guide(prediction.float())
            accumulator.add(region, prediction[None])
        return accumulator.pop()[0]

    def denoise_segment(
        self,
        segment: Segment,
        plan: WindowPlan,
        settings: CallSettings,
        keep: int,
        tile_index: dict[tuple[tuple[int, int], tuple[int, int]], int],
        generator: torch.Generator | None,
        progress_bar: tqdm,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run every denoising step on one segment, its shared frames blended with the previous segment's predictions.

        Args:
            segment: the segment's frames, shared ones first (:class:`~sete_vsr.pipelines.segments.Segment`).
            plan: how the frames are cut into windows x tiles at each step.
            settings: the call's sampling, prompt and callback (the scheduler is set anew, so multistep schedulers
                start afresh).
            keep: last frames whose prediction at each step is handed to the next segment.
            tile_index: index of each tile of ``plan`` on the segment's semantic tile axis.
            generator: for the scheduler's own noise (DDPM).
            progress_bar: advanced by one per step.

        Returns:
            ``(latents, handoff)``: `(n, C, h, w)` float32 denoised latents, and the prediction `(keep, C, h, w)` for
            the last ``keep`` frames at each step.
        """
        sampling = settings.sampling
        timesteps = sampling.set_timesteps(self.scheduler, segment.noise.device)
        self._num_timesteps = len(timesteps)
        extra_step_kwargs = {}
        if "generator" in inspect.signature(self.scheduler.step).parameters:
            extra_step_kwargs["generator"] = generator
        shared = segment.shared
        if shared:
            previous_weight, weight = (w.to(segment.noise.device) for w in handoff_weights(shared))
        latents = sampling.initial_latents(self.scheduler, segment.noise, segment.lr_latents, timesteps)
        handoff = []
        for i, t in enumerate(timesteps):
            if self.interrupt:
                break
            latent_model_input = self.scheduler.scale_model_input(latents, t)
            regions = plan.regions(segment.num_frames, i)
            noise_pred = self.predict_noise(
                latent_model_input, t, segment.lr_latents, segment.semantic, settings.text, regions, tile_index,
                sampling,
            )
            if keep:
                handoff.append(noise_pred[len(noise_pred) - keep :].clone())
            if shared:  # the boundary with the previous segment, blended as two overlapping windows
                noise_pred[:shared] = previous_weight * segment.handoff[i] + weight * noise_pred[:shared]
            latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs).prev_sample
            if settings.callback is not None:
                callback_kwargs = {}
                for name in settings.callback_inputs:
                    callback_kwargs[name] = locals()[name]
                callback_outputs = settings.callback(self, i, t, callback_kwargs)
                latents = callback_outputs.pop("latents", latents)
            progress_bar.update()
        return latents, handoff

    def upscale_video(
        self,
        reader: VideoReader,
        settings: CallSettings,
        generator: torch.Generator | None,
        latents: torch.Tensor | None,
        writer: Any | None,
        desc: str = "denoise",
    ) -> list[Any] | np.ndarray | torch.Tensor | None:
        """Super-resolve one video segment by segment (see the module docstring).

        Args:
            reader: the LR video.
            settings: what the call does (:class:`CallSettings`).
            generator: for the initial noise and the scheduler's own noise.
            latents: initial noise `(T, 4, h, w)` (unscaled) of the whole video, instead of drawing it.
            writer: where frames go as `(4H, 4W, 3)` uint8 (``write(frame)``), or ``None`` to collect them.
            desc: the progress bar's label.

        Returns:
            the collected frames by ``settings.output_type`` (see :func:`~sete_vsr.pipelines.video_batch.collect`),
            or ``None`` when they went to ``writer``.
        """
        device = self._execution_device
        height, width = self.latent_size(reader.info.height, reader.info.width)
        tile_size, tile_overlap = settings.tiles
        steps = len(settings.sampling.set_timesteps(self.scheduler, device))
        blended_steps = default_blended_steps(steps) if settings.blended_steps is None else settings.blended_steps
        plan = WindowPlan(
            settings.window_mode, height, width, settings.window_length, settings.window_overlap, tile_size,
            tile_overlap, multiple=2**self.unet.num_upsamplers, blended_steps=blended_steps,
        )  # fmt: skip
        tiles = plan.tiles()
        tile_index = {tile: i for i, tile in enumerate(tiles)}
        new_per_segment = settings.segment_length * plan.stride
        shape = (self.unet.config.in_channels, height, width)
        decode_chunk_size, decode_chunk_overlap = settings.decode[:2]
        source = iter(reader)
        color = settings.color_fix is not None and settings.output_type != "latent"
        references = iter(reader) if color else None
        collected, held, num_frames = [], None, 0
        total_steps = None
        if reader.info.num_frames is not None:
            total_steps = -(-reader.info.num_frames // new_per_segment) * steps

        def emit(segment_latents: torch.Tensor, decode_context: torch.Tensor) -> None:
            """Decode (after ``decode_context``) and write or collect final latents `(k, C, h, w)`."""
            if settings.output_type == "latent":
                collected.append(segment_latents)
                return
            blocks = self._decode_segment(
                torch.cat([decode_context, segment_latents]), len(decode_context), settings, reader, references
            )
            for frames in blocks:
                collected.extend(self._emit(frames, settings.output_type, writer))

        with self._progress(desc, total_steps, "step") as progress_bar:
            while not self.interrupt:
                # Encode the segment's new frames, draw their noise (or take theirs from `latents`).
                lr_latents, semantic = self.encode_conditioning(
                    islice(source, new_per_segment), settings.window_length, decode_chunk_size, device, tiles
                )
                if lr_latents is None:
                    break
                count = len(lr_latents)
                given = None if latents is None else latents[num_frames : num_frames + count]
                noise = self.prepare_latents((count, *shape), generator, device, given)
                if held is None:
                    nothing = noise[:0]
                    segment = Segment(lr_latents, semantic, noise, [], nothing, nothing)
                else:
                    segment = held.then(lr_latents, semantic, noise)
                num_frames += count
                del lr_latents, semantic, noise
                # The last frames are shared with the next segment, unless this one is certainly the last.
                keep = min(settings.window_overlap, segment.num_frames - 1) if count == new_per_segment else 0

                # Denoise the segment: all steps, windows x tiles of the plan, the shared frames blended.
                denoised, handoff = self.denoise_segment(segment, plan, settings, keep, tile_index, generator,
                                                         progress_bar)

                # Decode the frames no later segment changes (streamed), colour-correct, write or collect.
                final = denoised[: len(denoised) - keep]
                emit(final, segment.decode_context)
                recent = torch.cat([segment.decode_context, final])
                held = segment.tail(keep, denoised, handoff, recent[max(0, len(recent) - decode_chunk_overlap) :])
                del segment, denoised, handoff
            if held is not None and held.shared:  # no segment came after the last one: its own result stands
                emit(held.shared_latents, held.decode_context)
        if num_frames == 0:
            raise SeteVSRError(f"no frames in {reader.info.source or 'the input'}")
        if latents is not None and not self.interrupt and len(latents) != num_frames:
            raise SeteVSRError(f"latents must have shape {(num_frames, *shape)}, got {tuple(latents.shape)}")
        return collect(collected, settings.output_type) if writer is None else None

    def _decode_segment(
        self,
        latents: torch.Tensor,
        context: int,
        settings: CallSettings,
        reader: VideoReader,
        references: Iterator[np.ndarray] | None,
    ) -> Iterator[torch.Tensor]:
        """Decode `(c + n, C, h, w)` latents in chunks, the first `c` (frames emitted before) only as temporal context,
        and yield the `n` others block by block: `(k, 3, 4H, 4W)` float32 in [0, 1], colour-corrected against the
        next frames of ``references`` when ``settings.color_fix`` is set."""
        out_height, out_width = reader.info.height * SCALE, reader.info.width * SCALE
        chunk_size, chunk_overlap, tile_size, tile_overlap = settings.decode
        num_frames = len(latents)
        blocks = self.vae.iter_decode(
            latents.to(self.vae.dtype) / self.vae.config.scaling_factor,
            num_frames=num_frames,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap if chunk_size < num_frames else 0,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
        )
        skip = context  # decoded context frames were emitted before
        for block in blocks:
            frames = (block[0, skip:, :, :out_height, :out_width].float() / 2 + 0.5).clamp(0, 1)  # (k, 3, 4H, 4W)
            skip = max(0, skip - block.shape[1])
            if not len(frames):
                continue
            if references is not None:
                lr = to_tensor(list(islice(references, len(frames))), frames.device)
                upsampled = bicubic_upsample(lr, value_range=(0.0, 1.0))
                frames = color_correct(frames, upsampled, settings.color_fix).clamp(0, 1)
            yield frames

    @staticmethod
    def _emit(frames: torch.Tensor, output_type: str, writer: Any | None) -> list:
        """Write `(k, 3, 4H, 4W)` frames in [0, 1] to ``writer`` (as uint8, nothing kept), or return what to collect."""
        if writer is not None:
            for frame in frames.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy():
                writer.write(frame)
            return []
        if output_type == "pt":
            return [frames.cpu()]
        return [frames.permute(0, 2, 3, 1).cpu().numpy()]
