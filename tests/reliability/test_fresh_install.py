"""The README's first command gives a tuitrain that trains, saves, and resumes.

A copy of the repository is installed into a fresh venv exactly as the README's first
command says (no test extras: nothing the tests' own venv brings in), then the shipped
`quickstart` preset is trained through checkpoints and resumed with `tuitrain resume`.
pip takes torch from the wheel on disk; the whole test takes about a minute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import REPO

FIRST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e . && .venv/bin/tuitrain"
# quickstart as shipped, shorter: 4 steps, evaluations (on a tenth of its validation text) and
# checkpoints every 2 steps
SHORT = ["--set", "core.max_steps=4", "--set", "logging.logging_steps=1", "--set", "logging.eval_steps=2",
         "--set", "logging.save_steps=2", "--set", "task.options.val_fraction=0.01"]


def _readme_first_command() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"```sh\n(.*?)\n```", readme, re.S).group(1).strip()


def _copy_checkout(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("git") is None or shutil.which("python3") is None, reason="needs git and python3")
def test_the_readme_install_trains_checkpoints_and_resumes(tmp_path):
    assert _readme_first_command() == FIRST_COMMAND
    checkout = tmp_path / "tuitrain"
    _copy_checkout(checkout)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TUITRAIN_RUNS=str(tmp_path / "runs"), XDG_STATE_HOME=str(tmp_path / "state"), OMP_NUM_THREADS="1")
    install = FIRST_COMMAND.removesuffix(" && .venv/bin/tuitrain")
    done = subprocess.run(["bash", "-c", install], cwd=checkout, env=env, capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    python = checkout / ".venv" / "bin" / "python"
    probe = "import importlib.util as u; print([m for m in ('transformers', 'pytest') if u.find_spec(m)])"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env).stdout.strip() == "[]"
    tuitrain = str(checkout / ".venv" / "bin" / "tuitrain")

    run = subprocess.run([tuitrain, "run", "quickstart", *SHORT], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "Traceback" not in output, output[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "checkpoint-4" / "trainer_state.json").is_file()

    resumed = subprocess.run([tuitrain, "resume", run_dir.name, "--checkpoint", "checkpoint-2",
                              "--set", "core.max_steps=6"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0 and "Traceback" not in output, output[-3000:]
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    starts = [e for e in events if e["kind"] == "start"]
    assert [s["resumed_from"] for s in starts] == [None, "checkpoint-2"]
    after = events[events.index(starts[-1]):]
    assert [e["step"] for e in after if e["kind"] == "train"] == [3, 4, 5, 6]
    assert after[-1] == {**after[-1], "kind": "status", "state": "finished"}
    assert subprocess.run([python, "-c", "import tuitrain.ui.app"], env=env).returncode == 0  # the app imports
