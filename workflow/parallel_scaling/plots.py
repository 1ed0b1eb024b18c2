"""Figures for the scaling study: the law, a language x k heatmap, MTI across k, training curves.

Every function writes both PNG (for quick looks) and PDF (for the paper) next to each other and
returns their paths. Series are told apart by marker and line style as well as colour, so the
figures survive black-and-white printing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from parallel_scaling.metrics import MTI_FORMULAS, ScoredFormatError, language_order, mixture_order  # noqa: E402
from parallel_scaling.scaling_law import FitResult, LawFitError  # noqa: E402

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
#: Perceptually uniform and monotone in lightness, so it reads in greyscale and for colour-blind readers.
HEATMAP_CMAP = "cividis"
TRAINING_METRICS: tuple[str, ...] = ("reward", "kl", "completion_length", "accuracy")


class TrainingLogError(ValueError):
    """A training-log CSV is missing or lacks the ``step`` column."""


def _style(i: int) -> dict:
    """Marker, line style and colour of the i-th series (all three vary)."""
    return {
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "color": f"C{i % 10}",
    }


def _save(fig: plt.Figure, out: Path) -> list[Path]:
    """Write ``out`` as .png and .pdf (whatever suffix ``out`` had) and close the figure."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix.lower() in {".png", ".pdf"} else out
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def _empty(ax: plt.Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


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
    empty: str | None = None,
) -> list[Path]:
    """The Parallel Scaling Law: points with CI bars, the fitted curve, and the monolingual gap.

    The English-only point is a hollow marker; a double-headed arrow joins it to the law's
    prediction at the same x, labelled ``gap = predicted - observed``. ``loglog=True`` puts both
    axes on log scale (a power law becomes a straight line; a point at x = 0 cannot be shown and
    is noted instead). With ``inset`` (linear axes only) a small log-log panel of the fitted points
    is added. ``empty``: the message of a plot without points (why there are none).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawable = [s for s in series if np.size(s.x) or s.mono_y is not None]
    if not drawable:
        _empty(ax, empty or "no parallel-mixture points to plot")
        return _save(fig, out)
    hidden_mono = False
    inset_ax = None
    if inset and not loglog:
        inset_ax = ax.inset_axes([0.62, 0.1, 0.34, 0.34])
    for i, s in enumerate(drawable):
        st = _style(i)
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
    return _save(fig, out)


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
    par = long[(long["mixture"] == "init") | long["mixture"].str.match(r"^k\d+$")]
    trained = par[par["paradigm"] != "init"]
    panels = list(trained.groupby(["model", "paradigm", "benchmark"], sort=True).groups)
    n = max(1, len(panels))
    langs_all = language_order(par["lang"].unique(), english) if not par.empty else []
    fig_h = max(2.5, 0.35 * len(langs_all) + 1.5)
    n_cols = par["mixture"].nunique() if not par.empty else 1
    fig, axes = plt.subplots(1, n, figsize=(max(4.5, 0.75 * n_cols + 2.0) * n, fig_h), squeeze=False)
    if not panels:
        _empty(axes[0, 0], "no parallel-mixture rows to plot")
        return _save(fig, out)
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
    return _save(fig, out)


def plot_mti(mti_table: pd.DataFrame, out: Path, formulas: Sequence[str] | None = None) -> list[Path]:
    """MTI across k, one panel per formula, one line per model/paradigm/benchmark.

    Seeds are averaged; error bars span the min and max over seeds. Only parallel mixtures
    (``k<int>``) with a defined MTI are drawn. A dotted reference line marks full transfer
    (1 for the ratios, 0 for ``normalized``).
    """
    table = mti_table[mti_table["mixture"].astype(str).str.match(r"^k\d+$")].copy() if not mti_table.empty else mti_table
    if not table.empty:
        table = table[np.isfinite(table["mti"].astype(float))]
    present = list(table["formula"].unique()) if not table.empty else []
    known = [f for f in MTI_FORMULAS if f in present] + sorted(f for f in present if f not in MTI_FORMULAS)
    chosen = list(formulas) if formulas is not None else known
    n = max(1, len(chosen))
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    if table.empty or not chosen:
        _empty(axes[0, 0], "no defined MTI values to plot")
        return _save(fig, out)
    for ax, formula in zip(axes[0], chosen):
        sub = table[table["formula"] == formula]
        for i, ((model, paradigm, benchmark), g) in enumerate(sub.groupby(["model", "paradigm", "benchmark"], sort=True)):
            st = _style(i)
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
    return _save(fig, out)


def _training_columns(frame: pd.DataFrame) -> list[str]:
    """Metric columns in a training log: reward, reward/<name>, kl, completion_length, accuracy."""
    return [c for c in frame.columns if c in TRAINING_METRICS or c.startswith("reward/")]


def plot_training_curves(csv_paths: Sequence[Path], labels: Sequence[str] | None, out: Path) -> list[Path]:
    """One panel per metric present in any log; one line (distinct style) per CSV.

    Each CSV needs a ``step`` column and any of ``reward``, ``reward/<name>``, ``kl``,
    ``completion_length``, ``accuracy``. Non-numeric cells are treated as missing.

    Raises:
        TrainingLogError: a file is missing, lacks ``step``, or ``labels`` has the wrong length.
    """
    paths = [Path(p) for p in csv_paths]
    names = list(labels) if labels else [p.stem for p in paths]
    if len(names) != len(paths):
        raise TrainingLogError(f"{len(paths)} training logs but {len(names)} labels")
    logs = []
    for path in paths:
        if not path.is_file():
            raise TrainingLogError(f"{path}: training log not found")
        frame = pd.read_csv(path)
        if "step" not in frame.columns:
            raise TrainingLogError(f"{path}: training log has no 'step' column")
        logs.append(frame)
    metrics: list[str] = []
    for frame in logs:
        for col in _training_columns(frame):
            if col not in metrics:
                metrics.append(col)
    ordered = sorted(metrics, key=lambda c: (TRAINING_METRICS.index(c.split("/")[0]) if c.split("/")[0] in TRAINING_METRICS else 9, c))
    n = max(1, len(ordered))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    flat = axes.ravel()
    if not ordered:
        _empty(flat[0], "no training metrics found")
    for ax, metric in zip(flat, ordered):
        for i, (frame, name) in enumerate(zip(logs, names)):
            if metric not in frame.columns:
                continue
            step = pd.to_numeric(frame["step"], errors="coerce")
            vals = pd.to_numeric(frame[metric], errors="coerce")
            ok = step.notna() & vals.notna()
            st = _style(i)
            ax.plot(step[ok], vals[ok], label=name, markevery=max(1, int(ok.sum()) // 10), markersize=4, **st)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    for ax in flat[len(ordered) if ordered else 1 :]:
        ax.remove()
    fig.tight_layout()
    return _save(fig, out)
