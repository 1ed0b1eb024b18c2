"""Benchmarks defined in config: one normalised JSONL per (benchmark, language).

A benchmark is a local file (JSONL, Parquet, TSV, CSV) or a Hugging Face dataset, either one file
per language (a ``{lang}`` placeholder in the path / config name) or one file with a language field,
plus the names of the question, gold-answer and id fields and the answer type (``number``,
``latex``, ``choice``). Presets for the benchmarks of the paper live in
``workflow/resources/benchmarks.yaml`` (data, not code): a new benchmark of one of these shapes
needs no code change. Output rows: ``{"id", "lang", "question", "answer", "answer_type"}``.
"""

from __future__ import annotations

import argparse
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from parallel_scaling.jsonl import DataError, parse_settings, write_jsonl

PRESETS_FILE = Path(__file__).resolve().parents[1] / "resources" / "benchmarks.yaml"
ANSWER_TYPES = ("number", "latex", "choice")


@lru_cache(maxsize=1)
def presets() -> dict[str, dict[str, Any]]:
    with PRESETS_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def resolve(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A benchmark's settings: its preset (if any) overlaid with the config's own keys."""
    preset = spec.get("preset")
    base: dict[str, Any] = {}
    if preset:
        if preset not in presets():
            raise ValueError(f"benchmarks.{name}.preset: unknown preset {preset!r}; known: {sorted(presets())}")
        base = dict(presets()[preset])
    merged = {**base, **{k: v for k, v in spec.items() if v is not None}}
    if merged.get("answer_type", "number") not in ANSWER_TYPES:
        raise ValueError(f"benchmarks.{name}.answer_type: {merged['answer_type']!r} is not one of {ANSWER_TYPES}")
    return merged


def _choice_question(rec: dict[str, Any], s: dict[str, Any]) -> str:
    """Multiple-choice items with separate option fields get the options appended as (A) ... lines."""
    opts = [rec[f] for f in s.get("choice_fields") or [] if rec.get(f) is not None]
    q = str(rec[s["question_field"]])
    return q + "".join(f"\n({chr(65 + i)}) {o}" for i, o in enumerate(opts)) if opts else q


def load_language(name: str, s: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """Rows of one benchmark language, validated field by field (errors name file:line and field)."""
    from parallel_scaling.sources import normalize_answer, read_hf_records, read_records

    lang_code = (s.get("lang_codes") or {}).get(lang, lang)
    if s["kind"] == "file":
        path = str(s["path"]).format(lang=lang_code)
        records = read_records(path, s.get("format", "auto"), s.get("columns"))
        origin = path
    elif s["kind"] == "huggingface":
        hf = {"hf_name": s["hf_name"], "hf_config": (s.get("hf_config") or "").format(lang=lang_code) or None,
              "hf_revision": s.get("hf_revision"), "hf_data_files": s.get("hf_data_files")}
        split = str(s.get("hf_split", "test")).format(lang=lang_code)
        records = read_hf_records(hf, split)
        origin = f"hf:{s['hf_name']}"
    else:
        raise ValueError(f"benchmarks.{name}.kind: {s['kind']!r} cannot be loaded here (use file or huggingface)")
    lf = s.get("lang_field")
    if lf:
        records = [(loc, r) for loc, r in records if str(r.get(lf)) == lang_code]
    rows = []
    for i, (loc, rec) in enumerate(records):
        for f in (s["question_field"], s["answer_field"], s.get("id_field")):
            if f and rec.get(f) is None:
                raise DataError(f"{loc}: benchmark {name!r} row has no field {f!r}")
        rid = str(rec[s["id_field"]]) if s.get("id_field") else f"{name}-{i}"
        gold = rec[s["answer_field"]]
        answer = normalize_answer(gold) if s.get("answer_type", "number") == "number" else str(gold).strip()
        rows.append({"id": rid, "lang": lang, "question": _choice_question(rec, s), "answer": answer,
                     "answer_type": s.get("answer_type", "number")})
    if not rows:
        raise DataError(f"{origin}: benchmark {name!r} has no rows for language {lang!r}")
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
    n = write_jsonl(a.out, load_language(a.name, s, a.lang))
    print(f"benchmark {a.name} [{a.lang}]: {n} items -> {a.out}")
    return 0
