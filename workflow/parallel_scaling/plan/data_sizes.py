"""Enough data for the study's mixtures, known while planning: the English train split and the
imported translations are read and joined as the jobs will, and a study they cannot fill is refused.

Why: a mixture short of items is only a warning in the mixture job (a study may lose a few items to
QC), so a source of a handful of rows, or a translation file whose ids match few source items, ran
the whole study on mixtures far smaller than the config says (2 items per language for a study of
8), and the law was fitted to that. The rows are counted here after everything the jobs do before
QC: the split (``source.test`` or ``source.test_fraction``), ``source.limit``, and the join with each
language's translation file (``import`` backend, also held to ``translation.import.min_coverage``);
QC may still drop items, which the mixture job reports.

Only where the data can be read while planning: a local source file or the synthetic generator
(a Hugging Face source is fetched by its job, which makes the same checks then). The files are read
with the jobs' own readers, so a bad row is refused here with the file and line the job would name.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

from parallel_scaling.dataio.jsonl import DataError
from parallel_scaling.plan.study import ENGLISH, mixtures

#: at most this many short mixtures are named (the rest are counted)
MAX_SHORT = 3


def _quiet(fn: Any, *args: Any) -> Any:
    """Run a job's reader without its console warnings (the job prints them when it runs)."""
    with contextlib.redirect_stderr(io.StringIO()):
        return fn(*args)


def data_size_errors(config: dict[str, Any]) -> list[str]:
    """Problems of a study whose data leave a mixture fewer items than it asks for, or whose
    translation file covers too little of the source; [] where the data cannot be read here."""
    from parallel_scaling.data import source, translate
    from parallel_scaling.data.mixture import items_per_language

    src = config["source"]
    if src["kind"] not in ("file", "synthetic"):
        return []
    origin = str(src.get("train") or "the synthetic source") if src["kind"] == "file" else "the synthetic source"
    try:
        train = _quiet(source.load_split, src, "train")
    except DataError as exc:
        return [f"source.train: {exc}"]
    n_train = len(train)
    ids = {ENGLISH: {str(r["id"]) for r in train}}
    files: dict[str, str] = {}
    errors: list[str] = []
    langs = sorted({lg for m in mixtures(config) for lg in m.langs} - {ENGLISH})
    t = config["translation"]
    for lang in langs:
        if t["backend"] != "import":
            ids[lang] = ids[ENGLISH]  # a model or a template translates every item
            continue
        cfg = {**translate.DEFAULTS["import"], **(t.get("import") or {})}
        try:
            result = _quiet(translate.import_rows, train, lang, cfg)
        except DataError as exc:
            errors.append(f"translation.import.path: {exc}")
            continue
        problem = translate.coverage_error(result, n_train, origin, float(cfg["min_coverage"]))
        if problem:
            errors.append(f"translation.import.min_coverage: {problem}")
        ids[lang] = {r["id"] for r in result.rows}
        files[lang] = str(result.path)
    if errors:
        return errors
    mix = config["mixtures"]
    short = []
    for m in mixtures(config):
        wanted = items_per_language(mix["budget"], int(mix["items"]), len(m.langs))
        if mix["policy"] == "drop_everywhere":
            have = set.intersection(*(ids[lg] for lg in m.langs))
        else:  # the anchor's items; the other languages give what they have
            have = ids[m.langs[0]]
        if len(have) < wanted:
            short.append((m, wanted, len(have)))
    if not short:
        return []
    m, wanted, have = short[0]
    joined = ", ".join(f"{lg} {len(ids[lg])} ({files[lg]})" for lg in m.langs if lg in files)
    where = (f"{n_train} train rows in {origin} (after source.test_fraction / source.test and source.limit)"
             + (f", with a translation: {joined}" if joined else ""))
    more = [f"{x.name} ({h} of {w})" for x, w, h in short[1:MAX_SHORT + 1]]
    if len(short) > MAX_SHORT + 1:
        more.append(f"{len(short) - MAX_SHORT - 1} more")
    return [f"mixtures.items: mixture {m.name} ({'+'.join(m.langs)}) asks for {wanted} items per language "
            f"({mix['budget']} budget of {mix['items']}, {mix['policy']}) but the data give {have}: {where}"
            + (f"; also short: {', '.join(more)}" if more else "")
            + "; lower mixtures.items, or give the study more data (source.limit, source.test_fraction, "
              "more English rows or translations)"]
