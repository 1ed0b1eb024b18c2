"""The law's series: per-run item counts of each (model, paradigm, benchmark) and its y per k.

Between the scored items (:mod:`.items`) and the law (:mod:`.law`): :func:`build_series` gathers
the parallel mixtures k0..kK of one model, paradigm and benchmark into dense (run, language, item)
counts, so that the bootstrap (:mod:`.bootstrap`) can reweigh items without going back to the
rows; :func:`series_y` turns per-k accuracies into the transfer measure y the law is fitted to,
one of :data:`Y_CHOICES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from parallel_scaling.analysis.items import MIXTURE_K, ScoredFormatError, language_order
from parallel_scaling.analysis.law import LawFitError
from parallel_scaling.analysis.mti import MTIError, mti

#: Transfer measures accepted as ``y``.
Y_CHOICES: tuple[str, ...] = ("heldout", "unseen", "all", "mti")


@dataclass
class SeriesData:
    """Item-level counts of one (model, paradigm, benchmark) series of parallel mixtures k0..kK.

    ``correct[r, l, i]`` / ``count[r, l, i]`` = correct samples / samples of run r (one (k, seed)
    checkpoint), language l, item i. Items are shared across languages and runs (parallel
    benchmark), which lets the bootstrap draw one item resample for all points.
    """

    model: str
    paradigm: str
    benchmark: str
    ks: list[int]
    run_k: np.ndarray
    run_seed: list[object]
    langs: list[str]
    item_ids: list[str]
    train_langs: dict[int, frozenset[str]]
    correct: np.ndarray
    count: np.ndarray
    init_correct: np.ndarray | None = None
    init_count: np.ndarray | None = None
    dropped_langs: list[str] = field(default_factory=list)

    @property
    def n_seeds(self) -> dict[int, int]:
        """Number of runs (seeds) per k."""
        return {k: int(np.sum(self.run_k == k)) for k in self.ks}


def _counts(frame: pd.DataFrame, langs: list[str], items: list[str], keys: list[object], key_col: pd.Series):
    """Scatter correct/sample counts of ``frame`` into dense (run, lang, item) arrays."""
    r_idx = pd.Categorical(key_col, categories=keys).codes
    l_idx = pd.Categorical(frame["lang"], categories=langs).codes
    i_idx = pd.Categorical(frame["id"], categories=items).codes
    keep = (r_idx >= 0) & (l_idx >= 0) & (i_idx >= 0)
    shape = (len(keys), len(langs), len(items))
    correct = np.zeros(shape)
    count = np.zeros(shape)
    np.add.at(correct, (r_idx[keep], l_idx[keep], i_idx[keep]), frame["correct"].to_numpy(dtype=float)[keep])
    np.add.at(count, (r_idx[keep], l_idx[keep], i_idx[keep]), 1.0)
    return correct, count


def build_series(items: pd.DataFrame, english: str = "en") -> list[SeriesData]:
    """Group scored items into series of parallel mixtures, one per (model, paradigm, benchmark).

    Only rows whose mixture is ``k<int>`` and whose paradigm is not ``init`` enter a series
    (``mono-*`` mixtures are excluded). Languages are restricted to those evaluated for every run
    of the series (and for the initial model when it exists); dropped ones are listed in
    ``dropped_langs``. ``english`` is only used to order languages.

    Raises:
        ScoredFormatError: if a row's ``k`` disagrees with its ``kK`` mixture name.
    """
    par = items[(items["paradigm"] != "init") & items["mixture"].str.match(MIXTURE_K)]
    init_all = items[items["paradigm"] == "init"]
    out: list[SeriesData] = []
    for (model, paradigm, benchmark), group in par.groupby(["model", "paradigm", "benchmark"], sort=True):
        k_from_name = group["mixture"].str.slice(1).astype(int)
        k_col = group["k"]
        mismatch = k_col.notna() & (k_col.astype("Float64") != k_from_name.astype("Float64"))
        if mismatch.any():
            row = group.loc[mismatch].iloc[0]
            raise ScoredFormatError(f"row with mixture {row['mixture']!r} has k = {row['k']} ({model}/{benchmark})")
        group = group.assign(_k=k_from_name.to_numpy(), _seed=group["seed"].astype(object).where(group["seed"].notna(), -1))
        runs = sorted({(int(k), s) for k, s in zip(group["_k"], group["_seed"])}, key=lambda ks: (ks[0], str(ks[1])))
        run_keys = [f"{k}|{s}" for k, s in runs]
        run_col = group["_k"].astype(str) + "|" + group["_seed"].astype(str)
        lang_sets = [set(g["lang"]) for _, g in group.groupby(run_col)]
        init = init_all[(init_all["model"] == model) & (init_all["benchmark"] == benchmark)]
        if not init.empty:
            lang_sets.append(set(init["lang"]))
        all_langs = set().union(*lang_sets)
        common = set.intersection(*lang_sets)
        langs = language_order(common, english)
        dropped = language_order(all_langs - common, english)
        item_ids = sorted(set(group["id"]) | set(init["id"]))
        correct, count = _counts(group, langs, item_ids, run_keys, run_col)
        train: dict[int, frozenset[str]] = {}
        for k, g in group.groupby("_k"):
            train[int(k)] = frozenset().union(*g["train_langs"].map(frozenset))
        init_c = init_n = None
        if not init.empty:
            ic, inn = _counts(init, langs, item_ids, ["init"], pd.Series("init", index=init.index))
            init_c, init_n = ic[0], inn[0]
        out.append(
            SeriesData(
                model=str(model),
                paradigm=str(paradigm),
                benchmark=str(benchmark),
                ks=sorted(train),
                run_k=np.array([k for k, _ in runs]),
                run_seed=[s for _, s in runs],
                langs=langs,
                item_ids=item_ids,
                train_langs=train,
                correct=correct,
                count=count,
                init_correct=init_c,
                init_count=init_n,
                dropped_langs=dropped,
            )
        )
    return out


def heldout_langs(series: SeriesData, english: str = "en") -> list[str]:
    """Evaluated languages never trained at any k of the series (English always excluded)."""
    trained = set().union(*series.train_langs.values()) | {english}
    return [lang for lang in series.langs if lang not in trained]


def y_definition(y: str, series: SeriesData | None = None, english: str = "en", mti_formula: str = "ratio") -> str:
    """One-line human description of the transfer measure, naming the languages when known."""
    if y == "heldout":
        langs = f" ({', '.join(heldout_langs(series, english))})" if series is not None else ""
        return f"mean accuracy over languages never trained at any k{langs}"
    if y == "unseen":
        return f"mean accuracy over languages not trained at that point's k (excluding {english})"
    if y == "all":
        return "mean accuracy over all evaluation languages"
    if y == "mti":
        return f"MTI ({mti_formula}) of the seed-averaged checkpoint vs the initial model"
    raise ValueError(f"unknown y {y!r}; choose from {', '.join(Y_CHOICES)}")


def series_y(
    acc: np.ndarray,
    series: SeriesData,
    y: str = "heldout",
    english: str = "en",
    init_acc: np.ndarray | None = None,
    mti_formula: str = "ratio",
) -> np.ndarray:
    """The transfer measure per k from per-k accuracies ``acc[k_index, lang]`` (seeds averaged).

    * ``heldout``: mean over H = languages never trained at any k of the series (fixed set).
    * ``unseen``: mean over languages not in that k's ``train_langs`` and not English.
    * ``all``: mean over all evaluated languages.
    * ``mti``: :func:`parallel_scaling.analysis.mti.mti` with ``mti_formula`` against ``init_acc``,
      seen = that k's trained languages, unseen = the other evaluated languages.

    Undefined values (empty language set, MTI undefined) come back as NaN; callers decide
    whether that is an error.
    """
    if y not in Y_CHOICES:
        raise ValueError(f"unknown y {y!r}; choose from {', '.join(Y_CHOICES)}")
    idx = {lang: i for i, lang in enumerate(series.langs)}
    out = np.full(len(series.ks), np.nan)
    if y == "heldout":
        cols = [idx[lang] for lang in heldout_langs(series, english)]
        if cols:
            out = acc[:, cols].mean(axis=1)
        return out
    if y == "all":
        return acc.mean(axis=1)
    for j, k in enumerate(series.ks):
        trained = series.train_langs[k] | {english}
        unseen = [lang for lang in series.langs if lang not in trained]
        if y == "unseen":
            if unseen:
                out[j] = acc[j, [idx[lang] for lang in unseen]].mean()
            continue
        if init_acc is None:
            raise LawFitError(f"y = mti needs initial-model rows for {series.model} on {series.benchmark}")
        seen = [lang for lang in series.langs if lang in trained]
        try:
            out[j] = mti(
                dict(zip(series.langs, acc[j])),
                dict(zip(series.langs, init_acc)),
                seen,
                unseen,
                formula=mti_formula,
            )
        except MTIError:
            out[j] = np.nan
    return out


def weighted_accuracies(
    series: SeriesData, weights: np.ndarray, runs_per_k: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-k seed-averaged accuracy ``[k, lang]`` and initial accuracy ``[lang]`` under item weights.

    ``weights[i]`` counts item i (all ones for the data as observed, resample counts in the
    bootstrap); ``runs_per_k[j]`` lists the runs (seeds) averaged at the j-th k.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        run_acc = (series.correct @ weights) / (series.count @ weights)
        acc = np.vstack([run_acc[runs].mean(axis=0) for runs in runs_per_k])
        init = None
        if series.init_correct is not None and series.init_count is not None:
            init = (series.init_correct @ weights) / (series.init_count @ weights)
    return acc, init
