"""Fields of the [task], [core], [optimizer] and [dataloader] tables."""

from __future__ import annotations

from functools import partial

from tuitrain.config.optimizers import OPTIMIZER_NAMES, packages_help
from tuitrain.config.schedules import SCHEDULERS, kwargs_help
from tuitrain.config.schema import BOOL, FLOAT, INT, S2S, STR, STR_LIST, TABLE, make

_task = partial(make, "task")
_core = partial(make, "core")
_opt = partial(make, "optimizer")
_dl = partial(make, "dataloader")

FIELDS = [
    _task("name", STR, "char_gpt",
          "What to train: a built-in task (char_gpt, token_gpt, modular, regression) or a plug-in "
          "entry point `package.module:function` / `path/file.py:function`. Its options go in "
          "[task.options].", ours=True),
    # --- core
    _core("output_dir", STR, "",
          "Where checkpoints and logs are written. Empty: the run's own directory under the runs "
          "root. Set it to keep a run somewhere specific."),
    _core("overwrite_output_dir", BOOL, False,
          "Allow a run to write into an existing, non-empty output_dir. Re-run experiments in the "
          "same folder without manual clean-up.", hf_class=None,
          honoured_note="dropped from transformers 5; tuitrain still refuses a non-empty output_dir without it"),
    _core("do_train", BOOL, False,
          "Run the training phase. As in HF's scripts, a run trains unless it only asks for do_eval "
          "(with eval_strategy = \"no\") or do_predict; set do_train to train and also evaluate or predict.",
          honoured_note="a run with neither do_eval nor do_predict trains whatever do_train says"),
    _core("do_eval", BOOL, False,
          "Evaluate after training even when eval_strategy is \"no\" (HF turns it on whenever an eval "
          "strategy is set)."),
    _core("do_predict", BOOL, False,
          "Run prediction on the eval set at the end (writes predictions.jsonl when the task can decode)."),
    _core("per_device_train_batch_size", INT, 8,
          "Examples per device per forward pass; global batch = this × world size × "
          "gradient_accumulation_steps. Fit it to GPU memory or raise it for throughput.", minimum=1),
    _core("per_device_eval_batch_size", INT, 8,
          "Examples per device per evaluation forward pass. Raise for faster eval; lower to avoid OOM.",
          minimum=1),
    _core("gradient_accumulation_steps", INT, 1,
          "Forward/backward passes summed before each optimizer update. Simulates a larger batch "
          "when memory is short.", minimum=1),
    _core("num_train_epochs", FLOAT, 3.0,
          "Passes over the training set when max_steps is not set (fractions allowed). Raise for "
          "longer training; lower for quick runs.", minimum=0.0),
    _core("max_steps", INT, -1,
          "When > 0, train for exactly this many optimizer updates, overriding num_train_epochs. "
          "Handy when epoch arithmetic is awkward.", minimum=-1),
    _core("auto_find_batch_size", BOOL, False,
          "On an out-of-memory error in training, shrink per_device_train_batch_size (× 0.9, as "
          "accelerate's find_executable_batch_size does) and restart training from step 0; the run's "
          "preset.toml records the batch that fitted. Out of memory in evaluation shrinks "
          "per_device_eval_batch_size the same way and evaluates again; training goes on. Saves "
          "guessing the largest batch that fits.",
          honoured_note="single-process runs only; a resumed run keeps its checkpoint's batch size "
          "(as HF does), so an out-of-memory error there fails the run"),
    _core("average_tokens_across_devices", BOOL, True,
          "Average the token count across devices so the loss is normalised identically on every rank."),
    _core("resume_from_checkpoint", STR, None,
          "Start this new run from a checkpoint-N folder of another run: its weights, optimizer, "
          "scheduler, RNG and step, then train on into the new run's own directory. A relative path "
          "is looked up from the working directory, then beside the preset. true (or \"last\") means "
          "the newest complete checkpoint of the latest earlier run of this same preset. Changed "
          "hyperparameters are refused as `tuitrain resume` refuses them.",
          honoured_note="it starts a new run directory; `tuitrain resume RUN` continues a run in place",
          example="runs/my-run/checkpoint-500", unset="start from the task's fresh model",
          extra={"bool_as": {True: "last", False: None}}),
    # --- optimizer
    _opt("learning_rate", FLOAT, 5e-5,
         "Peak learning rate handed to the optimizer (the scheduler scales it). Tune for convergence "
         "speed and stability.", minimum=0.0, aliases=("lr",)),
    _opt("weight_decay", FLOAT, 0.0,
         "Decoupled weight decay applied to every weight except biases and norm weights. Reduces "
         "overfitting by penalising large weights.", minimum=0.0),
    _opt("adam_beta1", FLOAT, 0.9,
         "Adam's first-moment (gradient mean) decay. Match other training regimes' hyperparameters.",
         minimum=0.0, maximum=1.0, exclusive_maximum=True),
    _opt("adam_beta2", FLOAT, 0.999,
         "Adam's second-moment (gradient variance) decay; 0.95 is common for large LMs.",
         minimum=0.0, maximum=1.0, exclusive_maximum=True),
    _opt("adam_epsilon", FLOAT, 1e-8,
         "Added to Adam's denominator to keep it well-behaved.", minimum=0.0),
    _opt("adam_bias_correction", BOOL, True,
         "Divide Adam's moments by (1 - beta^t) early in training. Off, AdamW runs without the "
         "early-step correction; that has no fused kernel, so optim then defaults to adamw_torch.", hf_class=None),
    _opt("lr_scheduler_type", STR, "linear",
         "Shape of the LR curve after warmup (`tuitrain schedule PRESET` draws it). Shape decay to "
         "match the task.", choices=SCHEDULERS),
    _opt("lr_scheduler_kwargs", TABLE, {},
         "Extra scheduler arguments, passed as transformers' get_scheduler passes them. " + kwargs_help()),
    _opt("warmup_steps", FLOAT, 0,
         "Updates over which the LR ramps linearly from 0 to its peak; a value < 1 is a ratio of "
         "the total steps. Prevents large early updates.", minimum=0.0),
    _opt("warmup_ratio", FLOAT, 0.0,
         "Warmup as a fraction of the total steps (ceil). warmup_steps wins when both are set. "
         "Use it for dataset-size independence.", minimum=0.0, maximum=1.0, hf_class=None,
         honoured_note="dropped from transformers 5; exported as a fractional warmup_steps"),
    _opt("max_grad_norm", FLOAT, 1.0,
         "Clip the global gradient norm to this before each update (0 disables). Stabilises "
         "training against exploding gradients.", minimum=0.0),
    _opt("optim", STR, "adamw_torch_fused",
         "Optimizer implementation. The default, as transformers', is AdamW in one fused kernel per "
         "step (CPU and CUDA); with fp16 it skips an overflowing step on the GPU, without waiting for it. "
         "adamw_torch is the same update in several kernels; adafactor or a low-bit / paged family "
         "saves memory. A family whose package is missing is refused before training. "
         + packages_help(), choices=OPTIMIZER_NAMES),
    _opt("optim_args", STR, None,
         "Extra optimizer arguments as `key=value,key=value`, read as transformers reads them: only by "
         "the families that take them (sgd momentum/nesterov, adagrad, rmsprop, adamw_anyprecision "
         "dtypes, galore/apollo rank and scale, …); adamw_torch and adafactor take none.",
         example="momentum_dtype=float32,variance_dtype=bfloat16"),
    _opt("optim_target_modules", STR_LIST, None,
         "Module name patterns (regex or substrings) that low-rank optimizers (galore_*, apollo_*) "
         "apply to; required by them.", example=["attn", "mlp"]),
    # --- dataloader
    _dl("dataloader_num_workers", INT, 0,
        "Worker processes that load batches (0: in the main process). Raise when the GPU waits "
        "for data.", minimum=0),
    _dl("dataloader_pin_memory", BOOL, True,
        "Pin host memory for faster host→GPU copies. Ignored on CPU-only training."),
    _dl("dataloader_drop_last", BOOL, False,
        "Drop the last incomplete batch. Avoids tiny batches and gives even step counts. Left "
        "unset with torch_compile, it is true: a smaller last batch would compile the model again."),
    _dl("dataloader_persistent_workers", BOOL, False,
        "Keep workers alive between epochs (needs dataloader_num_workers > 0). Saves worker "
        "start-up at the cost of memory."),
    _dl("dataloader_prefetch_factor", INT, None,
        "Batches each worker loads ahead (needs dataloader_num_workers > 0).", minimum=1, example=2),
    _dl("dataloader_multiprocessing_context", STR, None,
        "How workers start (fork, spawn, forkserver); default: the platform's.",
        choices=("fork", "spawn", "forkserver"), example="spawn"),
    _dl("remove_unused_columns", BOOL, True,
        "Drop batch keys the model's forward does not accept. Turn off when a collator or "
        "compute_metrics needs extra fields."),
    _dl("label_names", STR_LIST, None,
        "Batch keys that hold labels (kept even when unused). Default: `labels`.", example=["labels"]),
    _dl("group_by_length", BOOL, False,
        "Batch examples of similar length together to reduce padding (uses length_column_name).",
        hf_class=None, honoured_note="transformers 5 spells it train_sampling_strategy = \"group_by_length\""),
    _dl("length_column_name", STR, "length",
        "Item key that holds each example's length for group_by_length (else the input_ids length)."),
    _dl("sortish_sampler", BOOL, False,
        "Sort-ish sampling: shuffle, then sort within large chunks by length. Balances lengths "
        "while keeping randomness.", hf_class=S2S),
    _dl("train_sampling_strategy", STR, "random",
        "How training examples are ordered: random, sequential, group_by_length.",
        choices=("random", "sequential", "group_by_length")),
]
