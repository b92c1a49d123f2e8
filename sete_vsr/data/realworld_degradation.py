"""RealBasicVSR's second-order "stochastic" video degradation, after ``PROTOCOLS.md`` section 1.

One call degrades a whole clip ``(T, H, W, 3)`` into its low-resolution copy
``(T, h, w, 3)``; every random choice comes from one ``numpy`` generator, so a
seed fixes the result (the video codec runs single-threaded for that reason).

Pipeline (stage names as in :meth:`RealBasicVSRDegradation.degrade`'s record):

0. ``usm``: unsharp masking of the input (RealBasicVSR degrades the USM-sharpened
   GT: ``CopyValues(gt_unsharp -> img)``), when ``sharpen_input``.
1. ``blur1`` 2. ``resize1`` 3. ``noise1`` 4. ``jpeg1`` 5. ``video1`` (first order);
6. ``blur2`` (p=0.8) 7. ``resize2`` 8. ``noise2`` 9. ``jpeg2`` (second order);
10. two groups in random order (``DegradationsWithShuffle``): group A =
    ``video2``; group B = ``final_resize`` to ``target_size`` then ``final_sinc``
    (p=0.8);
11. clip to ``[0, 255]``, then round when ``quantize`` (mmedit 0.x ``Quantize``).

Per clip, the kernel type and size, noise type and gray flag, interpolation,
resize mode, codec and bitrate, whether each stage runs and the group order are
drawn once; sigma_x, sigma_y, rotation, both betas, omega, resize scale,
Gaussian sigma, Poisson scale and JPEG quality start from one draw and then
random-walk per frame (``+ U(-step, step)``, clipped to the range); the noise
realisation is drawn per frame; video compression encodes the clip as one
stream.

Value convention: frames are ``float32`` on the 0-255 scale inside the
pipeline (mmagic 1.x's scale); only the codecs quantise (round and saturate to
``uint8``). Input is ``uint8``, or float in ``[0, 1]`` (the package's frame
convention, as :mod:`sete_vsr.data.video_io`); output is float32 on the 0-255 scale.

Quirks of the reference code (``PROTOCOLS.md`` 1.4), and what is done here:

(a) generalized/plateau ``beta`` is re-drawn per frame uniformly between the
    walked value and 1 (BasicSR's random kernel functions called with a
    degenerate range). Reproduced; ``redraw_beta=False`` uses the walked value.
(b) frame sizes drift inside a clip when ``step > 0``; the codec stream takes
    the first frame's size and PyAV's encoder rescales the others to it.
    Reproduced as is.
(c) Poisson noise uses mmedit 0.x's [0,1]-scale formula by default
    (``poisson_formula="unit"``), the one RealBasicVSR was trained with, which
    is sqrt(255) ~ 16x stronger in 0-255 units than mmagic 1.x's
    (``"byte"``, also available).
(d) RGB frames go to ``cv2.imencode`` as if they were BGR, as RealBasicVSR
    does, so JPEG's chroma handling sees swapped channels. Reproduced by
    default (``jpeg_rgb_as_bgr=True``) because it is the trained distribution;
    ``False`` encodes the true colours.
(e) The codecs get ``clip(round(x))`` as ``uint8``. The reference casts with
    ``astype(uint8)`` (truncation; and in 0.x values pushed out of range by the
    final resize/sinc would wrap around when group B runs before group A);
    rounding after clipping is used instead (at most one grey level apart).

Other documented choices: ``h264`` is resolved to the encoder the installed
PyAV wheel maps it to, falling back to a software H.264 encoder when that is a
hardware one (see :func:`resolve_encoder`); odd frame sizes are edge-padded to
even for ``yuv420p`` and cropped back; a resized side never goes below 2 pixels
(tiny inputs only). ``target_size=None`` gives ``(H // scale, W // scale)``,
for full-frame test sets (``PROTOCOLS.md`` 1.6; see :func:`degrade_full_frames`).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields, is_dataclass, replace

import av
import cv2
import numpy as np

from ..errors import SeteVSRError
from . import kernels

KERNEL_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
KERNEL_PROBS = (0.405, 0.225, 0.108, 0.027, 0.108, 0.027, 0.1)
INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "bicubic": cv2.INTER_CUBIC}
THIRDS = (1 / 3, 1 / 3, 1 / 3)
POISSON_FORMULAS = ("unit", "byte")
_SOFTWARE_H264 = ("libx264", "libopenh264")

Frames = list  # list of float32 (H_t, W_t, 3) arrays; sizes may differ between frames (quirk (b))


@dataclass(frozen=True)
class BlurParams:
    """One ``RandomBlur`` stage. Ranges are inclusive ``(low, high)``; ``*_step`` is the per-frame walk step.

    ``omega=None`` follows Real-ESRGAN: ``[pi/3, pi]`` for kernel sizes below 13,
    else ``[pi/5, pi]``. Angles are radians, sigmas pixels.
    """

    prob: float = 1.0
    kernel_sizes: tuple[int, ...] = KERNEL_SIZES
    kernel_types: tuple[str, ...] = kernels.KERNEL_TYPES
    kernel_probs: tuple[float, ...] = KERNEL_PROBS
    sigma_x: tuple[float, float] = (0.2, 3.0)
    sigma_y: tuple[float, float] = (0.2, 3.0)
    rotate_angle: tuple[float, float] = (-math.pi, math.pi)
    beta_gaussian: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    omega: tuple[float, float] | None = None
    sigma_x_step: float = 0.02
    sigma_y_step: float = 0.02
    rotate_angle_step: float = 0.31416
    beta_gaussian_step: float = 0.05
    beta_plateau_step: float = 0.1
    omega_step: float = 0.0628


@dataclass(frozen=True)
class ResizeParams:
    """One ``RandomResize`` stage: mode up/down/keep, then ``U(1, scale[1])`` / ``U(scale[0], 1)`` / 1.

    The scale walks per frame within ``scale``; sizes are ``floor(H * s)``, floored to even when
    ``even_size``. Interpolations are cv2 ``INTER_LINEAR``/``INTER_AREA``/``INTER_CUBIC``.
    """

    prob: float = 1.0
    mode_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    scale: tuple[float, float] = (0.15, 1.5)
    interpolations: tuple[str, ...] = ("bilinear", "area", "bicubic")
    interpolation_probs: tuple[float, ...] = THIRDS
    step: float = 0.015
    even_size: bool = True


@dataclass(frozen=True)
class NoiseParams:
    """One ``RandomNoise`` stage: Gaussian (sigma on the 0-255 scale) or Poisson (scale factor)."""

    prob: float = 1.0
    noise_probs: tuple[float, float] = (0.5, 0.5)  # gaussian, poisson
    gaussian_sigma: tuple[float, float] = (1.0, 30.0)
    gaussian_sigma_step: float = 0.1
    gaussian_gray_prob: float = 0.4
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    poisson_scale_step: float = 0.005
    poisson_gray_prob: float = 0.4


@dataclass(frozen=True)
class JPEGParams:
    """One ``RandomJPEGCompression`` stage (``cv2.imencode``), integer quality walking per frame."""

    prob: float = 1.0
    quality: tuple[int, int] = (30, 95)
    quality_step: float = 3.0


@dataclass(frozen=True)
class VideoParams:
    """One ``RandomVideoCompression`` stage: codec per clip, integer bitrate in bit/s, 1 fps, ``yuv420p``."""

    prob: float = 1.0
    codecs: tuple[str, ...] = ("libx264", "h264", "mpeg4")
    codec_probs: tuple[float, ...] = THIRDS
    bitrate: tuple[int, int] = (10_000, 100_000)


@dataclass(frozen=True)
class USMParams:
    """``UnsharpMasking``: Gaussian ``kernel_size``/``sigma`` (0: cv2's rule), ``weight``, ``threshold`` (0-255)."""

    kernel_size: int = 51
    sigma: float = 0.0
    weight: float = 0.5
    threshold: float = 10.0


@dataclass(frozen=True)
class RealBasicVSRConfig:
    """Every value of RealBasicVSR's REDS training degradation (``PROTOCOLS.md`` 1.2-1.4).

    Defaults reproduce ``realbasicvsr_wogan_c64b20_2x30x8_lr1e-4_300k_reds``.
    ``target_size`` is the LR ``(h, w)`` of the final resize: ``(64, 64)`` for
    256 training crops, or ``None`` for ``(H // scale, W // scale)`` of the input
    (full-frame test sets, ``PROTOCOLS.md`` 1.6). ``shuffle_final=False`` runs
    group A (video) before group B (resize + sinc), MGLD-VSR's fixed order.
    ``sharpen_input`` degrades the unsharp-masked input, as RealBasicVSR does.
    See the module docstring for ``poisson_formula``, ``redraw_beta``,
    ``jpeg_rgb_as_bgr`` and ``quantize``.
    """

    blur1: BlurParams = BlurParams()
    resize1: ResizeParams = ResizeParams()
    noise1: NoiseParams = NoiseParams()
    jpeg1: JPEGParams = JPEGParams()
    video1: VideoParams = VideoParams()
    blur2: BlurParams = BlurParams(prob=0.8, sigma_x=(0.2, 1.5), sigma_y=(0.2, 1.5))
    resize2: ResizeParams = ResizeParams(mode_probs=(0.3, 0.4, 0.3), scale=(0.3, 1.2), step=0.03)
    noise2: NoiseParams = NoiseParams(gaussian_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5))
    jpeg2: JPEGParams = JPEGParams()
    video2: VideoParams = VideoParams()
    final_interpolations: tuple[str, ...] = ("bilinear", "area", "bicubic")
    final_interpolation_probs: tuple[float, ...] = THIRDS
    final_sinc: BlurParams = BlurParams(
        prob=0.8, kernel_types=("sinc",), kernel_probs=(1.0,), omega=(math.pi / 3, math.pi)
    )
    target_size: tuple[int, int] | None = (64, 64)
    scale: int = 4
    shuffle_final: bool = True
    sharpen_input: bool = True
    usm: USMParams = USMParams()
    poisson_formula: str = "unit"
    redraw_beta: bool = True
    jpeg_rgb_as_bgr: bool = True
    quantize: bool = True


# ----------------------------------------------------------------------------- helpers


def _walk(rng: np.random.Generator, start: float, step: float, bounds: tuple[float, float], n: int) -> np.ndarray:
    """``n`` per-frame values: ``start``, then each adds ``U(-step, step)`` and is clipped to ``bounds``."""
    values = np.empty(n)
    value = float(start)
    for i in range(n):
        values[i] = value
        value = float(np.clip(value + rng.uniform(-step, step), bounds[0], bounds[1]))
    return values


def _skip(rng: np.random.Generator, prob: float) -> bool:
    """Whether a stage with probability ``prob`` is skipped for this clip (one draw per clip)."""
    return rng.uniform() > prob


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and saturate to ``uint8``, as cv2 does when it encodes float input."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _choice(rng: np.random.Generator, options: tuple, probs: tuple) -> str:
    return str(options[rng.choice(len(options), p=np.asarray(probs, dtype=np.float64))])


def unsharp_mask(img: np.ndarray, params: USMParams = USMParams()) -> np.ndarray:
    """mmagic ``UnsharpMasking`` of one frame ``(H, W, C)`` on the 0-255 scale -> float32, same shape.

    ``residue = img - G*img``; ``mask = |residue| > threshold``; ``soft = G*mask``;
    ``out = soft * clip(img + weight * residue, 0, 255) + (1 - soft) * img``, with
    ``G`` the outer product of ``cv2.getGaussianKernel(kernel_size, sigma)``
    applied with reflect-101 borders (as ``cv2.filter2D``; done separably here).
    """
    g = cv2.getGaussianKernel(params.kernel_size, params.sigma)
    img = np.asarray(img, dtype=np.float32)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(x, -1, g, g, borderType=cv2.BORDER_REFLECT_101)

    residue = img - blur(img)
    mask = (np.abs(residue) > params.threshold).astype(np.float32)
    soft = blur(mask)
    sharp = np.clip(img + params.weight * residue, 0, 255)
    return soft * sharp + (1.0 - soft) * img


def poisson_noise(img: np.ndarray, rng: np.random.Generator, gray: bool = False, formula: str = "unit") -> np.ndarray:
    """Poisson noise of one frame at scale 1, on the 0-255 scale: float32 ``(H, W, 1 if gray else 3)``.

    The image (or its luma ``0.299 R + 0.587 G + 0.114 B`` when ``gray``) is
    rounded to integer levels ``q``; with ``u = 2 ** ceil(log2(#unique(q)))``,
    ``"unit"`` (mmedit 0.x) returns ``255 * (poisson(u * q/255) / u - q/255)``
    and ``"byte"`` (mmagic 1.x) returns ``poisson(u * q) / u - q``, which is
    ``sqrt(255)`` times weaker.
    """
    x = np.asarray(img, dtype=np.float64)
    if gray:
        x = (x @ np.array([0.299, 0.587, 0.114]))[..., None]
    q = np.clip(np.rint(x), 0, 255)
    levels = 2.0 ** np.ceil(np.log2(len(np.unique(q))))
    if formula == "unit":
        q01 = q / 255.0
        noise = (rng.poisson(q01 * levels) / levels - q01) * 255.0
    elif formula == "byte":
        noise = rng.poisson(q * levels) / levels - q
    else:
        raise SeteVSRError(f"poisson_formula must be one of {POISSON_FORMULAS}, got {formula!r}")
    return noise.astype(np.float32)


def resolve_encoder(codec: str) -> str:
    """FFmpeg encoder name that PyAV uses for ``codec`` in this installation.

    ``h264`` is not an encoder of its own: FFmpeg picks the default encoder for
    the H.264 codec id, which in the PyAV wheels is ``libx264`` (so ``libx264``
    and ``h264`` are the same encoder, as in RealBasicVSR's runs). When it maps
    to a hardware encoder (``h264_nvenc``, ``h264_v4l2m2m``...), which cannot
    open on most machines, the first available software H.264 encoder is used.
    Raises :class:`SeteVSRError` when nothing suitable exists.
    """
    try:
        name = av.codec.Codec(codec, "w").name
    except ValueError:  # av.codec.codec.UnknownCodecError
        name = None
    if codec == "h264" and name not in _SOFTWARE_H264:
        name = next((n for n in _SOFTWARE_H264 if n in av.codecs_available), None)
    if name is None:
        raise SeteVSRError(f"no video encoder for {codec!r} in this PyAV/FFmpeg build (needed by the degradation)")
    return name


def encode_decode_video(frames: list[np.ndarray], encoder: str, bitrate: int) -> list[np.ndarray]:
    """Round-trip a clip through one in-memory MP4 stream; returns float32 frames of the first frame's size.

    ``frames``: ``uint8`` ``(H_t, W_t, 3)`` RGB. Settings as RealBasicVSR:
    ``add_stream(encoder, rate=1)``, ``yuv420p``, ``bit_rate=bitrate`` (bit/s,
    so ``bitrate`` bits per frame), encoder-chosen picture types; the stream
    size is the first frame's and PyAV rescales any other size to it. The
    encoder runs single-threaded so the output does not depend on the machine.
    Odd sizes are edge-padded to even and cropped back after decoding.
    """
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", "mp4") as container:
        stream = container.add_stream(encoder, rate=1)
        stream.height, stream.width = h + h % 2, w + w % 2
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = int(bitrate)
        stream.codec_context.thread_count = 1
        for img in frames:
            pad = ((0, img.shape[0] % 2), (0, img.shape[1] % 2), (0, 0))
            frame = av.VideoFrame.from_ndarray(np.pad(img, pad, mode="edge"), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(buf, "r", "mp4") as container:
        out = [f.to_ndarray(format="rgb24")[:h, :w].astype(np.float32) for f in container.decode(video=0)]
    if len(out) != len(frames):
        raise RuntimeError(f"{encoder} round trip returned {len(out)} frames for {len(frames)}")
    return out


# ----------------------------------------------------------------------------- stages
# Each stage maps a list of float32 frames to a new list and a record of what it drew.


def random_blur(
    frames: Frames, p: BlurParams, rng: np.random.Generator, redraw_beta: bool = True
) -> tuple[Frames, dict]:
    """``RandomBlur``: one kernel type and size per clip, parameters walking per frame, ``cv2.filter2D``."""
    if _skip(rng, p.prob):
        return frames, {"applied": False}
    n = len(frames)
    kernel_type = _choice(rng, p.kernel_types, p.kernel_probs)
    kernel_size = int(rng.choice(p.kernel_sizes))
    omega_range = p.omega or ((math.pi / 3, math.pi) if kernel_size < 13 else (math.pi / 5, math.pi))
    walked = {}
    for name, bounds, step in (
        ("sigma_x", p.sigma_x, p.sigma_x_step),
        ("sigma_y", p.sigma_y, p.sigma_y_step),
        ("rotate_angle", p.rotate_angle, p.rotate_angle_step),
        ("beta_gaussian", p.beta_gaussian, p.beta_gaussian_step),
        ("beta_plateau", p.beta_plateau, p.beta_plateau_step),
        ("omega", omega_range, p.omega_step),
    ):
        walked[name] = _walk(rng, rng.uniform(*bounds), step, bounds, n)
    out = []
    for i, img in enumerate(frames):
        kernel = kernels.mixed_kernel(
            kernel_type,
            kernel_size,
            walked["sigma_x"][i],
            walked["sigma_y"][i],
            walked["rotate_angle"][i],
            walked["beta_gaussian"][i],
            walked["beta_plateau"][i],
            walked["omega"][i],
            rng if redraw_beta else None,
        )
        out.append(cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101))
    return out, {"applied": True, "kernel_type": kernel_type, "kernel_size": kernel_size, **walked}


def _scaled_size(h: int, w: int, scale: float, even: bool) -> tuple[int, int]:
    hs, ws = h * scale, w * scale
    if even:
        hs, ws = 2 * (hs // 2), 2 * (ws // 2)
    floor = 2 if even else 1
    return max(int(hs), floor), max(int(ws), floor)


def random_resize(frames: Frames, p: ResizeParams, rng: np.random.Generator) -> tuple[Frames, dict]:
    """``RandomResize``: mode and interpolation per clip, scale walking per frame, relative to frame 0's size."""
    if _skip(rng, p.prob):
        return frames, {"applied": False}
    h, w = frames[0].shape[:2]
    interpolation = _choice(rng, p.interpolations, p.interpolation_probs)
    mode = _choice(rng, ("up", "down", "keep"), p.mode_probs)
    if mode == "up":
        start = rng.uniform(1.0, p.scale[1])
    elif mode == "down":
        start = rng.uniform(p.scale[0], 1.0)
    else:
        start = 1.0
    scales = _walk(rng, start, p.step, p.scale, len(frames))
    sizes = [_scaled_size(h, w, s, p.even_size) for s in scales]
    out = [
        cv2.resize(img, (sw, sh), interpolation=INTERPOLATIONS[interpolation]) for img, (sh, sw) in zip(frames, sizes)
    ]
    return out, {"applied": True, "interpolation": interpolation, "mode": mode, "scale": scales, "sizes": sizes}


def resize_to(
    frames: Frames,
    size: tuple[int, int],
    interpolations: tuple[str, ...],
    probs: tuple[float, ...],
    rng: np.random.Generator,
) -> tuple[Frames, dict]:
    """``RandomResize(target_size=size)``: every frame to ``size = (h, w)`` with one random interpolation."""
    interpolation = _choice(rng, interpolations, probs)
    out = [cv2.resize(img, (size[1], size[0]), interpolation=INTERPOLATIONS[interpolation]) for img in frames]
    return out, {"applied": True, "interpolation": interpolation, "size": tuple(size)}


def random_noise(
    frames: Frames, p: NoiseParams, rng: np.random.Generator, poisson_formula: str = "unit"
) -> tuple[Frames, dict]:
    """``RandomNoise``: type and gray flag per clip, level walking per frame, a fresh realisation per frame.

    Gaussian: ``img + sigma * N(0, 1)`` (one channel broadcast to RGB when gray).
    Poisson: ``img + scale * poisson_noise(img)``, see :func:`poisson_noise`.
    """
    if _skip(rng, p.prob):
        return frames, {"applied": False}
    noise_type = _choice(rng, ("gaussian", "poisson"), p.noise_probs)
    if noise_type == "gaussian":
        gray = bool(rng.uniform() < p.gaussian_gray_prob)
        levels = _walk(rng, rng.uniform(*p.gaussian_sigma), p.gaussian_sigma_step, p.gaussian_sigma, len(frames))
        out = []
        for img, sigma in zip(frames, levels):
            shape = img.shape[:2] + (1 if gray else img.shape[2],)
            out.append(img + np.float32(sigma) * rng.standard_normal(shape, dtype=np.float32))
    else:
        gray = bool(rng.uniform() < p.poisson_gray_prob)
        levels = _walk(rng, rng.uniform(*p.poisson_scale), p.poisson_scale_step, p.poisson_scale, len(frames))
        out = [img + np.float32(s) * poisson_noise(img, rng, gray, poisson_formula) for img, s in zip(frames, levels)]
    return out, {"applied": True, "noise_type": noise_type, "gray": gray, "level": levels}


def random_jpeg(
    frames: Frames, p: JPEGParams, rng: np.random.Generator, rgb_as_bgr: bool = True
) -> tuple[Frames, dict]:
    """``RandomJPEGCompression``: ``cv2.imencode('.jpg')`` per frame, integer quality walking per frame.

    ``rgb_as_bgr`` hands the RGB frame to OpenCV unchanged (quirk (d)).
    """
    if _skip(rng, p.prob):
        return frames, {"applied": False}
    quality = round(rng.uniform(*p.quality))
    qualities, out = [], []
    for img in frames:
        qualities.append(quality)
        data = _to_uint8(img) if rgb_as_bgr else np.ascontiguousarray(_to_uint8(img)[..., ::-1])
        ok, encoded = cv2.imencode(".jpg", data, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise RuntimeError("cv2.imencode('.jpg') failed")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        out.append((decoded if rgb_as_bgr else decoded[..., ::-1]).astype(np.float32))
        quality = round(float(np.clip(quality + rng.uniform(-p.quality_step, p.quality_step), *p.quality)))
    return out, {"applied": True, "quality": qualities}


def random_video_compression(
    frames: Frames, p: VideoParams, rng: np.random.Generator, encoders: dict[str, str]
) -> tuple[Frames, dict]:
    """``RandomVideoCompression``: codec and bitrate per clip, the whole clip through :func:`encode_decode_video`.

    ``encoders`` maps each name of ``p.codecs`` to its FFmpeg encoder (:func:`resolve_encoder`).
    """
    if _skip(rng, p.prob):
        return frames, {"applied": False}
    codec = _choice(rng, p.codecs, p.codec_probs)
    bitrate = int(rng.integers(p.bitrate[0], p.bitrate[1] + 1))
    out = encode_decode_video([_to_uint8(img) for img in frames], encoders[codec], bitrate)
    return out, {"applied": True, "codec": codec, "encoder": encoders[codec], "bitrate": bitrate}


# ----------------------------------------------------------------------------- the pipeline


def _check_config(cfg: RealBasicVSRConfig) -> None:
    """Raise :class:`SeteVSRError` for values the pipeline cannot run with."""
    if cfg.poisson_formula not in POISSON_FORMULAS:
        raise SeteVSRError(f"poisson_formula must be one of {POISSON_FORMULAS}, got {cfg.poisson_formula!r}")
    if cfg.target_size is not None and (len(cfg.target_size) != 2 or min(cfg.target_size) < 1):
        raise SeteVSRError(f"target_size must be (h, w) with positive sides or None, got {cfg.target_size}")
    if cfg.scale < 1:
        raise SeteVSRError(f"scale must be a positive integer, got {cfg.scale}")
    for stage in fields(cfg):
        value = getattr(cfg, stage.name)
        if not is_dataclass(value):
            continue
        for f in fields(value):
            if f.name.endswith("probs") and not math.isclose(sum(getattr(value, f.name)), 1.0, abs_tol=1e-6):
                raise SeteVSRError(f"{stage.name}.{f.name} must sum to 1, got {getattr(value, f.name)}")
    if not math.isclose(sum(cfg.final_interpolation_probs), 1.0, abs_tol=1e-6):
        raise SeteVSRError(f"final_interpolation_probs must sum to 1, got {cfg.final_interpolation_probs}")
    for names in (cfg.resize1.interpolations, cfg.resize2.interpolations, cfg.final_interpolations):
        unknown = set(names) - set(INTERPOLATIONS)
        if unknown:
            raise SeteVSRError(f"unknown interpolation(s) {sorted(unknown)}; choose from {sorted(INTERPOLATIONS)}")


class RealBasicVSRDegradation:
    """The RealBasicVSR degradation as a callable: ``lr = degradation(clip, seed)``.

    Args:
        config: every parameter; defaults are RealBasicVSR's REDS training values
            with a 64x64 output (for 256x256 crops).

    ``__call__(clip, rng)``: ``clip`` ``(T, H, W, 3)`` RGB, ``uint8`` or float in
    ``[0, 1]``; ``rng`` an int seed, a ``numpy`` ``Generator``/``SeedSequence``
    or ``None`` (fresh entropy). Returns float32 ``(T, h, w, 3)`` in ``[0, 255]``
    (integer-valued when ``config.quantize``), ``(h, w)`` = ``config.target_size``
    or ``(H // scale, W // scale)``. The same seed gives the same clip.
    Instances are picklable, so they run inside ``DataLoader`` workers.
    """

    def __init__(self, config: RealBasicVSRConfig | None = None):
        self.config = config or RealBasicVSRConfig()
        _check_config(self.config)
        names = set(self.config.video1.codecs) | set(self.config.video2.codecs)
        self.encoders = {name: resolve_encoder(name) for name in sorted(names)}

    def __call__(
        self,
        clip: np.ndarray,
        rng: int | np.random.Generator | np.random.SeedSequence | None = None,
        sharpened: np.ndarray | None = None,
    ) -> np.ndarray:
        return self.degrade(clip, rng, sharpened)[0]

    def degrade(
        self,
        clip: np.ndarray,
        rng: int | np.random.Generator | np.random.SeedSequence | None = None,
        sharpened: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[dict]]:
        """Like ``__call__``, and also returns the record of every stage in order.

        Each record is a dict with ``stage`` (name), ``applied`` and what was drawn
        (per-frame arrays for walked parameters, e.g. ``sigma_x``, ``quality``).
        ``sharpened``: the clip's :func:`unsharp_mask` with ``config.usm`` (float32 ``(T, H, W, 3)`` on the 0-255
        scale) when the caller has it already (a training dataset's ``"hr_usm"``); it is used instead of sharpening
        the clip again, which gives the same result.
        """
        clip = np.asarray(clip)
        if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] < 1:
            raise SeteVSRError(f"the degradation expects a clip of shape (T, H, W, 3), got {clip.shape}")
        if not (clip.dtype == np.uint8 or np.issubdtype(clip.dtype, np.floating)):
            raise SeteVSRError(f"the degradation expects uint8 or float frames, got {clip.dtype}")
        cfg = self.config
        rng = np.random.default_rng(rng)
        target = tuple(cfg.target_size) if cfg.target_size else (clip.shape[1] // cfg.scale, clip.shape[2] // cfg.scale)
        if min(target) < 1:
            raise SeteVSRError(f"frames of {clip.shape[1]}x{clip.shape[2]} are too small for x{cfg.scale}")

        to_255 = 1.0 if clip.dtype == np.uint8 else 255.0
        frames = [np.asarray(f, dtype=np.float32) * np.float32(to_255) for f in clip]
        records: list[dict] = []

        def run(name: str, result: tuple[Frames, dict]) -> Frames:
            records.append({"stage": name, **result[1]})
            return result[0]

        if cfg.sharpen_input:
            if sharpened is None:
                sharpened = [unsharp_mask(f, cfg.usm) for f in frames]
            elif np.shape(sharpened) != clip.shape:
                raise SeteVSRError(f"the sharpened clip is {np.shape(sharpened)}, the clip {clip.shape}")
            frames = run("usm", (list(sharpened), {"applied": True}))
            # Released as soon as used, as before: the codec stages were seen to give other output for the same
            # frames when the memory layout around them changed (6 of 30 same-seed calls while this list lived on).
            del sharpened
        for order in ("1", "2"):
            frames = run(f"blur{order}", random_blur(frames, getattr(cfg, f"blur{order}"), rng, cfg.redraw_beta))
            frames = run(f"resize{order}", random_resize(frames, getattr(cfg, f"resize{order}"), rng))
            frames = run(f"noise{order}", random_noise(frames, getattr(cfg, f"noise{order}"), rng, cfg.poisson_formula))
            frames = run(f"jpeg{order}", random_jpeg(frames, getattr(cfg, f"jpeg{order}"), rng, cfg.jpeg_rgb_as_bgr))
            if order == "1":
                frames = run("video1", random_video_compression(frames, cfg.video1, rng, self.encoders))

        video_first = not cfg.shuffle_final or rng.uniform() < 0.5
        for group in ("video", "resize_sinc") if video_first else ("resize_sinc", "video"):
            if group == "video":
                frames = run("video2", random_video_compression(frames, cfg.video2, rng, self.encoders))
            else:
                resized = resize_to(frames, target, cfg.final_interpolations, cfg.final_interpolation_probs, rng)
                frames = run("final_resize", resized)
                frames = run("final_sinc", random_blur(frames, cfg.final_sinc, rng, cfg.redraw_beta))

        lr = np.clip(np.stack(frames), 0, 255)
        if cfg.quantize:
            lr = np.rint(lr)
        return lr.astype(np.float32), records


def degrade_full_frames(
    frames: np.ndarray, seed: int, scale: int = 4, config: RealBasicVSRConfig | None = None
) -> np.ndarray:
    """Fixed real-world LR of a whole clip for evaluation (``PROTOCOLS.md`` 1.6): ``uint8 (T, H//scale, W//scale, 3)``.

    ``frames``: ``(T, H, W, 3)`` RGB ``uint8`` (or float in ``[0, 1]``), full frames, no
    crop. Runs the RealBasicVSR pipeline once with ``seed``, with the final
    resize going to ``(H // scale, W // scale)`` instead of 64x64 and without
    unsharp masking of the input (the test GT is the plain frame, as in
    MGLD-VSR), unless ``config`` says otherwise (its ``target_size`` and
    ``scale`` are replaced). Holds the clip in float32 memory
    (about 1.1 GB for 100 frames of 720x1280).
    """
    base = config or RealBasicVSRConfig(sharpen_input=False)
    degradation = RealBasicVSRDegradation(replace(base, target_size=None, scale=scale))
    return _to_uint8(degradation(frames, seed))
