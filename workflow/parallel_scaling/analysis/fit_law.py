"""``fit-law``: fit the Parallel Scaling Law to an accuracy CSV made elsewhere.

The CSV has one row per point (several rows with the same k, e.g. seeds, are averaged). The
``--x-column`` holds k, the number of parallel languages added to English: k = 0 is the
English-only (monolingual) point, k >= 1 the multilingual points the law is fitted on, with
x = k + 1 (English counted, default) or x = k. Prints a, b, c, R^2, the First-Parallel Leap and the
Monolingual Generalization Gap per group; optionally draws the law.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from parallel_scaling.analysis import plots
from parallel_scaling.analysis.law import LawFitError, first_parallel_leap, fit_power_law, monolingual_gap, n_train_langs
from parallel_scaling.analysis.tables import to_markdown


class LawTableError(ValueError):
    """The input CSV is missing, lacks a named column, or has non-numeric values there."""


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``fit-law``."""
    parser = argparse.ArgumentParser(prog="fit-law", description="Fit y = a x^b (+ c) to an accuracy table.")
    parser.add_argument("table", type=Path, help="CSV with one row per point")
    parser.add_argument("--x-column", default="k", help="column with k (parallel languages besides English)")
    parser.add_argument("--y-column", default="accuracy", help="column with the transfer measure")
    parser.add_argument("--group-by", nargs="+", default=[], help="columns that identify separate series")
    parser.add_argument(
        "--english-counts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="x = k + 1 (default) or x = k",
    )
    parser.add_argument("--offset", action="store_true", help="fit y = a x^b + c")
    parser.add_argument("--plot", type=Path, default=None, help="write the figure here (.png and .pdf)")
    parser.add_argument("--ci-column-low", default=None, help="column with each point's lower CI bound")
    parser.add_argument("--ci-column-high", default=None, help="column with each point's upper CI bound")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as CSV")
    return parser


def read_table(path: Path, columns: list[str], numeric: list[str]) -> pd.DataFrame:
    """Read the CSV and check the named columns exist and the numeric ones parse."""
    if not path.is_file():
        raise LawTableError(f"{path}: table not found")
    frame = pd.read_csv(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LawTableError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, frame.columns))}")
    for col in numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        if values.isna().any():
            raise LawTableError(f"{path}: column {col!r} has missing or non-numeric values")
        frame[col] = values
    k = frame[columns[0]]
    if (k < 0).any() or not np.allclose(k, np.round(k)):
        raise LawTableError(f"{path}: column {columns[0]!r} must hold non-negative integers k")
    return frame


def fit_groups(frame: pd.DataFrame, args: argparse.Namespace) -> tuple[pd.DataFrame, list[plots.ScalingSeries]]:
    """Fit each group; returns the result table (NaN + note where no law) and plot series."""
    xcol, ycol = args.x_column, args.y_column
    cis = [c for c in (args.ci_column_low, args.ci_column_high) if c]
    groups = frame.groupby(args.group_by, sort=True) if args.group_by else [((), frame)]
    rows, series = [], []
    nan = float("nan")
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = " / ".join(map(str, key)) or args.y_column
        pts = g.groupby(xcol)[[ycol, *cis]].mean().sort_index()
        ks = pts.index.to_numpy(dtype=int)
        x = np.asarray(n_train_langs(ks, args.english_counts), dtype=float)
        y = pts[ycol].to_numpy(dtype=float)
        multi = ks >= 1
        note, fit = "", None
        try:
            fit = fit_power_law(x[multi], y[multi], offset=args.offset)
        except LawFitError as exc:
            note = f"law not fitted: {exc}"
        y0 = float(y[ks == 0][0]) if (ks == 0).any() else nan
        y1 = float(y[ks == 1][0]) if (ks == 1).any() else nan
        leap = first_parallel_leap(y0, y1) if math.isfinite(y0) and math.isfinite(y1) else None
        x0 = float(n_train_langs(0, args.english_counts))
        gap = nan
        if fit is not None and math.isfinite(y0):
            try:
                gap = monolingual_gap(fit, x0, y0)
            except LawFitError as exc:
                note = f"no gap: {exc}"
        row = dict(zip(args.group_by, key))
        row.update(
            n_points=int(multi.sum()),
            a=fit.a if fit else nan,
            b=fit.b if fit else nan,
            c=fit.c if fit else nan,
            r2=fit.r2 if fit else nan,
            leap_abs=leap["absolute"] if leap else nan,
            leap_rel=leap["relative"] if leap else nan,
            x0=x0,
            gap=gap,
            note=note,
        )
        rows.append(row)
        low = pts[args.ci_column_low].to_numpy(dtype=float) if args.ci_column_low else None
        high = pts[args.ci_column_high].to_numpy(dtype=float) if args.ci_column_high else None
        mono = ks == 0
        series.append(
            plots.ScalingSeries(
                label=label,
                x=x[multi],
                y=y[multi],
                y_low=low[multi] if low is not None else None,
                y_high=high[multi] if high is not None else None,
                fit=fit,
                mono_x=x0 if mono.any() else None,
                mono_y=y0 if mono.any() else None,
                mono_low=float(low[mono][0]) if low is not None and mono.any() else None,
                mono_high=float(high[mono][0]) if high is not None and mono.any() else None,
            )
        )
    return pd.DataFrame(rows), series


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m parallel_scaling fit-law``; returns 2 on a user-facing error."""
    args = build_parser().parse_args(argv)
    if (args.ci_column_low is None) != (args.ci_column_high is None):
        print("error: give both --ci-column-low and --ci-column-high, or neither", file=sys.stderr)
        return 2
    try:
        cols = [args.x_column, args.y_column, *args.group_by]
        numeric = [args.x_column, args.y_column]
        for c in (args.ci_column_low, args.ci_column_high):
            if c:
                cols.append(c)
                numeric.append(c)
        frame = read_table(args.table, cols, numeric)
        results, series = fit_groups(frame, args)
        print(to_markdown(results, floatfmt=".4g"), end="")
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            results.to_csv(args.out, index=False)
        if args.plot is not None:
            xlabel = "number of training languages" + ("" if args.english_counts else " (k)")
            for path in plots.plot_scaling(series, args.plot, xlabel=xlabel, ylabel=args.y_column):
                print(f"wrote {path}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
