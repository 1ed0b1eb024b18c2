"""Accuracy, confidence intervals, off-target rates and the Multilingual Transferability Index (MTI).

Scored items arrive as JSONL rows, one file per checkpoint x benchmark x language (see
:data:`REQUIRED_COLUMNS`). Everything here is a pure function of those rows so that the same numbers
come out of the pipeline, a notebook, or a test.

Definitions (also stated in each docstring, because the paper does not publish its formulas):

* accuracy = (number of correct samples) / (number of samples), pooled over items and samples; with
  one sample per item this is the usual item accuracy, with ``n > 1`` samples it is the mean over all
  samples (pass@1 estimated from ``n`` samples).
* ci_low / ci_high = Wilson score interval at ``level`` over those samples. With ``n > 1`` samples per
  item the samples are not independent, so the interval is too narrow; ``n_items`` is reported
  next to ``n`` so readers can tell, and the scaling-law bootstrap resamples items, not samples.
* off_target_rate = fraction of samples whose answer was flagged ``off_target`` (not in the prompt
  language).
* weighted_accuracy (only for benchmarks given difficulty weights, e.g. PolyMath's 1/2/4/8) =
  sum_d w_d * accuracy_d / sum_d w_d over the difficulty levels d present, accuracy_d pooled over
  the level's samples; with every level present and weights 1, 2, 4, 8 this is PolyMath's DW-ACC.
* MTI: see :func:`mti` for the three formulas ``ratio``, ``headroom`` and ``normalized``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from parallel_scaling.common.difficulty import difficulty_level, difficulty_weighted_accuracy
from parallel_scaling.common.jsonl import DataError, read_jsonl

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
OPTIONAL_COLUMNS: tuple[str, ...] = ("extracted", "reason", "difficulty")

#: Keys that identify one checkpoint evaluated on one benchmark.
CHECKPOINT_KEYS: list[str] = ["model", "paradigm", "mixture", "k", "seed", "benchmark"]
#: Keys of one row of the long accuracy table.
ACC_KEYS: list[str] = [*CHECKPOINT_KEYS, "lang"]

#: Formulas accepted by :func:`mti`.
MTI_FORMULAS: tuple[str, ...] = ("ratio", "headroom", "normalized")

_MIXTURE_K = re.compile(r"^k(\d+)$")


class ScoredFormatError(ValueError):
    """A scored-items file or table is malformed (missing column, unreadable line, bad value)."""


class MTIError(ValueError):
    """The MTI is undefined for these inputs (zero baseline, zero seen gain, no unseen language...)."""


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


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
            raise ScoredFormatError(f"column {col!r} has null values{_where(out, out[col].isna())}")
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
            raise ScoredFormatError(f"column {col!r} must be boolean{_where(out, bad)}")
        out[col] = values.astype(bool)

    def as_tuple(value: object) -> tuple[str, ...]:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ()
        if isinstance(value, str):
            return (value,)
        return tuple(sorted(str(v) for v in value))

    out["train_langs"] = out["train_langs"].map(as_tuple)
    return out


def _missing(value: object) -> bool:
    """None, NaN or pandas' NA: a cell that holds nothing."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _where(frame: pd.DataFrame, mask: pd.Series) -> str:
    """Name the first offending source file, if known, for an error message."""
    if "_source" in frame.columns and mask.any():
        return f" (first in {frame.loc[mask, '_source'].iloc[0]})"
    return ""


# ----------------------------------------------------------------------------------------------
# Accuracy tables
# ----------------------------------------------------------------------------------------------


def wilson_interval(successes: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion.

    With p = successes/n and z = Phi^-1(1 - (1 - level)/2)::

        centre = (p + z^2/(2n)) / (1 + z^2/n)
        half   = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2))
        [centre - half, centre + half]

    Chosen over the normal interval because it stays inside [0, 1] and behaves at p = 0 or 1,
    which is common for small languages / weak initial models.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    s = np.asarray(successes, dtype=float)
    nn = np.asarray(n, dtype=float)
    z = norm.ppf(1 - (1 - level) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s / nn
        denom = 1 + z**2 / nn
        centre = (p + z**2 / (2 * nn)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / nn + z**2 / (4 * nn**2))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def mixture_order(mixture: str) -> tuple[int, int, str]:
    """Sort key: init, then k0, k1, ..., k10 numerically, then other mixtures (mono-*) by name."""
    if mixture == "init":
        return (0, 0, mixture)
    match = _MIXTURE_K.match(mixture)
    if match:
        return (1, int(match.group(1)), mixture)
    return (2, 0, mixture)


def _sort_rows(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
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
            f"'difficulty' (set benchmarks.{row['benchmark']}.difficulty_field){_where(weighted, lacking)}"
        )
    records = []
    for key, group in weighted.groupby(ACC_KEYS, dropna=False, sort=False):
        bench = key[ACC_KEYS.index("benchmark")]
        try:
            value = difficulty_weighted_accuracy(group["correct"].tolist(), group["difficulty"].tolist(), weights[bench])
        except ValueError as exc:
            everywhere = pd.Series(True, index=group.index)
            raise ScoredFormatError(f"benchmark {bench!r}: {exc}{_where(group, everywhere)}") from None
        records.append({**dict(zip(ACC_KEYS, key)), "weighted_accuracy": value})
    found = pd.DataFrame.from_records(records, columns=[*ACC_KEYS, "weighted_accuracy"])
    found = found.astype({c: table[c].dtype for c in ACC_KEYS})
    merged = table[ACC_KEYS].merge(found, on=ACC_KEYS, how="left")  # NA keys (initial model) match NA
    return pd.Series(merged["weighted_accuracy"].to_numpy(dtype=float), index=table.index)


def accuracy_table(
    items: pd.DataFrame, level: float = 0.95, weights: Mapping[str, Mapping[str, float]] | None = None
) -> pd.DataFrame:
    """Long accuracy table: one row per checkpoint x benchmark x language.

    Columns: model, paradigm, mixture, k, seed, benchmark, lang, seen (``lang`` in the
    checkpoint's ``train_langs``), train_langs (comma-joined), n (samples), n_items, correct,
    accuracy = correct / n (mean over all samples), ci_low / ci_high (Wilson, see
    :func:`wilson_interval`), off_target_rate = off-target samples / n. When ``weights`` gives
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
            f"{row['benchmark']}/{row['lang']} item {row['id']} sample {row['sample']}{_where(items, dup)}"
        )
    work = items.assign(_tl=items["train_langs"].map(lambda t: ",".join(t)))
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
    if weights:
        table["weighted_accuracy"] = _weighted_column(items, table, weights)
        cols.insert(cols.index("accuracy") + 1, "weighted_accuracy")
    return _sort_rows(table[cols], extra=["lang"])


def language_order(langs: Sequence[str], english: str = "en") -> list[str]:
    """English first, then the others alphabetically: a stable column order for every table."""
    unique = sorted(set(langs))
    return ([english] if english in unique else []) + [lang for lang in unique if lang != english]


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
    return _sort_rows(wide)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row mean of ``values`` over ``mask``; NaN where the mask selects nothing."""
    counts = mask.sum(axis=1)
    sums = np.where(mask, values, 0.0).sum(axis=1)
    out = np.full(values.shape[0], np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _fmt_cell(value: object, floatfmt: str) -> str:
    """Format one cell: floats with ``floatfmt``, missing values as ``n/a``."""
    if value is None or value is pd.NA:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        return format(float(value), floatfmt)
    return str(value)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """GitHub-flavoured markdown table; numbers right-aligned, missing values as ``n/a``.

    Written by hand to avoid a dependency on ``tabulate``.
    """
    cols = [str(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    rows = [[_fmt_cell(v, floatfmt).replace("|", "\\|") for v in rec] for rec in df.itertuples(index=False)]
    header = "| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |"
    rule = "|" + "|".join("---:" if num else ":---" for num in numeric) + "|"
    body = ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([header, rule, *body]) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters so model names like ``Qwen2.5_7B`` compile."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(df: pd.DataFrame, floatfmt: str = ".3f", caption: str | None = None, label: str | None = None) -> str:
    """A ``booktabs`` tabular (wrapped in a table float when ``caption`` or ``label`` is given).

    Hand-written rather than ``Styler.to_latex`` so that the output does not depend on jinja2 and
    every cell is escaped.
    """
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    spec = "".join("r" if num else "l" for num in numeric)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    lines.append(" & ".join(latex_escape(str(c)) for c in df.columns) + r" \\")
    lines.append("\\midrule")
    for rec in df.itertuples(index=False):
        lines.append(" & ".join(latex_escape(_fmt_cell(v, floatfmt)) for v in rec) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption is not None or label is not None:
        inner = ["\\begin{table}[t]", "\\centering", *lines]
        if caption is not None:
            inner.append(f"\\caption{{{latex_escape(caption)}}}")
        if label is not None:
            inner.append(f"\\label{{{label}}}")
        inner.append("\\end{table}")
        lines = inner
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Multilingual Transferability Index
# ----------------------------------------------------------------------------------------------


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
    return _sort_rows(table, extra=["formula"])
