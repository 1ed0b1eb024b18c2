"""The Parallel Scaling Law, the First-Parallel Leap and the Monolingual Generalization Gap.

The statistics of one series of points (k, y), whatever y is: :mod:`.series` makes the points,
:mod:`.bootstrap` calls :func:`law_statistics` on them and on every resample, and ``fit-law`` fits
points read from any CSV. All definitions are explicit because the paper (arXiv 2510.02272) does not
publish its formulas:

* x, the number of training languages of mixture ``k<k>`` (English plus the first k parallel
  languages): ``x = k + 1`` when English counts (default), else ``x = k``
  (:func:`n_train_langs`).
* The law ``y = a * x**b`` (or ``y = a * x**b + c`` with ``offset``) is fitted only on the
  multilingual points k >= 1 (:func:`fit_power_law`, ``scipy.optimize.curve_fit`` started from a
  log-log least-squares guess); the English-only point k = 0 is held out.
* First-Parallel Leap: ``absolute = y1 - y0``, ``relative = (y1 - y0) / y0``
  (:func:`first_parallel_leap`).
* Monolingual Generalization Gap: ``gap = fit.predict(x0) - y0`` with ``x0 = n_train_langs(0)``;
  positive when the English-only point sits below the law (:func:`monolingual_gap`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit


class LawFitError(ValueError):
    """The power law cannot be fitted (too few points, non-positive x, zero or constant y, NaN...)."""


@dataclass(frozen=True)
class FitResult:
    """A fitted ``y = a * x**b + c`` (``c = 0`` without offset) and the data it was fitted on.

    ``r2 = 1 - sum((y - yhat)^2) / sum((y - mean(y))^2)`` on the linear (not log) scale, so it
    measures how well the law predicts accuracies, not log accuracies.
    """

    a: float
    b: float
    c: float
    r2: float
    n: int
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    offset: bool = False

    def predict(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """Evaluate the law; raises :class:`LawFitError` at x = 0 when b < 0 (the law diverges)."""
        arr = np.asarray(x, dtype=float)
        if np.any(arr < 0):
            raise LawFitError("the power law is only defined for x >= 0")
        if np.any(arr == 0) and self.b < 0:
            raise LawFitError(f"the law diverges at x = 0 (b = {self.b:.3g} < 0)")
        out = self.a * np.power(arr, self.b) + self.c
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        """JSON-serialisable parameters and data."""
        return {
            "a": self.a,
            "b": self.b,
            "c": self.c,
            "r2": self.r2,
            "n": self.n,
            "offset": self.offset,
            "x": [float(v) for v in self.x],
            "y": [float(v) for v in self.y],
        }


def _power(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.power(x, b)


def _power_offset(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(x, b) + c


def _loglog_guess(x: np.ndarray, y: np.ndarray, c: float) -> tuple[float, float, float] | None:
    """Least squares of log|y - c| on log x; returns (a, b, sse on linear scale) or None."""
    shifted = y - c
    if np.all(shifted > 0):
        sign = 1.0
    elif np.all(shifted < 0):
        sign = -1.0
    else:
        return None
    b, log_a = np.polyfit(np.log(x), np.log(sign * shifted), 1)
    a = sign * math.exp(log_a)
    sse = float(np.sum((a * np.power(x, b) + c - y) ** 2))
    return a, float(b), sse


def fit_power_law(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, offset: bool = False) -> FitResult:
    """Fit ``y = a * x**b`` (``offset=False``) or ``y = a * x**b + c`` by least squares.

    Method: the initial guess is ordinary least squares of log y on log x (for the offset model,
    of log|y - c| over a grid of c below min(y) and above max(y), keeping the best); then
    ``scipy.optimize.curve_fit`` minimises squared error on the linear scale, which weights all
    points equally in accuracy units instead of over-weighting small accuracies as log-log does.

    Degenerate inputs raise :class:`LawFitError` with the reason: x and y of different length,
    NaN/inf, fewer than 3 points (4 with offset: three parameters need a spare point), fewer than
    2 distinct x (3 with offset), x <= 0, all y = 0, constant y, y <= 0 without offset, or an
    optimiser failure / non-finite parameters.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise LawFitError(f"x and y differ in length ({xa.size} vs {ya.size})")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise LawFitError("x or y contains NaN or inf")
    min_n = 4 if offset else 3
    if xa.size < min_n:
        raise LawFitError(
            f"need at least {min_n} points to fit the power law{' with offset' if offset else ''}, got {xa.size}"
        )
    if np.any(xa <= 0):
        raise LawFitError(f"x must be positive for a power law, got min x = {xa.min():g}")
    min_distinct = 3 if offset else 2
    if np.unique(xa).size < min_distinct:
        raise LawFitError(f"need at least {min_distinct} distinct x values, got {np.unique(xa).size}")
    if np.all(ya == 0):
        raise LawFitError("all y values are zero: no power law to fit")
    if np.ptp(ya) <= 1e-12 * max(1.0, float(np.max(np.abs(ya)))):
        raise LawFitError(f"y is constant ({ya[0]:g}): exponent b is undefined")
    if not offset:
        if np.any(ya <= 0):
            raise LawFitError(f"y must be positive for a pure power law (min y = {ya.min():g}); use offset")
        guess = _loglog_guess(xa, ya, 0.0)
        assert guess is not None
        func, p0 = _power, [guess[0], guess[1]]
    else:
        span = float(np.ptp(ya))
        steps = span * np.geomspace(1e-3, 1e2, 41)
        candidates = [float(ya.min()) - s for s in steps] + [float(ya.max()) + s for s in steps]
        guesses = [(c, g) for c in candidates if (g := _loglog_guess(xa, ya, c)) is not None]
        c0, (a0, b0, _) = min(guesses, key=lambda cg: cg[1][2])
        func, p0 = _power_offset, [a0, b0, c0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, _ = curve_fit(func, xa, ya, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise LawFitError(f"least-squares fit did not converge: {exc}") from exc
    if not np.all(np.isfinite(popt)):
        raise LawFitError("fit produced non-finite parameters")
    a, b = float(popt[0]), float(popt[1])
    c = float(popt[2]) if offset else 0.0
    yhat = a * np.power(xa, b) + c
    sst = float(np.sum((ya - ya.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ya - yhat) ** 2)) / sst
    return FitResult(a=a, b=b, c=c, r2=r2, n=int(xa.size), x=xa, y=ya, offset=offset)


def n_train_langs(k: int | np.ndarray | Sequence[int], english_counts: bool = True) -> int | np.ndarray:
    """Number of training languages of mixture ``k<k>``: ``k + 1`` if English counts, else ``k``.

    ``english_counts=False`` places the English-only point at x = 0, where a pure power law with
    b > 0 predicts 0 (so the gap equals -y0) and an offset law predicts c.
    """
    arr = np.asarray(k)
    if np.any(arr < 0):
        raise ValueError(f"k must be >= 0, got {k}")
    out = arr + 1 if english_counts else arr
    return int(out) if out.ndim == 0 else out.astype(int)


def first_parallel_leap(y0: float, y1: float) -> dict[str, float]:
    """First-Parallel Leap from English-only (k=0) to English plus one parallel language (k=1).

    ``absolute = y1 - y0``; ``relative = (y1 - y0) / y0``, NaN when |y0| < 1e-12 (a relative jump
    from zero is undefined; the absolute leap is still reported).
    """
    absolute = float(y1) - float(y0)
    relative = absolute / float(y0) if abs(float(y0)) >= 1e-12 else float("nan")
    return {"absolute": absolute, "relative": relative}


def monolingual_gap(fit: FitResult, x0: float, y0: float) -> float:
    """Monolingual Generalization Gap: ``fit.predict(x0) - y0``.

    Positive when the English-only point lies below the law fitted on the multilingual points.
    At ``x0 = 0`` (English not counted) a pure power law with b > 0 predicts 0, so the gap is
    ``-y0``; with offset it predicts ``c``; with b < 0 it diverges and :class:`LawFitError` is raised.
    """
    return float(fit.predict(x0)) - float(y0)


@dataclass
class PointEstimate:
    """A series' points (k, x, y) and the law's statistics on them (:func:`law_statistics`)."""

    ks: list[int]
    x: np.ndarray
    y: np.ndarray
    fit: FitResult | None
    leap: dict[str, float] | None
    gap: float | None
    x0: float | None
    note: str


def law_statistics(ks: Sequence[int], yk: np.ndarray, english_counts: bool, offset: bool) -> PointEstimate:
    """The law on the multilingual points k >= 1, the leap from k0 to k1 and the gap at k0.

    ``yk[j]`` is y at ``ks[j]``; reasons for anything missing go in ``note``. Called once on the
    full data and once per bootstrap resample.
    """
    ks = list(ks)
    k_arr = np.array(ks)
    x = np.asarray(n_train_langs(k_arr, english_counts), dtype=float)
    notes: list[str] = []
    fit = None
    use = (k_arr >= 1) & np.isfinite(yk)
    if np.any((k_arr >= 1) & ~np.isfinite(yk)):
        bad = ", ".join(f"k{k}" for k in k_arr[(k_arr >= 1) & ~np.isfinite(yk)])
        notes.append(f"y undefined at {bad}")
    try:
        fit = fit_power_law(x[use], yk[use], offset=offset)
    except LawFitError as exc:
        notes.append(f"law not fitted: {exc}")
    has0, has1 = 0 in ks, 1 in ks
    y0 = float(yk[ks.index(0)]) if has0 else float("nan")
    y1 = float(yk[ks.index(1)]) if has1 else float("nan")
    leap = None
    if has0 and has1 and math.isfinite(y0) and math.isfinite(y1):
        leap = first_parallel_leap(y0, y1)
    else:
        notes.append("no leap: needs finite k0 and k1 points")
    gap, x0 = None, None
    if has0:
        x0 = float(n_train_langs(0, english_counts))
        if fit is not None and math.isfinite(y0):
            try:
                gap = monolingual_gap(fit, x0, y0)
            except LawFitError as exc:
                notes.append(f"no gap: {exc}")
    else:
        notes.append("no gap: no k0 (English-only) point")
    return PointEstimate(ks, x, yk, fit, leap, gap, x0, "; ".join(notes))
