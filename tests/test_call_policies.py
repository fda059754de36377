"""Client-side call policies wired into calls: retry, circuit breaker, bulkhead, fallback, order.

Tiny worlds with deterministic service times and no Poisson arrivals: requests are sent by hand
through the users' edge at chosen instants, so every outcome and end time is exact. ``api`` takes
10 ms and calls ``cart``, which takes 10 ms (unless said otherwise); an ``error_rate`` fault of 1
makes every ``cart`` hop fail with ``error``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim.request import Request
from sim.scenario import Scenario, ScenarioError, load_scenario_text
from sim.service import Edge
from sim.world import World


def deterministic(value: str) -> dict[str, str]:
    """A constant service time."""
    return {"dist": "deterministic", "value": value}


def world_of(
    call: dict[str, Any],
    *,
    cart_time: str = "10ms",
    faults: list[dict[str, Any]] | tuple = (),
    duration: float = 3.0,
    bin: float = 1.0,
) -> World:
    """``api`` (10 ms) calls ``cart`` with ``call``'s policies, on one node."""
    return World(scenario_of(call, cart_time=cart_time, faults=faults, duration=duration, bin=bin))


def scenario_of(
    call: dict[str, Any],
    *,
    cart_time: str = "10ms",
    faults: list[dict[str, Any]] | tuple = (),
    duration: float = 3.0,
    bin: float = 1.0,
) -> Scenario:
    """The scenario of :func:`world_of`."""
    return Scenario.model_validate(
        {
            "name": "policies",
            "duration": duration,
            "hosts": [{"name": "node-a", "memory": "8Gi"}],
            "services": {
                "api": {
                    "workers": 10,
                    "service_time": deterministic("10ms"),
                    "calls": [{"to": "cart", **call}],
                },
                "cart": {"workers": 10, "service_time": deterministic(cart_time)},
            },
            "workload": {"entry": "api", "rate": {"profile": "constant", "rate": 0}},
            "faults": list(faults),
            "recording": {"bin": bin},
        }
    )


def failing(at: float = 0.0, duration: float | None = None) -> dict[str, Any]:
    """Every ``cart`` hop fails with ``error`` from ``at`` (for ``duration``)."""
    fault: dict[str, Any] = {"kind": "error_rate", "target": "cart", "rate": 1.0, "at": at}
    if duration is not None:
        fault["duration"] = duration
    return fault


def send(world: World, times: list[float]) -> list[tuple[int, str, float]]:
    """Send request ``i`` at ``times[i]``; the log fills in ``(i, outcome, end)``."""
    env = world.env
    edge = world.edge("client", "api")
    log: list[tuple[int, str, float]] = []

    def user(rid: int, at: float):
        yield env.timeout(at)
        outcome = yield from edge.call(Request(rid, 0, env.now))
        log.append((rid, outcome.label, round(env.now, 9)))

    for rid, at in enumerate(times):
        env.process(user(rid, at))
    return log


def outcomes(result, entity: str) -> dict[str, int]:
    """Non-zero outcome counts of one entity."""
    row = result.services.set_index("entity").loc[entity]
    labels = ("ok", "degraded", "timeout", "bulkhead_full", "circuit_open", "error", "dependency")
    return {label: int(row[label]) for label in labels if row[label]}


def events(result, kind: str) -> list[tuple[float, str, str]]:
    """Events of one kind as ``(t, entity, detail)``."""
    rows = result.events[result.events.kind == kind]
    return [(round(t, 9), e, d) for t, e, d in zip(rows.t, rows.entity, rows.detail, strict=True)]


def series(result, entity: str, metric: str) -> list[float]:
    """One gauge's values, bin by bin."""
    ts = result.timeseries
    rows = ts[(ts.entity == entity) & (ts.metric == metric)].sort_values("t")
    return [float(v) for v in rows.value]


# --------------------------------------------------------------------------- fast path


def test_a_call_without_policies_stays_on_the_fast_path():
    """No policy block (a timeout alone is not one): the edge has no chain and no state."""
    world = world_of({"timeout": "1s"})
    assert world.edge("api", "cart").policies is None
    assert type(world.edge("api", "cart")) is Edge
    world = world_of({"circuit_breaker": {"enabled": False}, "fallback": {"enabled": False}})
    assert world.edge("api", "cart").policies is None
    log = send(world, [0.0])
    world.run()
    assert log == [(0, "ok", 0.02)]
    assert world.services["api"].instances[0].clients == {}


# --------------------------------------------------------------------------- retry


def test_retries_follow_the_backoff_timeline():
    """3 attempts, 100 ms apart: 0.01-0.02, 0.12-0.13, 0.23-0.24, then the caller gives up."""
    world = world_of(
        {"retry": {"backoff": {"kind": "constant", "wait": "100ms"}}}, faults=[failing()]
    )
    log = send(world, [0.0])
    result = world.run()
    assert log == [(0, "dependency", 0.24)]
    assert outcomes(result, "cart") == {"error": 3}
    assert outcomes(result, "api -> cart") == {"error": 1}  # one logical call, its final view
    policies = world.edge("api", "cart").policies
    assert policies is not None
    assert (policies.metrics.attempts, policies.metrics.retries) == (3, 2)
    assert series(result, "api -> cart", "attempts") == [3, 0, 0]
    assert series(result, "api -> cart", "retries") == [2, 0, 0]


def test_exponential_backoff_without_jitter_doubles_the_wait():
    """Waits 0.1, 0.2, 0.4 s between four attempts of 10 ms each: the call ends at 0.75."""
    call = {
        "retry": {
            "max_attempts": 4,
            "backoff": {"kind": "exponential", "base": "100ms", "cap": "1s", "jitter": "none"},
        }
    }
    world = world_of(call, faults=[failing()])
    log = send(world, [0.0])
    world.run()
    assert log == [(0, "dependency", 0.75)]


def test_a_retried_call_that_succeeds_is_ok():
    """The fault ends at 0.1: attempt 1 fails at 0.02, attempt 2 (at 0.12) succeeds."""
    world = world_of(
        {"retry": {"backoff": {"kind": "constant", "wait": "100ms"}}},
        faults=[failing(0.0, 0.1)],
    )
    log = send(world, [0.0])
    result = world.run()
    assert log == [(0, "ok", 0.13)]
    assert outcomes(result, "api -> cart") == {"ok": 1}


def test_per_try_timeout_cuts_each_attempt_and_the_callee_keeps_working():
    """The callee takes 100 ms, each attempt is given 50 ms: timeouts at 0.06, 0.11, 0.16."""
    world = world_of(
        {"retry": {"backoff": {"kind": "none"}, "per_try_timeout": "50ms"}}, cart_time="100ms"
    )
    log = send(world, [0.0])
    result = world.run()
    assert log == [(0, "dependency", 0.16)]
    assert outcomes(result, "api -> cart") == {"timeout": 1}
    assert outcomes(result, "cart") == {"ok": 3}  # the abandoned attempts finish anyway


def test_a_retry_budget_stops_retries():
    """A gRPC throttle of 4 tokens (no retry at <= 2): call 1 retries once, call 2 never."""
    call = {
        "retry": {
            "backoff": {"kind": "constant", "wait": "100ms"},
            "budget": {"kind": "grpc", "max_tokens": 4, "token_ratio": 0.1},
        }
    }
    world = world_of(call, faults=[failing()])
    log = send(world, [0.0, 1.0])
    result = world.run()
    # call 1: fail (4 -> 3), retry at 0.12, fail (3 -> 2): throttled; call 2: fail (2 -> 1)
    assert log == [(0, "dependency", 0.13), (1, "dependency", 1.02)]
    policies = world.edge("api", "cart").policies
    assert policies is not None
    assert (policies.metrics.attempts, policies.metrics.retries) == (3, 1)
    assert policies.budget_exhausted == 2
    assert series(result, "api -> cart", "retry_budget_exhausted") == [1, 1, 0]
    budget = world.services["api"].instances[0].clients[world.edge("api", "cart")].budget
    assert budget is not None
    assert budget.exhausted == 2


def test_circuit_open_is_not_retryable():
    with pytest.raises(ValueError, match="circuit_open"):
        scenario_of({"retry": {"retry_on": ["timeout", "circuit_open"]}})


# --------------------------------------------------------------------------- circuit breaker

BREAKER = {
    "sliding_window_size": 4,
    "minimum_number_of_calls": 4,
    "failure_rate_threshold": 50,
    "wait_duration_in_open_state": "1s",
    "permitted_number_of_calls_in_half_open_state": 2,
}


def test_breaker_opens_rejects_goes_half_open_and_closes():
    """4 failures open it at 0.32; a call at 0.51 is rejected; after 1 s it lets two through."""
    world = world_of({"circuit_breaker": BREAKER}, faults=[failing(0.0, 1.3)], bin=0.5)
    log = send(world, [0.0, 0.1, 0.2, 0.3, 0.5, 1.4, 1.5, 2.5])
    result = world.run()
    assert log == [
        (0, "dependency", 0.02),
        (1, "dependency", 0.12),
        (2, "dependency", 0.22),
        (3, "dependency", 0.32),
        (4, "dependency", 0.51),  # rejected at once: cart never sees it
        (5, "ok", 1.42),
        (6, "ok", 1.52),
        (7, "ok", 2.52),
    ]
    assert outcomes(result, "api -> cart") == {"ok": 3, "circuit_open": 1, "error": 4}
    assert outcomes(result, "cart") == {"ok": 3, "error": 4}
    assert events(result, "circuit_breaker") == [
        (
            0.32,
            "api-0",
            "CircuitBreaker 'api->cart' exceeded failure rate threshold. "
            "Current failure rate: 100.0",
        ),
        (0.32, "api-0", "CircuitBreaker 'api->cart' changed state from CLOSED to OPEN"),
        (1.41, "api-0", "CircuitBreaker 'api->cart' changed state from OPEN to HALF_OPEN"),
        (1.52, "api-0", "CircuitBreaker 'api->cart' changed state from HALF_OPEN to CLOSED"),
    ]
    # sampled at 0, 0.5, 1.0, ...: closed, open, open, half-open, closed, closed
    assert series(result, "api -> cart", "circuit_breaker.api-0") == [0, 1, 1, 2, 0, 0]


def test_breaker_state_is_lost_when_the_caller_restarts():
    """The open breaker dies with api-0 (crashed at 0.6); the new container calls cart again."""
    breaker = BREAKER | {"wait_duration_in_open_state": "60s"}
    world = world_of(
        {"circuit_breaker": breaker},
        faults=[failing(0.0, 0.4), {"kind": "crash", "target": "api", "count": 1, "at": 0.6}],
    )
    log = send(world, [0.0, 0.1, 0.2, 0.3, 0.5, 1.0])
    result = world.run()
    assert log[4] == (4, "dependency", 0.51)  # still open: rejected
    assert log[5] == (5, "ok", 1.02)  # a fresh, closed breaker after the restart
    assert outcomes(result, "api -> cart") == {"ok": 1, "circuit_open": 1, "error": 4}
    assert [e[2] for e in events(result, "restart")]  # the container did restart
    instance = world.services["api"].instances[0]
    breaker_now = instance.clients[world.edge("api", "cart")].breaker
    assert breaker_now is not None
    assert str(breaker_now.state) == "CLOSED"


# --------------------------------------------------------------------------- bulkhead, fallback


def test_bulkhead_full_when_saturated():
    """One permit, no wait: the second of two simultaneous calls is rejected at 0.01."""
    world = world_of({"bulkhead": {"max_concurrent_calls": 1}}, cart_time="100ms")
    log = send(world, [0.0, 0.0])
    result = world.run()
    assert sorted(log) == [(0, "ok", 0.11), (1, "dependency", 0.01)]
    assert outcomes(result, "api -> cart") == {"ok": 1, "bulkhead_full": 1}
    assert events(result, "bulkhead") == [(0.01, "api-0", "Bulkhead 'api->cart' rejected a call.")]


def test_bulkhead_wait_hands_the_permit_over():
    """With a 200 ms wait the second call gets the permit when the first ends (0.11)."""
    world = world_of(
        {"bulkhead": {"max_concurrent_calls": 1, "max_wait_duration": "200ms"}}, cart_time="100ms"
    )
    log = send(world, [0.0, 0.0])
    world.run()
    assert sorted(log) == [(0, "ok", 0.11), (1, "ok", 0.21)]


def test_thread_pool_bulkhead_queues_then_rejects():
    """1 thread, queue of 1: calls 0 runs, 1 queues (runs at 0.11), 2 is rejected at 0.01.

    resilience4j ``ThreadPoolBulkhead`` with ``core = max = 1``, ``queue_capacity = 1``.
    """
    bulkhead = {
        "kind": "thread_pool",
        "core_thread_pool_size": 1,
        "max_thread_pool_size": 1,
        "queue_capacity": 1,
    }
    world = world_of({"bulkhead": bulkhead}, cart_time="100ms", bin=0.05)
    log = send(world, [0.0, 0.0, 0.0])
    result = world.run()
    assert sorted(log) == [(0, "ok", 0.11), (1, "ok", 0.21), (2, "dependency", 0.01)]
    assert outcomes(result, "api -> cart") == {"ok": 2, "bulkhead_full": 1}
    assert events(result, "bulkhead") == [(0.01, "api-0", "Bulkhead 'api->cart' rejected a call.")]
    assert series(result, "api -> cart", "bulkhead_rejected")[:2] == [1.0, 0.0]
    # sampled at 0.05 (one running, one queued) and 0.15 (the queued one running)
    assert series(result, "api -> cart", "bulkhead_in_flight")[1:4] == [2.0, 2.0, 1.0]


def test_thread_pool_thread_stays_busy_after_the_caller_times_out():
    """A timeout outside the bulkhead abandons the call, not the pool thread.

    One thread, a 50 ms timeout, cart takes 100 ms: call 0 times out at 0.06 but its thread is
    busy until the callee answers at 0.11, so call 1 at 0.07 waits in the queue until then.
    """
    bulkhead = {
        "kind": "thread_pool",
        "core_thread_pool_size": 1,
        "max_thread_pool_size": 1,
        "queue_capacity": 1,
    }
    world = world_of({"bulkhead": bulkhead, "timeout": "50ms"}, cart_time="100ms")
    log = send(world, [0.0, 0.07])
    world.run()
    assert sorted(log) == [(0, "dependency", 0.06), (1, "dependency", 0.13)]


THREAD_POOL_YAML = """\
name: tp
duration: 10
hosts: [{name: node-a, memory: 8Gi}]
services:
  api:
    service_time: {dist: deterministic, value: 10ms}
    calls:
      - to: cart
        bulkhead:
          kind: KIND
          core_thread_pool_size: 4
          max_thread_pool_size: 2
  cart:
    service_time: {dist: deterministic, value: 10ms}
workload: {entry: api, rate: {profile: constant, rate: 10}}
"""


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "thread_pool",
            "tp.yaml:10:11: services.api.calls.0.bulkhead: "
            "maxThreadPoolSize must be a greater than or equals to coreThreadPoolSize",
        ),
        (
            "pool",
            "tp.yaml:10:17: services.api.calls.0.bulkhead.kind: "
            "unknown kind 'pool' (expected one of 'semaphore', 'thread_pool')",
        ),
    ],
)
def test_bulkhead_blocks_are_checked_like_resilience4j(kind: str, message: str):
    """A core size above the max gets resilience4j's own message; a bad kind names the field."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(THREAD_POOL_YAML.replace("KIND", kind), "tp.yaml")
    assert str(caught.value) == message


def test_fallback_serves_degraded():
    world = world_of({"fallback": {}}, faults=[failing()])
    log = send(world, [0.0])
    result = world.run()
    assert log == [(0, "degraded", 0.02)]
    assert outcomes(result, "api -> cart") == {"degraded": 1}
    assert outcomes(result, "cart") == {"error": 1}
    assert series(result, "api -> cart", "fallbacks") == [1, 0, 0]


def test_fallback_covers_a_rejection_too():
    world = world_of({"fallback": {}, "bulkhead": {"max_concurrent_calls": 0}})
    log = send(world, [0.0])
    world.run()
    assert log == [(0, "degraded", 0.01)]


# --------------------------------------------------------------------------- order


def test_retry_outside_the_breaker_does_not_retry_a_rejection():
    """Default order: the 2nd failure opens the breaker; attempt 3 is rejected and not retried."""
    call = {
        "retry": {"backoff": {"kind": "none"}},
        "circuit_breaker": {"sliding_window_size": 2, "minimum_number_of_calls": 2},
    }
    world = world_of(call, faults=[failing()])
    log = send(world, [0.0, 0.5])
    result = world.run()
    assert log == [(0, "dependency", 0.03), (1, "dependency", 0.51)]
    assert outcomes(result, "api -> cart") == {"circuit_open": 2}
    assert outcomes(result, "cart") == {"error": 2}
    policies = world.edge("api", "cart").policies
    assert policies is not None
    assert (policies.metrics.attempts, policies.metrics.retries) == (4, 2)


def test_breaker_outside_retry_counts_a_retried_call_once():
    """Reordered: each logical call (3 attempts) is one breaker outcome; it opens at call 2."""
    call = {
        "retry": {"backoff": {"kind": "none"}},
        "circuit_breaker": {"sliding_window_size": 2, "minimum_number_of_calls": 2},
        "order": ["fallback", "circuit_breaker", "retry", "timeout", "bulkhead"],
    }
    world = world_of(call, faults=[failing()])
    log = send(world, [0.0, 0.5, 0.6])
    result = world.run()
    assert log == [(0, "dependency", 0.04), (1, "dependency", 0.54), (2, "dependency", 0.61)]
    assert outcomes(result, "api -> cart") == {"error": 2, "circuit_open": 1}
    assert outcomes(result, "cart") == {"error": 6}


def test_order_must_name_every_layer_once():
    with pytest.raises(ValueError, match="exactly once"):
        scenario_of({"order": ["retry", "retry", "timeout", "bulkhead", "fallback"]})


# --------------------------------------------------------------------------- schema, overlays


def test_defaults_come_from_the_pattern_configs():
    from patterns.bulkhead import BulkheadConfig
    from patterns.circuit_breaker import CircuitBreakerConfig
    from patterns.retry import RESILIENCE4J_DEFAULT_MAX_ATTEMPTS, RESILIENCE4J_DEFAULT_WAIT

    call = scenario_of({"retry": {}, "circuit_breaker": {}, "bulkhead": {}}).services["api"]
    spec = call.calls[0]
    assert spec.retry is not None
    assert spec.circuit_breaker is not None
    assert spec.bulkhead is not None
    assert spec.retry.max_attempts == RESILIENCE4J_DEFAULT_MAX_ATTEMPTS
    assert spec.retry.backoff.kind == "constant"
    assert spec.retry.backoff.wait == RESILIENCE4J_DEFAULT_WAIT
    assert spec.retry.retry_on == ["timeout", "unavailable", "reset", "error", "shed", "dependency"]
    r4j = CircuitBreakerConfig()
    assert spec.circuit_breaker.enabled
    assert spec.circuit_breaker.minimum_number_of_calls == r4j.minimum_number_of_calls
    assert spec.circuit_breaker.wait_duration_in_open_state == r4j.wait_duration_in_open_state
    assert spec.circuit_breaker.sliding_window_type == "COUNT_BASED"
    assert spec.bulkhead.max_concurrent_calls == BulkheadConfig().max_concurrent_calls


def test_units_and_unknown_fields():
    spec = scenario_of(
        {"retry": {"per_try_timeout": "50ms", "backoff": {"kind": "envoy", "base": "10ms"}}}
    ).services["api"]
    retry = spec.calls[0].retry
    assert retry is not None
    assert retry.per_try_timeout == pytest.approx(0.05)
    with pytest.raises(ValueError, match="bogus"):
        scenario_of({"circuit_breaker": {"bogus": 1}})
    with pytest.raises(ValueError, match="kind"):
        scenario_of({"retry": {"backoff": {"kind": "fibonacci"}}})
    with pytest.raises(ValueError, match="budget_percent"):
        scenario_of({"retry": {"budget": {"kind": "aws", "budget_percent": 20}}})


def test_overlay_sets_a_breaker_field():
    base = scenario_of({"circuit_breaker": {"failure_rate_threshold": 50}})
    changed = base.with_overrides(
        {"services.api.calls.cart.circuit_breaker.failure_rate_threshold": 30}
    )
    cb = changed.services["api"].calls[0].circuit_breaker
    assert cb is not None
    assert cb.failure_rate_threshold == 30
    # on a call without the block, the overlay creates it (defaults for the rest)
    bare = scenario_of({})
    created = bare.with_overrides(
        {
            "services.api.calls.cart.circuit_breaker.failure_rate_threshold": 30,
            "services.api.calls.cart.retry.budget": {"kind": "envoy"},
        }
    )
    call = created.services["api"].calls[0]
    assert call.circuit_breaker is not None
    assert call.circuit_breaker.failure_rate_threshold == 30
    assert call.retry is not None
    assert call.retry.budget is not None
    assert World(created).edge("api", "cart").policies is not None
    with pytest.raises(ScenarioError, match="bogus"):
        base.with_overrides({"services.api.calls.cart.circuit_breaker.bogus": 1})
