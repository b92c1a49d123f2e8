"""Test-time adaptation as a method: every clip is restored by the base network adapted to that clip.

``load_method("basicvsr-vimeo-bi+adapt", iterations=1000)`` is what goes into an evaluation table next
to ``basicvsr-vimeo-bi``: for each clip, Algorithm 1 runs from the official weights (the initial
restoration, the self-supervised tuning, the final restoration), and the weights are put back before the
next clip, so clips never see each other's adaptation. The pseudo inputs are made with the degradation the base
was trained for (BI or BD, :attr:`~sete_vsr.baselines.registry.BaselineSpec.degradation`); a real-world base
(``realbasicvsr+adapt``) is refused unless ``kernel=`` names one.
"""

from __future__ import annotations

import copy

import numpy as np

from ..method_options import (
    AdaptationFields,
    RecurrentAdaptationOptions,
    SlidingWindowAdaptationOptions,
    options_for_runner,
)
from ..registry import option_names
from ..vsr_method import VSRMethod
from .self_supervised import AdaptationConfig, line5_downscaling, run_algorithm


class TestTimeAdaptedMethod(VSRMethod):
    """A baseline adapted per clip (Algorithm 1 of paper 004) before it restores the clip.

    Args:
        options: the adaptation settings (:class:`~sete_vsr.adaptation.self_supervised.AdaptationConfig` fields,
            paper defaults; ``kernel``: line 5's downscaling, default the degradation ``base`` was trained for) and
            the base's runner options (``checkpoint``, ``device``, ``chunk_length``...; an EDVR base restores one
            window per pass, as ``batch_size`` is the adaptation batch).
        base: registry name of the starting checkpoint (``"basicvsr-vimeo-bi"``).

    Raises:
        SeteVSRError: a real-world base without ``kernel``, or a kernel that cannot be parsed (before any
            checkpoint is loaded).
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, options: RecurrentAdaptationOptions | SlidingWindowAdaptationOptions, base: str):
        from ..baselines.registry import get_spec, load_baseline

        settings = {name: getattr(options, name) for name in option_names(AdaptationFields) - {"kernel"}}
        self.config = AdaptationConfig(**settings, degradation=line5_downscaling(base, options.kernel))
        self.progress = options.progress
        # an EDVR base restores one window per pass: batch_size is the adaptation's
        self.base = load_baseline(options_for_runner(get_spec(base).arch, options, leave_out=("batch_size",)), base)
        self.name = f"{base}+adapt"
        self._initial_state = copy.deepcopy(self.base.model.state_dict())
        self.last_losses: list[float] = []  # MSE per iteration on the last clip

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """Adapt the base weights to ``frames`` ``(T, H, W, 3)`` uint8, restore them, then reset the weights."""
        self.base.model.load_state_dict(self._initial_state)
        try:
            result = run_algorithm(self.base, frames, None, self.config, self.progress)
        finally:
            self.base.model.load_state_dict(self._initial_state)
        self.last_losses = result.losses
        return result.frames
