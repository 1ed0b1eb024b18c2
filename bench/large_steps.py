#!/usr/bin/env python3
"""CPU time of the workflow's own steps that grow with a study's size, called in-process on the jobs
of a study config (bench/large_study.py writes one), so that each is timed without Snakemake:

* ``onstart`` (workflow/rules/common.smk), before the first job: ``gpu_job_errors`` for a local run,
  ``submission_errors`` (site placeholders, partitions, time limits) for a run on SLURM, over every
  job that would be submitted, with slurm/config.yaml's resources;
* ``onerror``: the failure report (``failures.report`` from Snakemake's failed jobs, and
  ``failures.summary`` from its log) with every GPU job failed, the worst case;
* the archive: ``dag.parse_summary`` of a ``snakemake --summary`` table of the study's outputs, and
  ``members.collect_members`` (which files to pack) over results and logs trees laid out as the
  study's jobs write them (``--files-per-run`` empty files per prediction folder), written under
  ``--tree`` first (not timed).

    python bench/large_steps.py /tmp/large_10000.yaml --tree /tmp/tree10k [--files-per-run 44]

Prints one line per step: CPU seconds (process time) and wall seconds. No GPU or network.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from parallel_scaling.archive import dag as archive_dag  # noqa: E402
from parallel_scaling.archive import members as archive_members  # noqa: E402
from parallel_scaling.jobs import failures  # noqa: E402
from parallel_scaling.plan import check_config, cost_plan, slurm_profile, study, submission  # noqa: E402


def timed(label: str, fn: Callable[[], Any]) -> Any:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    print(f"{label:<44} {time.process_time() - cpu:8.2f} CPU-s {time.perf_counter() - wall:8.2f} s wall",
          flush=True)
    return out


def gpu_jobs(config: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job of the GPU rules, as Snakemake's DAG would list them."""
    jobs: list[tuple[str, dict[str, str]]] = []
    if study.gpus(config, "translate"):
        jobs += [("translate", {"split": "train", "lang": lg})
                 for lg in study.translated_languages(config) if lg != study.ENGLISH]
    for run in study.runs(config):
        wc = {"model": run.model, "paradigm": run.paradigm, "mixture": run.mixture, "seed": str(run.seed)}
        if run.paradigm in ("grpo", "sft"):
            jobs.append((f"train_{run.paradigm}", {k: wc[k] for k in ("model", "mixture", "seed")}))
        jobs.append(("predict", wc))
    return jobs


def resources(profile: slurm_profile.Profile, rule: str) -> dict[str, Any]:
    res = {k: s.value for k, s in profile.defaults.items()}
    res.update({k: s.value for k, s in profile.per_rule.get(rule, {}).items()})
    return res


class FakeJob:
    """What failures.from_snakemake reads of a Snakemake job."""

    def __init__(self, rule: str, wildcards: dict[str, str], log: list[str]) -> None:
        self.rule = type("Rule", (), {"name": rule})()
        self.wildcards_dict = wildcards
        self.log = log


def log_of(study_name: str, rule: str, wc: dict[str, str]) -> str:
    return f"logs/{study_name}/{rule}/{'/'.join(wc.values())}.log"


def write_tree(root: Path, config: dict[str, Any], files_per_run: int) -> list[tuple[str, list[str], list[str]]]:
    """Results and logs of the study's runs as empty files; returns (rule, outputs, logs) per job."""
    name = config["study"]
    jobs: list[tuple[str, list[str], list[str]]] = []
    pairs = study.bench_lang_pairs(config)[:files_per_run]
    for run in study.runs(config):
        wc = {"model": run.model, "paradigm": run.paradigm, "mixture": run.mixture, "seed": f"s{run.seed}"}
        rel = run.path
        if run.paradigm in ("grpo", "sft"):
            ckpt = f"results/{name}/checkpoints/{rel}"
            logs = [f"logs/{name}/train_{run.paradigm}/{run.model}/{run.mixture}/s{run.seed}.{s}"
                    for s in ("log", "prov.json", "metrics.jsonl")]
            jobs.append((f"train_{run.paradigm}", [ckpt, f"{ckpt}.manifest.json"], logs))
        pred = f"results/{name}/predictions/{rel}"
        jobs.append(("predict", [pred, f"{pred}.manifest.json"],
                     [f"logs/{name}/predict/{rel}.{s}" for s in ("log", "prov.json")]))
        scored = f"results/{name}/scored/{rel}"
        jobs.append(("score", [f"{scored}/scored.jsonl", f"{scored}/_summary.csv"],
                     [f"logs/{name}/score/{rel}.{s}" for s in ("log", "prov.json")]))
    if not (root / "results").is_dir():
        for rule, outs, logs in jobs:
            files: list[str] = []
            for out in outs:
                path = root / out
                if "." in path.name:
                    files.append(out)
                elif rule == "predict":
                    files += [f"{out}/{b}/{lg}.jsonl" for b, lg in pairs]
                else:
                    files.append(f"{out}/model.safetensors")
            for rel in files:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text("{}\n" if rel.endswith(".json") else "")
            # the job's provenance record lists what it wrote, as a real one does
            record = {"command": rule, "start_time": "2026-01-01T00:00:00+00:00", "status": "ok",
                      "cwd": str(root), "outputs": [{"path": rel} for rel in files]}
            for log in logs:
                (root / log).parent.mkdir(parents=True, exist_ok=True)
                (root / log).write_text(json.dumps(record) if log.endswith(".prov.json") else "")
    return jobs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--tree", type=Path, help="where to lay out results/ and logs/ for the archive steps")
    ap.add_argument("--files-per-run", type=int, default=44, help="prediction files per run (default 44)")
    args = ap.parse_args(argv)
    config = cost_plan.load_config([args.config])
    jobs = gpu_jobs(config)
    print(f"{args.config}: {len(study.runs(config))} runs, {len(jobs)} GPU jobs")
    timed("onstart, local: gpu_job_errors", lambda: check_config.gpu_job_errors(config, jobs, False))
    profile = slurm_profile.load_profile(REPO / "slurm")
    with_res = [(rule, wc, resources(profile, rule)) for rule, wc in jobs]
    timed("onstart, SLURM: submission_errors", lambda: submission.submission_errors(
        config, with_res, REPO / "slurm", {"cpu", "gpu"}))
    failed = [FakeJob(rule, wc, [log_of(config["study"], rule, wc)]) for rule, wc in jobs]
    timed("onerror: failures.report (every GPU job failed)",
          lambda: failures.report(failures.from_snakemake(failed)))
    log_text = "".join(f"Error in rule {j.rule.name}:\n    jobid: 1\n    log: {j.log[0]} (check log file(s) for "
                       "error details)\n\n" for j in failed)
    if args.tree is None:
        return 0
    args.tree.mkdir(parents=True, exist_ok=True)
    (args.tree / "snakemake.log").write_text(log_text)
    timed("onerror: failures.summary (from the log)", lambda: failures.summary(str(args.tree / "snakemake.log"),
                                                                             args.tree))
    tree_jobs = timed("(lay out results/ and logs/, not a step)",
                      lambda: write_tree(args.tree, config, args.files_per_run))
    summary = "output_file\tdate\trule\tlog-file(s)\tstatus\tplan\n" + "".join(
        f"{out}\t-\t{rule}\t{','.join(logs)}\tok\tno update\n" for rule, outs, logs in tree_jobs for out in outs)
    dag = timed("archive: dag.parse_summary", lambda: archive_dag.parse_summary(summary))
    (args.tree / "config.yaml").write_text(Path(args.config).read_text())
    configs = [archive_members.Member((args.tree / "config.yaml").resolve(), "config.yaml", "config")]
    (args.tree / "Snakefile").write_text("# the archive packs the workflow's files beside it\n")
    selection = timed("archive: members.collect_members", lambda: archive_members.collect_members(
        args.tree / "results", args.tree / "logs", configs, args.tree, args.tree / "Snakefile", None, (),
        dag=dag))
    print(f"  {len(selection.members)} members, {len(selection.records)} provenance records")
    by_log = timed("archive: dag.jobs_by_log", lambda: archive_dag.jobs_by_log(dag, args.tree))
    timed("archive: members.rule_and_outputs (every record)", lambda: [
        archive_members.rule_and_outputs(m, by_log, args.tree, "logs") for m, _ in selection.records])
    return 0


if __name__ == "__main__":
    sys.exit(main())
