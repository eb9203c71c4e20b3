"""The fields that act only across processes, shown by one real two-rank gloo job
(`_ddp_field_job.py`, run once per test session on first use): average_tokens_across_devices,
save_on_each_node, log_level_replica, log_on_each_node and ddp_timeout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

JOB = Path(__file__).with_name("_ddp_field_job.py")
REPO = Path(__file__).resolve().parents[2]
_RESULTS: list[dict] = []


def results() -> dict:
    """{rank: {configuration: what the rank saw}} of the job (run on the first call)."""
    if _RESULTS:
        return _RESULTS[0]
    out = Path(tempfile.mkdtemp(prefix="tuitrain-ddp-fields-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        procs.append(subprocess.Popen([sys.executable, str(JOB), str(out)], env=env, cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=180)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for proc, text in zip(procs, outputs):
        assert proc.returncode == 0, text[-4000:]
    _RESULTS.append({rank: json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)})
    return _RESULTS[0]


def check(name: str) -> None:
    r = results()
    rank0, rank1 = r[0], r[1]
    for rank in (rank0, rank1):
        assert all(v["code"] == 0 for k, v in rank.items() if k != "timeout_s"), rank
    if name == "average_tokens_across_devices":
        # rank 0's items keep 6 labels each, rank 1's one: HF normalises by the count over both
        # ranks (times the world size), not by each rank's own count
        on, off = rank0["defaults"]["losses"], rank0["average_tokens_off"]["losses"]
        assert len(on) == len(off) == 2 and on != off
    elif name == "save_on_each_node":
        assert rank1["defaults"]["checkpoints"] == [] and rank0["defaults"]["checkpoints"] == ["checkpoint-2"]
        assert rank1["save_on_each_node"]["checkpoints"] == ["checkpoint-2"]
    elif name == "log_on_each_node":
        # rank 1 is node 1's local rank 0: it logs at log_level unless only global rank 0 logs
        assert (rank1["info_each_node"]["level"], rank1["info_each_node"]["banner"]) == ("INFO", True)
        assert (rank1["info_rank0_only"]["level"], rank1["info_rank0_only"]["banner"]) == ("WARNING", False)
        assert rank0["info_rank0_only"]["banner"]
    elif name == "log_level_replica":
        assert rank1["info_rank0_only"]["level"] == "WARNING"  # HF's default for replicas
        assert (rank1["replica_info"]["level"], rank1["replica_info"]["banner"]) == ("INFO", True)
        assert not rank0["replica_info"]["banner"]  # rank 0 logs at log_level ("passive": as it was)
    elif name == "ddp_timeout":
        assert rank0["timeout_s"] == rank1["timeout_s"] == 1234  # torch's default is 1800 s
    else:
        raise AssertionError(f"no two-process check for {name}")
