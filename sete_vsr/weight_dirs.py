"""Where weights and model files are looked for (metrics, baseline checkpoints, the LPIPS loss), offline.

Search order (first hit wins):

1. directories given to :func:`set_weight_dirs` (``sete-vsr eval --weights-dir``);
2. ``$SETE_VSR_WEIGHTS`` (one or more directories, ``os.pathsep``-separated);
3. ``$SETE_VSR_SHARED/metrics`` and ``$SETE_VSR_SHARED/weights`` (the project's shared data);
4. the torch hub checkpoint cache (``$TORCH_HOME/hub/checkpoints``), where torchvision
   keeps ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``, RAFT weights, ...;
5. ``~/.cache/sete-vsr``.

Each candidate is a path relative to those directories (``"niqe/pris.npz"``).
Nothing is ever downloaded here.
"""

from __future__ import annotations

import os
from pathlib import Path

_EXTRA_DIRS: list[Path] = []


class WeightsUnavailable(Exception):
    """A metric cannot run because a file is missing; the message says where it looked."""


def set_weight_dirs(dirs: list[str | os.PathLike]) -> None:
    """Search ``dirs`` first (replaces the directories set before)."""
    _EXTRA_DIRS[:] = [Path(d).expanduser() for d in dirs]


def weight_dirs() -> list[Path]:
    """The directories searched, in order (existing or not)."""
    dirs = list(_EXTRA_DIRS)
    dirs += [Path(p).expanduser() for p in os.environ.get("SETE_VSR_WEIGHTS", "").split(os.pathsep) if p]
    shared = os.environ.get("SETE_VSR_SHARED")
    if shared:
        dirs += [Path(shared) / "metrics", Path(shared) / "weights"]
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
    dirs += [torch_home / "hub" / "checkpoints", Path.home() / ".cache" / "sete-vsr"]
    return dirs


def find_weight(*candidates: str) -> Path:
    """First existing ``dir/candidate`` over :func:`weight_dirs` x ``candidates``.

    Raises:
        WeightsUnavailable: none exists; the message lists the names and directories tried.
    """
    dirs = weight_dirs()
    for directory in dirs:
        for name in candidates:
            path = directory / name
            if path.is_file():
                return path
    raise WeightsUnavailable(
        f"weights unavailable (looked for {' or '.join(candidates)} in {', '.join(str(d) for d in dirs)}; "
        "set --weights-dir or SETE_VSR_WEIGHTS)"
    )
