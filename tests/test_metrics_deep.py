"""LPIPS/DISTS/tLP: structure with random backbones saved in torchvision's layout (no ImageNet weights offline)."""

from __future__ import annotations

import numpy as np
import pytest

from sete_vsr.eval.metrics import WeightsUnavailable, build_metric


@pytest.fixture
def fake_alexnet(tmp_path, monkeypatch):
    """A random AlexNet under the torchvision file name, plus random LPIPS heads."""
    import torch
    from torchvision.models import alexnet

    torch.manual_seed(0)
    torch.save(alexnet(weights=None).state_dict(), tmp_path / "alexnet-owt-7be5be79.pth")
    (tmp_path / "lpips" / "v0.1").mkdir(parents=True)
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))}
    torch.save(heads, tmp_path / "lpips" / "v0.1" / "alex.pth")
    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(tmp_path))
    return tmp_path


def _frames(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_lpips_structure(fake_alexnet):
    metric = build_metric("lpips")
    assert not metric.info.higher_is_better and "alexnet-owt-7be5be79.pth" in metric.info.implementation
    a, b = _frames(), _frames(seed=1)
    np.testing.assert_allclose(metric.compute(a, a), 0.0, atol=1e-7)
    d = metric.compute(a, b)
    assert d.shape == (3,) and (d > 0).all()
    np.testing.assert_allclose(metric.compute(b, a), d, rtol=1e-5)  # symmetric


def test_tlp_zero_for_identical_videos(fake_alexnet):
    video = _frames(7)
    metric = build_metric("tlp")
    values = metric.compute(video, video)
    assert np.nanmax(values) == 0.0 and np.isnan(values[:3]).all()


def test_lpips_skips_with_locations_when_backbone_missing(tmp_path, monkeypatch):
    from sete_vsr import weight_dirs as weights

    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SETE_VSR_SHARED", raising=False)
    monkeypatch.setattr(weights, "_EXTRA_DIRS", [])
    with pytest.raises(WeightsUnavailable, match="alexnet-owt-7be5be79.pth"):
        build_metric("lpips")
    with pytest.raises(WeightsUnavailable, match="vgg16-397923af.pth"):
        build_metric("dists")


@pytest.mark.slow
def test_dists_structure(tmp_path, monkeypatch):
    import torch
    from torchvision.models import vgg16

    torch.manual_seed(0)
    feats = {k: v for k, v in vgg16(weights=None).state_dict().items() if k.startswith("features.")}
    torch.save(feats, tmp_path / "vgg16-397923af.pth")
    torch.save({"alpha": torch.rand(1, 1475, 1, 1), "beta": torch.rand(1, 1475, 1, 1)}, tmp_path / "dists_weights.pt")
    monkeypatch.setenv("SETE_VSR_WEIGHTS", str(tmp_path))
    metric = build_metric("dists")
    a, b = _frames(2), _frames(2, seed=1)
    np.testing.assert_allclose(metric.compute(a, a), 0.0, atol=1e-5)
    assert (metric.compute(a, b) > 0).all()
