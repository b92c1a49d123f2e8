"""How a call samples: the scheduler's timesteps (a count, custom ``timesteps`` or ``sigmas``, cut by ``strength``), the
starting latents (pure noise, or noised LR latents), and classifier-free guidance.

``strength`` follows diffusers' image-to-image pipelines: ``1.0`` (the default, as in the paper) starts from pure
noise; below it, sampling starts ``strength`` of the way through the schedule from the LR latents (the VAE encoding of
the bicubic-upsampled LR frames) noised to that level, and runs only the remaining steps. Lower values keep more of the
input and add less generated detail.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..errors import SeteVSRError


@dataclass(frozen=True)
class Sampling:
    """The sampling settings of one call.

    Attributes:
        num_inference_steps: steps of the full schedule (ignored when ``timesteps`` or ``sigmas`` are given).
        timesteps: custom descending timesteps, for schedulers whose ``set_timesteps`` takes them.
        sigmas: custom descending noise levels, for schedulers whose ``set_timesteps`` takes them.
        strength: fraction of the schedule run, in (0, 1] (see the module docstring).
        guidance_scale: classifier-free guidance weight; guidance runs only above 1.
    """

    num_inference_steps: int
    timesteps: tuple[int, ...] | None = None
    sigmas: tuple[float, ...] | None = None
    strength: float = 1.0
    guidance_scale: float = 1.0

    @property
    def guided(self) -> bool:
        """Whether classifier-free guidance runs (two U-Net passes per window: negative and positive prompt)."""
        return self.guidance_scale > 1

    def check(self, scheduler: SchedulerMixin) -> None:
        """Raise a one-line :class:`SeteVSRError` for settings ``scheduler`` cannot follow."""
        if self.timesteps is not None and self.sigmas is not None:
            raise SeteVSRError("pass either timesteps or sigmas, not both")
        for name in ("timesteps", "sigmas"):
            if getattr(self, name) is None:
                continue
            if name not in inspect.signature(scheduler.set_timesteps).parameters:
                raise SeteVSRError(f"{type(scheduler).__name__} does not take custom {name}; use num_inference_steps")
            if not getattr(self, name):
                raise SeteVSRError(f"{name} is empty")
        if self.timesteps is None and self.sigmas is None and self.num_inference_steps < 1:
            raise SeteVSRError(f"num_inference_steps must be at least 1, got {self.num_inference_steps}")
        if not 0 < self.strength <= 1:
            raise SeteVSRError(f"strength (noise level) must be in (0, 1], got {self.strength}")

    def set_timesteps(self, scheduler: SchedulerMixin, device: torch.device) -> torch.Tensor:
        """Set ``scheduler``'s schedule anew (so multistep solvers start afresh) and return the timesteps to run,
        the last ``strength`` of it.

        Raises:
            SeteVSRError: a ``strength`` so low that no step is left.
        """
        if self.timesteps is not None:
            scheduler.set_timesteps(timesteps=list(self.timesteps), device=device)
        elif self.sigmas is not None:
            scheduler.set_timesteps(sigmas=list(self.sigmas), device=device)
        else:
            scheduler.set_timesteps(self.num_inference_steps, device=device)
        steps = len(scheduler.timesteps) // scheduler.order
        run = min(int(steps * self.strength), steps)
        if run < 1:
            raise SeteVSRError(f"strength {self.strength} leaves no denoising step of {steps}; raise it or the steps")
        start = (steps - run) * scheduler.order
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        return scheduler.timesteps[start:]

    def initial_latents(
        self, scheduler: SchedulerMixin, noise: torch.Tensor, lr_latents: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """The latents sampling starts from, `(n, C, h, w)` float32: ``noise`` `(n, C, h, w)` scaled to the scheduler's
        starting level, or, below full strength, the LR latents `(n, C, h, w)` noised to the first of ``timesteps``."""
        if self.strength == 1:
            return noise * scheduler.init_noise_sigma
        return scheduler.add_noise(lr_latents.float(), noise, timesteps[:1])

    def guide(self, prediction: torch.Tensor) -> torch.Tensor:
        """`(2 n, ...)` predictions for the negative then the positive prompt -> the guided `(n, ...)` one."""
        negative, positive = prediction.chunk(2)
        return negative + self.guidance_scale * (positive - negative)
