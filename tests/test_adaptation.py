"""Self-supervised test-time adaptation (paper 004): pseudo pairs, Algorithm 1 and 2, weights, CLI."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from sete_vsr.adaptation import (
    AdaptationConfig,
    PseudoPairSampler,
    adapt,
    adapt_module,
    distill,
    load_adapted_method,
    load_adapted_model,
    save_adapted_weights,
)
from sete_vsr.adaptation.self_supervised import as_method, line5_downscaling
from sete_vsr.baselines.basicvsr import BasicVSR
from sete_vsr.cli import main
from sete_vsr.data.degradations import BD, BI, Downscaling, bd_degrade, bi_degrade
from sete_vsr.errors import SeteVSRError
from sete_vsr.methods import load_method

TINY_BASICVSR = {"num_feat": 8, "num_block": 1}


class TinyRecurrent(nn.Module):
    """``(N, T, 3, h, w) -> (N, T, 3, 4h, 4w)``: per-frame conv + pixel shuffle on a bilinear base."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 48, 3, padding=1))

    def forward(self, x):
        n, t, c, h, w = x.shape
        x = x.reshape(n * t, c, h, w)
        base = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
        return (base + F.pixel_shuffle(self.body(x), 4)).reshape(n, t, c, 4 * h, 4 * w)


class TinySliding(TinyRecurrent):
    """EDVR-like: ``(N, num_frame, 3, h, w) -> (N, 3, 4h, 4w)``, the centre frame."""

    num_frame = 3

    def forward(self, x):
        return super().forward(x)[:, self.num_frame // 2]


def smooth_clip(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """``(t, h, w, 3)`` uint8: blurred noise drifting by one pixel per frame (recurring structures)."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.random((1, 3, h + 8, w + 8 + t), dtype=np.float32))
    smooth = F.avg_pool2d(noise, 5, stride=1, padding=2)[0].permute(1, 2, 0).numpy()
    frames = np.stack([smooth[4 : 4 + h, 4 + i : 4 + i + w] for i in range(t)])
    frames = (frames - frames.min()) / (frames.max() - frames.min())
    return (frames * 255).round().astype(np.uint8)


def tiny_basicvsr(seed: int = 0) -> BasicVSR:
    torch.manual_seed(seed)
    return BasicVSR(**TINY_BASICVSR).eval()


def test_pseudo_pairs_follow_lines_2_to_5():
    restored = smooth_clip(5, 96, 112)
    config = AdaptationConfig(patch_size=32, num_frames=3)
    rng = np.random.default_rng(0)

    y_lr, y = PseudoPairSampler(restored, config, window=3, centre_only=False).sample(rng)
    assert y.shape == (3, 32, 32, 3) and y.dtype == np.uint8
    np.testing.assert_array_equal(y_lr, bi_degrade(y))  # line 5: the BI degradation of the target

    y_lr, y = PseudoPairSampler(restored, config, window=3, centre_only=True).sample(rng)
    assert y_lr.shape == (3, 8, 8, 3) and y.shape == (32, 32, 3)

    flat = np.full((4, 64, 64, 3), 77, np.uint8)  # any crop, any factor: the same colour
    y_lr, y = PseudoPairSampler(flat, config, window=3, centre_only=False).sample(rng)
    assert (y == 77).all() and (y_lr == 77).all()


def test_pseudo_inputs_are_made_with_the_configured_degradation():
    restored = smooth_clip(3, 96, 96)
    for degradation, expected in [(BD, bd_degrade), (Downscaling.parse("gaussian:2"), lambda y: bd_degrade(y, sigma=2))]:
        config = AdaptationConfig(patch_size=32, num_frames=2, degradation=degradation)
        y_lr, y = PseudoPairSampler(restored, config, window=2, centre_only=False).sample(np.random.default_rng(0))
        np.testing.assert_array_equal(y_lr, expected(y))
        assert not np.array_equal(y_lr, bi_degrade(y))


@pytest.fixture
def tiny_registry(tmp_path, monkeypatch):
    """``basicvsr-vimeo-bd`` and ``realbasicvsr`` as tiny random BasicVSR networks (checkpoint path)."""
    from sete_vsr.baselines.registry import BASELINES

    for name in ("basicvsr-vimeo-bd", "realbasicvsr"):
        monkeypatch.setitem(BASELINES, name, replace(BASELINES[name], arch="basicvsr", arch_kwargs=TINY_BASICVSR))
    checkpoint = tmp_path / "tiny.pth"
    torch.save({"params": tiny_basicvsr().state_dict()}, checkpoint)
    return str(checkpoint)


def test_adaptation_degrades_as_the_base_was_trained(tiny_registry):
    common = {"checkpoint": tiny_registry, "device": "cpu", "progress": "false"}
    assert load_method("basicvsr-vimeo-bd+adapt", **common).config.degradation == BD
    assert line5_downscaling("basicvsr-vimeo-bi") == line5_downscaling(None) == BI
    named = load_method("basicvsr-vimeo-bd+adapt", kernel="gaussian:2", **common)
    assert named.config.degradation == Downscaling("gaussian", sigma=2.0)
    with pytest.raises(SeteVSRError, match=r"realbasicvsr was trained on real-world degradations.*kernel=bicubic"):
        load_method("realbasicvsr+adapt", **common)  # refused before any checkpoint is read
    assert load_method("realbasicvsr+adapt", kernel="bicubic", **common).config.degradation == BI

    # Algorithm 1 on a registered baseline finds its degradation by name; a bare network gets BI
    lr = smooth_clip(2, 80, 80)
    settings = {"iterations": 1, "batch_size": 1, "num_frames": 2, "progress": False}
    assert adapt(load_method("basicvsr-vimeo-bd", **common), lr, **settings).config.degradation == BD
    assert adapt(tiny_basicvsr(), lr, **settings).config.degradation == BI
    with pytest.raises(SeteVSRError, match="real-world"):
        adapt(load_method("realbasicvsr", **common), lr, **settings)


def test_sub_clips_and_windows():
    config = AdaptationConfig(patch_size=32)
    restored = np.zeros((6, 64, 64, 3), np.uint8)
    recurrent = PseudoPairSampler(restored, config, window=3, centre_only=False)
    assert recurrent.frame_indices(0) == [0, 1, 2]
    assert recurrent.frame_indices(3) == [2, 3, 4]
    assert recurrent.frame_indices(5) == [3, 4, 5]
    sliding = PseudoPairSampler(restored, config, window=5, centre_only=True)
    assert sliding.frame_indices(0) == [4, 3, 0, 1, 2]  # BasicSR reflection_circle, as at test time
    short = PseudoPairSampler(restored[:2], config, window=7, centre_only=False)
    assert short.frame_indices(1) == [0, 1]


def test_whole_clip_samples():
    """``num_frames=0``: every recurrent sample holds the whole clip, cropped at one place; windows stay >= 1."""
    restored = smooth_clip(5, 64, 64)
    config = AdaptationConfig(patch_size=32, num_frames=0)
    whole = PseudoPairSampler(restored, config, window=config.num_frames, centre_only=False)
    assert all(whole.frame_indices(t) == [0, 1, 2, 3, 4] for t in range(5))
    y_lr, y = whole.sample(np.random.default_rng(0))
    assert y_lr.shape == (5, 8, 8, 3) and y.shape == (5, 32, 32, 3)
    # the same random stream as any other window: the whole-clip sample's frames 1-3 are the 3-frame sample's
    _, y3 = PseudoPairSampler(restored, replace(config, num_frames=3), 3, False).sample(np.random.default_rng(0))
    start = min(max(int(np.random.default_rng(0).integers(5)) - 1, 0), 2)  # line 2's t, then the 3-frame window
    np.testing.assert_array_equal(y[start : start + 3], y3)
    with pytest.raises(SeteVSRError, match="window of at least 1 frame"):
        PseudoPairSampler(restored, config, window=0, centre_only=True)  # sliding windows have a length
    with pytest.raises(SeteVSRError, match=r"num_frames must be 0 \(the whole clip\) or more"):
        AdaptationConfig(num_frames=-1)

    model = TinyRecurrent()
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    adapt_module(model, restored, replace(config, iterations=2, batch_size=2), progress=False)
    assert seen == [(2, 5, 3, 8, 8)] * 2


def test_defaults_by_network_kind():
    """Recurrent networks: the sweep's setting (whole clip, SPyNet fixed, 10 x 1); sliding windows: the paper's."""
    config = AdaptationConfig()
    assert (config.num_frames, config.freeze, config.iterations, config.batch_size) == (0, ("spynet",), None, None)
    recurrent, sliding = config.for_network(TinyRecurrent()), config.for_network(TinySliding())
    assert (recurrent.iterations, recurrent.batch_size) == (10, 1)
    assert (sliding.iterations, sliding.batch_size) == (1000, 4)
    assert AdaptationConfig(iterations=3, batch_size=2).for_network(TinySliding()) == AdaptationConfig(
        iterations=3, batch_size=2)
    result = adapt(TinyRecurrent(), smooth_clip(2, 16, 16), patch_size=32, iterations=1, progress=False)
    assert result.config.batch_size == 1 and result.config.iterations == 1  # the result records what ran


def test_step_callback_sees_the_weights_of_a_shorter_run():
    """Scoring after step k of a longer run is scoring a k-iteration run (what the sweep benchmark relies on)."""
    restored = smooth_clip(4, 64, 64)
    config = AdaptationConfig(iterations=3, learning_rate=1e-3, batch_size=1, patch_size=32, num_frames=2)
    snapshots, steps = {}, []

    def callback(step, loss):
        steps.append(step)
        if step == 2:
            snapshots.update({k: v.clone() for k, v in long_run.state_dict().items()})

    torch.manual_seed(0)
    long_run = TinyRecurrent()
    adapt_module(long_run, restored, config, progress=False, callback_on_step_end=callback)
    torch.manual_seed(0)
    short_run = TinyRecurrent()
    adapt_module(short_run, restored, replace(config, iterations=2), progress=False)
    assert steps == [1, 2, 3]
    assert all(torch.equal(snapshots[k], v) for k, v in short_run.state_dict().items())


def test_bad_settings_are_user_errors():
    with pytest.raises(SeteVSRError, match="too small for patch_size 256"):
        PseudoPairSampler(np.zeros((2, 128, 128, 3), np.uint8), AdaptationConfig(), 2, False)
    with pytest.raises(SeteVSRError, match="multiple of 4"):
        AdaptationConfig(patch_size=30)
    with pytest.raises(SeteVSRError, match="scale_range"):
        AdaptationConfig(scale_range=(0.9, 1.2))
    with pytest.raises(SeteVSRError, match="every parameter is frozen"):
        adapt_module(TinyRecurrent(), smooth_clip(2, 64, 64), AdaptationConfig(patch_size=32, freeze=("body",)))
    with pytest.raises(SeteVSRError, match=r"shape \(T, H, W, 3\)"):
        adapt(TinyRecurrent(), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SeteVSRError, match="no trainable torch network"):
        adapt(load_method("bicubic"), smooth_clip(2, 16, 16))


def test_adaptation_loss_decreases_when_the_network_can_learn():
    torch.manual_seed(0)
    model = TinyRecurrent()
    with torch.no_grad():
        model.body[-1].bias.fill_(0.2)  # a colour cast the pseudo pairs of any clip expose
    lr = smooth_clip(3, 24, 24)
    settings = {"learning_rate": 3e-3, "batch_size": 2, "patch_size": 32, "num_frames": 2}
    result = adapt(model, lr, iterations=30, progress=False, **settings)
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-5:])
    assert last < 0.3 * first, (first, last)
    assert result.frames.shape == result.initial_frames.shape == (3, 96, 96, 3)
    assert not np.array_equal(result.frames, result.initial_frames)  # line 9 re-runs the adapted network
    assert set(result.seconds) == {"initial", "adapt", "final"}


def test_sliding_window_networks_adapt_on_their_centre_frame():
    module = TinySliding()
    before = [p.detach().clone() for p in module.parameters()]
    losses = adapt_module(module, smooth_clip(4, 64, 64), AdaptationConfig(iterations=2, patch_size=32), progress=False)
    assert len(losses) == 2
    assert all(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_seeded_adaptation_is_deterministic_and_changes_only_trainable_parameters():
    restored = smooth_clip(3, 320, 320)
    config = AdaptationConfig(iterations=1, learning_rate=1e-3, batch_size=1, num_frames=2, freeze=("spynet",))
    initial = tiny_basicvsr().state_dict()

    models = []
    for seed in (3, 3, 4):
        model = tiny_basicvsr()
        model.fusion.bias.requires_grad_(False)  # fixed by its owner: must stay fixed
        adapt_module(model, restored, replace(config, seed=seed), progress=False)
        models.append(model)
    a, b, c = (m.state_dict() for m in models)

    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed: identical weights
    assert any(not torch.equal(a[k], c[k]) for k in a)  # another seed: other pseudo pairs
    for name, param in models[0].named_parameters():
        unchanged = torch.equal(param, initial[name])
        assert unchanged == (name.startswith("spynet.") or name == "fusion.bias"), name
        assert param.requires_grad == (name != "fusion.bias")  # flags restored
    assert not models[0].training


def test_distillation_adapts_the_student_to_the_teacher_output():
    teacher = load_method("bicubic")
    lr = smooth_clip(3, 24, 24)
    torch.manual_seed(0)
    student = TinyRecurrent()
    initial = {name: tensor.clone() for name, tensor in student.state_dict().items()}
    before = as_method(student, device="cpu")(lr)
    iterations = 40
    result = distill(
        teacher, student, lr, iterations=iterations, learning_rate=3e-3, patch_size=32, num_frames=2, progress=False
    )
    np.testing.assert_array_equal(result.initial_frames, teacher(lr))  # {Y_t} by the teacher
    assert result.frames.shape == (3, 96, 96, 3) and len(result.losses) == iterations
    assert list(result.seconds) == ["initial", "adapt", "final"]
    # The student (not the teacher) was trained, its loss fell, and it restores the clip closer to the teacher.
    assert all(not torch.equal(tensor, student.state_dict()[name]) for name, tensor in initial.items())
    assert np.mean(result.losses[-10:]) < 0.5 * np.mean(result.losses[:10]), result.losses
    error = lambda frames: np.abs(frames.astype(float) - result.initial_frames).mean()  # noqa: E731
    assert error(result.frames) < 0.5 * error(before), (error(before), error(result.frames))


def test_weights_round_trip(tmp_path):
    model = tiny_basicvsr(seed=1)
    path = save_adapted_weights(
        model, tmp_path / "a.safetensors", arch="basicvsr", arch_kwargs=TINY_BASICVSR, config=AdaptationConfig()
    )
    loaded = load_adapted_model(path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    method = load_adapted_method(path, device="cpu", progress=False)
    assert method.name == "a" and method(smooth_clip(2, 64, 64)).shape == (2, 256, 256, 3)

    official = save_adapted_weights(BasicVSR(num_block=30), tmp_path / "b.safetensors", base="basicvsr-vimeo-bi")
    assert load_adapted_method(official, progress=False).name == "basicvsr-vimeo-bi+adapt"

    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SeteVSRError, match="cannot read adapted weights"):
        load_adapted_model(tmp_path / "bad.safetensors")
    with pytest.raises(SeteVSRError, match="needs base="):
        save_adapted_weights(model, tmp_path / "c.safetensors")


def save_tiny(path):
    return save_adapted_weights(tiny_basicvsr(), path, arch="basicvsr", arch_kwargs=TINY_BASICVSR)


def write_pngs(folder, frames):
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:08d}.png")


def test_cli_adapts_saves_and_reuses_weights(tmp_path, capsys):
    weights = save_tiny(tmp_path / "tiny.safetensors")
    write_pngs(tmp_path / "lr", smooth_clip(2, 80, 80))  # the smallest frames whose 320-pixel HR crops fit
    common = ["--batch-size", "1", "--frames-per-sample", "2", "--device", "cpu", "--no-progress"]
    args = ["adapt", str(tmp_path / "lr"), "--weights", str(weights), "--iterations", "1", "--lr", "1e-3", *common]
    assert main([*args, "-o", str(tmp_path / "out"), "--save-weights", str(tmp_path / "adapted.safetensors")]) == 0
    assert "wrote" in capsys.readouterr().out
    frames = sorted((tmp_path / "out").glob("*.png"))
    assert len(frames) == 2 and Image.open(frames[0]).size == (320, 320)
    adapted = load_adapted_model(tmp_path / "adapted.safetensors")
    assert any(not torch.equal(v, adapted.state_dict()[k]) for k, v in tiny_basicvsr().state_dict().items())

    # the saved network restores the clip as the adaptation left it
    reuse = ["adapt", str(tmp_path / "lr"), "--weights", str(tmp_path / "adapted.safetensors"), "--iterations", "0"]
    assert main([*reuse, *common, "-o", str(tmp_path / "again")]) == 0
    for a, b in zip(frames, sorted((tmp_path / "again").glob("*.png"))):
        np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    weights = save_tiny(tmp_path / "tiny.safetensors")
    out = tmp_path / "out.mp4"
    assert main(["adapt", str(tmp_path / "missing"), "--weights", str(weights), "-o", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

    write_pngs(tmp_path / "small", smooth_clip(2, 40, 40))  # 160 HR pixels < the 320-pixel crops of patch 256
    assert main(["adapt", str(tmp_path / "small"), "--weights", str(weights), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "too small for patch_size 256" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))

    assert main(["adapt", str(tmp_path / "small"), "--method", "bicubic", "-o", str(out)]) == 2
    assert "trainable network" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "small"), "--method", "realbasicvsr", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "real-world degradations" in err and "kernel=" in err and len(err.strip().splitlines()) == 1
    assert main(["adapt", str(tmp_path / "small"), "--weights", str(weights), "--kernel", "box", "-o", str(out)]) == 2
    assert "unknown kernel 'box'" in capsys.readouterr().err


def test_cli_defaults_are_the_config_defaults():
    from sete_vsr.commands.adapt import _DEFAULTS

    assert _DEFAULTS == {key: getattr(AdaptationConfig(), key) for key in _DEFAULTS}


def test_method_option_defaults_are_the_config_defaults():
    """``<base>+adapt``'s options (AdaptationFields) default to AdaptationConfig's settings."""
    from dataclasses import fields

    from sete_vsr.method_options import AdaptationFields

    defaults = {f.name: f.default for f in fields(AdaptationFields) if f.name != "kernel"}
    assert defaults == {name: getattr(AdaptationConfig(), name) for name in defaults}


@pytest.mark.slow
def test_cli_adapts_the_official_basicvsr(shared, tmp_path):
    checkpoint = shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth")
    gt = np.stack([np.asarray(Image.open(p).convert("RGB"))[:320, :320] for p in
                   sorted(shared("data", "frames", "vid4_GT", "calendar").glob("*.png"))[:3]])
    write_pngs(tmp_path / "lr", bi_degrade(gt))
    args = ["adapt", str(tmp_path / "lr"), "--method", "basicvsr-vimeo-bi", "--checkpoint", str(checkpoint),
            "--iterations", "1", "--batch-size", "1", "--frames-per-sample", "2", "--no-progress", "--device", "cpu",
            "-o", str(tmp_path / "out"), "--save-weights", str(tmp_path / "w.safetensors")]
    assert main(args) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
    assert load_adapted_method(tmp_path / "w.safetensors", progress=False).name == "basicvsr-vimeo-bi+adapt"


@pytest.mark.slow
def test_per_clip_adaptation_method_starts_from_the_official_weights_each_clip(shared):
    """``basicvsr-vimeo-bi+adapt``: 0 iterations is the base method; each clip starts again from the official weights."""
    checkpoint = shared("weights", "basicvsr", "BasicVSR_Vimeo90K_BIx4.pth")
    gt = np.stack([np.asarray(Image.open(p).convert("RGB"))[:320, :320] for p in
                   sorted(shared("data", "frames", "vid4_GT", "calendar").glob("*.png"))[:3]])
    lr = bi_degrade(gt)
    options = {"checkpoint": str(checkpoint), "device": "cpu", "progress": "false"}
    base = load_method("basicvsr-vimeo-bi", **options)(lr)
    unchanged = load_method("basicvsr-vimeo-bi+adapt", iterations="0", **options)
    assert unchanged.name == "basicvsr-vimeo-bi+adapt"
    np.testing.assert_array_equal(unchanged(lr), base)

    method = load_method("basicvsr-vimeo-bi+adapt", iterations="2", batch_size="1", num_frames="2", **options)
    first = method(lr)
    assert not np.array_equal(first, base) and len(method.last_losses) == 2
    np.testing.assert_array_equal(method(lr), first)  # weights reset between clips, seeded sampling


def test_pseudo_pair_scale_factor_and_crop_stay_in_range(monkeypatch):
    """Lines 3-4: ``s`` in [0.8, 0.95], the target's factor ``P / crop`` too, and every crop inside the frame."""
    from sete_vsr.adaptation import self_supervised

    resized = []
    real_imresize = self_supervised.imresize

    def spy(patch, size):
        resized.append(patch)
        return real_imresize(patch, size=size)

    class Recording:
        """``np.random.Generator`` that remembers its draws (the sampler calls ``integers`` and ``uniform``)."""

        def __init__(self, seed):
            self.rng, self.draws = np.random.default_rng(seed), []

        def integers(self, *args):
            self.draws.append(int(self.rng.integers(*args)))
            return self.draws[-1]

        def uniform(self, *args):
            self.draws.append(float(self.rng.uniform(*args)))
            return self.draws[-1]

    monkeypatch.setattr(self_supervised, "imresize", spy)
    # P = 20: plain rounding would give 20 / 21 = 0.952 for s above 0.93
    for p, (h, w) in [(20, (25, 31)), (32, (40, 47)), (256, (320, 333))]:  # the largest crop just fits the height
        restored = np.random.default_rng(p).integers(0, 256, (3, h, w, 3), dtype=np.uint8)
        sampler = PseudoPairSampler(restored, AdaptationConfig(patch_size=p, num_frames=2), 2, False)
        rng = Recording(0)
        for _ in range(40 if p == 256 else 200):
            del resized[:], rng.draws[:]
            y_lr, y = sampler.sample(rng)
            t, s, top, left = rng.draws
            (patch,) = resized
            crop = patch.shape[1]
            assert 0.8 <= s <= 0.95
            assert 0.8 <= p / crop <= 0.95 and abs(p / crop - s) <= s * s / p  # nearest in-range size to P / s
            assert patch.shape == (2, crop, crop, 3) and 0 <= top <= h - crop and 0 <= left <= w - crop
            np.testing.assert_array_equal(patch, restored[sampler.frame_indices(t), top : top + crop, left : left + crop])
            assert y.shape == (2, p, p, 3) and y_lr.shape == (2, p // 4, p // 4, 3)
