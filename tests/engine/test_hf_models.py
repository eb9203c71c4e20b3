"""Hugging Face models in a plug-in, as an HF script writes one: trained, evaluated, checkpointed,
resumed exactly, and every checkpoint (and the final model) loaded with `from_pretrained` and
`TrainerState.load_from_json`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("datasets")
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from trainer_fixtures import FakePreset, events, losses_by_step, run  # noqa: E402
from tuitrain.engine.checkpoint import write_model_file  # noqa: E402

PLUGIN = f"{Path(__file__).with_name('hf_plugin.py')}:build"
transformers.logging.set_verbosity_error()


def hf_preset(**overrides):
    base = {"per_device_train_batch_size": 4, "per_device_eval_batch_size": 4, "max_steps": 6,
            "learning_rate": 3e-3, "logging_steps": 1, "eval_strategy": "steps", "eval_steps": 2,
            "save_strategy": "steps", "save_steps": 3, "seed": 7}
    return FakePreset(PLUGIN, {}, {**base, **overrides})


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_an_hf_gpt2_on_datasets_trains_resumes_exactly_and_every_checkpoint_loads_with_from_pretrained(tmp_path):
    full = tmp_path / "full"
    assert run(hf_preset(), full) == 0
    evals = events(full, "eval")
    assert [e["step"] for e in evals] == [2, 4, 6] and all(0 <= e["eval_accuracy"] <= 1 for e in evals)

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    assert run(hf_preset(), resumed, resume_from="checkpoint-3") == 0
    straight, after = losses_by_step(full), losses_by_step(resumed)
    assert sorted(after) == [4, 5, 6] and all(after[s] == straight[s] for s in after)  # bit for bit (dropout on)
    assert [(e["step"], e["eval_loss"], e["eval_accuracy"]) for e in events(resumed, "eval")] == [
        (e["step"], e["eval_loss"], e["eval_accuracy"]) for e in evals[1:]]
    # the same weights write the same bytes (safetensors' metadata order is fixed)
    assert (full / "checkpoint-6" / "model.safetensors").read_bytes() == \
        (resumed / "checkpoint-6" / "model.safetensors").read_bytes()

    for step in (3, 6):
        ckpt = full / f"checkpoint-{step}"
        model = transformers.GPT2LMHeadModel.from_pretrained(ckpt)
        saved = load_file(ckpt / "model.safetensors")
        assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
        assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # tied again
        state = transformers.TrainerState.load_from_json(str(ckpt / "trainer_state.json"))
        assert state.global_step == step and [h["step"] for h in state.log_history if "eval_loss" in h] == \
            [s for s in (2, 4, 6) if s <= step]
    final = transformers.GPT2LMHeadModel.from_pretrained(full / "final")
    last = transformers.GPT2LMHeadModel.from_pretrained(full / "checkpoint-6")
    assert all(torch.equal(v, last.state_dict()[k]) for k, v in final.state_dict().items())
    resumed_final = transformers.GPT2LMHeadModel.from_pretrained(resumed / "final")
    assert all(torch.equal(v, resumed_final.state_dict()[k]) for k, v in final.state_dict().items())


def test_a_checkpoint_holds_what_save_pretrained_writes(tmp_path):
    assert run(hf_preset(max_steps=3, eval_strategy="no"), tmp_path / "run") == 0
    ckpt = tmp_path / "run" / "checkpoint-3"
    import hf_plugin

    torch.manual_seed(7)
    reference = hf_plugin.build({}, None)["model"]
    reference.save_pretrained(tmp_path / "hf")
    written = set(os.listdir(tmp_path / "hf"))
    assert written == {"config.json", "generation_config.json", "model.safetensors"}
    assert written <= set(os.listdir(ckpt)) and written | {"README.md"} == set(os.listdir(tmp_path / "run" / "final"))
    for name in ("config.json", "generation_config.json"):
        assert json.loads((ckpt / name).read_text()) == json.loads((tmp_path / "hf" / name).read_text()), name
    with safe_open(ckpt / "model.safetensors", "pt") as ours, safe_open(tmp_path / "hf" / "model.safetensors", "pt") as hf:
        assert set(ours.keys()) == set(hf.keys())  # the tied lm_head stored once, as HF stores it
        assert ours.metadata()["format"] == hf.metadata()["format"] == "pt"
    manifest = json.loads((ckpt / "tuitrain_state.json").read_text())["checkpoint_files"]
    assert {"config.json", "generation_config.json"} <= set(manifest)  # checked like the other files


def test_model_file_bytes_do_not_depend_on_the_process(tmp_path):
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=8, n_positions=4, n_embd=4, n_layer=1,
                                                                 n_head=1))
    blobs = set()
    for i in range(8):
        write_model_file(model, tmp_path / f"{i}.safetensors")
        blobs.add((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(blobs) == 1


def test_the_final_model_card_says_what_was_trained(tmp_path):
    assert run(hf_preset(run_name="tiny-gpt2"), tmp_path) == 0
    card = (tmp_path / "final" / "README.md").read_text()
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2].lstrip()
    assert "library_name: transformers" in front and '- name: "tiny-gpt2"' in front
    assert body.startswith("# tiny-gpt2\n") and "trained from scratch" in body and "(40 training examples)" in body
    assert "- core.max_steps: 6" in body and "- optimizer.learning_rate: 0.003" in body  # the preset's arguments
    rows = [line for line in body.splitlines() if line.startswith("| ") and "Epoch" not in line]
    assert [r.split(" | ")[2] for r in rows] == ["2", "4", "6"]  # one row per evaluation, as HF's card
    last = events(tmp_path, "eval")[-1]
    assert f"- Accuracy: {last['eval_accuracy']:.4f}" in body


def test_the_hub_gets_a_model_from_pretrained_loads_and_at_the_end_its_card(tmp_path, monkeypatch):
    from fake_integrations import install_hub

    hub = install_hub(monkeypatch)
    assert run(hf_preset(push_to_hub=True, hub_strategy="every_save", hub_always_push=True), tmp_path / "run") == 0
    uploads = hub.uploads()
    assert [u["message"] for u in uploads] == ["Training in progress, step 3", "Training in progress, step 6",
                                               "End of training"]
    for i, upload in enumerate(uploads):
        repo = tmp_path / f"repo-{i}"
        repo.mkdir()
        for name, data in upload["files"].items():
            (repo / name).write_bytes(data)
        assert {"config.json", "generation_config.json", "model.safetensors"} <= set(upload["files"])
        assert not {"optimizer.safetensors", "trainer_state.json", "tuitrain_state.json"} & set(upload["files"])
        transformers.GPT2LMHeadModel.from_pretrained(repo)
    assert "README.md" in uploads[-1]["files"] and "README.md" not in uploads[0]["files"]  # the card at the end, as HF
