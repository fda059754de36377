"""Request conservation (DESIGN §2.3, §6): every arrival ends in exactly one outcome.

Hypothesis draws small random systems: a chain or fan-out of one to three services with random
replicas, workers, bounded or unbounded queues, call timeouts, optional calls, a client timeout,
memory limits tight enough to OOM-kill, and crash / error-rate / latency / host-down faults. The
users arrive for a few seconds, then the rate steps to zero and the run goes on long enough for
everything to drain. Then:

* the users' outcome columns sum to ``requests``, and ``arrivals == completed + in_flight``;
* ``in_flight_at_end`` is the number of users' requests really still inside (0 after draining);
* no request is left inside any service, and every live instance has given back every worker
  slot and emptied its queue (a leaked slot would silently shrink capacity);
* every call started on an edge ends in exactly one outcome on that edge (counted by wrapping
  ``Edge.call``), also when the calling instance dies mid-call (``reset`` on the edge).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import Scenario, World
from sim.request import OUTCOMES, Request
from sim.service import Edge, HopResult, Instance, InstanceState

ACTIVE_FOR = 4.0
"""Seconds of arrivals before the rate steps to zero."""

DRAIN = 40.0
"""Seconds of silence after that: the worst drawn backlog (~160 requests x 3 hops x 60 ms on one
worker, ~30 s) fits."""

LABELS = [o.label for o in OUTCOMES]


@st.composite
def small_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A random small scenario whose workload stops at ``ACTIVE_FOR`` and then drains."""
    n_services = draw(st.integers(1, 3))
    names = [f"s{i}" for i in range(n_services)]
    services: dict[str, Any] = {}
    for name in names:
        service: dict[str, Any] = {
            "replicas": draw(st.integers(1, 3)),
            "workers": draw(st.integers(1, 4)),
            "service_time": {
                "dist": "exponential",
                "mean": draw(st.sampled_from([0.002, 0.01, 0.02])),
            },
        }
        capacity = draw(st.none() | st.integers(0, 5))
        if capacity is not None:
            service["admission"] = {"queue": {"capacity": capacity}}
        if draw(st.booleans()):
            # a limit that a handful of requests in flight exceeds: OOM kills
            service["resources"] = {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}
            service["memory"] = {"baseline": "40Mi", "per_request": "4Mi", "per_queued": "1Mi"}
        services[name] = service
    # calls: s0 -> s1, and s0 -> s2 or s1 -> s2
    if n_services >= 2:
        services["s0"]["calls"] = [_call(draw, "s1")]
    if n_services == 3:
        caller = draw(st.sampled_from(["s0", "s1"]))
        services[caller].setdefault("calls", []).append(_call(draw, "s2"))
        if caller == "s0":
            services["s0"]["call_mode"] = draw(st.sampled_from(["sequential", "parallel"]))
    edges = [f"{a} -> {c['to']}" for a, s in services.items() for c in s.get("calls", [])]
    faults = draw(st.lists(_fault(names, edges), max_size=3))
    rate = draw(st.sampled_from([20.0, 40.0]))
    workload: dict[str, Any] = {
        "entry": "s0",
        "rate": {
            "profile": "piecewise",
            "interpolation": "step",
            "points": [{"at": 0, "rate": rate}, {"at": ACTIVE_FOR, "rate": 0}],
        },
    }
    client_timeout = draw(st.none() | st.sampled_from([0.02, 0.2]))
    if client_timeout is not None:
        workload["timeout"] = client_timeout
    return {
        "name": "conservation",
        "duration": ACTIVE_FOR + DRAIN,
        "hosts": [{"name": "node-a", "memory": "8Gi"}, {"name": "node-b", "memory": "8Gi"}],
        "services": services,
        "workload": workload,
        "faults": faults,
    }


def _call(draw: st.DrawFn, to: str) -> dict[str, Any]:
    call: dict[str, Any] = {"to": to}
    timeout = draw(st.none() | st.sampled_from([0.005, 0.03, 0.2]))
    if timeout is not None:
        call["timeout"] = timeout
    if draw(st.booleans()):
        call["optional"] = True
    if draw(st.booleans()):
        call["probability"] = 0.5
    return call


def _fault(services: list[str], edges: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    at = st.sampled_from([0.5, 1.0, 2.0, 3.5])
    duration = st.sampled_from([0.5, 1.5, 3.0])
    targets = st.sampled_from(services + edges)
    return st.one_of(
        st.builds(
            lambda t, a, n: {"kind": "crash", "target": t, "at": a, "count": n},
            st.sampled_from(services),
            at,
            st.integers(1, 2),
        ),
        st.builds(
            lambda t, a, d, r: {
                "kind": "error_rate",
                "target": t,
                "at": a,
                "duration": d,
                "rate": r,
            },
            targets,
            at,
            duration,
            st.sampled_from([0.2, 0.9]),
        ),
        st.builds(
            lambda t, a, d, f: {"kind": "latency", "target": t, "at": a, "duration": d, "add": f},
            targets,
            at,
            duration,
            st.sampled_from([0.01, 0.05]),
        ),
        st.builds(
            lambda h, a, d: {"kind": "host_down", "target": h, "at": a, "duration": d},
            st.sampled_from(["node-a", "node-b"]),
            at,
            duration,
        ),
    )


def check_conservation(world: World, drained: bool) -> None:
    """Assert the conservation laws on a world that has run."""
    result = world.run()
    summary = result.summary
    table = result.services.set_index("entity")
    for entity, row in table.iterrows():
        assert sum(int(row[label]) for label in LABELS) == row["requests"], entity
    client = table.loc["client"]
    assert summary["completed"] == client["requests"]
    assert sum(summary["outcomes"].values()) == summary["completed"]
    assert summary["arrivals"] == summary["completed"] + summary["in_flight_at_end"]
    assert summary["arrivals"] == world.workload.next_id
    # in_flight_at_end is what is really still inside, not just a difference
    assert summary["in_flight_at_end"] == world.recorder.stats["client"].in_system
    if not drained:
        return
    assert summary["in_flight_at_end"] == 0
    for name in world.services:
        assert world.recorder.stats[name].in_system == 0, f"requests stuck inside {name}"
    for service in world.services.values():
        for instance in service.instances:
            if instance.state is InstanceState.RUNNING:
                assert instance.working == 0, f"{instance.name} leaked {instance.working} workers"
                assert instance.queued == 0, f"{instance.name} has a stuck queue"


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=small_scenarios(), seed=st.integers(0, 2**16))
def test_every_arrival_ends_in_exactly_one_outcome(data: dict[str, Any], seed: int) -> None:
    """Random small systems conserve requests and drain to zero once the workload stops."""
    scenario = Scenario.model_validate(data)
    check_conservation(World(scenario, seed=seed), drained=True)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(data=small_scenarios(), seed=st.integers(0, 2**16), cut=st.sampled_from([1.0, 2.5]))
def test_conservation_holds_mid_run(data: dict[str, Any], seed: int, cut: float) -> None:
    """Stopped while requests are inside, arrivals = completed + those really still inside."""
    faults = [f for f in data["faults"] if f["at"] < cut]
    scenario = Scenario.model_validate(data | {"duration": cut, "faults": faults})
    check_conservation(World(scenario, seed=seed), drained=False)


# --------------------------------------------------------------------------- lifecycle


@st.composite
def lifecycle_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """:func:`small_scenarios` whose instances also die on schedules of the container lifecycle.

    Crash loops (exit codes 0 and 1), hangs, drains, graceful stops with short or long grace
    periods, liveness and readiness probes (on the workers or a separate port) that kill busy or
    hung replicas, CrashLoopBackOff variants, and OTP supervisors with small intensities that
    may give up for good. Everything ends before the drain window does.
    """
    data = draw(small_scenarios())
    names = list(data["services"])
    supervised = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    for name, service in data["services"].items():
        service["termination_grace_period_seconds"] = draw(st.sampled_from([0, 1, 30]))
        service["startup"] = {"delay": draw(st.sampled_from([0.0, 0.5]))}
        probes: dict[str, Any] = {}
        if draw(st.booleans()):
            probes["readiness"] = _probe(draw)
        if name not in supervised:
            service["restart"] = {
                "policy": draw(st.sampled_from(["Always", "OnFailure"])),
                "backoff": draw(st.sampled_from(["default", "reduce_default_decay"])),
            }
            if draw(st.booleans()):
                probes["liveness"] = _probe(draw)
        service["probes"] = probes
    if supervised:
        data["supervisors"] = [
            {
                "name": "sup",
                "strategy": draw(st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])),
                "intensity": draw(st.integers(0, 3)),
                "children": [
                    {"child": name, "shutdown": draw(st.sampled_from(["brutal_kill", 0.5]))}
                    for name in supervised
                ],
            }
        ]
    at = st.sampled_from([0.5, 1.0, 2.0, 3.5])
    duration = st.sampled_from([0.5, 1.5, 3.0])
    lifecycle = st.one_of(
        st.builds(
            lambda t, a, d, after, code: {
                "kind": "crash_loop",
                "target": t,
                "at": a,
                "duration": d,
                "after": after,
                "exit_code": code,
            },
            st.sampled_from(names),
            at,
            duration,
            st.sampled_from([0.0, 0.05, 0.7]),
            st.sampled_from([0, 1]),
        ),
        st.builds(
            lambda t, a, d: {"kind": "hang", "target": t, "at": a, "duration": d},
            st.sampled_from(names),
            at,
            duration,
        ),
        st.builds(
            lambda h, a, d: {"kind": "drain", "target": h, "at": a, "duration": d},
            st.sampled_from(["node-a", "node-b"]),
            at,
            duration,
        ),
    )
    data["faults"] = data["faults"] + draw(st.lists(lifecycle, min_size=1, max_size=3))
    return data


def _probe(draw: st.DrawFn) -> dict[str, Any]:
    """A fast probe (1 s period) that fails at once, on the workers or a port of its own."""
    return {
        "period_seconds": 1,
        "failure_threshold": draw(st.integers(1, 2)),
        "shares_workers": draw(st.booleans()),
    }


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=lifecycle_scenarios(), seed=st.integers(0, 2**16))
def test_requests_are_conserved_when_instances_die_mid_request(
    data: dict[str, Any], seed: int
) -> None:
    """Crash loops, hangs, drains, probe kills and supervisors conserve requests and drain.

    Whatever kills an instance with requests inside (a crash, a SIGKILL at the end of a grace
    period, a supervisor's ``brutal_kill``, a host drained under it), every arrival ends in
    exactly one outcome and nothing is left inside once the workload stops.
    """
    scenario = Scenario.model_validate(data)
    check_conservation(World(scenario, seed=seed), drained=True)


# --------------------------------------------------------------------------- edges


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count every call started on each edge, by wrapping ``Edge.call`` (and the users' call)."""
    started: Counter[str] = Counter()
    call = Edge.call
    walk_away = Edge.call_and_walk_away

    def counting_call(
        self: Edge, request: Request, caller: Instance | None = None, end: Any = None
    ) -> HopResult:
        started[self.name] += 1
        return (yield from call(self, request, caller, end))

    def counting_walk_away(self: Edge, request: Request, end: Any) -> Generator[Any, Any, None]:
        started[self.name] += 1
        yield from walk_away(self, request, end)

    monkeypatch.setattr(Edge, "call", counting_call)
    monkeypatch.setattr(Edge, "call_and_walk_away", counting_walk_away)
    return started


def _no_deaths(data: dict[str, Any]) -> dict[str, Any]:
    """The scenario without what kills instances (crash, host down, memory limits)."""
    services = {
        name: {k: v for k, v in svc.items() if k not in ("resources", "memory")}
        for name, svc in data["services"].items()
    }
    faults = [f for f in data["faults"] if f["kind"] not in ("crash", "host_down")]
    return data | {"services": services, "faults": faults}


@settings(max_examples=15, deadline=None, derandomize=True)
@given(data=small_scenarios(), seed=st.integers(0, 2**16))
def test_every_call_on_an_edge_ends_in_one_outcome(data: dict[str, Any], seed: int) -> None:
    """With no instance deaths, each edge records exactly one outcome per call started on it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        started = _count_calls(monkeypatch)
        result = World(Scenario.model_validate(_no_deaths(data)), seed=seed).run()
    table = result.services.set_index("entity")
    assert started  # the users' edge at least
    for name, calls in started.items():
        entity = "client" if name.startswith("client ->") else name
        assert table.loc[entity, "requests"] == calls, name


CALLER_DIES_MID_CALL = {
    "name": "caller-dies-mid-call",
    "duration": 10.0,
    "hosts": [{"name": "node-a", "memory": "8Gi"}],
    "services": {
        "front": {
            "workers": 4,
            "service_time": {"dist": "deterministic", "value": 0.001},
            "calls": [{"to": "back"}],
        },
        "back": {"workers": 4, "service_time": {"dist": "deterministic", "value": 0.1}},
    },
    "workload": {
        "entry": "front",
        "rate": {
            "profile": "piecewise",
            "interpolation": "step",
            "points": [{"at": 0, "rate": 20}, {"at": 2, "rate": 0}],
        },
    },
    "faults": [{"kind": "crash", "target": "front", "at": 1.0}],
}


def test_edge_records_calls_cut_short_by_the_callers_death(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls in flight when their caller is killed still end in one outcome on the edge."""
    started = _count_calls(monkeypatch)
    world = World(Scenario.model_validate(CALLER_DIES_MID_CALL), seed=1)
    result = world.run()
    table = result.services.set_index("entity")
    assert table.loc["front", "reset"] >= 1  # the crash did cut requests short
    assert result.summary["in_flight_at_end"] == 0
    assert table.loc["front -> back", "requests"] == started["front -> back"]
    assert table.loc["front -> back", "requests"] == table.loc["back", "requests"]
