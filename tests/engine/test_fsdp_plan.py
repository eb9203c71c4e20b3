"""FSDP's settings, checked before any process group exists: `fsdp` words with the preset,
`fsdp_config` (table or JSON file) at launch, and which modules become FSDP units.
`tests/runs/test_fsdp.py` trains with it under torchrun."""

from __future__ import annotations

import pytest
from torch import nn

from tuitrain.config import PresetErrors, load_preset_data
from tuitrain.engine.fsdp import FsdpPlan, _units, fsdp_plan
from tuitrain.engine.tasks.gpt import GPT, Block, GPTConfig
from tuitrain.errors import TuitrainError


def _args(fsdp="full_shard auto_wrap", config=None, **distributed):
    return load_preset_data({"distributed": {"fsdp": fsdp, **({"fsdp_config": config} if config is not None else {}),
                                             **distributed}}, "p.toml").args


def test_the_words_of_fsdp_are_transformers_5_fsdp2_ones():
    assert fsdp_plan(_args("")) is None
    assert fsdp_plan(_args()) == FsdpPlan()
    assert fsdp_plan(_args("shard_grad_op")).reshard_after_forward is False
    assert fsdp_plan(_args("full_shard offload")).cpu_offload is True
    for words, match in (("hybrid_shard", "hybrid_shard is an FSDP1 strategy"), ("no_shard", "no_shard is an FSDP1"),
                         ("full_shard sharded", "unknown option 'sharded'"),
                         ("full_shard shard_grad_op", "full_shard and shard_grad_op both given")):
        with pytest.raises(PresetErrors, match=f"distributed.fsdp: {match}"):
            _args(words)
    with pytest.raises(PresetErrors, match="precision.fp16: not with fsdp"):
        load_preset_data({"distributed": {"fsdp": "full_shard"}, "precision": {"fp16": True}}, "p.toml")


def test_fsdp_config_is_read_as_transformers_reads_it():
    plan = fsdp_plan(_args(config={"min_num_params": 1000, "cpu_offload": "true", "activation_checkpointing": True}))
    assert (plan.wrap_policy, plan.min_num_params, plan.cpu_offload, plan.activation_checkpointing) == \
        ("SIZE_BASED_WRAP", 1000, True, True)
    plan = fsdp_plan(_args("auto_wrap", {"fsdp_transformer_layer_cls_to_wrap": "Block", "fsdp_version": 2,
                                         "fsdp_use_orig_params": True, "fsdp_reshard_after_forward": False}))
    assert (plan.layer_classes, plan.reshard_after_forward) == (("Block",), False)
    assert fsdp_plan(_args(fsdp_min_num_params=10)).wrap_policy == "SIZE_BASED_WRAP"


@pytest.mark.parametrize("config, match", [
    ({"version": 1}, "version 1: tuitrain runs FSDP2"),
    ({"state_dict_type": "SHARDED_STATE_DICT"}, "FULL_STATE_DICT checkpoints"),
    ({"xla": True}, "xla: PyTorch/XLA"),
    ({"cpu_ram_efficient_loading": True}, "cpu_ram_efficient_loading"),
    ({"use_orig_params": False}, "use_orig_params = false is FSDP1's"),
    ({"backward_prefetch": "BACKWARD_PRE"}, "backward_prefetch is an FSDP1 option"),
    ({"reshard_after_forward": False}, "contradicts fsdp = 'full_shard auto_wrap'"),
    ({"auto_wrap_policy": "SIZE_BASED_WRAP"}, "SIZE_BASED_WRAP needs min_num_params"),
    ({"auto_wrap_policy": "NO_WRAP", "min_num_params": 5}, "min_num_params applies to"),
    ({"limit_all_gather": True}, "unknown key limit_all_gather"),
])
def test_what_fsdp2_cannot_honour_is_refused_in_one_line(config, match):
    with pytest.raises(TuitrainError, match=f"distributed.fsdp_config: .*{match}"):
        fsdp_plan(_args(config=config))


def test_units_are_transformer_layers_or_modules_of_a_size():
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=2, n_embd=8))
    units = _units(gpt, FsdpPlan())  # the model's _no_split_modules
    assert len(units) == 3 and all(isinstance(u, Block) for u in units)
    assert _units(gpt, FsdpPlan(wrap_policy="NO_WRAP")) == []
    with pytest.raises(TuitrainError, match="names Decoder, which the model does not have"):
        _units(gpt, FsdpPlan(layer_classes=("Decoder",)))
    mlp = nn.Sequential(nn.Linear(4, 100), nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 2)))
    sized = _units(mlp, FsdpPlan(wrap_policy="SIZE_BASED_WRAP", min_num_params=150))
    assert sized == [mlp[0], mlp[1][0], mlp[1][1]]  # each after the units inside it; the model itself last
