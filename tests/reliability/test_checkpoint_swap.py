"""Re-saving a step that exists (the last step of a resumed run) never loses it, and a resume
never picks a checkpoint that is not complete (one definition: `tuitrain.layout`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from tests.reliability.conftest import REPO, cli, new_run, run_engine
from tuitrain.runs.rundir import update_run_json

# Saves checkpoint-3 (v=1), then saves it again (v=2) dying by SIGKILL the instant the old copy
# has been renamed aside, before the new one is renamed into place.
_DIE_BETWEEN_RENAMES = textwrap.dedent("""
    import os, signal, sys
    import torch
    from tuitrain.engine import checkpoint as ck, checkpoint_swap as swap
    out, how = sys.argv[1], sys.argv[2]
    model = torch.nn.Linear(4, 4)
    ck.save_checkpoint(out, 3, model, None, trainer_state={"v": 1})
    if how == "rename-only":
        swap.exchange = lambda a, b: False  # a filesystem without renameat2(RENAME_EXCHANGE)
    real = os.rename
    def rename(src, dst, *a, **kw):
        real(src, dst, *a, **kw)
        if os.path.basename(str(src)) == "checkpoint-3":
            os.kill(os.getpid(), signal.SIGKILL)
    os.rename = rename
    ck.save_checkpoint(out, 3, model, None, trainer_state={"v": 2})
    print("saved", flush=True)
""")

# Forks savers that re-save checkpoint-3 in a loop and kills each at a seeded random moment;
# after each kill, a start's cleanup must leave one complete, loadable checkpoint-3.
_KILL_RESAVES = textwrap.dedent("""
    import os, random, signal, sys, time
    import torch
    from tuitrain.engine import checkpoint as ck, checkpoint_swap as swap
    out, how, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(11)
    torch.set_num_threads(1)
    model = torch.nn.Linear(256, 256)
    ck.save_checkpoint(out, 3, model, None, trainer_state={"v": -1})
    if how == "rename-only":
        swap.exchange = lambda a, b: False
    for r in range(rounds):
        pid = os.fork()
        if pid == 0:
            i = 0
            while True:
                ck.save_checkpoint(out, 3, model, None, trainer_state={"v": i})
                i += 1
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        ck.clean_stale_tmp(out)
        names = sorted(os.listdir(out))
        assert names == ["checkpoint-3"], (r, names)
        ck.load_checkpoint(os.path.join(out, "checkpoint-3"), model)  # complete and valid
    print("ok", flush=True)
""")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=240, cwd=REPO)


@pytest.mark.parametrize("how", ["exchange", "rename-only"])
def test_a_kill_between_the_renames_of_a_resave_keeps_the_step(tmp_path, how):
    from tuitrain.engine.checkpoint import clean_stale_tmp, load_checkpoint
    import torch

    out = _run(_DIE_BETWEEN_RENAMES, str(tmp_path), how)
    if how == "exchange":  # one atomic swap: there is no moment between two renames
        assert out.returncode == 0 and "saved" in out.stdout, out.stderr
    else:
        assert out.returncode == -9, out.stderr
        assert not (tmp_path / "checkpoint-3").exists()  # the moment the old copy is set aside
    clean_stale_tmp(tmp_path)  # what the next trainer does first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3"]
    assert load_checkpoint(tmp_path / "checkpoint-3", torch.nn.Linear(4, 4))["v"] == 2  # the newer save


@pytest.mark.parametrize("how", ["exchange", "rename-only"])
def test_kill9_at_random_moments_of_resaves_always_leaves_one_complete_copy(tmp_path, how):
    out = _run(_KILL_RESAVES, str(tmp_path), how, "25")
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr


def test_resume_picks_the_newest_complete_checkpoint(isolated):
    run_dir = new_run(isolated, "partial", max_steps=2, save_steps=1)
    assert run_engine(run_dir).returncode == 0
    update_run_json(run_dir, state="finished", exit_code=0, started=time.time() - 5, ended=time.time())
    (run_dir / "checkpoint-9").mkdir()  # a folder a crash (or a person) left empty
    (run_dir / "checkpoint-7").mkdir()
    (run_dir / "checkpoint-7" / "trainer_state.json").write_text("{}")  # no weights
    refused = cli("resume", str(run_dir), "--checkpoint", "checkpoint-9")
    assert refused.returncode == 1 and refused.stderr.strip() == (
        f"tuitrain: {run_dir / 'checkpoint-9'}: not a complete checkpoint (a save that did not finish); "
        "the newest complete one is checkpoint-2")
    out = cli("resume", str(run_dir), "--set", "core.max_steps=3", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"from {run_dir / 'checkpoint-2'}" in out.stdout and "finished" in out.stdout.splitlines()[-1]
