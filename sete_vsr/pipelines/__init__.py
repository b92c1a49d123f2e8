"""The SeTe-VSR diffusion pipeline, temporal windows and spatial tiles."""

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
