"""Accuracy tables: the long table (one row per checkpoint x benchmark x language) and its wide form.

Second step of ``analyze``, on the frame of :mod:`.items`. Definitions (the paper does not publish
its formulas, so they are stated here and in each docstring):

* accuracy = (number of correct samples) / (number of samples), pooled over items and samples; with
  one sample per item this is the usual item accuracy, with ``n > 1`` samples it is the mean over all
  samples (pass@1 estimated from ``n`` samples).
* ci_low / ci_high = Wilson score interval at ``level`` over those samples (scipy's). With ``n > 1``
  samples per item the samples are not independent, so the interval is too narrow; ``n_items`` is
  reported next to ``n`` so readers can tell, and the law's bootstrap resamples items, not samples.
* off_target_rate = fraction of samples whose answer was flagged ``off_target`` (not in the prompt
  language); for a reasoning model that is the language of its final (answer) part.
* thinking_off_target_rate, unfinished (only when some scored row has a thinking part, i.e. a
  reasoning model) = the off-target fraction among the samples' thinking parts (NaN where none has
  one), and the number of samples that committed to no final answer (thinking cut off, or nothing
  after it; ``final_part`` ``unclosed``/``empty``/``unanswered``, scored as ``scoring.unfinished_answer`` says).
* weighted_accuracy (only for benchmarks given difficulty weights, e.g. PolyMath's 1/2/4/8) =
  sum_d w_d * accuracy_d / sum_d w_d over the difficulty levels d present, accuracy_d pooled over
  the level's samples (:func:`parallel_scaling.scoring.difficulty.difficulty_weighted_accuracy`,
  shared with ``score``); with every level present and weights 1, 2, 4, 8 this is PolyMath's DW-ACC.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from parallel_scaling.analysis.items import ACC_KEYS, CHECKPOINT_KEYS, ScoredFormatError, language_order, sort_rows, source_hint
from parallel_scaling.scoring.difficulty import difficulty_weighted_accuracy
from parallel_scaling.scoring.thinking import FINAL_PART_STATES, UNFINISHED_STATES


def wilson_interval(successes: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion, element-wise (scipy's ``proportion_ci``).

    With p = successes/n and z = Phi^-1(1 - (1 - level)/2)::

        centre = (p + z^2/(2n)) / (1 + z^2/n)
        half   = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2))
        [centre - half, centre + half]

    Chosen over the normal interval because it stays inside [0, 1] and behaves at p = 0 or 1,
    which is common for small languages / weak initial models. ``binomtest`` takes one count at a
    time, so each distinct (successes, n) pair is computed once: a table has few distinct pairs.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    pairs = list(zip(np.asarray(successes, dtype=int).ravel().tolist(), np.asarray(n, dtype=int).ravel().tolist()))
    bounds = {pair: binomtest(*pair).proportion_ci(confidence_level=level, method="wilson") for pair in set(pairs)}
    low = np.array([bounds[pair].low for pair in pairs], dtype=float)
    high = np.array([bounds[pair].high for pair in pairs], dtype=float)
    return np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)


def accuracy_table(
    items: pd.DataFrame, level: float = 0.95, weights: Mapping[str, Mapping[str, float]] | None = None
) -> pd.DataFrame:
    """Long accuracy table: one row per checkpoint x benchmark x language.

    Columns: model, paradigm, mixture, k, seed, benchmark, lang, seen (``lang`` in the
    checkpoint's ``train_langs``), train_langs (comma-joined), n (samples), n_items, correct,
    accuracy = correct / n (mean over all samples), ci_low / ci_high (Wilson, see
    :func:`wilson_interval`), off_target_rate = off-target samples / n (then, for reasoning models
    only, thinking_off_target_rate and unfinished: see the module docstring). When ``weights`` gives
    some benchmark a weight per difficulty level, a ``weighted_accuracy`` column follows
    ``accuracy`` (:func:`difficulty_weighted_accuracy`; NaN for the other benchmarks); without
    weights the table is unchanged.

    Raises:
        ScoredFormatError: if one checkpoint carries two different ``train_langs`` lists, or the
            same (item, sample) appears twice for a checkpoint and language, or a weighted
            benchmark's rows lack a difficulty or hold a level without a weight.
    """
    if items.empty:
        raise ScoredFormatError("no scored items")
    dup = items.duplicated([*ACC_KEYS, "id", "sample"])
    if dup.any():
        row = items.loc[dup].iloc[0]
        raise ScoredFormatError(
            f"duplicate scored row for {row['model']}/{row['mixture']}/seed={row['seed']}/"
            f"{row['benchmark']}/{row['lang']} item {row['id']} sample {row['sample']}{source_hint(items, dup)}"
        )
    work = items.assign(
        _tl=items["train_langs"].map(lambda t: ",".join(t)),
        _unfinished=items["final_part"].isin(list(UNFINISHED_STATES)),
    )
    # a reasoning model's rows: a thinking part, or a final part read as one (a lost </think>: ``unmarked``)
    read_as_reasoning = items["final_part"].isin([s for s in FINAL_PART_STATES if s != "absent"])
    reasoning = bool(items["thinking_off_target"].notna().any() or read_as_reasoning.any())
    per_ckpt = work.groupby(CHECKPOINT_KEYS, dropna=False)["_tl"].nunique()
    if (per_ckpt > 1).any():
        bad = per_ckpt[per_ckpt > 1].index[0]
        raise ScoredFormatError(f"checkpoint {bad} has inconsistent train_langs across rows")
    grouped = work.groupby([*ACC_KEYS, "_tl"], dropna=False, sort=False)
    table = grouped.agg(
        n=("correct", "size"),
        n_items=("id", "nunique"),
        correct=("correct", "sum"),
        off_target=("off_target", "sum"),
        thinking_off_target_rate=("thinking_off_target", "mean"),  # NaN rows (no thinking) drop out
        unfinished=("_unfinished", "sum"),
    ).reset_index()
    table = table.rename(columns={"_tl": "train_langs"})
    table["seen"] = [lang in tl.split(",") if tl else False for lang, tl in zip(table["lang"], table["train_langs"])]
    table["correct"] = table["correct"].astype(int)
    table["accuracy"] = table["correct"] / table["n"]
    table["ci_low"], table["ci_high"] = wilson_interval(table["correct"].to_numpy(), table["n"].to_numpy(), level)
    table["off_target_rate"] = table["off_target"] / table["n"]
    cols = [
        *ACC_KEYS[:-1],
        "lang",
        "seen",
        "train_langs",
        "n",
        "n_items",
        "correct",
        "accuracy",
        "ci_low",
        "ci_high",
        "off_target_rate",
    ]
    if reasoning:  # a reasoning model's thinking and unfinished answers; chat-model tables unchanged
        table["unfinished"] = table["unfinished"].astype(int)
        cols += ["thinking_off_target_rate", "unfinished"]
    if weights:
        table["weighted_accuracy"] = _weighted_column(items, table, weights)
        cols.insert(cols.index("accuracy") + 1, "weighted_accuracy")
    return sort_rows(table[cols], extra=["lang"])


def _weighted_column(items: pd.DataFrame, table: pd.DataFrame, weights: Mapping[str, Mapping[str, float]]) -> pd.Series:
    """``weighted_accuracy`` of every row of the long table (NaN for benchmarks without weights)."""
    weighted = items[items["benchmark"].isin(list(weights))]
    if weighted.empty:
        return pd.Series(np.nan, index=table.index, dtype=float)
    lacking = weighted["difficulty"].isna()
    if lacking.any():
        row = weighted.loc[lacking].iloc[0]
        raise ScoredFormatError(
            f"benchmark {row['benchmark']!r} has difficulty weights but {int(lacking.sum())} scored rows carry no "
            f"'difficulty' (set benchmarks.{row['benchmark']}.difficulty_field){source_hint(weighted, lacking)}"
        )
    records = []
    for key, group in weighted.groupby(ACC_KEYS, dropna=False, sort=False):
        bench = key[ACC_KEYS.index("benchmark")]
        try:
            value = difficulty_weighted_accuracy(group["correct"].tolist(), group["difficulty"].tolist(), weights[bench])
        except ValueError as exc:
            everywhere = pd.Series(True, index=group.index)
            raise ScoredFormatError(f"benchmark {bench!r}: {exc}{source_hint(group, everywhere)}") from None
        records.append({**dict(zip(ACC_KEYS, key)), "weighted_accuracy": value})
    found = pd.DataFrame.from_records(records, columns=[*ACC_KEYS, "weighted_accuracy"])
    found = found.astype({c: table[c].dtype for c in ACC_KEYS})
    merged = table[ACC_KEYS].merge(found, on=ACC_KEYS, how="left")  # NA keys (initial model) match NA
    return pd.Series(merged["weighted_accuracy"].to_numpy(dtype=float), index=table.index)


def wide_table(long: pd.DataFrame, value: str = "accuracy", english: str = "en") -> pd.DataFrame:
    """Pivot the long table: one row per model/paradigm/mixture/k/seed/benchmark, languages as columns.

    Adds avg_seen (mean of ``value`` over the row's trained languages; NaN when the row trained
    none of the evaluated languages, e.g. the initial model), avg_unseen (mean over the others)
    and avg_all (mean over all evaluated languages). Averages are unweighted over languages so
    that each language counts once whatever its item count.
    """
    if value not in long.columns:
        raise ScoredFormatError(f"long table has no column {value!r}")
    keys = CHECKPOINT_KEYS
    langs = language_order(long["lang"].unique(), english)
    values = long.pivot_table(index=keys, columns="lang", values=value, dropna=False, aggfunc="first")
    seen = long.pivot_table(index=keys, columns="lang", values="seen", dropna=False, aggfunc="first")
    values = values.reindex(columns=langs)
    seen = seen.reindex(index=values.index, columns=langs)
    seen_mask = seen.fillna(False).astype(bool).to_numpy()
    vals = values.to_numpy(dtype=float)
    present = ~np.isnan(vals)
    with np.errstate(invalid="ignore"):
        avg_seen = _masked_mean(vals, seen_mask & present)
        avg_unseen = _masked_mean(vals, ~seen_mask & present)
        avg_all = _masked_mean(vals, present)
    wide = values.copy()
    wide.columns = list(langs)
    wide["avg_seen"] = avg_seen
    wide["avg_unseen"] = avg_unseen
    wide["avg_all"] = avg_all
    wide = wide.reset_index()
    wide = wide.dropna(subset=[*langs], how="all")
    return sort_rows(wide)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row mean of ``values`` over ``mask``; NaN where the mask selects nothing."""
    counts = mask.sum(axis=1)
    sums = np.where(mask, values, 0.0).sum(axis=1)
    out = np.full(values.shape[0], np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def weighted_wide_table(
    long: pd.DataFrame, english: str, weights: Mapping[str, Mapping[str, float]]
) -> tuple[pd.DataFrame | None, str]:
    """Wide difficulty-weighted accuracy of the benchmarks with weights, and a line naming the weights.

    ``(None, "")`` when no benchmark has weights (the long table then has no ``weighted_accuracy``).
    """
    if not weights or "weighted_accuracy" not in long.columns:
        return None, ""
    part = long[long["benchmark"].isin(list(weights))]
    if part.empty:
        return None, ""
    names = sorted(set(part["benchmark"]))
    described = "; ".join(f"{b}: " + ", ".join(f"{lv} {w:g}" for lv, w in weights[b].items()) for b in names)
    return wide_table(part, value="weighted_accuracy", english=english), described
