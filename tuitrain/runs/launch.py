"""Launching, resuming, stopping and killing runs; every spawn is a detached supervisor.

Each start holds the run's owner lock (`tuitrain.runlock`) from its check of the run's state
to the spawn, and passes it to the supervisor: two launches, resumes, app windows or a CLI
racing the app cannot start two trainers in one directory; the loser says who holds it.
Signals go only to processes proven to be the run's own (`tuitrain.runs.identity`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from tuitrain import procid
from tuitrain.errors import TuitrainError
from tuitrain.layout import ACTIVE_STATES, PRESET_TOML, STDOUT_LOG, checkpoint_step, file_mode, is_complete_checkpoint
from tuitrain.layout import latest_complete_checkpoint
from tuitrain.runlock import RunLock
from tuitrain.runs.identity import IdentityError, prove, require_own
from tuitrain.runs.lineage import parent_lineage, parent_record, rewind, start_lineage
from tuitrain.runs.registry import RunInfo, find_run, record_launched, run_info
from tuitrain.runs.rundir import atomic_write_text, claim_run_dir, read_run_json, records, update_run_json
from tuitrain.runs.state import run_alive
from tuitrain.runs.torchrun import engine_args, other_node_commands, torchrun_argv

__all__ = ["launch", "resume", "stop", "kill", "delete", "start_supervised", "start_run", "engine_argv",
           "torchrun_argv", "other_node_commands", "latest_checkpoint", "WrongStateError", "launch_env"]

ACTIVE = ACTIVE_STATES
# A stopping torchrun waits this long for its workers to checkpoint before it kills them.
TORCHRUN_SHUTDOWN_S = "600"


class WrongStateError(TuitrainError):
    """The run is not in a state that allows the asked operation."""


def _as_info(run: RunInfo | str | Path) -> RunInfo:
    return run if isinstance(run, RunInfo) else find_run(run)


def engine_argv(preset: Any, run_dir: Path, resume_from: str | None = None,
                lineage: dict[str, Any] | None = None) -> list[str]:
    """The trainer command for `preset`: local `python -m tuitrain.engine` or torchrun;
    `lineage` (a fork's `parent`, a rewind's `rewound`) goes into its `start` event."""
    launcher = getattr(getattr(preset, "launch", None), "launcher", "local") or "local"
    if launcher == "torchrun":
        return torchrun_argv(preset, run_dir, resume_from, lineage=lineage)
    if launcher != "local":
        raise TuitrainError(f"launch.launcher: unknown launcher {launcher!r} (use 'local' or 'torchrun')")
    return [sys.executable, *engine_args(run_dir, resume_from, lineage)]


def launch_env(preset: Any) -> dict[str, str]:
    """The environment a run's supervisor adds: torchrun's shutdown timeout, `[launch.env]`,
    `launch.visible_devices` as CUDA_VISIBLE_DEVICES."""
    launch = getattr(preset, "launch", None)
    env: dict[str, str] = {}
    if (getattr(launch, "launcher", "local") or "local") == "torchrun":
        env["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] = TORCHRUN_SHUTDOWN_S
    extra = getattr(launch, "env", None) or {}
    env.update({str(k): str(v) for k, v in dict(extra).items()})
    devices = getattr(launch, "visible_devices", None)
    if devices not in (None, ""):
        env["CUDA_VISIBLE_DEVICES"] = str(devices)
    return env


def start_supervised(run_dir: Path, argv: list[str], env: dict[str, str] | None = None,
                     lock: RunLock | None = None) -> int:
    """Spawn the detached supervisor for `argv` in `run_dir`; returns the supervisor's pid.

    The supervisor gets its own session (no controlling terminal: a closed SSH session or a
    killed launcher does not reach it) and writes stdout/stderr to `stdout.log`. It inherits
    `lock` (the run's owner lock, taken here when not given) and this process lets go of it.
    """
    run_dir = Path(run_dir)
    own_lock = lock is None
    if own_lock:
        lock = RunLock.acquire(run_dir, "launcher")
    try:
        full_env = dict(os.environ)
        full_env.update(env or {})
        package_root = str(Path(__file__).resolve().parents[2])
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, full_env.get("PYTHONPATH", "")) if p)
        log_fd = os.open(run_dir / STDOUT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         file_mode())
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tuitrain.runs.supervise", str(run_dir), "--lock-fd", str(lock.fd),
                 "--", *argv],
                stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
                start_new_session=True, env=full_env, close_fds=True, pass_fds=(lock.fd,),
            )
        finally:
            os.close(log_fd)
        identity = procid.identify(proc.pid)
        update_run_json(run_dir, argv=argv, supervisor_pid=proc.pid,
                        supervisor=identity.record() if identity else None)
    finally:
        lock.release()  # the supervisor holds its own copy now
    record_launched(run_dir)
    return proc.pid


def _wait_started(run_dir: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_run_json(run_dir).get("state") != "queued":
            return
        time.sleep(0.05)


def launch(preset_path: str | Path, overrides: Iterable[str] = (), output_dir: str | Path | None = None,
           detach: bool = True, name: str | None = None) -> RunInfo:
    """Create a run directory for the preset and start its trainer detached.

    `name`: the run's name (default `<preset>-<timestamp>`); one another run has is refused
    (`names.NameTakenError`, with a free name suggested). Without `output_dir` the run lives
    in `<runs root>/<name>`. With `detach=False` it returns once the trainer is spawned, so
    the caller can follow it. A preset whose `core.resume_from_checkpoint` is another run's
    checkpoint records that run as its parent (as a fork does).
    """
    from tuitrain.config import load_preset
    from tuitrain.runs.resume_source import resolve_resume_source

    preset = load_preset(Path(preset_path), list(overrides))
    resolve_resume_source(preset)  # "last" -> a path; a missing checkpoint is refused before mkdir
    source = preset.args.resume_from_checkpoint
    parent = parent_record(Path(source)) if source else None
    run_dir, lock = claim_run_dir(preset, output_dir=output_dir, name=name)
    try:
        if parent:
            update_run_json(run_dir, parent=parent)
        argv = engine_argv(preset, run_dir, lineage=parent_lineage(parent))
    except BaseException:
        lock.release()
        raise
    return start_run(run_dir, argv, preset, lock, detach)


def start_run(run_dir: Path, argv: list[str], preset: Any, lock: RunLock, detach: bool) -> RunInfo:
    """Spawn the supervised trainer of a claimed run (its lock passes on); with `detach=False`
    wait until it left `queued`. Returns the run's `RunInfo`."""
    start_supervised(run_dir, argv, launch_env(preset), lock)
    if not detach:
        _wait_started(run_dir)
    return run_info(run_dir)


def latest_checkpoint(run_dir: Path) -> str | None:
    """The name of the newest complete `checkpoint-N/` in `run_dir`, or None."""
    found = latest_complete_checkpoint(run_dir)
    return found.name if found else None


def _rewrite_preset(run_dir: Path, overrides: list[str]) -> Any:
    from tuitrain.config import load_preset

    current = run_dir / PRESET_TOML
    preset = load_preset(current, overrides)
    n = 1
    while (run_dir / f"preset.prev-{n}.toml").exists():
        n += 1
    shutil.copy2(current, run_dir / f"preset.prev-{n}.toml")
    atomic_write_text(current, preset.to_toml(), mode=os.stat(current).st_mode & 0o777)
    return preset


def checkpoint_to_resume(run_dir: Path, name: str, checkpoint: str | None) -> str:
    if checkpoint is None:
        found = latest_complete_checkpoint(run_dir)
        if found is None:
            raise WrongStateError(f"run {name} has no checkpoint to resume from (no complete checkpoint-N folder)")
        return found.name
    chosen = Path(checkpoint).name
    if checkpoint_step(chosen) is None or not (run_dir / chosen).exists():
        raise TuitrainError(f"{run_dir / chosen}: no such checkpoint (see the run's checkpoint-N folders)")
    if not is_complete_checkpoint(run_dir / chosen):
        latest = latest_complete_checkpoint(run_dir)
        other = f"; the newest complete one is {latest.name}" if latest else ""
        raise TuitrainError(f"{run_dir / chosen}: not a complete checkpoint (a save that did not finish){other}")
    return chosen


def resume(run: RunInfo | str | Path, checkpoint: str | None = None, overrides: Iterable[str] = (),
           detach: bool = True, trust_owner: bool = False, env: dict[str, str] | None = None) -> RunInfo:
    """Continue a stopped, finished or failed run in its own directory from a checkpoint.

    A `checkpoint` older than the run's newest one *rewinds* the run (`lineage.rewind`): the
    later checkpoints are set aside in `rewound/<time>/` and the run follows the new line.
    A run directory owned by another user is refused unless `trust_owner` (its plug-in code
    would run as you). `env` is added to the trainer's environment last (a sweep queue's
    `CUDA_VISIBLE_DEVICES` for the member's GPU).
    """
    info = _as_info(run)
    run_dir = info.run_dir
    require_own(run_dir, "resume", trust_owner,
                " (its preset's code would run as you; pass --trust-owner if you trust it)")
    if info.state in ACTIVE:
        raise WrongStateError(f"run {info.name} is {info.state}; stop it before resuming")
    with RunLock.acquire(run_dir, "launcher") as lock:
        info = run_info(run_dir)  # again, under the lock: nothing else can start it now
        if info.state in ACTIVE:
            raise WrongStateError(f"run {info.name} is {info.state}; stop it before resuming")
        chosen = checkpoint_to_resume(run_dir, info.name, checkpoint)
        from tuitrain.config import load_preset

        overrides = list(overrides)
        preset = _rewrite_preset(run_dir, overrides) if overrides else load_preset(run_dir / PRESET_TOML)
        engine_argv(preset, run_dir, chosen)  # an unknown launcher is refused before anything moves
        # the time trained so far, so that elapsed (in `ls` and the app) goes on from it
        trained, lineage, fields = info.elapsed_s, {}, {}
        data = read_run_json(run_dir)
        latest = latest_complete_checkpoint(run_dir)
        if latest is not None and checkpoint_step(chosen) < checkpoint_step(latest.name):
            record = rewind(run_dir, chosen, info.step)
            trained = record["line_seconds"]
            lineage.update(start_lineage(record))
            fields["rewinds"] = records(data.get("rewinds")) + [record]
        parent = data.get("parent")
        if isinstance(parent, dict) and parent.get("fork") and parent.get("checkpoint") == chosen:
            # a fork started again from the parent's checkpoint it began with (its first start
            # failed, or a rewind to it): that checkpoint holds the parent's settings
            lineage.update(parent_lineage(parent))
        update_run_json(run_dir, state="queued", resumed_from=chosen, pid=None, pgid=None, trainer=None,
                        supervisor=None, supervisor_pid=None, exit_code=None, ended=None, error=None,
                        final_status_lost=None, trained_before=trained, **fields)
        argv = engine_argv(preset, run_dir, chosen, lineage)
        start_supervised(run_dir, argv, {**launch_env(preset), **(env or {})}, lock)
    if not detach:
        _wait_started(run_dir)
    return run_info(run_dir)


def _signal(pid: int, sig: signal.Signals, what: str) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        raise IdentityError(f"not allowed to signal {what} (pid {pid}): it runs as another user") from None


def stop(run: RunInfo | str | Path) -> RunInfo:
    """Ask the run to stop gracefully: SIGTERM to its proven supervisor (which passes it to the
    trainer, or cancels a start not yet made), else to its proven trainer; the trainer
    finishes its step, saves a checkpoint and exits."""
    info = _as_info(run)
    run_dir = info.run_dir
    require_own(run_dir, "stop")
    data = read_run_json(run_dir)
    if info.state not in ACTIVE or not run_alive(run_dir, data):
        raise WrongStateError(f"run {info.name} is {info.state}, not running: nothing to stop")
    supervisor, trainer, why = prove(run_dir, data)
    target = supervisor or trainer
    if target is None:
        raise IdentityError(f"run {info.name}: cannot prove which process is its own ({why}); "
                            "nothing was signalled")
    update_run_json(run_dir, state="stopping")
    _signal(target.pid, signal.SIGTERM, "the run's " + ("supervisor" if supervisor else "trainer"))
    if trainer is not None:
        _signal(trainer.pid, signal.SIGCONT, "the run's trainer")  # a suspended trainer must act on it
    return run_info(run_dir)


def kill(run: RunInfo | str | Path) -> RunInfo:
    """SIGKILL the trainer's process group and every process below it (torchrun's workers lead
    groups of their own); no checkpoint, the run ends failed."""
    info = _as_info(run)
    run_dir = info.run_dir
    require_own(run_dir, "kill")
    data = read_run_json(run_dir)
    if info.state not in ACTIVE or not run_alive(run_dir, data):
        raise WrongStateError(f"run {info.name} is {info.state}, not running: nothing to kill")
    supervisor, trainer, why = prove(run_dir, data)
    if trainer is not None:
        below = procid.descendants(trainer.pid)
        try:
            os.killpg(trainer.pid, signal.SIGKILL)  # proven: the trainer leads this group
        except ProcessLookupError:
            pass
        except PermissionError:
            raise IdentityError(f"not allowed to kill the run's processes (group {trainer.pid})") from None
        for pid in below:
            _signal(pid, signal.SIGKILL, "a process of the run")
    elif supervisor is not None:
        _signal(supervisor.pid, signal.SIGKILL, "the run's supervisor")  # no trainer yet
    else:
        raise IdentityError(f"run {info.name}: cannot prove which process is its own ({why}); "
                            "nothing was killed")
    if supervisor is None or trainer is None:
        update_run_json(run_dir, state="failed", ended=time.time(), exit_code=-9,
                        error="killed by signal SIGKILL (tuitrain kill)")
    return run_info(run_dir)


def delete(run: RunInfo | str | Path) -> None:
    """Remove a run directory that is not active (holding its lock, so nothing starts meanwhile)."""
    info = _as_info(run)
    require_own(info.run_dir, "delete")
    with RunLock.acquire(info.run_dir, "launcher"):
        if run_info(info.run_dir).state in ACTIVE:
            raise WrongStateError(f"run {info.name} is {info.state}; stop or kill it first")
        shutil.rmtree(info.run_dir)
