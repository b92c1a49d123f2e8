"""Building a SeTe-VSR pipeline: from Stable Diffusion 2.1 + SAM2 (untrained, ready for stage 1) or the tiny preset.

* :func:`from_sd21` (also ``SeTeVSRPipeline.from_sd21`` and ``sete-vsr init DIR``): an untrained pipeline converted
  from SD 2.1 and SAM2, every pretrained tensor copied and every new branch at zero;
* :func:`tiny_pipeline` (also ``sete-vsr init --preset tiny --random-weights DIR``): the same layout at toy width with
  random weights; it runs every code path in seconds on a CPU and produces noise, not super-resolution.

The components themselves are built in :mod:`sete_vsr.pipelines.components`.
"""

from __future__ import annotations

from typing import Any

from .components import tiny_components
from .pipeline import SeTeVSRPipeline


def from_sd21(*args: Any, **kwargs: Any) -> SeTeVSRPipeline:
    """Assemble an untrained SeTe-VSR pipeline from Stable Diffusion 2.1 and SAM2.

    The same as :meth:`SeTeVSRPipeline.from_sd21 <sete_vsr.pipelines.pipeline.SeTeVSRPipeline.from_sd21>`: the
    arguments are those of :func:`sete_vsr.pipelines.components.sd21_components`, and ``torch_dtype``.
    """
    return SeTeVSRPipeline.from_sd21(*args, **kwargs)


def tiny_pipeline(seed: int = 0, temporal: bool = True, unet_options: dict[str, Any] | None = None) -> SeTeVSRPipeline:
    """A SeTe-VSR pipeline of toy width with random weights, for tests and setup checks (its output is noise).

    See :func:`sete_vsr.pipelines.components.tiny_components` for the layout and the arguments.
    """
    return SeTeVSRPipeline(**tiny_components(seed=seed, temporal=temporal, unet_options=unet_options))
