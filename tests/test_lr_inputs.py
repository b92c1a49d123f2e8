"""Training and inference condition the U-Net the same way (sete_vsr.models.lr_inputs is their one path)."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from sete_vsr.models.lr_inputs import semantic_embeddings


@pytest.fixture(scope="module")
def pipe():
    from sete_vsr.pipelines.assemble import tiny_pipeline

    return tiny_pipeline(seed=0, temporal=True)


def spy_unet(unet) -> tuple[list[dict[str, torch.Tensor]], torch.utils.hooks.RemovableHandle]:
    """Record the conditioning inputs of every U-Net call, positional (training) or by keyword (pipeline)."""
    calls = []

    def hook(module, args, kwargs):
        named = dict(zip(("sample", "timestep", "lr_latents", "semantic_embeds", "num_frames"), args), **kwargs)
        calls.append({key: named[key] for key in ("lr_latents", "semantic_embeds", "num_frames")})

    return calls, unet.register_forward_pre_hook(hook, with_kwargs=True)


def test_a_training_crop_is_conditioned_in_the_pipeline_bit_for_bit(pipe, tmp_path):
    """One 64-pixel HR crop (16-pixel LR): the U-Net gets the same LR latents and semantic embeddings in both paths."""
    from sete_vsr.data.train_datasets import FrameFolderDataset
    from sete_vsr.data.degradations import degrade
    from sete_vsr.train.data import collate_clips, to_uint8
    from sete_vsr.train.loop import diffusion_loss

    rng = np.random.default_rng(0)
    clip = tmp_path / "clip"
    clip.mkdir()
    for index in range(2):
        PIL.Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(clip / f"{index:08d}.png")
    dataset = FrameFolderDataset(
        tmp_path, num_frames=2, crop_size=64, degradation=lambda hr, rng: degrade(hr, "BI"), augment=False, seed=0
    )
    batch = collate_clips([dataset[0]])

    trained, handle = spy_unet(pipe.unet)
    with torch.no_grad():
        diffusion_loss(batch, pipe.unet, pipe.vae, pipe.semantic_encoder, pipe.scheduler, torch.Generator().manual_seed(0))
    handle.remove()
    inferred, handle = spy_unet(pipe.unet)
    pipe.set_progress_bar_config(disable=True)
    pipe(to_uint8(batch["lr"][0]), num_inference_steps=1, output_type="latent")
    handle.remove()

    assert len(trained) == len(inferred) == 1
    for key in ("lr_latents", "semantic_embeds"):
        assert torch.equal(trained[0][key], inferred[0][key]), key


def test_each_tile_attends_to_the_semantics_of_its_own_region(pipe):
    """A frame of 3x2 latent tiles: each tile's tokens are the embeddings of the LR region it covers."""
    rng = np.random.default_rng(1)
    lr = rng.integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)  # latent 12x16 (VAE scale factor 8)
    calls, handle = spy_unet(pipe.unet)
    pipe.set_progress_bar_config(disable=True)
    pipe(lr, num_inference_steps=1, tile_size=8, tile_overlap=4, output_type="latent")
    handle.remove()

    frames = torch.from_numpy(lr).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    grid = pipe.unet.semantic_grid_size
    # Latent tiles of 8 with overlap 4: rows (0, 8), (4, 12); columns (0, 8), (4, 12), (8, 16). LR = latent * 8 / 4.
    tiles = [(rows, cols) for rows in ((0, 8), (4, 12)) for cols in ((0, 8), (4, 12), (8, 16))]
    assert len(calls) == len(tiles)
    for call, ((top, bottom), (left, right)) in zip(calls, tiles):
        region = frames[..., 2 * top : 2 * bottom, 2 * left : 2 * right]
        assert torch.equal(call["semantic_embeds"], semantic_embeddings(pipe.semantic_encoder, region, grid))
    assert not torch.equal(calls[0]["semantic_embeds"], calls[-1]["semantic_embeds"])


def test_semantic_embeddings_keep_the_aspect_ratio(pipe):
    """A wide frame is not squashed: its embedding equals that of the frame padded to a square with the mean colour."""
    encoder = pipe.semantic_encoder
    size = encoder.config.image_size
    wide = torch.rand(1, 3, size // 2, size)
    embeds = encoder(wide, keep_aspect=True)
    stride = size // encoder(torch.rand(1, 3, size, size)).shape[-1]
    assert embeds.shape[-2:] == (size // 2 // stride, size // stride)
    mean = torch.tensor(encoder.config.image_mean).view(1, 3, 1, 1)
    padded = torch.cat([wide, mean.expand(1, 3, size // 2, size)], dim=2)
    assert torch.allclose(embeds, encoder(padded)[..., : size // 2 // stride, :], atol=1e-5)
    square = torch.rand(2, 3, 40, 40)
    assert torch.equal(encoder(square, keep_aspect=True), encoder(square))
