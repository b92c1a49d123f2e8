"""``sete-vsr methods``: list the methods that ``--method`` and ``sete-vsr eval`` accept, with their options."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--options", action="store_true", help="also list each method's options and their defaults")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..methods import METHODS

    entries = sorted(METHODS, key=lambda entry: entry.name)
    width = max(len(entry.name) for entry in entries)
    for entry in entries:
        print(f"{entry.name:<{width}}  {entry.label}")
        if args.options:
            for f in dataclasses.fields(entry.options):
                default = "required" if f.default is dataclasses.MISSING else f"default {f.default!r}"
                print(f"{'':<{width}}    {f.name}: {default}")
    return 0
