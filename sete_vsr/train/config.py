"""The training configuration: a YAML file, ``key=value`` overrides, one resolved copy per run.

``load_config("configs/stage1.yaml", ["max_train_steps=10", "data.root=/data/REDS"])`` reads the file into
:class:`TrainConfig`, applies the overrides (dotted keys reach nested sections; values are parsed as YAML, so
``null``, ``true``, ``[a, b]`` and numbers work) and checks the result. Unknown keys and values of the wrong type
raise :class:`~sete_vsr.errors.SeteVSRError` naming the key. :func:`save_config` writes the resolved configuration,
which is also what a resumed run is compared against.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SeteVSRError

STAGES = ("1", "2", "vae")
DATASET_TYPES = ("reds", "frames", "videos", "paired")
DEGRADATIONS = ("realbasicvsr", "BI", "BD")

# Keys that decide the items of each epoch: which clips are drawn, their crops, degradations and targets. A resumed run
# and a latent cache (sete_vsr.train.data.CACHE_KEYS) must agree with the config on them.
DATA_DRAW_KEYS = (
    "seed",
    "data.type",
    "data.num_frames",
    "data.crop_size",
    "data.degradation",
    "data.exclude",
    "data.augment",
    "data.usm_gt",
)
# Keys a run can only resume with if the checkpoint was written with the same values (dotted keys reach sections):
# those that change what a checkpoint holds (model layout, trainable set, optimizer, EMA and grad-scaler state) and
# those that change the stream of batches (seed, batch, accumulation, how clips are cut, degraded and targeted), so
# that a resumed run could not be the run it continues. Hyper-parameters one may change on purpose when resuming
# (max_train_steps, learning rate and schedule, Adam, clipping, EMA decay, loss weights, data paths, checkpointing,
# validation, logging) are not compared; a resumed run logs which of them changed.
RESUME_KEYS = (
    "stage",
    "pretrained_model",
    "only_new_modules",
    "lora_rank",
    "lora_alpha",
    "temporal_transformer",
    "tsam",
    "use_ema",
    "use_8bit_adam",
    "mixed_precision",
    "train_batch_size",
    "gradient_accumulation_steps",
    *DATA_DRAW_KEYS,
)


@dataclass
class DataConfig:
    """Training clips: where they come from and how they are cut and degraded.

    Attributes:
        type: ``reds`` (``root/<clip>/<frame>.png`` without the REDS4 clips), ``frames`` (any folder of frame
            folders), ``videos`` (any folder of video files) or ``paired`` (``lr_root`` + ``root`` as HR).
        root: the HR folder.
        lr_root: the LR folder of a ``paired`` dataset.
        num_frames: consecutive frames per clip `F` (1 in stage 1: the spatial U-Net sees frames independently).
        crop_size: HR crop side (the LR crop is a quarter of it).
        degradation: how LR frames are made from HR crops: ``realbasicvsr`` (second-order, paper Sec. IV-A), ``BI``
            or ``BD``; unused by ``paired`` data and by the VAE stage.
        exclude: clip names left out; ``null`` leaves out REDS4 for ``reds`` and nothing otherwise.
        augment: random flips and transposes of whole clips.
        usm_gt: stages 1 and 2 diffuse the latents of the unsharp-masked GT (``hr_usm`` of the dataset) instead of
            the plain GT, as RealBasicVSR (``is_use_sharpened_gt_in_pixel``) and MGLD-VSR (USM on ``gts``) train.
            The LR is made as ``degradation`` says either way; the VAE stage always reconstructs the plain GT.
        cache_dir: a latent cache filled by ``python -m sete_vsr.train.cache CONFIG key=value...`` (see
            :mod:`sete_vsr.train.cache`): stages 1 and 2 then read the SAM2 embeddings, LR latents and GT latent
            distributions from it instead of running the frozen encoders. ``null``: computed on the fly.
        num_workers: ``DataLoader`` worker processes (the degradation runs there).
    """

    type: str = "reds"
    root: str | None = None
    lr_root: str | None = None
    num_frames: int = 1
    crop_size: int = 512
    degradation: str = "realbasicvsr"
    exclude: list[str] | None = None
    augment: bool = True
    usm_gt: bool = True
    cache_dir: str | None = None
    num_workers: int = 4


@dataclass
class ValidationConfig:
    """The validation clip rendered through the pipeline every ``every_n_steps`` steps and at the end.

    Attributes:
        root: folder of HR clips (``root/<clip>/<frame>.png``) or of one clip's frames; ``null`` disables validation.
        clip: clip name inside ``root``; ``null`` takes the first clip.
        num_frames: frames rendered.
        crop_size: HR crop side (a fixed, seeded position), ``null`` for whole frames.
        degradation: ``realbasicvsr``, ``BI`` or ``BD``, with a fixed seed.
        num_inference_steps: DDPM steps of the render.
        every_n_steps: steps between renders, each logging ``validation/psnr``, ``validation/lpips`` (or
            ``validation/lpips_skipped``, why) and the frames; 0 renders only at the end (which always renders).
        seed: seed of the crop, the degradation and the pipeline's noise.
    """

    root: str | None = None
    clip: str | None = None
    num_frames: int = 4
    crop_size: int | None = 256
    degradation: str = "realbasicvsr"
    num_inference_steps: int = 50
    every_n_steps: int = 500
    seed: int = 0


@dataclass
class VAELossConfig:
    """Weights of the VAE stage's loss terms (reconstruction L1, LPIPS when its weights exist, temporal L1).

    Attributes:
        l1: weight of the L1 distance between output and target frames.
        lpips: weight of LPIPS between output and target frames (skipped without the LPIPS weights).
        temporal: weight of the L1 distance between the frame differences of the output and of the target.
    """

    l1: float = 1.0
    lpips: float = 1.0
    temporal: float = 1.0


@dataclass
class TrainConfig:
    """One training run (paper Sec. III-D and IV-A). See ``configs/*.yaml`` for the presets.

    Attributes:
        stage: ``1`` (spatial SeTe U-Net), ``2`` (temporal transformer + TSAM) or ``vae`` (temporal VAE decoder).
        pretrained_model: the starting ``SeTeVSRPipeline`` (folder or Hub id): an initialised pipeline for stage 1,
            a stage-1 result for stage 2, any pipeline for the VAE stage.
        output_dir: where checkpoints, logs, the resolved config and the final pipeline go.
        seed: seed of the model noise, the data draws and the data order.
        data: training clips, see :class:`DataConfig`.
        validation: validation renders, see :class:`ValidationConfig`.
        only_new_modules: stage 1: train only the new spatial modules (SeAM, semantic tokenizer, LR conditioning)
            instead of the whole spatial U-Net.
        lora_rank: stages 1 and 2: train a LoRA of this rank on the attention projections of the stage's set (the
            rest frozen) instead of the set itself, and save it as ``pytorch_lora_weights.safetensors`` for
            ``pipe.load_lora_weights`` rather than a whole pipeline (needs ``peft``); 0: no LoRA. Meant for
            fine-tuning a trained model: the new modules of an untrained one start at zero.
        lora_alpha: the LoRA's scale numerator (default: ``lora_rank``).
        temporal_transformer: stage 2: add (and train) the temporal transformer; ``null`` follows the starting
            U-Net's ``use_temporal_transformer`` (on unless ``sete-vsr init --no-temporal-transformer``). With
            ``tsam``, this chooses the temporal modules of the paper's ablations (Table II); whether the U-Net has
            SeAM was chosen by ``sete-vsr init --no-seam``.
        tsam: stage 2: add (and train) TSAM; ``null`` follows the starting U-Net's ``use_tsam``.
        train_batch_size: clips per device per step.
        max_train_steps: optimizer steps of the run.
        gradient_accumulation_steps: batches accumulated per optimizer step (``max_train_steps`` counts optimizer
            steps, so a run reads ``max_train_steps * gradient_accumulation_steps`` batches).
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        mixed_precision: ``no``, ``fp16`` or ``bf16``; ``null`` follows ``accelerate launch``/its config. Frozen
            models run in that dtype; the trained model keeps fp32 weights.
        allow_tf32: allow TF32 matmuls on Ampere and newer GPUs.
        learning_rate: Adam's learning rate.
        lr_scheduler: a ``diffusers.optimization`` schedule name (``constant`` in the paper).
        lr_warmup_steps: warm-up steps of the schedule.
        adam_beta1, adam_beta2, adam_epsilon, adam_weight_decay: Adam's hyper-parameters.
        use_8bit_adam: bitsandbytes' 8-bit Adam (needs ``bitsandbytes``).
        max_grad_norm: gradient-norm clipping.
        use_ema: keep an exponential moving average of the trained weights (diffusers' ``EMAModel``). Validation
            renders use it, and the saved pipeline holds the EMA of the trained tensors (the others are the
            starting ones); checkpoints hold both the raw weights training continues from (``model.safetensors``)
            and the EMA (``custom_checkpoint_0.pkl``).
        ema_decay: EMA decay.
        vae_loss: loss weights of the VAE stage, see :class:`VAELossConfig`.
        checkpointing_steps: steps between ``accelerator.save_state`` checkpoints (0: none).
        checkpoints_total_limit: checkpoints kept in ``output_dir`` (oldest deleted first); ``null`` keeps all.
        resume_from_checkpoint: ``latest``, a checkpoint folder, or ``null`` for a fresh run.
        report_to: tracker (``tensorboard``, ``wandb``, ``all``) or ``none``.
        logging_dir: tracker folder, relative to ``output_dir``.
        tracker_project_name: run name given to the tracker.
        push_to_hub: upload the final pipeline to ``hub_model_id`` (``hf auth login`` first, or ``hub_token``).
        hub_model_id: Hub repository id; defaults to the name of ``output_dir``.
        hub_token: Hub token for the upload (default: the logged-in one or ``$HF_TOKEN``); never written to a saved
            config or a tracker.
        hub_private: create the repository private (a repository that exists keeps its visibility).
        hub_overwrite_model_card: replace a ``README.md`` the repository already has (default: keep it).
    """

    stage: str = "1"
    pretrained_model: str | None = None
    output_dir: str = "sete-vsr-stage1"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    only_new_modules: bool = False
    lora_rank: int = 0
    lora_alpha: float | None = None
    temporal_transformer: bool | None = None
    tsam: bool | None = None
    train_batch_size: int = 3
    max_train_steps: int = 100_000
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = True
    mixed_precision: str | None = None
    allow_tf32: bool = True
    learning_rate: float = 1e-4
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    adam_weight_decay: float = 0.0
    use_8bit_adam: bool = False
    max_grad_norm: float = 1.0
    use_ema: bool = False
    ema_decay: float = 0.9999
    vae_loss: VAELossConfig = field(default_factory=VAELossConfig)
    checkpointing_steps: int = 5000
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    report_to: str = "tensorboard"
    logging_dir: str = "logs"
    tracker_project_name: str = "sete-vsr"
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = None
    hub_private: bool = False
    hub_overwrite_model_card: bool = False


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML config (or start from the defaults when ``path`` is ``None``) and apply ``key=value`` overrides.

    Raises:
        SeteVSRError: missing file, unknown key, malformed override or a value of the wrong type.
    """
    config = load_dataclass_config(TrainConfig, path, overrides)
    _check(config)
    return config


def load_dataclass_config(cls: type, path: str | Path | None, overrides: list[str] = ()):
    """:func:`load_config` for any config dataclass ``cls`` (nested dataclasses are sections), without value checks.

    Raises:
        SeteVSRError: missing file, unknown key, malformed override or a value of the wrong type.
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise SeteVSRError(f"config file not found: {path}")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise SeteVSRError(f"{path} must hold a mapping of config keys")
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise SeteVSRError(f"overrides are key=value (nested keys with dots), got {override!r}")
        section = values
        *parents, leaf = key.split(".")
        for parent in parents:
            section = section.setdefault(parent, {})
            if not isinstance(section, dict):
                raise SeteVSRError(f"cannot override {key!r}: {parent!r} is not a section")
        section[leaf] = yaml.safe_load(text) if text else None
    return _build(cls, values, "")


# config keys whose values are never written down (saved configs, trackers)
SECRET_KEYS = ("hub_token",)


def public_dict(config) -> dict[str, Any]:
    """A config dataclass as a dict, with :data:`SECRET_KEYS` blanked."""
    values = dataclasses.asdict(config)
    return {key: None if key in SECRET_KEYS else value for key, value in values.items()}


def save_config(config, path: str | Path) -> None:
    """Write a resolved config dataclass as YAML (loadable with :func:`load_config` or :func:`load_dataclass_config`),
    secrets left out."""
    Path(path).write_text(yaml.safe_dump(public_dict(config), sort_keys=False))


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as a flat ``{"data.root": ...}`` dict of scalars, as trackers take hyper-parameters."""
    flat = flatten_config(public_dict(config))
    return {key: value if isinstance(value, (int, float, str, bool)) else str(value) for key, value in flat.items()}


def flatten_config(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{"data.num_frames": 1, ...}`` (values as they are, lists included)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _build(cls: type, values: dict[str, Any], prefix: str):
    """Instantiate dataclass ``cls`` from ``values``, converting each value to its field's type."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SeteVSRError(f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; known: {sorted(names)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise SeteVSRError(f"config key {prefix}{name} is a section; got {value!r}")
            kwargs[name] = _build(hint, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _convert(value, hint, prefix + name)
    return cls(**kwargs)


def _convert(value: Any, hint: Any, key: str) -> Any:
    """``value`` as type ``hint`` (``int``, ``float``, ``bool``, ``str``, ``list[str]``, ``dict`` or their optionals)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [arg for arg in args if arg is not type(None)]
    if typing.get_origin(hint) is list:
        if not isinstance(value, (list, tuple)):
            raise SeteVSRError(f"config key {key} must be a list, got {value!r}")
        return [_convert(item, typing.get_args(hint)[0], key) for item in value]
    if hint is dict:
        if not isinstance(value, dict):
            raise SeteVSRError(f"config key {key} must be a mapping, got {value!r}")
        return dict(value)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and not isinstance(value, bool):
        try:  # YAML reads "1e-4" (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            pass
    if hint is str and isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise SeteVSRError(f"config key {key} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def check_run_settings(
    mixed_precision: str | None, counts: dict[str, int], checkpoints_total_limit: int | None
) -> None:
    """The range checks every trainer's config shares.

    Args:
        mixed_precision: ``no``, ``fp16``, ``bf16`` or ``None`` (accelerate's default).
        counts: ``{key: value}`` of the settings that must be at least 1 (batch size, steps, frames...).
        checkpoints_total_limit: at least 1, or ``None`` for no limit.

    Raises:
        SeteVSRError: a value out of range, naming its key.
    """
    if mixed_precision not in (None, "no", "fp16", "bf16"):
        raise SeteVSRError(f"mixed_precision must be no, fp16, bf16 or null, got {mixed_precision!r}")
    for key, value in counts.items():
        if value < 1:
            raise SeteVSRError(f"{key} must be at least 1, got {value}")
    if checkpoints_total_limit is not None and checkpoints_total_limit < 1:
        raise SeteVSRError(f"checkpoints_total_limit must be at least 1 or null, got {checkpoints_total_limit}")


def _check(config: TrainConfig) -> None:
    """Value checks that need no file system access."""
    if config.stage not in STAGES:
        raise SeteVSRError(f"stage must be one of {', '.join(STAGES)}, got {config.stage!r}")
    if config.pretrained_model is None:
        raise SeteVSRError("pretrained_model is required: the SeTeVSRPipeline folder or Hub id to start from")
    if config.data.type not in DATASET_TYPES:
        raise SeteVSRError(f"data.type must be one of {', '.join(DATASET_TYPES)}, got {config.data.type!r}")
    degradations = {"data.degradation": config.data.degradation, "validation.degradation": config.validation.degradation}
    for key, name in degradations.items():
        if name not in DEGRADATIONS:
            raise SeteVSRError(f"{key} must be one of {', '.join(DEGRADATIONS)}, got {name!r}")
    temporal_modules = {"temporal_transformer": config.temporal_transformer, "tsam": config.tsam}
    chosen = [key for key, value in temporal_modules.items() if value is not None]
    if chosen and config.stage != "2":
        raise SeteVSRError(f"{' and '.join(chosen)}: stage 2 chooses its temporal modules, stage {config.stage} none")
    if temporal_modules == {"temporal_transformer": False, "tsam": False}:
        raise SeteVSRError("stage 2 needs a temporal module: temporal_transformer and tsam cannot both be false")
    if config.data.cache_dir is not None and config.stage == "vae":
        raise SeteVSRError("data.cache_dir is for stages 1 and 2 (the VAE stage runs its encoder on HR pixels)")
    if config.lora_rank < 0 or (config.lora_rank and config.stage == "vae"):
        raise SeteVSRError(f"lora_rank must be 0, or positive for stage 1 or 2, got {config.lora_rank} (stage {config.stage})")
    if config.lora_rank:
        try:
            import peft  # noqa: F401
        except ImportError:
            raise SeteVSRError("lora_rank needs peft: pip install 'sete-vsr[lora]'") from None
    counts = {
        "train_batch_size": config.train_batch_size,
        "max_train_steps": config.max_train_steps,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "data.num_frames": config.data.num_frames,
        "validation.num_frames": config.validation.num_frames,
    }
    check_run_settings(config.mixed_precision, counts, config.checkpoints_total_limit)
    if config.push_to_hub and config.hub_model_id is None:
        config.hub_model_id = Path(config.output_dir).name


def attribute_docs(cls: type) -> dict[str, str]:
    """Each entry of the ``Attributes:`` sections of ``cls`` and its bases' docstrings, as one line of text.

    An entry may name several attributes (``adam_beta1, adam_beta2: ...``); a subclass's entry wins.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        lines = (klass.__doc__ or "").split("Attributes:", 1)[1:]
        entries: list[list[str]] = []
        for line in (lines[0].splitlines() if lines else []):
            match = re.match(r"^ {8}([\w, ]+):\s*(.*)$", line)
            if match:
                entries.append([match.group(1), match.group(2)])
            elif entries and line.startswith(" " * 12):
                entries[-1][1] += " " + line.strip()
            elif line.strip():
                break
        for names, text in entries:
            docs.update({name.strip(): text.strip().replace("``", "`") for name in names.split(",")})
    return docs


def config_keys(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """``(key, default, meaning)`` of every key of the config dataclass ``cls``, nested ones as ``data.root``."""
    hints, docs, keys = typing.get_type_hints(cls), attribute_docs(cls), []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(hints[f.name]):
            keys += config_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            keys.append((f"{prefix}{f.name}", default, docs.get(f.name, "")))
    return keys


def keys_help(cls: type) -> str:
    """Every key of ``cls`` with its default and meaning, one per line, for ``--help``."""
    keys = config_keys(cls)
    width = max(len(key) for key, _, _ in keys)
    lines = []
    for key, default, meaning in keys:
        shown = "null" if default is None else yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f"  {key:<{width}}  {shown:<12} {meaning}")
    return "\n".join(lines)


def run_config_entry(
    prog: str, doc: str, load, train, argv: list[str] | None = None, config_class: type | None = None
) -> int:
    """The ``main`` of a config-driven trainer: ``[CONFIG.yaml] [key=value ...]`` -> ``train(load(path, overrides))``.

    ``-h``/``--help`` (or no argument) prints ``doc`` and every key of ``config_class`` with its default and meaning;
    a :class:`SeteVSRError` is printed as one line prefixed by ``prog`` and gives exit status 2.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(doc.strip())
        if config_class is not None:
            print(f"\nConfig keys (default, meaning):\n{keys_help(config_class)}")
        return 0 if argv else 1
    try:
        config_path, overrides = (None, argv) if "=" in argv[0] else (argv[0], argv[1:])
        train(load(config_path, overrides))
    except SeteVSRError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0
