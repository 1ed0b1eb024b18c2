"""The checks made after Snakemake has planned a run on a cluster and before its first submission
(``onstart`` in workflow/rules/common.smk): site placeholders and unknown partitions in the jobs'
resources, and jobs whose estimated hours exceed their ``runtime``. Each message names the profile
line to edit (parallel_scaling.plan.slurm_profile); none of them costs a queued job to find out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from parallel_scaling.plan import cost_plan, slurm_profile

#: the GPU type a job's hours are estimated for when its resources name none the throughput file
#: knows (``gpu_model`` in the profile): cost-plan's default
DEFAULT_GPU = "h100"


def submission_errors(config: Mapping[str, Any],
                      jobs: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]],
                      profile_dir: str | Path | None,
                      partitions: set[str] | None) -> list[str]:
    """Problems of the jobs about to be submitted: ``jobs`` are (rule, wildcards, resources) of the
    jobs that do not run locally; ``partitions`` what ``sinfo`` lists (None: not checked)."""
    jobs = [(rule, dict(wc), dict(res)) for rule, wc, res in jobs]
    profile = None
    if profile_dir is not None:
        try:
            profile = slurm_profile.load_profile(profile_dir)
        except (OSError, ValueError):
            profile = None
    resources = [(rule, res) for rule, _wc, res in jobs]
    errors = slurm_profile.placeholder_errors(resources, profile)
    errors += slurm_profile.partition_errors(resources, partitions, profile)
    errors += time_limit_errors(config, jobs, profile)
    return errors


def time_limit_errors(config: Mapping[str, Any],
                      jobs: list[tuple[str, dict[str, Any], dict[str, Any]]],
                      profile: slurm_profile.Profile | None) -> list[str]:
    """Jobs of the GPU rules whose cost-plan estimate on their GPU type exceeds their runtime."""
    throughput = cost_plan.load_throughput()
    by_gpu: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = {}
    for rule, wc, res in jobs:
        if rule not in cost_plan.JOB_WILDCARDS:
            continue
        model = str(res.get("gpu_model") or "").lower()
        by_gpu.setdefault(model if model in throughput["gpus"] else DEFAULT_GPU, []).append((rule, wc, res))
    errors = []
    for gpu, group in by_gpu.items():
        rules = cost_plan.rule_plans(config, throughput, gpu)
        timed = []
        for rule, wc, res in group:
            hours = rules[rule]["job_hours"].get(cost_plan.job_label(rule, wc))
            if hours is not None:
                timed.append((rule, cost_plan.job_label(rule, wc), hours, res))
        errors += slurm_profile.time_limit_errors(timed, profile, gpu)
    return errors


def dry_run_errors(config: Mapping[str, Any], profile_dir: str | Path) -> list[str]:
    """What a submission of the whole study through ``profile_dir`` would refuse, for a dry run
    (``snakemake -n --profile slurm``), which plans but never reaches the ``onstart`` check: site
    placeholders in the resources the study's rules get, and planned GPU jobs estimated over their
    runtime. Every job of the study is counted, finished or not (a dry run's own list of jobs is not
    known while the Snakefile is parsed)."""
    try:
        profile = slurm_profile.load_profile(profile_dir)
    except (OSError, ValueError):
        return []
    counts = cost_plan.job_counts(config)
    throughput = cost_plan.load_throughput()
    rules = [r for r, n in counts.items() if n]

    def resources(rule: str) -> dict[str, Any]:
        return {k: s.value for k, s in {**profile.defaults, **profile.per_rule.get(rule, {})}.items()}

    errors = slurm_profile.placeholder_errors([(r, resources(r)) for r in rules], profile)
    by_gpu: dict[str, list[str]] = {}
    for rule in cost_plan.GPU_RULES:
        model = str(resources(rule).get("gpu_model") or "").lower()
        by_gpu.setdefault(model if model in throughput["gpus"] else DEFAULT_GPU, []).append(rule)
    for gpu, names in by_gpu.items():
        plans = cost_plan.rule_plans(config, throughput, gpu)
        timed = [(rule, label, hours, resources(rule)) for rule in names
                 for label, hours in plans[rule]["job_hours"].items()]
        errors += slurm_profile.time_limit_errors(timed, profile, gpu)
    return errors


def dry_run_requested(argv: list[str]) -> bool:
    """Whether Snakemake was started for a dry run (``-n``, ``--dry-run``, ``--dryrun``, or ``n`` in
    a group of short flags such as ``-np``)."""
    return any(a in ("--dry-run", "--dryrun") or (len(a) > 1 and a[0] == "-" and a[1] != "-" and a[1:].isalpha()
                                                   and "n" in a[1:]) for a in argv)
