"""The frozen SAM2 semantic encoder: output contract, chunking, input checks, save/load, both backends."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from sete_vsr.errors import SeteVSRError
from sete_vsr.models import SemanticEncoder
from sete_vsr.models.presets import tiny_sam2_vision_config

SMALL = 256  # resize side for the fast tests: embeddings (N, 256, 16, 16)
TINY_SAM2_OVERRIDES = (  # Meta sam2's hiera_t config shrunk to toy width (same layout, 256-channel neck)
    "++model.image_encoder.trunk.embed_dim=8",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
)
HAS_SAM2 = all(importlib.util.find_spec(name) for name in ("sam2", "hydra", "iopath"))


@pytest.fixture(scope="module")
def encoder() -> SemanticEncoder:
    torch.manual_seed(0)
    model = SemanticEncoder(vision_config=tiny_sam2_vision_config().to_dict(), image_size=SMALL, chunk_size=2)
    with torch.no_grad():
        model.no_memory_embedding.normal_()
    return model


def random_frames(count: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, height, width), dtype=torch.uint8, generator=generator)


def test_is_frozen(encoder):
    assert not any(param.requires_grad for param in encoder.parameters())
    assert not encoder.training


def test_batches_of_any_size_and_layout(encoder):
    frames = random_frames(3, 36, 52)  # 3 frames, chunk_size 2: chunks of 2 and 1
    out = encoder(frames)
    assert out.shape == (3, 256, SMALL // 16, SMALL // 16) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.std() > 0
    # per-frame results do not depend on the chunking or on the input form
    torch.testing.assert_close(encoder(frames[2]), out[2:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(encoder(frames.permute(0, 2, 3, 1).numpy()), out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(encoder(frames.float() / 255), out, rtol=1e-4, atol=1e-5)


def test_full_size_embedding_shape(encoder):
    """The real contract: a 1024 input gives (N, 256, 64, 64)."""
    encoder_1024 = SemanticEncoder.from_config({**encoder.config, "image_size": 1024})
    out = encoder_1024(random_frames(1, 24, 40))
    assert out.shape == (1, 256, 64, 64) and torch.isfinite(out).all()


def test_rejects_bad_frames(encoder):
    with pytest.raises(SeteVSRError, match=r"\[0, 1\]"):
        encoder(torch.full((1, 3, 8, 8), 255.0))
    with pytest.raises(SeteVSRError, match="RGB"):
        encoder(torch.zeros(1, 4, 8, 8))
    with pytest.raises(SeteVSRError, match="RGB"):
        encoder(np.zeros((2, 8, 8), np.uint8))


def test_save_and_load_gives_identical_features(encoder, tmp_path):
    frames = random_frames(2, 20, 30)
    encoder.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = SemanticEncoder.from_pretrained(tmp_path)
    assert torch.equal(loaded(frames), encoder(frames))


def test_loads_transformers_checkpoints(encoder, tmp_path):
    """A full Sam2Model folder (the layout of facebook/sam2.1-hiera-tiny) and a Sam2VisionModel folder."""
    from transformers import Sam2Config, Sam2Model

    torch.manual_seed(3)
    sam2 = Sam2Model(Sam2Config(vision_config=tiny_sam2_vision_config().to_dict()))
    with torch.no_grad():
        sam2.no_memory_embedding.normal_()
    sam2.save_pretrained(tmp_path / "sam2")
    sam2.vision_encoder.save_pretrained(tmp_path / "vision")

    frames = random_frames(1, 16, 16)
    from_full = SemanticEncoder.from_transformers(str(tmp_path / "sam2"), image_size=SMALL)
    from_vision = SemanticEncoder.from_transformers(str(tmp_path / "vision"), image_size=SMALL)
    pixels = torch.nn.functional.interpolate(
        frames.float() / 255, size=(SMALL, SMALL), mode="bilinear", align_corners=False, antialias=True
    )
    pixels = (pixels - from_full.pixel_mean) / from_full.pixel_std
    with torch.no_grad():
        fpn = sam2.vision_encoder(pixel_values=pixels).fpn_hidden_states[-1]
    torch.testing.assert_close(from_full(frames), fpn + sam2.no_memory_embedding.reshape(1, -1, 1, 1))
    torch.testing.assert_close(from_vision(frames), fpn)


@pytest.mark.skipif(not HAS_SAM2, reason="Meta's sam2 package is not installed (extra 'sam2')")
def test_sam2_backend(tmp_path):
    torch.manual_seed(0)
    encoder = SemanticEncoder.from_sam2(overrides=TINY_SAM2_OVERRIDES, image_size=SMALL, chunk_size=2)
    frames = random_frames(3, 30, 44)
    out = encoder(frames.permute(0, 2, 3, 1).numpy())
    assert out.shape == (3, 256, SMALL // 16, SMALL // 16) and torch.isfinite(out).all()
    torch.testing.assert_close(encoder(frames[:1]), out[:1], rtol=1e-4, atol=1e-5)

    # an official-layout checkpoint ({"model": SAM2Base state dict}) is read for the image encoder
    state = {f"image_encoder.{key}": value + 1.0 for key, value in encoder.image_encoder.state_dict().items()}
    state["no_mem_embed"] = torch.full((1, 1, 256), 0.5)
    torch.save({"model": state}, tmp_path / "sam2_tiny.pt")
    loaded = SemanticEncoder.from_sam2(
        checkpoint=str(tmp_path / "sam2_tiny.pt"), overrides=TINY_SAM2_OVERRIDES, image_size=SMALL
    )
    assert torch.equal(loaded.no_memory_embedding.flatten(), torch.full((256,), 0.5))
    weight = "neck.convs.0.conv.weight"
    assert torch.equal(loaded.image_encoder.state_dict()[weight], state[f"image_encoder.{weight}"])

    loaded.save_pretrained(tmp_path / "saved")
    reloaded = SemanticEncoder.from_pretrained(tmp_path / "saved")
    assert torch.equal(reloaded(frames[:1]), loaded(frames[:1]))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SAM2, reason="Meta's sam2 package is not installed (extra 'sam2')")
def test_sam2_backend_hiera_tiny_full_size():
    """The shipped sam2.1 hiera-t config at 1024 gives (N, 256, 64, 64)."""
    encoder = SemanticEncoder.from_sam2("configs/sam2.1/sam2.1_hiera_t.yaml")
    out = encoder(random_frames(1, 32, 48))
    assert out.shape == (1, 256, 64, 64) and torch.isfinite(out).all()
