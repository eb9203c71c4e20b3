"""The embedded training engine: `python -m tuitrain.engine RUN_DIR [--resume-from checkpoint-N]`.

Imports torch (never textual or tomlkit); reads `RUN_DIR/preset.toml` with stdlib tomllib.
"""

from __future__ import annotations

import argparse
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
    return parser.parse_args(argv)


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
        writer = EventWriter(run_dir)
        writer.emit("status", state="failed", error=(line.splitlines() or [type(exc).__name__])[0])
        writer.close()
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the trainer on a run directory; returns 0 (finished or stopped) or 1 (failed)."""
    opts = _parse(argv)
    run_dir = Path(opts.run_dir)
    try:
        from tuitrain.config import load_preset
        from tuitrain.errors import TuitrainError

        from .trainer import Trainer

        preset_path = run_dir / "preset.toml"
        if not preset_path.is_file():
            raise TuitrainError(f"{preset_path}: no such file (is {run_dir} a tuitrain run directory?)")
        trainer = Trainer(load_preset(preset_path), run_dir, resume_from=opts.resume_from)
        try:
            return trainer.train()
        finally:
            trainer.close()
    except Exception as exc:  # noqa: BLE001 - every failure to start (or restart) is recorded in the run
        return _fail_early(run_dir, exc)
