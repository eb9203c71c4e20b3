"""Bounds on a preset before and after it is parsed: size, nesting depth, string length.

TOML parsers recurse once per level of nesting, so a preset nested a few hundred levels
deep raised `RecursionError` out of `tomllib` (and tomlkit) wherever a preset was read;
and a 10 MB string ended up in the `start` event of every run. Every reader of preset text
checks it here first and gets one located line per problem. Stdlib only.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Iterator

from tuitrain import safeio
from tuitrain.config.problems import PresetErrors, Problem

MAX_PRESET_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_STRING_CHARS = 64 * 1024


def _skip_string(text: str, i: int) -> tuple[int, int]:
    """The index after the string that starts at `i`, and the newlines inside it."""
    for quote in ('"""', "'''"):
        if text.startswith(quote, i):
            j = i + 3
            while j < len(text) and not text.startswith(quote, j):
                j += 2 if quote == '"""' and text[j] == "\\" else 1
            end = min(len(text), j + 3)
            return end, text.count("\n", i, end)
    quote = text[i]
    j = i + 1
    while j < len(text) and text[j] not in (quote, "\n"):
        j += 2 if quote == '"' and text[j] == "\\" else 1
    return j + 1, 0


def deepest(text: str) -> tuple[int, int]:
    """(the deepest nesting of arrays and inline tables in TOML `text`, its line)."""
    depth = best = 0
    best_line = line = 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "\"'":
            i, newlines = _skip_string(text, i)
            line += newlines
            continue
        elif c in "[{":
            depth += 1
            if depth > best:
                best, best_line = depth, line
        elif c in "]}":
            depth = max(0, depth - 1)
        i += 1
    return best, best_line


def _too_large(label: str, size: int) -> PresetErrors:
    return PresetErrors([Problem(label, 0, "", f"is {size} bytes; a preset holds at most {MAX_PRESET_BYTES}",
                                 "keep data in files and give their paths")])


def read_preset_file(path) -> str:
    """The text of a preset file, or `PresetErrors` with one located line when it is missing,
    not a regular file (a FIFO would block the open, `/dev/zero` fill memory), too large,
    binary (a NUL byte), UTF-16, UTF-8 behind a byte-order mark, or not UTF-8."""
    label = str(path)

    def problem(message: str, suggestion: str = "", line: int = 0) -> PresetErrors:
        return PresetErrors([Problem(label, line, "", message, suggestion)])

    try:
        raw, size = safeio.read_range(path, 0, MAX_PRESET_BYTES + 1)
    except FileNotFoundError:
        raise problem("no such file", "check the path, or `tuitrain preset new PATH` writes one") from None
    except safeio.NotRegularFile as exc:
        if os.path.isdir(path):
            raise problem("is a folder, not a preset file") from None
        raise problem(exc.strerror) from None
    except OSError as exc:
        raise problem(f"cannot read: {exc.strerror or exc}") from None
    if max(size, len(raw)) > MAX_PRESET_BYTES:
        raise _too_large(label, max(size, len(raw)))

    def where(offset: int) -> tuple[int, int]:
        """(line, column) of a byte offset, both from 1."""
        return raw.count(b"\n", 0, offset) + 1, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise problem("is UTF-16 text, not UTF-8", "save the file as UTF-8", 1)
    if raw.startswith(b"\xef\xbb\xbf"):
        raise problem("starts with a byte-order mark", "save the file as UTF-8 without a BOM", 1)
    if (nul := raw.find(b"\0")) >= 0:
        line, column = where(nul)
        raise problem(f"a NUL byte at column {column}: a binary file, not TOML text", "choose a .toml preset", line)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = where(exc.start)
        raise problem(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column})",
                      "save the file as UTF-8", line) from None


def check_text(text: str, label: str) -> None:
    """`PresetErrors` when the text is too large or nested too deeply to parse safely."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_PRESET_BYTES:
        raise _too_large(label, size)
    depth, line = deepest(text)
    if depth > MAX_DEPTH:
        raise PresetErrors([Problem(label, line, "", f"values nested {depth} levels deep (at most {MAX_DEPTH})",
                                    "flatten the value")])


def _strings(value: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(inner, path + (str(key),))
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner, path)


def long_strings(data: dict) -> Iterator[tuple[tuple, int]]:
    """(key path, length) of every string longer than MAX_STRING_CHARS in parsed data."""
    for path, text in _strings(data, ()):
        if len(text) > MAX_STRING_CHARS:
            yield path, len(text)


def load_toml(text: str, label: str) -> dict:
    """`tomllib.loads` within the bounds above; any failure is `PresetErrors` (one line each)."""
    check_text(text, label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetErrors([Problem(label, getattr(exc, "lineno", 0) or 0, "", f"TOML syntax error: {exc}")]) from None
    except RecursionError:  # defence in depth: check_text bounds the nesting
        raise PresetErrors([Problem(label, 0, "", "nested too deeply to read", "flatten the value")]) from None
    problems = [Problem(label, 0, ".".join(path), f"a string of {n} characters (at most {MAX_STRING_CHARS})",
                        "keep long text in a file and give its path") for path, n in long_strings(data)]
    if problems:
        raise PresetErrors(problems)
    return data
