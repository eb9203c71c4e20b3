"""The tail of a run's `stdout.log`, shown literally.

`read_new()` (called off the UI thread: by `poll()`'s worker, or by a screen's own watcher
thread) reads what was appended, from a byte offset, restarting when the file is replaced
or truncated, and posts the new lines; the widget appends them. Escape sequences, control
characters and `[markup]` are made visible, never interpreted.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import RichLog

from tuitrain.textfmt import escape_controls

MAX_LINES = 500
_READ_LIMIT = 256 * 1024


def visible(line: str) -> Text:
    """`line` as plain text with every control character shown as an escape (`\\x1b`)."""
    return Text(escape_controls(line, tab="    "), no_wrap=True)


class LogTail(RichLog):
    """Tails a log file on a worker thread; `poll()` checks for new lines."""

    class NewLines(Message):
        """Lines read from the log by the worker."""

        def __init__(self, lines: list[str]) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self, path: Path, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, wrap=False, markup=False, highlight=False, id=id, classes=classes)
        self.path = Path(path)
        self._offset = 0
        self._inode: tuple | None = None
        self._partial = b""

    def on_mount(self) -> None:
        # Start full (blank lines above the first real one): a RichLog that grows lays out the
        # whole screen on every write, one that stays MAX_LINES long only repaints itself.
        self.write(Text("\n" * (MAX_LINES - 1)))

    def poll(self) -> None:
        """Read what was appended, off the UI thread."""
        self._read()

    @work(thread=True, exclusive=True, group="logtail")
    def _read(self) -> None:
        self.read_new()

    def read_new(self) -> bool:
        """Read what was appended and post it (from a thread other than the UI's); True when
        there was something."""
        lines = self._read_lines()
        if lines:
            self.post_message(self.NewLines(lines))
        return bool(lines)

    def _read_lines(self) -> list[str]:
        try:
            stat = os.stat(self.path)
        except OSError:
            return []
        inode = (stat.st_dev, stat.st_ino)
        if inode != self._inode or stat.st_size < self._offset:
            # first read or a replaced file: start near its end
            self._inode = inode
            self._offset = max(0, stat.st_size - _READ_LIMIT)
            self._partial = b""
        if stat.st_size == self._offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(max(self._offset, stat.st_size - _READ_LIMIT))
            data = fh.read(_READ_LIMIT)
        self._offset = stat.st_size
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()[-_READ_LIMIT:]
        # a progress bar rewrites its line with \r: keep the last state of each line
        return [c.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1] for c in chunks[-MAX_LINES:]]

    def read_lines(self) -> list[str]:
        """What was appended since the last read (for a caller that writes them itself, in its
        own frame: `add_lines`)."""
        return self._read_lines()

    def add_lines(self, lines: list[str]) -> None:
        """Show `lines` (on the UI thread)."""
        # One write per batch: RichLog measures, renders, trims and scrolls per write, so a
        # run printing hundreds of lines a second stalled the UI thread line by line.
        batch = Text("\n", no_wrap=True).join(visible(line) for line in lines[-MAX_LINES:])
        self.write(batch)

    def on_log_tail_new_lines(self, message: NewLines) -> None:
        message.stop()
        self.add_lines(message.lines)
