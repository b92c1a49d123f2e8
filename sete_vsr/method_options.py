"""The options of every method, as frozen dataclasses: one place for their names, types, defaults and checks.

``sete-vsr eval --method-option KEY=VALUE``, ``sete-vsr upscale`` and ``load_method(name, **options)`` all turn
what they are given into one of these with :func:`sete_vsr.registry.parse_options` (text converted by field type,
unknown keys refused) before any factory runs; factories receive the typed instance. Nothing here imports torch.

Two of the options are *runtime* options (:data:`RUNTIME_OPTIONS`): where a method runs and whether it shows
progress. They never change an output, so they are offered to every method that has them and left out of cache keys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from .errors import SeteVSRError
from .options import COLOR_FIXES, DTYPES, SCHEDULERS, WINDOW_MODES

RUNTIME_OPTIONS = ("device", "progress")
WindowPadding = Literal["reflection_circle", "reflection", "replicate", "circle"]
ModelDtype = Literal[tuple(DTYPES)]
ColorFix = Literal[("none", *COLOR_FIXES)]
SchedulerName = Literal[SCHEDULERS]
WindowMode = Literal[WINDOW_MODES]


def _at_least(owner: str, **values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise SeteVSRError(f"{owner}: {key} must be at least 1, got {value}")


@dataclass(frozen=True, kw_only=True)
class BicubicOptions:
    """``bicubic``: ``chunk`` frames resized per call (bounds memory). It runs on the CPU and takes nothing else."""

    chunk: int = 16

    def __post_init__(self):
        _at_least("bicubic", chunk=self.chunk)


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """Where a network runs (``None``: CUDA when available, else the CPU) and whether it shows progress bars."""

    device: str | None = None
    progress: bool = True


@dataclass(frozen=True, kw_only=True)
class RecurrentOptions(RuntimeOptions):
    """A recurrent network (BasicVSR, BasicVSR++, RealBasicVSR) on chunks of at most ``chunk_length`` frames.

    ``chunk_overlap`` frames of context on each side of a chunk's kept frames; a clip no longer than
    ``chunk_length`` is one pass, as published.
    """

    chunk_length: int = 100
    chunk_overlap: int = 10

    def __post_init__(self):
        if self.chunk_length <= 2 * self.chunk_overlap:
            raise SeteVSRError(
                f"chunk_length ({self.chunk_length}) must exceed twice chunk_overlap ({self.chunk_overlap})"
            )


@dataclass(frozen=True, kw_only=True)
class SlidingWindowOptions(RuntimeOptions):
    """EDVR: windows filled at the clip ends by ``padding``, ``batch_size`` windows per forward pass."""

    padding: WindowPadding = "reflection_circle"
    batch_size: int = 1

    def __post_init__(self):
        _at_least("the window batch", batch_size=self.batch_size)


@dataclass(frozen=True, kw_only=True)
class RecurrentBaselineOptions(RecurrentOptions):
    """A recurrent baseline; ``checkpoint``: a local file instead of the official one (found or downloaded)."""

    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class SlidingWindowBaselineOptions(SlidingWindowOptions):
    """EDVR; ``checkpoint``: a local file instead of the official one (found or downloaded)."""

    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class AdaptationFields:
    """Algorithm 1 of paper 004 (:class:`~sete_vsr.adaptation.self_supervised.AdaptationConfig`, paper defaults).

    ``iterations`` and ``batch_size`` (the adaptation batch; an EDVR base then restores one window per pass) default
    by base: 1000 and 4 for EDVR (the paper's), 10 and 1 for recurrent bases (the best of the CPU sweep);
    ``num_frames``: frames per pseudo sample of a recurrent base, ``0`` (default) for the whole clip (EDVR uses its
    window); ``freeze``: parameter-name prefixes kept fixed (default ``spynet``, a recurrent base's flow network;
    empty: all adapt); ``kernel``: line 5's downscaling (``bicubic``, ``gaussian`` or
    ``gaussian:SIGMA``), default the base's known degradation (required for real-world bases).
    """

    iterations: int | None = None
    learning_rate: float = 1e-5
    batch_size: int | None = None
    patch_size: int = 256
    num_frames: int = 0
    seed: int = 0
    freeze: tuple[str, ...] = ("spynet",)
    kernel: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecurrentAdaptationOptions(AdaptationFields, RecurrentBaselineOptions):
    """``<recurrent baseline>+adapt``."""


@dataclass(frozen=True, kw_only=True)
class SlidingWindowAdaptationOptions(AdaptationFields, SlidingWindowBaselineOptions):
    """``edvr-...+adapt``."""


@dataclass(frozen=True, kw_only=True)
class _SEEMFields:
    """SEEM (paper 000): ``seem_weights`` from ``sete_vsr.plugins.train_seem`` (None: untrained, equal to the base);
    the SAM2 mask prior ``sam2`` (Hub id or folder), ``mask_backend`` and ``points_per_side`` (default: as trained,
    else the plug-in's defaults); ``name`` in tables (default ``<base>+seem``)."""

    seem_weights: str | None = None
    sam2: str | None = None
    mask_backend: Literal["transformers", "sam2", "auto"] | None = None
    points_per_side: int | None = None
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecurrentSEEMOptions(_SEEMFields, RecurrentBaselineOptions):
    """``basicvsr-...+seem``."""


@dataclass(frozen=True, kw_only=True)
class SlidingWindowSEEMOptions(_SEEMFields, SlidingWindowBaselineOptions):
    """``edvr-...+seem``."""


@dataclass(frozen=True, kw_only=True)
class SemanticLensOptions(RecurrentBaselineOptions):
    """``basicvsr-...+semantic-lens`` (paper 001).

    ``semantic_lens_weights`` from ``sete_vsr.plugins.train_semantic_lens`` (None: blocks untrained, equal to the
    base); ``sam2``, ``points_per_side`` and ``num_masks`` of the SAM2 semantics (default: as trained, else the
    default SAM2, 8 and 64); ``attn_dim`` and ``window_size`` of untrained blocks; ``name`` in tables.
    """

    semantic_lens_weights: str | None = None
    sam2: str | None = None
    points_per_side: int | None = None
    num_masks: int | None = None
    attn_dim: int = 64
    window_size: int = 7
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class AdaptedOptions(RecurrentOptions, SlidingWindowOptions):
    """``adapted``: a network saved by ``sete-vsr adapt --save-weights`` (``weights``, required).

    Its architecture decides which runner options apply (chunks for recurrent networks, windows for EDVR).
    """

    weights: str
    name: str | None = None

    def __post_init__(self):
        RecurrentOptions.__post_init__(self)
        SlidingWindowOptions.__post_init__(self)


@dataclass(frozen=True, kw_only=True)
class SeTeVSROptions(RuntimeOptions):
    """``sete-vsr``: a pipeline folder or Hub id (``model``, or ``checkpoint`` as for the baselines) and its call.

    ``dtype``; ``scheduler`` (default: the model's own); ``steps`` (default: the model's recorded setting, else 50);
    ``prompt``, ``guidance_scale`` and ``strength`` (the pipeline's, default off); ``window_mode`` and
    ``blended_steps``; the window, tile and decode sizes of the
    pipeline's call (default: the pipeline's); ``color_fix``; ``seed`` of the noise, the same for every clip;
    ``cpu_offload`` (needs an accelerator).
    """

    model: str | None = None
    checkpoint: str | None = None
    dtype: ModelDtype = "fp32"
    scheduler: SchedulerName | None = None
    steps: int | None = None
    prompt: str | None = None
    guidance_scale: float = 1.0
    strength: float = 1.0
    window_mode: WindowMode = "shifted"
    blended_steps: int | None = None
    window_length: int | None = None
    window_overlap: int | None = None
    tile_size: int | None = None
    tile_overlap: int | None = None
    decode_chunk_size: int | None = None
    color_fix: ColorFix = "none"
    seed: int = 0
    cpu_offload: bool = False

    def __post_init__(self):
        if self.model is None and self.checkpoint is None:
            raise SeteVSRError("sete-vsr needs a model: --method-option model=DIR_OR_HUB_ID")


def runner_options(arch: str) -> type[RecurrentBaselineOptions] | type[SlidingWindowBaselineOptions]:
    """The options of a baseline architecture's runner: sliding windows for EDVR, recurrent chunks otherwise."""
    return SlidingWindowBaselineOptions if arch == "edvr" else RecurrentBaselineOptions


def options_for_runner(arch: str, options, leave_out: tuple[str, ...] = ()):
    """The :func:`runner_options` of ``arch`` made from the same-named fields of ``options`` (but ``leave_out``)."""
    runner = runner_options(arch)
    have = {f.name for f in fields(options)} - set(leave_out)
    return runner(**{f.name: getattr(options, f.name) for f in fields(runner) if f.name in have})
