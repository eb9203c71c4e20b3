"""Reading files of a run directory that may be hostile: regular files only, never unbounded.

A run directory can hold anything: a FIFO where `metrics.jsonl` should be (an `open()`
would wait forever for a writer), a symlink to `/dev/zero` (a `read()` would fill memory),
a 10 GB file. Every read of a run's files goes through here: the open never blocks
(`O_NONBLOCK`), anything but a regular file is refused (`fstat` + `S_ISREG`) with
`NotRegularFile`, and every read has a byte limit. Stdlib only.
"""

from __future__ import annotations

import errno
import os
import stat


class NotRegularFile(OSError):
    """The path exists but is a FIFO, a device, a directory, a socket…"""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike) -> int:
    """A read-only descriptor on `path`, which must be a regular file (symlinks followed).

    Raises `FileNotFoundError` (and other `OSError`s) as `open` does, and `NotRegularFile`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, f"is {_kind(mode)}, not a regular file", str(path))
    return fd


def read_range(path: str | os.PathLike, offset: int, limit: int) -> tuple[bytes, int]:
    """At most `limit` bytes of `path` from `offset`, and the file's size at the read."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        return _read_at(fd, offset, max(0, min(limit, size - offset))), size
    finally:
        os.close(fd)


def read_head(path: str | os.PathLike, limit: int) -> bytes:
    """The first `limit` bytes of `path` at most."""
    return read_range(path, 0, limit)[0]


def read_tail(path: str | os.PathLike, limit: int) -> bytes:
    """The last `limit` bytes of `path` at most."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - limit)
        return _read_at(fd, start, size - start)
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, limit: int, what: str = "file") -> str:
    """The whole of a small UTF-8 file; `ValueError` when it is longer than `limit` bytes."""
    data, size = read_range(path, 0, limit + 1)
    if len(data) > limit or size > limit:
        raise ValueError(f"{what} is {size} bytes, more than the {limit} expected")
    return data.decode("utf-8")


def _read_at(fd: int, offset: int, count: int) -> bytes:
    chunks, done = [], 0
    while done < count:
        chunk = os.pread(fd, min(count - done, 1 << 20), offset + done)
        if not chunk:  # the file shrank meanwhile
            break
        chunks.append(chunk)
        done += len(chunk)
    return b"".join(chunks)


def is_regular(path: str | os.PathLike) -> bool:
    """Whether `path` is (or links to) a regular file."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


__all__ = ["NotRegularFile", "open_regular", "read_range", "read_head", "read_tail", "read_text",
           "is_regular"]
