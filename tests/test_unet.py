"""The SeTe U-Net: conversion, identity at initialisation, temporal mixing, stages, save/load, checkpointing."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0, SlicedAttnProcessor

from sete_vsr.errors import SeteVSRError
from sete_vsr.models import (
    SemanticTransformerBlock,
    SeTeUNetModel,
    TemporalSpatialAwarenessModule,
    TemporalTransformer,
)
from sete_vsr.models.presets import tiny_sete_unet_options, tiny_unet2d

LATENT = 8
TEMPORAL_NAMES = (".temporal_transformer.", ".tsam.")


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return tiny_unet2d(sample_size=LATENT).eval()


def convert(unet, temporal: bool) -> SeTeUNetModel:
    torch.manual_seed(1)
    model = SeTeUNetModel.from_unet2d(unet, temporal=temporal, **tiny_sete_unet_options()).eval()
    model.set_empty_prompt_embeds(torch.randn(1, model.config.prompt_sequence_length, model.config.cross_attention_dim))
    return model


def make_inputs(batch: int, frames: int, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    count = batch * frames
    return {
        "sample": torch.randn(count, 4, LATENT, LATENT, generator=generator),
        "timestep": torch.tensor(321),
        "lr_latents": torch.randn(count, 4, LATENT, LATENT, generator=generator),
        "semantic_embeds": torch.randn(count, 256, 64, 64, generator=generator),
        "num_frames": frames,
    }


def perturb_(model: SeTeUNetModel, names: tuple[str, ...] | None = None, seed: int = 2) -> None:
    """Make new weights non-trivial (as after training): every new tensor gets random noise added."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.stage_parameters(1, only_new_modules=True) + (
            model.stage_parameters(2) if model.config.temporal else []
        ):
            if names is None or any(fragment in name for fragment in names):
                param.add_(0.1 * torch.randn(param.shape, generator=generator))


def run(model: SeTeUNetModel, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).sample


def test_conversion_keeps_every_pretrained_tensor(unet):
    reference = unet.state_dict()
    for temporal in (False, True):
        state = convert(unet, temporal).state_dict()
        for name, tensor in reference.items():
            assert name in state, name
            assert state[name].dtype == tensor.dtype and torch.equal(state[name], tensor), name
        new = set(state) - set(reference)
        assert new and all(
            name == "empty_prompt_embeds"
            or name.startswith(("lr_conditioning.", "semantic_tokenizer."))
            or any(f in name for f in (".semantic_norm.", ".semantic_attn.") + TEMPORAL_NAMES)
            for name in new
        )
        assert any(f in name for name in new for f in TEMPORAL_NAMES) == temporal


@pytest.mark.parametrize("temporal", [False, True], ids=["stage1", "stage2"])
@pytest.mark.parametrize("frames", [1, 3])
def test_identity_at_initialisation(unet, temporal, frames):
    model = convert(unet, temporal)
    inputs = make_inputs(batch=2, frames=frames)
    text = model.empty_prompt_embeds.expand(2 * frames, -1, -1)
    with torch.no_grad():
        expected = unet(inputs["sample"], inputs["timestep"], text).sample
    assert (run(model, inputs) - expected).abs().max() <= 1e-5
    # explicit text embeddings, per clip, still work
    prompt = torch.randn(2, model.config.prompt_sequence_length, model.config.cross_attention_dim)
    with torch.no_grad():
        expected = unet(inputs["sample"], inputs["timestep"], prompt.repeat_interleave(frames, 0)).sample
        got = model(**inputs, encoder_hidden_states=prompt).sample
    assert (got - expected).abs().max() <= 1e-5


def test_add_temporal_modules_keeps_trained_stage1_output(unet):
    model = convert(unet, temporal=False)
    perturb_(model)
    inputs = make_inputs(batch=1, frames=3)
    before = run(model, inputs)
    assert (before - run(unet_like(unet), inputs)).abs().max() > 1e-3  # the perturbation matters
    model.add_temporal_modules()
    assert model.config.temporal and model.stage_parameters(2)
    assert (run(model, inputs) - before).abs().max() <= 1e-5
    with pytest.raises(SeteVSRError, match="already"):
        model.add_temporal_modules()


def unet_like(unet) -> SeTeUNetModel:
    """A freshly converted stage-1 model: the pretrained U-Net's output in SeTe form."""
    return convert(unet, temporal=False)


def test_temporal_path_mixes_frames_once_trained(unet):
    model = convert(unet, temporal=True)
    perturb_(model, names=TEMPORAL_NAMES)
    inputs = make_inputs(batch=2, frames=3)
    base = run(model, inputs)
    changed = dict(inputs, sample=inputs["sample"].clone())
    changed["sample"][1] += 1.0  # frame 2 of clip 1
    out = run(model, changed)
    assert (out[0] - base[0]).abs().max() > 1e-4, "frame 1 must see frame 2"
    assert torch.equal(out[3:], base[3:]), "clip 2 must not see clip 1"

    stage1 = convert(unet, temporal=False)
    assert torch.equal(run(stage1, changed)[0], run(stage1, inputs)[0]), "stage 1 keeps frames independent"

    single = run(model, make_inputs(batch=2, frames=1))
    assert single.shape == (2, 4, LATENT, LATENT) and torch.isfinite(single).all()


def test_stage_parameters(unet):
    model = convert(unet, temporal=True)
    names = {name for name, _ in model.named_parameters()}
    stage2 = {name for name, _ in model.stage_parameters(2)}
    assert stage2 == {name for name in names if any(f in name for f in TEMPORAL_NAMES)} and stage2
    stage1 = {name for name, _ in model.stage_parameters(1)}
    assert stage1 == names - stage2
    new1 = {name for name, _ in model.stage_parameters(1, only_new_modules=True)}
    assert new1 and new1 < stage1 and not new1 & set(unet.state_dict())
    assert any(name.startswith("lr_conditioning.") for name in new1)
    assert any(".semantic_attn." in name for name in new1)
    with pytest.raises(SeteVSRError, match="add_temporal_modules"):
        convert(unet, temporal=False).stage_parameters(2)
    with pytest.raises(SeteVSRError, match="stage"):
        model.stage_parameters(3)


def test_stage2_training_step_changes_only_temporal_tensors(unet):
    model = convert(unet, temporal=True).train()
    model.requires_grad_(False)
    trainable = model.stage_parameters(2)
    for _, param in trainable:
        param.requires_grad_(True)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    optimizer = torch.optim.AdamW([param for _, param in trainable], lr=1e-3)
    inputs = make_inputs(batch=1, frames=3)
    for _ in range(2):  # the second step reaches the weights behind the zero-initialised outputs
        loss = model(**inputs).sample.square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    trained = {name for name, _ in trainable}
    after = model.state_dict()
    for name, tensor in before.items():
        if name not in trained:
            assert torch.equal(after[name], tensor), name
    assert sum(not torch.equal(after[name], before[name]) for name in trained) > len(trained) // 2


@pytest.mark.parametrize("temporal", [False, True], ids=["stage1", "stage2"])
def test_save_and_load_roundtrip(unet, tmp_path, temporal):
    model = convert(unet, temporal)
    perturb_(model)
    inputs = make_inputs(batch=1, frames=2)
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = SeTeUNetModel.from_pretrained(tmp_path).eval()
    assert loaded.config.temporal == temporal
    assert torch.equal(loaded.empty_prompt_embeds, model.empty_prompt_embeds)
    assert torch.equal(run(loaded, inputs), run(model, inputs))


def test_gradient_checkpointing_gives_same_gradients(unet):
    model = convert(unet, temporal=True).train()
    perturb_(model)
    inputs = make_inputs(batch=1, frames=2)

    def gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        model(**inputs).sample.square().mean().backward()
        return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}

    reference = gradients()
    calls: list[type] = []

    def counting_checkpoint(module, *args):
        calls.append(type(module))
        return torch.utils.checkpoint.checkpoint(module.__call__, *args, use_reentrant=False)

    model.enable_gradient_checkpointing(gradient_checkpointing_func=counting_checkpoint)
    checkpointed = gradients()
    assert {SemanticTransformerBlock, TemporalTransformer, TemporalSpatialAwarenessModule} <= set(calls)
    assert reference.keys() == checkpointed.keys()
    for name, grad in reference.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_attention_processors_cover_new_modules(unet):
    model = convert(unet, temporal=True)
    perturb_(model)
    processors = model.attn_processors
    assert len(processors) > len(unet.attn_processors)
    assert all(isinstance(p, AttnProcessor2_0) for p in processors.values())
    assert any("semantic_attn" in name for name in processors) and any("tsam" in name for name in processors)
    inputs = make_inputs(batch=1, frames=2)
    sdpa = run(model, inputs)

    model.set_attention_slice("max")
    assert all(isinstance(p, SlicedAttnProcessor) for p in model.attn_processors.values())
    torch.testing.assert_close(run(model, inputs), sdpa, rtol=1e-4, atol=1e-5)
    model.set_attention_slice(None)
    model.set_attn_processor(AttnProcessor())
    torch.testing.assert_close(run(model, inputs), sdpa, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="xformers attention needs a CUDA device")
def test_xformers_is_accepted(unet):
    pytest.importorskip("xformers")
    model = convert(unet, temporal=True).cuda()
    model.enable_xformers_memory_efficient_attention()
    inputs = {k: v.cuda() if torch.is_tensor(v) else v for k, v in make_inputs(batch=1, frames=2).items()}
    assert torch.isfinite(run(model, inputs)).all()


def test_user_errors_are_clear(unet):
    model = convert(unet, temporal=True)
    inputs = make_inputs(batch=1, frames=3)
    with pytest.raises(SeteVSRError, match="num_frames"):
        run(model, dict(inputs, num_frames=2))
    with pytest.raises(SeteVSRError, match="semantic_embeds"):
        run(model, dict(inputs, semantic_embeds=torch.randn(3, 64, 64, 64)))
    with pytest.raises(SeteVSRError, match="lr_latents"):
        run(model, dict(inputs, lr_latents=torch.randn(3, 4, LATENT // 2, LATENT // 2)))
    with pytest.raises(SeteVSRError, match="empty-prompt"):
        model.set_empty_prompt_embeds(torch.randn(1, 3, 3))
    with pytest.raises(SeteVSRError, match="unknown SeTe U-Net options"):
        SeTeUNetModel.from_unet2d(unet, not_an_option=1)


def test_default_semantic_tokens_are_256_pooled_sam2_cells(unet):
    """Without the tiny preset's options: 256 tokens (16x16 cells of the 64x64 SAM2 map), 256 channels in."""
    model = SeTeUNetModel.from_unet2d(unet)
    assert model.config.num_semantic_tokens == 256 and model.config.semantic_channels == 256
    embeds = torch.randn(2, 256, 64, 64)
    tokens = model.semantic_tokenizer(embeds)
    assert tokens.shape == (2, 256, model.config.semantic_token_dim)
    # each token is its 4x4 cell of the embedding map: changing one cell changes one token only
    changed = embeds.clone()
    changed[:, :, :4, 4:8] += 1.0
    moved = (model.semantic_tokenizer(changed) - tokens).abs().amax(dim=(0, 2))
    assert moved.nonzero().flatten().tolist() == [1]


# ------------------------------------------------------------------ ablations: SeAM, temporal transformer, TSAM

SEMANTIC_NAMES = ("semantic_tokenizer.", ".semantic_norm.", ".semantic_attn.")
ABLATIONS = [
    pytest.param(seam, transformer, tsam, id=f"{'seam' if seam else 'noseam'}-{tag}")
    for seam in (True, False)
    for transformer, tsam, tag in ((True, True, "tt+tsam"), (True, False, "tt"), (False, True, "tsam"))
]


def convert_ablation(unet, temporal: bool, seam: bool, transformer: bool, tsam: bool) -> SeTeUNetModel:
    torch.manual_seed(1)
    options = dict(use_seam=seam, use_temporal_transformer=transformer, use_tsam=tsam, **tiny_sete_unet_options())
    model = SeTeUNetModel.from_unet2d(unet, temporal=temporal, **options).eval()
    model.set_empty_prompt_embeds(torch.randn(1, model.config.prompt_sequence_length, model.config.cross_attention_dim))
    return model


def has(names, fragments) -> bool:
    return any(fragment in f".{name}" for name in names for fragment in fragments)


@pytest.mark.parametrize("seam, transformer, tsam", ABLATIONS)
def test_ablations_are_identity_at_initialisation_with_exact_stage_sets(unet, seam, transformer, tsam):
    model = convert_ablation(unet, True, seam, transformer, tsam)
    assert (model.config.use_seam, model.config.use_temporal_transformer, model.config.use_tsam) == (
        seam, transformer, tsam,
    )  # fmt: skip
    state = model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in unet.state_dict().items())
    names = {name for name, _ in model.named_parameters()}
    assert has(names, SEMANTIC_NAMES) == seam and (model.semantic_tokenizer is not None) == seam
    assert has(names, (".temporal_transformer.",)) == transformer and has(names, (".tsam.",)) == tsam

    inputs = make_inputs(batch=1, frames=2)
    if not seam:
        inputs["semantic_embeds"] = None  # ignored without SeAM
    with torch.no_grad():
        expected = unet(inputs["sample"], inputs["timestep"], model.empty_prompt_embeds.expand(2, -1, -1)).sample
    assert (run(model, inputs) - expected).abs().max() <= 1e-5

    stage2 = {name for name, _ in model.stage_parameters(2)}
    assert stage2 == {name for name in names if any(f in name for f in TEMPORAL_NAMES)} and stage2
    assert {name for name, _ in model.stage_parameters(1)} == names - stage2
    new1 = {name for name, _ in model.stage_parameters(1, only_new_modules=True)}
    assert new1 == {name for name in names - stage2 if name not in unet.state_dict()}
    assert has(new1, SEMANTIC_NAMES) == seam and has(new1, ("lr_conditioning.",))


@pytest.mark.parametrize("seam, transformer, tsam", ABLATIONS)
def test_ablation_stage2_added_to_a_trained_stage1_keeps_its_output(unet, tmp_path, seam, transformer, tsam):
    model = convert_ablation(unet, False, seam, True, True)
    perturb_(model)
    inputs = make_inputs(batch=1, frames=2)
    before = run(model, inputs)
    model.add_temporal_modules(temporal_transformer=transformer, tsam=tsam)
    assert (model.config.temporal, model.config.use_temporal_transformer, model.config.use_tsam) == (
        True, transformer, tsam,
    )  # fmt: skip
    assert (run(model, inputs) - before).abs().max() <= 1e-5
    names = {name for name, _ in model.stage_parameters(2)}
    assert has(names, (".temporal_transformer.",)) == transformer and has(names, (".tsam.",)) == tsam
    assert names == {name for name, _ in model.named_parameters() if any(f in name for f in TEMPORAL_NAMES)}

    # the saved config rebuilds the same layout, and the same output once the new modules are trained
    perturb_(model, names=TEMPORAL_NAMES)
    model.save_pretrained(tmp_path)
    loaded = SeTeUNetModel.from_pretrained(tmp_path).eval()
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert torch.equal(run(loaded, inputs), run(model, inputs))


def test_add_temporal_modules_follows_the_config_unless_told(unet):
    model = convert_ablation(unet, False, True, True, False)  # e.g. `sete-vsr init --no-tsam`
    model.add_temporal_modules()
    assert not has([name for name, _ in model.named_parameters()], (".tsam.",))
    model = convert_ablation(unet, False, True, True, False)
    model.add_temporal_modules(tsam=True)
    assert model.config.use_tsam and has([name for name, _ in model.named_parameters()], (".tsam.",))
    with pytest.raises(SeteVSRError, match="needs a temporal module"):
        convert_ablation(unet, False, True, True, True).add_temporal_modules(temporal_transformer=False, tsam=False)
    with pytest.raises(SeteVSRError, match="needs a temporal module"):
        convert_ablation(unet, True, True, False, False)


def test_configs_saved_before_the_ablation_keys_load_with_everything_on(unet, tmp_path):
    import json

    model = convert(unet, temporal=True)
    perturb_(model)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("use_seam", "use_temporal_transformer", "use_tsam"):
        del config[key]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = SeTeUNetModel.from_pretrained(tmp_path).eval()
    assert loaded.config.use_seam and loaded.config.use_temporal_transformer and loaded.config.use_tsam
    inputs = make_inputs(batch=1, frames=2)
    assert torch.equal(run(loaded, inputs), run(model, inputs))


def test_without_seam_semantic_embeddings_are_ignored(unet):
    model = convert_ablation(unet, True, False, True, True)
    perturb_(model)
    inputs = make_inputs(batch=1, frames=2)
    reference = run(model, inputs)
    assert torch.equal(run(model, dict(inputs, semantic_embeds=None)), reference)
    assert torch.equal(run(model, dict(inputs, semantic_embeds=torch.randn(2, 256, 64, 64))), reference)
    assert model.semantic_grid_size == 4 == convert(unet, temporal=False).semantic_tokenizer.grid_size
