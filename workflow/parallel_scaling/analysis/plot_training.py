"""``plot-training``: the training curves of every checkpoint (reward, KL, length, accuracy)."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="plot-training", description=__doc__)
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
    from parallel_scaling.analysis.plots import plot_training_curves

    plot_training_curves(csvs, a.labels, Path(a.out).with_suffix(""))
    return 0
