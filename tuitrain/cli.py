"""The `tuitrain` command: with no arguments it opens the app, otherwise it runs a subcommand.

Each subcommand lives in a module of `tuitrain.commands` that exposes
`register(subparsers)`; a module is imported only when argparse needs it, so
`tuitrain ls` never pays for torch and `tuitrain run` never pays for textual.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tuitrain import __version__
from tuitrain.errors import TuitrainError

# Subcommand modules, in the order `tuitrain --help` lists them.
COMMAND_MODULES = ("preset", "schedule", "train", "sweep", "control", "app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuitrain",
        description="A terminal experiment manager for PyTorch training. "
        "Run with no command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"tuitrain {__version__}")
    parser.add_argument(
        "--runs",
        metavar="DIR",
        default=None,
        help="runs root: where new runs go and where runs are looked for "
        "(default: $TUITRAIN_RUNS or ./runs)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"tuitrain.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.runs:
        os.environ["TUITRAIN_RUNS"] = args.runs
    func = getattr(args, "func", None)
    if func is None:
        func = importlib.import_module("tuitrain.commands.app").open_app
    try:
        return int(func(args) or 0)
    except TuitrainError as exc:
        print(exc.one_line(), file=sys.stderr)
        return exc.exit_code
    except PermissionError as exc:  # a file or process of another user's: one line, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tuitrain: {where}permission denied ({exc.strerror or exc})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tuitrain tail RUN | head` closed the pipe: not an error worth a traceback.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
