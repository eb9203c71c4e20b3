"""Preset rules for report_to, logging_dir and push_to_hub / hub_* (no tracker is imported)."""

from __future__ import annotations

import sys
import types

import pytest

from tuitrain.config import load_preset_text, schema
from tuitrain.config.problems import PresetErrors

HEAD = '[task]\nname = "regression"\n'


def _problems(text: str) -> list[str]:
    try:
        preset = load_preset_text(HEAD + text, "p.toml")
    except PresetErrors as exc:
        return [str(p) for p in exc.problems]
    return [str(p) for p in preset.notices]


@pytest.mark.parametrize("tracker, modules", [
    ("tensorboard", ("tensorboard", "tensorboardX")), ("wandb", ("wandb",)), ("mlflow", ("mlflow",))])
def test_a_tracker_without_its_package_is_an_error_naming_pip(monkeypatch, tracker, modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    (line,) = _problems(f'[reproducibility]\nreport_to = ["{tracker}"]\n')
    assert line == (f'p.toml:4: reproducibility.report_to: "{tracker}" needs the package {modules[0]}, '
                    f"which is not installed (pip install {modules[0]})")


def test_installed_trackers_all_and_none_pass(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", types.ModuleType("wandb"))
    assert _problems('[reproducibility]\nreport_to = ["wandb"]\n') == []
    for name in ("wandb", "mlflow", "tensorboard", "tensorboardX"):
        monkeypatch.setitem(sys.modules, name, None)
    assert _problems('[reproducibility]\nreport_to = ["all"]\n') == []  # all = the installed ones
    assert _problems('[reproducibility]\nreport_to = "none"\n') == []


def test_unknown_tracker_and_mixed_none_are_errors():
    (typo,) = _problems('[reproducibility]\nreport_to = ["wandbb"]\n')
    assert "did you mean 'wandb'" in typo
    (mixed,) = [p for p in _problems('[reproducibility]\nreport_to = ["none", "mlflow"]\n') if "combined" in p]
    assert '"none" cannot be combined' in mixed


def test_push_to_hub_without_huggingface_hub_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    (line,) = _problems("[reproducibility]\npush_to_hub = true\n")
    assert "push_to_hub: needs the package huggingface_hub" in line and "(pip install huggingface_hub)" in line


def test_hub_fields_without_push_and_logging_dir_without_tensorboard_are_notices(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.ModuleType("huggingface_hub"))
    notices = _problems('[logging]\nlogging_dir = "tb"\n[reproducibility]\nhub_model_id = "me/m"\n'
                        'hub_strategy = "every_save"\n')
    assert len(notices) == 2
    assert "logging_dir: only the TensorBoard tracker writes there" in notices[0]
    assert "hub_model_id: ignored while push_to_hub = false" in notices[1]
    assert _problems('[reproducibility]\npush_to_hub = true\nhub_model_id = "me/m"\n') == []


def test_the_fields_are_honoured_now():
    for key in ("logging_dir", "report_to", "push_to_hub", "hub_model_id", "hub_strategy", "hub_token",
                "hub_private_repo", "hub_always_push"):
        assert schema.field(key).honoured, key
