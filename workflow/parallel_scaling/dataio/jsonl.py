"""Reading and writing JSON Lines, with errors that name the file and line.

Every stage exchanges JSONL; writes are atomic (temporary file, then rename) so that a job killed
mid-write never leaves a truncated file that a later run would take as finished.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.datafile import DataError, parse_jsonl, read_text
from parallel_scaling.dataio.permissions import share

__all__ = ["DataError", "read_jsonl_lines", "read_jsonl", "write_jsonl", "write_json", "parse_settings"]


def read_jsonl_lines(path: str | Path, what: str = "file", allow_empty: bool = True) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` pairs of a JSONL file (blank lines skipped); a bad file or line raises
    :class:`DataError` naming the file and line (the checks of :mod:`parallel_scaling.dataio.datafile`:
    encoding, compression, LFS pointers, a JSON array given as JSON Lines)."""
    return parse_jsonl(path, read_text(path, what, allow_empty=allow_empty))


def read_jsonl(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """All rows of ``path``; a bad line or a missing required field raises :class:`DataError`."""
    rows = []
    for lineno, row in read_jsonl_lines(path):
        missing = [f for f in required if f not in row]
        if missing:
            raise DataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically; returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        share(tmp)  # mkstemp makes it 0600: readable by the group, as the folder's other files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def write_json(path: str | Path, obj: Any) -> None:
    """Write one JSON document atomically (temporary file beside it, fsync, rename), so readers
    never see half a document."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def parse_settings(text: str) -> dict[str, Any]:
    """Parse ``--settings``: inline JSON, or the path of a JSON file (handy when calling by hand)."""
    stripped = text.strip()
    if not stripped.startswith("{") and Path(stripped).is_file():
        stripped = Path(stripped).read_text(encoding="utf-8")
        origin = text
    else:
        origin = "--settings"
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise DataError(f"{origin}: not valid JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(value, dict):
        raise DataError(f"{origin}: expected a JSON object, got {type(value).__name__}")
    return value
