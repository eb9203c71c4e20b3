"""Plug-in tasks: `path/file.py:function` and `package.module:function`, and every error."""

from __future__ import annotations

import sys
import textwrap
from types import SimpleNamespace as N

import pytest
import torch

from tuitrain.engine.tasks import TaskBundle, build_task
from tuitrain.errors import TuitrainError

torch.set_num_threads(1)

PLUGIN = textwrap.dedent(
    """
    import torch
    from tuitrain.engine.tasks import TaskBundle

    class Model(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.lin = torch.nn.Linear(2, width)
        def forward(self, x, labels=None):
            out = {"logits": self.lin(x)}
            if labels is not None:
                out["loss"] = torch.nn.functional.cross_entropy(out["logits"], labels)
            return out

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 10
        def __getitem__(self, i):
            return {"x": torch.ones(2) * i, "labels": torch.tensor(i % 3)}

    def bundle(options, args):
        return TaskBundle(model=Model(options["width"]), train_dataset=Data())

    def as_dict(options, args):
        return {"model": Model(3), "train_dataset": Data(), "eval_dataset": Data()}

    def wrong_type(options, args):
        return 42

    def extra_key(options, args):
        return {"model": Model(3), "train_dataset": Data(), "optimizer": None}

    def no_dataset(options, args):
        return {"model": Model(3)}

    def not_map_style(options, args):
        return {"model": Model(3), "train_dataset": iter([])}

    def boom(options, args):
        raise RuntimeError("kaboom")

    not_a_function = 5
    """
)


@pytest.fixture
def plugin_file(tmp_path):
    path = tmp_path / "myplug.py"
    path.write_text(PLUGIN)
    return path


def build(name, **options):
    return build_task(N(name=name, options=options), N(seed=0), None)


def test_file_entry_point_returns_bundle(plugin_file):
    b = build(f"{plugin_file}:bundle", width=3)
    assert isinstance(b, TaskBundle) and b.model.lin.out_features == 3 and len(b.train_dataset) == 10
    out = b.model(**torch.utils.data.default_collate([b.train_dataset[i] for i in range(4)]))
    out["loss"].backward()


def test_file_entry_point_relative_to_preset(plugin_file, tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    task = N(name="myplug.py:as_dict", options={}, base_dir=str(tmp_path / "preset.toml"))
    b = build_task(task, None, None)
    assert b.eval_dataset is not None


def test_module_entry_point(plugin_file, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_file.parent))
    sys.modules.pop("myplug", None)
    b = build("myplug:as_dict")
    assert isinstance(b, TaskBundle) and len(b.eval_dataset) == 10


@pytest.mark.parametrize(
    "func, message",
    [
        ("wrong_type", "returned int; expected a TaskBundle or a dict"),
        ("extra_key", "unknown keys optimizer"),
        ("no_dataset", "without train_dataset"),
        ("not_map_style", "not map-style"),
        ("boom", "raised RuntimeError: kaboom"),
        ("missing", "has no function 'missing'"),
        ("not_a_function", "is not callable"),
    ],
)
def test_plugin_errors(plugin_file, func, message):
    with pytest.raises(TuitrainError, match=message):
        build(f"{plugin_file}:{func}")


def test_missing_file_module_and_bad_syntax(tmp_path):
    with pytest.raises(TuitrainError, match="plug-in file .*nope.py does not exist"):
        build(f"{tmp_path}/nope.py:f")
    with pytest.raises(TuitrainError, match="module 'no_such_pkg_xyz.mod' not found"):
        build("no_such_pkg_xyz.mod:f")
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    with pytest.raises(TuitrainError, match="importing .*bad.py failed: SyntaxError"):
        build(f"{bad}:f")
    with pytest.raises(TuitrainError, match="is not an entry point"):
        build("mod:")
