"""A plug-in as an HF script writes one: a tiny GPT-2 built from a config, `datasets.Dataset`s
with a text column the model does not take, no collate_fn, and a compute_metrics that unpacks
`logits, labels` from the EvalPrediction it gets (and checks it is transformers' own)."""

from __future__ import annotations

import torch
import transformers
from datasets import Dataset

VOCAB, SEQ = 32, 12


def _rows(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, VOCAB, (n,), generator=g)
    ids = torch.stack([(starts * 5 ** k + k) % VOCAB for k in range(SEQ)], dim=1).tolist()
    return {"input_ids": ids, "labels": ids, "text": [" ".join(map(str, row)) for row in ids]}


def accuracy(eval_pred) -> dict:
    assert isinstance(eval_pred, transformers.EvalPrediction), type(eval_pred)
    logits, labels = eval_pred
    return {"accuracy": float((logits[:, :-1].argmax(-1) == labels[:, 1:]).mean())}


def build(options: dict, args) -> dict:
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=16, n_layer=2, n_head=2,
                                     resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1,
                                     bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    return {"model": transformers.GPT2LMHeadModel(config),
            "train_dataset": Dataset.from_dict(_rows(int(options.get("n_train", 40)), 1)),
            "eval_dataset": Dataset.from_dict(_rows(int(options.get("n_eval", 10)), 2)),
            "compute_metrics": accuracy}
