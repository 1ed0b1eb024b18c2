#!/usr/bin/env bash
# The vLLM prediction engine against the limit, on vLLM's CPU build (docs/performance.md, "vLLM: one
# stream per job"): bench/vllm_stream.py in the vLLM test environment (.venv-vllm, `make test-vllm`),
# with the CPU settings of tests/test_vllm_cpu.py (1 GiB KV cache, no core binding, one thread).
#   bash bench/vllm_stream.sh [--requests 6000] [--scale 16] [--variants generate,stream,chunked] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv-vllm/bin/python}
export PARALLEL_SCALING_VLLM_CPU=1 VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} VLLM_CPU_OMP_THREADS_BIND=nobind
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONPATH="$PWD/workflow"
exec "$PY" bench/vllm_stream.py "$@"
