#!/usr/bin/env bash
# How the workflow scales to studies far larger than the paper's (docs/performance.md, "Studies of
# 10,000 jobs"). For a study of about JOBS jobs (bench/large_study.py: the paper study with K = 8,
# more models and more seeds), prints the CPU and wall seconds of:
#   check-config, cost-plan (with its memory pre-flight and time limits), `snakemake -n` of the
#   real workflow in an empty directory (every job planned);
#   the onstart / onerror / archive steps, in-process (bench/large_steps.py);
#   with RUN=1, a real local run of the study's DAG with jobs of milliseconds (bench/large_dag.smk)
#   under the shipped workflow profile (profiles/default: scheduler greedy), or with
#   SCHEDULER=ilp under Snakemake's default scheduler instead; its progress (seconds, jobs done)
#   goes to $OUT/progress.tsv;
#   with TOUCH=1, the real workflow's DAG marked up to date with `snakemake --touch` over outputs
#   created beforehand (the measurement of issue #27: every job of the real Snakefile scheduled,
#   none run), under the same scheduler choice; progress in $OUT/touch.tsv.
# Usage: bench/large_study.sh [JOBS] (default 10000); OUT=dir keeps the files (default: a temp dir);
# STEPS=0 skips the steps above the runs.
# Run one at a time, on a quiet machine (check `uptime` first): the numbers are CPU-bound.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
jobs="${1:-10000}"
python="${PYTHON:-.venv/bin/python}"
case "$python" in /*) ;; *) python="$repo/$python" ;; esac
snakemake="$(dirname "$python")/snakemake"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$repo/workflow${PYTHONPATH:+:$PYTHONPATH}"
step() {  # label, command...: one line with the command's wall and CPU seconds (user + system)
    local label=$1; shift
    /usr/bin/time -f "%e %U %S" -o "$out/time" "$@" > "$out/last.out" 2>&1 \
        || { echo "failed: $*" >&2; tail -20 "$out/last.out" >&2; exit 1; }
    awk -v l="$label" '{printf "%-44s %8.2f CPU-s %8.2f s wall\n", l, $2 + $3, $1}' "$out/time"
}

uptime
"$python" bench/large_study.py --jobs "$jobs" --out "$out/study.yaml"
if [ "${STEPS:-1}" = 1 ]; then
step "check-config" "$python" -m parallel_scaling check-config --configfile "$out/study.yaml"
step "cost-plan --gpu h100" "$python" -m parallel_scaling cost-plan --configfile "$out/study.yaml" --gpu h100
rm -rf "$out/plan" && mkdir -p "$out/plan"
step "snakemake -n (empty directory)" "$snakemake" -s "$repo/Snakefile" --directory "$out/plan" \
    --configfile "$out/study.yaml" -n --quiet rules
echo "  $(awk '/^total/ {print $2; exit}' "$out/last.out") jobs"
rm -rf "$out/tree"
"$python" bench/large_steps.py "$out/study.yaml" --tree "$out/tree"
fi

progress() {  # FILE: Snakemake's "N of M steps" lines on stdin, timestamped into FILE
    "$python" -c '
import re, sys, time
t0, pat = time.time(), re.compile(r"(\d+) of (\d+) steps")
with open(sys.argv[1], "w") as out:
    for line in sys.stdin:
        m = pat.search(line)
        if m:
            out.write(f"{time.time() - t0:.2f}\t{m.group(1)}\t{m.group(2)}\n")
            out.flush()
        elif "Error" in line:
            sys.stderr.write(line)
' "$1"
}
rates() {  # LABEL FILE: the run's totals and its cost per job, 1,000 jobs at a time
    awk -v l="$1" '{printf "%-44s %8.2f CPU-s %8.2f s wall\n", l, $2 + $3, $1}' "$out/time"
    tail -1 "$2" | awk '{print "  " $2 " of " $3 " jobs done"}'
    awk 'NR % 1000 == 0 {printf "  %5d jobs done at %7.1f s (%.0f ms per job since the last line)\n", $2, $1, 1000 * ($1 - p) / ($2 - n); p = $1; n = $2}' "$2"
}
extra=()
[ -n "${SCHEDULER:-}" ] && extra=(--scheduler "$SCHEDULER")

if [ "${TOUCH:-0}" = 1 ]; then
    rm -rf "$out/touch" && mkdir -p "$out/touch"
    sm=("$snakemake" -s "$repo/Snakefile" --workflow-profile "$repo/profiles/default" --directory "$out/touch"
        --configfile "$out/study.yaml")
    "${sm[@]}" --summary 2>/dev/null | awk -F'\t' 'NR > 1 && $1 != "" {print $1}' > "$out/outputs.txt"
    "$python" - "$out/touch" "$out/outputs.txt" <<'EOF'
import sys
from pathlib import Path
# as bench/replan.sh: a folder for a model or predictions directory, a token manifest, else a file
root = Path(sys.argv[1])
for rel in Path(sys.argv[2]).read_text().split():
    path = root / rel
    if "." not in path.name:
        path.mkdir(parents=True, exist_ok=True)
        continue
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"token": "new", "files": {}}' if path.name.endswith(".manifest.json") else "")
EOF
    uptime
    /usr/bin/time -f "%e %U %S" -o "$out/time" "${sm[@]}" --touch --cores 1 "${extra[@]}" 2>&1 | progress "$out/touch.tsv"
    rates "snakemake --touch, real workflow (${SCHEDULER:-profile})" "$out/touch.tsv"
fi

if [ "${RUN:-0}" = 1 ]; then
    rm -rf "$out/run" && mkdir -p "$out/run"
    uptime
    /usr/bin/time -f "%e %U %S" -o "$out/time" "$snakemake" -s "$repo/bench/large_dag.smk" \
        --workflow-profile "$repo/profiles/default" --directory "$out/run" --cores 2 \
        --config study_config="$out/study.yaml" "${extra[@]}" 2>&1 | progress "$out/progress.tsv"
    rates "real run of bench/large_dag.smk (${SCHEDULER:-profile})" "$out/progress.tsv"
fi
