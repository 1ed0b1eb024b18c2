"""End-to-end ``analyze`` on synthetic scored files, and the ``fit-law`` CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parallel_scaling.analysis import analyze as analysis
from parallel_scaling.analysis import fit_law as fitlaw
from simulate import simulate_scored_items

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_scored(items: pd.DataFrame, directory: Path) -> list[str]:
    """One JSONL per checkpoint x language, as the pipeline writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for (mixture, seed, lang), group in items.groupby(["mixture", "seed", "lang"], dropna=False):
        path = directory / f"{mixture}_{'na' if pd.isna(seed) else seed}_{lang}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for rec in group.to_dict("records"):
                out = {}
                for key, value in rec.items():
                    if isinstance(value, tuple):
                        out[key] = list(value)
                    elif value is None or value is pd.NA:
                        out[key] = None
                    elif isinstance(value, (np.integer,)):
                        out[key] = int(value)
                    elif isinstance(value, (np.bool_,)):
                        out[key] = bool(value)
                    else:
                        out[key] = value
                handle.write(json.dumps(out) + "\n")
        paths.append(str(path))
    return paths


EXPECTED = [
    "tables/accuracy.csv",
    "tables/accuracy.md",
    "tables/accuracy.tex",
    "tables/mti.csv",
    "tables/law.csv",
    "tables/law.md",
    "law/fit.json",
    "plots/scaling.png",
    "plots/scaling.pdf",
    "plots/heatmap.png",
    "plots/heatmap.pdf",
    "plots/mti.png",
    "plots/mti.pdf",
]


def test_analyze_end_to_end(tmp_path: Path) -> None:
    items = simulate_scored_items(a=0.3, b=0.25, k_max=5, n_items=80, seeds=(0, 1), rng_seed=4)
    scored = write_scored(items, tmp_path / "scored")
    log = tmp_path / "train.csv"
    pd.DataFrame({"step": [0, 10, 20], "reward": [0.1, 0.3, 0.5], "kl": [0.0, 0.01, 0.02]}).to_csv(log, index=False)
    out = tmp_path / "out"
    rc = analysis.main(
        ["--scored", *scored, "--outdir", str(out), "--n-boot", "50", "--plot-training", str(log), "--training-labels", "k1"]
    )
    assert rc == 0
    for rel in [*EXPECTED, "plots/training.png", "plots/training.pdf"]:
        path = out / rel
        assert path.is_file() and path.stat().st_size > 0, rel
        if path.suffix == ".png":
            assert path.read_bytes().startswith(PNG_MAGIC)
    long = pd.read_csv(out / "tables/accuracy.csv")
    assert {"seen", "ci_low", "ci_high", "off_target_rate"} <= set(long.columns)
    assert len(long) == 9 * (1 + 6 * 2)  # 9 languages (en, p1-p5, h1-h3) x (init + 6 mixtures x 2 seeds)
    law = pd.read_csv(out / "tables/law.csv")
    assert len(law) == 1 and np.isfinite(law["b"].iloc[0]) and law["n_boot"].iloc[0] == 50
    md = (out / "tables/law.md").read_text()
    assert "First-Parallel Leap" in md and "Exponent b" in md and "Monolingual Generalization Gap" in md
    fit = json.loads((out / "law/fit.json").read_text())
    assert fit["options"]["y"] == "heldout"
    assert fit["series"][0]["fit"]["b"] == pytest.approx(law["b"].iloc[0])
    assert len(fit["series"][0]["points"]) == 6
    mti = pd.read_csv(out / "tables/mti.csv")
    assert set(mti["formula"]) == {"ratio", "headroom", "normalized"}


def test_analyze_adds_difficulty_weighted_accuracy_for_weighted_benchmarks(tmp_path: Path) -> None:
    items = simulate_scored_items(k_max=3, n_items=40, rng_seed=2, benchmark="leveled")
    items["difficulty"] = ["hard" if int(i[1:]) % 4 == 0 else "easy" for i in items["id"]]
    plain = simulate_scored_items(k_max=3, n_items=40, rng_seed=3, benchmark="flat")
    scored = write_scored(pd.concat([items, plain], ignore_index=True), tmp_path / "s")
    out = tmp_path / "out"
    weights = json.dumps({"leveled": {"easy": 1, "hard": 3}})
    assert analysis.main(["--scored", *scored, "--outdir", str(out), "--n-boot", "5", "--difficulty-weights", weights]) == 0
    long = pd.read_csv(out / "tables/accuracy.csv")
    lev = long[long["benchmark"] == "leveled"]
    assert lev["weighted_accuracy"].notna().all() and long.loc[long["benchmark"] == "flat", "weighted_accuracy"].isna().all()
    # one cell by hand: easy and hard accuracies weighted 1 and 3
    k2 = items[(items["mixture"] == "k2") & (items["lang"] == "h1")]
    easy, hard = (k2.loc[k2["difficulty"] == d, "correct"].mean() for d in ("easy", "hard"))
    cell = lev[(lev["mixture"] == "k2") & (lev["lang"] == "h1")]["weighted_accuracy"].iloc[0]
    assert cell == pytest.approx((easy + 3 * hard) / 4)
    md = re.sub(r" +", " ", (out / "tables/accuracy.md").read_text())  # tabulate pads cells to align columns
    assert md.count("| model |") == 2 and "Difficulty-weighted accuracy" in md and "leveled: easy 1, hard 3" in md
    assert "\\label{tab:accuracy-weighted}" in (out / "tables/accuracy.tex").read_text()
    assert json.loads((out / "law/fit.json").read_text())["options"]["difficulty_weights"] == {
        "leveled": {"easy": 1.0, "hard": 3.0}}
    # without weights: one table, no column (the default study's outputs are unchanged)
    out2 = tmp_path / "out2"
    assert analysis.main(["--scored", *scored, "--outdir", str(out2), "--n-boot", "5"]) == 0
    assert "weighted_accuracy" not in pd.read_csv(out2 / "tables/accuracy.csv").columns
    assert re.sub(r" +", " ", (out2 / "tables/accuracy.md").read_text()).count("| model |") == 1
    assert "difficulty_weights" not in json.loads((out2 / "law/fit.json").read_text())["options"]


def test_analyze_without_enough_points_still_writes_tables(tmp_path: Path) -> None:
    items = simulate_scored_items(k_max=1, n_items=30, rng_seed=1)
    out = tmp_path / "out"
    assert analysis.main(["--scored", *write_scored(items, tmp_path / "s"), "--outdir", str(out), "--n-boot", "5"]) == 0
    for rel in EXPECTED:
        assert (out / rel).is_file(), rel
    md = (out / "tables/law.md").read_text()
    assert "law not fitted" in md and "at least 3 points" in md


def test_analyze_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"model": "m"}) + "\n", encoding="utf-8")
    assert analysis.main(["--scored", str(bad), "--outdir", str(tmp_path / "o")]) == 2
    assert "bad.jsonl: missing required column" in capsys.readouterr().err
    good = write_scored(simulate_scored_items(k_max=1, n_items=5, rng_seed=1), tmp_path / "s")
    assert analysis.main(["--scored", *good, "--outdir", str(tmp_path / "o"), "--difficulty-weights",
                          json.dumps({"sim-bench": {"low": 1}})]) == 2
    assert "benchmark 'sim-bench' has difficulty weights but" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        analysis.main(["--scored", *good, "--outdir", str(tmp_path / "o"), "--difficulty-weights", '{"b": {"low": 0}}'])
    assert "--difficulty-weights: expected" in capsys.readouterr().err


def test_fit_law_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for model, b in (("m1", 0.2), ("m2", 0.4)):
        for k in range(0, 7):
            acc = 0.3 * (k + 1) ** b - (0.05 if k == 0 else 0.0)
            rows.append({"model": model, "k": k, "acc": acc, "lo": acc - 0.02, "hi": acc + 0.02})
    table = tmp_path / "points.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    plot = tmp_path / "law.png"
    out = tmp_path / "fit.csv"
    rc = fitlaw.main(
        [
            str(table),
            "--x-column", "k",
            "--y-column", "acc",
            "--group-by", "model",
            "--plot", str(plot),
            "--ci-column-low", "lo",
            "--ci-column-high", "hi",
            "--out", str(out),
        ]
    )
    assert rc == 0
    printed = re.sub(r" +", " ", capsys.readouterr().out)
    assert "| model |" in printed and "m2" in printed
    assert plot.read_bytes().startswith(PNG_MAGIC) and plot.with_suffix(".pdf").is_file()
    result = pd.read_csv(out).set_index("model")
    assert result.loc["m1", "b"] == pytest.approx(0.2, rel=1e-3)
    assert result.loc["m2", "b"] == pytest.approx(0.4, rel=1e-3)
    assert result.loc["m1", "gap"] == pytest.approx(0.05, abs=1e-4)
    assert result.loc["m1", "leap_abs"] == pytest.approx(0.3 * 2**0.2 - 0.25)


def test_fit_law_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "t.csv"
    pd.DataFrame({"k": [0, 1, 2], "acc": [0.2, 0.3, 0.35]}).to_csv(table, index=False)
    assert fitlaw.main([str(table), "--y-column", "missing"]) == 2
    assert "t.csv: missing column(s) missing" in capsys.readouterr().err
    assert fitlaw.main([str(table), "--y-column", "acc"]) == 0
    assert "at least 3 points" in capsys.readouterr().out
