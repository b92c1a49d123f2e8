"""``accelerate launch -m sete_vsr.train CONFIG.yaml [key=value ...]``: train one SeTe-VSR stage.

The YAML file gives the run (see ``configs/`` and :class:`sete_vsr.train.config.TrainConfig`); each ``key=value``
overrides one value, nested keys with dots: ``data.root=/data/REDS/train_sharp max_train_steps=1000``. Errors the
user can fix are printed as one line and exit with status 2.
"""

from __future__ import annotations

import sys

from .config import TrainConfig, load_config, run_config_entry


def main(argv: list[str] | None = None) -> int:
    def train(config) -> None:
        from .loop import main as run  # the heavy imports only once the config is good

        run(config)

    return run_config_entry("sete_vsr.train", __doc__, load_config, train, argv, TrainConfig)


if __name__ == "__main__":
    sys.exit(main())
