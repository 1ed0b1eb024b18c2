"""Scored items: read the ``score`` rule's JSONL files into one frame every later step can trust.

This is the first step of ``analyze``: everything after it (accuracy tables, the MTI, the law's
series) reads the frame made here and never the files, so dtypes and error messages are settled in
one place. Scored items arrive as JSONL rows, one file per checkpoint (see
:data:`REQUIRED_COLUMNS`). It also holds the order every table shares (initial model first, then
k0, k1, ..., English first among languages), since that order is a property of the items' keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from parallel_scaling.scoring.difficulty import difficulty_level
from parallel_scaling.dataio.jsonl import DataError, read_jsonl

#: Columns every scored JSONL row must carry.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "model",
    "paradigm",
    "mixture",
    "k",
    "seed",
    "train_langs",
    "benchmark",
    "lang",
    "id",
    "sample",
    "correct",
    "off_target",
)
#: Columns that may be absent; they are filled with None so downstream code can rely on them.
#: ``thinking_off_target`` / ``final_part`` come with reasoning models' responses (a thinking part);
#: ``thinking_off_target`` becomes a float, NaN where a response has no thinking part.
OPTIONAL_COLUMNS: tuple[str, ...] = ("extracted", "reason", "difficulty", "thinking_off_target", "final_part")

#: Keys that identify one checkpoint evaluated on one benchmark.
CHECKPOINT_KEYS: list[str] = ["model", "paradigm", "mixture", "k", "seed", "benchmark"]
#: Keys of one row of the long accuracy table.
ACC_KEYS: list[str] = [*CHECKPOINT_KEYS, "lang"]

#: A parallel mixture's name: ``k<number of parallel languages>``.
MIXTURE_K = re.compile(r"^k(\d+)$")


class ScoredFormatError(ValueError):
    """A scored-items file or table is malformed (missing column, unreadable line, bad value)."""


def load_scored(paths: Sequence[Path]) -> pd.DataFrame:
    """Read scored-item JSONL files into one frame with normalised dtypes.

    ``k`` and ``seed`` become nullable ``Int64`` (null for the initial model), ``train_langs`` a
    sorted tuple (hashable, so it can be grouped on), ``correct`` / ``off_target`` booleans and
    ``id`` a string, so that ids read as numbers in one file and strings in another still pair up.

    Raises:
        ScoredFormatError: naming the file (and line) when a file is missing, a line is not JSON,
            a file has no rows, or required columns are absent.
    """
    if not paths:
        raise ScoredFormatError("no scored files given")
    frames: list[pd.DataFrame] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise ScoredFormatError(f"{path}: scored file not found")
        try:
            records = read_jsonl(path)
        except DataError as exc:
            raise ScoredFormatError(str(exc)) from None
        if not records:
            raise ScoredFormatError(f"{path}: file has no scored rows")
        frame = pd.DataFrame.from_records(records)
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ScoredFormatError(f"{path}: missing required column(s) {', '.join(missing)}")
        for col in OPTIONAL_COLUMNS:
            if col not in frame.columns:
                frame[col] = None
        frame["_source"] = str(path)
        frames.append(frame)
    items = pd.concat(frames, ignore_index=True)
    return normalize_items(items)


def normalize_items(items: pd.DataFrame) -> pd.DataFrame:
    """Coerce the dtypes of scored rows (as :func:`load_scored` does) for frames built in memory.

    Raises :class:`ScoredFormatError` naming the column (and source file when known).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in items.columns]
    if missing:
        raise ScoredFormatError(f"scored items lack required column(s) {', '.join(missing)}")
    out = items.copy()
    for col in OPTIONAL_COLUMNS:
        if col not in out.columns:
            out[col] = None
    for col in ("model", "paradigm", "mixture", "benchmark", "lang"):
        if out[col].isna().any():
            raise ScoredFormatError(f"column {col!r} has null values{source_hint(out, out[col].isna())}")
        out[col] = out[col].astype(str)
    out["id"] = out["id"].astype(str)
    out["difficulty"] = out["difficulty"].map(difficulty_level)
    for col in ("k", "seed", "sample"):
        try:
            out[col] = pd.to_numeric(out[col], errors="raise").astype("Int64")
        except (ValueError, TypeError) as exc:
            raise ScoredFormatError(f"column {col!r} must be an integer or null ({exc})") from exc
    out["sample"] = out["sample"].fillna(0)
    for col in ("correct", "off_target"):
        values = out[col]
        bad = ~values.map(lambda v: isinstance(v, (bool, np.bool_)) or v in (0, 1))
        if bad.any():
            raise ScoredFormatError(f"column {col!r} must be boolean{source_hint(out, bad)}")
        out[col] = values.astype(bool)
    thinking = out["thinking_off_target"]
    absent = thinking.map(lambda v: v is None or (isinstance(v, float) and math.isnan(v)))
    bad = ~absent & ~thinking.map(lambda v: isinstance(v, (bool, np.bool_)) or v in (0, 1))
    if bad.any():
        raise ScoredFormatError(f"column 'thinking_off_target' must be boolean or null{source_hint(out, bad)}")
    out["thinking_off_target"] = [np.nan if a else float(bool(v)) for a, v in zip(absent, thinking)]

    def as_tuple(value: object) -> tuple[str, ...]:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ()
        if isinstance(value, str):
            return (value,)
        return tuple(sorted(str(v) for v in value))

    out["train_langs"] = out["train_langs"].map(as_tuple)
    return out


def source_hint(frame: pd.DataFrame, mask: pd.Series) -> str:
    """`` (first in FILE)`` naming the first offending row's scored file, if known, for an error message."""
    if "_source" in frame.columns and mask.any():
        return f" (first in {frame.loc[mask, '_source'].iloc[0]})"
    return ""


def mixture_order(mixture: str) -> tuple[int, int, str]:
    """Sort key: init, then k0, k1, ..., k10 numerically, then other mixtures (mono-*) by name."""
    if mixture == "init":
        return (0, 0, mixture)
    match = MIXTURE_K.match(mixture)
    if match:
        return (1, int(match.group(1)), mixture)
    return (2, 0, mixture)


def language_order(langs: Sequence[str], english: str = "en") -> list[str]:
    """English first, then the others alphabetically: a stable column order for every table."""
    unique = sorted(set(langs))
    return ([english] if english in unique else []) + [lang for lang in unique if lang != english]


def sort_rows(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Sort by model, benchmark, paradigm (init first), mixture order, seed, then ``extra``."""
    if frame.empty:
        return frame.reset_index(drop=True)
    keyed = frame.assign(
        _par=frame["paradigm"].map(lambda p: (0 if p == "init" else 1, p)),
        _mix=frame["mixture"].map(mixture_order),
    )
    cols = ["model", "benchmark", "_par", "_mix", "seed", *extra]
    keyed = keyed.sort_values(cols, kind="stable", na_position="first")
    return keyed.drop(columns=["_par", "_mix"]).reset_index(drop=True)
