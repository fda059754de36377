"""Confidence intervals for replicated simulation output: Student's t, paired and unpaired.

A replication is one run with its own seed. Every variant of a comparison runs the same seeds
(common random numbers, ``../shared/DESIGN.md`` §2.1 and §2.7), so the natural estimate of a
difference is *paired*: the mean of the per-seed differences, with a t interval on ``n - 1``
degrees of freedom. Pairing removes the seed-to-seed noise the variants share, which is why its
interval is usually much narrower than the unpaired (Welch) interval on the same numbers (Law,
*Simulation Modeling and Analysis*, 5th ed., §10.2: the paired-t and Welch confidence intervals).

The t quantile is computed here rather than imported: Student's t CDF through the regularized
incomplete beta function (continued fraction, modified Lentz; Press et al., *Numerical Recipes*,
3rd ed., §6.4), inverted by bisection to within a few ulps. It accepts fractional degrees of
freedom, which Welch's interval needs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
"""Two-sided confidence level of every interval (DESIGN §2.7: "95% confidence intervals")."""

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 500


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS + 1):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` for ``0 <= x <= 1``."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be within [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function with ``df`` (> 0, may be fractional) degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p``-quantile of Student's t with ``df`` degrees of freedom (``0 < p < 1``).

    Bisection on :func:`t_cdf` over a bracket found by doubling; it stops when the bracket no
    longer shrinks in floating point. Within 1e-13 of the exact quantile up to 10^4 degrees of
    freedom, 1e-9 up to 10^7 (the log-gamma difference in the incomplete beta loses digits
    as its arguments grow).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be within (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    high = 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    low = 0.0
    while True:
        middle = 0.5 * (low + high)
        if middle in (low, high):
            return middle
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval.

    Attributes:
        n: the number of observations (pairs, for a paired difference).
        mean: the estimate.
        low: lower end of the interval (NaN when ``n < 2`` or the data have no spread estimate).
        high: upper end.
        df: the t distribution's degrees of freedom (NaN when there is none).
    """

    n: int
    mean: float
    low: float
    high: float
    df: float

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2.0

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0 (a difference significant at its level)."""
        return self.low > 0.0 or self.high < 0.0


def number_or_none(value: object) -> float | None:
    """``value`` as a float, or None when it is missing (None) or undefined (NaN)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _clean(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``values`` (NaN ignored) with a t interval on ``n - 1`` degrees of freedom.

    Mean and variance are computed exactly (:mod:`statistics`), so identical values give the
    value itself and an interval of zero width, not rounding noise.
    """
    data = _clean(values)
    n = len(data)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.mean(data)
    if n < 2:
        return Interval(n, mean, math.nan, math.nan, math.nan)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(statistics.variance(data) / n)
    return Interval(n, mean, mean - half, mean + half, float(n - 1))


def paired_difference(
    treatment: Sequence[float], reference: Sequence[float], confidence: float = CONFIDENCE
) -> Interval:
    """``treatment - reference`` paired by position (by seed): the paired-t interval.

    Pairs where either side is missing (NaN) are left out.
    """
    if len(treatment) != len(reference):
        raise ValueError(f"paired samples differ in size: {len(treatment)} vs {len(reference)}")
    differences = [
        float(a) - float(b)
        for a, b in zip(treatment, reference, strict=True)
        if a is not None and b is not None and not (math.isnan(float(a)) or math.isnan(float(b)))
    ]
    return mean_interval(differences, confidence)


def unpaired_difference(
    treatment: Sequence[float], reference: Sequence[float], confidence: float = CONFIDENCE
) -> Interval:
    """``mean(treatment) - mean(reference)`` ignoring the pairing: Welch's t interval.

    Degrees of freedom by the Welch-Satterthwaite formula (fractional).
    """
    a, b = _clean(treatment), _clean(reference)
    if not a or not b:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.mean(a) - statistics.mean(b)
    n = min(len(a), len(b))
    if len(a) < 2 or len(b) < 2:
        return Interval(n, mean, math.nan, math.nan, math.nan)
    va = statistics.variance(a) / len(a)  # exact: identical values have no spread at all
    vb = statistics.variance(b) / len(b)
    spread = va + vb
    if spread == 0.0:
        return Interval(n, mean, mean, mean, math.nan)
    df = spread**2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(spread)
    return Interval(n, mean, mean - half, mean + half, df)
