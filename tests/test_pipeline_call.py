"""SeTeVSRPipeline's call as diffusers users know it: batch-first outputs and batches of videos, classifier-free
guidance, custom timesteps / sigmas, and ``strength`` (starting from noised LR latents)."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler
from diffusers.utils import export_to_video

from sete_vsr.data.video_io import VideoReader
from sete_vsr.errors import SeteVSRError
from sete_vsr.pipelines import tiny_pipeline
from sete_vsr.pipelines.sampling import Sampling

STEPS = 2


@pytest.fixture(scope="module")
def pipe():
    pipeline = tiny_pipeline(seed=0)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def lr_frames(count: int, height: int = 8, width: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (count, height, width, 3), dtype=np.uint8)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_outputs_are_batch_first_and_export_to_video_takes_the_first(pipe, tmp_path):
    out = pipe(lr_frames(3), num_inference_steps=STEPS, generator=seeded())
    assert len(out.frames) == 1 and len(out.frames[0]) == 3 and isinstance(out.frames[0][0], PIL.Image.Image)
    assert out.fps == [None] and out.paths == [None]
    for output_type, shape in {"np": (1, 3, 32, 32, 3), "pt": (1, 3, 3, 32, 32), "latent": (1, 3, 4, 4, 4)}.items():
        frames = pipe(lr_frames(3), num_inference_steps=STEPS, generator=seeded(), output_type=output_type).frames
        assert tuple(frames.shape) == shape, output_type
    path = export_to_video(out.frames[0], str(tmp_path / "out.mp4"), fps=8)
    written = VideoReader(path)
    assert (written.info.num_frames, written.info.height, written.info.width) == (3, 32, 32)


def test_a_list_of_videos_is_a_batch_each_as_if_alone(pipe, tmp_path):
    first, second = lr_frames(3, seed=1), lr_frames(5, seed=2)
    alone = [pipe(v, num_inference_steps=STEPS, generator=seeded(i), output_type="np").frames[0]
             for i, v in enumerate((first, second))]  # fmt: skip
    batch = pipe([first, second], num_inference_steps=STEPS, generator=[seeded(0), seeded(1)], output_type="np")
    assert isinstance(batch.frames, list) and len(batch.frames) == 2  # different lengths: one array per video
    for got, expected in zip(batch.frames, alone):
        np.testing.assert_array_equal(got, expected)
    same_length = pipe(np.stack([first, first]), num_inference_steps=STEPS, generator=[seeded(0), seeded(0)],
                       output_type="np").frames  # fmt: skip
    assert same_length.shape == (2, 3, 32, 32, 3)
    np.testing.assert_array_equal(same_length[1], alone[0])
    # PIL frames of several videos: a list of lists; outputs written one per video
    pil = [[PIL.Image.fromarray(f) for f in first], [PIL.Image.fromarray(f) for f in second]]
    out = pipe(pil, num_inference_steps=STEPS, generator=seeded(), write_to=[tmp_path / "a", tmp_path / "b.mp4"])
    assert out.frames is None and out.paths == [tmp_path / "a", tmp_path / "b.mp4"]
    assert len(list((tmp_path / "a").glob("*.png"))) == 3 and VideoReader(tmp_path / "b.mp4").info.num_frames == 5


def test_batch_arguments_must_match_the_videos(pipe, tmp_path):
    videos = [lr_frames(2), lr_frames(2)]
    with pytest.raises(SeteVSRError, match="write_to must be a list with one output per video"):
        pipe(videos, num_inference_steps=1, write_to=tmp_path / "out.mp4")
    with pytest.raises(SeteVSRError, match="generator has 3 items for 2 videos"):
        pipe(videos, num_inference_steps=1, generator=[seeded()] * 3)
    with pytest.raises(SeteVSRError, match="the list of videos"):
        pipe([], num_inference_steps=1)
    assert not (tmp_path / "out.mp4").exists()


def test_guidance_follows_its_formula_and_is_off_by_default(pipe):
    video = lr_frames(3)
    embeds = pipe.unet.empty_prompt_embeds
    positive = torch.randn(embeds.shape, generator=seeded(1))
    negative = torch.randn(embeds.shape, generator=seeded(2))
    common = {"num_inference_steps": 1, "output_type": "latent"}
    plain = pipe(video, generator=seeded(), **common).frames[0]
    assert torch.equal(plain, pipe(video, generator=seeded(), guidance_scale=1.0, **common).frames[0])
    # Guided with equal prompts: the difference vanishes, so it is the unguided result (up to batch rounding).
    same = pipe(video, generator=seeded(), guidance_scale=7.5, **common).frames[0]
    torch.testing.assert_close(same, plain, rtol=0, atol=1e-5)

    # One step of the guided sampler equals the formula applied to the two unguided predictions.
    def predicted_noise(**kwargs) -> torch.Tensor:
        captured = []

        def record(module, args, kwargs_, output):
            captured.append(output.sample)

        hook = pipe.unet.register_forward_hook(record, with_kwargs=True)
        try:
            pipe(video, generator=seeded(), **common, **kwargs)
        finally:
            hook.remove()
        return captured[0]

    pos = predicted_noise(prompt_embeds=positive)
    neg = predicted_noise(prompt_embeds=negative)
    pair = predicted_noise(prompt_embeds=positive, negative_prompt_embeds=negative, guidance_scale=3.0)
    torch.testing.assert_close(pair[:3], neg, rtol=0, atol=1e-5)  # the negative prompt's half comes first
    torch.testing.assert_close(pair[3:], pos, rtol=0, atol=1e-5)
    guided = Sampling(1, guidance_scale=3.0).guide(pair)
    torch.testing.assert_close(guided, neg + 3.0 * (pos - neg))
    out = pipe(video, generator=seeded(), prompt_embeds=positive, negative_prompt_embeds=negative,
               guidance_scale=3.0, **common).frames[0]  # fmt: skip
    assert not torch.allclose(out, pipe(video, generator=seeded(), prompt_embeds=positive, **common).frames[0])


def test_prompt_errors_are_one_line(pipe):
    embeds = pipe.unet.empty_prompt_embeds
    with pytest.raises(SeteVSRError, match="only with classifier-free guidance"):
        pipe(lr_frames(2), num_inference_steps=1, negative_prompt_embeds=embeds)
    with pytest.raises(SeteVSRError, match="no text encoder"):
        pipe(lr_frames(2), num_inference_steps=1, prompt="a photo")
    with pytest.raises(SeteVSRError, match="either prompt or prompt_embeds"):
        pipe(lr_frames(2), num_inference_steps=1, prompt="a photo", prompt_embeds=embeds)


def test_custom_timesteps_and_sigmas_equal_the_schedule_they_name(pipe):
    video = lr_frames(3)
    for scheduler_class, name in ((DDPMScheduler, "timesteps"), (EulerDiscreteScheduler, "sigmas")):
        scheduler = scheduler_class.from_config(pipe.scheduler.config)
        own = pipe.scheduler
        pipe.scheduler = scheduler
        try:
            scheduler.set_timesteps(3)
            schedule = getattr(scheduler, name).tolist()  # sigmas: the last is the end
            counted = pipe(video, num_inference_steps=3, generator=seeded(), output_type="latent").frames[0]
            custom = pipe(video, generator=seeded(), output_type="latent", **{name: schedule}).frames[0]
            torch.testing.assert_close(custom, counted, rtol=0, atol=1e-6)
            other = pipe(video, generator=seeded(), output_type="latent", **{name: schedule[1:]}).frames[0]
            assert not torch.allclose(other, counted)
        finally:
            pipe.scheduler = own
    own = pipe.scheduler
    pipe.scheduler = DDIMScheduler.from_config(own.config)
    try:
        with pytest.raises(SeteVSRError, match="DDIMScheduler does not take custom timesteps"):
            pipe(video, timesteps=[999, 500])
    finally:
        pipe.scheduler = own


def test_strength_starts_from_noised_lr_latents_and_runs_the_last_steps(pipe):
    video = lr_frames(3)
    steps = []
    callback = lambda p, i, t, kwargs: steps.append(int(t)) or {}  # noqa: E731
    full = pipe(video, num_inference_steps=4, generator=seeded(), output_type="latent", callback_on_step_end=callback)
    default_steps, steps[:] = list(steps), []
    same = pipe(video, num_inference_steps=4, strength=1.0, generator=seeded(), output_type="latent")
    assert torch.equal(full.frames[0], same.frames[0])
    half = pipe(video, num_inference_steps=4, strength=0.5, generator=seeded(), output_type="latent",
                callback_on_step_end=callback)  # fmt: skip
    assert steps == default_steps[2:]
    assert not torch.allclose(half.frames[0], full.frames[0])
    # The start: the LR latents noised to the first remaining timestep, with the same noise a full run draws.
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    sampling = Sampling(4, strength=0.5)
    timesteps = sampling.set_timesteps(scheduler, torch.device("cpu"))
    lr_latents, noise = torch.randn(2, 4, 4, 4, generator=seeded(5)), torch.randn(2, 4, 4, 4, generator=seeded(6))
    start = sampling.initial_latents(scheduler, noise, lr_latents, timesteps)
    alpha = scheduler.alphas_cumprod[timesteps[0]]
    torch.testing.assert_close(start, alpha.sqrt() * lr_latents + (1 - alpha).sqrt() * noise)
    for strength, match in ((0.0, r"must be in \(0, 1\]"), (1.5, r"must be in \(0, 1\]"), (0.1, "leaves no")):
        with pytest.raises(SeteVSRError, match=match):
            pipe(video, num_inference_steps=4, strength=strength)
