"""Window and tile planning, blend weights and the streaming accumulator."""

from __future__ import annotations

import pytest
import torch

from sete_vsr.models.blending import (
    BlendAccumulator,
    plan_regions,
    plan_shifted_regions,
    plan_shifted_spans,
    plan_spans,
    shift_offset,
    span_weights,
)


@pytest.mark.parametrize(
    "length, span, overlap",
    [(1, 8, 2), (5, 8, 2), (8, 8, 2), (9, 8, 2), (16, 8, 2), (17, 8, 4), (40, 16, 8), (10, 4, 3), (7, 3, 0)],
)
def test_spans_cover_everything_and_end_aligned(length, span, overlap):
    spans = plan_spans(length, span, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    covered = torch.zeros(length, dtype=torch.bool)
    for (start, end), nxt in zip(spans, spans[1:] + [None]):
        assert end - start == min(span, length)
        covered[start:end] = True
        if nxt is not None:
            assert start < nxt[0] and end - nxt[0] >= overlap  # overlaps at least as asked
    assert bool(covered.all())


def test_short_video_is_one_window():
    assert plan_spans(5, 16, 4) == [(0, 5)]
    assert plan_spans(5, None, 0) == [(0, 5)]


@pytest.mark.parametrize("bad", [(10, 4, 4), (10, 4, -1), (0, 4, 1), (3, 4, 5)])
def test_invalid_spans_are_rejected(bad):
    with pytest.raises(ValueError):
        plan_spans(*bad)


@pytest.mark.parametrize("ramp", ["linear", "cosine"])
@pytest.mark.parametrize("length, span, overlap", [(9, 8, 2), (40, 16, 8), (10, 4, 3), (7, 3, 0), (33, 12, 11)])
def test_weights_sum_to_one_and_ramp_inside_overlaps(ramp, length, span, overlap):
    spans = plan_spans(length, span, overlap)
    weights = span_weights(spans, length, ramp)
    total = torch.zeros(length, dtype=torch.float64)
    for (start, end), weight in zip(spans, weights):
        assert weight.shape == (end - start,) and bool((weight > 0).all())
        total[start:end] += weight
    torch.testing.assert_close(total, torch.ones(length, dtype=torch.float64), rtol=0, atol=1e-12)
    # Positions covered by a single span take it with weight exactly one.
    coverage = torch.zeros(length, dtype=torch.int64)
    for start, end in spans:
        coverage[start:end] += 1
    for (start, end), weight in zip(spans, weights):
        assert bool((weight[coverage[start:end] == 1] == 1).all())


def test_linear_ramp_values_of_two_windows():
    spans = plan_spans(6, 4, 2)  # [(0, 4), (2, 6)]
    first, second = span_weights(spans, 6, "linear")
    torch.testing.assert_close(first, torch.tensor([1, 1, 2 / 3, 1 / 3], dtype=torch.float64))
    torch.testing.assert_close(second, torch.tensor([1 / 3, 2 / 3, 1, 1], dtype=torch.float64))


def _merge(x: torch.Tensor, regions, fn=lambda t: t) -> torch.Tensor:
    acc = BlendAccumulator(x.shape[0], x.shape[2], x.shape[3] * regions[0].scale, x.shape[4] * regions[0].scale)
    for region in regions:
        acc.add(region, fn(region.crop(x)))
    return acc.pop()


def test_single_window_and_tile_is_identity_bit_for_bit():
    x = torch.randn(2, 5, 3, 7, 9)
    regions = plan_regions(5, 7, 9, window_length=16, window_overlap=4, tile_size=None)
    assert len(regions) == 1
    assert torch.equal(_merge(x, regions), x)


@pytest.mark.parametrize("ramp", ["linear", "cosine"])
def test_windows_and_tiles_reassemble_the_input(ramp):
    x = torch.randn(1, 13, 2, 21, 18)
    regions = plan_regions(13, 21, 18, 5, 2, tile_size=(8, 7), tile_overlap=3, ramp=ramp)
    assert len(regions) > 9
    torch.testing.assert_close(_merge(x, regions), x, rtol=0, atol=1e-6)


def test_tile_plan_covers_edges():
    regions = plan_regions(1, 37, 50, tile_size=16, tile_overlap=4)
    rows = sorted({r.rows for r in regions})
    cols = sorted({r.cols for r in regions})
    assert rows[0][0] == 0 and rows[-1][1] == 37 and cols[0][0] == 0 and cols[-1][1] == 50
    assert all(e - s == 16 for s, e in rows + cols)
    weight = torch.zeros(37, 50, dtype=torch.float64)
    for r in regions:
        weight[slice(*r.rows), slice(*r.cols)] += r.weight(torch.float64, "cpu")[0, 0, 0]
    torch.testing.assert_close(weight, torch.ones_like(weight), rtol=0, atol=1e-12)


def test_scaled_regions_place_upsampled_predictions():
    """Regions planned on latents, predictions at 4x: a pointwise 'decoder' is reproduced exactly."""
    x = torch.randn(1, 6, 3, 10, 12)
    regions = plan_regions(6, 10, 12, 4, 2, tile_size=6, tile_overlap=2, scale=4)
    assert regions[0].row_weight.shape == (24,)

    def upsample(t):
        return t.flatten(0, 1).repeat_interleave(4, -1).repeat_interleave(4, -2).unflatten(0, t.shape[:2])

    torch.testing.assert_close(_merge(x, regions, upsample), upsample(x), rtol=0, atol=1e-6)


def test_streaming_pop_releases_finished_frames():
    x = torch.randn(1, 11, 1, 4, 4)
    regions = plan_regions(11, 4, 4, window_length=4, window_overlap=1)
    acc = BlendAccumulator(1, 1, 4, 4)
    blocks = []
    for i, region in enumerate(regions):
        acc.add(region, region.crop(x))
        assert acc.end - acc.start <= 4  # never more than one window held
        next_start = regions[i + 1].frames[0] if i + 1 < len(regions) else 11
        blocks.append(acc.pop(next_start))
    torch.testing.assert_close(torch.cat(blocks, dim=1), x, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="already popped"):
        acc.add(regions[0], regions[0].crop(x))


@pytest.mark.parametrize("length, span", [(14, 6), (17, 4), (32, 8), (5, 4), (3, 8)])
@pytest.mark.parametrize("step", [0, 1])
def test_shifted_spans_partition_and_move_by_half_a_span(length, span, step):
    spans = plan_shifted_spans(length, span, shift_offset(step, span))
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # disjoint and contiguous: no frame twice
    if length > span:
        assert all(span // 2 <= e - s < span + span // 2 for s, e in spans)
    else:
        assert spans == [(0, length)]


def test_shifted_boundaries_of_one_step_are_inside_spans_at_the_next():
    even = {s for s, _ in plan_shifted_spans(32, 8, shift_offset(0, 8))[1:]}
    odd = {s for s, _ in plan_shifted_spans(32, 8, shift_offset(1, 8))[1:]}
    assert even == {8, 16, 24} and odd == {4, 12, 20, 28}


def test_shifted_regions_cover_each_position_once_with_unit_weights():
    for step in (0, 1):
        regions = plan_shifted_regions(10, 12, 20, step, window_length=4, tile_size=8, multiple=2)
        cover = torch.zeros(10, 12, 20)
        for region in regions:
            cover[slice(*region.frames), slice(*region.rows), slice(*region.cols)] += 1
            assert region.weight(torch.float32, "cpu").eq(1).all()
            assert all(bound % 2 == 0 for bound in (*region.rows, *region.cols))
        assert cover.eq(1).all()
