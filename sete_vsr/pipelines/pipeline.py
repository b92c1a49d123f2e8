"""The SeTe-VSR diffusion pipeline: x4 real-world video super-resolution with semantic and temporal guidance.

One call runs, for a video of `T` LR frames of `H x W` (padded to `Hp x Wp`, see :meth:`SeTeVSRPipeline.pad_multiple`),
segment by segment (:mod:`sete_vsr.pipelines.segments`): a segment is ``segment_length`` windows of new frames, `n` in
all, preceded by the `c` last frames of the previous segment (``window_overlap``), shared as the overlap of two
windows. For each segment:

1. its new frames are read and encoded, one window at a time: the LR frames are upsampled x4 (bicubic) and
   VAE-encoded to LR latents `(n, 4, h, w)` with `h = 4 Hp / vae_scale_factor`, and SAM2 embeds each latent tile's
   LR region, pooled to the U-Net's semantic token grid (`(n, n_tiles, 256, g, g)`);
2. their initial noise `(n, 4, h, w)` is drawn (one draw per segment, in order, whatever the video's length);
3. every denoising step predicts the noise of the `c + n` frames window by window and, for large frames, tile by tile
   (blended overlapping windows and tiles, or shifted non-overlapping ones, see ``window_mode``), blends the `c`
   shared frames with the previous segment's prediction at that step, and the scheduler steps the segment;
4. the temporal VAE decodes the frames no later segment will change in chunks of frames (and tiles), a few frames
   emitted before in front for temporal context, and they are streamed out: optionally colour-corrected against the
   upsampled LR frames (read again from the source), then written to ``write_to`` or collected by ``output_type``.

Only one segment is held at a time, plus the shared frames' predictions at each step, so memory does not depend on
the video's length when the frames go to a writer.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm
from transformers import CLIPTextModel, CLIPTokenizer

from ..data.video_io import VideoReader, open_output
from ..errors import SeteVSRError
from ..models.blending import BlendAccumulator
from ..models.lr_inputs import SCALE, bicubic_upsample, encode_lr_latents, semantic_embeddings
from ..models.semantic_encoder import SemanticEncoder
from ..models.temporal_vae import TemporalAutoencoderKL
from ..models.unet import SeTeUNetModel
from ..options import COLOR_FIXES, WINDOW_MODES
from .color import color_correct
from .components import sd21_components
from .hub import entry_is_ours, keep_or_write_card, write_entry
from .model_card import build_model_card, write_model_card
from .model_folder import check_model_folder
from .prompt import encode_prompt
from .segments import Segment, WindowPlan, handoff_weights

OUTPUT_TYPES = ("pil", "np", "pt", "latent")

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from sete_vsr import SeTeVSRPipeline

        >>> pipe = SeTeVSRPipeline.from_pretrained("path/to/sete-vsr", dtype=torch.float16).to("cuda")
        >>> generator = torch.Generator("cuda").manual_seed(0)
        >>> # Stream a long video straight to a file: decoded frames are never all held.
        >>> pipe("input.mp4", num_inference_steps=50, generator=generator, write_to="output.mp4")
        >>> # Or get the frames of a short clip.
        >>> frames = pipe("input.mp4", max_frames=16, output_type="pil").frames
        ```
"""


@dataclass
class SeTeVSRPipelineOutput(BaseOutput):
    """Output of :class:`SeTeVSRPipeline`.

    Args:
        frames: the super-resolved frames of the one input video, by ``output_type``: a list of `T` PIL images,
            a float32 array `(T, 4H, 4W, 3)` or tensor `(T, 3, 4H, 4W)` in [0, 1], or the denoised latents
            `(T, 4, h, w)` (padded size, scaled by the VAE's ``scaling_factor``) for ``"latent"``; ``None`` when the
            frames were written to ``write_to``.
        fps: frames per second of the input (``None`` for frame folders and in-memory frames).
        path: where the frames were written, when ``write_to`` was a path.
    """

    frames: list[PIL.Image.Image] | np.ndarray | torch.Tensor | None
    fps: Fraction | None = None
    path: Path | None = None


def _pad_frames(frames: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad `(N, C, H, W)` at the bottom and right to multiples of ``multiple`` (mirrored, or replicated when the frame
    is smaller than the padding)."""
    height, width = frames.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == pad_w == 0:
        return frames
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(frames, (0, pad_w, 0, pad_h), mode=mode)


def _batched(iterator: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(iterator)
    while batch := list(islice(iterator, size)):
        yield batch


def _to_tensor(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """`n` frames `(H, W, 3)` (float in [0, 1] or uint8) -> `(n, 3, H, W)` float32 in [0, 1] on ``device``."""
    batch = torch.from_numpy(np.stack(frames)).to(device).permute(0, 3, 1, 2)
    return batch.float() / 255 if batch.dtype == torch.uint8 else batch.float().contiguous()


class SeTeVSRPipeline(DiffusionPipeline, StableDiffusionLoraLoaderMixin):
    r"""Diffusion pipeline for x4 real-world video super-resolution (SeTe-VSR).

    Components:
        vae ([`TemporalAutoencoderKL`]): Stable Diffusion 2.1's VAE with temporal layers in its decoder.
        unet ([`SeTeUNetModel`]): the SD 2.1 U-Net with LR conditioning, SeAM and (stage 2) temporal modules.
        scheduler ([`SchedulerMixin`]): DDPM with 50 steps in the paper; any diffusers scheduler can be swapped in
            (e.g. ``DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)`` for fewer steps).
        semantic_encoder ([`SemanticEncoder`]): the frozen SAM2 image encoder.
        text_encoder ([`~transformers.CLIPTextModel`], *optional*): SD 2.1's text encoder, for an optional prompt.
        tokenizer ([`~transformers.CLIPTokenizer`], *optional*): its tokenizer.
        assembled_from (`dict`, *optional*): how the pipeline was built (sources, preset), for the model card.

    Without a prompt the U-Net uses its stored empty-prompt embedding, so the text encoder is not needed at inference.
    Load with ``SeTeVSRPipeline.from_pretrained(...)``: ``model_index.json`` names the package's classes as
    ``["sete_vsr", "<ClassName>"]``, importable with no remote code.
    """

    # the chain offloads each model when the next one runs: the U-Net leaves the device when the VAE starts decoding
    model_cpu_offload_seq = "text_encoder->semantic_encoder->unet->vae"
    _optional_components = ["text_encoder", "tokenizer"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        vae: TemporalAutoencoderKL,
        unet: SeTeUNetModel,
        scheduler: SchedulerMixin,
        semantic_encoder: SemanticEncoder,
        text_encoder: CLIPTextModel | None = None,
        tokenizer: CLIPTokenizer | None = None,
        assembled_from: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            unet=unet,
            scheduler=scheduler,
            semantic_encoder=semantic_encoder,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
        )
        self.register_to_config(assembled_from=assembled_from)

    # ------------------------------------------------------------------------------------------ construction

    def register_to_config(self, **kwargs):
        """Record components as ``["sete_vsr", "<ClassName>"]`` rather than their module path.

        diffusers writes a component defined outside its known libraries under its full module path
        (``sete_vsr.models.unet``); the top-level name is the package's public, stable address, and diffusers finds the
        loading method there (``sete_vsr`` re-exports ``ModelMixin`` for that lookup).
        """
        super().register_to_config(**{name: _public_library(value) for name, value in kwargs.items()})

    @classmethod
    def from_sd21(cls, *args, torch_dtype: torch.dtype | None = None, **kwargs) -> "SeTeVSRPipeline":
        """Assemble an untrained pipeline from Stable Diffusion 2.1 and SAM2.

        Args:
            *args, **kwargs: as :func:`sete_vsr.pipelines.components.sd21_components` (``base``, ``semantic``,
                ``temporal``, ``window_length``, ``keep_text_encoder``, component options, ``from_pretrained``
                arguments).
            torch_dtype: dtype of the returned pipeline (conversion runs in the sources' dtype).
        """
        pipe = cls(**sd21_components(*args, **kwargs))
        return pipe.to(torch_dtype) if torch_dtype is not None else pipe

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "SeTeVSRPipeline":
        """Load a saved pipeline (safetensors only); a local folder with a missing component is a clear error.

        No ``trust_remote_code`` is needed: the model's diffusers entry file (:mod:`sete_vsr.pipelines.hub`) is
        imported only when it is exactly SeTe-VSR's own, which runs no code but this package's.

        Args:
            pretrained_model_name_or_path: Hub id or folder written by :meth:`save_pretrained`.
            **kwargs: as ``DiffusionPipeline.from_pretrained`` (``dtype``, ``variant``, components to replace...).
        """
        path = Path(pretrained_model_name_or_path).expanduser()
        if path.is_dir():
            check_model_folder(path, passed=set(kwargs))
        elif path.exists():
            raise SeteVSRError(f"{path} is a file, not a model folder")
        elif path.is_absolute() or str(pretrained_model_name_or_path).startswith((".", "~")):
            raise SeteVSRError(f"model folder not found: {path}")
        kwargs.setdefault("use_safetensors", True)
        if entry_is_ours(pretrained_model_name_or_path, **kwargs):
            kwargs["trust_remote_code"] = True
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def load_lora_weights(self, pretrained_model_name_or_path_or_dict, adapter_name: str | None = None, **kwargs):
        """LoRA weights into the U-Net (and the text encoder, when the pipeline keeps one), as diffusers' Stable
        Diffusion pipelines load them; ``kwargs`` as ``lora_state_dict`` (``weight_name``, ``hotswap``...)."""
        if self.text_encoder is not None:
            return super().load_lora_weights(pretrained_model_name_or_path_or_dict, adapter_name=adapter_name, **kwargs)
        hotswap = kwargs.pop("hotswap", False)
        state_dict, network_alphas, metadata = self.lora_state_dict(
            pretrained_model_name_or_path_or_dict, return_lora_metadata=True, **kwargs
        )
        self.load_lora_into_unet(
            state_dict, network_alphas=network_alphas, unet=self.unet, adapter_name=adapter_name, metadata=metadata,
            _pipeline=self, hotswap=hotswap,
        )  # fmt: skip

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        overwrite_model_card: bool = False,
        **kwargs,
    ) -> None:
        """Save every component as safetensors, ``model_index.json``, the diffusers entry file and a model card.

        Args:
            save_directory: target folder.
            safe_serialization: must stay ``True``: SeTe-VSR pipelines are stored as safetensors only.
            overwrite_model_card: with ``push_to_hub=True``, replace a ``README.md`` the repository already has
                (default: keep it).
            **kwargs: as ``DiffusionPipeline.save_pretrained`` (``variant``, ``max_shard_size``, ``push_to_hub``...).
        """
        if not safe_serialization:
            raise SeteVSRError("SeTe-VSR pipelines are saved as safetensors only (safe_serialization=True)")
        push = kwargs.pop("push_to_hub", False)
        hub = {key: kwargs.pop(key) for key in ("commit_message", "private", "token", "create_pr") if key in kwargs}
        repo_id = kwargs.pop("repo_id", Path(save_directory).name)
        super().save_pretrained(save_directory, safe_serialization=True, **kwargs)
        write_entry(save_directory, type(self).__name__)
        write_model_card(self, save_directory)
        if push:
            self.push_to_hub(repo_id, overwrite_model_card=overwrite_model_card, **hub)

    def push_to_hub(self, repo_id: str, *args, overwrite_model_card: bool = False, **kwargs):
        """Upload the pipeline as ``DiffusionPipeline.push_to_hub`` does (``private``, ``token``, ``commit_message``...),
        with this model card; a ``README.md`` the repository already has is kept unless ``overwrite_model_card``."""
        self._overwrite_model_card = overwrite_model_card
        try:
            return super().push_to_hub(repo_id, *args, **kwargs)
        finally:
            del self._overwrite_model_card

    def _upload_folder(self, working_dir, repo_id, token=None, **kwargs):
        # push_to_hub writes diffusers' card (the repository's own, if it has one) just before uploading.
        keep_or_write_card(
            lambda folder: write_model_card(self, folder, repo_id), working_dir, repo_id, token, self._overwrite_model_card
        )
        return super()._upload_folder(working_dir, repo_id, token=token, **kwargs)

    def model_card(self) -> str:
        """The model card (``README.md``): what the model is, its components, how it was built, how to run it."""
        return build_model_card(self)

    # -------------------------------------------------------------------------------------------- properties

    @property
    def vae_scale_factor(self) -> int:
        """Output pixels per latent pixel along each side (8 for Stable Diffusion)."""
        return self.vae.vae_scale_factor

    @property
    def pad_multiple(self) -> int:
        """LR frame sizes are padded to multiples of this: the x4 frame must be a multiple of the VAE's factor times
        the U-Net's ``2**num_upsamplers``."""
        return max(1, self.vae_scale_factor * 2**self.unet.num_upsamplers // SCALE)

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    # -------------------------------------------------------------------------------------------- the call

    def check_inputs(
        self,
        prompt: str | None,
        prompt_embeds: torch.Tensor | None,
        num_inference_steps: int,
        window_mode: str,
        window_length: int,
        window_overlap: int,
        segment_length: int,
        tiles: tuple[int | None, int],
        decode_chunks: tuple[int, int],
        decode_tiles: tuple[int | None, int],
        output_type: str,
        color_fix: str | None,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> None:
        """Raise a one-line :class:`SeteVSRError` for invalid arguments (sizes and overlaps as `(size, overlap)`)."""
        if output_type not in OUTPUT_TYPES:
            raise SeteVSRError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if color_fix is not None and color_fix not in COLOR_FIXES:
            raise SeteVSRError(f"color_fix must be None or one of {COLOR_FIXES}, got {color_fix!r}")
        if num_inference_steps < 1:
            raise SeteVSRError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        if window_mode not in WINDOW_MODES:
            raise SeteVSRError(f"window_mode must be one of {WINDOW_MODES}, got {window_mode!r}")
        if segment_length < 1:
            raise SeteVSRError(f"segment_length must be at least 1, got {segment_length}")
        if window_length < 1 or not 0 <= window_overlap < window_length:
            raise SeteVSRError(
                f"window_overlap must be in [0, window_length), got window_length={window_length}, "
                f"window_overlap={window_overlap}"
            )
        for name, (size, overlap) in {"tile": tiles, "decode_chunk": decode_chunks, "decode_tile": decode_tiles}.items():
            if size is not None and (size < 1 or not 0 <= overlap < size):
                raise SeteVSRError(
                    f"{name}_overlap must be in [0, {name}_size), got {name}_size={size}, {name}_overlap={overlap}"
                )
        if prompt is not None and prompt_embeds is not None:
            raise SeteVSRError("pass either prompt or prompt_embeds, not both")
        if prompt is not None and (self.text_encoder is None or self.tokenizer is None):
            raise SeteVSRError("this pipeline has no text encoder and tokenizer: pass prompt_embeds instead of prompt")
        unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise SeteVSRError(f"callback_on_step_end_tensor_inputs {unknown} not in {self._callback_tensor_inputs}")

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
        for chunk in _batched(frames, window_length):
            batch = _pad_frames(_to_tensor(chunk, device), self.pad_multiple) * 2 - 1  # (k, 3, Hp, Wp) in [-1, 1]
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
    ) -> torch.Tensor:
        """The U-Net's prediction for a segment, over its temporal windows and spatial tiles (blended where they
        overlap).

        Args:
            latent_model_input: `(n, C, h, w)` scaled noisy latents.
            t: current timestep.
            lr_latents: `(n, 4, h, w)` LR latents.
            semantic: `(n, n_tiles, 256, g, g)` pooled SAM2 embeddings of each tile's LR region, or ``None``.
            prompt_embeds: `(1, L, D)` or ``None`` for the stored empty prompt.
            regions: the :class:`~sete_vsr.models.blending.Region` windows x tiles.
            tile_index: the index on ``semantic``'s tile axis of each region's ``(rows, cols)``; default: tiles in
                the order they first appear in ``regions``.

        Returns:
            `(n, C_out, h, w)` float32 prediction.
        """
        num_frames, _, height, width = latent_model_input.shape
        video = latent_model_input[None]
        lr_video = lr_latents[None]
        accumulator = BlendAccumulator(
            1, self.unet.config.out_channels, height, width, torch.float32, latent_model_input.device, num_frames
        )
        tile_index = {} if tile_index is None else tile_index
        for region in regions:
            tile = tile_index.setdefault((region.rows, region.cols), len(tile_index))
            sample = region.crop(video)[0]
            start, end = region.frames
            prediction = self.unet(
                sample.to(self.unet.dtype),
                t,
                lr_latents=region.crop(lr_video)[0],
                semantic_embeds=None if semantic is None else semantic[start:end, tile],
                num_frames=end - start,
                encoder_hidden_states=prompt_embeds,
            ).sample
            accumulator.add(region, prediction[None])
        return accumulator.pop()[0]

    def denoise_segment(
        self,
        segment: Segment,
        plan: WindowPlan,
        num_inference_steps: int,
        keep: int,
        prompt_embeds: torch.Tensor | None,
        tile_index: dict[tuple[tuple[int, int], tuple[int, int]], int],
        generator: torch.Generator | None,
        callback_on_step_end: Callable | None,
        callback_on_step_end_tensor_inputs: list[str],
        progress_bar: tqdm,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run every denoising step on one segment, its shared frames blended with the previous segment's predictions.

        Args:
            segment: the segment's frames, shared ones first (:class:`~sete_vsr.pipelines.segments.Segment`).
            plan: how the frames are cut into windows x tiles at each step.
            num_inference_steps: denoising steps (the scheduler is set anew, so multistep schedulers start afresh).
            keep: last frames whose prediction at each step is handed to the next segment.
            prompt_embeds: `(1, L, D)` or ``None``.
            tile_index: index of each tile of ``plan`` on the segment's semantic tile axis.
            generator: for the scheduler's own noise (DDPM).
            callback_on_step_end: called after each step with the segment's `(n, C, h, w)` latents.
            callback_on_step_end_tensor_inputs: tensors passed to it.
            progress_bar: advanced by one per step.

        Returns:
            ``(latents, handoff)``: `(n, C, h, w)` float32 denoised latents, and the prediction `(keep, C, h, w)` for
            the last ``keep`` frames at each step.
        """
        self.scheduler.set_timesteps(num_inference_steps, device=segment.noise.device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        extra_step_kwargs = {}
        if "generator" in inspect.signature(self.scheduler.step).parameters:
            extra_step_kwargs["generator"] = generator
        shared = segment.shared
        if shared:
            previous_weight, weight = (w.to(segment.noise.device) for w in handoff_weights(shared))
        latents = segment.noise * self.scheduler.init_noise_sigma
        handoff = []
        for i, t in enumerate(timesteps):
            if self.interrupt:
                break
            latent_model_input = self.scheduler.scale_model_input(latents, t)
            regions = plan.regions(segment.num_frames, i)
            noise_pred = self.predict_noise(
                latent_model_input, t, segment.lr_latents, segment.semantic, prompt_embeds, regions, tile_index
            )
            if keep:
                handoff.append(noise_pred[len(noise_pred) - keep :].clone())
            if shared:  # the boundary with the previous segment, blended as two overlapping windows
                noise_pred[:shared] = previous_weight * segment.handoff[i] + weight * noise_pred[:shared]
            latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs).prev_sample
            if callback_on_step_end is not None:
                callback_kwargs = {}
                for name in callback_on_step_end_tensor_inputs:
                    callback_kwargs[name] = locals()[name]
                callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                latents = callback_outputs.pop("latents", latents)
            progress_bar.update()
        return latents, handoff

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        video: Any,
        prompt: str | None = None,
        prompt_embeds: torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        window_mode: str = "blended",
        window_length: int | None = None,
        window_overlap: int | None = None,
        segment_length: int = 4,
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        max_frames: int | None = None,
        decode_chunk_size: int | None = None,
        decode_chunk_overlap: int | None = None,
        decode_tile_size: int | None = None,
        decode_tile_overlap: int | None = None,
        color_fix: str | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        write_to: str | os.PathLike | Any | None = None,
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> SeTeVSRPipelineOutput | tuple:
        r"""Super-resolve a video x4.

        Args:
            video: a video file (any container PyAV reads), a folder of frames, a list of PIL images or arrays, an array
                `(T, H, W, 3)` or tensor `(T, 3, H, W)` (uint8/uint16, or float in [0, 1]), or a
                :class:`~sete_vsr.data.video_io.VideoReader`. Any size (padded, then cropped back); grayscale and RGBA
                frames are converted, 16-bit frames keep their precision.
            prompt: optional text prompt (needs ``text_encoder`` and ``tokenizer``); default: the U-Net's stored
                empty-prompt embedding. No classifier-free guidance is applied (as in the paper).
            prompt_embeds: `(1, L, cross_attention_dim)` text embeddings instead of ``prompt``.
            num_inference_steps: denoising steps; default the model's recorded setting
                (``assembled_from["inference"]["num_inference_steps"]``), else 50 (DDPM in the paper).
            window_mode: ``"blended"`` (default): windows overlap by ``window_overlap`` frames and tiles by
                ``tile_overlap`` pixels, and their predictions are blended at every step; ``"shifted"``: windows and
                tiles do not overlap and their boundaries move by half a window (tile) on alternate steps, so each
                frame is evaluated once per step (see the README for the seams this leaves with an untrained model).
            window_length: frames denoised together; default the U-Net's ``config.num_frames``.
            window_overlap: frames shared by consecutive segments (and, in ``"blended"`` mode, by consecutive windows),
                blended at every step; default ``window_length // 4``.
            segment_length: windows of new frames per segment: each segment runs all denoising steps before the next
                starts, so memory holds one segment whatever the video's length. A segment brings
                ``segment_length * (window_length - window_overlap)`` new frames (``segment_length * window_length``
                in ``"shifted"`` mode); a shorter video is one segment.
            tile_size: latent tile side (output pixels / ``vae_scale_factor``); default the U-Net's ``sample_size``
                (its training size); ``0`` denoises whole frames.
            tile_overlap: latent pixels shared by neighbouring tiles in ``"blended"`` mode; default ``tile_size // 4``.
            max_frames: process only the first frames of the input.
            decode_chunk_size: frames decoded together by the temporal VAE (also the VAE encoder's batch); default
                ``window_length``. Lower it to save memory.
            decode_chunk_overlap: frames shared by consecutive decoding chunks; default ``decode_chunk_size // 4``.
            decode_tile_size: latent tile side of the VAE decoder; default whole frames, or ``vae.tile_latent_min_size``
                after ``pipe.vae.enable_tiling()``.
            decode_tile_overlap: latent pixels shared by decoder tiles; default ``decode_tile_size // 4``.
            color_fix: ``None``, ``"wavelet"`` or ``"adain"``: correct the output's colours against the LR frames
                upsampled x4 (see :mod:`sete_vsr.pipelines.color`).
            generator: a ``torch.Generator`` for reproducible noise (drawn segment by segment, so the first frames'
                result does not depend on the video's length).
            latents: initial noise `(T, 4, h, w)` (unscaled) of the whole video, instead of drawing it.
            output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"`` (skips decoding).
            write_to: stream the frames to a video path / PNG folder (see :func:`sete_vsr.data.video_io.open_output`;
                same fps, audio copied) or to any object with a ``write(frame)`` method taking `(4H, 4W, 3)` uint8
                frames. Frames are then not kept (``.frames`` is ``None``).
            return_dict: return a :class:`SeTeVSRPipelineOutput` rather than a tuple.
            callback_on_step_end: called as ``callback(pipe, step, timestep, callback_kwargs)`` after each step of
                each segment; it may return a dict replacing ``latents``. Set ``pipe._interrupt = True`` in it to stop
                early: the current segment is emitted as it is, and no further one is processed.
            callback_on_step_end_tensor_inputs: tensors passed in ``callback_kwargs`` (``["latents"]``: the
                segment's `(n, 4, h, w)`, shared frames included; `(T, 4, h, w)` for a video of one segment).

        Examples:

        Returns:
            :class:`SeTeVSRPipelineOutput` (or the tuple ``(frames,)``) with `T` frames of `4H x 4W`.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        recorded = (self.config.get("assembled_from") or {}).get("inference", {})
        if num_inference_steps is None:
            num_inference_steps = recorded.get("num_inference_steps", 50)
        window_length = window_length or self.unet.config.num_frames
        window_overlap = window_length // 4 if window_overlap is None else window_overlap
        tile_size = self.unet.config.sample_size if tile_size is None else tile_size
        tile_size = tile_size or None
        tile_overlap = (tile_size or 0) // 4 if tile_overlap is None else tile_overlap
        decode_chunk_size = decode_chunk_size or window_length
        decode_chunk_overlap = decode_chunk_size // 4 if decode_chunk_overlap is None else decode_chunk_overlap
        if decode_tile_size is None and self.vae.use_tiling:
            decode_tile_size = self.vae.tile_latent_min_size
        decode_tile_overlap = (decode_tile_size or 0) // 4 if decode_tile_overlap is None else decode_tile_overlap

        # 1. Check inputs, open the input (probed now: bad input fails before any work) and the output.
        self.check_inputs(
            prompt,
            prompt_embeds,
            num_inference_steps,
            window_mode,
            window_length,
            window_overlap,
            segment_length,
            (tile_size, tile_overlap),
            (decode_chunk_size, decode_chunk_overlap),
            (decode_tile_size, decode_tile_overlap),
            output_type,
            color_fix,
            callback_on_step_end_tensor_inputs,
        )
        self._interrupt = False
        device = self._execution_device
        reader = video if isinstance(video, VideoReader) else VideoReader(video, max_frames=max_frames, dtype="float32")
        own_writer = write_to is not None and not hasattr(write_to, "write")

        with contextlib.ExitStack() as cleanup:
            # A path becomes an output that appears only once complete (deleted on any error); a writer object stays
            # its owner's to close.
            writer = cleanup.enter_context(open_output(write_to, reader)) if own_writer else write_to
            if self.vae.dtype == torch.float16 and self.vae.config.force_upcast:  # the SD VAE overflows in float16
                # torch's own cast: diffusers' ModelMixin.to warns about "modules kept in float32" on every dtype cast
                torch.nn.Module.to(self.vae, dtype=torch.float32)
                cleanup.callback(torch.nn.Module.to, self.vae, dtype=torch.float16)

            # 2. Encode the prompt (optional); plan windows, tiles and segments.
            if prompt is not None:
                prompt_embeds = encode_prompt(self.text_encoder, self.tokenizer, prompt, device)
            if prompt_embeds is not None:
                prompt_embeds = prompt_embeds.to(device, self.unet.dtype)
            height, width = self.latent_size(reader.info.height, reader.info.width)
            plan = WindowPlan(
                window_mode, height, width, window_length, window_overlap, tile_size, tile_overlap,
                multiple=2**self.unet.num_upsamplers,
            )
            tiles = plan.tiles()
            tile_index = {tile: i for i, tile in enumerate(tiles)}
            new_per_segment = segment_length * plan.stride
            shape = (self.unet.config.in_channels, height, width)
            decode_options = (decode_chunk_size, decode_chunk_overlap, decode_tile_size, decode_tile_overlap)
            source = iter(reader)
            references = iter(reader) if color_fix is not None and output_type != "latent" else None
            collected, held, num_frames = [], None, 0
            total_steps = None
            if reader.info.num_frames is not None:
                total_steps = -(-reader.info.num_frames // new_per_segment) * num_inference_steps

            def emit(segment_latents: torch.Tensor, decode_context: torch.Tensor) -> None:
                """Decode (after ``decode_context``) and write or collect final latents `(k, C, h, w)`."""
                if output_type == "latent":
                    collected.append(segment_latents)
                    return
                blocks = self._decode_segment(
                    torch.cat([decode_context, segment_latents]), len(decode_context), decode_options, reader,
                    references, color_fix,
                )
                for frames in blocks:
                    collected.extend(self._emit(frames, output_type, writer))

            with self._progress("denoise", total_steps, "step") as progress_bar:
                while not self.interrupt:
                    # 3. Encode the segment's new frames, draw their noise (or take theirs from `latents`).
                    lr_latents, semantic = self.encode_conditioning(
                        islice(source, new_per_segment), window_length, decode_chunk_size, device, tiles
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
                    keep = min(window_overlap, segment.num_frames - 1) if count == new_per_segment else 0

                    # 4. Denoise the segment: all steps, windows x tiles of the plan, the shared frames blended.
                    denoised, handoff = self.denoise_segment(
                        segment,
                        plan,
                        num_inference_steps,
                        keep,
                        prompt_embeds,
                        tile_index,
                        generator,
                        callback_on_step_end,
                        callback_on_step_end_tensor_inputs,
                        progress_bar,
                    )

                    # 5.-6. Decode the frames no later segment changes (streamed), colour-correct, write or collect.
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
            frames = self._collect(collected, output_type) if writer is None else None
        path = writer.path if own_writer else None

        # 7. Offload all models.
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames,)
        return SeTeVSRPipelineOutput(frames=frames, fps=reader.info.fps, path=path)

    def _decode_segment(
        self,
        latents: torch.Tensor,
        context: int,
        decode_options: tuple[int, int, int | None, int],
        reader: VideoReader,
        references: Iterator[np.ndarray] | None,
        color_fix: str | None,
    ) -> Iterator[torch.Tensor]:
        """Decode `(c + n, C, h, w)` latents in chunks, the first `c` (frames emitted before) only as temporal context,
        and yield the `n` others block by block: `(k, 3, 4H, 4W)` float32 in [0, 1], colour-corrected against the
        next frames of ``references`` when ``color_fix`` is set."""
        out_height, out_width = reader.info.height * SCALE, reader.info.width * SCALE
        chunk_size, chunk_overlap, tile_size, tile_overlap = decode_options
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
                lr = _to_tensor(list(islice(references, len(frames))), frames.device)
                frames = color_correct(frames, bicubic_upsample(lr, value_range=(0.0, 1.0)), color_fix).clamp(0, 1)
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

    @staticmethod
    def _collect(collected: list, output_type: str) -> list[PIL.Image.Image] | np.ndarray | torch.Tensor:
        """The collected blocks (latents, tensors or arrays) as one result of ``output_type``."""
        if output_type in ("latent", "pt"):
            return torch.cat(collected)
        array = np.concatenate(collected)
        if output_type == "np":
            return array
        return [PIL.Image.fromarray(frame) for frame in (array * 255).round().astype(np.uint8)]


def _public_library(value: Any) -> Any:
    """``("sete_vsr.models.unet", "SeTeUNetModel")`` -> ``("sete_vsr", "SeTeUNetModel")`` for top-level exports."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str):
        library, class_name = value
        if library.startswith("sete_vsr."):
            import sete_vsr

            if class_name in sete_vsr.__all__:
                return ("sete_vsr", class_name)
    return value
