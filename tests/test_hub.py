"""A saved model loads through ``DiffusionPipeline.from_pretrained`` as diffusers' custom pipelines do, its card says
what the Hub needs, and pushing keeps a repository's own card unless asked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from diffusers import DiffusionPipeline

from sete_vsr import SeTeVSRPipeline
from sete_vsr.errors import SeteVSRError
from sete_vsr.pipelines import tiny_pipeline
from sete_vsr.pipelines.hub import ENTRY_FILE, ENTRY_MODULE


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[SeTeVSRPipeline, Path]:
    pipe = tiny_pipeline(seed=0)
    pipe.set_progress_bar_config(disable=True)
    folder = tmp_path_factory.mktemp("hub") / "model"
    pipe.save_pretrained(folder)
    return pipe, folder


def _upscale(pipe, frames):
    import torch

    pipe.set_progress_bar_config(disable=True)
    return pipe(frames, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]


def test_diffusion_pipeline_loads_a_saved_model_with_the_cards_snippet(saved):
    pipe, folder = saved
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == [ENTRY_MODULE, "SeTeVSRPipeline"] and (folder / ENTRY_FILE).is_file()
    card = (folder / "README.md").read_text()
    snippet = re.search(r"```python\n(from diffusers import DiffusionPipeline\n.*?trust_remote_code=True\))", card, re.S)
    assert snippet is not None, card
    scope: dict = {}
    exec(snippet.group(1), scope)  # the card's own lines, as a user copies them
    loaded = scope["pipe"]
    assert type(loaded) is SeTeVSRPipeline
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_upscale(loaded, frames), _upscale(pipe, frames))
    with pytest.raises(ValueError, match="trust_remote_code"):  # diffusers' own rule for custom code
        DiffusionPipeline.from_pretrained(folder)


def test_sete_vsr_loads_without_trust_remote_code_and_refuses_another_entry(saved, tmp_path):
    _, folder = saved
    assert type(SeTeVSRPipeline.from_pretrained(folder)) is SeTeVSRPipeline
    import shutil

    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    (tampered / ENTRY_FILE).write_text("import os\nfrom sete_vsr import SeTeVSRPipeline\n")
    with pytest.raises(SeteVSRError, match="not SeTe-VSR's entry file"):
        SeTeVSRPipeline.from_pretrained(tampered)
    # a model saved before the entry file existed still loads
    index = json.loads((tampered / "model_index.json").read_text())
    index["_class_name"] = "SeTeVSRPipeline"
    (tampered / "model_index.json").write_text(json.dumps(index))
    (tampered / ENTRY_FILE).unlink()
    assert type(SeTeVSRPipeline.from_pretrained(tampered)) is SeTeVSRPipeline


def test_model_card_metadata():
    from sete_vsr.pipelines.model_card import build_model_card

    random = tiny_pipeline(seed=0)
    card = build_model_card(random, "me/tiny")
    header = card.split("---")[1]
    assert "license: apache-2.0" in header and "pipeline_tag: video-to-video" in header
    assert "library_name: diffusers" in header and "base_model" not in header  # random weights: no base
    assert 'DiffusionPipeline.from_pretrained(\'me/tiny\', trust_remote_code=True)' in card
    built = {
        "base": "stabilityai/stable-diffusion-2-1-base",
        "semantic": "facebook/sam2.1-hiera-tiny",
        "training_stages": [{"stage": "1", "steps": 500, "data": {"root": "/data/REDS/train_sharp"},
                             "window_length": 1, "degradation": "realbasicvsr", "batch_size": 3,
                             "learning_rate": 5e-5}],
    }  # fmt: skip
    random.register_to_config(assembled_from=built)
    card = build_model_card(random, "me/tiny")
    header = card.split("---")[1]
    assert "license: openrail++" in header
    assert "- stabilityai/stable-diffusion-2-1-base" in header and "- facebook/sam2.1-hiera-tiny" in header
    assert "| 1 | 500 | train_sharp | 1 | realbasicvsr | 3 | 5e-05 |" in card


@pytest.mark.parametrize("overwrite", [False, True])
def test_push_keeps_the_repositorys_card_unless_asked(saved, monkeypatch, overwrite):
    from diffusers.utils import hub_utils
    from huggingface_hub import ModelCard, RepoUrl

    pipe, _ = saved
    uploaded = {}

    def upload_folder(repo_id, folder_path, **kwargs):
        readme = Path(folder_path) / "README.md"
        uploaded["card"] = readme.read_text() if readme.is_file() else None
        uploaded["files"] = {p.name for p in Path(folder_path).iterdir()}

    monkeypatch.setattr(hub_utils, "create_repo", lambda repo_id, **kw: RepoUrl(f"https://huggingface.co/{repo_id}"))
    monkeypatch.setattr(hub_utils, "load_or_create_model_card", lambda *a, **kw: ModelCard("their card"))
    monkeypatch.setattr(hub_utils, "upload_folder", upload_folder)
    monkeypatch.setattr("huggingface_hub.file_exists", lambda repo_id, filename, **kw: filename == "README.md")
    pipe.push_to_hub("someone/has-a-card", overwrite_model_card=overwrite, private=True, token="hf_x")
    assert ENTRY_FILE in uploaded["files"]
    if overwrite:
        assert "DiffusionPipeline.from_pretrained('someone/has-a-card'" in uploaded["card"]
    else:
        assert uploaded["card"] is None  # not uploaded: the repository keeps its README.md
