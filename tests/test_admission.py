"""Server-side admission, deadline propagation and the call-path faults, on exact timelines.

Tiny worlds with deterministic service times and no Poisson arrivals: requests are sent by hand
through the users' edge at chosen instants (``send``), so every outcome and end time is exact.
``api`` has one worker and takes 100 ms (unless said otherwise); the queue sits in front of it.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim.request import Request
from sim.scenario import CrossReferenceError, Scenario, ScenarioError, load_scenario_text
from sim.service import Instance
from sim.world import World


def deterministic(value: str) -> dict[str, str]:
    """A constant service time."""
    return {"dist": "deterministic", "value": value}


def world_of(
    admission: dict[str, Any] | None = None,
    *,
    api: dict[str, Any] | None = None,
    services: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
    faults: list[dict[str, Any]] | tuple = (),
    duration: float = 3.0,
) -> World:
    """``api`` (1 worker, 100 ms, ``admission``) and any other ``services``, on one node."""
    api_config: dict[str, Any] = {"workers": 1, "service_time": deterministic("100ms")}
    if admission is not None:
        api_config["admission"] = admission
    api_config.update(api or {})
    return World(
        Scenario.model_validate(
            {
                "name": "admission",
                "duration": duration,
                "hosts": [{"name": "node-a", "memory": "8Gi"}],
                "services": {"api": api_config, **(services or {})},
                "workload": {
                    "entry": "api",
                    "rate": {"profile": "constant", "rate": 0},
                    **(workload or {}),
                },
                "faults": list(faults),
            }
        )
    )


def send(
    world: World, times: list[float], classes: list[int] | None = None
) -> list[tuple[int, str, float]]:
    """Send request ``i`` at ``times[i]``, of class ``classes[i]``; log ``(i, outcome, end)``."""
    env = world.env
    edge = world.edge("client", "api")
    log: list[tuple[int, str, float]] = []

    def user(rid: int, at: float, cls: int):
        yield env.timeout(at)
        outcome = yield from edge.call(Request(rid, cls, env.now))
        log.append((rid, outcome.label, round(env.now, 9)))

    for rid, at in enumerate(times):
        env.process(user(rid, at, 0 if classes is None else classes[rid]))
    return log


def count(result, entity: str, label: str) -> int:
    """One outcome count of one entity (service or edge) over the run."""
    frame = result.services.set_index("entity")
    return int(frame.loc[entity][label])


def series(result, entity: str, metric: str) -> list[float]:
    """One gauge's values, bin by bin."""
    ts = result.timeseries
    rows = ts[(ts.entity == entity) & (ts.metric == metric)].sort_values("t")
    return [float(v) for v in rows.value]


FIVE = [0.0, 0.01, 0.02, 0.03, 0.04]
"""Five arrivals 10 ms apart at a one-worker, 100 ms server: one in service, four waiting."""


# --------------------------------------------------------------------------- fast path


def test_plain_fifo_keeps_the_fast_path():
    """Plain fifo and reject_new without priority, rate or concurrency limit: no admission state."""
    for discipline in ("fifo", "reject_new"):
        world = world_of({"queue": {"capacity": 2, "discipline": discipline}})
        assert world.services["api"].admission is None
        world.run()
        instance: Instance = world.services["api"].instances[0]
        assert instance.admission is None


# --------------------------------------------------------------------------- disciplines


@pytest.mark.parametrize("discipline", ["fifo", "reject_new"])
def test_fifo_rejects_new_arrivals_when_full(discipline: str):
    world = world_of({"queue": {"capacity": 2, "discipline": discipline}})
    log = send(world, FIVE)
    result = world.run()
    assert sorted(log, key=lambda e: e[2]) == [
        (3, "shed", 0.03),
        (4, "shed", 0.04),
        (0, "ok", 0.1),
        (1, "ok", 0.2),
        (2, "ok", 0.3),
    ]
    assert count(result, "api", "shed") == 2


def test_drop_oldest_evicts_the_head_of_a_full_queue():
    world = world_of({"queue": {"capacity": 2, "discipline": "drop_oldest"}})
    log = send(world, FIVE)
    result = world.run()
    assert sorted(log, key=lambda e: e[2]) == [
        (1, "shed", 0.03),
        (2, "shed", 0.04),
        (0, "ok", 0.1),
        (3, "ok", 0.2),
        (4, "ok", 0.3),
    ]
    assert series(result, "api", "queue_evicted")[0] == 2
    assert count(result, "api", "shed") == 2


def test_lifo_serves_the_newest_first():
    world = world_of({"queue": {"capacity": 2, "discipline": "lifo"}})
    log = send(world, FIVE)
    world.run()
    assert sorted(log, key=lambda e: e[2]) == [
        (3, "shed", 0.03),
        (4, "shed", 0.04),
        (0, "ok", 0.1),
        (2, "ok", 0.2),
        (1, "ok", 0.3),
    ]


def test_adaptive_lifo_switches_to_lifo_once_a_queue_stands():
    """FIFO at 0.1 s (the queue formed 90 ms ago, under the 100 ms interval), LIFO at 0.2 s."""
    world = world_of({"queue": {"capacity": 3, "discipline": "adaptive_lifo"}})
    log = send(world, FIVE)
    world.run()
    assert sorted(log, key=lambda e: e[2]) == [
        (4, "shed", 0.04),
        (0, "ok", 0.1),
        (1, "ok", 0.2),
        (3, "ok", 0.3),
        (2, "ok", 0.4),
    ]


def test_codel_drops_at_dequeue_after_an_interval_above_target():
    """RFC 8289 CoDel on an exact timeline.

    1 dequeued at 0.1 s (sojourn 90 ms >= 5 ms: first_above = 0.2 s); at 0.2 s the
    sojourn is still above target -> dropping: 2 is dropped, 3 served (drop_next = 0.3 s); at
    0.3 s 4 is dropped, 5 served; at 0.4 s 6 is the last ticket (maxpacket): served.
    """
    world = world_of({"queue": {"discipline": "codel"}})
    log = send(world, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    result = world.run()
    assert sorted(log, key=lambda e: e[2]) == [
        (0, "ok", 0.1),
        (1, "ok", 0.2),
        (2, "shed", 0.2),
        (3, "ok", 0.3),
        (4, "shed", 0.3),
        (5, "ok", 0.4),
        (6, "ok", 0.5),
    ]
    assert series(result, "api", "codel_dropped")[0] == 2


def test_priority_shedding_keeps_critical_requests():
    """A critical arrival displaces a queued sheddable one; a sheddable arrival is rejected."""
    world = world_of(
        {"queue": {"capacity": 1, "priority": True}},
        workload={"classes": [{"name": "browse"}, {"name": "checkout", "critical": True}]},
    )
    log = send(world, [0.0, 0.01, 0.02, 0.03, 0.04], classes=[0, 0, 1, 0, 1])
    world.run()
    assert sorted(log, key=lambda e: (e[2], e[0])) == [
        (1, "shed", 0.02),
        (3, "shed", 0.03),
        (4, "shed", 0.04),  # critical behind critical: the full queue rejects the arrival
        (0, "ok", 0.1),
        (2, "ok", 0.2),
    ]


# --------------------------------------------------------------------------- worker partitions

CLASSES = {"classes": [{"name": "browse"}, {"name": "checkout"}]}


def test_a_worker_partition_keeps_threads_for_its_class():
    """A partition is a server-side bulkhead: checkout keeps its worker amid a browse flood.

    3 workers, 1 kept for checkout: the flood fills the other 2 and queues (capacity 2, then
    shed); checkout arriving amid it is served at once on its own worker.
    """
    world = world_of(
        {"queue": {"capacity": 2}, "partitions": [{"classes": ["checkout"], "workers": 1}]},
        api={"workers": 3},
        workload=CLASSES,
    )
    log = send(world, [0.0] * 5 + [0.01, 0.02], classes=[0] * 5 + [1, 1])
    world.run()
    assert sorted(log, key=lambda e: (e[2], e[0])) == [
        (4, "shed", 0.0),  # browse: 2 in service, 2 queued, the 5th shed
        (0, "ok", 0.1),
        (1, "ok", 0.1),
        (5, "ok", 0.11),  # checkout: its own worker, no wait behind browse
        (2, "ok", 0.2),
        (3, "ok", 0.2),
        (6, "ok", 0.21),  # the second checkout queued behind the first, in its own queue
    ]


def test_without_a_partition_checkout_waits_behind_the_flood():
    """The same traffic on 3 shared workers: checkout queues behind browse, then is shed."""
    world = world_of({"queue": {"capacity": 2}}, api={"workers": 3}, workload=CLASSES)
    log = send(world, [0.0] * 5 + [0.01, 0.02], classes=[0] * 5 + [1, 1])
    world.run()
    outcome = {rid: (label, end) for rid, label, end in log}
    assert outcome[5] == ("shed", 0.01)
    assert outcome[6] == ("shed", 0.02)


@pytest.mark.parametrize(
    ("partitions", "message"),
    [
        (
            [{"classes": ["chekout"], "workers": 1}],
            "services.api.admission.partitions.0.classes.0: unknown request class 'chekout'"
            " (known: browse, checkout)",
        ),
        (
            [{"classes": ["checkout"], "workers": 1}, {"classes": ["checkout"], "workers": 1}],
            "services.api.admission.partitions.1.classes.0: request class 'checkout' is in two"
            " partitions",
        ),
        (
            [{"classes": ["checkout"], "workers": 3}],
            "services.api.admission.partitions: partitions keep all 3 workers: none left for the"
            " other classes",
        ),
        (
            [{"classes": ["checkout"], "workers": 4}],
            "services.api.admission.partitions: partitions keep 4 workers, more than the"
            " service's 3",
        ),
    ],
)
def test_partitions_are_checked(partitions: list[dict[str, Any]], message: str):
    """A partition names known classes, each once, and leaves workers for the others."""
    with pytest.raises(CrossReferenceError) as caught:
        world_of({"partitions": partitions}, api={"workers": 3}, workload=CLASSES)
    assert str(caught.value).endswith(message)


# --------------------------------------------------------------------------- rate limits


def test_token_bucket_refuses_with_rate_limited():
    """10/s, burst 2: two of five simultaneous requests pass; 100 ms later one token is back."""
    world = world_of(
        {"rate_limit": {"kind": "token_bucket", "rate": "10/s", "burst": 2}},
        api={"workers": 10},
    )
    log = send(world, [0.0] * 5 + [0.1, 0.1])
    result = world.run()
    assert sorted(log, key=lambda e: (e[2], e[0])) == [
        (2, "rate_limited", 0.0),
        (3, "rate_limited", 0.0),
        (4, "rate_limited", 0.0),
        (0, "ok", 0.1),
        (1, "ok", 0.1),
        (6, "rate_limited", 0.1),
        (5, "ok", 0.2),
    ]
    assert count(result, "api", "rate_limited") == 4
    assert series(result, "api", "rate_limit_refused")[0] == 4
    assert series(result, "api", "rate_limit_available")[:2] == [2.0, 2.0]


def test_resilience4j_rate_limiter_waits_for_a_reserved_permission():
    """resilience4j RateLimiter, 1 permission per second.

    With timeout 0 the second call in the cycle is refused at once; with a
    1 s timeout it waits for the next cycle (1.0 s) and is served then.
    """
    world = world_of(
        {
            "rate_limit": {
                "kind": "resilience4j",
                "limit_for_period": 1,
                "limit_refresh_period": "1s",
                "timeout_duration": 0,
            }
        },
        api={"workers": 10},
    )
    log = send(world, [0.0, 0.5, 1.0])
    world.run()
    assert sorted(log, key=lambda e: e[2]) == [
        (0, "ok", 0.1),
        (1, "rate_limited", 0.5),
        (2, "ok", 1.1),
    ]
    world = world_of(
        {
            "rate_limit": {
                "kind": "resilience4j",
                "limit_for_period": 1,
                "limit_refresh_period": "1s",
                "timeout_duration": "1s",
            }
        },
        api={"workers": 10},
    )
    log = send(world, [0.0, 0.5])
    world.run()
    assert sorted(log, key=lambda e: e[2]) == [(0, "ok", 0.1), (1, "ok", 1.1)]


def test_client_side_rate_limiter_sits_inside_the_breaker():
    """A call's rate_limiter refuses with rate_limited; order may leave it out."""
    world = world_of(
        api={
            "workers": 10,
            "service_time": deterministic("10ms"),
            "calls": [
                {
                    "to": "cart",
                    "rate_limiter": {
                        "limit_for_period": 1,
                        "limit_refresh_period": "1s",
                        "timeout_duration": 0,
                    },
                    "order": ["fallback", "retry", "circuit_breaker", "timeout", "bulkhead"],
                }
            ],
        },
        services={"cart": {"service_time": deterministic("10ms")}},
    )
    policies = world.edge("api", "cart").policies
    assert policies is not None
    assert policies.layers == (5,)
    log = send(world, [0.0, 0.1, 1.0])
    result = world.run()
    assert sorted(log, key=lambda e: e[2]) == [
        (0, "ok", 0.02),
        (1, "dependency", 0.11),
        (2, "ok", 1.02),
    ]
    assert count(result, "api -> cart", "rate_limited") == 1


# --------------------------------------------------------------------------- adaptive limits


def test_aimd_limit_backs_off_and_sheds_and_is_in_the_time_series():
    """AIMD from 4 with a 50 ms timeout.

    Each 100 ms answer counts as a drop (limit x 0.5 down to the floor of 1); at 1.5 s one of
    two requests is shed by the limit.
    """
    world = world_of(
        {
            "concurrency_limit": {
                "algorithm": "aimd",
                "initial_limit": 4,
                "min_limit": 1,
                "backoff_ratio": 0.5,
                "timeout": "50ms",
            }
        },
        api={"workers": 10},
    )
    log = send(world, [0.0] * 4 + [1.5, 1.5])
    result = world.run()
    assert sorted(log, key=lambda e: (e[2], e[0])) == [
        (0, "ok", 0.1),
        (1, "ok", 0.1),
        (2, "ok", 0.1),
        (3, "ok", 0.1),
        (5, "shed", 1.5),
        (4, "ok", 1.6),
    ]
    assert series(result, "api", "concurrency_limit") == [4.0, 1.0, 1.0]
    assert series(result, "api-0", "concurrency_limit") == [4.0, 1.0, 1.0]
    assert series(result, "api", "concurrency_limit_shed") == [0.0, 1.0, 0.0]


def test_aimd_limit_grows_while_busy():
    """Healthy answers with inflight * 2 >= limit add one each: 2 -> 3 -> 4."""
    world = world_of(
        {"concurrency_limit": {"algorithm": "aimd", "initial_limit": 2, "min_limit": 1}},
        api={"workers": 10},
    )
    log = send(world, [0.0, 0.0, 0.0])
    result = world.run()
    assert sorted(log, key=lambda e: (e[2], e[0])) == [
        (2, "shed", 0.0),
        (0, "ok", 0.1),
        (1, "ok", 0.1),
    ]
    assert series(result, "api", "concurrency_limit") == [2.0, 4.0, 4.0]


@pytest.mark.parametrize("algorithm", ["vegas", "gradient2"])
def test_other_limits_run(algorithm: str):
    world = world_of({"concurrency_limit": {"algorithm": algorithm}}, api={"workers": 10})
    log = send(world, [0.01 * i for i in range(50)])
    result = world.run()
    assert len(log) == 50
    assert series(result, "api", "concurrency_limit")[0] == 20.0


# --------------------------------------------------------------------------- deadlines


def deadline_world(propagation: bool) -> World:
    """``api`` (10 workers, 10 ms) calls ``cart`` (1 worker, 100 ms) with a 50 ms timeout."""
    return world_of(
        api={
            "workers": 10,
            "service_time": deterministic("10ms"),
            "calls": [{"to": "cart", "timeout": "50ms"}],
        },
        services={"cart": {"workers": 1, "service_time": deterministic("100ms")}},
        workload={"deadline_propagation": propagation},
    )


def test_without_deadline_propagation_abandoned_work_goes_on():
    world = deadline_world(False)
    log = send(world, [0.0, 0.0, 0.0])
    result = world.run()
    assert log == [(0, "dependency", 0.06), (1, "dependency", 0.06), (2, "dependency", 0.06)]
    assert count(result, "cart", "ok") == 3  # cart worked until 0.31 s for nobody


def test_deadline_propagation_drops_work_whose_caller_gave_up():
    """With propagation the deadline is 0.06 s.

    Request 0 is already in service; 1 and 2 are picked up after it and
    dropped at once (0.11 s) with deadline_exceeded; cart did a third of the work.
    """
    world = deadline_world(True)
    log = send(world, [0.0, 0.0, 0.0])
    result = world.run()
    assert log == [(0, "dependency", 0.06), (1, "dependency", 0.06), (2, "dependency", 0.06)]
    assert count(result, "cart", "ok") == 1
    assert count(result, "cart", "deadline_exceeded") == 2


def test_deadline_is_checked_before_a_downstream_call():
    """The users' 50 ms timeout is the deadline: api, queued behind 100 ms, does not call."""
    world = world_of(
        api={"calls": [{"to": "cart"}]},
        services={"cart": {"service_time": deterministic("10ms")}},
        workload={"deadline_propagation": True, "timeout": "150ms"},
    )
    log = send(world, [0.0, 0.01])
    result = world.run()
    # 0: api 0-0.1, cart 0.1-0.11; 1: picked up at 0.11 (deadline 0.16), works to 0.21: past
    # its deadline, it skips the call to cart
    assert log == [(0, "ok", 0.11), (1, "timeout", 0.16)]
    assert count(result, "cart", "ok") == 1
    assert count(result, "api", "deadline_exceeded") == 1


# --------------------------------------------------------------------------- faults


def partition_world(mode: str, timeout: str | None) -> World:
    call: dict[str, Any] = {"to": "cart"}
    if timeout is not None:
        call["timeout"] = timeout
    return world_of(
        api={"workers": 10, "service_time": deterministic("10ms"), "calls": [call]},
        services={"cart": {"service_time": deterministic("10ms")}},
        faults=[
            {"kind": "partition", "target": "api -> cart", "mode": mode, "at": 0, "duration": 1}
        ],
    )


def test_partition_drop_fails_calls_at_once():
    world = partition_world("drop", "500ms")
    log = send(world, [0.1, 1.5])
    result = world.run()
    assert log == [(0, "dependency", 0.11), (1, "ok", 1.52)]
    assert count(result, "api -> cart", "unavailable") == 1


def test_partition_blackhole_hangs_until_the_callers_timeout():
    world = partition_world("blackhole", "500ms")
    log = send(world, [0.1, 1.5])
    result = world.run()
    assert log == [(0, "dependency", 0.61), (1, "ok", 1.52)]
    assert count(result, "api -> cart", "timeout") == 1
    # the abandoned call is delivered when the partition heals (1.0 s): cart serves it too
    assert count(result, "cart", "ok") == 2


def test_partition_blackhole_without_timeout_goes_through_when_healed():
    world = partition_world("blackhole", None)
    log = send(world, [0.1])
    world.run()
    assert log == [(0, "ok", 1.01)]


def test_partition_must_be_on_an_edge():
    with pytest.raises(ScenarioError, match="partition is on an edge"):
        load_scenario_text(
            """
name: p
duration: 1
hosts: [{name: n, memory: 1Gi}]
services: {api: {service_time: {dist: deterministic, value: 0.01}}}
workload: {entry: api, rate: {profile: constant, rate: 1}}
faults: [{kind: partition, target: api, at: 0}]
"""
        )


def test_poison_request_crashes_instance_after_instance_when_retried():
    """Three retries of one poison request take down all three cart replicas (Error, 1)."""
    world = world_of(
        api={
            "workers": 10,
            "service_time": deterministic("10ms"),
            "calls": [
                {
                    "to": "cart",
                    "retry": {"max_attempts": 3, "backoff": {"kind": "none"}},
                }
            ],
        },
        services={"cart": {"replicas": 3, "service_time": deterministic("10ms")}},
        workload={"classes": [{"name": "normal"}, {"name": "evil"}]},
        faults=[{"kind": "poison_request", "target": "cart", "request_class": "evil", "at": 0}],
    )
    log = send(world, [0.1, 0.2], classes=[1, 0])
    result = world.run()
    assert log[0] == (0, "dependency", 0.11)
    events = result.events[result.events.kind == "terminated"]
    assert sorted(events.entity) == ["cart-0", "cart-1", "cart-2"]
    assert set(events.t.round(9)) == {0.11}
    assert all(d.endswith("Reason: Error, Exit Code: 1") for d in events.detail)
    assert count(result, "cart", "reset") == 3


def test_poison_fraction_is_decided_once_per_request():
    world = world_of(
        services={},
        faults=[{"kind": "poison_request", "target": "api", "fraction": 0.5, "at": 0}],
    )
    world.env.run(until=0.001)
    poison = world.services["api"].perturbation
    assert poison is not None
    assert poison.poison is not None
    verdicts = [poison.poison(Request(i, 0, 0.0)) for i in range(200)]
    assert verdicts == [poison.poison(Request(i, 0, 0.0)) for i in range(200)]
    assert 60 < sum(verdicts) < 140


def test_poison_fault_needs_one_selector():
    base = {"kind": "poison_request", "target": "api", "at": 0}
    with pytest.raises(ValueError, match="exactly one"):
        world_of(faults=[base])


def test_gradient2_takes_a_zero_rtt_drop():
    """A request shed at once reports a 0 ns RTT: Java's double division gives Infinity."""
    from patterns.adaptive_concurrency import Gradient2Limit

    limit = Gradient2Limit()
    limit.on_sample(0.0, 0.0, 30, True)  # first sample: long average 0 as well (0 / 0)
    limit.on_sample(0.0, 0.01, 30, False)
    limit.on_sample(0.0, 0.0, 30, True)
    assert limit.limit >= 20
