#!/usr/bin/env bash
# Wall time and CPU time of the default study from scratch on this machine, plus the per-rule
# times that Snakemake's `benchmark:` directives recorded. CPU seconds / cores is the wall time the
# run would take if every core were busy throughout: the floor that less overhead alone can reach.
# Runs in a temporary directory (results/ untouched).
# Usage: bash bench/default_study.sh [CORES [SNAKEMAKE ARGS...]]
#   e.g. bash bench/default_study.sh 2 --config 'cpu_kernels={aten_cpu_capability: null, mkl_cbwr: null}'
set -euo pipefail
source "$(dirname "$0")/cpu_time.sh"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cores="${1:-2}"
py="${PYTHON:-$repo/.venv/bin/python}"
out="$(mktemp -d)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
echo "default study, $cores cores, in $out"
ln -s "$repo/models" "$out/models"   # config.yaml's initial model, models/tiny-qwen2, relative to the run's directory
# bash's `time`: wall, and the user + system CPU of Snakemake and every job it ran (each process
# waits for its children, so their CPU time adds up to the top)
TIMEFORMAT="%R %U %S"
before="$(machine_cpu)"
{ time "$py" -m snakemake --snakefile "$repo/Snakefile" --configfile "$repo/config.yaml" \
    --directory "$out" --cores "$cores" --quiet rules "${@:2}" > "$out/run.log" 2>&1; } 2> "$out/time.txt"
read -r wall user sys < "$out/time.txt"
cpu_report "$wall" "$user" "$sys" "$cores"
machine_report "$before" "$(machine_cpu)" "$wall" "$(nproc)"
echo "per rule, summed over jobs (benchmarks/tiny/*.tsv: wall s, cpu_time s):"
find "$out/benchmarks/tiny" -name '*.tsv' | while read -r f; do
    rule=$(echo "$f" | sed -E "s#$out/benchmarks/tiny/([^/]+)/.*#\1#")
    echo "$rule $(tail -n 1 "$f" | cut -f1,10)"
done | awk '{s[$1]+=$2; c[$1]+=$3; n[$1]++} END {
    for (r in s) printf "  %-18s %7.1f s wall %7.1f s CPU  (%d jobs)\n", r, s[r], c[r], n[r]}' | sort
cat "$out/results/tiny/tables/law.md" | sed -n '1,20p'
