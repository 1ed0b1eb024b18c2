"""Command ``cost-plan``: estimate GPU-hours and tokens per rule before launching a study.

    python -m parallel_scaling cost-plan --configfile configs/parallel_paper.yaml [--gpu h100]
        [--config KEY=VALUE ...] [--throughput-file workflow/resources/gpu_throughput.yaml] [--json] [--measured [benchmarks]]

The estimate follows the DAG's shape (``parallel_scaling.plan.study``: mixtures, runs, benchmark x language
pairs) and the validated config (schema defaults applied exactly as the workflow applies them), and
multiplies token counts by per-GPU throughput figures from ``workflow/resources/gpu_throughput.yaml``
(all of them assumptions: the formulas are documented at the top of that file). GPU-hours are per GPU,
so for training they do not depend on how many GPUs a job is spread over (perfect scaling is
assumed); a prediction job adds its start-up and loses a share to tensor parallelism (the
``prediction`` section of that file). Prediction jobs are counted as the workflow plans them
(:mod:`parallel_scaling.plan.prediction_jobs`: split to fit ``prediction_jobs.max_hours``, each
checkpoint once), with the answer lengths printed beside the table: measured
(``prediction_jobs.answer_lengths``) or a stated assumption. ``--config KEY=VALUE`` overrides keys
as ``snakemake --config`` does.

GPUs per job come from the study's ``gpus`` section through ``study.gpus`` -- the numbers the rules
request and the training launcher turns into processes. Before the estimate is of any use, the
**pre-flight** checks that each GPU job fits in the chosen GPU's memory: model weights, training
state (sharded by ZeRO-3 over the job's GPUs), and vLLM's KV cache for its context length inside its
memory share (``gpu_memory_utilization``). A job that cannot fit is printed as ``DOES NOT FIT`` with
the config keys to change, and the command exits with status 1.

``--measured DIR`` adds the seconds Snakemake measured per rule (``benchmark:`` files, column ``s``)
next to the estimate, e.g. for the tiny default study on a CPU:
``cost-plan --gpu cpu --measured benchmarks``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from parallel_scaling.dataio.paths import SCHEMA_FILE

from parallel_scaling.plan import prediction_jobs, real_models, slurm_profile, study
from parallel_scaling.plan.memory import format_preflight, preflight
from parallel_scaling.plan.training_cost import (  # noqa: F401
    _add, _zero, mixture_rows, optimizer_steps, plan_build, plan_grpo, plan_sft)
from parallel_scaling.plan.throughput import (  # noqa: F401 (cost_plan.<name> kept for its users)
    THROUGHPUT, _params, benchmark_size, decode_tps, flops_seconds, gpu_figures, load_throughput,
    question_tokens, source_rows)
from parallel_scaling.plan.study import synthetic_benchmarks, test_split_languages  # noqa: F401

SCHEMA = SCHEMA_FILE

#: rules that can run on GPUs, in DAG order (GPUs per job: study.gpus)
GPU_RULES = study.GPU_RULES
LLM_BACKENDS = study.LLM_BACKENDS


# --------------------------------------------------------------------------------------------------
# config


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--config key=value`` items as Snakemake reads them (a value in YAML flow style), typed inside
    lists and mappings as the workflow types them (study.typed_overrides)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--config {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return study.typed_overrides(out)


def load_config(configfiles: Sequence[str | Path], schema: str | Path = SCHEMA,
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge the config files in order and apply the schema's defaults, as workflow/rules/common.smk
    does, so the plan sees the workflow's values; a config the workflow would refuse is refused
    here with the same one-line messages (parallel_scaling.plan.check_config)."""
    from parallel_scaling.plan import check_config as configcheck

    for path in configfiles:
        if not Path(path).is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
    config, origins = configcheck.load_study(configfiles, overrides)
    given = real_models.given_keys(config)
    errors = configcheck.schema_errors(config, schema, origins)
    if not errors:
        # a real model's size from its config.json; tiny defaults a real model would inherit
        errors = [origins.where(e.split(":", 1)[0].split(".")) + e
                  for e in real_models.problems(config, lambda path: tuple(path) in given)]
    if not errors:  # per-model prediction settings against each model's shape
        from parallel_scaling.plan import model_settings

        errors = [origins.where(e.split(":", 1)[0].split(".")) + e for e in model_settings.problems(config)]
    if errors:
        raise configcheck.ConfigError(configcheck.report(errors, [str(p) for p in configfiles]))
    return config


# --------------------------------------------------------------------------------------------------
# the DAG's shape


def job_counts(config: Mapping[str, Any]) -> dict[str, int]:
    """Jobs per rule of a fresh run of the whole DAG (the cost-relevant rules plus the light ones)."""
    runs = study.runs(config)
    predict_parts = prediction_jobs.study_parts(config)
    trained = [r for r in runs if r.paradigm in ("grpo", "sft")]
    file_benches = [(b, lg) for b, lg in study.bench_lang_pairs(config)
                    if config["benchmarks"][b].get("kind") != "synthetic"]
    mixtures_used = {r.mixture for r in trained}
    test_langs = test_split_languages(config)
    en = study.ENGLISH
    return {
        "source": 1 + (1 if test_langs else 0),
        "copy_english": int(en in study.translated_languages(config)) + int(en in test_langs),
        "translate": len([lg for lg in study.translated_languages(config) if lg != en])
        + len([lg for lg in test_langs if lg != en]),
        "qc": len(study.translated_languages(config)),
        "mixture": len(mixtures_used),
        "benchmark": len(file_benches),
        "build_init_model": sum(1 for m in config["models"].values() if m["source"] == "tiny"),
        "train_grpo": sum(1 for r in trained if r.paradigm == "grpo"),
        "train_sft": sum(1 for r in trained if r.paradigm == "sft"),
        "predict": sum(len(parts) for parts in predict_parts.values()),
        "reuse_predictions": len(runs) - len(predict_parts),  # runs without jobs of their own
        "score": len(runs),
    }


# --------------------------------------------------------------------------------------------------
# token counts and seconds


#: the wildcards that name one job of each GPU rule, in the order of its log path
JOB_WILDCARDS = {
    "translate": ("split", "lang"),
    "build_init_model": ("model",),
    "train_grpo": ("model", "mixture", "seed"),
    "train_sft": ("model", "mixture", "seed"),
    "predict": ("model", "paradigm", "mixture", "seed"),
}


def job_label(rule: str, wildcards: Mapping[str, Any]) -> str:
    """One job's name as in its log path (``logs/<study>/<rule>/<label>.log``), e.g. ``qwen/k3/s0``
    for a GRPO run, ``qwen/init/init/s0.parts/math500_x`` for a part of a split prediction: how
    cost-plan and the workflow's time-limit check refer to the same job."""
    parts = [("s" if k == "seed" else "") + str(wildcards[k]) for k in JOB_WILDCARDS[rule]]
    return "/".join(parts) + (str(wildcards.get("part") or "") if rule == "predict" else "")


def plan_translate(config, throughput, fig) -> dict[str, float]:
    row = _zero()
    tr = config["translation"]
    en = study.ENGLISH
    tok = throughput["tokens"]
    jobs = [("train", lg) for lg in study.translated_languages(config) if lg != en]
    jobs += [("test", lg) for lg in test_split_languages(config) if lg != en]
    row["jobs"] = len(jobs)  # English is copied by copy_english, a local rule
    if tr["backend"] not in LLM_BACKENDS:
        return row  # template / import: no model runs
    path = tr["model"].get("path") or ""
    hit = re.search(r"(\d+(?:\.\d+)?)[bB](?![a-zA-Z])", path)
    size_b = float(hit.group(1)) if hit else float(throughput.get("translation_model_size_b", 7.0))
    per_field = {"question": tok["question_tokens"], "solution": tok["solution_tokens"]}
    for split, lg in jobs:
        n = source_rows(config, throughput, split)
        for field in tr["fields"]:
            src = per_field[field]
            out = min(src * tok["translation_output_ratio"], tr["model"]["max_new_tokens"])
            prompt = n * (src + tok["translation_overhead_tokens"])
            gen = n * out
            secs = gen / decode_tps(fig, size_b) + flops_seconds(prompt * 2 * _params(size_b), fig, "prefill_mfu")
            _add(row, f"{split}/{lg}", gen_tokens=gen, prompt_tokens=prompt, gpu_seconds=secs)
    return row


def plan_predict(config, throughput, fig) -> dict[str, float]:
    """Prediction jobs as the workflow plans them (parallel_scaling.plan.prediction_jobs: a
    checkpoint's files split into parts that fit prediction_jobs.max_hours), each estimated on
    ``fig``'s GPU with its start-up and tensor parallelism, and the answer lengths assumed."""
    row = _zero()
    row["job_gpus"], row["answer_lengths"] = {}, {}
    table = prediction_jobs.length_table(config)
    cache: dict = {}  # each model's settings and shapes, read once
    reused = prediction_jobs.duplicates(config, throughput, cache)
    for run in study.runs(config):
        if run.path in reused:  # the same checkpoint and settings as another run: predicted once
            continue
        size_b = float(config["models"][run.model]["size_b"])
        gpus = prediction_jobs.job_gpus(config, run, throughput, cache)
        costs = prediction_jobs.file_costs(config, throughput, fig, run, table, cache)
        for c in costs:  # per source of the figure: files and the sum of their mean answer tokens
            seen = row["answer_lengths"].setdefault(c.answer_source, [0, 0.0])
            seen[0] += 1
            seen[1] += c.answer_tokens
        for part in prediction_jobs.run_parts(config, run, throughput, table, cache):
            files = set(part.files)
            mine = [c for c in costs if (c.benchmark, c.lang) in files]
            wall = prediction_jobs.wall_seconds(costs, part, throughput, size_b, gpus)
            label = run.path + part.wildcard
            row["job_gpus"][label] = gpus
            _add(row, label, jobs=1, gen_tokens=sum(c.gen_tokens for c in mine) * part.share(),
                 prompt_tokens=sum(c.prompt_tokens for c in mine) * part.share(), gpu_seconds=wall * max(gpus, 1))
    return row


def rule_plans(config: Mapping[str, Any], throughput: Mapping[str, Any], gpu: str = "h100") -> dict[str, Any]:
    """Per GPU rule: jobs, tokens, GPU-hours and each job's hours on its GPUs (no pre-flight)."""
    fig = gpu_figures(throughput, gpu)
    rules = {
        "translate": plan_translate(config, throughput, fig),
        "build_init_model": plan_build(config, throughput, fig),
        "train_grpo": plan_grpo(config, throughput, fig),
        "train_sft": plan_sft(config, throughput, fig),
        "predict": plan_predict(config, throughput, fig),
    }
    for name, row in rules.items():
        row["gpus_per_job"] = study.gpus(config, name)
        row["gpu_hours"] = row["gpu_seconds"] / 3600
        # wall-clock hours of each job on its GPUs (perfect scaling over them, as for GPU-hours)
        per_job = row.get("job_gpus") or {}
        row["job_hours"] = {job: s / 3600 / max(per_job.get(job, row["gpus_per_job"]), 1)
                            for job, s in row["job_seconds"].items()}
        row["longest_job_hours"] = max(row["job_hours"].values(), default=0.0)
        row["tokens"] = row["gen_tokens"] + row["prompt_tokens"] + row["train_tokens"]
    return rules


def plan(config: Mapping[str, Any], throughput: Mapping[str, Any], gpu: str = "h100") -> dict[str, Any]:
    """The cost plan: per GPU rule jobs, tokens and GPU-hours, the total, and the job counts."""
    fig = gpu_figures(throughput, gpu)
    rules = rule_plans(config, throughput, gpu)
    total = _zero()
    for row in rules.values():
        _add(total, **{k: row[k] for k in ("jobs", "gen_tokens", "prompt_tokens", "train_tokens", "gpu_seconds")})
    total["gpu_hours"] = total["gpu_seconds"] / 3600
    total["tokens"] = total["gen_tokens"] + total["prompt_tokens"] + total["train_tokens"]
    for row in (*rules.values(), total):
        row["jobs"] = int(row["jobs"])
    return {"study": config.get("study"), "gpu": gpu, "gpu_figures": fig, "rules": rules, "total": total,
            "job_counts": job_counts(config), "preflight": preflight(config, throughput, gpu),
            "optimizer_steps": optimizer_steps(config)}


# --------------------------------------------------------------------------------------------------
# time limits


def time_limits(result: Mapping[str, Any], profile: slurm_profile.Profile) -> list[dict[str, Any]]:
    """Per GPU rule with jobs: the longest job's estimated hours on its GPUs against the runtime the
    SLURM profile gives the rule (set-resources, else default-resources), and the jobs over it."""
    rows = []
    for rule, row in result["rules"].items():
        if not row["job_hours"]:
            continue
        setting = profile.setting(rule, "runtime")
        limit = slurm_profile.runtime_minutes(setting.value) if setting else None
        over = [] if limit is None else [j for j, h in row["job_hours"].items() if h * 60 > limit]
        rows.append({"rule": rule, "jobs": len(row["job_hours"]), "gpus_per_job": row["gpus_per_job"],
                     "longest_job_hours": row["longest_job_hours"], "runtime_minutes": limit,
                     "runtime": None if setting is None else setting.value,
                     "where": None if setting is None else setting.where(), "over": over})
    return rows


def time_limit_errors(result: Mapping[str, Any], profile: slurm_profile.Profile) -> list[str]:
    """The messages of slurm_profile.time_limit_errors for every planned job over its runtime."""
    jobs = []
    for rule, row in result["rules"].items():
        setting = profile.setting(rule, "runtime")
        for label, hours in row["job_hours"].items():
            jobs.append((rule, label, hours, {"runtime": None if setting is None else setting.value}))
    return slurm_profile.time_limit_errors(jobs, profile, result["gpu"])


def format_time_limits(rows: Sequence[Mapping[str, Any]], profile_file: str) -> list[str]:
    lines = ["", f"time limits: estimated hours of each job on its GPUs against the runtime {profile_file} gives it"]
    for r in rows:
        limit = "no runtime" if r["runtime_minutes"] is None else f"runtime {r['runtime_minutes'] / 60:.4g} h"
        status = (f"OVER ({len(r['over'])} job(s); edit {r['where']})" if r["over"]
                  else "ok" if r["runtime_minutes"] is not None else "not checked")
        lines.append(f"  {r['rule']:<17} {r['jobs']:>5} jobs  longest {r['longest_job_hours']:8.2f} h on "
                     f"{r['gpus_per_job']} GPU(s)  {limit:<16} {status}")
    return lines


# --------------------------------------------------------------------------------------------------
# measured seconds


def compare_measured(bench_dir: str | Path) -> dict[str, dict[str, float]]:
    """Sum the seconds Snakemake measured per rule: ``<bench_dir>/<rule>/**/*.tsv`` (``benchmark:``
    files; column ``s`` = wall-clock seconds of the job). {} when the folder does not exist."""
    bench_dir = Path(bench_dir)
    out: dict[str, dict[str, float]] = {}
    if not bench_dir.is_dir():
        return out
    for f in sorted(bench_dir.rglob("*.tsv")):
        rule = f.relative_to(bench_dir).parts[0]
        with f.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        secs = sum(float(r["s"]) for r in rows if r.get("s") not in (None, "", "NA"))
        entry = out.setdefault(rule, {"jobs": 0, "s": 0.0})
        entry["jobs"] += 1
        entry["s"] += secs
    return out


# --------------------------------------------------------------------------------------------------
# output


def _human(x: float) -> str:
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def format_table(result: Mapping[str, Any], measured: Mapping[str, Mapping[str, float]] | None = None) -> str:
    head = ["rule", "jobs", "GPUs/job", "gen tok", "prompt tok", "train tok", "GPU-hours"]
    if measured is not None:
        head += ["est. s", "measured s"]
    lines = [f"cost plan: study {result['study']!r} on {result['gpu']} (figures: assumptions, see "
             f"workflow/resources/gpu_throughput.yaml)"]
    rows = []
    for name, row in [*result["rules"].items(), ("total", result["total"])]:
        cells = [name, str(row["jobs"]), "" if name == "total" else str(row["gpus_per_job"]),
                 _human(row["gen_tokens"]), _human(row["prompt_tokens"]),
                 _human(row["train_tokens"]), f"{row['gpu_hours']:.4g}"]
        if measured is not None:
            meas = (sum(v["s"] for k, v in measured.items() if k in result["rules"]) if name == "total"
                    else measured.get(name, {}).get("s"))
            cells += [f"{row['gpu_seconds']:.1f}", "-" if meas is None else f"{meas:.1f}"]
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    lines += [fmt(head), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows[:-1]]
    lines += ["  ".join("-" * w for w in widths), fmt(rows[-1])]
    counts = result["job_counts"]
    lines.append("jobs of the other rules: " + ", ".join(f"{k} {v}" for k, v in counts.items()
                                                        if k not in result["rules"]))
    for paradigm, steps in (result.get("optimizer_steps") or {}).items():
        lines.append(f"optimizer steps per {paradigm} run: " + ", ".join(f"{m} {n}" for m, n in steps.items()))
    lines += format_answer_lengths(result["rules"]["predict"])
    lines += format_preflight(result["gpu"], result.get("preflight"))
    return "\n".join(lines)


def format_answer_lengths(row: Mapping[str, Any]) -> list[str]:
    """Where the prediction estimate's answer lengths come from: measured (the table's rows) or
    assumed (a fraction of max_new_tokens), with the mean over the files each covers."""
    seen = row.get("answer_lengths") or {}
    if not seen:
        return []
    lines = ["answer lengths of the prediction estimate (completion tokens per answer; "
             "prediction_jobs.answer_lengths gives measured ones):"]
    for source, (files, total) in sorted(seen.items()):
        lines.append(f"  {files:>5} checkpoint x benchmark x language file(s): mean {total / files:,.0f} tokens, {source}")
    split = [job for job in row["job_hours"] if prediction_jobs.PARTS in job]
    if split:
        whole = {job.split(prediction_jobs.PARTS)[0] for job in split}
        lines.append(f"prediction jobs: {len(whole)} checkpoint(s) split into {len(split)} part(s) to fit "
                     f"prediction_jobs.max_hours (on prediction_jobs.gpu; parallel_scaling/plan/prediction_jobs.py)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="parallel_scaling cost-plan", description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", nargs="+", action="extend", default=None,
                    help="config file(s), merged in order (default: config.yaml)")
    ap.add_argument("--config", nargs="+", action="extend", default=None, metavar="KEY=VALUE",
                    help="override keys as snakemake --config does: a mapping is merged into the study's "
                         "(e.g. 'prediction={n: 8}'), any other value replaces it")
    ap.add_argument("--gpu", default="h100", help="GPU type from the throughput file (h100, h200, a100, l40s, cpu)")
    ap.add_argument("--throughput-file", default=str(THROUGHPUT), help="throughput and size assumptions (YAML)")
    ap.add_argument("--json", action="store_true", help="print the plan as JSON")
    ap.add_argument("--profile", default="slurm", metavar="DIR",
                    help="SLURM profile whose runtime per rule each job's hours are compared with "
                         "(default: slurm, when that folder exists here; none: no comparison)"),
    ap.add_argument("--measured", nargs="?", const="benchmarks", default=None, metavar="DIR",
                    help="add the seconds measured per rule in DIR (Snakemake benchmark files; default benchmarks)")
    args = ap.parse_args(argv)
    config = load_config(args.configfile or ["config.yaml"], overrides=parse_overrides(args.config or []))
    result = plan(config, load_throughput(args.throughput_file), args.gpu)
    measured = compare_measured(args.measured) if args.measured is not None else None
    profile = None
    if args.profile != "none" and (Path(args.profile).exists() or args.profile != "slurm"):
        profile = slurm_profile.load_profile(args.profile)
    limits = time_limits(result, profile) if profile else None
    if args.json:
        out = dict(result)
        if measured is not None:
            out["measured"] = measured
        if limits is not None:
            out["time_limits"] = limits
        json.dump(out, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(format_table(result, measured))
        if limits is not None:
            print("\n".join(format_time_limits(limits, profile.file)))
    status = 0
    for message in time_limit_errors(result, profile) if profile else []:
        print(f"error [cost-plan]: {message}", file=sys.stderr)
        status = 1
    misfits = [c for c in result["preflight"]["checks"] if not c["fits"]]
    if misfits:
        print(f"error [cost-plan]: {len(misfits)} GPU job configuration(s) do not fit on {args.gpu}: "
              + "; ".join(f"{c['rule']} {c['model']} {c['what']} (change {', '.join(c['keys'])})" for c in misfits),
              file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
