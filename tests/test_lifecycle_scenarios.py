"""The lifecycle catalogue scenarios tell the truth.

probe-cascade, crashloop-vs-supervisor, poison-pill. Each scenario (and each variant) is run
once with its own seed, and the claims of its narrative are checked on the run: which variant
collapses and which recovers, when, how many restarts, and the lines of the event log that show
why. Availability helpers are the ones of ``test_resilience_scenarios.py``.
"""

from __future__ import annotations

import functools

import pandas as pd
import pytest
from test_resilience_scenarios import availability

from sim import run
from sim.recorder import RunResult

CASCADE = "probe-cascade"
CRASHLOOP = "crashloop-vs-supervisor"
POISON = "poison-pill"


@functools.cache
def _run(name: str, variant: str | None = None) -> RunResult:
    return run(name, variant=variant)


def events(result: RunResult, *kinds: str) -> pd.DataFrame:
    frame = result.events
    return frame[frame.kind.isin(kinds)]


def failing_bins(result: RunResult) -> pd.Series:
    """Start times of the 1 s bins in which some user request failed."""
    ts = result.timeseries
    rates = ts[(ts.entity == "client") & ts.metric.str.startswith("rate.")]
    table = rates.pivot(index="t", columns="metric", values="value").sort_index()
    bad = table.sum(axis=1) - table["rate.ok"] - table["rate.degraded"]
    return bad[bad > 0].index.to_series()


def windows(result: RunResult, start: float, end: float, width: float = 30.0) -> list[float]:
    """Client availability of each ``width`` window in [start, end)."""
    return [availability(result, t, t + width) for t in range(int(start), int(end), int(width))]


def backoffs(result: RunResult) -> list[str]:
    waiting = events(result, "waiting").detail
    return [line.split("Message: back-off ")[1].split()[0] for line in waiting]


# --------------------------------------------------------------------------- probe-cascade


def test_probe_cascade_liveness_on_shared_workers_restarts_the_service_into_collapse():
    """Baseline: healthy replicas are killed during the surge and the service never recovers.

    The first Killing comes before the surge ends (88.6 s); every replica is killed and
    restarted, later ones through CrashLoopBackOff (10 s, then 20 s); every 30 s window from
    90 s to the end is below 10%; users still fail in the last second of the run.
    """
    result = _run(CASCADE)
    killing = events(result, "Killing")
    assert killing.detail.unique().tolist() == [
        "Container api failed liveness probe, will be restarted"
    ]
    assert 60 < killing.t.min() < 90
    assert set(killing.entity) == {"api-0", "api-1", "api-2", "api-3"}
    assert len(killing) >= 10
    assert result.summary["restarts"] >= 10
    assert set(backoffs(result)) == {"10s", "20s"}
    assert all(a < 0.1 for a in windows(result, 90, 240))
    assert failing_bins(result).max() == 239
    unhealthy = events(result, "Unhealthy")
    before = unhealthy[unhealthy.t <= killing.t.min()].detail
    assert before.str.contains("context deadline exceeded").all()  # busy, not dead


@pytest.mark.parametrize("variant", ["separate-probe-port", "readiness-only"])
def test_probe_cascade_variants_survive_the_surge(variant: str):
    """Without liveness probes on the busy workers nothing restarts; users are served again.

    Within 12 s of the end of the surge: 100% in every window from 120 s on.
    """
    result = _run(CASCADE, variant)
    assert events(result, "Killing", "restart").empty
    assert result.summary["restarts"] == 0
    assert failing_bins(result).max() <= 102
    assert windows(result, 120, 240) == [1.0] * 4
    assert availability(result, 90, 240) > 0.85
    baseline = _run(CASCADE)
    assert availability(result, 60, 240) > availability(baseline, 60, 240) + 0.5


def test_probe_cascade_separate_port_probes_never_fail_under_overload():
    """A management port answers while the process runs: not one Unhealthy line."""
    assert events(_run(CASCADE, "separate-probe-port"), "Unhealthy").empty


def test_probe_cascade_readiness_sheds_load_by_leaving_the_load_balancer():
    """Readiness only: every replica leaves the load balancer at 93-96 s, is back by 105 s.

    Users meanwhile get ``unavailable`` at once instead of queueing.
    """
    result = _run(CASCADE, "readiness-only")
    left = events(result, "not_ready")
    back = events(result, "ready")
    assert sorted(left.entity) == ["api-0", "api-1", "api-2", "api-3"]
    assert left.t.between(93, 96).all()
    assert sorted(back.entity) == ["api-0", "api-1", "api-2", "api-3"]
    assert back.t.between(102, 105).all()
    assert result.summary["outcomes"]["unavailable"] > 0


# --------------------------------------------------------------------------- crashloop


def test_crashloop_under_kubernetes_waits_past_the_fix():
    """CrashLoopBackOff: restarts at 62, 74, 96 and 138 s; served again only 38 s after the fix.

    ``ledger`` is never touched; both ``payments`` pods wait 10, 20 and 40 s.
    """
    result = _run(CRASHLOOP)
    for pod in ("payments-0", "payments-1"):
        restarts = events(result, "restart")
        assert restarts[restarts.entity == pod].t.tolist() == [62, 74, 96, 138]
    assert backoffs(result) == ["10s", "10s", "20s", "20s", "40s", "40s"]
    assert failing_bins(result).max() == 138
    assert availability(result, 139, 200) == 1.0
    assert not events(result, "terminated").entity.str.startswith("ledger").any()
    assert result.summary["restarts"] == 8


def test_crashloop_under_an_otp_one_for_all_tree_escalates_and_stops_the_application():
    """OTP one_for_all, 3 restarts in 10 s: the fourth crash stops the application for good.

    Group restarts at 62, 65 and 68 s; the crash at 71 s exceeds the intensity, the application
    stops, and payments and ledger stay down.
    """
    result = _run(CRASHLOOP, "otp-one-for-all")
    restarts = events(result, "restart")
    ledger = restarts[restarts.entity == "ledger-0"].t.round().tolist()
    assert ledger == [62, 65, 68]
    shutdown = events(result, "supervisor_shutdown")
    assert len(shutdown) == 1
    assert "reason: reached_max_restart_intensity" in shutdown.detail.item()
    assert shutdown.t.item() == pytest.approx(71, abs=0.1)
    exited = events(result, "application_exited")
    assert exited.t.item() == pytest.approx(71, abs=0.1)
    assert availability(result, 72, 200) == 0.0
    assert failing_bins(result).max() == 199
    assert result.summary["restarts"] == 9
    ts = result.timeseries
    last = ts[(ts.t == ts.t.max()) & ts.metric.str.startswith("instances.")]
    states = {(r.entity, r.metric): r.value for r in last.itertuples()}
    for service, replicas in (("payments", 2), ("ledger", 1)):
        assert states[(service, "instances.terminated")] == replicas


def test_crashloop_nested_trees_escalate_one_level_at_a_time():
    """``otp-nested``: the escalation climbs to shop_sup, which gives up at 83 s.

    payments_sup gives up at 71 s and again at 83 s; the second is shop_sup's second restart
    within 60 s, so shop_sup gives up and the application stops.
    """
    result = _run(CRASHLOOP, "otp-nested")
    shutdowns = events(result, "supervisor_shutdown")
    assert [(e, round(t)) for e, t in zip(shutdowns.entity, shutdowns.t, strict=True)] == [
        ("payments_sup", 71),
        ("payments_sup", 83),
        ("shop_sup", 83),
    ]
    assert events(result, "application_exited").entity.tolist() == ["shop_sup"]


def test_for_a_blip_otp_recovers_first():
    """A 5 s crash loop: CrashLoopBackOff serves again at 74 s, OTP at 67 s, failing a third."""
    kubernetes = _run(CRASHLOOP, "blip")
    otp = _run(CRASHLOOP, "blip-otp-one-for-all")
    assert failing_bins(kubernetes).max() == 74
    assert failing_bins(otp).max() == 67
    assert events(otp, "supervisor_shutdown", "application_exited").empty
    failed_k = kubernetes.summary["completed"] - kubernetes.summary["outcomes"]["ok"]
    failed_o = otp.summary["completed"] - otp.summary["outcomes"]["ok"]
    assert failed_o < failed_k / 2


# --------------------------------------------------------------------------- poison-pill


def crash_bursts(result: RunResult, within: float = 0.1) -> list[list[str]]:
    """The replicas of ``orders`` that crashed together (exits less than ``within`` s apart)."""
    crashes = events(result, "terminated")
    crashes = crashes[crashes.detail.str.endswith("Reason: Error, Exit Code: 1")]
    bursts: list[list[str]] = []
    last = -1.0
    for t, entity in zip(crashes.t, crashes.entity, strict=True):
        if bursts and t - last < within:
            bursts[-1].append(entity)
        else:
            bursts.append([entity])
        last = t
    return bursts


def test_poison_pill_retries_spread_the_poison_to_every_replica():
    """Baseline: each poison request kills all three replicas within 0.1 s.

    4 times: 12 restarts; the service has no replica for 15-45 s at a time; back to 100% only
    after the poison stops.
    """
    result = _run(POISON)
    bursts = crash_bursts(result)
    assert [sorted(b) for b in bursts] == [["orders-0", "orders-1", "orders-2"]] * 4
    assert result.summary["restarts"] == 12
    assert windows(result, 120, 180) == [pytest.approx(0.0, abs=0.02)] * 2
    assert failing_bins(result).max() >= 180
    assert availability(result, 185, 240) == 1.0


def test_poison_pill_without_retries_of_reset_kills_one_replica_per_poison():
    """``no-retry-on-reset``: no two replicas crash together; far fewer users fail.

    The growing CrashLoopBackOff still leaves replicas waiting after the poison stops.
    """
    result = _run(POISON, "no-retry-on-reset")
    assert all(len(b) == 1 for b in crash_bursts(result))
    assert availability(result, 60, 240) > availability(_run(POISON), 60, 240) + 0.3
    assert "40s" in backoffs(result)
    assert failing_bins(result).max() > 180


def test_poison_pill_contained_let_it_crash_keeps_the_slo_nearly():
    """OTP without retries of reset: immediate restarts, no back-off, 99% over the run."""
    result = _run(POISON, "otp-no-retry-on-reset")
    assert all(len(b) == 1 for b in crash_bursts(result))
    assert events(result, "waiting", "backoff", "application_exited").empty
    assert result.summary["availability"] > 0.99
    assert min(windows(result, 60, 240)) > 0.9


def test_poison_pill_otp_with_retries_still_loses_every_replica():
    """OTP with the retries: immediate restarts cannot undo the spreading.

    One at a time, the three restarts take 15 s; the supervisor stays within its intensity.
    """
    result = _run(POISON, "otp")
    assert any(len(b) == 3 for b in crash_bursts(result))
    assert events(result, "application_exited").empty
    contained = _run(POISON, "otp-no-retry-on-reset")
    assert availability(result, 60, 180) < availability(contained, 60, 180) - 0.1
