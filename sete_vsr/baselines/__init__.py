"""CNN baselines (bicubic, BasicVSR, BasicVSR++, RealBasicVSR, EDVR) and official checkpoint loading.

Architectures are pure PyTorch with BasicSR parameter names, so BasicSR checkpoints load
unchanged and mmagic/mmedit ones after a fixed renaming (:mod:`.checkpoints`). Official
checkpoints are known by name in :mod:`.registry`; :func:`load_baseline` returns one behind
the common method interface (also reachable as ``sete_vsr.load_method(name)``).
"""

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "SpyNet": ".spynet",
    "BasicVSR": ".basicvsr",
    "BasicVSRPlusPlus": ".basicvsr_pp",
    "RealBasicVSR": ".realbasicvsr",
    "EDVR": ".edvr",
    "DCNv2Pack": ".dcn",
    "SecondOrderDeformableAlignment": ".dcn",
    "flow_warp": ".flow_warp",
    "BASELINES": ".registry",
    "load_baseline": ".registry",
    "load_baseline_model": ".registry",
    "load_checkpoint": ".checkpoints",
    "mmagic_to_basicsr": ".checkpoints",
    "basicsr_to_mmagic": ".checkpoints",
    "RecurrentBaselineMethod": ".runners",
    "SlidingWindowBaselineMethod": ".runners",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
