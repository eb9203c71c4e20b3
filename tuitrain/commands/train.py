"""`tuitrain run PRESET`, `tuitrain resume RUN` and `tuitrain fork RUN`: start, continue or fork a run.

The trainer always runs under a detached supervisor, so a run started in the foreground
survives a closed terminal too. In the foreground the command streams the run's
`stdout.log`; Ctrl-C asks for a graceful stop (a checkpoint is saved), a second Ctrl-C
leaves the run going in the background.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tuitrain.errors import TuitrainError
from tuitrain.textfmt import escape_controls


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `run`, `resume` and `fork`."""
    p = subparsers.add_parser("run", help="start training a preset")
    p.add_argument("preset", metavar="PRESET", help="preset file or shipped preset name")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="override a preset field (repeatable)")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="the run's name (default: <preset>-<timestamp>); a name another run has is refused")
    p.add_argument("--output-dir", default=None, metavar="DIR", help="run directory (default: under the runs root)")
    p.add_argument("--detach", action="store_true", help="print the run directory and return at once")
    p.set_defaults(func=cmd_run)
    p = subparsers.add_parser("resume", help="continue a run from a checkpoint, in its own directory (or a sweep)")
    p.add_argument("run", metavar="RUN", help="run directory, name or a unique prefix of a name; or a sweep's name")
    p.add_argument("--checkpoint", default=None, metavar="checkpoint-N",
                   help="default: the latest; an older one rewinds the run (the later checkpoints move to "
                        "RUN/rewound/<time>/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="change a preset field for the rest of the run (the old preset is kept)")
    p.add_argument("--detach", action="store_true", help="print the run directory and return at once")
    p.add_argument("--trust-owner", action="store_true",
                   help="resume a run directory owned by another user (its preset's code runs as you)")
    p.set_defaults(func=cmd_resume)
    p = subparsers.add_parser("fork", help="start a new run from a run's checkpoint (the run is not touched)")
    p.add_argument("run", metavar="RUN", help="run directory, name or a unique prefix of a name")
    p.add_argument("--checkpoint", default=None, metavar="checkpoint-N", help="default: the latest")
    p.add_argument("--name", default=None, metavar="NAME", help="the fork's name (default: <run>-from-<step>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="change a setting of the run's preset for the fork (honoured or refused, as on resume)")
    p.add_argument("--detach", action="store_true", help="print the fork's directory and return at once")
    p.add_argument("--trust-owner", action="store_true",
                   help="fork a run directory owned by another user (its preset's code runs as you)")
    p.set_defaults(func=cmd_fork)


def _printable(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return "\n".join("\r".join(escape_controls(part) for part in line.split("\r")) for line in text.split("\n"))


# The most of stdout.log one look at it reads.
_PUMP_BYTES = 1024 * 1024


def follow(run_dir: Path, offset: int = 0) -> int:
    """Stream `stdout.log` from `offset` until the run ends; Ctrl-C stops it gracefully."""
    from tuitrain import safeio
    from tuitrain.runs.launch import stop
    from tuitrain.runs.registry import run_info
    from tuitrain.runs.rundir import STDOUT_LOG

    log = run_dir / STDOUT_LOG
    stopping = False

    def pump() -> None:
        nonlocal offset
        try:
            data, size = safeio.read_range(log, offset, _PUMP_BYTES)
        except OSError:  # not there yet, or not a regular file: nothing to show
            return
        if size < offset:
            offset = 0  # replaced or truncated
            return
        if data:
            cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
            if not cut and len(data) == _PUMP_BYTES:
                cut = len(data)  # one endless line: show it in pieces
            if cut:
                sys.stdout.write(_printable(data[:cut]))
                sys.stdout.flush()
                offset += cut

    while True:
        try:
            pump()
            info = run_info(run_dir)
            if info.state not in ("queued", "running", "stopping"):
                time.sleep(0.1)
                pump()
                print(f"run {escape_controls(info.name)} {escape_controls(info.state_text)}: {run_dir}")
                return 0 if info.state in ("finished", "stopped") else 1
            time.sleep(0.2)
        except KeyboardInterrupt:
            if stopping:
                print(f"\nleft running in the background: {run_dir} (`tuitrain ls`, `tuitrain stop`)")
                return 130
            stopping = True
            print("\nstopping gracefully (saving a checkpoint); Ctrl-C again to leave it running")
            try:
                stop(run_dir)
            except Exception as exc:  # the run may have ended in between
                print(f"tuitrain: {exc}", file=sys.stderr)


def _start_offset(run_dir: Path) -> int:
    try:
        return os.path.getsize(run_dir / "stdout.log")
    except OSError:
        return 0


def _print_other_nodes(run_dir: Path, resume_from: str | None = None) -> None:
    from tuitrain.config import load_preset
    from tuitrain.runs.torchrun import other_node_commands

    preset = load_preset(run_dir / "preset.toml")
    if getattr(preset.launch, "launcher", "local") != "torchrun":
        return
    commands = other_node_commands(preset, run_dir, resume_from)
    if commands:
        print("run on each other node (same run directory path, e.g. shared storage):")
        for command in commands:
            print(f"  {command}")


def cmd_run(args: argparse.Namespace) -> int:
    """Start a run; follow it unless --detach."""
    from tuitrain.paths import resolve_preset_path
    from tuitrain.runs.launch import launch

    info = launch(resolve_preset_path(args.preset), args.overrides, args.output_dir, detach=args.detach,
                  name=args.name)
    print(f"run {info.name}: {info.run_dir}")
    _print_other_nodes(info.run_dir)
    if args.detach:
        return 0
    return follow(info.run_dir)


def cmd_resume(args: argparse.Namespace) -> int:
    """Resume a run (or a sweep: its queue, stopped members first); follow it unless --detach."""
    from tuitrain.runs.launch import resume
    from tuitrain.runs.registry import find_run
    from tuitrain.sweeps.queue import resume_sweep, sweep_named

    sweep = sweep_named(args.run)
    if sweep is not None:
        if args.checkpoint or args.overrides:
            raise TuitrainError("resume SWEEP: --checkpoint and --set apply to one run (`tuitrain resume SWEEP/MEMBER`)")
        info = resume_sweep(sweep)
        print(f"resumed sweep {escape_controls(info.name)}: its stopped members continue from their latest "
              f"checkpoints, the queued ones start ({info.parallel} at once)")
        if args.detach:
            return 0
        from tuitrain.commands.sweep import follow_sweep

        return follow_sweep(info.dir)
    run_dir = find_run(args.run).run_dir
    offset = _start_offset(run_dir)
    rewinds = len(_run_json(run_dir).get("rewinds") or ())
    info = resume(run_dir, args.checkpoint, args.overrides, detach=args.detach, trust_owner=args.trust_owner)
    data = _run_json(run_dir)
    resumed = data.get("resumed_from")
    done = data.get("rewinds") or ()
    if len(done) > rewinds and isinstance(done[-1], dict):
        moved = ", ".join(done[-1].get("checkpoints") or ()) or "nothing"
        print(f"rewound {escape_controls(info.name)} to {resumed}: the line past it is abandoned "
              f"({escape_controls(moved)} set aside in {run_dir / str(done[-1].get('folder') or '')})")
    else:
        print(f"resumed {escape_controls(info.name)} from {info.run_dir / (resumed or '')}")
    _print_other_nodes(info.run_dir, resumed)
    if args.detach:
        return 0
    return follow(info.run_dir, offset)


def cmd_fork(args: argparse.Namespace) -> int:
    """Fork a run; follow the fork unless --detach."""
    from tuitrain.runs.fork import fork

    info = fork(args.run, args.checkpoint, args.name, args.overrides, detach=args.detach,
                trust_owner=args.trust_owner)
    parent = _run_json(info.run_dir).get("parent") or {}
    print(f"run {escape_controls(info.name)}: {info.run_dir} (a fork of {escape_controls(str(parent.get('run')))} "
          f"at {parent.get('checkpoint')})")
    _print_other_nodes(info.run_dir, parent.get("checkpoint"))
    if args.detach:
        return 0
    return follow(info.run_dir)


def _run_json(run_dir: Path) -> dict:
    from tuitrain.runs.rundir import read_run_json

    return read_run_json(run_dir)
