"""Bulkheads: resilience4j semaphore and thread pool, Envoy cluster breakers (§9; §12 V25)."""

from __future__ import annotations

import contextlib

import pytest
import simpy

from patterns.bulkhead import (
    EVENT_CALL_FINISHED,
    EVENT_CALL_PERMITTED,
    EVENT_CALL_REJECTED,
    BulkheadConfig,
    ClusterCircuitBreakers,
    ClusterCircuitBreakerThresholds,
    SemaphoreBulkhead,
    ThreadPoolBulkhead,
    ThreadPoolBulkheadConfig,
    bulkhead_full_message,
)


def semaphore_calls(
    bulkhead: SemaphoreBulkhead, starts: list[float], hold: float
) -> list[tuple[int, str, float]]:
    """Call ``i`` arrives at ``starts[i]`` and holds its permit ``hold`` s; returns the timeline."""
    env = bulkhead.env
    log: list[tuple[int, str, float]] = []

    def call(i: int, start: float):
        yield env.timeout(start)
        with bulkhead.request() as permit:
            if not (yield permit):
                log.append((i, "rejected", env.now))
                return
            log.append((i, "start", env.now))
            yield env.timeout(hold)
        log.append((i, "end", env.now))

    for i, start in enumerate(starts):
        env.process(call(i, start))
    env.run()
    return log


# -- SemaphoreBulkhead -----------------------------------------------------------------------


def test_semaphore_defaults():
    """BulkheadConfig defaults: maxConcurrentCalls 25, maxWaitDuration 0, fair."""
    assert BulkheadConfig() == BulkheadConfig(25, 0.0, True)


def test_v25_semaphore_26th_call_is_rejected_immediately():
    """V25: defaults: 25 calls in flight; the 26th is rejected at once (BulkheadFullException)."""
    env = simpy.Environment()
    bulkhead = SemaphoreBulkhead(env, "cart")
    log = semaphore_calls(bulkhead, [0.0] * 26, hold=1.0)
    assert sorted(e for e in log if e[1] != "end") == [(i, "start", 0) for i in range(25)] + [
        (25, "rejected", 0)
    ]
    assert (bulkhead.permitted, bulkhead.rejected, bulkhead.max_in_flight) == (25, 1, 25)
    assert bulkhead.available_concurrent_calls == 25
    assert bulkhead_full_message("cart") == (
        "Bulkhead 'cart' is full and does not permit further calls"
    )


def test_try_acquire_is_the_non_blocking_path():
    """try_acquire_permission: 25 True, then False; on_complete frees one."""
    bulkhead = SemaphoreBulkhead(simpy.Environment(), "cart")
    assert [bulkhead.try_acquire_permission() for _ in range(26)] == [True] * 25 + [False]
    assert bulkhead.saturation == 1.0
    bulkhead.on_complete()
    assert bulkhead.try_acquire_permission() is True


def test_waiting_call_gets_the_released_permit():
    """With maxWaitDuration 0.5 s and 2 permits the 3rd call waits and starts when one ends."""
    env = simpy.Environment()
    bulkhead = SemaphoreBulkhead(env, "cart", BulkheadConfig(2, 0.5))
    log = semaphore_calls(bulkhead, [0.0, 0.1, 0.2], hold=0.3)
    assert log == [
        (0, "start", 0),
        (1, "start", 0.1),
        (0, "end", 0.3),
        (2, "start", 0.3),
        (1, "end", 0.4),
        (2, "end", 0.6),
    ]


def test_waiting_call_is_rejected_when_max_wait_runs_out():
    """With maxWaitDuration 0.5 s and 1 permit held 1 s, a call at 0.1 is rejected at 0.6."""
    env = simpy.Environment()
    bulkhead = SemaphoreBulkhead(env, "cart", BulkheadConfig(1, 0.5))
    log = semaphore_calls(bulkhead, [0.0, 0.1], hold=1.0)
    assert log == [(0, "start", 0), (1, "rejected", 0.6), (0, "end", 1.0)]


def test_waiters_are_served_first_come_first_served():
    """Fair semaphore: waiters get permits in arrival order, and a newcomer does not overtake."""
    env = simpy.Environment()
    bulkhead = SemaphoreBulkhead(env, "cart", BulkheadConfig(1, 10.0))
    log = semaphore_calls(bulkhead, [0.0, 0.1, 0.2, 0.3], hold=1.0)
    assert [e for e in log if e[1] == "start"] == [
        (0, "start", 0),
        (1, "start", 1.0),
        (2, "start", 2.0),
        (3, "start", 3.0),
    ]


def test_interrupted_holder_gives_its_permit_back():
    """A holder interrupted mid-call leaves the ``with`` block and frees its permit at once."""
    env = simpy.Environment()
    bulkhead = SemaphoreBulkhead(env, "cart", BulkheadConfig(1, 5.0))
    starts: list[tuple[str, float]] = []

    def holder():
        with bulkhead.request() as permit:
            yield permit
            starts.append(("holder", env.now))
            with contextlib.suppress(simpy.Interrupt):
                yield env.timeout(10)

    def waiter():
        yield env.timeout(0.1)
        with bulkhead.request() as permit:
            assert (yield permit)
            starts.append(("waiter", env.now))

    proc = env.process(holder())
    env.process(waiter())
    env.run(until=0.5)
    proc.interrupt()
    env.run()
    assert starts == [("holder", 0), ("waiter", 0.5)]
    assert bulkhead.available_concurrent_calls == 1


def test_interrupted_waiter_leaves_the_queue():
    """A waiter interrupted before its turn gives up its place; the next waiter is served."""
    env = simpy.Environment()
    bulkhead = SemaphoreBulkhead(env, "cart", BulkheadConfig(1, 5.0))
    assert bulkhead.try_acquire_permission()
    got: list[str] = []

    def waiter(name: str):
        with bulkhead.request() as permit:
            try:
                if (yield permit):
                    got.append(name)
            except simpy.Interrupt:
                pass

    first = env.process(waiter("first"))
    env.process(waiter("second"))
    env.run(until=1)
    assert bulkhead.waiting == 2
    first.interrupt()
    env.run(until=2)
    assert bulkhead.waiting == 1
    bulkhead.on_complete()
    env.run(until=3)
    assert got == ["second"]


def test_semaphore_events_use_resilience4j_wording():
    """BulkheadOnCall{Permitted,Rejected,Finished}Event.toString without the timestamp."""
    env = simpy.Environment()
    log: list[tuple[str, str]] = []
    bulkhead = SemaphoreBulkhead(
        env, "cart", BulkheadConfig(1), lambda k, s: log.append((k, s)), call_events=True
    )
    bulkhead.try_acquire_permission()
    bulkhead.try_acquire_permission()
    bulkhead.on_complete()
    assert log == [
        (EVENT_CALL_PERMITTED, "Bulkhead 'cart' permitted a call."),
        (EVENT_CALL_REJECTED, "Bulkhead 'cart' rejected a call."),
        (EVENT_CALL_FINISHED, "Bulkhead 'cart' has finished a call."),
    ]


def test_events_are_off_by_default():
    """Without call_events the sink gets nothing (no strings on the hot path)."""
    log: list[str] = []
    bulkhead = SemaphoreBulkhead(
        simpy.Environment(), "cart", BulkheadConfig(0), lambda k, s: log.append(s)
    )
    assert bulkhead.try_acquire_permission() is False
    assert log == []


# -- ThreadPoolBulkhead ----------------------------------------------------------------------


def test_thread_pool_defaults_follow_the_cpu_count():
    """ThreadPoolBulkheadConfig: core = CPUs - 1 (1 on one CPU), max = CPUs, queue 100, 20 ms."""
    assert (
        ThreadPoolBulkheadConfig(cpus=8).core_size,
        ThreadPoolBulkheadConfig(cpus=8).max_size,
    ) == (7, 8)
    one = ThreadPoolBulkheadConfig(cpus=1)
    assert (one.core_size, one.max_size, one.queue_capacity, one.keep_alive_duration) == (
        1,
        1,
        100,
        0.020,
    )
    with pytest.raises(ValueError, match="greater than or equals"):
        ThreadPoolBulkheadConfig(core_thread_pool_size=4, max_thread_pool_size=2)


def pool_calls(
    bulkhead: ThreadPoolBulkhead, holds: list[float], starts: list[float] | None = None
) -> dict[int, tuple[str, float]]:
    """Submit call ``i`` at ``starts[i]`` (default 0); it runs ``holds[i]`` s on a pool thread.

    Returns each call's fate: ("start", time) or ("rejected", time).
    """
    env = bulkhead.env
    fate: dict[int, tuple[str, float]] = {}

    def call(i: int):
        yield env.timeout(starts[i] if starts else 0)
        with bulkhead.submit() as task:
            if not (yield task):
                fate[i] = ("rejected", env.now)
                return
            fate[i] = ("start", env.now)
            yield env.timeout(holds[i])

    for i in range(len(holds)):
        env.process(call(i))
    return fate


def test_v25_thread_pool_rejects_call_109_on_8_cpus():
    """V25: core 7, max 8, queue 100 -> call 109 is rejected while 108 are in flight or queued.

    Calls 1-7 start core threads, 8-107 queue, 108 starts the 8th thread (overtaking the queue).
    """
    env = simpy.Environment()
    bulkhead = ThreadPoolBulkhead(env, "cart", ThreadPoolBulkheadConfig(cpus=8))
    fate = pool_calls(bulkhead, [1.0] * 109)
    env.run(until=0.5)
    started_now = sorted(i + 1 for i, (what, t) in fate.items() if what == "start")
    assert started_now == [1, 2, 3, 4, 5, 6, 7, 108]
    assert fate[108] == ("rejected", 0)
    assert (bulkhead.thread_pool_size, bulkhead.active, bulkhead.queue_depth) == (8, 8, 100)
    assert (bulkhead.in_flight, bulkhead.remaining_queue_capacity) == (108, 0)
    env.run(until=1.5)
    # At t = 1 the eight threads take the eight oldest queued calls (8-15).
    assert sorted(i + 1 for i, (w, t) in fate.items() if w == "start" and t == 1.0) == list(
        range(8, 16)
    )


def test_core_threads_are_created_even_when_one_is_idle():
    """execute(): below core size a new thread is started although another is idle."""
    env = simpy.Environment()
    bulkhead = ThreadPoolBulkhead(env, "cart", ThreadPoolBulkheadConfig(cpus=4))  # core 3
    pool_calls(bulkhead, [0.1, 0.1], starts=[0.0, 0.5])
    env.run()
    assert bulkhead.thread_pool_size == 2


def test_extra_threads_end_after_20ms_of_keep_alive():
    """A thread above the core size ends after 20 ms idle.

    Core 1, max 2, queue 1: A runs on thread 1, B queues, C starts thread 2; thread 2 then runs B
    and, idle from 0.2 s with 2 > core threads, ends at 0.22 s.
    """
    env = simpy.Environment()
    bulkhead = ThreadPoolBulkhead(
        env,
        "cart",
        ThreadPoolBulkheadConfig(core_thread_pool_size=1, max_thread_pool_size=2, queue_capacity=1),
    )
    fate = pool_calls(bulkhead, [1.0, 0.1, 0.1])
    env.run(until=0.21)
    assert fate == {0: ("start", 0), 1: ("start", 0.1), 2: ("start", 0)}
    assert bulkhead.thread_pool_size == 2
    env.run(until=0.23)
    assert bulkhead.thread_pool_size == 1
    env.run()
    assert (bulkhead.thread_pool_size, bulkhead.finished) == (1, 3)


def test_queued_call_that_leaves_frees_its_queue_slot():
    """An interrupted queued call leaves the queue (see the module's simplification note)."""
    env = simpy.Environment()
    bulkhead = ThreadPoolBulkhead(
        env,
        "cart",
        ThreadPoolBulkheadConfig(core_thread_pool_size=1, max_thread_pool_size=1, queue_capacity=1),
    )

    def queued():
        with bulkhead.submit() as task, contextlib.suppress(simpy.Interrupt):
            yield task

    pool_calls(bulkhead, [5.0])
    env.run(until=0.1)
    proc = env.process(queued())
    env.run(until=0.2)
    assert bulkhead.queue_depth == 1
    proc.interrupt()
    env.run(until=0.3)
    assert bulkhead.queue_depth == 0


def test_thread_pool_events_fire_when_a_thread_starts_the_call():
    """CALL_PERMITTED is published when a pool thread starts the call, not at submission."""
    env = simpy.Environment()
    log: list[tuple[float, str]] = []
    bulkhead = ThreadPoolBulkhead(
        env,
        "cart",
        ThreadPoolBulkheadConfig(core_thread_pool_size=1, max_thread_pool_size=1, queue_capacity=1),
        lambda kind, _: log.append((env.now, kind)),
        call_events=True,
    )
    pool_calls(bulkhead, [1.0, 1.0, 1.0])
    env.run()
    assert log == [
        (0, EVENT_CALL_PERMITTED),
        (0, EVENT_CALL_REJECTED),
        (1, EVENT_CALL_FINISHED),
        (1, EVENT_CALL_PERMITTED),
        (2, EVENT_CALL_FINISHED),
    ]


# -- Envoy cluster circuit breakers ----------------------------------------------------------


def test_envoy_thresholds_defaults():
    """circuit_breaker.proto: 1024 connections, pending, requests; 3 retries; pools unlimited."""
    assert ClusterCircuitBreakerThresholds() == ClusterCircuitBreakerThresholds(
        1024, 1024, 1024, 3, None
    )


def test_envoy_max_requests_overflow_counts_pending_overflow():
    """The 1025th concurrent request overflows (count < max fails): upstream_rq_pending_overflow."""
    cb = ClusterCircuitBreakers()
    assert all(cb.try_start_request() for _ in range(1024))
    assert cb.try_start_request() is False
    assert (cb.upstream_rq_pending_overflow, cb.remaining["remaining_rq"]) == (1, 0)
    cb.end_request()
    assert cb.try_start_request() is True


def test_envoy_max_retries_allows_three_concurrent_retries():
    """max_retries 3: the 4th outstanding retry overflows (upstream_rq_retry_overflow)."""
    cb = ClusterCircuitBreakers()
    assert [cb.try_start_retry() for _ in range(4)] == [True, True, True, False]
    assert cb.upstream_rq_retry_overflow == 1


def test_envoy_connections_and_pending_overflow():
    """max_connections 2, max_pending_requests 1: the 3rd connection and 2nd pending overflow."""
    cb = ClusterCircuitBreakers(ClusterCircuitBreakerThresholds(2, 1))
    assert [cb.try_open_connection() for _ in range(3)] == [True, True, False]
    assert [cb.try_pend_request() for _ in range(2)] == [True, False]
    assert (cb.upstream_cx_overflow, cb.upstream_rq_pending_overflow) == (1, 1)
    assert cb.try_open_connection_pool() is True
