#!/usr/bin/env bash
# One command for a machine with one NVIDIA GPU: run the workflow's GPU code paths on a small study
# and say what ran and what was skipped. Under 10 minutes on one GPU (estimate; see the README).
#
#   bash bench/gpu_smoke.sh [--workdir DIR] [--python PY] [--no-vllm] [--plan] [--keep] [-h|--help]
#
# Steps (each a real Snakemake run of the workflow, one GPU job at a time: --resources gpu=1):
#   cuda   bench/gpu_smoke.yaml: the tiny model built on cuda, GRPO and SFT in bf16, predictions with
#          the transformers engine on cuda, scoring
#   vllm   bench/gpu_smoke_vllm.yaml (only when `import vllm` works): GRPO with TRL's colocated vLLM
#          rollouts, predictions with the vLLM engine, scoring
# After each step the records of its jobs are checked (device cuda, bf16, engine), not only the exit code.
#
# Options:
#   --workdir DIR   where the study runs (default: a new temporary folder, deleted unless --keep)
#   --python PY     the Python with the workflow's GPU stack (default: .venv/bin/python, else python3)
#   --no-vllm       skip the vLLM step even when vLLM imports
#   --plan          print what would run and what would be skipped, run nothing
#   --keep          keep the work folder (logs, checkpoints, predictions)
# Exit status: 0 every step that could run passed (the vLLM step may be skipped), 1 a step failed,
# 2 bad arguments, 3 no CUDA GPU (nothing ran).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

WORKDIR="" PY="" NO_VLLM=0 PLAN=0 KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --workdir) [ $# -ge 2 ] || { echo "gpu_smoke: --workdir needs a folder" >&2; exit 2; }; WORKDIR="$2"; shift 2 ;;
        --python) [ $# -ge 2 ] || { echo "gpu_smoke: --python needs a path" >&2; exit 2; }; PY="$2"; shift 2 ;;
        --no-vllm) NO_VLLM=1; shift ;;
        --plan) PLAN=1; shift ;;
        --keep) KEEP=1; shift ;;
        *) echo "gpu_smoke: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY="$(command -v python3 || true)"; fi
fi
if [ -z "$PY" ] || ! "$PY" -c "import sys" >/dev/null 2>&1; then
    echo "gpu_smoke: no usable Python ('$PY'); pass --python" >&2; exit 2
fi

# ---- what this machine has ------------------------------------------------------------------
GPU_INFO="$("$PY" -c '
import torch
if torch.cuda.is_available():
    print(f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
' 2>/dev/null)"
GPU_WHY="torch sees no CUDA GPU"
"$PY" -c "import torch" >/dev/null 2>&1 || GPU_WHY="torch cannot be imported by $PY"
VLLM_INFO="$("$PY" -c 'import vllm; print(vllm.__version__)' 2>&1 | tail -n 1)"
if "$PY" -c 'import vllm' >/dev/null 2>&1; then HAVE_VLLM=1; else HAVE_VLLM=0; fi

echo "gpu_smoke: python $PY"
if [ -n "$GPU_INFO" ]; then echo "gpu_smoke: GPU $GPU_INFO"; else echo "gpu_smoke: no GPU ($GPU_WHY)"; fi
if [ "$HAVE_VLLM" = 1 ]; then echo "gpu_smoke: vllm $VLLM_INFO"; else echo "gpu_smoke: vllm not importable ($VLLM_INFO)"; fi

STEPS=(cuda vllm)
declare -A DESC=(
    [cuda]="tiny model built on cuda, GRPO bf16, SFT bf16, predict (transformers, cuda), score"
    [vllm]="GRPO with colocated vLLM rollouts, predict (vLLM engine), score"
)
declare -A SKIP=()
for s in "${STEPS[@]}"; do
    [ -n "$GPU_INFO" ] || SKIP[$s]="no CUDA GPU: $GPU_WHY"
done
if [ -z "${SKIP[vllm]:-}" ]; then
    if [ "$NO_VLLM" = 1 ]; then SKIP[vllm]="--no-vllm given"
    elif [ "$HAVE_VLLM" = 0 ]; then SKIP[vllm]="vLLM not importable ($VLLM_INFO)"; fi
fi

if [ "$PLAN" = 1 ]; then
    for s in "${STEPS[@]}"; do
        if [ -n "${SKIP[$s]:-}" ]; then echo "skip     $s: ${DESC[$s]} (${SKIP[$s]})"
        else echo "would run $s: ${DESC[$s]}"; fi
    done
    exit 0
fi

if [ -z "$GPU_INFO" ]; then
    for s in "${STEPS[@]}"; do echo "skipped  $s: ${DESC[$s]} (${SKIP[$s]})"; done
    echo "gpu_smoke: nothing ran: $GPU_WHY"
    exit 3
fi

# ---- run --------------------------------------------------------------------------------------
if [ -z "$WORKDIR" ]; then
    WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/gpu_smoke.XXXXXX")"
    [ "$KEEP" = 1 ] || trap 'rm -rf "$WORKDIR"' EXIT
fi
mkdir -p "$WORKDIR"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
S=results/gpu_smoke
TARGETS=("$S/scored/tiny/init/init/s0/scored.jsonl" "$S/scored/tiny/grpo/k1/s0/scored.jsonl"
         "$S/scored/tiny/sft/k1/s0/scored.jsonl")
VLLM_TARGETS=("$S/scored/tiny/init/init/s0/scored.jsonl" "$S/scored/tiny/grpo/k1/s0/scored.jsonl")

# What the jobs of a step recorded: device, precision and engine, read from their outputs.
verify() {
    "$PY" - "$WORKDIR/$S" "$1" <<'EOF'
import json, sys
from pathlib import Path
root, step = Path(sys.argv[1]), sys.argv[2]
problems, seen = [], []
def expect(what, ok, got):
    seen.append(f"{what}: {got}")
    if not ok:
        problems.append(f"{what}: {got}")
grpo = json.loads((root / "checkpoints/tiny/grpo/k1/s0/training_settings.json").read_text())
expect("train_grpo device", grpo["device"] == "cuda", grpo["device"])
expect("train_grpo bf16", grpo["trainer_args"]["bf16"] is True, grpo["trainer_args"]["bf16"])
expect("train_grpo vLLM rollouts", grpo["trainer_args"]["use_vllm"] is (step == "vllm"), grpo["trainer_args"]["use_vllm"])
if step == "vllm":
    expect("train_grpo vLLM context", bool(grpo["trainer_args"].get("vllm_max_model_length")),
           grpo["trainer_args"].get("vllm_max_model_length"))
if step == "cuda":
    sft = json.loads((root / "checkpoints/tiny/sft/k1/s0/training_settings.json").read_text())
    expect("train_sft device", sft["device"] == "cuda", sft["device"])
    expect("train_sft bf16", sft["trainer_args"]["bf16"] is True, sft["trainer_args"]["bf16"])
    init = root / "models/tiny/init"
    expect("build_init_model", (init / "config.json").is_file(), "model written")
runs = ["init/init", "grpo/k1"] + (["sft/k1"] if step == "cuda" else [])
engine = "vllm" if step == "vllm" else "transformers"
for run in runs:
    s = json.loads((root / f"predictions/tiny/{run}/s0/_settings.json").read_text())
    expect(f"predict {run}", s["engine"] == engine and s["device"] == "cuda", f"{s['engine']} on {s['device']}")
    scored = [json.loads(l) for l in (root / f"scored/tiny/{run}/s0/scored.jsonl").read_text().splitlines()]
    acc = sum(r["correct"] for r in scored) / max(len(scored), 1)
    seen.append(f"score {run}: {len(scored)} items, accuracy {acc:.3f}")
for line in seen:
    print(f"           {line}")
if problems:
    print("           NOT AS EXPECTED: " + "; ".join(problems))
    sys.exit(1)
EOF
}

run_step() {
    local step="$1" config="$2"; shift 2
    local start=$SECONDS log="$WORKDIR/gpu_smoke_$step.log"
    (cd "$REPO" && "$PY" -m snakemake --snakefile "$REPO/Snakefile" --directory "$WORKDIR" \
        --configfile "$REPO/$config" --cores "$(nproc)" --resources gpu=1 --show-failed-logs "$@") >"$log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ] && verify "$step" >"$log.verify" 2>&1; then
        RESULT[$step]="ran      $step: ${DESC[$step]} ($((SECONDS - start)) s)"
        DETAIL[$step]="$(cat "$log.verify")"
    else
        RESULT[$step]="FAILED   $step: ${DESC[$step]} ($((SECONDS - start)) s; log: $log)"
        # the failed rule as Snakemake reports it, and the end of that job's own log
        local job_log
        job_log="$(grep -m1 -A12 '^Error in rule' "$log" | sed -n 's/^ *log: \([^ ,]*\).*/\1/p' | head -n 1)"
        if grep -q '^Error in rule' "$log"; then
            DETAIL[$step]="$(cat "$log.verify" 2>/dev/null; grep -m1 -A6 '^Error in rule' "$log"
                             [ -n "$job_log" ] && [ -f "$WORKDIR/$job_log" ] && tail -n 15 "$WORKDIR/$job_log")"
        else  # refused before any job (a config check): the end of Snakemake's own output
            DETAIL[$step]="$(cat "$log.verify" 2>/dev/null; tail -n 8 "$log")"
        fi
        FAILED=1
    fi
}

declare -A RESULT=() DETAIL=()
FAILED=0
run_step cuda bench/gpu_smoke.yaml "${TARGETS[@]}"
if [ -z "${SKIP[vllm]:-}" ]; then
    run_step vllm bench/gpu_smoke_vllm.yaml "${VLLM_TARGETS[@]}"
fi

echo
echo "gpu_smoke: summary (work folder $WORKDIR$([ "$KEEP" = 1 ] || echo ', deleted on exit'))"
for s in "${STEPS[@]}"; do
    if [ -n "${RESULT[$s]:-}" ]; then echo "${RESULT[$s]}"; echo "${DETAIL[$s]}"
    else echo "skipped  $s: ${DESC[$s]} (${SKIP[$s]})"; fi
done
exit $FAILED
