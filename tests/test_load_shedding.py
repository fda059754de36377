"""The load-shedding scenario tells the truth: under a surge FIFO serves nobody, shedding does.

Goodput is the ``client`` ok completions per second (users answered within their 1 s timeout);
p99 is the client's per 1 s bin (of the successes). Counts that depend on the seed are checked
with bounds; what follows from the structure (zero goodput, no shedding without a bound) exactly.
"""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from sim import load_scenario, run
from sim.recorder import RunResult

NAME = "load-shedding"
SHEDDING = ("bounded-lifo", "codel", "adaptive-concurrency")
CAPACITY = 370.0
"""Requests/s ``api`` completes at most: 16 workers / 43.2 ms."""
SURGE = (20.0, 35.0)


@functools.cache
def _run(variant: str) -> RunResult:
    return run(NAME, variant=variant)


def _metric(result: RunResult, entity: str, metric: str) -> pd.Series:
    ts = result.timeseries
    rows = ts[(ts.entity == entity) & (ts.metric == metric)]
    return rows.set_index("t")["value"].sort_index()


def _between(series: pd.Series, start: float, end: float) -> pd.Series:
    return series[(series.index >= start) & (series.index < end)]


def goodput(result: RunResult, start: float, end: float) -> pd.Series:
    """Client ok completions per second, per 1 s bin in [start, end)."""
    return _between(_metric(result, "client", "rate.ok"), start, end)


def p99(result: RunResult, start: float, end: float) -> pd.Series:
    """Client p99 per 1 s bin in [start, end) (bins without a success are left out)."""
    return _between(_metric(result, "client", "latency_p99"), start, end).dropna()


def per_second(result: RunResult, entity: str, metric: str, start: float, end: float) -> float:
    return float(_between(_metric(result, entity, metric), start, end).mean())


def test_the_scenario_states_its_surge_and_timeout():
    scenario = load_scenario(NAME)
    (fault,) = scenario.faults
    assert (fault.kind, fault.at, fault.duration, fault.factor) == ("traffic_surge", 20.0, 15.0, 2)
    assert scenario.workload.timeout == 1.0
    assert not scenario.workload.deadline_propagation
    assert set(scenario.variants) == {"fifo-unbounded", *SHEDDING}
    assert scenario.with_variant("fifo-unbounded").services["api"].admission.queue.capacity is None


@pytest.mark.parametrize("variant", ["fifo-unbounded", *SHEDDING])
def test_every_variant_is_healthy_before_the_surge(variant: str):
    result = _run(variant)
    assert goodput(result, 0.0, SURGE[0]).mean() == pytest.approx(250, rel=0.05)
    assert p99(result, 0.0, SURGE[0]).max() < 0.2
    assert per_second(result, "client", "rate.timeout", 0.0, SURGE[0]) == 0


def test_fifo_under_overload_serves_only_users_who_gave_up():
    """From 4 s into the surge goodput is zero while api works at capacity for nobody."""
    result = _run("fifo-unbounded")
    start, end = SURGE
    assert (goodput(result, start + 5.0, end) == 0).all()
    assert goodput(result, start, end).mean() < 120  # only the first ~3 s are served
    assert per_second(result, "api", "rate.ok", start, end) == pytest.approx(CAPACITY, rel=0.03)
    assert per_second(result, "client", "rate.timeout", start, end) > 300
    assert per_second(result, "client", "rate.shed", start, end) == 0  # unbounded: never sheds
    # the successes that remain wait almost the whole timeout
    assert p99(result, start, end).max() > 0.8


def test_fifo_outlives_the_surge():
    """The backlog (~1,900) drains at 120/s: still zero goodput 10 s after the surge."""
    result = _run("fifo-unbounded")
    _, end = SURGE
    assert _metric(result, "api", "queued")[end] > 1500
    assert (goodput(result, end, end + 10.0) == 0).all()
    assert goodput(result, end + 20.0, 60.0).mean() == pytest.approx(250, rel=0.1)


@pytest.mark.parametrize("variant", SHEDDING)
def test_shedding_keeps_goodput_at_capacity(variant: str):
    """Through the surge ~370/s users are answered each second; the excess is shed at once."""
    result = _run(variant)
    start, end = SURGE
    during = goodput(result, start, end)
    assert during.mean() == pytest.approx(CAPACITY, rel=0.05)
    assert during.min() > 300
    assert during.mean() > 3 * goodput(_run("fifo-unbounded"), start, end).mean()
    assert per_second(result, "client", "rate.shed", start, end) > 80
    assert per_second(result, "client", "rate.timeout", start, end) < 25
    assert p99(result, start, end).max() < 0.6


@pytest.mark.parametrize("variant", SHEDDING)
def test_shedding_recovers_with_the_surge(variant: str):
    """2 s after the surge: every user served, p99 back near normal."""
    result = _run(variant)
    _, end = SURGE
    after = goodput(result, end + 2.0, 60.0)
    assert after.mean() == pytest.approx(250, rel=0.05)
    assert p99(result, end + 2.0, 60.0).max() < 0.25
    assert per_second(result, "client", "rate.timeout", end + 2.0, 60.0) == 0
    assert per_second(result, "client", "rate.shed", end + 2.0, 60.0) == 0


def test_codel_and_the_adaptive_limit_keep_the_wait_shortest():
    """CoDel and AIMD bound the wait itself; LIFO lets the bottom of its stack time out."""
    start, end = SURGE
    for variant in ("codel", "adaptive-concurrency"):
        assert p99(_run(variant), start, end).max() < 0.45
        assert per_second(_run(variant), "client", "rate.timeout", start, end) < 1
    assert per_second(_run("bounded-lifo"), "client", "rate.timeout", start, end) > 1
