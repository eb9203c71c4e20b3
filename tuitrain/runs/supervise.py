"""The detached supervisor: `python -m tuitrain.runs.supervise RUN_DIR [--lock-fd N] -- ARGV…`.

Started in its own session with stdout/stderr on `stdout.log`, so it outlives the terminal
that launched it. It holds the run's owner lock (inherited from the launcher through
`--lock-fd`, or taken here) and passes it to the trainer, which it spawns in a process
group of its own (so `kill` can take down the trainer, torchrun's workers and dataloader
workers at once without touching the supervisor). It records its own and the trainer's
identity (pid, start ticks since boot, boot id) in `run.json`, waits, then records the exit
code, end time and final state. SIGTERM / SIGINT are forwarded to the trainer, which
finishes its step, saves a checkpoint and exits; before the trainer exists they cancel the
start. SIGHUP is ignored. A `run.json` write that fails (a full disk) is kept and retried
until it succeeds, so the record catches up with the truth once space returns.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tuitrain import procid
from tuitrain.errors import TuitrainError
from tuitrain.layout import EXIT_UNRECORDED, restrict_umask
from tuitrain.runlock import RunLock
from tuitrain.runs.rundir import read_run_json, update_run_json
from tuitrain.runs.state import last_status_event, log_tail

# How long the supervisor keeps retrying a run.json write that fails (a disk that stays full).
RECORD_RETRY_S = 6 * 3600.0
_RETRY_EVERY_S = 2.0
# Errors that retrying cannot cure (the run directory is gone or not ours).
_FATAL = {errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS}


def final_state(run_dir: Path, exit_code: int, stop_requested: bool = False) -> tuple[str, str | None]:
    """The state a run ends in: the last `status` event decides; without one, the exit code."""
    status = last_status_event(run_dir)
    reported = status.get("state") if status else None
    if reported in ("finished", "stopped", "diverged"):
        # torchrun exits 1 after forwarding a SIGTERM; a stop that lands as the run ends
        # does too. The trainer's own last word is the truth.
        return reported, None
    if reported != "failed":
        if exit_code in EXIT_UNRECORDED:
            return EXIT_UNRECORDED[exit_code], None
        if stop_requested:
            return "stopped", None  # stopped during start-up, before any step
    if exit_code == 0:
        error = "the trainer exited (code 0) without a final status event (did the task call sys.exit()?)"
    elif exit_code < 0:
        error = f"killed by signal {signal.Signals(-exit_code).name}"
    else:
        error = f"exited with code {exit_code}"
    if status and status.get("error"):
        error += f": {status['error']}"
    tail = log_tail(run_dir)
    return "failed", f"{error}\n{tail}" if tail else error


class Recorder:
    """`update_run_json` that survives failures: fields that could not be written are kept and
    merged into the next attempt."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.pending: dict[str, Any] = {}
        self.failed_since: float | None = None

    def record(self, **fields: Any) -> bool:
        """Write `fields` (and anything still pending); True when run.json is current."""
        self.pending.update(fields)
        return self.flush()

    def flush(self) -> bool:
        """Retry what is pending; True when nothing is."""
        if not self.pending:
            return True
        try:
            update_run_json(self.run_dir, **self.pending)
        except OSError as exc:
            if exc.errno in _FATAL:
                self.pending.clear()
                return True
            if self.failed_since is None:
                self.failed_since = time.monotonic()
                _say(f"tuitrain: cannot update {self.run_dir / 'run.json'} ({exc.strerror or exc}); "
                     "retrying until it can")
            return False
        self.pending.clear()
        self.failed_since = None
        return True

    def finish(self, limit_s: float = RECORD_RETRY_S) -> None:
        """Retry until everything is written (or `limit_s` passes)."""
        deadline = time.monotonic() + limit_s
        while not self.flush() and time.monotonic() < deadline:
            time.sleep(_RETRY_EVERY_S)


def _peak_rss(run_dir: Path) -> int | None:
    """The trainer's peak resident memory in bytes (the supervisor's only child: its
    RUSAGE_CHILDREN), and no less than an earlier segment's (a resumed run's run.json)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak = int(peak if sys.platform == "darwin" else peak * 1024)  # Linux says KiB
    try:
        before = read_run_json(run_dir).get("peak_rss_bytes")
    except TuitrainError:
        before = None
    return max(peak, before) if isinstance(before, int) else peak or None


def _say(line: str) -> None:
    """A line on stdout.log; a full disk loses it, never the supervisor."""
    try:
        print(line, flush=True)
    except OSError:
        pass


def _take_lock(run_dir: Path, lock_fd: int | None) -> RunLock:
    if lock_fd is not None:
        return RunLock(run_dir, lock_fd)
    return RunLock.acquire(run_dir, "supervisor")


def supervise(run_dir: Path, argv: list[str], lock_fd: int | None = None) -> int:
    """Run `argv` as the run's trainer and keep `run.json` current until it ends."""
    stop = {"requested": False, "forwarded": 0, "received": 0}
    proc: subprocess.Popen | None = None

    def forward() -> None:
        while proc is not None and stop["forwarded"] < stop["received"]:
            stop["forwarded"] += 1
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def on_signal(signum: int, _frame: object) -> None:
        stop["requested"] = True
        stop["received"] += 1
        forward()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    restrict_umask()  # inherited by the trainer and everything it starts
    lock = _take_lock(run_dir, lock_fd)
    me = procid.identify(os.getpid())
    lock.set_holders({"supervisor": me})
    recorder = Recorder(run_dir)
    recorder.record(supervisor=me.record() if me else None, supervisor_pid=os.getpid())
    if stop["requested"]:
        recorder.record(state="stopped", ended=time.time(), exit_code=None, error=None)
        recorder.finish()
        _say("tuitrain: run stopped before its trainer started")
        return 0
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["TUITRAIN_RUN_DIR"] = str(run_dir)
    try:
        proc = subprocess.Popen(argv, cwd=os.getcwd(), env=env, process_group=0,
                                stdin=subprocess.DEVNULL, pass_fds=(lock.fd,))
    except OSError as exc:
        _say(f"tuitrain: cannot start {argv[0]}: {exc}")
        recorder.record(state="failed", ended=time.time(), exit_code=127, error=f"cannot start {argv[0]}: {exc}")
        recorder.finish()
        return 127
    forward()  # a stop that came while the trainer was being spawned
    trainer = procid.identify(proc.pid)
    lock.set_holders({"supervisor": me, "trainer": trainer})
    recorder.record(
        state="stopping" if stop["requested"] else "running", pid=proc.pid, pgid=proc.pid,
        trainer=trainer.record() if trainer else None, started=time.time(), argv=argv,
        ended=None, exit_code=None, error=None,
    )
    while True:
        try:
            code = proc.wait(timeout=_RETRY_EVERY_S if recorder.pending else None)
            break
        except subprocess.TimeoutExpired:
            recorder.flush()
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for safety
            continue
    state, error = final_state(run_dir, code, stop["requested"])
    fields: dict[str, Any] = {"state": state, "exit_code": code, "ended": time.time(), "error": error,
                              "peak_rss_bytes": _peak_rss(run_dir)}
    if code in EXIT_UNRECORDED:
        fields["final_status_lost"] = True
    recorder.record(**fields)
    recorder.finish()
    _say(f"tuitrain: run {state} (exit code {code})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `RUN_DIR [--lock-fd N] -- ARGV…`."""
    argv = sys.argv[1:] if argv is None else argv
    lock_fd = None
    if len(argv) >= 3 and argv[1] == "--lock-fd":
        lock_fd = int(argv[2])
        argv = [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m tuitrain.runs.supervise RUN_DIR [--lock-fd N] -- ARGV…", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    try:
        read_run_json(run_dir)
        return supervise(run_dir, argv[2:], lock_fd)
    except TuitrainError as exc:
        _say(exc.one_line())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
