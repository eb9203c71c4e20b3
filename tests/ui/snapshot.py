"""SVG snapshots compared with files under tests/ui/snapshots (UPDATE_SNAPSHOTS=1 rewrites them)."""

from __future__ import annotations

import os
import re
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _normalise(svg: str) -> str:
    # Textual names CSS classes in the SVG after a hash of the content/title; keep only the drawing.
    return re.sub(r"terminal-\d+", "terminal", svg)


def assert_snapshot(app, name: str) -> None:
    """Compare the app's current screen with the stored SVG `name`."""
    svg = _normalise(app.export_screenshot(title="tuitrain"))
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(svg)
        if not os.environ.get("UPDATE_SNAPSHOTS"):
            raise AssertionError(f"{path} did not exist; it was written now — check it and rerun")
        return
    expected = path.read_text()
    if svg != expected:
        failed = path.with_suffix(".actual.svg")
        failed.write_text(svg)
        raise AssertionError(f"screen differs from {path}; see {failed} (UPDATE_SNAPSHOTS=1 to accept)")
