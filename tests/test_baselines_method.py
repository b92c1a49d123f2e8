"""The baselines behind the method interface: chunked recurrence, EDVR windows, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sete_vsr.baselines.basicvsr import BasicVSR
from sete_vsr.baselines.edvr import EDVR
from sete_vsr.baselines.runners import (
    RecurrentBaselineMethod,
    SlidingWindowBaselineMethod,
    chunk_ranges,
    frame_window_indices,
    frames_to_tensor,
    tensor_to_frames,
)
from sete_vsr.errors import SeteVSRError
from sete_vsr.method_options import RecurrentOptions, SlidingWindowOptions


class ClipMeanUpsampler(nn.Module):
    """A stand-in recurrent network: nearest x4 plus the clip mean, so outputs depend on the chunk; records lengths."""

    def __init__(self):
        super().__init__()
        self.lengths = []

    def forward(self, x):  # (1, T, 3, H, W)
        self.lengths.append(x.shape[1])
        up = F.interpolate(x[0], scale_factor=4, mode="nearest")
        return (up + 0.1 * x.mean()).unsqueeze(0)


def _frames(t, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("t,length,overlap", [(5, 10, 2), (25, 10, 2), (100, 30, 5), (31, 7, 3)])
def test_chunks_tile_the_clip_with_context(t, length, overlap):
    ranges = chunk_ranges(t, length, overlap)
    kept = [i for _, _, a, b in ranges for i in range(a, b)]
    assert kept == list(range(t))
    for start, stop, keep_start, keep_stop in ranges:
        assert stop - start <= length and start <= keep_start < keep_stop <= stop
        assert keep_start - start == min(overlap, keep_start)
        assert stop - keep_stop == min(overlap, t - keep_stop)


def test_invalid_chunking_is_rejected():
    with pytest.raises(SeteVSRError, match="chunk_length"):
        RecurrentOptions(device="cpu", chunk_length=4, chunk_overlap=2)


def test_window_indices_follow_basicsr():
    assert frame_window_indices(0, 100, 5) == [4, 3, 0, 1, 2]
    assert frame_window_indices(1, 100, 5) == [4, 0, 1, 2, 3]
    assert frame_window_indices(99, 100, 5) == [97, 98, 99, 96, 95]
    assert frame_window_indices(50, 100, 7) == [47, 48, 49, 50, 51, 52, 53]
    assert frame_window_indices(0, 100, 5, "reflection") == [2, 1, 0, 1, 2]
    assert frame_window_indices(0, 100, 5, "replicate") == [0, 0, 0, 1, 2]
    assert frame_window_indices(0, 2, 5) == [1, 1, 0, 1, 0]  # shorter clip than window: clamped


def test_recurrent_method_bounds_chunks_and_keeps_core_frames():
    model = ClipMeanUpsampler()
    options = RecurrentOptions(device="cpu", chunk_length=6, chunk_overlap=1, progress=False)
    method = RecurrentBaselineMethod(model, "stub", options)
    frames = _frames(14, 64, 64)
    out = method(frames)
    assert out.shape == (14, 256, 256, 3) and max(model.lengths) <= 6
    for start, stop, keep_start, keep_stop in chunk_ranges(14, 6, 1):
        chunk = model(frames_to_tensor(frames[start:stop], torch.device("cpu")))[0]
        kept = tensor_to_frames(chunk[keep_start - start : keep_stop - start])
        np.testing.assert_array_equal(out[keep_start:keep_stop], kept)


def test_recurrent_method_single_pass_equals_network_on_padded_frames():
    torch.manual_seed(0)
    model = BasicVSR(8, 1).eval()
    frames = _frames(2, 20, 30)  # reflect-padded to 64x64 inside, output cropped back
    out = RecurrentBaselineMethod(model, "tiny", RecurrentOptions(device="cpu", progress=False))(frames)
    assert out.shape == (2, 80, 120, 3)
    padded = np.pad(frames, ((0, 0), (0, 44), (0, 34), (0, 0)), mode="reflect")
    with torch.no_grad():
        expected = tensor_to_frames(model(frames_to_tensor(padded, torch.device("cpu")))[0])
    np.testing.assert_array_equal(out, expected[:, :80, :120])


def test_edvr_method_windows_and_batches():
    torch.manual_seed(0)
    model = EDVR(8, num_extract_block=1, num_reconstruct_block=1, deformable_groups=2).eval()
    frames = _frames(4, 10, 14)  # padded to 12x16 inside
    out = SlidingWindowBaselineMethod(model, "tiny", SlidingWindowOptions(device="cpu", progress=False))(frames)
    assert out.shape == (4, 40, 56, 3)
    options = SlidingWindowOptions(device="cpu", batch_size=3, progress=False)
    batched = SlidingWindowBaselineMethod(model, "tiny", options)(frames)
    np.testing.assert_array_equal(out, batched)

    padded = np.pad(frames, ((0, 0), (0, 2), (0, 2), (0, 0)), mode="reflect")
    window = frames_to_tensor(padded[frame_window_indices(0, 4, 5)], torch.device("cpu"))
    with torch.no_grad():
        expected = tensor_to_frames(model(window))[:, :40, :56]
    np.testing.assert_array_equal(out[:1], expected)
