"""SeTe-VSR behind the common :class:`~sete_vsr.methods.VSRMethod` interface (``sete-vsr eval --methods sete-vsr``).

Its options (``--method-option model=DIR --method-option steps=20``) are
:class:`~sete_vsr.method_options.SeTeVSROptions`, converted from text before the method is built.

A pipeline that was never trained (assembled by ``sete-vsr init``, or the tiny random preset: no
``assembled_from["training_stages"]`` in its ``model_index.json``) is named ``sete-vsr-untrained``, as SEEM without
weights is ``...+seem-untrained``, so its column in evaluation tables and plots says so.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SeteVSRError
from ..method_options import SeTeVSROptions
from .schedulers import use_scheduler
from ..vsr_method import VSRMethod
from ..options import default_device, torch_dtype


def load_pipeline(
    model: str,
    device: str | torch.device | None = None,
    dtype: str = "fp32",
    cpu_offload: bool = False,
):
    """Load a SeTe-VSR pipeline from a folder or Hub id, turning every loading failure into a one-line error.

    Args:
        model: folder written by ``save_pretrained``/``sete-vsr init``, or a Hub id.
        device: ``"cuda"``, ``"cpu"``...; default CUDA when available.
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        cpu_offload: keep models on the CPU and move each to ``device`` only while it runs (needs an accelerator).

    Returns:
        The :class:`~sete_vsr.pipelines.pipeline.SeTeVSRPipeline` on ``device`` (or with offload hooks).
    """
    from .pipeline import SeTeVSRPipeline

    model_dtype = torch_dtype(dtype)
    device = torch.device(device or default_device())
    try:
        pipe = SeTeVSRPipeline.from_pretrained(model, dtype=model_dtype)
    except SeteVSRError:
        raise
    except Exception as err:  # diffusers/transformers/hub raise many types for one cause: a bad or absent model
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SeteVSRError(f"cannot load the SeTe-VSR model {model}: {message}") from None
    if cpu_offload:
        if device.type == "cpu":
            raise SeteVSRError("CPU offload needs an accelerator device (e.g. --device cuda)")
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


class _ArrayWriter:
    """Receives the pipeline's uint8 frames into a preallocated `(T, 4H, 4W, 3)` array."""

    def __init__(self, out: np.ndarray):
        self.out = out
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        self.out[self.count] = frame
        self.count += 1


class SeTeVSRMethod(VSRMethod):
    """The SeTe-VSR pipeline as a :class:`VSRMethod`: `(T, H, W, 3)` uint8 -> `(T, 4H, 4W, 3)` uint8.

    Args:
        options: the model (``model``, or ``checkpoint`` as for the baselines), where and how it runs, and the
            pipeline call's settings (:class:`~sete_vsr.method_options.SeTeVSROptions`).

    Attributes:
        name: ``"sete-vsr"``, or ``"sete-vsr-untrained"`` for a pipeline never trained.
        trained: whether the pipeline records a training run (``assembled_from["training_stages"]``).
        training_stages: that record, one entry per ``sete_vsr.train`` run (``stage``, ``steps``...), oldest first.
    """

    def __init__(self, options: SeTeVSROptions):
        model = options.model or options.checkpoint
        self.pipe = load_pipeline(model, options.device, options.dtype, options.cpu_offload)
        self.training_stages = list((self.pipe.config.get("assembled_from") or {}).get("training_stages") or [])
        self.trained = bool(self.training_stages)
        self.name = "sete-vsr" if self.trained else "sete-vsr-untrained"
        self.pipe.set_progress_bar_config(disable=not options.progress)
        if options.scheduler is not None:
            use_scheduler(self.pipe, options.scheduler)
        self.seed = options.seed
        self.call_options = {
            "num_inference_steps": options.steps,
            "prompt": options.prompt,
            "guidance_scale": options.guidance_scale,
            "strength": options.strength,
            "window_mode": options.window_mode,
            "blended_steps": options.blended_steps,
            "window_length": options.window_length,
            "window_overlap": options.window_overlap,
            "tile_size": options.tile_size,
            "tile_overlap": options.tile_overlap,
            "decode_chunk_size": options.decode_chunk_size,
            "color_fix": None if options.color_fix == "none" else options.color_fix,
        }

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """`(T, H, W, 3)` uint8 -> `(T, 4H, 4W, 3)` uint8."""
        t, h, w, _ = frames.shape
        out = np.empty((t, self.scale * h, self.scale * w, 3), dtype=np.uint8)
        generator = torch.Generator(self.pipe._execution_device).manual_seed(self.seed)
        self.pipe(frames, generator=generator, write_to=_ArrayWriter(out), **self.call_options)
        return out
