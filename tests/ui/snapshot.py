"""SVG snapshots compared with files under tests/ui/snapshots (UPDATE_SNAPSHOTS=1 rewrites them).

A mismatch writes the new frame beside the stored one as `NAME.actual.svg` and names the
rows whose text differs, so a failure in CI says what changed without opening the SVGs.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"
_TEXT = re.compile(r'<text class="terminal-r\d+" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>')


def normalise(svg: str) -> str:
    """The drawing alone: Textual names the SVG's CSS classes after a hash of the whole frame."""
    return re.sub(r"terminal-\d+", "terminal", svg)


def text_rows(svg: str) -> dict[float, str]:
    """The frame's text by row (y position), spans joined left to right."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in _TEXT.findall(normalise(svg)):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return {y: "".join(t for _, t in sorted(spans)) for y, spans in rows.items()}


def _describe(expected: str, actual: str) -> str:
    old, new = text_rows(expected), text_rows(actual)
    rows = [y for y in sorted(set(old) | set(new)) if old.get(y) != new.get(y)]
    if not rows:
        return "the text is the same; colours or styles differ"
    lines = [f"{len(rows)} row(s) differ:"]
    for y in rows[:6]:
        lines.append(f"  y={y:g} expected {old.get(y, '')!r}")
        lines.append(f"  y={y:g}      got {new.get(y, '')!r}")
    return "\n".join(lines)


def check_svg(svg: str, name: str) -> None:
    """Compare an exported frame with the stored snapshot `name` (no suffix)."""
    svg = normalise(svg)
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(svg, encoding="utf-8")
        if not os.environ.get("UPDATE_SNAPSHOTS"):
            raise AssertionError(f"{path} did not exist; it was written now — check it and rerun")
        return
    expected = path.read_text(encoding="utf-8")
    if svg != expected:
        failed = path.with_suffix(".actual.svg")
        failed.write_text(svg, encoding="utf-8")
        raise AssertionError(f"screen differs from {path.name} (see {failed.name}; UPDATE_SNAPSHOTS=1 "
                             f"to accept)\n{_describe(expected, svg)}")


def assert_snapshot(app, name: str) -> None:
    """Compare the app's current screen with the stored SVG `name`."""
    check_svg(app.export_screenshot(title="tuitrain"), name)
