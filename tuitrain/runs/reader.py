"""Incremental reading of `metrics.jsonl` from a byte offset.

Each `poll()` reads what was appended since the last one. A last line without its newline is
kept back until it is complete (the writer may be mid-line); a line that is not a JSON object
is skipped and counted. When the file is replaced (new inode) or truncated, reading restarts
from byte 0 and `restarts` counts it, so a consumer can rebuild its state.

`poll(CHUNK_BYTES)` reads at most that much, so a long backlog is decoded a chunk at a time
(never a million events alive at once); `behind` says whether more was there to read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from tuitrain import safeio
from tuitrain.layout import MAX_EVENT_BYTES

# A line longer than this is dropped as corrupt rather than buffered without bound
# (writers never emit one longer than MAX_EVENT_BYTES).
MAX_LINE_BYTES = max(8 * 1024 * 1024, MAX_EVENT_BYTES)
# What a consumer should read per poll: about 13k events of a typical `train` line.
CHUNK_BYTES = 1024 * 1024
# The most one `poll()` without `max_bytes` reads; `behind` says when more is left.
MAX_POLL_BYTES = 64 * 1024 * 1024


class MetricsReader:
    """Reads new events of one `metrics.jsonl`; see the module doc."""

    def __init__(self, path: Path | str, limit: int | None = None) -> None:
        self.path = Path(path)
        # Read no byte at or past this offset: a fork's view of its parent's log as it was
        # when the fork was made (the log is append-only). None: the whole file.
        self.limit = limit
        self.offset = 0
        self.size = 0  # the file's size at the last poll
        self.skipped = 0
        self.restarts = 0
        self._pending = b""
        self._discarding = False  # inside an over-long line, already counted: skip to its end
        self._inode: tuple[int, int] | None = None
        self._decode = json.JSONDecoder().decode
        # Why the file cannot be read (a FIFO or a device where the event log should be), or None.
        self.error: str | None = None

    def _check_replaced(self, st: os.stat_result) -> bool:
        ident = (st.st_dev, st.st_ino)
        replaced = self._inode is not None and (ident != self._inode or st.st_size < self.offset)
        self._inode = ident
        if replaced:
            self.offset = 0
            self._pending = b""
            self._discarding = False
            self.restarts += 1
        return replaced

    @property
    def behind(self) -> bool:
        """True when the last poll left bytes unread (it was given `max_bytes`)."""
        return self.offset < self.size

    def poll(self, max_bytes: int | None = None) -> list[dict[str, Any]]:
        """New complete events since the last call (possibly none), from at most `max_bytes`."""
        try:
            fd = safeio.open_regular(self.path)
        except FileNotFoundError:
            self.size = self.offset
            return []
        except OSError as exc:
            self.error = f"{self.path}: {exc.strerror or exc}"
            self.size = self.offset
            return []
        try:
            st = os.fstat(fd)
            self._check_replaced(st)
            self.size = st.st_size if self.limit is None else min(st.st_size, self.limit)
            self.error = None
            if self.size <= self.offset:
                return []
            data = os.pread(fd, min(max_bytes or MAX_POLL_BYTES, self.size - self.offset), self.offset)
        finally:
            os.close(fd)
        self.offset += len(data)
        if self._discarding:
            end = data.find(b"\n")
            if end < 0:
                return []
            data = data[end + 1:]
            self._discarding = False
        if self._pending:
            data = self._pending + data
        cut = data.rfind(b"\n")
        self._pending = data[cut + 1:]
        if len(self._pending) > MAX_LINE_BYTES:
            self._drop_pending()
        if cut < 0:
            return []
        lines = [line for line in data[:cut].decode("utf-8", errors="replace").split("\n") if line]
        # Fast path: the whole chunk as one JSON array. It is trusted only when it yields
        # exactly one object per line; otherwise each line is decoded on its own.
        try:
            batch = self._decode("[" + ",".join(lines) + "]")
        except (ValueError, RecursionError):
            batch = None
        if batch is not None and len(batch) == len(lines) and all(type(e) is dict for e in batch):
            return batch
        return self._decode_lines(lines)

    def catch_up(self, max_chunks: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Polls of `CHUNK_BYTES`, one list of events each, until the end of the file (or
        `max_chunks` polls, or a poll that read nothing), so a backlog is never decoded whole."""
        polls = 0
        while True:
            offset, restarts = self.offset, self.restarts
            yield self.poll(CHUNK_BYTES)
            polls += 1
            stalled = self.offset == offset and self.restarts == restarts
            if not self.behind or stalled or (max_chunks and polls >= max_chunks):
                return

    def _drop_pending(self) -> None:
        """Count the over-long line being buffered as one corrupt line and skip the rest of it."""
        self._pending = b""
        self._discarding = True
        self.skipped += 1

    def _decode_lines(self, lines: list[str]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        decode = self._decode
        for line in lines:
            try:
                event = decode(line)
            except (ValueError, RecursionError):
                self.skipped += 1
                continue
            if type(event) is dict:
                events.append(event)
            else:
                self.skipped += 1
        return events
