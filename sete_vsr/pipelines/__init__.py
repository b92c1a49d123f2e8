"""The SeTe-VSR diffusion pipeline, temporal windows and spatial tiles."""

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "SeTeVSRPipeline": ".pipeline",
    "SeTeVSRPipelineOutput": ".pipeline",
    "bicubic_upsample": ".pipeline",
    "from_sd21": ".assemble",
    "tiny_pipeline": ".assemble",
    "color_correct": ".color",
    "wavelet_color_fix": ".color",
    "adain_color_fix": ".color",
    "SeTeVSRMethod": ".sete_method",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
