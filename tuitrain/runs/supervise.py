"""The detached supervisor: `python -m tuitrain.runs.supervise RUN_DIR -- ARGV…`.

Started in its own session with stdout/stderr on `stdout.log`, so it outlives the terminal
that launched it. It spawns the trainer in a process group of its own (so `kill` can take
down the trainer, torchrun's workers and dataloader workers at once without touching the
supervisor), records pid / pgid / start time in `run.json`, waits, then records the exit
code, end time and final state. SIGTERM / SIGINT are forwarded to the trainer, which
finishes its step, saves a checkpoint and exits; SIGHUP is ignored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tuitrain.runs.rundir import read_run_json, update_run_json
from tuitrain.runs.state import last_status_event, log_tail, process_start_time


def final_state(run_dir: Path, exit_code: int) -> tuple[str, str | None]:
    """The state a run ends in, from the trainer's exit code and its last status event."""
    status = last_status_event(run_dir)
    reported = status.get("state") if status else None
    if reported in ("finished", "stopped") and exit_code == 0:
        return reported, None
    if exit_code == 0:
        return "finished", None
    if exit_code < 0:
        error = f"killed by signal {signal.Signals(-exit_code).name}"
    else:
        error = f"exited with code {exit_code}"
    if status and status.get("error"):
        error += f": {status['error']}"
    tail = log_tail(run_dir)
    return "failed", f"{error}\n{tail}" if tail else error


def supervise(run_dir: Path, argv: list[str]) -> int:
    """Run `argv` as the run's trainer and keep `run.json` current until it ends."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    update_run_json(run_dir, supervisor_pid=os.getpid(),
                    supervisor_started=process_start_time(os.getpid()))
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["TUITRAIN_RUN_DIR"] = str(run_dir)
    try:
        proc = subprocess.Popen(argv, cwd=os.getcwd(), env=env, process_group=0,
                                stdin=subprocess.DEVNULL)
    except OSError as exc:
        print(f"tuitrain: cannot start {argv[0]}: {exc}", flush=True)
        update_run_json(run_dir, state="failed", ended=time.time(), exit_code=127,
                        error=f"cannot start {argv[0]}: {exc}")
        return 127

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(proc.pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    update_run_json(
        run_dir, state="running", pid=proc.pid, pgid=proc.pid,
        pid_started=process_start_time(proc.pid), started=time.time(), argv=argv,
        ended=None, exit_code=None, error=None,
    )
    while True:
        try:
            code = proc.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for safety
            continue
    state, error = final_state(run_dir, code)
    update_run_json(run_dir, state=state, exit_code=code, ended=time.time(), error=error)
    print(f"tuitrain: run {state} (exit code {code})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `RUN_DIR -- ARGV…`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m tuitrain.runs.supervise RUN_DIR -- ARGV…", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    read_run_json(run_dir)
    return supervise(run_dir, argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
