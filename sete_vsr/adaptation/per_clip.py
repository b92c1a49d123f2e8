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

from ..methods import VSRMethod
from ..options import as_bool
from .self_supervised import AdaptationConfig, line5_downscaling, run_algorithm


def _number(value, kind):
    """Command-line options arrive as strings."""
    return kind(value) if isinstance(value, str) else value


class TestTimeAdaptedMethod(VSRMethod):
    """A baseline adapted per clip (Algorithm 1 of paper 004) before it restores the clip.

    Args:
        base: registry name of the starting checkpoint (``"basicvsr-vimeo-bi"``).
        checkpoint: local checkpoint path for ``base`` (otherwise found or downloaded).
        device: torch device of the network.
        iterations, learning_rate, batch_size, patch_size, num_frames, seed: the
            :class:`~sete_vsr.adaptation.self_supervised.AdaptationConfig` fields (paper defaults).
        freeze: comma-separated parameter-name prefixes kept fixed (``"spynet"``).
        kernel: line 5's downscaling kernel, ``bicubic``, ``gaussian`` or ``gaussian:SIGMA``; default: the
            degradation ``base`` was trained for (required for real-world bases).
        progress: show progress bars.
        **options: passed to the base method wrapper (``chunk_length``, ...).

    Raises:
        SeteVSRError: a real-world base without ``kernel``, or a kernel that cannot be parsed (before any
            checkpoint is loaded).
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        base: str = "basicvsr-vimeo-bi",
        checkpoint: str | None = None,
        device: str | None = None,
        iterations: int | str = 1000,
        learning_rate: float | str = 1e-5,
        batch_size: int | str = 4,
        patch_size: int | str = 256,
        num_frames: int | str = 7,
        seed: int | str = 0,
        freeze: str | tuple[str, ...] = (),
        kernel: str | None = None,
        progress: bool | str = True,
        **options,
    ):
        from ..baselines.registry import load_baseline

        if isinstance(freeze, str):
            freeze = tuple(prefix for prefix in freeze.split(",") if prefix)
        self.config = AdaptationConfig(
            iterations=_number(iterations, int),
            learning_rate=_number(learning_rate, float),
            batch_size=_number(batch_size, int),
            patch_size=_number(patch_size, int),
            num_frames=_number(num_frames, int),
            seed=_number(seed, int),
            freeze=tuple(freeze),
            degradation=line5_downscaling(base, kernel),
        )
        self.progress = as_bool(progress)
        self.base = load_baseline(base, checkpoint, device=device, progress=self.progress, **options)
        self.name = f"{base}+adapt"
        self._initial_state = copy.deepcopy(self.base.model.state_dict())
        self.last_losses: list[float] = []  # MSE per iteration on the last clip

    @classmethod
    def accepted_options(cls, base: str = "basicvsr-vimeo-bi") -> frozenset[str]:
        """The options of ``__init__`` and of ``base``'s method wrapper (read by ``load_method``)."""
        from ..baselines.runners import wrapper_options
        from ..baselines.registry import get_spec
        from ..methods import signature_options

        return signature_options(cls) | wrapper_options(get_spec(base).arch)

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """Adapt the base weights to ``frames`` ``(T, H, W, 3)`` uint8, restore them, then reset the weights."""
        self.base.model.load_state_dict(self._initial_state)
        try:
            result = run_algorithm(self.base, frames, None, self.config, self.progress)
        finally:
            self.base.model.load_state_dict(self._initial_state)
        self.last_losses = result.losses
        return result.frames
