"""Faults that act on the container lifecycle, and OTP restart types on real exits.

crash_loop, drain with PodDisruptionBudgets, long host outages. References: semantics §4
(restart policy, CrashLoopBackOff), §7.2 (restart types), §12 V10 and V18; kubectl drain and
the Eviction API for the drain; the node lifecycle controller's taint-based eviction for hosts
that stay down.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from test_service import send

from sim.scenario import PodDisruptionBudget, Scenario
from sim.service import InstanceState
from sim.world import UNREACHABLE_EVICTION, World

FAST = {"service_time": {"dist": "deterministic", "value": "10ms"}}


def world_of(
    services: dict[str, Any],
    faults: list[dict[str, Any]],
    duration: float,
    hosts: int = 1,
    **extra: Any,
) -> World:
    scenario = Scenario.model_validate(
        {
            "name": "lifecycle",
            "duration": duration,
            "hosts": [{"name": f"node-{c}", "memory": "8Gi"} for c in "abc"[:hosts]],
            "services": services,
            "workload": {"entry": next(iter(services)), "rate": {"profile": "constant", "rate": 0}},
            "faults": faults,
        }
        | extra
    )
    world = World(scenario)
    world.run()
    return world


def rows(world: World, *kinds: str) -> list[tuple[float, str, str]]:
    frame = world.recorder.events_frame()
    selected = frame[frame.kind.isin(kinds)]
    return [(round(r.t, 6), r.entity, r.detail) for r in selected.itertuples()]


def times(world: World, kind: str) -> list[float]:
    return [t for t, _, _ in rows(world, kind)]


# --------------------------------------------------------------------------- V10 crash loop


def test_v10_a_container_exiting_1s_after_each_start_backs_off_0_10_20_40_80_160_300_300():
    """V10 in the simulator: exits 1 s after each start, restartPolicy Always.

    Back-off before restarts 1..8: 0, 10, 20, 40, 80, 160, 300, 300 s, each announced by the
    kubelet's BackOff event and the Waiting message; after the fault ends (900 s) the next
    start runs.
    """
    world = world_of(
        {"app": FAST},
        [{"kind": "crash_loop", "target": "app", "at": 0, "after": 1, "duration": 900}],
        1000,
    )
    exits = times(world, "terminated")
    restarts = times(world, "restart")
    assert [b - a for a, b in zip(exits, restarts, strict=False)] == [
        0,
        10,
        20,
        40,
        80,
        160,
        300,
        300,
    ]
    assert restarts == [1, 12, 33, 74, 155, 316, 617, 918]
    instance = world.services["app"].instances[0]
    pod = f"app-0_default({instance.uid})"
    assert {d for _, _, d in rows(world, "terminated")} == {
        "Container app-0 terminated: Reason: Error, Exit Code: 1"
    }
    assert {d for _, _, d in rows(world, "backoff")} == {
        f"Back-off restarting failed container app in pod {pod}"
    }
    waiting = [d.split("Message: ")[1] for _, _, d in rows(world, "waiting")]
    assert waiting[2] == f"back-off 40s restarting failed container=app pod={pod}"
    assert [w.split()[1] for w in waiting] == [
        "10s",
        "20s",
        "40s",
        "1m20s",
        "2m40s",
        "5m0s",
        "5m0s",
    ]
    assert instance.state is InstanceState.RUNNING
    assert instance.restarts == 8


def test_v10_eleven_minutes_of_running_forget_the_back_off():
    """V10: after a run of 11 minutes the next crash restarts at once, and the one after in 10 s.

    The first loop ends with a start at 918 s; a second loop begins at 918 + 660 s.
    """
    loops = [
        {"kind": "crash_loop", "target": "app", "at": 0, "after": 1, "duration": 900},
        {"kind": "crash_loop", "target": "app", "at": 1578, "after": 1, "duration": 20},
    ]
    world = world_of({"app": FAST}, loops, 1600)
    late = [t for t in times(world, "restart") if t > 1000]
    assert late == [1579, 1590]


@pytest.mark.parametrize(
    ("policy", "exit_code", "restarted"),
    [("OnFailure", 0, False), ("OnFailure", 1, True), ("Never", 1, False), ("Always", 0, True)],
)
def test_v10_restart_policy_against_the_exit_code(policy: str, exit_code: int, restarted: bool):
    """OnFailure restarts non-zero exits only (exit 0 is ``Completed``); Never restarts none."""
    world = world_of(
        {"app": FAST | {"restart": {"policy": policy}}},
        [{"kind": "crash_loop", "target": "app", "at": 1, "after": 1, "exit_code": exit_code}],
        5,
    )
    reason = "Completed" if exit_code == 0 else "Error"
    assert rows(world, "terminated")[0] == (
        2.0,
        "app-0",
        f"Container app-0 terminated: Reason: {reason}, Exit Code: {exit_code}",
    )
    assert bool(times(world, "restart")) is restarted


def test_crash_loop_hits_only_the_chosen_replicas():
    """``count: 1`` of three replicas: one crash-loops, the others never exit."""
    world = world_of(
        {"app": FAST | {"replicas": 3}},
        [{"kind": "crash_loop", "target": "app", "at": 0, "after": 2, "count": 1}],
        30,
    )
    assert len({entity for _, entity, _ in rows(world, "terminated")}) == 1


# --------------------------------------------------------------------------- drain and PDBs


@pytest.mark.parametrize(
    ("budget", "replicas", "desired"),
    [
        ({"min_available": 2}, 3, 2),
        ({"min_available": "50%"}, 3, 2),  # 1.5 rounded up
        ({"max_unavailable": 1}, 3, 2),
        ({"max_unavailable": "50%"}, 3, 1),  # 3 - ceil(1.5)
        ({"max_unavailable": "0%"}, 4, 4),
    ],
)
def test_pdb_desired_healthy_rounds_percentages_up(
    budget: dict[str, Any], replicas: int, desired: int
):
    """The disruption controller's arithmetic (GetScaledValueFromIntOrPercent, roundUp)."""
    assert PodDisruptionBudget.model_validate(budget).desired_healthy(replicas) == desired


@pytest.mark.parametrize(
    "budget", [{}, {"min_available": 1, "max_unavailable": 1}, {"min_available": "half"}]
)
def test_pdb_takes_exactly_one_count_or_percentage(budget: dict[str, Any]):
    """One of min_available and max_unavailable, each a count or ``N%``."""
    with pytest.raises(ValidationError):
        PodDisruptionBudget.model_validate(budget)


def drained(pdb: dict[str, Any] | None) -> World:
    """Three 8 s-to-start replicas, two on node-a, drained at 10 s."""
    app = FAST | {
        "replicas": 3,
        "placement": ["node-a", "node-a", "node-b"],
        "startup": {"delay": "8s"},
    }
    if pdb is not None:
        app["pdb"] = pdb
    return world_of(
        {"app": app}, [{"kind": "drain", "target": "node-a", "at": 10, "duration": 60}], 80, hosts=2
    )


def test_drain_honours_the_disruption_budget():
    """A drain with ``max_unavailable: 1`` evicts one pod at a time.

    app-0 is evicted at 10 s (stops at once: idle, exit 143) and replaced on node-b 1 s later;
    app-1's eviction is refused until app-0's replacement is ready (19 s), so the retry at 20 s
    goes through. The node is uncordoned when the fault ends.
    """
    world = drained({"max_unavailable": 1})
    budget = (
        'error when evicting pods/"app-1" -n "default" (will retry after 5s): '
        "Cannot evict pod as it would violate the pod's disruption budget."
    )
    assert rows(world, "drain", "scheduled", "ready") == [
        (10.0, "kubectl", "node/node-a cordoned"),
        (10.0, "kubectl", "evicting pod default/app-0"),
        (10.0, "kubectl", budget),
        (10.0, "kubectl", "pod/app-0 evicted"),
        (11.0, "app-0", "Successfully assigned default/app-0 to node-b"),
        (15.0, "kubectl", budget),
        (19.0, "app-0", "Container app-0 is ready"),
        (20.0, "kubectl", "evicting pod default/app-1"),
        (20.0, "kubectl", "pod/app-1 evicted"),
        (20.0, "kubectl", "node/node-a drained"),
        (21.0, "app-1", "Successfully assigned default/app-1 to node-b"),
        (29.0, "app-1", "Container app-1 is ready"),
        (70.0, "kubectl", "node/node-a uncordoned"),
    ]
    assert [i.host.name for i in world.services["app"].instances] == ["node-b"] * 3
    assert times(world, "restart") == []  # replaced, not restarted in place


def test_drain_without_a_budget_evicts_everything_at_once():
    """No PodDisruptionBudget: both pods on node-a go at 10 s."""
    world = drained(None)
    assert [t for t, _, d in rows(world, "drain") if d.startswith("evicting")] == [10.0, 10.0]


def test_an_evicted_pod_drains_its_requests_before_it_goes():
    """A drain is graceful: requests inside the evicted pod finish (SIGTERM, exit 143)."""
    app = {"service_time": {"dist": "deterministic", "value": "3s"}, "replicas": 2}
    world = World(
        Scenario.model_validate(
            {
                "name": "drain",
                "duration": 20,
                "hosts": [{"name": "node-a", "memory": "8Gi"}, {"name": "node-b", "memory": "8Gi"}],
                "services": {"app": app},
                "workload": {"entry": "app", "rate": {"profile": "constant", "rate": 0}},
                "faults": [{"kind": "drain", "target": "node-a", "at": 1}],
            }
        )
    )
    sent = send(world, [0.0, 0.0], entry="app")
    world.run()
    assert sorted(sent) == [(0, "ok", 3.0), (1, "ok", 3.0)]
    assert rows(world, "terminated") == [
        (3.0, "app-0", "Container app-0 terminated: Reason: Error, Exit Code: 143")
    ]


# --------------------------------------------------------------------------- host outages


@pytest.mark.parametrize(("down_for", "replaced"), [(300, False), (400, True)])
def test_pods_of_a_host_down_past_the_unreachable_toleration_move(down_for: float, replaced: bool):
    """A host down for less than 340 s gets its pods back; longer, they are replaced elsewhere.

    340 s = node-monitor-grace-period 40 s + the default 300 s toleration of
    ``node.kubernetes.io/unreachable``.
    """
    world = world_of(
        {"app": FAST | {"replicas": 2}},
        [{"kind": "host_down", "target": "node-b", "at": 10, "duration": down_for}],
        500,
        hosts=2,
    )
    evictions = rows(world, "TaintManagerEviction")
    if replaced:
        assert evictions == [
            (10 + UNREACHABLE_EVICTION, "app-1", "Marking for deletion Pod default/app-1")
        ]
        assert rows(world, "scheduled") == [
            (11 + UNREACHABLE_EVICTION, "app-1", "Successfully assigned default/app-1 to node-a")
        ]
    else:
        assert evictions == []
    host = world.services["app"].instances[1].host.name
    assert host == ("node-a" if replaced else "node-b")


# --------------------------------------------------------------------------- V18 restart types


@pytest.mark.parametrize(
    ("restart", "exit_code", "restarted", "reported"),
    [
        ("transient", 0, False, False),  # normal: not restarted, not counted
        ("transient", 1, True, True),  # abnormal: restarted
        ("temporary", 1, False, True),  # never restarted (reported)
        ("permanent", 0, True, True),  # always restarted, counted
    ],
)
def test_v18_restart_types_on_real_exits(
    restart: str, exit_code: int, restarted: bool, reported: bool
):
    """V18: exit code 0 is ``normal``; transient restarts abnormal exits only, temporary none."""
    world = world_of(
        {"a": FAST},
        [
            {
                "kind": "crash_loop",
                "target": "a",
                "at": 1,
                "after": 1,
                "duration": 1,
                "exit_code": exit_code,
            }
        ],
        10,
        supervisors=[{"name": "sup", "children": [{"child": "a", "restart": restart}]}],
    )
    assert bool(times(world, "restart")) is restarted
    reports = rows(world, "supervisor_child_terminated")
    assert bool(reports) is reported
    if reported:
        reason = "normal" if exit_code == 0 else "{'Error',1}"
        assert f"reason: {reason}" in reports[0][2]
