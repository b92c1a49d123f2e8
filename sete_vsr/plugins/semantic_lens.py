"""Semantic Lens blocks (Tang et al., "Semantic Lens: Instance-Centric Semantic Alignment for VSR").

Plug-in blocks for recurrent VSR networks, each the identity when freshly built:

* :class:`GPS`, Global Perspective Shifter (Eq. 6-8): the frame's global semantic token modulates the
  feature with a per-pixel scale and bias, ``F~ = (F * gamma + beta) + F``.
* :class:`ISEE`, Instance-Specific Semantic Embedding Encoder (Eq. 9-11): cross-attention from pixel
  features (queries) to instance tokens (keys and values).
* :class:`SPACE`: GPS followed by ISEE (Figure 3).
* :class:`IMAGE`, Implicit Masked Attention Guided pre-alignment (Eq. 12-13): each reference pixel
  attends to a local window of the supporting frame, only to pixels of an instance it belongs to.

Substitution of the semantic extractor. The paper's semantics come from X-Decoder extended to video
instance segmentation: a global token per frame (the last decoder token), video-wise instance tokens
``O_V`` and instance masks ``M_{t,i}`` with identities consistent across frames. X-Decoder and its
video instance segmentation weights are not used here; SAM2 stands in for them:

* global semantics ``O_{t,g}``: the SAM2 image embedding of the frame, globally average pooled
  (:func:`global_token`), projected to the feature width inside :class:`GPS` (the paper's "channel
  compression module");
* instances: the SAM2 masks of SEEM's point-grid prior (:mod:`sete_vsr.plugins.sam_prior`); instance
  tokens are the SAM2 image embedding averaged inside each mask (:func:`instance_tokens`). They are
  per frame, not video-wise: SAM2's image masks carry no identity across frames, so :func:`associate_masks`
  matches a supporting frame's masks to the reference frame's masks by IoU (Hungarian assignment) before
  IMAGE uses them, in place of the video instance decoder's consistent identities.

Efficient tuning trains only these blocks inside a pretrained network: :func:`semantic_lens_parameters`
lists their parameters and :func:`freeze_all_but_semantic_lens` freezes the rest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

__all__ = [
    "GPS",
    "IMAGE",
    "ISEE",
    "SPACE",
    "associate_masks",
    "freeze_all_but_semantic_lens",
    "global_token",
    "instance_tokens",
    "semantic_lens_parameters",
]


def global_token(embeddings: torch.Tensor) -> torch.Tensor:
    """Global semantics of a frame: SAM2 image embedding ``(B, S, h, w)`` average-pooled to ``(B, S)``."""
    return embeddings.mean(dim=(2, 3))


def instance_tokens(embeddings: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-pooled SAM2 features, one token per instance mask.

    Args:
        embeddings: ``(B, S, h, w)`` SAM2 image embedding.
        masks: ``(B, N, H, W)`` masks in {0, 1}; all-zero channels are padding.

    Returns:
        tokens ``(B, N, S)`` (mean embedding inside each mask, resized to ``h x w`` by area averaging,
        zero for padding) and valid ``(B, N)`` bool (False for padding).
    """
    weights = F.interpolate(masks.float(), size=embeddings.shape[-2:], mode="area").flatten(2)
    area = weights.sum(dim=2)
    tokens = torch.einsum("bnp,bsp->bns", weights, embeddings.flatten(2)) / area.clamp_min(1e-8)[..., None]
    return tokens, area > 0


def associate_masks(reference: torch.Tensor, support: torch.Tensor, min_iou: float = 0.0) -> torch.Tensor:
    """Reorder a supporting frame's masks so that channel ``i`` is the same instance as in the reference.

    Hungarian assignment maximising the mask IoU; a reference mask whose match has IoU ``<= min_iou``
    gets an all-zero support channel (no counterpart).

    Args:
        reference, support: ``(B, N, H, W)`` masks in {0, 1}.

    Returns:
        ``(B, N, H, W)``: the support masks in the reference's instance order.
    """
    ref, sup = reference.flatten(2).float(), support.flatten(2).float()
    inter = torch.einsum("bip,bjp->bij", ref, sup)
    union = ref.sum(2)[:, :, None] + sup.sum(2)[:, None, :] - inter
    iou = (inter / union.clamp_min(1.0)).detach().cpu()
    out = torch.zeros_like(support)
    for b in range(iou.shape[0]):
        rows, cols = linear_sum_assignment(iou[b].numpy(), maximize=True)
        for i, j in zip(rows, cols):
            if iou[b, i, j] > min_iou:
                out[b, i] = support[b, j]
    return out


def _masked_softmax(logits: torch.Tensor, allowed: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` with ``-inf`` where ``allowed`` is False; rows with nothing allowed are all zero."""
    logits = logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)
    return torch.softmax(logits, dim=dim) * allowed


class GPS(nn.Module):
    """Global Perspective Shifter (Eq. 6-8).

    The global token, projected to ``C`` channels, is spread over the feature map by a channel-wise
    product with the feature, ``O~ = O_g * F`` (Eq. 6; read as a broadcast product, since the result is
    ``C x H x W``); ``G`` = conv, ReLU, conv gives ``(gamma, beta)`` (Eq. 7); the output is
    ``(F * gamma + beta) + F`` (Eq. 8). The last convolution starts at zero, so ``gamma = beta = 0`` and
    the block is the identity at init.

    Args:
        channels: ``C``, feature channels.
        semantic_dim: ``S``, channels of the global token (256 for SAM2).

    Shapes: ``feature (B, C, H, W)``, ``token (B, S)`` -> ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, semantic_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(semantic_dim, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, feature: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        extended = self.proj(token)[:, :, None, None] * feature
        gamma, beta = self.conv2(torch.relu(self.conv1(extended))).chunk(2, dim=1)
        return (feature * gamma + beta) + feature


class ISEE(nn.Module):
    """Instance-Specific Semantic Embedding Encoder (Eq. 9-11).

    ``Q = F~ W^Q`` (one query per pixel), ``K = O W^K``, ``V = O W^V`` (one key/value per instance token),
    ``A = softmax(Q K^T / sqrt(D))``, ``F_sa = A V``. Padding tokens are masked out; a frame with no valid
    token receives nothing (not even the output projection's bias). ``F_sa`` is brought back to ``C``
    channels by an output projection that starts at zero and added to the input, so the block is the
    identity at init.

    Args:
        channels: ``C``, feature channels.
        semantic_dim: ``S``, channels of the instance tokens.
        attn_dim: ``D``, channels of the projected queries, keys and values.

    Shapes: ``feature (B, C, H, W)``, ``tokens (B, N, S)``, ``valid (B, N)`` bool -> ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, semantic_dim: int, attn_dim: int = 64) -> None:
        super().__init__()
        self.to_q = nn.Linear(channels, attn_dim, bias=False)
        self.to_k = nn.Linear(semantic_dim, attn_dim, bias=False)
        self.to_v = nn.Linear(semantic_dim, attn_dim, bias=False)
        self.to_out = nn.Linear(attn_dim, channels)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)
        self.scale = attn_dim**-0.5

    def forward(self, feature: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, c, h, w = feature.shape
        q = self.to_q(feature.flatten(2).transpose(1, 2))
        k, v = self.to_k(tokens), self.to_v(tokens)
        attn = _masked_softmax(q @ k.transpose(1, 2) * self.scale, valid[:, None, :], dim=-1)
        out = self.to_out(attn @ v) * valid.any(dim=1)[:, None, None]
        return feature + out.transpose(1, 2).reshape(b, c, h, w)


class SPACE(nn.Module):
    """Semantics-Powered Attention Cross-Embedding block: :class:`GPS` then :class:`ISEE` (Figure 3).

    Shapes: ``feature (B, C, H, W)``, ``global_token (B, S)``, ``tokens (B, N, S)``, ``valid (B, N)``
    -> ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, semantic_dim: int, attn_dim: int = 64) -> None:
        super().__init__()
        self.gps = GPS(channels, semantic_dim)
        self.isee = ISEE(channels, semantic_dim, attn_dim)

    def forward(
        self, feature: torch.Tensor, global_token: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        return self.isee(self.gps(feature, global_token), tokens, valid)


def _with_background(masks: torch.Tensor) -> torch.Tensor:
    """Append the background (pixels in no mask) as one more instance: ``(B, N, H, W) -> (B, N+1, H, W)``."""
    background = 1.0 - masks.amax(dim=1, keepdim=True).clamp(0, 1)
    return torch.cat([masks.float(), background], dim=1)


class IMAGE(nn.Module):
    """Implicit Masked Attention Guided pre-alignment (Eq. 12-13, Figure 4).

    Each reference pixel ``p`` (query) attends to the ``k x k`` window around ``p`` in the supporting
    frame (keys and values): ``A = softmax(M + Q K^T)`` (Eq. 12, no ``1/sqrt(D)`` there), with
    ``M(p, q) = 0`` when some instance ``i`` covers ``p`` in the reference masks and ``q`` in the
    supporting masks (Eq. 13, read with the query at ``p`` and the key at ``q``), ``-inf`` otherwise.
    The background (pixels in no mask) counts as one more instance, and window positions outside the
    frame are masked. The attended values, projected back to ``C`` channels by a zero-initialised
    1 x 1 convolution, are added to the supporting feature, so the block returns the supporting
    feature unchanged at init; a reference pixel with nothing allowed keeps its supporting feature (the
    output projection's bias is not added there).

    The masks' channel ``i`` must be the same instance in both frames (see :func:`associate_masks`).

    Args:
        channels: ``C``, feature channels.
        attn_dim: ``D``, channels of the projected queries, keys and values.
        window_size: ``k`` (odd).

    Shapes: ``reference, support (B, C, H, W)``, ``reference_masks, support_masks (B, N, H, W)``
    -> pre-aligned support ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, attn_dim: int = 64, window_size: int = 7) -> None:
        super().__init__()
        if window_size % 2 != 1:
            raise ValueError(f"window_size must be odd, got {window_size}")
        self.window_size = window_size
        self.to_q = nn.Conv2d(channels, attn_dim, 1, bias=False)
        self.to_k = nn.Conv2d(channels, attn_dim, 1, bias=False)
        self.to_v = nn.Conv2d(channels, attn_dim, 1, bias=False)
        self.to_out = nn.Conv2d(attn_dim, channels, 1)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D, H, W)`` -> ``(B, D, k*k, H*W)``, zero outside the frame."""
        k = self.window_size
        return F.unfold(x, k, padding=k // 2).unflatten(1, (x.shape[1], k * k))

    def allowed(self, reference_masks: torch.Tensor, support_masks: torch.Tensor) -> torch.Tensor:
        """Eq. 13 as a bool ``(B, k*k, H*W)``: may reference pixel ``p`` attend to window position ``j``?"""
        ref = _with_background(reference_masks).flatten(2)
        sup = self._windows(_with_background(support_masks))
        return torch.einsum("bnp,bnjp->bjp", ref, sup) > 0

    def forward(
        self,
        reference: torch.Tensor,
        support: torch.Tensor,
        reference_masks: torch.Tensor,
        support_masks: torch.Tensor,
    ) -> torch.Tensor:
        b, _, h, w = support.shape
        q = self.to_q(reference).flatten(2)
        k = self._windows(self.to_k(support))
        v = self._windows(self.to_v(support))
        allowed = self.allowed(reference_masks, support_masks)
        attn = _masked_softmax(torch.einsum("bdp,bdjp->bjp", q, k), allowed, 1)
        aligned = torch.einsum("bjp,bdjp->bdp", attn, v).unflatten(2, (h, w))
        return support + self.to_out(aligned) * allowed.any(dim=1).view(b, 1, h, w)


def semantic_lens_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every :class:`GPS`, :class:`ISEE` and :class:`IMAGE` inside ``model``."""
    ids = {id(p) for module in model.modules() if isinstance(module, (GPS, ISEE, IMAGE)) for p in module.parameters()}
    return [(name, p) for name, p in model.named_parameters() if id(p) in ids]


def freeze_all_but_semantic_lens(model: nn.Module) -> list[str]:
    """Efficient tuning: only the Semantic Lens blocks stay trainable. Returns the names of the trainable parameters."""
    trainable = dict(semantic_lens_parameters(model))
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable)
    return list(trainable)
