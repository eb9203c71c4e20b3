"""Who a process is, proven from /proc before tuitrain ever signals it.

A pid alone proves nothing (pids are reused) and a wall-clock start time moves when the
clock is stepped (NTP, a resumed VM) and can be read by any user. A process is identified
here by its pid, its start time in clock ticks since boot (/proc/PID/stat field 22, which no
clock step changes) and the boot id (/proc/sys/kernel/random/boot_id), so a process of an
earlier boot never matches. Stdlib only; where /proc is missing nothing can be proven.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def boot_id() -> str | None:
    """This boot's id, or None where the kernel does not say."""
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat tuitrain uses."""

    pid: int
    state: str  # R, S, D, T (stopped), t, Z (zombie), X …
    ppid: int
    pgid: int
    start_ticks: int


def proc_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat parsed, or None when there is no such process (or no /proc)."""
    try:
        raw = (_PROC / str(int(pid)) / "stat").read_bytes()
    except (OSError, ValueError):
        return None
    # The command name is in parentheses and may itself hold spaces and parentheses.
    rest = raw[raw.rfind(b")") + 2:].split()
    try:
        # rest[0] is field 3 (state); field N is rest[N - 3].
        return ProcStat(int(pid), rest[0].decode(), int(rest[1]), int(rest[2]), int(rest[19]))
    except (IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str] | None:
    """The process's argv, or None when it cannot be read (gone, a zombie, no /proc)."""
    try:
        raw = (_PROC / str(int(pid)) / "cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if not raw:
        return None
    return [part.decode("utf-8", "surrogateescape") for part in raw.rstrip(b"\0").split(b"\0")]


def owner_uid(pid: int) -> int | None:
    """The real uid of the process, or None."""
    try:
        for line in (_PROC / str(int(pid)) / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class Identity:
    """A process as recorded: pid, start ticks since boot, boot id."""

    pid: int
    start_ticks: int
    boot_id: str

    def record(self) -> dict:
        """The JSON form stored in run.json."""
        return {"pid": self.pid, "start_ticks": self.start_ticks, "boot_id": self.boot_id}

    @classmethod
    def from_record(cls, data: object) -> "Identity | None":
        """The identity stored by `record()`, or None when `data` is not one (missing, old, garbage)."""
        if not isinstance(data, dict):
            return None
        pid, ticks, boot = data.get("pid"), data.get("start_ticks"), data.get("boot_id")
        if type(pid) is not int or pid <= 0 or type(ticks) is not int or not isinstance(boot, str) or not boot:
            return None
        return cls(pid, ticks, boot)


def identify(pid: int) -> Identity | None:
    """The identity of the live process `pid` now, or None."""
    stat, boot = proc_stat(pid), boot_id()
    if stat is None or boot is None:
        return None
    return Identity(int(pid), stat.start_ticks, boot)


def running(identity: Identity | None) -> ProcStat | None:
    """The stat of the process `identity` names when it still runs (same boot, same start
    ticks, not a zombie); None otherwise."""
    if identity is None or identity.boot_id != boot_id():
        return None
    stat = proc_stat(identity.pid)
    if stat is None or stat.start_ticks != identity.start_ticks or stat.state in ("Z", "X"):
        return None
    return stat


def ancestors(pid: int | None = None, limit: int = 64) -> list[int]:
    """The pids above `pid` (default: this process), parent first."""
    out: list[int] = []
    stat = proc_stat(os.getpid() if pid is None else pid)
    while stat is not None and stat.ppid > 0 and len(out) < limit:
        out.append(stat.ppid)
        stat = proc_stat(stat.ppid)
    return out


def group_members(pgid: int) -> list[int]:
    """The pids of process group `pgid` (scanning /proc)."""
    members = []
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return members
    for name in entries:
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None and stat.pgid == pgid and stat.state not in ("Z", "X"):
                members.append(stat.pid)
    return members


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children…), scanning /proc once."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return []
    for name in entries:
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None and stat.state not in ("Z", "X"):
                children.setdefault(stat.ppid, []).append(stat.pid)
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children.get(child, []))
    return out
