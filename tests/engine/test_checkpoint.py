"""Checkpoints: bit-exact round trip, atomic save, strict refusal of bad checkpoints, rotation."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tuitrain.engine.checkpoint import (
    CheckpointLoadError,
    CheckpointSaveError,
    clean_stale_tmp,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    rotate_checkpoints,
    save_checkpoint,
)
from tuitrain.errors import TuitrainError

torch.set_num_threads(1)


class TiedLM(torch.nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.emb = torch.nn.Embedding(11, width)
        self.ln = torch.nn.LayerNorm(width)
        self.head = torch.nn.Linear(width, 11, bias=False)
        self.head.weight = self.emb.weight
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        return self.head(self.ln(self.emb(x)))


def _parts(seed=0):
    torch.manual_seed(seed)
    model = TiedLM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    return model, opt, sched, scaler


def _train(model, opt, sched, scaler, n):
    losses = []
    for _ in range(n):
        x = torch.randint(0, 11, (4,))
        noise = random.random()
        loss = torch.nn.functional.cross_entropy(model(x), x) + noise * 0
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        opt.zero_grad()
        model.steps += 1
        losses.append((loss.item(), noise))
    return losses


def test_round_trip_continues_bit_for_bit(tmp_path):
    random.seed(1)
    model, opt, sched, scaler = _parts()
    _train(model, opt, sched, scaler, 3)
    path = save_checkpoint(tmp_path, 3, model, opt, sched, scaler, {"global_step": 3, "log_history": [{"loss": 1.5}]})
    expected = _train(model, opt, sched, scaler, 4)

    fresh = _parts(seed=99)
    torch.manual_seed(12345)
    random.seed(777)
    state = load_checkpoint(path, *fresh)
    assert state["global_step"] == 3 and state["log_history"] == [{"loss": 1.5}]
    assert fresh[0].head.weight is fresh[0].emb.weight
    assert _train(*fresh, 4) == expected
    for a, b in zip(model.state_dict().values(), fresh[0].state_dict().values()):
        assert torch.equal(a, b)
    assert fresh[3].get_scale() == scaler.get_scale()


def test_layout_has_no_pickle_and_tied_weights_stored_once(tmp_path):
    model, opt, sched, scaler = _parts()
    _train(model, opt, sched, scaler, 1)
    path = save_checkpoint(tmp_path, 1, model, opt, sched, scaler, {})
    assert sorted(p.name for p in path.iterdir()) == [
        "model.safetensors", "optimizer.json", "optimizer.safetensors", "trainer_state.json", "tuitrain_state.json"]
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        aliases = json.loads(f.metadata()["tuitrain.aliases"])
    assert len(keys & {"emb.weight", "head.weight"}) == 1 and set(aliases) <= {"emb.weight", "head.weight"}
    with safe_open(str(path / "optimizer.safetensors"), "pt") as f:
        assert "state.0.exp_avg" in f.keys()
    state = json.loads((path / "tuitrain_state.json").read_text())
    assert {"rng_state", "scheduler_state", "scaler_state"} <= set(state)
    assert "trainer_state.json" in state["checkpoint_files"]


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_untouched(model, snap):
    for k, v in model.state_dict().items():
        assert torch.equal(v, snap[k]), k


@pytest.fixture()
def saved(tmp_path):
    model, opt, sched, scaler = _parts()
    _train(model, opt, sched, scaler, 2)
    return save_checkpoint(tmp_path, 2, model, opt, sched, scaler, {"global_step": 2})


def _refused(path, match, model=None, with_opt=True):
    model, opt, sched, scaler = _parts(seed=5) if model is None else (model, None, None, None)
    snap = _snapshot(model)
    opt_state = opt.state_dict() if opt else None
    with pytest.raises(CheckpointLoadError, match=match) as info:
        load_checkpoint(path, model, opt if with_opt else None, sched, scaler)
    assert isinstance(info.value, TuitrainError) and "nothing was loaded" in str(info.value)
    _assert_untouched(model, snap)
    if opt is not None:
        assert opt.state_dict()["state"] == opt_state["state"] == {}


def test_truncated_model_file_is_refused(saved):
    f = saved / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-10])
    _refused(saved, "truncated")


def test_tampered_tensor_bytes_are_refused(saved):
    f = saved / "optimizer.safetensors"
    data = bytearray(f.read_bytes())
    data[-3] ^= 0xFF
    f.write_bytes(bytes(data))
    _refused(saved, "checksum")


def test_garbage_header_is_refused_even_without_manifest(saved):
    (saved / "model.safetensors").write_bytes(b"\xff" * 64)
    state = json.loads((saved / "tuitrain_state.json").read_text())
    state["checkpoint_files"]["model.safetensors"] = None
    (saved / "tuitrain_state.json").write_text(json.dumps(state))
    _refused(saved, "safetensors")


def test_checkpoint_of_another_model_is_refused(saved):
    other = TiedLM(width=6)
    _refused(saved, "shape", model=other)

    class Renamed(TiedLM):
        def __init__(self):
            super().__init__()
            self.extra = torch.nn.Linear(2, 2)

    _refused(saved, "missing keys extra.bias", model=Renamed())


def test_wrong_dtype_is_refused(saved):
    model = TiedLM().double()
    _refused(saved, "dtype", model=model)


def test_missing_json_keys_are_refused(saved):
    state = json.loads((saved / "tuitrain_state.json").read_text())
    del state["rng_state"]
    (saved / "tuitrain_state.json").write_text(json.dumps(state))
    _refused(saved, "lacks rng_state")


def test_wrong_optimizer_state_shape_is_refused(saved):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(saved / "optimizer.safetensors"))
    tensors["state.0.exp_avg"] = torch.zeros(3)
    save_file(tensors, str(saved / "optimizer.safetensors"))
    state = json.loads((saved / "tuitrain_state.json").read_text())
    state["checkpoint_files"]["optimizer.safetensors"] = None  # manifest can't save it here
    (saved / "tuitrain_state.json").write_text(json.dumps(state))
    _refused(saved, "exp_avg has shape")


def test_pickle_only_with_explicit_flag(tmp_path):
    model = TiedLM()
    f = tmp_path / "pytorch_model.bin"
    torch.save(dict(model.state_dict()), f)
    other = TiedLM()
    with pytest.raises(CheckpointLoadError, match="allow_pickle"):
        load_checkpoint(f, other)
    load_checkpoint(f, other, allow_pickle=True)
    assert torch.equal(other.emb.weight, model.emb.weight)


def test_failed_save_leaves_old_checkpoints_and_no_temp(tmp_path, monkeypatch):
    model, opt, sched, scaler = _parts()
    save_checkpoint(tmp_path, 1, model, opt, sched, scaler, {})
    import tuitrain.engine.safe_state as ss

    real = ss.write_bytes_durably
    calls = {"n": 0}

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(ss, "write_bytes_durably", failing)
    with pytest.raises(CheckpointSaveError, match="No space left on device"):
        save_checkpoint(tmp_path, 2, model, opt, sched, scaler, {})
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1"]
    load_checkpoint(tmp_path / "checkpoint-1", *_parts())


def test_file_size_limit_in_a_subprocess(tmp_path):
    script = textwrap.dedent(
        f"""
        import resource, signal, sys, torch
        torch.set_num_threads(1)
        from tuitrain.engine.checkpoint import save_checkpoint, CheckpointSaveError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG as an error, not a kill
        small = torch.nn.Linear(2, 2)
        save_checkpoint({str(tmp_path)!r}, 1, small, None, None, None, {{}})
        big = torch.nn.Linear(2, 2)
        big.weight = torch.nn.Parameter(torch.zeros(400, 400))
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            save_checkpoint({str(tmp_path)!r}, 2, big, None, None, None, {{}})
        except CheckpointSaveError as exc:
            print("ERR", exc)
            sys.exit(3)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 3, proc.stderr
    assert "could not save checkpoint-2" in proc.stdout and "older checkpoints are intact" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1"]


def test_incomplete_and_stale_dirs_are_never_listed_and_get_cleaned(tmp_path):
    model = torch.nn.Linear(2, 2)
    for step in (5, 10, 50):
        save_checkpoint(tmp_path, step, model, None)
    (tmp_path / "checkpoint-60").mkdir()  # no trainer_state.json: not complete
    dead = tmp_path / ".checkpoint-70.tmp-999999999"
    dead.mkdir()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-5", "checkpoint-10", "checkpoint-50"]
    assert latest_checkpoint(tmp_path).name == "checkpoint-50"
    assert clean_stale_tmp(tmp_path) == [dead] and not dead.exists()


def test_resave_same_step_replaces_atomically(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path, 3, model, None, trainer_state={"v": 1})
    save_checkpoint(tmp_path, 3, model, None, trainer_state={"v": 2})
    assert load_checkpoint(tmp_path / "checkpoint-3", model)["v"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3"]


@pytest.mark.parametrize(
    "steps,limit,best,kept",
    [
        ([1, 2, 3, 4, 5], 2, None, [4, 5]),
        ([1, 2, 3, 4, 5], 2, 1, [1, 5]),
        ([1, 2, 3, 4, 5], 1, 2, [2, 5]),
        ([1, 2, 3, 4, 5], 1, 5, [5]),
        ([1, 2, 3], 3, None, [1, 2, 3]),
        ([1, 2, 3], None, None, [1, 2, 3]),
    ],
)
def test_rotation_keeps_recent_and_best(tmp_path, steps, limit, best, kept):
    model = torch.nn.Linear(1, 1)
    for s in steps:
        save_checkpoint(tmp_path, s, model, None)
    keep = tmp_path / f"checkpoint-{best}" if best else None
    rotate_checkpoints(tmp_path, limit, keep=keep)
    assert [int(p.name.split("-")[1]) for p in list_checkpoints(tmp_path)] == kept
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
