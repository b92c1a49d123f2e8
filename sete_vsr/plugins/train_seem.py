"""``accelerate launch -m sete_vsr.plugins.train_seem CONFIG.yaml [key=value ...]``: fine-tune BasicVSR or EDVR + SEEM.

Starts from an official checkpoint (``base``, a registry name), inserts SEEM (SEEM paper, Sec. 3.4-3.5) and trains
either everything (``tuning: full``, Tables 1, 3, 4) or only SEEM and the feature combination network ``f_r``
(``tuning: efficient``, Table 2). HR clips come from ``data.root`` (without the REDS4 and Vid4 test clips unless
``data.exclude`` says otherwise); the LR is made on the fly with the degradation the base was trained for (BI: MATLAB
bicubic x1/4, uint8; BD: 13 x 13 Gaussian blur, sigma 1.6, every 4th pixel; the registry's
``BaselineSpec.degradation``), and the frozen SAM2 mask generator makes the masks of the LR frames, at LR size, in
every step. The
run ends with ``OUTPUT_DIR/seem_model.safetensors`` (the whole SEEM model with its description, see
:mod:`sete_vsr.plugins.seem_model`), which ``load_method("<base>+seem", seem_weights=...)`` loads, next to the
resolved ``training_config.yaml``. Each ``key=value`` overrides one config value (nested keys with dots); errors the
user can fix are printed as one line and exit with status 2.

Settings (``configs/seem_basicvsr.yaml``, ``configs/seem_edvr.yaml``): SEEM states the batch size (6 for BasicVSR,
4 for EDVR), the 64 x 64 LR patches, flips and rotations, and the 8 x 8 point grid (at most 64 masks), and refers to
BasicVSR and EDVR for the rest, which are taken from their BasicSR training configs:

==================  =================================  =================================
setting             BasicVSR (REDS)                    EDVR-M (REDS)
==================  =================================  =================================
loss                Charbonnier (mean, eps 1e-12)      Charbonnier (BasicSR sums; mean here, Adam is
                                                       insensitive to the scale)
optimizer           Adam, betas (0.9, 0.99)            same
learning rate       2e-4, SPyNet 2.5e-5 (x0.125)       4e-4
schedule            cosine to 1e-7 over the run        same (one period instead of restarts)
iterations          300K                               600K
frames per clip     15                                 5 (the network's ``num_frame``)
==================  =================================  =================================

Not reproduced: BasicVSR's first 5,000 iterations with SPyNet fixed and EDVR's TSA-only warm-up (both concern
training from scratch, not fine-tuning a trained network).

The data, the loop, checkpoints and resuming are :mod:`sete_vsr.plugins.training`'s, shared with the Semantic Lens
trainer; this module inserts SEEM, chooses what trains and saves the SEEM model.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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

WEIGHTS_NAME = "seem_model.safetensors"
MASK_BACKENDS = ("auto", "sam2", "transformers")
# Keys that change what a checkpoint holds: a run resumes only from a checkpoint written with the same values.
RESUME_KEYS = ("base", "arch_kwargs", "tuning", "sam_channels", "branches")


@dataclass
class SEEMTrainConfig(PluginTrainConfig):
    """One SEEM fine-tuning run: the shared settings (:class:`~sete_vsr.plugins.training.PluginTrainConfig`; the
    optimizer is Adam, ``adam_weight_decay: 0``; ``tuning: efficient`` trains SEEM and ``f_r``) and SEEM's own.

    Attributes:
        mask_backend: ``transformers``, ``sam2`` or ``auto``
            (:func:`~sete_vsr.plugins.sam_prior.load_mask_generator`).
        sam_channels: channels of ``R_sam``.
        branches: BasicVSR branches that get SEEM (``backward``, ``forward``; Table 6); ignored for EDVR.
    """

    output_dir: str = "seem-basicvsr"
    mask_backend: str = "transformers"
    sam_channels: int = 64
    branches: list[str] = field(default_factory=lambda: ["backward", "forward"])


def load_seem_config(path: str | Path | None, overrides: list[str] = ()) -> SEEMTrainConfig:
    """Read a YAML config, apply ``key=value`` overrides and check the values (data and models are not opened).

    Raises:
        SeteVSRError: missing file, unknown key, malformed override, wrong type or a value out of range.
    """
    config = load_dataclass_config(SEEMTrainConfig, path, overrides)
    if config.mask_backend not in MASK_BACKENDS:
        raise SeteVSRError(f"mask_backend must be one of {', '.join(MASK_BACKENDS)}, got {config.mask_backend!r}")
    check_config(config, {"sam_channels": config.sam_channels})
    return config


def train(config: SEEMTrainConfig) -> None:
    """Fine-tune ``config.base`` with SEEM and save ``seem_model.safetensors`` in ``config.output_dir``."""
    from .sam_prior import Sam2PackageMasks, load_mask_generator
    from .seem import seem_parameters
    from .seem_model import SEEM_ARCHS, SEEMWithMasks, attach_seem, save_seem_weights

    # 1. Everything that can be wrong with the inputs is checked before SAM2 is loaded and training starts.
    run = prepare_run(config, SEEM_ARCHS, "SEEM", RESUME_KEYS)
    accelerator = make_accelerator(config)

    # 2. Models: the frozen mask generator in the mixed-precision dtype, SEEM inserted into the base network, whose
    # trained weights stay fp32.
    mask_generator = load_mask_generator(
        config.mask_backend, config.sam2, config.points_per_side, device=str(accelerator.device)
    )
    mask_backend = "sam2" if isinstance(mask_generator, Sam2PackageMasks) else "transformers"
    sam2 = str(Path(config.sam2).absolute()) if Path(config.sam2).is_dir() else config.sam2  # recorded for the method
    if mask_backend == "transformers":
        mask_generator.model.to(dtype=weight_dtype(accelerator))
    seem_kwargs = {"num_masks": mask_generator.num_masks, "sam_channels": config.sam_channels}
    if run.spec.arch == "basicvsr":
        seem_kwargs["branches"] = list(config.branches)
    seem_model = attach_seem(run.base, run.spec.arch, **seem_kwargs)
    groups = parameter_groups(seem_model, config, seem_parameters)
    model = SEEMWithMasks(seem_model, mask_generator).train()
    trained, total = sum(p.numel() for g in groups for p in g["params"]), sum(p.numel() for p in model.parameters())
    logger.info(f"{config.tuning} tuning of {config.base} + SEEM: {trained:,} of {total:,} parameters")

    # 3. The loop: LR clips (the base's degradation) -> SAM2 masks (inside the model) -> SR -> Charbonnier loss.
    model, first_step, global_step = fit(config, accelerator, model, groups, run, "sete-vsr-seem", model.centre)

    # 4. The SEEM model (every tensor, fp32) and what it is, for SEEMMethod.
    if accelerator.is_main_process:
        metadata = run_metadata(
            config, run, sam2, first_step, global_step,
            arch=run.spec.arch, arch_kwargs=run.arch_kwargs, seem_kwargs=seem_kwargs, mask_backend=mask_backend,
        )  # fmt: skip
        path = save_seem_weights(model.model, Path(config.output_dir) / WEIGHTS_NAME, metadata)
        logger.info(f"saved the {config.base} + SEEM model to {path}")
    accelerator.end_training()


def main(argv: list[str] | None = None) -> int:
    return run_config_entry("sete_vsr.plugins.train_seem", __doc__, load_seem_config, train, argv, SEEMTrainConfig)


if __name__ == "__main__":
    sys.exit(main())
