"""Built-in task schemas: defaults match the engine's, and train_examples matches its datasets."""

from __future__ import annotations

import pytest

from tuitrain.config import load_preset_text
from tuitrain.config.tasks import BUILTIN_TASKS, is_entry_point, train_examples


def test_entry_points() -> None:
    assert is_entry_point("pkg.mod:build") and is_entry_point("path/file.py:make_task")
    assert not is_entry_point("char_gpt") and not is_entry_point("mod:")


def test_plugin_options_are_free_form() -> None:
    p = load_preset_text('[task]\nname = "mypkg.tasks:build"\n[task.options]\nanything = [1, 2]\n', "p")
    assert p.task.options == {"anything": [1, 2]}
    assert train_examples(p.task.name, p.task.options) is None


def test_task_option_in_wrong_table() -> None:
    with pytest.raises(Exception, match=r"p:2: core.block_size: is a task option"):
        load_preset_text("[core]\nblock_size = 64\n", "p")


def test_option_checks() -> None:
    with pytest.raises(Exception, match=r"p:4: task.options.operation: 'mod' is not one of"):
        load_preset_text('[task]\nname = "modular"\n[task.options]\noperation = "mod"\n', "p")
    with pytest.raises(Exception, match="not divisible"):
        load_preset_text("[task.options]\nn_embd = 100\nn_head = 3\n", "p")


ENGINE_CASES = [
    ("char_gpt", {}),
    ("char_gpt", {"block_size": 64, "val_fraction": 0.2}),
    ("char_gpt", {"examples_per_epoch": 500}),
    ("modular", {"modulus": 13}),
    ("modular", {"modulus": 11, "operation": "div", "train_fraction": 0.5}),
    ("regression", {"n_samples": 100}),
]


@pytest.mark.parametrize("name,options", ENGINE_CASES)
def test_train_examples_match_the_engine(name: str, options: dict) -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from tuitrain.engine.tasks import build_task
    from tuitrain.config.preset import TaskSpec

    small = {"n_layer": 1, "n_embd": 16, "n_head": 2} if name != "regression" else {}
    opts = {**BUILTIN_TASKS[name].defaults(), **small, **options}
    args = load_preset_text("", "p").args
    bundle = build_task(TaskSpec(name, opts), args, None)
    assert train_examples(name, opts) == len(bundle.train_dataset)
