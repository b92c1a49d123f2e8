"""sete-vsr: diffusion-based real-world video super-resolution (x4).

Top-level names are imported lazily: ``import sete_vsr`` loads neither torch
nor any training or metric dependency until a name is used.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "SeTeUNetModel": ".models",
    "SemanticEncoder": ".models",
    "SeTeVSRPipeline": ".pipelines",
    "VSRMethod": ".methods",
    "load_method": ".methods",
    "available_methods": ".methods",
    "SeteVSRError": ".errors",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
