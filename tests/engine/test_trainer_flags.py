"""torch_compile, full_determinism and the memory metrics flag, on CPU."""

from __future__ import annotations

import os

import torch

from trainer_fixtures import events, regression_preset, run


def _losses(run_dir):
    return [e["loss"] for e in events(run_dir, "train")]


def test_torch_compile_trains_the_same_curve(tmp_path):
    # aot_eager goes through dynamo and autograd tracing without a C++ toolchain build.
    plain = tmp_path / "plain"
    compiled = tmp_path / "compiled"
    assert run(regression_preset(max_steps=4), plain) == 0
    assert run(regression_preset(max_steps=4, torch_compile=True, torch_compile_backend="aot_eager"),
               compiled) == 0
    torch._dynamo.reset()
    a, b = _losses(plain), _losses(compiled)
    assert len(a) == len(b) == 4
    assert all(abs(x - y) <= 1e-5 * max(1.0, abs(x)) for x, y in zip(a, b))


def test_full_determinism_turns_on_deterministic_kernels(tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    try:
        assert run(regression_preset(max_steps=2, full_determinism=True), tmp_path) == 0
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


def test_full_determinism_sets_cuda_launch_blocking_before_cuda_starts(tmp_path, monkeypatch):
    # The CUDA runtime reads CUDA_LAUNCH_BLOCKING and CUBLAS_WORKSPACE_CONFIG when it starts,
    # at the first torch.cuda query: set later, they do nothing.
    from tuitrain.engine import distributed

    for name in ("CUDA_LAUNCH_BLOCKING", "CUBLAS_WORKSPACE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    seen = []
    available = torch.cuda.is_available

    def first_cuda_query():
        seen.append((os.environ.get("CUDA_LAUNCH_BLOCKING"), os.environ.get("CUBLAS_WORKSPACE_CONFIG")))
        return available()

    monkeypatch.setattr(distributed.torch.cuda, "is_available", first_cuda_query)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        assert run(regression_preset(max_steps=1, full_determinism=True), tmp_path) == 0
    finally:
        torch.use_deterministic_algorithms(before)
    assert seen and seen[0] == ("1", ":4096:8")


def test_determinism_set_after_cuda_started_says_it_comes_too_late(monkeypatch):
    import pytest

    from tuitrain.engine import seeding

    monkeypatch.delenv("CUDA_LAUNCH_BLOCKING", raising=False)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setattr(seeding.torch.cuda, "is_initialized", lambda: True)
    with pytest.warns(UserWarning, match="CUDA started in this process before CUDA_LAUNCH_BLOCKING was set"):
        seeding.determinism_env(True)
    assert os.environ["CUDA_LAUNCH_BLOCKING"] == "1"


def test_no_cuda_memory_fields_on_cpu(tmp_path):
    assert run(regression_preset(max_steps=2, skip_memory_metrics=False), tmp_path) == 0
    train = events(tmp_path, "train")
    assert train and not any(k.startswith("gpu_mem") for e in train for k in e)


def test_generation_config_file_sets_the_sample_length(tmp_path):
    import json

    from trainer_fixtures import char_gpt_preset

    config = tmp_path / "generation_config.json"
    config.write_text(json.dumps({"max_new_tokens": 5, "do_sample": False, "eos_token_id": 0}))
    run_dir = tmp_path / "run"
    preset = char_gpt_preset(max_steps=2, sample_every=2, sample_max_new_tokens=40,
                             generation_config=str(config))
    assert run(preset, run_dir) == 0
    (sample,) = events(run_dir, "sample")
    plain_dir = tmp_path / "plain"
    assert run(char_gpt_preset(max_steps=2, sample_every=2, sample_max_new_tokens=40), plain_dir) == 0
    (plain,) = events(plain_dir, "sample")
    assert len(plain["text"]) - len(sample["text"]) == 35


def test_missing_generation_config_fails_with_one_line(tmp_path):
    import pytest

    from trainer_fixtures import char_gpt_preset
    from tuitrain.errors import TuitrainError

    with pytest.raises(TuitrainError, match="generation_config: .*not found"):
        run(char_gpt_preset(max_steps=1, generation_config=str(tmp_path / "nope.json")), tmp_path / "r")
