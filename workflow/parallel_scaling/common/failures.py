"""The error that stopped a run, as the last thing on screen.

Why: each job writes its output to its log file and its provenance record (a JSON file of about a
hundred lines) beside it, and both are declared as the job's ``log:``. With Snakemake's
``show-failed-logs`` every log of a failed job is printed after the error, so the line naming the
bad file ended up 120-150 lines above the end of the output. The workflow profile therefore leaves
``show-failed-logs`` off, and the Snakefile's ``onerror`` handler (called by Snakemake after every
failed job is reported, just before it exits) prints :func:`summary`: for each failed job its rule,
its text log and the last lines of that log that say what went wrong; provenance records are named
nowhere in it. Standard library only (imported while the Snakefile is parsed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from parallel_scaling.common.provenance import RECORD_SUFFIX

_ERROR_IN_RULE = re.compile(r"^Error in rule (?P<rule>[\w-]+):\s*$")
_LOG_LINE = re.compile(r"^\s+log: (?P<logs>.*?)(?: \(check log file\(s\) for error details\))?\s*$")
#: the lines of a job's log that carry its error (the package prints ``error: ...`` or
#: ``error [command]: ...``; Python prints ``SomeError: ...`` last in a traceback)
_ERROR_LINE = re.compile(r"^(?:error\b|[\w.]*(?:Error|Exception)\b|OSError|MemoryError|Killed)", re.IGNORECASE)
TAIL_LINES = 12


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
