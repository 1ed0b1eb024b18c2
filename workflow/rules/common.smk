# Helpers and target lists. Only light imports here: the Snakefile is parsed for every
# `snakemake` call (dry runs included), so torch/transformers are never imported while planning.
import json
import os
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))
from parallel_scaling.jobs import cpu_numerics, integrity
from parallel_scaling.common import served
from parallel_scaling.jobs.codedeps import code_hash
from parallel_scaling.common.prompts import prompt_set
from parallel_scaling.plan import check_config as configcheck
from parallel_scaling.plan import model_settings, prediction_jobs, study

from parallel_scaling.jobs import failures, locks, running_jobs

# A run killed by any means left Snakemake's lock behind: released here, before Snakemake locks,
# when no other Snakemake works in this directory (parallel_scaling.jobs.locks), so that the
# same command resumes. Only in the main process of a run that locks (jobs spawned by Snakemake run
# with --nolock; its settings are not known yet while the Snakefile is parsed, its argv is).
if workflow.is_main_process and "--nolock" not in sys.argv:
    _released = locks.release_stale_locks(os.getcwd())
    if _released:
        print(_released, file=sys.stderr)

# The study's config: the files given with --configfile (a study *replaces* config.yaml, it is not
# merged into it: a merge would add the default study's models and benchmarks to every other study),
# else config.yaml; then the --config overrides, with numbers inside lists and mappings typed
# (study.typed_overrides). Every file is read with its line numbers, and every problem is reported
# in one line naming the file, line and key (parallel_scaling.plan.check_config) before any job runs.
# (Snakemake reads --configfile files itself first: a YAML syntax error there is reported by
# Snakemake without the file's name; `python -m parallel_scaling check-config FILE` names it.)
CONFIG_FILES = [str(f) for f in workflow.config_settings.configfiles] or ["config.yaml"]
CONFIG_OVERRIDES = study.typed_overrides(workflow.config_settings.config or {})


def stop(error):
    """End the run with ``error``'s message as the last lines on screen. Not an exception: Snakemake
    prints one raised in a Snakefile followed by its code location (`File ".../common.smk", line
    N, in <module>`), a line of ours that a user would read as the fault. SystemExit unwinds like an
    exception (Snakemake's lock and logger are released on the way) and Python then prints the
    message on stderr with exit status 1 (tests/test_config_corpus.py runs snakemake to check it).
    """
    raise SystemExit(f"{type(error).__name__}: {error}")


try:
    _study, _origins = configcheck.load_study(CONFIG_FILES, CONFIG_OVERRIDES)
except configcheck.ConfigError as _exc:
    stop(_exc)
config.clear()
config.update(study.resolve_model_paths(_study, workflow.basedir))
# (the data files are read to count what the mixtures get in the run that plans, not in each job's
# own Snakemake on a cluster node)
_errors = configcheck.check_config(config, _origins, read_data=workflow.is_main_process)
if _errors:
    _sources = CONFIG_FILES + (["--config"] if CONFIG_OVERRIDES else [])
    stop(configcheck.ConfigError(configcheck.report(_errors, _sources)))


onstart:
    # Jobs that a killed run of this directory left running (local processes, SLURM jobs in the
    # queue): waited for or refused (PARALLEL_SCALING_RUNNING_JOBS), never started a second time
    # (parallel_scaling.jobs.running_jobs).
    settle_running_jobs()
    # A run on this machine (not -n, not a cluster executor): the jobs about to run that need a GPU
    # this machine does not have stop the run here, before the first job.
    _errors = local_hardware_errors()
    if _errors:
        stop(configcheck.ConfigError(configcheck.report(_errors, CONFIG_FILES)))
    # A run on a cluster: site placeholders, unknown partitions and jobs longer than their runtime
    # stop the run here, before the first submission (parallel_scaling.plan.submission).
    _errors = cluster_errors()
    if _errors:
        stop(
            configcheck.ConfigError(
                "\n  ".join(
                    ["not submitted, the SLURM profile needs editing:", *_errors]
                )
            )
        )


onerror:
    # After a failed run (on a cluster, keep-going ran every independent job first): each failed
    # job, its text log and the error it ends with, printed last and kept in logs/<study>/failed.txt
    # (parallel_scaling.jobs.failures); the profile leaves show-failed-logs off, since it would
    # print every job's provenance record below the error.
    failure_summary(log)


PKG = os.path.join(workflow.basedir, "workflow")
# Each study's files live apart, so that two studies in one checkout never touch each other.
STUDY = config["study"]
RESULTS = f"results/{STUDY}"
LOGS = f"logs/{STUDY}"
BENCHMARKS = f"benchmarks/{STUDY}"
WORK = f"work/{STUDY}"
EN = study.ENGLISH
MIXTURES = study.mixtures(config)
RUNS = study.runs(config)
# Each checkpoint's prediction jobs: one, or parts that each fit prediction_jobs.max_hours
# (parallel_scaling.plan.prediction_jobs); planned from the config and the throughput file only.
# Each model's prediction settings: the study's, its own over them, its tensor parallelism picked
# where none is given (parallel_scaling.plan.model_settings).
try:
    PREDICT_PARTS = prediction_jobs.study_parts(config)
    PREDICT_SETTINGS = model_settings.study_settings(config)
    # runs whose checkpoint and settings another run evaluates: its predictions, relabelled
    REUSED = prediction_jobs.duplicates(config)
    REUSED_RUNS = {r.path: r for r in RUNS if r.path in REUSED}
except (OSError, ValueError) as _exc:
    stop(configcheck.ConfigError(f"prediction_jobs: cannot plan the prediction jobs: {_exc}"))
BENCH_LANGS = study.bench_lang_pairs(config)
DIFFICULTY_WEIGHTS = study.difficulty_weights(config)
TRAIN_LANGS = study.trained_languages(config)
ALL_LANGS = sorted(set(TRAIN_LANGS) | set(config["languages"]["evaluate"]))
QC_LANGS = study.translated_languages(config)


def _uses_conda():
    method = str(getattr(workflow.deployment_settings, "deployment_method", ""))
    return "conda" in method.lower()


# Jobs call `python -m parallel_scaling <command>`: the package from this checkout, and `python`
# from each rule's conda env, or else from the environment running snakemake (the venv).
# Descriptor 3 stays the console while a command writes to its log: warnings about data that is
# used anyway reach the screen too (parallel_scaling.dataio.console).
_path = "" if _uses_conda() else f" PATH={os.path.dirname(sys.executable)}:$PATH"
# Every job runs torch's and MKL's CPU kernels as the config fixes them (cpu_kernels): the same
# numbers on every x86-64 machine (parallel_scaling.jobs.cpu_numerics).
CPU_KERNELS = cpu_numerics.kernel_env(config["cpu_kernels"])
shell.prefix(
    f"export PYTHONPATH={PKG}${{{{PYTHONPATH:+:$PYTHONPATH}}}}{_path}"
    " PARALLEL_SCALING_CONSOLE_FD=3; exec 3>&2; "
    + cpu_numerics.shell_exports(config["cpu_kernels"])
)


def launcher(section):
    """How a training job starts: one process, or `accelerate launch` with one process per GPU of
    the job (its `gpu` resource, from the study's `gpus` section) or, for a job without GPUs,
    `cpu_processes` processes, when the section names an accelerate/DeepSpeed config file.
    """

    def fn(wildcards, resources):
        cfg = study.accelerate_config_path(config[section].get("accelerate_config"))
        if not cfg:
            return "-m parallel_scaling"
        n_gpu = int(getattr(resources, "gpu", 0) or 0)
        n = n_gpu if n_gpu >= 1 else int(config[section]["cpu_processes"])
        return (
            f"-m accelerate.commands.launch --config_file {shlex.quote(str(cfg))}"
            f" --num_processes {n} -m parallel_scaling"
        )

    return fn


def gpu_resource_overrides():
    """GPU counts that a profile's `set-resources` or `--set-resources` would put over the study's:
    Snakemake applies them over a rule's own `resources:` (workflow.py), which would silently change
    how many GPUs a job gets, and so a launcher's process count or vLLM's tensor parallelism.
    """
    overrides = getattr(workflow.resource_settings, "overwrite_resources", None) or {}
    problems = []
    for name, res in overrides.items():
        if name in study.GPU_RULES and "gpu" in res:
            want = study.gpus(config, name)
            if name == "predict":  # per model: an override replaces them all
                want = sorted(
                    {
                        model_settings.job_gpus(config, m, PREDICT_SETTINGS[m])
                        for m in config["models"]
                    }
                )
                want = want[0] if len(want) == 1 else want
            # a snakemake Resource or a plain value
            given = getattr(res["gpu"], "value", res["gpu"])
            if str(given) != str(want):
                problems.append(
                    f"set-resources {name}: gpu={given} (profile or command line) would replace "
                    f"the study's {want} (config key gpus.{name}); set GPUs per job in the study's "
                    "gpus section, not in the profile"
                )
    return problems


_gpu_overrides = gpu_resource_overrides()
if _gpu_overrides:
    stop(ValueError("\n  ".join(["invalid GPU resources:", *_gpu_overrides])))


wildcard_constraints:
    split="train|test",
    lang="|".join(ALL_LANGS),
    mixture="|".join(["init", "public", *(m.name for m in MIXTURES)]),
    model="|".join(config["models"]),
    paradigm="init|public|grpo|sft",
    seed=r"\d+",
    benchmark="|".join(config["benchmarks"]),
    part=prediction_jobs.PART_PATTERN,


def as_json(obj):
    """A config section as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def served_endpoint(section):
    """`--served FILE` for the `prediction` or `translation` section when its engine is `served`, else
    "": where the requests go (URL, concurrency, timeout, retries, key variable; never a key) is
    written to a file whose name never changes, so that a server moved to another node reruns
    nothing; what the outputs depend on stays in the job's settings (common/served.py).
    """
    settings = config[section]
    if settings.get("engine", settings.get("backend")) != "served":
        return ""
    path = Path(f"{WORK}/served/{section}.json")
    text = (
        json.dumps(served.split_settings(settings)[1], sort_keys=True, indent=1) + "\n"
    )
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return f"--served {path}"


def model_path(model):
    """Where an initial model's weights are: built here (tiny) or given (pretrained)."""
    m = config["models"][model]
    return f"{RESULTS}/models/{model}/init" if m["source"] == "tiny" else m["path"]


def checkpoint_dir(model, paradigm, mixture, seed):
    return f"{RESULTS}/checkpoints/{model}/{paradigm}/{mixture}/s{seed}"


def predictions_dir(run):
    return f"{RESULTS}/predictions/{run.path}"


def predictions(run):
    """Every prediction file of a checkpoint, in the order one unsplit job writes its rows."""
    parts = PREDICT_PARTS.get(run.path) or [
        prediction_jobs.Part("", tuple(BENCH_LANGS))
    ]
    return [
        f"{predictions_dir(run)}{part.wildcard}/{b}/{lg}.jsonl"
        for part, b, lg in prediction_jobs.part_files(parts, BENCH_LANGS)
    ]


def prediction_dirs(run):
    """The output folders of a checkpoint's prediction jobs (one unless it was split)."""
    if run.path in REUSED:
        return [predictions_dir(run)]  # rule reuse_predictions
    return [f"{predictions_dir(run)}{p.wildcard}" for p in PREDICT_PARTS[run.path]]


def reused_runs():
    """Constraint of reuse_predictions' wildcard: the run paths that reuse another's predictions."""
    return "|".join(re.escape(path) for path in REUSED) or "(?!)"


def reuse_inputs(wc):
    """The predictions (every part) of the run whose predictions a run reuses."""
    return prediction_dirs(REUSED[wc.run])


def reuse_settings(wc):
    """The settings file its first part wrote (a file inside a directory output: a param)."""
    source = REUSED[wc.run]
    return f"{predictions_dir(source)}{PREDICT_PARTS[source.path][0].wildcard}/_settings.json"


def reuse_args(wc):
    source = REUSED[wc.run]
    parts = PREDICT_PARTS[source.path]
    return " ".join(
        f"--input {b} {lg} {predictions_dir(source)}{part.wildcard}/{b}/{lg}.jsonl"
        for part, b, lg in prediction_jobs.part_files(parts, BENCH_LANGS)
    )


def predict_gpus(wc):
    """GPUs of a predict job: its model's (gpus.predict, else its tensor parallelism with vLLM)."""
    return model_settings.job_gpus(config, wc.model, PREDICT_SETTINGS[wc.model])


def predict_part(wc):
    """The part of its checkpoint's predictions one predict job answers."""
    for part in PREDICT_PARTS.get(_run(wc).path) or [
        prediction_jobs.Part("", tuple(BENCH_LANGS))
    ]:
        if part.wildcard == wc.part:
            return part
    raise ValueError(
        f"no prediction job {wc.part!r} for {_run(wc).path}: this config plans "
        f"{[p.wildcard for p in PREDICT_PARTS.get(_run(wc).path, [])]}"
    )


def scored(run):
    return f"{RESULTS}/scored/{run.path}/scored.jsonl"


def trained_runs():
    return [r for r in RUNS if r.paradigm in ("grpo", "sft")]


def final_targets():
    """What a study promises: tables, the law (or why there is none), QC, and training curves
    when it trains anything (an evaluation-only study has none to plot)."""
    targets = [
        f"{RESULTS}/tables/accuracy.csv",
        f"{RESULTS}/tables/law.md",
        f"{RESULTS}/tables/qc.csv",
        f"{RESULTS}/plots/scaling.png",
    ]
    if trained_runs():
        targets.append(f"{RESULTS}/plots/training.png")
    return targets


def local_hardware_errors():
    """Before the first job of a run on this machine (not a cluster executor, not --touch):
    settings whose jobs need a GPU, for the jobs about to run, when this machine has none
    (configcheck.gpu_job_errors).
    """
    plugin = workflow.executor_plugin
    if plugin is None or plugin.common_settings.non_local_exec:
        return []
    # --touch only marks outputs up to date: nothing runs
    if getattr(workflow, "touch", False):
        return []
    try:
        jobs = [
            (j.rule.name, dict(j.wildcards_dict)) for j in workflow.dag.needrun_jobs()
        ]
    except (
        AttributeError
    ):  # Snakemake's DAG API moved: check every job the study can have
        jobs = [
            (r, {"model": m, "lang": "any"})
            for r in GPU_RULES
            for m in config["models"]
        ]
    return configcheck.gpu_job_errors(config, jobs, configcheck.has_gpu())


def settle_running_jobs():
    """Before the first job of a run that executes jobs (not in a job's own Snakemake, not
    --touch): wait for, or refuse over, the jobs of this study in this directory that a killed run
    left running; then record this run's SLURM run id as this study's (running_jobs.record_run).
    """
    plugin = workflow.executor_plugin
    if (
        plugin is None
        or not workflow.is_main_process
        or getattr(workflow, "touch", False)
    ):
        return
    slurm = plugin.common_settings.non_local_exec and "slurm" in str(
        getattr(plugin, "name", "")
    )
    try:
        running_jobs.settle(os.getcwd(), slurm=slurm, study=STUDY)
    except running_jobs.RunningJobsError as exc:
        stop(exc)
    run_id = getattr(
        getattr(getattr(workflow, "scheduler", None), "_executor", None),
        "run_uuid",
        None,
    )
    if slurm and run_id:
        running_jobs.record_run(os.getcwd(), str(run_id), STUDY)


def cluster_errors():
    """Before the first submission of a run on a cluster executor (not a dry run, not --touch):
    the problems parallel_scaling.plan.submission finds in the resources of the jobs about to be
    submitted (local rules excluded), naming the profile line to edit."""
    plugin = workflow.executor_plugin
    if plugin is None or not plugin.common_settings.non_local_exec:
        return []
    from parallel_scaling.plan import slurm_profile, submission

    jobs = [
        (j.rule.name, dict(j.wildcards_dict), dict(j.resources.items()))
        for j in workflow.dag.needrun_jobs()
        if not j.is_local
    ]
    if not jobs:
        return []
    return submission.submission_errors(
        config, jobs, slurm_profile.profile_file(), slurm_profile.cluster_partitions()
    )


def submission_dry_run():
    """A dry run (-n) started with a profile that submits to a cluster (its `executor`)."""
    from parallel_scaling.plan import slurm_profile, submission

    if not submission.dry_run_requested(sys.argv[1:]):
        return False
    profile = slurm_profile.profile_file()
    return profile is not None and slurm_profile.executor(profile) not in (
        None,
        "local",
        "dryrun",
    )


def dry_run_refusals():
    from parallel_scaling.plan import slurm_profile, submission

    return submission.dry_run_errors(config, slurm_profile.profile_file())


# A dry run through a cluster profile (`snakemake -n --profile slurm`) says what the real
# submission would refuse (the onstart check below does not run in dry runs).
if workflow.is_main_process and submission_dry_run():
    _refused = dry_run_refusals()
    if _refused:
        print(
            "\n  ".join(
                [
                    "warning: a submission of this study through the SLURM profile would be refused:",
                    *_refused,
                ]
            ),
            file=sys.stderr,
        )


def failure_summary(snakemake_log):
    """Print and keep the report of parallel_scaling.jobs.failures for the jobs that failed
    (Snakemake's failed jobs; else the `Error in rule` blocks of its log)."""
    scheduler = getattr(workflow, "scheduler", None)
    failed = failures.from_snakemake(list(getattr(scheduler, "failed", ()) or ()))
    slurm = (
        getattr(workflow.executor_settings, "logdir", None)
        if workflow.non_local_exec
        else None
    )
    text = failures.report(failed, str(slurm) if slurm else None)
    if text:
        failures.write_report(text, f"{LOGS}/failed.txt")
        print(f"\n{text}\n(kept in {LOGS}/failed.txt)", file=sys.stderr)
        return
    text = failures.summary(snakemake_log)
    if text:
        print(text, file=sys.stderr)


GPU_RULES = ("translate", "build_init_model", "train_grpo", "train_sft", "predict")


def mixture_priority(wildcards):
    """Scheduling priority of a training job: its mixture's number of languages."""
    return len(study.mixture(config, wildcards.mixture).langs)


def mixture_inputs(wildcards):
    mix = study.mixture(config, wildcards.mixture)
    return {
        "english": f"{RESULTS}/data/parallel/train/{EN}.jsonl",
        "parallel": [
            f"{RESULTS}/data/parallel/train/{lg}.jsonl" for lg in mix.langs if lg != EN
        ],
    }


def mixture_flags(wildcards):
    return (
        "" if EN in study.mixture(config, wildcards.mixture).langs else "--no-english"
    )


def built_here(model):
    return config["models"][model]["source"] == "tiny"


def init_model_input(wildcards):
    """The initial model directory when it is built by this workflow (a declared output)."""
    return [model_path(wildcards.model)] if built_here(wildcards.model) else []


def given_model(path):
    """A model not built here (local directory or hub id) as a param: names, sizes and times of
    a local directory's files, so that replacing them reruns what was computed from them.
    """
    return integrity.fingerprint(path) if path else None


def init_model_param(wildcards):
    m = config["models"][wildcards.model]
    return None if built_here(wildcards.model) else given_model(m["path"])


def prompts_of(wildcards):
    """The text of the model's prompt set (not its name): editing it reruns its users only."""
    return prompt_set(config["models"][wildcards.model]["prompt_set"])


def output_state(pattern):
    """A param for the producer of a model or predictions directory, its rebuild token
    (parallel_scaling.jobs.integrity.state). It changes when a file of the directory was deleted or
    changed, or the directory is gone while its manifest remains; the job then reruns.
    """

    def fn(wildcards):
        path = pattern.format(**wildcards)
        token, problems = integrity.state(path)
        if problems:
            print(
                f"{path} differs from what its job wrote and will be rebuilt: "
                + "; ".join(problems[:3]),
                file=sys.stderr,
            )
        return token

    return fn


def bench_file(b, lang):
    if config["benchmarks"][b].get("kind") == "synthetic":
        return f"{RESULTS}/data/translated/test/{lang}.jsonl"
    return f"{RESULTS}/benchmarks/{b}/{lang}.jsonl"


def _run(wc):
    return study.Run(wc.model, wc.paradigm, wc.mixture, int(wc.seed))


def checkpoint_of(wc):
    if wc.paradigm == "init":
        return model_path(wc.model)
    if wc.paradigm == "public":
        return config["models"][wc.model]["trained"]
    return checkpoint_dir(wc.model, wc.paradigm, wc.mixture, wc.seed)


def bench_manifest(b):
    return f"{RESULTS}/benchmarks/{b}.manifest.json"


def predict_inputs(wc):
    part = predict_part(wc)
    benches = [b for b in config["benchmarks"] if any(b == f for f, _ in part.files)]
    files = {"bench": [bench_manifest(b) for b in benches]}
    if wc.paradigm in ("grpo", "sft") or (
        wc.paradigm == "init" and built_here(wc.model)
    ):
        files["model"] = checkpoint_of(wc)
    return files


def predict_model_param(wc):
    """A model that is not a declared input (pretrained or public) by its fingerprint."""
    if wc.paradigm in ("grpo", "sft") or (
        wc.paradigm == "init" and built_here(wc.model)
    ):
        return None
    return given_model(checkpoint_of(wc))


def predict_args(wc):
    part = predict_part(wc)
    args = " ".join(f"--input {b} {lg} {bench_file(b, lg)}" for b, lg in part.files)
    return args + (f" --shard {part.shard[0]} {part.shard[1]}" if part.shard else "")


def archive_flags():
    """The study's archive section as command-line flags (unset values left out)."""
    a = config["archive"]
    flags = []
    for key in (
        "license",
        "agent",
        "agent_id",
        "organization",
        "organization_id",
        "weights",
    ):
        if a.get(key):
            flags += [f"--{key.replace('_', '-')}", str(a[key])]
    return shlex.join(flags)
