"""The run directory: creating it, and reading / updating `run.json` atomically."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from tuitrain.errors import TuitrainError

RUN_JSON = "run.json"
PRESET_TOML = "preset.toml"
METRICS = "metrics.jsonl"
STDOUT_LOG = "stdout.log"
LOCK_FILE = ".run.lock"

STATES = ("queued", "running", "stopping", "stopped", "finished", "failed")


class RunDirError(TuitrainError):
    """A run directory that cannot be created or read."""


def _default_mode(mode: int) -> int:
    # Never world-writable, whatever the umask says.
    return mode & ~0o002


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's exclusive lock (fcntl, advisory) for the block."""
    fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` via a temp sibling, fsync and rename (umask honoured)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, _default_mode(0o666 & ~umask))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_run_json(run_dir: Path | str) -> dict[str, Any]:
    """The run's `run.json` as a dict (`RunDirError` when missing or unreadable)."""
    path = Path(run_dir) / RUN_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{run_dir}: not a run directory (no {RUN_JSON})") from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: not a JSON object")
    return data


def update_run_json(run_dir: Path | str, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into `run.json` under the run's lock; atomic replace. Returns the result."""
    run_dir = Path(run_dir)
    with locked(run_dir):
        try:
            data = read_run_json(run_dir)
        except RunDirError:
            data = {}
        data.update(fields)
        atomic_write_text(run_dir / RUN_JSON, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


def _timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def prepare_output_dir(path: Path, overwrite: bool) -> None:
    """Create `path`, refusing an existing non-empty one unless `overwrite` (then clear it)."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"{path}: output_dir exists and is not empty "
                "(set core.overwrite_output_dir=true to clear it, or `tuitrain resume` to continue it)"
            )
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    st = path.stat()
    if st.st_mode & 0o002:
        os.chmod(path, _default_mode(st.st_mode & 0o7777))


def create_run_dir(preset: Any, output_dir: Path | str | None = None,
                   runs_root: Path | str | None = None) -> Path:
    """Create the run directory for `preset`, freeze its resolved preset, write `run.json`.

    `output_dir` wins, then the preset's own `output_dir`, then `<runs_root>/<preset>-<timestamp>`.
    """
    from tuitrain.runs.registry import runs_root as default_root

    args = getattr(preset, "args", None)
    preset_name = Path(str(getattr(preset, "path", "preset"))).stem or "preset"
    chosen = output_dir or (getattr(args, "output_dir", None) if args is not None else None)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_absolute() and runs_root is not None and output_dir is None:
            path = Path(runs_root) / path
    else:
        root = Path(runs_root) if runs_root else default_root()
        path = root / f"{preset_name}-{_timestamp()}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{preset_name}-{_timestamp()}-{n}"
    overwrite = bool(getattr(args, "overwrite_output_dir", False)) if args is not None else False
    prepare_output_dir(path, overwrite)
    path = path.resolve()
    atomic_write_text(path / PRESET_TOML, preset.to_toml())
    update_run_json(
        path,
        id=uuid.uuid4().hex[:12],
        name=path.name,
        state="queued",
        pid=None,
        pgid=None,
        host=socket.gethostname(),
        launcher=getattr(getattr(preset, "launch", None), "launcher", "local") or "local",
        argv=[],
        created=time.time(),
        started=None,
        ended=None,
        exit_code=None,
        resumed_from=None,
        preset_name=preset_name,
        uid=os.getuid(),
    )
    return path
