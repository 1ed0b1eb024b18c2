"""The written forms of ``analyze``'s results: Markdown and LaTeX tables, ``law.md`` and ``fit.json``.

Last step before the figures: the frames and law results are computed elsewhere; this module only
renders them. Tables are rendered by pandas (``DataFrame.to_markdown`` through tabulate,
``Styler.to_latex``); what is added here is the house style: floats to three decimals, missing
values as ``n/a``, right-aligned numbers, text cells taken as text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from parallel_scaling.analysis.bootstrap import SeriesLaw


def _numeric(column: pd.Series) -> bool:
    """Numbers (not booleans) are right-aligned and formatted; everything else is text."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """GitHub-flavoured (pipe) Markdown table; numbers right-aligned, missing values as ``n/a``.

    Text columns are not parsed as numbers (a model named ``1.5`` stays ``1.5``) and their ``|``
    are escaped so a cell cannot split the row.
    """
    text = [i for i, c in enumerate(df.columns) if not _numeric(df[c])]
    shown = df.astype(object).where(df.notna(), None)
    for i in text:
        shown.iloc[:, i] = shown.iloc[:, i].map(lambda v: v if v is None else str(v).replace("|", "\\|"))
    return shown.to_markdown(
        index=False, tablefmt="pipe", floatfmt=floatfmt, numalign="right", missingval="n/a", disable_numparse=text
    ) + "\n"


_CAPTION_ESCAPES = str.maketrans({
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
})


def to_latex(df: pd.DataFrame, floatfmt: str = ".3f", caption: str | None = None, label: str | None = None) -> str:
    """A ``booktabs`` tabular, centred in a table float when ``caption`` or ``label`` is given.

    Every cell and header is escaped by pandas (so model names like ``Qwen2.5_7B`` compile); the
    caption, which pandas passes through as it is, is escaped here.
    """
    floats = {c: (lambda v: format(v, floatfmt)) for c in df.columns if pd.api.types.is_float_dtype(df[c])}
    spec = "".join("r" if _numeric(df[c]) else "l" for c in df.columns)
    styler = df.style.format(floats, na_rep="n/a", escape="latex").format_index(escape="latex", axis="columns")
    wrapped = caption is not None or label is not None
    return styler.hide(axis="index").to_latex(
        column_format=spec,
        hrules=True,
        caption=caption.translate(_CAPTION_ESCAPES) if caption is not None else None,
        label=label,
        position="t" if wrapped else None,
        position_float="centering" if wrapped else None,
    )


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


def law_markdown(table: pd.DataFrame, level: float, english_counts: bool, law: bool = True) -> str:
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
