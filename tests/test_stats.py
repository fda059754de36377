"""Student's t and the confidence intervals of ``sim/stats.py`` against closed forms."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from sim.stats import (
    incomplete_beta,
    mean_interval,
    paired_difference,
    t_cdf,
    t_quantile,
    unpaired_difference,
)


def _t_cdf_closed_form(t: float, nu: int) -> float:
    """Student's t CDF for integer degrees of freedom (Abramowitz & Stegun 26.7.3-26.7.4)."""
    theta = math.atan(t / math.sqrt(nu))
    c2 = math.cos(theta) ** 2
    if nu % 2:
        series, term = (1.0, 1.0) if nu > 1 else (0.0, 0.0)
        for k in range(1, (nu - 3) // 2 + 1):
            term *= 2 * k / (2 * k + 1) * c2
            series += term
        return 0.5 + (theta + math.sin(theta) * math.cos(theta) * series) / math.pi
    series, term = 1.0, 1.0
    for k in range(1, (nu - 2) // 2 + 1):
        term *= (2 * k - 1) / (2 * k) * c2
        series += term
    return 0.5 + 0.5 * math.sin(theta) * series


@pytest.mark.parametrize("nu", [1, 2, 3, 4, 5, 9, 10, 29, 30])
@pytest.mark.parametrize("t", [-3.0, -0.7, 0.0, 0.3, 1.0, 2.262157162798, 12.7])
def test_t_cdf_matches_the_closed_form(nu: int, t: float):
    """The incomplete-beta CDF agrees with the finite series to rounding."""
    assert t_cdf(t, nu) == pytest.approx(_t_cdf_closed_form(t, nu), abs=5e-15)


def test_t_quantiles_of_one_and_two_degrees_of_freedom_are_exact():
    """One degree of freedom is Cauchy (tan); two: t = (2p - 1) sqrt(2 / (4 p (1 - p))."""
    for p in (0.6, 0.9, 0.975, 0.995):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-13)
        exact = (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))
        assert t_quantile(p, 2) == pytest.approx(exact, rel=1e-13)


@pytest.mark.parametrize("nu", [3, 4, 7.5, 30, 1e3])
@pytest.mark.parametrize("p", [0.025, 0.5, 0.8, 0.975, 0.9995])
def test_t_quantile_inverts_the_cdf(nu: float, p: float):
    """t_cdf(t_quantile(p)) = p, fractional degrees of freedom included (Welch)."""
    assert t_cdf(t_quantile(p, nu), nu) == pytest.approx(p, abs=1e-14)


@pytest.mark.parametrize("nu", [1e4, 1e5])
def test_t_quantile_of_many_degrees_of_freedom(nu: float):
    """With many degrees of freedom the quantile follows its expansion around the normal one.

    Cornish-Fisher around the normal quantile z (its next term is below 1e-11 here):
    t = z + (z^3 + z) / 4nu + (5z^5 + 16z^3 + 3z) / 96nu^2.
    """
    z = NormalDist().inv_cdf(0.975)
    expansion = z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
    assert t_quantile(0.975, nu) == pytest.approx(expansion, abs=1e-10)


def test_t_quantile_is_symmetric_and_checks_its_input():
    """t(1 - p) = -t(p); p outside (0, 1) and df <= 0 are errors."""
    assert t_quantile(0.025, 4) == -t_quantile(0.975, 4)
    assert t_quantile(0.5, 4) == 0.0
    with pytest.raises(ValueError, match="p must be within"):
        t_quantile(1.0, 4)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_cdf(1.0, 0)
    assert incomplete_beta(2.0, 3.0, 0.0) == 0.0
    assert incomplete_beta(2.0, 3.0, 1.0) == 1.0
    # I_x(1, 1) = x; I_x(a, 1) = x^a
    assert incomplete_beta(1.0, 1.0, 0.3) == pytest.approx(0.3, abs=1e-15)
    assert incomplete_beta(2.5, 1.0, 0.4) == pytest.approx(0.4**2.5, abs=1e-15)


def test_mean_interval_of_one_to_five():
    """Mean 3, s^2 = 2.5: half-width t(0.975, 4) x sqrt(2.5 / 5), t(0.975, 4) = 2.7764451..."""
    interval = mean_interval([1, 2, 3, 4, 5, math.nan])
    half = 2.7764451051977987 * math.sqrt(0.5)
    assert (interval.n, interval.mean, interval.df) == (5, 3.0, 4.0)
    assert interval.low == pytest.approx(3 - half, abs=1e-12)
    assert interval.high == pytest.approx(3 + half, abs=1e-12)
    assert interval.significant
    single = mean_interval([7.0])
    assert (single.n, single.mean) == (1, 7.0)
    assert math.isnan(single.low)
    assert math.isnan(single.high)
    assert mean_interval([]).n == 0
    same = mean_interval([0.2113489040, 0.2113489040, 0.2113489040])
    assert (same.low, same.mean, same.high) == (0.211348904, 0.211348904, 0.211348904)
    assert same.significant


def test_paired_interval_is_tighter_than_welch_on_the_same_data():
    """Seed effects shared by both arms cancel in the paired differences, not in Welch's.

    Differences 1.1, 0.9, 1.0, 1.2, 0.8: mean 1, s^2 = 0.025, half-width t(0.975, 4) x
    sqrt(0.005) = 0.196; the arms themselves spread over 10..50, so Welch's interval is ~20
    wide and includes 0.
    """
    reference = [10.0, 20.0, 30.0, 40.0, 50.0]
    treatment = [11.1, 20.9, 31.0, 41.2, 50.8]
    paired = paired_difference(treatment, reference)
    assert paired.mean == pytest.approx(1.0, abs=1e-12)
    assert paired.half_width == pytest.approx(2.7764451051977987 * math.sqrt(0.005), abs=1e-12)
    assert paired.significant
    welch = unpaired_difference(treatment, reference)
    assert welch.mean == pytest.approx(1.0, abs=1e-12)
    assert welch.df == pytest.approx(8.0, rel=1e-3)  # equal spreads: about n_a + n_b - 2
    assert welch.half_width > 50 * paired.half_width
    assert not welch.significant


def test_paired_difference_drops_incomplete_pairs():
    """A pair with a missing side (a failed replication) is left out; sizes must match."""
    interval = paired_difference([1.0, math.nan, 3.0, 4.0], [0.0, 1.0, 1.0, math.nan])
    assert (interval.n, interval.mean) == (2, 1.5)
    with pytest.raises(ValueError, match="differ in size"):
        paired_difference([1.0], [1.0, 2.0])
