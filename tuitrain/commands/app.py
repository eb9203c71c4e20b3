"""`tuitrain ui` (and `tuitrain` with no command): open the Textual app.

Textual is imported only inside `open_app`, so other commands never pay for it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers) -> None:
    """Add the `ui` command."""
    parser = subparsers.add_parser("ui", help="open the terminal app (the default with no command)")
    parser.add_argument("--theme", default=None, help="theme name (see themes/; default tuitrain-dark)")
    parser.set_defaults(func=open_app)


def open_app(args: argparse.Namespace) -> int:
    """Run the app until the user quits; running trainings are left alone."""
    from tuitrain.ui.app import TuitrainApp

    _stacks_on_sigusr1()
    root = os.environ.get("TUITRAIN_RUNS")
    app = TuitrainApp(runs_root=Path(root) if root else None, theme=getattr(args, "theme", None))
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
