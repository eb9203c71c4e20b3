"""tuitrain's engine against `transformers.Trainer` 5.24, step by step, over a matrix of settings.

Each case trains the parity task (a tiny classifier with biases and norm layers, or a tiny
GPT-2) with both trainers from the same preset and compares every logged loss, learning
rate, grad norm and epoch, every evaluation and its step, the end-of-training summary, the
number of optimizer steps, the checkpoints left, the best checkpoint and the final weights
(`harness.assert_same`). The comment on a case names the issue-12 item it holds.
"""

from __future__ import annotations

import pytest

from harness import assert_same, preset, run_engine, run_hf
from tuitrain.config import schema
from tuitrain.config.hf import export_hf_dict

EVAL2 = {"eval_strategy": "steps", "eval_steps": 2}
UNEVEN = {"n_train": 22}  # 6 batches of 4 (the last of 2): 3 updates an epoch with accumulation 2

CASES = {
    # optimizer families that run on CPU, their decay groups and optim_args
    "adamw-decay-groups-ignores-optim-args": ({"weight_decay": 0.1, "optim_args": "amsgrad=true"}, {"norms": True}),  # 3, 4
    "adamw-unfused": ({"optim": "adamw_torch", "weight_decay": 0.1}, {}),  # the default is the fused one
    "sgd-reads-its-optim-args": ({"optim": "sgd", "weight_decay": 0.01,
                                  "optim_args": "momentum=0.9,nesterov=true,bogus=1"}, {}),
    "adagrad": ({"optim": "adagrad", "optim_args": "lr_decay=0.01,eps=1e-8"}, {}),
    "rmsprop": ({"optim": "rmsprop", "learning_rate": 0.01, "optim_args": "momentum=0.5,centered=true"}, {}),
    "adafactor": ({"optim": "adafactor", "learning_rate": 0.01, "weight_decay": 0.1}, {"norms": True}),
    # clipping and the grad norm
    "grad-norm-without-clipping": ({"max_grad_norm": 0.0}, {}),  # 2
    "clipping": ({"max_grad_norm": 0.1}, {}),
    # every scheduler, with its kwargs; the logged rate is the one the update ran at
    "linear-warmup": ({"warmup_steps": 3}, {}),  # 1
    "warmup-ratio": ({"warmup_steps": 0.25, "lr_scheduler_type": "cosine"}, {}),
    "cosine": ({"lr_scheduler_type": "cosine", "warmup_steps": 2, "lr_scheduler_kwargs": {"num_cycles": 0.25}}, {}),
    "cosine-restarts": ({"lr_scheduler_type": "cosine_with_restarts", "lr_scheduler_kwargs": {"num_cycles": 2}}, {}),
    "polynomial": ({"lr_scheduler_type": "polynomial", "warmup_steps": 2,
                    "lr_scheduler_kwargs": {"power": 2.0, "lr_end": 0.001}}, {}),
    "constant": ({"lr_scheduler_type": "constant", "warmup_steps": 3}, {}),
    "constant-warmup": ({"lr_scheduler_type": "constant_with_warmup", "warmup_steps": 3}, {}),
    "inverse-sqrt": ({"lr_scheduler_type": "inverse_sqrt", "warmup_steps": 2,
                      "lr_scheduler_kwargs": {"timescale": 4}}, {}),
    "cosine-min-lr": ({"lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": {"min_lr_rate": 0.1}}, {}),
    "cosine-warmup-min-lr": ({"lr_scheduler_type": "cosine_warmup_with_min_lr", "warmup_steps": 2,
                              "lr_scheduler_kwargs": {"min_lr": 0.005}}, {}),
    "warmup-stable-decay": ({"lr_scheduler_type": "warmup_stable_decay", "warmup_steps": 2,
                             "lr_scheduler_kwargs": {"num_decay_steps": 3, "decay_type": "linear"}}, {}),
    "greedy": ({"lr_scheduler_type": "greedy", **EVAL2,
                "lr_scheduler_kwargs": {"patience": 0, "factor": 0.5, "min_lr": 0.001, "cooldown": 0}}, {}),  # 18
    "plateau-eval-on-start": ({"lr_scheduler_type": "reduce_lr_on_plateau", "eval_on_start": True, **EVAL2,
                               "lr_scheduler_kwargs": {"patience": 0, "factor": 0.5}}, {}),  # 5, 6
    "plateau-mode-from-kwargs": ({"lr_scheduler_type": "reduce_lr_on_plateau", "greater_is_better": True, **EVAL2,
                                  "metric_for_best_model": "accuracy",
                                  "lr_scheduler_kwargs": {"patience": 0, "factor": 0.5}}, {}),  # 6
    # accumulation, even and uneven, and the fractional epoch of each logged step
    "accumulation-even": ({"gradient_accumulation_steps": 2}, {}),
    "accumulation-uneven": ({"gradient_accumulation_steps": 2, "max_steps": -1, "num_train_epochs": 2}, UNEVEN),  # 10, 11
    "accumulation-uneven-num-items": ({"gradient_accumulation_steps": 2, "max_steps": -1, "num_train_epochs": 2},
                                      {**UNEVEN, "model": "kwargs"}),  # 10
    "accumulation-3-of-7": ({"gradient_accumulation_steps": 3, "max_steps": -1, "num_train_epochs": 2},
                            {"n_train": 26}),  # 11
    # fractional epochs and the epoch strategies at a truncated last epoch
    "epochs-2.5": ({"max_steps": -1, "num_train_epochs": 2.5, "logging_strategy": "epoch",
                    "eval_strategy": "epoch", "save_strategy": "epoch"}, {}),  # 8
    "epoch-eval-delay": ({"max_steps": -1, "num_train_epochs": 3, "eval_strategy": "epoch", "eval_delay": 2}, {}),
    # logging / eval / save cadence, ratios, the last step
    "eval-at-max-steps": ({"max_steps": 7, "eval_strategy": "steps", "eval_steps": 3}, {}),  # 7
    "log-remainder-in-summary": ({"max_steps": 7, "logging_steps": 3}, {}),  # 9
    "ratios-first-step-delay": ({"logging_steps": 0.3, "logging_first_step": True, "eval_strategy": "steps",
                                 "eval_steps": 0.25, "eval_delay": 3, "save_strategy": "steps",
                                 "save_steps": 0.5}, {}),
    "no-logging-but-first-step": ({"logging_strategy": "no", "logging_first_step": True, **EVAL2}, {}),
    # best model, rotation, early stopping
    "load-best-limit-1": ({"max_steps": -1, "num_train_epochs": 3, "eval_strategy": "epoch", "save_strategy": "epoch",
                           "load_best_model_at_end": True, "save_total_limit": 1}, {}),  # 12
    "rotation-without-best": ({**EVAL2, "save_strategy": "steps", "save_steps": 2, "save_total_limit": 2}, {}),  # 13
    "metric-without-load-best": ({**EVAL2, "save_strategy": "steps", "save_steps": 2, "save_total_limit": 1,
                                  "metric_for_best_model": "accuracy"}, {}),
    "save-best": ({**EVAL2, "save_strategy": "best", "metric_for_best_model": "loss"}, {}),
    "early-stopping-eval-on-start": ({"eval_strategy": "steps", "eval_steps": 1, "eval_on_start": True,
                                      "save_strategy": "steps", "save_steps": 1, "load_best_model_at_end": True,
                                      "metric_for_best_model": "loss", "early_stopping_patience": 2,
                                      "max_steps": 12}, {}),  # 14
    "early-stopping-threshold": ({**EVAL2, "metric_for_best_model": "loss", "early_stopping_patience": 1,
                                  "early_stopping_threshold": 0.02, "max_steps": 16}, {}),
    # label smoothing, classification and causal LM (labels = input_ids)
    "label-smoothing-classification": ({"label_smoothing_factor": 0.1, **EVAL2}, {}),
    "label-smoothing-causal-lm": ({"label_smoothing_factor": 0.1, "learning_rate": 0.01, **EVAL2},
                                  {"model": "lm"}),  # 16
    "causal-lm-num-items-uneven": ({"gradient_accumulation_steps": 2, "learning_rate": 0.01, "max_steps": -1,
                                    "num_train_epochs": 2}, {"model": "lm", "n_train": 12}),  # 10
    # the NaN filter, on and off, in training and evaluation
    "nan-filter": ({"logging_steps": 2, "eval_strategy": "steps", "eval_steps": 4},
                   {"nan_train": [2, 5], "nan_eval": [1]}),  # 15
    # sample order: the default random strategy draws transformers' permutation (seed or data_seed)
    "random-order": ({"train_sampling_strategy": "random", "max_steps": -1, "num_train_epochs": 2}, {}),
    "random-order-data-seed": ({"train_sampling_strategy": "random", "data_seed": 7, "max_steps": 6}, {}),
    # past_index = -1 with a model that takes mems (transformers 5 has no past_index)
    "mems-model-past-index-off": ({**EVAL2}, {"model": "mems"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_engine_matches_transformers(name, tmp_path):
    settings, options = CASES[name]
    assert_same(run_engine(tmp_path, settings, options), run_hf(tmp_path, settings, options))


def test_the_default_optimizer_is_transformers_own():
    # adamw_torch_fused, as TrainingArguments' default with torch >= 2.8: every case above
    # that leaves optim unset runs the fused kernel on both sides.
    transformers = pytest.importorskip("transformers")
    assert schema.field("optim").default == transformers.TrainingArguments(output_dir="unused").optim
    assert preset({}).args.optim == export_hf_dict(preset({}))["optim"] == "adamw_torch_fused"
