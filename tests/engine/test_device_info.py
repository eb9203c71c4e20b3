"""The start event says where a run trains; a run that lands on the CPU against its preset says so."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
import torch

from trainer_fixtures import events, regression_preset, run
from tuitrain.engine import device_info


def _warnings(run_dir):
    return [e["message"] for e in events(run_dir, "warning")]


def test_start_event_records_the_device(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert run(regression_preset(max_steps=2), tmp_path) == 0
    (start,) = events(tmp_path, "start")
    device = start["device"]
    assert device["type"] == "cpu" and device["name"] and device["host"] == socket.gethostname()
    assert device["cuda_visible_devices"] == "" and device["torch"] == torch.__version__
    assert device["pid"] > 0 and "gpus" not in device
    if torch.version.cuda is None:
        assert device["cuda_error"] == "this torch build has no CUDA support (a CPU wheel)"


def test_bf16_on_the_cpu_warns_in_an_event_and_on_stdout(tmp_path, capsys):
    assert run(regression_preset(max_steps=2, bf16=True), tmp_path) == 0
    (message,) = _warnings(tmp_path)
    assert message.startswith("precision.bf16 asks for a GPU, but this run trains on the CPU: ")
    assert "distributed.use_cpu = true" in message
    assert f"warning: {message}" in capsys.readouterr().out.splitlines()
    kinds = [e["kind"] for e in events(tmp_path)]
    assert kinds.index("warning") == kinds.index("start") + 1


def test_use_cpu_says_the_cpu_is_meant(tmp_path):
    assert run(regression_preset(max_steps=2, bf16=True, use_cpu=True), tmp_path) == 0
    assert _warnings(tmp_path) == []


def test_a_plain_cpu_run_on_a_cpu_build_is_quiet(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert run(regression_preset(max_steps=2), tmp_path) == 0
    assert _warnings(tmp_path) == []


def _broken_cuda(monkeypatch):
    """A CUDA build of torch on a box whose driver does not answer."""
    def init():
        raise RuntimeError("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU\n"
                           "and installed a driver from http://www.nvidia.com/Download/index.aspx")

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "init", init)


def test_cuda_that_fails_to_initialise_is_named(tmp_path, monkeypatch):
    _broken_cuda(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    preset = regression_preset(max_steps=2, **{"launch.visible_devices": "0"})
    assert run(preset, tmp_path) == 0
    (message,) = _warnings(tmp_path)
    assert message == ("launch.visible_devices asks for a GPU, but this run trains on the CPU: CUDA failed to "
                       "initialise: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU "
                       "(set distributed.use_cpu = true to train on the CPU on purpose)")
    assert events(tmp_path, "start")[0]["device"]["cuda_error"].startswith("CUDA failed to initialise: Found no")


def test_a_cuda_build_without_a_gpu_warns_even_for_a_cpu_preset(tmp_path, monkeypatch):
    _broken_cuda(monkeypatch)
    assert run(regression_preset(max_steps=2), tmp_path) == 0
    (message,) = _warnings(tmp_path)
    assert message.startswith("torch is a CUDA build, but this run trains on the CPU: CUDA failed to initialise")


def test_fp16_on_the_cpu_still_refuses_and_the_warning_comes_first(tmp_path, capsys):
    from tuitrain.errors import TuitrainError

    with pytest.raises(TuitrainError, match="fp16 mixed precision needs a GPU"):
        run(regression_preset(max_steps=2, fp16=True), tmp_path)
    assert capsys.readouterr().out.startswith("warning: precision.fp16 asks for a GPU, but this run trains on the CPU")


class _Props:
    def __init__(self, index):
        self.name, self.total_memory, self.major, self.minor = "NVIDIA H100 80GB HBM3", 80 * 2**30, 9, 0
        self.uuid = f"8d1f0b6c-0000-4000-8000-00000000000{index}"


def test_cuda_devices_of_this_nodes_ranks_with_uuids(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "get_device_properties", _Props)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,2,1,0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    ctx = SimpleNamespace(device=torch.device("cuda", 1), world_size=2)
    info = device_info.describe(ctx)
    assert info["type"] == "cuda" and info["index"] == 1 and info["name"] == "NVIDIA H100 80GB HBM3"
    assert info["cuda_visible_devices"] == "3,2,1,0"
    assert [(g["cuda"], g["uuid"], g["memory_gib"], g["capability"]) for g in info["gpus"]] == [
        (0, "8d1f0b6c-0000-4000-8000-000000000000", 80.0, "9.0"),
        (1, "8d1f0b6c-0000-4000-8000-000000000001", 80.0, "9.0")]
    single = device_info.describe(SimpleNamespace(device=torch.device("cuda", 0), world_size=1))
    assert [g["cuda"] for g in single["gpus"]] == [0]
