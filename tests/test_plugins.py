"""SEEM's SAM prior and refinement module, and the Semantic Lens blocks: shapes, identity at init, masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sete_vsr.models.presets import tiny_sam2_model
from sete_vsr.plugins.sam_prior import (
    FeatureCombination,
    Sam2PackageMasks,
    Sam2PointGridMasks,
    grid_points,
    pad_masks,
    select_masks,
)
from sete_vsr.plugins.seem import SEEM, freeze_all_but_seem, seem_parameters
from sete_vsr.plugins.semantic_lens import (
    GPS,
    IMAGE,
    ISEE,
    SPACE,
    associate_masks,
    global_token,
    instance_tokens,
)


def _box(h, w, top, left, bottom, right):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[top:bottom, left:right] = True
    return m


# --- SAM prior --------------------------------------------------------------------------------------------


def test_grid_points_are_cell_centres():
    pts = grid_points(2, 10, 20)
    assert torch.equal(pts, torch.tensor([[5.0, 2.5], [15.0, 2.5], [5.0, 7.5], [15.0, 7.5]]))
    assert grid_points(8, 64, 64).shape == (64, 2)


def test_select_masks_best_per_point_dedup_empty_and_area_order():
    h = w = 8
    small, large, empty = _box(h, w, 0, 0, 2, 2), _box(h, w, 0, 0, 6, 6), torch.zeros(h, w, dtype=torch.bool)
    near_large = _box(h, w, 0, 0, 6, 6)
    near_large[5, 5] = False  # IoU 35/36 with `large`: a duplicate
    masks = torch.stack(
        [
            torch.stack([small, large]),  # best: small (score .9)
            torch.stack([empty, large]),  # best: empty (score .8) -> dropped
            torch.stack([near_large, small]),  # best: near_large (score .7) -> duplicate of large below
            torch.stack([large, small]),  # best: large (score .95) -> kept over near_large
        ]
    )
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.1], [0.95, 0.3]])
    kept = select_masks(masks, scores, num_masks=64, duplicate_iou=0.9)
    assert kept.shape == (2, h, w)
    assert torch.equal(kept[0], large) and torch.equal(kept[1], small)
    assert select_masks(masks, scores, num_masks=1).shape == (1, h, w)


def test_pad_masks():
    padded = pad_masks(torch.ones(3, 4, 5, dtype=torch.bool), 64)
    assert padded.shape == (64, 4, 5) and padded.dtype == torch.float32
    assert padded[:3].eq(1).all() and padded[3:].eq(0).all()
    with pytest.raises(ValueError):
        pad_masks(torch.ones(65, 2, 2), 64)


def test_transformers_backend_mask_shape_and_padding():
    generator = Sam2PointGridMasks(tiny_sam2_model(), points_per_side=8, num_masks=64)
    frames = torch.rand(2, 3, 24, 40)
    masks, embeddings = generator.masks_and_embeddings(frames)
    assert masks.shape == (2, 64, 24, 40) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    for frame_masks in masks:
        nonempty = frame_masks.flatten(1).any(dim=1)
        n = int(nonempty.sum())
        assert 0 < n <= 64 and nonempty[:n].all() and not nonempty[n:].any()  # zero padding at the end
        areas = frame_masks[:n].flatten(1).sum(dim=1)
        assert torch.all(areas[:-1] >= areas[1:])
    assert embeddings.shape == (2, 16, 4, 4)
    assert torch.equal(generator(frames), masks)


class _FakeAutomaticGenerator:
    """Stands in for ``sam2``'s ``SAM2AutomaticMaskGenerator`` (records as it returns them)."""

    def generate(self, image: np.ndarray) -> list[dict]:
        assert image.dtype == np.uint8 and image.shape == (6, 8, 3)
        small = np.zeros((6, 8), bool)
        small[:2, :2] = True
        large = np.zeros((6, 8), bool)
        large[:4, :] = True
        return [
            {"segmentation": small, "predicted_iou": 0.9, "area": 4},
            {"segmentation": large, "predicted_iou": 0.8, "area": 32},
        ]


def test_sam2_package_backend_conversion():
    masks = Sam2PackageMasks(_FakeAutomaticGenerator(), num_masks=4)(torch.rand(3, 3, 6, 8))
    assert masks.shape == (3, 4, 6, 8)
    assert masks[:, 0].sum(dim=(1, 2)).eq(32).all() and masks[:, 1].sum(dim=(1, 2)).eq(4).all()
    assert masks[:, 2:].eq(0).all()


@pytest.mark.slow
def test_sam2_package_backend_with_random_hiera_tiny():
    """The real ``SAM2AutomaticMaskGenerator`` (random weights, 1024-pixel encoder: ~20 s on CPU)."""
    pytest.importorskip("sam2")
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    generator = SAM2AutomaticMaskGenerator(model, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    masks = Sam2PackageMasks(generator, num_masks=8)(torch.rand(1, 3, 32, 48))
    assert masks.shape == (1, 8, 32, 48) and set(masks.unique().tolist()) <= {0.0, 1.0}


def test_feature_combination_shape():
    f_r = FeatureCombination(num_masks=64, out_channels=8)
    r_sam = f_r(torch.rand(2, 3, 12, 10), torch.zeros(2, 64, 12, 10))
    assert r_sam.shape == (2, 8, 12, 10)


# --- SEEM -------------------------------------------------------------------------------------------------


def test_seem_is_identity_at_init_and_not_after_training_step():
    seem = SEEM(channels=8, sam_channels=6, reduction=4)
    feature, r_sam = torch.randn(2, 8, 10, 12), torch.randn(2, 6, 10, 12)
    assert torch.equal(seem(feature, r_sam), feature)
    assert torch.equal(seem.semantic_feature(feature, r_sam), torch.zeros_like(feature))

    optimizer = torch.optim.Adam(seem.parameters(), lr=1e-2)
    seem(feature, r_sam).square().mean().backward()
    assert seem.conv2.weight.grad.abs().sum() > 0  # the zero layer does learn
    optimizer.step()
    assert not torch.equal(seem(feature, r_sam), feature)


def test_seem_channel_attention_follows_eq2_eq3():
    seem = SEEM(channels=4, sam_channels=2, reduction=2)
    torch.nn.init.normal_(seem.conv2.weight)
    feature, r_sam = torch.randn(1, 4, 5, 5), torch.randn(1, 2, 5, 5)
    f_m = seem.conv2(seem.act(seem.conv1(torch.cat([feature, r_sam], 1))))
    f_a = torch.sigmoid(seem.attention.fc_up(torch.relu(seem.attention.fc_down(f_m.mean((2, 3))))))
    expected = f_m + f_a[:, :, None, None] * f_m
    torch.testing.assert_close(seem.semantic_feature(feature, r_sam), expected)


def test_seem_rejects_mismatched_sizes():
    with pytest.raises(ValueError):
        SEEM(4, 2)(torch.zeros(1, 4, 5, 5), torch.zeros(1, 2, 4, 4))


def test_efficient_tuning_selects_seem_and_f_r_only():
    model = torch.nn.ModuleDict(
        {"base": torch.nn.Conv2d(4, 4, 3), "f_r": FeatureCombination(64, 6), "seem": SEEM(4, 6)}
    )
    names = freeze_all_but_seem(model)
    assert names == [n for n, _ in seem_parameters(model)]
    assert names and all(n.startswith(("f_r.", "seem.")) for n in names)
    assert not any(p.requires_grad for p in model["base"].parameters())
    assert all(p.requires_grad for p in model["seem"].parameters())


# --- Semantic Lens ----------------------------------------------------------------------------------------


def test_semantic_tokens_from_sam2_embeddings():
    embeddings = torch.randn(2, 16, 4, 4)
    masks = torch.zeros(2, 3, 8, 8)
    masks[:, 0, :4, :4] = 1  # the top-left embedding quarter
    tokens, valid = instance_tokens(embeddings, masks)
    assert tokens.shape == (2, 3, 16) and valid.tolist() == [[True, False, False]] * 2
    torch.testing.assert_close(tokens[:, 0], embeddings[:, :, :2, :2].mean((2, 3)))
    assert tokens[:, 1:].eq(0).all()
    assert global_token(embeddings).shape == (2, 16)


def test_gps_identity_at_init_and_shape():
    gps = GPS(channels=8, semantic_dim=16)
    feature = torch.randn(2, 8, 6, 7)
    assert torch.equal(gps(feature, torch.randn(2, 16)), feature)
    torch.nn.init.normal_(gps.conv2.weight)
    assert gps(feature, torch.randn(2, 16)).shape == feature.shape


def test_isee_identity_at_init_and_ignores_padding_tokens():
    isee = ISEE(channels=8, semantic_dim=16, attn_dim=4)
    feature, tokens = torch.randn(2, 8, 5, 6), torch.randn(2, 3, 16)
    valid = torch.tensor([[True, True, False], [False, False, False]])
    assert torch.equal(isee(feature, tokens, valid), feature)

    torch.nn.init.normal_(isee.to_out.weight)
    torch.nn.init.zeros_(isee.to_out.bias)
    out = isee(feature, tokens, valid)
    assert out.shape == feature.shape
    perturbed = tokens.clone()
    perturbed[:, 2] += 10.0
    torch.testing.assert_close(isee(feature, perturbed, valid), out)
    torch.testing.assert_close(out[1], feature[1])  # no valid token: nothing added


def test_space_identity_at_init():
    space = SPACE(channels=8, semantic_dim=16, attn_dim=4)
    feature = torch.randn(1, 8, 5, 5)
    out = space(feature, torch.randn(1, 16), torch.randn(1, 2, 16), torch.ones(1, 2, dtype=torch.bool))
    assert torch.equal(out, feature)


def _two_instance_masks(h, w):
    """Instance 0: left half; instance 1: a box in the right half; the rest is background."""
    masks = torch.zeros(1, 2, h, w)
    masks[0, 0, :, : w // 2] = 1
    masks[0, 1, 2:6, w // 2 + 1 : w - 1] = 1
    return masks


def test_image_identity_at_init():
    image = IMAGE(channels=8, attn_dim=4, window_size=3)
    ref, sup = torch.randn(1, 8, 8, 10), torch.randn(1, 8, 8, 10)
    masks = _two_instance_masks(8, 10)
    assert torch.equal(image(ref, sup, masks, masks), sup)


def test_image_attention_never_leaves_window_or_instance():
    torch.manual_seed(0)
    h, w, k = 8, 10, 3
    image = IMAGE(channels=4, attn_dim=4, window_size=k)
    torch.nn.init.normal_(image.to_out.weight)
    ref, sup = torch.randn(1, 4, h, w), torch.randn(1, 4, h, w)
    masks = _two_instance_masks(h, w)
    out = image(ref, sup, masks, masks)

    with_bg = torch.cat([masks, 1 - masks.amax(1, keepdim=True)], 1)[0]
    for y, x in [(3, 4), (3, 5), (0, 0), (4, 7), (7, 9)]:
        same = (with_bg[:, y, x][:, None, None] * with_bg).sum(0) > 0
        window = torch.zeros(h, w, dtype=torch.bool)
        window[max(0, y - k // 2) : y + k // 2 + 1, max(0, x - k // 2) : x + k // 2 + 1] = True
        forbidden = ~(same & window)
        forbidden[y, x] = False  # the residual path carries the support pixel itself
        perturbed = sup.clone()
        perturbed[:, :, forbidden] += 100.0 * torch.randn(4, int(forbidden.sum()))
        torch.testing.assert_close(image(ref, perturbed, masks, masks)[..., y, x], out[..., y, x])
        allowed = same & window
        allowed[y, x] = False
        if allowed.any():  # and the allowed neighbours do matter
            perturbed = sup.clone()
            perturbed[:, :, allowed] += 100.0
            assert not torch.allclose(image(ref, perturbed, masks, masks)[..., y, x], out[..., y, x])


def test_image_allowed_matches_eq13_across_frames():
    image = IMAGE(channels=2, attn_dim=2, window_size=3)
    ref_masks = torch.zeros(1, 1, 1, 3)
    ref_masks[..., 0] = 1  # instance at x=0 in the reference
    sup_masks = torch.zeros(1, 1, 1, 3)
    sup_masks[..., 1] = 1  # it moved to x=1 in the supporting frame
    allowed = image.allowed(ref_masks, sup_masks).view(3, 3, 3)  # (ky, kx, pixel)
    # reference x=0 (instance) may see support x=1 only; reference x=1, x=2 (background) see support x=0, x=2.
    assert allowed[1, :, 0].tolist() == [False, False, True]
    assert allowed[1, :, 1].tolist() == [True, False, True]
    assert allowed[1, :, 2].tolist() == [False, True, False]
    assert not allowed[0].any() and not allowed[2].any()  # outside the frame


def test_associate_masks_reorders_by_iou():
    a, b = _box(6, 6, 0, 0, 3, 3), _box(6, 6, 3, 3, 6, 6)
    b_moved = _box(6, 6, 3, 2, 6, 5)
    reference = torch.stack([a, b, torch.zeros_like(a)])[None].float()
    support = torch.stack([b_moved, _box(6, 6, 0, 5, 1, 6), a])[None].float()
    out = associate_masks(reference, support)
    assert torch.equal(out[0, 0], a.float()) and torch.equal(out[0, 1], b_moved.float())
    assert out[0, 2].eq(0).all()  # nothing to match


# --- SEEM inside the baselines ----------------------------------------------------------------------------


def _random_masks(*shape):
    return (torch.rand(*shape) > 0.7).float()


def _seem_tensor_names(model):
    return {name for name, _ in seem_parameters(model)}


def _assert_one_adam_step_changes_only_seem(model, loss):
    freeze_all_but_seem(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss().backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and changed <= _seem_tensor_names(model)


@pytest.fixture
def basicvsr_pair():
    from sete_vsr.baselines.basicvsr import BasicVSR
    from sete_vsr.plugins.basicvsr_seem import BasicVSRSEEM

    torch.manual_seed(0)
    base = BasicVSR(num_feat=4, num_block=1).eval()
    return base, BasicVSRSEEM.from_basicvsr(base, num_masks=8, sam_channels=4).eval()


def test_basicvsr_seem_equals_basicvsr_at_init(basicvsr_pair):
    base, model = basicvsr_pair
    x, masks = torch.rand(1, 2, 3, 64, 64), _random_masks(1, 2, 8, 64, 64)
    with torch.no_grad():
        reference = base(x)
        assert torch.equal(model(x, masks), reference)
        for seem in model.seem.values():
            torch.nn.init.normal_(seem.conv2.weight, std=0.1)
        assert not torch.allclose(model(x, masks), reference)


def test_basicvsr_seem_efficient_tuning(basicvsr_pair):
    _, model = basicvsr_pair
    x, masks = torch.rand(1, 2, 3, 64, 64), _random_masks(1, 2, 8, 64, 64)
    _assert_one_adam_step_changes_only_seem(model, lambda: model(x, masks).square().mean())


def test_basicvsr_seem_single_branch():
    from sete_vsr.plugins.basicvsr_seem import BasicVSRSEEM

    model = BasicVSRSEEM(num_feat=4, num_block=1, num_masks=8, sam_channels=4, branches=("forward",))
    assert sorted(model.seem) == ["forward_out", "forward_warp"]
    with pytest.raises(ValueError):
        BasicVSRSEEM(num_feat=4, num_block=1, branches=("sideways",))


@pytest.fixture
def edvr_pair():
    from sete_vsr.baselines.edvr import EDVR
    from sete_vsr.plugins.edvr_seem import EDVRSEEM

    torch.manual_seed(0)
    base = EDVR(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    return base, EDVRSEEM.from_edvr(base, num_masks=8, sam_channels=4).eval()


def test_edvr_seem_equals_edvr_at_init(edvr_pair):
    base, model = edvr_pair
    x, masks = torch.rand(2, 3, 3, 16, 16), _random_masks(2, 8, 16, 16)
    with torch.no_grad():
        reference = base(x)
        assert torch.equal(model(x, masks), reference)
        for seem in (*model.seem_align.values(), model.seem_fusion, model.seem_reconstruction):
            torch.nn.init.normal_(seem.conv2.weight, std=0.1)
        assert not torch.allclose(model(x, masks), reference)


def test_edvr_seem_refines_the_reference_feature_at_every_pyramid_level(edvr_pair):
    """Eq. 8 at levels 1, 2 and 3: PCD alignment receives each level's reference feature refined by its own SEEM."""
    base, model = edvr_pair
    assert sorted(model.seem_align) == ["l1", "l2", "l3"]
    x, masks = torch.rand(1, 3, 3, 16, 16), _random_masks(1, 8, 16, 16)
    seen = []  # the reference pyramid of each call of the PCD module
    model.pcd_align.register_forward_hook(lambda module, args, out: seen.append([f.clone() for f in args[1]]))
    base.pcd_align.register_forward_hook(lambda module, args, out: seen.append([f.clone() for f in args[1]]))
    with torch.no_grad():
        base(x)
        plain = seen[-1]
        assert [tuple(f.shape[-2:]) for f in plain] == [(16, 16), (8, 8), (4, 4)]
        model(x, masks)
        assert all(torch.equal(a, b) for a, b in zip(seen[-1], plain))  # untrained: the base's references
        for k, seem in enumerate(model.seem_align.values()):
            saved = seem.conv2.weight.clone()
            torch.nn.init.normal_(seem.conv2.weight, std=0.1)
            model(x, masks)
            changed = [not torch.equal(a, b) for a, b in zip(seen[-1], plain)]
            assert changed == [level == k for level in range(3)], k
            seem.conv2.weight.copy_(saved)


def test_edvr_seem_efficient_tuning(edvr_pair):
    _, model = edvr_pair
    x, masks = torch.rand(1, 3, 3, 16, 16), _random_masks(1, 8, 16, 16)
    _assert_one_adam_step_changes_only_seem(model, lambda: model(x, masks).square().mean())
