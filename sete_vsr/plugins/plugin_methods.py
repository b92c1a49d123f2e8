"""A baseline with SEEM as a method: ``load_method("basicvsr-vimeo-bi+seem", seem_weights=FILE)``; and BasicVSR with
the Semantic Lens blocks: ``load_method("basicvsr-vimeo-bi+semantic-lens")`` (:class:`SemanticLensMethod`).

It goes into evaluation tables next to the base network (``basicvsr-vimeo-bi``) and its test-time adaptation
(``basicvsr-vimeo-bi+adapt``). Each clip runs as the base method runs it (recurrent chunks for BasicVSR, a sliding
window for EDVR; :mod:`sete_vsr.baselines.runners`), and the SAM2 masks of the LR frames are made chunk by chunk
(window batch by window batch), at the LR size the network sees, so memory stays bounded by one chunk.

Without ``seem_weights`` the SEEM modules are at their initialisation, where they add exactly zero: the method is
the base network, untrained SEEM included (its name says ``+seem-untrained`` and :attr:`SEEMMethod.trained` is
false). Trained weights come from ``accelerate launch -m sete_vsr.plugins.train_seem``.
"""

from __future__ import annotations

import numpy as np

from ..methods import VSRMethod
from ..options import as_bool
from .sam_prior import DEFAULT_SAM2_MODEL


class SEEMMethod(VSRMethod):
    """BasicVSR or EDVR with SEEM (SEEM paper, Sec. 3), masks from SAM2 on the LR frames.

    Args:
        base: registry name of the base network (``"basicvsr-vimeo-bi"``, ``"edvr-m-reds"``, ...).
        checkpoint: the base checkpoint (otherwise found or downloaded as
            :func:`~sete_vsr.baselines.registry.resolve_checkpoint` does); unused with ``seem_weights``, which
            hold every tensor.
        seem_weights: a ``seem_model.safetensors`` written by :mod:`sete_vsr.plugins.train_seem`; ``None`` leaves
            SEEM untrained (output equal to the base network's).
        sam2: Hub id or local ``Sam2Model.save_pretrained`` folder of the mask generator; default: the one the
            weights were trained with, else :data:`~sete_vsr.plugins.sam_prior.DEFAULT_SAM2_MODEL`.
        mask_backend: ``"transformers"``, ``"sam2"`` or ``"auto"``; default: as trained, else ``"transformers"``.
        points_per_side: ``N_g`` of the point grid; default: as trained, else 8.
        device: torch device of the network and of SAM2; default CUDA when available.
        progress: show a progress bar.
        name: the method's name; default ``"<base>+seem"``, or ``"<base>+seem-untrained"`` without weights.
        **options: passed to the base method wrapper: ``chunk_length``, ``chunk_overlap`` (BasicVSR);
            ``padding``, ``batch_size`` (EDVR).

    Attributes:
        trained: whether SEEM weights were loaded.
        metadata: the weights file's metadata (base, arch, tuning, mask prior, steps, config); ``{}`` when untrained.

    Raises:
        SeteVSRError: an unknown base or one without SEEM, weights trained from another base, or SAM2 weights that
            cannot be loaded (offline without a local folder: pass ``sam2=DIR``).
    """

    def __init__(
        self,
        base: str,
        checkpoint: str | None = None,
        seem_weights: str | None = None,
        sam2: str | None = None,
        mask_backend: str | None = None,
        points_per_side: int | str | None = None,
        device: str | None = None,
        progress: bool | str = True,
        name: str | None = None,
        **options,
    ):
        from ..baselines.runners import RecurrentBaselineMethod, SlidingWindowBaselineMethod, select_device
        from ..baselines.registry import get_spec, load_baseline_model
        from ..errors import SeteVSRError
        from .sam_prior import load_mask_generator
        from .seem_model import SEEM_ARCHS, SEEMWithMasks, attach_seem, load_seem_weights

        spec = get_spec(base)
        if spec.arch not in SEEM_ARCHS:
            raise SeteVSRError(f"{base} is a {spec.arch} network; SEEM exists for {', '.join(SEEM_ARCHS)} only")
        self.trained = seem_weights is not None
        if self.trained:
            model, self.metadata = load_seem_weights(seem_weights)
            if self.metadata["base"] != base:
                raise SeteVSRError(
                    f"{seem_weights} was trained from {self.metadata['base']}, not {base}: "
                    f"use the method {self.metadata['base']}+seem"
                )
        else:
            self.metadata = {}
            model = attach_seem(load_baseline_model(base, checkpoint), spec.arch)
        self.name = name or (f"{base}+seem" if self.trained else f"{base}+seem-untrained")
        torch_device = select_device(device)
        masks = load_mask_generator(
            mask_backend or self.metadata.get("mask_backend", "transformers"),
            sam2 or self.metadata.get("sam2", DEFAULT_SAM2_MODEL),
            int(points_per_side or self.metadata.get("points_per_side", 8)),
            device=str(torch_device),
        )
        wrapper = SlidingWindowBaselineMethod if spec.arch == "edvr" else RecurrentBaselineMethod
        self.runner = wrapper(
            SEEMWithMasks(model, masks), name=self.name, device=torch_device, progress=as_bool(progress), **options
        )

    @classmethod
    def accepted_options(cls, base: str) -> frozenset[str]:
        """The options of ``__init__`` and of ``base``'s method wrapper (read by ``load_method``)."""
        return _options_with_wrapper(cls, base)

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 -> ``(T, 4H, 4W, 3)`` uint8, chunk by chunk as the base method."""
        return self.runner.upscale(frames)


def _options_with_wrapper(cls, base: str) -> frozenset[str]:
    from ..baselines.runners import wrapper_options
    from ..baselines.registry import get_spec
    from ..methods import signature_options

    return signature_options(cls) | wrapper_options(get_spec(base).arch)


class SemanticLensMethod(VSRMethod):
    """BasicVSR with the Semantic Lens blocks (paper 001), semantics from SAM2 on the LR frames.

    ``load_method("basicvsr-vimeo-bi+semantic-lens")``: the official BasicVSR converted by
    :meth:`~sete_vsr.plugins.basicvsr_semantic_lens.BasicVSRSemanticLens.from_basicvsr` (blocks at identity, so the
    output is the base network's; the name says ``+semantic-lens-untrained``), or with ``semantic_lens_weights=FILE``
    a network saved by :func:`~sete_vsr.plugins.basicvsr_semantic_lens.save_semantic_lens_weights` (the
    ``semantic_lens_model.safetensors`` of :mod:`sete_vsr.plugins.train_semantic_lens`). The semantics
    (SAM2 image embeddings as the global and instance semantics, SAM2 point-grid masks as the instances; the paper's
    X-Decoder is not available, see :mod:`sete_vsr.plugins.semantic_lens`) come from transformers' ``Sam2Model``,
    made chunk by chunk at the LR size the network sees.

    Args:
        base: a BasicVSR registry name (``"basicvsr-vimeo-bi"``, ...).
        checkpoint: the base checkpoint (otherwise found or downloaded); unused with ``semantic_lens_weights``.
        semantic_lens_weights: the trained network; ``None`` leaves the blocks untrained.
        sam2: Hub id or local ``Sam2Model.save_pretrained`` folder; default: the one recorded in the weights, else
            :data:`~sete_vsr.plugins.sam_prior.DEFAULT_SAM2_MODEL`. Its embedding width is the blocks' ``S``.
        points_per_side, num_masks: ``N_g`` and mask channels of the prior; default as recorded, else 8 and 64.
        attn_dim, window_size: ``D`` and IMAGE's ``k`` of untrained blocks (trained weights carry theirs).
        device, progress: as the baselines.
        name: the method's name; default ``"<base>+semantic-lens"``, ``"<base>+semantic-lens-untrained"`` without
            weights.
        **options: passed to :class:`~sete_vsr.baselines.runners.RecurrentBaselineMethod` (``chunk_length``,
            ``chunk_overlap``).

    Memory: IMAGE holds ``(1, num_masks+1, k*k, H*W)`` per step (about 0.33 GB in float32 for 64 masks, ``k = 7``
    and a 180 x 144 LR frame).

    Raises:
        SeteVSRError: a base that is not BasicVSR, weights from another base or SAM2 of another width, or SAM2
            weights that cannot be loaded.
    """

    def __init__(
        self,
        base: str,
        checkpoint: str | None = None,
        semantic_lens_weights: str | None = None,
        sam2: str | None = None,
        points_per_side: int | str | None = None,
        num_masks: int | str | None = None,
        attn_dim: int | str = 64,
        window_size: int | str = 7,
        device: str | None = None,
        progress: bool | str = True,
        name: str | None = None,
        **options,
    ):
        from ..baselines.runners import RecurrentBaselineMethod, select_device
        from ..baselines.registry import get_spec, load_baseline_model
        from ..errors import SeteVSRError
        from .basicvsr_semantic_lens import (
            BasicVSRSemanticLens,
            SemanticLensWithSAM2,
            load_semantic_lens_weights,
        )
        from .sam_prior import Sam2PointGridMasks, _unavailable_weights_message

        spec = get_spec(base)
        if spec.arch != "basicvsr":
            raise SeteVSRError(f"{base} is a {spec.arch} network; the Semantic Lens method exists for BasicVSR only")
        self.trained = semantic_lens_weights is not None
        self.metadata: dict = {}
        if self.trained:
            model, self.metadata = load_semantic_lens_weights(semantic_lens_weights)
            if self.metadata.get("base", base) != base:
                raise SeteVSRError(
                    f"{semantic_lens_weights} was trained from {self.metadata['base']}, not {base}: "
                    f"use the method {self.metadata['base']}+semantic-lens"
                )
        sam2 = sam2 or self.metadata.get("sam2", DEFAULT_SAM2_MODEL)
        torch_device = select_device(device)
        try:
            semantics = Sam2PointGridMasks.from_pretrained(
                sam2,
                device=torch_device,
                points_per_side=int(points_per_side or self.metadata.get("points_per_side", 8)),
                num_masks=int(num_masks or self.metadata.get("num_masks", 64)),
            )
        except OSError as err:
            raise SeteVSRError(_unavailable_weights_message(sam2, "transformers", err)) from err
        semantic_dim = int(semantics.model.config.vision_config.fpn_hidden_size)
        if not self.trained:
            model = BasicVSRSemanticLens.from_basicvsr(
                load_baseline_model(base, checkpoint),
                semantic_dim=semantic_dim,
                attn_dim=int(attn_dim),
                window_size=int(window_size),
            )
        elif model.semantic_dim != semantic_dim:
            raise SeteVSRError(
                f"{semantic_lens_weights} expects {model.semantic_dim}-channel SAM2 embeddings, {sam2} gives "
                f"{semantic_dim}: pass the sam2=DIR it was trained with"
            )
        self.name = name or (f"{base}+semantic-lens" if self.trained else f"{base}+semantic-lens-untrained")
        self.runner = RecurrentBaselineMethod(
            SemanticLensWithSAM2(model, semantics), name=self.name, device=torch_device, progress=as_bool(progress),
            **options,
        )  # fmt: skip

    @classmethod
    def accepted_options(cls, base: str) -> frozenset[str]:
        """The options of ``__init__`` and of the recurrent wrapper (read by ``load_method``)."""
        return _options_with_wrapper(cls, base)

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 -> ``(T, 4H, 4W, 3)`` uint8, chunk by chunk as BasicVSR."""
        return self.runner.upscale(frames)
