"""Temporal VAE: conversion from AutoencoderKL, identity at init, temporal mixing, chunked and tiled decoding."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL

from sete_vsr.models.presets import tiny_autoencoder_kl
from sete_vsr.models.temporal_vae import TemporalAutoencoderKL
from sete_vsr.models.blending import plan_spans, span_weights


@pytest.fixture(scope="module")
def vae() -> AutoencoderKL:
    torch.manual_seed(0)
    return tiny_autoencoder_kl().eval()


@pytest.fixture(scope="module")
def converted(vae) -> TemporalAutoencoderKL:
    return TemporalAutoencoderKL.from_autoencoder_kl(vae, temporal_attention_head_dim=16).eval()


def _randomise_temporal(model: TemporalAutoencoderKL, seed: int = 0) -> TemporalAutoencoderKL:
    """A copy whose temporal layers are non-zero (as after training)."""
    trained = TemporalAutoencoderKL.from_config(model.config).eval()
    trained.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in trained.temporal_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
    return trained


def test_every_pretrained_tensor_is_copied_bit_for_bit(vae, converted):
    source = vae.state_dict()
    target = converted.state_dict()
    for name, tensor in source.items():
        assert torch.equal(target[name], tensor), name
    new = set(target) - set(source)
    assert new and all(name.startswith("temporal_layers.") for name in new)
    assert {id(p) for p in converted.temporal_parameters()} == {
        id(p) for name, p in converted.named_parameters() if name.startswith("temporal_layers.")
    }


@pytest.mark.parametrize("num_frames", [1, 4])
def test_identity_at_init(vae, converted, num_frames):
    z = torch.randn(2 * num_frames, 4, 8, 12)
    with torch.no_grad():
        expected = vae.decode(z).sample
        actual = converted.decode(z, num_frames=num_frames).sample
        roundtrip = converted(torch.rand(num_frames, 3, 16, 16) * 2 - 1, num_frames=num_frames).sample
    assert actual.shape == (2 * num_frames, 3, 16, 24)
    assert (actual - expected).abs().max() <= 1e-5
    assert roundtrip.shape == (num_frames, 3, 16, 16)


def test_temporal_layers_mix_frames(converted):
    trained = _randomise_temporal(converted)
    z = torch.randn(3, 4, 8, 8)
    changed = z.clone()
    changed[2] += 1.0  # frame 2 (0-based) of the clip
    with torch.no_grad():
        before = trained.decode(z, num_frames=3).sample
        after = trained.decode(changed, num_frames=3).sample
        separate = trained.decode(changed, num_frames=1).sample  # three one-frame clips: no mixing
    assert (after[1] - before[1]).abs().max() > 1e-4
    assert torch.allclose(separate[1], trained.decode(z, num_frames=1).sample[1])


def test_chunked_decode_equals_full_decode(converted):
    z = torch.randn(2 * 7, 4, 8, 8)  # two clips of 7 frames
    with torch.no_grad():
        full = converted.decode(z, num_frames=7).sample
        one_chunk = converted.decode_chunked(z, 7, chunk_size=16, chunk_overlap=4).sample
        chunks = converted.decode_chunked(z, 7, chunk_size=3, chunk_overlap=1).sample
    assert torch.equal(one_chunk, full)
    # Identity temporal layers: frames are independent, the blend only adds float rounding of weights summing to 1.
    torch.testing.assert_close(chunks, full, rtol=0, atol=1e-5)


def test_chunk_overlap_blends_the_chunk_decodes(converted):
    """With trained temporal layers, each frame is the weighted mix of the chunks that decode it."""
    trained = _randomise_temporal(converted)
    num_frames, size, overlap = 8, 5, 2
    z = torch.randn(num_frames, 4, 8, 8)
    spans = plan_spans(num_frames, size, overlap)  # [(0, 5), (3, 8)]
    weights = span_weights(spans, num_frames, "cosine")
    with torch.no_grad():
        chunks = [trained.decode(z[s:e], num_frames=e - s).sample for s, e in spans]
        expected = torch.zeros(num_frames, 3, 16, 16)
        for (s, e), w, chunk in zip(spans, weights, chunks):
            expected[s:e] += w.float()[:, None, None, None] * chunk
        blended = trained.decode_chunked(z, num_frames, chunk_size=size, chunk_overlap=overlap).sample
        full = trained.decode(z, num_frames=num_frames).sample
    torch.testing.assert_close(blended, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(blended[:3], chunks[0][:3], rtol=0, atol=1e-6)  # frames of one chunk only
    assert not torch.allclose(blended, full, atol=1e-4)  # chunk boundaries do change trained outputs


def test_normalisation_is_per_frame():
    """Without a temporal receptive field (1-frame kernels, no attention), a block's output for a frame does not depend
    on the other frames of its chunk: its GroupNorms take statistics per frame."""
    from sete_vsr.models.temporal_vae import TemporalMixingBlock

    torch.manual_seed(0)
    block = TemporalMixingBlock(16, kernel_size=1, attention_head_dim=None, norm_num_groups=4).eval()
    with torch.no_grad():
        block.conv2.weight.normal_(0, 0.1)
        x = torch.randn(12, 16, 6, 6) * torch.linspace(0.1, 10, 12).view(12, 1, 1, 1)  # very different frames
        whole = block(x, num_frames=12)
        in_fours = torch.cat([block(part, num_frames=4) for part in x.split(4)])
    torch.testing.assert_close(in_fours, whole, rtol=0, atol=1e-6)


def test_decoding_in_chunks_of_4_and_12_is_bounded(converted):
    """The same 12 frames decoded in chunks of 4 and of 12, with strong random temporal layers: reported and bounded.

    Normalisation is per frame (above), so chunks differ only through what the temporal layers are for: stacked
    temporal convolutions (a receptive field of +-2 frames per block, 3 blocks here) and attention see fewer neighbours
    at chunk boundaries. With these random layers (no training) the difference is about 60% of the temporal layers'
    own contribution; the trained model's figure is in ``tests/test_example_model.py``."""
    trained = _randomise_temporal(converted)
    torch.manual_seed(1)
    z = torch.randn(12, 4, 8, 8)
    with torch.no_grad():
        image = converted.decode(z, num_frames=12).sample  # no temporal contribution
        whole = trained.decode_chunked(z, 12, chunk_size=12, chunk_overlap=0).sample
        in_fours = trained.decode_chunked(z, 12, chunk_size=4, chunk_overlap=1).sample
    contribution = (whole - image).abs().mean()
    difference = (in_fours - whole).abs().mean()
    print(f"chunks of 4 vs 12: mean |diff| {difference:.3f}, temporal contribution {contribution:.3f}")
    assert contribution > 1e-2
    assert 0 < difference < 0.75 * contribution


def test_iter_decode_streams_consecutive_blocks(converted):
    z = torch.randn(10, 4, 8, 8)
    with torch.no_grad():
        blocks = list(converted.iter_decode(z, 10, chunk_size=4, chunk_overlap=1))
        full = converted.decode(z, num_frames=10).sample
    assert len(blocks) > 1 and all(b.shape[0] == 1 for b in blocks)
    torch.testing.assert_close(torch.cat(blocks, dim=1)[0], full, rtol=0, atol=1e-5)


def test_tiles_are_placed_and_blended_exactly(converted, monkeypatch):
    """With a decoder that acts pixel by pixel, tiled decoding must reproduce untiled decoding exactly."""

    def pointwise(z, num_frames):
        return z[:, :3].repeat_interleave(2, -1).repeat_interleave(2, -2) * 2 + 1

    monkeypatch.setattr(converted, "_decode_frames", pointwise)
    z = torch.randn(6, 4, 19, 23)
    blended = converted.decode_chunked(z, 3, chunk_size=2, chunk_overlap=1, tile_size=8, tile_overlap=3).sample
    torch.testing.assert_close(blended, pointwise(z, 3), rtol=0, atol=1e-5)


def test_tiled_decode_matches_untiled(converted):
    """Real decoder: GroupNorm statistics and the mid-block attention are global to a tile, so no tiling is exact.

    The tolerance is relative to diffusers' own `AutoencoderKL.tiled_decode` at the same tile size and overlap:
    ours must be at least as close to the untiled decode, and the mean error must stay a small fraction of the
    output's spread (measured over seeds: 0.13-0.16 of the std for ours, 0.19-0.23 for diffusers'). A tile
    covering the whole latent is exact.
    """
    vae = AutoencoderKL.from_config(converted.config).eval()
    vae.load_state_dict({k: v for k, v in converted.state_dict().items() if not k.startswith("temporal_layers.")})
    tile, overlap = 20, 8
    z = torch.randn(2, 4, 40, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = converted.decode(z, num_frames=2).sample
        whole = converted.tiled_decode(z, 2, tile_size=40, tile_overlap=8).sample
        ours = converted.tiled_decode(z, 2, tile_size=tile, tile_overlap=overlap).sample
        vae.tile_latent_min_size, vae.tile_sample_min_size = tile, tile * 2
        vae.tile_overlap_factor = overlap / tile
        reference = vae.tiled_decode(z).sample
    assert torch.equal(whole, full)
    ours_error = (ours - full).abs().mean()
    assert ours_error <= (reference - full).abs().mean()
    assert ours_error <= 0.2 * full.std()


def test_enable_tiling_routes_decode_through_temporal_tiles(converted):
    z = torch.randn(2, 4, 40, 40)
    converted.enable_tiling()
    try:
        with torch.no_grad():
            tiled = converted.decode(z, num_frames=2).sample
            expected = converted.tiled_decode(z, 2).sample
    finally:
        converted.disable_tiling()
    assert tiled.shape == (2, 3, 80, 80)
    assert torch.equal(tiled, expected)


def test_gradient_checkpointing_gives_same_gradients(converted):
    trained = _randomise_temporal(converted).train()
    z = torch.randn(4, 4, 8, 8)

    def grads():
        trained.zero_grad()
        trained.decode(z, num_frames=4).sample.square().mean().backward()
        return [p.grad.clone() for p in trained.temporal_parameters()]

    plain = grads()
    trained.enable_gradient_checkpointing()
    checkpointed = grads()
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b)


def test_save_load_roundtrip_safetensors(converted, tmp_path):
    trained = _randomise_temporal(converted)
    trained.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = TemporalAutoencoderKL.from_pretrained(tmp_path).eval()
    assert loaded.config.temporal_attention_head_dim == 16
    reference = trained.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, reference[name]), name
    z = torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z, 3).sample, trained.decode(z, 3).sample)


def test_bad_frame_count_is_rejected(converted):
    with pytest.raises(ValueError, match="whole number"):
        converted.decode(torch.randn(5, 4, 8, 8), num_frames=2)


def test_tiny_preset_and_half_precision_conversion(vae):
    tiny = tiny_autoencoder_kl(temporal=True)
    assert isinstance(tiny, TemporalAutoencoderKL) and tiny.vae_scale_factor == 2
    half = TemporalAutoencoderKL.from_autoencoder_kl(vae.to(torch.float16))
    vae.to(torch.float32)
    assert half.dtype == torch.float16
    assert all(p.dtype == torch.float16 for p in half.temporal_parameters())


@pytest.mark.slow
def test_stable_diffusion_sized_vae_converts_at_identity():
    """The SD 2.1 VAE layout (four levels, 128-512 channels), random weights, small latents."""
    from sete_vsr.models.presets import sd21_base_vae

    torch.manual_seed(0)
    sd_vae = sd21_base_vae().eval()
    converted = TemporalAutoencoderKL.from_autoencoder_kl(sd_vae).eval()
    assert converted.vae_scale_factor == 8 and len(converted.temporal_layers) == 5
    z = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.equal(converted.decode(z, num_frames=2).sample, sd_vae.decode(z).sample)
