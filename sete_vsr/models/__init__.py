"""SeTe U-Net, attention blocks, SAM2 semantic encoder, temporal VAE, and the blending of windows and tiles."""

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "SeTeUNetModel": ".unet",
    "SeTeUNetOutput": ".unet",
    "SemanticEncoder": ".semantic_encoder",
    "SemanticTransformerBlock": ".attention",
    "TemporalTransformer": ".attention",
    "TemporalSpatialAwarenessModule": ".attention",
    "SeTeTransformer2DModel": ".attention",
    "LatentConcatConditioning": ".conditioning",
    "SemanticTokenizer": ".conditioning",
    "TemporalAutoencoderKL": ".temporal_vae",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
