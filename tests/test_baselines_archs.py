"""CNN baseline architectures: parameter counts, official key layouts, strict loading, shapes, name conversion.

The reference layouts are ``reference/basicsr_checkpoint_keys.json`` (every BasicSR key and shape)
and ``reference/mmagic_checkpoint_keys.txt`` (key count per model, with the first block of each
repeated group listed) in the shared folder.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from sete_vsr.baselines.basicvsr import BasicVSR
from sete_vsr.baselines.basicvsr_pp import BasicVSRPlusPlus
from sete_vsr.baselines.checkpoints import basicsr_to_mmagic, load_state_dict_strict, mmagic_to_basicsr
from sete_vsr.baselines.edvr import EDVR
from sete_vsr.baselines.realbasicvsr import RealBasicVSR
from sete_vsr.baselines.spynet import SpyNet

# name -> (constructor, official parameter count, BasicSR reference entry, mmagic reference entry)
MODELS = {
    "spynet": (SpyNet, 1_440_300, "SpyNet", None),
    "basicvsr": (lambda: BasicVSR(64, 30), 6_291_311, "BasicVSR(64,30)", "BasicVSRNet(64,30)"),
    "basicvsr-15": (lambda: BasicVSR(64, 15), None, "BasicVSR(64,15 default)", None),
    "basicvsrpp": (lambda: BasicVSRPlusPlus(64, 7), 7_322_927, "BasicVSRPP(64,7)", "BasicVSRPlusPlusNet(64,7)"),
    "realbasicvsr": (RealBasicVSR, 6_294_834, None, "RealBasicVSRNet(64,20,20)"),
    "edvr-m": (EDVR, 3_300_131, "EDVR_M(64,5,10,tsa)", "EDVRNet_M"),
    "edvr-l": (lambda: EDVR(128, num_reconstruct_block=40), 20_633_827, "EDVR_L(128,5,40,tsa)", "EDVRNet_L"),
    "edvr-m-wotsa": (lambda: EDVR(with_tsa=False), 2_996_259, "EDVR_M woTSA", None),
}


@pytest.fixture(scope="module")
def basicsr_keys(request) -> dict:
    from conftest import shared_path

    return json.loads(shared_path("reference", "basicsr_checkpoint_keys.json").read_text())


@pytest.fixture(scope="module")
def mmagic_keys() -> dict:
    """``{model: (key count, [(key, shape), ...listed keys])}`` from the mmagic reference file."""
    from conftest import shared_path

    sections: dict = {}
    for line in shared_path("reference", "mmagic_checkpoint_keys.txt").read_text().splitlines():
        if not line.startswith(" "):
            name, _, rest = line.partition(":")
            count = int(re.search(r"keys=(\d+)", rest).group(1))
            sections[name] = (count, [])
        elif line.strip():
            key, shape = line.strip().split(" ", 1)
            sections[name][1].append((key, json.loads(shape)))
    return sections


@pytest.fixture(scope="module")
def models() -> dict:
    return {}


def _model(models: dict, name: str) -> torch.nn.Module:
    if name not in models:
        torch.manual_seed(0)
        models[name] = MODELS[name][0]()
    return models[name]


def _random_state_dict(layout: list, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) for key, shape in layout}


def _collapse_repeats(key: str) -> str:
    """Index every repeated block as the reference listing does (block 0 / level 0 only)."""
    key = re.sub(r"(basic_module\.)\d+(\.basic_module\.)\d+\.", r"\g<1>0\g<2>0.", key)
    key = re.sub(r"(main\.2\.|conv_offset\.)\d+\.", r"\g<1>0.", key)
    return re.sub(r"(^|\.)(feature_extraction|reconstruction)\.\d+\.", r"\1\2.0.", key)


@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if spec[1] is not None])
def test_parameter_count_is_official(name, models):
    assert sum(p.numel() for p in _model(models, name).parameters()) == MODELS[name][1]


def test_realbasicvsr_cleaning_module_count(models):
    assert sum(p.numel() for p in _model(models, "realbasicvsr").image_cleaning.parameters()) == 1_480_643


@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if spec[2] is not None])
def test_basicsr_layout_loads_strictly(name, models, basicsr_keys):
    layout = basicsr_keys[MODELS[name][2]]
    model = _model(models, name)
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == [tuple(kv) for kv in layout] or sorted(
        (k, list(v.shape)) for k, v in model.state_dict().items()
    ) == sorted(tuple(kv) for kv in layout)
    state_dict = _random_state_dict(layout)
    load_state_dict_strict(model, state_dict)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state_dict[key]), key


@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if spec[3] is not None])
def test_mmagic_layout_loads_strictly(name, models, mmagic_keys):
    count, listed = mmagic_keys[MODELS[name][3]]
    model = _model(models, name)
    mmagic_names = basicsr_to_mmagic(model.state_dict())
    # the converted names are exactly the reference layout: same count, same listed keys and shapes
    assert len(mmagic_names) == count
    shapes = {k: list(v.shape) for k, v in mmagic_names.items()}
    for key, shape in listed:
        assert shapes.get(key) == shape, key
    assert {_collapse_repeats(k) for k in mmagic_names} == {k for k, _ in listed}

    state_dict = _random_state_dict(list(shapes.items()), seed=1)
    load_state_dict_strict(model, state_dict)  # mmagic names are converted on load
    converted = mmagic_to_basicsr(state_dict)
    for key, value in model.state_dict().items():
        assert torch.equal(value, converted[key]), key


@pytest.mark.parametrize("name", ["basicvsr", "basicvsrpp", "edvr-m", "edvr-l"])
def test_mmagic_basicsr_names_round_trip(name, basicsr_keys):
    names = [k for k, _ in basicsr_keys[MODELS[name][2]]]
    state_dict = dict.fromkeys(names, torch.zeros(1))
    mmagic = basicsr_to_mmagic(state_dict)
    assert list(mmagic_to_basicsr(mmagic)) == names
    assert list(basicsr_to_mmagic(mmagic_to_basicsr(mmagic))) == list(mmagic)
    assert list(mmagic_to_basicsr(state_dict)) == names  # BasicSR names pass through unchanged


def test_forward_shapes_recurrent():
    torch.manual_seed(0)
    x = torch.rand(1, 2, 3, 64, 68)
    with torch.no_grad():
        assert BasicVSR(8, 1)(x).shape == (1, 2, 3, 256, 272)
        assert BasicVSRPlusPlus(8, 1, deformable_groups=2)(x).shape == (1, 2, 3, 256, 272)
        assert RealBasicVSR(8, 1, 1)(x).shape == (1, 2, 3, 256, 272)
        assert SpyNet()(x[:, 0], x[:, 1]).shape == (1, 2, 64, 68)


def test_forward_shape_edvr():
    torch.manual_seed(0)
    with torch.no_grad():
        for with_tsa in (True, False):
            model = EDVR(8, num_extract_block=1, num_reconstruct_block=1, deformable_groups=2, with_tsa=with_tsa)
            assert model(torch.rand(2, 5, 3, 12, 16)).shape == (2, 3, 48, 64)


@pytest.mark.slow
def test_forward_shapes_full_size_models():
    """The official configurations (freshly initialised) on a tiny clip."""
    torch.manual_seed(0)
    with torch.no_grad():
        assert BasicVSRPlusPlus()(torch.rand(1, 2, 3, 64, 64)).shape == (1, 2, 3, 256, 256)
        assert EDVR()(torch.rand(1, 5, 3, 16, 16)).shape == (1, 3, 64, 64)


def test_diverged_offsets_raise_instead_of_crashing():
    model = EDVR(8, num_extract_block=1, num_reconstruct_block=1, deformable_groups=2)
    with torch.no_grad():
        model.pcd_align.dcn_pack["l3"].conv_offset.bias.fill_(float("nan"))
        with pytest.raises(FloatingPointError, match="non-finite"):
            model(torch.rand(1, 5, 3, 8, 8))


def test_untrained_alignment_starts_as_plain_convolution():
    """DCN offset branches are zero-initialised, as in the reference implementations."""
    model = EDVR(8, num_extract_block=1, num_reconstruct_block=1, deformable_groups=2)
    assert not model.pcd_align.dcn_pack["l1"].conv_offset.weight.any()
    assert not BasicVSRPlusPlus(8, 1, deformable_groups=2).deform_align["forward_1"].conv_offset[-1].weight.any()


BIAS = torch.tensor([0.1, -0.05, 0.02])


def _bilinear_x4(frames: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(frames, scale_factor=4, mode="bilinear", align_corners=False)


@pytest.mark.parametrize(
    "build",
    [
        lambda: BasicVSR(8, 1),
        lambda: BasicVSRPlusPlus(8, 1, deformable_groups=2),
        lambda: RealBasicVSR(8, 1, 1).basicvsr,
    ],
    ids=["basicvsr", "basicvsrpp", "realbasicvsr"],
)
def test_recurrent_output_is_a_residual_over_bilinear_upsampling(build):
    """With the last convolution's weights at zero and a bias ``b``, every output frame is bilinear x4 of its own LR
    frame plus ``b``, computed by hand: the residual path and the frame order hold whatever the features are."""
    torch.manual_seed(0)
    model = build()
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.copy_(BIAS)
        x = torch.rand(1, 3, 3, 64, 68)  # SPyNet needs 64 pixels
        expected = torch.stack([_bilinear_x4(x[:, i]) for i in range(3)], dim=1) + BIAS.view(1, 1, 3, 1, 1)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)


def test_edvr_output_is_a_residual_over_the_centre_frame():
    torch.manual_seed(0)
    model = EDVR(8, num_extract_block=1, num_reconstruct_block=1, deformable_groups=2)
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.copy_(BIAS)
        x = torch.rand(2, 5, 3, 12, 16)
        torch.testing.assert_close(model(x), _bilinear_x4(x[:, 2]) + BIAS.view(1, 3, 1, 1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("threshold, rounds", [(255.0, 1), (1.0, 3)])
def test_realbasicvsr_cleaning_rounds(threshold, rounds):
    """A cleaning module whose output is the constant ``b`` adds ``b`` per round; rounds stop once the mean residue is
    below the threshold (|b| = 0.0567 < 255/255: one round) or after three (|b| > 1/255)."""
    torch.manual_seed(0)
    model = RealBasicVSR(8, 1, 1, dynamic_refine_thres=threshold)
    with torch.no_grad():
        model.image_cleaning[-1].weight.zero_()
        model.image_cleaning[-1].bias.copy_(BIAS)
        x = torch.rand(1, 2, 3, 64, 68)
        torch.testing.assert_close(model.clean(x), x + rounds * BIAS.view(1, 1, 3, 1, 1), rtol=0, atol=1e-6)
        torch.testing.assert_close(model(x), model.basicvsr(x + rounds * BIAS.view(1, 1, 3, 1, 1)), rtol=0, atol=1e-6)
