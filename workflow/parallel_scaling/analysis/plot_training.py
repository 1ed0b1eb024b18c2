"""``plot-training``: the training curves of every checkpoint (reward, KL, length, accuracy).

Reads each checkpoint's ``curves.csv`` (written by training, one row per logged step) and draws one
panel per distinct metric, one line per checkpoint. Training logs hold some series under several
names (a GRPO run's ``reward``, ``reward/correctness`` and ``accuracy`` are one number when
correctness is the only reward), so columns that hold the same values are drawn once, in one panel
titled with all their names.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from parallel_scaling.analysis.figure_style import empty, save, style

#: Metrics drawn, in panel order; ``reward/<name>`` columns (one per reward function) follow ``reward``.
TRAINING_METRICS: tuple[str, ...] = ("reward", "kl", "completion_length", "accuracy")


class TrainingLogError(ValueError):
    """A training-log CSV is missing or lacks the ``step`` column."""


def read_logs(csv_paths: Sequence[Path]) -> list[pd.DataFrame]:
    """Read every training log; raises :class:`TrainingLogError` naming a missing file or one without ``step``."""
    logs = []
    for path in map(Path, csv_paths):
        if not path.is_file():
            raise TrainingLogError(f"{path}: training log not found")
        frame = pd.read_csv(path)
        if "step" not in frame.columns:
            raise TrainingLogError(f"{path}: training log has no 'step' column")
        logs.append(frame)
    return logs


def _metric_order(column: str) -> tuple[int, str]:
    base = column.split("/")[0]
    return (TRAINING_METRICS.index(base) if base in TRAINING_METRICS else len(TRAINING_METRICS), column)


def _same_series(logs: Sequence[pd.DataFrame], first: str, second: str) -> bool:
    """True when every log holding both columns holds the same numbers in them, and at least one does."""
    shared = False
    for frame in logs:
        if first not in frame.columns or second not in frame.columns:
            continue
        a = pd.to_numeric(frame[first], errors="coerce").to_numpy(dtype=float)
        b = pd.to_numeric(frame[second], errors="coerce").to_numpy(dtype=float)
        if not np.array_equal(a, b, equal_nan=True):
            return False
        shared = shared or bool(np.isfinite(a).any())
    return shared


def metric_panels(logs: Sequence[pd.DataFrame]) -> list[list[str]]:
    """The panels to draw: groups of metric columns that hold the same series, in panel order.

    Metric columns are ``reward``, ``reward/<name>``, ``kl``, ``completion_length`` and
    ``accuracy``. A column joins the first earlier group whose columns hold the same numbers as it
    in every log that has both (compared by value, not by name, so it holds whatever the trainer
    logs); a log that has only one of them draws that one.
    """
    found = {c for frame in logs for c in frame.columns if c in TRAINING_METRICS or c.startswith("reward/")}
    panels: list[list[str]] = []
    for metric in sorted(found, key=_metric_order):
        group = next((g for g in panels if all(_same_series(logs, m, metric) for m in g)), None)
        if group is None:
            panels.append([metric])
        else:
            group.append(metric)
    return panels


def plot_training_curves(csv_paths: Sequence[Path], labels: Sequence[str] | None, out: Path) -> list[Path]:
    """One panel per distinct metric (:func:`metric_panels`); one line (distinct style) per CSV.

    Each CSV needs a ``step`` column and any of ``reward``, ``reward/<name>``, ``kl``,
    ``completion_length``, ``accuracy``. Non-numeric cells are treated as missing. A panel of
    several names draws, for each log, the first of them it holds; the legend names the column
    when it is not the panel's first.

    Raises:
        TrainingLogError: a file is missing, lacks ``step``, or ``labels`` has the wrong length.
    """
    paths = [Path(p) for p in csv_paths]
    names = list(labels) if labels else [p.stem for p in paths]
    if len(names) != len(paths):
        raise TrainingLogError(f"{len(paths)} training logs but {len(names)} labels")
    logs = read_logs(paths)
    panels = metric_panels(logs)
    n = max(1, len(panels))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    flat = axes.ravel()
    if not panels:
        empty(flat[0], "no training metrics found")
    for ax, group in zip(flat, panels):
        for i, (frame, name) in enumerate(zip(logs, names)):
            metric = next((m for m in group if m in frame.columns), None)
            if metric is None:
                continue
            step = pd.to_numeric(frame["step"], errors="coerce")
            vals = pd.to_numeric(frame[metric], errors="coerce")
            ok = step.notna() & vals.notna()
            label = name if metric == group[0] else f"{name} ({metric})"
            ax.plot(step[ok], vals[ok], label=label, markevery=max(1, int(ok.sum()) // 10), markersize=4, **style(i))
        ax.set_title(" = ".join(group), fontsize=9)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    for ax in flat[len(panels) if panels else 1 :]:
        ax.remove()
    fig.tight_layout()
    return save(fig, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="plot-training", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", nargs="+", required=True, help="checkpoint directories with curves.csv")
    p.add_argument("--labels", nargs="+", required=True, help="one label per checkpoint")
    p.add_argument("--out", required=True, help="PNG path (a PDF is written beside it)")
    a = p.parse_args(argv)
    if len(a.labels) != len(a.checkpoints):
        raise ValueError(f"plot-training: {len(a.checkpoints)} checkpoints but {len(a.labels)} labels")
    csvs = [Path(c) / "curves.csv" for c in a.checkpoints]
    missing = [str(c) for c in csvs if not c.exists()]
    if missing:
        raise FileNotFoundError(f"plot-training: no curves.csv in {', '.join(missing)}")
    plot_training_curves(csvs, a.labels, Path(a.out).with_suffix(""))
    return 0
