#!/usr/bin/env bash
# Wall time of the test suite as `make test` runs it, with WORKERS pytest-xdist workers (0: serially),
# and the slowest tests (their setup includes a module's study run). Under several
# workers a test's time includes the waits for the cores the other workers hold.
# Usage: bash bench/test_suite.sh [WORKERS]   (default 2, as `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${1:-2}"
py="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
args=(-q -p no:cacheprovider --durations=25 -n "$workers")
echo "test suite, $workers worker(s), $(nproc) cores"
start=$(date +%s)
"$py" -m pytest "${args[@]}" | grep -E "^[0-9.]+s (setup|call)|passed|failed" | sed 's/@[^ ]*$//'
end=$(date +%s)
echo "wall time: $((end - start)) s"
