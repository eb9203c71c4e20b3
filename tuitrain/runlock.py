"""One owner per run directory: an exclusive `flock` on `RUN_DIR/.owner.lock`.

A launcher takes it before it checks the run's state and keeps it across the spawn; the
supervisor inherits it and the trainer inherits it from the supervisor, so it is held for as
long as any of them lives (the kernel drops it when the last one exits, however it exits).
A second launcher, resume or engine finds it held and refuses in one line naming the
holder. The file holds the holders' identities (`procid.Identity` records) as JSON, so the
refusal can name a pid and a trainer can tell that the holder is its own supervisor.
Stdlib only.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from pathlib import Path

from tuitrain import procid
from tuitrain.errors import TuitrainError
from tuitrain.layout import OWNER_LOCK, file_mode

# How long an acquirer retries: a reader's probe holds the lock for microseconds.
_RETRY_S = 0.5
_MAX_CONTENT = 4096
# Run directories whose lock this process holds (taken by `RunLock.acquire`, not yet released).
_HELD_HERE: set[str] = set()


class RunInUseError(TuitrainError):
    """Another process owns the run directory."""


def _open(path: Path, create: bool) -> int:
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
    if create:
        flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(path, flags, file_mode(0o644))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def holders(run_dir: str | os.PathLike) -> dict[str, procid.Identity]:
    """The identities recorded in the lock file, by role (supervisor, trainer, launcher…)."""
    try:
        fd = _open(Path(run_dir) / OWNER_LOCK, create=False)
    except OSError:
        return {}
    try:
        raw = os.pread(fd, _MAX_CONTENT, 0)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    found = {}
    for role, record in data.items():
        identity = procid.Identity.from_record(record)
        if identity is not None:
            found[str(role)] = identity
    return found


def describe_holder(run_dir: str | os.PathLike) -> str:
    """`pid N (the run's trainer)` for the live holder, as well as the lock file says."""
    found = holders(run_dir)
    for role in ("trainer", "supervisor", "launcher"):
        identity = found.get(role)
        if identity is not None and procid.running(identity) is not None:
            return f"pid {identity.pid} (the run's {role})"
    return "another process"


def is_held(run_dir: str | os.PathLike) -> bool | None:
    """True while another process owns the run, False when none does (or this process
    does), None when it cannot be told (no lock file: a run of an older tuitrain, or not
    readable)."""
    if _key(run_dir) in _HELD_HERE:
        return False
    try:
        fd = _open(Path(run_dir) / OWNER_LOCK, create=False)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops the shared lock taken above
    return False


def _key(run_dir: str | os.PathLike) -> str:
    return os.path.realpath(run_dir)


def held_by_ancestor(run_dir: str | os.PathLike) -> bool:
    """Whether the run's owner is a process above this one (the trainer's own supervisor)."""
    above = set(procid.ancestors())
    return any(identity.pid in above and procid.running(identity) is not None
               for identity in holders(run_dir).values())


class RunLock:
    """The owner lock of one run directory, held through `fd` (inherit it to pass it on)."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir, self.fd = run_dir, fd

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike, role: str, retry_s: float = _RETRY_S,
                record: bool = True) -> "RunLock":
        """Take the lock (as `role`) or raise `RunInUseError` naming the holder. With
        `record=False` the lock file is left as it is (a fork reads its parent, and writes
        nothing into it)."""
        run_dir = Path(run_dir)
        try:
            fd = _open(run_dir / OWNER_LOCK, create=True)
        except OSError as exc:
            raise RunInUseError(f"{run_dir / OWNER_LOCK}: cannot open the run's lock "
                                f"({exc.strerror or exc}); check the folder's owner and permissions") from None
        deadline = time.monotonic() + retry_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunInUseError(
                        f"{run_dir}: in use by {describe_holder(run_dir)}; one trainer per run directory "
                        "(wait for it to end, or `tuitrain stop` it)") from None
                time.sleep(0.02)
        lock = cls(run_dir, fd)
        _HELD_HERE.add(_key(run_dir))
        if record:
            lock.set_holders({role: procid.identify(os.getpid())})
        return lock

    def set_holders(self, roles: dict[str, procid.Identity | None]) -> None:
        """Record who holds the lock now (replaces the earlier record)."""
        data = {role: identity.record() for role, identity in roles.items() if identity is not None}
        raw = json.dumps(data, sort_keys=True).encode()
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, raw, 0)
        except OSError:
            pass  # a full disk: the lock itself still holds; refusals name "another process"

    def release(self) -> None:
        """Close this process's descriptor; the lock stays held while a child holds its copy."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            _HELD_HERE.discard(_key(self.run_dir))

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
