"""The official baseline checkpoints by name: architecture, file, source URL, hash; finding or downloading them.

A checkpoint is looked for, in order:

1. the path given as ``checkpoint=`` (used as is, no hash check: it may be your own fine-tune);
2. the weight folders of :func:`sete_vsr.weight_dirs.weight_dirs` (``sete-vsr eval --weights-dir``,
   ``$SETE_VSR_WEIGHTS``, ``$SETE_VSR_SHARED/weights``, ...), each directly or in a subfolder named after the
   architecture (``basicvsr/``, ``edvr/``, ...), under the official file name or the same name without its
   ``-<sha256 prefix>`` suffix (e.g. ``weights/basicvsr/BasicVSR_Vimeo90K_BIx4.pth``);
3. the download cache ``$SETE_VSR_CACHE/baselines`` (default ``~/.cache/sete-vsr/baselines``);
4. a download from the official URL into that cache, unless offline (``HF_HUB_OFFLINE=1`` or
   ``SETE_VSR_OFFLINE=1``). The file's sha256 must start with the prefix in its name.

Files found by name in 2-3 are checked against the hash as well.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.degradations import BD, BI, Downscaling
from ..errors import SeteVSRError
from ..options import TRUE_WORDS
from ..registry import Entry, Registry
from ..weight_dirs import weight_dirs

if TYPE_CHECKING:
    from torch import nn

    from ..method_options import RecurrentBaselineOptions, SlidingWindowBaselineOptions

_GDRIVE = "https://drive.google.com/uc?export=download&confirm=t&id={}"
_OPENMMLAB = "https://download.openmmlab.com/mmediting/restorers/{}"


@dataclass(frozen=True)
class BaselineSpec:
    """One official checkpoint and the architecture it belongs to.

    Attributes:
        name: registry name (also the method name in ``sete-vsr``).
        arch: ``"basicvsr"``, ``"basicvsrpp"``, ``"realbasicvsr"`` or ``"edvr"``.
        arch_kwargs: constructor arguments of the architecture.
        file_name: official file name (ends in ``-<first 8 hex digits of its sha256>.pth``).
        url: where the file is published.
        layout: ``"basicsr"`` or ``"mmagic"`` (both load; this is informational).
        description: training data and degradation, for tables.
        degradation: the x4 degradation the checkpoint was trained for: BI, BD (13 x 13 Gaussian, sigma 1.6), or
            ``None`` for the random real-world degradations (RealBasicVSR), which no single kernel describes.
            Training from the checkpoint and test-time adaptation degrade with it.
    """

    name: str
    arch: str
    arch_kwargs: dict = field(default_factory=dict)
    file_name: str = ""
    url: str = ""
    layout: str = "basicsr"
    description: str = ""
    degradation: Downscaling | None = field(kw_only=True)

    @property
    def degradation_name(self) -> str:
        """``"BI"``, ``"BD"`` or ``"real-world"``."""
        return "real-world" if self.degradation is None else self.degradation.name

    @property
    def sha256_prefix(self) -> str:
        return Path(self.file_name).stem.rsplit("-", 1)[-1]

    @property
    def local_names(self) -> tuple[str, str]:
        """The official file name and the same name without the hash suffix."""
        stem = Path(self.file_name).stem.rsplit("-", 1)[0]
        return self.file_name, f"{stem}.pth"


_EDVR_M = {"num_feat": 64, "num_reconstruct_block": 10}
_EDVR_L = {"num_feat": 128, "num_reconstruct_block": 40}

BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec(
            "basicvsr-reds4", "basicvsr", {"num_block": 30}, "BasicVSR_REDS4-543c8261.pth",
            _GDRIVE.format("1wLWdz18lWf9Z7lomHPkdySZ-_GV2920p"), "basicsr", "BasicVSR, REDS (BI x4), BasicSR official",
            degradation=BI,
        ),
        BaselineSpec(
            "basicvsr-vimeo-bi", "basicvsr", {"num_block": 30}, "BasicVSR_Vimeo90K_BIx4-2a29695a.pth",
            _GDRIVE.format("1ykIu1jv5wo95Kca2TjlieJFxeV4VVfHP"), "basicsr",
            "BasicVSR, Vimeo-90K (BI x4), BasicSR official", degradation=BI,
        ),
        BaselineSpec(
            "basicvsr-vimeo-bd", "basicvsr", {"num_block": 30}, "BasicVSR_Vimeo90K_BDx4-e9bf46eb.pth",
            _GDRIVE.format("1baaf4RSpzs_zcDAF_s2CyArrGvLgmXxW"), "basicsr",
            "BasicVSR, Vimeo-90K (BD x4), BasicSR official", degradation=BD,
        ),
        BaselineSpec(
            "basicvsr-reds4-mmagic", "basicvsr", {"num_block": 30}, "basicvsr_reds4_20120409-0e599677.pth",
            _OPENMMLAB.format("basicvsr/basicvsr_reds4_20120409-0e599677.pth"), "mmagic",
            "BasicVSR, REDS (BI x4), mmagic retrain", degradation=BI,
        ),
        BaselineSpec(
            "basicvsr-vimeo-bi-mmagic", "basicvsr", {"num_block": 30}, "basicvsr_vimeo90k_bi_20210409-d2d8f760.pth",
            _OPENMMLAB.format("basicvsr/basicvsr_vimeo90k_bi_20210409-d2d8f760.pth"), "mmagic",
            "BasicVSR, Vimeo-90K (BI x4), mmagic retrain", degradation=BI,
        ),
        BaselineSpec(
            "basicvsr-vimeo-bd-mmagic", "basicvsr", {"num_block": 30}, "basicvsr_vimeo90k_bd_20210409-0154dd64.pth",
            _OPENMMLAB.format("basicvsr/basicvsr_vimeo90k_bd_20210409-0154dd64.pth"), "mmagic",
            "BasicVSR, Vimeo-90K (BD x4), mmagic retrain", degradation=BD,
        ),
        BaselineSpec(
            "basicvsrpp-reds4", "basicvsrpp", {"mid_channels": 64, "num_blocks": 7},
            "basicvsr_plusplus_c64n7_8x1_600k_reds4_20210217-db622b2f.pth",
            _OPENMMLAB.format("basicvsr_plusplus/basicvsr_plusplus_c64n7_8x1_600k_reds4_20210217-db622b2f.pth"),
            "mmagic", "BasicVSR++, REDS (BI x4), official (mmagic)", degradation=BI,
        ),
        BaselineSpec(
            "realbasicvsr", "realbasicvsr", {}, "realbasicvsr_c64b20_1x30x8_lr5e-5_150k_reds_20211104-52f77c2c.pth",
            _OPENMMLAB.format("real_basicvsr/realbasicvsr_c64b20_1x30x8_lr5e-5_150k_reds_20211104-52f77c2c.pth"),
            "mmagic", "RealBasicVSR (GAN, EMA weights), REDS with real-world degradations, official (mmagic)",
            degradation=None,
        ),
        BaselineSpec(
            "realbasicvsr-wogan", "realbasicvsr", {},
            "realbasicvsr_wogan_c64b20_2x30x8_lr1e-4_300k_reds_20211027-0e2ff207.pth",
            _OPENMMLAB.format("real_basicvsr/realbasicvsr_wogan_c64b20_2x30x8_lr1e-4_300k_reds_20211027-0e2ff207.pth"),
            "mmagic", "RealBasicVSR without GAN loss, REDS with real-world degradations, official (mmagic)",
            degradation=None,
        ),
        BaselineSpec(
            "edvr-m-reds", "edvr", _EDVR_M, "EDVR_M_x4_SR_REDS_official-32075921.pth",
            _GDRIVE.format("1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6"), "basicsr", "EDVR-M, REDS (BI x4), official (BasicSR)",
            degradation=BI,
        ),
        BaselineSpec(
            "edvr-m-wotsa-reds", "edvr", {**_EDVR_M, "with_tsa": False}, "EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth",
            _GDRIVE.format("1C_WdN-NyNj-P7SOB5xIVuHl4EBOwd-Ny"), "basicsr",
            "EDVR-M without TSA, REDS (BI x4), official (BasicSR)", degradation=BI,
        ),
        BaselineSpec(
            "edvr-l-reds", "edvr", _EDVR_L, "EDVR_L_x4_SR_REDS_official-9f5f5039.pth",
            _GDRIVE.format("127KXEjlCwfoPC1aXyDkluNwr9elwyHNb"), "basicsr", "EDVR-L, REDS (BI x4), official (BasicSR)",
            degradation=BI,
        ),
        BaselineSpec(
            "edvr-m-reds-mmagic", "edvr", _EDVR_M, "edvrm_x4_8x4_600k_reds_20210625-e29b71b5.pth",
            _OPENMMLAB.format("edvr/edvrm_x4_8x4_600k_reds_20210625-e29b71b5.pth"), "mmagic",
            "EDVR-M, REDS (BI x4), mmagic retrain", degradation=BI,
        ),
        BaselineSpec(
            "edvr-l-reds-mmagic", "edvr", _EDVR_L, "edvrl_c128b40_8x8_lr2e-4_600k_reds4_20220104-4509865f.pth",
            _OPENMMLAB.format("edvr/edvrl_c128b40_8x8_lr2e-4_600k_reds4_20220104-4509865f.pth"), "mmagic",
            "EDVR-L, REDS (BI x4), mmagic retrain", degradation=BI,
        ),
    )
}


def get_spec(name: str) -> BaselineSpec:
    if name not in BASELINES:
        raise SeteVSRError(f"unknown baseline {name!r}; available: {', '.join(BASELINES)}")
    return BASELINES[name]


ARCHITECTURES = Registry(
    "baseline architecture",
    (
        Entry("basicvsr", "sete_vsr.baselines.basicvsr:BasicVSR", "BasicVSR"),
        Entry("basicvsrpp", "sete_vsr.baselines.basicvsr_pp:BasicVSRPlusPlus", "BasicVSR++"),
        Entry("realbasicvsr", "sete_vsr.baselines.realbasicvsr:RealBasicVSR", "RealBasicVSR"),
        Entry("edvr", "sete_vsr.baselines.edvr:EDVR", "EDVR"),
    ),
)


def build_architecture(arch: str, **kwargs) -> nn.Module:
    """An untrained network of :data:`ARCHITECTURES` (``"basicvsr"``, ...), built with ``kwargs``."""
    return ARCHITECTURES[arch].load()(**kwargs)


def cache_dir() -> Path:
    """Where downloaded checkpoints go: ``$SETE_VSR_CACHE/baselines`` (default ``~/.cache/sete-vsr``)."""
    return Path(os.environ.get("SETE_VSR_CACHE", Path.home() / ".cache" / "sete-vsr")) / "baselines"


def _search_dirs(spec: BaselineSpec) -> list[Path]:
    return [*(sub for d in weight_dirs() for sub in (d, d / spec.arch)), cache_dir()]


def local_checkpoint_paths(spec: BaselineSpec) -> list[Path]:
    """Where ``spec``'s checkpoint is looked for on this machine, in order (steps 2-3 of the module docstring)."""
    return [folder / file_name for folder in _search_dirs(spec) for file_name in spec.local_names]


def _offline() -> bool:
    return any(os.environ.get(var, "").lower() in TRUE_WORDS for var in ("HF_HUB_OFFLINE", "SETE_VSR_OFFLINE"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(spec: BaselineSpec, path: Path) -> Path:
    if not sha256_of(path).startswith(spec.sha256_prefix):
        raise SeteVSRError(
            f"{path} is not the official {spec.name} checkpoint (its sha256 does not start with "
            f"{spec.sha256_prefix}); pass checkpoint=PATH to use it anyway"
        )
    return path


def resolve_checkpoint(spec: BaselineSpec, checkpoint: str | os.PathLike | None = None) -> Path:
    """Path of ``spec``'s checkpoint: given, found locally, or downloaded (see the module docstring)."""
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise SeteVSRError(f"checkpoint not found: {path}")
        return path
    candidates = local_checkpoint_paths(spec)
    for path in candidates:
        if path.is_file():
            return _check_hash(spec, path)
    looked = ", ".join(str(path) for path in candidates)
    if _offline():
        raise SeteVSRError(
            f"no checkpoint for {spec.name} and downloads are off (offline); looked for {looked}. "
            f"Download {spec.url} into a folder listed in SETE_VSR_WEIGHTS or --weights-dir, or pass checkpoint=PATH"
        )
    import torch.hub

    target = cache_dir() / spec.file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(spec.url, str(target), hash_prefix=spec.sha256_prefix, progress=True)
    except Exception as err:  # network errors and hash mismatches alike
        raise SeteVSRError(
            f"could not download the {spec.name} checkpoint from {spec.url} ({err}); looked for {looked}. "
            "Put the file in a folder listed in SETE_VSR_WEIGHTS, or pass checkpoint=PATH"
        ) from err
    return target


def load_baseline_model(
    name: str, checkpoint: str | os.PathLike | None = None, arch_kwargs: dict | None = None
) -> nn.Module:
    """The network of baseline ``name`` with its official weights (strictly loaded), in eval mode, on CPU.

    ``arch_kwargs`` replaces the registry's constructor arguments, for a ``checkpoint`` of another size
    (e.g. a tiny random network in tests).
    """
    from .checkpoints import load_checkpoint

    spec = get_spec(name)
    model = build_architecture(spec.arch, **(spec.arch_kwargs if arch_kwargs is None else arch_kwargs))
    load_checkpoint(model, resolve_checkpoint(spec, checkpoint))
    return model.eval()


def load_baseline(options: RecurrentBaselineOptions | SlidingWindowBaselineOptions, name: str):
    """Factory behind ``load_method(name)``: the baseline as a :class:`~sete_vsr.methods.VSRMethod`.

    Args:
        options: the runner's options of the baseline's architecture (:func:`~sete_vsr.method_options.runner_options`)
            and ``checkpoint``, a local file (otherwise found or downloaded, see the module docstring).
        name: a key of :data:`BASELINES`.
    """
    from .runners import runner_class

    model = load_baseline_model(name, options.checkpoint)
    return runner_class(get_spec(name).arch)(model, name, options)
