"""Fields of the [distributed], [precision], [reproducibility] and [launch] tables."""

from __future__ import annotations

from functools import partial

from tuitrain.config.integrations import REPORT_TO_CHOICES
from tuitrain.config.schema import BOOL, INT, INT_OR_STR, STR, STR_LIST, TABLE, make

_dist = partial(make, "distributed")
_prec = partial(make, "precision")
_repro = partial(make, "reproducibility")
_launch = partial(make, "launch")

_NOT_INSTALLED = "refused at launch unless the package is installed; tuitrain does not drive it"

FIELDS = [
    _dist("ddp_backend", STR, None,
          "Process-group backend. Force nccl or gloo in heterogeneous setups.",
          choices=("nccl", "gloo", "mpi", "ccl", "hccl", "cncl", "mccl"),
          unset="nccl on CUDA, gloo on CPU", example="gloo"),
    _dist("ddp_bucket_cap_mb", INT, None, "DDP gradient bucket size in MiB. Tune communication.",
          minimum=1, unset="25 (torch's default)", example=25),
    _dist("ddp_find_unused_parameters", BOOL, None,
          "Let DDP look for parameters without gradients. False avoids the overhead when none exist.",
          unset="true unless gradient checkpointing is on", example=False),
    _dist("ddp_gradient_as_bucket_view", BOOL, None,
          "Gradients as views into DDP's buckets: saves memory and a copy.", hf_class=None,
          unset="torch's default (false)", example=True),
    _dist("ddp_broadcast_buffers", BOOL, None, "Broadcast module buffers from rank 0 every forward.",
          unset="true", example=False),
    _dist("ddp_static_graph", BOOL, None, "Tell DDP the graph is the same every step (enables optimisations).",
          unset="false", example=True),
    _dist("ddp_timeout", INT, 1800, "Seconds a collective may wait before the process group gives up.",
          minimum=1),
    _dist("use_cpu", BOOL, False, "Train on the CPU even when a GPU is present."),
    _dist("fsdp", STR, None,
          "Fully Sharded Data Parallel (FSDP2, as transformers 5) under torchrun: space-separated "
          "options full_shard (parameters resharded after the forward pass), shard_grad_op (kept "
          "gathered until the backward pass), offload (parameters in host memory), auto_wrap (the "
          "default: each transformer layer its own unit). Shards a model too large for one GPU; "
          "checkpoints hold the whole model, as one process saves it. Not with fp16 (use bf16).",
          example="full_shard auto_wrap"),
    _dist("fsdp_min_num_params", INT, 0,
          "Wrap each module of at least this many parameters in its own FSDP unit (the size-based "
          "policy; fsdp_config.min_num_params wins).",
          minimum=0, hf_class=None, honoured_note="transformers 5 reads it from fsdp_config"),
    _dist("fsdp_config", TABLE, None,
          "FSDP options, as transformers 5 reads them (the fsdp_ prefix optional): version (2), "
          "reshard_after_forward, cpu_offload, auto_wrap_policy (TRANSFORMER_BASED_WRAP, SIZE_BASED_WRAP, "
          "NO_WRAP), transformer_layer_cls_to_wrap (else the model's _no_split_modules), min_num_params, "
          "activation_checkpointing, state_dict_type (FULL_STATE_DICT). Others are refused at launch.",
          example={"min_num_params": 1000000}),
    _dist("sharded_ddp", STR, "", "FairScale ZeRO-style sharding (removed upstream).", hf_class=None,
          honoured=False, honoured_note="not supported: use fsdp"),
    _dist("deepspeed", STR, None, "A DeepSpeed config file (ZeRO stage 3, offloading, …).",
          honoured=False, honoured_note=_NOT_INSTALLED, example="ds_config.json"),
    _dist("tpu_num_cores", INT, None, "TPU cores for XLA training.", minimum=1, hf_class=None,
          honoured=False, honoured_note="not supported: tuitrain trains on CPU and CUDA", example=8),
    _dist("xpu_backend", STR, None, "Process-group backend under torchrun when ddp_backend is unset "
          "(ccl needs oneccl_bind_pt).", hf_class=None,
          honoured_note="the backend only: tuitrain trains on CPU and CUDA devices", choices=("mpi", "ccl", "gloo"),
          example="ccl"),
    _dist("mp_parameters", STR, "", "SageMaker model-parallel parameters.", hf_class=None, honoured=False,
          honoured_note="not supported"),
    _dist("dispatch_batches", BOOL, None, "Deprecated: let rank 0 fetch and dispatch batches.",
          hf_class=None, honoured=False, honoured_note="ignored: every rank loads its own shard",
          example=False),
    # --- precision
    _prec("fp16", BOOL, False, "Train with float16 autocast and a gradient scaler. Faster on older GPUs."),
    _prec("bf16", BOOL, False, "Train with bfloat16 autocast. Prefer it on Ampere+ for stability over fp16."),
    _prec("fp16_backend", STR, "auto", "Mixed-precision implementation (old name of half_precision_backend).",
          choices=("auto", "apex", "cpu_amp"), hf_class=None,
          honoured_note="auto and cpu_amp run torch.amp; apex is refused at launch"),
    _prec("half_precision_backend", STR, "auto", "Mixed-precision implementation.",
          choices=("auto", "apex", "cpu_amp"), hf_class=None,
          honoured_note="auto and cpu_amp run torch.amp; apex is refused at launch"),
    _prec("fp16_full_eval", BOOL, False, "Evaluate in float16 too. Faster eval; check metrics are unaffected."),
    _prec("bf16_full_eval", BOOL, False, "Evaluate in bfloat16 too. Faster eval; check metrics are unaffected."),
    _prec("tf32", BOOL, None, "Allow TF32 matmuls on Ampere+ GPUs: more throughput, tiny precision cost.",
          unset="torch's default", example=True),
    _prec("fp16_opt_level", STR, "O1", "Apex AMP optimisation level.", choices=("O0", "O1", "O2", "O3"),
          hf_class=None, honoured=False, honoured_note="Apex only; tuitrain uses torch.amp"),
    _prec("skip_memory_metrics", BOOL, True,
          "Skip per-phase memory reports. Turn off to log peak GPU memory (slightly slower)."),
    _prec("activation_checkpointing", BOOL, False,
          "Recompute activations in the backward pass: trades compute for memory to fit larger models "
          "(transformers 5's name; gradient_checkpointing is the old one).",
          aliases=("gradient_checkpointing",)),
    _prec("activation_checkpointing_kwargs", TABLE, None,
          "Options for activation checkpointing, e.g. use_reentrant = false; every_n_layers and offload "
          "go to models that take them (transformers' activation_checkpointing_enable).",
          example={"use_reentrant": False}, aliases=("gradient_checkpointing_kwargs",)),
    _prec("low_cpu_mem_usage", BOOL, True, "Load weights without a full extra copy in CPU memory.",
          hf_class=None, honoured=False, honoured_note="ignored: tasks build their own models"),
    _prec("optim_target_precision", STR, None, "Experimental target precision for optimizer states (FP8).",
          hf_class=None, honoured=False, honoured_note="ignored", example="fp8"),
    _prec("profile", BOOL, False, "Run the torch profiler over a few steps and save a trace (slower).",
          hf_class=None),
    _prec("label_smoothing_factor", "float", 0.0,
          "Label smoothing for the cross-entropy loss. Regularises classification/LM training.",
          minimum=0.0, maximum=1.0, exclusive_maximum=True),
    _prec("torch_compile", BOOL, False, "Compile the model with torch.compile. Faster steps after a slow start."),
    _prec("torch_compile_backend", STR, None, "torch.compile backend (setting it turns compile on).",
          unset="inductor", example="inductor"),
    _prec("torch_compile_mode", STR, None, "torch.compile mode (setting it turns compile on).",
          choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
          example="reduce-overhead"),
    _prec("torch_empty_cache_steps", INT, None, "Empty the CUDA cache every N steps (slower; lowers peak memory).",
          minimum=1, example=100),
    # --- reproducibility
    _repro("seed", INT, 42, "Seed for Python, NumPy and torch RNGs at the start. Fix for reproducible runs.",
           minimum=0),
    _repro("data_seed", INT, None, "Seed for data shuffling only. Decouple data order from model init.",
           minimum=0, unset="seed", example=1234),
    _repro("dataloader_seed", INT, None, "Seed for the DataLoader's sampler (same order on every rank).",
           minimum=0, hf_class=None, unset="data_seed, else seed", example=1234),
    _repro("full_determinism", BOOL, False,
           "Deterministic algorithms everywhere (torch.use_deterministic_algorithms). Bit-for-bit "
           "reruns, slower."),
    _repro("disable_tqdm", BOOL, False, "No progress bar (HF's tqdm) in the output, plain log lines instead.",
           honoured=False, honoured_note="no effect: tuitrain's engine never draws a progress bar; it prints "
           "one plain line per logging step (at most 5 a second) either way"),
    _repro("report_to", STR_LIST, ["none"],
           "Experiment trackers that also get the metrics: tensorboard, wandb, mlflow; \"all\" = every "
           "installed one, \"none\" = only tuitrain's own metrics.jsonl.",
           choices=REPORT_TO_CHOICES,
           honoured_note="rank 0 reports; names as HF's (train/loss, eval/loss; MLflow: loss, eval_loss); "
           "WANDB_PROJECT (default \"tuitrain\") and MLFLOW_* environment variables apply"),
    _repro("run_name", STR, None, "A name for the run (shown in lists and dashboards).",
           unset="preset name + time", example="baseline"),
    _repro("push_to_hub", BOOL, False,
           "Upload the model (and checkpoints, per hub_strategy) to the Hugging Face Hub in the background. "
           "Needs huggingface_hub and a login (huggingface-cli login or HF_TOKEN)."),
    _repro("hub_model_id", STR, None, "Hub repository (\"user/name\", or a name in your namespace).",
           unset="the run directory's name (HF: output_dir's)", example="me/model"),
    _repro("hub_strategy", STR, "every_save",
           "What is pushed: end = the final model; every_save = the model at each save; checkpoint = also "
           "the latest checkpoint as last-checkpoint/; all_checkpoints = every checkpoint folder.",
           choices=("end", "every_save", "checkpoint", "all_checkpoints")),
    _repro("hub_token", STR, None,
           "Hub token with write access. Prefer huggingface-cli login or HF_TOKEN: a token here is stored "
           "in the run's preset.toml.",
           unset="the logged-in token", example="hf_...",
           honoured_note="never uploaded: the pushed preset.toml and the trackers' config mask it"),
    _repro("hub_private_repo", BOOL, None, "Make the Hub repository private when it is created.",
           unset="the Hub's default for your account", example=True),
    _repro("hub_always_push", BOOL, False,
           "Push at every save even while the previous push is still uploading (otherwise that save is "
           "skipped; the final push still happens)."),
    # --- launch
    _launch("launcher", STR, "local", "local: one process; torchrun: several (DDP), possibly on several nodes.",
            choices=("local", "torchrun"), ours=True),
    _launch("nproc_per_node", INT_OR_STR, 1,
            "Processes per node under torchrun: a number, \"gpu\" (one per visible GPU) or \"auto\".",
            minimum=1, choices=("gpu", "auto"), ours=True),
    _launch("nnodes", INT, 1, "Number of nodes.", minimum=1, ours=True),
    _launch("node_rank", INT, 0, "This node's rank (0 is the master).", minimum=0, ours=True),
    _launch("rdzv_backend", STR, "c10d", "torchrun rendezvous backend.", choices=("c10d", "static", "etcd", "etcd-v2"),
            ours=True),
    _launch("rdzv_endpoint", STR, "localhost:29500", "HOST:PORT of the rendezvous (the master node).", ours=True),
    _launch("rdzv_id", STR, "", "Rendezvous job id (empty: the run's name).", ours=True),
    _launch("max_restarts", INT, 0, "How often torchrun restarts failed workers.", minimum=0, ours=True),
    _launch("visible_devices", STR, "", "CUDA_VISIBLE_DEVICES for the run, e.g. \"0,1\" (empty: unchanged).",
            ours=True),
    _launch("env", TABLE, {}, "Extra environment variables for the training processes (strings).", ours=True),
]
