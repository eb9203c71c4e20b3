"""Launching, stopping and resuming a sweep: its directory, its members' run directories, and
the detached queue process (`tuitrain.sweeps.runner`) that starts them.

Every member is checked before anything is created (`expand`); members this machine's device
cannot train are refused up front, one line each, and the others run. Each member's run
directory is claimed at once (state `queued`, its preset frozen with its values), so
`tuitrain ls`, `tail` and the app show it before it starts. The queue process has its own
session, as a run's supervisor does: a closed terminal, SSH session or app does not reach it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tuitrain import procid
from tuitrain.errors import TuitrainError
from tuitrain.layout import file_mode
from tuitrain.runlock import RunLock
from tuitrain.runs.names import check_name, names_lock, require_free, run_names, free_name
from tuitrain.runs.registry import record_launched, runs_root
from tuitrain.runs.rundir import claim_run_dir, update_run_json
from tuitrain.sweeps.expand import Member, draw_seed, expand
from tuitrain.sweeps.spec import SweepSpec
from tuitrain.sweeps.store import FORMAT, SweepError, SweepInfo, queue_alive, read_sweep, update_sweep, write_sweep

__all__ = ["launch_sweep", "stop_sweep", "resume_sweep", "find_sweep", "sweep_named", "device_refusals", "QUEUE_LOG"]

QUEUE_LOG = "queue.log"
# The queue process's command (the sweep directory and `--lock-fd N` follow).
RUNNER = (sys.executable, "-m", "tuitrain.sweeps.runner")


def device_refusals(members: list[Member]) -> dict[str, str]:
    """Member name → why this machine's device cannot train it, decided by the trainer's own
    precision checks (`tuitrain.engine.device_check`, in a child process: no torch here)."""
    picky = [m for m in members if any(m.preset.values().get(k) for k in (
        "precision.fp16", "precision.bf16", "precision.tf32", "precision.fp16_full_eval", "precision.bf16_full_eval"))]
    if not picky:
        return {}
    payload = json.dumps([{"name": m.name, "toml": m.preset.to_toml()} for m in picky])
    proc = subprocess.run([sys.executable, "-m", "tuitrain.engine.device_check"], input=payload,
                          capture_output=True, text=True, env=_child_env())
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TuitrainError(f"could not check which members this device can train: {tail}")
    return json.loads(proc.stdout)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


def _sweep_name(preset_path: Path, name: str | None, root: Path) -> str:
    if name is not None:
        check_name(name)
        return require_free(name, root)
    base = preset_path.stem or "sweep"
    return free_name(f"{base}-sweep", set(run_names(root)) | ({p.name for p in root.iterdir()} if root.is_dir() else set()))


def launch_sweep(preset_path: str | Path, spec: SweepSpec, name: str | None = None, root: str | Path | None = None,
                 detach: bool = True, on_refused: Callable[[str, str], None] | None = None) -> Path:
    """Check every member, create the sweep's directory and its members' run directories, and
    start the detached queue; returns the sweep directory. `on_refused(member, reason)` hears of
    each member the device cannot train (they are recorded in sweep.json and not started).
    `detach` is accepted for symmetry with `launch`: the queue is always detached; the
    foreground command follows it (`tuitrain sweep` without `--detach`)."""
    preset_path = Path(preset_path)
    if spec.seed is None and spec.sample:
        spec = SweepSpec(spec.grid, spec.zip, spec.sample, spec.sets, spec.count, draw_seed(), spec.parallel)
    members = expand(preset_path, spec)
    parallel = spec.parallel if spec.parallel is not None else 1
    if parallel == "per-gpu":
        from tuitrain.sweeps.gpus import visible_gpus

        if not visible_gpus():
            raise TuitrainError("--parallel per-gpu: no GPU found on this machine (give a number, e.g. --parallel 2)")
    refused = device_refusals(members)
    runnable = [m for m in members if m.name not in refused]
    if not runnable:
        first = next(iter(refused.items()))
        raise TuitrainError(f"no member of this sweep can train on this device (member {first[0]}: {first[1]})")
    root = Path(root) if root is not None else runs_root()
    root.mkdir(parents=True, exist_ok=True)
    with names_lock():
        sweep_name = _sweep_name(preset_path, name, root)
        sweep_dir = root / sweep_name
        try:
            sweep_dir.mkdir(mode=file_mode(0o777))
        except FileExistsError:
            raise TuitrainError(f"{sweep_dir}: exists; choose another --name") from None
    sweep_dir = sweep_dir.resolve()
    data: dict[str, Any] = {
        "format": FORMAT, "name": sweep_name, "preset": str(preset_path.resolve()), "created": time.time(),
        "axes": spec.axes_record(), "count": spec.count, "seed": spec.seed, "parallel": parallel,
        "members": [{"name": m.name, "dir": m.name, "values": m.values} for m in runnable],
        "refused": [{"name": m.name, "values": m.values, "reason": refused[m.name]} for m in members
                    if m.name in refused],
        "queue": {"state": "running", "pid": None, "host": socket.gethostname(), "started": time.time(), "ended": None},
    }
    write_sweep(sweep_dir, data)
    for m in members:
        if m.name in refused and on_refused is not None:
            on_refused(m.name, refused[m.name])
    for m in runnable:
        run_dir, lock = claim_run_dir(m.preset, output_dir=sweep_dir / m.name, preset_name=preset_path.stem)
        try:
            update_run_json(run_dir, name=f"{sweep_name}/{m.name}", sweep=sweep_name, sweep_values=m.values)
        finally:
            lock.release()
        record_launched(run_dir)
    start_queue(sweep_dir)
    return sweep_dir


def start_queue(sweep_dir: Path) -> int:
    """Spawn the detached queue process of `sweep_dir` (it inherits the sweep's owner lock);
    returns its pid. `SweepError` when a queue of this sweep already runs."""
    from tuitrain.runlock import RunInUseError

    try:
        lock = RunLock.acquire(sweep_dir, "launcher")
    except RunInUseError:
        raise SweepError(f"sweep {sweep_dir.name}: its queue is already running") from None
    try:
        log_fd = os.open(sweep_dir / QUEUE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, file_mode())
        try:
            proc = subprocess.Popen(
                [*RUNNER, str(sweep_dir), "--lock-fd", str(lock.fd)],
                stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT, start_new_session=True,
                env=_child_env(), close_fds=True, pass_fds=(lock.fd,),
            )
        finally:
            os.close(log_fd)
        identity = procid.identify(proc.pid)
        update_sweep(sweep_dir, queue={"state": "running", "pid": proc.pid, "ended": None,
                                       "identity": identity.record() if identity else None})
    finally:
        lock.release()
    return proc.pid


def find_sweep(sweep: SweepInfo | str | Path, root: str | Path | None = None) -> SweepInfo:
    """The sweep `sweep` names: a `SweepInfo`, a sweep directory, or a sweep's name (or a
    unique prefix of one) under the runs root; `SweepError` otherwise."""
    if isinstance(sweep, SweepInfo):
        return sweep
    from tuitrain.sweeps.store import is_sweep_dir, list_sweeps
    from tuitrain.textfmt import closest

    path = Path(sweep).expanduser()
    if is_sweep_dir(path):
        return read_sweep(path)
    root = Path(root) if root is not None else runs_root()
    if is_sweep_dir(root / str(sweep)):
        return read_sweep(root / str(sweep))
    names = [s.name for s in list_sweeps(root)]
    starts = [n for n in names if n.startswith(str(sweep))]
    if len(starts) == 1:
        return read_sweep(root / starts[0])
    if starts:
        raise SweepError(f"sweep {str(sweep)!r} is ambiguous: it starts {', '.join(sorted(starts))}")
    near = closest(str(sweep), names)
    raise SweepError(f"unknown sweep {str(sweep)!r}" + (f" (did you mean {near!r}?)" if near else
                                                       " (see `tuitrain ls`)"))


def sweep_named(word: str | Path, root: str | Path | None = None) -> SweepInfo | None:
    """The sweep `word` is exactly (its directory, or its name under the runs root), else None:
    `tuitrain stop` / `resume` take a sweep where they take a run."""
    from tuitrain.sweeps.store import is_sweep_dir

    root = Path(root) if root is not None else runs_root()
    for path in (Path(word).expanduser(), root / str(word)):
        if is_sweep_dir(path):
            return read_sweep(path)
    return None


def stop_sweep(sweep: SweepInfo | str | Path) -> SweepInfo:
    """Stop the queue (no member starts any more) and ask every running member to stop (each
    saves a checkpoint). `resume_sweep` continues them and starts the rest."""
    info = find_sweep(sweep)
    from tuitrain.runs.launch import stop
    from tuitrain.runs.registry import run_info
    from tuitrain.layout import ACTIVE_STATES
    from tuitrain.runs.state import run_alive
    from tuitrain.runs.rundir import read_run_json

    alive = queue_alive(info.dir)
    update_sweep(info.dir, queue={"state": "stopped", "ended": time.time()})
    if alive:
        _signal_queue(info)
        deadline = time.monotonic() + 10.0
        while queue_alive(info.dir) and time.monotonic() < deadline:  # no member starts after this
            time.sleep(0.05)
    stopped = 0
    for entry in info.members:
        try:
            member = run_info(entry.dir)
            if member.state in ACTIVE_STATES and run_alive(entry.dir, read_run_json(entry.dir)):
                stop(member)
                stopped += 1
        except TuitrainError:
            continue  # ended meanwhile
    if not alive and not stopped:
        raise SweepError(f"sweep {info.name} is not running (its queue is {info.queue_state}): nothing to stop")
    return read_sweep(info.dir)


def _signal_queue(info: SweepInfo) -> None:
    """SIGTERM to the queue process, when it is proven to be the one recorded."""
    from tuitrain.sweeps.store import _load

    record = (_load(info.dir).get("queue") or {}).get("identity")
    identity = procid.Identity.from_record(record)
    if identity is not None and procid.running(identity) is not None:
        try:
            os.kill(identity.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def resume_sweep(sweep: SweepInfo | str | Path) -> SweepInfo:
    """Start the queue again: stopped members resume from their latest checkpoint, queued ones
    start, as slots allow. Failed, diverged and finished members are left as they are."""
    info = find_sweep(sweep)
    if queue_alive(info.dir):
        raise SweepError(f"sweep {info.name}: its queue is already running")
    from tuitrain.sweeps.store import member_states

    states = member_states(info)
    if not any(s in ("queued", "stopped", "stopping", "running") for s in states.values()):
        raise SweepError(f"sweep {info.name}: every member has ended (nothing to resume; "
                         "`tuitrain resume SWEEP/MEMBER` continues one member)")
    update_sweep(info.dir, queue={"state": "running", "started": time.time(), "ended": None, "resumed": True})
    start_queue(info.dir)
    return read_sweep(info.dir)
