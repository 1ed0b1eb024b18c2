#!/usr/bin/env bash
# How long Snakemake takes to (re)plan a study: the fixed cost of every `snakemake` call on it
# (dry runs, the SLURM driver at start-up, `--report`). Two cases, each timed REPEATS times:
#   empty:     `snakemake -n` in an empty working directory (every job planned);
#   up to date: every output of the DAG present and recorded, the case a researcher pays on every
#              call after a run. Outputs are created as placeholders (a folder for a model or
#              predictions directory, an empty manifest beside it, an empty file otherwise) and recorded with
#              `snakemake --touch`; the dry run must then plan nothing.
# Prints every run, the median and the minimum (this machine's timings are noisy), and
# `snakemake --version` alone for scale. No GPU or network is needed.
# Usage: bench/replan.sh [CONFIG] [REPEATS]   (defaults: configs/parallel_paper.yaml, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/parallel_paper.yaml}"
case "$config" in /*) ;; *) config="$PWD/$config" ;; esac
repeats="${2:-5}"
python="${PYTHON:-.venv/bin/python}"
empty="$(mktemp -d)" work="$(mktemp -d)"
trap 'rm -rf "$empty" "$work"' EXIT
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
sm() { local dir=$1; shift; "$python" -m snakemake --configfile "$config" --directory "$dir" "$@"; }
ms() { local s; s=$(date +%s%N); "$@" > /dev/null 2>&1 || return 1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
timed() {  # label, command...: REPEATS timings, then median and minimum
    local label=$1; shift
    for _ in $(seq 1 "$repeats"); do ms "$@" || { echo "failed: $*" >&2; "$@" | tail -20; exit 1; }; done \
        | sort -n | awk -v l="$label" '{v[NR] = $1; s = s " " $1} END {printf "%s: median %d ms, min %d ms  (runs:%s)\n", l, v[int((NR + 1) / 2)], v[1], s}'
}

jobs=$(sm "$empty" -n --quiet rules 2>&1 | awk '/^total/ {print $2; exit}')
sm "$work" --summary 2>/dev/null | awk -F'\t' 'NR > 1 && $1 != "" {print $1 "\t" $3}' > "$empty.outputs"
while IFS=$'\t' read -r f rule; do  # model/predictions folders have no extension; their manifests a token
    case "$(basename "$f")" in
        *.manifest.json) mkdir -p "$work/$(dirname "$f")"; echo '{"token": "new", "files": {}}' > "$work/$f" ;;
        *.*) mkdir -p "$work/$(dirname "$f")"; : > "$work/$f" ;;
        *) mkdir -p "$work/$f" ;;
    esac
done < "$empty.outputs"
sm "$work" --touch --cores 1 > /dev/null 2>&1
sm "$work" -n 2>&1 | grep -q "Nothing to be done" || { echo "up-to-date dry run planned jobs:"; sm "$work" -n | tail -20; exit 1; }

echo "replan ${config#"$PWD/"}: $jobs jobs, $(wc -l < "$empty.outputs") outputs"
timed "snakemake -n, empty directory  " sm "$empty" -n
timed "snakemake -n, all up to date   " sm "$work" -n
timed "snakemake --version (for scale)" "$python" -m snakemake --version
rm -f "$empty.outputs"
