"""SeTeVSRPipeline with the tiny random preset: outputs, inputs, save/load, windows, tiles, colour fix, streaming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDIMScheduler

from sete_vsr import SeTeVSRPipeline
from sete_vsr.data.video_io import VideoReader, write_video
from sete_vsr.errors import SeteVSRError
from sete_vsr.models.lr_inputs import bicubic_upsample
from sete_vsr.pipelines import adain_color_fix, tiny_pipeline, wavelet_color_fix

STEPS = 2


@pytest.fixture(scope="module")
def pipe() -> SeTeVSRPipeline:
    pipeline = tiny_pipeline(seed=0)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def lr_frames(count: int = 3, height: int = 12, width: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (count, height, width, 3), dtype=np.uint8)


def call(pipe: SeTeVSRPipeline, video, seed: int = 0, **kwargs):
    kwargs.setdefault("num_inference_steps", STEPS)
    return pipe(video, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_output_types_are_4x_with_the_same_frame_count(pipe):
    video = lr_frames(3, 12, 16)
    pt = call(pipe, video, output_type="pt").frames[0]
    assert pt.shape == (3, 3, 48, 64) and pt.dtype == torch.float32
    assert 0 <= pt.min() and pt.max() <= 1
    pil = call(pipe, video, output_type="pil").frames[0]
    assert len(pil) == 3 and all(isinstance(im, PIL.Image.Image) and im.size == (64, 48) for im in pil)
    np.testing.assert_array_equal(np.asarray(pil[1]), (pt[1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    latents = call(pipe, video, output_type="latent").frames[0]
    assert latents.shape == (3, 4, 6, 8)  # 4x12/8, 4x16/8


def test_any_size_grayscale_rgba_and_16_bit(pipe):
    gray16 = np.random.RandomState(1).randint(0, 65536, (2, 10, 13), dtype=np.uint16)
    out = call(pipe, gray16, output_type="np", num_inference_steps=1).frames[0]
    assert out.shape == (2, 40, 52, 3) and out.dtype == np.float32
    alpha = np.full((9, 7, 1), 128, np.uint8)
    rgba = [PIL.Image.fromarray(np.concatenate([f, alpha], axis=-1), "RGBA") for f in lr_frames(2, 9, 7)]
    assert call(pipe, rgba, output_type="np", num_inference_steps=1).frames[0].shape == (2, 36, 28, 3)
    tensor = torch.from_numpy(lr_frames(2, 8, 8)).permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W) in [0, 1]
    assert call(pipe, tensor, output_type="pt", num_inference_steps=1).frames[0].shape == (2, 3, 32, 32)


def test_seeded_calls_are_reproducible(pipe):
    video = lr_frames(2, 8, 8)
    first = call(pipe, video, seed=3, output_type="latent").frames[0]
    assert torch.equal(first, call(pipe, video, seed=3, output_type="latent").frames[0])
    assert not torch.equal(first, call(pipe, video, seed=4, output_type="latent").frames[0])


def test_save_load_round_trip_gives_identical_frames(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert index["unet"] == ["sete_vsr", "SeTeUNetModel"]
    assert index["vae"] == ["sete_vsr", "TemporalAutoencoderKL"]
    assert index["semantic_encoder"] == ["sete_vsr", "SemanticEncoder"]
    assert index["scheduler"] == ["diffusers", "DDPMScheduler"]
    assert index["text_encoder"] == [None, None] and index["assembled_from"]["preset"] == "tiny"
    files = [p for p in (tmp_path / "model").rglob("*") if p.is_file()]
    assert {p.suffix for p in files if p.suffix in (".bin", ".pt", ".safetensors")} == {".safetensors"}
    card = (tmp_path / "model" / "README.md").read_text()
    assert "SeTe-VSR" in card and "random weights" in card and "SeTeUNetModel" in card

    loaded = SeTeVSRPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.scheduler, type(pipe.scheduler)) and loaded.text_encoder is None
    video = lr_frames(3, 8, 12)
    expected = call(pipe, video, output_type="np").frames[0]
    np.testing.assert_array_equal(call(loaded, video, output_type="np").frames[0], expected)
    with pytest.raises(SeteVSRError, match="safetensors only"):
        pipe.save_pretrained(tmp_path / "pickled", safe_serialization=False)



def test_push_to_hub_uploads_safetensors_and_the_model_card(pipe, monkeypatch):
    """``push_to_hub`` as any diffusers pipeline; only the Hub calls themselves are replaced."""
    from diffusers.utils import hub_utils
    from huggingface_hub import ModelCard, RepoUrl

    uploaded = {}

    def upload_folder(repo_id, folder_path, **kwargs):
        files = {p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()}
        uploaded.update(repo_id=repo_id, files=files, card=(Path(folder_path) / "README.md").read_text())

    monkeypatch.setattr(hub_utils, "create_repo", lambda repo_id, **kw: RepoUrl(f"https://huggingface.co/{repo_id}"))
    monkeypatch.setattr(hub_utils, "load_or_create_model_card", lambda *a, **kw: ModelCard("empty"))
    monkeypatch.setattr(hub_utils, "upload_folder", upload_folder)
    monkeypatch.setattr("huggingface_hub.file_exists", lambda *a, **kw: False)  # a new repository
    pipe.push_to_hub("someone/sete-vsr-tiny")
    assert uploaded["repo_id"] == "someone/sete-vsr-tiny"
    assert {"model_index.json", "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"} <= uploaded["files"]
    assert not any(f.endswith((".bin", ".pt", ".pth")) for f in uploaded["files"])
    assert "SeTe-VSR" in uploaded["card"] and "SeTeUNetModel" in uploaded["card"]

def test_video_that_fits_one_window_is_one_window(pipe):
    video = lr_frames(4, 8, 8)  # the tiny U-Net's window is 4 frames
    default = call(pipe, video, output_type="latent").frames[0]
    assert torch.equal(default, call(pipe, video, output_type="latent", window_length=16, window_overlap=3).frames[0])


def test_windows_blend_exactly_when_frames_are_independent():
    """Without temporal modules each frame's prediction ignores the window, so blending must reproduce one window."""
    stage1 = tiny_pipeline(seed=0, temporal=False)
    stage1.set_progress_bar_config(disable=True)
    video = lr_frames(7, 8, 8)
    single = call(stage1, video, output_type="latent", window_length=7).frames[0]
    windowed = call(stage1, video, output_type="latent", window_length=3, window_overlap=1).frames[0]
    # Equal up to float rounding (kernels depend on the batch size), which DDPM's 1/sqrt(alpha_bar) amplifies at
    # high noise; a wrong blend weight would be off by the latents' own scale (about 1).
    torch.testing.assert_close(windowed, single, rtol=1e-3, atol=1e-3)


def _frame_steps(latents: torch.Tensor) -> torch.Tensor:
    """Mean absolute change between consecutive frames: `(T-1,)`."""
    return (latents[1:] - latents[:-1]).abs().mean(dim=(1, 2, 3))


def test_no_seam_between_windows(pipe):
    """A static video with the same noise in every frame: any change between frames comes from the frame's position.

    The temporal modules make frames differ by their position inside a window. Cutting the video into two windows
    without blending shows a jump at the cut about twice any change inside a window; with blended windows the changes
    across window boundaries must stay at the level of the changes inside windows.
    """
    deterministic = SeTeVSRPipeline(**pipe.components)
    deterministic.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    deterministic.set_progress_bar_config(disable=True)
    frames = 14
    video = np.repeat(lr_frames(1, 16, 16), frames, axis=0)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)).expand(frames, -1, -1, -1)

    def run(count: int, **kwargs) -> torch.Tensor:
        out = deterministic(video[:count], num_inference_steps=3, latents=noise[:count], output_type="latent", **kwargs)
        return out.frames[0]

    # Windows [0, 6), [4, 10), [8, 14): transitions t -> t+1 touching an overlap are 3, 4, 5 and 7, 8, 9.
    blended = _frame_steps(run(frames, window_length=6, window_overlap=2))
    across = torch.tensor([3, 4, 5, 7, 8, 9])
    inside = torch.tensor([0, 1, 2, 6, 10, 11, 12])
    assert blended[across].max() <= 1.25 * blended[inside].max()

    # The same measure on two unblended windows [0, 7) + [7, 14) does see the seam at transition 6.
    cut = _frame_steps(torch.cat([run(7, window_length=7), run(7, window_length=7)]))
    assert cut[6] >= 1.8 * cut[torch.arange(13) != 6].max()


def _deterministic(pipe: SeTeVSRPipeline) -> SeTeVSRPipeline:
    deterministic = SeTeVSRPipeline(**pipe.components)
    deterministic.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    deterministic.set_progress_bar_config(disable=True)
    return deterministic


@pytest.mark.parametrize(("mode", "shared"), [("blended", [6, 14, 22]), ("shifted", [10, 22])])
def test_no_seam_between_segments(pipe, mode, shared):
    """As :func:`test_no_seam_between_windows`, across segments: segments of 2 windows, each after the first starting
    with the last 2 frames of the previous one. Blended windows of 6 bring 8 new frames a segment (frames 6-7, 14-15
    and 22-23 are shared), shifted ones 12 (frames 10-11 and 22-23; the first of 3 steps blended)."""
    frames = 30
    video = np.repeat(lr_frames(1, 16, 16), frames, axis=0)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)).expand(frames, -1, -1, -1)
    out = _deterministic(pipe)(
        video, num_inference_steps=3, latents=noise, output_type="latent", window_mode=mode, window_length=6,
        window_overlap=2, segment_length=2,
    ).frames[0]
    steps = _frame_steps(out)
    across = torch.tensor([first + offset for first in shared for offset in (-1, 0, 1)])
    inside = torch.tensor([i for i in range(frames - 1) if i not in across])
    assert steps[across].max() <= 1.25 * steps[inside].max()


def test_no_seam_with_shifted_windows_after_blended_first_steps(pipe):
    """As :func:`test_no_seam_between_windows` for ``window_mode="shifted"``, whose boundaries move from step to step:
    with its default first blended steps (2 of 10) the largest change between neighbouring frames stays near the
    median one, as with blended windows; shifting from the first step leaves a seam."""
    frames = 16
    video = np.repeat(lr_frames(1, 16, 16), frames, axis=0)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)).expand(frames, -1, -1, -1)
    options = {"num_inference_steps": 10, "latents": noise, "output_type": "latent", "window_length": 4,
               "window_overlap": 1, "segment_length": 8}  # fmt: skip
    deterministic = _deterministic(pipe)

    def seam(**kwargs) -> float:
        steps = _frame_steps(deterministic(video, **options, **kwargs).frames[0])
        return float(steps.max() / steps.median())

    blended = seam(window_mode="blended")
    assert seam(window_mode="shifted") <= 1.25 * blended
    assert seam(window_mode="shifted", blended_steps=0) >= 1.5 * blended


@pytest.mark.parametrize(("mode", "first"), [("blended", 4), ("shifted", 8)])
def test_the_first_segment_does_not_depend_on_what_follows(pipe, mode, first):
    """Segments run one after another and draw their noise in order: the first segment's frames of a long video are
    those of the video cut after that segment (DDPM, whose steps draw noise too). Segments of 4 windows of 2 frames
    bring 4 new frames (windows overlapping by 1) or 8 (shifted, no overlap)."""
    video = lr_frames(11, 8, 8)
    options = {"output_type": "latent", "window_mode": mode, "window_length": 2, "window_overlap": 1,
               "segment_length": 4}
    long = call(pipe, video, **options).frames[0]
    assert long.shape == (11, 4, 4, 4)
    cut = call(pipe, video[:first], **options).frames[0]
    # The segment's last frame is shared with the next segment, which changes it.
    assert torch.equal(long[: first - 1], cut[: first - 1])
    assert not torch.equal(long[first - 1], cut[first - 1])


def test_segments_are_invisible_when_frames_are_independent():
    """Without temporal modules a frame's result does not depend on the others: segments must change nothing."""
    stage1 = _deterministic(tiny_pipeline(seed=0, temporal=False))
    video = lr_frames(9, 8, 8)
    noise = torch.randn(9, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    whole = stage1(video, num_inference_steps=3, latents=noise, output_type="latent", window_length=9).frames[0]
    segmented = stage1(
        video, num_inference_steps=3, latents=noise, output_type="latent", window_length=3, window_overlap=1,
        segment_length=1,
    ).frames[0]
    torch.testing.assert_close(segmented, whole, rtol=1e-3, atol=1e-3)  # float rounding only (see above)


@pytest.mark.parametrize("mode", ["blended", "shifted"])
def test_frames_evaluated_and_held_per_segment(pipe, mode):
    """Count the frames the U-Net evaluates (a hook on it) and the frames a step holds (the callback's latents).

    20 frames, windows of 4 overlapping by 1, segments of 2 windows, each after the first starting with 1 frame of the
    previous one. Shifted: segments of 8, 1 + 8 and 1 + 4 frames, each evaluated once per step (1 per output frame plus
    the shared frames). Blended: segments of 6 (windows [0, 4), [2, 6)), 1 + 6 and 1 + 6 (windows [0, 4), [3, 7)) and
    1 + 2 (one window): overlaps of windows are evaluated twice too.
    """
    evaluated, held = [], []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: evaluated.append(len(args[0])))
    try:
        call(
            pipe, lr_frames(20, 8, 8), output_type="latent", window_mode=mode, window_length=4, window_overlap=1,
            segment_length=2, blended_steps=0, callback_on_step_end=lambda p, i, t, kw: held.append(len(kw["latents"])) or {},
        )
    finally:
        hook.remove()
    segments = [8, 9, 5] if mode == "shifted" else [6, 7, 7, 3]
    assert held == [count for count in segments for _ in range(STEPS)]  # never more than a segment
    per_output_frame = sum(evaluated) / STEPS / 20
    assert per_output_frame == (22 / 20 if mode == "shifted" else (8 + 8 + 8 + 3) / 20)  # 1.1 and 1.35


def test_tiles(pipe):
    video = lr_frames(2, 32, 48)  # latents 16 x 24
    whole = call(pipe, video, output_type="latent", tile_size=0).frames[0]
    assert torch.equal(whole, call(pipe, video, output_type="latent", tile_size=64).frames[0])  # one tile = untiled
    tiled = call(pipe, video, output_type="latent", tile_size=8, tile_overlap=4).frames[0]
    assert tiled.shape == whole.shape
    # Each tile's self-attention sees only the tile, so results differ, but stay close to the untiled result.
    assert (tiled - whole).abs().mean() <= 0.2 * whole.std()


def test_tiled_decoding_matches_untiled_decoding(pipe):
    video = lr_frames(2, 32, 48)
    untiled = call(pipe, video, output_type="pt", tile_size=0).frames[0]
    tiled = call(pipe, video, output_type="pt", tile_size=0, decode_tile_size=8, decode_tile_overlap=4).frames[0]
    assert (tiled - untiled).abs().mean() <= 0.05


def test_colour_corrections():
    reference = torch.rand(2, 3, 32, 32)
    shifted = reference + torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)  # a colour cast
    torch.testing.assert_close(wavelet_color_fix(shifted, reference), reference, rtol=0, atol=1e-5)
    torch.testing.assert_close(adain_color_fix(2 * shifted, reference), reference, rtol=0, atol=1e-4)


def test_colour_fix_in_the_pipeline(pipe):
    """Each fix gives the output the colours of the bicubic-upsampled LR frames: per-frame channel means (both) and
    standard deviations (AdaIN) move onto the reference's, up to the clamping to [0, 1]."""
    video = (lr_frames(2, 8, 8) // 4 + 180).astype(np.uint8)  # bright: far from the random model's mid grey
    reference = bicubic_upsample(torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255, value_range=(0.0, 1.0))
    plain = call(pipe, video, output_type="pt").frames[0]

    def mean_error(frames):
        return (frames.mean(dim=(2, 3)) - reference.mean(dim=(2, 3))).abs().max().item()

    def std_error(frames):
        return (frames.std(dim=(2, 3)) - reference.std(dim=(2, 3))).abs().max().item()

    assert mean_error(plain) > 0.2  # the tiny random model's colours are far off
    wavelet = call(pipe, video, output_type="pt", color_fix="wavelet").frames[0]
    adain = call(pipe, video, output_type="pt", color_fix="adain").frames[0]
    assert mean_error(wavelet) < 0.02 and mean_error(adain) < 0.02, (mean_error(wavelet), mean_error(adain))
    assert std_error(adain) < 0.03 < std_error(plain), (std_error(adain), std_error(plain))


def test_write_to_streams_frames_to_a_video(pipe, tmp_path):
    source = tmp_path / "in.mp4"
    write_video(source, lr_frames(5, 16, 24), fps=25)
    out = call(pipe, str(source), write_to=tmp_path / "out.mp4", decode_chunk_size=2)
    assert out.frames is None and out.paths == [tmp_path / "out.mp4"] and out.fps == [25]
    written = VideoReader(out.paths[0])
    assert (written.info.num_frames, written.info.height, written.info.width, written.info.fps) == (5, 64, 96, 25)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left


def test_write_to_a_writer_object_gets_uint8_frames_one_by_one(pipe):
    class Collect:
        frames: list = []

        def write(self, frame):
            self.frames.append(frame)

    writer = Collect()
    assert call(pipe, lr_frames(3, 8, 8), write_to=writer, decode_chunk_size=1).frames is None
    assert len(writer.frames) == 3 and all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for f in writer.frames)


def test_prompt_embeds_and_callback(pipe):
    seen = []

    def callback(pipeline, step, timestep, kwargs):
        seen.append((step, tuple(kwargs["latents"].shape)))
        return {"latents": kwargs["latents"]}

    embeds = torch.randn(1, 8, pipe.unet.config.cross_attention_dim)
    call(pipe, lr_frames(2, 8, 8), prompt_embeds=embeds, output_type="latent", callback_on_step_end=callback)
    assert seen == [(0, (2, 4, 4, 4)), (1, (2, 4, 4, 4))]
    with pytest.raises(SeteVSRError, match="no text encoder"):
        call(pipe, lr_frames(2, 8, 8), prompt="a photo")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"output_type": "mp4"}, "output_type"),
        ({"color_fix": "histogram"}, "color_fix"),
        ({"window_length": 4, "window_overlap": 4}, "window_overlap"),
        ({"tile_size": 8, "tile_overlap": 8}, "tile_overlap"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"window_mode": "sliding"}, "window_mode"),
        ({"segment_length": 0}, "segment_length"),
        ({"decode_chunk_size": 2, "decode_chunk_overlap": 2}, "decode_chunk_overlap"),
    ],
)
def test_bad_arguments_are_clear_errors(pipe, options, message):
    with pytest.raises(SeteVSRError, match=message):
        call(pipe, lr_frames(2, 8, 8), **options)


def test_as_a_method(pipe, tmp_path):
    from sete_vsr.methods import load_method

    pipe.save_pretrained(tmp_path / "model")
    method = load_method("sete-vsr", model=str(tmp_path / "model"), device="cpu", steps="2", progress="false")
    out = method(lr_frames(3, 8, 12))
    assert out.shape == (3, 32, 48, 3) and out.dtype == np.uint8


def test_an_untrained_pipeline_says_so(pipe, tmp_path):
    """Never trained (from init, or the tiny preset): ``sete-vsr-untrained``; with a training record: ``sete-vsr``."""
    from sete_vsr.methods import load_method

    pipe.save_pretrained(tmp_path / "model")
    untrained = load_method("sete-vsr", model=str(tmp_path / "model"), device="cpu", progress="false")
    assert not untrained.trained and untrained.name == "sete-vsr-untrained" and untrained.training_stages == []
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    index["assembled_from"]["training_stages"] = [{"stage": "1", "steps": 4, "from": "init", "ema": False}]
    (tmp_path / "model" / "model_index.json").write_text(json.dumps(index))
    trained = load_method("sete-vsr", model=str(tmp_path / "model"), device="cpu", progress="false")
    assert trained.trained and trained.name == "sete-vsr" and trained.training_stages[0]["steps"] == 4
    # a named instance is labelled by its name, "-untrained" appended in the same way
    assert load_method("sete-vsr:final", model=str(tmp_path / "model"), device="cpu").name == "sete-vsr:final"


def test_a_pipeline_without_seam_runs_and_ignores_the_semantics(tmp_path):
    """The ``--no-seam`` ablation: no SeAM, no semantic tokenizer; the pipeline runs, saves and reloads."""
    no_seam = tiny_pipeline(seed=0, unet_options={"use_seam": False})
    no_seam.set_progress_bar_config(disable=True)
    assert no_seam.unet.semantic_tokenizer is None
    sam2_calls = []
    no_seam.semantic_encoder.register_forward_hook(lambda *args: sam2_calls.append(1))
    expected = call(no_seam, lr_frames(3, 8, 12), output_type="np").frames[0]
    assert not sam2_calls  # nothing attends to SAM2's tokens, so SAM2 does not run
    no_seam.save_pretrained(tmp_path / "model")
    loaded = SeTeVSRPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert not loaded.unet.config.use_seam
    np.testing.assert_array_equal(call(loaded, lr_frames(3, 8, 12), output_type="np").frames[0], expected)
