"""Build one training mixture: English plus k parallel languages (or a monolingual control).

Why the rules below: the study's x-axis is k, the number of parallel languages, so mixtures for
different k must differ *only* in k.

* Item order is a seeded hash of the item id (:func:`item_rank`), independent of k and of which
  languages are present. Every mixture takes the first items of its eligible set in this one order,
  so mixtures nest: under ``keep_available`` all k share the same English items; under
  ``drop_everywhere`` an item of mixture k+1 that was eligible for k is also in k (k+1 only loses
  items that lack a translation in its new language, and refills from further down the same order).
* ``drop_everywhere`` keeps only ids that survived QC in every language *of this mixture*, so a
  mixture's inputs depend on its own languages only: appending a language to the study's order never
  changes the existing mixtures. ``keep_available`` keeps N English items and adds each translation
  that exists (the data is then not perfectly parallel; the composition file records how far).
* ``additive`` budget: N items in each of the k+1 languages, N*(k+1) rows (the paper's setting: data
  grows with k). ``fixed`` budget: N rows in total for every k, i.e. ``N // (k+1)`` items in each
  language; the remainder ``N % (k+1)`` rows are left out (rounding down keeps the mixture parallel,
  so a mixture may hold up to k rows fewer than N).

Output rows ``{"id", "lang", "question", "answer", "solution"}`` are shuffled by a seeded hash, so the
same inputs and seed always give the same bytes. Command ``mixture`` (see :func:`main`).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.jsonl import DataError, read_jsonl, write_json, write_jsonl
from parallel_scaling.dataio import schema
from parallel_scaling.data.source import stable_fraction

BUDGETS = ("additive", "fixed")
POLICIES = ("drop_everywhere", "keep_available")
ROW_FIELDS = ("id", "lang", "question", "answer", "solution")

#: defaults of the config's ``mixtures`` section, from the schema (their one home)
DEFAULTS: dict[str, Any] = schema.defaults("mixtures")


class MixtureError(DataError):
    """The inputs cannot make the requested mixture; the message names the files and counts."""


def item_rank(item_id: str, seed: int) -> float:
    """The position key of an item in every mixture of a seed (independent of k and languages)."""
    return stable_fraction(f"item\x1f{item_id}", seed)


@dataclass
class LanguageRows:
    """One language's QC'd rows by id, with the file they came from (for messages)."""

    lang: str
    path: str
    rows: dict[str, dict[str, Any]]


def language_rows(rows: Sequence[Mapping[str, Any]], path: str, default_lang: str | None = None) -> LanguageRows:
    """Index a parallel file by id; it must hold exactly one language and unique ids."""
    langs = Counter(str(row.get("lang") or default_lang or "") for row in rows)
    if "" in langs:
        raise MixtureError(f"{path}: field 'lang' missing in {langs['']} of {len(rows)} rows")
    if len(langs) != 1:
        raise MixtureError(f"{path}: expected one language, found {dict(langs)}")
    lang = next(iter(langs))
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        missing = [f for f in ("id", "question", "answer") if row.get(f) is None]
        if missing:
            raise MixtureError(f"{path}: row {row.get('id')!r} lacks field(s) {', '.join(missing)}")
        key = str(row["id"])
        if key in by_id:
            raise MixtureError(f"{path}: id {key!r} occurs more than once")
        by_id[key] = {"id": key, "lang": lang, "question": row["question"], "answer": str(row["answer"]),
                      "solution": row.get("solution")}
    return LanguageRows(lang=lang, path=path, rows=by_id)


def items_per_language(budget: str, items: int, n_languages: int) -> int:
    """Items drawn for each language: N (additive) or N // (k+1) (fixed total of N rows)."""
    if budget == "additive":
        return items
    if budget == "fixed":
        return items // n_languages
    raise MixtureError(f"--budget: expected one of {', '.join(BUDGETS)}, got {budget!r}")


def build_mixture(languages: Sequence[LanguageRows], budget: str, items: int, policy: str, seed: int,
                  name: str = "mixture") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Select items and rows; returns the shuffled rows and the composition record.

    ``languages[0]`` is the anchor (English, or the single language of a monolingual mixture): under
    ``keep_available`` its items are chosen and the others contribute what they have.
    """
    if policy not in POLICIES:
        raise MixtureError(f"--policy: expected one of {', '.join(POLICIES)}, got {policy!r}")
    if items < 1:
        raise MixtureError(f"--items: must be at least 1, got {items}")
    codes = [lang.lang for lang in languages]
    repeated = [code for code, n in Counter(codes).items() if n > 1]
    if repeated:
        raise MixtureError(f"mixture {name}: language(s) {', '.join(repeated)} given twice "
                           f"({', '.join(lang.path for lang in languages if lang.lang in repeated)})")
    wanted = items_per_language(budget, items, len(languages))
    if wanted < 1:
        raise MixtureError(f"mixture {name}: fixed budget of {items} rows is less than one item per language "
                           f"for {len(languages)} languages")
    anchor = languages[0]
    if policy == "drop_everywhere":
        eligible = set(anchor.rows)
        for lang in languages[1:]:
            eligible &= set(lang.rows)
    else:
        eligible = set(anchor.rows)
    ordered = sorted(eligible, key=lambda key: (item_rank(key, seed), key))
    chosen = ordered[:wanted]
    if not chosen:
        raise MixtureError(f"mixture {name}: 0 items available in all of {', '.join(codes)} "
                           f"({', '.join(f'{lang.lang} {len(lang.rows)} ({lang.path})' for lang in languages)})")
    if len(chosen) < wanted:
        print(f"warning: mixture {name}: only {len(chosen)} of the {wanted} requested items per language are "
              f"available ({policy}, languages {', '.join(codes)})", file=sys.stderr)
    rows = [lang.rows[key] for key in chosen for lang in languages if key in lang.rows]
    rows.sort(key=lambda row: (stable_fraction(f"row\x1f{row['id']}\x1f{row['lang']}", seed), row["id"], row["lang"]))
    per_lang = Counter(row["lang"] for row in rows)
    composition = {
        "name": name,
        "languages": codes,
        "n_languages": len(codes),
        "budget": budget,
        "items_requested": items,
        "items_per_language_target": wanted,
        "policy": policy,
        "seed": seed,
        "ids": len(chosen),
        "eligible_ids": len(eligible),
        "rows": len(rows),
        "rows_per_language": {code: per_lang.get(code, 0) for code in codes},
        "inputs": {lang.lang: {"path": lang.path, "rows": len(lang.rows)} for lang in languages},
        "shortfall": wanted - len(chosen),
    }
    return [{field: row[field] for field in ROW_FIELDS} for row in rows], composition


def main(argv: list[str] | None = None) -> int:
    """Command ``mixture``: write one mixture's rows (JSONL) and its composition (JSON)."""
    parser = argparse.ArgumentParser(prog="mixture", description="Build one English + k parallel-language mixture.")
    parser.add_argument("--english", type=Path, help="English rows (source or parallel en file)")
    parser.add_argument("--parallel", nargs="*", type=Path, default=[], help="QC'd parallel files, one per language")
    parser.add_argument("--name", required=True)
    parser.add_argument("--budget", choices=BUDGETS, default=DEFAULTS["budget"])
    parser.add_argument("--items", type=int, required=True, help="N: items per language (additive) or rows (fixed)")
    parser.add_argument("--policy", choices=POLICIES, default=DEFAULTS["policy"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--no-english", action="store_true", help="leave English out (monolingual controls)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--composition", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        languages: list[LanguageRows] = []
        if not args.no_english:
            if args.english is None:
                raise MixtureError("--english: required unless --no-english")
            languages.append(language_rows(read_jsonl(args.english), str(args.english), default_lang="en"))
            if languages[0].lang != "en":
                raise MixtureError(f"{args.english}: --english file holds language {languages[0].lang!r}, not 'en'")
        for path in args.parallel:
            languages.append(language_rows(read_jsonl(path), str(path)))
        if not languages:
            raise MixtureError("mixture needs --english or at least one --parallel file")
        rows, composition = build_mixture(languages, args.budget, args.items, args.policy, args.seed, args.name)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_jsonl(args.out, rows)
    write_json(args.composition, composition)
    print(f"mixture {args.name}: {composition['rows']} rows, {composition['ids']} items x {len(languages)} languages",
          file=sys.stderr)
    return 0
