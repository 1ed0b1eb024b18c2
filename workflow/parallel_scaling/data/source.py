"""Read an English problem source into the pipeline's row contract.

Every later step (translation, QC, mixtures, evaluation) joins languages by item ``id`` and scores
against ``answer``, so this module is where both are made trustworthy:

* ``id`` is stable across reruns: the source's own id field, or ``<prefix>-<row index>`` where the row
  index is the 0-based position in the *original* file (so GSM8K train row 17 is always
  ``gsm8k-train-17``, which is what imported translations keyed by ``gsm8k_train_index`` map onto);
* ``answer`` is a normalised final answer (``"#### 1,234"`` -> ``"1234"``), comparable as a string;
* when only one split exists, the test split is carved out by a seeded hash of the id, so the split
  does not depend on file order, ``limit`` or which other items exist.

Output rows: ``{"id", "question", "answer", "solution"}`` (plus ``"spec"`` for the synthetic source).
Command ``source``: ``source --settings JSON --split train --out OUT.jsonl``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.jsonl import DataError, parse_settings, write_jsonl
from parallel_scaling.dataio import datafile, schema
from parallel_scaling.scoring.numbers import normalize_answer

SPLITS = ("train", "test")

#: defaults of the config's ``source`` section, from the schema (their one home)
DEFAULTS: dict[str, Any] = schema.defaults("source")


class SourceError(DataError):
    """A source file or setting cannot be turned into valid rows; the message names file, field and count."""


# --------------------------------------------------------------------------------------------------
# settings and hashing shared by translate / qc / mixtures


def stable_fraction(key: str, seed: int | str) -> float:
    """Map ``(seed, key)`` to [0, 1) via SHA-256: independent of Python's hash seed and of row order."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --------------------------------------------------------------------------------------------------
# answer normalisation



def solution_from_answer(value: Any) -> str | None:
    """GSM8K-style answers carry the worked solution before ``####``; return it (or None when absent)."""
    if isinstance(value, str) and "####" in value:
        solution = value.rsplit("####", 1)[0].strip()
        return solution or None
    return None


# --------------------------------------------------------------------------------------------------
# raw readers: each yields (location, record) so errors can point at file:line


FORMATS = ("jsonl", "json", "parquet", "tsv", "csv")


def _detect_format(path: Path, fmt: str, text: str | None) -> str:
    """The reader for ``path``: ``fmt`` when given, else from the extension.

    ``.json`` is used for both one JSON array (MMATH's ``{lang}.json``) and JSON Lines, so its
    first non-blank character decides: ``[`` is an array, anything else JSON Lines.
    """
    if fmt != "auto":
        return fmt
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith(".json"):
        return "json" if (text or "").lstrip()[:1] == "[" else "jsonl"
    for ext, name in ((".jsonl", "jsonl"), (".parquet", "parquet"), (".tsv", "tsv"), (".csv", "csv")):
        if suffixes.endswith(ext):
            return name
    raise SourceError(f"{path}: cannot tell the format from the extension; set the format key to "
                      f"{', '.join(FORMATS)}")


def _read_json_array(path: Path, text: str) -> Iterator[tuple[str, dict]]:
    """A file holding one JSON array of objects; locations are ``FILE:item N`` (0-based)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ""
        if text.lstrip()[:1] == "{":
            hint = "; the file looks like JSON Lines (one object per line): set the format to jsonl"
        raise SourceError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno}){hint}") from None
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected one JSON array of objects, got a JSON {type(data).__name__} "
                          "(JSON Lines files take format jsonl)")
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise SourceError(f"{path}:item {index}: expected a JSON object, got {type(record).__name__}")
        yield f"{path}:item {index}", record


def _read_delimited(path: Path, text: str, delimiter: str,
                    columns: Sequence[str] | None) -> Iterator[tuple[str, dict]]:
    # TSV files such as MGSM are unquoted, so quote characters inside questions must stay literal.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header = list(columns) if columns else None
    try:
        for record in reader:
            if header is None:
                header = record
                other = "," if delimiter == "\t" else "\t"
                if len(header) == 1 and other in header[0]:
                    raise SourceError(f"{path}:{reader.line_num}: the header has one column, "
                                      f"{header[0][:60]!r}: the file looks {'comma' if other == ',' else 'tab'}-"
                                      f"separated; set the format to {'csv' if other == ',' else 'tsv'}")
                if len(header) == 1 and ";" in header[0]:
                    raise SourceError(f"{path}:{reader.line_num}: the header has one column, {header[0][:60]!r}: "
                                      "the file looks semicolon-separated (a spreadsheet saved in a locale with "
                                      "decimal commas); save it comma-separated (CSV) or tab-separated (TSV)")
                continue
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                other = "," if delimiter == "\t" else "\t"
                hint = (f"; the rows look {'comma' if other == ',' else 'tab'}-separated: set the format to "
                        f"{'csv' if other == ',' else 'tsv'}") if len(record) == 1 and other in record[0] else ""
                raise SourceError(f"{path}:{reader.line_num}: unreadable row ({len(record)} fields, "
                                  f"expected {len(header)}: {', '.join(header)}){hint}")
            yield f"{path}:{reader.line_num}", dict(zip(header, record))
    except csv.Error as exc:
        raise SourceError(f"{path}:{reader.line_num}: unreadable row ({exc})") from None


def _read_parquet(path: Path) -> Iterator[tuple[str, dict]]:
    import pandas as pd

    with path.open("rb") as handle:
        head = handle.read(64)
    if not datafile.is_parquet(head):
        found = datafile.sniff(head)
        what = found[0] if found else "not a Parquet file (no PAR1 header)"
        todo = found[1] if found else "check the file, or set its format to what it holds"
        raise SourceError(f"{path}: {what}; {todo}")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise SourceError(f"{path}: unreadable Parquet file ({exc})") from exc
    for index, record in enumerate(frame.to_dict(orient="records")):
        yield f"{path}:row {index}", {k: _plain(v) for k, v in record.items()}


def _plain(value: Any) -> Any:
    """numpy / pandas scalars -> Python scalars, so ids and answers print like the JSON equivalent."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            return item()
        except (ValueError, TypeError):
            return value
    return value


def read_records(path: str | Path, fmt: str = "auto", columns: Sequence[str] | None = None,
                 what: str = "source file", key: str | None = None) -> list[tuple[str, dict]]:
    """Read a local JSONL / JSON array / Parquet / TSV / CSV file into ``(location, record)`` pairs
    in file order; the file is checked first (:mod:`parallel_scaling.dataio.datafile`): ``what``
    and ``key`` (the config key naming the file) go into its messages."""
    path = Path(path)
    try:
        datafile.check_path(path, what, key)
        text = None
        if fmt in {"auto", "jsonl", "json", "tsv", "csv"} and not path.name.lower().endswith(".parquet"):
            text = datafile.read_text(path, what, key)
        kind = _detect_format(path, fmt, text)
        if kind == "jsonl":
            records = [(f"{path}:{lineno}", record) for lineno, record in datafile.parse_jsonl(path, text or "")]
        elif kind == "json":
            records = list(_read_json_array(path, text or ""))
        elif kind == "parquet":
            records = list(_read_parquet(path))
        elif kind in {"tsv", "csv"}:
            records = list(_read_delimited(path, text or "", "\t" if kind == "tsv" else ",", columns))
        else:
            raise SourceError(f"{path}: unknown format {kind!r}; use {', '.join(FORMATS)}")
    except SourceError:
        raise
    except DataError as exc:
        raise SourceError(str(exc)) from None
    if not records:
        raise SourceError(f"{path}: {what}{f' ({key})' if key else ''} holds no rows")
    return records


def read_hf_records(settings: Mapping[str, Any], split_name: str) -> list[tuple[str, dict]]:
    """Load one split of a Hugging Face dataset (``datasets.load_dataset(name, config, split=...)``).

    ``hf_data_files`` lets the same code read local files through a builder such as ``json``.
    """
    import datasets

    name = settings.get("hf_name")
    if not name:
        raise SourceError("source.hf_name: required when source.kind is 'huggingface'")
    kwargs: dict[str, Any] = {"split": split_name}
    if settings.get("hf_revision"):
        kwargs["revision"] = settings["hf_revision"]
    if settings.get("hf_data_files"):
        kwargs["data_files"] = settings["hf_data_files"]
    try:
        dataset = datasets.load_dataset(name, settings.get("hf_config"), **kwargs)
    except Exception as exc:  # the hub / builders raise many types; the message is what matters
        raise SourceError(f"huggingface dataset {name!r} split {split_name!r}: cannot load ({exc})") from exc
    label = f"hf:{name}[{split_name}]"
    return [(f"{label}:row {i}", {k: _plain(v) for k, v in record.items()}) for i, record in enumerate(dataset)]


# --------------------------------------------------------------------------------------------------
# records -> rows


def records_to_rows(records: Sequence[tuple[str, dict]], settings: Mapping[str, Any], split: str,
                    origin: str) -> list[dict[str, Any]]:
    """Map raw records onto the row contract, checking fields and id uniqueness over the whole file."""
    qf, af = settings["question_field"], settings["answer_field"]
    idf, sf = settings.get("id_field"), settings.get("solution_field")
    required = [f for f in (qf, af, idf, sf) if f]
    for field in required:
        missing = [loc for loc, rec in records if rec.get(field) is None or
                   (isinstance(rec.get(field), str) and not rec[field].strip() and field != sf)]
        if missing:
            raise SourceError(f"{origin}: field {field!r} missing or empty in {len(missing)} of {len(records)} rows "
                              f"(first at {missing[0]})")
    prefix = str(settings.get("id_prefix") or "item-{split}").format(split=split)
    max_chars = int(settings.get("max_question_chars") or datafile.MAX_TEXT_CHARS)
    rows = []
    try:
        for index, (loc, rec) in enumerate(records):
            raw_answer = rec[af]
            rows.append({
                "id": datafile.check_id(_plain(rec[idf]), loc, idf) if idf else f"{prefix}-{index}",
                "question": datafile.check_text(rec[qf], loc, qf, max_chars, "source.max_question_chars"),
                # a training label: GRPO's reward compares numbers, so a gold answer must be one
                "answer": datafile.check_gold(raw_answer, loc, af, "number"),
                "solution": (str(rec[sf]).strip() or None) if sf else solution_from_answer(raw_answer),
            })
    except SourceError:
        raise
    except DataError as exc:
        raise SourceError(str(exc)) from None
    check_unique_ids(rows, origin)
    return rows


def check_unique_ids(rows: Sequence[Mapping[str, Any]], origin: str) -> None:
    """Raise :class:`SourceError` listing example duplicate ids and how many ids repeat."""
    counts = Counter(str(row["id"]) for row in rows)
    dupes = [key for key, n in counts.items() if n > 1]
    if dupes:
        raise SourceError(f"{origin}: {len(dupes)} duplicate ids ({sum(counts[d] for d in dupes)} rows), "
                          f"e.g. {', '.join(dupes[:5])}")


def hash_split(rows: Sequence[dict[str, Any]], split: str, test_fraction: float, seed: int) -> list[dict[str, Any]]:
    """Keep the rows of ``split`` when one file must provide both: test iff hash(seed, id) < test_fraction."""
    if not 0.0 <= test_fraction < 1.0:
        raise SourceError(f"source.test_fraction: must be in [0, 1), got {test_fraction}")
    want_test = split == "test"
    return [row for row in rows if (stable_fraction(str(row["id"]), seed) < test_fraction) == want_test]


def _limit_for(settings: Mapping[str, Any], split: str) -> int | None:
    limit = settings.get("limit")
    if isinstance(limit, Mapping):
        limit = limit.get(split)
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise SourceError(f"source.limit: expected a positive integer (or null), got {limit!r}")
    return limit


def load_split(settings: Mapping[str, Any], split: str) -> list[dict[str, Any]]:
    """Return the English rows of ``split`` for a ``source`` config section (any kind)."""
    if split not in SPLITS:
        raise SourceError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    cfg = {**DEFAULTS, **settings}
    kind = cfg["kind"]
    if kind == "synthetic":
        from parallel_scaling.data import synth

        rows = [dict(row) for row in synth.generate_split(dict(settings), split)]
        check_unique_ids(rows, f"synthetic source ({split})")
        bad = [str(row.get("id")) for row in rows if not row.get("question") or not str(row.get("answer", ""))]
        if bad:
            raise SourceError(f"synthetic source ({split}): {len(bad)} rows lack question or answer "
                              f"(e.g. ids {', '.join(bad[:3])})")
        limit = _limit_for(cfg, split)
        return rows[:limit] if limit else rows
    if kind == "file":
        own = cfg.get(split)
        if own:
            rows = records_to_rows(read_records(own, cfg["format"], cfg.get("columns"), key=f"source.{split}"), cfg,
                                   split, str(own))
        else:
            base = cfg.get("train") if split == "test" else None
            if not base:
                raise SourceError(f"source.{split}: no file given (set source.{split}, or source.train to "
                                  "split one file by hash)")
            rows = records_to_rows(read_records(base, cfg["format"], cfg.get("columns"), key="source.train"), cfg,
                                   "train", str(base))
        if not cfg.get("test"):
            rows = hash_split(rows, split, float(cfg["test_fraction"]), int(cfg["split_seed"]))
    elif kind == "huggingface":
        names = {**DEFAULTS["hf_splits"], **(cfg.get("hf_splits") or {})}
        own = names.get(split)
        source_split = split if own else "train"
        split_name = own or names.get("train")
        if not split_name:
            raise SourceError(f"source.hf_splits: neither {split!r} nor 'train' is named")
        records = read_hf_records(cfg, split_name)
        rows = records_to_rows(records, cfg, source_split, f"hf:{cfg.get('hf_name')}[{split_name}]")
        if not names.get("test"):
            rows = hash_split(rows, split, float(cfg["test_fraction"]), int(cfg["split_seed"]))
    else:
        raise SourceError(f"source.kind: expected synthetic, file or huggingface, got {kind!r}")
    limit = _limit_for(cfg, split)
    rows = rows[:limit] if limit else rows
    if not rows:
        origin = cfg.get(split) or cfg.get("train") if kind == "file" else f"hf:{cfg.get('hf_name')}"
        raise SourceError(f"{origin}: 0 {split} rows after splitting/limit (source.{kind}; check source.test_fraction "
                          "and source.limit, or give the file its rows)")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command ``source``: write the English rows of one split as JSONL."""
    parser = argparse.ArgumentParser(prog="source", description="Read the English source into JSONL rows.")
    parser.add_argument("--settings", required=True, help="the config's source section, as JSON (or a JSON file)")
    parser.add_argument("--split", required=True, choices=SPLITS)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        rows = load_split(parse_settings(args.settings), args.split)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = write_jsonl(args.out, rows)
    print(f"source: wrote {n} {args.split} rows to {args.out}", file=sys.stderr)
    return 0
