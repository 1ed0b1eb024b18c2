"""What the run was, asked of Snakemake itself: its DAG and its report.

Why: an archive must hold the run that was configured, not whatever a results directory holds
(an earlier configuration leaves checkpoints behind, e.g. after K was lowered), and its report
must describe that same study. ``snakemake archive`` passes the config exactly as Snakemake merged
and validated it; with that file as the only config, :func:`plan_run` asks Snakemake for the run's
DAG (``snakemake --summary``: every job's rule, outputs and log files) and :func:`build_report`
for the report. Snakemake is asked in a process of its own (with ``--nolock``: the archive job
runs inside a running Snakemake), and its ``--summary`` table is read here.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from parallel_scaling.archive import ArchiveError


@dataclass(frozen=True)
class DagJob:
    """One job of the run's DAG as Snakemake plans it: its rule, output paths and log files."""

    rule: str
    outputs: tuple[str, ...]
    logs: tuple[str, ...]


def in_run(path: str, workdir: Path) -> Path:
    """A path Snakemake printed (relative to its working directory) as a usable path."""
    p = Path(path)
    return p if p.is_absolute() else workdir / p


def snakemake_command(snakefile: Path, configfile: Path, *args: str) -> list[str]:
    """``snakemake`` with the run's merged config as its only config file.

    A study given with ``--configfile`` replaces config.yaml (common.smk), so this file alone
    reproduces the run's config; ``--nolock`` because the archive job runs inside that Snakemake.
    """
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--configfile",
            str(configfile), "--nolock", "--cores", "1", *args]


def _run_snakemake(cmd: list[str], cwd: Path, what: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ArchiveError(f"snakemake {what} failed ({proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


def parse_summary(text: str) -> list[DagJob]:
    """Jobs from ``snakemake --summary`` (columns output_file, date, rule, log-file(s), ...).

    The summary has one line per output file; a job is a rule plus its log files (each job of this
    workflow has its own logs), and a job without logs is one line of its own.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or "output_file" not in lines[0].split("\t"):
        raise ArchiveError("snakemake --summary printed no table (expected a header with output_file)")
    header = lines[0].split("\t")
    try:
        col_out, col_rule, col_log = (header.index(c) for c in ("output_file", "rule", "log-file(s)"))
    except ValueError as exc:
        raise ArchiveError(f"snakemake --summary has an unexpected header {header}") from exc
    jobs: dict[tuple[str, tuple[str, ...]], tuple[str, list[str], tuple[str, ...]]] = {}
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) <= max(col_out, col_rule, col_log):
            raise ArchiveError(f"snakemake --summary: cannot read the line {line!r}")
        rule, out = cells[col_rule], cells[col_out]
        logs = tuple(p for p in cells[col_log].split(",") if p and p != "-")
        key = (rule, logs) if logs else (rule, ("", out))
        jobs.setdefault(key, (rule, [], logs))[1].append(out)
    return [DagJob(rule, tuple(outs), logs) for rule, outs, logs in jobs.values()]


def plan_run(snakefile: Path, workdir: Path, run_config: Path) -> list[DagJob]:
    """The run's DAG for the default target, planned by Snakemake with the run's config."""
    return parse_summary(_run_snakemake(snakemake_command(snakefile, run_config, "--summary"), workdir,
                                        "--summary"))


def build_report(snakefile: Path, workdir: Path, run_config: Path, report: Path) -> Path:
    """The Snakemake report of the run, built from the run's config (not config.yaml's)."""
    report.parent.mkdir(parents=True, exist_ok=True)
    _run_snakemake(snakemake_command(snakefile, run_config, "--report", str(report)), workdir, "--report")
    if not report.is_file():
        raise ArchiveError(f"snakemake --report wrote no {report}")
    return report


def jobs_by_log(dag: list[DagJob] | None, workflow_dir: Path) -> dict[Path, DagJob]:
    """Log file (resolved) -> its job in the DAG (a record is one of its job's log files)."""
    if dag is None:
        return {}
    return {in_run(log, workflow_dir).resolve(): job for job in dag for log in job.logs}
