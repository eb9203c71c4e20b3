"""push_to_hub: what is uploaded per hub_strategy, in the background, and failures as warnings.

`huggingface_hub` is a recording fake in sys.modules; its uploads list the files they got.
"""

from __future__ import annotations

import sys
import threading

import pytest

from fake_integrations import install_hub
from trainer_fixtures import events, regression_preset, run
from tuitrain.engine.hub import HubPusher
from tuitrain.errors import TuitrainError

SAVES = {"max_steps": 4, "save_strategy": "steps", "save_steps": 2, "push_to_hub": True}


FINAL = ["README.md", "model.safetensors"]  # RUN_DIR/final/: the model and its card


def _pushes(hub):
    return [(u["message"], u["path_in_repo"], sorted(u["files"])) for u in hub.uploads()]


@pytest.mark.parametrize("strategy, expected", [
    ("end", [("End of training", None, FINAL)]),
    ("every_save", [("Training in progress, step 2", None, ["model.safetensors"]),
                    ("Training in progress, step 4", None, ["model.safetensors"]),
                    ("End of training", None, FINAL)]),
    ("checkpoint", [("Training in progress, step 2", None, ["model.safetensors"]),
                    ("Training in progress, step 2, checkpoint", "last-checkpoint", "CKPT"),
                    ("Training in progress, step 4", None, ["model.safetensors"]),
                    ("Training in progress, step 4, checkpoint", "last-checkpoint", "CKPT"),
                    ("End of training", None, FINAL)]),
    ("all_checkpoints", [("Training in progress, step 2", None, ["model.safetensors"]),
                         ("Training in progress, step 2, checkpoint", "checkpoint-2", "CKPT"),
                         ("Training in progress, step 4", None, ["model.safetensors"]),
                         ("Training in progress, step 4, checkpoint", "checkpoint-4", "CKPT"),
                         ("End of training", None, FINAL)]),
])
def test_each_strategy_pushes_what_hf_pushes(tmp_path, monkeypatch, strategy, expected):
    hub = install_hub(monkeypatch)
    preset = regression_preset(hub_strategy=strategy, hub_always_push=True, run_name="exp", **SAVES)
    assert run(preset, tmp_path) == 0
    ckpt_files = sorted(p.name for p in (tmp_path / "checkpoint-4").iterdir())
    assert "trainer_state.json" in ckpt_files and "optimizer.safetensors" in ckpt_files
    assert _pushes(hub) == [(m, p, ckpt_files if f == "CKPT" else f) for m, p, f in expected]
    assert hub.named("create_repo") == [(tmp_path.name, None, True, None)]  # once, the run dir's name
    assert {u["repo_id"] for u in hub.uploads()} == {f"me/{tmp_path.name}"}
    final = hub.uploads()[-1]["files"]["model.safetensors"]
    assert final == (tmp_path / "checkpoint-4" / "model.safetensors").read_bytes()
    assert not (tmp_path / ".hub-push").exists()  # the upload snapshots are gone


def test_repo_options_and_masked_secrets_in_the_pushed_preset(tmp_path, monkeypatch):
    hub = install_hub(monkeypatch)
    (tmp_path / "preset.toml").write_text('[reproducibility]\nhub_token = "hf_secret"\n'
                                          '[launch.env]\nWANDB_API_KEY = "wandb-secret"\nNCCL_DEBUG = "INFO"\n')
    preset = regression_preset(max_steps=2, push_to_hub=True, hub_strategy="end", hub_model_id="org/model",
                               hub_private_repo=True, hub_token="hf_secret")
    assert run(preset, tmp_path) == 0
    assert hub.named("create_repo") == [("org/model", True, True, "hf_secret")]
    (upload,) = hub.uploads()
    assert upload["token"] == "hf_secret" and upload["repo_id"] == "org/model"
    pushed = upload["files"]["preset.toml"].decode()
    assert 'hub_token = "<HUB_TOKEN>"' in pushed and 'WANDB_API_KEY = "<MASKED>"' in pushed
    assert "hf_secret" not in pushed and "wandb-secret" not in pushed and "INFO" not in pushed


@pytest.mark.parametrize("always, steps", [(False, [2]), (True, [2, 4, 6])])
def test_a_save_during_a_push_is_skipped_unless_hub_always_push(tmp_path, monkeypatch, always, steps):
    hub = install_hub(monkeypatch)
    hub.gate = threading.Event()  # the network holds the first upload until training ends
    finish = HubPusher.finish

    def open_gate_then_finish(self, *a, **kw):
        hub.gate.set()
        return finish(self, *a, **kw)

    monkeypatch.setattr(HubPusher, "finish", open_gate_then_finish)
    preset = regression_preset(**{**SAVES, "max_steps": 6}, hub_strategy="every_save", hub_always_push=always)
    assert run(preset, tmp_path) == 0
    assert [u["message"] for u in hub.uploads()] == [f"Training in progress, step {s}" for s in steps] + [
        "End of training"]


def test_a_rotated_checkpoint_is_still_uploaded_whole(tmp_path, monkeypatch):
    hub = install_hub(monkeypatch)
    hub.gate = threading.Event()
    finish = HubPusher.finish
    monkeypatch.setattr(HubPusher, "finish", lambda self, *a, **kw: (hub.gate.set(), finish(self, *a, **kw))[1])
    preset = regression_preset(**SAVES, hub_strategy="all_checkpoints", hub_always_push=True, save_total_limit=1)
    assert run(preset, tmp_path) == 0
    assert not (tmp_path / "checkpoint-2").exists()  # rotated away before its upload ran
    (ckpt2,) = [u for u in hub.uploads() if u["path_in_repo"] == "checkpoint-2"]
    assert {"model.safetensors", "trainer_state.json"} <= set(ckpt2["files"])


def test_a_failed_push_is_a_warning_not_a_crash(tmp_path, monkeypatch, capsys):
    hub = install_hub(monkeypatch, fail_uploads=1)
    assert run(regression_preset(**SAVES, hub_strategy="every_save", hub_always_push=True), tmp_path) == 0
    warnings = events(tmp_path, "warning")
    assert len(warnings) == 1
    assert warnings[0]["message"] == ("push to the Hub (Training in progress, step 2) failed: "
                                      "OSError: 503 Service Unavailable")
    assert events(tmp_path, "status")[-1]["state"] == "finished"
    assert len(hub.uploads()) == 3  # the later pushes still went out
    assert "warning: push to the Hub" in capsys.readouterr().err


def test_stopped_run_waits_for_pushes_but_pushes_no_final_model(tmp_path, monkeypatch):
    from tuitrain.engine.trainer import Trainer

    hub = install_hub(monkeypatch)
    after = Trainer._after_step

    def stop_at_3(self, *a, **kw):
        if self.state.global_step == 3:
            self.stop.requested = True
        return after(self, *a, **kw)

    monkeypatch.setattr(Trainer, "_after_step", stop_at_3)
    assert run(regression_preset(**SAVES, hub_strategy="every_save"), tmp_path) == 0
    assert events(tmp_path, "status")[-1]["state"] == "stopped"
    assert [u["message"] for u in hub.uploads()] == ["Training in progress, step 2", "Training in progress, step 3"]


def test_missing_huggingface_hub_is_one_line_at_startup(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(TuitrainError) as info:
        run(regression_preset(max_steps=2, push_to_hub=True), tmp_path)
    message = info.value.one_line()
    assert "\n" not in message and "huggingface_hub" in message and "pip install huggingface_hub" in message


def test_the_token_is_written_nowhere_in_the_run_and_a_resume_accepts_it(tmp_path, monkeypatch, capsys):
    install_hub(monkeypatch)
    preset = regression_preset(max_steps=2, save_strategy="steps", save_steps=2, push_to_hub=True,
                               hub_strategy="end", hub_token="hf_secret")
    assert run(preset, tmp_path) == 0
    longer = regression_preset(max_steps=4, save_strategy="steps", save_steps=2, push_to_hub=True,
                               hub_strategy="end", hub_token="hf_secret")
    assert run(longer, tmp_path, resume_from="checkpoint-2") == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json")]
    assert any(p.name == "trainer_state.json" for p in written)
    for path in written:
        assert "hf_secret" not in path.read_text(), path
    assert events(tmp_path, "start")[0]["config"]["reproducibility.hub_token"] == "<HUB_TOKEN>"
    assert "hf_secret" not in "".join(capsys.readouterr())
