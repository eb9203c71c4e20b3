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

from tuitrain import safeio
from tuitrain.errors import TuitrainError
from tuitrain.layout import (
    BOOKKEEPING, METRICS, PRESET_TOML, RUN_JSON, RUN_JSON_LOCK, SECRET_FILE_MODE, STATES, STDOUT_LOG, file_mode,
)
from tuitrain.runlock import RunLock

LOCK_FILE = RUN_JSON_LOCK
# run.json is a few kB; anything much larger is not one.
MAX_RUN_JSON_BYTES = 1024 * 1024

__all__ = ["RUN_JSON", "PRESET_TOML", "METRICS", "STDOUT_LOG", "STATES", "RunDirError", "locked",
           "atomic_write_text", "read_run_json", "records", "update_run_json", "prepare_output_dir", "create_run_dir",
           "claim_run_dir"]


class RunDirError(TuitrainError):
    """A run directory that cannot be created or read."""


def _default_mode(mode: int) -> int:
    # Never world-writable, whatever the umask says.
    return mode & ~0o002


@contextlib.contextmanager
def flocked(path: Path, mode: int) -> Iterator[None]:
    """Hold an exclusive advisory lock (fcntl) on the lock file `path` (created with `mode`,
    never through a symlink)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def locked(run_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the lock of `run.json` while it is read and rewritten."""
    return flocked(Path(run_dir) / LOCK_FILE, file_mode(0o644))


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write `text` to `path` via a temp sibling, fsync and rename.

    The file gets `mode`, or by default 0666 less the umask, never world-writable.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json_object(folder: Path | str, name: str, limit: int, error: type[Exception], kind: str) -> dict[str, Any]:
    """`folder/name` as a JSON object, read boundedly (a regular file only); `error` with one
    line when it is missing (`folder` is then not a `kind`), unreadable or not an object."""
    path = Path(folder) / name
    try:
        data = json.loads(safeio.read_text(path, limit, name))
    except FileNotFoundError:
        raise error(f"{folder}: not a {kind} (no {name})") from None
    except OSError as exc:
        raise error(f"{path}: unreadable ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: not a JSON object")
    return data


def read_run_json(run_dir: Path | str) -> dict[str, Any]:
    """The run's `run.json` as a dict (`RunDirError` when missing or unreadable)."""
    return read_json_object(run_dir, RUN_JSON, MAX_RUN_JSON_BYTES, RunDirError, "run directory")


def records(value: Any) -> list[dict[str, Any]]:
    """The objects of a run.json list (`rewinds`), anything else left out."""
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


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
    """Create `path`, refusing an existing non-empty one unless `overwrite` (then clear it).

    The run's lock files do not count: the caller may already hold the owner lock.
    """
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path}: exists and is not a directory")
    used = [c for c in path.iterdir() if c.name not in BOOKKEEPING] if path.is_dir() else []
    if used:
        if not overwrite:
            raise RunDirError(
                f"{path}: output_dir exists and is not empty "
                "(set core.overwrite_output_dir=true to clear it, or `tuitrain resume` to continue it)"
            )
        for child in used:
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True, mode=file_mode(0o777))
    st = path.stat()
    if st.st_mode & 0o002:
        os.chmod(path, _default_mode(st.st_mode & 0o7777))


def _new_path(preset_name: str, root: Path, taken: Any = ()) -> Path:
    """A fresh `<root>/<preset>-<timestamp>[-n]` whose name no run has (`taken`), created here
    (mkdir is the atomic claim)."""
    root.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        name = f"{preset_name}-{_timestamp()}" + (f"-{n}" if n > 1 else "")
        try:
            if name in taken:
                raise FileExistsError(name)
            path = root / name
            path.mkdir(mode=file_mode(0o777))
            return path
        except FileExistsError:
            n += 1


def _named_path(name: str, root: Path, taken: dict) -> Path:
    """`<root>/<name>`, created here; a name a run has (or a folder there) is refused with a
    free one suggested."""
    from tuitrain.runs.names import NameTakenError, free_name, require_free

    require_free(name, taken=taken)
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    try:
        path.mkdir(mode=file_mode(0o777))
    except FileExistsError:
        suggestion = free_name(name, set(taken) | {p.name for p in root.iterdir()})
        raise NameTakenError(f"run name {name!r} is taken ({path} exists); try {suggestion!r}", suggestion) from None
    return path


def _chosen_path(chosen: Any, runs_root: Path | str | None, relative_to_root: bool) -> Path:
    path = Path(chosen).expanduser()
    if not path.is_absolute() and runs_root is not None and relative_to_root:
        path = Path(runs_root) / path
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path}: exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True, mode=file_mode(0o777))
    return path


def claim_run_dir(preset: Any, output_dir: Path | str | None = None, runs_root: Path | str | None = None,
                  name: str | None = None, preset_name: str | None = None) -> tuple[Path, RunLock]:
    """Create the run directory for `preset` holding its owner lock; freeze the resolved
    preset and write `run.json`. The caller passes the lock on to the supervisor.

    `output_dir` wins, then the preset's own `output_dir`, then `<runs_root>/<name>` (`name`
    default: `<preset>-<timestamp>`). A `name` another run has is refused with a free one
    suggested (`names.NameTakenError`); the check and the claim hold `names.names_lock()`.
    A directory another launcher or trainer owns is refused (`RunInUseError`).
    """
    from tuitrain.runs.names import names_lock, require_free, run_names
    from tuitrain.runs.registry import runs_root as default_root

    args = getattr(preset, "args", None)
    preset_name = preset_name or Path(str(getattr(preset, "path", "preset"))).stem or "preset"
    chosen = output_dir or (getattr(args, "output_dir", None) if args is not None else None)
    root = Path(runs_root) if runs_root else default_root()
    with names_lock():
        taken = run_names(root)
        if chosen:
            if name:
                require_free(name, taken=taken)
            path = _chosen_path(chosen, runs_root, output_dir is None)
        elif name:
            path = _named_path(name, root, taken)
        else:
            path = _new_path(preset_name, root, taken)
        return _claim(path, preset, preset_name, name)


def _claim(path: Path, preset: Any, preset_name: str, name: str | None) -> tuple[Path, RunLock]:
    from tuitrain.config.integrations import holds_secret

    args = getattr(preset, "args", None)
    lock = RunLock.acquire(path, "launcher")
    try:
        overwrite = bool(getattr(args, "overwrite_output_dir", False)) if args is not None else False
        prepare_output_dir(path, overwrite)
        path = path.resolve()
        lock.run_dir = path
        secret = hasattr(preset, "values") and holds_secret(preset.values())
        atomic_write_text(path / PRESET_TOML, preset.to_toml(), mode=SECRET_FILE_MODE if secret else None)
        update_run_json(
            path,
            id=uuid.uuid4().hex[:12],
            name=name or path.name,
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
    except BaseException:
        lock.release()
        raise
    return path, lock


def create_run_dir(preset: Any, output_dir: Path | str | None = None,
                   runs_root: Path | str | None = None, name: str | None = None) -> Path:
    """`claim_run_dir` for a caller that starts no trainer now (the lock is let go)."""
    path, lock = claim_run_dir(preset, output_dir, runs_root, name)
    lock.release()
    return path
