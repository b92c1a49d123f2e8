"""Self-supervised test-time adaptation of VSR networks (paper 004) and its distillation variant.

* :func:`adapt` (Algorithm 1): a network tunes itself on pseudo pairs cut from its own
  restoration of the test clip, then restores the clip again.
* :func:`distill` (Algorithm 2): a small student tunes on pseudo pairs from a teacher's restoration.
* :func:`save_adapted_weights` / :func:`load_adapted_method`: adapted networks as safetensors.

Names are imported on first use, so ``import sete_vsr.adaptation`` does not import torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "AdaptationConfig": ".self_supervised",
    "AdaptationResult": ".self_supervised",
    "PseudoPairSampler": ".self_supervised",
    "adapt": ".self_supervised",
    "adapt_module": ".self_supervised",
    "distill": ".distillation",
    "load_adapted_method": ".saved_weights",
    "load_adapted_model": ".saved_weights",
    "save_adapted_weights": ".saved_weights",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
