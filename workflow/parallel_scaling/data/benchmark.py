"""Benchmarks defined in config: one normalised JSONL per (benchmark, language).

A benchmark is a local file (JSON Lines, one JSON array, Parquet, TSV, CSV) or a Hugging Face
dataset, either one file per language (a ``{lang}`` placeholder in the path / config name / split /
data files) or one file with a language field, plus the names of the question, gold-answer and id
fields and the answer type (``number``, ``latex``, ``choice``). A ``filter`` keeps a subset of the
rows (one difficulty level of PolyMath, one ``data_source`` of MMATH), and ``difficulty_field`` /
``difficulty_weights`` carry each item's difficulty to the tables, which then add a
difficulty-weighted accuracy. Presets for the benchmarks of the paper live in
``workflow/resources/benchmarks.yaml`` (data, not code): a new benchmark of one of these shapes
needs no code change. Output rows: ``{"id", "lang", "question", "answer", "answer_type"}`` plus
``"difficulty"`` when the benchmark names a difficulty field.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.paths import RESOURCE_DIR

import yaml

from parallel_scaling.dataio import datafile
from parallel_scaling.dataio.jsonl import DataError, parse_settings, write_jsonl

PRESETS_FILE = RESOURCE_DIR / "benchmarks.yaml"
ANSWER_TYPES = ("number", "latex", "choice")
#: Pseudo-field of hub rows: the split a row was read from (usable as ``difficulty_field`` or in
#: ``filter`` when a dataset keeps its difficulty levels as splits, as PolyMath does).
SPLIT_FIELD = "_split"


@lru_cache(maxsize=1)
def presets() -> dict[str, dict[str, Any]]:
    with PRESETS_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def resolve(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A benchmark's settings: its preset (if any) overlaid with the config's own keys, checked."""
    preset = spec.get("preset")
    base: dict[str, Any] = {}
    if preset:
        if preset not in presets():
            raise ValueError(f"benchmarks.{name}.preset: unknown preset {preset!r}; known: {sorted(presets())}")
        base = dict(presets()[preset])
    merged = {**base, **{k: v for k, v in spec.items() if v is not None}}
    if merged.get("answer_type", "number") not in ANSWER_TYPES:
        raise ValueError(f"benchmarks.{name}.answer_type: {merged['answer_type']!r} is not one of {ANSWER_TYPES}")
    filter_values(name, merged.get("filter"))
    difficulty_weights(name, merged)
    return merged


def _key(value: Any) -> str:
    """How a field value and a filter value are compared: as text, ``2`` and ``2.0`` alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def filter_values(name: str, spec: Any) -> dict[str, set[str]]:
    """``filter: {field: value | [values]}`` as ``{field: {accepted values as text}}``; {} for none."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"benchmarks.{name}.filter: expected a mapping field -> value or list of values, "
                         f"got {spec!r}")
    out: dict[str, set[str]] = {}
    for field, wanted in spec.items():
        values = list(wanted) if isinstance(wanted, (list, tuple)) else [wanted]
        if not values or any(v is None or isinstance(v, (dict, list, tuple)) for v in values):
            raise ValueError(f"benchmarks.{name}.filter.{field}: expected a value or a non-empty list of "
                             f"values, got {wanted!r}")
        out[str(field)] = {_key(v) for v in values}
    return out


def difficulty_weights(name: str, s: Mapping[str, Any]) -> dict[str, float] | None:
    """The benchmark's weight per difficulty level (None when it defines none), checked."""
    weights = s.get("difficulty_weights")
    if weights is None:
        return None
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(f"benchmarks.{name}.difficulty_weights: expected a mapping level -> weight, got {weights!r}")
    bad = {k: v for k, v in weights.items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0}
    if bad:
        raise ValueError(f"benchmarks.{name}.difficulty_weights: weights must be positive numbers, got {bad}")
    if not s.get("difficulty_field"):
        raise ValueError(f"benchmarks.{name}.difficulty_weights: needs difficulty_field (the field that "
                         "holds each item's level)")
    return {_key(k): float(v) for k, v in weights.items()}


def _with_lang(value: Any, lang: str) -> Any:
    """``{lang}`` filled in a string, or in every string of a list / mapping (``hf_data_files``)."""
    if isinstance(value, str):
        return value.format(lang=lang)
    if isinstance(value, Mapping):
        return {k: _with_lang(v, lang) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_with_lang(v, lang) for v in value]
    return value


def _choice_question(rec: dict[str, Any], s: dict[str, Any]) -> str:
    """Multiple-choice items with separate option fields get the options appended as (A) ... lines."""
    opts = [rec[f] for f in s.get("choice_fields") or [] if rec.get(f) is not None]
    q = str(rec[s["question_field"]])
    return q + "".join(f"\n({chr(65 + i)}) {o}" for i, o in enumerate(opts)) if opts else q


def _hub_records(s: dict[str, Any], lang_code: str) -> list[tuple[str, dict]]:
    """Rows of one or several hub splits, each tagged with the split it came from."""
    from parallel_scaling.data.source import read_hf_records

    hf = {"hf_name": s["hf_name"], "hf_config": (s.get("hf_config") or "").format(lang=lang_code) or None,
          "hf_revision": s.get("hf_revision"), "hf_data_files": _with_lang(s.get("hf_data_files"), lang_code)}
    splits = s.get("hf_split", "test")
    records = []
    for split in splits if isinstance(splits, (list, tuple)) else [splits]:
        split = str(split).format(lang=lang_code)
        records += [(loc, {SPLIT_FIELD: split, **rec}) for loc, rec in read_hf_records(hf, split)]
    return records


def apply_filter(records: Sequence[tuple[str, dict]], name: str, wanted: Mapping[str, set[str]],
                 origin: str) -> list[tuple[str, dict]]:
    """Rows whose every filtered field holds one of its accepted values.

    A row without a filtered field is an error (a misspelt field must not silently empty the
    benchmark); a filter that keeps nothing names the values the file does hold.
    """
    if not wanted:
        return list(records)
    for field in wanted:
        missing = [loc for loc, rec in records if rec.get(field) is None]
        if missing:
            raise DataError(f"{missing[0]}: benchmark {name!r} row has no field {field!r} "
                            f"(benchmarks.{name}.filter; {len(missing)} of {len(records)} rows lack it)")
    kept = [(loc, rec) for loc, rec in records
            if all(_key(rec[field]) in values for field, values in wanted.items())]
    if records and not kept:
        present = {field: sorted({_key(rec[field]) for _, rec in records})[:12] for field in wanted}
        shown = "; ".join(f"{f} in {sorted(wanted[f])} (present: {', '.join(present[f])})" for f in wanted)
        raise DataError(f"{origin}: benchmarks.{name}.filter keeps no row: {shown}")
    return kept


def load_language(name: str, s: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """Rows of one benchmark language, validated field by field (errors name file:line and field)."""
    from parallel_scaling.data.source import read_records

    lang_code = (s.get("lang_codes") or {}).get(lang, lang)
    if s["kind"] == "file":
        path = str(s["path"]).format(lang=lang_code)
        records = read_records(path, s.get("format", "auto"), s.get("columns"), what=f"benchmark {name!r} file",
                               key=f"benchmarks.{name}.path")
        origin = path
    elif s["kind"] == "huggingface":
        records = _hub_records(s, lang_code)
        origin = f"hf:{s['hf_name']}"
    else:
        raise ValueError(f"benchmarks.{name}.kind: {s['kind']!r} cannot be loaded here (use file or huggingface)")
    lf = s.get("lang_field")
    if lf:
        records = [(loc, r) for loc, r in records if str(r.get(lf)) == lang_code]
    records = apply_filter(records, name, filter_values(name, s.get("filter")), origin)
    difficulty_field = s.get("difficulty_field")
    weights = difficulty_weights(name, s)
    answer_type = s.get("answer_type", "number")
    max_chars = int(s.get("max_question_chars") or datafile.MAX_TEXT_CHARS)
    rows, where = [], []
    for i, (loc, rec) in enumerate(records):
        for f in (s["question_field"], s["answer_field"], s.get("id_field"), difficulty_field):
            if f and f not in rec:
                raise DataError(f"{loc}: benchmark {name!r} row has no field {f!r} (benchmarks.{name}; "
                                f"fields present: {', '.join(map(str, rec))})")
        rid = datafile.check_id(rec[s["id_field"]], loc, s["id_field"]) if s.get("id_field") else f"{name}-{i}"
        datafile.check_text(rec[s["question_field"]], loc, s["question_field"], max_chars,
                            f"benchmarks.{name}.max_question_chars")
        answer = datafile.check_gold(rec[s["answer_field"]], loc, s["answer_field"], answer_type,
                                     f"benchmarks.{name}.answer_type")
        if answer_type != "number":
            answer = str(rec[s["answer_field"]]).strip()
        row = {"id": rid, "lang": lang, "question": _choice_question(rec, s).strip(), "answer": answer,
               "answer_type": answer_type}
        if difficulty_field:
            if rec[difficulty_field] is None:
                raise DataError(f"{loc}: benchmark {name!r} row has no value in difficulty field {difficulty_field!r}")
            row["difficulty"] = _key(rec[difficulty_field])
            if weights is not None and row["difficulty"] not in weights:
                raise DataError(f"{loc}: benchmark {name!r} item has {difficulty_field} {row['difficulty']!r}, "
                                f"which benchmarks.{name}.difficulty_weights does not weigh "
                                f"(weighted: {', '.join(weights)})")
        rows.append(row)
        where.append(loc)
    if not rows:
        raise DataError(f"{origin}: benchmark {name!r} has no rows for language {lang!r}")
    # ids join predictions, scores and languages: a repeated one would merge two items in the analysis
    datafile.check_unique(zip((r["id"] for r in rows), where), f"{origin}: benchmark {name!r} [{lang}]")
    if s.get("limit"):
        rows = rows[: s["limit"]]
    return rows


def main(argv: list[str] | None = None) -> int:
    """``benchmark``: write one benchmark language as normalised JSONL."""
    p = argparse.ArgumentParser(prog="benchmark", description=__doc__)
    p.add_argument("--name", required=True)
    p.add_argument("--settings", required=True, help="JSON of benchmarks.<name>")
    p.add_argument("--lang", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    s = resolve(a.name, parse_settings(a.settings))
    try:
        rows = load_language(a.name, s, a.lang)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = write_jsonl(a.out, rows)
    print(f"benchmark {a.name} [{a.lang}]: {n} items -> {a.out}")
    return 0
