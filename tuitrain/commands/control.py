"""`tuitrain ls`, `tail RUN`, `stop RUN`, `kill RUN`: find and control runs from any shell."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tuitrain.textfmt import escape_controls
from tuitrain.textfmt import format_duration, format_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the run-control commands."""
    p = subparsers.add_parser("ls", help="list runs: state, progress, loss, ETA")
    p.add_argument("--all", action="store_true",
                   help="also the runs outside the runs root (when --runs or $TUITRAIN_RUNS chose one)")
    p.add_argument("--all-users", action="store_true", help="include run dirs owned by other users")
    p.set_defaults(func=cmd_ls)
    p = subparsers.add_parser("tail", help="show a run's events (like tail, -f to follow)")
    p.add_argument("run", metavar="RUN", help="run directory or name")
    p.add_argument("-n", type=int, default=20, help="events to show first (default 20)")
    p.add_argument("-f", "--follow", action="store_true", help="keep following new events")
    p.set_defaults(func=cmd_tail)
    p = subparsers.add_parser("stop", help="stop a run gracefully (it saves a checkpoint), or a sweep")
    p.add_argument("run", metavar="RUN", help="run directory or name, or a sweep's name (its queue and members)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    p.set_defaults(func=cmd_stop)
    p = subparsers.add_parser("kill", help="kill a run's processes at once (no checkpoint)")
    p.add_argument("run", metavar="RUN", help="run directory or name")
    p.set_defaults(func=cmd_kill)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape_controls(str(value))


def cmd_ls(args: argparse.Namespace) -> int:
    """Print the runs table (the runs under a chosen runs root, or with --all every one)."""
    from tuitrain.runs.registry import list_runs, root_is_chosen, runs_root, within_root

    found = list_runs(include_others=args.all_users, everywhere=True)
    scoped = root_is_chosen() and not getattr(args, "all", False)
    runs = [r for r in found if within_root(r.run_dir)] if scoped else found
    hidden = len(found) - len(runs)
    outside = f"{hidden} more outside {escape_controls(str(runs_root()))} (`tuitrain ls --all` lists them)"
    if not runs:
        print("no runs (start one with `tuitrain run PRESET`)" + (f"; {outside}" if hidden else ""))
        return 0
    rows = [("NAME", "STATE", "PROGRESS", "STEP", "LOSS", "ELAPSED", "ETA", "LAUNCHER")]
    for r in runs:
        progress = f"{r.progress * 100:.0f}%" if r.progress is not None else "-"
        step = f"{r.step if r.step is not None else '-'}/{r.max_steps or '-'}"
        loss = f"{r.last_loss:.4f}" if r.last_loss is not None else "-"
        rows.append((escape_controls(r.name), escape_controls(r.state_text), progress, step, loss,
                     format_duration(r.elapsed_s),
                     format_duration(r.eta_s), escape_controls(r.launcher or "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for r in runs:
        if r.state == "diverged":
            print(f"\n{escape_controls(r.name)} diverged: its loss became NaN/inf by step {r.step} "
                  "(stopped, checkpoint saved)")
        elif r.state in ("failed", "unreadable") and r.error:
            print(f"\n{escape_controls(r.name)} {r.state}: {escape_controls(r.error.splitlines()[0])}")
        elif r.summary and r.state == "finished":
            print(f"\n{escape_controls(r.name)} trained: {format_summary(r.summary)}")
    _print_sweeps({r.run_dir.parent for r in runs if r.sweep})
    if hidden:
        print(f"\n{outside}")
    return 0


def _print_sweeps(folders: set) -> None:
    """A line per sweep whose members are listed: `sweep shoot: 3/6 done, 2 running, 1 queued`."""
    from tuitrain.sweeps.queue import sweep_named
    from tuitrain.sweeps.store import SweepError, progress_text

    for folder in sorted(folders):
        try:
            info = sweep_named(folder)
        except SweepError:
            continue
        if info is not None:
            print(f"\nsweep {escape_controls(info.name)}: {progress_text(info)} (queue {info.queue_state}; "
                  f"`tuitrain sweep show {escape_controls(info.name)}`)")


def format_event(event: dict[str, Any]) -> str:
    """One event as a readable line."""
    kind = event.get("kind", "?")
    t = event.get("t")
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "--:--:--"
    step = event.get("step")
    head = f"{stamp} {escape_controls(str(kind)):<10} " + (f"step {step} " if step is not None else "")
    if kind == "sample":
        return head + "|\n" + sample_text(str(event.get("text", "")))
    if kind == "status":
        err = event.get("error")
        return head + escape_controls(str(event.get("state"))) + (f": {escape_controls(err)}" if err else "")
    if kind == "start":
        keys = ("run", "world_size", "max_steps", "resumed_from")
        return head + " ".join(f"{k}={_num(event[k])}" for k in keys if k in event) + _lineage(event)
    else:
        keys = tuple(k for k in event if k not in ("kind", "t", "step", "v", "config"))
    return head + " ".join(f"{escape_controls(k)}={_num(event[k])}" for k in keys if k in event)


def _lineage(start: dict[str, Any]) -> str:
    """` · rewound from step 40 (checkpoints set aside in rewound/…)`, ` · fork of a at checkpoint-30`."""
    out = ""
    rewound, parent = start.get("rewound"), start.get("parent")
    if isinstance(rewound, dict):
        out += (f" · rewound from step {_num(rewound.get('from_step'))} "
                f"(checkpoints set aside in {_num(rewound.get('folder'))})")
    if isinstance(parent, dict):
        out += f" · fork of {_num(parent.get('run'))} at {_num(parent.get('checkpoint'))}"
    return out


def fold_into(shown: Any, event: dict[str, Any]) -> None:
    """Append `event` to `shown` (a deque), the way readers fold a run's segments: a `start`
    that continues from step N first drops what `shown` holds past N (the line it replaces)."""
    step = event.get("step")
    if event.get("kind") == "start" and isinstance(step, int) and (
            event.get("resumed_from") is not None or event.get("rewound") is not None):
        while shown and not (isinstance(shown[-1].get("step"), (int, float)) and shown[-1]["step"] <= step):
            shown.pop()
    shown.append(event)


def sample_text(text: str, width: int | None = None, indent: str = "    ") -> str:
    """A generated sample as it reads: its own line breaks kept, each line wrapped to the
    terminal and indented; control characters (ANSI escapes included) shown as `\\xNN`."""
    import shutil
    import textwrap

    width = width or shutil.get_terminal_size((100, 24)).columns
    out = []
    for line in text.split("\n"):
        shown = escape_controls(line.rstrip("\r"), tab="    ")
        out += textwrap.wrap(shown, max(20, width - len(indent)), initial_indent=indent, subsequent_indent=indent,
                             replace_whitespace=False) or [""]
    return "\n".join(out)


def _tell_skipped(reader: Any, told: int) -> None:
    """Say on stderr how many unreadable lines the last poll skipped."""
    if reader.skipped > told:
        print(f"tuitrain: skipped {reader.skipped - told} unreadable line(s) in {reader.path}",
              file=sys.stderr, flush=True)


# Events `tail` holds beyond those it prints, for a rewind's start to drop the line it left.
TAIL_SLACK = 1000


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the last N events, then follow with -f until the run ends or Ctrl-C."""
    from collections import deque

    from tuitrain.errors import TuitrainError
    from tuitrain.runs.reader import MetricsReader
    from tuitrain.runs.registry import find_run, run_info
    from tuitrain.runs.rundir import METRICS

    info = find_run(args.run)
    reader = MetricsReader(info.run_dir / METRICS)
    if info.state == "unreadable":
        raise TuitrainError(f"run {info.name} is unreadable: {info.error}")
    # a chunk at a time, keeping only the last ones, so a long run's backlog is never all in
    # memory; folded as a run's segments are, so a rewound run shows the line it follows
    shown: deque = deque(maxlen=8 * max(args.n, 0) + TAIL_SLACK)
    for events in reader.catch_up():
        for event in events:
            fold_into(shown, event)
    for event in list(shown)[-args.n:] if args.n > 0 else ():
        print(format_event(event))
    sys.stdout.flush()
    _tell_skipped(reader, 0)
    if not args.follow:
        return 0
    try:
        while True:
            told = reader.skipped
            for event in reader.poll():
                print(format_event(event), flush=True)
            _tell_skipped(reader, told)
            if run_info(info.run_dir).state not in ("queued", "running", "stopping"):
                for event in reader.poll():
                    print(format_event(event), flush=True)
                return 0
            time.sleep(0.25)
    except KeyboardInterrupt:
        return 0


def cmd_stop_sweep(sweep: Any, timeout: float) -> int:
    """Stop a sweep's queue and its running members; wait for them to stop."""
    from tuitrain.sweeps.queue import stop_sweep
    from tuitrain.sweeps.store import member_states, progress_text

    info = stop_sweep(sweep)
    print(f"stopping sweep {escape_controls(info.name)}: no member starts any more; "
          "running members finish their step and save a checkpoint…")
    deadline = time.monotonic() + timeout
    while any(s in ("running", "stopping") for s in member_states(info).values()):
        if time.monotonic() > deadline:
            print(f"members still stopping after {timeout:g}s; they keep stopping in the background")
            return 1
        time.sleep(0.2)
    print(f"sweep {escape_controls(info.name)}: {progress_text(info)} (`tuitrain resume {escape_controls(info.name)}` "
          "continues it)")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop gracefully and wait for the `stopped` status (a sweep: its queue and members)."""
    from tuitrain.runs.launch import latest_checkpoint, stop
    from tuitrain.runs.registry import run_info
    from tuitrain.sweeps.queue import sweep_named

    sweep = sweep_named(args.run)
    if sweep is not None:
        return cmd_stop_sweep(sweep, args.timeout)
    info = stop(args.run)
    print(f"stopping {escape_controls(info.name)} (the trainer finishes its step and saves a checkpoint)…")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        info = run_info(info.run_dir)
        if info.state not in ("running", "stopping"):
            break
        time.sleep(0.2)
    else:
        print(f"still {info.state} after {args.timeout:g}s; it keeps stopping in the background "
              f"(`tuitrain kill {escape_controls(info.name)}` ends it at once)")
        return 1
    ckpt = latest_checkpoint(info.run_dir)
    where = f"; latest checkpoint {info.run_dir / ckpt}" if ckpt else "; no checkpoint was saved"
    print(f"{escape_controls(info.name)} is {escape_controls(info.state_text)}{where}")
    if info.state == "failed" and info.error:
        print(escape_controls(info.error))
    return 0 if info.state in ("stopped", "finished") else 1


def cmd_kill(args: argparse.Namespace) -> int:
    """SIGKILL the run's process group."""
    from tuitrain.runs.launch import kill
    from tuitrain.runs.registry import run_info

    info = kill(args.run)
    for _ in range(50):
        info = run_info(info.run_dir)
        if info.state not in ("running", "stopping", "queued"):
            break
        time.sleep(0.1)
    print(f"killed {escape_controls(info.name)}: now {escape_controls(info.state_text)}")
    return 0

