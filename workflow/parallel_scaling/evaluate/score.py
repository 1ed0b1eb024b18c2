"""``score`` command: grade JSONL model outputs and summarise accuracy per language.

Two uses, one code path so pipeline numbers and re-scored external outputs are comparable:

* pipeline: ``score IN.jsonl [IN.jsonl ...] --out OUT.jsonl`` — one process scores every
  benchmark x language file of a checkpoint into one scored file (rows carry ``response``,
  ``gold``, ``lang``, ``benchmark`` and optionally ``answer_type``; every input field is kept and
  the score fields are added). One file per checkpoint, not per language, halves the files the
  DAG tracks at paper scale;
* researchers: ``score FILE.jsonl --response-field F --gold-field G --lang-field L`` on outputs
  produced elsewhere.

Both print a per-language CSV (``lang,n,correct,accuracy,no_answer,off_target_rate`` plus an
``all`` row) to stdout; ``--difficulty-weights`` adds a ``weighted_accuracy`` column after
``accuracy`` (PolyMath's difficulty-weighted accuracy, from each row's ``difficulty`` field). Bad input is reported as ``FILE:LINE: message`` (exit code 2); a bad
*response* (empty, no answer, unparseable) is data and is scored incorrect with a reason.

Reasoning-model outputs (a thinking part closed by ``</think>``) are read in their final part; when
any response has a thinking part the CSV gains ``unfinished`` (responses cut off in their thinking or
with nothing after it, scored as ``--unfinished-answer`` says) and ``thinking_off_target_rate``
(``off_target_rate`` is then that of the answer parts). See docs/scoring.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from parallel_scaling.scoring.answers import ANSWER_TYPES
from parallel_scaling.scoring.grading import score_response
from parallel_scaling.dataio.jsonl import DataError, read_jsonl_lines, write_jsonl
from parallel_scaling.dataio import schema
from parallel_scaling.scoring.language import supported_languages
from parallel_scaling.scoring.thinking import FINISH_REASONS, UNFINISHED_POLICIES, UNFINISHED_STATES
from parallel_scaling.scoring.difficulty import difficulty_level, difficulty_weighted_accuracy

#: The config section ``scoring``'s defaults (the schema holds them; the command's options default to them).
DEFAULTS: dict[str, Any] = schema.defaults("scoring")

#: Fields added to every scored row (existing fields of the same name are overwritten).
SCORE_FIELDS: tuple[str, ...] = (
    "extracted", "method", "correct", "reason", "response_lang", "off_target",
    "thinking_lang", "thinking_off_target", "final_part",
)

#: Columns of the per-language summary, in CSV order.
SUMMARY_COLUMNS: tuple[str, ...] = ("lang", "n", "correct", "accuracy", "no_answer", "off_target_rate")

#: Columns appended to the summary when some response has a thinking part (reasoning models).
REASONING_COLUMNS: tuple[str, ...] = ("unfinished", "thinking_off_target_rate")


class ScoreInputError(DataError):
    """Malformed scoring input; ``str()`` is ``FILE:LINE: message`` for direct display.

    A :class:`~parallel_scaling.dataio.jsonl.DataError` (hence a ``ValueError``) like every other
    malformed-file error in the pipeline, but also carrying ``source``/``line``/``message``.
    """

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source, self.line, self.message = source, line, message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


def read_jsonl(path: str | Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows of a JSONL file and their 1-based line numbers (blank lines skipped).

    Raises :class:`ScoreInputError` naming the line for invalid JSON or a non-object row.
    """
    pairs = read_jsonl_lines(path)  # DataError names the file and line
    return [row for _, row in pairs], [lineno for lineno, _ in pairs]


def _field(row: dict[str, Any], name: str, source: str, line: int) -> Any:
    if name not in row:
        present = ", ".join(sorted(row)) or "none"
        raise ScoreInputError(source, line, f"missing field {name!r} (fields present: {present})")
    return row[name]


def score_rows(
    rows: Iterable[dict[str, Any]],
    response_field: str = "response",
    gold_field: str = "gold",
    lang_field: str = "lang",
    answer_type: str | None = None,
    answer_type_field: str = "answer_type",
    candidates: Sequence[str] | None = None,
    source: str = "<rows>",
    line_numbers: Sequence[int] | None = None,
    unfinished: str = "none",
) -> list[dict[str, Any]]:
    """Score every row, returning copies with :data:`SCORE_FIELDS` added.

    ``answer_type`` overrides the per-row ``answer_type_field`` (which defaults to ``number``
    when absent). A ``null`` response counts as empty (a failed generation), whereas a missing
    field, a null gold or an unknown answer type is an input error naming ``source:line``
    (``line_numbers`` gives file lines; otherwise the 1-based row position is used). ``unfinished``
    is what a response cut off in its thinking is scored as (``none`` or ``thinking``). A row's
    ``prompt`` (one whose last thinking marker is ``<think>`` opens the thinking) and ``finish_reason`` (``eos``,
    ``length``, ``stop_string`` or null; rows without it are read from their text) tell a cut
    response from a finished one (docs/scoring.md).
    """
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {answer_type!r}; choose from {', '.join(ANSWER_TYPES)}")
    scored = []
    for i, row in enumerate(rows):
        line = line_numbers[i] if line_numbers is not None else i + 1
        response = _field(row, response_field, source, line)
        gold = _field(row, gold_field, source, line)
        lang = _field(row, lang_field, source, line)
        if response is None:
            response = ""
        if not isinstance(response, str):
            raise ScoreInputError(source, line, f"field {response_field!r} must be a string, got {type(response).__name__}")
        if gold is None or isinstance(gold, (dict, list)) or str(gold).strip() == "":
            raise ScoreInputError(source, line, f"field {gold_field!r} must be a non-empty string or number, got {gold!r}")
        if not isinstance(lang, str) or not lang:
            raise ScoreInputError(source, line, f"field {lang_field!r} must be a language code, got {lang!r}")
        row_type = answer_type if answer_type is not None else row.get(answer_type_field) or "number"
        if row_type not in ANSWER_TYPES:
            raise ScoreInputError(
                source, line, f"field {answer_type_field!r} is {row_type!r}; expected one of {', '.join(ANSWER_TYPES)}"
            )
        prompt, finish_reason = row.get("prompt"), row.get("finish_reason")
        if finish_reason is not None and finish_reason not in FINISH_REASONS:
            raise ScoreInputError(
                source, line, f"field 'finish_reason' is {finish_reason!r}; expected one of {', '.join(FINISH_REASONS)} or null"
            )
        try:
            result = score_response(
                response, str(gold), lang, row_type, candidates, unfinished,
                prompt if isinstance(prompt, str) else None, finish_reason,
                row["question"] if isinstance(row.get("question"), str) else None,
            )
        except ValueError as exc:  # e.g. a language code py3langid does not know
            raise ScoreInputError(source, line, str(exc)) from exc
        scored.append({**row, **result})
    return scored


def per_language_summary(
    scored: list[dict[str, Any]],
    lang_field: str = "lang",
    weights: Mapping[str, float] | None = None,
    difficulty_field: str = "difficulty",
) -> pd.DataFrame:
    """Per-language accuracy table (columns :data:`SUMMARY_COLUMNS`), sorted, plus an ``all`` row.

    ``no_answer`` counts responses with nothing extracted; ``off_target_rate`` is the share of
    responses identified in another language than the row's. With ``weights`` (level -> weight),
    ``weighted_accuracy`` follows ``accuracy`` (:func:`~parallel_scaling.scoring.difficulty.difficulty_weighted_accuracy` of the
    rows' ``difficulty_field``); a row without a level or with an unweighted one is a ValueError.
    When a row has a thinking part, :data:`REASONING_COLUMNS` follow: ``unfinished`` counts responses
    whose final part is missing (thinking cut off, or nothing after it), ``thinking_off_target_rate``
    is the off-target share among the thinking parts (NaN for a language without any).
    """
    columns = list(SUMMARY_COLUMNS)
    if weights:
        columns.insert(columns.index("accuracy") + 1, "weighted_accuracy")
    reasoning = any(r.get("thinking_lang") is not None or r.get("final_part") not in (None, "absent") for r in scored)
    if reasoning:
        columns += REASONING_COLUMNS
    if not scored:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "lang": [str(r[lang_field]) for r in scored],
            "correct": [bool(r["correct"]) for r in scored],
            "no_answer": [r["extracted"] is None for r in scored],
            "off_target": [bool(r["off_target"]) for r in scored],
            "unfinished": [r.get("final_part") in UNFINISHED_STATES for r in scored],
            # None (no thinking part) drops out of the mean
            "thinking_off_target": [
                None if r.get("thinking_off_target") is None else float(r["thinking_off_target"]) for r in scored
            ],
        }
    )
    if weights:
        levels = [difficulty_level(r.get(difficulty_field)) for r in scored]
        lacking = [i for i, level in enumerate(levels) if level is None]
        if lacking:
            raise ValueError(f"--difficulty-weights: {len(lacking)} rows have no field {difficulty_field!r} "
                             f"(first: row {lacking[0] + 1})")
        frame["difficulty"] = levels

    def summarise(group: pd.DataFrame, lang: str) -> dict[str, Any]:
        n = len(group)
        out = {
            "lang": lang,
            "n": n,
            "correct": int(group["correct"].sum()),
            "accuracy": float(group["correct"].mean()),
            "no_answer": int(group["no_answer"].sum()),
            "off_target_rate": float(group["off_target"].mean()),
        }
        if reasoning:
            out["unfinished"] = int(group["unfinished"].sum())
            out["thinking_off_target_rate"] = float(group["thinking_off_target"].astype(float).mean())
        if weights:
            out["weighted_accuracy"] = difficulty_weighted_accuracy(
                group["correct"].tolist(), group["difficulty"].tolist(), weights
            )
        return out

    records = [summarise(group, str(lang)) for lang, group in frame.groupby("lang", sort=True)]
    records.append(summarise(frame, "all"))
    return pd.DataFrame.from_records(records, columns=columns)


def _level_weights(text: str) -> dict[str, float]:
    """``--difficulty-weights``: a JSON object of level -> positive weight."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg})") from None
    if not isinstance(value, dict) or not value or not all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in value.values()
    ):
        raise argparse.ArgumentTypeError('expected {"level": positive weight, ...}')
    return {str(k): float(w) for k, w in value.items()}


def build_parser() -> argparse.ArgumentParser:
    """CLI options; the field options let researchers re-score outputs with other field names."""
    parser = argparse.ArgumentParser(
        prog="score",
        description="Score model responses in a JSONL file and print per-language accuracy as CSV.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="JSONL file(s) with one response per line")
    parser.add_argument("--out", help="write the rows of all inputs, in order, plus score fields to this JSONL file")
    parser.add_argument("--response-field", default="response", help="field holding the model response")
    parser.add_argument("--gold-field", default="gold", help="field holding the gold answer")
    parser.add_argument("--lang-field", default="lang", help="field holding the expected language code")
    parser.add_argument(
        "--answer-type",
        choices=ANSWER_TYPES,
        help="answer type for every row (default: each row's 'answer_type' field, else number)",
    )
    parser.add_argument(
        "--difficulty-weights",
        type=_level_weights,
        help='JSON {level: weight}: add a difficulty-weighted accuracy column, e.g. '
        '\'{"low": 1, "medium": 2, "high": 4, "top": 8}\' (PolyMath)',
    )
    parser.add_argument(
        "--difficulty-field", default="difficulty", help="field holding each row's difficulty level"
    )
    parser.add_argument(
        "--unfinished-answer",
        choices=UNFINISHED_POLICIES,
        default=DEFAULTS["unfinished_answer"],
        help="what a reasoning model's response cut off in its thinking (no </think>) or with nothing after "
        "</think> is scored as: none = no answer (default), thinking = the answer its thinking reaches",
    )
    parser.add_argument(
        "--lid-candidates",
        help="comma-separated language codes to restrict language identification to (default: all py3langid languages)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``score`` command; returns 0, or 2 on malformed input."""
    args = build_parser().parse_args(argv)
    candidates = [c.strip() for c in args.lid_candidates.split(",") if c.strip()] if args.lid_candidates else None
    if candidates is not None:
        unknown = sorted(set(candidates) - set(supported_languages()))
        if unknown or not candidates:
            print(f"error: --lid-candidates: unsupported language code(s) {', '.join(unknown) or '(none given)'}", file=sys.stderr)
            return 2
    scored: list[dict[str, Any]] = []
    for src in args.inputs:
        try:
            rows, lines = read_jsonl(src)
            part = score_rows(
                rows,
                response_field=args.response_field,
                gold_field=args.gold_field,
                lang_field=args.lang_field,
                answer_type=args.answer_type,
                candidates=candidates,
                source=src,
                line_numbers=lines,
                unfinished=args.unfinished_answer,
            )
        except DataError as exc:  # ScoreInputError or a malformed file
            print(f"error: {exc}", file=sys.stderr)
            return 2
        scored += part
    if args.out:
        write_jsonl(args.out, scored)  # atomic: a killed job never leaves a half-written OUT
    try:
        summary = per_language_summary(scored, args.lang_field, args.difficulty_weights, args.difficulty_field)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary.to_csv(sys.stdout, index=False, float_format="%.4f", lineterminator="\n")
    return 0
