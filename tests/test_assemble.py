"""Assembling a pipeline from tiny SD 2.1 and SAM2 folders saved in the real Hub layouts, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, PNDMScheduler, StableDiffusionPipeline
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, Sam2Config, Sam2Model

from sete_vsr import SeTeVSRPipeline
from sete_vsr.cli import main
from sete_vsr.data.video_io import VideoReader, write_video
from sete_vsr.errors import SeteVSRError
from sete_vsr.models.presets import tiny_autoencoder_kl, tiny_sam2_vision_config, tiny_unet2d
from sete_vsr.pipelines.components import SD21_SCHEDULER_CONFIG
from sete_vsr.pipelines.prompt import encode_prompt

PROMPT_LENGTH = 8


def tiny_clip_tokenizer(folder: Path) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over a handful of characters, from a vocab and merges file written here."""
    folder.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for letter in letters:
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    vocab["ph"] = len(vocab)
    vocab["oto</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\np h\nt o</w>\no to</w>\n")
    return CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        model_max_length=PROMPT_LENGTH,
        pad_token="!",
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> dict:
    """``sd``: a Stable Diffusion 2.1-style pipeline folder; ``sam2``: a transformers Sam2Model folder."""
    root = tmp_path_factory.mktemp("hub")
    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(root / "tokenizer_files")
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=PROMPT_LENGTH,
        hidden_act="gelu",
        projection_dim=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    sd = StableDiffusionPipeline(
        vae=tiny_autoencoder_kl(),
        text_encoder=CLIPTextModel(text_config).eval(),
        tokenizer=tokenizer,
        unet=tiny_unet2d(sample_size=16),
        scheduler=PNDMScheduler.from_config({**SD21_SCHEDULER_CONFIG, "skip_prk_steps": True}),  # as SD 2.1-base
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    sd.save_pretrained(root / "sd21")
    Sam2Model(Sam2Config(vision_config=tiny_sam2_vision_config().to_dict())).save_pretrained(root / "sam2")
    return {"sd": root / "sd21", "sam2": root / "sam2", "source": sd}


def assemble(hub, **kwargs) -> SeTeVSRPipeline:
    return SeTeVSRPipeline.from_sd21(
        base=str(hub["sd"]), semantic=str(hub["sam2"]), semantic_options={"image_size": 256}, **kwargs
    )


def test_hub_layout(hub):
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (hub["sd"] / name).is_dir(), name
    assert json.loads((hub["sd"] / "model_index.json").read_text())["unet"] == ["diffusers", "UNet2DConditionModel"]


def test_from_sd21_keeps_every_pretrained_tensor(hub):
    pipe = assemble(hub, window_length=6)
    source = hub["source"]
    unet_state, vae_state = pipe.unet.state_dict(), pipe.vae.state_dict()
    for name, tensor in source.unet.state_dict().items():
        assert torch.equal(unet_state[name], tensor), name
    for name, tensor in source.vae.state_dict().items():
        assert torch.equal(vae_state[name], tensor), name
    assert isinstance(pipe.scheduler, DDPMScheduler)
    assert torch.equal(pipe.scheduler.betas, DDPMScheduler.from_config(source.scheduler.config).betas)
    assert pipe.unet.config.num_frames == 6 and pipe.unet.config.prompt_sequence_length == PROMPT_LENGTH
    assert pipe.text_encoder is None and pipe.tokenizer is None
    # The stored empty-prompt embedding is the text encoder's output for "".
    ids = source.tokenizer([""], padding="max_length", max_length=PROMPT_LENGTH, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = source.text_encoder(ids)[0]
    torch.testing.assert_close(pipe.unet.empty_prompt_embeds, expected, rtol=0, atol=0)
    assert pipe.config.assembled_from["base"] == str(hub["sd"])


def test_assembled_pipeline_runs_saves_and_reloads(hub, tmp_path):
    pipe = assemble(hub, temporal=True, keep_text_encoder=True)
    pipe.set_progress_bar_config(disable=True)
    video = np.random.RandomState(0).randint(0, 256, (2, 8, 8, 3), dtype=np.uint8)

    def run(pipeline, **kwargs):
        return pipeline(
            video, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np", **kwargs
        ).frames[0]

    expected = run(pipe, prompt="a photo")
    assert expected.shape == (2, 32, 32, 3)
    pipe.save_pretrained(tmp_path / "model")
    card = (tmp_path / "model" / "README.md").read_text()
    assert str(hub["sd"]) in card and "from_sd21" in card
    loaded = SeTeVSRPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.text_encoder, CLIPTextModel)
    # Equal up to rounding: diffusers' own AutoencoderKL (this 2-level toy one) decodes 1e-6 differently once
    # reloaded. The tiny preset's round trip is bit-exact (tests/test_pipeline.py).
    np.testing.assert_allclose(run(loaded, prompt="a photo"), expected, rtol=0, atol=1e-5)


def test_missing_sources_are_clear_errors(hub, tmp_path):
    broken = tmp_path / "sd21"
    shutil.copytree(hub["sd"], broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(SeteVSRError, match="cannot load Stable Diffusion 2.1"):
        SeTeVSRPipeline.from_sd21(base=str(broken), semantic=str(hub["sam2"]))
    with pytest.raises(SeteVSRError, match="cannot load SAM2"):
        SeTeVSRPipeline.from_sd21(base=str(hub["sd"]), semantic=str(tmp_path / "nothing"))


def test_init_command(hub, tmp_path, capsys):
    target = tmp_path / "sete"
    assert main(["init", str(target), "--base", str(hub["sd"]), "--semantic", str(hub["sam2"]), "--temporal"]) == 0
    assert "untrained SeTe-VSR pipeline" in capsys.readouterr().out
    pipe = SeTeVSRPipeline.from_pretrained(target)
    assert pipe.unet.config.temporal and pipe.text_encoder is None
    assert main(["init", str(target), "--preset", "tiny", "--random-weights"]) == 2  # not empty, no --overwrite
    assert main(["init", str(tmp_path / "tiny"), "--preset", "tiny"]) == 2  # random weights must be acknowledged
    assert "--random-weights" in capsys.readouterr().err
    assert not (tmp_path / "tiny").exists()


def test_init_ablations(hub, tmp_path, capsys):
    """``--no-seam``, ``--no-temporal-transformer``, ``--no-tsam``: the U-Net has exactly the modules asked for."""
    sources = ["--base", str(hub["sd"]), "--semantic", str(hub["sam2"])]
    assert main(["init", str(tmp_path / "a"), *sources, "--temporal", "--no-seam", "--no-tsam"]) == 0
    assert "without SeAM, TSAM" in capsys.readouterr().out
    unet = SeTeVSRPipeline.from_pretrained(tmp_path / "a").unet
    config = unet.config
    assert (config.temporal, config.use_seam, config.use_temporal_transformer, config.use_tsam) == (
        True, False, True, False,
    )  # fmt: skip
    names = [name for name, _ in unet.named_parameters()]
    assert unet.semantic_tokenizer is None and not any("semantic" in name or ".tsam." in name for name in names)
    assert any(".temporal_transformer." in name for name in names)
    for name, tensor in hub["source"].unet.state_dict().items():
        assert torch.equal(unet.state_dict()[name], tensor), name

    # stage 1 of an ablation: the choice of temporal modules is kept for stage 2's add_temporal_modules()
    assert main(["init", str(tmp_path / "b"), "--preset", "tiny", "--random-weights", "--no-temporal-transformer"]) == 0
    unet = SeTeVSRPipeline.from_pretrained(tmp_path / "b").unet
    assert not unet.config.temporal and unet.config.use_seam and not unet.config.use_temporal_transformer
    unet.add_temporal_modules()
    names = [name for name, _ in unet.stage_parameters(2)]
    assert names and all(".tsam." in name for name in names)

    assert main(["init", str(tmp_path / "c"), *sources, "--no-temporal-transformer", "--no-tsam"]) == 2
    assert "leaves stage 2 nothing to add" in capsys.readouterr().err


def test_prompts_with_guidance_in_python_and_on_the_command_line(hub, tmp_path):
    pipe = assemble(hub, temporal=True, keep_text_encoder=True)
    pipe.set_progress_bar_config(disable=True)
    video = np.random.RandomState(0).randint(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    guided = {"guidance_scale": 4.0, "num_inference_steps": 2, "output_type": "latent"}
    by_text = pipe(video, prompt="a photo", negative_prompt="blur", generator=torch.Generator().manual_seed(0),
                   **guided).frames[0]  # fmt: skip
    embeds = {name: encode_prompt(pipe.text_encoder, pipe.tokenizer, text, "cpu")
              for name, text in (("prompt_embeds", "a photo"), ("negative_prompt_embeds", "blur"))}  # fmt: skip
    by_embeds = pipe(video, generator=torch.Generator().manual_seed(0), **embeds, **guided).frames[0]
    torch.testing.assert_close(by_text, by_embeds, rtol=0, atol=0)
    unguided = pipe(video, prompt="a photo", generator=torch.Generator().manual_seed(0),
                    **{**guided, "guidance_scale": 1.0}).frames[0]  # fmt: skip
    assert not torch.allclose(by_text, unguided)

    pipe.save_pretrained(tmp_path / "model")
    source = tmp_path / "in.mp4"
    write_video(source, video, fps=10)
    argv = ["upscale", str(source), "-o", str(tmp_path / "out.mp4"), "--model", str(tmp_path / "model"),
            "--steps", "2", "--no-progress", "--prompt", "a photo", "--negative-prompt", "blur",
            "--guidance-scale", "4", "--noise-level", "0.5"]  # fmt: skip
    assert main(argv) == 0
    assert VideoReader(tmp_path / "out.mp4").info.num_frames == 2
