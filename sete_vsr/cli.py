"""The ``sete-vsr`` command line.

Each subcommand lives in ``sete_vsr/commands/<name>.py`` with two functions:
``add_arguments(parser)`` (cheap: no torch import) and ``run(args) -> int``.
Errors the user can fix are :class:`~sete_vsr.errors.SeteVSRError`: they are
printed as one line and the process exits with status 2. Failures of the system (a full disk, an
unreadable file, running out of GPU memory) are printed as one line too, with status 1; set
``SETE_VSR_DEBUG=1`` to see their traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from .registry import Entry, Registry

# Every subcommand: its module (``add_arguments``/``run``) and one-line help; its options are its arguments.
COMMANDS = Registry(
    "command",
    (
        Entry("methods", "sete_vsr.commands.methods", "list the super-resolution methods known by name"),
        Entry("eval", "sete_vsr.commands.eval", "evaluate methods on a benchmark: metrics, tables, plots"),
        Entry("upscale", "sete_vsr.commands.upscale", "super-resolve a video or frame folder x4"),
        Entry("init", "sete_vsr.commands.init", "assemble a SeTe-VSR pipeline (SD 2.1 + SAM2, or the tiny preset)"),
        Entry("adapt", "sete_vsr.commands.adapt", "self-supervised test-time adaptation of a CNN baseline to a video"),
        Entry("demo", "sete_vsr.commands.demo", "a local web page to upscale a clip and compare it with bicubic"),
    ),
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sete-vsr",
        description="Real-world video super-resolution (x4): SeTe-VSR, CNN baselines, metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.label, description=command.label)
        command.load().add_arguments(sub)
        sub.set_defaults(_command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import SeteVSRError, system_error_line

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return args._command.load().run(args) or 0
    except SeteVSRError as err:
        print(f"sete-vsr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sete-vsr {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError, RuntimeError) as err:
        if os.environ.get("SETE_VSR_DEBUG"):
            raise
        print(f"sete-vsr {args.command}: failed: {system_error_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
