"""The plug-in task both trainers run in the parity suite: tiny, deterministic, CPU-only.

`build(options, args)` returns the same model (same initial weights, whatever the global
RNG) and data every time, so `transformers.Trainer` and tuitrain's engine start equal.
Options:

- `model`: "net" (a classifier with biases, a LayerNorm and, with `norms`, an RMSNorm and a
  GroupNorm whose names say nothing of norms), "kwargs" (the same net, whose forward takes
  `**kwargs` and normalises its loss by `num_items_in_batch`), "lm" (a tiny transformers
  GPT-2 causal LM, labels = input_ids), "mems" (a net that takes `mems`, for past_index),
  "seqcls" / "lm_ds" (a GPT-2 classifier / causal LM on a `datasets.Dataset` with a text column,
  no collate_fn: the classifier's items have different lengths and a tokenizer pads them).
- `n_train`, `n_eval`: dataset sizes; `nan_train` / `nan_eval`: forward calls (0-based,
  counted per mode) whose loss is NaN while the gradients stay finite.
- `model = "checkpointing"`: the net with HF's `activation_checkpointing_enable`, which
  appends its arguments as a JSON line to the file `calls`.
- `record`: a file; compute_metrics is a `Recorder` that appends what it gets there.
- `preprocess = "argmax"`: preprocess_logits_for_metrics keeps only the argmax.
- `n_test`: a test set of that size (for do_predict).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch
from torch import nn

from tuitrain.engine.tasks import TaskBundle

FEATURES, CLASSES, VOCAB, SEQ = 4, 3, 24, 8


class Net(nn.Module):
    """Linear → LayerNorm → tanh → (RMSNorm → GroupNorm) → Linear, with biases."""

    main_input_name = "x"  # what include_for_metrics = ["inputs"] passes on, as an HF model says

    def __init__(self, norms: bool = False, nan_train=(), nan_eval=()):
        super().__init__()
        self.fc1 = nn.Linear(FEATURES, 8)
        self.ln = nn.LayerNorm(8)
        self.norms = norms
        if norms:
            self.rms = nn.RMSNorm(8)
            self.gn = nn.GroupNorm(2, 8)
        self.fc2 = nn.Linear(8, CLASSES)
        self.nan_train, self.nan_eval = set(nan_train), set(nan_eval)
        self.calls = {True: 0, False: 0}
        self.config = SimpleNamespace(problem_type=None)  # transformers reads it for label smoothing

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.ln(self.fc1(x)))
        if self.norms:
            h = self.gn(self.rms(h))
        return self.fc2(h)

    def poison(self, loss: torch.Tensor) -> torch.Tensor:
        """A NaN loss on the chosen calls; the gradient stays the real one's."""
        n = self.calls[self.training]
        self.calls[self.training] += 1
        if n in (self.nan_train if self.training else self.nan_eval):
            loss = loss + torch.tensor(float("nan"))
        return loss

    def forward(self, x, labels=None):
        logits = self.logits(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.poison(nn.functional.cross_entropy(logits, labels))
        return out


class KwargsNet(Net):
    """A forward that takes HF's loss kwargs: the loss is the window's item sum / count."""

    def forward(self, x, labels=None, **kwargs):
        logits = self.logits(x)
        out = {"logits": logits}
        if labels is not None:
            count = kwargs.get("num_items_in_batch")
            loss = nn.functional.cross_entropy(logits, labels, reduction="sum" if count is not None else "mean")
            out["loss"] = self.poison(loss / count if count is not None else loss)
        return out


class MemsNet(Net):
    """Takes `mems` (HF 4's past_index): it shifts the logits when a past is fed back."""

    def forward(self, x, labels=None, mems=None):
        logits = self.logits(x)
        if mems is not None:  # (a shift per class: a constant one would not change the softmax)
            logits = logits + mems * torch.arange(CLASSES, dtype=logits.dtype)
        out = {"logits": logits, "mems": logits.detach().mean()}
        if labels is not None:  # (loss, logits, mems): past_index = 2 feeds mems back
            out = {"loss": nn.functional.cross_entropy(logits, labels), **out}
        return out


class Checkpointable(Net):
    calls_file = ""

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, every_n_layers=1, offload=False):
        with open(self.calls_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps([activation_checkpointing_kwargs, every_n_layers, offload]) + "\n")


class Classes(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, FEATURES, generator=g)
        self.y = torch.randint(0, CLASSES, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "labels": self.y[i]}


class Tokens(torch.utils.data.Dataset):
    """Sequences following a fixed rule (next = (3 × prev + 1) mod VOCAB) from random starts."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, VOCAB, (n,), generator=g)
        rows = [starts]
        for _ in range(SEQ - 1):
            rows.append((3 * rows[-1] + 1) % VOCAB)
        self.ids = torch.stack(rows, dim=1)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def accuracy(pred) -> dict:
    """Share of right answers; for the LM, of next tokens."""
    predictions = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    logits, labels = torch.as_tensor(predictions), torch.as_tensor(pred.label_ids)
    if logits.dim() == 3:
        logits, labels = logits[:, :-1], labels[:, 1:]
    return {"accuracy": float((logits.argmax(-1) == labels).float().mean())}


def _lm():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=16, n_layer=1, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config)


def _plain(value):
    """An eval output as JSON: nested lists of numbers, with its kind (tensor, array, tuple…)."""
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [_plain(v) for v in value]}
    if isinstance(value, dict) or hasattr(value, "keys"):
        return {"dict": {k: _plain(value[k]) for k in sorted(value.keys())}}
    if torch.is_tensor(value):
        return {"tensor": value.detach().cpu().double().tolist()}
    if hasattr(value, "tolist"):
        return {"ndarray": value.astype("float64").tolist()}
    return value


class Recorder:
    """A compute_metrics that appends what it was given to a JSON-lines file (`record`): the
    class, each field's structure and values, the compute_result keyword; it returns the sum of
    the predictions (per call, as batch_eval_metrics uses it, or over the whole set)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, pred, compute_result=None) -> dict:
        kwargs = {"compute_result": compute_result}
        fields = {k: _plain(getattr(pred, k)) for k in ("predictions", "label_ids", "inputs", "losses")}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"class": type(pred).__name__, "unpacked": len(list(pred)), **fields,
                                 **{k: v for k, v in kwargs.items()}}) + "\n")
        first = pred.predictions[0] if isinstance(pred.predictions, (tuple, list)) else pred.predictions
        return {"pred_sum": float(torch.as_tensor(first).double().sum())}


WORDS = "the a cat dog sat ran on under mat log and then".split()


def word_tokenizer():
    """A word-level transformers tokenizer over `WORDS` (with <pad> and <unk>), made in memory."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>")


def sentences(n: int, seed: int) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 9, (n,), generator=g).tolist()
    return [" ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (k,), generator=g)) for k in lengths]


def hf_datasets(kind: str, n_train: int, n_eval: int):
    """datasets.Dataset pairs as HF scripts make them, with a `text` column the model does not take:
    "seqcls": variable-length tokenized sentences and an int `label` (padded by the tokenizer);
    "lm_ds": fixed-length token lists, `labels` = `input_ids` (default_data_collator)."""
    from datasets import Dataset

    tokenizer = word_tokenizer()
    out = []
    for n, seed in ((n_train, 1), (n_eval, 2)):
        texts = sentences(n, seed)
        if kind == "seqcls":
            enc = tokenizer(texts)
            out.append(Dataset.from_dict({"text": texts, "label": [len(t.split()) % CLASSES for t in texts], **enc}))
        else:
            ids = Tokens(n, seed).ids.tolist()
            out.append(Dataset.from_dict({"text": texts, "input_ids": ids, "labels": ids}))
    return tokenizer, out


def build(options: dict, args) -> TaskBundle:
    kind = options.get("model", "net")
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        if kind in ("lm", "lm_ds"):
            model = _lm()
        elif kind == "seqcls":
            from transformers import GPT2Config, GPT2ForSequenceClassification

            model = GPT2ForSequenceClassification(GPT2Config(
                vocab_size=len(WORDS) + 2, n_positions=SEQ, n_embd=16, n_layer=1, n_head=2, num_labels=CLASSES,
                pad_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
        else:
            cls = {"net": Net, "kwargs": KwargsNet, "mems": MemsNet, "checkpointing": Checkpointable}[kind]
            model = cls(bool(options.get("norms", False)), options.get("nan_train", ()), options.get("nan_eval", ()))
            model.calls_file = options.get("calls", "")
    if kind in ("seqcls", "lm_ds"):
        tokenizer, (train, evals) = hf_datasets(kind, int(options.get("n_train", 16)), int(options.get("n_eval", 6)))
        return TaskBundle(model=model, train_dataset=train, eval_dataset=evals, compute_metrics=accuracy,
                          processing_class=tokenizer if kind == "seqcls" else None)
    data = Tokens if kind == "lm" else Classes
    metrics = Recorder(options["record"]) if options.get("record") else accuracy
    preprocess = (lambda logits, labels: logits.argmax(-1)) if options.get("preprocess") == "argmax" else None
    return TaskBundle(model=model, train_dataset=data(int(options.get("n_train", 16)), 1),
                      eval_dataset=data(int(options.get("n_eval", 6)), 2), compute_metrics=metrics,
                      preprocess_logits_for_metrics=preprocess,
                      test_dataset=data(int(options["n_test"]), 3) if options.get("n_test") else None)
