"""``sete-vsr methods``: list the methods that ``--method`` and ``sete-vsr eval`` accept."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from ..methods import available_methods

    for name in available_methods():
        print(name)
    return 0
