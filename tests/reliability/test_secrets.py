"""Secrets in a preset reach the trainer's environment and nothing else a run writes; a
preset holding one is the owner's only; another user's run is not resumed on trust."""

from __future__ import annotations

import os
import stat
import time

from tests.reliability.conftest import NOBODY, cli, events, needs_root, new_run, one_line_error, run_engine
from tests.runs.conftest import wait_for
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import update_run_json

SECRETS = {"WANDB_API_KEY": "wandb-key-6c1f0e", "HF_TOKEN": "hf_token_9b2d71", "MY_PASSWORD": "pw-5a5a5a"}
HUB_TOKEN = "hf_hubtoken_77aa"


def test_secrets_are_masked_in_events_checkpoints_and_logs(isolated):
    env = "\n".join(f'{k} = "{v}"' for k, v in SECRETS.items())
    check = ('import os\nfrom tuitrain.engine.tasks import regression\n\n'
             'def build(options, args):\n'
             '    assert os.environ["HF_TOKEN"] == "hf_token_9b2d71"  # the trainer does get the real values\n'
             '    return regression.build({"n_samples": 32}, args)\n')
    (isolated / "envcheck.py").write_text(check)
    preset = isolated / "secret.toml"
    preset.write_text(f"""
[task]
name = "envcheck.py:build"
[task.options]
api_key = "{SECRETS['WANDB_API_KEY']}"
[core]
max_steps = 4
[logging]
logging_steps = 1
save_strategy = "steps"
save_steps = 2
[launch.env]
{env}
""")
    out = cli("run", str(preset), "--set", f'hub_token="{HUB_TOKEN}"', timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = (isolated / "runs").iterdir()
    assert run_info(run_dir).state == "finished"
    frozen = run_dir / "preset.toml"
    assert stat.S_IMODE(frozen.stat().st_mode) == 0o600  # it holds the secrets the next resume needs
    assert SECRETS["HF_TOKEN"] in frozen.read_text()
    written = [p for p in run_dir.rglob("*") if p.is_file() and p.name != "preset.toml"]
    assert any(p.name == "trainer_state.json" for p in written) and any(p.name == "metrics.jsonl" for p in written)
    for path in written:
        data = path.read_bytes()
        for value in (*SECRETS.values(), HUB_TOKEN):
            assert value.encode() not in data, f"{value} in {path}"
    for value in (*SECRETS.values(), HUB_TOKEN):
        assert value not in out.stdout + out.stderr
    config = events(run_dir)[0]["config"]
    assert config["launch.env"] == {k: "<MASKED>" for k in SECRETS}
    assert config["reproducibility.hub_token"] == "<HUB_TOKEN>" and config["task.options.api_key"] == "<MASKED>"


@needs_root
def test_a_run_directory_of_another_user_is_resumed_only_on_trust(isolated):
    run_dir = new_run(isolated, "theirs", max_steps=2, save_steps=2)
    assert run_engine(run_dir).returncode == 0
    update_run_json(run_dir, state="finished", exit_code=0, started=time.time() - 5, ended=time.time())
    for folder, dirs, files in os.walk(run_dir):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, NOBODY, NOBODY)
    line = one_line_error(cli("resume", str(run_dir), "--set", "core.max_steps=3"))
    assert line.startswith(f"tuitrain: {run_dir}: owned by nobody, not by you (root)")
    assert "pass --trust-owner if you trust it" in line
    trusted = cli("resume", str(run_dir), "--set", "core.max_steps=3", "--trust-owner", timeout=120)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    wait_for(lambda: run_info(run_dir).state == "finished", timeout=30)
