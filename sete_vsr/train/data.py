"""What the training loops read: clips of the config's data, or the latent cache filled from them.

* :func:`build_train_dataset`, :func:`load_validation_clip`: the seeded training clips of ``config.data`` and the
  fixed validation clip; :func:`collate_clips` stacks items into batches;
* :func:`open_cache`: the latent cache of a stage-1/2 run (filled by :mod:`sete_vsr.train.cache`), checked against
  the config (:data:`CACHE_KEYS`) and, once the pipeline is loaded, against its encoder weights
  (:func:`check_cache_encoders`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SeteVSRError
from .config import DATA_DRAW_KEYS, TrainConfig, flatten_config

logger = logging.getLogger(__name__)

# Config keys that decide which items the cache holds (the clips drawn, their crops, degradations and targets);
# training checks them against the run's config.
CACHE_KEYS = DATA_DRAW_KEYS
FILL_COMMAND = "python -m sete_vsr.train.cache CONFIG [key=value ...] data.cache_dir=DIR --passes N"


# ---------------------------------------------------------------------------------------------------------------- clips


def _classic_degradation(frames: np.ndarray, rng: np.random.Generator, name: str) -> np.ndarray:
    """A deterministic BI/BD degradation in the dataset's ``(frames, rng) -> lr`` form."""
    from ..data.degradations import degrade

    return degrade(frames, name)


def _degradation(name: str):
    """The dataset's ``degradation`` argument for a config name (``None``: RealBasicVSR's defaults)."""
    return None if name == "realbasicvsr" else functools.partial(_classic_degradation, name=name)


def training_degradation(config: TrainConfig) -> str:
    """How a run's LR frames are made: ``data.degradation``; ``BI`` in the VAE stage, which only reads the HR clips (a
    cheap deterministic LR instead of the second-order degradation); ``paired`` for given LR frames."""
    if config.data.type == "paired":
        return "paired"
    return "BI" if config.stage == "vae" else config.data.degradation


def build_train_dataset(config: TrainConfig, use_cache: bool = True):
    """The training clips of ``config.data``, seeded by ``config.seed`` (draws depend on ``(seed, epoch, index)``).

    With ``data.cache_dir`` (and ``use_cache``) the items come from the latent cache instead, checked against the
    config (:func:`open_cache`). Stages 1 and 2 also get ``"hr_usm"`` when ``data.usm_gt``.

    Raises:
        SeteVSRError: no ``data.root``, a missing folder, no usable clip in it, or a cache that does not match.
    """
    from ..data.benchmark_clips import REDS4_CLIPS
    from ..data.train_datasets import FrameFolderDataset, PairedFolderDataset, REDSDataset, VideoFolderDataset

    data = config.data
    if use_cache and data.cache_dir is not None:
        return open_cache(config)
    if data.root is None:
        raise SeteVSRError("data.root is required: the folder of training clips")
    for key, root in (("data.root", data.root), ("data.lr_root", data.lr_root)):
        if root is not None and not Path(root).exists():
            raise SeteVSRError(f"dataset path {key}={root} does not exist")
    exclude = data.exclude if data.exclude is not None else (REDS4_CLIPS if data.type == "reds" else ())
    common = {"num_frames": data.num_frames, "crop_size": data.crop_size, "augment": data.augment, "seed": config.seed}
    common["sharpened_hr"] = data.usm_gt and config.stage != "vae"
    if data.type == "paired":
        if data.lr_root is None:
            raise SeteVSRError("data.type=paired needs data.lr_root (LR frames) next to data.root (HR frames)")
        return PairedFolderDataset(data.lr_root, data.root, exclude=exclude, **common)
    degradation = _degradation(training_degradation(config))
    dataset_cls = {"videos": VideoFolderDataset, "reds": REDSDataset}.get(data.type, FrameFolderDataset)
    return dataset_cls(data.root, degradation=degradation, exclude=exclude, **common)


def load_validation_clip(config: TrainConfig) -> dict[str, Any] | None:
    """The fixed validation item (``"hr"``/``"lr"`` `(F, 3, H, W)` in [-1, 1]); ``None`` without ``validation.root``."""
    from ..data.train_datasets import FrameFolderDataset

    validation = config.validation
    if validation.root is None:
        return None
    if not Path(validation.root).exists():
        raise SeteVSRError(f"validation.root={validation.root} does not exist")
    dataset = FrameFolderDataset(
        validation.root,
        validation.num_frames,
        crop_size=validation.crop_size,
        degradation=_degradation(validation.degradation),
        augment=False,
        seed=validation.seed,
    )
    names = [clip.name for clip in dataset.clips]
    if validation.clip is not None and validation.clip not in names:
        raise SeteVSRError(f"validation.clip={validation.clip} not found in {validation.root} (clips: {names[:10]})")
    return dataset[names.index(validation.clip) if validation.clip is not None else 0]


def collate_clips(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack the tensors of dataset items (``"hr"``, ``"lr"``, ``"hr_usm"`` or cached ones) into `(B, F, ...)`, and
    their dataset ``"index"`` (when they have one) into `(B,)`, which keys each clip's draws in training."""
    keys = [key for key, value in items[0].items() if torch.is_tensor(value)]
    batch = {key: torch.stack([item[key] for item in items]) for key in keys}
    if "index" in items[0]:
        batch["index"] = torch.tensor([item["index"] for item in items])
    return batch


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """`(F, 3, H, W)` in [-1, 1] -> `(F, H, W, 3)` uint8."""
    return ((frames.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


# --------------------------------------------------------------------------------------------------------- latent cache


def cache_config(config: TrainConfig) -> dict:
    """The values of :data:`CACHE_KEYS` in ``config``."""
    flat = flatten_config(dataclasses.asdict(config))
    return {key: flat[key] for key in CACHE_KEYS}


def encoder_fingerprint(vae, semantic_encoder, grid_size: int) -> str:
    """SHA-256 of the weights (and the settings) that make the cached tensors: the VAE encoder, SAM2, the token grid."""
    digest = hashlib.sha256()
    settings = (
        f"scaling_factor={vae.config.scaling_factor};image_size={semantic_encoder.config.image_size};"
        f"grid={grid_size}"
    )
    digest.update(settings.encode())
    modules = {"vae.encoder": vae.encoder, "vae.quant_conv": vae.quant_conv, "semantic_encoder": semantic_encoder}
    for prefix, module in modules.items():
        if module is None:
            continue
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(f"{prefix}.{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def open_cache(config: TrainConfig):
    """The training dataset read from ``config.data.cache_dir``, after checking it was filled for this config.

    Raises:
        SeteVSRError: a VAE-stage config, no cache in the folder, or a cache made with other :data:`CACHE_KEYS`.
    """
    from ..data.latent_cache import INDEX, CachedEpochDataset

    cache_dir = Path(config.data.cache_dir)
    if config.stage == "vae":
        raise SeteVSRError("data.cache_dir is for stages 1 and 2 (the VAE stage runs its encoder on HR pixels)")
    if not (cache_dir / INDEX).is_file():
        raise SeteVSRError(f"data.cache_dir={cache_dir} holds no latent cache; fill it first: {FILL_COMMAND}")
    dataset = CachedEpochDataset(cache_dir)
    saved, wanted = dataset.metadata.get("config", {}), cache_config(config)
    different = [key for key in CACHE_KEYS if saved.get(key) != wanted[key]]
    if different:
        details = ", ".join(f"{key}: cache {saved.get(key)!r}, config {wanted[key]!r}" for key in different)
        raise SeteVSRError(
            f"the latent cache in {cache_dir} does not match the config ({details}); fill another one: {FILL_COMMAND}"
        )
    missing = {"hr_moments", "lr_latents", "semantic_embeds"} - set(dataset.index.get("encoders", []))
    if missing:
        raise SeteVSRError(f"the cache in {cache_dir} is not a training latent cache (no {', '.join(sorted(missing))})")
    if dataset.metadata.get("data_root") != config.data.root:
        logger.warning(
            f"the latent cache in {cache_dir} was made from data.root={dataset.metadata.get('data_root')} "
            f"(this config: {config.data.root}); the cache is what is trained on"
        )
    return dataset


def check_cache_encoders(dataset, vae, semantic_encoder, grid_size: int) -> None:
    """Refuse a cache made with other VAE or SAM2 weights (or token grid) than those of the starting pipeline."""
    if dataset.metadata.get("encoders") != encoder_fingerprint(vae, semantic_encoder, grid_size):
        raise SeteVSRError(
            f"the latent cache in {dataset.cache_dir} was made with other VAE/SAM2 weights than those of "
            f"pretrained_model (it was made from {dataset.metadata.get('pretrained_model')}); fill another one: "
            f"{FILL_COMMAND}"
        )
