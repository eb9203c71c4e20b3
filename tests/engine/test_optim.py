"""build_optimizer: parameter groups, every torch family, optim_args, bias correction, missing
packages, and the one table of optimizers shared with the schema and the validator."""

from __future__ import annotations

import pytest
import torch

from tuitrain.config import TrainingArgs, schema
from tuitrain.config.optimizers import LOW_RANK, OPTIMIZERS
from tuitrain.engine.optim import (
    BUILDERS, AdamWNoBiasCorrection, build_optimizer, decay_parameter_names, parse_optim_args,
)
from tuitrain.errors import TuitrainError

torch.set_num_threads(1)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.ln = torch.nn.LayerNorm(8)
        self.rms = torch.nn.RMSNorm(8)
        self.gn = torch.nn.GroupNorm(2, 8)
        self.fc2 = torch.nn.Linear(8, 2, bias=False)

    def forward(self, x):
        return self.fc2(self.gn(self.rms(self.ln(self.fc1(x)))))


def _args(**kw):
    base = dict(optim="adamw_torch", optim_args=None, weight_decay=0.1, learning_rate=1e-2,
                adam_beta1=0.9, adam_beta2=0.99, adam_epsilon=1e-6, adam_bias_correction=True,
                optim_target_modules=None, gradient_accumulation_steps=1, warmup_steps=0)
    base.update(kw)
    return TrainingArgs(**base)


def test_decay_groups_are_transformers_groups():
    # HF leaves out nn.LayerNorm by type and names saying bias/norm; an RMSNorm or GroupNorm
    # whose name says neither is decayed (here `rms` and `gn`), as in transformers.
    m = Tiny()
    assert decay_parameter_names(m) == {"fc1.weight", "rms.weight", "gn.weight", "fc2.weight"}
    opt = build_optimizer(m, _args())
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert len(no_decay["params"]) == 4  # fc1.bias, ln.weight, ln.bias, gn.bias
    assert opt.param_groups[0]["betas"] == (0.9, 0.99) and opt.param_groups[0]["eps"] == 1e-6


def test_decay_names_match_transformers():
    trainer = pytest.importorskip("transformers").Trainer
    m = torch.nn.Sequential(Tiny(), torch.nn.Module())
    m[1].final_norm = torch.nn.BatchNorm1d(3)
    m[1].layernorm_w = torch.nn.Parameter(torch.zeros(2))
    assert decay_parameter_names(m) == set(trainer.get_decay_parameter_names(None, m))


def test_frozen_parameters_are_left_out():
    m = Tiny()
    m.fc1.weight.requires_grad_(False)
    opt = build_optimizer(m, _args())
    assert all(p is not m.fc1.weight for g in opt.param_groups for p in g["params"])


@pytest.mark.parametrize("name", ["adamw_torch", "adamw_torch_fused", "sgd", "adagrad", "rmsprop", "adafactor"])
def test_every_torch_family_builds_and_steps(name):
    torch.manual_seed(0)
    m = Tiny()
    opt = build_optimizer(m, _args(optim=name))
    before = m.fc1.weight.detach().clone()
    m(torch.randn(3, 4)).pow(2).mean().backward()
    opt.step()
    assert not torch.equal(before, m.fc1.weight)
    if name == "adamw_torch_fused":
        assert opt.param_groups[0]["fused"] is True


def test_optim_args_are_read_only_where_transformers_reads_them():
    assert parse_optim_args("momentum=0.9, nesterov=true,x=abc") == {"momentum": "0.9", "nesterov": "true", "x": "abc"}
    opt = build_optimizer(Tiny(), _args(optim="sgd", optim_args="momentum=0.9,nesterov=true,bogus=1"))
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["nesterov"] is True
    adam = build_optimizer(Tiny(), _args(optim_args="amsgrad=true,weight_decay=0.5"))
    assert adam.param_groups[0]["amsgrad"] is False and adam.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(TuitrainError, match="optim_args"):
        build_optimizer(Tiny(), _args(optim="rmsprop", optim_args="alpha=much"))
    with pytest.raises(TuitrainError, match="key=value"):
        parse_optim_args("momentum")


def test_adam_without_bias_correction_follows_the_formula():
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    opt = build_optimizer(m, _args(adam_bias_correction=False, weight_decay=0.05))
    assert isinstance(opt, AdamWNoBiasCorrection)
    p0 = m.weight.detach().clone()
    mom = torch.zeros_like(p0)
    var = torch.zeros_like(p0)
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.99, 1e-6, 0.05
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(4, 3)).pow(2).sum().backward()
        g = m.weight.grad.detach().clone()
        p0 = p0 * (1 - lr * wd)
        mom = b1 * mom + (1 - b1) * g
        var = b2 * var + (1 - b2) * g * g
        p0 = p0 - lr * mom / (var.sqrt() + eps)
        opt.step()
    torch.testing.assert_close(m.weight.detach(), p0, rtol=1e-6, atol=1e-7)
    assert m.bias is not None


def test_bias_correction_on_matches_torch_adamw():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a = build_optimizer(a, _args(weight_decay=0.0))
    opt_b = torch.optim.AdamW(b.parameters(), lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.0)
    x = torch.randn(4, 3)
    for opt, mod in ((opt_a, a), (opt_b, b)):
        mod(x).sum().backward()
        opt.step()
    assert torch.equal(a.weight, b.weight)


def test_fused_refuses_no_bias_correction():
    with pytest.raises(TuitrainError, match="adam_bias_correction"):
        build_optimizer(Tiny(), _args(optim="adamw_torch_fused", adam_bias_correction=False))


@pytest.mark.parametrize("name", sorted(n for n, info in OPTIMIZERS.items() if info.imports))
def test_missing_package_is_named_with_pip_command(name):
    pip = OPTIMIZERS[name].pip
    try:
        for module in OPTIMIZERS[name].imports:
            __import__(module)
    except ImportError:
        pass
    else:
        pytest.skip(f"{name}'s packages are installed")
    args = _args(optim=name, optim_target_modules=["fc1"] if name in LOW_RANK else None)
    with pytest.raises(TuitrainError) as info:
        build_optimizer(Tiny(), args)
    msg = str(info.value)
    assert f'optim "{name}" needs {pip}' in msg and "pip install" in msg


def test_unknown_optimizer_is_refused():
    with pytest.raises(TuitrainError, match="unknown optimizer"):
        build_optimizer(Tiny(), _args(optim="adamw_quantum"))


def test_one_table_of_optimizers_drives_schema_validator_and_engine():
    assert set(BUILDERS) == set(OPTIMIZERS)
    assert schema.field("optim").choices == tuple(OPTIMIZERS)
    for name, info in OPTIMIZERS.items():
        if info.pip:
            assert info.pip in schema.field("optim").help or name in schema.field("optim").help, name


def test_without_weight_decay_the_two_groups_are_one():
    # Both HF groups would carry weight_decay 0: one group gives the same update in one call.
    m = Tiny()
    opt = build_optimizer(m, _args(weight_decay=0.0))
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == len(list(m.parameters()))
