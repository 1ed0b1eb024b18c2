"""The Parallel Scaling Law, the First-Parallel Leap and the Monolingual Generalization Gap.

All definitions are explicit because the paper (arXiv 2510.02272) does not publish its formulas:

* x, the number of training languages of mixture ``k<k>`` (English plus the first k parallel
  languages): ``x = k + 1`` when English counts (default), else ``x = k``
  (:func:`n_train_langs`).
* The law ``y = a * x**b`` (or ``y = a * x**b + c`` with ``offset``) is fitted only on the
  multilingual points k >= 1 (:func:`fit_power_law`); the English-only point k = 0 is held out.
* First-Parallel Leap: ``absolute = y1 - y0``, ``relative = (y1 - y0) / y0``
  (:func:`first_parallel_leap`).
* Monolingual Generalization Gap: ``gap = fit.predict(x0) - y0`` with ``x0 = n_train_langs(0)``;
  positive when the English-only point sits below the law (:func:`monolingual_gap`).
* y, the transfer measure per k, is one of :data:`Y_CHOICES` (see :func:`series_y`).
* Confidence intervals come from a paired item bootstrap (:func:`bootstrap`).
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from parallel_scaling.analysis.metrics import MTI_FORMULAS, MTIError, ScoredFormatError, language_order, mti, normalize_items

#: Transfer measures accepted as ``y``.
Y_CHOICES: tuple[str, ...] = ("heldout", "unseen", "all", "mti")

_MIXTURE_K = re.compile(r"^k(\d+)$")


class LawFitError(ValueError):
    """The power law cannot be fitted (too few points, non-positive x, zero or constant y, NaN...)."""


# ----------------------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    """A fitted ``y = a * x**b + c`` (``c = 0`` without offset) and the data it was fitted on.

    ``r2 = 1 - sum((y - yhat)^2) / sum((y - mean(y))^2)`` on the linear (not log) scale, so it
    measures how well the law predicts accuracies, not log accuracies.
    """

    a: float
    b: float
    c: float
    r2: float
    n: int
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    offset: bool = False

    def predict(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """Evaluate the law; raises :class:`LawFitError` at x = 0 when b < 0 (the law diverges)."""
        arr = np.asarray(x, dtype=float)
        if np.any(arr < 0):
            raise LawFitError("the power law is only defined for x >= 0")
        if np.any(arr == 0) and self.b < 0:
            raise LawFitError(f"the law diverges at x = 0 (b = {self.b:.3g} < 0)")
        out = self.a * np.power(arr, self.b) + self.c
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        """JSON-serialisable parameters and data."""
        return {
            "a": self.a,
            "b": self.b,
            "c": self.c,
            "r2": self.r2,
            "n": self.n,
            "offset": self.offset,
            "x": [float(v) for v in self.x],
            "y": [float(v) for v in self.y],
        }


def _power(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.power(x, b)


def _power_offset(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(x, b) + c


def _loglog_guess(x: np.ndarray, y: np.ndarray, c: float) -> tuple[float, float, float] | None:
    """Least squares of log|y - c| on log x; returns (a, b, sse on linear scale) or None."""
    shifted = y - c
    if np.all(shifted > 0):
        sign = 1.0
    elif np.all(shifted < 0):
        sign = -1.0
    else:
        return None
    b, log_a = np.polyfit(np.log(x), np.log(sign * shifted), 1)
    a = sign * math.exp(log_a)
    sse = float(np.sum((a * np.power(x, b) + c - y) ** 2))
    return a, float(b), sse


def fit_power_law(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, offset: bool = False) -> FitResult:
    """Fit ``y = a * x**b`` (``offset=False``) or ``y = a * x**b + c`` by least squares.

    Method: the initial guess is ordinary least squares of log y on log x (for the offset model,
    of log|y - c| over a grid of c below min(y) and above max(y), keeping the best); then
    ``scipy.optimize.curve_fit`` minimises squared error on the linear scale, which weights all
    points equally in accuracy units instead of over-weighting small accuracies as log-log does.

    Degenerate inputs raise :class:`LawFitError` with the reason: x and y of different length,
    NaN/inf, fewer than 3 points (4 with offset: three parameters need a spare point), fewer than
    2 distinct x (3 with offset), x <= 0, all y = 0, constant y, y <= 0 without offset, or an
    optimiser failure / non-finite parameters.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise LawFitError(f"x and y differ in length ({xa.size} vs {ya.size})")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise LawFitError("x or y contains NaN or inf")
    min_n = 4 if offset else 3
    if xa.size < min_n:
        raise LawFitError(
            f"need at least {min_n} points to fit the power law{' with offset' if offset else ''}, got {xa.size}"
        )
    if np.any(xa <= 0):
        raise LawFitError(f"x must be positive for a power law, got min x = {xa.min():g}")
    min_distinct = 3 if offset else 2
    if np.unique(xa).size < min_distinct:
        raise LawFitError(f"need at least {min_distinct} distinct x values, got {np.unique(xa).size}")
    if np.all(ya == 0):
        raise LawFitError("all y values are zero: no power law to fit")
    if np.ptp(ya) <= 1e-12 * max(1.0, float(np.max(np.abs(ya)))):
        raise LawFitError(f"y is constant ({ya[0]:g}): exponent b is undefined")
    if not offset:
        if np.any(ya <= 0):
            raise LawFitError(f"y must be positive for a pure power law (min y = {ya.min():g}); use offset")
        guess = _loglog_guess(xa, ya, 0.0)
        assert guess is not None
        func, p0 = _power, [guess[0], guess[1]]
    else:
        span = float(np.ptp(ya))
        steps = span * np.geomspace(1e-3, 1e2, 41)
        candidates = [float(ya.min()) - s for s in steps] + [float(ya.max()) + s for s in steps]
        guesses = [(c, g) for c in candidates if (g := _loglog_guess(xa, ya, c)) is not None]
        c0, (a0, b0, _) = min(guesses, key=lambda cg: cg[1][2])
        func, p0 = _power_offset, [a0, b0, c0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, _ = curve_fit(func, xa, ya, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise LawFitError(f"least-squares fit did not converge: {exc}") from exc
    if not np.all(np.isfinite(popt)):
        raise LawFitError("fit produced non-finite parameters")
    a, b = float(popt[0]), float(popt[1])
    c = float(popt[2]) if offset else 0.0
    yhat = a * np.power(xa, b) + c
    sst = float(np.sum((ya - ya.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ya - yhat) ** 2)) / sst
    return FitResult(a=a, b=b, c=c, r2=r2, n=int(xa.size), x=xa, y=ya, offset=offset)


def n_train_langs(k: int | np.ndarray | Sequence[int], english_counts: bool = True) -> int | np.ndarray:
    """Number of training languages of mixture ``k<k>``: ``k + 1`` if English counts, else ``k``.

    ``english_counts=False`` places the English-only point at x = 0, where a pure power law with
    b > 0 predicts 0 (so the gap equals -y0) and an offset law predicts c.
    """
    arr = np.asarray(k)
    if np.any(arr < 0):
        raise ValueError(f"k must be >= 0, got {k}")
    out = arr + 1 if english_counts else arr
    return int(out) if out.ndim == 0 else out.astype(int)


def first_parallel_leap(y0: float, y1: float) -> dict[str, float]:
    """First-Parallel Leap from English-only (k=0) to English plus one parallel language (k=1).

    ``absolute = y1 - y0``; ``relative = (y1 - y0) / y0``, NaN when |y0| < 1e-12 (a relative jump
    from zero is undefined; the absolute leap is still reported).
    """
    absolute = float(y1) - float(y0)
    relative = absolute / float(y0) if abs(float(y0)) >= 1e-12 else float("nan")
    return {"absolute": absolute, "relative": relative}


def monolingual_gap(fit: FitResult, x0: float, y0: float) -> float:
    """Monolingual Generalization Gap: ``fit.predict(x0) - y0``.

    Positive when the English-only point lies below the law fitted on the multilingual points.
    At ``x0 = 0`` (English not counted) a pure power law with b > 0 predicts 0, so the gap is
    ``-y0``; with offset it predicts ``c``; with b < 0 it diverges and :class:`LawFitError` is raised.
    """
    return float(fit.predict(x0)) - float(y0)


# ----------------------------------------------------------------------------------------------
# Item-level series data and the transfer measure y
# ----------------------------------------------------------------------------------------------


@dataclass
class SeriesData:
    """Item-level counts of one (model, paradigm, benchmark) series of parallel mixtures k0..kK.

    ``correct[r, l, i]`` / ``count[r, l, i]`` = correct samples / samples of run r (one (k, seed)
    checkpoint), language l, item i. Items are shared across languages and runs (parallel
    benchmark), which lets the bootstrap draw one item resample for all points.
    """

    model: str
    paradigm: str
    benchmark: str
    ks: list[int]
    run_k: np.ndarray
    run_seed: list[object]
    langs: list[str]
    item_ids: list[str]
    train_langs: dict[int, frozenset[str]]
    correct: np.ndarray
    count: np.ndarray
    init_correct: np.ndarray | None = None
    init_count: np.ndarray | None = None
    dropped_langs: list[str] = field(default_factory=list)

    @property
    def n_seeds(self) -> dict[int, int]:
        """Number of runs (seeds) per k."""
        return {k: int(np.sum(self.run_k == k)) for k in self.ks}


def _counts(frame: pd.DataFrame, langs: list[str], items: list[str], keys: list[object], key_col: pd.Series):
    """Scatter correct/sample counts of ``frame`` into dense (run, lang, item) arrays."""
    r_idx = pd.Categorical(key_col, categories=keys).codes
    l_idx = pd.Categorical(frame["lang"], categories=langs).codes
    i_idx = pd.Categorical(frame["id"], categories=items).codes
    keep = (r_idx >= 0) & (l_idx >= 0) & (i_idx >= 0)
    shape = (len(keys), len(langs), len(items))
    correct = np.zeros(shape)
    count = np.zeros(shape)
    np.add.at(correct, (r_idx[keep], l_idx[keep], i_idx[keep]), frame["correct"].to_numpy(dtype=float)[keep])
    np.add.at(count, (r_idx[keep], l_idx[keep], i_idx[keep]), 1.0)
    return correct, count


def build_series(items: pd.DataFrame, english: str = "en") -> list[SeriesData]:
    """Group scored items into series of parallel mixtures, one per (model, paradigm, benchmark).

    Only rows whose mixture is ``k<int>`` and whose paradigm is not ``init`` enter a series
    (``mono-*`` mixtures are excluded). Languages are restricted to those evaluated for every run
    of the series (and for the initial model when it exists); dropped ones are listed in
    ``dropped_langs``. ``english`` is only used to order languages.

    Raises:
        ScoredFormatError: if a row's ``k`` disagrees with its ``kK`` mixture name.
    """
    par = items[(items["paradigm"] != "init") & items["mixture"].str.match(_MIXTURE_K)]
    init_all = items[items["paradigm"] == "init"]
    out: list[SeriesData] = []
    for (model, paradigm, benchmark), group in par.groupby(["model", "paradigm", "benchmark"], sort=True):
        k_from_name = group["mixture"].str.slice(1).astype(int)
        k_col = group["k"]
        mismatch = k_col.notna() & (k_col.astype("Float64") != k_from_name.astype("Float64"))
        if mismatch.any():
            row = group.loc[mismatch].iloc[0]
            raise ScoredFormatError(f"row with mixture {row['mixture']!r} has k = {row['k']} ({model}/{benchmark})")
        group = group.assign(_k=k_from_name.to_numpy(), _seed=group["seed"].astype(object).where(group["seed"].notna(), -1))
        runs = sorted({(int(k), s) for k, s in zip(group["_k"], group["_seed"])}, key=lambda ks: (ks[0], str(ks[1])))
        run_keys = [f"{k}|{s}" for k, s in runs]
        run_col = group["_k"].astype(str) + "|" + group["_seed"].astype(str)
        lang_sets = [set(g["lang"]) for _, g in group.groupby(run_col)]
        init = init_all[(init_all["model"] == model) & (init_all["benchmark"] == benchmark)]
        if not init.empty:
            lang_sets.append(set(init["lang"]))
        all_langs = set().union(*lang_sets)
        common = set.intersection(*lang_sets)
        langs = language_order(common, english)
        dropped = language_order(all_langs - common, english)
        item_ids = sorted(set(group["id"]) | set(init["id"]))
        correct, count = _counts(group, langs, item_ids, run_keys, run_col)
        train: dict[int, frozenset[str]] = {}
        for k, g in group.groupby("_k"):
            train[int(k)] = frozenset().union(*g["train_langs"].map(frozenset))
        init_c = init_n = None
        if not init.empty:
            ic, inn = _counts(init, langs, item_ids, ["init"], pd.Series("init", index=init.index))
            init_c, init_n = ic[0], inn[0]
        out.append(
            SeriesData(
                model=str(model),
                paradigm=str(paradigm),
                benchmark=str(benchmark),
                ks=sorted(train),
                run_k=np.array([k for k, _ in runs]),
                run_seed=[s for _, s in runs],
                langs=langs,
                item_ids=item_ids,
                train_langs=train,
                correct=correct,
                count=count,
                init_correct=init_c,
                init_count=init_n,
                dropped_langs=dropped,
            )
        )
    return out


def heldout_langs(series: SeriesData, english: str = "en") -> list[str]:
    """Evaluated languages never trained at any k of the series (English always excluded)."""
    trained = set().union(*series.train_langs.values()) | {english}
    return [lang for lang in series.langs if lang not in trained]


def y_definition(y: str, series: SeriesData | None = None, english: str = "en", mti_formula: str = "ratio") -> str:
    """One-line human description of the transfer measure, naming the languages when known."""
    if y == "heldout":
        langs = f" ({', '.join(heldout_langs(series, english))})" if series is not None else ""
        return f"mean accuracy over languages never trained at any k{langs}"
    if y == "unseen":
        return f"mean accuracy over languages not trained at that point's k (excluding {english})"
    if y == "all":
        return "mean accuracy over all evaluation languages"
    if y == "mti":
        return f"MTI ({mti_formula}) of the seed-averaged checkpoint vs the initial model"
    raise ValueError(f"unknown y {y!r}; choose from {', '.join(Y_CHOICES)}")


def series_y(
    acc: np.ndarray,
    series: SeriesData,
    y: str = "heldout",
    english: str = "en",
    init_acc: np.ndarray | None = None,
    mti_formula: str = "ratio",
) -> np.ndarray:
    """The transfer measure per k from per-k accuracies ``acc[k_index, lang]`` (seeds averaged).

    * ``heldout``: mean over H = languages never trained at any k of the series (fixed set).
    * ``unseen``: mean over languages not in that k's ``train_langs`` and not English.
    * ``all``: mean over all evaluated languages.
    * ``mti``: :func:`parallel_scaling.analysis.metrics.mti` with ``mti_formula`` against ``init_acc``,
      seen = that k's trained languages, unseen = the other evaluated languages.

    Undefined values (empty language set, MTI undefined) come back as NaN; callers decide
    whether that is an error.
    """
    if y not in Y_CHOICES:
        raise ValueError(f"unknown y {y!r}; choose from {', '.join(Y_CHOICES)}")
    idx = {lang: i for i, lang in enumerate(series.langs)}
    out = np.full(len(series.ks), np.nan)
    if y == "heldout":
        cols = [idx[lang] for lang in heldout_langs(series, english)]
        if cols:
            out = acc[:, cols].mean(axis=1)
        return out
    if y == "all":
        return acc.mean(axis=1)
    for j, k in enumerate(series.ks):
        trained = series.train_langs[k] | {english}
        unseen = [lang for lang in series.langs if lang not in trained]
        if y == "unseen":
            if unseen:
                out[j] = acc[j, [idx[lang] for lang in unseen]].mean()
            continue
        if init_acc is None:
            raise LawFitError(f"y = mti needs initial-model rows for {series.model} on {series.benchmark}")
        seen = [lang for lang in series.langs if lang in trained]
        try:
            out[j] = mti(
                dict(zip(series.langs, acc[j])),
                dict(zip(series.langs, init_acc)),
                seen,
                unseen,
                formula=mti_formula,
            )
        except MTIError:
            out[j] = np.nan
    return out


def _accuracies(
    series: SeriesData, weights: np.ndarray, runs_per_k: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-k seed-averaged accuracy ``[k, lang]`` and initial accuracy ``[lang]`` under item weights."""
    with np.errstate(invalid="ignore", divide="ignore"):
        run_acc = (series.correct @ weights) / (series.count @ weights)
        acc = np.vstack([run_acc[runs].mean(axis=0) for runs in runs_per_k])
        init = None
        if series.init_correct is not None and series.init_count is not None:
            init = (series.init_correct @ weights) / (series.init_count @ weights)
    return acc, init


@dataclass
class PointEstimate:
    """The series' points and the law's statistics on the full data (no resampling)."""

    ks: list[int]
    x: np.ndarray
    y: np.ndarray
    fit: FitResult | None
    leap: dict[str, float] | None
    gap: float | None
    x0: float | None
    note: str


def _point_stats(
    series: SeriesData,
    yk: np.ndarray,
    english_counts: bool,
    offset: bool,
) -> PointEstimate:
    """Fit on k >= 1, leap from k=0 to k=1, gap at k=0; reasons for anything missing go in ``note``."""
    ks = np.array(series.ks)
    x = np.asarray(n_train_langs(ks, english_counts), dtype=float)
    notes: list[str] = []
    fit = None
    use = (ks >= 1) & np.isfinite(yk)
    if np.any((ks >= 1) & ~np.isfinite(yk)):
        bad = ", ".join(f"k{k}" for k in ks[(ks >= 1) & ~np.isfinite(yk)])
        notes.append(f"y undefined at {bad}")
    try:
        fit = fit_power_law(x[use], yk[use], offset=offset)
    except LawFitError as exc:
        notes.append(f"law not fitted: {exc}")
    has0, has1 = 0 in series.ks, 1 in series.ks
    y0 = float(yk[series.ks.index(0)]) if has0 else float("nan")
    y1 = float(yk[series.ks.index(1)]) if has1 else float("nan")
    leap = None
    if has0 and has1 and math.isfinite(y0) and math.isfinite(y1):
        leap = first_parallel_leap(y0, y1)
    else:
        notes.append("no leap: needs finite k0 and k1 points")
    gap, x0 = None, None
    if has0:
        x0 = float(n_train_langs(0, english_counts))
        if fit is not None and math.isfinite(y0):
            try:
                gap = monolingual_gap(fit, x0, y0)
            except LawFitError as exc:
                notes.append(f"no gap: {exc}")
    else:
        notes.append("no gap: no k0 (English-only) point")
    return PointEstimate(list(series.ks), x, yk, fit, leap, gap, x0, "; ".join(notes))


def point_estimate(
    series: SeriesData,
    y: str = "heldout",
    english: str = "en",
    english_counts: bool = True,
    offset: bool = False,
    mti_formula: str = "ratio",
) -> PointEstimate:
    """Law, leap and gap on the full data: seeds averaged per k, all items weighted once."""
    weights = np.ones(len(series.item_ids))
    runs = [np.flatnonzero(series.run_k == k) for k in series.ks]
    acc, init = _accuracies(series, weights, runs)
    yk = series_y(acc, series, y, english, init, mti_formula)
    return _point_stats(series, yk, english_counts, offset)


@dataclass
class BootstrapResult:
    """Percentile intervals from :func:`bootstrap`.

    ``intervals[stat] = (low, high)`` for stat in a, b, c, r2, leap_abs, leap_rel, gap;
    ``point_intervals[k] = (low, high)`` for each point's y. ``n_failed`` counts resamples whose
    law could not be fitted; their fit statistics are left out of the percentiles (the leap and
    the point intervals use all resamples with finite values).
    """

    n_boot: int
    n_failed: int
    level: float
    intervals: dict[str, tuple[float, float]]
    point_intervals: dict[int, tuple[float, float]]
    samples: dict[str, np.ndarray] = field(repr=False)


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return (float(low), float(high))


def bootstrap(
    series: SeriesData,
    y: str = "heldout",
    english: str = "en",
    english_counts: bool = True,
    offset: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    mti_formula: str = "ratio",
) -> BootstrapResult:
    """Paired percentile bootstrap of the law parameters, the leap and the gap.

    Each of ``n_boot`` resamples (1) draws benchmark items with replacement once and applies the
    same draw to every k, language and the initial model, so points stay paired (the same
    problems) as in the real comparison; (2) when a k has several seeds, draws that many seeds
    with replacement independently per k (different k are different training runs). Accuracy is
    recomputed as resampled correct / resampled samples, y via :func:`series_y`, and the law
    refitted. Intervals are the ``(1-level)/2`` and ``(1+level)/2`` percentiles.
    ``numpy.random.default_rng(seed)`` makes it reproducible.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    rng = np.random.default_rng(seed)
    n_items = len(series.item_ids)
    runs_all = [np.flatnonzero(series.run_k == k) for k in series.ks]
    stats = {name: np.full(n_boot, np.nan) for name in ("a", "b", "c", "r2", "leap_abs", "leap_rel", "gap")}
    ys = np.full((n_boot, len(series.ks)), np.nan)
    n_failed = 0
    for i in range(n_boot):
        weights = np.bincount(rng.integers(0, n_items, n_items), minlength=n_items).astype(float)
        runs = [r if r.size == 1 else rng.choice(r, size=r.size, replace=True) for r in runs_all]
        acc, init = _accuracies(series, weights, runs)
        yk = series_y(acc, series, y, english, init, mti_formula)
        ys[i] = yk
        est = _point_stats(series, yk, english_counts, offset)
        if est.leap is not None:
            stats["leap_abs"][i] = est.leap["absolute"]
            stats["leap_rel"][i] = est.leap["relative"]
        if est.fit is None:
            n_failed += 1
            continue
        stats["a"][i], stats["b"][i], stats["c"][i], stats["r2"][i] = est.fit.a, est.fit.b, est.fit.c, est.fit.r2
        if est.gap is not None:
            stats["gap"][i] = est.gap
    intervals = {name: _percentile(vals, level) for name, vals in stats.items()}
    points = {k: _percentile(ys[:, j], level) for j, k in enumerate(series.ks)}
    samples = {**stats, "y": ys}
    return BootstrapResult(n_boot, n_failed, level, intervals, points, samples)


# ----------------------------------------------------------------------------------------------
# Summary over all series
# ----------------------------------------------------------------------------------------------


@dataclass
class SeriesLaw:
    """Everything :func:`law_summary` knows about one series, for tables, JSON and plots."""

    series: SeriesData
    estimate: PointEstimate
    boot: BootstrapResult | None
    y_definition: str

    @property
    def label(self) -> str:
        return f"{self.series.model} / {self.series.paradigm} / {self.series.benchmark}"

    def points(self) -> pd.DataFrame:
        """k, x, y, y_low, y_high (bootstrap percentile CI), n_seeds, in_fit (k >= 1)."""
        ks = self.estimate.ks
        ci = self.boot.point_intervals if self.boot is not None else {}
        seeds = self.series.n_seeds
        return pd.DataFrame(
            {
                "k": ks,
                "x": self.estimate.x,
                "y": self.estimate.y,
                "y_low": [ci.get(k, (np.nan, np.nan))[0] for k in ks],
                "y_high": [ci.get(k, (np.nan, np.nan))[1] for k in ks],
                "n_seeds": [seeds[k] for k in ks],
                "in_fit": [k >= 1 for k in ks],
            }
        )


def law_analysis(
    items: pd.DataFrame,
    y: str = "heldout",
    english: str = "en",
    english_counts: bool = True,
    offset: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    mti_formula: str = "ratio",
    level: float = 0.95,
) -> list[SeriesLaw]:
    """Point estimates and bootstrap intervals for every series (see :func:`law_summary`)."""
    if y not in Y_CHOICES:
        raise ValueError(f"unknown y {y!r}; choose from {', '.join(Y_CHOICES)}")
    if mti_formula not in MTI_FORMULAS:
        raise ValueError(f"unknown MTI formula {mti_formula!r}; choose from {', '.join(MTI_FORMULAS)}")
    results: list[SeriesLaw] = []
    for series in build_series(items, english):
        definition = y_definition(y, series, english, mti_formula)
        if y == "heldout" and not heldout_langs(series, english):
            est = PointEstimate(
                list(series.ks),
                np.asarray(n_train_langs(np.array(series.ks), english_counts), dtype=float),
                np.full(len(series.ks), np.nan),
                None,
                None,
                None,
                None,
                "law not fitted: no held-out language (every evaluated language is trained at some k); "
                "use y = unseen or all",
            )
            results.append(SeriesLaw(series, est, None, definition))
            continue
        if y == "mti" and series.init_correct is None:
            est = PointEstimate(
                list(series.ks),
                np.asarray(n_train_langs(np.array(series.ks), english_counts), dtype=float),
                np.full(len(series.ks), np.nan),
                None,
                None,
                None,
                None,
                "law not fitted: y = mti needs initial-model (paradigm init) rows",
            )
            results.append(SeriesLaw(series, est, None, definition))
            continue
        est = point_estimate(series, y, english, english_counts, offset, mti_formula)
        boot = None
        if n_boot > 0:
            boot = bootstrap(series, y, english, english_counts, offset, n_boot, seed, level, mti_formula)
        results.append(SeriesLaw(series, est, boot, definition))
    return results


#: Columns of :func:`law_summary`.
LAW_COLUMNS: list[str] = [
    "model",
    "paradigm",
    "benchmark",
    "y",
    "y_definition",
    "english_counts",
    "offset",
    "n_points",
    "k_values",
    "n_seeds",
    "y0",
    "y1",
    "a",
    "a_low",
    "a_high",
    "b",
    "b_low",
    "b_high",
    "c",
    "c_low",
    "c_high",
    "r2",
    "r2_low",
    "r2_high",
    "leap_abs",
    "leap_abs_low",
    "leap_abs_high",
    "leap_rel",
    "leap_rel_low",
    "leap_rel_high",
    "x0",
    "gap",
    "gap_low",
    "gap_high",
    "n_boot",
    "n_boot_failed",
    "dropped_langs",
    "note",
]


def summary_frame(laws: Sequence[SeriesLaw], y: str, english_counts: bool, offset: bool) -> pd.DataFrame:
    """Tabulate :func:`law_analysis` results; unfitted quantities are NaN and ``note`` says why."""
    nan = float("nan")
    rows = []
    for law in laws:
        est, boot, s = law.estimate, law.boot, law.series
        ci = boot.intervals if boot is not None else {}

        def lo_hi(name: str) -> tuple[float, float]:
            return ci.get(name, (nan, nan))

        fit = est.fit
        y0 = float(est.y[est.ks.index(0)]) if 0 in est.ks else nan
        y1 = float(est.y[est.ks.index(1)]) if 1 in est.ks else nan
        row = {
            "model": s.model,
            "paradigm": s.paradigm,
            "benchmark": s.benchmark,
            "y": y,
            "y_definition": law.y_definition,
            "english_counts": english_counts,
            "offset": offset,
            "n_points": int(sum(1 for k in est.ks if k >= 1)),
            "k_values": ",".join(str(k) for k in est.ks),
            "n_seeds": max(s.n_seeds.values()) if s.n_seeds else 0,
            "y0": y0,
            "y1": y1,
            "x0": est.x0 if est.x0 is not None else nan,
            "n_boot": boot.n_boot if boot is not None else 0,
            "n_boot_failed": boot.n_failed if boot is not None else 0,
            "dropped_langs": ",".join(s.dropped_langs),
            "note": est.note,
        }
        for name in ("a", "b", "c", "r2"):
            row[name] = getattr(fit, name) if fit is not None else nan
            row[f"{name}_low"], row[f"{name}_high"] = lo_hi(name) if fit is not None else (nan, nan)
        row["leap_abs"] = est.leap["absolute"] if est.leap else nan
        row["leap_rel"] = est.leap["relative"] if est.leap else nan
        for name in ("leap_abs", "leap_rel"):
            row[f"{name}_low"], row[f"{name}_high"] = lo_hi(name) if est.leap else (nan, nan)
        row["gap"] = est.gap if est.gap is not None else nan
        row["gap_low"], row["gap_high"] = lo_hi("gap") if est.gap is not None else (nan, nan)
        rows.append(row)
    return pd.DataFrame.from_records(rows, columns=LAW_COLUMNS)


def law_summary(items: pd.DataFrame, **options: Any) -> pd.DataFrame:
    """One row per (model, paradigm, benchmark) series of parallel mixtures k0..kK.

    Point estimates average seeds per k; the law is fitted on k >= 1 with x from
    :func:`n_train_langs`; the leap compares k0 and k1; the gap is taken at k0. Intervals come
    from :func:`bootstrap` (``n_boot = 0`` skips it). A series whose law cannot be fitted keeps
    its row with NaN fit columns and the reason in ``note`` (columns: :data:`LAW_COLUMNS`).
    ``options`` are those of :func:`law_analysis`, with its defaults.
    """
    bound = inspect.signature(law_analysis).bind(items, **options)
    bound.apply_defaults()
    opts = bound.arguments
    return summary_frame(law_analysis(**opts), opts["y"], opts["english_counts"], opts["offset"])


# ----------------------------------------------------------------------------------------------
# Simulation (tests, power analysis)
# ----------------------------------------------------------------------------------------------


def simulate_scored_items(
    a: float = 0.3,
    b: float = 0.25,
    k_max: int = 6,
    n_items: int = 200,
    n_heldout: int = 3,
    mono_shift: float = -0.05,
    seeds: Sequence[int] = (0,),
    init_accuracy: float = 0.2,
    model: str = "sim-model",
    benchmark: str = "sim-bench",
    paradigm: str = "grpo",
    english: str = "en",
    rng_seed: int = 0,
) -> pd.DataFrame:
    """Scored items drawn from a planted law, in the :func:`metrics.load_scored` format.

    Every language of checkpoint k (x = k + 1) is answered correctly with probability
    ``a * x**b`` (plus ``mono_shift`` at k = 0, planting a monolingual gap of ``-mono_shift``);
    the initial model with ``init_accuracy``. Languages: ``english``, parallel languages
    ``p1..p{k_max}`` (mixture k trains English and p1..pk) and held-out ``h1..h{n_heldout}``.
    Useful to check how many items are needed to resolve b, and as test data.
    """
    rng = np.random.default_rng(rng_seed)
    parallel = [f"p{i}" for i in range(1, k_max + 1)]
    langs = [english, *parallel, *[f"h{i}" for i in range(1, n_heldout + 1)]]
    ids = [f"q{i:04d}" for i in range(n_items)]
    frames = []

    def block(p: float, meta: dict, train: list[str]) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"planted accuracy {p:.3f} outside [0, 1]")
        for lang in langs:
            correct = rng.random(n_items) < p
            frames.append(
                pd.DataFrame(
                    {
                        **{key: [val] * n_items for key, val in meta.items()},
                        "train_langs": [tuple(sorted(train))] * n_items,
                        "benchmark": benchmark,
                        "lang": lang,
                        "id": ids,
                        "sample": 0,
                        "correct": correct,
                        "off_target": False,
                        "extracted": None,
                        "reason": None,
                    }
                )
            )

    block(init_accuracy, {"model": model, "paradigm": "init", "mixture": "init", "k": None, "seed": None}, [])
    for k in range(k_max + 1):
        p = a * (k + 1) ** b + (mono_shift if k == 0 else 0.0)
        for s in seeds:
            meta = {"model": model, "paradigm": paradigm, "mixture": f"k{k}", "k": k, "seed": s}
            block(p, meta, [english, *parallel[:k]])
    return normalize_items(pd.concat(frames, ignore_index=True))
