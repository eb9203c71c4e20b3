"""`tuitrain ui` (and `tuitrain` with no command): open the app; `tuitrain compare RUN RUN …`:
open it on the compare screen of those runs.

Textual is imported only inside the functions that open the app, so other commands never
pay for it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers) -> None:
    """Add the `ui` and `compare` commands."""
    parser = subparsers.add_parser("ui", help="open the terminal app (the default with no command)")
    _app_options(parser)
    parser.set_defaults(func=open_app)
    parser = subparsers.add_parser("compare", help="open the app comparing runs: curves overlaid, differing settings",
                                   description="Open the app on the compare screen of these runs (escape goes "
                                   "to the Runs screen).")
    parser.add_argument("run_names", metavar="RUN", nargs="+", help="run directory or name (at least two)")
    _app_options(parser)
    parser.set_defaults(func=open_compare, parser=parser)


def _app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--theme", default=None, help="theme name (see themes/; default: the last one chosen)")
    parser.add_argument("--all", action="store_true",
                        help="list the runs outside the runs root too (when --runs or $TUITRAIN_RUNS chose one)")


def _root() -> Path | None:
    root = os.environ.get("TUITRAIN_RUNS")
    return Path(root) if root else None


def open_app(args: argparse.Namespace) -> int:
    """Run the app until the user quits; running trainings are left alone."""
    from tuitrain.ui.app import TuitrainApp

    return _run(TuitrainApp(runs_root=_root(), theme=getattr(args, "theme", None), show_all=getattr(args, "all", False)))


def compare_app(names: list[str], theme: str | None = None, show_all: bool = False):
    """The app, opening on the compare screen of the runs `names` (`UnknownRunError` for one
    that is not a run)."""
    from tuitrain.runs.registry import find_run
    from tuitrain.ui.app import TuitrainApp

    dirs = [find_run(name).run_dir for name in names]
    return TuitrainApp(runs_root=_root(), theme=theme, compare=dirs, show_all=show_all)


def open_compare(args: argparse.Namespace) -> int:
    """`tuitrain compare RUN RUN …`."""
    if len(args.run_names) < 2:
        args.parser.error("compare needs at least two runs")
    return _run(compare_app(args.run_names, getattr(args, "theme", None), getattr(args, "all", False)))


def _run(app) -> int:
    _stacks_on_sigusr1()
    app.run()
    return int(app.return_code or 0)


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` appends every thread's stack to STATE_DIR/app-stacks.txt: the way
    to see where an app that stopped answering is stuck (the terminal belongs to the UI)."""
    import faulthandler
    import signal

    from tuitrain.runs.registry import state_dir

    try:
        folder = state_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        dump = open(folder / "app-stacks.txt", "a", encoding="utf-8")  # noqa: SIM115 - open for the app's life
    except OSError:
        return  # a diagnostic only; the app runs without it
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
