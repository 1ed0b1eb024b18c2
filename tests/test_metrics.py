"""Loading scored items, accuracy tables, formatters and the MTI formulas."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from parallel_scaling.analysis.accuracy import accuracy_table, wide_table, wilson_interval
from parallel_scaling.analysis.items import ScoredFormatError, load_scored, normalize_items
from parallel_scaling.analysis.mti import MTIError, mti, mti_table
from parallel_scaling.analysis.tables import to_latex, to_markdown
from parallel_scaling.scoring.difficulty import difficulty_weighted_accuracy


def row(**over) -> dict:
    base = {
        "model": "m",
        "paradigm": "grpo",
        "mixture": "k1",
        "k": 1,
        "seed": 0,
        "train_langs": ["en", "de"],
        "benchmark": "mgsm",
        "lang": "en",
        "id": "1",
        "sample": 0,
        "correct": True,
        "off_target": False,
        "extracted": "4",
        "reason": None,
    }
    base.update(over)
    return base


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_load_scored_normalises_types(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [row(id=1), row(id=2, correct=False)])
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [row(paradigm="init", mixture="init", k=None, seed=None, train_langs=[], id="1")],
    )
    items = load_scored([a, b])
    assert len(items) == 3
    assert items["id"].tolist() == ["1", "2", "1"]
    assert str(items["k"].dtype) == "Int64" and pd.isna(items["k"].iloc[2])
    assert items["train_langs"].iloc[0] == ("de", "en")
    assert items["train_langs"].iloc[2] == ()
    assert items["correct"].dtype == bool


def test_load_scored_names_file_with_missing_columns(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [row()])
    bad_row = row()
    del bad_row["off_target"], bad_row["lang"]
    bad = write_jsonl(tmp_path / "bad.jsonl", [bad_row])
    with pytest.raises(ScoredFormatError, match=r"bad\.jsonl: missing required column\(s\) lang, off_target"):
        load_scored([good, bad])


def test_load_scored_reports_bad_json_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(row()) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ScoredFormatError, match=r"broken\.jsonl:2: invalid JSON"):
        load_scored([broken])
    with pytest.raises(ScoredFormatError, match="not found"):
        load_scored([tmp_path / "nope.jsonl"])


def test_accuracy_and_wilson_interval_match_formula(tmp_path: Path) -> None:
    rows = [row(id=str(i), correct=i < 7, off_target=i < 2) for i in range(10)]
    rows += [row(lang="sw", id=str(i), correct=i < 3) for i in range(10)]
    items = load_scored([write_jsonl(tmp_path / "x.jsonl", rows)])
    long = accuracy_table(items, level=0.95)
    en = long[long["lang"] == "en"].iloc[0]
    assert en["n"] == 10 and en["correct"] == 7 and en["accuracy"] == pytest.approx(0.7)
    z = norm.ppf(0.975)
    p, n = 0.7, 10
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert en["ci_low"] == pytest.approx(centre - half)
    assert en["ci_high"] == pytest.approx(centre + half)
    assert en["off_target_rate"] == pytest.approx(0.2)
    assert bool(en["seen"]) is True
    sw = long[long["lang"] == "sw"].iloc[0]
    assert bool(sw["seen"]) is False and sw["accuracy"] == pytest.approx(0.3)


def test_wilson_edges() -> None:
    low, high = wilson_interval(np.array([0, 5]), np.array([5, 5]))
    assert low[0] == 0.0 and 0 < high[0] < 1
    assert 0 < low[1] < 1 and high[1] == pytest.approx(1.0)


def test_sample_level_accuracy_is_mean_over_samples(tmp_path: Path) -> None:
    # item 1: 3/3 samples correct, item 2: 0/3 -> 3/6 = 0.5 over samples.
    rows = [row(id="1", sample=s, correct=True) for s in range(3)]
    rows += [row(id="2", sample=s, correct=False) for s in range(3)]
    items = load_scored([write_jsonl(tmp_path / "s.jsonl", rows)])
    en = accuracy_table(items).iloc[0]
    assert en["n"] == 6 and en["n_items"] == 2 and en["accuracy"] == pytest.approx(0.5)


def test_accuracy_table_rejects_duplicates_and_inconsistent_train_langs(tmp_path: Path) -> None:
    dup = load_scored([write_jsonl(tmp_path / "d.jsonl", [row(), row()])])
    with pytest.raises(ScoredFormatError, match="duplicate"):
        accuracy_table(dup)
    mixed = load_scored([write_jsonl(tmp_path / "m.jsonl", [row(id="1"), row(id="2", train_langs=["en"])])])
    with pytest.raises(ScoredFormatError, match="inconsistent train_langs"):
        accuracy_table(mixed)


def test_difficulty_weighted_accuracy_weighs_levels_not_items() -> None:
    # easy: 3 of 4 correct (0.75), hard: 1 of 2 (0.5); weights 1 and 8 -> (0.75 + 8 * 0.5) / 9
    correct = [True, True, True, False, True, False]
    levels = ["easy", "easy", "easy", "easy", "hard", "hard"]
    assert difficulty_weighted_accuracy(correct, levels, {"easy": 1, "hard": 8}) == pytest.approx(4.75 / 9)
    # levels absent from the items do not count; equal weights give the mean of the level accuracies
    assert difficulty_weighted_accuracy(correct, levels, {"easy": 2, "hard": 2, "extreme": 16}) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="difficulty level.*hard have no weight"):
        difficulty_weighted_accuracy(correct, levels, {"easy": 1})


def test_numeric_difficulty_levels_read_as_text() -> None:
    # a level column with gaps comes back from pandas as floats: 2.0 must still be level "2"
    items = normalize_items(pd.DataFrame([row(id="1", difficulty=1), row(id="2", difficulty=2.0), row(id="3")]))
    assert items["difficulty"].tolist()[:2] == ["1", "2"] and pd.isna(items["difficulty"].iloc[2])


def _leveled(tmp_path: Path) -> pd.DataFrame:
    """Two benchmarks: 'poly' with difficulty levels (a level per item), 'plain' without."""
    rows = []
    for seed, paradigm, mixture, k in ((None, "init", "init", None), (0, "grpo", "k1", 1)):
        for i in range(6):
            level = ("low", "low", "low", "mid", "mid", "top")[i]
            good = i < (2 if paradigm == "init" else 4)
            rows.append(row(benchmark="poly", id=str(i), difficulty=level, correct=good, seed=seed, paradigm=paradigm,
                            mixture=mixture, k=k, train_langs=[] if paradigm == "init" else ["en", "de"]))
            rows.append(row(benchmark="plain", id=str(i), correct=good, seed=seed, paradigm=paradigm, mixture=mixture,
                            k=k, train_langs=[] if paradigm == "init" else ["en", "de"]))
    return load_scored([write_jsonl(tmp_path / "lv.jsonl", rows)])


def test_accuracy_table_adds_weighted_accuracy_only_with_weights(tmp_path: Path) -> None:
    items = _leveled(tmp_path)
    plain = accuracy_table(items)
    assert "weighted_accuracy" not in plain.columns  # nothing changes without weights
    long = accuracy_table(items, weights={"poly": {"low": 1, "mid": 2, "top": 4}})
    assert list(long.columns) == [*plain.columns[:list(plain.columns).index("accuracy") + 1], "weighted_accuracy",
                                  *plain.columns[list(plain.columns).index("accuracy") + 1:]]
    pd.testing.assert_frame_equal(long.drop(columns="weighted_accuracy"), plain)
    got = long.set_index(["benchmark", "mixture"])["weighted_accuracy"]
    assert got[("poly", "init")] == pytest.approx((1 * 2 / 3 + 2 * 0 + 4 * 0) / 7)  # low 2/3, mid 0, top 0
    assert got[("poly", "k1")] == pytest.approx((1 * 1 + 2 * 0.5 + 4 * 0) / 7)  # low 3/3, mid 1/2, top 0
    assert math.isnan(got[("plain", "init")]) and math.isnan(got[("plain", "k1")])
    wide = wide_table(long[long["benchmark"] == "poly"], value="weighted_accuracy")
    assert wide["en"].tolist() == pytest.approx([2 / 21, 2 / 7])


def test_weighted_accuracy_errors_name_the_benchmark(tmp_path: Path) -> None:
    items = _leveled(tmp_path)
    with pytest.raises(ScoredFormatError, match=r"benchmark 'plain' has difficulty weights but 12 scored rows carry "
                                                r"no 'difficulty'.*lv\.jsonl"):
        accuracy_table(items, weights={"plain": {"low": 1}})
    with pytest.raises(ScoredFormatError, match=r"benchmark 'poly': difficulty level\(s\) top have no weight"):
        accuracy_table(items, weights={"poly": {"low": 1, "mid": 2}})


def _long_from_accuracies(table: dict[tuple[str, str], dict[str, float]], train: dict[str, list[str]]) -> pd.DataFrame:
    """Build scored items with exact accuracies (100 items per cell) and tabulate them."""
    rows = []
    for (paradigm, mixture), accs in table.items():
        k = None if mixture == "init" else int(mixture[1:])
        for lang, acc in accs.items():
            n_correct = round(acc * 100)
            for i in range(100):
                rows.append(
                    row(
                        paradigm=paradigm,
                        mixture=mixture,
                        k=k,
                        seed=None if paradigm == "init" else 0,
                        train_langs=train[mixture],
                        lang=lang,
                        id=str(i),
                        correct=i < n_correct,
                    )
                )
    return accuracy_table(normalize_items(pd.DataFrame(rows)))


def test_wide_table_averages() -> None:
    long = _long_from_accuracies(
        {("init", "init"): {"en": 0.4, "de": 0.2, "fr": 0.3}, ("grpo", "k1"): {"en": 0.6, "de": 0.5, "fr": 0.4}},
        {"init": [], "k1": ["en", "de"]},
    )
    wide = wide_table(long)
    assert list(wide.columns[-6:]) == ["en", "de", "fr", "avg_seen", "avg_unseen", "avg_all"]
    init, k1 = wide.iloc[0], wide.iloc[1]
    assert init["mixture"] == "init" and math.isnan(init["avg_seen"])
    assert init["avg_all"] == pytest.approx(0.3)
    assert k1["avg_seen"] == pytest.approx(0.55)
    assert k1["avg_unseen"] == pytest.approx(0.4)
    assert k1["avg_all"] == pytest.approx(0.5)
    md = re.sub(r" +", " ", to_markdown(wide))  # tabulate pads cells to align columns
    assert md.splitlines()[0].startswith("| model | paradigm | mixture |")
    assert "| n/a |" in md and "0.550" in md
    tex = to_latex(wide, caption="Acc", label="tab:acc")
    assert "\\toprule" in tex and "avg\\_seen" in tex and "\\label{tab:acc}" in tex


def test_to_markdown_keeps_text_cells_as_text() -> None:
    md = to_markdown(pd.DataFrame({"model": ["1.5", "a|b"], "acc": [0.5, float("nan")]}))
    assert "| 1.5 " in md and "a\\|b" in md and "0.500 |" in md and "n/a |" in md


def test_to_latex_escapes_the_caption_too() -> None:
    tex = to_latex(pd.DataFrame({"acc": [0.5]}), caption="poly_math: 50% & more", label="tab:x")
    assert "\\caption{poly\\_math: 50\\% \\& more}" in tex and "\\centering" in tex


def test_to_latex_escapes_specials() -> None:
    tex = to_latex(pd.DataFrame({"model": ["a_b&c%"], "acc": [0.5]}))
    assert "a\\_b\\&c\\%" in tex and "0.500" in tex


TRAINED = {"en": 0.6, "de": 0.5, "fr": 0.4}
INITIAL = {"en": 0.4, "de": 0.25, "fr": 0.2}


def test_mti_ratio() -> None:
    r = {lang: (TRAINED[lang] - INITIAL[lang]) / INITIAL[lang] for lang in TRAINED}  # en .5, de 1, fr 1
    expected = ((r["de"] + r["fr"]) / 2) / r["en"]
    assert expected == pytest.approx(2.0)
    assert mti(TRAINED, INITIAL, ["en"], ["de", "fr"], "ratio") == pytest.approx(expected)


def test_mti_headroom_and_normalized() -> None:
    h = {lang: (TRAINED[lang] - INITIAL[lang]) / (1 - INITIAL[lang]) for lang in TRAINED}
    assert (h["en"], h["de"], h["fr"]) == pytest.approx((1 / 3, 1 / 3, 1 / 4))
    assert mti(TRAINED, INITIAL, ["en"], ["de", "fr"], "headroom") == pytest.approx(7 / 8)
    spread = np.std([h["en"], h["de"], h["fr"]])
    assert spread == pytest.approx(math.sqrt(2) / 36)
    expected = ((h["de"] + h["fr"]) / 2 - h["en"]) / spread
    assert mti(TRAINED, INITIAL, ["en"], ["de", "fr"], "normalized") == pytest.approx(expected)
    assert expected == pytest.approx(-1.5 / math.sqrt(2))


@pytest.mark.parametrize(
    ("trained", "initial", "seen", "unseen", "formula", "message"),
    [
        ({"en": 0.5, "de": 0.2}, {"en": 0.4, "de": 0.0}, ["en"], ["de"], "ratio", "initial accuracy is 0"),
        ({"en": 0.4, "de": 0.5}, {"en": 0.4, "de": 0.3}, ["en"], ["de"], "ratio", "seen languages is ~0"),
        ({"en": 0.4, "de": 0.5}, {"en": 0.4, "de": 0.3}, ["en"], ["de"], "headroom", "seen languages is ~0"),
        ({"en": 1.0, "de": 0.5}, {"en": 1.0, "de": 0.3}, ["en"], ["de"], "headroom", "no headroom"),
        ({"en": 0.7, "de": 0.55}, {"en": 0.4, "de": 0.1}, ["en"], ["de"], "normalized", "spread 0"),
        ({"en": 0.5}, {"en": 0.4}, ["en"], [], "ratio", "unseen"),
        ({"en": 0.5}, {"en": 0.4}, ["en"], ["de"], "ratio", "no trained accuracy"),
        ({"en": 0.5, "de": 0.2}, {"en": 0.4, "de": 0.1}, ["en"], ["de"], "bogus", "unknown MTI formula"),
    ],
)
def test_mti_undefined_cases_raise(trained, initial, seen, unseen, formula, message) -> None:
    with pytest.raises(MTIError, match=message):
        mti(trained, initial, seen, unseen, formula)


def test_mti_table_against_init_and_missing_init() -> None:
    long = _long_from_accuracies(
        {("init", "init"): INITIAL, ("grpo", "k0"): TRAINED},
        {"init": [], "k0": ["en"]},
    )
    table = mti_table(long)
    got = dict(zip(table["formula"], table["mti"]))
    assert got["ratio"] == pytest.approx(2.0)
    assert got["headroom"] == pytest.approx(7 / 8)
    assert (table["seen_langs"] == "en").all() and (table["unseen_langs"] == "de,fr").all()
    assert table["english_gain"].iloc[0] == pytest.approx(0.2)
    assert (table["note"] == "").all()

    no_init = mti_table(long[long["paradigm"] != "init"])
    assert no_init["mti"].isna().all()
    assert no_init["note"].str.contains("no init row").all()
    assert not np.isinf(no_init["mti"].astype(float)).any()
