"""The embedded training engine: `python -m tuitrain.engine RUN_DIR [--resume-from checkpoint-N] [--lineage JSON]`.

Imports torch (never textual or tomlkit); reads `RUN_DIR/preset.toml` with stdlib tomllib.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tuitrain.engine",
                                     description="Train the preset of a tuitrain run directory.")
    parser.add_argument("run_dir", help="the run directory holding preset.toml")
    parser.add_argument("--resume-from", default=None, metavar="checkpoint-N",
                        help="continue from this checkpoint of the run directory")
    parser.add_argument("--lineage", default=None, metavar="JSON",
                        help="where this start sits in the run's lineage, for its start event: "
                             '{"parent": {…}} (a fork) or {"rewound": {…}} (a rewind); written by `tuitrain`')
    parser.add_argument("--allow-foreign-checkpoint", action="store_true",
                        help="core.resume_from_checkpoint may name another trainer's checkpoint: its weights "
                        "alone are loaded (a pickle only with torch.load(weights_only=True))")
    return parser.parse_args(argv)


# The keys `--lineage` may give the `start` event (docs/internals.md, "Lineage").
LINEAGE_KEYS = ("parent", "rewound")


def parse_lineage(text: str | None) -> dict:
    """`--lineage`'s JSON object, holding only `LINEAGE_KEYS` (each an object)."""
    from tuitrain.errors import TuitrainError

    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TuitrainError(f"--lineage: not JSON ({exc})") from None
    if not isinstance(data, dict) or any(k not in LINEAGE_KEYS or not isinstance(v, dict) for k, v in data.items()):
        raise TuitrainError(f"--lineage: expected an object with {' / '.join(LINEAGE_KEYS)} objects")
    return data


def _fail_early(run_dir: Path, exc: BaseException) -> int:
    """A failure before the trainer exists: traceback to stderr, a `status` failed event."""
    from tuitrain.errors import TuitrainError

    from .events import EventWriter

    line = exc.one_line() if isinstance(exc, TuitrainError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TuitrainError):
        print(line, file=sys.stderr, flush=True)
    else:
        print(traceback.format_exc(), file=sys.stderr, flush=True)
    if int(os.environ.get("RANK", "0")) == 0 and run_dir.is_dir():
        try:
            writer = EventWriter(run_dir)
        except OSError as why:  # the event log cannot be opened: the exit code and stderr still tell
            print(f"tuitrain: cannot record the failure in {run_dir}: {why.strerror or why}", file=sys.stderr)
            return 1
        writer.emit("status", state="failed", error=(line.splitlines() or [type(exc).__name__])[0])
        writer.close()
    return 1


# The run's owner lock when this process took it itself (a trainer started by hand).
_owner_lock = None


def _own_run(run_dir: Path):
    """The run's owner lock for a trainer started by hand (None when its supervisor holds it,
    or on a rank that writes nothing); `RunInUseError` when another process owns the run."""
    from tuitrain import runlock

    if int(os.environ.get("RANK", "0")) != 0 or not run_dir.is_dir() or runlock.held_by_ancestor(run_dir):
        return None
    return runlock.RunLock.acquire(run_dir, "trainer")


def main(argv: list[str] | None = None) -> int:
    """Run the trainer on a run directory; returns 0 (finished or stopped), 1 (failed), or
    `layout.EXIT_*_UNRECORDED` when the final status event could not be written."""
    opts = _parse(argv)
    run_dir = Path(opts.run_dir)
    from tuitrain.layout import restrict_umask

    from .events import tolerate_output_errors
    from .signals import install_early

    install_early()  # a stop while torch imports or the task builds ends the run as stopped
    restrict_umask()  # nothing the run writes is world-writable
    tolerate_output_errors()  # a full disk under stdout.log never ends training
    try:
        from tuitrain.runlock import RunInUseError

        global _owner_lock
        _owner_lock = _own_run(run_dir)  # held for the life of the process
    except RunInUseError as exc:
        print(exc.one_line(), file=sys.stderr, flush=True)
        return 1  # another trainer owns the run: write nothing into it
    try:
        from tuitrain.config import load_preset
        from tuitrain.errors import TuitrainError

        from .trainer import Trainer

        preset_path = run_dir / "preset.toml"
        if not preset_path.is_file():
            raise TuitrainError(f"{preset_path}: no such file (is {run_dir} a tuitrain run directory?)")
        trainer = Trainer(load_preset(preset_path), run_dir, resume_from=opts.resume_from,
                          lineage=parse_lineage(opts.lineage), allow_foreign_checkpoint=opts.allow_foreign_checkpoint)
        try:
            return trainer.train()
        finally:
            trainer.close()
    except Exception as exc:  # noqa: BLE001 - every failure to start (or restart) is recorded in the run
        return _fail_early(run_dir, exc)
    except SystemExit as exc:  # the task's code called sys.exit(): the run did not finish
        from tuitrain.errors import TuitrainError

        return _fail_early(run_dir, TuitrainError(
            f"the task called sys.exit({exc.code!r}) before the run ended (a task must return, not exit)"))
