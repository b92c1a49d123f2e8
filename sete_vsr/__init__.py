"""sete-vsr: diffusion-based real-world video super-resolution (x4).

Top-level names are imported lazily: ``import sete_vsr`` loads neither torch
nor any training or metric dependency until a name is used.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "SeTeUNetModel": ".models",
    "SemanticEncoder": ".models",
    "TemporalAutoencoderKL": ".models",
    "SeTeVSRPipeline": ".pipelines",
    "VSRMethod": ".vsr_method",
    "load_method": ".methods",
    "available_methods": ".methods",
    "SeteVSRError": ".errors",
}

# A saved pipeline's model_index.json names its components ["sete_vsr", "<ClassName>"]. diffusers picks the loading
# method of such a component by finding one of its own base classes in that same module, so ModelMixin is reachable
# here too (not part of the public API).
_DIFFUSERS_LOOKUP = {"ModelMixin": "diffusers"}

__getattr__, __dir__ = lazy_exports(__name__, {**_EXPORTS, **_DIFFUSERS_LOOKUP})
__all__ = sorted(_EXPORTS)
