"""``accelerate launch -m sete_vsr.plugins.train_semantic_lens CONFIG.yaml [key=value ...]``: BasicVSR + Semantic Lens.

Starts from an official BasicVSR checkpoint (``base``, a registry name), inserts the Semantic Lens blocks (IMAGE and
SPACE in both propagation branches, :class:`~sete_vsr.plugins.basicvsr_semantic_lens.BasicVSRSemanticLens`; they
start as the identity, so step 0 is the base network) and trains either everything (``tuning: full``, as the paper
fine-tunes the whole Pixel Enhancer with the semantic extractor frozen) or only the new blocks (``tuning:
efficient``). The frozen SAM2 prior (in place of the paper's X-Decoder, see :mod:`sete_vsr.plugins.semantic_lens`)
makes the masks and image embeddings of the LR frames in every step, as the ``+semantic-lens`` methods do at test
time. HR clips come from ``data.root`` without the REDS4 and Vid4 test clips unless ``data.exclude`` says otherwise;
the LR is made with the degradation the base was trained for (BI or BD, ``BaselineSpec.degradation``). The run ends
with ``OUTPUT_DIR/semantic_lens_model.safetensors``, which ``load_method("<base>+semantic-lens",
semantic_lens_weights=...)`` loads (its metadata: ``base``, the prior ``sam2``, ``points_per_side`` and
``num_masks``, ``tuning``, ``degradation``, ``first_step``, ``steps``, ``config``), next to the resolved
``training_config.yaml``. Each ``key=value`` overrides one config value (nested keys with dots); errors the user can
fix are printed as one line and exit with status 2.

Settings (``configs/semantic_lens_basicvsr.yaml``) from the paper: 5 frames per clip, 64 x 64 LR patches, AdamW
with betas (0.9, 0.99) and weight decay 1e-4, learning rate 2e-4, Charbonnier loss, 2 clips on each of 4 GPUs; the
rest "as the released code of the baseline network", BasicVSR's: SPyNet at 1/8 of the learning rate, cosine
schedule over 300K iterations (the paper states no iteration count).

The data, the loop, checkpoints and resuming are :mod:`sete_vsr.plugins.training`'s, shared with the SEEM trainer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from accelerate.logging import get_logger

from ..errors import SeteVSRError
from ..train.config import load_dataclass_config, run_config_entry
from .training import (
    PluginTrainConfig,
    check_config,
    fit,
    make_accelerator,
    parameter_groups,
    prepare_run,
    run_metadata,
    weight_dtype,
)

logger = get_logger(__name__, log_level="INFO")

WEIGHTS_NAME = "semantic_lens_model.safetensors"
# Keys that change what a checkpoint holds: a run resumes only from a checkpoint written with the same values.
RESUME_KEYS = ("base", "arch_kwargs", "tuning", "num_masks", "attn_dim", "window_size")


@dataclass
class SemanticLensTrainConfig(PluginTrainConfig):
    """One Semantic Lens fine-tuning run: the shared settings (:class:`~sete_vsr.plugins.training.PluginTrainConfig`;
    ``tuning: efficient`` trains GPS, ISEE and IMAGE only) and the blocks' own.

    Attributes:
        num_masks: SAM2 mask channels of the prior (at most ``points_per_side**2`` masks are found).
        attn_dim: ``D`` of the ISEE and IMAGE attentions.
        window_size: IMAGE's search window ``k`` (odd).
    """

    output_dir: str = "semantic-lens-basicvsr"
    num_masks: int = 64
    attn_dim: int = 64
    window_size: int = 7


def load_semantic_lens_config(path: str | Path | None, overrides: list[str] = ()) -> SemanticLensTrainConfig:
    """Read a YAML config, apply ``key=value`` overrides and check the values (data and models are not opened).

    Raises:
        SeteVSRError: missing file, unknown key, malformed override, wrong type or a value out of range.
    """
    config = load_dataclass_config(SemanticLensTrainConfig, path, overrides)
    check_config(config, {"num_masks": config.num_masks, "attn_dim": config.attn_dim})
    if config.window_size < 1 or config.window_size % 2 == 0:
        raise SeteVSRError(f"window_size must be a positive odd number, got {config.window_size}")
    return config


def train(config: SemanticLensTrainConfig) -> None:
    """Fine-tune ``config.base`` with the Semantic Lens blocks and save ``semantic_lens_model.safetensors``."""
    from .basicvsr_semantic_lens import (
        BasicVSRSemanticLens,
        SemanticLensWithSAM2,
        save_semantic_lens_weights,
    )
    from .sam_prior import Sam2PointGridMasks, _unavailable_weights_message
    from .semantic_lens import semantic_lens_parameters

    # 1. Everything that can be wrong with the inputs is checked before SAM2 is loaded and training starts.
    run = prepare_run(config, ("basicvsr",), "Semantic Lens", RESUME_KEYS)
    accelerator = make_accelerator(config)

    # 2. Models: the frozen SAM2 prior in the mixed-precision dtype, the blocks inserted into the base network (its
    # trained weights stay fp32), as wide as SAM2's embeddings.
    try:
        semantics = Sam2PointGridMasks.from_pretrained(
            config.sam2, device=accelerator.device, points_per_side=config.points_per_side, num_masks=config.num_masks
        )
    except OSError as err:
        raise SeteVSRError(_unavailable_weights_message(config.sam2, "transformers", err)) from err
    semantics.model.to(dtype=weight_dtype(accelerator))
    sam2 = str(Path(config.sam2).absolute()) if Path(config.sam2).is_dir() else config.sam2  # recorded for the method
    lens = BasicVSRSemanticLens.from_basicvsr(
        run.base,
        semantic_dim=int(semantics.model.config.vision_config.fpn_hidden_size),
        attn_dim=config.attn_dim,
        window_size=config.window_size,
    )
    groups = parameter_groups(lens, config, semantic_lens_parameters)
    model = SemanticLensWithSAM2(lens, semantics).train()
    trained, total = sum(p.numel() for g in groups for p in g["params"]), sum(p.numel() for p in model.parameters())
    logger.info(f"{config.tuning} tuning of {config.base} + Semantic Lens: {trained:,} of {total:,} parameters")

    # 3. The loop: LR clips (the base's degradation) -> SAM2 masks and embeddings (inside the model) -> SR -> loss.
    model, first_step, global_step = fit(config, accelerator, model, groups, run, "sete-vsr-semantic-lens")

    # 4. The whole network (every tensor, fp32) and what it was trained with, for SemanticLensMethod.
    if accelerator.is_main_process:
        metadata = run_metadata(config, run, sam2, first_step, global_step, num_masks=config.num_masks)
        path = save_semantic_lens_weights(model.model, Path(config.output_dir) / WEIGHTS_NAME, metadata)
        logger.info(f"saved the {config.base} + Semantic Lens network to {path}")
    accelerator.end_training()


def main(argv: list[str] | None = None) -> int:
    return run_config_entry(
        "sete_vsr.plugins.train_semantic_lens", __doc__, load_semantic_lens_config, train, argv, SemanticLensTrainConfig
    )


if __name__ == "__main__":
    sys.exit(main())
