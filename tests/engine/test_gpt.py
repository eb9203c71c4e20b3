"""The built-in GPT: shapes, loss, generation, beam search, gradient checkpointing."""

from __future__ import annotations

import itertools

import pytest
import torch

from tuitrain.engine.tasks.gpt import GPT, GPTConfig

torch.set_num_threads(1)


def tiny(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg))


def test_forward_shapes_loss_and_tied_weights():
    model = tiny()
    ids = torch.randint(0, 7, (3, 8))
    out = model(input_ids=ids, labels=ids)
    assert out["logits"].shape == (3, 8, 7)
    assert out["loss"].ndim == 0 and 1.5 < out["loss"].item() < 2.5  # ~ln 7 at init
    assert model.lm_head.weight is model.wte.weight
    assert "loss" not in model(input_ids=ids)
    out["loss"].backward()
    assert model.wte.weight.grad is not None


def test_too_long_sequence_and_bad_heads():
    from tuitrain.errors import TuitrainError

    with pytest.raises(ValueError, match="block_size"):
        tiny()(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(TuitrainError, match="multiple of n_head"):
        tiny(n_embd=15)


def test_greedy_generate_is_deterministic_and_argmax():
    model = tiny()
    prompt = torch.tensor([[1, 2, 3]])
    a = model.generate(prompt, 4, temperature=0)
    b = model.generate(prompt, 4, temperature=0)
    assert a.shape == (1, 7) and torch.equal(a, b) and torch.equal(a[:, :3], prompt)
    with torch.no_grad():
        first = model(prompt)["logits"][0, -1].argmax()
    assert a[0, 3] == first
    assert model.training  # restored after generation


def test_sampling_with_top_k_one_equals_greedy():
    model = tiny()
    prompt = torch.tensor([[4, 1]])
    torch.manual_seed(3)
    assert torch.equal(model.generate(prompt, 5, temperature=1.0, top_k=1), model.generate(prompt, 5, temperature=0))


def _seq_logprob(model: GPT, seq: torch.Tensor, n_prompt: int) -> float:
    with torch.no_grad():
        logp = torch.log_softmax(model(seq[None, :-1])["logits"][0].float(), -1)
    return sum(logp[t - 1, seq[t]].item() for t in range(n_prompt, len(seq)))


def test_beam_search_finds_best_scoring_continuation():
    model = tiny(seed=5, vocab_size=4)
    prompt = torch.tensor([[1, 2]])
    beam = model.generate(prompt, 3, num_beams=64)[0]  # beams >= 4**3: exhaustive
    best = max(
        (torch.tensor([1, 2, *c]) for c in itertools.product(range(4), repeat=3)),
        key=lambda s: _seq_logprob(model, s, 2),
    )
    assert torch.equal(beam, best)
    narrow = model.generate(prompt, 3, num_beams=2)[0]
    assert _seq_logprob(model, narrow, 2) >= _seq_logprob(model, model.generate(prompt, 3, temperature=0)[0], 2) - 1e-6


def test_gradient_checkpointing_gives_same_gradients(monkeypatch):
    import tuitrain.engine.tasks.gpt as gpt_module

    calls = []
    real = gpt_module.checkpoint
    monkeypatch.setattr(gpt_module, "checkpoint", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    ids = torch.randint(0, 7, (2, 8), generator=torch.Generator().manual_seed(1))

    def grads(checkpointing: bool):
        model = tiny(dropout=0.0)
        if checkpointing:
            model.gradient_checkpointing_enable({"use_reentrant": False})
        model(input_ids=ids, labels=ids)["loss"].backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain, ckpt = grads(False), grads(True)
    assert calls == [{"use_reentrant": False}] * 2  # once per block, kwargs passed through
    assert plain.keys() == ckpt.keys()
    for name in plain:
        torch.testing.assert_close(plain[name], ckpt[name], rtol=1e-5, atol=1e-6, msg=name)
