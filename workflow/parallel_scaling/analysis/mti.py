"""The Multilingual Transferability Index (MTI): how much of a checkpoint's gain reaches unseen languages.

Third step of ``analyze``, on the long accuracy table of :mod:`.accuracy`; :mod:`.series` also
uses :func:`mti` as one choice of the law's y. The MTI is ours, not a library's: the paper names
it without publishing a formula, so :func:`mti` states the three variants it computes. Undefined
cases raise :class:`MTIError`, which tables turn into NaN plus a note, never inf.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from parallel_scaling.analysis.items import CHECKPOINT_KEYS, language_order, sort_rows

#: Formulas accepted by :func:`mti`.
MTI_FORMULAS: tuple[str, ...] = ("ratio", "headroom", "normalized")


class MTIError(ValueError):
    """The MTI is undefined for these inputs (zero baseline, zero seen gain, no unseen language...)."""


def mti(
    trained: Mapping[str, float],
    initial: Mapping[str, float],
    seen: Sequence[str],
    unseen: Sequence[str],
    formula: str = "ratio",
    eps: float = 1e-9,
) -> float:
    """Multilingual Transferability Index of a trained checkpoint against the initial model.

    Notation: for language l, t_l = trained accuracy, a_l = initial accuracy; S = ``seen``
    (trained) languages, U = ``unseen`` languages; mean_L is the unweighted mean over L.

    ``ratio`` (default)::

        r_l  = (t_l - a_l) / a_l                     relative gain
        MTI  = mean_U r_l / mean_S r_l

      1 means unseen languages improved (relatively) as much as trained ones, 0 no transfer,
      negative means unseen languages got worse.

    ``headroom`` (ratio of headroom-normalised gains, the Transferability Index of Huan et al.
    2025 with relative gain replaced by gain over remaining headroom, so that languages that start
    near the ceiling are not penalised)::

        h_l  = (t_l - a_l) / (1 - a_l)
        MTI  = mean_U h_l / mean_S h_l

    ``normalized`` (headroom gains standardised by their spread across languages: a scale-free
    effect size, because dividing each h_l by a common spread would cancel in a ratio)::

        h_l  = (t_l - a_l) / (1 - a_l)
        s    = sqrt( mean_{S u U} (h_l - mean_{S u U} h)^2 )      population std over all languages
        MTI  = (mean_U h_l - mean_S h_l) / s

      0 means unseen languages gained the same share of their headroom as trained ones; -1 means
      they lag by one cross-language standard deviation. Its scale differs from the two ratios.

    Undefined cases raise :class:`MTIError` (tables turn it into NaN plus a ``note``, never inf):
    empty S or U; a language missing from ``trained`` or ``initial``; ``ratio`` with a_l <= eps
    (relative gain undefined); ``headroom``/``normalized`` with a_l >= 1 - eps (no headroom);
    |mean_S gain| <= eps for the two ratios (training did not move trained languages, so the
    ratio has no meaning); s <= eps for ``normalized`` (all languages gained identically).
    """
    if formula not in MTI_FORMULAS:
        raise MTIError(f"unknown MTI formula {formula!r}; choose from {', '.join(MTI_FORMULAS)}")
    seen_l, unseen_l = list(seen), list(unseen)
    if not seen_l:
        raise MTIError("MTI needs at least one seen (trained) language")
    if not unseen_l:
        raise MTIError("MTI needs at least one unseen language")
    overlap = set(seen_l) & set(unseen_l)
    if overlap:
        raise MTIError(f"languages both seen and unseen: {', '.join(sorted(overlap))}")
    langs = seen_l + unseen_l
    for lang in langs:
        if lang not in trained:
            raise MTIError(f"no trained accuracy for language {lang!r}")
        if lang not in initial:
            raise MTIError(f"no initial-model accuracy for language {lang!r}")
    t = {lang: float(trained[lang]) for lang in langs}
    a = {lang: float(initial[lang]) for lang in langs}
    bad = [lang for lang in langs if not (math.isfinite(t[lang]) and math.isfinite(a[lang]))]
    if bad:
        raise MTIError(f"non-finite accuracy for {', '.join(bad)}")
    if formula == "ratio":
        zero = [lang for lang in langs if a[lang] <= eps]
        if zero:
            raise MTIError(f"initial accuracy is 0 for {', '.join(zero)}: relative gain undefined")
        gain = {lang: (t[lang] - a[lang]) / a[lang] for lang in langs}
    else:
        full = [lang for lang in langs if a[lang] >= 1 - eps]
        if full:
            raise MTIError(f"initial accuracy is 1 for {', '.join(full)}: no headroom")
        gain = {lang: (t[lang] - a[lang]) / (1 - a[lang]) for lang in langs}
    g_seen = float(np.mean([gain[lang] for lang in seen_l]))
    g_unseen = float(np.mean([gain[lang] for lang in unseen_l]))
    if formula in ("ratio", "headroom"):
        if abs(g_seen) <= eps:
            raise MTIError(f"mean gain on seen languages is ~0 ({g_seen:.3g}): transfer ratio undefined")
        return g_unseen / g_seen
    spread = float(np.std([gain[lang] for lang in langs]))
    if spread <= eps:
        raise MTIError("gains are identical across languages (spread 0): standardised MTI undefined")
    return (g_unseen - g_seen) / spread


def mti_table(long: pd.DataFrame, english: str = "en", formulas: Sequence[str] = MTI_FORMULAS) -> pd.DataFrame:
    """MTI of every trained checkpoint against its model's initial row, per benchmark and formula.

    Seen languages are the checkpoint's evaluated languages with ``seen`` true; unseen the rest
    of the languages evaluated for both the checkpoint and the initial model. If the initial model
    has several rows per language (e.g. several seeds) their accuracies are averaged.

    Returns a long frame: model, paradigm, mixture, k, seed, benchmark, formula, mti, n_seen,
    n_unseen, seen_langs, unseen_langs, english_gain (t - a on ``english``; NaN if not evaluated),
    note (empty when defined, else why the MTI is NaN: no init row, zero baseline, ...).
    """
    cols = [
        *CHECKPOINT_KEYS,
        "formula",
        "mti",
        "n_seen",
        "n_unseen",
        "seen_langs",
        "unseen_langs",
        "english_gain",
        "note",
    ]
    init = long[long["paradigm"] == "init"]
    baselines: dict[tuple[str, str], dict[str, float]] = {}
    for (model, benchmark, lang), acc in init.groupby(["model", "benchmark", "lang"])["accuracy"].mean().items():
        baselines.setdefault((model, benchmark), {})[lang] = float(acc)
    trained_rows = long[long["paradigm"] != "init"]
    records: list[dict] = []
    for key, group in trained_rows.groupby(CHECKPOINT_KEYS, dropna=False, sort=False):
        model, benchmark = key[0], key[5]
        t = {str(lang): float(acc) for lang, acc in zip(group["lang"], group["accuracy"])}
        seen_langs = language_order(group.loc[group["seen"], "lang"], english)
        a = baselines.get((model, benchmark), {})
        note_base = "" if a else f"no init row for model {model!r} on benchmark {benchmark!r}"
        shared = [lang for lang in language_order(t, english) if lang in a]
        unseen_langs = [lang for lang in shared if lang not in seen_langs]
        seen_shared = [lang for lang in seen_langs if lang in a]
        en_gain = t[english] - a[english] if english in t and english in a else float("nan")
        for formula in formulas:
            value, note = float("nan"), note_base
            if not note:
                try:
                    value = mti(t, a, seen_shared, unseen_langs, formula=formula)
                except MTIError as exc:
                    note = str(exc)
            records.append(
                dict(
                    zip(CHECKPOINT_KEYS, key),
                    formula=formula,
                    mti=value,
                    n_seen=len(seen_shared),
                    n_unseen=len(unseen_langs),
                    seen_langs=",".join(seen_shared),
                    unseen_langs=",".join(unseen_langs),
                    english_gain=en_gain,
                    note=note,
                )
            )
    if not records:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    table = pd.DataFrame.from_records(records, columns=cols)
    return sort_rows(table, extra=["formula"])
