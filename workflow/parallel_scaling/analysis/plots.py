"""``analyze``'s figures: the Parallel Scaling Law, a language x k heatmap, and the MTI across k.

Drawn last, from what the other modules computed: :func:`plot_scaling` from the law's series
(:func:`scaling_series` adapts :mod:`.bootstrap`'s results; ``fit-law`` builds its own
:class:`ScalingSeries`), :func:`plot_heatmap` from the long accuracy table, :func:`plot_mti` from
the MTI table. Each writes a PNG and a PDF and returns their paths (:mod:`.figure_style`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from parallel_scaling.analysis.figure_style import empty, save, style
from parallel_scaling.analysis.items import MIXTURE_K, ScoredFormatError, language_order, mixture_order
from parallel_scaling.analysis.law import FitResult, LawFitError
from parallel_scaling.analysis.mti import MTI_FORMULAS

if TYPE_CHECKING:
    from parallel_scaling.analysis.bootstrap import SeriesLaw

#: Perceptually uniform and monotone in lightness, so it reads in greyscale and for colour-blind readers.
HEATMAP_CMAP = "cividis"


@dataclass
class ScalingSeries:
    """One curve of :func:`plot_scaling`.

    ``x``/``y`` are the multilingual points (k >= 1), ``y_low``/``y_high`` their interval (NaN for
    none); ``mono_*`` the English-only point (k = 0), drawn hollow and linked to the law's
    prediction at ``mono_x`` to show the Monolingual Generalization Gap.
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    y_low: np.ndarray | None = None
    y_high: np.ndarray | None = None
    fit: FitResult | None = None
    mono_x: float | None = None
    mono_y: float | None = None
    mono_low: float | None = None
    mono_high: float | None = None


def _yerr(y: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> np.ndarray | None:
    """Asymmetric error-bar array, or None when no finite interval is known."""
    if low is None or high is None:
        return None
    low_a, high_a = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if not np.any(np.isfinite(low_a) & np.isfinite(high_a)):
        return None
    return np.vstack([np.nan_to_num(y - low_a, nan=0.0).clip(0), np.nan_to_num(high_a - y, nan=0.0).clip(0)])


def plot_scaling(
    series: Sequence[ScalingSeries],
    out: Path,
    xlabel: str = "number of training languages",
    ylabel: str = "held-out accuracy",
    title: str | None = None,
    loglog: bool = False,
    inset: bool = True,
    empty_message: str | None = None,
) -> list[Path]:
    """The Parallel Scaling Law: points with CI bars, the fitted curve, and the monolingual gap.

    The English-only point is a hollow marker; a double-headed arrow joins it to the law's
    prediction at the same x, labelled ``gap = predicted - observed``. ``loglog=True`` puts both
    axes on log scale (a power law becomes a straight line; a point at x = 0 cannot be shown and
    is noted instead). With ``inset`` (linear axes only) a small log-log panel of the fitted points
    is added. ``empty_message``: the message of a plot without points (why there are none).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawable = [s for s in series if np.size(s.x) or s.mono_y is not None]
    if not drawable:
        empty(ax, empty_message or "no parallel-mixture points to plot")
        return save(fig, out)
    hidden_mono = False
    inset_ax = None
    if inset and not loglog:
        inset_ax = ax.inset_axes([0.62, 0.1, 0.34, 0.34])
    for i, s in enumerate(drawable):
        st = style(i)
        x, y = np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float)
        ax.errorbar(
            x,
            y,
            yerr=_yerr(y, s.y_low, s.y_high),
            marker=st["marker"],
            color=st["color"],
            linestyle="none",
            capsize=3,
            label=s.label,
        )
        if s.fit is not None:
            x_min = min([v for v in [*x, s.mono_x or 0.0] if v > 0] or [1.0])
            grid = np.linspace(x_min if loglog else min(x_min, s.mono_x if s.mono_x is not None else x_min), x.max(), 200)
            if s.fit.b < 0:
                grid = grid[grid > 0]
            fit_label = f"fit: y = {s.fit.a:.3g}·x^{s.fit.b:.3g}" + (f" + {s.fit.c:.3g}" if s.fit.offset else "")
            fit_label += f" (R² = {s.fit.r2:.2f})"
            ax.plot(grid, s.fit.predict(grid), linestyle=st["linestyle"], color=st["color"], label=fit_label)
        if s.mono_y is not None and s.mono_x is not None and math.isfinite(s.mono_y):
            if loglog and s.mono_x <= 0:
                hidden_mono = True
            else:
                merr = _yerr(np.array([s.mono_y]), np.array([s.mono_low if s.mono_low is not None else np.nan]),
                             np.array([s.mono_high if s.mono_high is not None else np.nan]))
                ax.errorbar(
                    [s.mono_x],
                    [s.mono_y],
                    yerr=merr,
                    marker=st["marker"],
                    markersize=9,
                    markerfacecolor="white",
                    markeredgecolor=st["color"],
                    color=st["color"],
                    linestyle="none",
                    capsize=3,
                    label=f"English only (k=0){'' if len(drawable) == 1 else ': ' + s.label}",
                )
                if s.fit is not None:
                    try:
                        pred = float(s.fit.predict(s.mono_x))
                    except LawFitError:
                        pred = float("nan")
                    if math.isfinite(pred):
                        ax.annotate(
                            "",
                            xy=(s.mono_x, s.mono_y),
                            xytext=(s.mono_x, pred),
                            arrowprops={"arrowstyle": "<->", "color": "black", "lw": 1.2},
                        )
                        ax.plot([s.mono_x], [pred], marker="_", markersize=14, color="black")
                        ax.annotate(
                            f"gap = {pred - s.mono_y:+.3f}",
                            xy=(s.mono_x, (pred + s.mono_y) / 2),
                            xytext=(8, 0),
                            textcoords="offset points",
                            va="center",
                            fontsize=8,
                        )
        if inset_ax is not None and s.fit is not None:
            pos = (x > 0) & (y > 0)
            inset_ax.loglog(x[pos], y[pos], marker=st["marker"], linestyle="none", color=st["color"], markersize=4)
            grid = np.geomspace(x[pos].min(), x[pos].max(), 50) if pos.any() else np.array([])
            pred = s.fit.predict(grid) if grid.size else grid
            ok = np.asarray(pred) > 0
            inset_ax.loglog(grid[ok], np.asarray(pred)[ok], linestyle=st["linestyle"], color=st["color"], lw=1)
    if inset_ax is not None:
        if inset_ax.has_data():
            inset_ax.set_title("log-log", fontsize=7)
            inset_ax.tick_params(labelsize=6, which="both")
        else:
            inset_ax.remove()
    if loglog:
        ax.set_xscale("log")
        ax.set_yscale("log")
    if hidden_mono:
        ax.text(0.01, 0.01, "English-only point at x = 0 not shown on log axes", transform=ax.transAxes, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return save(fig, out)


def scaling_series(laws: Sequence[SeriesLaw]) -> list[ScalingSeries]:
    """Turn law results into :class:`ScalingSeries` (k >= 1 points, k = 0 as the mono point)."""
    out = []
    for law in laws:
        pts = law.points()
        multi = pts[pts["k"] >= 1]
        mono = pts[pts["k"] == 0]
        has_mono = not mono.empty and math.isfinite(float(mono["y"].iloc[0]))
        out.append(
            ScalingSeries(
                label=law.label,
                x=multi["x"].to_numpy(dtype=float),
                y=multi["y"].to_numpy(dtype=float),
                y_low=multi["y_low"].to_numpy(dtype=float),
                y_high=multi["y_high"].to_numpy(dtype=float),
                fit=law.estimate.fit,
                mono_x=float(mono["x"].iloc[0]) if has_mono else None,
                mono_y=float(mono["y"].iloc[0]) if has_mono else None,
                mono_low=float(mono["y_low"].iloc[0]) if has_mono else None,
                mono_high=float(mono["y_high"].iloc[0]) if has_mono else None,
            )
        )
    return [s for s in out if np.isfinite(s.y).any() or s.mono_y is not None]


def plot_heatmap(
    long: pd.DataFrame,
    out: Path,
    value: str = "accuracy",
    english: str = "en",
    title: str | None = None,
) -> list[Path]:
    """Language x mixture heatmap of ``value`` (seeds averaged), one panel per model/paradigm/benchmark.

    Columns are the initial model then k0..kK (monolingual ``mono-*`` mixtures excluded); cells are
    annotated with the value, and a trailing ``*`` marks languages trained at that k.
    """
    if value not in long.columns:
        raise ScoredFormatError(f"long table has no column {value!r}")
    par = long[(long["mixture"] == "init") | long["mixture"].str.match(MIXTURE_K)]
    trained = par[par["paradigm"] != "init"]
    panels = list(trained.groupby(["model", "paradigm", "benchmark"], sort=True).groups)
    n = max(1, len(panels))
    langs_all = language_order(par["lang"].unique(), english) if not par.empty else []
    fig_h = max(2.5, 0.35 * len(langs_all) + 1.5)
    n_cols = par["mixture"].nunique() if not par.empty else 1
    fig, axes = plt.subplots(1, n, figsize=(max(4.5, 0.75 * n_cols + 2.0) * n, fig_h), squeeze=False)
    if not panels:
        empty(axes[0, 0], "no parallel-mixture rows to plot")
        return save(fig, out)
    image = None
    for ax, (model, paradigm, benchmark) in zip(axes[0], panels):
        sel = par[(par["model"] == model) & (par["benchmark"] == benchmark) & par["paradigm"].isin(["init", paradigm])]
        mixtures = sorted(sel["mixture"].unique(), key=mixture_order)
        langs = language_order(sel["lang"].unique(), english)
        grid = sel.groupby(["lang", "mixture"])[value].mean().unstack().reindex(index=langs, columns=mixtures)
        seen = sel.groupby(["lang", "mixture"])["seen"].any().unstack().reindex(index=langs, columns=mixtures)
        data = grid.to_numpy(dtype=float)
        image = ax.imshow(data, cmap=HEATMAP_CMAP, vmin=0, vmax=1, aspect="auto")
        for r in range(data.shape[0]):
            for c in range(data.shape[1]):
                if not math.isfinite(data[r, c]):
                    continue
                mark = "*" if bool(seen.iat[r, c]) is True else ""
                colour = "white" if data[r, c] < 0.55 else "black"
                ax.text(c, r, f"{data[r, c]:.2f}{mark}", ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(mixtures)), mixtures, fontsize=8)
        ax.set_yticks(range(len(langs)), langs, fontsize=8)
        ax.set_xlabel("mixture (* = trained language)")
        ax.set_title(title or f"{model} / {paradigm} / {benchmark}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label=value)
    return save(fig, out)


def plot_mti(mti_table: pd.DataFrame, out: Path, formulas: Sequence[str] | None = None) -> list[Path]:
    """MTI across k, one panel per formula, one line per model/paradigm/benchmark.

    Seeds are averaged; error bars span the min and max over seeds. Only parallel mixtures
    (``k<int>``) with a defined MTI are drawn. A dotted reference line marks full transfer
    (1 for the ratios, 0 for ``normalized``).
    """
    table = mti_table[mti_table["mixture"].astype(str).str.match(MIXTURE_K)].copy() if not mti_table.empty else mti_table
    if not table.empty:
        table = table[np.isfinite(table["mti"].astype(float))]
    present = list(table["formula"].unique()) if not table.empty else []
    known = [f for f in MTI_FORMULAS if f in present] + sorted(f for f in present if f not in MTI_FORMULAS)
    chosen = list(formulas) if formulas is not None else known
    n = max(1, len(chosen))
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    if table.empty or not chosen:
        empty(axes[0, 0], "no defined MTI values to plot")
        return save(fig, out)
    for ax, formula in zip(axes[0], chosen):
        sub = table[table["formula"] == formula]
        for i, ((model, paradigm, benchmark), g) in enumerate(sub.groupby(["model", "paradigm", "benchmark"], sort=True)):
            st = style(i)
            stats = g.groupby("k")["mti"].agg(["mean", "min", "max"]).sort_index()
            k = stats.index.to_numpy(dtype=float)
            err = np.vstack([stats["mean"] - stats["min"], stats["max"] - stats["mean"]])
            ax.errorbar(k, stats["mean"], yerr=err, capsize=3, label=f"{model} / {paradigm} / {benchmark}", **st)
        ax.axhline(0.0 if formula == "normalized" else 1.0, color="grey", linestyle=":", lw=1)
        ax.set_xlabel("k (parallel languages)")
        ax.set_ylabel(f"MTI ({formula})")
        ax.set_title(formula)
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    fig.text(0.5, -0.02, "points: seed mean; bars: min-max over seeds", ha="center", fontsize=7)
    fig.tight_layout()
    return save(fig, out)
