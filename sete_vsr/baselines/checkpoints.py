"""Reading official checkpoints (BasicSR and mmagic/mmedit layouts) into the baseline architectures.

* BasicSR: ``{"params": state_dict}`` (GAN models also ``"params_ema"``), names as in our modules.
* mmagic / mmedit: ``{"meta": ..., "state_dict": {"generator.<key>": ..., "generator_ema.<key>": ...,
  "discriminator.<key>": ...}}``, with mmcv ``ConvModule`` wrappers (``.conv.``) and a few
  renamed modules. :func:`mmagic_to_basicsr` converts the names (PROTOCOLS.md section 5.2);
  :func:`basicsr_to_mmagic` is its inverse.

EMA weights are preferred whenever a checkpoint carries them (what both frameworks use at test time).
Files are always read with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch
from torch import nn

from ..errors import SeteVSRError

StateDict = dict[str, torch.Tensor]

# The module renames of PROTOCOLS.md 5.2, each written once as (mmagic name, BasicSR name, the alternatives of its
# placeholders {0}, {1}); both directions are made from it by :func:`_renames`.
_NAME_PAIRS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("{0}_resblocks.", "{0}_trunk.", ("backward|forward",)),
    ("upsample{0}.upsample_conv.", "upconv{0}.", ("[12]",)),
    ("feat_l{0}_conv{1}.", "conv_l{0}_{1}.", ("[23]", "[12]")),
    ("pcd_alignment.", "pcd_align.", ()),
)


def _renames(to_basicsr: bool) -> list[tuple[re.Pattern, str]]:
    """:data:`_NAME_PAIRS` as ``(pattern, replacement)`` rules from mmagic to BasicSR names, or back."""
    rules = []
    for mmagic, basicsr, alternatives in _NAME_PAIRS:
        source, target = (mmagic, basicsr) if to_basicsr else (basicsr, mmagic)
        groups = [f"({alternative})" for alternative in alternatives]
        pattern = re.compile(r"(^|\.)" + source.replace(".", r"\.").format(*groups))
        rules.append((pattern, r"\1" + target.format(*(rf"\{i + 2}" for i in range(len(groups))))))
    return rules


# SPyNet's ConvModule index j is the Sequential index 2j (ReLUs between); mmagic wraps some EDVR convs in a
# ConvModule (``.conv.`` before weight and bias).
_SPYNET_CONV = re.compile(r"(spynet\.basic_module\.\d+\.basic_module\.)(\d+)\.")
_MMAGIC_TO_BASICSR: list[tuple[re.Pattern, object]] = [
    (
        re.compile(r"(spynet\.basic_module\.\d+\.basic_module\.)(\d+)\.conv\."),
        lambda m: f"{m.group(1)}{2 * int(m.group(2))}.",
    ),
    *_renames(to_basicsr=True),
    (re.compile(r"\.conv\.(weight|bias)$"), r".\1"),
]

# Modules that mmagic wraps in a ConvModule (EDVR), in BasicSR names.
_MMAGIC_CONV_MODULES = re.compile(
    r"(^|\.)(conv_l[23]_[12]"
    r"|pcd_align\.(offset_conv[123]\.l[123]|feat_conv\.l[12]|cas_offset_conv[12])"
    r"|fusion\.(feat_fusion|spatial_attn[1-4]|spatial_attn_l[1-3]|spatial_attn_add1))\.(weight|bias)$"
)

_BASICSR_TO_MMAGIC: list[tuple[re.Pattern, object]] = [
    (_MMAGIC_CONV_MODULES, lambda m: m.group(0)[: -len(m.group(5))] + "conv." + m.group(5)),
    (_SPYNET_CONV, lambda m: f"{m.group(1)}{int(m.group(2)) // 2}.conv."),
    *_renames(to_basicsr=False),
]


def _rename(state_dict: Mapping[str, torch.Tensor], rules) -> StateDict:
    renamed: StateDict = {}
    for key, value in state_dict.items():
        new_key = key
        for pattern, replacement in rules:
            new_key = pattern.sub(replacement, new_key)
        renamed[new_key] = value
    return renamed


def mmagic_to_basicsr(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename an mmagic generator state dict (prefix already stripped) to BasicSR names.

    Keys already in BasicSR names are left unchanged, so this is safe on either layout.
    """
    return _rename(state_dict, _MMAGIC_TO_BASICSR)


def basicsr_to_mmagic(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a BasicSR state dict to mmagic generator names (no ``generator.`` prefix); inverse of the above."""
    return _rename(state_dict, _BASICSR_TO_MMAGIC)


def extract_generator_state_dict(checkpoint: object, source: str = "checkpoint") -> StateDict:
    """The generator's tensors from a loaded checkpoint object, in the names the file uses.

    Accepts BasicSR (``params_ema`` preferred over ``params``), mmagic/mmedit (``state_dict``
    with ``generator_ema.`` preferred over ``generator.``, prefix stripped) and a bare state dict.
    """
    if not isinstance(checkpoint, Mapping):
        raise SeteVSRError(f"{source}: expected a dict of tensors, got {type(checkpoint).__name__}")
    for key in ("params_ema", "params"):
        if key in checkpoint:
            return dict(checkpoint[key])
    state_dict = checkpoint.get("state_dict", checkpoint)
    for prefix in ("generator_ema.", "generator."):
        selected = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if selected:
            return selected
    tensors = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SeteVSRError(f"{source}: no tensors found (keys: {', '.join(list(checkpoint)[:8])})")
    return tensors


def read_checkpoint(path: str | PathLike) -> StateDict:
    """Load a checkpoint file and return the generator state dict in BasicSR names."""
    path = Path(path)
    if not path.is_file():
        raise SeteVSRError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or corrupt file: say which file
        raise SeteVSRError(f"cannot read checkpoint {path}: {err}") from err
    return mmagic_to_basicsr(extract_generator_state_dict(checkpoint, source=str(path)))


def _summarise(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """``model.load_state_dict(state_dict, strict=True)``, failing with a SeteVSRError that names every problem.

    ``state_dict`` may be in BasicSR or mmagic names (it is converted first).
    """
    state_dict = mmagic_to_basicsr(state_dict)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{key} {tuple(state_dict[key].shape)} vs {tuple(expected[key].shape)}"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_summarise(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_summarise(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches (checkpoint vs model): {_summarise(mismatched)}")
    if problems:
        raise SeteVSRError(f"{source} does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint(model: nn.Module, path: str | PathLike) -> nn.Module:
    """Load an official checkpoint file (either layout) into ``model`` strictly; returns ``model``."""
    load_state_dict_strict(model, read_checkpoint(path), source=str(path))
    return model


def save_weights_file(model: nn.Module, path: str | PathLike, metadata: Mapping[str, object], fmt: str) -> Path:
    """Write ``model``'s state dict to the safetensors file ``path`` with ``metadata`` and ``format=fmt``.

    Metadata values are stored JSON-encoded (any JSON value). The file is written under a temporary name and
    renamed, so it is never partial. Returns ``path``. The self-describing weights of the SEEM, Semantic Lens
    and adapted networks all use this layout; :func:`read_weights_file` reads it back.
    """
    import json

    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    state_dict = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    encoded = {key: json.dumps(value) for key, value in {**metadata, "format": fmt}.items()}
    try:
        save_file(state_dict, str(temp), metadata=encoded)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def read_weights_file(path: str | PathLike, fmt: str, what: str) -> tuple[StateDict, dict]:
    """``(state_dict, decoded metadata)`` of a file written by :func:`save_weights_file` with ``format=fmt``.

    Raises:
        SeteVSRError: a missing or unreadable file, or one of another format (``what`` names the kind in messages).
    """
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise SeteVSRError(f"{what} not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = {key: json.loads(value) for key, value in (f.metadata() or {}).items()}
        state_dict = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise SeteVSRError(f"cannot read {what} {path}: {err}") from err
    if metadata.get("format") != fmt:
        raise SeteVSRError(f"{path} is not a {what} file (no format={fmt!r} metadata)")
    return state_dict, metadata
