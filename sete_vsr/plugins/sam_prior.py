"""SAM-based prior of SEEM (Lu et al., "Can SAM Boost Video Super-Resolution?", Sec. 3.2, Eq. 1).

Two parts:

* **Masks** ``M_sam``: SAM2 is prompted with an ``N_g x N_g`` grid of points, one at the centre of each
  grid cell (8 x 8 by default, as in the paper's Sec. 4.2), so a frame yields at most ``N_g**2`` masks.
  They are returned as a float tensor ``(T, num_masks, H, W)`` with values in ``{0, 1}``; frames with
  fewer masks are zero-padded at the end (``num_masks = 64`` by default).
  Two backends give the same output:

  - :class:`Sam2PointGridMasks`: transformers' ``Sam2Model`` with the point grid as a batch of
    single-point prompts (preprocessing and coordinate normalisation as ``Sam2Processor`` does them).
  - :class:`Sam2PackageMasks`: Meta's ``sam2`` package, ``SAM2AutomaticMaskGenerator`` with
    ``points_per_side=N_g`` (optional dependency: ``pip install sete-vsr[sam2]``).

  Mask selection (:func:`select_masks`), applied to both backends: keep the mask with the best predicted
  IoU for each point, drop empty masks, drop duplicates (a mask whose IoU with an already kept, better
  scored mask is at least ``duplicate_iou``; points on the same object give the same mask, Sec. 3.2),
  sort the survivors by area (largest first) and keep at most ``num_masks``.

* **Feature combination network** ``f_r`` (:class:`FeatureCombination`): ``R_sam = f_r(concat(I_t, M_sam))``
  (Eq. 1), two convolutions and one residual block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SeteVSRError
from ..models.presets import SAM2_TINY

__all__ = [
    "DEFAULT_SAM2_MODEL",
    "FeatureCombination",
    "MaskGenerator",
    "ResidualBlock",
    "Sam2PackageMasks",
    "Sam2PointGridMasks",
    "grid_points",
    "load_mask_generator",
    "pad_masks",
    "select_masks",
]

DEFAULT_SAM2_MODEL = SAM2_TINY
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class MaskGenerator(Protocol):
    """Anything that turns frames ``(T, 3, H, W)`` in [0, 1] into masks ``(T, num_masks, H, W)`` in {0, 1}."""

    num_masks: int

    def __call__(self, frames: torch.Tensor) -> torch.Tensor: ...


def grid_points(points_per_side: int, height: float, width: float) -> torch.Tensor:
    """Centres of an ``N_g x N_g`` grid over a ``height x width`` image.

    Returns:
        ``(N_g**2, 2)`` float tensor of ``(x, y)`` pixel coordinates, row-major (top-left cell first).
    """
    centres = (torch.arange(points_per_side, dtype=torch.float32) + 0.5) / points_per_side
    ys, xs = torch.meshgrid(centres * height, centres * width, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def select_masks(
    masks: torch.Tensor, scores: torch.Tensor, num_masks: int = 64, duplicate_iou: float = 0.9
) -> torch.Tensor:
    """Pick the masks of one frame: best per point, no empty, no duplicates, largest first.

    Args:
        masks: ``(P, K, H, W)`` bool, ``K`` candidate masks for each of ``P`` point prompts
            (``K = 1`` when candidates are already one per prompt).
        scores: ``(P, K)`` predicted IoU of each candidate.
        num_masks: at most this many masks are returned.
        duplicate_iou: a mask whose IoU with a kept, better scored mask reaches this value is dropped.

    Returns:
        ``(N, H, W)`` bool with ``N <= num_masks``, sorted by area, largest first.
    """
    best = scores.argmax(dim=1)
    chosen = masks[torch.arange(masks.shape[0]), best]
    chosen_scores = scores.gather(1, best[:, None])[:, 0]
    nonempty = chosen.flatten(1).any(dim=1)
    chosen, chosen_scores = chosen[nonempty], chosen_scores[nonempty]
    chosen = chosen[torch.argsort(chosen_scores, descending=True, stable=True)]

    flat = chosen.flatten(1).float()
    inter = flat @ flat.T
    area = flat.sum(dim=1)
    duplicate = (inter / (area[:, None] + area[None, :] - inter) >= duplicate_iou).tolist()
    keep: list[int] = []
    for i in range(chosen.shape[0]):
        if not any(duplicate[i][j] for j in keep):
            keep.append(i)
    kept = chosen[keep]
    by_area = torch.argsort(area[keep], descending=True, stable=True)
    return kept[by_area][:num_masks]


def pad_masks(masks: torch.Tensor, num_masks: int = 64) -> torch.Tensor:
    """Zero-pad ``(N, H, W)`` masks (``N <= num_masks``) to a float ``(num_masks, H, W)`` tensor."""
    if masks.shape[0] > num_masks:
        raise ValueError(f"{masks.shape[0]} masks do not fit in {num_masks} channels")
    out = masks.new_zeros((num_masks, *masks.shape[1:]), dtype=torch.float32)
    out[: masks.shape[0]] = masks.float()
    return out


class Sam2PointGridMasks:
    """SEEM's mask prior from transformers' ``Sam2Model`` prompted with an ``N_g x N_g`` point grid.

    Each grid point is one single-point prompt (label 1); the model returns three candidate masks per
    point with their predicted IoUs, upsampled to the frame size and thresholded at 0 as
    ``Sam2Processor.post_process_masks`` does, then :func:`select_masks` and :func:`pad_masks` apply.
    Frames are resized to the model's square input and normalised with the ImageNet statistics, and the
    points are given in that resized frame, as ``Sam2Processor`` does.

    Args:
        model: a ``transformers.Sam2Model`` (frozen; put it on the device you want it to run on).
        points_per_side: ``N_g``.
        num_masks: channels of the output (zero-padded); the paper uses ``N_g**2 = 64``.
        duplicate_iou: see :func:`select_masks`.
        frames_per_batch: frames sent through SAM2 at once.
    """

    def __init__(
        self,
        model: nn.Module,
        points_per_side: int = 8,
        num_masks: int = 64,
        duplicate_iou: float = 0.9,
        frames_per_batch: int = 4,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.points_per_side = points_per_side
        self.num_masks = num_masks
        self.duplicate_iou = duplicate_iou
        self.frames_per_batch = frames_per_batch
        self.image_size = int(model.config.prompt_encoder_config.image_size)

    @classmethod
    def from_pretrained(cls, model_id: str = DEFAULT_SAM2_MODEL, device: str | torch.device = "cpu", **kwargs):
        """Load ``Sam2Model`` weights (a Hub id or a local folder) and wrap them; ``kwargs`` go to ``__init__``."""
        from transformers import Sam2Model

        return cls(Sam2Model.from_pretrained(model_id).to(device), **kwargs)

    @property
    def _parameter(self) -> torch.Tensor:
        return next(self.model.parameters())

    def _preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(frames, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        mean = x.new_tensor(_IMAGENET_MEAN)[:, None, None]
        std = x.new_tensor(_IMAGENET_STD)[:, None, None]
        return (x - mean) / std

    @torch.no_grad()
    def masks_and_embeddings(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks and SAM2 image embeddings of each frame, in one pass of the image encoder.

        Args:
            frames: ``(T, 3, H, W)`` RGB in [0, 1].

        Returns:
            masks ``(T, num_masks, H, W)`` float in {0, 1}, and the lowest-resolution SAM2 image
            embedding ``(T, C_sam, h, w)`` (``(T, 256, 64, 64)`` for the released checkpoints).
        """
        height, width = frames.shape[-2:]
        device, dtype = self._parameter.device, self._parameter.dtype
        points = grid_points(self.points_per_side, self.image_size, self.image_size).to(device, dtype)
        masks, embeddings = [], []
        for chunk in frames.split(self.frames_per_batch):
            pixel_values = self._preprocess(chunk.to(device, dtype))
            image_embeddings = self.model.get_image_embeddings(pixel_values)
            out = self.model(
                image_embeddings=image_embeddings,
                input_points=points[None, :, None, :].expand(chunk.shape[0], -1, -1, -1),
                multimask_output=True,
            )
            logits = F.interpolate(out.pred_masks.flatten(0, 1), size=(height, width), mode="bilinear")
            candidates = logits.unflatten(0, out.pred_masks.shape[:2]) > 0
            for frame_masks, frame_scores in zip(candidates, out.iou_scores):
                kept = select_masks(frame_masks, frame_scores, self.num_masks, self.duplicate_iou)
                masks.append(pad_masks(kept, self.num_masks))
            embeddings.append(image_embeddings[-1])
        return torch.stack(masks).to(frames.device), torch.cat(embeddings).to(frames.device)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """``(T, 3, H, W)`` in [0, 1] -> ``(T, num_masks, H, W)`` float in {0, 1}."""
        return self.masks_and_embeddings(frames)[0]


class Sam2PackageMasks:
    """SEEM's mask prior from Meta's ``sam2`` package (``SAM2AutomaticMaskGenerator``).

    The generator already keeps one mask per point and removes duplicates by box NMS; its records then
    go through the same :func:`select_masks` (one candidate each, scored by ``predicted_iou``) and
    :func:`pad_masks` as the transformers backend.

    Args:
        generator: an object with ``generate(image: np.ndarray HWC uint8) -> list[dict]`` whose records
            carry ``"segmentation"`` (bool ``H x W``) and ``"predicted_iou"``, e.g.
            ``SAM2AutomaticMaskGenerator(model, points_per_side=8)``.
        num_masks, duplicate_iou: as in :class:`Sam2PointGridMasks`.
    """

    def __init__(self, generator, num_masks: int = 64, duplicate_iou: float = 0.9) -> None:
        self.generator = generator
        self.num_masks = num_masks
        self.duplicate_iou = duplicate_iou

    @classmethod
    def from_pretrained(
        cls, model_id: str = DEFAULT_SAM2_MODEL, points_per_side: int = 8, device: str = "cpu", **kwargs
    ):
        """Build ``SAM2AutomaticMaskGenerator`` for a Hub checkpoint; needs ``pip install sete-vsr[sam2]``."""
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2_hf

        model = build_sam2_hf(model_id, device=device)
        return cls(SAM2AutomaticMaskGenerator(model, points_per_side=points_per_side), **kwargs)

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """``(T, 3, H, W)`` in [0, 1] -> ``(T, num_masks, H, W)`` float in {0, 1}."""
        out = []
        for frame in frames:
            image = (frame.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            records = self.generator.generate(np.ascontiguousarray(image))
            if records:
                masks = torch.from_numpy(np.stack([r["segmentation"] for r in records]).astype(bool))[:, None]
                scores = torch.tensor([[float(r["predicted_iou"])] for r in records])
                kept = select_masks(masks, scores, self.num_masks, self.duplicate_iou)
            else:
                kept = torch.zeros((0, *frame.shape[-2:]), dtype=torch.bool)
            out.append(pad_masks(kept, self.num_masks))
        return torch.stack(out).to(frames.device)


def load_mask_generator(
    backend: str = "auto", model_id: str = DEFAULT_SAM2_MODEL, points_per_side: int = 8, device: str = "cpu"
) -> MaskGenerator:
    """SEEM's mask prior for ``backend`` in ``{"auto", "sam2", "transformers"}``.

    ``"auto"`` uses the ``sam2`` package when it is installed and transformers otherwise. ``model_id`` is a Hub
    id or, for transformers, a local folder written by ``Sam2Model.save_pretrained``.

    Raises:
        SeteVSRError: an unknown backend, or weights that cannot be loaded (no such folder, or a Hub id that is
            neither in the Hugging Face cache nor downloadable, e.g. offline).
    """
    if backend == "auto":
        try:
            import sam2  # noqa: F401
        except ImportError:
            backend = "transformers"
        else:
            backend = "sam2"
    if backend not in ("sam2", "transformers"):
        raise SeteVSRError(f"unknown SAM backend {backend!r}: expected 'auto', 'sam2' or 'transformers'")
    try:
        if backend == "sam2":
            return Sam2PackageMasks.from_pretrained(model_id, points_per_side=points_per_side, device=device)
        return Sam2PointGridMasks.from_pretrained(model_id, device=device, points_per_side=points_per_side)
    except OSError as err:  # transformers and huggingface_hub report missing files and failed downloads so
        raise SeteVSRError(_unavailable_weights_message(model_id, backend, err)) from err


def _unavailable_weights_message(model_id: str, backend: str, err: OSError) -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    if Path(model_id).is_dir():
        where = f"the folder {model_id} holds no SAM2 weights the {backend} backend can load ({reason})"
    else:
        where = (
            f"{model_id!r} is not a local folder, and as a Hub id it is neither in the Hugging Face cache "
            f"{HF_HUB_CACHE} nor downloadable ({reason})"
        )
    return (
        f"cannot load the SAM2 mask generator: {where}. Pass sam2=DIR, a folder written by transformers' "
        f"Sam2Model.save_pretrained (with the transformers backend), or download {DEFAULT_SAM2_MODEL} once online"
    )


class ResidualBlock(nn.Module):
    """``x + conv(lrelu(conv(x)))``, 3 x 3 convolutions without normalisation; ``(B, C, H, W)`` in and out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class FeatureCombination(nn.Module):
    """``f_r`` of Eq. 1: ``R_sam = f_r(concat(I_t, M_sam))``, two convolutions and one residual block.

    Args:
        num_masks: channels of ``M_sam`` (64 in the paper).
        out_channels: ``D``, channels of ``R_sam``.
        image_channels: channels of the frame ``I_t``.

    Shapes: ``frames (B, image_channels, H, W)``, ``masks (B, num_masks, H, W)`` -> ``(B, D, H, W)``.
    """

    def __init__(self, num_masks: int = 64, out_channels: int = 64, image_channels: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(image_channels + num_masks, out_channels, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            ResidualBlock(out_channels),
        )

    def forward(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([frames, masks], dim=1))
