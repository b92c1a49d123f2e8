"""``<basicvsr>+semantic-lens`` as a method: untrained it is the base method; trained weights load and change it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sete_vsr.errors import SeteVSRError
from sete_vsr.methods import load_method

TINY_BASICVSR = {"num_feat": 4, "num_block": 1}
# a cheap prior and blocks: 2 x 2 point grid, 4 mask channels, 4-channel attention, 3 x 3 IMAGE window
SMALL = {"points_per_side": "2", "num_masks": "4", "attn_dim": "4", "window_size": "3"}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    from sete_vsr.baselines.basicvsr import BasicVSR
    from sete_vsr.baselines.registry import BASELINES
    from sete_vsr.models.presets import tiny_sam2_model

    for name in ("basicvsr-vimeo-bi", "basicvsr-reds4"):
        monkeypatch.setitem(BASELINES, name, replace(BASELINES[name], arch_kwargs=TINY_BASICVSR))
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny-basicvsr.pth"
    torch.save({"params": BasicVSR(**TINY_BASICVSR).state_dict()}, checkpoint)
    tiny_sam2_model().save_pretrained(tmp_path / "sam2")
    common = {"checkpoint": str(checkpoint), "device": "cpu", "progress": "false"}
    return {"common": common, "sam2": str(tmp_path / "sam2"), "folder": tmp_path}


FRAMES = np.random.default_rng(0).integers(0, 256, (5, 18, 22, 3), dtype=np.uint8)
CHUNKS = {"chunk_length": "3", "chunk_overlap": "1"}  # 2 chunks of the 5 frames


def test_untrained_semantic_lens_method_equals_the_base_method(tiny):
    base = load_method("basicvsr-vimeo-bi", **tiny["common"], **CHUNKS)
    lens = load_method("basicvsr-vimeo-bi+semantic-lens", **tiny["common"], **CHUNKS, **SMALL, sam2=tiny["sam2"])
    assert not lens.trained and lens.name == "basicvsr-vimeo-bi+semantic-lens-untrained"
    assert lens.runner.model.model.semantic_dim == 16  # the tiny SAM2's embedding width
    assert np.array_equal(lens(FRAMES), base(FRAMES))


def test_trained_weights_load_name_the_method_and_change_the_output(tiny):
    from sete_vsr.plugins.basicvsr_semantic_lens import save_semantic_lens_weights
    from sete_vsr.plugins.semantic_lens import GPS, IMAGE, ISEE

    untrained = load_method("basicvsr-vimeo-bi+semantic-lens", **tiny["common"], **SMALL, sam2=tiny["sam2"])
    model = untrained.runner.model.model
    before = untrained(FRAMES)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # what training would do: the zero-initialised output layers move
        for module in model.modules():
            if isinstance(module, (GPS, ISEE, IMAGE)):
                layer = module.conv2 if isinstance(module, GPS) else module.to_out
                for p in layer.parameters():
                    p.copy_(0.1 * torch.randn(p.shape, generator=generator))
    weights = save_semantic_lens_weights(
        model, tiny["folder"] / "lens.safetensors",
        {"base": "basicvsr-vimeo-bi", "sam2": tiny["sam2"], "points_per_side": 2, "num_masks": 4},
    )  # fmt: skip

    trained = load_method(
        "basicvsr-vimeo-bi+semantic-lens", semantic_lens_weights=str(weights), device="cpu", progress="false"
    )  # SAM2 and the prior's size come from the file
    assert trained.trained and trained.name == "basicvsr-vimeo-bi+semantic-lens"
    assert trained.runner.model.semantics.num_masks == 4
    out = trained(FRAMES)
    assert not np.array_equal(out, before)
    assert np.array_equal(out, untrained(FRAMES))  # the saved network round-trips exactly

    with pytest.raises(SeteVSRError, match="trained from basicvsr-vimeo-bi"):
        load_method("basicvsr-reds4+semantic-lens", semantic_lens_weights=str(weights), device="cpu")
    with pytest.raises(SeteVSRError, match="not a Semantic Lens weights file"):
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(tiny["folder"] / "other.safetensors"))
        load_method("basicvsr-vimeo-bi+semantic-lens", semantic_lens_weights=str(tiny["folder"] / "other.safetensors"))


def test_semantic_lens_method_errors(tiny):
    from sete_vsr.method_options import SemanticLensOptions
    from sete_vsr.plugins.plugin_methods import SemanticLensMethod

    with pytest.raises(SeteVSRError, match="BasicVSR only"):
        SemanticLensMethod(SemanticLensOptions(), base="edvr-m-reds")
    with pytest.raises(SeteVSRError, match="sam2=DIR"):
        load_method("basicvsr-vimeo-bi+semantic-lens", **tiny["common"], sam2=str(tiny["folder"] / "missing"))
    with pytest.raises(SeteVSRError, match="does not take the option"):
        load_method("basicvsr-vimeo-bi+semantic-lens", seem_weights="x")
