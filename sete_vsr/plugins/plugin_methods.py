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

from ..method_options import RecurrentSEEMOptions, SemanticLensOptions, SlidingWindowSEEMOptions
from ..vsr_method import VSRMethod
from .sam_prior import DEFAULT_SAM2_MODEL


class SEEMMethod(VSRMethod):
    """BasicVSR or EDVR with SEEM (SEEM paper, Sec. 3), masks from SAM2 on the LR frames.

    Args:
        options: the SEEM weights and mask prior (:class:`~sete_vsr.method_options.RecurrentSEEMOptions` or
            :class:`~sete_vsr.method_options.SlidingWindowSEEMOptions`) and the base's runner options;
            ``checkpoint`` is unused with ``seem_weights``, which hold every tensor.
        base: registry name of the base network (``"basicvsr-vimeo-bi"``, ``"edvr-m-reds"``, ...).

    Attributes:
        trained: whether SEEM weights were loaded.
        metadata: the weights file's metadata (base, arch, tuning, mask prior, steps, config); ``{}`` when untrained.

    Raises:
        SeteVSRError: an unknown base or one without SEEM, weights trained from another base, or SAM2 weights that
            cannot be loaded (offline without a local folder: pass ``sam2=DIR``).
    """

    def __init__(self, options: RecurrentSEEMOptions | SlidingWindowSEEMOptions, base: str):
        from ..baselines.registry import get_spec, load_baseline_model
        from ..baselines.runners import runner_class, select_device
        from ..errors import SeteVSRError
        from .sam_prior import load_mask_generator
        from .seem_model import SEEM_ARCHS, SEEMWithMasks, attach_seem, load_seem_weights

        spec = get_spec(base)
        if spec.arch not in SEEM_ARCHS:
            raise SeteVSRError(f"{base} is a {spec.arch} network; SEEM exists for {', '.join(SEEM_ARCHS)} only")
        self.trained = options.seem_weights is not None
        if self.trained:
            model, self.metadata = load_seem_weights(options.seem_weights)
            if self.metadata["base"] != base:
                raise SeteVSRError(
                    f"{options.seem_weights} was trained from {self.metadata['base']}, not {base}: "
                    f"use the method {self.metadata['base']}+seem"
                )
        else:
            self.metadata = {}
            model = attach_seem(load_baseline_model(base, options.checkpoint), spec.arch)
        self.name = options.name or (f"{base}+seem" if self.trained else f"{base}+seem-untrained")
        masks = load_mask_generator(
            options.mask_backend or self.metadata.get("mask_backend", "transformers"),
            options.sam2 or self.metadata.get("sam2", DEFAULT_SAM2_MODEL),
            options.points_per_side or self.metadata.get("points_per_side", 8),
            device=str(select_device(options.device)),
        )
        self.runner = runner_class(spec.arch)(SEEMWithMasks(model, masks), self.name, options)

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 -> ``(T, 4H, 4W, 3)`` uint8, chunk by chunk as the base method."""
        return self.runner.upscale(frames)


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
        options: the trained network (``semantic_lens_weights``; ``checkpoint`` is unused with it), the SAM2
            semantics, the sizes of untrained blocks and the recurrent runner's options
            (:class:`~sete_vsr.method_options.SemanticLensOptions`).
        base: a BasicVSR registry name (``"basicvsr-vimeo-bi"``, ...).

    Memory: IMAGE holds ``(1, num_masks+1, k*k, H*W)`` per step (about 0.33 GB in float32 for 64 masks, ``k = 7``
    and a 180 x 144 LR frame).

    Raises:
        SeteVSRError: a base that is not BasicVSR, weights from another base or SAM2 of another width, or SAM2
            weights that cannot be loaded.
    """

    def __init__(self, options: SemanticLensOptions, base: str):
        from ..baselines.registry import get_spec, load_baseline_model
        from ..baselines.runners import RecurrentBaselineMethod, select_device
        from ..errors import SeteVSRError
        from .basicvsr_semantic_lens import BasicVSRSemanticLens, SemanticLensWithSAM2, load_semantic_lens_weights
        from .sam_prior import Sam2PointGridMasks, _unavailable_weights_message

        spec = get_spec(base)
        if spec.arch != "basicvsr":
            raise SeteVSRError(f"{base} is a {spec.arch} network; the Semantic Lens method exists for BasicVSR only")
        weights = options.semantic_lens_weights
        self.trained = weights is not None
        self.metadata: dict = {}
        if self.trained:
            model, self.metadata = load_semantic_lens_weights(weights)
            if self.metadata.get("base", base) != base:
                raise SeteVSRError(
                    f"{weights} was trained from {self.metadata['base']}, not {base}: "
                    f"use the method {self.metadata['base']}+semantic-lens"
                )
        sam2 = options.sam2 or self.metadata.get("sam2", DEFAULT_SAM2_MODEL)
        try:
            semantics = Sam2PointGridMasks.from_pretrained(
                sam2,
                device=select_device(options.device),
                points_per_side=options.points_per_side or self.metadata.get("points_per_side", 8),
                num_masks=options.num_masks or self.metadata.get("num_masks", 64),
            )
        except OSError as err:
            raise SeteVSRError(_unavailable_weights_message(sam2, "transformers", err)) from err
        semantic_dim = int(semantics.model.config.vision_config.fpn_hidden_size)
        if not self.trained:
            model = BasicVSRSemanticLens.from_basicvsr(
                load_baseline_model(base, options.checkpoint),
                semantic_dim=semantic_dim,
                attn_dim=options.attn_dim,
                window_size=options.window_size,
            )
        elif model.semantic_dim != semantic_dim:
            raise SeteVSRError(
                f"{weights} expects {model.semantic_dim}-channel SAM2 embeddings, {sam2} gives "
                f"{semantic_dim}: pass the sam2=DIR it was trained with"
            )
        self.name = options.name or (f"{base}+semantic-lens" if self.trained else f"{base}+semantic-lens-untrained")
        self.runner = RecurrentBaselineMethod(SemanticLensWithSAM2(model, semantics), self.name, options)

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 -> ``(T, 4H, 4W, 3)`` uint8, chunk by chunk as BasicVSR."""
        return self.runner.upscale(frames)
