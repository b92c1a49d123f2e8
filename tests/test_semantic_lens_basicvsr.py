"""BasicVSR + Semantic Lens (IMAGE, SPACE in both branches): shapes, identity at init, masking rule, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sete_vsr.baselines.basicvsr import BasicVSR
from sete_vsr.plugins.basicvsr_semantic_lens import BasicVSRSemanticLens
from sete_vsr.plugins.semantic_lens import GPS, IMAGE, ISEE, freeze_all_but_semantic_lens, semantic_lens_parameters

N, T, H, W, S, M = 1, 3, 64, 64, 16, 4  # SPyNet needs at least 64 x 64 frames

# the zero-initialised output layer of each block
ZERO_INIT = {GPS: "conv2", ISEE: "to_out", IMAGE: "to_out"}


class ZeroFlow(nn.Module):
    """Stands in for SPyNet: no motion, so flow warping is the identity."""

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        return ref.new_zeros(ref.shape[0], 2, *ref.shape[2:])


def _perturb(model: nn.Module, *kinds: type, seed: int = 1) -> None:
    """Random weights and biases for the zero-initialised output layers of the blocks of ``kinds``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, kinds):
                for p in getattr(module, ZERO_INIT[type(module)]).parameters():
                    p.copy_(0.1 * torch.randn(p.shape, generator=generator))


def _box_masks(seed: int) -> torch.Tensor:
    """``(N, T, M, H, W)``: one random box per channel and frame, the last channel left empty (padding)."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros(N, T, M, H, W)
    for t in range(T):
        for m in range(M - 1):
            top, left = torch.randint(0, H - 16, (2,), generator=generator).tolist()
            masks[0, t, m, top : top + 16, left : left + 24] = 1
    return masks


@pytest.fixture
def pair():
    torch.manual_seed(0)
    base = BasicVSR(num_feat=8, num_block=1).eval()
    return base, BasicVSRSemanticLens.from_basicvsr(base, semantic_dim=S, attn_dim=8, window_size=3).eval()


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(N, T, 3, H, W, generator=generator)
    embeddings = torch.randn(N, T, S, 8, 8, generator=generator)
    return x, embeddings, _box_masks(0)


def test_equals_basicvsr_at_init(pair, inputs):
    base, model = pair
    assert all(torch.equal(model.state_dict()[k], v) for k, v in base.state_dict().items())
    with torch.no_grad():
        out = model(*inputs)
        assert out.shape == (N, T, 3, 4 * H, 4 * W)
        assert torch.equal(out, base(inputs[0]))


def test_new_blocks_change_the_output_and_it_depends_on_the_masks(pair, inputs):
    base, model = pair
    x, embeddings, masks = inputs
    _perturb(model, GPS, ISEE, IMAGE)
    with torch.no_grad():
        out = model(x, embeddings, masks)
        assert not torch.allclose(out, base(x), atol=1e-4)
        assert not torch.allclose(model(x, embeddings, _box_masks(1)), out, atol=1e-4)


def test_all_zero_masks_follow_the_masking_rule(pair, inputs):
    _, model = pair
    x, embeddings, _ = inputs
    zeros = torch.zeros(N, T, M, H, W)

    # no valid instance token: ISEE adds nothing, whatever its weights
    _perturb(model, GPS, ISEE, IMAGE)
    with torch.no_grad():
        out = model(x, embeddings, zeros)
        _perturb(model, ISEE, seed=2)
        assert torch.equal(model(x, embeddings, zeros), out)

    # IMAGE: with no mask every pixel is background, one instance covering both frames: the same attention as
    # with a single full-frame mask (ISEE set back to zero, as it would see that mask's token; no motion, so
    # that the warped mask still covers the frame). Two instances restrict the window near their border.
    model.spynet = ZeroFlow()
    with torch.no_grad():
        for isee in (model.backward_space.isee, model.forward_space.isee):
            nn.init.zeros_(isee.to_out.weight)
            nn.init.zeros_(isee.to_out.bias)
        out = model(x, embeddings, zeros)
        full = zeros.clone()
        full[:, :, 0] = 1
        assert torch.equal(model(x, embeddings, full), out)
        halves = zeros.clone()
        halves[:, :, 0, :, : W // 2] = 1
        halves[:, :, 1, :, W // 2 :] = 1
        assert not torch.equal(model(x, embeddings, halves), out)


def test_gradient_reaches_the_new_blocks(pair, inputs):
    _, model = pair
    model(*inputs).square().mean().backward()
    # at init only the zero-initialised output layers can get a gradient: everything behind them is multiplied by 0
    for module in model.modules():
        if isinstance(module, tuple(ZERO_INIT)):
            assert getattr(module, ZERO_INIT[type(module)]).weight.grad.abs().sum() > 0

    model.zero_grad()
    _perturb(model, GPS, ISEE, IMAGE)
    model(*inputs).square().mean().backward()
    for name, p in semantic_lens_parameters(model):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_efficient_tuning_changes_only_the_new_blocks(pair, inputs):
    _, model = pair
    trainable = set(freeze_all_but_semantic_lens(model))
    assert trainable == {name for name, _ in semantic_lens_parameters(model)}
    assert all(name.startswith(("backward_image.", "forward_image.", "backward_space.", "forward_space."))
               for name in trainable)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model(*inputs).square().mean().backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and changed <= trainable


def test_rejects_mismatched_inputs_and_non_basicvsr_weights(pair, inputs):
    _, model = pair
    x, embeddings, masks = inputs
    with pytest.raises(ValueError, match="embeddings"):
        model(x, embeddings[:, :, :-1], masks)
    with pytest.raises(ValueError, match="masks"):
        model(x, embeddings, masks[..., :32, :32])
    with pytest.raises(ValueError, match="not a BasicVSR state dict"):
        BasicVSRSemanticLens.from_basicvsr(model, semantic_dim=S, attn_dim=8, window_size=3)


@pytest.mark.shared
def test_official_checkpoint_converts_and_equals_basicvsr(shared):
    from sete_vsr.baselines.checkpoints import load_checkpoint

    base = load_checkpoint(BasicVSR(), shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth")).eval()
    converted = BasicVSRSemanticLens.from_basicvsr(base)
    model = BasicVSRSemanticLens().eval()  # a saved converted model loads back strictly
    model.load_state_dict(converted.state_dict(), strict=True)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 3, 64, 64, generator=generator)
    embeddings = torch.randn(1, 3, 256, 16, 16, generator=generator)
    masks = (torch.rand(1, 3, 8, 64, 64, generator=generator) > 0.7).float()
    with torch.no_grad():
        assert torch.equal(model(x, embeddings, masks), base(x))
