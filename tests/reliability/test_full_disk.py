"""A real full filesystem under a run: a small tmpfs mounted by the test (root only).

The disk fills while the trainer runs, empties, and fills again as it ends: training goes on,
the event log never holds a cut line, the lost events and failed saves are told once space
returns and shown where the user looks, the supervisor outlives a `run.json` it cannot write
and records the outcome later, and a resume starts on a fresh line.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import cli, losses
from tests.runs.conftest import wait_for
from tuitrain import procid
from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import read_run_json

GATED = Path(__file__).with_name("_gated_task.py")

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, unmounted at the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte; returns the filler to delete."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 16, 1):  # big writes, then the last partial block byte by byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]  # a cut line would raise here


def test_a_disk_that_fills_and_empties_loses_no_run(small_disk, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    preset = tmp_path / "gated.toml"
    preset.write_text(f"""
[task]
name = "{GATED}:build"
[task.options]
control = "{control}"
hold_at = [5, 25, 30]
[core]
per_device_train_batch_size = 8
max_steps = 60
[logging]
logging_steps = 1
save_strategy = "steps"
save_steps = 5
""")
    run_dir = small_disk / "run"
    L.launch(preset, output_dir=run_dir)
    try:
        wait_for(lambda: (control / "held-5").exists(), timeout=90)
        trainer = procid.identify(read_run_json(run_dir)["pid"])
        supervisor = procid.identify(read_run_json(run_dir)["supervisor_pid"])
        filler = fill(small_disk)
        (control / "go-5").touch()
        wait_for(lambda: (control / "held-25").exists(), timeout=60)  # steps 5-24 ran on a full disk
        assert procid.running(trainer) and procid.running(supervisor)
        filler.unlink()
        (control / "go-25").touch()
        wait_for(lambda: (control / "held-30").exists(), timeout=60)
        # Full again until the run ends: 30 more steps of events exhaust any slack in the log's
        # last block, so its final status and run.json cannot be written.
        filler = fill(small_disk)
        (control / "go-30").touch()
        wait_for(lambda: procid.running(trainer) is None, timeout=60)
        time.sleep(1.0)
        assert procid.running(supervisor), "the supervisor died on a run.json it could not write"
        assert read_run_json(run_dir)["state"] == "running"  # nothing could be recorded yet
        filler.unlink()
        wait_for(lambda: read_run_json(run_dir)["state"] == "finished", timeout=30)
    finally:
        for n in (5, 25, 30):
            (control / f"go-{n}").touch()
        (small_disk / "filler").unlink(missing_ok=True)

    events = _lines(run_dir / "metrics.jsonl")
    warnings = [e for e in events if e["kind"] == "warning"]
    told, *later = [w for w in warnings if "could not be written" in w["message"]]
    # one warning when space came back after step 24, telling what the first outage cost
    assert told["step"] == 25 and told["lost_events"] > 0 and told["failed_saves"] == 4  # saves at 5, 10, 15, 20
    assert all(w["step"] > 30 for w in later)  # the second outage: slack in the log's last block, or none
    assert "No space left on device" in told["message"]
    steps = [e["step"] for e in events if e["kind"] == "train"]
    assert steps == sorted(set(steps)) and 25 in steps and 60 not in steps
    assert [p.name for p in run_dir.glob("checkpoint-*")] == ["checkpoint-25"]
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".checkpoint-")]
    info = run_info(run_dir)
    # the counts as last written (the final ones were lost with the disk full to the end)
    assert info.state == "finished" and info.failed_saves >= 4 and info.lost_events >= told["lost_events"]
    assert info.final_status_lost and read_run_json(run_dir)["exit_code"] == 3
    text = (f"finished · {info.failed_saves} checkpoint saves failed · {info.lost_events} events lost"
            " · its last events were lost")
    assert info.state_text == text
    assert text in cli("ls", "--all").stdout  # the run is outside the runs root

    # Resumed after space returned: its start event is whole, on its own line.
    resumed = cli("resume", str(run_dir), timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "finished" in resumed.stdout.splitlines()[-1]
    events = _lines(run_dir / "metrics.jsonl")
    assert [e["resumed_from"] for e in events if e["kind"] == "start"] == [None, "checkpoint-25"]
    assert losses(run_dir)  # every step once in the folded history
    assert run_info(run_dir).state_text == "finished"


def test_the_event_writer_on_a_full_disk(small_disk):
    from tuitrain.engine.events import EventWriter, exit_code

    (small_disk / "metrics.jsonl").write_bytes(b'{"kind":"start","v":1}\n{"kind":"train","st')  # a cut line
    writer = EventWriter(small_disk)
    writer.emit("train", step=1, loss=1.0)
    lines = (small_disk / "metrics.jsonl").read_text().splitlines()
    assert lines[1] == '{"kind":"train","st' and json.loads(lines[2])["step"] == 1  # a fresh line
    filler = fill(small_disk)
    for step in range(2, 400):  # far more than the last page's slack
        writer.emit("train", step=step, loss=1.0, padding="x" * 200)
    assert writer.lost > 0 and writer.last_write_failed
    assert exit_code("finished", writer) == 3
    text = (small_disk / "metrics.jsonl").read_text()
    assert text.endswith("\n")  # a write cut short was taken back off the file
    filler.unlink()
    writer.emit("status", state="finished", error=None)
    *_, told, status = [json.loads(line) for line in (small_disk / "metrics.jsonl").read_text().splitlines()[2:]]
    assert told["kind"] == "warning" and told["lost_events"] == writer.lost
    assert status == {**status, "state": "finished", "lost_events": writer.lost, "failed_saves": 0}
    assert exit_code("finished", writer) == 0
    writer.close()
