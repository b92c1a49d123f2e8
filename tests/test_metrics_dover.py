"""DOVER: key layout of the release, view sampling, and the metric on a random checkpoint.

``DOVER.pth`` is not available offline; the checkpoint here is a randomly initialised
model saved in the same layout. The layout itself is checked against key names and
shapes read from VQAssessment/DOVER (``dover/models/{swin_backbone,conv_backbone,head,
evaluator}.py``), so it is not only checked against itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sete_vsr.eval.metrics import METRICS, WeightsUnavailable, build_metric
from sete_vsr.eval.metrics import dover as dv
from sete_vsr.eval.metrics import video_swin as vs

SMALL = dv.with_views(tech_clip_len=4, tech_num_clips=1, aes_clip_len=4, aes_t_frag=4)


@pytest.fixture(scope="module")
def random_state():
    torch.manual_seed(0)
    state = dv.build_dover().state_dict()
    for key, value in state.items():
        if key.endswith("position_bias_table"):
            value.normal_(0, 0.5)  # exercise the gated bias
        elif key.endswith(".gamma"):
            value.fill_(0.5)  # make the ConvNeXt blocks count
    return state


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, random_state):
    folder = tmp_path_factory.mktemp("dover_weights")
    torch.save(random_state, folder / "DOVER.pth")
    return folder


@pytest.fixture
def small_metric(weights_dir, monkeypatch):
    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(weights_dir))
    return build_metric("dover", views=SMALL, seed=3)


def _video(t=12, h=80, w=96, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------- key layout


# (key, shape) read from the DOVER code: SwinTransformer3D() defaults (patch (2,4,4), dim 96,
# depths 2-2-6-2, heads 3-6-12-24, window (8,7,7), frag_biases T-T-T-F), convnext_3d_tiny
# (stem Conv3d (2,4,4), dims 96-192-384-768, inflate "131"), VQAHead(768, 64) per branch.
RELEASE_KEYS = {
    "technical_backbone.patch_embed.proj.weight": (96, 3, 2, 4, 4),
    "technical_backbone.patch_embed.norm.weight": (96,),
    "technical_backbone.layers.0.blocks.0.norm1.weight": (96,),
    "technical_backbone.layers.0.blocks.0.attn.relative_position_bias_table": (15 * 13 * 13, 3),
    "technical_backbone.layers.0.blocks.0.attn.fragment_position_bias_table": (15 * 13 * 13, 3),
    "technical_backbone.layers.0.blocks.0.attn.relative_position_index": (392, 392),
    "technical_backbone.layers.0.blocks.1.attn.qkv.weight": (288, 96),
    "technical_backbone.layers.0.blocks.1.attn.proj.bias": (96,),
    "technical_backbone.layers.0.blocks.1.mlp.fc1.weight": (384, 96),
    "technical_backbone.layers.0.downsample.reduction.weight": (192, 384),
    "technical_backbone.layers.0.downsample.norm.weight": (384,),
    "technical_backbone.layers.2.blocks.5.attn.fragment_position_bias_table": (2535, 12),
    "technical_backbone.layers.2.downsample.reduction.weight": (768, 1536),
    "technical_backbone.layers.3.blocks.1.attn.relative_position_bias_table": (2535, 24),
    "technical_backbone.layers.3.blocks.1.mlp.fc2.weight": (768, 3072),
    "technical_backbone.norm.bias": (768,),
    "aesthetic_backbone.downsample_layers.0.0.weight": (96, 3, 2, 4, 4),
    "aesthetic_backbone.downsample_layers.0.1.weight": (96,),
    "aesthetic_backbone.downsample_layers.1.0.bias": (96,),
    "aesthetic_backbone.downsample_layers.1.1.weight": (192, 96, 1, 2, 2),
    "aesthetic_backbone.downsample_layers.3.1.weight": (768, 384, 1, 2, 2),
    "aesthetic_backbone.stages.0.0.dwconv.weight": (96, 1, 1, 7, 7),
    "aesthetic_backbone.stages.0.1.dwconv.weight": (96, 1, 3, 7, 7),
    "aesthetic_backbone.stages.2.2.gamma": (384,),  # keys listed in VQAssessment/DOVER issue #27
    "aesthetic_backbone.stages.2.2.norm.weight": (384,),
    "aesthetic_backbone.stages.2.2.pwconv1.weight": (1536, 384),
    "aesthetic_backbone.stages.2.2.pwconv2.bias": (384,),
    "aesthetic_backbone.stages.2.8.dwconv.weight": (384, 1, 1, 7, 7),
    "aesthetic_backbone.stages.3.2.gamma": (768,),
    "aesthetic_backbone.norm.weight": (768,),
    "technical_head.fc_hid.weight": (64, 768, 1, 1, 1),
    "technical_head.fc_hid.bias": (64,),
    "technical_head.fc_last.weight": (1, 64, 1, 1, 1),
    "aesthetic_head.fc_hid.weight": (64, 768, 1, 1, 1),
    "aesthetic_head.fc_last.bias": (1,),
}


def test_state_dict_has_the_release_layout(random_state):
    for key, shape in RELEASE_KEYS.items():
        assert tuple(random_state[key].shape) == shape, key
    prefixes = {k.split(".")[0] for k in random_state}
    assert prefixes == {"technical_backbone", "aesthetic_backbone", "technical_head", "aesthetic_head"}
    blocks = {tuple(k.split(".")[2:5:2]) for k in random_state if ".blocks." in k}
    assert [sum(1 for layer, _ in blocks if layer == str(i)) for i in range(4)] == [2, 2, 6, 2]
    stages = {tuple(k.split(".")[2:4]) for k in random_state if k.startswith("aesthetic_backbone.stages.")}
    assert [sum(1 for s, _ in stages if s == str(i)) for i in range(4)] == [3, 3, 9, 3]
    assert not any("layers.3" in k and "fragment" in k for k in random_state)  # no GRPB in the last stage
    assert "technical_backbone.layers.3.downsample.reduction.weight" not in random_state
    assert not any(k.startswith("aesthetic_backbone.head") for k in random_state)  # ConvNeXt3D has no classifier
    # the inflate pattern "131": temporal kernel 1, 3, 1, 1, 3, 1, ... in every stage
    kernels = [random_state[f"aesthetic_backbone.stages.2.{j}.dwconv.weight"].shape[2] for j in range(9)]
    assert kernels == [1, 3, 1, 1, 3, 1, 1, 3, 1]


def test_relative_position_index_matches_swin_definition():
    index = vs._relative_position_index((2, 3, 3))
    coords = [(d, h, w) for d in range(2) for h in range(3) for w in range(3)]
    for i, a in enumerate(coords):
        for j, b in enumerate(coords):
            rel = [a[k] - b[k] + n - 1 for k, n in enumerate((2, 3, 3))]
            assert index[i, j] == rel[0] * 5 * 5 + rel[1] * 5 + rel[2]


# ---------------------------------------------------------------------------- loading


@pytest.mark.slow
def test_loads_strictly_and_scores_a_short_video(small_metric, random_state):
    model = small_metric.model
    loaded = model.state_dict()
    assert set(loaded) == set(random_state)
    assert torch.equal(loaded["technical_head.fc_hid.weight"], random_state["technical_head.fc_hid.weight"])
    assert not model.training
    info = small_metric.info
    assert info.name == "dover" and info.higher_is_better and info.scope == "video" and not info.needs_gt
    assert "DOVER.pth" in info.implementation and "seed 3" in info.convention
    assert info.to_dict()["direction"] == "higher is better"

    shapes = []
    hooks = [getattr(model, f"{b}_head").register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
             for b in ("technical", "aesthetic")]
    video = _video()
    first = small_metric.scores(video)
    for hook in hooks:
        hook.remove()
    assert shapes == [(1, 1, 2, 7, 7)] * 2  # one score per position of the 4/2 x 7 x 7 feature grid
    assert set(first) == {"overall", "aesthetic", "technical", "aesthetic_raw", "technical_raw"}
    for key in ("overall", "aesthetic", "technical"):
        assert 0.0 <= first[key] <= 1.0
    fused = dv.dover_fusion(first["aesthetic_raw"], first["technical_raw"])
    assert first["overall"] == pytest.approx(float(fused["overall"]))
    again = small_metric.compute(video)
    assert isinstance(again, float) and again == first["overall"]  # same seed, same views, same score


def test_mismatching_checkpoint_names_the_keys(tmp_path, random_state):
    state = dict(random_state)
    state.pop("technical_head.fc_last.bias")
    state["aesthetic_backbone.head.weight"] = torch.zeros(1000, 768)
    state["technical_backbone.norm.weight"] = torch.zeros(96)
    message = dv.layout_mismatch(state, random_state)
    assert "missing: technical_head.fc_last.bias" in message
    assert "unexpected: aesthetic_backbone.head.weight" in message
    assert "technical_backbone.norm.weight (96,) (expected (768,))" in message
    assert dv.layout_mismatch(random_state, random_state) is None
    torch.save({"technical_head.fc_last.bias": torch.zeros(1)}, tmp_path / "DOVER.pth")
    with pytest.raises(dv.DOVERCheckpointError, match=r"does not match the DOVER layout \(missing: technical_backbone"):
        dv.load_dover(tmp_path / "DOVER.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(dv.DOVERCheckpointError, match="cannot read DOVER checkpoint"):
        dv.load_dover(tmp_path / "bad.pth")


def test_missing_weights_are_reported_as_skipped(tmp_path, monkeypatch):
    from sete_vsr import weight_dirs as weights

    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(tmp_path))
    monkeypatch.delenv("SETE_VSR_SHARED", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights, "_EXTRA_DIRS", [])
    monkeypatch.setattr(weights.Path, "home", staticmethod(lambda: tmp_path / "home"))
    assert METRICS["dover"].target == "sete_vsr.eval.metrics.dover:DOVERMetric"
    with pytest.raises(WeightsUnavailable, match=rf"weights unavailable \(looked for DOVER.pth .*{tmp_path}"):
        build_metric("dover")


def test_weights_dir_is_searched(weights_dir, monkeypatch):
    from sete_vsr import weight_dirs as weights

    monkeypatch.delenv("SETE_VSR_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "_EXTRA_DIRS", [])
    weights.set_weight_dirs([weights_dir])  # what --weights-dir does
    assert weights.find_weight(*dv.DOVER_FILES) == weights_dir / "DOVER.pth"


# --------------------------------------------------------------------- view sampling


@pytest.mark.parametrize("size", [(540, 960), (224, 224), (256, 300), (180, 320), (64, 64), (300, 90)])
def test_fragments_form_a_7x7_mosaic_of_32px_crops(size):
    h, w = size
    video = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 16, h, w), dtype=np.uint8))
    out, source, corners = dv.spatial_fragments(video, torch.Generator().manual_seed(0), aligned=8, return_offsets=True)
    assert out.shape == (3, 16, 224, 224) and out.dtype == torch.float32
    assert len(corners) == 7 * 7 * 2  # offsets drawn per grid cell and per clip (``aligned`` frames)
    ratio = min(h / 224, w / 224)
    if ratio >= 1:
        assert source is video
    else:  # upsampled by 1 / ratio so the short side reaches ~224, bilinear, truncated to uint8
        assert source.dtype == torch.uint8 and min(source.shape[-2:]) in (223, 224)
        up = torch.nn.functional.interpolate(video / 255.0, scale_factor=1 / ratio, mode="bilinear")
        ref = (up * 255).to(torch.uint8)
        assert torch.equal(source, ref)
    cell_h, cell_w = h // 7, w // 7  # grid laid out on the size *before* upsampling, as released
    for (i, j, t), (top, left) in corners.items():
        grid_top, grid_left = min(cell_h * i, h - 32), min(cell_w * j, w - 32)
        assert grid_top <= top <= grid_top + max(cell_h - 32 - 1, 0)
        assert grid_left <= left <= grid_left + max(cell_w - 32 - 1, 0)
        crop = source[:, t * 8 : (t + 1) * 8, top : top + 32, left : left + 32]
        assert torch.equal(out[:, t * 8 : (t + 1) * 8, i * 32 : (i + 1) * 32, j * 32 : (j + 1) * 32], crop.float())


def test_small_frames_sample_the_top_left_of_the_upsampled_frame():
    video = torch.zeros(3, 32, 64, 64, dtype=torch.uint8)
    _, source, corners = dv.spatial_fragments(video, torch.Generator().manual_seed(0), return_offsets=True)
    assert source.shape[-2:] == (224, 224)
    tops = sorted({top for (_, _, _), (top, _) in corners.items()})
    assert tops == [0, 9, 18, 27, 32]  # min(64 // 7 * i, 64 - 32), no random offset (cell 9 px < 32)


def test_fragment_offsets_follow_the_seed():
    video = torch.zeros(3, 8, 540, 960, dtype=torch.uint8)

    def corners(seed):
        return dv.spatial_fragments(video, torch.Generator().manual_seed(seed), aligned=8, return_offsets=True)[2]

    assert corners(5) == corners(5) and corners(5) != corners(6)
    # the release draws them with torch.randint on the global generator: same numbers after torch.manual_seed
    torch.manual_seed(5)
    assert corners(5) == dv.spatial_fragments(video, None, aligned=8, return_offsets=True)[2]


def test_temporal_sampling_of_both_views():
    rng = np.random.RandomState(0)
    tech = dv.unified_frame_indices(300, 32, 3, 2, 1, rng)  # UnifiedFrameSampler(32, 3, 2)
    assert tech.shape == (96,)
    for i, run in enumerate(tech.reshape(3, 32)):
        assert (np.diff(run) == 2).all() and 100 * i <= run[0] < 100 * i + 100 - 64
    aes = dv.unified_frame_indices(300, 1, 32, 2, 1, rng)  # UnifiedFrameSampler(32 // 32, 32, 2, 1)
    assert aes.shape == (32,) and all(9 * i <= f < 9 * i + 7 for i, f in enumerate(aes))
    short = dv.unified_frame_indices(10, 32, 3, 2, 1, rng)  # segments too short: start 0, wrap modulo T
    assert short.tolist()[:6] == [0, 2, 4, 6, 8, 0] and short.max() < 10


def test_views_shapes_normalisation_and_seed():
    frames = np.full((20, 60, 80, 3), (10, 128, 250), dtype=np.uint8)
    views = dv.sample_views(frames, seed=0)
    assert views["technical"].shape == (3, 3, 32, 224, 224)
    assert views["aesthetic"].shape == (1, 3, 32, 224, 224)
    expected = (torch.tensor([10.0, 128.0, 250.0]) - torch.tensor(dv.MEAN)) / torch.tensor(dv.STD)
    torch.testing.assert_close(views["aesthetic"][0, :, 5, 100, 100], expected)
    video = _video(t=40, h=240, w=320, seed=4)
    a, b, c = dv.sample_views(video, 1, SMALL), dv.sample_views(video, 1, SMALL), dv.sample_views(video, 2, SMALL)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["technical"], c["technical"])


def test_aesthetic_resize_matches_torchvision_tensor_resize():
    from torchvision.transforms import functional as TF

    video = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (3, 4, 97, 331), dtype=np.uint8))
    for antialias in (False, True):
        ours = dv.resized_view(video, 224, antialias)
        ref = TF.resize(video.permute(1, 0, 2, 3), [224, 224], antialias=antialias).permute(1, 0, 2, 3)
        assert ours.dtype == torch.uint8 and torch.equal(ours, ref)


# ------------------------------------------------------------------ technical branch


def test_fragment_gate_is_the_fragment_distance():
    d, h, w, window, shift = 2, 14, 14, (2, 7, 7), (1, 3, 3)
    gate = vs._fragment_gate(d, h, w, window, shift, "cpu")
    assert gate.shape == (4, 98, 98)

    def fragment(y, x):  # token (y, x) of the rolled map came from ((y + 3) % 14, (x + 3) % 14)
        return ((y + shift[1]) % h) * 7 // h, ((x + shift[2]) % w) * 7 // w

    for win in range(4):
        wy, wx = divmod(win, 2)
        tokens = [(wy * 7 + y, wx * 7 + x) for _ in range(2) for y in range(7) for x in range(7)]
        for a in (0, 10, 48, 60, 97):
            for b in (0, 3, 30, 55, 97):
                fa, fb = fragment(*tokens[a]), fragment(*tokens[b])
                assert gate[win, a, b] == abs(fa[0] - fb[0]) + abs(fa[1] - fb[1])


def test_window_attention_matches_explicit_formula():
    torch.manual_seed(0)
    attn = vs.WindowAttention3D(dim=12, window=(2, 2, 2), heads=3, frag_bias=True).eval()
    with torch.no_grad():
        attn.fragment_position_bias_table.normal_()
        attn.relative_position_bias_table.normal_()
    x = torch.randn(4, 8, 12)  # batch 2 x 2 windows
    gate = torch.randint(0, 3, (2, 8, 8)).float()
    mask = torch.where(torch.rand(2, 8, 8) > 0.7, -100.0, 0.0)
    with torch.no_grad():
        out = attn(x, mask, gate)
        q, k, v = attn.qkv(x).reshape(4, 8, 3, 3, 4).permute(2, 0, 3, 1, 4)
        idx = attn.relative_position_index.reshape(-1)
        rel = attn.relative_position_bias_table[idx].reshape(8, 8, 3).permute(2, 0, 1)
        frag = attn.fragment_position_bias_table[idx].reshape(8, 8, 3).permute(2, 0, 1)
        expected = []
        for i in range(4):
            win = i % 2
            bias = rel * gate[win] + frag * (1 - gate[win]) + mask[win]
            weights = ((q[i] * 4**-0.5) @ k[i].transpose(-1, -2) + bias).softmax(-1)
            expected.append((weights @ v[i]).transpose(0, 1).reshape(8, 12))
        torch.testing.assert_close(out, attn.proj(torch.stack(expected)), atol=1e-5, rtol=1e-5)
