"""What failed in a run, and why, listed once at its end.

A campaign on a cluster runs with ``keep-going`` (slurm/config.yaml): one failed job no longer stops
the independent ones, so after days the failures are scattered over thousands of lines of
Snakemake's output. The workflow's ``onerror`` handler (workflow/rules/common.smk) hands the failed
jobs here; the report names each job, its log, and the last lines of that log (the error, or the
SLURM message of a job killed at its limit), prints it and keeps it in ``logs/<study>/failed.txt``
for whoever looks the next morning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

#: lines of a failed job's log shown in the summary
TAIL = 3


@dataclass(frozen=True)
class FailedJob:
    rule: str
    wildcards: dict[str, str]
    logs: tuple[str, ...]


def last_lines(path: str | Path, n: int = TAIL) -> list[str]:
    """The last ``n`` non-empty lines of a log ([] when it is missing or unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-n:]


def report(failed: Iterable[FailedJob], slurm_logdir: str | None = None) -> str:
    """One block per failed job: rule and wildcards, its logs, the last lines of the first that
    says anything; '' when nothing failed."""
    jobs = sorted(failed, key=lambda j: (j.rule, sorted(j.wildcards.items())))
    if not jobs:
        return ""
    out = [f"{len(jobs)} job(s) failed in this run (after their retries):"]
    for job in jobs:
        label = ", ".join(f"{k}={v}" for k, v in sorted(job.wildcards.items()))
        logs = [log for log in job.logs if not log.endswith(".prov.json")]
        out.append(f"  {job.rule}" + (f" ({label})" if label else "") + (f": log {', '.join(logs)}" if logs else ""))
        tail = next((t for t in (last_lines(log) for log in logs) if t), [])
        out += [f"      | {line}" for line in tail] or ["      | (its log is empty or missing)"]
    if slurm_logdir:
        out.append(f"SLURM's own messages (time limit, memory, node failure) are in {slurm_logdir}/ for failed jobs.")
    out.append("Fix the cause, then run the same command again: finished jobs are kept and only what failed "
               "or was waiting on it runs.")
    return "\n".join(out)


def write_report(text: str, path: str | Path) -> None:
    """Keep the report beside the study's logs (replaced by every run that fails)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def from_snakemake(jobs: Sequence[object]) -> list[FailedJob]:
    """Snakemake's failed Job objects (scheduler.failed) as FailedJobs."""
    return [FailedJob(j.rule.name, {k: str(v) for k, v in dict(j.wildcards_dict).items()},
                      tuple(str(f) for f in j.log)) for j in jobs]
