"""DOVER (Wu et al., ICCV 2023): own PyTorch implementation of the released model.

``DOVER.pth`` (VQAssessment/DOVER, GitHub release v0.1.0 or HF ``teowu/DOVER``) loads
strictly into :class:`DOVER`; nothing else is needed (no timm, einops or decord).
Without the file the metric is skipped with where it looked (``--weights-dir``,
``$SETE_VSR_WEIGHTS``, shared data, torch hub cache, ``~/.cache/sete-vsr``).

What is reproduced (``dover.yml``, ``dover/models/*.py``, ``dover/datasets/dover_datasets.py``,
``evaluate_a_set_of_videos.py``):

* **Model** ``DOVER(backbone_size="divided", backbone_preserve_keys="technical,aesthetic",
  divide_head=True, vqa_head=dict(in_channels=768, hidden_channels=64))``:

  * ``technical_backbone``: FAST-VQA's video Swin-T with the gated relative position
    bias (:class:`~.video_swin.VideoSwinGRPB`).
  * ``aesthetic_backbone``: ConvNeXt-3D tiny (:class:`~.convnext_3d.ConvNeXt3D`),
    spatial output map kept.
  * ``technical_head`` / ``aesthetic_head``: ``VQAHead``: 1x1x1 Conv3d 768->64, GELU,
    64->1 on every position of the feature map (no pre-pooling).
* **Views** (``data.val-l1080p`` of ``dover.yml``), from ``(T, H, W, 3)`` uint8 RGB:

  * technical: ``UnifiedFrameSampler(32, 3, 2)``: 3 segments of ``T // 3`` frames, in
    each 32 frames at interval 2 from a random start (indices mod T); then a 7x7 grid
    of 32x32 fragments -> 224x224, offsets drawn per grid cell and per 32-frame chunk.
    Frames whose short side is below 224 are first upsampled (bilinear, by
    ``224 / short side``, truncated back to uint8) and, as in the release, the grid is
    still laid out on the *original* size, so for small frames the fragments come
    from the top-left part of the upsampled frame.
  * aesthetic: ``UnifiedFrameSampler(1, 32, 2, 1)``: one random frame in each of 32
    segments, resized to 224x224 (torchvision ``Resize`` on uint8 tensors: bilinear,
    rounded; ``antialias=False``, the behaviour of the torch 1.13 the release pins).
  * both normalised with mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375)
    on the 0-255 scale; the technical view is scored as 3 clips of 32 frames.
* **Scores**: the raw score of a branch is the mean of its head's map over clips and
  positions; the overall is :func:`~.external.dover_fusion` (PROTOCOLS.md 3.4),
  a value in [0, 1] (DOVER's CSV prints it x100).
* **Numerics**: window attention as in :mod:`.video_swin` (agrees with the release to
  float32 rounding). Cost on 2 CPU cores: about 70 s per video.
* **Seeding**: the release draws the temporal starts with ``np.random`` and the fragment
  offsets with ``torch.randint``. Here they come from ``np.random.RandomState(seed)``
  and a CPU ``torch.Generator`` seeded with ``seed``, in the release's call order, so a
  video always gets the same views (the same as seeding numpy and torch with ``seed``
  right before the release's view decomposition).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import SeteVSRError
from ...weight_dirs import find_weight
from .base import Metric, MetricInfo, MetricOptions, check_frames
from .convnext_3d import ConvNeXt3D
from .external import dover_fusion
from .video_swin import VideoSwinGRPB

DOVER_FILES = ("DOVER.pth", "dover/DOVER.pth", "pretrained_weights/DOVER.pth")
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


class DOVERCheckpointError(SeteVSRError):
    """A DOVER checkpoint that does not match the released layout."""


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class DOVERViews:
    """View sampling (defaults: ``dover.yml``, ``val-l1080p``). Smaller values only for tests."""

    fragments: int = 7
    fsize: int = 32
    tech_clip_len: int = 32
    tech_frame_interval: int = 2
    tech_num_clips: int = 3
    aes_size: int = 224
    aes_clip_len: int = 32
    aes_frame_interval: int = 2
    aes_t_frag: int = 32
    aes_num_clips: int = 1
    antialias: bool = False


def unified_frame_indices(num_frames, fsize_t, fragments_t, frame_interval, num_clips, rng) -> np.ndarray:
    """DOVER's ``UnifiedFrameSampler``: ``fragments_t`` segments, ``fsize_t`` frames each.

    In each of the ``num_frames // fragments_t``-long segments the run of ``fsize_t``
    frames at ``frame_interval`` starts at a random offset in ``[0, len - fsize_t *
    interval)`` (0 when the segment is not longer than that); repeated ``num_clips``
    times; indices wrap modulo ``num_frames``.
    """
    out = []
    for _ in range(num_clips):
        seg = num_frames // fragments_t
        starts = np.array([seg * i for i in range(fragments_t)], dtype=np.int64)
        span = fsize_t * frame_interval
        if seg > span:
            offsets = rng.randint(0, seg - span, size=fragments_t)
        else:
            offsets = np.zeros(fragments_t, dtype=np.int64)
        runs = np.arange(fsize_t)[None, :] * frame_interval + offsets[:, None] + starts[:, None]
        out.append(runs.reshape(-1))
    return np.mod(np.concatenate(out), num_frames).astype(np.int64)


def _bilinear_upsample_uint8(video, scale: float):
    """The release's ``interpolate(video / 255, scale_factor, "bilinear")`` cast back by truncation."""
    up = F.interpolate(video / 255.0, scale_factor=scale, mode="bilinear")
    return (up * 255.0).to(video.dtype)


def spatial_fragments(video, generator=None, fragments: int = 7, fsize: int = 32, aligned: int = 32,
                      return_offsets: bool = False):
    """DOVER's technical view: a ``fragments x fragments`` mosaic of ``fsize`` px fragments.

    Args:
        video: ``(C, T, H, W)`` uint8 tensor.
        generator: ``torch.Generator`` for the offsets (global RNG when None).
        aligned: frames sharing one set of offsets (a clip).
        return_offsets: also return the upsampled source and the ``(i, j, chunk) ->
            (top, left)`` corner of every fragment in it (for tests).

    Returns:
        ``(C, T, fragments*fsize, fragments*fsize)`` float32 tensor (0-255 values).
    """
    size = fragments * fsize
    dur_t, res_h, res_w = video.shape[-3:]
    if dur_t % aligned:
        raise ValueError(f"{dur_t} frames are not a multiple of the clip length {aligned}")
    ratio = min(res_h / size, res_w / size)
    source = _bilinear_upsample_uint8(video, 1 / ratio) if ratio < 1 else video
    # grid on the size before upsampling, exactly as released
    hgrid = [min(res_h // fragments * i, res_h - fsize) for i in range(fragments)]
    wgrid = [min(res_w // fragments * i, res_w - fsize) for i in range(fragments)]
    hlen, wlen = res_h // fragments, res_w // fragments
    chunks = dur_t // aligned
    shape = (fragments, fragments, chunks)
    zeros = torch.zeros(shape, dtype=torch.long)
    rnd_h = torch.randint(hlen - fsize, shape, generator=generator) if hlen > fsize else zeros  # drawn first
    rnd_w = torch.randint(wlen - fsize, shape, generator=generator) if wlen > fsize else zeros
    out = torch.zeros(video.shape[:-2] + (size, size), dtype=torch.float32, device=video.device)
    corners = {}
    for i, hs in enumerate(hgrid):
        for j, ws in enumerate(wgrid):
            for t in range(chunks):
                top, left = hs + int(rnd_h[i, j, t]), ws + int(rnd_w[i, j, t])
                frames = slice(t * aligned, (t + 1) * aligned)
                out[:, frames, i * fsize : (i + 1) * fsize, j * fsize : (j + 1) * fsize] = source[
                    :, frames, top : top + fsize, left : left + fsize
                ]
                corners[i, j, t] = (top, left)
    return (out, source, corners) if return_offsets else out


def resized_view(video, size: int = 224, antialias: bool = False):
    """DOVER's aesthetic view: torchvision ``Resize((size, size))`` of a uint8 ``(C, T, H, W)`` tensor."""
    frames = video.permute(1, 0, 2, 3).float()
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
    return torch.round(frames).clamp(0, 255).to(torch.uint8).permute(1, 0, 2, 3)


def _normalise(view, num_clips: int):
    """``(C, T, H, W)`` 0-255 -> ``(num_clips, C, T / num_clips, H, W)``, ImageNet mean/std."""
    mean = torch.tensor(MEAN, device=view.device).view(3, 1, 1, 1)
    std = torch.tensor(STD, device=view.device).view(3, 1, 1, 1)
    view = (view.float() - mean) / std
    c, t, h, w = view.shape
    return view.reshape(c, num_clips, t // num_clips, h, w).transpose(0, 1).contiguous()


def sample_views(frames: np.ndarray, seed: int = 0, views: DOVERViews = DOVERViews()) -> dict:
    """``{"technical", "aesthetic"}`` -> ``(clips, 3, T, 224, 224)`` normalised float tensors."""
    frames = check_frames(frames)
    rng = np.random.RandomState(seed)
    generator = torch.Generator().manual_seed(seed)
    n = len(frames)
    if n == 0:
        raise ValueError("DOVER needs at least one frame")
    # temporal sampling first for both views (release order: technical, aesthetic)
    tech_idx = unified_frame_indices(n, views.tech_clip_len, views.tech_num_clips, views.tech_frame_interval, 1, rng)
    aes_idx = unified_frame_indices(
        n, views.aes_clip_len // views.aes_t_frag, views.aes_t_frag, views.aes_frame_interval, views.aes_num_clips, rng
    )
    video = torch.from_numpy(np.ascontiguousarray(frames))

    def clip(indices):  # (C, T, H, W) uint8
        return video[torch.from_numpy(indices)].permute(3, 0, 1, 2)

    tech = spatial_fragments(clip(tech_idx), generator, views.fragments, views.fsize, views.tech_clip_len)
    aes = resized_view(clip(aes_idx), views.aes_size, views.antialias)
    return {"technical": _normalise(tech, views.tech_num_clips), "aesthetic": _normalise(aes, views.aes_num_clips)}


# ----------------------------------------------------------------------------- model


class VQAHead(nn.Module):
    """Per-position regression: Conv3d 1x1x1 in->hidden, GELU, hidden->1 (dropout off in eval)."""

    def __init__(self, in_channels=768, hidden_channels=64):
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden_channels, (1, 1, 1))
        self.fc_last = nn.Conv3d(hidden_channels, 1, (1, 1, 1))
        self.gelu = nn.GELU()

    def forward(self, x):
        return self.fc_last(self.gelu(self.fc_hid(x)))


class DOVER(nn.Module):
    """Both DOVER branches with the parameter names of ``DOVER.pth``."""

    def __init__(self):
        super().__init__()
        self.technical_backbone = VideoSwinGRPB()
        self.aesthetic_backbone = ConvNeXt3D()
        self.technical_head = VQAHead(768, 64)
        self.aesthetic_head = VQAHead(768, 64)

    def branch_score(self, branch: str, clips):
        """Mean of the head's score map over all clips and positions (one clip at a time)."""
        backbone, head = getattr(self, f"{branch}_backbone"), getattr(self, f"{branch}_head")
        maps = [head(backbone(clip[None])) for clip in clips]
        return sum(float(m.sum()) for m in maps) / sum(m.numel() for m in maps)

    def forward(self, views: dict) -> dict:
        """``{"technical": (clips,3,T,H,W), "aesthetic": ...}`` -> raw scores (floats)."""
        return {branch: self.branch_score(branch, views[branch]) for branch in ("technical", "aesthetic")}


def build_dover():
    """A randomly initialised :class:`DOVER` module (load ``DOVER.pth`` into it)."""
    return DOVER()


def layout_mismatch(state: dict, expected: dict) -> str | None:
    """What differs between a state dict and the expected one (names and shapes), or None."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)
    ]

    def few(keys):
        return ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")

    parts = [f"{name}: {few(keys)}" for name, keys in
             (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)) if keys]
    return "; ".join(parts) or None


def load_dover(path, device="cpu"):
    """``DOVER.pth`` -> DOVER module in eval mode, loaded strictly.

    The module is laid out on the meta device and every tensor taken from the file
    (``strict=True``: all parameters and the ``relative_position_index`` buffers).

    Raises:
        DOVERCheckpointError: the file is not a state dict in DOVER's key layout
            (the message names missing, unexpected and mis-shaped keys).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise DOVERCheckpointError(f"cannot read DOVER checkpoint {path}: {err}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DOVERCheckpointError(f"{path} is not a state dict (got {type(state).__name__})")
    with torch.device("meta"):
        model = DOVER()
    problem = layout_mismatch(state, model.state_dict())
    if problem:
        raise DOVERCheckpointError(f"{path} does not match the DOVER layout ({problem})")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval()


# ---------------------------------------------------------------------------- metric


class DOVERMetric(Metric):
    """DOVER fused overall score of a whole clip (scope ``"video"``), higher is better.

    Args:
        options: ``device``, the torch device for the network.
        seed: seed of the fragment/frame sampling (same video, same seed -> same score).
        repeats: average the scores over ``repeats`` samplings (seeds ``seed .. seed+repeats-1``).
        weights: path of ``DOVER.pth``; looked up in the weight directories when None.
        views: view sampling (release defaults).
    """

    def __init__(self, options: MetricOptions = MetricOptions(), seed: int = 0, repeats: int = 1, weights=None,
                 views: DOVERViews | None = None):
        device = options.device
        path = Path(weights) if weights is not None else find_weight(*DOVER_FILES)
        if not path.is_file():
            raise SeteVSRError(f"DOVER weights {path} do not exist")
        self.device, self.seed, self.repeats = device, int(seed), max(1, int(repeats))
        self.views = views or DOVERViews()
        self.model = load_dover(path, device)
        v = self.views
        self.info = MetricInfo(
            name="dover",
            label="DOVER",
            higher_is_better=True,
            kind="no-reference",
            scope="video",
            convention=(
                f"RGB uint8 frames in memory, one value per clip: fused overall in [0,1] (not x100); technical "
                f"{v.tech_num_clips}x{v.tech_clip_len} frames (interval {v.tech_frame_interval}), "
                f"{v.fragments}x{v.fragments} fragments of {v.fsize}px; aesthetic {v.aes_clip_len} frames resized to "
                f"{v.aes_size}; sampling seed {self.seed}"
                + (f", mean of {self.repeats} samplings" if self.repeats > 1 else "")
            ),
            implementation=f"sete-vsr reimplementation of VQAssessment/DOVER (dover.yml), {path.name}",
            needs_gt=False,
        )

    def scores(self, output: np.ndarray) -> dict[str, float]:
        """``overall``, ``aesthetic``, ``technical`` (in [0, 1]) and the raw branch scores."""
        frames = check_frames(output)
        raws = []
        for k in range(self.repeats):
            views = sample_views(frames, self.seed + k, self.views)
            with torch.inference_mode():
                raws.append(self.model({name: view.to(self.device) for name, view in views.items()}))
        fused = [dover_fusion(r["aesthetic"], r["technical"]) for r in raws]
        out = {key: float(np.mean([f[key] for f in fused])) for key in ("overall", "aesthetic", "technical")}
        out["aesthetic_raw"] = float(np.mean([r["aesthetic"] for r in raws]))
        out["technical_raw"] = float(np.mean([r["technical"] for r in raws]))
        return out

    def compute(self, output, gt=None) -> float:
        del gt
        return self.scores(output)["overall"]


def with_views(**changes) -> DOVERViews:
    """Release views with some fields changed (``with_views(tech_clip_len=8)``)."""
    return replace(DOVERViews(), **changes)
