"""BasicVSR + Semantic Lens blocks (Tang et al., "Semantic Lens", Pixel Enhancer section, Figures 2-4).

Where the blocks sit. In each branch, at frame ``t`` whose previous frame in the propagation order is
``t'`` (``t+1`` in the backward branch, ``t-1`` in the forward one), one propagation step is::

    h^_t = flow_warp(h_t', flow_t'->t)                          BasicVSR's flow alignment
    h^_t = IMAGE(r_t, h^_t, M_t, assoc(M_t, warp(M_t')))        pre-alignment onto frame t
    h~_t = SPACE(h^_t, O_t,g, O_t,i)                            GPS, then ISEE
    h_t  = trunk(concat(I_t, h~_t))                             BasicVSR's propagation unit

(``r_t``: IMAGE's query feature of frame ``t``, ``M``: SAM2 masks, ``O``: semantic tokens; see below.)
``h_t`` is carried to the next step and fused with the other branch exactly as in BasicVSR; the fusion
and the upsampler are unchanged. Every new block adds a zero-initialised residual, so the model equals
the BasicVSR it was built from until it is trained (:meth:`BasicVSRSemanticLens.from_basicvsr`).

From the paper: IMAGE pre-aligns the supporting frame's feature to the reference frame by local-window
attention with the reference pixels as queries, restricted to the same instance or the background
(Eq. 12-13), before the propagation unit; SPACE (GPS then ISEE, Figure 3) is "positioned before the
basic unit of the feature propagation branch" and its output is what the unit receives; the
propagation is bidirectional and both branches get both blocks.

Ours (the paper's Pixel Enhancer is BasicVSR++-like, with second-order grid propagation and MFSAB units,
so the placement in BasicVSR is our adaptation):

* the basic unit is BasicVSR's trunk (input convolution and residual blocks), and the blocks act on its
  first-order propagated hidden state;
* IMAGE refines the SPyNet flow warping, within its ``k x k`` window, rather than replacing it;
* IMAGE's queries need a ``C``-channel feature of the current frame, which BasicVSR does not compute
  before the trunk: we take the trunk's own input convolution and LeakyReLU applied to the frame with an
  empty hidden state, ``lrelu(conv(concat(I_t, 0)))`` (what BasicVSR computes at the first step of a
  branch), so no layer is added for it;
* the previous frame's masks are flow-warped onto frame ``t`` with the feature's flow (nearest
  sampling) and then matched to frame ``t``'s masks by IoU (:func:`~sete_vsr.plugins.semantic_lens.associate_masks`),
  so that channel ``i`` of both mask sets marks the same instance at the positions of the warped feature
  (no gradient flows through the masks);
* IMAGE is skipped at the first step of a branch (no supporting frame; the hidden state is zero);
  SPACE runs at every step, the first included;
* each branch has its own IMAGE and SPACE, as it has its own trunk.

The semantics (global token ``O_t,g`` and instance tokens ``O_t,i`` from SAM2 image embeddings and SAM2
masks, in place of the paper's X-Decoder) are described in :mod:`sete_vsr.plugins.semantic_lens`.
Efficient tuning: :func:`~sete_vsr.plugins.semantic_lens.freeze_all_but_semantic_lens` leaves only the
new blocks trainable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..baselines.basicvsr import BasicVSR, compute_flows
from ..baselines.flow_warp import flow_warp
from .semantic_lens import (
    IMAGE,
    SPACE,
    associate_masks,
    global_token,
    instance_tokens,
    semantic_lens_parameters,
)

__all__ = [
    "FORMAT",
    "BasicVSRSemanticLens",
    "SemanticLensWithSAM2",
    "load_semantic_lens_weights",
    "save_semantic_lens_weights",
]

FORMAT = "sete-vsr-semantic-lens"


class BasicVSRSemanticLens(BasicVSR):
    """BasicVSR with IMAGE and SPACE (GPS + ISEE) in both propagation branches; equal to BasicVSR at init.

    Args:
        num_feat, num_block: as :class:`~sete_vsr.baselines.basicvsr.BasicVSR`.
        semantic_dim: ``S``, channels of the SAM2 image embeddings (256 for the released SAM2 checkpoints).
        attn_dim: ``D`` of the ISEE and IMAGE attentions.
        window_size: ``k`` (odd), IMAGE's search window.

    ``forward``: ``x (N, T, 3, H, W)`` RGB in [0, 1] (``H, W >= 64``), ``embeddings (N, T, S, h, w)`` SAM2
    image embeddings and ``masks (N, T, M, H, W)`` in {0, 1} at the LR size, all-zero channels being
    padding (both from :meth:`~sete_vsr.plugins.sam_prior.Sam2PointGridMasks.masks_and_embeddings`)
    -> ``(N, T, 3, 4H, 4W)``.

    Memory: IMAGE compares the masks of every pixel with those of its window, ``(N, M+1, k*k, H*W)`` per
    step (0.7 GB in float32 for ``M = 64``, ``k = 7`` and a 180 x 320 frame).
    """

    def __init__(
        self,
        num_feat: int = 64,
        num_block: int = 30,
        semantic_dim: int = 256,
        attn_dim: int = 64,
        window_size: int = 7,
    ) -> None:
        super().__init__(num_feat, num_block)
        self.semantic_dim = semantic_dim
        self.attn_dim = attn_dim
        self.window_size = window_size
        self.backward_image = IMAGE(num_feat, attn_dim, window_size)
        self.forward_image = IMAGE(num_feat, attn_dim, window_size)
        self.backward_space = SPACE(num_feat, semantic_dim, attn_dim)
        self.forward_space = SPACE(num_feat, semantic_dim, attn_dim)

    @classmethod
    def from_basicvsr(cls, base: BasicVSR, **kwargs) -> BasicVSRSemanticLens:
        """A BasicVSR + Semantic Lens carrying every tensor of ``base`` (e.g. an official checkpoint) unchanged.

        ``kwargs``: ``semantic_dim``, ``attn_dim``, ``window_size``. The new blocks start as the identity.
        """
        model = cls(base.num_feat, len(base.forward_trunk.main[2]), **kwargs)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        new = {name for name, _ in semantic_lens_parameters(model)}
        if unexpected or set(missing) != new:
            raise ValueError(
                f"not a BasicVSR state dict: missing {sorted(set(missing) - new)}, unexpected {unexpected}"
            )
        return model.to(next(base.parameters()).device)

    def _block(self, branch: str, name: str) -> nn.Module:
        """``branch``'s ``"trunk"``, ``"image"`` or ``"space"``."""
        return getattr(self, f"{branch}_{name}")

    def _reference_feature(self, branch: str, frame: torch.Tensor) -> torch.Tensor:
        """IMAGE's query feature of the current frame: the trunk's input layer on ``concat(frame, 0)``.

        ``frame (N, 3, H, W)`` -> ``(N, C, H, W)``; the zero hidden channels are left out of the convolution.
        """
        conv, act = self._block(branch, "trunk").main[:2]
        return act(F.conv2d(frame, conv.weight[:, : frame.shape[1]], conv.bias, conv.stride, conv.padding))

    def _step(
        self,
        branch: str,
        hidden: torch.Tensor,
        x: torch.Tensor,
        masks: torch.Tensor,
        semantics: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        i: int,
        previous: tuple[int, torch.Tensor] | None,
    ) -> torch.Tensor:
        """One propagation step of ``branch`` at frame ``i``.

        Args:
            hidden: ``h_t' (N, C, H, W)``, the previous step's hidden state (zero at the first step).
            x: ``(N, T, 3, H, W)`` frames; masks: ``(N, T, M, H, W)``.
            semantics: global tokens ``(N, T, S)``, instance tokens ``(N, T, M, S)``, their validity ``(N, T, M)``.
            previous: ``(t', flow)``, the previous frame's index and the ``(N, 2, H, W)`` flow warping it onto
                frame ``i``; None at the first step.

        Returns:
            ``h_t (N, C, H, W)``.
        """
        frame, frame_masks = x[:, i], masks[:, i]
        if previous is not None:
            j, flow = previous
            flow = flow.permute(0, 2, 3, 1)
            hidden = flow_warp(hidden, flow)
            warped_masks = flow_warp(masks[:, j], flow.detach(), interp_mode="nearest")
            support_masks = associate_masks(frame_masks, warped_masks)
            reference = self._reference_feature(branch, frame)
            hidden = self._block(branch, "image")(reference, hidden, frame_masks, support_masks)
        hidden = self._block(branch, "space")(hidden, *(s[:, i] for s in semantics))
        return self._block(branch, "trunk")(torch.cat([frame, hidden], dim=1))

    def forward(self, x: torch.Tensor, embeddings: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        n, t, _, h, w = x.shape
        if embeddings.ndim != 5 or embeddings.shape[:3] != (n, t, self.semantic_dim):
            raise ValueError(
                f"embeddings must be (N, T, {self.semantic_dim}, h, w) for x {tuple(x.shape)}, "
                f"got {tuple(embeddings.shape)}"
            )
        if masks.ndim != 5 or masks.shape[:2] != (n, t) or masks.shape[-2:] != (h, w):
            raise ValueError(f"masks must be (N, T, M, {h}, {w}) for x {tuple(x.shape)}, got {tuple(masks.shape)}")
        masks = masks.to(x.dtype)
        flat_embeddings = embeddings.flatten(0, 1).to(x.dtype)
        tokens, valid = instance_tokens(flat_embeddings, masks.flatten(0, 1))
        # (N, T, S), (N, T, M, S), (N, T, M)
        semantics = tuple(s.unflatten(0, (n, t)) for s in (global_token(flat_embeddings), tokens, valid))
        flows_forward, flows_backward = compute_flows(self.spynet, x)

        # backward propagation: frame i sees frames i..T-1
        backward_feats: list[torch.Tensor | None] = [None] * t
        feat_prop = x.new_zeros(n, self.num_feat, h, w)
        for i in range(t - 1, -1, -1):
            previous = (i + 1, flows_backward[:, i]) if i < t - 1 else None
            feat_prop = self._step("backward", feat_prop, x, masks, semantics, i, previous)
            backward_feats[i] = feat_prop

        # forward propagation (frame i sees frames 0..i), fusion and upsampling
        outputs = []
        feat_prop = torch.zeros_like(feat_prop)
        for i in range(t):
            previous = (i - 1, flows_forward[:, i - 1]) if i > 0 else None
            feat_prop = self._step("forward", feat_prop, x, masks, semantics, i, previous)
            fused = self.lrelu(self.fusion(torch.cat([backward_feats[i], feat_prop], dim=1)))
            backward_feats[i] = None  # free it as soon as it is used
            outputs.append(self._upsample(fused, x[:, i]))
        return torch.stack(outputs, dim=1)


class SemanticLensWithSAM2(nn.Module):
    """A :class:`BasicVSRSemanticLens` with BasicVSR's signature: its semantics are made from the frames it is given.

    Args:
        model: the network.
        semantics: the frozen SAM2 prior with ``masks_and_embeddings(frames)``
            (:class:`~sete_vsr.plugins.sam_prior.Sam2PointGridMasks`); not a submodule, so it stays out of state dicts.

    ``forward``: ``x (N, T, 3, H, W)`` RGB in [0, 1] -> ``(N, T, 3, 4H, 4W)``; SAM2 runs on every frame at the size
    the network sees.
    """

    def __init__(self, model: BasicVSRSemanticLens, semantics) -> None:
        super().__init__()
        self.model = model
        self.semantics = semantics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            masks, embeddings = self.semantics.masks_and_embeddings(x.flatten(0, 1))
        return self.model(x, embeddings.unflatten(0, x.shape[:2]), masks.unflatten(0, x.shape[:2]))


def save_semantic_lens_weights(model: BasicVSRSemanticLens, path, metadata: dict | None = None):
    """Write ``model``'s full state dict to the safetensors file ``path``, with its sizes and ``metadata``.

    ``metadata`` (JSON-encodable values) records what the blocks were trained with, e.g. ``base`` (registry name),
    ``sam2``, ``points_per_side``, ``num_masks``; ``format``, ``arch_kwargs`` and ``semantic_lens_kwargs`` are added.
    Written under a temporary name and renamed, so never partial. Returns the path.
    """
    from ..baselines.checkpoints import save_weights_file

    sizes = {
        "arch_kwargs": {"num_feat": model.num_feat, "num_block": len(model.forward_trunk.main[2])},
        "semantic_lens_kwargs": {
            "semantic_dim": model.semantic_dim, "attn_dim": model.attn_dim, "window_size": model.window_size
        },
    }  # fmt: skip
    return save_weights_file(model, path, {**(metadata or {}), **sizes}, FORMAT)


def load_semantic_lens_weights(path) -> tuple[BasicVSRSemanticLens, dict]:
    """The network stored by :func:`save_semantic_lens_weights` (strictly loaded, eval mode, CPU) and its metadata.

    Raises:
        SeteVSRError: a missing or unreadable file, one without the format metadata, or tensors that do not fit.
    """
    from ..baselines.checkpoints import load_state_dict_strict, read_weights_file

    state_dict, metadata = read_weights_file(path, FORMAT, "Semantic Lens weights")
    model = BasicVSRSemanticLens(**metadata["arch_kwargs"], **metadata["semantic_lens_kwargs"])
    load_state_dict_strict(model, state_dict, source=str(path))
    return model.eval(), metadata
