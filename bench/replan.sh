#!/usr/bin/env bash
# Time how long Snakemake takes to (re)plan the paper-scale study: `snakemake -n` on
# configs/parallel_paper.yaml (~250 jobs: 54 GRPO runs, 56 prediction runs over 44
# benchmark-language files each, 56 scoring jobs, ...). This is the fixed cost paid by every `snakemake` call on that study (dry runs, the SLURM
# driver at start-up, `--report`).
#
# Method (and its limit): the plan is timed in a fresh, empty working directory (-d), so every job
# is planned as "missing output". The case the name asks about -- every output already up to date --
# cannot be produced honestly here: real outputs need GPUs, and `snakemake --touch` only updates the
# times of files that already exist. With all outputs present Snakemake builds the same DAG and
# additionally stats each output and reads its metadata record under .snakemake/, so expect the
# up-to-date replan to take somewhat longer than the number printed here; nothing is skipped.
#
# Usage: bench/replan.sh [CONFIG] [REPEATS]      (defaults: configs/parallel_paper.yaml, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/parallel_paper.yaml}"
repeats="${2:-3}"
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

echo "replan: $config, $repeats run(s), fresh directory $work"
for i in $(seq 1 "$repeats"); do
    start=$(date +%s.%N)
    "$python" -m snakemake -n --quiet rules --replace-workflow-config --configfile "$PWD/$config" \
        --directory "$work" > "$work/out.$i.txt" 2>&1 || { cat "$work/out.$i.txt"; exit 1; }
    end=$(date +%s.%N)
    jobs=$(awk '/^total/ {print $2; exit}' "$work/out.$i.txt")
    printf 'run %d: %s jobs planned in %.1f s\n' "$i" "$jobs" "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')"
done
