"""The queue process of one sweep: `python -m tuitrain.sweeps.runner SWEEP_DIR [--lock-fd N]`.

It holds the sweep directory's owner lock for its whole life (so readers can tell it lives),
starts members in order while fewer than `parallel` run, and ends when none is left to start
and none runs. A member that fails or diverges does not stop the others. With
`parallel = "per-gpu"` each running member gets a GPU of its own through
`CUDA_VISIBLE_DEVICES`. SIGTERM (`tuitrain stop SWEEP`) ends the queue: no member starts
any more (`stop_sweep` stops the running ones itself). Every start and end is appended to
`queue.jsonl` (`{"t", "event": "start" | "end" | "queue", "member", "state", "gpu"}`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tuitrain.errors import TuitrainError
from tuitrain.layout import ACTIVE_STATES, PRESET_TOML, latest_complete_checkpoint
from tuitrain.runlock import RunInUseError, RunLock
from tuitrain.runs import launch
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import RunDirError, read_run_json, update_run_json
from tuitrain.sweeps.store import SweepInfo, read_sweep, update_sweep

POLL_S = 0.5
QUEUE_EVENTS = "queue.jsonl"


def log_event(sweep_dir: Path, **fields: Any) -> None:
    """Append one event to the sweep's `queue.jsonl` (and say it on the queue's log)."""
    line = json.dumps({"t": time.time(), **fields})
    try:
        with open(sweep_dir / QUEUE_EVENTS, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        print(line, flush=True)
    except OSError:
        pass  # a full disk must not end the queue


def _never_started(run_dir: Path) -> bool:
    try:
        data = read_run_json(run_dir)
    except RunDirError:
        return False
    return data.get("state") == "queued" and not data.get("supervisor_pid") and not data.get("supervisor")


def start_member(run_dir: Path, gpu: str | None) -> None:
    """Start a member whose run directory the sweep claimed (its first start)."""
    from tuitrain.config import load_preset

    with RunLock.acquire(run_dir, "launcher") as lock:
        preset = load_preset(run_dir / PRESET_TOML)
        env = launch.launch_env(preset)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        update_run_json(run_dir, sweep_gpu=gpu)
        launch.start_supervised(run_dir, launch.engine_argv(preset, run_dir), env, lock)


def resume_member(run_dir: Path, gpu: str | None) -> None:
    """Continue a stopped member from its latest checkpoint (from scratch when it has none)."""
    if latest_complete_checkpoint(run_dir) is None:
        update_run_json(run_dir, state="queued", supervisor=None, supervisor_pid=None)
        return start_member(run_dir, gpu)
    update_run_json(run_dir, sweep_gpu=gpu)
    launch.resume(run_dir, env={"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else None)


class Queue:
    """The queue's bookkeeping: which members wait, which run, which GPU each has."""

    def __init__(self, sweep_dir: Path) -> None:
        self.dir = sweep_dir
        self.info: SweepInfo = read_sweep(sweep_dir)
        self.stop = False
        gpus: list[str] | None = None
        if self.info.parallel == "per-gpu":
            from tuitrain.sweeps.gpus import visible_gpus

            gpus = visible_gpus()
            if not gpus:
                raise TuitrainError("parallel = per-gpu: no GPU found")
        self.gpus = gpus
        self.limit = len(gpus) if gpus is not None else max(1, int(self.info.parallel))
        resumed = bool(self._record().get("resumed"))
        # Members a `resume` continues: those stopped when it came (a member a person stops by
        # hand while the queue runs stays stopped).
        self.to_resume = {m.name for m in self.info.members if resumed and self._state(m.dir) == "stopped"}
        self.running: dict[str, str | None] = {}  # member → its GPU
        for m in self.info.members:  # members left running by an earlier queue (stopped, then resumed)
            if self._state(m.dir) in ACTIVE_STATES and not _never_started(m.dir):
                self.running[m.name] = self._gpu_of(m.dir)

    def _record(self) -> dict[str, Any]:
        from tuitrain.sweeps.store import _load

        return _load(self.dir).get("queue") or {}

    @staticmethod
    def _state(run_dir: Path) -> str:
        try:
            return run_info(run_dir).state
        except (RunDirError, OSError):
            return "unreadable"

    @staticmethod
    def _gpu_of(run_dir: Path) -> str | None:
        try:
            gpu = read_run_json(run_dir).get("sweep_gpu")
        except RunDirError:
            return None
        return gpu if isinstance(gpu, str) else None

    def _free_gpu(self) -> str | None:
        if self.gpus is None:
            return None
        taken = set(self.running.values())
        return next(g for g in self.gpus if g not in taken)

    def reap(self) -> None:
        """Forget members that ended (and log how)."""
        for name in list(self.running):
            state = self._state(self.dir / name)
            if state not in ACTIVE_STATES:
                gpu = self.running.pop(name)
                log_event(self.dir, event="end", member=name, state=state, gpu=gpu)

    def waiting(self) -> list[Any]:
        """Members to start, in order: never started, or stopped and to be resumed."""
        out = []
        for m in self.info.members:
            if m.name in self.running:
                continue
            if _never_started(m.dir) or (m.name in self.to_resume and self._state(m.dir) == "stopped"):
                out.append(m)
        return out

    def step(self) -> bool:
        """Start what fits; False once nothing waits and nothing runs."""
        self.reap()
        waiting = self.waiting()
        while not self.stop and waiting and len(self.running) < self.limit:
            m = waiting.pop(0)
            gpu = self._free_gpu()
            try:
                if m.name in self.to_resume:
                    self.to_resume.discard(m.name)
                    resume_member(m.dir, gpu)
                else:
                    start_member(m.dir, gpu)
            except RunInUseError:  # started meanwhile by someone else (a `resume` by hand): it runs
                self.running[m.name] = None
                log_event(self.dir, event="start", member=m.name, gpu=None, by="another process")
                continue
            except TuitrainError as exc:  # this member cannot start; the others go on
                update_run_json(m.dir, state="failed", ended=time.time(), error=exc.one_line())
                log_event(self.dir, event="end", member=m.name, state="failed", error=str(exc))
                continue
            self.running[m.name] = gpu
            log_event(self.dir, event="start", member=m.name, gpu=gpu)
        return bool(self.running) or (bool(waiting) and not self.stop)


def run_queue(sweep_dir: Path, lock_fd: int | None) -> int:
    """The queue's loop, until every member ended or a stop came."""
    lock = RunLock(sweep_dir, lock_fd) if lock_fd is not None else RunLock.acquire(sweep_dir, "queue")
    from tuitrain import procid

    me = procid.identify(os.getpid())
    lock.set_holders({"queue": me})
    queue = Queue(sweep_dir)

    def on_term(_signum: int, _frame: object) -> None:
        queue.stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    update_sweep(sweep_dir, queue={"state": "running", "pid": os.getpid(), "identity": me.record() if me else None})
    log_event(sweep_dir, event="queue", state="running", parallel=queue.limit)
    while True:
        if not queue.step():
            break
        if queue.stop:
            break  # the members that run were asked to stop by `stop_sweep`
        time.sleep(POLL_S)
    final = "stopped" if queue.stop else "finished"
    update_sweep(sweep_dir, queue={"state": final, "ended": time.time()})
    log_event(sweep_dir, event="queue", state=final)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `SWEEP_DIR [--lock-fd N]`."""
    parser = argparse.ArgumentParser(prog="python -m tuitrain.sweeps.runner")
    parser.add_argument("sweep_dir")
    parser.add_argument("--lock-fd", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        return run_queue(Path(args.sweep_dir).resolve(), args.lock_fd)
    except TuitrainError as exc:
        print(exc.one_line(), flush=True)
        update_sweep(Path(args.sweep_dir), queue={"state": "stopped", "ended": time.time(), "error": str(exc)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
