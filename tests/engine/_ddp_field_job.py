"""One rank of the two-process job behind `ddp_fields`: `python _ddp_field_job.py OUT`.

Started twice with torchrun's environment (RANK, WORLD_SIZE=2, MASTER_ADDR/PORT) and
LOCAL_RANK=0 on both: two nodes of one process each, each with its own run directory (nodes
without a shared disk). Every configuration of CONFIGS trains the probe task for two steps
in one process group (kept across them) and writes what this rank saw to OUT/rank<R>.json:
rank 0's losses, the checkpoints in this rank's directory, this rank's log level and
whether HF's info banner reached its stderr, and the process group's timeout.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from field_harness import preset_of  # noqa: E402

CONFIGS = {
    "defaults": {},
    "average_tokens_off": {"average_tokens_across_devices": False},
    "save_on_each_node": {"save_on_each_node": True},
    # before any configuration sets rank 0's level: "passive" keeps the level a process has
    "replica_info": {"log_on_each_node": False, "log_level_replica": "info"},
    "info_each_node": {"log_level": "info"},
    "info_rank0_only": {"log_level": "info", "log_on_each_node": False},
}
BASE = {"task": "probe", "options": {"tokens": True}, "per_device_train_batch_size": 2, "max_steps": 2,
        "train_sampling_strategy": "sequential", "save_strategy": "steps", "save_steps": 2, "ddp_timeout": 1234}


def main(out: Path) -> None:
    import torch.distributed as dist

    from tuitrain.engine import trainer as trainer_module

    trainer_module.shutdown = lambda ctx: None  # one process group for every configuration
    rank = int(os.environ["RANK"])
    results = {}
    for name, settings in CONFIGS.items():
        run_dir = out / name / f"node{rank}"
        run_dir.mkdir(parents=True, exist_ok=True)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            trainer = trainer_module.Trainer(preset_of({**BASE, **settings}), run_dir)
            level = logging.getLogger("tuitrain").getEffectiveLevel()
            code = trainer.train()
            trainer.close()
        events = []
        if (run_dir / "metrics.jsonl").exists():
            events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        results[name] = {"code": code, "losses": [e["loss"] for e in events if e["kind"] == "train"],
                         "checkpoints": sorted(p.name for p in run_dir.glob("checkpoint-*")),
                         "level": logging.getLevelName(level), "banner": "***** Running training *****" in err.getvalue()}
    pg = dist.distributed_c10d._get_default_group()
    results["timeout_s"] = pg._get_backend(torch.device("cpu")).options._timeout.total_seconds()
    dist.destroy_process_group()
    (out / f"rank{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
