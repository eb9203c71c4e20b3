"""Editing a preset file in place with tomlkit: comments, order and formatting survive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitrain.config import schema
from tuitrain.config.limits import check_text, read_preset_file
from tuitrain.config.locate import LineIndex
from tuitrain.config.problems import PresetErrors, Problem


class PresetDocument:
    """A preset's TOML text, edited key by key; `text()` is byte-identical when nothing changed."""

    def __init__(self, text: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._text = text
        self._doc = None  # the tomlkit document, parsed on first use

    @classmethod
    def load(cls, path) -> "PresetDocument":
        """Read a preset file (its bytes are kept exactly, line endings included)."""
        return cls(read_preset_file(path), path)

    def _parsed(self):
        import tomlkit
        from tomlkit.exceptions import ParseError

        if self._doc is None:
            label = str(self.path) if self.path else "<preset>"
            check_text(self._text, label)  # tomlkit recurses per nesting level too
            try:
                self._doc = tomlkit.parse(self._text)
            except ParseError as exc:
                raise PresetErrors([Problem(label, exc.line, "", f"TOML syntax error: {exc}")]) from None
        return self._doc

    def _table(self, group: str, create: bool):
        node = self._parsed()
        for part in group.split("."):
            if part not in node:
                if not create:
                    return None
                return self._create(group)
            node = node[part]
        return node

    def get(self, group: str, key: str, default: Any = None) -> Any:
        """The value of `group.key` as written (plain Python), or `default` when absent."""
        table = self._table(group, create=False)
        if table is None or key not in table:
            return default
        value = table[key]
        return value.unwrap() if hasattr(value, "unwrap") else value

    def set(self, group: str, key: str, value: Any) -> None:
        """Set `group.key` (group may be `task.options` or `launch.env`); a missing table is
        created at its place in group order. Every comment is kept."""
        table = self._table(group, create=True)
        table[key] = value

    def remove(self, group: str, key: str) -> None:
        """Delete `group.key` if present (its default applies again)."""
        table = self._table(group, create=False)
        if table is not None and key in table:
            del table[key]

    def _create(self, group: str):
        """Insert `[group]` before the first later group's table (and the comments above it)."""
        import tomlkit

        text = self.text()
        top = group.split(".")[0]
        order = list(schema.GROUP_KEYS)
        later = order[order.index(top) + 1:] if top in order else []
        if group == "task.options":
            later = order[1:]
        index = LineIndex(text)
        lines = text.splitlines(keepends=True)
        header_lines = [index.lines[(g,)] for g in later if (g,) in index.lines]
        header_lines += [n for path, n in index.lines.items() if path[0] in later and len(path) > 1
                         and n in _header_numbers(lines)]
        if header_lines:
            at = min(header_lines) - 1
            while at > 0 and lines[at - 1].lstrip().startswith("#"):
                at -= 1
            block = f"[{group}]\n\n"
            new_text = "".join(lines[:at]) + block + "".join(lines[at:])
        else:
            sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
            new_text = text + sep + f"[{group}]\n"
        self._doc = tomlkit.parse(new_text)
        node = self._doc
        for part in group.split("."):
            node = node[part]
        return node

    def text(self) -> str:
        """The document as TOML text."""
        return self._text if self._doc is None else self._doc.as_string()

    def save(self, path=None) -> Path:
        """Write the text to `path` (default: where it was loaded from), atomically."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise PresetErrors([Problem("<preset>", 0, "", "no path to save to", "pass a path")])
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(self.text().encode("utf-8"))
        tmp.replace(target)
        self.path = target
        return target


def _header_numbers(lines: list[str]) -> set[int]:
    return {i for i, line in enumerate(lines, start=1) if line.lstrip().startswith("[")}

