"""The torchrun command line for a preset's `[launch]` table, and the other nodes' commands.

`--tee 3` makes torchrun copy every rank's stdout/stderr to its own console with a
`[default<rank>]:` prefix, and the console is the run's `stdout.log`, so every rank's output
lands there, attributable. torchrun is started as `python -m torch.distributed.run` from
the same interpreter, so it matches the installed torch whatever is on PATH.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable

from tuitrain.errors import TuitrainError


def _launch_value(launch: Any, key: str, default: Any) -> Any:
    value = getattr(launch, key, None) if launch is not None else None
    return default if value in (None, "") else value


def torchrun_options(launch: Any, run_dir: Path, node_rank: int | None = None) -> list[str]:
    """torchrun's own options (before `-m tuitrain.engine`) for the `[launch]` namespace."""
    nproc = _launch_value(launch, "nproc_per_node", 1)
    nnodes = int(_launch_value(launch, "nnodes", 1))
    rank = int(node_rank if node_rank is not None else _launch_value(launch, "node_rank", 0))
    backend = str(_launch_value(launch, "rdzv_backend", "c10d"))
    endpoint = str(_launch_value(launch, "rdzv_endpoint", ""))
    rdzv_id = str(_launch_value(launch, "rdzv_id", "") or Path(run_dir).name)
    restarts = int(_launch_value(launch, "max_restarts", 0))
    if nnodes > 1 and not endpoint:
        raise TuitrainError(
            f"launch.rdzv_endpoint: needed when launch.nnodes = {nnodes} "
            "(set it to HOST:PORT of node 0, e.g. 10.0.0.1:29500)"
        )
    opts = [f"--nproc-per-node={nproc}", f"--nnodes={nnodes}", f"--node-rank={rank}",
            f"--max-restarts={restarts}", "--tee=3",
            f"--log-dir={Path(run_dir) / 'torchrun-logs'}"]
    if nnodes == 1:
        # One node: a private rendezvous on a free port, so concurrent runs never collide.
        opts.append("--standalone")
    else:
        opts += [f"--rdzv-backend={backend}", f"--rdzv-endpoint={endpoint}", f"--rdzv-id={rdzv_id}"]
    return opts


def engine_args(run_dir: Path, resume_from: str | None = None, lineage: dict | None = None,
                engine_flags: Iterable[str] = ()) -> list[str]:
    """`-m tuitrain.engine RUN_DIR [--resume-from checkpoint-N] [--lineage JSON] [flags]`."""
    argv = ["-m", "tuitrain.engine", str(run_dir)]
    if resume_from:
        argv += ["--resume-from", str(resume_from)]
    if lineage:
        argv += ["--lineage", json.dumps(lineage, sort_keys=True, separators=(",", ":"))]
    return argv + list(engine_flags)


def torchrun_argv(preset: Any, run_dir: Path, resume_from: str | None = None,
                  node_rank: int | None = None, python: str | None = None, lineage: dict | None = None,
                  engine_flags: Iterable[str] = ()) -> list[str]:
    """The full command that runs the engine under torchrun in `run_dir`."""
    return [python or sys.executable, "-m", "torch.distributed.run",
            *torchrun_options(getattr(preset, "launch", None), run_dir, node_rank),
            *engine_args(run_dir, resume_from, lineage, engine_flags)]


def other_node_commands(preset: Any, run_dir: Path, resume_from: str | None = None) -> list[str]:
    """One shell command per other node (node_rank 1…nnodes-1), to paste on that node.

    Each node needs the same run directory path (shared storage, or a copy of preset.toml).
    """
    launch = getattr(preset, "launch", None)
    nnodes = int(_launch_value(launch, "nnodes", 1))
    me = int(_launch_value(launch, "node_rank", 0))
    commands = []
    for rank in range(nnodes):
        if rank == me:
            continue
        argv = torchrun_argv(preset, run_dir, resume_from, node_rank=rank, python="python")
        commands.append(shlex.join(argv))
    return commands
