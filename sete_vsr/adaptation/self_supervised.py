"""Self-supervised test-time adaptation of a VSR network (Yoo & Kim, paper 004, Algorithm 1).

The network's own first restoration ``{Y_t}`` of the test clip provides the training pairs: a
random patch ``Y_p`` of a random restored frame is shrunk by a random factor ``s`` in
``[0.8, 0.95]`` (pseudo target ``y``, which carries the extra detail of larger recurring
patches, Sec. 3.2) and ``y`` is shrunk x4 (pseudo input ``y_LR``). The network is fine-tuned
with MSE and Adam on such pairs, then run on the whole clip again.

What the paper fixes, and what is chosen here where it is silent (its supplementary material,
which holds patch size, batch size and learning rate, is not available):

=====================  ===========================================  ==================================
setting                paper 004                                    here (default)
=====================  ===========================================  ==================================
lines 3-4              crop ``Y_p``, then downscale it to ``y``     same: a ``round(P/s)`` square crop
                                                                    resized to ``P x P``
factor ``s`` (line 4)  random in [0.8, 0.95] per pseudo pair        uniform in [0.8, 0.95]
line 5                 ``y`` downscaled x4 with the known kernel    the degradation the network was
                                                                    trained for (its registry entry,
                                                                    ``BaselineSpec.degradation``): BI
                                                                    (MATLAB bicubic x1/4, uint8) or
                                                                    BD (13 x 13 Gaussian, sigma 1.6);
                                                                    BI for networks outside the
                                                                    registry; a kernel the user names
                                                                    over either. Real-world networks
                                                                    (RealBasicVSR) have no known
                                                                    kernel: refused unless one is named
lines 6-7              MSE, Adam                                    MSE, Adam (default betas),
                                                                    constant learning rate
iterations             1K on Vid4, 3K on REDS4                      sliding window (EDVR): 1000;
                                                                    recurrent: 10 (sweep, see below)
learning rate          in the supplementary                         1e-5 (authors' public code)
batch size             in the supplementary                         sliding window: 4 (authors' public
                                                                    code); recurrent: 1 (sweep)
target side ``P``      in the supplementary                         256 (authors' public code)
frames per sample      not stated ("sample a frame")                0: the whole clip (sweep; the
                                                                    authors' code takes 7, Vimeo-90K)
frozen parameters      none                                         ``spynet`` (sweep; no network but
                                                                    the recurrent ones has a SPyNet)
=====================  ===========================================  ==================================

Video networks need neighbouring frames, so line 2 samples a frame index ``t`` and the pseudo
sample is the short sub-clip around it, every frame cropped at the same place and resized with
the same ``s`` (motion between frames is kept):

* sliding-window networks (a ``num_frame`` attribute, e.g. EDVR): the ``num_frame`` frames
  centred on ``t`` with BasicSR's ``reflection_circle`` padding at the clip ends, exactly the
  windows they see at test time; the loss is on the centre frame, their only output;
* recurrent networks (BasicVSR, BasicVSR++, ...): ``num_frames`` consecutive frames containing
  ``t`` (centred where the clip allows), the loss on every output frame, since each has its own
  pseudo target and costs nothing more to supervise. ``num_frames=0`` takes the whole clip: every
  sample holds all ``T`` frames, cropped at one random place (``t`` is still drawn, so the random
  stream is the same for every ``num_frames``), and the network propagates over as many frames as
  when it restores the clip.

The recurrent defaults are the best setting of ``benchmarks/adaptation_sweep.py`` for the official BasicVSR
(learning rate x frames per sample x frozen parts x iterations on Vid4 city, batch 1, CPU): 7-frame samples
and more iterations lowered PSNR, whole-clip samples with SPyNet fixed and 10 iterations gave +0.035 dB Y-PSNR
on the first 12 frames of each Vid4 clip (README, "Test-time adaptation"). ``iterations`` and ``batch_size``
left ``None`` take the network kind's value (:data:`KIND_DEFAULTS`).

The network stays in ``eval`` mode while it is tuned: only its weights change, never
normalisation statistics re-estimated from a few pseudo patches (the baselines have none).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..baselines.runners import frame_window_indices
from ..data.degradations import BI, SCALE, Downscaling
from ..data.imresize import imresize
from ..errors import SeteVSRError


#: ``iterations`` and ``batch_size`` that :class:`AdaptationConfig` leaves ``None``, by network kind: the paper's Vid4
#: setting for sliding-window networks (EDVR), the best of the CPU sweep for recurrent ones (BasicVSR, ...).
KIND_DEFAULTS = {
    "sliding_window": {"iterations": 1000, "batch_size": 4},
    "recurrent": {"iterations": 10, "batch_size": 1},
}


@dataclass(frozen=True)
class AdaptationConfig:
    """Settings of Algorithm 1 (and 2); see the module docstring for where each default comes from.

    Attributes:
        iterations: optimisation steps (Algorithm 1, line 1); ``None``: by network kind (:data:`KIND_DEFAULTS`,
            1000 for EDVR, 10 for recurrent networks).
        learning_rate: Adam learning rate (line 7).
        batch_size: pseudo samples per step; ``None``: by network kind (4 for EDVR, 1 for recurrent networks).
        patch_size: side ``P`` of the pseudo target ``y`` in HR pixels, a multiple of 4; the
            pseudo input is ``P/4`` pixels wide (BasicVSR's flow network needs ``P >= 256``).
        num_frames: frames per pseudo sample for recurrent networks, ``0`` for the whole clip
            (every frame of the clip in each sample, the length a recurrent network propagates over
            when it restores the clip); clips shorter than ``num_frames`` are taken whole.
            Sliding-window networks always use their ``num_frame``.
        scale_range: the range of the random downscaling factor ``s`` (line 4).
        freeze: parameter-name prefixes to keep fixed (e.g. ``("spynet",)``); parameters with
            ``requires_grad=False`` stay fixed too. Empty: every parameter adapts, as in the paper. The default
            keeps a recurrent network's flow estimator (SPyNet) fixed; other networks have none.
        seed: seeds the pseudo-pair sampling; with the same seed, device and thread count the
            adapted weights are identical.
        degradation: line 5's x4 downscaling; ``None``: the network's own (:func:`line5_downscaling`), set when
            Algorithm 1 or 2 starts.
    """

    iterations: int | None = None
    learning_rate: float = 1e-5
    batch_size: int | None = None
    patch_size: int = 256
    num_frames: int = 0
    scale_range: tuple[float, float] = (0.8, 0.95)
    freeze: tuple[str, ...] = ("spynet",)
    seed: int = 0
    degradation: Downscaling | None = None

    def __post_init__(self):
        low, high = self.scale_range
        if not 0 < low <= high <= 1:
            raise SeteVSRError(f"scale_range must satisfy 0 < low <= high <= 1, got {self.scale_range}")
        if self.patch_size <= 0 or self.patch_size % SCALE:
            raise SeteVSRError(f"patch_size must be a positive multiple of {SCALE}, got {self.patch_size}")
        if self.iterations is not None and self.iterations < 0:
            raise SeteVSRError(f"iterations must be 0 or more, got {self.iterations}")
        if self.batch_size is not None and self.batch_size < 1:
            raise SeteVSRError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.num_frames < 0:
            raise SeteVSRError(f"num_frames must be 0 (the whole clip) or more, got {self.num_frames}")
        if self.learning_rate <= 0:
            raise SeteVSRError(f"learning_rate must be positive, got {self.learning_rate}")

    def for_network(self, module: nn.Module) -> AdaptationConfig:
        """This config with ``iterations`` and ``batch_size`` left ``None`` set for ``module``'s kind."""
        kind = KIND_DEFAULTS["sliding_window" if is_sliding_window(module) else "recurrent"]
        return replace(self, **{k: v for k, v in kind.items() if getattr(self, k) is None})


def line5_downscaling(base: str | None, kernel: str | Downscaling | None = None) -> Downscaling:
    """Line 5's x4 downscaling for a network started from the registered baseline ``base``.

    Args:
        base: a registry name, or ``None`` for a network outside the registry.
        kernel: a kernel the user names (``"bicubic"``, ``"gaussian"``, ``"gaussian:SIGMA"``, see
            :meth:`~sete_vsr.data.degradations.Downscaling.parse`), used whatever ``base`` is.

    Returns:
        ``kernel``; else the degradation ``base`` was trained for; else (no ``base``) BI.

    Raises:
        SeteVSRError: ``base`` was trained on real-world degradations (no known kernel) and no ``kernel`` is named,
            or a kernel that cannot be parsed.
    """
    if kernel is not None:
        return kernel if isinstance(kernel, Downscaling) else Downscaling.parse(kernel)
    if base is None:
        return BI
    from ..baselines.registry import get_spec

    spec = get_spec(base)
    if spec.degradation is None:
        raise SeteVSRError(
            f"{base} was trained on real-world degradations, so no known kernel makes its pseudo inputs "
            "(Algorithm 1, line 5): name one with kernel=bicubic, kernel=gaussian or kernel=gaussian:SIGMA"
        )
    return spec.degradation


def is_sliding_window(module: nn.Module) -> bool:
    """True for networks that map ``num_frame`` LR frames to their centre HR frame (EDVR)."""
    return hasattr(module, "num_frame")


def check_frame_size(config: AdaptationConfig, height: int, width: int) -> None:
    """Raise a :class:`SeteVSRError` unless ``height x width`` restored frames hold the largest crop (line 3)."""
    largest_crop = round(config.patch_size / config.scale_range[0])
    if largest_crop > min(height, width):
        raise SeteVSRError(
            f"frames of {width // SCALE}x{height // SCALE} LR pixels are too small for patch_size "
            f"{config.patch_size}: crops of up to {largest_crop} HR pixels are taken; lower patch_size"
        )


class PseudoPairSampler:
    """Lines 2-5 of Algorithm 1: pseudo input/target pairs from the restored frames.

    Args:
        restored: ``(T, 4H, 4W, 3)`` uint8 RGB, the initial restoration ``{Y_t}``.
        config: patch size, scale range, frames per sample, line 5's ``degradation`` (``None``: BI).
        window: frames per sample (``config.num_frames`` for recurrent networks, ``0`` taking the
            whole clip; ``num_frame`` for sliding-window ones).
        centre_only: return only the centre frame's target (sliding-window networks).
    """

    def __init__(self, restored: np.ndarray, config: AdaptationConfig, window: int, centre_only: bool):
        restored = np.asarray(restored)
        if restored.ndim != 4 or restored.shape[-1] != 3 or restored.dtype != np.uint8:
            raise SeteVSRError(f"restored frames must be (T, H, W, 3) uint8, got {restored.shape} {restored.dtype}")
        check_frame_size(config, *restored.shape[1:3])
        if window < 0 or (window == 0 and centre_only):
            raise SeteVSRError(f"a sample needs a window of at least 1 frame (0: the whole clip, recurrent), got {window}")
        self.restored = restored
        self.config = config
        self.window = window
        self.centre_only = centre_only
        self.degradation = config.degradation or BI

    def frame_indices(self, t: int) -> list[int]:
        """The frames of the sample drawn at frame ``t`` (see the module docstring)."""
        num_total = len(self.restored)
        if self.centre_only:
            return frame_window_indices(t, num_total, self.window, "reflection_circle")
        length = min(self.window, num_total) if self.window else num_total
        start = min(max(t - length // 2, 0), num_total - length)
        return list(range(start, start + length))

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One pseudo pair.

        Returns:
            ``(y_lr, y)``: ``y_lr`` ``(L, P/4, P/4, 3)`` uint8 and ``y`` ``(L, P, P, 3)`` uint8,
            or ``(P, P, 3)`` (centre frame) for sliding-window networks.
        """
        t = int(rng.integers(len(self.restored)))  # line 2: Y ~ {Y_t}
        frames = self.restored[self.frame_indices(t)]
        p = self.config.patch_size
        low, high = self.config.scale_range
        s = rng.uniform(low, high)
        # the crop side whose factor p / crop is nearest s and still in [low, high] (plain rounding could give
        # e.g. 256 / 269 = 0.9517 for s near 0.95); it fits: checked for the smallest s in __init__
        crop = min(max(round(p / s), math.ceil(p / high)), math.floor(p / low))
        top = int(rng.integers(frames.shape[1] - crop + 1))
        left = int(rng.integers(frames.shape[2] - crop + 1))
        patch = frames[:, top : top + crop, left : left + crop]  # line 3: Y_p
        target = imresize(patch, size=(p, p))  # line 4: y, downscaled by p/crop ~ s
        pseudo_input = self.degradation(target)  # line 5: y_LR
        if self.centre_only:
            target = target[len(target) // 2]
        return pseudo_input, target

    def batch(self, rng: np.random.Generator, batch_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """``batch_size`` pairs as float tensors in [0, 1]: ``(B, L, 3, P/4, P/4)`` and ``(B, L, 3, P, P)``
        (``(B, 3, P, P)`` for sliding-window networks)."""
        inputs, targets = zip(*(self.sample(rng) for _ in range(batch_size)))

        def to_tensor(arrays):
            return torch.from_numpy(np.stack(arrays)).to(device).movedim(-1, -3).float().div_(255.0)

        return to_tensor(inputs), to_tensor(targets)


def _trainable_parameters(module: nn.Module, freeze: tuple[str, ...]) -> list[tuple[str, nn.Parameter]]:
    return [
        (name, p)
        for name, p in module.named_parameters()
        if p.requires_grad and not any(name == f or name.startswith(f"{f}.") for f in freeze)
    ]


def adapt_module(
    module: nn.Module,
    restored: np.ndarray,
    config: AdaptationConfig = AdaptationConfig(),
    progress: bool = True,
    callback_on_step_end: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Lines 1-8 of Algorithm 1 (lines 1-8 of Algorithm 2 with a student): tune ``module`` in place.

    Args:
        module: a trainable VSR network on its device, ``(N, L, 3, h, w)`` RGB in [0, 1] ->
            ``(N, L, 3, 4h, 4w)`` (recurrent) or ``(N, 3, 4h, 4w)`` (with a ``num_frame``
            attribute: sliding window).
        restored: ``(T, 4H, 4W, 3)`` uint8, the initially restored frames ``{Y_t}`` (by
            ``module`` itself in Algorithm 1, by the teacher in Algorithm 2).
        config: hyperparameters and seed.
        progress: show a progress bar with the running loss.
        callback_on_step_end: called as ``callback(step, loss)`` after each update (``step`` from 1), with the
            network in ``eval`` mode and its tuned weights in place, e.g. to restore and score the clip after
            some of the steps (a run of N iterations scored at step k equals a run of k iterations: the sampling
            and the optimiser do not depend on the total).

    Returns:
        The MSE loss of each iteration (before its update).
    """
    config = config.for_network(module)
    params = _trainable_parameters(module, config.freeze)
    if not params:
        raise SeteVSRError("nothing to adapt: every parameter is frozen")
    sliding = is_sliding_window(module)
    sampler = PseudoPairSampler(restored, config, module.num_frame if sliding else config.num_frames, sliding)
    device = params[0][1].device
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam([p for _, p in params], lr=config.learning_rate)
    trainable = {id(p) for _, p in params}
    saved_flags = {name: p.requires_grad for name, p in module.named_parameters()}
    for p in module.parameters():
        p.requires_grad_(id(p) in trainable)  # no gradients for frozen parameters
    was_training = module.training
    module.eval()
    losses = []
    try:
        with tqdm(range(config.iterations), desc="adapt", unit="it", disable=not progress) as bar:
            for _ in bar:
                pseudo_input, target = sampler.batch(rng, config.batch_size, device)
                loss = F.mse_loss(module(pseudo_input), target)  # line 6: ||f(y_LR) - y||^2
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()  # line 7
                losses.append(loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.3e}")
                if callback_on_step_end is not None:
                    callback_on_step_end(len(losses), losses[-1])
    finally:
        for name, p in module.named_parameters():
            p.requires_grad_(saved_flags[name])
        module.train(was_training)
    return losses


@dataclass
class AdaptationResult:
    """What :func:`adapt` and :func:`~sete_vsr.adaptation.distillation.distill` return.

    Attributes:
        method: the adapted method (its ``model`` holds the adapted weights), ready for more clips.
        frames: ``(T, 4H, 4W, 3)`` uint8, the clip restored by the adapted network (line 9).
        initial_frames: ``(T, 4H, 4W, 3)`` uint8, the initial restoration ``{Y_t}``.
        losses: MSE of each iteration.
        config: the settings used.
        seconds: wall time of the ``"initial"`` pass (absent when given), the ``"adapt"`` loop and
            the ``"final"`` pass.
    """

    method: object
    frames: np.ndarray
    initial_frames: np.ndarray
    losses: list[float]
    config: AdaptationConfig
    seconds: dict[str, float]

    @property
    def model(self) -> nn.Module:
        return self.method.model


def as_method(method_or_module, device: str | torch.device | None = None, name: str = "module"):
    """A :class:`~sete_vsr.methods.VSRMethod` with a trainable ``model``.

    Args:
        method_or_module: a baseline method (has ``.model``) or a bare ``nn.Module``, wrapped
            as a sliding-window method when it has ``num_frame`` and as a recurrent one otherwise.
        device: device of a wrapped bare module.
        name: name of a wrapped bare module.
    """
    from ..baselines.runners import runner_class
    from ..method_options import runner_options

    if isinstance(method_or_module, nn.Module):
        arch = "edvr" if is_sliding_window(method_or_module) else "basicvsr"
        options = runner_options(arch)(device=None if device is None else str(device), progress=False)
        return runner_class(arch)(method_or_module, name, options)
    if not isinstance(getattr(method_or_module, "model", None), nn.Module):
        raise SeteVSRError(
            f"{getattr(method_or_module, 'name', method_or_module)!r} has no trainable torch network to adapt"
        )
    return method_or_module


def run_algorithm(method, lr_frames: np.ndarray, restored: np.ndarray | None, config: AdaptationConfig, progress: bool):
    """Restore (unless ``restored`` is given), adapt ``method.model`` on ``restored``, restore again (line 9).

    A ``config`` without ``degradation`` gets ``method``'s: the registered baseline's when ``method`` is one (by
    name), else BI (:func:`line5_downscaling`); the result's ``config`` says which.
    """
    from ..baselines.registry import BASELINES

    config = config.for_network(method.model)
    if config.degradation is None:
        config = replace(config, degradation=line5_downscaling(method.name if method.name in BASELINES else None))
    lr_frames = np.asarray(lr_frames)
    if lr_frames.ndim != 4 or lr_frames.shape[-1] != 3:
        raise SeteVSRError(f"expected low-resolution frames of shape (T, H, W, 3), got {lr_frames.shape}")
    check_frame_size(config, SCALE * lr_frames.shape[1], SCALE * lr_frames.shape[2])  # before any restoration
    seconds = {}
    start = time.perf_counter()
    if restored is None:
        restored = method(lr_frames)  # {Y_t} = f_theta({X_t})
        seconds["initial"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    losses = adapt_module(method.model, restored, config, progress)
    seconds["adapt"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    frames = method(lr_frames)  # line 9: {f_theta(X_t)} with the adapted parameters
    seconds["final"] = round(time.perf_counter() - start, 3)
    return AdaptationResult(method, frames, restored, losses, config, seconds)


def adapt(
    method_or_module,
    lr_frames: np.ndarray,
    config: AdaptationConfig | None = None,
    progress: bool = True,
    **overrides,
) -> AdaptationResult:
    """Algorithm 1 on one clip: restore, adapt on pseudo pairs, restore again with the adapted network.

    The network is adapted in place (``copy.deepcopy`` the method first to keep the original).

    Args:
        method_or_module: a baseline method (``load_method("basicvsr-vimeo-bi")``) or a bare
            trainable network (see :func:`as_method`).
        lr_frames: ``(T, H, W, 3)`` uint8 RGB low-resolution clip ``{X_t}``.
        config: settings; ``overrides`` (``iterations=``, ``seed=``, ...) replace its fields.
        progress: show progress bars.

    Returns:
        The adapted method, the final and initial frames, the losses and timings.

    Example:
        >>> result = adapt(load_method("basicvsr-vimeo-bi"), lr, iterations=300, seed=0)  # doctest: +SKIP
        >>> save_adapted_weights(result.model, "adapted.safetensors", base="basicvsr-vimeo-bi")  # doctest: +SKIP
    """
    method = as_method(method_or_module)
    method.progress = progress
    return run_algorithm(method, lr_frames, None, replace(config or AdaptationConfig(), **overrides), progress)


__all__ = [
    "AdaptationConfig",
    "AdaptationResult",
    "PseudoPairSampler",
    "adapt",
    "adapt_module",
    "as_method",
    "is_sliding_window",
    "line5_downscaling",
]
