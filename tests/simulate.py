"""Test data: scored items simulated from a planted Parallel Scaling Law.

Lives with the tests, not in the package: no rule needs it. Also handy to check how many items
are needed to resolve the exponent b (power analysis).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from parallel_scaling.analysis.items import normalize_items


def simulate_scored_items(
    a: float = 0.3,
    b: float = 0.25,
    k_max: int = 6,
    n_items: int = 200,
    n_heldout: int = 3,
    mono_shift: float = -0.05,
    seeds: Sequence[int] = (0,),
    init_accuracy: float = 0.2,
    model: str = "sim-model",
    benchmark: str = "sim-bench",
    paradigm: str = "grpo",
    english: str = "en",
    rng_seed: int = 0,
) -> pd.DataFrame:
    """Scored items drawn from a planted law, in the :func:`load_scored` format (normalised).

    Every language of checkpoint k (x = k + 1) is answered correctly with probability
    ``a * x**b`` (plus ``mono_shift`` at k = 0, planting a monolingual gap of ``-mono_shift``);
    the initial model with ``init_accuracy``. Languages: ``english``, parallel languages
    ``p1..p{k_max}`` (mixture k trains English and p1..pk) and held-out ``h1..h{n_heldout}``.
    Useful to check how many items are needed to resolve b, and as test data.
    """
    rng = np.random.default_rng(rng_seed)
    parallel = [f"p{i}" for i in range(1, k_max + 1)]
    langs = [english, *parallel, *[f"h{i}" for i in range(1, n_heldout + 1)]]
    ids = [f"q{i:04d}" for i in range(n_items)]
    frames = []

    def block(p: float, meta: dict, train: list[str]) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"planted accuracy {p:.3f} outside [0, 1]")
        for lang in langs:
            correct = rng.random(n_items) < p
            frames.append(
                pd.DataFrame(
                    {
                        **{key: [val] * n_items for key, val in meta.items()},
                        "train_langs": [tuple(sorted(train))] * n_items,
                        "benchmark": benchmark,
                        "lang": lang,
                        "id": ids,
                        "sample": 0,
                        "correct": correct,
                        "off_target": False,
                        "extracted": None,
                        "reason": None,
                    }
                )
            )

    block(init_accuracy, {"model": model, "paradigm": "init", "mixture": "init", "k": None, "seed": None}, [])
    for k in range(k_max + 1):
        p = a * (k + 1) ** b + (mono_shift if k == 0 else 0.0)
        for s in seeds:
            meta = {"model": model, "paradigm": paradigm, "mixture": f"k{k}", "k": k, "seed": s}
            block(p, meta, [english, *parallel[:k]])
    return normalize_items(pd.concat(frames, ignore_index=True))
