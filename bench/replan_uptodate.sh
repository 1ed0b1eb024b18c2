#!/usr/bin/env bash
# Time `snakemake -n` on a study whose every output is present and up to date, the case that a
# researcher pays on every call after a run: all outputs of the DAG are created as placeholder
# files (in DAG order, so times are consistent), recorded with `snakemake --touch`, and then the
# dry run is timed (it must plan nothing). No GPU or network is needed.
# Usage: bench/replan_uptodate.sh [CONFIG] [REPEATS]   (defaults: configs/parallel_paper.yaml, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/parallel_paper.yaml}"
repeats="${2:-3}"
python="${PYTHON:-.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
sm() { "$python" -m snakemake --configfile "$PWD/$config" --directory "$work" "$@"; }

# every output file of the DAG, from Snakemake's own summary
sm --summary 2>/dev/null | awk -F'\t' 'NR > 1 && $1 != "" {print $1}' > "$work/outputs.txt"
while read -r f; do mkdir -p "$work/$(dirname "$f")"; : > "$work/$f"; done < "$work/outputs.txt"
sm --touch --cores 1 > "$work/touch.log" 2>&1
echo "replan (all $(wc -l < "$work/outputs.txt") outputs up to date): $config"
for i in $(seq 1 "$repeats"); do
    start=$(date +%s%N)
    sm -n > "$work/dry.$i.txt" 2>&1
    end=$(date +%s%N)
    grep -q "Nothing to be done" "$work/dry.$i.txt" || { echo "dry run planned jobs:"; tail -20 "$work/dry.$i.txt"; exit 1; }
    echo "run $i: $(( (end - start) / 1000000 )) ms"
done
start=$(date +%s%N); "$python" -m snakemake --version > /dev/null; end=$(date +%s%N)
echo "for scale, 'snakemake --version' alone: $(( (end - start) / 1000000 )) ms"
