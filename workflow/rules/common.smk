# Helpers and target lists. Only light imports here: the Snakefile is parsed for every
# `snakemake` call (dry runs included), so torch/transformers are never imported while planning.
import json
import os
import sys

from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))
from parallel_scaling import study
from parallel_scaling.prompts import missing_languages
from parallel_scaling.synth import LANGUAGES as TEMPLATE_LANGUAGES


validate(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"))
_errors = study.check(config, TEMPLATE_LANGUAGES, missing_languages)
if _errors:
    raise ValueError("invalid config:\n  " + "\n  ".join(_errors))

PKG = os.path.join(workflow.basedir, "workflow")
EN = config["languages"]["english"]
MIXTURES = study.mixtures(config)
RUNS = study.runs(config)
BENCH_LANGS = study.bench_lang_pairs(config)
TRAIN_LANGS = study.trained_languages(config)
ALL_LANGS = sorted(set(TRAIN_LANGS) | set(config["languages"]["evaluate"]))


def _python():
    """`python` inside per-rule conda envs, else the interpreter running snakemake (the venv)."""
    method = str(getattr(workflow.deployment_settings, "deployment_method", ""))
    return "python" if "conda" in method.lower() else sys.executable


# Every job: python -m parallel_scaling --provenance <record> <command> ...
PYTHON = _python()
PYENV = f"PYTHONPATH={PKG}${{PYTHONPATH:+:$PYTHONPATH}} {PYTHON}"
PS = f"{PYENV} -m parallel_scaling"


def launcher(section):
    """How a training job starts: one process, or `accelerate launch` with one process per GPU
    of the job (the `gpu` resource the SLURM profile gives it) when the section names an
    accelerate/DeepSpeed config file."""

    def fn(wildcards, resources):
        cfg = config[section].get("accelerate_config")
        if not cfg:
            return "-m parallel_scaling"
        n = max(1, int(getattr(resources, "gpu", 1) or 1))
        return (
            f"-m accelerate.commands.launch --config_file {cfg} --num_processes {n}"
            " -m parallel_scaling"
        )

    return fn


wildcard_constraints:
    split="train|test",
    lang="|".join(ALL_LANGS),
    mixture="|".join(["init", "public"] + [m.name for m in MIXTURES]),
    model="|".join(config["models"]),
    paradigm="init|public|grpo|sft",
    seed=r"\d+",
    benchmark="|".join(config["benchmarks"]),


def as_json(obj):
    """A config section as one shell-quoted JSON argument."""
    return "'" + json.dumps(obj, sort_keys=True).replace("'", "'\\''") + "'"


def model_path(model):
    """Where an initial model's weights are: built here (tiny) or given (pretrained)."""
    m = config["models"][model]
    return f"results/models/{model}/init" if m["source"] == "tiny" else m["path"]


def predictions(run):
    return [f"results/predictions/{run.path}/{b}/{lg}.jsonl" for b, lg in BENCH_LANGS]


def scored(run):
    return [f"results/scored/{run.path}/{b}/{lg}.jsonl" for b, lg in BENCH_LANGS]


def trained_runs():
    return [r for r in RUNS if r.paradigm in ("grpo", "sft")]


def final_targets():
    return [
        "results/tables/accuracy.csv",
        "results/tables/law.md",
        "results/tables/qc.csv",
        "results/plots/scaling.png",
        "results/plots/training.png",
    ]
