"""A baseline with SEEM as a method: ``load_method("basicvsr-vimeo-bi+seem", seem_weights=FILE)``.

It goes into evaluation tables next to the base network (``basicvsr-vimeo-bi``) and its test-time adaptation
(``basicvsr-vimeo-bi+adapt``). Each clip runs as the base method runs it (recurrent chunks for BasicVSR, a sliding
window for EDVR; :mod:`sete_vsr.baselines.method`), and the SAM2 masks of the LR frames are made chunk by chunk
(window batch by window batch), at the LR size the network sees, so memory stays bounded by one chunk.

Without ``seem_weights`` the SEEM modules are at their initialisation, where they add exactly zero: the method is
the base network, untrained SEEM included (its name says ``+seem-untrained`` and :attr:`SEEMMethod.trained` is
false). Trained weights come from ``accelerate launch -m sete_vsr.plugins.train_seem``.
"""

from __future__ import annotations

import numpy as np

from sete_vsr.methods import VSRMethod
from sete_vsr.plugins.sam_prior import DEFAULT_SAM2_MODEL


def _flag(value) -> bool:
    """Command-line options arrive as strings ("false", "0", ...)."""
    return value.lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)


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
        from sete_vsr.baselines.method import RecurrentBaselineMethod, SlidingWindowBaselineMethod, select_device
        from sete_vsr.baselines.registry import get_spec, load_baseline_model
        from sete_vsr.errors import SeteVSRError
        from sete_vsr.plugins.sam_prior import load_mask_generator
        from sete_vsr.plugins.seem_model import SEEM_ARCHS, SEEMWithMasks, attach_seem, load_seem_weights

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
            SEEMWithMasks(model, masks), name=self.name, device=torch_device, progress=_flag(progress), **options
        )

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 -> ``(T, 4H, 4W, 3)`` uint8, chunk by chunk as the base method."""
        return self.runner.upscale(frames)
