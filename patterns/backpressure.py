"""Backpressure on the server side: bounded wait queues, token buckets, resilience4j RateLimiter.

Sources: ``../shared/reference/semantics.md`` §10.1-§10.3 and §12 V26; RFC 8289 "Controlled Delay
Active Queue Management" §5 (``dodequeue``, ``dequeue``, ``control_law``); B. Maurer, "Fail at
Scale", ACM Queue 13(8), 2015 ("Controlled Delay" and "Adaptive LIFO"); facebook/hhvm
``hphp/util/job-queue.h`` (``JobQueue::dequeueMaybeExpiredImpl``, ``lifoSwitchThreshold``);
resilience4j ``RateLimiterConfig.java`` and ``internal/AtomicRateLimiter.java``
(``calculateNextState``, ``nanosToWaitForPermission``, ``reservePermissions``,
``waitForPermissionIfNecessary``). Adaptive concurrency limits live in
:mod:`patterns.adaptive_concurrency`.

The admission chain of DESIGN §2.4 is rate limit -> adaptive concurrency limit -> bounded queue ->
worker; this module gives the first and the third.

Wait queue model. Requests that find every worker busy wait in a :class:`WaitQueue` of opaque
tickets (each with an ``arrival_time`` and a ``priority``; higher is more important, e.g. critical
1, sheddable 0). A free worker takes the next ticket with :meth:`WaitQueue.get`. Tickets are kept
per priority class; the highest non-empty class is always served first (as HHVM's per-priority job
queues), and a full queue sheds from the lowest class first, so critical requests are shed last.
Within a class the discipline decides:

* ``reject_new`` (tail drop): serve FIFO; a full queue turns the arrival away (§10.1).
* ``drop_oldest`` (head drop): serve FIFO; a full queue drops its oldest ticket to make room.
* ``lifo``: serve the newest first; a full queue turns the arrival away.
* ``adaptive_lifo``: FIFO normally, LIFO while the queue is under load ("during normal operating
  conditions, requests are processed in FIFO order, but when a queue is starting to form, the
  server switches to LIFO mode", Fail at Scale). Under load means, by default, the queue has not
  been empty during the last ``codel_interval`` (100 ms) - Fail at Scale's own overload test
  (``queue.lastEmptyTime() < now - N``, N = 100 ms). With ``lifo_switch_threshold`` set, HHVM's
  rule is used instead: LIFO while the tickets left after this dequeue are at least the threshold.
  A full queue turns the arrival away.
* ``codel``: RFC 8289 CoDel at dequeue, served FIFO. The sojourn time of the dequeued ticket is
  compared with ``codel_target`` (5 ms); once it has stayed at or above target for
  ``codel_interval`` (100 ms) the queue enters the dropping state, drops that ticket, and keeps
  dropping one ticket at each ``drop_next``, spaced by the control law ``interval / sqrt(count)``;
  it leaves the state as soon as a dequeued ticket is below target. The RFC's re-entry rule (the
  Linux variant: resume at the previous drop count if the queue went bad again within 16
  intervals) and its ``maxpacket`` guard (never drop while at most one MTU stays queued; here at
  most ``codel_maxpacket`` tickets) are kept. A full queue turns the arrival away.

Dropped and rejected tickets are returned by :meth:`WaitQueue.put`; tickets CoDel drops at
dequeue are handed to the ``on_drop`` callback (the server must end those requests as shed).

Simplifications: a ticket's priority is fixed; CoDel keeps one controller for the whole queue and
computes the sojourn of whichever ticket it dequeues (the highest class first), so priority
classes change whose sojourn it sees. Facebook's production CoDel (folly ``Codel``: minimum delay
per interval, shed above 2 x target) is not what is modelled here; RFC 8289 is.

Units: seconds and tokens. Time is read only from ``env.now``; nothing here draws randomness.
On the per-request path it is read as ``env._now``, the attribute behind the property (SimPy is
pinned to 4.1.x: :mod:`patterns.timers`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

import simpy

EventSink = Callable[[str, str], None]
"""``on_event(kind, line)``: receives a transition and a human-readable line."""


class Discipline(StrEnum):
    """How a bounded wait queue orders and sheds its tickets."""

    REJECT_NEW = "reject_new"
    DROP_OLDEST = "drop_oldest"
    LIFO = "lifo"
    ADAPTIVE_LIFO = "adaptive_lifo"
    CODEL = "codel"


EVENT_CODEL_DROPPING = "codel_dropping"
"""Kind of the event sent when CoDel enters its dropping state."""
EVENT_CODEL_RECOVERED = "codel_recovered"
"""Kind of the event sent when CoDel leaves its dropping state."""
EVENT_LIFO_MODE = "adaptive_lifo"
"""Kind of the event sent when an adaptive-LIFO queue switches between FIFO and LIFO."""


@dataclass(frozen=True)
class QueueConfig:
    """A bounded wait queue in front of a worker pool.

    Attributes:
        capacity: tickets that may wait, 100 (resilience4j ``ThreadPoolBulkheadConfig``
            ``DEFAULT_QUEUE_CAPACITY``); None for no bound, 0 for no queue at all.
        discipline: ordering and shedding, ``reject_new`` (a plain bounded FIFO, §10.1).
        codel_target: CoDel's acceptable standing sojourn time, 5 ms (RFC 8289 ``TARGET``;
            Fail at Scale's M).
        codel_interval: CoDel's sliding window, 100 ms (RFC 8289 ``INTERVAL``; Fail at Scale's
            N); also adaptive LIFO's "not empty for" window.
        codel_maxpacket: CoDel never counts a sojourn as bad while at most this many tickets
            remain queued after the dequeue, 1 (RFC 8289 ``maxpacket``: one MTU; one request here).
        lifo_switch_threshold: adaptive LIFO only; when set, HHVM's rule (LIFO while the tickets
            left after a dequeue are >= this) replaces the 100 ms not-empty rule. HHVM's
            default is off (``INT_MAX``); 0 is plain LIFO.
    """

    capacity: int | None = 100
    discipline: Discipline = Discipline.REJECT_NEW
    codel_target: float = 0.005
    codel_interval: float = 0.100
    codel_maxpacket: int = 1
    lifo_switch_threshold: int | None = None

    def __post_init__(self) -> None:
        if self.capacity is not None and self.capacity < 0:
            raise ValueError("capacity must be >= 0 or None")
        if self.codel_target <= 0 or self.codel_interval <= 0:
            raise ValueError("CoDel target and interval must be positive")


class Ticket(Protocol):
    """What a wait queue needs to know about a waiting request."""

    @property
    def arrival_time(self) -> float:
        """When the ticket was queued, s (CoDel's timestamp)."""
        ...

    @property
    def priority(self) -> int:
        """Request class; higher is more important and is served first and shed last."""
        ...


class QueueTicket:
    """A ready-made ticket: arrival time, priority and whatever the server attaches."""

    __slots__ = ("arrival_time", "payload", "priority")

    def __init__(self, arrival_time: float, priority: int = 0, payload: Any = None) -> None:
        self.arrival_time = arrival_time
        self.priority = priority
        self.payload = payload

    def __repr__(self) -> str:
        return f"QueueTicket({self.arrival_time!r}, {self.priority!r}, {self.payload!r})"


T = TypeVar("T", bound=Ticket)


class WaitQueue(Generic[T]):
    """A worker pool's bounded queue of waiting tickets, with a shedding discipline.

    Args:
        env: the simulation environment (CoDel and adaptive LIFO read ``env.now``).
        config: queue settings; defaults to :class:`QueueConfig`'s.
        on_drop: called with each ticket CoDel drops at dequeue; required for ``codel``.
        on_event: optional ``on_event(kind, line)`` for CoDel and adaptive-LIFO transitions.

    Attributes:
        rejected: arrivals turned away by a full queue.
        evicted: queued tickets pushed out by an arrival (``drop_oldest``, or a more important
            arrival).
        codel_dropped: tickets CoDel dropped at dequeue.
        dropping: whether CoDel is in its dropping state.
        lifo_mode: whether the last dequeue of an adaptive-LIFO queue was LIFO.
    """

    __slots__ = (
        "_cd_count",
        "_count",
        "_drop_next",
        "_first_above",
        "_last_count",
        "_last_empty",
        "_on_drop",
        "_on_event",
        "_priorities",
        "_queues",
        "codel_dropped",
        "config",
        "dropping",
        "env",
        "evicted",
        "lifo_mode",
        "rejected",
    )

    def __init__(
        self,
        env: simpy.Environment,
        config: QueueConfig | None = None,
        *,
        on_drop: Callable[[T], None] | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.env = env
        self.config = config or QueueConfig()
        if self.config.discipline is Discipline.CODEL and on_drop is None:
            raise ValueError("a CoDel queue needs on_drop for the tickets it drops at dequeue")
        self._on_drop = on_drop
        self._on_event = on_event
        self._queues: dict[int, deque[T]] = {}
        self._priorities: list[int] = []  # ascending
        self._count = 0
        self._last_empty = env.now
        self.rejected = 0
        self.evicted = 0
        self.codel_dropped = 0
        self.lifo_mode = False
        # RFC 8289 state: first_above_time (None for 0), drop_next, count, lastcount, dropping.
        self._first_above: float | None = None
        self._drop_next = 0.0
        self._cd_count = 0
        self._last_count = 0
        self.dropping = False

    def __len__(self) -> int:
        return self._count

    def put(self, ticket: T) -> list[T]:
        """Queue ``ticket``; return the tickets shed to do so (``[ticket]`` if it was rejected)."""
        capacity = self.config.capacity
        shed: list[T] = []
        if capacity is not None and self._count >= capacity:
            victim = self._overflow_victim(ticket)
            if victim is ticket:
                self.rejected += 1
                return [ticket]
            self._queues[victim.priority].remove(victim)
            self._count -= 1
            self.evicted += 1
            shed.append(victim)
        elif self._count == 0:
            self._last_empty = self.env._now  # it was empty until this arrival
        queue = self._queues.get(ticket.priority)
        if queue is None:
            queue = self._queues[ticket.priority] = deque()
            self._priorities.append(ticket.priority)
            self._priorities.sort()
        queue.append(ticket)
        self._count += 1
        return shed

    def _overflow_victim(self, ticket: T) -> T:
        """Whom a full queue sheds: the lowest class first; within it, by discipline."""
        lowest = next((p for p in self._priorities if self._queues[p]), None)
        if lowest is None or ticket.priority < lowest:
            return ticket
        drop_oldest = self.config.discipline is Discipline.DROP_OLDEST
        queue = self._queues[lowest]
        if ticket.priority == lowest:
            return queue[0] if drop_oldest else ticket
        # A more important arrival displaces the lowest class: its oldest or its newest.
        return queue[0] if drop_oldest else queue[-1]

    def remove(self, ticket: T) -> bool:
        """Withdraw a waiting ticket (its caller gave up); False if it is not queued."""
        queue = self._queues.get(ticket.priority)
        if queue is None:
            return False
        try:
            queue.remove(ticket)
        except ValueError:
            return False
        self._count -= 1
        if self._count == 0:
            self._last_empty = self.env.now
        return True

    def _highest(self) -> deque[T] | None:
        for priority in reversed(self._priorities):
            queue = self._queues[priority]
            if queue:
                return queue
        return None

    def _popped(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._last_empty = self.env._now

    def get(self) -> T | None:
        """The next ticket to serve (None if none is left), applying the discipline."""
        discipline = self.config.discipline
        if discipline is Discipline.CODEL:
            if self._count == 0:  # what _codel_dequeue does with nothing queued, without a call
                self._first_above = None
                if self.dropping:
                    self._leave_dropping()
                return None
            return self._codel_dequeue(self.env._now)
        queue = self._highest()
        if queue is None:
            return None
        if discipline is Discipline.LIFO:
            ticket = queue.pop()
        elif discipline is Discipline.ADAPTIVE_LIFO:
            lifo = self._under_load()
            if lifo != self.lifo_mode:
                self.lifo_mode = lifo
                if self._on_event is not None:
                    mode = "LIFO" if lifo else "FIFO"
                    self._on_event(EVENT_LIFO_MODE, f"queue of {self._count} switched to {mode}")
            ticket = queue.pop() if lifo else queue.popleft()
        else:
            ticket = queue.popleft()
        self._popped()
        return ticket

    def _under_load(self) -> bool:
        threshold = self.config.lifo_switch_threshold
        if threshold is not None:
            return self._count - 1 >= threshold  # HHVM: --m_jobCount >= lifoSwitchThreshold
        return self.env.now - self._last_empty > self.config.codel_interval

    # RFC 8289 section 5, on the highest non-empty class.
    def _dodequeue(self, now: float) -> tuple[T | None, bool]:
        queue = self._highest()
        if queue is None:
            self._first_above = None  # an empty queue cannot be above target
            return None, False
        ticket = queue.popleft()
        self._popped()
        config = self.config
        if now - ticket.arrival_time < config.codel_target or self._count <= config.codel_maxpacket:
            self._first_above = None
        elif self._first_above is None:
            self._first_above = now + config.codel_interval
        elif now >= self._first_above:
            return ticket, True
        return ticket, False

    def _control_law(self, t: float) -> float:
        return t + self.config.codel_interval / math.sqrt(self._cd_count)

    def _drop(self, ticket: T) -> None:
        self.codel_dropped += 1
        assert self._on_drop is not None
        self._on_drop(ticket)

    def _codel_dequeue(self, now: float) -> T | None:
        ticket, ok_to_drop = self._dodequeue(now)
        if self.dropping:
            if not ok_to_drop:
                self._leave_dropping()
            while self.dropping and now >= self._drop_next:
                assert ticket is not None
                self._drop(ticket)
                self._cd_count += 1
                ticket, ok_to_drop = self._dodequeue(now)
                if not ok_to_drop:
                    self._leave_dropping()
                else:
                    self._drop_next = self._control_law(self._drop_next)
        elif ok_to_drop:
            assert ticket is not None
            self._drop(ticket)
            ticket, ok_to_drop = self._dodequeue(now)
            self.dropping = True
            # Linux variant: resume near the drop rate that controlled the last episode.
            delta = self._cd_count - self._last_count
            self._cd_count = 1
            if delta > 1 and now - self._drop_next < 16 * self.config.codel_interval:
                self._cd_count = delta
            self._drop_next = self._control_law(now)
            self._last_count = self._cd_count
            if self._on_event is not None:
                self._on_event(
                    EVENT_CODEL_DROPPING,
                    f"sojourn >= {self.config.codel_target * 1000:g} ms for "
                    f"{self.config.codel_interval * 1000:g} ms: dropping, count={self._cd_count}",
                )
        return ticket

    def _leave_dropping(self) -> None:
        self.dropping = False
        if self._on_event is not None:
            self._on_event(EVENT_CODEL_RECOVERED, "sojourn below target: stopped dropping")


@dataclass(frozen=True)
class TokenBucketConfig:
    """A generic token bucket (§10.3); it starts full. No reference default: both are required.

    Attributes:
        capacity: the most tokens the bucket holds (the burst), tokens.
        refill_rate: tokens added per second.
        fill_interval: 0 for continuous refill; otherwise the bucket gains ``refill_rate *
            fill_interval`` tokens at each multiple of ``fill_interval`` after its creation
            (Envoy local rate limit: ``tokens_per_fill`` every ``fill_interval``).
    """

    capacity: float
    refill_rate: float
    fill_interval: float = 0.0

    def __post_init__(self) -> None:
        if self.capacity < 0 or self.refill_rate < 0 or self.fill_interval < 0:
            raise ValueError("capacity, refill_rate and fill_interval must be >= 0")


class TokenBucket:
    """A token bucket whose refill is computed from ``env.now`` when it is looked at."""

    __slots__ = ("_epoch", "_fills", "_last", "_tokens", "config", "env")

    def __init__(self, env: simpy.Environment, config: TokenBucketConfig) -> None:
        self.env = env
        self.config = config
        self._tokens = float(config.capacity)
        self._epoch = env.now
        self._last = env.now
        self._fills = 0

    def _refill(self) -> None:
        config = self.config
        now = self.env._now
        if config.fill_interval > 0:
            fills = math.floor((now - self._epoch) / config.fill_interval)
            added = (fills - self._fills) * config.refill_rate * config.fill_interval
            self._fills = fills
        else:
            added = (now - self._last) * config.refill_rate
        self._last = now
        if added > 0:
            tokens = self._tokens + added
            self._tokens = tokens if tokens < config.capacity else config.capacity

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def try_take(self, n: float = 1) -> bool:
        """Take ``n`` tokens if the bucket holds them now; never takes part of ``n``."""
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def time_until(self, n: float = 1) -> float:
        """Seconds until ``n`` tokens are available (0 if now; inf if never)."""
        self._refill()
        missing = n - self._tokens
        config = self.config
        if missing <= 0:
            return 0.0
        if n > config.capacity or config.refill_rate == 0:
            return math.inf
        if config.fill_interval > 0:
            per_fill = config.refill_rate * config.fill_interval
            next_fill = self._epoch + (self._fills + 1) * config.fill_interval
            return (
                next_fill
                - self.env.now
                + (math.ceil(missing / per_fill) - 1) * (config.fill_interval)
            )
        return missing / config.refill_rate


REQUEST_NOT_PERMITTED = "RateLimiter '{name}' does not permit further calls"
"""``RequestNotPermitted`` message (``createRequestNotPermitted``)."""

EVENT_FAILED_ACQUIRE = "FAILED_ACQUIRE"
"""``RateLimiterEvent.Type`` of a refused acquisition (successes are not reported: too many)."""


@dataclass(frozen=True)
class RateLimiterConfig:
    """resilience4j ``RateLimiterConfig``.

    Attributes:
        limit_for_period: permissions per refresh period, 50 (``DEFAULT_LIMIT_FOR_PERIOD``).
        limit_refresh_period: cycle length, 500 ns = 5e-7 s (``DEFAULT_LIMIT_REFRESH_PERIOD``,
            ``Duration.ofNanos(500)``) - with the defaults the limiter is effectively unlimited.
        timeout_duration: how long a caller may wait for a permission, 5 s
            (``DEFAULT_TIMEOUT_DURATION``); 0 means fail at once.
    """

    limit_for_period: int = 50
    limit_refresh_period: float = 500e-9
    timeout_duration: float = 5.0

    def __post_init__(self) -> None:
        if self.limit_for_period < 1:
            raise ValueError("limitForPeriod must be >= 1")
        if round(self.limit_refresh_period * 1e9) < 1:
            raise ValueError("limitRefreshPeriod must be at least 1 ns")
        if self.timeout_duration < 0:
            raise ValueError("timeoutDuration must be >= 0")


class RateLimiter:
    """resilience4j ``AtomicRateLimiter``: fixed cycles of ``limit_for_period`` permissions.

    Time since the limiter's creation (its epoch, ``nanoTimeStart``) is cut into cycles of
    ``limit_refresh_period``, in integer nanoseconds as in Java. At the first call in a new cycle
    the permissions become ``min(left + elapsed_cycles * limit_for_period, limit_for_period)``:
    reservations (negative permissions) are paid back first and idle cycles never accumulate
    (V26). A caller that cannot be served now reserves future permissions if the wait fits in
    ``timeout_duration``; otherwise it is refused without reserving - but
    ``acquirePermission`` still parks the caller for the whole timeout before refusing.

    Args:
        env: the simulation environment.
        config: defaults to :class:`RateLimiterConfig`'s.
        name: the limiter's name, used in the ``RequestNotPermitted`` line.
        on_event: optional ``on_event(kind, line)``, called on each refused acquisition.
    """

    __slots__ = (
        "_cycle",
        "_epoch",
        "_nanos_to_wait",
        "_on_event",
        "_period_ns",
        "_permissions",
        "_timeout_ns",
        "config",
        "env",
        "name",
        "waiting",
    )

    def __init__(
        self,
        env: simpy.Environment,
        config: RateLimiterConfig | None = None,
        *,
        name: str = "rateLimiter",
        on_event: EventSink | None = None,
    ) -> None:
        self.env = env
        self.config = config or RateLimiterConfig()
        self.name = name
        self._on_event = on_event
        self._epoch = env.now
        self._period_ns = round(self.config.limit_refresh_period * 1e9)
        self._cycle = 0
        self._permissions = self.config.limit_for_period
        self._nanos_to_wait = 0
        self._timeout_ns = round(self.config.timeout_duration * 1e9)
        self.waiting = 0
        """Callers parked in :meth:`acquire_permission` (``getNumberOfWaitingThreads``)."""

    def _now_ns(self) -> int:
        return round((self.env.now - self._epoch) * 1e9)

    def _next_state(self, permits: int, timeout_ns: int) -> int:
        """``calculateNextState`` + ``reservePermissions``: update, return nanos to wait."""
        period = self._period_ns
        per_cycle = self.config.limit_for_period
        now = round((self.env._now - self._epoch) * 1e9)  # _now_ns(), inline: a call per hop
        cycle = now // period
        permissions = self._permissions
        if cycle != self._cycle:
            permissions += (cycle - self._cycle) * per_cycle
            if permissions > per_cycle:
                permissions = per_cycle
            self._cycle = cycle
        if permissions >= permits:
            wait = 0
        else:
            to_next_cycle = (cycle + 1) * period - now
            at_next_cycle = permissions + per_cycle
            # divCeil; its numerator is > -per_cycle here, so // agrees with Java's division.
            full_cycles = (-(at_next_cycle - permits) + per_cycle - 1) // per_cycle
            wait = full_cycles * period + to_next_cycle
        if timeout_ns >= wait:
            permissions -= permits
        self._permissions = permissions
        self._nanos_to_wait = wait
        return wait

    def _refused(self) -> None:
        if self._on_event is not None:
            self._on_event(EVENT_FAILED_ACQUIRE, REQUEST_NOT_PERMITTED.format(name=self.name))

    def reserve_permission(self, permits: int = 1) -> float | None:
        """``reservePermission``: seconds to wait for reserved permits, or None if refused.

        0.0 means granted now. A refusal reserves nothing and does not wait.
        """
        timeout_ns = self._timeout_ns
        wait = self._next_state(permits, timeout_ns)
        if wait <= 0:
            return 0.0
        if timeout_ns >= wait:
            return wait / 1e9
        self._refused()
        return None

    def try_acquire_permission(self, permits: int = 1) -> tuple[bool, float]:
        """``acquirePermission`` without the sleep: (permitted, seconds the caller is parked).

        Granted now: ``(True, 0.0)``; granted after a reserved wait: ``(True, wait)``;
        refused: ``(False, timeout_duration)`` (0 when the timeout is 0) - Java parks the caller
        for the whole timeout before it fails.
        """
        timeout_ns = self._timeout_ns
        wait = self._next_state(permits, timeout_ns)
        if wait <= 0:
            return True, 0.0
        if timeout_ns >= wait:
            return True, wait / 1e9
        self._refused()
        return False, timeout_ns / 1e9

    def acquire_permission(self, permits: int = 1) -> Generator[simpy.Event, Any, bool]:
        """``acquirePermission`` in SimPy: ``ok = yield from rl.acquire_permission()``.

        An interrupt while parked propagates; the reservation stays consumed, as in Java.
        """
        permitted, park = self.try_acquire_permission(permits)
        if park > 0:
            self.waiting += 1
            try:
                yield self.env.timeout(park)
            finally:
                self.waiting -= 1
        return permitted

    def drain_permissions(self) -> None:
        """``drainPermissions``: take the permissions held before this call's cycle refresh.

        As in Java, the count taken is the stored ``activePermissions``; within one cycle that
        leaves none.
        """
        self._next_state(self._permissions, 0)

    def _permissions_now(self) -> int:
        per_cycle = self.config.limit_for_period
        cycle = self._now_ns() // self._period_ns
        if cycle == self._cycle:
            return self._permissions
        return min(self._permissions + (cycle - self._cycle) * per_cycle, per_cycle)

    @property
    def available_permissions(self) -> int:
        """``getAvailablePermissions``: permissions a call could take now (negative: reserved)."""
        return self._permissions_now()
