#!/usr/bin/env bash
# Every check a lent GPU machine should run, within an 8-minute budget: environment (GPU,
# MIG mode, driver, torch/CUDA), the telemetry probe idle and during training, a gpt-small
# run stopped and resumed, the fair engine-vs-hand bench (eager and compiled tokens/s, MFU,
# ratio, recompiles), host syncs per step in bf16 / fp16 / fused fp16, the graphs a compiled
# run compiles across an epoch boundary and evaluations, and auto_find_batch_size on a real
# CUDA OOM. Results go to $OUT (default ./gpu-check-out): one NAME.json and NAME.log per
# check and summary.txt.
#
#   OUT=/tmp/gpu bash bench/gpu_check.sh [--only env,telemetry,smoke,bench,syncs,compile,oom] [--budget 480]
#
# Needs torch, safetensors, psutil and pynvml only (no textual, plotext or tomlkit); the
# checkout need not be pip-installed. Without CUDA the GPU-only checks are skipped and the
# others run small. $PYTHON picks the interpreter; else `python`, else `python3`, whichever
# imports torch first.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    for candidate in python python3; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import torch' >/dev/null 2>&1; then
            PYTHON="$candidate"
            break
        fi
    done
fi
if [ -z "${PYTHON:-}" ]; then
    echo "gpu_check: no python or python3 on PATH imports torch (set PYTHON=/path/to/python)" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" bench/gpu_check.py --out "${OUT:-$PWD/gpu-check-out}" "$@"
