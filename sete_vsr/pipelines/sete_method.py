"""SeTe-VSR behind the common :class:`~sete_vsr.methods.VSRMethod` interface (``sete-vsr eval --methods sete-vsr``).

Options arrive as strings from the command line (``--method-option model=DIR --method-option steps=20``) and are
converted here.

A pipeline that was never trained (assembled by ``sete-vsr init``, or the tiny random preset: no
``assembled_from["training_stages"]`` in its ``model_index.json``) is named ``sete-vsr-untrained``, as SEEM without
weights is ``...+seem-untrained``, so its column in evaluation tables and plots says so.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SeteVSRError
from ..methods import VSRMethod
from ..options import as_bool, default_device, torch_dtype


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
        pipe = SeTeVSRPipeline.from_pretrained(model, torch_dtype=model_dtype)
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
        model: pipeline folder or Hub id (``checkpoint`` is accepted as an alias, as for the baselines).
        device: torch device; default CUDA when available.
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        steps: denoising steps; default the model's recorded setting, else 50.
        window_length, window_overlap, tile_size, tile_overlap, decode_chunk_size: as the pipeline's call.
        color_fix: ``"none"``, ``"wavelet"`` or ``"adain"``.
        seed: seed of the noise, the same for every clip.
        cpu_offload: see :func:`load_pipeline`.
        progress: show progress bars.

    Attributes:
        name: ``"sete-vsr"``, or ``"sete-vsr-untrained"`` for a pipeline never trained.
        trained: whether the pipeline records a training run (``assembled_from["training_stages"]``).
        training_stages: that record, one entry per ``sete_vsr.train`` run (``stage``, ``steps``...), oldest first.
    """

    def __init__(
        self,
        model: str | None = None,
        checkpoint: str | None = None,
        device: str | None = None,
        dtype: str = "fp32",
        steps: int | str | None = None,
        window_length: int | str | None = None,
        window_overlap: int | str | None = None,
        tile_size: int | str | None = None,
        tile_overlap: int | str | None = None,
        decode_chunk_size: int | str | None = None,
        color_fix: str = "none",
        seed: int | str = 0,
        cpu_offload: bool | str = False,
        progress: bool | str = True,
    ):
        model = model or checkpoint
        if model is None:
            raise SeteVSRError("sete-vsr needs a model: --method-option model=DIR_OR_HUB_ID")
        self.pipe = load_pipeline(model, device, dtype, as_bool(cpu_offload))
        self.training_stages = list((self.pipe.config.get("assembled_from") or {}).get("training_stages") or [])
        self.trained = bool(self.training_stages)
        self.name = "sete-vsr" if self.trained else "sete-vsr-untrained"
        self.pipe.set_progress_bar_config(disable=not as_bool(progress))
        self.seed = int(seed)
        self.call_options = {
            "num_inference_steps": _as_int(steps),
            "window_length": _as_int(window_length),
            "window_overlap": _as_int(window_overlap),
            "tile_size": _as_int(tile_size),
            "tile_overlap": _as_int(tile_overlap),
            "decode_chunk_size": _as_int(decode_chunk_size),
            "color_fix": None if color_fix in (None, "none") else color_fix,
        }

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """`(T, H, W, 3)` uint8 -> `(T, 4H, 4W, 3)` uint8."""
        t, h, w, _ = frames.shape
        out = np.empty((t, self.scale * h, self.scale * w, 3), dtype=np.uint8)
        generator = torch.Generator(self.pipe._execution_device).manual_seed(self.seed)
        self.pipe(frames, generator=generator, write_to=_ArrayWriter(out), **self.call_options)
        return out


def _as_int(value: int | str | None) -> int | None:
    return None if value is None or value == "" else int(value)
