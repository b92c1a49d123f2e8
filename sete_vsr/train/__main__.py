"""``accelerate launch -m sete_vsr.train CONFIG.yaml [key=value ...]``: train one SeTe-VSR stage.

The YAML file gives the run (see ``configs/`` and :class:`sete_vsr.train.config.TrainConfig`); each ``key=value``
overrides one value, nested keys with dots: ``data.root=/data/REDS/train_sharp max_train_steps=1000``. Errors the
user can fix are printed as one line and exit with status 2.
"""

from __future__ import annotations

import sys

from ..errors import SeteVSRError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 1
    try:
        from .config import load_config
        from .loop import main as train

        config_path, overrides = (None, argv) if "=" in argv[0] else (argv[0], argv[1:])
        train(load_config(config_path, overrides))
    except SeteVSRError as err:
        print(f"sete_vsr.train: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
