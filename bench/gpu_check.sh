#!/usr/bin/env bash
# Engine against a hand-written loop on gpt-small (bf16, fused AdamW, SDPA attention),
# eager and with torch_compile, on one lent GPU: tokens/s of each side, MFU and the ratio,
# one line per case. About 3-5 minutes on an H100 (most of it compiling).
#
#   bash bench/gpu_check.sh [extra gpu_bench.py options, e.g. --steps 100 --peak-tflops 989]
#
# Needs torch and safetensors; the checkout need not be pip-installed (PYTHONPATH is set here).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: torch sees no CUDA GPU")'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$PYTHON" -c 'import torch; print("# torch", torch.__version__, "cuda", torch.version.cuda)'

# The bench switches the preset's eval, saving and samples off; the first 10 steps
# (compilation, allocator, loader start) are left out of both sides' timings.
exec "$PYTHON" bench/gpu_bench.py --preset gpt-small --device cuda --compile both \
    --warmup 10 --steps 60 "$@"
