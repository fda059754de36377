"""The lessons node-drain, memory-leak-liveness and kubelet-eviction-vs-oom tell the truth.

Each scenario (and each variant) is run once with its own seed, and the figures of its
narrative are checked on the run: the kubectl, kubelet and kernel lines with their times, the
restarts, evictions and OOM kills, and what the users saw. References: semantics §3.4-§3.5
(OOMKilled, eviction), §4 (CrashLoopBackOff), §5 (probes); kubectl drain and the Eviction API.
"""

from __future__ import annotations

import functools

from test_lifecycle_scenarios import backoffs, failing_bins, windows

from sim import run
from sim.recorder import RunResult

DRAIN = "node-drain"
LEAK = "memory-leak-liveness"
EVICTION = "kubelet-eviction-vs-oom"

BUDGET = (
    'error when evicting pods/"{pod}" -n "default" (will retry after 5s): Cannot evict pod as '
    "it would violate the pod's disruption budget."
)


@functools.cache
def _run(name: str, variant: str | None = None) -> RunResult:
    return run(name, variant=variant)


def rows(result: RunResult, *kinds: str) -> list[tuple[float, str, str]]:
    """(t rounded to ms, entity, detail) of the events of ``kinds``."""
    frame = result.events
    picked = frame[frame.kind.isin(kinds)]
    return [(round(r.t, 3), r.entity, r.detail) for r in picked.itertuples()]


def times(result: RunResult, kind: str, entity: str | None = None) -> list[float]:
    return [t for t, e, _ in rows(result, kind) if entity is None or e == entity]


def shares(result: RunResult, end: float) -> list[float]:
    """Client availability per 30 s window from 0 to ``end``, to 4 decimals."""
    return [round(a, 4) for a in windows(result, 0, end)]


# --------------------------------------------------------------------------- node-drain


def test_drain_without_a_budget_evicts_both_pods_and_sheds_for_21_seconds():
    """No PDB: both pods of node-a go at 60 s, replacements ready on node-b at 81 s.

    Two replicas cannot carry 600/s: 2 423 requests are shed, every second from 60 s to 80 s;
    86.51% in [60 s, 90 s), 98.315% over the run. No restart: pods are replaced.
    """
    result = _run(DRAIN)
    assert rows(result, "drain", "scheduled", "ready") == [
        (60.0, "kubectl", "node/node-a cordoned"),
        (60.0, "kubectl", "evicting pod default/api-0"),
        (60.0, "kubectl", "evicting pod default/api-2"),
        (60.03, "kubectl", "pod/api-0 evicted"),
        (60.05, "kubectl", "pod/api-2 evicted"),
        (60.05, "kubectl", "node/node-a drained"),
        (61.03, "api-0", "Successfully assigned default/api-0 to node-b"),
        (61.05, "api-2", "Successfully assigned default/api-2 to node-b"),
        (81.03, "api-0", "Container api-0 is ready"),
        (81.05, "api-2", "Container api-2 is ready"),
        (180.0, "kubectl", "node/node-a uncordoned"),
    ]
    assert [d.split("Reason: ")[1] for _, _, d in rows(result, "terminated")] == [
        "Error, Exit Code: 143",
        "Error, Exit Code: 143",
    ]
    summary = result.summary
    assert {k: v for k, v in summary["outcomes"].items() if v} == {"ok": 141353, "shed": 2423}
    assert round(summary["availability"], 5) == 0.98315
    assert round(summary["latency_p99"] * 1000, 1) == 266.1
    assert summary["restarts"] == 0
    assert list(failing_bins(result)) == [float(t) for t in range(60, 81)]
    assert shares(result, 240) == [1.0, 1.0, 0.8651, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_drain_with_max_unavailable_1_paces_itself_and_nobody_fails():
    """``max_unavailable: 1``: api-2's eviction is refused at 60-80 s, goes through at 85 s."""
    result = _run(DRAIN, "pdb")
    drain = rows(result, "drain")
    refused = [t for t, _, d in drain if d == BUDGET.format(pod="api-2")]
    assert refused == [60.0, 65.0, 70.0, 75.0, 80.0]
    assert times(result, "ready") == [81.03, 106.041]
    assert [(t, d) for t, _, d in drain if not d.startswith("error")] == [
        (60.0, "node/node-a cordoned"),
        (60.0, "evicting pod default/api-0"),
        (60.03, "pod/api-0 evicted"),
        (85.0, "evicting pod default/api-2"),
        (85.041, "pod/api-2 evicted"),
        (85.041, "node/node-a drained"),
        (180.0, "node/node-a uncordoned"),
    ]
    assert result.summary["availability"] == 1.0
    assert round(result.summary["latency_p99"] * 1000, 1) == 94.4


def test_a_50_percent_budget_allows_what_no_budget_allows():
    """``min_available: 50%`` of 4 replicas allows 2 disruptions: the same run as no budget."""
    loose, none = _run(DRAIN, "pdb-50-percent"), _run(DRAIN)
    assert rows(loose, "drain", "scheduled", "ready") == rows(none, "drain", "scheduled", "ready")
    assert loose.summary["outcomes"] == none.summary["outcomes"]


def test_a_budget_that_allows_no_disruption_blocks_the_drain_for_good():
    """``min_available: 4``: refused for both pods every 5 s to the end; never drained."""
    result = _run(DRAIN, "pdb-too-strict")
    drain = rows(result, "drain")
    refusals = [(t, d) for t, _, d in drain if d.startswith("error when evicting")]
    assert len(refusals) == 72
    assert refusals[:2] == [(60.0, BUDGET.format(pod="api-0")), (60.0, BUDGET.format(pod="api-2"))]
    assert refusals[-1] == (235.0, BUDGET.format(pod="api-2"))
    assert [d for _, _, d in drain if not d.startswith("error")] == [
        "node/node-a cordoned",
        "node/node-a uncordoned",
    ]
    assert rows(result, "Killing", "scheduled") == []
    assert result.summary["availability"] == 1.0


def test_a_drain_without_room_leaves_one_replacement_pending_until_the_uncordon():
    """node-b fits one replacement; api-2 waits, failing to schedule, and returns to node-a."""
    result = _run(DRAIN, "no-room")
    assert times(result, "failed_scheduling", "api-2") == [61.05 + 10 * k for k in range(12)]
    assert rows(result, "scheduled") == [
        (61.03, "api-0", "Successfully assigned default/api-0 to node-b"),
        (181.05, "api-2", "Successfully assigned default/api-2 to node-a"),
    ]
    assert times(result, "ready") == [81.03, 201.05]
    assert (60.05, "kubectl", "node/node-a drained") in rows(result, "drain")
    assert result.summary["outcomes"]["shed"] == 2430
    assert round(result.summary["availability"], 5) == 0.9831


# ------------------------------------------------------------------------- memory-leak-liveness


def kills(result: RunResult) -> list[tuple[float, str, str]]:
    """(t, container, reason and exit code) of each ``terminated`` line."""
    return [
        (t, entity, detail.split("Reason: ")[1]) for t, entity, detail in rows(result, "terminated")
    ]


OOM = "OOMKilled, Exit Code: 137"
SIGTERM = "Error, Exit Code: 143"


def test_a_leak_under_a_limit_kills_both_replicas_together():
    """Baseline: memcg OOM at 143.13/143.14 s and 296.15/296.17 s, the second via back-off."""
    result = _run(LEAK)
    assert kills(result) == [
        (143.129, "orders-1", OOM),
        (143.141, "orders-0", OOM),
        (296.15, "orders-1", OOM),
        (296.166, "orders-0", OOM),
    ]
    assert times(result, "ready") == [153.129, 153.141, 316.15, 316.166]
    assert backoffs(result) == ["10s", "10s"]
    oom = result.events[result.events.kind == "oom_summary"].detail
    assert oom.str.contains("constraint=CONSTRAINT_MEMCG").all()
    assert oom.str.contains(
        r"oom_memcg=/kubepods.slice/kubepods-burstable.slice/pod-orders-\d/orders,"
    ).all()
    summary = result.summary
    assert (summary["oom_kills"], summary["restarts"], summary["evictions"]) == (4, 4, 0)
    assert {k: v for k, v in summary["outcomes"].items() if v} == {
        "ok": 66456,
        "unavailable": 5872,
        "reset": 20,
    }
    assert round(summary["availability"], 5) == 0.91856
    assert shares(result, 360)[4] == 0.7764
    assert shares(result, 360)[10] == 0.4611


def test_a_liveness_probe_alone_does_not_see_the_leak():
    """With the probe and no throttling the run is the baseline's, kill for kill."""
    probed, plain = _run(LEAK, "liveness"), _run(LEAK)
    assert kills(probed) == kills(plain)
    assert probed.summary["outcomes"] == plain.summary["outcomes"]
    unhealthy = rows(probed, "Unhealthy")
    # the probe fails only while a killed container restarts (connection refused), never kills
    assert [(t, e) for t, e, _ in unhealthy] == [
        (148.983, "orders-0"),
        (149.909, "orders-1"),
        (308.983, "orders-0"),
        (309.909, "orders-1"),
    ]
    assert all("connection refused" in d for _, _, d in unhealthy)
    assert rows(probed, "Killing") == []


def test_memory_high_throttling_turns_the_crash_into_a_brownout():
    """MemoryQoS: failures from 124 s, OOM kills later (166.89 s...), availability 69.466%."""
    result = _run(LEAK, "memory-qos")
    assert failing_bins(result).min() == 124
    assert [(t, e) for t, e, _ in kills(result)] == [
        (166.889, "orders-0"),
        (168.281, "orders-1"),
        (343.806, "orders-0"),
        (345.17, "orders-1"),
    ]
    outcomes = result.summary["outcomes"]
    assert (outcomes["shed"], outcomes["timeout"]) == (15543, 1672)
    assert round(result.summary["availability"], 5) == 0.69466
    assert shares(result, 360)[4] == 0.1603
    assert shares(result, 360)[11] == 0.0


def test_a_liveness_probe_on_the_throttled_service_restarts_it_before_the_oom_killer():
    """The probe fails on 503s, Killing at 148.98 s, a graceful exit 143 and no OOM kill."""
    result = _run(LEAK, "memory-qos-liveness")
    assert times(result, "Unhealthy", "orders-0")[:3] == [128.983, 138.983, 148.983]
    assert (
        rows(result, "Unhealthy")[0][2]
        == "Liveness probe failed: HTTP probe failed with statuscode: 503"
    )
    assert rows(result, "Killing") == [
        (148.983, "orders-0", "Container orders failed liveness probe, will be restarted"),
        (149.909, "orders-1", "Container orders failed liveness probe, will be restarted"),
        (318.983, "orders-0", "Container orders failed liveness probe, will be restarted"),
        (319.909, "orders-1", "Container orders failed liveness probe, will be restarted"),
    ]
    assert kills(result) == [
        (155.038, "orders-0", SIGTERM),
        (155.758, "orders-1", SIGTERM),
        (324.349, "orders-0", SIGTERM),
        (325.481, "orders-1", SIGTERM),
    ]
    assert (result.summary["oom_kills"], result.summary["restarts"]) == (0, 4)
    assert round(result.summary["availability"], 5) == 0.73941


def test_a_liveness_probe_shorter_than_the_start_up_kills_every_new_container():
    """Probe period 5 s x 2 failures = the 10 s start-up: killed while starting, 0% from 150 s."""
    result = _run(LEAK, "memory-qos-fast-liveness")
    killing = times(result, "Killing")
    assert killing[:2] == [129.954, 134.491]
    assert result.summary["restarts"] == 10
    assert result.summary["oom_kills"] == 0
    assert backoffs(result)[:6] == ["10s", "10s", "20s", "20s", "40s", "40s"]
    assert shares(result, 360)[5:] == [0.0] * 7
    assert round(result.summary["availability"], 5) == 0.34908
    ready = times(result, "ready")
    assert not [t for t in ready if t > 150]  # never ready again


# ---------------------------------------------------------------------- kubelet-eviction-vs-oom


def test_the_kubelet_evicts_the_leaker_first_and_its_pod_moves():
    """At the 120 s pass 46848Ki are left: sessions is evicted (1 s grace) and replaced."""
    result = _run(EVICTION)
    kubelet = [d for _, _, d in rows(result, "kubelet")]
    assert (
        '"Eviction manager: pods ranked for eviction" '
        'pods=["default/sessions-0","default/reports-0","default/web-0"]'
    ) in kubelet
    assert rows(result, "Evicted") == [
        (
            120.0,
            "kubelet",
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: "
            "46848Ki. Container sessions was using 2726Mi, request is 1Gi, has larger "
            "consumption of memory. ",
        )
    ]
    assert kills(result) == [(121.0, "sessions-0", "Evicted, Exit Code: 137")]
    assert rows(result, "scheduled", "ready", "restart") == [
        (122.0, "sessions-0", "Successfully assigned default/sessions-0 to node-b"),
        (127.0, "sessions-0", "Container sessions-0 is ready"),
    ]
    summary = result.summary
    assert (summary["evictions"], summary["oom_kills"], summary["restarts"]) == (1, 0, 0)
    assert summary["outcomes"]["dependency"] == 629
    assert list(failing_bins(result)) == [float(t) for t in range(120, 127)]
    assert shares(result, 240)[4] == 0.7866
    assert round(summary["availability"], 5) == 0.97387


def test_without_eviction_the_kernel_kills_the_leaker_and_it_restarts_in_place():
    """A memcg OOM in /kubepods.slice at 124 s: badness picks sessions; restartCount 1."""
    result = _run(EVICTION, "no-eviction")
    tasks = [
        d.split() for _, _, d in rows(result, "oom_tasks") if d.startswith("[ ") and "pid" not in d
    ]
    table = {line[-1]: (int(line[5]), int(line[8])) for line in tasks if line[-1] != "pause"}
    assert table == {"sessions": (708096, 750), "reports": (262144, 750), "web": (76800, -997)}
    summary_line = rows(result, "oom_summary")[0]
    assert summary_line[0] == 124.0
    assert "oom_memcg=/kubepods.slice,task_memcg=" in summary_line[2]
    assert "task=sessions," in summary_line[2]
    assert kills(result) == [(124.0, "sessions-0", OOM)]
    assert rows(result, "restart", "ready", "scheduled") == [
        (124.0, "sessions-0", "Restarting container sessions in pod sessions-0 (restartCount 1)"),
        (129.0, "sessions-0", "Container sessions-0 is ready"),
    ]
    summary = result.summary
    assert (summary["evictions"], summary["oom_kills"], summary["restarts"]) == (0, 1, 1)
    assert summary["outcomes"]["dependency"] == 460
    assert shares(result, 240)[4] == 0.8439
    assert round(summary["availability"], 5) == 0.98089


def test_a_leak_faster_than_the_kubelet_poll_is_left_to_the_kernel():
    """50 MiB/s: no MemoryPressure, no eviction; OOM kills every cycle, CrashLoopBackOff."""
    result = _run(EVICTION, "fast-leak")
    assert rows(result, "Evicted", "NodeHasInsufficientMemory") == []
    assert kills(result) == [(t, "sessions-0", OOM) for t in (25.0, 55.0, 95.0, 145.0, 215.0)]
    assert times(result, "restart") == [25.0, 65.0, 115.0, 185.0]
    assert backoffs(result) == ["10s", "20s", "40s", "1m20s"]
    assert rows(result, "scheduled") == []  # never moved
    summary = result.summary
    assert (summary["evictions"], summary["oom_kills"], summary["restarts"]) == (0, 5, 4)
    assert round(summary["availability"], 5) == 0.52351


def test_the_kubelet_evicts_a_low_priority_bystander_before_the_leaker():
    """Priority -10 ranks reports first at 120 s; sessions follows at 220 s, back on node-a."""
    result = _run(EVICTION, "low-priority-reports")
    evicted = rows(result, "Evicted")
    assert [t for t, _, _ in evicted] == [120.0, 220.0]
    assert "Container reports was using 1Gi, request is 256Mi" in evicted[0][2]
    assert "Container sessions was using 3815680Ki, request is 1Gi" in evicted[1][2]
    assert rows(result, "scheduled") == [
        (122.0, "reports-0", "Successfully assigned default/reports-0 to node-b"),
        (222.0, "sessions-0", "Successfully assigned default/sessions-0 to node-a"),
    ]
    assert times(result, "ready", "sessions-0") == [227.0]
    summary = result.summary
    assert (summary["evictions"], summary["oom_kills"]) == (2, 0)
    assert list(failing_bins(result)) == [float(t) for t in range(220, 227)]
    assert round(summary["availability"], 5) == 0.97092
