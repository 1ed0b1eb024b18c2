"""What failed in a run, and why: listed once at its end, as the last thing on screen.

Two needs meet here. A campaign on a cluster runs with ``keep-going`` (slurm/config.yaml): one failed
job no longer stops the independent ones, so after days the failures are scattered over thousands of
lines of Snakemake's output. And each job declares its provenance record (a JSON file of about a
hundred lines) as one of its ``log:`` files, so Snakemake's ``show-failed-logs`` used to print it
below the error, 120-150 lines under the line naming the bad file; the workflow profile leaves
``show-failed-logs`` off. The workflow's ``onerror`` handler (workflow/rules/common.smk) therefore
hands the failed jobs here (Snakemake's failed jobs, or, where those cannot be had, the ``Error in
rule`` blocks of its log): the report names each job, its text log and what that log says went
wrong (the error, or the SLURM message of a job killed at its limit), prints it and keeps it in
``logs/<study>/failed.txt`` for whoever looks the next morning. Provenance records are named nowhere
in it. Standard library only (imported while the Snakefile is parsed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from parallel_scaling.jobs.provenance import RECORD_SUFFIX

_ERROR_IN_RULE = re.compile(r"^Error in rule (?P<rule>[\w-]+):\s*$")
_LOG_LINE = re.compile(r"^\s+log: (?P<logs>.*?)(?: \(check log file\(s\) for error details\))?\s*$")
#: the lines of a job's log that carry its error (the package prints ``error: ...`` or
#: ``error [command]: ...``; Python prints ``SomeError: ...`` last in a traceback)
_ERROR_LINE = re.compile(r"^(?:error\b|[\w.]*(?:Error|Exception)\b|OSError|MemoryError|Killed)", re.IGNORECASE)
TAIL_LINES = 12
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
        logs = text_logs(job.logs)
        out.append(f"  {job.rule}" + (f" ({label})" if label else "") + (f": log {', '.join(logs)}" if logs else ""))
        tail = next((t for t in (last_lines(log) for log in logs) if t), [])
        if tail and not any(_ERROR_LINE.match(line.strip()) for line in tail):
            # the error is further up (the log ends with noise): show the error lines instead
            errors = next((e for e in (_error_lines_of(log) for log in logs) if e), [])
            tail = errors or tail
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


def _error_lines_of(path: str | Path) -> list[str]:
    """The error lines of a log (none when it has none or cannot be read)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if _ERROR_LINE.match(line.strip())][-3:]


def failed_jobs(snakemake_log: str) -> list[tuple[str, list[str]]]:
    """``(rule, log files)`` of every ``Error in rule`` block of Snakemake's own log text."""
    jobs: list[tuple[str, list[str]]] = []
    rule: str | None = None
    for line in snakemake_log.splitlines():
        start = _ERROR_IN_RULE.match(line)
        if start:
            rule = start["rule"]
            jobs.append((rule, []))
            continue
        if rule is not None:
            logs = _LOG_LINE.match(line)
            if logs:
                jobs[-1][1].extend(p.strip() for p in logs["logs"].split(",") if p.strip())
                rule = None
            elif not line.startswith(" "):
                rule = None
    return jobs


def error_lines(text: str, tail: int = TAIL_LINES) -> list[str]:
    """What a job's log says went wrong: its error lines (the last few), else its last lines."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line.strip())]
    if errors:
        return errors[-3:]
    return [*lines[-tail:], "(no error line: the job was stopped from outside, e.g. killed, or ended without a message)"]


def text_logs(paths: Iterable[str]) -> list[str]:
    """The logs that are text for people, not provenance records."""
    return [p for p in paths if not p.endswith(RECORD_SUFFIX)]


def summary(snakemake_log: str | Path | Sequence[str | Path] | None, workdir: str | Path = ".") -> str:
    """The failed jobs of a run and their errors, read from Snakemake's log file(s) (``onerror``
    gets a list) and the jobs' logs."""
    paths = [snakemake_log] if isinstance(snakemake_log, (str, Path)) else list(snakemake_log or [])
    text = ""
    for path in paths:
        try:
            text += Path(path).read_text(encoding="utf-8", errors="replace") + "\n"
        except OSError:
            continue
    out: list[str] = []
    for rule, logs in failed_jobs(text):
        readable = text_logs(logs)
        if not readable:
            continue
        for log in readable:
            path = Path(workdir) / log
            try:
                lines = error_lines(path.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                lines = ["(the log file was not written: the job failed before its command ran)"]
            out.append(f"rule {rule} failed; its log {log} ends:")
            out.extend(f"    {line}" for line in lines)
    if not out:
        return ""
    return "\n".join(["", "=" * 78, "The run stopped. What went wrong:", *out, "=" * 78])
