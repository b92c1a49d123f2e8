"""Lazy attribute export for packages, so `import sete_vsr` stays light.

A package lists its public names as ``{"Name": "relative.module"}`` and gets a
module-level ``__getattr__`` that imports the submodule on first access. One
optional dependency that is missing therefore never breaks the other names.
"""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for ``package`` exporting ``exports``.

    Args:
        package: the ``__name__`` of the package doing the exporting.
        exports: public name -> submodule path relative to ``package`` (e.g. ``".unet"``).
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name], package)
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
