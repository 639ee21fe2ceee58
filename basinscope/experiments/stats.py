"""Claims decided by statistics: paired differences over seeds with a 95 % confidence interval, and a verdict.

A paper's claim such as "DSWA generalizes better than SWA" becomes a paired comparison: for every seed s the
difference d_s = metric(method, s) − metric(baseline, s); the claim is judged on the confidence interval of the
mean of d. With a Student t interval (the default) the half-width is t_{0.975, n−1} · sd(d) / √n; with
``method="bootstrap"`` it is the percentile interval of 10,000 resampled means (seeded, so reproducible).

Verdict rule (:func:`verdict`): for a directional claim (``expected="greater"`` or ``"less"``) the claim
*reproduces* when the whole interval lies on the claimed side of zero, is *contradicted* when the whole interval
lies on the other side, and is *inconclusive* when the interval contains zero. For a claim of no effect
(``expected="equal"``, e.g. "averaging changes nothing in Case I") it reproduces when the interval lies inside
±``margin``, is contradicted when the interval lies entirely outside it, and is inconclusive otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from .._checks import check_choice, fail

__all__ = ["Interval", "paired_difference", "spread_difference", "t_half_width", "verdict"]

VERDICTS = ("reproduces", "contradicts", "inconclusive")


@dataclasses.dataclass(frozen=True)
class Interval:
    """Mean of the paired differences with its confidence interval ``[low, high]`` (``n`` pairs)."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95
    method: str = "t"

    def format(self, scale: float = 1.0, digits: int = 2) -> str:
        """``"+1.23 [0.45, 2.01]"`` (scaled, e.g. by 100 for percentage points); magnitudes of 10⁶ and more (a run
        that blew up) in scientific notation with ``digits + 1`` significant digits.

        Example:
            >>> Interval(8.07e15, -1.43e16, 3.05e16, 5).format()
            '+8.07e+15 [-1.43e+16, +3.05e+16]'
        """
        m, lo, hi = (v * scale for v in (self.mean, self.low, self.high))
        spec = f"+.{digits + 1}g" if max(abs(m), abs(lo), abs(hi)) >= 1e6 else f"+.{digits}f"
        return f"{m:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def _paired(
    a: Sequence[float], b: Sequence[float], level: float, *, least: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as float64 arrays, checked: ``level`` in (0, 1), one finite value per seed on each side
    and at least ``least`` of them (``what`` names them in the error)."""
    if not (isinstance(level, float) and 0.0 < level < 1.0):
        fail("level", "a float in (0, 1)", level)
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_.ndim != 1 or a_.shape != b_.shape:
        fail("b", f"one value per seed, as many as a ({a_.size})", f"{b_.size} values")
    if a_.size < least:
        fail("a", f"at least {least} {what}", f"{a_.size}")
    if not (np.isfinite(a_).all() and np.isfinite(b_).all()):
        fail("a", "finite values (drop diverged seeds from both sides first)", "a non-finite value", raw=True)
    return a_, b_


def t_half_width(values: np.ndarray, level: float = 0.95) -> float:
    """Half-width t_{(1+level)/2, n−1} · sd / √n of the Student t interval of the mean of ``values`` (n ≥ 2; sd
    with n − 1)."""
    from scipy import stats

    n = values.size
    return float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)


def paired_difference(
    a: Sequence[float], b: Sequence[float], *, level: float = 0.95, method: str = "t", seed: int = 0
) -> Interval:
    """Mean of ``a[i] − b[i]`` over seeds and its ``level`` confidence interval (paired t, or bootstrap).

    Args:
        a, b: one value per seed each, in the same seed order.
        level: confidence level in (0, 1).
        method: ``"t"`` (Student t on the differences) or ``"bootstrap"`` (percentile, 10,000 resamples).
        seed: the bootstrap's random seed.

    Example:
        >>> iv = paired_difference([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])
        >>> round(iv.mean, 4), iv.n
        (1.3333, 3)
    """
    check_choice("method", method, ("t", "bootstrap"))
    a_, b_ = _paired(a, b, level, least=2, what="paired values (seeds)")
    d = a_ - b_
    n, mean = d.size, float(d.mean())
    if method == "t":
        half = t_half_width(d, level)
        return Interval(mean, mean - half, mean + half, n, level, "t")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(10_000, n))].mean(axis=1)
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(mean, float(low), float(high), n, level, "bootstrap")


def spread_difference(
    a: Sequence[float], b: Sequence[float], *, level: float = 0.95, seed: int = 0, resamples: int = 10_000
) -> Interval:
    """sd(a) − sd(b) over seeds (sample standard deviations) and its paired percentile bootstrap interval.

    A claim about spread ("averaging reduces the variance of the final test accuracy") compares two standard
    deviations over the same seeds; the seeds are resampled together (``resamples`` resamples of the seed
    indices, drawn from ``numpy.random.default_rng(seed)``), so the interval keeps the pairing. With few seeds the
    interval is wide: it says how little 5 seeds tell about a spread.

    Example:
        >>> iv = spread_difference([1.0, 2.0, 3.0, 4.0], [2.0, 2.1, 2.2, 2.3])
        >>> round(iv.mean, 4), iv.method
        (1.1619, 'bootstrap')
    """
    a_, b_ = _paired(a, b, level, least=3, what="paired values (seeds) for a spread")
    n = a_.size
    mean = float(a_.std(ddof=1) - b_.std(ddof=1))
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    diffs = a_[idx].std(axis=1, ddof=1) - b_[idx].std(axis=1, ddof=1)
    low, high = np.quantile(diffs, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(mean, float(low), float(high), n, level, "bootstrap")


def verdict(interval: Interval, expected: str, *, margin: float = 0.0) -> str:
    """``"reproduces"``, ``"contradicts"`` or ``"inconclusive"`` for a claim about ``a − b`` (see module doc).

    Args:
        interval: from :func:`paired_difference` (a − b).
        expected: the paper's claim about a − b: ``"greater"`` (> 0), ``"less"`` (< 0) or ``"equal"`` (within
            ±margin).
        margin: the band counted as "no difference" for ``expected="equal"`` (≥ 0).

    Example:
        >>> verdict(Interval(1.0, 0.2, 1.8, 5), "greater")
        'reproduces'
    """
    check_choice("expected", expected, ("greater", "less", "equal"))
    if not (isinstance(margin, (int, float)) and margin >= 0 and math.isfinite(margin)):
        fail("margin", "a finite number ≥ 0", margin)
    lo, hi = interval.low, interval.high
    if expected == "greater":
        return "reproduces" if lo > 0 else "contradicts" if hi < 0 else "inconclusive"
    if expected == "less":
        return "reproduces" if hi < 0 else "contradicts" if lo > 0 else "inconclusive"
    if -margin <= lo and hi <= margin:
        return "reproduces"
    return "contradicts" if (lo > margin or hi < -margin) else "inconclusive"
