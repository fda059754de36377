"""Wait-queue disciplines, token bucket and resilience4j RateLimiter (§10.1-§10.3; §12 V26)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import simpy

from patterns.backpressure import (
    EVENT_CODEL_DROPPING,
    EVENT_CODEL_RECOVERED,
    EVENT_FAILED_ACQUIRE,
    EVENT_LIFO_MODE,
    Discipline,
    QueueConfig,
    QueueTicket,
    RateLimiter,
    RateLimiterConfig,
    TokenBucket,
    TokenBucketConfig,
    WaitQueue,
)

U = 1 / 64  # a dyadic service time (15.625 ms) keeps every timestamp exact


def serve(
    config: QueueConfig,
    arrivals: Sequence[tuple[float, str] | tuple[float, str, int]],
    service: float = 1.0,
    workers: int = 1,
) -> tuple[list[tuple[str, float]], list[tuple[str, float]], WaitQueue[QueueTicket]]:
    """A worker pool the way a server uses a WaitQueue; returns (starts, sheds, queue).

    A request takes a free worker, or queues a ticket whose payload is (name, event); the event
    succeeds with True when a worker hands over its slot and False when the ticket is shed.
    """
    env = simpy.Environment()
    starts: list[tuple[str, float]] = []
    sheds: list[tuple[str, float]] = []
    busy = [0]

    def shed(ticket: QueueTicket) -> None:
        ticket.payload[1].succeed(False)

    queue: WaitQueue[QueueTicket] = WaitQueue(env, config, on_drop=shed)

    def request(at: float, name: str, priority: int):
        yield env.timeout(at)
        if busy[0] < workers:
            busy[0] += 1
        else:
            ticket = QueueTicket(env.now, priority, (name, env.event()))
            for victim in queue.put(ticket):
                shed(victim)
            if not (yield ticket.payload[1]):
                sheds.append((name, env.now))
                return
        starts.append((name, env.now))
        yield env.timeout(service)
        nxt = queue.get()
        if nxt is None:
            busy[0] -= 1
        else:
            nxt.payload[1].succeed(True)

    for arrival in arrivals:
        at, name, *rest = arrival
        env.process(request(at, name, rest[0] if rest else 0))
    env.run()
    return starts, sheds, queue


def burst(names: str, at: float = 0.0) -> list[tuple[float, str]]:
    return [(at, name) for name in names]


def test_queue_defaults():
    """Capacity 100 (ThreadPoolBulkhead queue), reject_new, CoDel 5 ms / 100 ms (RFC 8289)."""
    assert QueueConfig() == QueueConfig(100, Discipline.REJECT_NEW, 0.005, 0.100, 1, None)


def test_reject_new_serves_fifo_and_turns_away_arrivals_when_full():
    """Tail drop: capacity 2, burst a-e on 1 worker -> a, b, c served; d and e shed at once."""
    starts, sheds, queue = serve(QueueConfig(capacity=2), burst("abcde"))
    assert starts == [("a", 0), ("b", 1), ("c", 2)]
    assert sheds == [("d", 0), ("e", 0)]
    assert (queue.rejected, queue.evicted) == (2, 0)


def test_drop_oldest_makes_room_for_the_newest():
    """Head drop: capacity 2, burst a-e -> d evicts b, e evicts c; served a, d, e."""
    config = QueueConfig(capacity=2, discipline=Discipline.DROP_OLDEST)
    starts, sheds, queue = serve(config, burst("abcde"))
    assert starts == [("a", 0), ("d", 1), ("e", 2)]
    assert sheds == [("b", 0), ("c", 0)]
    assert (queue.rejected, queue.evicted) == (0, 2)


def test_lifo_serves_the_newest_first():
    """LIFO: burst a-e -> a, then e, d, c, b."""
    starts, _, _ = serve(QueueConfig(discipline=Discipline.LIFO), burst("abcde"))
    assert starts == [("a", 0), ("e", 1), ("d", 2), ("c", 3), ("b", 4)]


def test_lifo_full_queue_rejects_the_arrival():
    """A full LIFO queue turns the arrival away (the §10.1 bound), it does not evict."""
    config = QueueConfig(capacity=2, discipline=Discipline.LIFO)
    starts, sheds, _ = serve(config, burst("abcd"))
    assert starts == [("a", 0), ("c", 1), ("b", 2)]
    assert sheds == [("d", 0)]


def test_adaptive_lifo_switches_after_the_queue_stays_non_empty_for_100ms():
    """Fail at Scale: FIFO until the queue has not been empty for > 100 ms, then LIFO.

    Burst a-f at 0 on 1 worker, service 1/64 s: dequeues at 1/64, 2/64, 3/64 s are FIFO (b, c, d);
    at 8/64 = 125 ms > 100 ms the newest (f) goes first, then e.
    """
    events: list[tuple[str, str]] = []
    env = simpy.Environment()
    queue: WaitQueue[QueueTicket] = WaitQueue(
        env,
        QueueConfig(discipline=Discipline.ADAPTIVE_LIFO),
        on_event=lambda kind, line: events.append((kind, line)),
    )
    for name in "bcdef":
        queue.put(QueueTicket(0.0, 0, name))
    order = []
    for k in range(1, 6):
        env.run(until=k * 2 * U)  # 31.25 ms apart
        ticket = queue.get()
        assert ticket is not None
        order.append((ticket.payload, env.now))
    assert order == [("b", 2 * U), ("c", 4 * U), ("d", 6 * U), ("f", 8 * U), ("e", 10 * U)]
    assert events == [(EVENT_LIFO_MODE, "queue of 2 switched to LIFO")]
    assert queue.lifo_mode


def test_adaptive_lifo_returns_to_fifo_once_the_queue_has_emptied():
    """An emptied queue is no longer under load: the next burst is served FIFO again.

    Service 62.5 ms: b is served FIFO at 62.5 ms, the rest LIFO from 125 ms; the burst x, y, z
    at 20 s finds the queue empty and is served in order.
    """
    starts, _, _ = serve(
        QueueConfig(discipline=Discipline.ADAPTIVE_LIFO),
        [*burst("abcdefghij"), *burst("xyz", at=20.0)],
        service=U * 4,
    )
    assert [name for name, _ in starts] == [*list("abjihgfedc"), "x", "y", "z"]


def test_adaptive_lifo_hhvm_threshold_rule():
    """HHVM lifoSwitchThreshold 2: LIFO while >= 2 tickets remain after the dequeue."""
    config = QueueConfig(discipline=Discipline.ADAPTIVE_LIFO, lifo_switch_threshold=2)
    starts, _, _ = serve(config, burst("abcde"))
    assert starts == [("a", 0), ("e", 1), ("d", 2), ("b", 3), ("c", 4)]


def codel_burst(n: int) -> tuple[list, list, WaitQueue[QueueTicket], list[tuple[str, str]]]:
    events: list[tuple[str, str]] = []
    env = simpy.Environment()
    starts: list[tuple[str, float]] = []
    drops: list[tuple[str, float]] = []
    queue: WaitQueue[QueueTicket] = WaitQueue(
        env,
        QueueConfig(capacity=None, discipline=Discipline.CODEL),
        on_drop=lambda t: drops.append((t.payload, env.now)),
        on_event=lambda kind, line: events.append((kind, line)),
    )

    def worker():
        starts.append(("a", env.now))
        while True:
            yield env.timeout(U)
            ticket = queue.get()
            if ticket is None:
                return
            starts.append((ticket.payload, env.now))

    for i in range(1, n + 1):
        queue.put(QueueTicket(0.0, 0, str(i)))
    env.process(worker())
    env.run()
    return starts, drops, queue, events


def test_codel_drops_only_after_sojourn_stays_above_target_for_an_interval():
    """RFC 8289 on 1 worker, service 15.625 ms, 19 queued at 0.

    The first bad sojourn (1/64 s) arms first_above_time = 115.625 ms; the first dequeue at or
    after it (8/64 = 125 ms) drops ticket 8 and serves 9; the next drop is due 100 ms later
    (225 ms, count 1) and happens at 15/64 = 234.375 ms (ticket 16); at 16/64 s only one ticket
    would remain (maxpacket) so CoDel leaves the dropping state.
    """
    starts, drops, queue, events = codel_burst(19)
    assert drops == [("8", 8 * U), ("16", 15 * U)]
    served = [name for name, _ in starts]
    assert served == ["a", *map(str, range(1, 8)), *map(str, range(9, 16)), "17", "18", "19"]
    assert starts[8] == ("9", 8 * U)
    assert queue.codel_dropped == 2
    assert not queue.dropping
    assert [kind for kind, _ in events] == [EVENT_CODEL_DROPPING, EVENT_CODEL_RECOVERED]


def test_codel_control_law_spaces_drops_by_interval_over_sqrt_count():
    """Drops fall at drop_next += 100 ms / sqrt(count) while dropping.

    A late dequeue catches up on every drop that fell due (the RFC's while loop).
    """
    env = simpy.Environment()
    dropped: list[float] = []
    queue: WaitQueue[QueueTicket] = WaitQueue(
        env, QueueConfig(capacity=None, discipline=Discipline.CODEL), on_drop=lambda t: None
    )
    for i in range(100):
        queue.put(QueueTicket(0.0, 0, i))
    for at in (0.01, 0.11, 0.215, 0.30, 0.50):
        env.run(until=at)
        before = queue.codel_dropped
        assert queue.get() is not None
        dropped.append(queue.codel_dropped - before)
    # 0.11 enters (drop_next 0.21); 0.215 -> 0.21 + 0.1/sqrt(2) = 0.2807; 0.30 -> +0.1/sqrt(3)
    # = 0.3384; at 0.50: drops due at 0.3384, 0.3884, 0.4331, 0.4739 (next 0.5117).
    assert dropped == [0, 1, 1, 1, 4]
    assert queue.dropping
    drop_next = 0.21 + 0.1 / math.sqrt(2) + 0.1 / math.sqrt(3)
    for count in (4, 5, 6, 7):
        drop_next += 0.1 / math.sqrt(count)
    assert queue._drop_next == pytest.approx(drop_next)


def test_codel_short_sojourn_never_drops():
    """Sojourn below the 5 ms target resets first_above_time: nothing is ever dropped."""
    env = simpy.Environment()
    queue: WaitQueue[QueueTicket] = WaitQueue(
        env, QueueConfig(discipline=Discipline.CODEL), on_drop=lambda t: None
    )
    for k in range(1, 50):
        env.run(until=k * 0.004)
        queue.put(QueueTicket(env.now, 0, k))
        queue.put(QueueTicket(env.now, 0, k))
        queue.put(QueueTicket(env.now, 0, k))
        while len(queue) > 1:
            queue.get()
    assert queue.codel_dropped == 0


def test_codel_needs_on_drop():
    """A CoDel queue must be told what to do with the tickets it drops."""
    with pytest.raises(ValueError, match="on_drop"):
        WaitQueue(simpy.Environment(), QueueConfig(discipline=Discipline.CODEL))


def test_critical_requests_are_served_first_and_shed_last():
    """Priority shedding: critical tickets are served first and shed last.

    Capacity 2: a critical arrival evicts the newest sheddable ticket; a sheddable arrival
    finding only its own class and critical ones is rejected.
    """
    arrivals = [(0.0, "a", 0), (0.0, "b", 0), (0.0, "c", 0), (0.0, "D", 1), (0.0, "e", 0)]
    starts, sheds, queue = serve(QueueConfig(capacity=2), arrivals)
    assert starts == [("a", 0), ("D", 1), ("b", 2)]
    assert sheds == [("c", 0), ("e", 0)]
    assert (queue.rejected, queue.evicted) == (1, 1)


def test_drop_oldest_priority_evicts_the_oldest_sheddable():
    """drop_oldest: a critical arrival into a full queue evicts the oldest sheddable ticket."""
    arrivals = [(0.0, "a", 0), (0.0, "b", 0), (0.0, "c", 0), (0.0, "D", 1)]
    config = QueueConfig(capacity=2, discipline=Discipline.DROP_OLDEST)
    starts, sheds, _ = serve(config, arrivals)
    assert starts == [("a", 0), ("D", 1), ("c", 2)]
    assert sheds == [("b", 0)]


def test_critical_arrival_into_a_queue_full_of_critical_is_rejected():
    """With nothing less important queued, a critical arrival is rejected like any other."""
    arrivals = [(0.0, "A", 1), (0.0, "B", 1), (0.0, "C", 1), (0.0, "D", 1)]
    _, sheds, _ = serve(QueueConfig(capacity=2), arrivals)
    assert sheds == [("D", 0)]


def test_remove_withdraws_a_waiting_ticket():
    """remove() takes a ticket out (its caller gave up); a second remove finds nothing."""
    queue: WaitQueue[QueueTicket] = WaitQueue(simpy.Environment())
    first, second = QueueTicket(0.0), QueueTicket(0.0)
    queue.put(first)
    queue.put(second)
    assert queue.remove(first)
    assert len(queue) == 1
    assert not queue.remove(first)
    assert queue.get() is second
    assert queue.get() is None
    assert len(queue) == 0


def test_zero_capacity_rejects_and_none_is_unbounded():
    """Capacity 0: no queue at all; None: no bound."""
    env = simpy.Environment()
    none: WaitQueue[QueueTicket] = WaitQueue(env, QueueConfig(capacity=0))
    ticket = QueueTicket(0.0)
    assert none.put(ticket) == [ticket]
    assert len(none) == 0
    unbounded: WaitQueue[QueueTicket] = WaitQueue(env, QueueConfig(capacity=None))
    assert all(unbounded.put(QueueTicket(0.0)) == [] for _ in range(1000))
    assert len(unbounded) == 1000


def test_two_workers_hand_over_slots_fifo():
    """With 2 workers and service 1 s, a burst of 5 starts at 0, 0, 1, 1, 2."""
    starts, _, _ = serve(QueueConfig(), burst("abcde"), workers=2)
    assert starts == [("a", 0), ("b", 0), ("c", 1), ("d", 1), ("e", 2)]


def test_token_bucket_continuous_refill():
    """Continuous refill from env.now: tokens = min(capacity, tokens + elapsed x rate).

    Capacity 10, 2 tokens/s, starts full: 10 taken, the 11th refused; +0.5 s -> one token;
    idle for long -> capped at 10; time_until(3) from empty = 1.5 s.
    """
    env = simpy.Environment()
    bucket = TokenBucket(env, TokenBucketConfig(capacity=10, refill_rate=2))
    assert [bucket.try_take() for _ in range(11)] == [True] * 10 + [False]
    env.run(until=0.5)
    assert bucket.tokens == 1.0
    assert bucket.try_take()
    assert not bucket.try_take()
    assert bucket.time_until(3) == 1.5
    assert not bucket.try_take(0.5)
    env.run(until=100)
    assert bucket.tokens == 10.0
    assert not bucket.try_take(11)
    assert bucket.tokens == 10.0
    assert bucket.time_until(11) == math.inf


def test_token_bucket_fill_interval_refills_in_steps():
    """Envoy style: 2 tokens every 1 s from creation (capacity 4): none at 0.99 s, two at 1 s."""
    env = simpy.Environment()
    bucket = TokenBucket(env, TokenBucketConfig(capacity=4, refill_rate=2, fill_interval=1.0))
    assert bucket.try_take(4)
    env.run(until=0.99)
    assert bucket.tokens == 0.0
    assert bucket.time_until(3) == pytest.approx(1.01)  # fills at 1 s and 2 s
    env.run(until=1.0)
    assert bucket.tokens == 2.0
    env.run(until=5.5)
    assert bucket.tokens == 4.0


def test_rate_limiter_defaults_match_resilience4j():
    """RateLimiterConfig: limitForPeriod 50, limitRefreshPeriod 500 ns, timeoutDuration 5 s."""
    assert RateLimiterConfig() == RateLimiterConfig(50, 500e-9, 5.0)


def test_rate_limiter_v26_no_accumulation_across_idle_cycles():
    """V26: 10 per 1 s, timeout 0: 10 pass, the 11th is refused; after an idle 5 s only 10."""
    env = simpy.Environment()
    events: list[tuple[str, str]] = []
    limiter = RateLimiter(
        env,
        RateLimiterConfig(limit_for_period=10, limit_refresh_period=1.0, timeout_duration=0.0),
        name="backend",
        on_event=lambda kind, line: events.append((kind, line)),
    )
    assert [limiter.try_acquire_permission()[0] for _ in range(11)] == [True] * 10 + [False]
    assert limiter.try_acquire_permission() == (False, 0.0)
    env.run(until=5.5)
    assert limiter.available_permissions == 10
    assert [limiter.try_acquire_permission()[0] for _ in range(11)] == [True] * 10 + [False]
    assert events[0] == (
        EVENT_FAILED_ACQUIRE,
        "RateLimiter 'backend' does not permit further calls",
    )


def test_rate_limiter_cycles_start_at_creation_not_at_first_call():
    """Cycles count from the limiter's epoch: created at 0.3 s, the next cycle starts at 1.3 s."""
    env = simpy.Environment()
    env.run(until=0.3)
    config = RateLimiterConfig(limit_for_period=2, limit_refresh_period=1.0, timeout_duration=0.0)
    limiter = RateLimiter(env, config)
    env.run(until=1.0)
    assert [limiter.try_acquire_permission()[0] for _ in range(3)] == [True, True, False]
    env.run(until=1.2999)
    assert not limiter.try_acquire_permission()[0]
    env.run(until=1.3)
    assert limiter.try_acquire_permission()[0]


def test_rate_limiter_reserves_future_cycles_and_pays_back_debt():
    """Reservations borrow from future cycles; refreshes pay the debt back first.

    Timeout 5 s: at 0.25 s, calls 11-20 wait 0.75 s, 21-25 wait 1.75 s (permissions -15);
    at 1 s the refresh gives -15 + 10 = -5, at 2 s min(-5 + 10, 10) = 5.
    """
    env = simpy.Environment()
    config = RateLimiterConfig(limit_for_period=10, limit_refresh_period=1.0, timeout_duration=5.0)
    limiter = RateLimiter(env, config)
    env.run(until=0.25)
    waits = [limiter.reserve_permission() for _ in range(25)]
    assert waits == [0.0] * 10 + [0.75] * 10 + [1.75] * 5
    assert limiter.available_permissions == -15
    env.run(until=1.0)
    assert limiter.available_permissions == -5
    env.run(until=2.0)
    assert limiter.available_permissions == 5


def test_rate_limiter_refusal_reserves_nothing_but_parks_for_the_timeout():
    """A wait beyond the timeout is refused without reserving anything.

    acquirePermission still parks the caller for the whole timeout; reservePermission returns
    at once (None).
    """
    env = simpy.Environment()
    config = RateLimiterConfig(limit_for_period=1, limit_refresh_period=1.0, timeout_duration=2.5)
    limiter = RateLimiter(env, config)
    assert [limiter.reserve_permission() for _ in range(3)] == [0.0, 1.0, 2.0]
    assert limiter.reserve_permission() is None  # 3 s > 2.5 s
    assert limiter.available_permissions == -2
    assert limiter.try_acquire_permission() == (False, 2.5)
    assert limiter.available_permissions == -2


def test_rate_limiter_acquire_permission_waits_in_simulated_time():
    """acquire_permission() is a SimPy sub-process: callers resume when their permit is due."""
    env = simpy.Environment()
    config = RateLimiterConfig(limit_for_period=1, limit_refresh_period=1.0, timeout_duration=1.5)
    limiter = RateLimiter(env, config)
    log: list[tuple[int, bool, float]] = []

    def caller(i: int):
        ok = yield from limiter.acquire_permission()
        log.append((i, ok, env.now))

    for i in range(3):
        env.process(caller(i))
    env.run(until=0.5)
    assert limiter.waiting == 2
    env.run()
    assert log == [(0, True, 0.0), (1, True, 1.0), (2, False, 1.5)]


def test_rate_limiter_drain_leaves_no_permissions_in_the_cycle():
    """drainPermissions: nothing is left until the next cycle."""
    env = simpy.Environment()
    config = RateLimiterConfig(limit_for_period=5, limit_refresh_period=1.0, timeout_duration=0.0)
    limiter = RateLimiter(env, config)
    limiter.drain_permissions()
    assert limiter.available_permissions == 0
    assert not limiter.try_acquire_permission()[0]
    env.run(until=1.0)
    assert limiter.available_permissions == 5
