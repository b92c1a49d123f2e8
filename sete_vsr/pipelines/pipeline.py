"""The SeTe-VSR diffusion pipeline: x4 real-world video super-resolution with semantic and temporal guidance.

:class:`SeTeVSRPipeline` holds the components, loads and saves them (safetensors, the Hub, LoRA), and checks a call's
arguments; each video of a call then runs segment by segment (:mod:`sete_vsr.pipelines.segment_loop`), so memory does
not depend on the video's length, with the sampling settings of :mod:`sete_vsr.pipelines.sampling`. Results are batch
first (:mod:`sete_vsr.pipelines.video_batch`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput, replace_example_docstring
from transformers import CLIPTextModel, CLIPTokenizer

from ..data.video_io import VideoReader, open_output
from ..errors import SeteVSRError
from ..models.lr_inputs import SCALE
from ..models.semantic_encoder import SemanticEncoder
from ..models.temporal_vae import TemporalAutoencoderKL
from ..models.unet import SeTeUNetModel
from ..options import COLOR_FIXES, WINDOW_MODES
from .components import sd21_components
from .hub import entry_is_ours, keep_or_write_card, write_entry
from .model_card import build_model_card, write_model_card
from .model_folder import check_model_folder
from .prompt import encode_prompt
from .sampling import Sampling
from .segment_loop import CallSettings, SegmentedSampling
from .video_batch import as_video_batch, per_video, stack_videos

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
        >>> # Or get the frames of a short clip: batch first, frames[0] is the first video's list of images.
        >>> frames = pipe("input.mp4", max_frames=16, output_type="pil").frames[0]
        >>> # Several videos, streamed one after the other, each to its own file.
        >>> pipe(["a.mp4", "b.mp4"], write_to=["a_x4.mp4", "b_x4.mp4"])
        ```
"""


@dataclass
class SeTeVSRPipelineOutput(BaseOutput):
    """Output of :class:`SeTeVSRPipeline`, batch first as in diffusers' video pipelines (`B` = 1 for one video).

    Args:
        frames: the super-resolved frames of each input video, by ``output_type``: a list (per video) of lists of `T`
            PIL images; a float32 array `(B, T, 4H, 4W, 3)` or tensor `(B, T, 3, 4H, 4W)` in [0, 1]; or the denoised
            latents `(B, T, 4, h, w)` (padded size, scaled by the VAE's ``scaling_factor``) for ``"latent"`` (a list
            of per-video arrays / tensors when the videos differ in length or size); ``None`` when the frames were
            written to ``write_to``. ``diffusers.utils.export_to_video(out.frames[0], "out.mp4")`` works.
        fps: frames per second of each input (``None`` for frame folders and in-memory frames).
        paths: where each video's frames were written, when ``write_to`` gave paths (else ``None`` each).
    """

    frames: list[list[PIL.Image.Image]] | list | np.ndarray | torch.Tensor | None
    fps: list[Fraction | None]
    paths: list[Path | None]


class SeTeVSRPipeline(SegmentedSampling, DiffusionPipeline, StableDiffusionLoraLoaderMixin):
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
        prompts: list[str | None],
        negative_prompts: list[str | None],
        prompt_embeds: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        sampling: Sampling,
        window_mode: str,
        window_length: int,
        window_overlap: int,
        segment_length: int,
        blended_steps: int | None,
        tiles: tuple[int | None, int],
        decode_chunks: tuple[int, int],
        decode_tiles: tuple[int | None, int],
        output_type: str,
        color_fix: str | None,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> None:
        """Raise a one-line :class:`SeteVSRError` for invalid arguments (sizes and overlaps as `(size, overlap)`;
        prompts one per video)."""
        if output_type not in OUTPUT_TYPES:
            raise SeteVSRError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if color_fix is not None and color_fix not in COLOR_FIXES:
            raise SeteVSRError(f"color_fix must be None or one of {COLOR_FIXES}, got {color_fix!r}")
        sampling.check(self.scheduler)
        if window_mode not in WINDOW_MODES:
            raise SeteVSRError(f"window_mode must be one of {WINDOW_MODES}, got {window_mode!r}")
        if segment_length < 1:
            raise SeteVSRError(f"segment_length must be at least 1, got {segment_length}")
        if blended_steps is not None and blended_steps < 0:
            raise SeteVSRError(f"blended_steps must be at least 0, got {blended_steps}")
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
        given_negative = negative_prompt_embeds is not None or any(text is not None for text in negative_prompts)
        if given_negative and not sampling.guided:
            raise SeteVSRError("a negative prompt acts only with classifier-free guidance: set guidance_scale > 1")
        for kind, texts, embeds in (("prompt", prompts, prompt_embeds), ("negative_prompt", negative_prompts,
                                                                          negative_prompt_embeds)):
            if any(text is not None for text in texts) and embeds is not None:
                raise SeteVSRError(f"pass either {kind} or {kind}_embeds, not both")
            if any(text is not None for text in texts) and (self.text_encoder is None or self.tokenizer is None):
                raise SeteVSRError(
                    f"this model has no text encoder and tokenizer (assemble it with keep_text_encoder=True or "
                    f"`sete-vsr init --keep-text-encoder`), so it "
                    f"takes no {kind}; pass {kind}_embeds instead"
                )
        unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise SeteVSRError(f"callback_on_step_end_tensor_inputs {unknown} not in {self._callback_tensor_inputs}")

    def text_embeddings(
        self,
        prompt: str | None,
        negative_prompt: str | None,
        prompt_embeds: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        guided: bool,
        device: torch.device,
    ) -> torch.Tensor | None:
        """The U-Net's text input for one video: ``None`` (its stored empty prompt) or `(1, L, D)` without guidance;
        `(2, L, D)`, the negative then the positive prompt, with guidance (either one defaults to the stored empty
        prompt)."""
        if prompt is not None:
            prompt_embeds = encode_prompt(self.text_encoder, self.tokenizer, prompt, device)
        if negative_prompt is not None:
            negative_prompt_embeds = encode_prompt(self.text_encoder, self.tokenizer, negative_prompt, device)
        if guided:
            empty = self.unet.empty_prompt_embeds
            pair = (negative_prompt_embeds, prompt_embeds)
            prompt_embeds = torch.cat([empty if e is None else e.to(empty.device, empty.dtype) for e in pair])
        return None if prompt_embeds is None else prompt_embeds.to(device, self.unet.dtype)

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        video: Any,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        num_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
        sigmas: list[float] | None = None,
        strength: float = 1.0,
        window_mode: str = "shifted",
        window_length: int | None = None,
        window_overlap: int | None = None,
        segment_length: int = 8,
        blended_steps: int | None = None,
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        max_frames: int | None = None,
        decode_chunk_size: int | None = None,
        decode_chunk_overlap: int | None = None,
        decode_tile_size: int | None = None,
        decode_tile_overlap: int | None = None,
        color_fix: str | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | list[torch.Tensor] | None = None,
        output_type: str = "pil",
        write_to: str | os.PathLike | Any | list | None = None,
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> SeTeVSRPipelineOutput | tuple:
        r"""Super-resolve a video (or a batch of videos, one after the other) x4.

        Args:
            video: one video: a video file (any container PyAV reads), a folder of frames, a list of PIL images or
                arrays, an array `(T, H, W, 3)` or tensor `(T, 3, H, W)` (uint8/uint16, or float in [0, 1]), or a
                :class:`~sete_vsr.data.video_io.VideoReader`; or a batch: a list of such videos or a 5-D array / tensor
                `(B, T, ...)`. Any size (padded, then cropped back); grayscale and RGBA frames are converted, 16-bit
                frames keep their precision. The videos of a batch are streamed in turn.
            prompt: text prompt (needs ``text_encoder`` and ``tokenizer``), or one per video; default: the U-Net's
                stored empty-prompt embedding (as in the paper).
            negative_prompt: the prompt guided away from (with ``guidance_scale > 1``), or one per video; default: the
                stored empty prompt.
            prompt_embeds: `(1, L, cross_attention_dim)` text embeddings instead of ``prompt``.
            negative_prompt_embeds: `(1, L, cross_attention_dim)` instead of ``negative_prompt``.
            guidance_scale: classifier-free guidance weight: above 1, each window runs for the negative and the
                positive prompt (batched) and the prediction moves ``guidance_scale`` times their difference from the
                negative one. Default 1: no guidance, one pass (as in the paper).
            num_inference_steps: denoising steps; default the model's recorded setting
                (``assembled_from["inference"]["num_inference_steps"]``), else 50 (DDPM in the paper).
            timesteps: custom timesteps (descending) for schedulers that take them (e.g. DDPM, DDIM... see
                ``inspect.signature(pipe.scheduler.set_timesteps)``), instead of ``num_inference_steps``.
            sigmas: custom noise levels (descending) for schedulers that take them (e.g. Euler: the last is where
                sampling ends, as in ``scheduler.sigmas``).
            strength: the noise level sampling starts from, as a fraction of the schedule in (0, 1]: ``1`` (default)
                starts from pure noise; lower values start from the LR latents noised to that level and run only the
                last ``strength`` of the steps (see :mod:`sete_vsr.pipelines.sampling`).
            window_mode: ``"shifted"`` (default): after ``blended_steps`` blended steps, windows and tiles do not
                overlap and their boundaries move by half a window (tile) on alternate steps, so each frame is
                evaluated once per step; ``"blended"``: windows overlap by ``window_overlap`` frames and tiles by
                ``tile_overlap`` pixels at every step, and their predictions are blended (see the README).
            window_length: frames denoised together; default the U-Net's ``config.num_frames``.
            window_overlap: frames shared by consecutive segments (and, in ``"blended"`` mode, by consecutive windows),
                blended at every step; default ``window_length // 4``.
            segment_length: windows of new frames per segment (default 8): each segment runs all denoising steps
                before the next starts, so memory holds one segment whatever the video's length. A segment brings
                ``segment_length * (window_length - window_overlap)`` new frames (``segment_length * window_length``
                in ``"shifted"`` mode); a shorter video is one segment.
            blended_steps: in ``"shifted"`` mode, the first steps run with blended windows and tiles, which keeps the
                first, noisiest steps from leaving seams; default a fifth of the steps (at least one).
            tile_size: latent tile side (output pixels / ``vae_scale_factor``); default the U-Net's ``sample_size``
                (its training size); ``0`` denoises whole frames.
            tile_overlap: latent pixels shared by neighbouring tiles in blended steps; default ``tile_size // 4``.
            max_frames: process only the first frames of each input.
            decode_chunk_size: frames decoded together by the temporal VAE (also the VAE encoder's batch); default
                ``window_length``. Lower it to save memory.
            decode_chunk_overlap: frames shared by consecutive decoding chunks; default ``decode_chunk_size // 4``.
            decode_tile_size: latent tile side of the VAE decoder; default whole frames, or ``vae.tile_latent_min_size``
                after ``pipe.vae.enable_tiling()``.
            decode_tile_overlap: latent pixels shared by decoder tiles; default ``decode_tile_size // 4``.
            color_fix: ``None``, ``"wavelet"`` or ``"adain"``: correct the output's colours against the LR frames
                upsampled x4 (see :mod:`sete_vsr.pipelines.color`).
            generator: a ``torch.Generator`` for reproducible noise (drawn segment by segment, so the first frames'
                result does not depend on the video's length), or one per video.
            latents: initial noise `(T, 4, h, w)` (unscaled) of the whole video instead of drawing it; for a batch, one
                per video (a list, or `(B, T, 4, h, w)`).
            output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"`` (skips decoding).
            write_to: stream the frames to a video path / PNG folder (see :func:`sete_vsr.data.video_io.open_output`;
                same fps, audio copied) or to any object with a ``write(frame)`` method taking `(4H, 4W, 3)` uint8
                frames; for a batch, a list with one per video. Frames are then not kept (``.frames`` is ``None``).
            return_dict: return a :class:`SeTeVSRPipelineOutput` rather than a tuple.
            callback_on_step_end: called as ``callback(pipe, step, timestep, callback_kwargs)`` after each step of
                each segment; it may return a dict replacing ``latents``. Set ``pipe._interrupt = True`` in it to stop
                early: the current segment is emitted as it is, and no further segment or video is processed.
            callback_on_step_end_tensor_inputs: tensors passed in ``callback_kwargs`` (``["latents"]``: the
                segment's `(n, 4, h, w)`, shared frames included; `(T, 4, h, w)` for a video of one segment).

        Examples:

        Returns:
            :class:`SeTeVSRPipelineOutput` (or the tuple ``(frames,)``), batch first: ``frames[b]`` holds the `T`
            frames of `4H x 4W` of video `b` (see :class:`SeTeVSRPipelineOutput`).
        """
        videos, batched = as_video_batch(video)
        count = len(videos)
        prompts = per_video(prompt, count, "prompt")
        negative_prompts = per_video(negative_prompt, count, "negative_prompt")
        generators = per_video(generator, count, "generator")
        is_batch = lambda value: isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) == 5  # noqa: E731
        all_latents = per_video(latents, count, "latents", is_batch) if batched else [latents]
        if batched and write_to is not None and not isinstance(write_to, (list, tuple)):
            raise SeteVSRError("with a batch of videos, write_to must be a list with one output per video")
        outputs = per_video(write_to, count, "write_to") if batched else [write_to]

        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        recorded = (self.config.get("assembled_from") or {}).get("inference", {})
        if num_inference_steps is None:
            num_inference_steps = recorded.get("num_inference_steps", 50)  # unused with timesteps or sigmas
        sampling = Sampling(
            num_inference_steps,
            None if timesteps is None else tuple(timesteps),
            None if sigmas is None else tuple(sigmas),
            strength,
            guidance_scale,
        )
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

        # 1. Check inputs, open every input (probed now: bad input fails before any work).
        self.check_inputs(
            prompts,
            negative_prompts,
            prompt_embeds,
            negative_prompt_embeds,
            sampling,
            window_mode,
            window_length,
            window_overlap,
            segment_length,
            blended_steps,
            (tile_size, tile_overlap),
            (decode_chunk_size, decode_chunk_overlap),
            (decode_tile_size, decode_tile_overlap),
            output_type,
            color_fix,
            callback_on_step_end_tensor_inputs,
        )
        self._interrupt = False
        device = self._execution_device
        readers = [v if isinstance(v, VideoReader) else VideoReader(v, max_frames=max_frames, dtype="float32")
                   for v in videos]  # fmt: skip

        results, paths = [], []
        with contextlib.ExitStack() as cleanup:
            if self.vae.dtype == torch.float16 and self.vae.config.force_upcast:  # the SD VAE overflows in float16
                # torch's own cast: diffusers' ModelMixin.to warns about "modules kept in float32" on every dtype cast
                torch.nn.Module.to(self.vae, dtype=torch.float32)
                cleanup.callback(torch.nn.Module.to, self.vae, dtype=torch.float16)
            for index, (reader, output) in enumerate(zip(readers, outputs)):
                if self.interrupt:
                    break
                # 2. Encode the prompts; 3.-6. upscale the video segment by segment (see segment_loop).
                text = self.text_embeddings(
                    prompts[index], negative_prompts[index], prompt_embeds, negative_prompt_embeds, sampling.guided,
                    device,
                )  # fmt: skip
                settings = CallSettings(
                    sampling, text, window_mode, window_length, window_overlap, segment_length, blended_steps,
                    (tile_size, tile_overlap), (decode_chunk_size, decode_chunk_overlap, decode_tile_size,
                                                decode_tile_overlap),
                    color_fix, output_type, callback_on_step_end, tuple(callback_on_step_end_tensor_inputs),
                )  # fmt: skip
                own_writer = output is not None and not hasattr(output, "write")
                # A path becomes an output that appears only once complete (deleted on any error); a writer object
                # stays its owner's to close.
                with open_output(output, reader) if own_writer else contextlib.nullcontext(output) as writer:
                    desc = f"denoise {index + 1}/{count}" if batched else "denoise"
                    results.append(self.upscale_video(reader, settings, generators[index], all_latents[index], writer,
                                                      desc))  # fmt: skip
                paths.append(writer.path if own_writer else None)

        # 7. Offload all models.
        self.maybe_free_model_hooks()
        frames = None if write_to is not None else stack_videos(results, output_type)
        if not return_dict:
            return (frames,)
        return SeTeVSRPipelineOutput(frames=frames, fps=[r.info.fps for r in readers], paths=paths)

def _public_library(value: Any) -> Any:
    """``("sete_vsr.models.unet", "SeTeUNetModel")`` -> ``("sete_vsr", "SeTeUNetModel")`` for top-level exports."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str):
        library, class_name = value
        if library.startswith("sete_vsr."):
            import sete_vsr

            if class_name in sete_vsr.__all__:
                return ("sete_vsr", class_name)
    return value
