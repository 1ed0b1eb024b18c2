"""Quality control of translated rows against their English source.

Why: parallel data is only parallel if each copy is the same problem in the intended language. A
"translation" that is the untouched English text (MGSM8KInstruct has hundreds), a reply in the wrong
language, a changed quantity (the English answer no longer fits) or a truncated / run-away output
would silently make the multilingual mixtures partly monolingual or wrong. Each check is
configurable, and every dropped item keeps the reason (the first failing check) plus all failing
checks, so the per-language table shows what the translation cost.

Checks, in order: ``empty`` output; ``untranslated`` (identical to the English question up to
whitespace and case); ``wrong_language`` (offline language identification disagrees with the
target); ``numbers`` (a number of the English question is absent from the translation, with a
tolerance for small numbers that translators spell out, e.g. "两", "viermal"); ``length_ratio``
(characters translated / English outside a script-aware range: CJK text is much shorter).

Commands: ``qc`` (one language) and ``qc-table`` (:func:`qc_table_main`, per-language summary).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.jsonl import DataError, read_jsonl, write_jsonl
from parallel_scaling.dataio import schema
from parallel_scaling.scoring.numbers import extract_numbers
from parallel_scaling.dataio.jsonl import parse_settings

#: drop reasons, in the order the checks run (``missing_translation``: no translated row at all)
REASONS = ("missing_translation", "empty", "untranslated", "wrong_language", "numbers", "length_ratio")

REPORT_COLUMNS = ("id", "lang", "status", "reason", "reasons", "detail")

#: languages written without spaces in compact scripts: about a third of the English character count
CJK_LANGUAGES = ("zh", "ja", "ko", "yue", "wuu")

#: defaults of the config's ``qc`` section, from the schema (their one home)
DEFAULTS: dict[str, Any] = schema.defaults("qc")


class QCError(DataError):
    """QC cannot run or leaves nothing: the message names the file and the counts."""


def merged_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Each check's settings over its defaults (a partial config only changes what it names)."""
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise QCError(f"qc: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}")
    out: dict[str, Any] = {"enabled": bool(settings.get("enabled", True))}
    for name, default in DEFAULTS.items():
        if isinstance(default, dict):
            out[name] = {**default, **(settings.get(name) or {})}
    return out


# --------------------------------------------------------------------------------------------------
# the checks: pure functions returning a detail string when the row fails, else None


def identify_language(text: str, candidates: Sequence[str]) -> tuple[str, float]:
    """The one place QC asks for a language label (``language.identify``: offline py3langid)."""
    from parallel_scaling.scoring.language import identify

    return identify(text, candidates)


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def check_empty(text: str, cfg: Mapping[str, Any]) -> str | None:
    """Fails on no (or almost no) output, e.g. a reply cut off inside a reasoning block."""
    n = len(text.strip())
    return f"{n} chars < min_chars {cfg['min_chars']}" if n < int(cfg["min_chars"]) else None


def check_untranslated(text: str, english: str) -> str | None:
    """Fails when the 'translation' is the English question itself."""
    return "identical to the English question" if _squash(text) == _squash(english) else None


def check_language(text: str, lang: str, cfg: Mapping[str, Any]) -> str | None:
    """Fails when the identifier confidently picks another language than ``lang`` among the candidates."""
    candidates = sorted(set(cfg.get("candidates") or []) | {lang, "en"})
    label, prob = identify_language(text, candidates)
    if label not in {lang, "und"} and prob >= float(cfg["min_confidence"]):
        return f"identified {label} ({prob:.2f})"
    return None


def check_numbers(text: str, english: str, cfg: Mapping[str, Any]) -> str | None:
    """Fails when numbers of the English question are missing from the translation.

    Missing numbers up to ``spelled_out_max`` are excused (translators write "two", "两", "viermal");
    of the rest, at most ``max_missing_fraction`` of the English numbers may be missing.
    """
    english_numbers = extract_numbers(english)
    total = sum(english_numbers.values())
    if not total:
        return None
    missing = english_numbers - extract_numbers(text, translated=True)
    small = int(cfg["spelled_out_max"])
    hard = sorted((n for n in missing.elements() if float(n) > small or "." in n), key=lambda n: (len(n), n))
    if len(hard) > float(cfg["max_missing_fraction"]) * total:
        return f"missing {len(hard)} of {total} numbers: {','.join(hard[:8])}"
    return None


def ratio_bounds(lang: str, cfg: Mapping[str, Any]) -> tuple[float, float]:
    """The allowed length-ratio range for ``lang``: per-language override, else CJK or default."""
    per = cfg.get("per_language") or {}
    if lang in per:
        lo, hi = per[lang]
    elif lang in (cfg.get("cjk_languages") or ()):
        lo, hi = cfg["cjk"]
    else:
        lo, hi = cfg["default"]
    return float(lo), float(hi)


def check_length_ratio(text: str, english: str, lang: str, cfg: Mapping[str, Any]) -> str | None:
    """Fails on truncated or run-away outputs: chars translated / chars English outside the bounds."""
    lo, hi = ratio_bounds(lang, cfg)
    ratio = len(text.strip()) / max(1, len(english.strip()))
    return f"ratio {ratio:.2f} outside [{lo}, {hi}]" if not lo <= ratio <= hi else None


def check_row(text: str, english: str, lang: str, cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """All failing checks of one translation as ``(reason, detail)``, in :data:`REASONS` order."""
    if not cfg["enabled"]:
        return []
    failures: list[tuple[str, str]] = []
    if cfg["empty"]["enabled"]:
        detail = check_empty(text, cfg["empty"])
        if detail:
            return [("empty", detail)]  # nothing else is meaningful on an empty output
    if cfg["untranslated"]["enabled"] and (detail := check_untranslated(text, english)):
        failures.append(("untranslated", detail))
    if cfg["language"]["enabled"] and (detail := check_language(text, lang, cfg["language"])):
        failures.append(("wrong_language", detail))
    if cfg["numbers"]["enabled"] and (detail := check_numbers(text, english, cfg["numbers"])):
        failures.append(("numbers", detail))
    if cfg["length_ratio"]["enabled"] and (detail := check_length_ratio(text, english, lang, cfg["length_ratio"])):
        failures.append(("length_ratio", detail))
    return failures


# --------------------------------------------------------------------------------------------------
# the file as a whole: is each row the translation of the English item it is joined to?


def number_agreement(english: str, translated: str) -> float | None:
    """Share of the English text's numbers (a multiset, *every* size: a shifted file of small
    synthetic operands must not pass) found in the translation; None when the English has none."""
    wanted = extract_numbers(english)
    total = sum(wanted.values())
    if not total:
        return None
    return sum((wanted & extract_numbers(translated, translated=True)).values()) / total


def _mean_agreement(pairs: Sequence[tuple[str, str, str]], offset: int) -> tuple[float, int]:
    """Mean agreement when English item ``i`` is paired with translation ``i + offset``."""
    scores = []
    for i, (_, english, _) in enumerate(pairs):
        j = i + offset
        if 0 <= j < len(pairs):
            score = number_agreement(english, pairs[j][2])
            if score is not None:
                scores.append(score)
    return (sum(scores) / len(scores) if scores else 0.0), len(scores)


def _length_correlation(pairs: Sequence[tuple[str, str, str]]) -> float | None:
    """Pearson correlation of log lengths, English vs translation (aligned files: above 0.9)."""
    import math

    xs = [math.log(1 + len(e)) for _, e, _ in pairs]
    ys = [math.log(1 + len(t)) for _, _, t in pairs]
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    if not sx or not sy:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (sx * sy)


def check_alignment(pairs: Sequence[tuple[str, str, str]], cfg: Mapping[str, Any], origin: str) -> str | None:
    """Why a translation file is not aligned with its English source, or None when it is.

    ``pairs`` are ``(id, English question, translation)`` in source order. A translation keeps the
    numbers of its problem (about 98 % of them in MGSM8KInstruct; spelled-out ones are the rest),
    while a file whose ids are shifted by one row keeps 10-20 % by chance; so the mean share of
    each English item's numbers found in its joined translation decides, and the offsets -3..3
    show whether the file is merely shifted. The length correlation is reported alongside.
    """
    if not cfg.get("enabled", True):
        return None
    aligned, n = _mean_agreement(pairs, 0)
    if n < int(cfg["min_rows"]) or aligned >= float(cfg["min_agreement"]):
        return None
    best = max((o for o in (-3, -2, -1, 1, 2, 3)), key=lambda o: _mean_agreement(pairs, o)[0])
    shifted, _ = _mean_agreement(pairs, best)
    corr = _length_correlation(pairs)
    lengths = f"; lengths correlate {corr:.2f} (aligned files: above 0.9)" if corr is not None else ""
    detail = (f"{origin}: the translations do not match the English items they are joined to by id: on average "
              f"{100 * aligned:.0f}% of an item's numbers appear in its translation (aligned files: above 90%; "
              f"qc.alignment.min_agreement {cfg['min_agreement']}){lengths}")
    if shifted >= max(float(cfg["min_agreement"]), aligned + 0.3):
        i = max(0, -best)
        example = (f" (e.g. the row joined to {pairs[i + best][0]!r} translates {pairs[i][0]!r})"
                   if 0 <= i + best < len(pairs) else "")
        detail += (f"; paired {best:+d} row(s) away they match ({100 * shifted:.0f}%): the ids look shifted by "
                   f"{abs(best)} row(s){example}")
    return detail + "; fix the ids (translation.import.id_field / id_template) or the file"


# --------------------------------------------------------------------------------------------------
# one language


@dataclass
class QCResult:
    """Kept rows, one report record per source item, and the counts per reason."""

    kept: list[dict[str, Any]]
    report: list[dict[str, str]]
    counts: Counter[str]


def run_qc(source: Sequence[Mapping[str, Any]], translated: Sequence[Mapping[str, Any]], lang: str,
           settings: Mapping[str, Any], origin: str = "translated") -> QCResult:
    """QC one language: every source item ends up kept, dropped (with reasons) or missing."""
    cfg = merged_settings(settings)
    by_id: dict[str, Mapping[str, Any]] = {}
    for row in translated:
        key = str(row["id"])
        if key in by_id:
            raise QCError(f"{origin}: id {key!r} occurs more than once")
        by_id[key] = row
    source_ids = {str(row["id"]) for row in source}
    strangers = [key for key in by_id if key not in source_ids]
    if strangers:
        raise QCError(f"{origin}: {len(strangers)} of {len(by_id)} rows have ids not in the English source "
                      f"(e.g. {', '.join(strangers[:5])}); translate and QC must use the same source")
    wrong_lang = [key for key, row in by_id.items() if row.get("lang", lang) != lang]
    if wrong_lang:
        raise QCError(f"{origin}: field 'lang' is not {lang!r} in {len(wrong_lang)} rows (e.g. {wrong_lang[0]})")
    if lang != "en" and cfg["enabled"]:
        pairs = [(str(src["id"]), str(src["question"]), str(by_id[str(src["id"])].get("question") or ""))
                 for src in source if str(src["id"]) in by_id]
        problem = check_alignment(pairs, cfg["alignment"], origin)
        if problem:
            raise QCError(problem)
    kept: list[dict[str, Any]] = []
    report: list[dict[str, str]] = []
    counts: Counter[str] = Counter()
    for src in source:
        key = str(src["id"])
        row = by_id.get(key)
        if row is None:
            failures = [("missing_translation", "no translated row")]
        elif lang == "en":
            failures = []
        else:
            failures = check_row(str(row.get("question") or ""), str(src["question"]), lang, cfg)
        if failures:
            counts[failures[0][0]] += 1
            report.append({"id": key, "lang": lang, "status": "dropped", "reason": failures[0][0],
                           "reasons": ",".join(r for r, _ in failures), "detail": "; ".join(d for _, d in failures)})
        else:
            counts["kept"] += 1
            kept.append(dict(row))
            report.append({"id": key, "lang": lang, "status": "kept", "reason": "", "reasons": "", "detail": ""})
    return QCResult(kept=kept, report=report, counts=counts)


def _cell(value: str) -> str:
    return " ".join(str(value).split())


def write_report(path: str | Path, report: Sequence[Mapping[str, str]]) -> None:
    """TSV with one line per source item (kept ones included, so totals can be recomputed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(REPORT_COLUMNS) + "\n")
        for record in report:
            handle.write("\t".join(_cell(record.get(c, "")) for c in REPORT_COLUMNS) + "\n")


def read_report(path: str | Path) -> list[dict[str, str]]:
    """Read a QC report written by :func:`write_report`, checking its header."""
    path = Path(path)
    if not path.is_file():
        raise QCError(f"{path}: QC report not found")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in REPORT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise QCError(f"{path}: not a QC report, header lacks {', '.join(missing)}")
        return list(reader)


def main(argv: list[str] | None = None) -> int:
    """Command ``qc``: keep the rows that pass, report every item's status and reasons."""
    parser = argparse.ArgumentParser(prog="qc", description="Quality-control translated rows of one language.")
    parser.add_argument("--source", required=True, type=Path, help="English source JSONL")
    parser.add_argument("--translated", required=True, type=Path, help="raw translated JSONL of --lang")
    parser.add_argument("--lang", required=True)
    parser.add_argument("--out", required=True, type=Path, help="kept rows (JSONL)")
    parser.add_argument("--report", required=True, type=Path, help="TSV: id, lang, status, reason, reasons, detail")
    parser.add_argument("--settings", default="{}", help="the config's qc section, as JSON (or a JSON file)")
    args = parser.parse_args(argv)
    try:
        settings = parse_settings(args.settings)
        source = read_jsonl(args.source, required=("id", "question", "answer"))
        translated = read_jsonl(args.translated, required=("id", "question"))
        origin = translated_origin(args.translated)
        result = run_qc(source, translated, args.lang, settings, origin=origin)
        other = wrong_language_majority(result, args.lang)
        if other:
            raise QCError(f"{origin}: {other}")
        if not result.kept:
            dropped = ", ".join(f"{r} {n}" for r, n in result.counts.items() if r != "kept")
            raise QCError(f"{origin}: no {args.lang} row passes QC ({len(translated)} translated rows for "
                          f"{len(source)} source items; dropped: {dropped})")
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_jsonl(args.out, result.kept)
    write_report(args.report, result.report)
    dropped = ", ".join(f"{r} {result.counts[r]}" for r in REASONS if result.counts[r])
    summary = f"qc: {args.lang}: kept {result.counts['kept']} of {len(source)}"
    print(summary + (f" (dropped: {dropped})" if dropped else ""), file=sys.stderr)
    if result.counts["kept"] < (1 - DROP_WARNING) * len(source):
        from parallel_scaling.dataio.console import warn

        warn(f"{origin}: QC keeps only {result.counts['kept']} of {len(source)} {args.lang} items (dropped: {dropped}); "
             f"only the kept ones are trained on (reasons per item: {args.report})")
    return 0


#: QC dropping more than this share of a language's items is worth a console warning
DROP_WARNING = 0.1


def translated_origin(path: str | Path) -> str:
    """How messages name a translated file: with the file it was imported from, when it was
    (read from the ``.meta.json`` sidecar that ``translate`` writes), since that is the file to fix."""
    import json

    meta = Path(path).with_name(Path(path).name.rsplit(".", 1)[0] + ".meta.json")
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return str(path)
    if isinstance(record, dict) and record.get("backend") == "import" and record.get("file"):
        return f"{record['file']} (imported as {path}; translation.import.path)"
    return str(path)


def wrong_language_majority(result: QCResult, lang: str) -> str | None:
    """A message when most rows are identified as one other language: the file of another language
    (French imported as German), not a few bad translations."""
    labels = Counter(r["detail"].split("identified ", 1)[1].split(" ", 1)[0] for r in result.report
                     if "wrong_language" in r["reasons"].split(",") and "identified " in r["detail"])
    if not labels:
        return None
    label, n = labels.most_common(1)[0]
    if n * 2 <= len(result.report):
        return None
    return (f"{n} of {len(result.report)} rows are identified as {label!r}, not {lang!r}: is this the {label} "
            f"file? Point the {lang} translation at the {lang} file")


# --------------------------------------------------------------------------------------------------
# qc-table


def summarise(report: Sequence[Mapping[str, str]], lang: str | None = None) -> dict[str, Any]:
    """One table row: totals and drops per reason (``kept + sum(drops) == total``)."""
    langs = {r["lang"] for r in report}
    label = lang or (langs.pop() if len(langs) == 1 else ",".join(sorted(langs)))
    reasons = Counter(r["reason"] for r in report if r["status"] == "dropped")
    row: dict[str, Any] = {"lang": label, "total": len(report),
                           "kept": sum(1 for r in report if r["status"] == "kept")}
    row["dropped"] = row["total"] - row["kept"]
    row["kept_pct"] = round(100.0 * row["kept"] / row["total"], 1) if row["total"] else 0.0
    for reason in REASONS:
        row[reason] = reasons.get(reason, 0)
    return row


def qc_table(reports: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The per-language table from QC report files (one row per report, in the given order)."""
    rows = []
    for path in reports:
        records = read_report(path)
        if not records:
            raise QCError(f"{path}: QC report has no rows")
        rows.append(summarise(records))
    return rows


def table_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as a GitHub Markdown table (for the report)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" if c == "lang" else "---:" for c in columns) + "|"]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def qc_table_main(argv: list[str] | None = None) -> int:
    """Command ``qc-table``: ``qc-table --reports R1.tsv [R2.tsv ...] --csv T.csv --markdown T.md``."""
    parser = argparse.ArgumentParser(prog="qc-table", description="Per-language table of QC results.")
    parser.add_argument("--reports", required=True, nargs="+", type=Path)
    parser.add_argument("--csv", required=True, type=Path)
    parser.add_argument("--markdown", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        rows = qc_table(args.reports)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, text in ((args.csv, table_csv(rows)), (args.markdown, table_markdown(rows))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0
