"""Every figure function writes a non-empty PNG and PDF, including on edge-case inputs, and draws what it
claims: the data series, the fitted law, the gap, the heatmap cells (read back from the figures' own objects)."""

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


# --- what the figures show, read back from the figures' own objects ------------------------------


@pytest.fixture
def kept_figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures the plot functions draw, kept open after they are saved (``save`` closes them)."""
    import matplotlib.pyplot as plt

    from parallel_scaling.analysis import figure_style

    kept: list = []
    real_close = plt.close

    def keep(fig=None):  # noqa: ANN001 - pyplot's own signature
        if fig is not None and not isinstance(fig, str):
            kept.append(fig)
        else:
            real_close(fig)

    monkeypatch.setattr(figure_style.plt, "close", keep)
    yield kept
    for fig in kept:
        real_close(fig)


def _lines(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """x and y of each labelled series: plain lines, and the data line of each errorbar container."""
    from matplotlib.container import ErrorbarContainer

    drawn = [(ln.get_label(), ln) for ln in ax.lines]
    drawn += [(c.get_label(), c.lines[0]) for c in ax.containers if isinstance(c, ErrorbarContainer)]
    return {label: (np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
            for label, ln in drawn if not label.startswith("_")}


def test_the_scaling_figure_draws_every_point_the_fitted_law_and_the_gap(tmp_path: Path, kept_figures: list) -> None:
    series = planted_series("a", b=0.3)
    plot_scaling([series], tmp_path / "law", inset=True)
    (fig,) = kept_figures
    ax = fig.axes[0]
    lines = _lines(ax)
    # the data points, at their x and y (an errorbar container's data line carries the label)
    x, y = lines["a"]
    np.testing.assert_allclose(x, series.x)
    np.testing.assert_allclose(y, series.y)
    # the fitted law: a curve over the points' range whose every y is the fit's prediction
    (fit_label,) = [label for label in lines if label.startswith("fit: y = ")]
    gx, gy = lines[fit_label]
    assert gx.min() <= series.x.min() and gx.max() == pytest.approx(series.x.max()) and gx.size >= 50
    np.testing.assert_allclose(gy, series.fit.predict(gx), rtol=1e-12)
    assert f"x^{series.fit.b:.3g}" in fit_label
    # the English-only point, and the gap to the law's prediction there, labelled with its value
    mx, my = lines["English only (k=0)"]
    assert (mx.tolist(), my.tolist()) == ([series.mono_x], [series.mono_y])
    gap = float(series.fit.predict(series.mono_x)) - series.mono_y
    assert f"gap = {gap:+.3f}" in [t.get_text() for t in ax.texts]
    # the log-log inset holds the same points
    inset = [a for a in ax.child_axes]
    assert len(inset) == 1 and inset[0].get_xscale() == "log"
    np.testing.assert_allclose(inset[0].lines[0].get_ydata(), series.y)


def test_the_scaling_figure_without_a_fit_draws_no_law(tmp_path: Path, kept_figures: list) -> None:
    unfitted = ScalingSeries("no fit", np.array([1.0, 2.0]), np.array([0.3, 0.35]))
    plot_scaling([unfitted], tmp_path / "nofit")
    lines = _lines(kept_figures[0].axes[0])
    assert not [label for label in lines if label.startswith("fit:")]
    np.testing.assert_allclose(lines["no fit"][1], [0.3, 0.35])


def test_the_heatmap_shows_each_languages_accuracy_per_mixture(tmp_path: Path, kept_figures: list) -> None:
    items = simulate_scored_items(n_items=40, k_max=2, seeds=(0,), rng_seed=3)
    long = accuracy_table(items)
    plot_heatmap(long, tmp_path / "heat")
    fig = kept_figures[0]
    trained = long[long["paradigm"] != "init"]
    panels = sorted(trained.groupby(["model", "paradigm", "benchmark"]).groups)
    assert len(panels) >= 1
    ax = fig.axes[0]
    model, paradigm, benchmark = panels[0]
    sel = long[(long["model"] == model) & (long["benchmark"] == benchmark) & long["paradigm"].isin(["init", paradigm])]
    langs = [t.get_text() for t in ax.get_yticklabels()]
    mixtures = [t.get_text() for t in ax.get_xticklabels()]
    expected = sel.groupby(["lang", "mixture"])["accuracy"].mean().unstack().reindex(index=langs, columns=mixtures)
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(np.ma.filled(image, np.nan), expected.to_numpy(float), equal_nan=True)
    assert set(mixtures) >= {"init", "k0", "k1", "k2"} and langs[0] == "en"


def test_the_mti_figure_plots_the_seed_mean_at_each_k(tmp_path: Path, kept_figures: list) -> None:
    items = simulate_scored_items(n_items=40, k_max=3, seeds=(0, 1), rng_seed=1)
    table = mti_table(accuracy_table(items))
    plot_mti(table, tmp_path / "mti", formulas=["ratio"] if "ratio" in set(table["formula"]) else None)
    fig = kept_figures[0]
    ax = fig.axes[0]
    formula = ax.get_title()
    sub = table[(table["formula"] == formula) & table["mixture"].astype(str).str.match(r"^k\d+$")]
    sub = sub[np.isfinite(sub["mti"].astype(float))]
    (key, group), *_ = list(sub.groupby(["model", "paradigm", "benchmark"], sort=True))
    means = group.groupby("k")["mti"].mean().sort_index()
    x, y = _lines(ax)[" / ".join(key)]
    np.testing.assert_allclose(x, means.index.to_numpy(float))
    np.testing.assert_allclose(y, means.to_numpy(float))


def test_the_training_figure_draws_each_runs_logged_values(tmp_path: Path, kept_figures: list) -> None:
    steps = np.arange(0, 50, 5)
    a = tmp_path / "a.csv"
    pd.DataFrame({"step": steps, "reward": steps / 50}).to_csv(a, index=False)
    b = tmp_path / "b.csv"
    pd.DataFrame({"step": steps, "reward": steps / 60}).to_csv(b, index=False)
    plot_training_curves([a, b], ["k0", "k1"], tmp_path / "training")
    (reward_ax,) = [ax for ax in kept_figures[0].axes if "reward" in ax.get_title()]
    lines = _lines(reward_ax)
    np.testing.assert_allclose(lines["k0"][1], steps / 50)
    np.testing.assert_allclose(lines["k1"][1], steps / 60)
    np.testing.assert_allclose(lines["k1"][0], steps)
