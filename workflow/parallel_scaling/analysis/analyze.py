"""``analyze``: scored items -> accuracy/MTI/law tables, the law's JSON, and figures.

Output layout under ``--outdir``::

    tables/accuracy.csv   long accuracy table (accuracy.accuracy_table)
    tables/accuracy.md    wide accuracy table (languages as columns) in markdown; with
                          --difficulty-weights, a second one of difficulty-weighted accuracy
    tables/accuracy.tex   the same as booktabs tabulars
    tables/mti.csv        MTI per trained checkpoint and formula (mti.mti_table)
    tables/law.csv        one row per series (bootstrap.summary_frame)
    tables/law.md         human summary: leap, b, R^2, gap with intervals, or why no law
    law/fit.json          options, parameters, intervals and points of every series
    plots/scaling.{png,pdf}, plots/heatmap.{png,pdf}, plots/mti.{png,pdf}
    plots/training.{png,pdf}   only with --plot-training

The tables are written even when no law can be fitted; ``law.md`` then says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from parallel_scaling.analysis import plots
from parallel_scaling.analysis.accuracy import accuracy_table, weighted_wide_table, wide_table
from parallel_scaling.analysis.bootstrap import SeriesLaw, law_analysis, summary_frame
from parallel_scaling.analysis.items import load_scored
from parallel_scaling.analysis.mti import MTI_FORMULAS, mti_table
from parallel_scaling.analysis.plot_training import plot_training_curves
from parallel_scaling.analysis.series import Y_CHOICES
from parallel_scaling.analysis.tables import fit_json, law_markdown, to_latex, to_markdown

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


def run(args: argparse.Namespace) -> list[Path]:
    """Do the analysis, top-down: read the items, compute every table, then write; returns the written paths."""
    if not 0 < args.level < 1:
        raise ValueError(f"--level must be in (0, 1), got {args.level}")
    if args.n_boot < 0:
        raise ValueError(f"--n-boot must be >= 0, got {args.n_boot}")
    items = load_scored(args.scored)
    long = accuracy_table(items, level=args.level, weights=args.difficulty_weights)
    mti = mti_table(long, english=args.english)
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
    outdir: Path = args.outdir
    return [
        *write_accuracy(long, mti, outdir / "tables", args),
        *write_law(law, laws, outdir, args),
        *write_figures(long, mti, laws, outdir / "plots", args),
    ]


def write_accuracy(long: pd.DataFrame, mti: pd.DataFrame, tables: Path, args: argparse.Namespace) -> list[Path]:
    """accuracy.csv (long), accuracy.md / .tex (wide, plus the difficulty-weighted table), mti.csv."""
    tables.mkdir(parents=True, exist_ok=True)
    long.to_csv(tables / "accuracy.csv", index=False)
    wide = wide_table(long, english=args.english)
    markdown = to_markdown(wide)
    latex = to_latex(wide, caption="Accuracy per language", label="tab:accuracy")
    weighted, described = weighted_wide_table(long, args.english, args.difficulty_weights)
    if weighted is not None:
        title = f"Difficulty-weighted accuracy (sum of weight x accuracy per level over the sum of weights; {described})"
        markdown += f"\n{title}:\n\n" + to_markdown(weighted)
        latex += "\n" + to_latex(weighted, caption=title, label="tab:accuracy-weighted")
    (tables / "accuracy.md").write_text(markdown, encoding="utf-8")
    (tables / "accuracy.tex").write_text(latex, encoding="utf-8")
    mti.to_csv(tables / "mti.csv", index=False)
    return [tables / n for n in ("accuracy.csv", "accuracy.md", "accuracy.tex", "mti.csv")]


def write_law(law: pd.DataFrame, laws: list[SeriesLaw], outdir: Path, args: argparse.Namespace) -> list[Path]:
    """tables/law.csv, tables/law.md and law/fit.json (with the options, so the JSON says how it was made)."""
    tables, law_dir = outdir / "tables", outdir / "law"
    for d in (tables, law_dir):
        d.mkdir(parents=True, exist_ok=True)
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
    return [tables / "law.csv", tables / "law.md", law_dir / "fit.json"]


def write_figures(
    long: pd.DataFrame, mti: pd.DataFrame, laws: list[SeriesLaw], plot_dir: Path, args: argparse.Namespace
) -> list[Path]:
    """The scaling curve, the heatmap, the MTI figure and, with --plot-training, the training curves."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    xlabel = "number of training languages" + (" (English counted)" if args.english_counts else " (k)")
    written = plots.plot_scaling(plots.scaling_series(laws), plot_dir / "scaling", xlabel=xlabel, ylabel=Y_LABELS[args.y],
                                 empty_message=None if args.law else "no law fitted: analysis.law is false")
    written += plots.plot_heatmap(long, plot_dir / "heatmap", english=args.english)
    written += plots.plot_mti(mti, plot_dir / "mti")
    if args.plot_training:
        written += plot_training_curves(args.plot_training, args.training_labels, plot_dir / "training")
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
