"""Answer lengths for the cost plan: a measured table, or a stated assumption.

A reasoning model's answers are ten times a chat model's, and the prediction estimate is mostly
their decoding; one fraction of ``max_new_tokens`` for every model would plan a reasoning study
with chat-model lengths. The table (``prediction_jobs.answer_lengths``, a CSV) gives completion
tokens per model, paradigm, benchmark and language; an empty cell (or ``*``) matches anything, and
the most specific matching row wins. A pilot run makes one:

    python -m parallel_scaling answer-lengths results/<study>/predictions --out answer_lengths.csv

which reads the ``completion_tokens`` and ``finish_reason`` of every prediction row (rows written
before those fields existed are skipped and counted).

Standard library only: the Snakefile imports this while planning the prediction jobs.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from parallel_scaling.dataio.jsonl import read_jsonl_lines
from parallel_scaling.evaluate.summary import percentile  # the one reading of a length percentile

#: the columns that select a row (empty or ``*``: any), then the figures
KEYS = ("model", "paradigm", "benchmark", "lang")
FIGURES = ("n", "mean", "p50", "p90", "p99", "max", "cut")


@dataclass(frozen=True)
class Length:
    """Mean completion tokens of one answer and where the figure comes from (printed by cost-plan)."""

    mean: float
    source: str


def load_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of an answer-length CSV (columns KEYS, at least ``mean``); a clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction_jobs.answer_lengths: {path} does not exist "
                                f"(make one with `python -m parallel_scaling answer-lengths`)")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "mean" not in reader.fieldnames:
            raise ValueError(f"{path}: an answer-length table needs a 'mean' column (completion tokens) "
                             f"and any of {', '.join(KEYS)}; found {reader.fieldnames}")
        rows = []
        for number, row in enumerate(reader, start=2):
            try:
                mean = float(row["mean"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{number}: mean {row.get('mean')!r} is not a number") from None
            keys = {k: (row.get(k) or "").strip() for k in KEYS}
            rows.append({**{k: ("" if v == "*" else v) for k, v in keys.items()}, "mean": mean,
                         "where": f"{path.name}:{number}"})
    return rows


def lookup(table: Sequence[Mapping[str, Any]], **key: str) -> Mapping[str, Any] | None:
    """The most specific row matching ``key`` (model, paradigm, benchmark, lang); None when none does."""
    best, best_score = None, -1
    for row in table:
        if any(row[k] and row[k] != str(key.get(k, "")) for k in KEYS):
            continue
        score = sum(1 for k in KEYS if row[k])
        if score > best_score:
            best, best_score = row, score
    return best


def answer_length(table: Sequence[Mapping[str, Any]] | None, max_new_tokens: int, fill: float,
                  **key: str) -> Length:
    """Mean completion tokens of one answer: the table's figure (capped at ``max_new_tokens``, the
    longest answer the job allows), else ``fill`` x ``max_new_tokens`` -- an assumption, said to be one."""
    row = lookup(table, **key) if table else None
    if row is not None:
        return Length(min(float(row["mean"]), float(max_new_tokens)), f"measured ({row['where']})")
    return Length(fill * max_new_tokens, f"assumed: {fill:g} x the longest answer, {max_new_tokens} tokens "
                                          f"(max_new_tokens, or the model's context; tokens.prediction_fill)")


# --------------------------------------------------------------------------------------------------
# the table from a pilot run's predictions


def measure(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Completion-token figures per (model, paradigm, benchmark, lang) of prediction rows, and the
    number of rows without ``completion_tokens`` (written before predictions recorded it)."""
    groups: dict[tuple[str, ...], list[tuple[int, bool]]] = {}
    skipped = 0
    for row in rows:
        tokens = row.get("completion_tokens")
        if not isinstance(tokens, int):
            skipped += 1
            continue
        key = tuple(str(row.get(k) or "") for k in KEYS)
        groups.setdefault(key, []).append((tokens, row.get("finish_reason") == "length"))
    out = []
    for key in sorted(groups):
        values = sorted(t for t, _ in groups[key])
        out.append({**dict(zip(KEYS, key)), "n": len(values), "mean": round(sum(values) / len(values), 1),
                    "p50": float(percentile(values, 50)), "p90": float(percentile(values, 90)),
                    "p99": float(percentile(values, 99)), "max": max(values),
                    "cut": round(sum(1 for _, cut in groups[key] if cut) / len(values), 4)})
    return out, skipped


def _prediction_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
    return [f for f in files if not f.name.startswith("_") and not f.name.endswith(".journal.jsonl")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="parallel_scaling answer-lengths",
                                 description="Completion-token figures per model, paradigm, benchmark and "
                                             "language of prediction files: the table prediction_jobs."
                                             "answer_lengths gives the cost plan")
    ap.add_argument("inputs", nargs="+", help="prediction JSONL files or folders (searched for *.jsonl)")
    ap.add_argument("--out", default="-", help="CSV to write (default: standard output)")
    a = ap.parse_args(argv)
    files = _prediction_files(a.inputs)
    if not files:
        raise FileNotFoundError(f"no prediction files (*.jsonl) in {', '.join(a.inputs)}")

    def rows() -> Iterable[dict[str, Any]]:  # the data reader: a bad line is named by file and line
        for f in files:
            for _, row in read_jsonl_lines(f, "prediction file"):
                yield row

    table, skipped = measure(rows())
    if skipped:
        print(f"answer-lengths: {skipped} row(s) without completion_tokens skipped (predictions made "
              f"before token counts were recorded)", file=sys.stderr)
    if not table:
        raise ValueError("no prediction row records completion_tokens: rerun the pilot's predictions")
    out = sys.stdout if a.out == "-" else open(a.out, "w", newline="")
    try:
        writer = csv.DictWriter(out, fieldnames=[*KEYS, *FIGURES], lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
