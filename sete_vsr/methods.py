"""Every super-resolution method by name: the registry behind ``load_method``, ``sete-vsr eval`` and ``upscale``.

Each method is a :class:`~sete_vsr.vsr_method.VSRMethod` (``(T, H, W, 3)`` uint8 in, ``(T, 4H, 4W, 3)`` out) made
by a factory named by its import path, resolved only when the method is asked for: a broken optional dependency of
one method never breaks the others. Its options are a frozen dataclass of :mod:`sete_vsr.method_options`, parsed
from text or typed values once (:func:`parse_method_options`) before the factory runs.

An instance name ``METHOD:INSTANCE`` (``sete-vsr:stage1``) is the registered
``METHOD`` under a name of its own, so that one method can be compared with
itself under other options (models of several training stages, ablations): it
has its own options, output cache and label (``sete-vsr:stage1``, or
``sete-vsr:stage1-untrained`` when the method says it is untrained).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from . import method_options as mo
from .baselines.registry import BASELINES
from .errors import SeteVSRError
from .registry import Entry, Registry, non_default_options, parse_options
from .vsr_method import VSRMethod

__all__ = [
    "METHODS",
    "VSRMethod",
    "available_methods",
    "build_method",
    "is_method",
    "load_method",
    "method_options",
    "parse_method_options",
    "register_method",
    "resolve_method_options",
    "split_instance",
    "upscale_in_chunks",
]


def _baseline_entries():
    """Every CNN baseline of :data:`~sete_vsr.baselines.registry.BASELINES`, and its adapted and plug-in forms."""
    for name, spec in BASELINES.items():
        edvr = spec.arch == "edvr"
        yield Entry(
            name, "sete_vsr.baselines.registry:load_baseline", spec.description,
            mo.runner_options(spec.arch), {"name": name},
        )  # fmt: skip
        # adapted to every clip before restoring it (test-time adaptation, paper 004)
        yield Entry(
            f"{name}+adapt", "sete_vsr.adaptation.per_clip:TestTimeAdaptedMethod",
            f"{spec.description}, adapted to each clip (self-supervised, paper 004)",
            mo.SlidingWindowAdaptationOptions if edvr else mo.RecurrentAdaptationOptions, {"base": name},
        )  # fmt: skip
        # with SEEM (paper 000); trained weights from `accelerate launch -m sete_vsr.plugins.train_seem`
        if spec.arch in ("basicvsr", "edvr"):
            yield Entry(
                f"{name}+seem", "sete_vsr.plugins.plugin_methods:SEEMMethod",
                f"{spec.description}, with SEEM (paper 000)",
                mo.SlidingWindowSEEMOptions if edvr else mo.RecurrentSEEMOptions, {"base": name},
            )  # fmt: skip
        # with the Semantic Lens blocks (paper 001), SAM2 semantics; weights from sete_vsr.plugins.train_semantic_lens
        if spec.arch == "basicvsr":
            yield Entry(
                f"{name}+semantic-lens", "sete_vsr.plugins.plugin_methods:SemanticLensMethod",
                f"{spec.description}, with the Semantic Lens blocks (paper 001)",
                mo.SemanticLensOptions, {"base": name},
            )  # fmt: skip


# Every method by name. Factories are called as ``factory(options=options, **presets)`` (:meth:`Entry.build`).
METHODS = Registry(
    "method",
    (
        Entry("bicubic", "sete_vsr.baselines.bicubic:BicubicUpsampler", "bicubic x4 (MATLAB)", mo.BicubicOptions),
        Entry("sete-vsr", "sete_vsr.pipelines.sete_method:SeTeVSRMethod", "SeTe-VSR (diffusion)", mo.SeTeVSROptions),
        *_baseline_entries(),
        Entry(
            "adapted", "sete_vsr.adaptation.saved_weights:build_adapted_method",
            "a network saved by `sete-vsr adapt --save-weights` (option weights=FILE)", mo.AdaptedOptions,
        ),  # fmt: skip
    ),
)


# the INSTANCE of METHOD:INSTANCE: a name fit for a label and a folder
_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def register_method(name: str, target: str, options: type, label: str = "", **presets) -> None:
    """Make ``load_method(name)`` call ``target`` (``"module:factory"``) as ``factory(options=..., **presets)``.

    ``options``: the frozen dataclass of its options (:mod:`sete_vsr.method_options`).
    """
    if ":" in name:
        raise SeteVSRError(f"method names cannot hold ':' (it starts an instance name): {name!r}")
    METHODS.add(Entry(name, target, label, options, presets))


def available_methods() -> list[str]:
    """Registered names accepted by :func:`load_method` (each also as ``NAME:INSTANCE``)."""
    return sorted(METHODS.names())


def split_instance(name: str) -> tuple[str, str | None]:
    """``"sete-vsr:stage1"`` -> ``("sete-vsr", "stage1")``; a name without ``:`` -> ``(name, None)``.

    Raises:
        SeteVSRError: an instance part that is not a plain name (letters, digits, ``.``, ``_``, ``+``, ``-``).
    """
    method, colon, instance = name.partition(":")
    if not colon:
        return name, None
    if not _INSTANCE.fullmatch(instance):
        raise SeteVSRError(
            f"bad method instance {name!r}: METHOD:INSTANCE takes an INSTANCE of letters, digits, '.', '_', '+', '-'"
        )
    return method, instance


def is_method(name: str) -> bool:
    """Whether :func:`load_method` knows ``name``, a registered name or an instance of one."""
    return split_instance(name)[0] in METHODS


def method_entry(name: str) -> Entry:
    """The registry entry of method ``name`` (an instance ``METHOD:INSTANCE`` has ``METHOD``'s)."""
    return METHODS[split_instance(name)[0]]


def method_options(name: str) -> frozenset[str]:
    """The option names ``load_method(name, ...)`` accepts (the fields of its options dataclass)."""
    return method_entry(name).option_names()


def parse_method_options(name: str, given: Mapping[str, Any], runtime: Mapping[str, Any] | None = None):
    """Method ``name``'s options dataclass from ``given`` (text or typed values), checked once.

    ``runtime``: options offered to the method (``device``, ``progress``), taken only where it has them and where
    ``given`` does not set them.

    Raises:
        SeteVSRError: an option the method does not take, a value that does not convert, a failed check.
    """
    entry = method_entry(name)
    offered = {k: v for k, v in (runtime or {}).items() if k in entry.option_names() and k not in given}
    return parse_options(entry.options, {**offered, **given}, name)


def resolve_method_options(
    names: list[str],
    common: Mapping[str, Any] | None = None,
    scoped: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The options dataclass of every method of ``names``, from options for all and for one.

    Args:
        names: method names (instances included).
        common: options for every method that takes them (``device``, ``checkpoint``...).
        scoped: ``{name: options}`` for that method alone, over ``common``; every key must be taken.

    Raises:
        SeteVSRError: options scoped to a method not among ``names``, or options a method does not take.
    """
    common, scoped = dict(common or {}), dict(scoped or {})
    unknown = sorted(set(scoped) - set(names))
    if unknown:
        raise SeteVSRError(
            f"options given for {', '.join(unknown)}, which is not among the methods evaluated ({', '.join(names)})"
        )
    return {name: parse_method_options(name, scoped.get(name, {}), common) for name in names}


def output_options(options: Any) -> dict[str, str]:
    """The options that change a method's output: fields off their defaults, runtime options left out, as text."""
    changed = non_default_options(options)
    return {k: str(changed[k]) for k in sorted(changed) if k not in mo.RUNTIME_OPTIONS}


def build_method(name: str, options: Any) -> VSRMethod:
    """Build method ``name`` from its parsed options (:func:`parse_method_options`).

    An instance ``METHOD:INSTANCE`` builds ``METHOD`` and names it ``name``, or ``name-untrained`` when the built
    method is not :attr:`~VSRMethod.trained`.
    """
    method = method_entry(name).build(options)
    if split_instance(name)[1] is not None:
        method.name = name if method.trained else f"{name}-untrained"
    return method


def load_method(name: str, **options) -> VSRMethod:
    """Build the method called ``name`` with ``options`` (text or typed values, e.g. ``device``, ``checkpoint``).

    Raises:
        SeteVSRError: an unknown name, or an option the method does not take or that does not convert.
    """
    return build_method(name, parse_method_options(name, options))


def with_runtime(options: Any, **runtime: Any) -> Any:
    """``options`` with the runtime options of ``runtime`` it has (``device``, ``progress``) replaced."""
    names = {f.name for f in dataclasses.fields(options)}
    return dataclasses.replace(options, **{k: v for k, v in runtime.items() if k in names})


def upscale_in_chunks(method: VSRMethod, frames: np.ndarray, chunk_frames: int = 100) -> Iterator[np.ndarray]:
    """Run ``method`` on chunks of at most ``chunk_frames`` frames with context, yielding the output in order.

    Each chunk sees up to 10 frames of context on each side (fewer for short chunks), which are cut from its output,
    so only one chunk of the (16 times larger) output is held at a time.

    Args:
        method: any method.
        frames: ``(T, H, W, 3)`` uint8 low-resolution frames.
        chunk_frames: frames per call of the method.

    Yields:
        ``(t, 4H, 4W, 3)`` uint8 consecutive parts of the output, ``T`` frames in all.
    """
    from .baselines.runners import chunk_ranges

    context = min(10, (chunk_frames - 1) // 2)
    for first, stop, keep_start, keep_stop in chunk_ranges(len(frames), chunk_frames, context):
        yield method(frames[first:stop])[keep_start - first : keep_stop - first]
