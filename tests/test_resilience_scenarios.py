"""The resilience catalogue scenarios tell the truth (retry-storm, slow-dependency-bulkhead).

Each scenario (and each variant) is run once with its own seed, and the claims of its narrative
are checked on the run: availability per SLO window, recovery (or not) after the trigger,
attempts per call, where failures start.

Availability here is computed by a small helper from the ``client`` time series (success =
``ok`` + ``degraded``, over every finished request, per rolling window of the scenario's
``slo.window``); the analysis module of DESIGN §2.7 will replace it. Latency is checked only
as a sufficient condition: if every 1 s bin of a window has its p99 within the target, the
window's p99 is within it too (a quantile of a mixture is at most the largest quantile of its
parts).
"""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from sim import load_scenario, run
from sim.recorder import RunResult

STORM = "retry-storm"
STORM_EDGE = "frontend -> inventory"
STORM_MITIGATIONS = ("retry-budget", "grpc-retry-throttling", "circuit-breaker", "no-retries")
DEADLINES = "deadline-propagation"
DEADLINES_LIFO = "deadline-propagation-lifo"
HOLD = 60.0
"""How long after the trigger ends the storm's variants are judged (s)."""

BULKHEAD = "slow-dependency-bulkhead"
SLOW = "recommendations"
SLOW_WHERE = {SLOW, f"frontend -> {SLOW}"}
"""Where a failure that the slow dependency caused directly starts."""


@functools.cache
def _run(name: str, variant: str | None = None) -> RunResult:
    return run(name, variant=variant)


# --------------------------------------------------------------------------- helpers


def _metric(result: RunResult, entity: str, metric: str) -> pd.Series:
    """One metric of one entity, indexed by bin start."""
    ts = result.timeseries
    rows = ts[(ts.entity == entity) & (ts.metric == metric)]
    return rows.set_index("t")["value"].sort_index()


def _counts(result: RunResult, entity: str) -> tuple[pd.Series, pd.Series]:
    """(successes, finished) per 1 s bin of ``entity`` (the scenarios use 1 s bins)."""
    ts = result.timeseries
    rates = ts[(ts.entity == entity) & ts.metric.str.startswith("rate.")]
    table = rates.pivot(index="t", columns="metric", values="value").sort_index()
    return table["rate.ok"] + table["rate.degraded"], table.sum(axis=1)


def availability(result: RunResult, start: float, end: float, entity: str = "client") -> float:
    """Share of the requests finished in [start, end) that succeeded (ok or degraded)."""
    good, total = _counts(result, entity)
    inside = (total.index >= start) & (total.index < end)
    return float(good[inside].sum() / total[inside].sum())


def rolling_availability(result: RunResult, window: float) -> pd.Series:
    """Client availability per rolling window, indexed by the window's end (1 s steps)."""
    good, total = _counts(result, "client")
    n = round(window)
    ratio = good.rolling(n).sum() / total.rolling(n).sum()
    ratio.index = ratio.index + 1.0
    return ratio.dropna()


def count(result: RunResult, entity: str, metric: str, start: float, end: float) -> float:
    """Events of a per-second metric in [start, end) (rates times the 1 s bins)."""
    series = _metric(result, entity, metric)
    return float(series[(series.index >= start) & (series.index < end)].sum())


def finished(result: RunResult, entity: str, start: float, end: float) -> float:
    """Requests (or calls, or hops) of ``entity`` finished in [start, end), every outcome."""
    _, total = _counts(result, entity)
    return float(total[(total.index >= start) & (total.index < end)].sum())


def worst_p99(result: RunResult, start: float, end: float) -> float:
    """The largest per-bin client p99 in [start, end)."""
    p99 = _metric(result, "client", "latency_p99")
    return float(p99[(p99.index >= start) & (p99.index < end)].max())


def failures(result: RunResult) -> dict[tuple[str, str], int]:
    """Failed (or degraded) requests by (where, cause)."""
    frame = result.failures
    return {
        (where, cause): int(n)
        for (where, cause), n in frame.groupby(["where", "cause"])["count"].sum().items()
    }


def collateral(result: RunResult) -> int:
    """Failed requests whose failure did not start at the slow dependency or its call."""
    frame = result.failures
    frame = frame[(frame.outcome != "degraded") & ~frame["where"].isin(SLOW_WHERE)]
    return int(frame["count"].sum())


# --------------------------------------------------------------------------- retry-storm


def _storm_times() -> tuple[float, float, float]:
    """(trigger start, trigger end, end of the judged window) of ``retry-storm``."""
    (fault,) = load_scenario(STORM).faults
    assert fault.duration is not None
    return fault.at, fault.at + fault.duration, fault.at + fault.duration + HOLD


def test_the_storm_scenario_states_its_slo_and_trigger():
    """The figures below are judged against these: 99% per 30 s window, a 15 s spike at 30 s."""
    scenario = load_scenario(STORM)
    assert (scenario.slo.availability, scenario.slo.window, scenario.slo.latency_p99) == (
        0.99,
        30.0,
        0.5,
    )
    assert _storm_times() == (30.0, 45.0, 105.0)
    assert scenario.duration >= 105.0


@pytest.mark.parametrize("variant", ["baseline", *STORM_MITIGATIONS, DEADLINES])
def test_every_storm_variant_is_healthy_before_and_broken_during_the_spike(variant: str):
    """Same users, same capacity: 100% before the spike, under 5% during it, whatever the fix."""
    slo = load_scenario(STORM).slo
    start, end, _ = _storm_times()
    result = _run(STORM, variant)
    before = rolling_availability(result, slo.window)
    assert before[start] == 1.0  # the window [0, 30 s)
    assert worst_p99(result, 0.0, start) <= slo.latency_p99
    assert availability(result, start, end) < 0.05


def test_without_a_budget_the_storm_outlives_its_trigger():
    """Metastable: 60 s after the spike ended availability is exactly 0, and never comes back."""
    slo = load_scenario(STORM).slo
    _, end, judged = _storm_times()
    result = _run(STORM, "baseline")
    windows = rolling_availability(result, slo.window)
    assert windows[judged] == 0.0  # the window [75 s, 105 s): out of SLO, not one success
    after = windows[windows.index >= end + slo.window]
    assert (after < slo.availability).all()  # no full window after the spike is within SLO
    assert availability(result, end, result.summary["duration"]) == 0.0


@pytest.mark.parametrize("variant", STORM_MITIGATIONS)
def test_each_mitigation_is_back_within_slo(variant: str):
    """60 s after the spike the window is 100% available with p99 in target, and stays so."""
    slo = load_scenario(STORM).slo
    _, end, judged = _storm_times()
    result = _run(STORM, variant)
    windows = rolling_availability(result, slo.window)
    assert windows[judged] == 1.0
    assert (windows[windows.index >= judged] >= slo.availability).all()
    assert worst_p99(result, judged - slo.window, result.summary["duration"]) <= slo.latency_p99
    # the users are served again within 6 s of the spike's end (1 s bins)
    good, total = _counts(result, "client")
    per_second = (good / total)[good.index >= end + 6.0]
    assert (per_second >= slo.availability).all()


def test_the_storm_is_work_amplification():
    """Broken state: 3 attempts per call, 3x the users' rate at inventory, all work wasted."""
    start, _, judged = _storm_times()
    window = (judged - 30.0, judged)
    result = _run(STORM, "baseline")
    calls = finished(result, STORM_EDGE, *window)
    arrivals = finished(result, "client", *window)
    # healthy: one attempt per call, inventory sees what the users send
    healthy_calls = finished(result, STORM_EDGE, 0.0, start)
    assert count(result, STORM_EDGE, "attempts", 0.0, start) / healthy_calls < 1.001
    assert finished(result, "inventory", 0.0, start) / finished(result, "client", 0.0, start) == (
        pytest.approx(1.0, abs=0.01)
    )
    # broken: every call makes all 3 attempts, every one of them fails
    assert count(result, STORM_EDGE, "attempts", *window) / calls == pytest.approx(3.0, abs=0.01)
    assert count(result, STORM_EDGE, "rate.ok", *window) == 0
    timeouts = count(result, STORM_EDGE, "rate.timeout", *window)
    assert timeouts + count(result, STORM_EDGE, "rate.shed", *window) == calls
    assert timeouts > 0  # the last attempt timed out, or was shed by a full queue
    # inventory receives 3x the users' rate: it sheds the excess and completes 370/s (its
    # capacity: 16 workers / 43.2 ms), every one for a caller that already gave up
    assert finished(result, "inventory", *window) / arrivals == pytest.approx(3.0, abs=0.03)
    assert count(result, "inventory", "rate.ok", *window) / 30.0 == pytest.approx(370, rel=0.03)
    assert count(result, "inventory", "rate.shed", *window) > 0


def test_budgets_cap_the_amplification():
    """During the spike: Envoy's budget allows about 1.2 attempts per call, gRPC's ~1, none 3."""
    start, end, _ = _storm_times()

    def attempts_per_call(variant: str) -> float:
        result = _run(STORM, variant)
        return count(result, STORM_EDGE, "attempts", start, end) / finished(
            result, STORM_EDGE, start, end
        )

    assert attempts_per_call("baseline") == pytest.approx(3.0, abs=0.02)
    assert 1.1 < attempts_per_call("retry-budget") < 1.3  # 1.2 x 280/s < 370/s
    assert attempts_per_call("grpc-retry-throttling") < 1.01
    no_retries = _run(STORM, "no-retries")
    assert count(no_retries, STORM_EDGE, "attempts", 0.0, 120.0) == finished(
        no_retries, STORM_EDGE, 0.0, 120.0
    )
    budget = _run(STORM, "retry-budget")
    assert count(budget, STORM_EDGE, "retry_budget_exhausted", start, end) > 0


def test_envoys_budget_is_a_margin_not_a_guarantee():
    """At 320/s (1.16x headroom) 20% more retries no longer fit: only gRPC's throttle recovers."""
    _, _, judged = _storm_times()
    scenario = load_scenario(STORM)
    slo = scenario.slo

    def judged_window(variant: str) -> float:
        heavier = scenario.with_variant(variant).with_overrides({"workload.rate.rate": 320})
        return float(rolling_availability(run(heavier), slo.window)[judged])

    assert judged_window("retry-budget") == 0.0
    assert judged_window("grpc-retry-throttling") == 1.0


def test_the_breaker_opens_during_the_spike_and_closes_after_it():
    """Each frontend replica's breaker opens within 1 s of the spike; the last word is CLOSED."""
    start, end, _ = _storm_times()
    result = _run(STORM, "circuit-breaker")
    events = result.events[result.events.kind == "circuit_breaker"]
    for replica in ("frontend-0", "frontend-1"):
        mine = events[events.entity == replica]
        opened = mine[mine.detail.str.endswith("from CLOSED to OPEN")]
        assert start < opened.t.min() < start + 1.0
        last = mine.iloc[-1]
        assert last.detail.endswith("from HALF_OPEN to CLOSED")
        assert end < last.t < end + 6.0
    calls = finished(result, STORM_EDGE, start, end)
    assert count(result, STORM_EDGE, "rate.circuit_open", start, end) / calls > 0.7


def test_deadline_propagation_alone_stays_broken():
    """Expired work is dropped for free, yet the storm outlives its trigger just the same.

    FIFO serves the oldest unexpired request, with almost none of its 200 ms left: each one
    finishes after its caller gave up (about 237 ms at inventory), so every call still makes
    3 attempts and inventory still completes 370/s for nobody.
    """
    slo = load_scenario(STORM).slo
    _, end, judged = _storm_times()
    window = (judged - slo.window, judged)
    result = _run(STORM, DEADLINES)
    windows = rolling_availability(result, slo.window)
    assert windows[judged] == 0.0
    assert (windows[windows.index >= end + slo.window] < slo.availability).all()
    assert availability(result, end, result.summary["duration"]) < 0.001
    calls = finished(result, STORM_EDGE, *window)
    assert count(result, STORM_EDGE, "attempts", *window) / calls == pytest.approx(3.0, abs=0.02)
    assert count(result, STORM_EDGE, "rate.ok", *window) == 0
    # inventory drops hundreds of expired requests per second and still works at capacity
    dropped = count(result, "inventory", "rate.deadline_exceeded", *window) / slo.window
    served = count(result, "inventory", "rate.ok", *window) / slo.window
    assert 400 < dropped < 520
    assert served == pytest.approx(370, rel=0.03)
    # ... but everything it serves is late: its median latency is above the 200 ms timeout
    p50 = _metric(result, "inventory", "latency_p50")
    assert (p50[(p50.index >= window[0]) & (p50.index < window[1])] > 0.2).all()
    # before the spike nothing expires: the drop costs nothing when healthy
    assert count(result, "inventory", "rate.deadline_exceeded", 0.0, 30.0) == 0


def test_deadline_propagation_with_lifo_recovers_at_once():
    """Newest first: each served request has most of its deadline left.

    Part of the users are served even during the spike, all of them once it ends.
    """
    slo = load_scenario(STORM).slo
    start, end, judged = _storm_times()
    result = _run(STORM, DEADLINES_LIFO)
    windows = rolling_availability(result, slo.window)
    assert windows[start] == 1.0
    assert (windows[windows.index >= judged] == 1.0).all()
    assert 0.25 < availability(result, start, end) < 0.5
    good, total = _counts(result, "client")
    per_second = (good / total)[good.index >= end + 1.0]
    assert (per_second >= slo.availability).all()
    assert worst_p99(result, judged - slo.window, result.summary["duration"]) <= slo.latency_p99


# --------------------------------------------------------------------------- slow dependency


def _fault_window() -> tuple[float, float]:
    (fault,) = load_scenario(BULKHEAD).faults
    assert fault.duration is not None
    return fault.at, fault.at + fault.duration


def test_the_bulkhead_scenario_states_its_slo_and_trigger():
    scenario = load_scenario(BULKHEAD)
    assert (scenario.slo.availability, scenario.slo.window) == (0.99, 30.0)
    assert _fault_window() == (30.0, 90.0)


@pytest.mark.parametrize("variant", ["baseline", "bulkhead", "bulkhead-fallback", "timeout-only"])
def test_every_bulkhead_variant_is_healthy_before_the_fault(variant: str):
    start, _ = _fault_window()
    result = _run(BULKHEAD, variant)
    assert availability(result, 0.0, start) == 1.0
    assert worst_p99(result, 0.0, start) <= load_scenario(BULKHEAD).slo.latency_p99


def test_a_slow_dependency_takes_the_unrelated_endpoint_down():
    """Baseline: about 30% availability, and the cart loses two thirds of its traffic.

    Every failure is a shed at frontend, none at the slow service; the cart never calls it.
    """
    start, end = _fault_window()
    result = _run(BULKHEAD, "baseline")
    assert 0.25 < availability(result, start, end) < 0.35
    assert set(failures(result)) == {("frontend", "shed")}
    assert collateral(result) > 5000
    services = result.services.set_index("entity")
    assert services.loc[SLOW, "availability"] == 1.0  # slow, never wrong
    cart_before = count(result, "cart", "rate.ok", 0.0, start) / start
    cart_during = count(result, "cart", "rate.ok", start, end) / (end - start)
    assert cart_before == pytest.approx(100, rel=0.05)
    assert cart_during / cart_before < 0.4


@pytest.mark.parametrize("variant", ["bulkhead", "bulkhead-fallback"])
def test_a_bulkhead_keeps_the_unrelated_endpoint(variant: str):
    """No failure starts anywhere but the recommendations call; the cart keeps its traffic."""
    start, end = _fault_window()
    result = _run(BULKHEAD, variant)
    assert collateral(result) == 0
    assert {where for where, _ in failures(result)} == {f"frontend -> {SLOW}"}
    cart_before = count(result, "cart", "rate.ok", 0.0, start) / start
    cart_during = count(result, "cart", "rate.ok", start, end) / (end - start)
    assert cart_during == pytest.approx(cart_before, rel=0.05)
    assert count(result, "frontend", "rate.shed", 0.0, 120.0) == 0


def test_the_bulkhead_alone_fails_only_the_requests_that_need_recommendations():
    """About half of the requests call recommendations; most of those are rejected at once."""
    start, end = _fault_window()
    result = _run(BULKHEAD, "bulkhead")
    assert 0.5 < availability(result, start, end) < 0.65
    assert set(failures(result)) == {(f"frontend -> {SLOW}", "bulkhead_full")}
    assert (result.events.kind == "bulkhead").sum() > 0


def test_bulkhead_with_fallback_serves_everyone():
    """100% available, about half degraded, p99 in target.

    Abandoned calls keep their permits (the timeout is outside the bulkhead), so most fallbacks
    come from the full bulkhead rather than from the timeout.
    """
    slo = load_scenario(BULKHEAD).slo
    start, end = _fault_window()
    result = _run(BULKHEAD, "bulkhead-fallback")
    assert availability(result, 0.0, result.summary["duration"]) == 1.0
    degraded = count(result, "client", "rate.degraded", start, end)
    assert degraded / finished(result, "client", start, end) == pytest.approx(0.5, abs=0.03)
    assert worst_p99(result, 0.0, result.summary["duration"]) <= slo.latency_p99
    causes = failures(result)
    rejected = causes[(f"frontend -> {SLOW}", "bulkhead_full")]
    timed_out = causes[(f"frontend -> {SLOW}", "timeout")]
    assert rejected > 3 * timed_out > 0


def test_a_timeout_alone_does_not_contain_it():
    """1 s x 50 calls/s = 50 workers > 32: the pool stays exhausted.

    The cart still loses a third of its traffic, and availability is no better than baseline.
    """
    start, end = _fault_window()
    baseline = _run(BULKHEAD, "baseline")
    result = _run(BULKHEAD, "timeout-only")
    assert 0 < collateral(result) < collateral(baseline)
    assert set(failures(result)) == {("frontend", "shed"), (f"frontend -> {SLOW}", "timeout")}
    cart_before = count(result, "cart", "rate.ok", 0.0, start) / start
    cart_during = count(result, "cart", "rate.ok", start, end) / (end - start)
    assert 0.5 < cart_during / cart_before < 0.75
    assert availability(result, start, end) < 0.35
