"""Services, instances, edges, the load balancer, faults and rate profiles, on exact timelines.

Most tests build a tiny world with no Poisson arrivals (rate 0) and send requests by hand at
chosen instants through the users' edge, so each request's outcome and end time are exact.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim import scenario as sc
from sim.request import Request
from sim.scenario import Scenario
from sim.service import LoadBalancer, uniform_source
from sim.streams import stream
from sim.workload import rate_at, rate_bounds
from sim.world import World


def deterministic(value: str) -> dict[str, str]:
    """A constant service time."""
    return {"dist": "deterministic", "value": value}


def scenario(
    services: dict[str, Any],
    *,
    entry: str = "api",
    rate: float | str = 0,
    faults: list[dict[str, Any]] | tuple = (),
    duration: float = 10.0,
    hosts: list[dict[str, Any]] | None = None,
) -> Scenario:
    """A scenario on one 8 Gi node (unless ``hosts``) with a constant arrival rate."""
    return Scenario.model_validate(
        {
            "name": "tiny",
            "duration": duration,
            "hosts": hosts or [{"name": "node-a", "memory": "8Gi"}],
            "services": services,
            "workload": {"entry": entry, "rate": {"profile": "constant", "rate": rate}},
            "faults": list(faults),
        }
    )


def send(world: World, times: list[float], entry: str = "api") -> list[tuple[int, str, float]]:
    """Send request ``i`` at ``times[i]``; the returned log fills in ``(i, outcome, end)``."""
    env = world.env
    edge = world.edge("client", entry)
    log: list[tuple[int, str, float]] = []

    def user(rid: int, at: float):
        yield env.timeout(at)
        outcome = yield from edge.call(Request(rid, 0, env.now))
        log.append((rid, outcome.label, round(env.now, 9)))

    for rid, at in enumerate(times):
        env.process(user(rid, at))
    return log


def serving(world: World, service: str, times: list[float]) -> list[list[str]]:
    """At each of ``times``, the instances of ``service`` with a request inside."""
    env = world.env
    seen: list[list[str]] = []

    def probe():
        for at in times:
            yield env.timeout(at - env.now)
            seen.append([i.name for i in world.services[service].instances if i.active])

    env.process(probe())
    return seen


def counts(result, entity: str, *labels: str) -> tuple[int, ...]:
    """Outcome counts of one entity of the ``services`` table."""
    row = result.services.set_index("entity").loc[entity]
    return tuple(int(row[label]) for label in labels)


def kinds(result, kind: str) -> list[tuple[float, str, str]]:
    """Events of one kind as ``(t, entity, detail)``."""
    events = result.events[result.events.kind == kind]
    return [
        (round(t, 9), e, d) for t, e, d in zip(events.t, events.entity, events.detail, strict=True)
    ]


# --------------------------------------------------------------------------- worker pool, queue


def test_two_workers_serve_five_simultaneous_arrivals_in_fifo_pairs():
    """2 workers, 100 ms each, 5 arrivals at t=0: done at 0.1, 0.1, 0.2, 0.2, 0.3 in order."""
    world = World(scenario({"api": {"workers": 2, "service_time": deterministic("100ms")}}))
    log = send(world, [0, 0, 0, 0, 0])
    result = world.run()
    assert log == [(0, "ok", 0.1), (1, "ok", 0.1), (2, "ok", 0.2), (3, "ok", 0.2), (4, "ok", 0.3)]
    api = result.services.set_index("entity").loc["api"]
    assert api.latency_mean == pytest.approx((0.1 + 0.1 + 0.2 + 0.2 + 0.3) / 5)
    assert api.wait_mean == pytest.approx((0 + 0 + 0.1 + 0.1 + 0.2) / 5)  # zero for two


def test_a_freed_worker_goes_to_the_oldest_waiting_request():
    """FIFO: arrivals at 0, 0.01, 0.02 on one worker finish at 0.1, 0.2, 0.3 in arrival order."""
    world = World(scenario({"api": {"workers": 1, "service_time": deterministic("100ms")}}))
    log = send(world, [0.02, 0.01, 0.0])
    world.run()
    assert log == [(2, "ok", 0.1), (1, "ok", 0.2), (0, "ok", 0.3)]


def test_full_queue_sheds_at_once():
    """1 worker, queue capacity 1, 4 arrivals at 0: 2 shed at t=0, the others done at 0.1, 0.2."""
    world = World(
        scenario(
            {
                "api": {
                    "workers": 1,
                    "admission": {"queue": {"capacity": 1}},
                    "service_time": deterministic("100ms"),
                }
            }
        )
    )
    log = send(world, [0, 0, 0, 0])
    result = world.run()
    assert log == [(2, "shed", 0.0), (3, "shed", 0.0), (0, "ok", 0.1), (1, "ok", 0.2)]
    assert counts(result, "api", "ok", "shed") == (2, 2)
    assert counts(result, "client", "ok", "shed") == (2, 2)


def test_queue_capacity_zero_sheds_everything_beyond_the_workers():
    """Capacity 0: no waiting room; arrivals beyond the 2 workers are shed."""
    world = World(
        scenario(
            {
                "api": {
                    "workers": 2,
                    "admission": {"queue": {"capacity": 0}},
                    "service_time": deterministic("100ms"),
                }
            }
        )
    )
    log = send(world, [0, 0, 0, 0.15])
    world.run()
    assert log == [(2, "shed", 0.0), (0, "ok", 0.1), (1, "ok", 0.1), (3, "ok", 0.25)]


def test_queued_requests_are_charged_per_queued_memory():
    """Memory = baseline + per in-flight + per queued request, released when they leave."""
    world = World(
        scenario(
            {
                "api": {
                    "workers": 1,
                    "service_time": deterministic("100ms"),
                    "memory": {"baseline": "10Mi", "per_request": "2Mi", "per_queued": "1Mi"},
                }
            }
        )
    )
    send(world, [0, 0, 0])
    usage: list[int] = []

    def probe():
        for at in (0.05, 0.15, 0.25, 0.35):
            yield world.env.timeout(at - world.env.now)
            usage.append(world.services["api"].instances[0].cgroup.usage // 1024**2)

    world.env.process(probe())
    world.run()
    assert usage == [10 + 2 + 2 * 1, 10 + 2 + 1, 10 + 2, 10]


# --------------------------------------------------------------------------- calls


def two_tier(call: dict[str, Any], b_time: str = "100ms", **api: Any) -> dict[str, Any]:
    """``api`` (10 ms) calls ``b`` with ``call`` options."""
    return {
        "api": {"service_time": deterministic("10ms"), "calls": [{"to": "b", **call}], **api},
        "b": {"service_time": deterministic(b_time)},
    }


def test_call_timeout_caller_sees_timeout_callee_still_completes():
    """Timeout 50 ms on a 100 ms callee: api fails (dependency) at 0.06, b finishes ok at 0.11."""
    world = World(scenario(two_tier({"timeout": "50ms"})))
    log = send(world, [0])
    done: list[float] = []

    def watch():
        yield world.env.timeout(0.105)
        done.append(len(world.services["b"].instances[0].active))
        yield world.env.timeout(0.01)
        done.append(len(world.services["b"].instances[0].active))

    world.env.process(watch())
    result = world.run()
    assert log == [(0, "dependency", 0.06)]
    assert done == [1, 0]  # still working after the caller gave up, done by 0.115
    assert counts(result, "api -> b", "timeout") == (1,)
    assert counts(result, "b", "ok") == (1,)
    assert counts(result, "api", "dependency") == (1,)


def test_call_within_its_timeout_is_ok():
    """Timeout 150 ms on a 100 ms callee: ok at 0.11."""
    world = World(scenario(two_tier({"timeout": "150ms"})))
    log = send(world, [0])
    world.run()
    assert log == [(0, "ok", 0.11)]


def test_optional_call_failure_degrades_instead_of_failing():
    """An optional call that times out leaves the request ``degraded`` (a success) at 0.06."""
    world = World(scenario(two_tier({"timeout": "50ms", "optional": True})))
    log = send(world, [0])
    result = world.run()
    assert log == [(0, "degraded", 0.06)]
    assert counts(result, "client", "degraded", "dependency") == (1, 0)
    assert result.summary["availability"] == 1.0


def test_call_probability_zero_skips_the_call():
    """A call with probability 0 is never made: api answers ok after its own 10 ms."""
    world = World(scenario(two_tier({"probability": 0})))
    log = send(world, [0])
    result = world.run()
    assert log == [(0, "ok", 0.01)]
    assert counts(result, "b", "ok") == (0,)


def fan_out(mode: str) -> dict[str, Any]:
    """``api`` (10 ms) calls ``b`` (100 ms) and ``c`` (200 ms) in ``mode``."""
    return {
        "api": {
            "service_time": deterministic("10ms"),
            "call_mode": mode,
            "calls": [{"to": "b"}, {"to": "c"}],
        },
        "b": {"service_time": deterministic("100ms")},
        "c": {"service_time": deterministic("200ms")},
    }


def test_parallel_fan_out_takes_the_max_not_the_sum():
    """Parallel calls of 100 ms and 200 ms after 10 ms of work: done at 0.21."""
    world = World(scenario(fan_out("parallel")))
    log = send(world, [0])
    world.run()
    assert log == [(0, "ok", 0.21)]


def test_sequential_calls_take_the_sum():
    """The same calls one after the other: done at 0.31."""
    world = World(scenario(fan_out("sequential")))
    log = send(world, [0])
    world.run()
    assert log == [(0, "ok", 0.31)]


def test_parallel_fan_out_with_a_failed_required_call_is_a_dependency_failure():
    """Parallel: a 100% error edge to b makes the request fail ``dependency`` after the max."""
    world = World(
        scenario(
            fan_out("parallel"),
            faults=[{"kind": "error_rate", "target": "api -> b", "rate": 1.0, "at": 0}],
        )
    )
    log = send(world, [0])
    world.run()
    assert log == [(0, "dependency", 0.21)]


# --------------------------------------------------------------------------- crash -> reset


def test_crash_resets_requests_in_the_killed_instance_and_restarts_it():
    """Crash at 0.5 with 1 in service + 2 queued: all three end ``reset`` at 0.5; restart at 0.5."""
    world = World(
        scenario(
            {"api": {"workers": 1, "service_time": deterministic("1s")}},
            faults=[{"kind": "crash", "target": "api", "at": 0.5}],
        )
    )
    log = send(world, [0, 0, 0, 0.6])
    result = world.run()
    assert log == [(0, "reset", 0.5), (1, "reset", 0.5), (2, "reset", 0.5), (3, "ok", 1.6)]
    assert counts(result, "api", "reset", "ok") == (3, 1)
    assert kinds(result, "terminated") == [
        (0.5, "api-0", "Container api-0 terminated: Reason: Error, Exit Code: 137")
    ]
    assert kinds(result, "restart") == [
        (0.5, "api-0", "Restarting container api in pod api-0 (restartCount 1)")
    ]
    assert result.summary["restarts"] == 1


def test_caller_sees_reset_of_a_crashed_callee_as_a_dependency_failure():
    """Callee b dies mid-request: the edge counts ``reset``, api answers ``dependency``."""
    world = World(
        scenario(
            two_tier({}, b_time="1s"),
            faults=[{"kind": "crash", "target": "b", "at": 0.5}],
        )
    )
    log = send(world, [0])
    result = world.run()
    assert log == [(0, "dependency", 0.5)]
    assert counts(result, "api -> b", "reset") == (1,)
    assert counts(result, "b", "reset") == (1,)


def test_crash_with_startup_delay_makes_the_service_unavailable_meanwhile():
    """Only replica crashes at 1 s, needs 2 s to start: arrivals in between are ``unavailable``."""
    world = World(
        scenario(
            {"api": {"service_time": deterministic("10ms"), "startup": {"delay": "2s"}}},
            faults=[{"kind": "crash", "target": "api", "at": 1}],
        )
    )
    log = send(world, [0.5, 1.5, 2.9, 3.1])
    result = world.run()
    assert log == [
        (0, "ok", 0.51),
        (1, "unavailable", 1.5),
        (2, "unavailable", 2.9),
        (3, "ok", 3.11),
    ]
    assert [e for e in kinds(result, "ready") if e[0] > 0] == [
        (3.0, "api-0", "Container api-0 is ready")
    ]


def test_crash_percent_rounds_up():
    """``percent: 50%`` of 3 replicas kills 2 of them."""
    world = World(
        scenario(
            {"api": {"replicas": 3, "service_time": deterministic("10ms")}},
            faults=[{"kind": "crash", "target": "api", "at": 1, "percent": "50%"}],
        )
    )
    result = world.run()
    assert len(kinds(result, "terminated")) == 2


# --------------------------------------------------------------------------- load balancer


class Stub:
    """What the load balancer reads of an instance: its index and its requests inside."""

    def __init__(self, index: int, outstanding: int = 0) -> None:
        self.index = index
        self.name = f"i{index}"
        self.active = dict.fromkeys(range(outstanding))


def balancer(policy: str, *instances: Stub, draws: list[float] | None = None) -> LoadBalancer:
    """A load balancer over ``instances`` whose random source replays ``draws``."""
    values = iter(draws or [])
    lb = LoadBalancer(policy, lambda: next(values))
    for instance in instances:
        lb.add(instance)  # type: ignore[arg-type]
    return lb


def test_round_robin_alternates():
    """Round robin over two instances: 0, 1, 0, 1, whatever their load."""
    lb = balancer("round_robin", Stub(0, outstanding=5), Stub(1))
    assert [lb.pick().name for _ in range(4)] == ["i0", "i1", "i0", "i1"]


def test_least_outstanding_prefers_the_idle_instance():
    """least_outstanding picks the instance with fewest requests inside."""
    lb = balancer("least_outstanding", Stub(0, 2), Stub(1, 0), Stub(2, 1))
    assert [lb.pick().name for _ in range(3)] == ["i1", "i1", "i1"]


def test_least_outstanding_ties_go_round_robin():
    """With equal load the choice rotates like round robin."""
    lb = balancer("least_outstanding", Stub(0, 1), Stub(1, 1), Stub(2, 1))
    assert [lb.pick().name for _ in range(4)] == ["i0", "i1", "i2", "i0"]


def test_random_picks_with_its_draws():
    """Random: ``ready[int(u * n)]`` for each draw ``u``."""
    lb = balancer("random", Stub(0), Stub(1), Stub(2), draws=[0.9, 0.1, 0.5, 0.34])
    assert [lb.pick().name for _ in range(4)] == ["i2", "i0", "i1", "i1"]


def test_balancer_keeps_replica_order_and_drops_removed_instances():
    """Instances are kept in replica order; a removed one is never picked; none -> None."""
    a, b = Stub(0), Stub(1)
    lb = balancer("round_robin", b, a)
    assert [i.name for i in lb.ready] == ["i0", "i1"]
    lb.remove(a)  # type: ignore[arg-type]
    assert [lb.pick().name for _ in range(2)] == ["i1", "i1"]
    lb.remove(b)  # type: ignore[arg-type]
    assert lb.pick() is None


def replicas(policy: str, n: int) -> Scenario:
    """``n`` replicas of a 100 ms service behind ``policy``."""
    return scenario(
        {
            "api": {
                "replicas": n,
                "load_balancer": policy,
                "service_time": deterministic("100ms"),
            }
        }
    )


def test_round_robin_alternates_in_a_world():
    """Sequential requests to 2 replicas land on api-0, api-1, api-0, api-1."""
    world = World(replicas("round_robin", 2))
    send(world, [0, 1, 2, 3])
    seen = serving(world, "api", [0.05, 1.05, 2.05, 3.05])
    world.run()
    assert seen == [["api-0"], ["api-1"], ["api-0"], ["api-1"]]


def test_least_outstanding_in_a_world_avoids_the_busy_replica():
    """Replica 0 holds a long queue; least_outstanding sends the next requests to replica 1."""
    world = World(
        scenario(
            {
                "api": {
                    "replicas": 2,
                    "workers": 1,
                    "load_balancer": "least_outstanding",
                    "service_time": deterministic("100ms"),
                }
            }
        )
    )
    api = world.services["api"]
    log = send(world, [0.05, 0.07])
    seen = serving(world, "api", [0.06, 0.08])

    def preload():
        # three requests pinned to api-0 (straight to the instance, bypassing the balancer)
        for rid in range(3):
            world.env.process(api.instances[0].serve(Request(100 + rid, 0, 0.0)))
        yield world.env.timeout(0)

    world.env.process(preload())
    world.run()
    assert seen == [["api-0", "api-1"], ["api-0", "api-1"]]
    assert log == [(0, "ok", 0.15), (1, "ok", 0.25)]  # both on api-1, round robin would not


def test_random_balancer_uses_its_own_stream():
    """Random picks follow the ``balancer/api`` stream of the run's seed: ``int(u * 3)``."""
    world = World(replicas("random", 3), seed=5)
    times = [float(k) for k in range(8)]
    send(world, times)
    seen = serving(world, "api", [t + 0.05 for t in times])
    world.run()
    draw = uniform_source(stream(5, "balancer/api"))
    assert seen == [[f"api-{int(draw() * 3)}"] for _ in times]


# --------------------------------------------------------------------------- host down


def two_hosts(**fault: Any) -> Scenario:
    """``api`` with a replica on node-a and one on node-b; node-b goes down at 1 s for 2 s."""
    return scenario(
        {
            "api": {
                "replicas": 2,
                "placement": ["node-a", "node-b"],
                "service_time": deterministic("100ms"),
            }
        },
        hosts=[{"name": "node-a", "memory": "4Gi"}, {"name": "node-b", "memory": "4Gi"}],
        faults=[{"kind": "host_down", "target": "node-b", "at": 1, "duration": 2, **fault}],
    )


def test_host_down_terminates_its_instances_with_reason_host_down():
    """At 1 s node-b is NotReady and api-1 (on it) ends: Reason HostDown, exit 137."""
    result = World(two_hosts()).run()
    assert kinds(result, "node_not_ready") == [
        (1.0, "node-b", "Node node-b status is now: NodeNotReady")
    ]
    assert kinds(result, "terminated") == [
        (1.0, "api-1", "Container api-1 terminated: Reason: HostDown, Exit Code: 137")
    ]


def test_host_down_instances_restart_when_the_host_returns():
    """No restart while node-b is down; at 3 s it is Ready and api-1 starts afresh."""
    result = World(two_hosts()).run()
    assert kinds(result, "restart") == []
    assert kinds(result, "node_ready") == [(3.0, "node-b", "Node node-b status is now: NodeReady")]
    assert [e for e in kinds(result, "ready") if e[0] > 0] == [
        (3.0, "api-1", "Container api-1 is ready")
    ]


def test_host_down_sends_traffic_to_the_surviving_host():
    """While node-b is down every request goes to api-0; afterwards both serve again."""
    world = World(two_hosts())
    times = [1.2, 1.5, 1.8, 3.2, 3.5]
    log = send(world, times)
    seen = serving(world, "api", [t + 0.05 for t in times])
    world.run()
    assert seen == [["api-0"], ["api-0"], ["api-0"], ["api-0"], ["api-1"]]
    assert [outcome for _, outcome, _ in log] == ["ok"] * 5


def test_host_down_resets_requests_on_it():
    """A request inside api-1 when node-b goes down ends ``reset`` at that instant."""
    world = World(two_hosts())
    log = send(world, [0.9, 0.95])  # api-0 then api-1, both busy at 1.0
    world.run()
    assert sorted(log) == [(0, "ok", 1.0), (1, "reset", 1.0)]


def test_host_down_kills_the_system_processes_too():
    """Every process on the host dies, the kubelet included, and boots again with the host."""
    world = World(two_hosts())
    during: list[list[str]] = []
    alive = lambda host: [p.comm for p in world.hosts[host].processes()]  # noqa: E731
    world.env.timeout(2.0).callbacks.append(lambda _: during.append(alive("node-b")))
    world.run()
    assert during == [[]]
    assert alive("node-b") == ["kubelet", "containerd", "pause", "api"]
    assert alive("node-a") == ["kubelet", "containerd", "pause", "api"]


def test_no_restart_is_logged_while_the_host_is_down():
    """A back-off that ends while the node is down restarts nothing and logs no restart."""
    world = World(
        scenario(
            {
                "api": {
                    "resources": {"limits": {"memory": "64Mi"}},
                    "memory": {"baseline": "100Mi"},  # OOM-killed at every start
                    "service_time": deterministic("10ms"),
                }
            },
            duration=40,
            faults=[{"kind": "host_down", "target": "node-a", "at": 15, "duration": 30}],
        )
    )
    result = world.run()
    assert [t for t, _, _ in kinds(result, "restart")] == [0, 10]


def test_spread_places_zero_request_replicas_on_different_hosts():
    """``placement: spread`` of 2 replicas without requests over 2 hosts uses both hosts."""
    s = scenario(
        {"api": {"replicas": 2, "service_time": deterministic("10ms")}},
        hosts=[{"name": "node-a", "memory": "4Gi"}, {"name": "node-b", "memory": "4Gi"}],
    )
    assert sc.placements(s) == {"api": ["node-a", "node-b"]}


def test_spread_places_replicas_with_requests_on_the_emptiest_host():
    """Spread with memory requests alternates between equal hosts (LeastAllocated)."""
    s = scenario(
        {
            "api": {
                "replicas": 3,
                "resources": {"requests": {"memory": "256Mi"}},
                "service_time": deterministic("10ms"),
            }
        },
        hosts=[{"name": "node-a", "memory": "4Gi"}, {"name": "node-b", "memory": "4Gi"}],
    )
    assert sc.placements(s) == {"api": ["node-a", "node-b", "node-a"]}


# ------------------------------------------------------------------------ error, latency faults


def test_error_rate_fault_on_a_service_fails_hops_in_its_window():
    """100% errors on api from 1 s for 1 s: requests at 0.5, 1.5, 2.5 -> ok, error, ok."""
    world = World(
        scenario(
            {"api": {"service_time": deterministic("10ms")}},
            faults=[{"kind": "error_rate", "target": "api", "rate": 1.0, "at": 1, "duration": 1}],
        )
    )
    log = send(world, [0.5, 1.5, 2.5])
    result = world.run()
    assert log == [(0, "ok", 0.51), (1, "error", 1.51), (2, "ok", 2.51)]
    assert counts(result, "api", "error") == (1,)


def test_error_rate_fault_draws_from_the_service_error_stream():
    """Rate 30%: hop ``k`` fails exactly when the k-th ``errors/api`` uniform is below 0.3."""
    world = World(
        scenario(
            {"api": {"service_time": deterministic("10ms")}},
            faults=[{"kind": "error_rate", "target": "api", "rate": "30%", "at": 0}],
        ),
        seed=11,
    )
    log = send(world, [0.1 * k for k in range(40)])
    world.run()
    draw = uniform_source(stream(11, "errors/api"))
    expected = ["error" if draw() < 0.3 else "ok" for _ in range(40)]
    assert [outcome for _, outcome, _ in sorted(log)] == expected
    assert 0 < expected.count("error") < 40


def test_error_rate_fault_on_an_edge_fails_calls_before_the_callee():
    """100% errors on ``api -> b``: api answers ``dependency`` after its 10 ms; b sees nothing."""
    world = World(
        scenario(
            two_tier({}),
            faults=[{"kind": "error_rate", "target": "api -> b", "rate": 1.0, "at": 0}],
        )
    )
    log = send(world, [0])
    result = world.run()
    assert log == [(0, "dependency", 0.01)]
    assert counts(result, "api -> b", "error") == (1,)
    assert counts(result, "b", "ok", "error") == (0, 0)


def test_latency_fault_on_a_service_scales_then_adds():
    """Latency add 50 ms, factor 2 on a 100 ms service: 0.25 s during the fault, 0.1 s after."""
    world = World(
        scenario(
            {"api": {"service_time": deterministic("100ms")}},
            faults=[
                {
                    "kind": "latency",
                    "target": "api",
                    "add": "50ms",
                    "factor": 2,
                    "at": 0,
                    "duration": 1,
                }
            ],
        )
    )
    log = send(world, [0, 2])
    world.run()
    assert log == [(0, "ok", 0.25), (1, "ok", 2.1)]


def test_overlapping_latency_faults_add_delays_and_multiply_factors():
    """Two faults: (x2, +10 ms) and (x3, +20 ms) on 100 ms -> 100 * 6 + 30 = 630 ms."""
    world = World(
        scenario(
            {"api": {"service_time": deterministic("100ms")}},
            faults=[
                {"kind": "latency", "target": "api", "add": "10ms", "factor": 2, "at": 0},
                {"kind": "latency", "target": "api", "add": "20ms", "factor": 3, "at": 0},
            ],
        )
    )
    log = send(world, [0.5])
    world.run()
    assert log == [(0, "ok", 1.13)]


def test_latency_fault_on_an_edge_delays_the_call():
    """Latency add 50 ms on ``api -> b``: 10 ms + 50 ms + 100 ms = 0.16 s."""
    world = World(
        scenario(
            two_tier({}),
            faults=[{"kind": "latency", "target": "api -> b", "add": "50ms", "at": 0}],
        )
    )
    log = send(world, [0])
    result = world.run()
    assert log == [(0, "ok", 0.16)]
    assert result.services.set_index("entity").loc["api -> b"].latency_mean == pytest.approx(0.15)


def test_edge_latency_counts_against_the_call_timeout():
    """An injected 50 ms edge delay pushes a 100 ms callee past an 120 ms timeout."""
    world = World(
        scenario(
            two_tier({"timeout": "120ms"}),
            faults=[{"kind": "latency", "target": "api -> b", "add": "50ms", "at": 0}],
        )
    )
    log = send(world, [0])
    world.run()
    assert log == [(0, "dependency", 0.13)]


def test_factor_latency_fault_on_an_edge_is_rejected():
    """An edge has no service time to scale: ``factor`` on ``a -> b`` fails validation."""
    with pytest.raises(sc.CrossReferenceError, match="on an edge use add"):
        scenario(
            two_tier({}),
            faults=[{"kind": "latency", "target": "api -> b", "factor": 3, "at": 0}],
        )


# --------------------------------------------------------------------------- traffic surge


def surge_run(with_surge: bool):
    """100/s for 20 s, optionally x3 between 5 s and 15 s."""
    faults = [{"kind": "traffic_surge", "factor": 3, "at": 5, "duration": 10}] if with_surge else []
    s = scenario(
        {"api": {"service_time": deterministic("1ms")}}, rate=100, duration=20, faults=faults
    )
    return World(s, seed=3).run()


def client_per_second(result) -> list[int]:
    """Finished client requests per 1 s bin."""
    ts = result.timeseries
    rows = ts[(ts.entity == "client") & (ts.metric == "rate.ok")]
    return [round(v) for v in rows.value]


def test_traffic_surge_raises_arrivals_by_its_factor_in_its_window_only():
    """x3 in [5, 15): outside the window the very same arrivals; inside about three times."""
    base, surged = surge_run(False), surge_run(True)
    before, after = client_per_second(base), client_per_second(surged)
    outside = [*range(0, 5), *range(16, 20)]  # bin 15 may finish surge requests of 14.999
    assert [after[i] for i in outside] == [before[i] for i in outside]
    inside_base, inside_surge = sum(before[5:15]), sum(after[5:15])
    assert inside_surge / inside_base == pytest.approx(3, rel=0.1)
    assert surged.summary["arrivals"] - base.summary["arrivals"] == pytest.approx(2000, rel=0.1)


def test_traffic_surge_below_1_drops_arrivals():
    """Factor 0.5: about half of the window's arrivals are dropped; outside nothing changes."""
    base = World(
        scenario({"api": {"service_time": deterministic("1ms")}}, rate=100, duration=20), seed=3
    ).run()
    thinned = World(
        scenario(
            {"api": {"service_time": deterministic("1ms")}},
            rate=100,
            duration=20,
            faults=[{"kind": "traffic_surge", "factor": 0.5, "at": 5, "duration": 10}],
        ),
        seed=3,
    ).run()
    before, after = client_per_second(base), client_per_second(thinned)
    assert before[:5] == after[:5]
    assert before[16:] == after[16:]
    assert sum(after[5:15]) / sum(before[5:15]) == pytest.approx(0.5, rel=0.12)


def test_constant_rate_arrivals_match_the_rate():
    """100/s for 20 s gives about 2000 arrivals, each ending in one outcome."""
    result = surge_run(False)
    assert result.summary["arrivals"] == pytest.approx(2000, rel=0.07)
    assert (
        result.summary["completed"] + result.summary["in_flight_at_end"]
        == (result.summary["arrivals"])
    )


# --------------------------------------------------------------------------- rate profiles


def profile(data: dict[str, Any]):
    """A validated rate profile."""
    return Scenario.model_validate(
        {
            "name": "p",
            "duration": 1,
            "hosts": [{"name": "n", "memory": "1Gi"}],
            "services": {"api": {"service_time": deterministic("1ms")}},
            "workload": {"entry": "api", "rate": data},
        }
    ).workload.rate


def test_constant_profile():
    """Constant: the same rate at every time; bound = rate."""
    p = profile({"profile": "constant", "rate": "300/s"})
    assert [rate_at(p, t) for t in (0, 10, 1e6)] == [300, 300, 300]
    assert rate_bounds(p) == 300


def test_step_profile():
    """Step: base, then each step from its ``at`` on (steps given out of order still sort)."""
    p = profile(
        {
            "profile": "step",
            "base": 10,
            "steps": [{"at": "2m", "rate": 5}, {"at": "1m", "rate": 40}],
        }
    )
    assert [rate_at(p, t) for t in (0, 59.9, 60, 119, 120, 500)] == [10, 10, 40, 40, 5, 5]
    assert rate_bounds(p) == 40


def test_ramp_profile():
    """Ramp: ``from`` until start, linear to ``to`` at end, then ``to``."""
    p = profile({"profile": "ramp", "from": 10, "to": 110, "start": 10, "end": 20})
    assert [rate_at(p, t) for t in (0, 10, 15, 17.5, 20, 30)] == [10, 10, 60, 85, 110, 110]
    assert rate_bounds(p) == 110
    down = profile({"profile": "ramp", "from": 50, "to": 0, "end": 10})
    assert [rate_at(down, t) for t in (0, 5, 10)] == [50, 25, 0]
    assert rate_bounds(down) == 50


def test_spike_profile():
    """Spike: peak during [at, at + duration), base otherwise."""
    p = profile({"profile": "spike", "base": 10, "peak": 100, "at": 5, "duration": 2})
    assert [rate_at(p, t) for t in (4.99, 5, 6.99, 7)] == [10, 100, 100, 10]
    assert rate_bounds(p) == 100


def test_sine_profile():
    """Sine: base + amplitude sin(2 pi t / period), floored at 0; bound base + amplitude."""
    p = profile({"profile": "sine", "base": 100, "amplitude": 50, "period": 40})
    assert rate_at(p, 0) == pytest.approx(100)
    assert rate_at(p, 10) == pytest.approx(150)
    assert rate_at(p, 30) == pytest.approx(50)
    assert rate_bounds(p) == 150
    deep = profile({"profile": "sine", "base": 10, "amplitude": 50, "period": 40})
    assert rate_at(deep, 30) == 0.0


def test_piecewise_linear_profile():
    """Piecewise linear: held before the first and after the last point, joined linearly."""
    p = profile(
        {
            "profile": "piecewise",
            "points": [{"at": 10, "rate": 0}, {"at": 20, "rate": 100}, {"at": 30, "rate": 50}],
        }
    )
    assert [rate_at(p, t) for t in (0, 10, 15, 20, 25, 30, 99)] == [0, 0, 50, 100, 75, 50, 50]
    assert rate_bounds(p) == 100


def test_piecewise_step_profile():
    """Piecewise with ``interpolation: step``: each rate holds until the next point."""
    p = profile(
        {
            "profile": "piecewise",
            "interpolation": "step",
            "points": [{"at": 0, "rate": 5}, {"at": 10, "rate": 20}],
        }
    )
    assert [rate_at(p, t) for t in (0, 9.99, 10, 50)] == [5, 5, 20, 20]
    assert rate_bounds(p) == 20


def test_profile_types_are_the_scenario_models():
    """Profiles are the scenario's pydantic models (``sim.scenario``)."""
    assert isinstance(profile({"profile": "constant", "rate": 1}), sc.ConstantRate)
    assert math.isfinite(rate_bounds(profile({"profile": "constant", "rate": 1})))
