"""Option values that users write as text (the command line, ``--method-option key=value``), read one way everywhere.

* :func:`as_bool`: ``true``/``false`` (and ``1``/``0``, ``yes``/``no``, ``on``/``off``); anything else is an error;
* :data:`DTYPES` and :func:`torch_dtype`: the model dtypes by name (``fp32``, ``fp16``, ``bf16``);
* :func:`default_device`: the device used when none is given; :func:`has_accelerator`: whether there is a GPU (or
  another torch accelerator), else processes run on the CPU;
* :data:`COLOR_FIXES`: the colour corrections of :mod:`sete_vsr.pipelines.color` by name;
* :data:`SCHEDULERS`: the samplers of :mod:`sete_vsr.pipelines.schedulers` by name.

Nothing here imports torch until a function needs it, so the command line can build its choices cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import SeteVSRError

if TYPE_CHECKING:
    import torch

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# Model dtypes by the name users type -> the name of the torch dtype.
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
COLOR_FIXES: tuple[str, ...] = ("wavelet", "adain")
# How the denoising loop cuts frames into windows (sete_vsr.pipelines.segments); the first is the default.
WINDOW_MODES: tuple[str, ...] = ("shifted", "blended")
# Samplers by the name users type (made by sete_vsr.pipelines.schedulers from the model's scheduler config).
SCHEDULERS: tuple[str, ...] = ("ddpm", "ddim", "dpmsolver++", "unipc", "euler")


def as_bool(value: Any) -> bool:
    """A boolean option: a bool, a word of :data:`TRUE_WORDS` or :data:`FALSE_WORDS` (any case), or a truth value.

    Raises:
        SeteVSRError: a string that is none of those words (``"flase"`` is not read as false).
    """
    if not isinstance(value, str):
        return bool(value)
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise SeteVSRError(f"expected a boolean option (true/false), got {value!r}")


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a :data:`DTYPES` name.

    Raises:
        SeteVSRError: an unknown name.
    """
    if name not in DTYPES:
        raise SeteVSRError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    import torch

    return getattr(torch, DTYPES[name])


def default_device() -> str:
    """``"cuda"`` when CUDA is available, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def has_accelerator() -> bool:
    """Whether torch sees an accelerator (CUDA, XPU, MPS...); several processes without one run on CPUs over gloo."""
    import torch

    accelerator = getattr(torch, "accelerator", None)
    return bool(accelerator.is_available()) if accelerator is not None else torch.cuda.is_available()
