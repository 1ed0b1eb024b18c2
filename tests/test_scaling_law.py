"""Parallel Scaling Law fitting, leap, gap and bootstrap on planted data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from parallel_scaling.analysis.bootstrap import bootstrap, law_summary
from parallel_scaling.analysis.law import LawFitError, first_parallel_leap, fit_power_law, monolingual_gap, n_train_langs
from parallel_scaling.analysis.series import build_series
from simulate import simulate_scored_items


@pytest.mark.parametrize("b", [0.1, 0.25, 0.5, 0.8])
def test_recovers_planted_exponent_within_5_percent(b: float) -> None:
    rng = np.random.default_rng(42)
    x = np.arange(2, 10, dtype=float)
    y = 0.3 * x**b + rng.normal(0, 0.001, x.size)
    fit = fit_power_law(x, y)
    assert abs(fit.b - b) / b < 0.05
    assert abs(fit.a - 0.3) / 0.3 < 0.05
    assert fit.c == 0.0
    assert fit.r2 > 0.95
    assert fit.n == x.size


def test_recovers_planted_exponent_with_offset() -> None:
    rng = np.random.default_rng(1)
    x = np.arange(1, 11, dtype=float)
    y = 0.2 * x**0.5 + 0.1 + rng.normal(0, 0.0005, x.size)
    fit = fit_power_law(x, y, offset=True)
    assert abs(fit.b - 0.5) / 0.5 < 0.05
    assert fit.c == pytest.approx(0.1, abs=0.02)
    assert fit.predict(4.0) == pytest.approx(0.2 * 2 + 0.1, abs=0.005)


def test_offset_handles_saturating_law() -> None:
    x = np.arange(1, 9, dtype=float)
    y = 0.8 - 0.5 * x**-0.7
    fit = fit_power_law(x, y, offset=True)
    assert fit.b == pytest.approx(-0.7, rel=0.01)
    assert fit.c == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize("shift", [-0.04, 0.03])
def test_gap_sign_and_size(shift: float) -> None:
    a, b = 0.3, 0.25
    ks = np.arange(1, 8)
    x = np.asarray(n_train_langs(ks), dtype=float)
    rng = np.random.default_rng(7)
    fit = fit_power_law(x, a * x**b + rng.normal(0, 0.001, x.size))
    x0 = n_train_langs(0)
    y0 = a * x0**b + shift
    gap = monolingual_gap(fit, x0, y0)
    # gap = prediction - observed, so a point planted below the law (shift < 0) gives gap > 0.
    assert math.copysign(1, gap) == -math.copysign(1, shift)
    assert gap == pytest.approx(-shift, abs=0.005)


def test_gap_when_english_does_not_count() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    fit = fit_power_law(x, 0.3 * x**0.3)
    assert n_train_langs(0, english_counts=False) == 0
    assert monolingual_gap(fit, 0.0, 0.2) == pytest.approx(-0.2)
    falling = fit_power_law(x, 0.3 * x**-0.3)
    with pytest.raises(LawFitError, match="diverges"):
        monolingual_gap(falling, 0.0, 0.2)


def test_n_train_langs_and_leap() -> None:
    assert n_train_langs(3) == 4
    assert n_train_langs(3, english_counts=False) == 3
    assert list(n_train_langs(np.array([0, 1, 2]))) == [1, 2, 3]
    with pytest.raises(ValueError):
        n_train_langs(-1)
    leap = first_parallel_leap(0.2, 0.3)
    assert leap["absolute"] == pytest.approx(0.1)
    assert leap["relative"] == pytest.approx(0.5)
    assert math.isnan(first_parallel_leap(0.0, 0.3)["relative"])


@pytest.mark.parametrize(
    ("x", "y", "offset", "message"),
    [
        ([1, 2], [0.1, 0.2], False, "at least 3 points"),
        ([1, 2, 3], [0.1, 0.2, 0.3], True, "at least 4 points"),
        ([1, 2, 3], [0.0, 0.0, 0.0], False, "all y values are zero"),
        ([1, 2, 3], [0.4, 0.4, 0.4], False, "constant"),
        ([1, 2, 3], [0.1, float("nan"), 0.3], False, "NaN"),
        ([0, 1, 2], [0.1, 0.2, 0.3], False, "x must be positive"),
        ([1, 2, 3], [0.1, 0.0, 0.3], False, "y must be positive"),
        ([2, 2, 2], [0.1, 0.2, 0.3], False, "distinct x"),
        ([1, 2, 3], [0.1, 0.2], False, "differ in length"),
    ],
)
def test_degenerate_inputs_raise_clear_error(x, y, offset, message) -> None:
    with pytest.raises(LawFitError, match=message):
        fit_power_law(x, y, offset=offset)


def test_bootstrap_interval_contains_planted_exponent() -> None:
    items = simulate_scored_items(a=0.3, b=0.25, k_max=6, n_items=300, n_heldout=4, mono_shift=-0.05, rng_seed=3)
    table = law_summary(items, n_boot=200, seed=0)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["b_low"] <= 0.25 <= row["b_high"]
    assert row["gap_low"] <= 0.05 <= row["gap_high"]
    assert row["gap"] > 0
    assert row["leap_abs_low"] <= row["leap_abs"] <= row["leap_abs_high"]
    assert row["n_boot"] == 200 and row["n_boot_failed"] == 0
    assert row["n_points"] == 6 and row["n_seeds"] == 1
    assert row["k_values"] == "0,1,2,3,4,5,6"
    assert row["note"] == ""


def test_bootstrap_is_reproducible_and_resamples_seeds() -> None:
    items = simulate_scored_items(n_items=60, seeds=(0, 1, 2), k_max=4, rng_seed=5)
    (series,) = build_series(items)
    assert series.n_seeds == {k: 3 for k in range(5)}
    first = bootstrap(series, n_boot=40, seed=11)
    second = bootstrap(series, n_boot=40, seed=11)
    other = bootstrap(series, n_boot=40, seed=12)
    assert first.intervals == second.intervals
    assert first.intervals != other.intervals
    assert set(first.point_intervals) == set(range(5))
    assert first.samples["y"].shape == (40, 5)


def test_law_summary_y_choices_and_exclusions() -> None:
    items = simulate_scored_items(n_items=150, k_max=5, rng_seed=9)
    mono = items[items["mixture"] == "k0"].assign(mixture="mono-p1", k=pd.NA, train_langs=[("p1",)] * int((items["mixture"] == "k0").sum()))
    with_mono = pd.concat([items, mono], ignore_index=True)
    base = law_summary(items, n_boot=0)
    assert law_summary(with_mono, n_boot=0)["b"].iloc[0] == pytest.approx(base["b"].iloc[0])
    for y in ("heldout", "unseen", "all", "mti"):
        row = law_summary(items, y=y, n_boot=0).iloc[0]
        assert math.isfinite(row["b"]), (y, row["note"])
        assert row["y"] == y
    no_init = items[items["paradigm"] != "init"]
    assert "needs initial-model" in law_summary(no_init, y="mti", n_boot=0)["note"].iloc[0]


def test_law_summary_explains_too_few_points() -> None:
    items = simulate_scored_items(n_items=50, k_max=2, rng_seed=2)
    row = law_summary(items, n_boot=20).iloc[0]
    assert math.isnan(row["b"])
    assert "at least 3 points" in row["note"]
    assert math.isfinite(row["leap_abs"])


def test_law_summary_without_heldout_language() -> None:
    items = simulate_scored_items(n_items=50, k_max=4, n_heldout=0, rng_seed=2)
    row = law_summary(items, n_boot=10).iloc[0]
    assert "no held-out language" in row["note"]
    assert math.isfinite(law_summary(items, y="unseen", n_boot=0)["b"].iloc[0])
