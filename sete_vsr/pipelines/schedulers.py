"""The diffusers schedulers a SeTe-VSR pipeline can sample with, by the names of :data:`sete_vsr.options.SCHEDULERS`.

Each is made from the pipeline's own scheduler config (same noise schedule and prediction type), as
``Scheduler.from_config(pipe.scheduler.config)`` does in diffusers.
"""

from __future__ import annotations

from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

from ..errors import SeteVSRError
from ..options import SCHEDULERS

# name -> (class, extra config)
_CLASSES = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "dpmsolver++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "unipc": (UniPCMultistepScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
}
assert set(_CLASSES) == set(SCHEDULERS)


def use_scheduler(pipe, name: str) -> None:
    """Replace ``pipe.scheduler`` by the scheduler ``name`` made from its config.

    Raises:
        SeteVSRError: an unknown name.
    """
    if name not in _CLASSES:
        raise SeteVSRError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {name!r}")
    scheduler_class, extra = _CLASSES[name]
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config, **extra)
