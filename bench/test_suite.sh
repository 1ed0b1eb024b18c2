#!/usr/bin/env bash
# Wall time and CPU time of the test suite as `make test` runs it, with WORKERS pytest-xdist workers
# (0: serially), and the slowest tests (their setup includes a module's study run). CPU seconds /
# cores is the floor of the wall time on this machine, however the work is shared out. Under several
# workers a test's time includes the waits for the cores the other workers hold.
# Usage: bash bench/test_suite.sh [WORKERS]   (default 3, as `make test`)
set -euo pipefail
source "$(dirname "$0")/cpu_time.sh"
cd "$(dirname "$0")/.."
workers="${1:-3}"
py="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
args=(-q -ra -p no:cacheprovider --durations=25 -n "$workers")
echo "test suite, $workers worker(s), $(nproc) cores"
times_file="$(mktemp)"
# bash's `time`: wall, and the user + system CPU of pytest, its workers and every process they ran
TIMEFORMAT="%R %U %S"
before="$(machine_cpu)"
{ time "$py" -m pytest "${args[@]}" 2>&3 | grep -E "^[0-9.]+s (setup|call)|^(FAILED|ERROR) |passed|failed" | sed 's/@[^ ]*$//'; } 3>&2 2> "$times_file"
read -r wall user sys < <(tail -n 1 "$times_file")
rm -f "$times_file"
cpu_report "$wall" "$user" "$sys" "$(nproc)"
machine_report "$before" "$(machine_cpu)" "$wall" "$(nproc)"
