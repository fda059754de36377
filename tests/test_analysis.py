"""The headline numbers (``sim/analysis.py``) on hand-built results with known answers.

One incident, built bin by bin (1 s bins, 5 s SLO windows, 40 s): ``frontend -> cart ->
payments``, plus ``search`` beside ``payments`` on node-b. A crash of ``payments`` at 10 s;
what each caller saw of each service is written down per bin, so every SLO window, and every
figure computed from them, can be worked out by hand (each test says how).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import pytest

from sim import experiment
from sim.analysis import (
    analyze,
    containment,
    failure_reasons,
    fault_targets,
    fault_window,
    metastable_verdict,
    narrate,
    potential_reach,
    recovery_point,
    slo_windows,
)
from sim.recorder import CLIENT, RunResult, bucket_of
from sim.scenario import Scenario, load_scenario_text

SCENARIO = """\
name: hand-built
duration: 40s
hosts:
  - {name: node-a, memory: 8Gi, cpus: 4}
  - {name: node-b, memory: 8Gi, cpus: 4}
services:
  frontend:
    placement: [node-a]
    service_time: {dist: deterministic, value: 10ms}
    calls: [{to: cart}]
  cart:
    placement: [node-a]
    service_time: {dist: deterministic, value: 10ms}
    calls: [{to: payments}]
  payments:
    placement: [node-b]
    service_time: {dist: deterministic, value: 10ms}
  search:
    placement: [node-b]
    service_time: {dist: deterministic, value: 10ms}
workload:
  entry: frontend
  rate: {profile: constant, rate: 10/s}
faults:
  - {kind: crash, target: payments, at: 10s}
slo: {availability: 90%, latency_p99: 500ms, window: 5s}
"""

FAST, SLOW = 0.010, 2.0
"""Latencies of the hand-built requests: well within and well over the 500 ms SLO."""


def _scenario(text: str = SCENARIO) -> Scenario:
    return load_scenario_text(text, "hand-built.yaml")


def _bins(n: int = 40, ok: int = 10) -> list[tuple[int, int, int]]:
    """Per bin: (fast ok, slow ok, errors); 10 fast requests a second by default."""
    return [(ok, 0, 0)] * n


def _result(
    traffic: dict[str, list[tuple[int, int, int]]],
    events: Sequence[tuple[float, str, str, str, str]] = (),
    gauges: Sequence[tuple[float, str, str, float]] = (),
    failures: pd.DataFrame | None = None,
) -> RunResult:
    """A RunResult from per-bin counts per entity (1 s bins), events and gauges."""
    series, latency = [], []
    for entity, per_bin in traffic.items():
        for t, (fast, slow, errors) in enumerate(per_bin):
            series.append((float(t), entity, "rate.ok", float(fast + slow)))
            series.append((float(t), entity, "rate.error", float(errors)))
            latency += [(float(t), entity, bucket_of(FAST), fast)] if fast else []
            latency += [(float(t), entity, bucket_of(SLOW), slow)] if slow else []
    series += list(gauges)
    entities = [(CLIENT, "client", None, None)]
    for name, host in (("frontend", "node-a"), ("cart", "node-a"), ("payments", "node-b")):
        entities += [(name, "service", name, None), (f"{name}-0", "instance", name, host)]
    entities += [
        ("search", "service", "search", None),
        ("search-0", "instance", "search", "node-b"),
    ]
    return RunResult(
        scenario="hand-built",
        variant=None,
        seed=0,
        summary={},
        services=pd.DataFrame(),
        timeseries=pd.DataFrame(series, columns=["t", "entity", "metric", "value"]),
        events=pd.DataFrame(list(events), columns=["t", "host", "entity", "kind", "detail"]),
        failures=(
            failures
            if failures is not None
            else pd.DataFrame(columns=["class", "where", "cause", "outcome", "count"])
        ),
        entities=pd.DataFrame(entities, columns=["entity", "kind", "service", "host"]),
        latency=pd.DataFrame(latency, columns=["t", "entity", "bucket", "count"]),
    )


def _incident() -> RunResult:
    """The incident every test below reads.

    * users (``client``, the view of ``frontend``): 10 ok a second; bins 12-13 half fail;
      2 of bin 15's requests take 2 s.
    * ``frontend -> cart`` (``cart``): half fail in bins 2-3, before the fault, and 12-13.
    * ``cart -> payments`` (``payments``): all 10 fail in bin 10; all of bin 20 take 2 s.
    """
    users = _bins()
    users[12] = users[13] = (5, 0, 5)
    users[15] = (8, 2, 0)
    cart = _bins()
    cart[2] = cart[3] = cart[12] = cart[13] = (5, 0, 5)
    payments = _bins()
    payments[10] = (0, 0, 10)
    payments[20] = (0, 10, 0)
    events = [
        (0.0, "node-a", "kubelet", "NodeHasSufficientMemory", "Node node-a status is now: ..."),
        (10.0, "-", "payments", "fault_start", "fault crash-0 (crash): killing payments-0"),
        (
            10.0,
            "node-b",
            "payments-0",
            "terminated",
            "Container payments-0 terminated: Reason: Error, Exit Code: 137",
        ),
        (10.0, "node-b", "payments-0", "restart", "Restarting container payments in pod ..."),
        (
            12.0,
            "node-b",
            "/kubepods.slice/kubepods-besteffort.slice/pod-search-0/search",
            "oom_kill",
            "Memory cgroup out of memory: Killed process 1010 (search) total-vm:1kB, anon-rss:1kB",
        ),
        (
            12.0,
            "node-b",
            "search-0",
            "terminated",
            "Container search-0 terminated: Reason: OOMKilled, Exit Code: 137",
        ),
        (13.0, "node-b", "search-0", "restart", "Restarting container search in pod ..."),
        (15.0, "node-b", "payments-0", "ready", "Container payments-0 is ready"),
        (15.0, "node-b", "search-0", "ready", "Container search-0 is ready"),
        (
            35.0,
            "node-a",
            "cart-0",
            "terminated",
            "Container cart-0 terminated: Reason: Error, Exit Code: 1",
        ),
    ]
    # search-0's cgroup: 80 bytes of its 100, then 95 (past 90%) from bin 11
    gauges = [
        (float(t), "search-0", "memory_peak", 80.0 if t < 11 else 95.0) for t in range(40)
    ] + [(float(t), "search-0", "memory_max", 100.0) for t in range(40)]
    return _result(
        {CLIENT: users, "frontend -> cart": cart, "cart -> payments": payments},
        events,
        gauges,
    )


def _violated(slo: pd.DataFrame, service: str) -> list[float]:
    rows = slo[(slo["service"] == service) & slo["violated"]]
    return rows["t"].tolist()


def test_slo_windows_roll_over_the_callers_view():
    """Windows of 5 bins, one per bin end from 5 s: success ratio and p99 over the window.

    frontend: the windows holding bins 12-13 have 40 good of 50 (0.8 < 0.9): ends 14..17; the
    window ending at 13 holds only bin 12 (45/50 = 0.9, not below); bin 15's two 2 s requests
    are the top 2 of 50, so the p99 (rank 49.5) is 2 s: ends 16..20.
    """
    slo = slo_windows(_incident(), _scenario())
    assert slo["t"].min() == 5.0
    assert len(slo) == 4 * 36  # four services, windows ending at 5, 6, ... 40
    assert _violated(slo, "frontend") == [14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0]
    assert _violated(slo, "cart") == [5.0, 6.0, 7.0] + [14.0 + i for i in range(4)]
    assert _violated(slo, "payments") == [11.0 + i for i in range(5)] + [21.0 + i for i in range(5)]
    assert _violated(slo, "search") == []  # nobody calls it: no evidence, no violation
    frontend = slo[slo["service"] == "frontend"].set_index("t")
    assert frontend.loc[13.0, "availability"] == 0.9
    assert frontend.loc[14.0, "availability"] == 0.8
    assert frontend.loc[16.0, "latency_p99"] == pytest.approx(SLOW, rel=0.06)
    assert frontend.loc[21.0, "latency_p99"] == pytest.approx(FAST, rel=0.06)
    assert frontend.loc[21.0, "requests"] == 50
    payments = slo[slo["service"] == "payments"].set_index("t")
    assert payments.loc[21.0, "availability"] == 1.0  # only slow: a latency violation
    assert not slo[slo["service"] == "search"]["requests"].any()


def test_blast_radius_counts_impacted_services_beyond_the_targets():
    """Impacted services are out of SLO after the fault and not before it.

    cart was already out at 5-7 s, so it is not impacted; payments (the target) and frontend
    are. Beyond the targets: frontend alone, 1 of 4 services; it can reach payments' callers
    {cart, frontend}: containment 1 - 1/2.
    """
    blast = analyze(_incident(), _scenario()).blast
    assert blast.impacted == ("frontend", "payments")
    assert blast.beyond_targets == ("frontend",)
    assert blast.count == 1
    assert blast.fraction == 0.25
    assert blast.potential == ("cart", "frontend")
    assert blast.containment == 0.5


def test_user_impact_and_collateral_kills_over_the_incident():
    """User impact and collateral kills count what happened during the incident.

    The incident runs from 10 s to the recovery at 26 s: bins 10..25, 160 user requests, of
    which 10 failed (bins 12-13) and 2 were over the 500 ms SLO (bin 15): 12, 7.5%. search-0
    (not a target) died at 12 s: one collateral kill; cart-0 died at 35 s, after the incident.
    Hosts where something died meanwhile: node-b.
    """
    blast = analyze(_incident(), _scenario()).blast
    assert blast.user_impact_requests == 12
    assert blast.user_impact_fraction == 12 / 160
    assert blast.collateral_kills == 1
    assert blast.impacted_hosts == ("node-b",)


def test_recovery_time_is_measured_from_the_trigger_and_from_the_start():
    """Recovery is the end of the first good window after the last failing one.

    The last failing window ends at 25 s (payments' slow bin 20): every SLO holds again in
    the window ending at 26 s. The crash ends the trigger at once (10 s): 16 s to recover.
    Goodput: 10/s before, 150 good in the 16 incident bins instead of 160: 10 lost. Restarts
    from 10 s to 26 s: payments-0 and search-0; OOM kills: one. Peak error rate: half (bin 12).
    """
    analysis = analyze(_incident(), _scenario())
    incident, recovery = analysis.incident, analysis.recovery
    assert (incident.start, incident.trigger_end, incident.end) == (10.0, 10.0, 26.0)
    assert incident.targets == ("payments",)
    assert recovery.recovered
    assert recovery.recovered_at == 26.0
    assert recovery.time_to_recover == 16.0
    assert recovery.time_to_recover_from_start == 16.0
    assert recovery.goodput_lost == 10.0
    assert recovery.peak_error_rate == 0.5
    assert (recovery.restarts, recovery.oom_kills) == (2, 1)


def test_metastable_verdict_depends_on_the_hold_time():
    """Metastable means out of SLO for longer than the hold time after the trigger ended.

    Out of SLO until 26 s, 16 s after the trigger ended: metastable with the default hold
    (two 5 s windows = 10 s), not with a 20 s hold.
    """
    default = analyze(_incident(), _scenario()).recovery
    assert default.hold == 10.0
    assert default.metastable is True
    assert analyze(_incident(), _scenario(), hold=20.0).recovery.metastable is False


def test_a_system_still_out_of_slo_at_the_end_has_not_recovered():
    """A service failing from bin 30 to the end: not recovered; the incident lasts to 40 s."""
    payments = _bins()
    payments[30:] = [(0, 0, 10)] * 10
    analysis = analyze(_result({"cart -> payments": payments}), _scenario())
    recovery = analysis.recovery
    assert (recovery.recovered, recovery.recovered_at) == (False, None)
    assert recovery.time_to_recover is None
    assert recovery.metastable is True  # 30 s after the trigger, longer than the 10 s hold
    assert analysis.incident.end == 40.0
    assert analysis.blast.impacted == ("payments",)
    assert analysis.blast.count == 0
    assert analysis.blast.containment == 1.0  # neither cart nor frontend broke


def test_an_untouched_system_recovers_at_the_incident_start():
    """No SLO ever fails: recovered 'at' the fault, in no time; user impact nothing."""
    analysis = analyze(_result({CLIENT: _bins()}), _scenario())
    assert analysis.blast.impacted == ()
    assert analysis.recovery.recovered_at == 10.0
    assert analysis.recovery.time_to_recover == 0.0
    assert analysis.recovery.metastable is False
    assert analysis.blast.user_impact_fraction == 0.0
    assert analysis.recovery.goodput_lost == 0.0


@pytest.mark.parametrize(
    ("trigger_end", "recovered_at", "run_end", "verdict"),
    [
        (10.0, 15.0, 40.0, False),  # back within the hold
        (10.0, 20.0, 40.0, False),  # exactly at the hold: not longer than it
        (10.0, 25.0, 40.0, True),  # back, but after the hold
        (10.0, None, 40.0, True),  # never back, and the hold has passed
        (10.0, None, 15.0, None),  # never back, but the run ended within the hold
        (None, 25.0, 40.0, None),  # the trigger never ended
    ],
)
def test_metastable_verdict_cases(
    trigger_end: float | None, recovered_at: float | None, run_end: float, verdict: bool | None
):
    """The verdict with a 10 s hold, in each situation the definition distinguishes."""
    assert metastable_verdict(trigger_end, recovered_at, 10.0, run_end) is verdict


def test_recovery_point_ignores_services_already_broken_before_the_start():
    """A service out of SLO before the incident does not hold the recovery back."""
    slo = pd.DataFrame(
        {
            "t": [5.0, 6.0, 7.0, 8.0] * 2,
            "service": ["a"] * 4 + ["b"] * 4,
            "violated": [True, True, True, True, False, True, False, False],
        }
    )
    assert recovery_point(slo, 5.0) == (True, 7.0)
    assert recovery_point(slo.assign(violated=slo["t"] == 8.0), 5.0) == (False, None)


FAULTS = """\
faults:
  - {kind: latency, target: "frontend -> cart", at: 5s, duration: 10s, add: 50ms}
  - {kind: memory_leak, target: payments, at: 8s, duration: 20s, rate: 1Mi}
  - {kind: host_down, target: node-a, at: 3s, duration: 4s}
  - {kind: traffic_surge, at: 9s, duration: 1s, factor: 2}
"""


def test_targets_faulted_hosts_and_potential_reach():
    """Each kind of fault names its targets; the reach is callers plus co-located services.

    An edge fault targets its callee (cart), a leak its service (and payments' host node-b
    is faulted), a surge the entry (frontend), a host fault a host (node-a). Everything is
    co-located with a faulted host, so the reach is every non-target: search.
    """
    scenario = _scenario(
        SCENARIO.replace("faults:\n  - {kind: crash, target: payments, at: 10s}\n", FAULTS)
    )
    targets, hosts = fault_targets(scenario)
    assert targets == ("cart", "frontend", "payments")
    assert hosts == ("node-a", "node-b")
    assert fault_window(scenario) == (3.0, 28.0)
    reach = potential_reach(scenario.call_graph(), ["payments"], [], {"payments": ["node-b"]})
    assert reach == ("cart", "frontend")  # callers only: networkx ancestors
    assert potential_reach(scenario.call_graph(), targets, hosts, {"search": ["node-b"]}) == (
        "search",
    )


def test_fault_window_of_instant_and_open_ended_faults():
    """A crash ends when it happens; a fault with no duration never ends; no fault: (0, None)."""
    crash = _scenario()
    assert fault_window(crash) == (10.0, 10.0)
    open_ended = crash.with_overrides(
        {"faults": [{"kind": "latency", "target": "cart", "at": 4, "add": 0.1}]}
    )
    assert fault_window(open_ended) == (4.0, None)
    assert fault_window(crash.with_overrides({"faults": []})) == (0.0, None)


def test_containment_of_actual_over_potential():
    """Containment is 1 - reached/reachable.

    Impacted services out of reach do not count; with nothing reachable it is undefined.
    """
    assert containment(["a", "x"], ["a", "b", "c", "d"]) == 0.75
    assert containment([], ["a"]) == 1.0
    assert containment(["a"], ["a"]) == 0.0
    assert math.isnan(containment(["a"], []))


def test_timeline_links_each_effect_to_its_cause():
    """Each timeline entry is linked to its likely cause.

    The fault -> payments-0 dies -> restarts -> ready; payments out of SLO because it died; the
    users' SLO breaks after it (a dependency); search-0's memory nears its limit, then the
    OOM kill, the container's end and its restart follow from it.
    """
    timeline = analyze(_incident(), _scenario()).timeline
    rows = [
        (row["t"], row["kind"], row["entity"], None if pd.isna(row["cause"]) else int(row["cause"]))
        for row in timeline.to_dict("records")
    ]
    assert rows == [
        (5.0, "slo_violation", "cart", None),
        (8.0, "slo_ok", "cart", None),
        (10.0, "fault_start", "payments", None),
        (10.0, "terminated", "payments-0", 2),
        (10.0, "restart", "payments-0", 3),
        (11.0, "memory", "search-0", None),  # search is not connected to payments
        (11.0, "slo_violation", "payments", 3),
        (12.0, "oom_kill", "search-0", 5),
        (12.0, "terminated", "search-0", 7),
        (13.0, "restart", "search-0", 8),
        (14.0, "slo_violation", "cart", 6),  # its dependency broke, not its own past episode
        (14.0, "slo_violation", "frontend", 10),
        (15.0, "ready", "payments-0", 4),
        (15.0, "ready", "search-0", 9),
        (16.0, "slo_ok", "payments", 12),
        (18.0, "slo_ok", "cart", 14),
        (21.0, "slo_violation", "payments", 3),
        (21.0, "slo_ok", "frontend", 15),
        (26.0, "slo_ok", "payments", 12),
        (35.0, "terminated", "cart-0", 2),  # a fault on a service it calls
    ]
    texts = timeline["text"].tolist()
    assert (
        texts[3]
        == "payments-0 terminated (Error, exit code 137); load balancer: 0 of 1 payments replicas"
    )
    assert texts[5] == "search-0 memory at 95% of its limit (95B of 100B)"
    assert (
        texts[7] == "kernel: Memory cgroup out of memory: Killed process 1010 (search) in search-0"
    )
    assert texts[12] == "payments-0 ready; load balancer: 1 of 1 payments replicas"


def test_failure_reasons_are_the_top_three_per_class():
    """Per class, the most frequent (where, cause) first, with its share of the class."""
    failures = pd.DataFrame(
        [
            ("checkout", "payments", "shed", "dependency", 6),
            ("checkout", "payments", "reset", "dependency", 2),
            ("checkout", "cart", "timeout", "dependency", 1),
            ("checkout", "cart", "error", "error", 1),
            ("browse", "frontend -> cart", "timeout", "timeout", 3),
        ],
        columns=["class", "where", "cause", "outcome", "count"],
    )
    reasons = failure_reasons(failures)
    assert reasons.to_dict("records") == [
        {
            "class": "browse",
            "failed": 3,
            "rank": 1,
            "where": "frontend -> cart",
            "cause": "timeout",
            "outcome": "timeout",
            "count": 3,
            "share": 1.0,
        },
        {
            "class": "checkout",
            "failed": 10,
            "rank": 1,
            "where": "payments",
            "cause": "shed",
            "outcome": "dependency",
            "count": 6,
            "share": 0.6,
        },
        {
            "class": "checkout",
            "failed": 10,
            "rank": 2,
            "where": "payments",
            "cause": "reset",
            "outcome": "dependency",
            "count": 2,
            "share": 0.2,
        },
        {
            "class": "checkout",
            "failed": 10,
            "rank": 3,
            "where": "cart",
            "cause": "error",
            "outcome": "error",
            "count": 1,
            "share": 0.1,
        },
    ]


def test_narration_states_the_figures_in_words():
    """The narration states the figures in words.

    What ``faultlab explain`` prints: the headline, the timeline with each cause's number, the
    failure reasons.
    """
    failures = pd.DataFrame(
        [("default", "payments", "reset", "dependency", 10)],
        columns=["class", "where", "cause", "outcome", "count"],
    )
    result = _incident()
    result.failures = failures
    lines = narrate(analyze(result, _scenario()))
    assert lines[:5] == [
        "A fault at 10.000s (instantaneous), aimed at payments.",
        "Impacted services: frontend, payments; blast radius 1 beyond the targets (25% of the "
        "services); containment 50% of the reachable cart, frontend.",
        "Users: 7.50% of requests failed or were too slow during the incident (12 requests); "
        "collateral kills: 1.",
        "Recovered at 26.000s, 16s after the trigger ended.",
        "Verdict: metastable (hold 10s); peak error rate 50.0%, restarts 2, OOM kills 1 during "
        "recovery.",
    ]
    assert (
        lines[7]
        == "  #0       5.000s  cart out of SLO over the last 5s: availability 80.00% < 90.00%"
    )
    assert lines[10] == (
        "  #3      10.000s  payments-0 terminated (Error, exit code 137); load balancer: 0 of 1 "
        "payments replicas  <- #2"
    )
    assert lines[-2:] == [
        "Why requests failed:",
        "  default: 10 failed; 100% reset at payments (users saw dependency)",
    ]


def test_timeline_back_off_says_how_long_from_the_waiting_line() -> None:
    """A BackOff event gives no delay; the Waiting line at its instant does (Go durations)."""
    done = experiment.run("kubelet-eviction-vs-oom", "fast-leak")
    texts = [t for t in done.analysis.timeline["text"] if "CrashLoopBackOff" in t]
    assert [t.rsplit(" ", 1)[1] for t in texts] == ["10s", "20s", "40s", "1m20s"]
