"""Shipped presets and themes are found from an installed wheel, not only a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_presets_and_themes(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(ROOT), "-w", str(tmp_path / "dist")],
        check=True, capture_output=True, text=True,
    )
    wheel = next((tmp_path / "dist").glob("tuitrain-*.whl"))
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from tuitrain import paths\n"
        "print(paths.presets_dir()); print(paths.themes_dir())\n"
        "print(' '.join(sorted(paths.shipped_presets())))\n"
        "print(' '.join(sorted(paths.shipped_sweeps())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert Path(out[0]) == site / "tuitrain" / "presets"
    assert Path(out[1]) == site / "tuitrain" / "themes"
    assert out[2].split() == ["ddp-cpu", "gpt-small", "grokking", "quickstart"]
    assert out[3].split() == ["accumulation-tradeoff", "logging-cadence", "precision-toggles", "scheduler-shootout",
                              "warmup-sensitivity"]
