"""What torch_compile costs in compilations: one static graph for training (the partial last
batch dropped), one graph for evaluation whatever its batch sizes, and a fresh static graph
after an auto-batch-size retry."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

from trainer_fixtures import events, regression_preset, run

GRAPHS: list[bool] = []  # one entry per compilation: whether the graph has a dynamic size


def _recording(gm, example_inputs):
    values = [n.meta.get("example_value") for n in gm.graph.nodes if n.op == "placeholder"]
    GRAPHS.append(any(isinstance(v, torch.SymInt) or (torch.is_tensor(v) and any(isinstance(d, torch.SymInt)
                                                                               for d in v.shape)) for v in values))
    return gm.forward


BACKEND = "tuitrain_test_recording"
if BACKEND not in torch._dynamo.list_backends(exclude_tags=()):
    torch._dynamo.register_backend(_recording, name=BACKEND)


@pytest.fixture
def graphs():
    torch._dynamo.reset()  # no graph, and no guess about sizes, left by another test
    GRAPHS.clear()
    yield GRAPHS
    torch._dynamo.reset()


# 53 examples: 43 to train (5 batches of 8 and one of 3), 10 to evaluate (8 and 2).
SMALL = {"n_samples": 53}


def _preset(**overrides):
    preset = regression_preset(torch_compile=True, torch_compile_backend=BACKEND, max_steps=-1, num_train_epochs=2,
                               eval_strategy="epoch", per_device_eval_batch_size=8, **overrides)
    preset.task.options.update(SMALL)
    return preset


def test_compiled_training_drops_the_partial_batch_and_evaluation_compiles_once(tmp_path, graphs):
    preset = _preset()
    assert preset.args.dataloader_drop_last  # unset, it follows torch_compile
    assert run(preset, tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "eval")] == [5, 10]  # 5 full batches an epoch
    # Training: one static graph for both epochs. Evaluation (eval mode, batches of 8 and 2,
    # twice): one graph whose batch size is dynamic, not a static one and a recompile for the 2.
    assert graphs == [False, True]


def test_a_set_drop_last_is_kept_with_compile(tmp_path, graphs):
    preset = _preset(dataloader_drop_last=False)
    assert not preset.args.dataloader_drop_last
    assert run(preset, tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "eval")] == [6, 12]


def test_an_auto_batch_size_retry_compiles_a_fresh_static_graph(tmp_path, graphs, monkeypatch):
    # Batches above 5 "run out of memory" at their second step, after the graph was compiled.
    from tuitrain.engine import trainer as trainer_mod

    step = trainer_mod.Trainer._optimizer_step

    def out_of_memory_above_5(self, window):
        step(self, window)
        if self.args.per_device_train_batch_size > 5 and self.state.global_step == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer_mod.Trainer, "_optimizer_step", out_of_memory_above_5)
    preset = regression_preset(torch_compile=True, torch_compile_backend=BACKEND, auto_find_batch_size=True,
                               max_steps=4)
    assert run(preset, tmp_path) == 0
    assert [s["config"]["core.per_device_train_batch_size"] for s in events(tmp_path, "start")] == [8, 7, 6, 5]
    assert graphs == [False] * 4  # each batch size its own static graph, none a recompile of the last
