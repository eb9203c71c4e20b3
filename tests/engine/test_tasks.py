"""Built-in tasks: each builds, trains a step, and has the right shapes and labels."""

from __future__ import annotations

from types import SimpleNamespace as N

import pytest
import torch

from tuitrain.engine.tasks import EvalPrediction, TaskBundle, build_task
from tuitrain.engine.tasks.char_gpt import builtin_corpus
from tuitrain.errors import TuitrainError

torch.set_num_threads(1)
TINY_GPT = dict(n_layer=1, n_head=2, n_embd=16)


def build(name, **options):
    return build_task(N(name=name, options=options), N(seed=0), None)


def step(bundle: TaskBundle, n: int = 4) -> torch.Tensor:
    batch = torch.utils.data.default_collate([bundle.train_dataset[i] for i in range(n)])
    out = bundle.model(**batch)
    out["loss"].backward()
    assert all(p.grad is not None for p in bundle.model.parameters() if p.requires_grad)
    return out["logits"]


def test_builtin_corpus_is_pydoc_topics():
    text = builtin_corpus()
    assert 400_000 < len(text.encode()) < 600_000
    from pydoc_data.topics import topics

    first = sorted(topics)[0]
    assert text.startswith(topics[first])


def test_char_gpt_default_corpus_items_shift_by_one():
    b = build("char_gpt", block_size=32, **TINY_GPT)
    item = b.train_dataset[3]
    assert item["input_ids"].shape == (32,) and item["input_ids"].dtype == torch.long
    assert torch.equal(item["input_ids"][1:], item["labels"][:-1])
    assert torch.equal(b.train_dataset[4]["input_ids"][0], item["labels"][-1])  # contiguous blocks
    n_train, n_val = len(b.train_dataset), len(b.eval_dataset)
    assert 0.08 < n_val / (n_train + n_val) < 0.12
    assert step(b).shape == (4, 32, b.model.config.vocab_size)
    assert b.tokens_per_example == 32
    assert b.decode(b.train_dataset[0]["input_ids"].tolist()) == builtin_corpus()[:32]
    prompt = b.sample_prompt()
    assert prompt.dim() == 2 and prompt.shape[0] == 1
    assert b.decode(b.sample_prompt("def ")[0].tolist()) == "def "


def test_char_gpt_is_deterministic_and_examples_per_epoch():
    a = build("char_gpt", block_size=16, examples_per_epoch=50, **TINY_GPT)
    b = build("char_gpt", block_size=16, examples_per_epoch=50, **TINY_GPT)
    assert len(a.train_dataset) == 50
    assert all(torch.equal(a.train_dataset[i]["input_ids"], b.train_dataset[i]["input_ids"]) for i in range(50))
    assert torch.equal(a.eval_dataset[0]["input_ids"], b.eval_dataset[0]["input_ids"])


def test_char_gpt_custom_file_and_folder(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("abcabcabc" * 20)
    b = build("char_gpt", text=str(f), block_size=8, val_fraction=0.1, **TINY_GPT)
    assert b.model.config.vocab_size == 3
    assert b.decode(b.train_dataset[0]["input_ids"].tolist()) == "abcabcab"
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "x.txt").write_text("xxxx" * 20)
    (folder / "sub" / "y.txt").write_text("yyyy" * 20)
    b = build("char_gpt", text=str(folder), block_size=8, val_fraction=0.0, **TINY_GPT)
    assert b.model.config.vocab_size == 3  # x, y and the newline joining the files
    assert b.eval_dataset is None
    step(b)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"text": "/no/such/file.txt"}, "does not exist"),
        ({"block_sz": 8}, "did you mean 'block_size'"),
        ({"val_fraction": 1.5}, "outside"),
        ({"block_size": 10_000_000}, "needs at least"),
    ],
)
def test_char_gpt_errors(options, message):
    with pytest.raises(TuitrainError, match=message):
        build("char_gpt", **{**TINY_GPT, **options})


def test_char_gpt_empty_folder(tmp_path):
    with pytest.raises(TuitrainError, match="holds no files"):
        build("char_gpt", text=str(tmp_path), **TINY_GPT)


def _write_bin(path, tokens):
    import array

    arr = array.array("H", tokens)
    path.write_bytes(arr.tobytes())


def test_token_gpt_reads_uint16_files(tmp_path):
    tokens = [(i * 7) % 60000 for i in range(1000)]
    _write_bin(tmp_path / "train.bin", tokens)
    _write_bin(tmp_path / "val.bin", tokens[:200])
    b = build("token_gpt", data_dir=str(tmp_path), vocab_size=60000, block_size=16, **TINY_GPT)
    assert len(b.train_dataset) == 999 // 16 and len(b.eval_dataset) == 199 // 16
    item = b.train_dataset[2]
    assert item["input_ids"].tolist() == tokens[32:48] and item["labels"].tolist() == tokens[33:49]
    assert item["input_ids"].dtype == torch.long
    step(b, 2)
    b = build("token_gpt", data_dir=str(tmp_path), vocab_size=60000, block_size=16, examples_per_epoch=7, **TINY_GPT)
    assert len(b.train_dataset) == 7
    item = b.train_dataset[6]
    start = tokens.index(item["input_ids"][0].item())
    assert item["input_ids"].tolist() == tokens[start : start + 16]


def test_token_gpt_without_numpy(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "numpy" else real_import(name, *a, **k))
    _write_bin(tmp_path / "train.bin", list(range(100)))
    b = build("token_gpt", data_dir=str(tmp_path), vocab_size=128, block_size=8, **TINY_GPT)
    assert b.eval_dataset is None
    assert b.train_dataset[1]["input_ids"].tolist() == list(range(8, 16))


def test_token_gpt_errors(tmp_path):
    with pytest.raises(TuitrainError, match="needs a folder holding train.bin"):
        build("token_gpt")
    with pytest.raises(TuitrainError, match="train.bin does not exist"):
        build("token_gpt", data_dir=str(tmp_path))
    (tmp_path / "train.bin").write_bytes(b"abc")
    with pytest.raises(TuitrainError, match="odd byte count"):
        build("token_gpt", data_dir=str(tmp_path))


def test_modular_task_and_accuracy():
    b = build("modular", modulus=7, operation="sub", n_layer=1, n_head=2, n_embd=16)
    items = [b.train_dataset[i] for i in range(len(b.train_dataset))] + [b.eval_dataset[i] for i in range(len(b.eval_dataset))]
    assert len(items) == 49
    pairs = {(int(x["input_ids"][0]), int(x["input_ids"][2])) for x in items}
    assert len(pairs) == 49  # train and held-out are disjoint and cover every pair
    for x in items:
        a, op, c, eq = x["input_ids"].tolist()
        assert (op, eq) == (7, 8) and x["labels"] == (a - c) % 7
    logits = step(b)
    assert logits.shape == (4, 7)
    labels = torch.tensor([1, 2, 3])
    assert b.compute_metrics(EvalPrediction(torch.eye(7)[[1, 2, 0]].numpy(), labels.numpy())) == {"accuracy": pytest.approx(2 / 3)}


def test_modular_division_and_errors():
    b = build("modular", modulus=5, operation="div", n_layer=1, n_head=2, n_embd=16)
    items = [b.train_dataset[i] for i in range(len(b.train_dataset))] + [b.eval_dataset[i] for i in range(len(b.eval_dataset))]
    assert len(items) == 20
    assert all((x["labels"] * x["input_ids"][2]) % 5 == x["input_ids"][0] for x in items)
    with pytest.raises(TuitrainError, match="not prime"):
        build("modular", modulus=6, operation="div")
    with pytest.raises(TuitrainError, match="not one of"):
        build("modular", operation="pow")


def test_regression_task():
    b = build("regression", n_samples=100, n_features=3, hidden=8)
    assert len(b.train_dataset) == 80 and len(b.eval_dataset) == 20
    assert b.train_dataset[0]["x"].shape == (3,)
    assert step(b).shape == (4,)
    again = build("regression", n_samples=100, n_features=3, hidden=8)
    assert torch.equal(again.eval_dataset[5]["labels"], b.eval_dataset[5]["labels"])
    y = torch.tensor([1.0, 2.0, 3.0])
    assert b.compute_metrics(EvalPrediction(y.numpy(), y.numpy())) == {"mse": 0.0, "r2": 1.0}


def test_unknown_task_suggests():
    with pytest.raises(TuitrainError, match="did you mean 'char_gpt'"):
        build("char-gpt")
