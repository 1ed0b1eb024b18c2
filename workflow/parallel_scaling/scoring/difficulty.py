"""Difficulty levels of benchmark items and the difficulty-weighted accuracy (PolyMath's DW-ACC).

Shared by scoring (the ``score`` command's summary) and the analysis tables, so both weigh the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def difficulty_level(value: object) -> str | None:
    """A difficulty level as text (``2``, ``2.0`` and ``"2"`` alike), None when absent."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()



def difficulty_weighted_accuracy(correct: Sequence[bool], levels: Sequence[str], weights: Mapping[str, float]) -> float:
    """sum_d w_d * accuracy_d / sum_d w_d over the difficulty levels d present in ``levels``.

    Weighting levels rather than items keeps a hard level's weight whatever its item count; with
    PolyMath's four levels and weights 1, 2, 4, 8 this is the benchmark's DW-ACC. Raises
    ValueError for a level without a weight (a typo must not silently drop items) and for no items.
    """
    if len(correct) != len(levels):
        raise ValueError(f"{len(correct)} correctness values but {len(levels)} difficulty levels")
    if not len(correct):
        raise ValueError("no items to weigh")
    unweighted = sorted({str(lv) for lv in levels} - set(weights))
    if unweighted:
        raise ValueError(f"difficulty level(s) {', '.join(unweighted)} have no weight (weighted: {', '.join(weights)})")
    frame = pd.DataFrame({"level": [str(lv) for lv in levels], "correct": np.asarray(correct, dtype=float)})
    per_level = frame.groupby("level")["correct"].mean()
    w = np.array([float(weights[lv]) for lv in per_level.index])
    return float((w * per_level.to_numpy()).sum() / w.sum())
