"""The latent cache of a stage-1/2 run: the frozen encoders' outputs computed once, read instead of recomputed.

Fill it with the run's own config (the same file and overrides as the training command) plus ``data.cache_dir``::

    python -m sete_vsr.train.cache configs/stage1.yaml data.root=/data/REDS/train_sharp \\
        data.cache_dir=/data/cache/stage1 --passes 8 --dtype fp16
    accelerate launch -m sete_vsr.train configs/stage1.yaml data.root=/data/REDS/train_sharp \\
        data.cache_dir=/data/cache/stage1

or from Python, ``fill_cache(load_config("configs/stage1.yaml", [...]), passes=8)``. For each of ``passes`` epochs
and each training clip, the cache stores what :func:`~sete_vsr.train.losses.diffusion_loss` would compute from the
frozen VAE and SAM2 for the clip drawn in that epoch (same crop, flips and degradation, since the training data are
seeded by ``(seed, epoch, index)``): ``hr_moments`` (the VAE posterior of the GT, or of the unsharp-masked GT with
``data.usm_gt``; the latent itself is still drawn at training time), ``lr_latents`` and ``semantic_embeds``. Pixels
are not stored. Epoch ``e`` of training reads pass ``e % passes``: the first ``passes`` epochs are those of a run
without the cache; later ones reuse the stored draws (less variety of crops and degradations).

A cache records the config keys that shape its items (:data:`~sete_vsr.train.data.CACHE_KEYS`) and a fingerprint of
the encoder weights; training (:func:`~sete_vsr.train.data.open_cache`) refuses a cache that differs in either, naming
the keys. Data paths are recorded but not compared (a dataset may be moved), and the training frames are not needed
once the cache is filled.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from ..errors import SeteVSRError
from ..options import DTYPES, default_device, torch_dtype
from .config import TrainConfig
from .data import build_train_dataset, cache_config, encoder_fingerprint

logger = logging.getLogger(__name__)



def fill_cache(
    config: TrainConfig,
    passes: int = 1,
    dtype: str = "fp32",
    device: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the latent cache of ``config`` (stage 1 or 2) to ``config.data.cache_dir``; return the folder.

    Args:
        config: the training config (``data.cache_dir`` set).
        passes: epochs of draws stored.
        dtype: ``fp32``, ``fp16`` or ``bf16``: the dtype the encoders run in and the tensors are stored in.
        device: where the encoders run; CUDA when available by default.
        overwrite: replace an existing cache.

    Raises:
        SeteVSRError: no ``data.cache_dir``, a VAE-stage config, an existing cache (without ``overwrite``) or
            any dataset error of :func:`~sete_vsr.train.data.build_train_dataset`.
    """
    from ..data.latent_cache import precompute
    from ..pipelines.pipeline import SeTeVSRPipeline
    from ..models.lr_inputs import encode_lr_latents, encode_target, semantic_embeddings

    if config.data.cache_dir is None:
        raise SeteVSRError("set data.cache_dir=DIR: the folder the cache is written to")
    if config.stage == "vae":
        raise SeteVSRError("the latent cache is for stages 1 and 2")
    if passes < 1:
        raise SeteVSRError(f"passes must be at least 1, got {passes}")
    store_dtype = torch_dtype(dtype)
    if (Path(config.data.cache_dir) / "index.json").exists() and not overwrite:
        raise SeteVSRError(f"a cache already exists in {config.data.cache_dir} (--overwrite replaces it)")
    dataset = build_train_dataset(config, use_cache=False)
    device = torch.device(device or default_device())
    pipeline = SeTeVSRPipeline.from_pretrained(config.pretrained_model)
    vae, semantic_encoder = pipeline.vae.eval(), pipeline.semantic_encoder.eval()
    grid = pipeline.unet.semantic_grid_size
    fingerprint = encoder_fingerprint(vae, semantic_encoder, grid)
    vae.to(device, store_dtype)
    semantic_encoder.to(device, store_dtype)
    target = "hr_usm" if config.data.usm_gt else "hr"
    encoders = {
        "hr_moments": lambda item: encode_target(vae, item[target]).to(store_dtype),
        "lr_latents": lambda item: encode_lr_latents(vae, item["lr"]).to(store_dtype),
        "semantic_embeds": lambda item: semantic_embeddings(semantic_encoder, item["lr"], grid).to(store_dtype),
    }
    metadata = {
        "config": cache_config(config),
        "encoders": fingerprint,
        "pretrained_model": config.pretrained_model,
        "data_root": config.data.root,
        "data_lr_root": config.data.lr_root,
        "dtype": dtype,
    }
    logger.info(f"caching {passes} pass(es) of {len(dataset)} clips to {config.data.cache_dir} on {device}")
    return precompute(
        dataset,
        encoders,
        config.data.cache_dir,
        keep=(),
        passes=passes,
        overwrite=overwrite,
        metadata=metadata,
        num_workers=config.data.num_workers,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m sete_vsr.train.cache CONFIG [key=value ...] [--passes N] [--dtype fp16] [--overwrite]``."""
    parser = argparse.ArgumentParser(
        prog="python -m sete_vsr.train.cache", description="Fill the latent cache of a stage-1/2 training config."
    )
    parser.add_argument("config", help="the training YAML config")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, as for training (set data.cache_dir)")
    parser.add_argument("--passes", type=int, default=1, help="epochs of draws stored (default 1)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="encoder and storage dtype")
    parser.add_argument("--device", default=None, help="encoder device (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing cache")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    try:
        from .config import load_config

        config = load_config(args.config, args.overrides)
        out = fill_cache(config, passes=args.passes, dtype=args.dtype, device=args.device, overwrite=args.overwrite)
    except SeteVSRError as err:
        print(f"sete_vsr.train.cache: error: {err}", file=sys.stderr)
        return 2
    print(f"latent cache written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
