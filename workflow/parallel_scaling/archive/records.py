"""What the crate reads from the jobs' provenance records: times in the shape the profile checks
want, the workflow's release and commit, paths as the job saw them, failures never mended.

Pure functions over the records (:mod:`parallel_scaling.jobs.provenance` writes them), kept apart
from :mod:`.crate`, which turns them into entities.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any


def iso_ms(value: Any) -> str | None:
    """A time as ISO 8601 in UTC with milliseconds, ``2026-01-02T03:04:05.678+00:00``.

    Provenance records keep microseconds; the Process Run Crate checks read start and end times
    only in this shape (an offset written ``+HH:MM``, at most three fractional digits). A naive
    time is taken as UTC; text that is not a time is returned unchanged.
    """
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        moment = value
    else:
        try:
            moment = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")


def now() -> str:
    return iso_ms(_dt.datetime.now(_dt.timezone.utc)) or ""


def package_version(dist: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def workflow_version(records: list[dict[str, Any]]) -> str:
    """The workflow's version in the crate: the release the jobs ran (CHANGELOG.md names it), with the
    git commit as a PEP 440 local label when the code was a git checkout: ``0.2.0+git.<commit>``.

    Records written before releases were recorded fall back to the installed package's version."""
    from parallel_scaling import __version__

    release = most_common(r.get("release") for r in records) \
        or most_common((r.get("packages") or {}).get("parallel-scaling") for r in records) or __version__
    commit = most_common((r.get("code_version") or {}).get("commit") for r in records)
    return f"{release}+git.{commit}" if commit else str(release)


def most_common(values: Any) -> Any:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None


def resolve_record_path(path: str, cwd: str | None) -> str:
    p = Path(path)
    if not p.is_absolute() and cwd:
        p = Path(cwd) / p
    return os.path.normpath(str(p))


def unresolved_failures(records: list[dict[str, Any]]) -> list[str]:
    """Commands that failed and never succeeded later with the same arguments (retries excluded)."""
    last: dict[str, tuple[str, str]] = {}
    for rec in sorted(records, key=lambda r: str(r.get("start_time"))):
        key = json.dumps([rec.get("command"), rec.get("argv")])
        last[key] = (str(rec.get("command")), str(rec.get("status")))
    return sorted({cmd for cmd, status in last.values() if status != "ok"})
