"""A real hang-up: the terminal dies under the app while it shows a live run.

The app launches a run from its New dialog inside tmux and follows it on the dashboard;
then `tmux kill-server` takes the terminal away (the app's pty closes and it gets SIGHUP,
as when an SSH connection drops). The run must not notice: a fresh app in a new tmux
server lists it as running, its dashboard's step counter keeps advancing past the steps
trained before the hang-up, and the loss chart draws the run from its first step. The raw
event stream holds every train step from 1 exactly once.
"""

from __future__ import annotations

import json
import re
import shutil

import psutil

from .test_tmux import (Terminal, kill_leftovers, launch_from_new_dialog, live_setup, loss_panel, run_json,
                        wait_for_steps_after)


def _app_process(term: Terminal) -> psutil.Process:
    """The app: the one child of the tmux pane's shell (the runs it launched are the app's children)."""
    shell = term.tmux("list-panes", "-t", "app", "-F", "#{pane_pid}").stdout.strip()
    children = psutil.Process(int(shell)).children()
    assert len(children) == 1, f"expected the app alone under the pane's shell: {children}"
    return children[0]


def x_axis(panel: str) -> tuple[int, int]:
    """The first and last step on the loss chart's x axis (`↑loss 1   step   570`)."""
    match = re.search(r"↑loss\s+(\d+)\s+step\s+(\d+)", panel)
    assert match, f"no x axis in the loss chart:\n{panel}"
    return int(match.group(1)), int(match.group(2))


def test_the_terminal_dies_under_the_app_and_the_run_trains_on() -> None:
    folder, runs, env, preset = live_setup()
    first = Terminal(folder, env)
    second = Terminal(folder / "again", env)
    try:
        first.start()
        first.wait_for(r"Press n to start one", timeout=30)
        name = launch_from_new_dialog(first, preset)
        first.keys("Enter")
        first.wait_for(r"─ loss")
        before = wait_for_steps_after(first, 0)
        app = _app_process(first)

        first.tmux("kill-server")
        _, alive = psutil.wait_procs([app], timeout=15)
        assert not alive, f"the app outlived its terminal: {alive}"
        _, info = run_json(runs)
        assert info["state"] == "running", info
        assert psutil.pid_exists(info["pid"]), f"the trainer died with the terminal: {info}"
        assert psutil.pid_exists(info["supervisor_pid"]), f"the run's supervisor died with the terminal: {info}"

        second.start()
        second.wait_for(rf"{re.escape(name)}\s+running", timeout=30)
        second.keys("Enter")
        second.wait_for(r"─ loss")
        after = wait_for_steps_after(second, before)
        later = wait_for_steps_after(second, after)
        assert before < after < later
        # The chart draws the whole run: from step 1, through the steps trained before the hang-up.
        panel = loss_panel(second.screen())
        start, end = x_axis(panel)
        assert start == 1 and end >= after, panel

        run_dir, _ = run_json(runs)
        with open(run_dir / "metrics.jsonl", encoding="utf-8") as fh:
            steps = [e["step"] for e in map(json.loads, fh) if e.get("kind") == "train"]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) >= later, steps[-5:]
    finally:
        first.close()
        second.close()
        kill_leftovers(runs)
        shutil.rmtree(folder, ignore_errors=True)
