"""Temporal metrics: flow warping error E_warp (Lai et al.), tOF and tLP (TecoGAN).

**E_warp** (self-consistency of the output, the E*_warp convention of the
diffusion-VSR papers, with a pluggable flow backend recorded in the metric's
name, ``ewarp_<backend>``, and label; ``ewarp`` is the alias of ``ewarp_dis``):

* frames RGB in [0, 1], downsampled x0.5 bilinearly (``cv2.INTER_LINEAR``);
* per pair ``(t, t+1)``: forward flow ``f = F(O_t, O_t+1)`` and backward flow
  ``b = F(O_t+1, O_t)``; ``W = O_t+1`` warped to ``t`` with ``f``;
* occlusion exactly as Lai et al.'s ``detect_occlusion`` called with the flows
  swapped: ``bw = b`` warped by ``f`` with bilinear sampling clamped at the border
  (FlowNet2's ``Resample2d`` clamps the sample indices to the image, so a flow
  pointing out of the frame reads the edge pixel, not zero);
  ``occ = |bw + f|^2 > 0.01 (|bw|^2 + |f|^2) + 0.5`` OR
  ``|grad f|^2 > 0.01 |f|^2 + 0.002`` (forward differences, 0 on the last row/column);
* ``E_t = sum(M (W - O_t)^2) / sum(M)`` with ``M = 1 - occ`` counted over the 3
  channels (all pixels if ``M`` is empty); the clip value is the mean over pairs,
  reported x1000 (E_warp x 10^-3). Lower is better. Pair ``t`` is stored at index ``t+1``.

**tOF** (TecoGAN): Farneback flow (TecoGAN parameters) of consecutive gray
frames of GT and of output, both ``crop_8x8``-ed; per pair the mean over pixels
of ``|OF_gt - OF_out|_2``; pairs ``(t-1, t)`` with ``cutfr < t < T - cutfr`` (cutfr 2)
are kept, others are NaN. Unscaled. Lower is better.

**tLP** (TecoGAN): ``|LPIPS(gt_t-1, gt_t) - LPIPS(out_t-1, out_t)| x 100`` with
LPIPS AlexNet v0.1 on ``crop_8x8`` frames, same pair selection. Lower is better.
"""

from __future__ import annotations

import numpy as np

from .base import Metric, MetricInfo, MetricOptions, check_frames
from .flow_backends import FLOW_BACKENDS, FLOW_LABELS, farneback_backend, warp


def occlusion_mask(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Lai et al. occlusion of frame t given ``fw`` (t -> t+1) and ``bw`` (t+1 -> t), ``(H, W, 2)`` each.

    Returns a boolean ``(H, W)`` array, True where occluded (or on a motion boundary).
    """
    bw_w = warp(bw, fw, border="replicate")  # Resample2d clamps indices at the border
    fb_sq = ((bw_w + fw) ** 2).sum(-1)
    mask1 = fb_sq > 0.01 * ((bw_w**2).sum(-1) + (fw**2).sum(-1)) + 0.5
    du = np.zeros_like(fw)
    dv = np.zeros_like(fw)
    du[:, :-1] = fw[:, :-1] - fw[:, 1:]
    dv[:-1, :] = fw[:-1, :] - fw[1:, :]
    grad_sq = (du**2 + dv**2).sum(-1)
    mask2 = grad_sq > 0.01 * (fw**2).sum(-1) + 0.002
    return mask1 | mask2


def warping_errors(frames: np.ndarray, flow_fn, downscale: float = 0.5) -> np.ndarray:
    """Per-pair Lai warping error of ``(T, H, W, 3)`` uint8 frames (not scaled by 1000); ``(T-1,)``."""
    import cv2

    frames = check_frames(frames)
    if downscale != 1:
        frames = np.stack([cv2.resize(f, None, fx=downscale, fy=downscale, interpolation=cv2.INTER_LINEAR) for f in frames])
    errors = []
    for t in range(len(frames) - 1):
        a, b = frames[t : t + 1], frames[t + 1 : t + 2]
        fw, bw = flow_fn(a, b)[0], flow_fn(b, a)[0]
        keep = ~occlusion_mask(fw, bw)
        img1 = a[0].astype(np.float32) / 255.0
        warped = warp(b[0].astype(np.float32) / 255.0, fw)
        n = keep.sum() * 3
        if n == 0:
            keep, n = np.ones_like(keep), keep.size * 3
        errors.append(float(((warped - img1) ** 2 * keep[..., None]).sum() / n))
    return np.array(errors)


class WarpingError(Metric):
    """E_warp x 10^-3 of the output itself with a named flow backend (see module docstring)."""

    def __init__(self, backend: str = "dis", options: MetricOptions = MetricOptions()):
        self.flow_fn = FLOW_BACKENDS[backend](device=options.device)
        label = FLOW_LABELS.get(backend, backend)
        flow = getattr(self.flow_fn, "description", label)
        self.info = MetricInfo(
            name=f"ewarp_{backend}",
            label=f"E_warp ({label}) ×1e-3",
            higher_is_better=False,
            kind="temporal",
            scope="pair",
            convention="output only (self-consistency), RGB [0,1], x0.5 bilinear, Lai occlusion rule, x1000",
            implementation=f"sete_vsr own (Lai et al. 2018 rule, border-clamped bilinear warps), flow: {flow}",
            needs_gt=False,
        )

    def compute(self, output, gt=None):
        frames = check_frames(output)
        return np.concatenate([[np.nan], 1000.0 * warping_errors(frames, self.flow_fn)])


def crop_8x8(frames: np.ndarray) -> np.ndarray:
    """TecoGAN's centre crop of ``(T, H, W, ...)`` to multiples of 32 with at least 8 px margin per side."""
    h, w = frames.shape[1:3]
    ch, cw = h // 32 * 32, w // 32 * 32
    while ch > h - 16:
        ch -= 32
    while cw > w - 16:
        cw -= 32
    y, x = (h - ch) // 2, (w - cw) // 2
    return frames[:, y : y + ch, x : x + cw]


def _teco_pairs(n: int, cutfr: int) -> np.ndarray:
    """Boolean ``(n,)``: which frames ``t`` (pair ``(t-1, t)``) enter TecoGAN's average."""
    t = np.arange(n)
    return (t > cutfr) & (t < n - cutfr) & (t >= 1)


class TemporalOF(Metric):
    """tOF: TecoGAN's Farneback flow difference between GT and output (see module docstring)."""

    def __init__(self, cutfr: int = 2, options: MetricOptions = MetricOptions()):
        del options  # Farneback flow on the CPU
        self.cutfr = cutfr
        self.flow_fn = farneback_backend()
        self.info = MetricInfo(
            name="tof",
            label="tOF",
            higher_is_better=False,
            kind="temporal",
            scope="pair",
            convention=f"gray uint8, crop_8x8, pairs cutfr={self.cutfr} < t < T-cutfr, mean L2 flow difference (px)",
            implementation="sete_vsr own (TecoGAN metrics.py definition), OpenCV Farneback",
            needs_gt=True,
        )

    def compute(self, output, gt=None):
        if gt is None:
            raise ValueError("tof needs ground truth")
        out, ref = crop_8x8(check_frames(output, "output")), crop_8x8(check_frames(gt, "gt"))
        values = np.full(len(out), np.nan)
        for t in np.flatnonzero(_teco_pairs(len(out), self.cutfr)):
            d = self.flow_fn(ref[t - 1 : t], ref[t : t + 1])[0] - self.flow_fn(out[t - 1 : t], out[t : t + 1])[0]
            values[t] = float(np.sqrt((d**2).sum(-1)).mean())
        return values


class TemporalLPIPS(Metric):
    """tLP x 100: TecoGAN's LPIPS difference of consecutive frames between GT and output."""

    def __init__(self, cutfr: int = 2, options: MetricOptions = MetricOptions()):
        from .deep import LPIPS

        self.cutfr = cutfr
        self.lpips = LPIPS(options)
        self.info = MetricInfo(
            name="tlp",
            label="tLP ×100",
            higher_is_better=False,
            kind="temporal",
            scope="pair",
            convention=f"RGB [0,1] -> [-1,1], crop_8x8, pairs cutfr={self.cutfr} < t < T-cutfr, x100",
            implementation=f"sete_vsr own (TecoGAN definition); {self.lpips.info.implementation}",
            needs_gt=True,
        )

    def compute(self, output, gt=None):
        if gt is None:
            raise ValueError("tlp needs ground truth")
        out, ref = crop_8x8(check_frames(output, "output")), crop_8x8(check_frames(gt, "gt"))
        values = np.full(len(out), np.nan)
        idx = np.flatnonzero(_teco_pairs(len(out), self.cutfr))
        if len(idx):
            d_gt = self.lpips.distances(ref[idx - 1], ref[idx])
            d_out = self.lpips.distances(out[idx - 1], out[idx])
            values[idx] = 100.0 * np.abs(d_gt - d_out)
        return values
