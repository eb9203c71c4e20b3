"""Time to first frame: `tuitrain`'s app vs a bare Textual app with one label (target ≤ 1.3×).

Each measurement is a fresh interpreter that imports its app, runs it headless and
exits on the first screen refresh. The two alternate, `--repeats` times each (default 5),
and the ratio is of the best of each: this machine is noisy and the noise only adds time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BARE = """
from textual.app import App
from textual.widgets import Label
class Bare(App):
    def compose(self):
        yield Label("hello")
    def on_mount(self):
        self.call_after_refresh(self.exit)
Bare().run(headless=True, size=(160, 48))
"""

TUITRAIN = """
from tuitrain.ui.app import TuitrainApp
app = TuitrainApp()
def first_frame():
    app.call_after_refresh(app.exit)
app.call_later(first_frame)
app.run(headless=True, size=(160, 48))
"""


def time_first_frame(code: str) -> float:
    """Seconds from interpreter start to the app's exit after its first frame."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    bare = ours = float("inf")
    for _ in range(repeats):
        bare = min(bare, time_first_frame(BARE))
        ours = min(ours, time_first_frame(TUITRAIN))
    ratio = ours / bare
    print(f"bare textual: {bare:.3f} s  tuitrain: {ours:.3f} s  ratio: {ratio:.2f}× (target ≤ 1.3×)")
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
