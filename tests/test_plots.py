"""Every figure function writes a non-empty PNG and PDF, including on edge-case inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parallel_scaling.analysis.accuracy import accuracy_table
from parallel_scaling.analysis.law import fit_power_law
from parallel_scaling.analysis.mti import mti_table
from parallel_scaling.analysis.plot_training import TrainingLogError, metric_panels, plot_training_curves
from parallel_scaling.analysis.plots import ScalingSeries, plot_heatmap, plot_mti, plot_scaling
from simulate import simulate_scored_items

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_figures(paths: list[Path]) -> None:
    suffixes = sorted(p.suffix for p in paths)
    assert suffixes == [".pdf", ".png"]
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000
        assert data.startswith(PNG_MAGIC if path.suffix == ".png" else b"%PDF")


def planted_series(label: str = "s", b: float = 0.25, english_counts: bool = True) -> ScalingSeries:
    ks = np.arange(1, 7)
    x = (ks + 1 if english_counts else ks).astype(float)
    y = 0.3 * x**b
    fit = fit_power_law(x, y + np.linspace(-0.002, 0.002, x.size))
    x0 = 1.0 if english_counts else 0.0
    return ScalingSeries(label, x, y, y - 0.02, y + 0.02, fit, mono_x=x0, mono_y=0.25, mono_low=0.22, mono_high=0.28)


@pytest.mark.parametrize("loglog", [False, True])
def test_plot_scaling_writes_png_and_pdf(tmp_path: Path, loglog: bool) -> None:
    series = [planted_series("a"), planted_series("b", b=0.4)]
    assert_figures(plot_scaling(series, tmp_path / "scaling.png", loglog=loglog, title="law"))
    assert (tmp_path / "scaling.pdf").exists()


def test_plot_scaling_mono_point_at_zero_and_without_fit(tmp_path: Path) -> None:
    unfitted = ScalingSeries("no fit", np.array([1.0, 2.0]), np.array([0.3, 0.35]))
    series = [planted_series(english_counts=False), unfitted]
    assert_figures(plot_scaling(series, tmp_path / "zero"))
    assert_figures(plot_scaling(series, tmp_path / "zero_log", loglog=True))
    assert_figures(plot_scaling([], tmp_path / "empty"))


def test_plot_heatmap_and_mti(tmp_path: Path) -> None:
    items = simulate_scored_items(n_items=40, k_max=3, seeds=(0, 1), rng_seed=1)
    k0 = items["mixture"] == "k0"
    mono = items[k0].assign(mixture="mono-p1", k=pd.NA, train_langs=[("p1",)] * int(k0.sum()))
    long = accuracy_table(pd.concat([items, mono], ignore_index=True))
    assert_figures(plot_heatmap(long, tmp_path / "heatmap"))
    assert_figures(plot_mti(mti_table(long), tmp_path / "mti"))
    assert_figures(plot_mti(mti_table(long[long["paradigm"] != "init"]), tmp_path / "mti_empty"))


def test_plot_training_curves(tmp_path: Path) -> None:
    steps = np.arange(0, 50, 5)
    a = tmp_path / "a.csv"
    pd.DataFrame({"step": steps, "reward": steps / 50, "reward/format": 1.0, "kl": steps / 500}).to_csv(a, index=False)
    b = tmp_path / "b.csv"
    pd.DataFrame({"step": steps, "reward": steps / 60, "completion_length": 200 - steps, "accuracy": 0.5}).to_csv(
        b, index=False
    )
    assert_figures(plot_training_curves([a, b], ["k0", "k1"], tmp_path / "training"))
    with pytest.raises(TrainingLogError, match="labels"):
        plot_training_curves([a, b], ["only one"], tmp_path / "x")
    nostep = tmp_path / "nostep.csv"
    pd.DataFrame({"reward": [1.0]}).to_csv(nostep, index=False)
    with pytest.raises(TrainingLogError, match="nostep.csv: training log has no 'step' column"):
        plot_training_curves([nostep], None, tmp_path / "y")


def test_training_metrics_holding_the_same_series_share_one_panel(tmp_path: Path) -> None:
    # a GRPO log whose only reward is correctness logs one series under three names; an SFT log has accuracy only
    steps = np.arange(0, 50, 5)
    grpo = pd.DataFrame({"step": steps, "reward": steps / 50, "reward/correctness": steps / 50, "kl": steps / 500,
                         "accuracy": steps / 50})
    sft = pd.DataFrame({"step": steps, "accuracy": 0.5 + steps / 200})
    assert metric_panels([grpo, sft]) == [["reward", "reward/correctness", "accuracy"], ["kl"]]
    # grouped by values, not names: a column that differs in any log keeps its own panel
    assert metric_panels([grpo.assign(accuracy=steps / 40), sft]) == [["reward", "reward/correctness"], ["kl"], ["accuracy"]]
    # two columns never logged together are not the same series
    assert metric_panels([grpo.drop(columns=["reward/correctness", "accuracy"]), sft]) == [["reward"], ["kl"], ["accuracy"]]
    grpo.to_csv(tmp_path / "grpo.csv", index=False)
    sft.to_csv(tmp_path / "sft.csv", index=False)
    assert_figures(plot_training_curves([tmp_path / "grpo.csv", tmp_path / "sft.csv"], ["grpo", "sft"], tmp_path / "t"))
