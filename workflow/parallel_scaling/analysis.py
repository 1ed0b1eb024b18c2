"""``analyze``: scored items -> accuracy/MTI/law tables, the law's JSON, and figures.

Output layout under ``--outdir``::

    tables/accuracy.csv   long accuracy table (metrics.accuracy_table)
    tables/accuracy.md    wide accuracy table (languages as columns) in markdown; with
                          --difficulty-weights, a second one of difficulty-weighted accuracy
    tables/accuracy.tex   the same as booktabs tabulars
    tables/mti.csv        MTI per trained checkpoint and formula (metrics.mti_table)
    tables/law.csv        one row per series (scaling_law.law_summary)
    tables/law.md         human summary: leap, b, R^2, gap with intervals, or why no law
    law/fit.json          options, parameters, intervals and points of every series
    plots/scaling.{png,pdf}, plots/heatmap.{png,pdf}, plots/mti.{png,pdf}
    plots/training.{png,pdf}   only with --plot-training

The tables are written even when no law can be fitted; ``law.md`` then says why.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from parallel_scaling import plots
from parallel_scaling.metrics import MTI_FORMULAS, accuracy_table, load_scored, mti_table, to_latex, to_markdown, wide_table
from parallel_scaling.scaling_law import Y_CHOICES, SeriesLaw, law_analysis, summary_frame

Y_LABELS: dict[str, str] = {
    "heldout": "held-out-language accuracy",
    "unseen": "unseen-language accuracy",
    "all": "mean accuracy (all languages)",
    "mti": "MTI vs initial model",
}


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``analyze``."""
    parser = argparse.ArgumentParser(
        prog="analyze",
        description="Accuracy, MTI and Parallel Scaling Law tables and figures from scored items.",
    )
    parser.add_argument("--scored", nargs="+", type=Path, required=True, help="scored-item JSONL files")
    parser.add_argument("--outdir", type=Path, required=True, help="output directory")
    parser.add_argument("--english", default="en", help="language code of English (default: en)")
    parser.add_argument("--y", choices=Y_CHOICES, default="heldout", help="transfer measure the law is fitted to")
    parser.add_argument(
        "--english-counts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count English as a training language: x = k + 1 (default) instead of x = k",
    )
    parser.add_argument("--offset", action="store_true", help="fit y = a x^b + c instead of y = a x^b")
    parser.add_argument("--no-law", dest="law", action="store_false",
                        help="a study without a k axis (analysis.law: false): no law is fitted; law.md says so")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (0 = no intervals)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap RNG seed")
    parser.add_argument("--mti-formula", choices=MTI_FORMULAS, default="ratio", help="MTI formula when --y mti")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of all intervals")
    parser.add_argument(
        "--difficulty-weights",
        type=_weights_arg,
        default={},
        help='JSON {benchmark: {level: weight}}: adds difficulty-weighted accuracy for those benchmarks '
        '(scored rows need a "difficulty" field), e.g. \'{"polymath": {"low": 1, "medium": 2, "high": 4, "top": 8}}\'',
    )
    parser.add_argument("--plot-training", nargs="+", type=Path, default=None, help="training-log CSVs to plot")
    parser.add_argument("--training-labels", nargs="+", default=None, help="one label per --plot-training CSV")
    return parser


def _weights_arg(text: str) -> dict[str, dict[str, float]]:
    """``--difficulty-weights``: a JSON object of benchmark -> {level: positive weight}."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg})") from None
    ok = isinstance(value, dict) and all(
        isinstance(w, dict) and w and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
                                          for x in w.values())
        for w in value.values()
    )
    if not ok:
        raise argparse.ArgumentTypeError('expected {"benchmark": {"level": positive weight, ...}, ...}')
    return {str(b): {str(lv): float(x) for lv, x in w.items()} for b, w in value.items()}


def weighted_tables(long, english: str, weights: dict[str, dict[str, float]]):
    """Wide difficulty-weighted accuracy of the benchmarks with weights, and a line naming the weights."""
    if not weights or "weighted_accuracy" not in long.columns:
        return None, ""
    part = long[long["benchmark"].isin(list(weights))]
    if part.empty:
        return None, ""
    names = sorted(set(part["benchmark"]))
    described = "; ".join(f"{b}: " + ", ".join(f"{lv} {w:g}" for lv, w in weights[b].items()) for b in names)
    return wide_table(part, value="weighted_accuracy", english=english), described


def _ci(value: float, low: float, high: float, fmt: str = ".3f") -> str:
    """``value [low, high]`` with missing parts shown as n/a."""

    def f(v: float) -> str:
        return "n/a" if v is None or not math.isfinite(v) else format(v, fmt)

    if not (math.isfinite(low) and math.isfinite(high)):
        return f(value)
    return f"{f(value)} [{f(low)}, {f(high)}]"


NO_LAW = ("No law was fitted: this study asks for none (`analysis.law: false`), having no k axis of "
          "parallel mixtures to fit it on. The accuracy and MTI tables compare each model with its "
          "initial model.")


def law_markdown(table, level: float, english_counts: bool, law: bool = True) -> str:
    """Short human summary of ``law.csv``: one section per series (or why there is no law)."""
    if not law:
        return "# Parallel Scaling Law\n\n" + NO_LAW + "\n"
    pct = f"{100 * level:g}%"
    lines = [
        "# Parallel Scaling Law",
        "",
        f"Intervals are {pct} paired item-bootstrap percentile intervals. "
        f"x = number of training languages ({'k + 1, English counted' if english_counts else 'k, English not counted'}); "
        "the law is fitted on k >= 1 and the English-only point (k = 0) is held out.",
        "",
    ]
    if table.empty:
        lines.append("No series of parallel mixtures (k0..kK) found in the scored items: nothing to fit.")
        return "\n".join(lines) + "\n"
    for row in table.to_dict("records"):
        lines.append(f"## {row['model']} / {row['paradigm']} / {row['benchmark']}")
        lines.append("")
        lines.append(f"- y ({row['y']}): {row['y_definition']}; points k = {row['k_values']}, up to {row['n_seeds']} seed(s) per k")
        if math.isfinite(row["leap_abs"]):
            lines.append(
                f"- First-Parallel Leap (k0 -> k1): {_ci(row['leap_abs'], row['leap_abs_low'], row['leap_abs_high'], '+.3f')} "
                f"absolute, {_ci(row['leap_rel'], row['leap_rel_low'], row['leap_rel_high'], '+.1%')} relative"
            )
        if math.isfinite(row["b"]):
            law = f"y = {row['a']:.3g} * x^{row['b']:.3g}" + (f" + {row['c']:.3g}" if row["offset"] else "")
            lines.append(f"- Law: {law}")
            lines.append(f"- Exponent b: {_ci(row['b'], row['b_low'], row['b_high'])}")
            lines.append(f"- R^2: {_ci(row['r2'], row['r2_low'], row['r2_high'])}")
        if math.isfinite(row["gap"]):
            side = "below" if row["gap"] > 0 else "above"
            lines.append(
                f"- Monolingual Generalization Gap (law at x0 = {row['x0']:g} minus English-only): "
                f"{_ci(row['gap'], row['gap_low'], row['gap_high'], '+.3f')} (English-only point sits {side} the law)"
            )
        if row["n_boot"]:
            lines.append(f"- Bootstrap: {row['n_boot']} resamples, {row['n_boot_failed']} failed to fit")
        if row["dropped_langs"]:
            lines.append(f"- Languages not evaluated for every checkpoint, left out: {row['dropped_langs']}")
        if row["note"]:
            lines.append(f"- Note: {row['note']}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _jsonable(value: object) -> object:
    """Replace non-finite floats by None so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating,)):
        return _jsonable(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def fit_json(laws: Sequence[SeriesLaw], options: dict) -> dict:
    """Options plus, per series, parameters, intervals, leap, gap and points."""
    entries = []
    for law in laws:
        est, boot = law.estimate, law.boot
        entries.append(
            {
                "model": law.series.model,
                "paradigm": law.series.paradigm,
                "benchmark": law.series.benchmark,
                "y_definition": law.y_definition,
                "fit": est.fit.to_dict() if est.fit is not None else None,
                "leap": est.leap,
                "gap": est.gap,
                "x0": est.x0,
                "intervals": boot.intervals if boot is not None else None,
                "n_boot": boot.n_boot if boot is not None else 0,
                "n_boot_failed": boot.n_failed if boot is not None else 0,
                "points": law.points().to_dict("records"),
                "train_langs": {str(k): sorted(v) for k, v in law.series.train_langs.items()},
                "languages": law.series.langs,
                "dropped_langs": law.series.dropped_langs,
                "note": est.note,
            }
        )
    return _jsonable({"options": options, "series": entries})  # type: ignore[return-value]


def scaling_series(laws: Sequence[SeriesLaw]) -> list[plots.ScalingSeries]:
    """Turn law results into :class:`plots.ScalingSeries` (k >= 1 points, k = 0 as the mono point)."""
    out = []
    for law in laws:
        pts = law.points()
        multi = pts[pts["k"] >= 1]
        mono = pts[pts["k"] == 0]
        has_mono = not mono.empty and math.isfinite(float(mono["y"].iloc[0]))
        out.append(
            plots.ScalingSeries(
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


def run(args: argparse.Namespace) -> list[Path]:
    """Do the analysis; returns the written paths."""
    if not 0 < args.level < 1:
        raise ValueError(f"--level must be in (0, 1), got {args.level}")
    if args.n_boot < 0:
        raise ValueError(f"--n-boot must be >= 0, got {args.n_boot}")
    outdir: Path = args.outdir
    tables, law_dir, plot_dir = outdir / "tables", outdir / "law", outdir / "plots"
    for d in (tables, law_dir, plot_dir):
        d.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    items = load_scored(args.scored)
    long = accuracy_table(items, level=args.level, weights=args.difficulty_weights)
    long.to_csv(tables / "accuracy.csv", index=False)
    wide = wide_table(long, english=args.english)
    markdown = to_markdown(wide)
    latex = to_latex(wide, caption="Accuracy per language", label="tab:accuracy")
    weighted, described = weighted_tables(long, args.english, args.difficulty_weights)
    if weighted is not None:
        title = f"Difficulty-weighted accuracy (sum of weight x accuracy per level over the sum of weights; {described})"
        markdown += f"\n{title}:\n\n" + to_markdown(weighted)
        latex += "\n" + to_latex(weighted, caption=title, label="tab:accuracy-weighted")
    (tables / "accuracy.md").write_text(markdown, encoding="utf-8")
    (tables / "accuracy.tex").write_text(latex, encoding="utf-8")
    mti = mti_table(long, english=args.english)
    mti.to_csv(tables / "mti.csv", index=False)
    written += [tables / n for n in ("accuracy.csv", "accuracy.md", "accuracy.tex", "mti.csv")]

    laws = [] if not args.law else law_analysis(
        items,
        y=args.y,
        english=args.english,
        english_counts=args.english_counts,
        offset=args.offset,
        n_boot=args.n_boot,
        seed=args.seed,
        mti_formula=args.mti_formula,
        level=args.level,
    )
    law = summary_frame(laws, args.y, args.english_counts, args.offset)
    law.to_csv(tables / "law.csv", index=False)
    (tables / "law.md").write_text(law_markdown(law, args.level, args.english_counts, args.law), encoding="utf-8")
    options = {
        "law": args.law,
        "y": args.y,
        "english": args.english,
        "english_counts": args.english_counts,
        "offset": args.offset,
        "n_boot": args.n_boot,
        "seed": args.seed,
        "mti_formula": args.mti_formula,
        "level": args.level,
        "scored": [str(p) for p in args.scored],
    }
    if args.difficulty_weights:
        options["difficulty_weights"] = args.difficulty_weights
    (law_dir / "fit.json").write_text(json.dumps(fit_json(laws, options), indent=2), encoding="utf-8")
    written += [tables / "law.csv", tables / "law.md", law_dir / "fit.json"]

    xlabel = "number of training languages" + (" (English counted)" if args.english_counts else " (k)")
    written += plots.plot_scaling(scaling_series(laws), plot_dir / "scaling", xlabel=xlabel, ylabel=Y_LABELS[args.y],
                                  empty="no law fitted: analysis.law is false" if not args.law else None)
    written += plots.plot_heatmap(long, plot_dir / "heatmap", english=args.english)
    written += plots.plot_mti(mti, plot_dir / "mti")
    if args.plot_training:
        written += plots.plot_training_curves(args.plot_training, args.training_labels, plot_dir / "training")
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m parallel_scaling analyze``; returns 2 on a user-facing error."""
    args = build_parser().parse_args(argv)
    try:
        written = run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"analyze: wrote {len(written)} files under {args.outdir}")
    return 0
