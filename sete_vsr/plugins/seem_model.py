"""SEEM models built from the baselines, fed by their own SAM2 masks, and saved as one self-describing file.

* :func:`attach_seem`: a BasicVSR becomes a :class:`~sete_vsr.plugins.basicvsr_seem.BasicVSRSEEM`, an EDVR an
  :class:`~sete_vsr.plugins.edvr_seem.EDVRSEEM`, carrying the base weights (SEEM starts at zero, so the output is
  the base network's).
* :class:`SEEMWithMasks`: such a model with the base network's signature, ``x -> SR``; the masks come from a frozen
  mask generator run on the LR frames the model receives (every frame for BasicVSR, the centre frame for EDVR),
  at the LR size, the same way in training and at test time.
* :func:`save_seem_weights` / :func:`load_seem_weights`: the full state dict of the SEEM model (base tensors
  included, so fully tuned models round-trip) as safetensors, with JSON metadata: ``format`` (``"sete-vsr-seem"``),
  ``base`` (registry name), ``arch`` and ``arch_kwargs`` (the base architecture), ``seem_kwargs``, ``tuning``
  (``"efficient"`` or ``"full"``), the mask prior it was trained with (``sam2``, ``mask_backend``,
  ``points_per_side``), the ``degradation`` its LR was made with (``BI``/``BD``), ``first_step`` (0, or the
  checkpoint step a resumed run started from), ``steps`` and the training ``config``. The file rebuilds the model
  without the base checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SeteVSRError
from .sam_prior import MaskGenerator

__all__ = ["FORMAT", "SEEM_ARCHS", "SEEMWithMasks", "attach_seem", "load_seem_weights", "save_seem_weights"]

FORMAT = "sete-vsr-seem"
SEEM_ARCHS = ("basicvsr", "edvr")


def attach_seem(base: nn.Module, arch: str, **seem_kwargs) -> nn.Module:
    """``base`` (a ``"basicvsr"`` or ``"edvr"`` network) with SEEM inserted, its weights copied, SEEM at zero.

    ``seem_kwargs`` go to ``BasicVSRSEEM.from_basicvsr`` (``num_masks``, ``sam_channels``, ``branches``) or
    ``EDVRSEEM.from_edvr`` (``num_masks``, ``sam_channels``).
    """
    if arch == "basicvsr":
        from .basicvsr_seem import BasicVSRSEEM

        return BasicVSRSEEM.from_basicvsr(base, **seem_kwargs)
    if arch == "edvr":
        from .edvr_seem import EDVRSEEM

        return EDVRSEEM.from_edvr(base, **seem_kwargs)
    raise SeteVSRError(f"SEEM is implemented for the {' and '.join(SEEM_ARCHS)} architectures, not {arch!r}")


class SEEMWithMasks(nn.Module):
    """A SEEM model with its base network's signature: the masks are made from the frames it is given.

    Args:
        model: a ``BasicVSRSEEM`` or an ``EDVRSEEM``.
        mask_generator: the frozen SAM2 prior, ``(T, 3, h, w)`` in [0, 1] -> ``(T, num_masks, h, w)``. It is not a
            submodule: it stays on its device and out of state dicts, optimizers and DDP.

    ``forward``: ``x (N, T, 3, h, w)`` RGB in [0, 1] -> BasicVSR ``(N, T, 3, 4h, 4w)``, EDVR ``(N, 3, 4h, 4w)``
    (the centre frame; ``T = num_frame``).
    """

    def __init__(self, model: nn.Module, mask_generator: MaskGenerator) -> None:
        super().__init__()
        from .edvr_seem import EDVRSEEM

        self.model = model
        self.mask_generator = mask_generator
        self.centre = model.center_frame_idx if isinstance(model, EDVRSEEM) else None
        if self.centre is not None:
            self.num_frame = model.num_frame  # what the sliding-window runner reads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if self.centre is not None:
                masks = self.mask_generator(x[:, self.centre])
            else:
                masks = self.mask_generator(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return self.model(x, masks)


def save_seem_weights(model: nn.Module, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write ``model``'s state dict and ``metadata`` (JSON-encodable values; see the module docstring) to ``path``.

    The file is written under a temporary name and renamed, so it is never partial. Returns ``path``.
    """
    from ..baselines.checkpoints import save_weights_file

    return save_weights_file(model, path, metadata, FORMAT)


def load_seem_weights(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """The SEEM model stored in ``path`` (strictly loaded, eval mode, CPU) and its decoded metadata.

    Raises:
        SeteVSRError: a missing or unreadable file, one not written by :func:`save_seem_weights`, or tensors that
            do not fit the architecture its metadata names.
    """
    from ..baselines.checkpoints import load_state_dict_strict, read_weights_file
    from ..baselines.registry import build_architecture

    state_dict, metadata = read_weights_file(path, FORMAT, "SEEM weights")
    base = build_architecture(metadata["arch"], **metadata["arch_kwargs"])
    model = attach_seem(base, metadata["arch"], **metadata["seem_kwargs"])
    load_state_dict_strict(model, state_dict, source=str(path))
    return model.eval(), metadata
