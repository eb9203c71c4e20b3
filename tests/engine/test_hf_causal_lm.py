"""The built-in `hf_causal_lm` task: a transformers causal LM from a config or a local folder, a byte
or local tokenizer, packed blocks, samples from the model's own generate, checkpoints that load."""

from __future__ import annotations

import os

import pytest
import torch

transformers = pytest.importorskip("transformers")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

from trainer_fixtures import FakePreset, events, run  # noqa: E402
from tuitrain.config import load_preset
from tuitrain.config.tasks import BUILTIN_TASKS
from tuitrain.engine.tasks import build_task  # noqa: E402
from tuitrain.errors import TuitrainError  # noqa: E402
from tuitrain.paths import resolve_preset_path

transformers.logging.set_verbosity_error()
TEXT = ("The quick brown fox jumps over the lazy dog. " * 30 + "Une phrase en français, déjà vue. " * 20) * 2
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 64}


def tokenizer_folder(path, text: str = TEXT):
    """A byte-level BPE tokenizer trained on `text` and saved as transformers saves one."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                                bos_token="<|endoftext|>")
    fast.save_pretrained(path)
    return fast


def lm_preset(tmp_path, options: dict | None = None, **overrides):
    (tmp_path / "text.txt").write_text(TEXT)
    opts = {"model": "gpt2", "config": TINY, "tokenizer": "bytes", "text": str(tmp_path / "text.txt"),
            "block_size": 16, "val_fraction": 0.2, **(options or {})}
    base = {"per_device_train_batch_size": 4, "per_device_eval_batch_size": 8, "max_steps": 4, "learning_rate": 3e-3,
            "logging_steps": 1, "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2,
            "sample_every": 2, "sample_max_new_tokens": 8, "seed": 3}
    return FakePreset("hf_causal_lm", opts, {**base, **overrides})


def test_bytes_from_a_config_trains_samples_and_saves_loadable_checkpoints(tmp_path):
    preset = lm_preset(tmp_path)
    assert run(preset, tmp_path / "run") == 0
    run_dir = tmp_path / "run"
    assert [e["step"] for e in events(run_dir, "eval")] == [2, 4]
    samples = events(run_dir, "sample")
    assert [s["step"] for s in samples] == [2, 4] and all(isinstance(s["text"], str) and s["text"] for s in samples)
    ckpt = run_dir / "checkpoint-4"
    assert {"config.json", "generation_config.json", "model.safetensors"} <= set(os.listdir(ckpt))
    assert not {"tokenizer.json", "tokenizer_config.json"} & set(os.listdir(ckpt))  # bytes: nothing to save
    model = transformers.AutoModelForCausalLM.from_pretrained(ckpt)
    assert type(model).__name__ == "GPT2LMHeadModel" and model.config.vocab_size == 257
    assert model.config.eos_token_id == 256 and model.config.n_layer == 1
    # packed blocks, labels = input ids (the model shifts them); the last 20 % held out
    bundle = build_task(preset.task, preset.args)
    data = TEXT.encode()
    n_val = int(len(data) * 0.2)
    assert len(bundle.train_dataset) == (len(data) - n_val) // 16 and len(bundle.eval_dataset) == n_val // 16
    item = bundle.train_dataset[1]
    assert item["input_ids"].tolist() == list(data[16:32]) and torch.equal(item["labels"], item["input_ids"])
    assert bundle.decode(list("déjà".encode())) == "déjà"


def test_a_local_tokenizer_folder_is_used_and_saved_with_each_checkpoint(tmp_path):
    tokenizer = tokenizer_folder(tmp_path / "tok")
    preset = lm_preset(tmp_path, {"tokenizer": str(tmp_path / "tok")})
    assert run(preset, tmp_path / "run") == 0
    ckpt = tmp_path / "run" / "checkpoint-4"
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(ckpt))
    again = transformers.AutoTokenizer.from_pretrained(ckpt)
    assert again("the lazy fox")["input_ids"] == tokenizer("the lazy fox")["input_ids"]
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final")
    assert model.config.vocab_size == len(tokenizer)
    bundle = build_task(preset.task, preset.args)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert bundle.train_dataset[0]["input_ids"].tolist() == ids[:16]
    assert all(isinstance(s["text"], str) for s in events(tmp_path / "run", "sample"))


def test_fine_tuning_a_local_folder_starts_from_its_weights_and_tokenizer(tmp_path):
    tokenizer = tokenizer_folder(tmp_path / "base")
    config = transformers.GPT2Config(vocab_size=len(tokenizer), **TINY)
    base = transformers.GPT2LMHeadModel(config)
    base.save_pretrained(tmp_path / "base")
    preset = lm_preset(tmp_path, {"model": str(tmp_path / "base"), "config": {"resid_pdrop": 0.0}, "tokenizer": ""})
    bundle = build_task(preset.task, preset.args)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in bundle.model.state_dict().items())
    assert bundle.model.config.resid_pdrop == 0.0 and bundle.processing_class is not None
    assert run(preset, tmp_path / "run") == 0
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert f"fine-tuned version of `{(tmp_path / 'base').resolve()}`" in card


def test_a_folder_with_pickle_weights_is_refused(tmp_path):
    config = transformers.GPT2Config(vocab_size=257, **TINY)
    config.save_pretrained(tmp_path / "pickled")
    torch.save(transformers.GPT2LMHeadModel(config).state_dict(), tmp_path / "pickled" / "pytorch_model.bin")
    preset = lm_preset(tmp_path, {"model": str(tmp_path / "pickled"), "config": {}})
    with pytest.raises(TuitrainError, match=r"task.options.model: cannot load a causal LM from .*safetensors"):
        build_task(preset.task, preset.args)


@pytest.mark.parametrize("options, message", [
    ({"model": "gtp2"}, r"task.options.model: 'gtp2' is neither a folder nor a model type \(did you mean 'gpt2'\?\)"),
    ({"model": "/no/such/folder"}, r"task.options.model: folder /no/such/folder does not exist"),
    ({"block_size": 100}, r"task.options.block_size: 100 is longer than the model's 64 positions"),
    ({"config": {**TINY, "vocab_size": 100}}, r"task.options.tokenizer: 257 tokens, but the model's embedding holds 100"),
    ({"tokenizer": "/no/tok"}, r"task.options.tokenizer: /no/tok is not a folder"),
])
def test_bad_options_are_one_line_errors(tmp_path, options, message):
    preset = lm_preset(tmp_path, options)
    with pytest.raises(TuitrainError, match=message):
        build_task(preset.task, preset.args)


def test_the_shipped_preset_counts_its_examples_as_the_engine_does():
    preset = load_preset(resolve_preset_path("hf-tiny-gpt2"))
    assert preset.task.name == "hf_causal_lm" and not [str(p) for p in preset.notices]
    bundle = build_task(preset.task, preset.args)
    assert BUILTIN_TASKS["hf_causal_lm"].train_examples(preset.task.options) == len(bundle.train_dataset)
    assert type(bundle.model).__name__ == "GPT2LMHeadModel" and bundle.model.config.n_layer == 2
