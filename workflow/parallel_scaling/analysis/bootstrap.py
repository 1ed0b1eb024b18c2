"""Point estimates and paired bootstrap intervals of the law, the leap and the gap, for every series.

Last computing step of ``analyze``: :func:`law_analysis` takes the scored items, builds the series
(:mod:`.series`), computes the law's statistics on the observed data (:func:`point_estimate`) and
on ``n_boot`` resamples (:func:`bootstrap`), and :func:`summary_frame` tabulates the results
(``law.csv``).

The bootstrap is ours rather than ``scipy.stats.bootstrap`` because it resamples at two levels
with different pairing: one item draw shared by every k, language and the initial model (the
points compare the same problems, so their errors are correlated), and, when a k has several
seeds, an independent draw of seeds per k (different k are different training runs). And a
resample whose law cannot be fitted is counted (``n_boot_failed``) and left out of the fit
statistics' percentiles while its leap and points still count, where scipy would carry NaN.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from parallel_scaling.analysis.law import PointEstimate, law_statistics, n_train_langs
from parallel_scaling.analysis.mti import MTI_FORMULAS
from parallel_scaling.analysis.series import (
    Y_CHOICES,
    SeriesData,
    build_series,
    heldout_langs,
    series_y,
    weighted_accuracies,
    y_definition,
)


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
    acc, init = weighted_accuracies(series, weights, runs)
    yk = series_y(acc, series, y, english, init, mti_formula)
    return law_statistics(series.ks, yk, english_counts, offset)


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
        acc, init = weighted_accuracies(series, weights, runs)
        yk = series_y(acc, series, y, english, init, mti_formula)
        ys[i] = yk
        est = law_statistics(series.ks, yk, english_counts, offset)
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


def _not_fitted(series: Any, english_counts: bool, reason: str) -> PointEstimate:
    """The point estimate of a series whose law cannot be fitted: its x values, no y, the reason."""
    x = np.asarray(n_train_langs(np.array(series.ks), english_counts), dtype=float)
    return PointEstimate(list(series.ks), x, np.full(len(series.ks), np.nan), None, None, None, None, reason)


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
            reason = ("law not fitted: no held-out language (every evaluated language is trained at some k); "
                      "use y = unseen or all")
            results.append(SeriesLaw(series, _not_fitted(series, english_counts, reason), None, definition))
            continue
        if y == "mti" and series.init_correct is None:
            reason = "law not fitted: y = mti needs initial-model (paradigm init) rows"
            results.append(SeriesLaw(series, _not_fitted(series, english_counts, reason), None, definition))
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
