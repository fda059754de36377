"""OTP supervision trees over service instances, through the whole simulator (§7; V17-V20).

Each scenario below supervises one-replica services ``a``, ``b``, ``c`` (10 ms requests, idle)
with a ``supervisors:`` section, kills instances with ``crash`` faults (SIGKILL: exit reason
``{'Error',137}``), and reads the supervisors' decisions from the event log: the
``=SUPERVISOR REPORT====`` texts, the containers' ``terminated`` lines (a worker stopped by its
supervisor drains and exits 143) and the ``restart`` lines.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_service import send

from sim.scenario import Scenario, ScenarioError, load_scenario_text
from sim.service import InstanceState
from sim.world import World

IDLE = {"service_time": {"dist": "deterministic", "value": "10ms"}}


def tree(
    supervisors: list[dict[str, Any]],
    crashes: list[tuple[str, float]],
    services: tuple[str, ...] = ("a", "b", "c"),
    duration: float = 30,
) -> World:
    """A world of idle one-replica services under ``supervisors``, crashed at the given times."""
    scenario = Scenario.model_validate(
        {
            "name": "otp",
            "duration": duration,
            "hosts": [{"name": "node-a", "memory": "8Gi"}],
            "services": {name: dict(IDLE) for name in services},
            "workload": {"entry": services[0], "rate": {"profile": "constant", "rate": 0}},
            "supervisors": supervisors,
            "faults": [{"kind": "crash", "target": t, "at": at} for t, at in crashes],
        }
    )
    world = World(scenario)
    world.run()
    return world


def log(world: World, *kinds: str) -> list[tuple[float, str, str]]:
    """``(t, entity, kind)`` of the events of the given kinds (all but faults by default)."""
    frame = world.recorder.events_frame()
    rows = frame[frame.kind.isin(kinds)] if kinds else frame[~frame.kind.str.startswith("fault")]
    return [(round(r.t, 6), r.entity, r.kind) for r in rows.itertuples() if r.entity != "kubelet"]


def reports(world: World) -> list[tuple[float, str]]:
    """``(t, "errorContext: reason")`` of every SUPERVISOR REPORT."""
    frame = world.recorder.events_frame()
    rows = frame[frame.kind.str.startswith("supervisor_")]
    result = []
    for row in rows.itertuples():
        lines = dict(line.strip().split(": ", 1) for line in row.detail.splitlines()[1:])
        result.append((round(row.t, 6), f"{lines['errorContext']}: {lines['reason']}"))
    return result


def state(world: World, name: str) -> InstanceState:
    return world.services[name].instances[0].state


# --------------------------------------------------------------------------- V17 intensity


def test_v17_default_flags_restart_once_then_give_up_within_5_seconds():
    """V17: defaults (one_for_one, 1 restart in 5 s): the second crash within 5 s ends it all.

    A crash at 1 s is restarted at once; one at 5 s exceeds the intensity: the supervisor stops
    its other children and exits, and the application stops; the services stay down.
    """
    world = tree([{"name": "sup", "children": ["a", "b"]}], [("a", 1), ("a", 5)], ("a", "b"))
    assert reports(world) == [
        (1.0, "child_terminated: {'Error',137}"),
        (5.0, "child_terminated: {'Error',137}"),
        (5.0, "shutdown: reached_max_restart_intensity"),
    ]
    assert log(world) == [
        (1.0, "a-0", "terminated"),
        (1.0, "sup", "supervisor_child_terminated"),
        (1.0, "a-0", "restart"),
        (1.0, "a-0", "ready"),
        (5.0, "a-0", "terminated"),
        (5.0, "sup", "supervisor_child_terminated"),
        (5.0, "sup", "supervisor_shutdown"),
        (5.0, "b-0", "terminated"),
        (5.0, "sup", "application_exited"),
    ]
    assert state(world, "a") is state(world, "b") is InstanceState.TERMINATED
    frame = world.recorder.events_frame()
    notice = frame[frame.kind == "application_exited"].detail.item()
    assert notice == (
        "=NOTICE REPORT====\n    application: sup\n    exited: shutdown\n    type: permanent"
    )


@pytest.mark.parametrize(
    ("second", "gives_up"),
    [(6.9, True), (7.0, False)],
)
def test_v17_the_window_is_whole_seconds_and_inclusive(second: float, gives_up: bool):
    """Crashes at 1.0 s and 6.9 s are in one 5 s window (6 <= 1 + 5); 1.0 s and 7.0 s are not."""
    world = tree([{"name": "sup", "children": ["a"]}], [("a", 1), ("a", second)], ("a",))
    shutdowns = [r for r in reports(world) if r[1].startswith("shutdown")]
    assert bool(shutdowns) is gives_up
    assert (state(world, "a") is InstanceState.TERMINATED) is gives_up


def test_v17_intensity_0_gives_up_at_the_first_crash():
    """``intensity: 0``: the first restart attempt already exceeds the limit."""
    world = tree([{"name": "sup", "intensity": 0, "children": ["a"]}], [("a", 1)], ("a",))
    assert reports(world) == [
        (1.0, "child_terminated: {'Error',137}"),
        (1.0, "shutdown: reached_max_restart_intensity"),
    ]


def test_v17_intensity_3_in_10s_gives_up_at_the_fourth_crash():
    """``intensity: 3, period: 10s``: three crashes within 10 s are restarted, the fourth is not."""
    crashes = [("a", t) for t in (1, 3, 5, 7)]
    world = tree(
        [{"name": "sup", "intensity": 3, "period": "10s", "children": ["a"]}], crashes, ("a",)
    )
    assert [t for t, _, _ in log(world, "restart")] == [1, 3, 5]
    assert reports(world)[-1] == (7.0, "shutdown: reached_max_restart_intensity")
    assert world.services["a"].instances[0].restarts == 3


# --------------------------------------------------------------------------- V19 strategies


def test_v19_one_for_all_stops_the_others_in_reverse_order_and_starts_all_in_order():
    """V19: one_for_all [a, b, c], b crashes: c then a stop, then a, b, c start.

    The stopped ones drain and exit 143; the group restart counts once.
    """
    world = tree(
        [{"name": "sup", "strategy": "one_for_all", "intensity": 1, "children": ["a", "b", "c"]}],
        [("b", 1)],
    )
    assert log(world, "terminated", "restart") == [
        (1.0, "b-0", "terminated"),
        (1.0, "c-0", "terminated"),
        (1.0, "a-0", "terminated"),
        (1.0, "a-0", "restart"),
        (1.0, "b-0", "restart"),
        (1.0, "c-0", "restart"),
    ]
    supervisor = world.applications[0].root
    assert supervisor.restarts == (1,)  # type: ignore[attr-defined]
    frame = world.recorder.events_frame()
    stopped = frame[(frame.kind == "terminated") & (frame.entity != "b-0")].detail.tolist()
    assert all(line.endswith("Reason: Error, Exit Code: 143") for line in stopped)


def test_v19_rest_for_one_restarts_the_crashed_child_and_those_after_it():
    """V19: rest_for_one, b crashes: c stops; b and c start again; a is untouched."""
    world = tree(
        [{"name": "sup", "strategy": "rest_for_one", "children": ["a", "b", "c"]}], [("b", 1)]
    )
    assert log(world, "terminated", "restart") == [
        (1.0, "b-0", "terminated"),
        (1.0, "c-0", "terminated"),
        (1.0, "b-0", "restart"),
        (1.0, "c-0", "restart"),
    ]


def test_a_service_with_replicas_is_one_worker_child_per_replica():
    """A service names its replicas as children, ids ``svc-0``, ``svc-1`` in replica order."""
    scenario = Scenario.model_validate(
        {
            "name": "otp",
            "duration": 5,
            "hosts": [{"name": "node-a", "memory": "8Gi"}],
            "services": {"a": IDLE | {"replicas": 2}},
            "workload": {"entry": "a", "rate": {"profile": "constant", "rate": 0}},
            "supervisors": [{"name": "sup", "children": ["a"]}],
        }
    )
    world = World(scenario)
    world.run()
    supervisor = world.applications[0].root
    assert [(i, t) for i, _, t in supervisor.which_children()] == [  # type: ignore[attr-defined]
        ("a-1", "worker"),
        ("a-0", "worker"),
    ]


# --------------------------------------------------------------------------- V20 escalation


def escalation(restart: str) -> World:
    """P (1 restart in 5 s) supervises S (``restart``), S (intensity 0) supervises ``a``."""
    return tree(
        [
            {"name": "p", "children": [{"child": "s", "restart": restart}]},
            {"name": "s", "intensity": 0, "children": ["a"]},
        ],
        [("a", 1), ("a", 3)],
        ("a",),
    )


def test_v20_a_permanent_child_supervisor_giving_up_twice_takes_its_parent_down():
    """V20: S (permanent) gives up twice within P's 5 s: P gives up, the application stops.

    S gives up at 1 s and P restarts it (restarting ``a``); S gives up again at 3 s.
    """
    world = escalation("permanent")
    frame = world.recorder.events_frame()
    by = [
        (round(r.t, 6), r.entity, r.kind)
        for r in frame.itertuples()
        if r.kind.startswith(("supervisor_", "application"))
    ]
    assert by == [
        (1.0, "s", "supervisor_child_terminated"),
        (1.0, "s", "supervisor_shutdown"),
        (1.0, "p", "supervisor_child_terminated"),
        (3.0, "s", "supervisor_child_terminated"),
        (3.0, "s", "supervisor_shutdown"),
        (3.0, "p", "supervisor_child_terminated"),
        (3.0, "p", "supervisor_shutdown"),
        (3.0, "p", "application_exited"),
    ]
    assert [t for t, _, _ in log(world, "restart")] == [1.0]
    assert state(world, "a") is InstanceState.TERMINATED


def test_v20_a_transient_child_supervisor_is_not_restarted_after_giving_up():
    """V20: S (transient) exits ``shutdown``, a normal reason: P does not restart it.

    P reports nothing and keeps running; ``a`` stays down.
    """
    world = escalation("transient")
    assert [(t, e, k) for t, e, k in log(world) if e in ("p", "s")] == [
        (1.0, "s", "supervisor_child_terminated"),
        (1.0, "s", "supervisor_shutdown"),
    ]
    assert state(world, "a") is InstanceState.TERMINATED
    assert world.applications[0].root.running  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- requests


def test_requests_in_a_killed_worker_are_reset_and_the_restart_is_immediate():
    """Under OTP there is no back-off: the restarted replica serves again at once."""
    scenario = Scenario.model_validate(
        {
            "name": "otp",
            "duration": 10,
            "hosts": [{"name": "node-a", "memory": "8Gi"}],
            "services": {"a": {"service_time": {"dist": "deterministic", "value": "1s"}}},
            "workload": {"entry": "a", "rate": {"profile": "constant", "rate": 0}},
            "supervisors": [{"name": "sup", "children": ["a"]}],
            "faults": [{"kind": "crash", "target": "a", "at": 0.5}],
        }
    )
    world = World(scenario)
    sent = send(world, [0.0, 0.6], entry="a")
    world.run()
    assert sorted(sent) == [(0, "reset", 0.5), (1, "ok", 1.6)]


# --------------------------------------------------------------------------- validation


BASE = """\
name: otp
duration: 1m
hosts: [{name: node-a, memory: 4Gi}]
services:
  a: {service_time: {dist: exponential, mean: 20ms}}
  b: {service_time: {dist: exponential, mean: 20ms}}
workload: {entry: a, rate: {profile: constant, rate: 10/s}}
supervisors:
"""


@pytest.mark.parametrize(
    ("tail", "error"),
    [
        (
            "  - {name: sup, children: [a, nope]}\n",
            "otp.yaml:9:31: supervisors.0.children.1: "
            "unknown service or supervisor 'nope' (known: a, b, sup)",
        ),
        (
            "  - {name: s1, children: [a]}\n  - {name: s2, children: [{child: a}]}\n",
            "otp.yaml:10:35: supervisors.1.children.0.child: 'a' is already a child of 's1'",
        ),
        (
            "  - {name: s1, children: [s2]}\n  - {name: s2, children: [s1, a]}\n",
            "otp.yaml:10:27: supervisors.1.children.0: supervisors form a cycle: s1 -> s2 -> s1",
        ),
        (
            "  - {name: a, children: [b]}\n",
            "otp.yaml:9:12: supervisors.0.name: 'a' is a service's name too",
        ),
        (
            "  - {name: sup, period: 2.5s, children: [a]}\n",
            "otp.yaml:9:25: supervisors.0.period: period must be whole seconds >= 1, got 2.5s",
        ),
        (
            "  - {name: sup, strategy: simple_one_for_one, children: [a]}\n",
            "otp.yaml:9:27: supervisors.0.strategy: Input should be 'one_for_one', "
            "'one_for_all' or 'rest_for_one'",
        ),
    ],
)
def test_supervisor_mistakes_are_reported_at_their_line(tail: str, error: str):
    """Unknown, repeated or cyclic children and bad flags: one located error each."""
    with pytest.raises(ScenarioError) as raised:
        load_scenario_text(BASE + tail, "otp.yaml")
    assert str(raised.value) == error


def test_a_supervised_service_takes_no_liveness_probe():
    """Liveness and startup probes need the kubelet to restart: not under an OTP supervisor."""
    text = BASE.replace(
        "  b: {service_time: {dist: exponential, mean: 20ms}}\n",
        "  b: {service_time: {dist: exponential, mean: 20ms}, probes: {liveness: {}}}\n",
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario_text(text + "  - {name: sup, children: [b]}\n", "otp.yaml")
    assert str(raised.value) == (
        "otp.yaml:6:73: services.b.probes.liveness: b is supervised by OTP supervisor 'sup': "
        "a liveness probe needs the kubelet to restart it (readiness probes are fine)"
    )
