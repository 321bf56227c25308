"""A variant's results over its seeds, and its difference to the baseline variant.

Per variant: mean, sample standard deviation and a Student-t confidence interval of the mean.
Against the baseline: the difference of the means with Welch's t-test (unequal variances, the
Welch-Satterthwaite degrees of freedom) and its interval; a difference is beyond the seeds'
noise when that interval excludes 0 (equivalently, Welch's p below 1 - confidence). With 3 seeds
the intervals are wide: that is what the seeds say, and the reading says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    """A quantity over a variant's seeds."""

    n: int
    mean: float | None
    std: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Difference:
    """A variant's mean minus the baseline's, its interval and Welch's two-sided p-value."""

    delta: float | None
    low: float | None
    high: float | None
    p_value: float | None
    #: the p-value adjusted for the study's other comparisons (Holm), when known
    p_holm: float | None = None

    @property
    def beyond_noise(self) -> bool | None:
        """The interval excludes 0 (None when there are too few seeds to say)."""
        if self.low is None or self.high is None:
            return None
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float | bool | None]:
        return {
            "delta": self.delta,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "beyond_noise": self.beyond_noise,
        }


def _finite(values: Sequence[float | None]) -> np.ndarray:
    found = [float(v) for v in values if v is not None and math.isfinite(v)]
    return np.asarray(found, dtype=np.float64)


def summarize(values: Sequence[float | None], confidence: float) -> Summary:
    """Mean, std (n - 1) and the t interval of the mean of the finite ``values``."""
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, None, None, None)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def welch(
    variant: Sequence[float | None], baseline: Sequence[float | None], confidence: float
) -> Difference:
    """``mean(variant) - mean(baseline)`` with Welch's interval and two-sided p-value."""
    a, b = _finite(variant), _finite(baseline)
    if len(a) == 0 or len(b) == 0:
        return Difference(None, None, None, None)
    delta = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Difference(delta, None, None, None)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:  # identical results on every seed: no noise to compare with
        same = delta == 0
        return Difference(delta, delta, delta, 1.0 if same else 0.0)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    p_value = float(2 * stats.t.sf(abs(delta) / se, df))
    return Difference(delta, delta - half, delta + half, p_value)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of ``p_values`` (None kept as None): each comparison's
    p-value as it stands among all of them, so that "beyond noise" holds for the family."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (len(known) - rank) * p))
        adjusted[i] = running
    return adjusted
