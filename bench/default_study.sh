#!/usr/bin/env bash
# Wall time of the default study from scratch on this machine, plus the per-rule times that
# Snakemake's `benchmark:` directives recorded. Runs in a temporary directory (results/ untouched).
# Usage: bash bench/default_study.sh [CORES]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cores="${1:-2}"
py="${PYTHON:-$repo/.venv/bin/python}"
out="$(mktemp -d)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
echo "default study, $cores cores, in $out"
start=$(date +%s)
"$py" -m snakemake --snakefile "$repo/Snakefile" --configfile "$repo/config.yaml" \
    --directory "$out" --cores "$cores" --quiet rules > "$out/run.log" 2>&1
end=$(date +%s)
echo "wall time: $((end - start)) s"
echo "seconds per rule (sum over jobs, from benchmarks/tiny/*.tsv):"
find "$out/benchmarks/tiny" -name '*.tsv' | while read -r f; do
    rule=$(echo "$f" | sed -E "s#$out/benchmarks/tiny/([^/]+)/.*#\1#")
    echo "$rule $(tail -n 1 "$f" | cut -f1)"
done | awk '{s[$1]+=$2; n[$1]++} END {for (r in s) printf "  %-18s %7.1f s  (%d jobs)\n", r, s[r], n[r]}' | sort
cat "$out/results/tiny/tables/law.md" | sed -n '1,20p'
