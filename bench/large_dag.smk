# A study's DAG with jobs that cost milliseconds: how Snakemake itself schedules and runs a study of
# 10,000 jobs on this machine, without 10,000 torch processes (about 7 CPU-seconds each just to start).
#
#   snakemake -s bench/large_dag.smk --directory /tmp/run --cores 2 \
#       --config study_config=/tmp/large_10000.yaml [--scheduler greedy]
#
# The jobs are those of workflow/rules/*.smk for the study (bench/large_study.py writes one), from
# the same functions of parallel_scaling.plan.study: source, translate and qc per language, one
# mixture per k, benchmark per (benchmark, language) and a manifest per benchmark, then per run
# train_grpo -> predict -> score, and analyze / plot_training over every run. The rules keep the
# workflow's local rules and priorities; each job is a shell command that writes its output (a
# real process per job, as in the workflow), so what is measured is Snakemake's planning,
# scheduling, job start, output checks and metadata per job. bench/large_study.sh times it.
import os
import sys

import yaml

sys.path.insert(0, os.path.join(workflow.basedir, "..", "workflow"))
from parallel_scaling.plan import study

CFG = yaml.safe_load(open(config["study_config"]))
RUNS = study.runs(CFG)
MIXTURES = study.mixtures(CFG)
LANGS = study.translated_languages(CFG)
PAIRS = study.bench_lang_pairs(CFG)
TRAINED = [r for r in RUNS if r.paradigm in ("grpo", "sft")]
RUNS_COUNT, TRAINED_COUNT = len(RUNS), len(TRAINED)


localrules:
    all,
    source,
    qc,
    mixture,
    benchmark,
    benchmark_manifest,
    score,
    analyze,
    plot_training,


wildcard_constraints:
    lang="|".join(sorted(set(LANGS) | {lg for _, lg in PAIRS})),
    mixture="|".join(["init", "public", *(m.name for m in MIXTURES)]),
    model="|".join(CFG["models"]),
    paradigm="init|public|grpo|sft",
    seed=r"\d+",


rule all:
    input:
        "tables/accuracy.csv",
        "plots/training.png",


rule source:
    output:
        "data/source/train.jsonl",
    shell:
        "echo source > {output}"


rule translate:
    input:
        "data/source/train.jsonl",
    output:
        "data/translated/{lang}.jsonl",
    shell:
        "echo {wildcards.lang} > {output}"


rule qc:
    input:
        "data/translated/{lang}.jsonl",
    output:
        "data/parallel/{lang}.jsonl",
    shell:
        "cat {input} > {output}"


rule mixture:
    input:
        lambda wc: [
            f"data/parallel/{lg}.jsonl" for lg in study.mixture(CFG, wc.mixture).langs
        ],
    output:
        "data/mixtures/{mixture}.jsonl",
    shell:
        "cat {input} > {output}"


rule benchmark:
    output:
        "benchmarks/{benchmark}/{lang}.jsonl",
    priority: 50
    shell:
        "echo {wildcards.benchmark} {wildcards.lang} > {output}"


rule benchmark_manifest:
    input:
        lambda wc: [
            f"benchmarks/{b}/{lg}.jsonl" for b, lg in PAIRS if b == wc.benchmark
        ],
    output:
        "benchmarks/{benchmark}.manifest.json",
    shell:
        "cat {input} > {output}"


rule train_grpo:
    input:
        "data/mixtures/{mixture}.jsonl",
    output:
        "checkpoints/{model}/grpo/{mixture}/s{seed}/model.txt",
    priority: lambda wc: len(study.mixture(CFG, wc.mixture).langs)
    shell:
        "echo {wildcards} > {output}"


def predict_inputs(wc):
    bench = [f"benchmarks/{b}.manifest.json" for b in CFG["benchmarks"]]
    if wc.paradigm in ("grpo", "sft"):
        bench.append(
            f"checkpoints/{wc.model}/{wc.paradigm}/{wc.mixture}/s{wc.seed}/model.txt"
        )
    return bench


rule predict:
    input:
        predict_inputs,
    output:
        "predictions/{model}/{paradigm}/{mixture}/s{seed}.jsonl",
    shell:
        "echo {wildcards} > {output}"


rule score:
    input:
        "predictions/{model}/{paradigm}/{mixture}/s{seed}.jsonl",
    output:
        "scored/{model}/{paradigm}/{mixture}/s{seed}/scored.jsonl",
    shell:
        "cat {input} > {output}"


rule analyze:
    input:
        [f"scored/{r.path}/scored.jsonl" for r in RUNS],
    output:
        "tables/accuracy.csv",
    shell:
        "echo {RUNS_COUNT} runs > {output}"


rule plot_training:
    input:
        [f"checkpoints/{r.path}/model.txt" for r in TRAINED],
    output:
        "plots/training.png",
    shell:
        "echo {TRAINED_COUNT} > {output}"
