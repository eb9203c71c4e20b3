"""Fields of the [logging] and [evaluation] tables."""

from __future__ import annotations

from functools import partial

from tuitrain.config.schema import BOOL, FLOAT, INT, S2S, STR, STR_LIST, make

LOG_LEVELS = ("detail", "debug", "info", "warning", "error", "critical", "passive")
INTERVALS = ("no", "steps", "epoch")

_log = partial(make, "logging")
_ev = partial(make, "evaluation")

FIELDS = [
    _log("logging_dir", STR, None,
         "Where the TensorBoard tracker (report_to = [\"tensorboard\"]) writes its event files; a "
         "relative path is inside the run directory. Share one folder to compare runs in TensorBoard.",
         hf_class=None, unset="RUN_DIR/runs/<time>_<host>, as HF's OUTPUT_DIR/runs/…",
         honoured_note="relative to the run directory (HF: to the working directory); "
         "tuitrain's own events still go to RUN_DIR/metrics.jsonl", example="runs/tb"),
    _log("logging_strategy", STR, "steps",
         "When to log loss and LR: no, steps, epoch. Match how often you want to see numbers.",
         choices=INTERVALS),
    _log("logging_steps", FLOAT, 500,
         "Log every N updates (a value < 1 is a ratio of total steps). Lower for finer curves, "
         "raise for less noise.", minimum=0.0),
    _log("logging_first_step", BOOL, False,
         "Also log the very first update, so the curve starts at step 1."),
    _log("logging_nan_inf_filter", BOOL, True,
         "Leave NaN/inf losses out of the logged average (the previous mean is used). Turn off to "
         "see divergence immediately."),
    _log("log_level", STR, "passive", "Engine log verbosity on the main process.", choices=LOG_LEVELS),
    _log("log_level_replica", STR, "warning", "Engine log verbosity on other ranks.", choices=LOG_LEVELS),
    _log("log_on_each_node", BOOL, True, "Log from each node's local rank 0, not just global rank 0."),
    _log("include_num_input_tokens_seen", STR, "no",
         "Count input tokens seen and log them: no, all (padding included), non_padding.",
         choices=("no", "all", "non_padding")),
    _log("save_strategy", STR, "steps",
         "When to write checkpoints: no, steps, epoch, best (whenever the metric improves).",
         choices=("no", "steps", "epoch", "best")),
    _log("save_steps", FLOAT, 500,
         "Checkpoint every N updates (a value < 1 is a ratio of total steps). Align with eval "
         "steps and mind disk usage.", minimum=0.0),
    _log("save_total_limit", INT, None,
         "Keep at most this many checkpoints (the best one is always kept). Stops the disk filling up.",
         minimum=0, example=3),
    _log("save_on_each_node", BOOL, False,
         "Save checkpoints on every node, not only on the main one (for nodes without a shared disk)."),
    _log("save_only_model", BOOL, False,
         "Save only the weights: smaller checkpoints, but a run cannot resume exactly from them."),
    _log("save_safetensors", BOOL, True,
         "Write weights as safetensors (no pickle).", hf_class=None, honoured=False,
         honoured_note="false has no effect: tuitrain always writes safetensors and never a pickle "
         "(transformers 5 dropped the field and always does too)"),
    _log("eval_strategy", STR, "no",
         "When to evaluate: no, steps, epoch. Choose steps or epoch to watch validation metrics.",
         choices=INTERVALS, aliases=("evaluation_strategy",)),
    _log("eval_steps", FLOAT, None,
         "Evaluate every N updates (a value < 1 is a ratio of total steps). Sync with logging.",
         minimum=0.0, unset="defaults to logging_steps", example=500),
    _log("eval_delay", FLOAT, 0,
         "Do not evaluate before this many updates (or epochs with eval_strategy = epoch). Let "
         "warmup finish first.", minimum=0.0),
    _log("eval_on_start", BOOL, False,
         "Evaluate once before the first update: a sanity check and a baseline point."),
    _log("metric_for_best_model", STR, None,
         "Metric (eval_ prefix optional) that picks the best checkpoint; e.g. accuracy.",
         unset="\"loss\" when load_best_model_at_end or reduce_lr_on_plateau needs one",
         example="loss"),
    _log("greater_is_better", BOOL, None,
         "Whether a larger metric is better. Set false for losses, true for accuracy/F1.",
         unset="false when the metric ends in \"loss\", else true", example=False),
    _log("load_best_model_at_end", BOOL, False,
         "Reload the best checkpoint's weights after training (needs matching eval/save strategies)."),
    _log("early_stopping_patience", INT, None,
         "Stop after this many evaluations without improvement of metric_for_best_model (needs an "
         "eval strategy).", minimum=1, hf_class=None, example=3),
    _log("early_stopping_threshold", FLOAT, 0.0,
         "How much the metric must improve to count as an improvement for early stopping.",
         minimum=0.0, hf_class=None),
    _log("restore_callback_states_from_checkpoint", BOOL, False,
         "On resume, restore early stopping's patience counter too (as HF; the best metric is always "
         "restored)."),
    _log("ignore_data_skip", BOOL, False,
         "On resume, do not fast-forward the data loader to where the run stopped (faster, but "
         "the data order differs)."),
    # --- evaluation
    _ev("prediction_loss_only", BOOL, False,
        "Evaluation returns only the loss (no logits kept). Saves memory on large evals."),
    _ev("include_inputs_for_metrics", BOOL, False,
        "Pass the model inputs to compute_metrics. Needed when metrics use the original tokens.",
        hf_class=None, honoured_note="transformers 5 spells it include_for_metrics = [\"inputs\"]"),
    _ev("include_for_metrics", STR_LIST, [],
        "Extra things passed to compute_metrics: \"inputs\", \"loss\".", choices=("inputs", "loss")),
    _ev("past_index", INT, -1,
        "Index of the model output that holds cached past states, fed back as `mems` on the next "
        "step (−1: none). For Transformer-XL/XLNet-style plug-in models; the built-in ones keep none.",
        hf_class=None),
    _ev("eval_accumulation_steps", INT, None,
        "Move gathered eval outputs to the CPU every N steps. Avoids GPU OOM on large eval sets.",
        minimum=1, example=16),
    _ev("eval_do_concat_batches", BOOL, True,
        "Concatenate eval batches' outputs before compute_metrics (else pass them as a list)."),
    _ev("batch_eval_metrics", BOOL, False,
        "Call compute_metrics per batch (with compute_result on the last) instead of once."),
    _ev("predict_with_generate", BOOL, False,
        "Generate text during evaluation (model.generate) for metrics on decoded text; slower.",
        hf_class=S2S),
    _ev("generation_max_length", INT, None,
        "Total length (prompt + new tokens) for generation in evaluation.", minimum=1, hf_class=S2S,
        unset="the task's block size", example=256),
    _ev("generation_num_beams", INT, None,
        "Beam count for generation in evaluation (1: greedy/sampling).", minimum=1, hf_class=S2S,
        unset="1", example=1),
    _ev("generation_config", STR, None,
        "A GenerationConfig JSON file (or a folder holding generation_config.json) for the "
        "text samples: its max_new_tokens / max_length, temperature, top_k, num_beams and "
        "do_sample override the generation_* and sample_* fields. Hub names are not fetched.",
        hf_class=S2S, honoured=True,
        example="generation_config.json"),
    _ev("sample_every", INT, 0,
        "Generate a text sample every N updates (0: never) and log it; for tasks that decode.",
        minimum=0, ours=True),
    _ev("sample_max_new_tokens", INT, 200, "Tokens generated per sample.", minimum=1, ours=True),
    _ev("sample_temperature", FLOAT, 1.0,
        "Sampling temperature (lower: more conservative text).", minimum=0.0,
        exclusive_minimum=True, ours=True),
    _ev("sample_top_k", INT, None, "Sample only among the k most likely tokens.", minimum=1,
        ours=True, unset="all tokens", example=40),
    _ev("sample_prompt", STR, "", "Text the sample starts from (empty: the task's own prompt).",
        ours=True),
]
