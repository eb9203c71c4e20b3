"""`tuitrain sweep PRESET --grid … [--zip …] [--sample …]` and `tuitrain sweep show SWEEP`.

A sweep's queue always runs detached (it survives the terminal); without `--detach` the
command follows it, one progress line per member, and prints the results table at the end.
Ctrl-C stops the sweep gracefully (each running member saves a checkpoint; `tuitrain resume
SWEEP` continues it); a second Ctrl-C leaves it running.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tuitrain.errors import TuitrainError
from tuitrain.textfmt import escape_controls

FOLLOW_POLL_S = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `sweep`."""
    p = subparsers.add_parser(
        "sweep", help="train a preset over a grid of settings (or `sweep show SWEEP`: its results)",
        description="tuitrain sweep PRESET --grid GROUP.KEY=V1,V2 …   |   tuitrain sweep show SWEEP "
                    "[--format table|json|csv] [--sort COLUMN]")
    p.add_argument("preset", metavar="PRESET", help="preset file or shipped preset name (or `show`)")
    p.add_argument("sweep", metavar="SWEEP", nargs="?", default=None, help="with `show`: the sweep's name or directory")
    p.add_argument("--grid", action="append", default=[], metavar="GROUP.KEY=V1,V2,…",
                   help="an axis of the cartesian product (repeatable); values are TOML, bare words strings")
    p.add_argument("--zip", action="append", default=[], metavar="GROUP.KEY=V1,V2,…",
                   help="keys varied together (equal lengths), each row combined with every grid point")
    p.add_argument("--sample", action="append", default=[], metavar="GROUP.KEY=DIST",
                   help="random search: loguniform(a,b), uniform(a,b), intuniform(a,b) or choice(v1,v2,…)")
    p.add_argument("--count", type=int, default=None, metavar="N", help="draws of the --sample distributions")
    p.add_argument("--sweep-seed", type=int, default=None, metavar="S", help="the draws' seed (default: a fresh one, recorded)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="a setting for every member (repeatable)")
    p.add_argument("--parallel", default=None, metavar="N|per-gpu",
                   help="members at once (default 1); per-gpu: one per GPU, each its own CUDA_VISIBLE_DEVICES")
    p.add_argument("--name", default=None, metavar="NAME", help="the sweep's name (default: <preset>-sweep)")
    p.add_argument("--detach", action="store_true", help="print the sweep's directory and return at once")
    p.add_argument("--format", default="table", choices=("table", "json", "csv"), help="with `show`: output format")
    p.add_argument("--sort", default=None, metavar="COLUMN",
                   help="with `show`: sort by a column or varied key (e.g. best_eval_loss, lr_scheduler_type)")
    p.add_argument("--desc", action="store_true", help="with `show --sort`: largest first")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    """`sweep show SWEEP`, or launch a sweep."""
    if args.preset == "show":
        return cmd_show(args)
    if args.sweep is not None:
        raise TuitrainError(f"sweep: unexpected argument {args.sweep!r} (did you mean `tuitrain sweep show {args.sweep}`?)")
    return cmd_launch(args)


def _spec(args: argparse.Namespace, preset_path) -> Any:
    from tuitrain.config import load_preset
    from tuitrain.sweeps.spec import combine, from_table, parse_cli

    cli = parse_cli(args.grid, args.zip, args.sample, args.sets, args.count, args.sweep_seed, args.parallel)
    preset = load_preset(preset_path)
    spec = combine(from_table(preset.sweep, str(preset_path)) if preset.sweep else None, cli)
    if spec.is_empty():
        raise TuitrainError("sweep: nothing varies (give --grid, --zip or --sample, or a [sweep] table in the preset)")
    return spec


def cmd_launch(args: argparse.Namespace) -> int:
    """Check every member, start the queue, and (without --detach) follow it."""
    from tuitrain.paths import resolve_preset_path
    from tuitrain.sweeps.queue import launch_sweep
    from tuitrain.sweeps.store import read_sweep

    path = resolve_preset_path(args.preset)
    spec = _spec(args, path)

    def refused(member: str, reason: str) -> None:
        print(f"refused {escape_controls(member)}: {escape_controls(reason)}")

    sweep_dir = launch_sweep(path, spec, name=args.name, on_refused=refused)
    info = read_sweep(sweep_dir)
    par = info.parallel
    print(f"sweep {escape_controls(info.name)}: {len(info.members)} members, {par} at once: {sweep_dir}")
    if args.detach:
        print(f"follow it with `tuitrain sweep show {info.name}`, stop it with `tuitrain stop {info.name}`")
        return 0
    return follow_sweep(sweep_dir)


def _member_lines(info: Any) -> list[str]:
    from tuitrain.runs.registry import run_info
    from tuitrain.runs.rundir import RunDirError
    from tuitrain.sweeps.table import progress_line

    width = max((len(m.name) for m in info.members), default=0)
    lines = []
    for m in info.members:
        try:
            r = run_info(m.dir)
            loss = r.last_loss if r.state != "diverged" else None  # a NaN-filtered mean means nothing there
            lines.append(progress_line(m.name.ljust(width), r.state, r.step, r.max_steps, loss))
        except (RunDirError, OSError):
            lines.append(progress_line(m.name.ljust(width), "unreadable", None, None, None))
    return lines


def follow_sweep(sweep_dir) -> int:
    """Show one progress line per member until the queue ends, then the results table.
    On a terminal the lines are redrawn in place; otherwise a member's line is printed when its
    state changes. Returns 0 when every member finished or diverged, 1 otherwise."""
    from tuitrain.sweeps.queue import stop_sweep
    from tuitrain.sweeps.results import rows
    from tuitrain.sweeps.store import progress_text, read_sweep
    from tuitrain.sweeps.table import table_text

    tty = sys.stdout.isatty()
    shown: list[str] = []
    last_state: dict[str, str] = {}
    stopping = False
    while True:
        try:
            info = read_sweep(sweep_dir)
            lines = _member_lines(info)
            if tty:
                if shown:
                    sys.stdout.write(f"\x1b[{len(shown) + 1}F\x1b[J")
                sys.stdout.write("\n".join(lines) + f"\n{progress_text(info)}\n")
                sys.stdout.flush()
                shown = lines
            else:
                for m, line in zip(info.members, lines):
                    state = line.split()[1] if len(line.split()) > 1 else ""
                    if last_state.get(m.name) != state:
                        last_state[m.name] = state
                        print(line, flush=True)
            if info.queue_state != "running":
                break
            time.sleep(FOLLOW_POLL_S)
        except KeyboardInterrupt:
            if stopping:
                print(f"\nleft running in the background: {sweep_dir} (`tuitrain sweep show`, `tuitrain stop`)")
                return 130
            stopping = True
            print("\nstopping the sweep (running members save a checkpoint); Ctrl-C again to leave it running")
            try:
                stop_sweep(sweep_dir)
            except TuitrainError as exc:
                print(exc.one_line(), file=sys.stderr)
    found = rows(info)
    print()
    print(table_text(found))
    print(f"\nsweep {escape_controls(info.name)}: {progress_text(info)} (queue {info.queue_state})")
    return 0 if all(r.get("state") in ("finished", "diverged") for r in found) else 1


def cmd_show(args: argparse.Namespace) -> int:
    """`tuitrain sweep show SWEEP [--format …] [--sort COLUMN]`."""
    from tuitrain.sweeps.queue import find_sweep
    from tuitrain.sweeps.results import rows, sort_rows
    from tuitrain.sweeps.store import progress_text
    from tuitrain.sweeps.table import csv_text, json_text, table_text

    if args.sweep is None:
        raise TuitrainError("sweep show: give the sweep's name or directory (e.g. `tuitrain sweep show shoot`)")
    info = find_sweep(args.sweep)
    found = rows(info)
    if args.sort:
        found = sort_rows(found, args.sort, descending=args.desc)
    if args.format == "json":
        print(json_text(found))
    elif args.format == "csv":
        sys.stdout.write(csv_text(found))
    else:
        print(f"sweep {escape_controls(info.name)}: {progress_text(info)} (queue {info.queue_state}): {info.dir}")
        for r in info.refused:
            print(f"refused {escape_controls(str(r.get('name')))}: {escape_controls(str(r.get('reason')))}")
        print(table_text(found))
    return 0
