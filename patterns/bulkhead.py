"""Bulkheads: resilience4j's semaphore and thread-pool bulkheads, Envoy's cluster circuit breakers.

Sources: resilience4j/resilience4j ``resilience4j-bulkhead`` ``BulkheadConfig.java``,
``ThreadPoolBulkheadConfig.java`` (``DEFAULT_*`` constants), ``internal/SemaphoreBulkhead.java``
(``tryEnterBulkhead``, ``onComplete``), ``internal/FixedThreadPoolBulkhead.java`` (``submit``),
``BulkheadFullException.java`` and ``event/BulkheadOnCall*Event.java``; OpenJDK
``ThreadPoolExecutor.execute`` / ``getTask``; envoyproxy/envoy
``api/envoy/config/cluster/v3/circuit_breaker.proto``; see ``../shared/reference/semantics.md`` §9
and §12 V25.

Model:

* :class:`SemaphoreBulkhead`: a fair semaphore of ``max_concurrent_calls`` permits. A call takes a
  permit at once if one is free and nobody is waiting, else waits (FIFO) for at most
  ``max_wait_duration`` (whole milliseconds; 0 = do not wait) and is rejected
  (``BulkheadFullException``) when that runs out. Rejected calls never start. A released permit is
  handed straight to the longest waiter.
* :class:`ThreadPoolBulkhead`: a ``ThreadPoolExecutor`` with an ``ArrayBlockingQueue``. A
  submitted call starts a new thread while fewer than ``core_thread_pool_size`` threads exist
  (even if one is idle), else goes to the queue (where an idle thread takes it at once), else --
  queue full -- starts a new thread up to ``max_thread_pool_size`` *with this call* (it overtakes
  the queue), else is rejected. A thread that finishes takes the oldest queued call; a thread idle
  for ``keep_alive_duration`` while there are more than core threads ends. So up to ``max +
  queue_capacity`` calls are in flight or queued before the next is rejected.
* :class:`ClusterCircuitBreakers`: Envoy's per-cluster counters (connections, pending requests,
  requests, retries): a resource can be taken while its count is below its maximum, else the
  overflow counter grows and the caller answers 503 with ``UO`` / ``x-envoy-overloaded: true``.

Simplifications:

* A call that leaves the bulkhead while still waiting (its process interrupted, e.g. by an outer
  timeout) gives up its place. resilience4j's thread-pool bulkhead does not: the queued task stays
  queued and later runs on a pool thread although nobody waits for its result; a caller that wants
  that behaviour keeps the task open until the work would have finished.
* ``fair_call_handling_enabled = False`` (a barging semaphore) is accepted but served FIFO too: in
  a single-threaded simulation a freed permit has no window for a barger.
* Thread creation and hand-over take no simulated time.
* Per-call events (``CALL_PERMITTED``, ``CALL_REJECTED``, ``CALL_FINISHED``, resilience4j's
  ``BulkheadEvent.Type``) go to ``on_event(kind, line)`` only with ``call_events=True``, so the hot
  path builds no strings; counters are always kept.

The module reads time only from ``env.now`` and draws no randomness.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import simpy

EventSink = Callable[[str, str], None]
"""``on_event(kind, line)``: where a pattern sends its events."""

EVENT_CALL_PERMITTED = "CALL_PERMITTED"
EVENT_CALL_REJECTED = "CALL_REJECTED"
EVENT_CALL_FINISHED = "CALL_FINISHED"


def _millis(seconds: float) -> int:
    """``Duration.toMillis()``: whole milliseconds, truncated."""
    return math.floor(round(seconds * 1_000_000_000) / 1_000_000)


def bulkhead_full_message(name: str) -> str:
    """``BulkheadFullException``'s message."""
    return f"Bulkhead '{name}' is full and does not permit further calls"


class _Events:
    """The three per-call events of both resilience4j bulkheads."""

    __slots__ = ("name", "sink")

    def __init__(self, name: str, on_event: EventSink | None, call_events: bool) -> None:
        self.name = name
        self.sink = on_event if call_events else None
        """Where the lines go; None when per-call events are off (the hot path tests this)."""

    def permitted(self) -> None:
        if self.sink is not None:
            self.sink(EVENT_CALL_PERMITTED, f"Bulkhead '{self.name}' permitted a call.")

    def rejected(self) -> None:
        if self.sink is not None:
            self.sink(EVENT_CALL_REJECTED, f"Bulkhead '{self.name}' rejected a call.")

    def finished(self) -> None:
        if self.sink is not None:
            self.sink(EVENT_CALL_FINISHED, f"Bulkhead '{self.name}' has finished a call.")


# --------------------------------------------------------------------------------------------
# SemaphoreBulkhead
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkheadConfig:
    """resilience4j ``BulkheadConfig`` (durations in seconds).

    Attributes:
        max_concurrent_calls: 25 (``DEFAULT_MAX_CONCURRENT_CALLS``).
        max_wait_duration: 0 s: reject at once when full (``DEFAULT_MAX_WAIT_DURATION``).
        fair_call_handling_enabled: True (``DEFAULT_FAIR_CALL_HANDLING_STRATEGY_ENABLED``).
    """

    max_concurrent_calls: int = 25
    max_wait_duration: float = 0.0
    fair_call_handling_enabled: bool = True

    def __post_init__(self) -> None:
        """Reject what ``BulkheadConfig.Builder`` rejects."""
        if self.max_concurrent_calls < 0:
            raise ValueError("maxConcurrentCalls must be an integer value >= 0")
        if self.max_wait_duration < 0:
            raise ValueError("maxWaitDuration must be a positive integer value >= 0")


class Permit(simpy.Event):
    """A request for a bulkhead slot: an event whose value is True (granted) or False (rejected).

    Use it like ``simpy.Resource.request()``; leaving the ``with`` block gives the slot back (or
    the place in the queue), also when the process is interrupted::

        with bulkhead.request() as permit:
            if not (yield permit):
                return BULKHEAD_FULL
            ...

    ``granted`` can be read without yielding once the event is triggered.
    """

    def __init__(self, env: simpy.Environment, owner: _PermitOwner) -> None:
        super().__init__(env)
        self.owner = owner
        self.released = False

    @property
    def granted(self) -> bool:
        """Whether the slot was granted (False while waiting or when rejected)."""
        return self.triggered and self._value is True

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.owner.leave(self)


class _PermitOwner:
    def leave(self, permit: Permit) -> None:
        raise NotImplementedError


class SemaphoreBulkhead(_PermitOwner):
    """resilience4j's ``SemaphoreBulkhead`` on simulated time.

    Args:
        env: the simulation environment.
        name: the bulkhead's name (in events and in :func:`bulkhead_full_message`).
        config: settings; defaults to :class:`BulkheadConfig`'s.
        on_event: ``on_event(kind, line)`` for the per-call events.
        call_events: send per-call events (off by default: the hot path builds no strings).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: BulkheadConfig | None = None,
        on_event: EventSink | None = None,
        *,
        call_events: bool = False,
    ) -> None:
        self.env = env
        self.name = name
        self.config = config or BulkheadConfig()
        self._events = _Events(name, on_event, call_events)
        self._max_wait = _millis(self.config.max_wait_duration) / 1000
        self.available_concurrent_calls = self.config.max_concurrent_calls
        """``Semaphore.availablePermits()``."""
        self._waiters: deque[Permit] = deque()
        self.permitted = 0
        self.rejected = 0
        self.finished = 0
        self.max_in_flight = 0
        """The most calls in flight at once so far."""

    @property
    def max_allowed_concurrent_calls(self) -> int:
        """``getMaxAllowedConcurrentCalls``."""
        return self.config.max_concurrent_calls

    @property
    def in_flight(self) -> int:
        """Calls holding a permit now."""
        return self.config.max_concurrent_calls - self.available_concurrent_calls

    @property
    def waiting(self) -> int:
        """Calls waiting for a permit now."""
        return len(self._waiters)

    @property
    def saturation(self) -> float:
        """Share of the permits in use, 0..1 (1 for a zero-permit bulkhead)."""
        limit = self.config.max_concurrent_calls
        return self.in_flight / limit if limit else 1.0

    def _grant(self) -> None:
        available = self.available_concurrent_calls - 1
        self.available_concurrent_calls = available
        self.permitted += 1
        in_flight = self.config.max_concurrent_calls - available  # in_flight, inline (per call)
        if in_flight > self.max_in_flight:
            self.max_in_flight = in_flight
        if self._events.sink is not None:
            self._events.permitted()

    def _reject(self) -> None:
        self.rejected += 1
        self._events.rejected()

    def try_acquire_permission(self) -> bool:
        """Take a permit now if one is free and nobody waits; never waits.

        This is ``tryAcquirePermission`` for ``max_wait_duration`` 0 (the default); with a
        positive wait use :meth:`request`. False means ``BulkheadFullException``.
        """
        if self.available_concurrent_calls > 0 and not self._waiters:
            self._grant()
            return True
        self._reject()
        return False

    def request(self) -> Permit:
        """Ask for a permit, waiting at most ``max_wait_duration`` (see :class:`Permit`)."""
        permit = Permit(self.env, self)
        if self.available_concurrent_calls > 0 and not self._waiters:
            self._grant()
            permit.succeed(True)
        elif self._max_wait <= 0:
            self._reject()
            permit.succeed(False)
        else:
            self._waiters.append(permit)
            timer = self.env.timeout(self._max_wait)
            timer.callbacks.append(lambda _: self._give_up(permit))
        return permit

    def _give_up(self, permit: Permit) -> None:
        if not permit.triggered:
            self._waiters.remove(permit)
            self._reject()
            permit.succeed(False)

    def on_complete(self) -> None:
        """A permitted call finished (``onComplete``): release and send ``CALL_FINISHED``."""
        self.finished += 1
        if self._events.sink is not None:
            self._events.finished()
        self.release_permission()

    def release_permission(self) -> None:
        """Give a permit back without finishing a call (``releasePermission``)."""
        if self._waiters:
            # The permit passes straight to the longest waiter (fair semaphore).
            permit = self._waiters.popleft()
            self.available_concurrent_calls += 1
            self._grant()
            permit.succeed(True)
        else:
            self.available_concurrent_calls += 1

    def leave(self, permit: Permit) -> None:
        """End of a ``with`` block: finish a granted call, or stop waiting."""
        if permit.released:
            return
        permit.released = True
        if permit.granted:
            self.on_complete()
        elif not permit.triggered:
            self._waiters.remove(permit)


# --------------------------------------------------------------------------------------------
# ThreadPoolBulkhead
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadPoolBulkheadConfig:
    """resilience4j ``ThreadPoolBulkheadConfig`` (durations in seconds).

    Attributes:
        cpus: ``Runtime.availableProcessors()`` of the calling JVM; the pool sizes default from
            it.
        core_thread_pool_size: None = ``cpus - 1``, at least 1
            (``DEFAULT_CORE_THREAD_POOL_SIZE``).
        max_thread_pool_size: None = ``cpus`` (``DEFAULT_MAX_THREAD_POOL_SIZE``).
        queue_capacity: 100 (``DEFAULT_QUEUE_CAPACITY``).
        keep_alive_duration: 20 ms (``DEFAULT_KEEP_ALIVE_DURATION``).
    """

    cpus: int = 1
    core_thread_pool_size: int | None = None
    max_thread_pool_size: int | None = None
    queue_capacity: int = 100
    keep_alive_duration: float = 0.020

    def __post_init__(self) -> None:
        """Reject what ``ThreadPoolBulkheadConfig.Builder`` rejects."""
        if self.cpus < 1:
            raise ValueError("cpus must be >= 1")
        if self.core_size < 1:
            raise ValueError("coreThreadPoolSize must be a positive integer value >= 1")
        if self.max_size < 1:
            raise ValueError("maxThreadPoolSize must be a positive integer value >= 1")
        if self.max_size < self.core_size:
            raise ValueError(
                "maxThreadPoolSize must be a greater than or equals to coreThreadPoolSize"
            )
        if self.queue_capacity < 1:
            raise ValueError("queueCapacity must be a positive integer value >= 1")
        if self.keep_alive_duration < 0:
            raise ValueError("keepAliveDuration must be a positive integer value >= 0")

    @property
    def core_size(self) -> int:
        """The core pool size in effect."""
        if self.core_thread_pool_size is not None:
            return self.core_thread_pool_size
        return self.cpus - 1 if self.cpus > 1 else 1

    @property
    def max_size(self) -> int:
        """The maximum pool size in effect."""
        return self.max_thread_pool_size if self.max_thread_pool_size is not None else self.cpus


class _Worker:
    """A pool thread; ``idle_since`` identifies its current idle spell (for keep-alive)."""

    __slots__ = ("idle_since",)

    def __init__(self) -> None:
        self.idle_since: object | None = None


class ThreadPoolBulkhead(_PermitOwner):
    """resilience4j's ``FixedThreadPoolBulkhead`` on simulated time.

    The call path::

        with bulkhead.submit() as task:
            if not (yield task):        # False: rejected (BulkheadFullException)
                return BULKHEAD_FULL
            ...                         # runs on a pool thread until the block ends

    The task event fires when a thread starts the call: at once, or when it leaves the queue.

    Args:
        env: the simulation environment.
        name: the bulkhead's name.
        config: settings; defaults to :class:`ThreadPoolBulkheadConfig`'s (1 CPU).
        on_event: ``on_event(kind, line)`` for the per-call events.
        call_events: send per-call events (off by default).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: ThreadPoolBulkheadConfig | None = None,
        on_event: EventSink | None = None,
        *,
        call_events: bool = False,
    ) -> None:
        self.env = env
        self.name = name
        self.config = config or ThreadPoolBulkheadConfig()
        self._events = _Events(name, on_event, call_events)
        self._core = self.config.core_size
        self._max = self.config.max_size
        self._keep_alive = _millis(self.config.keep_alive_duration) / 1000
        self.thread_pool_size = 0
        """Threads alive now (``getPoolSize``)."""
        self.active = 0
        """Threads running a call now."""
        self._idle: deque[_Worker] = deque()
        self._queue: deque[Permit] = deque()
        self._running: dict[Permit, _Worker] = {}
        self.submitted = 0
        self.rejected = 0
        self.finished = 0
        self.max_queue_depth = 0
        """The deepest the queue has been so far."""

    @property
    def core_thread_pool_size(self) -> int:
        """``getCoreThreadPoolSize``."""
        return self._core

    @property
    def maximum_thread_pool_size(self) -> int:
        """``getMaximumThreadPoolSize``."""
        return self._max

    @property
    def queue_capacity(self) -> int:
        """``getQueueCapacity``."""
        return self.config.queue_capacity

    @property
    def queue_depth(self) -> int:
        """Calls waiting in the queue now (``getQueueDepth``)."""
        return len(self._queue)

    @property
    def remaining_queue_capacity(self) -> int:
        """``getRemainingQueueCapacity``."""
        return self.config.queue_capacity - len(self._queue)

    @property
    def in_flight(self) -> int:
        """Calls running or queued now."""
        return self.active + len(self._queue)

    @property
    def saturation(self) -> float:
        """Share of the capacity (max threads + queue) in use, 0..1."""
        return self.in_flight / (self._max + self.config.queue_capacity)

    def _start(self, task: Permit, worker: _Worker) -> None:
        worker.idle_since = None
        self.active += 1
        self._running[task] = worker
        self._events.permitted()
        task.succeed(True)

    def submit(self) -> Permit:
        """Submit a call (``ThreadPoolExecutor.execute``); see the class docstring."""
        task = Permit(self.env, self)
        self.submitted += 1
        if self.thread_pool_size < self._core:
            self.thread_pool_size += 1
            self._start(task, _Worker())
        elif len(self._queue) < self.config.queue_capacity:
            if self._idle:
                self._start(task, self._idle.popleft())
            else:
                self._queue.append(task)
                if len(self._queue) > self.max_queue_depth:
                    self.max_queue_depth = len(self._queue)
        elif self.thread_pool_size < self._max:
            self.thread_pool_size += 1
            self._start(task, _Worker())
        else:
            self.rejected += 1
            self._events.rejected()
            task.succeed(False)
        return task

    def leave(self, task: Permit) -> None:
        """End of a ``with`` block: the call finished (its thread moves on), or left the queue."""
        if task.released:
            return
        task.released = True
        worker = self._running.pop(task, None)
        if worker is not None:
            self.active -= 1
            self.finished += 1
            self._events.finished()
            self._next_task(worker)
        elif not task.triggered:
            self._queue.remove(task)

    def _next_task(self, worker: _Worker) -> None:
        """``getTask``: take the oldest queued call, or idle (timed while above core)."""
        if self._queue:
            self._start(self._queue.popleft(), worker)
            return
        spell = worker.idle_since = object()
        self._idle.append(worker)
        if self.thread_pool_size > self._core:
            timer = self.env.timeout(self._keep_alive)
            timer.callbacks.append(lambda _: self._keep_alive_expired(worker, spell))

    def _keep_alive_expired(self, worker: _Worker, spell: object) -> None:
        if worker.idle_since is spell and self.thread_pool_size > self._core:
            self._idle.remove(worker)
            worker.idle_since = None
            self.thread_pool_size -= 1


# --------------------------------------------------------------------------------------------
# Envoy cluster circuit breakers
# --------------------------------------------------------------------------------------------

OVERFLOW_STATUS = 503
"""Envoy's local reply when a cluster circuit breaker overflows."""
OVERFLOW_RESPONSE_FLAG = "UO"
"""Access-log response flag: upstream overflow."""
OVERFLOW_HEADER = ("x-envoy-overloaded", "true")
"""Header Envoy adds to the local reply."""


@dataclass(frozen=True)
class ClusterCircuitBreakerThresholds:
    """Envoy ``config.cluster.v3.CircuitBreakers.Thresholds`` for one routing priority.

    Attributes:
        max_connections: 1024 (proto default).
        max_pending_requests: 1024 (proto default).
        max_requests: 1024 (proto default).
        max_retries: 3 (proto default).
        max_connection_pools: None = unlimited (proto default).
    """

    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3
    max_connection_pools: int | None = None


class ClusterCircuitBreakers:
    """Envoy's per-cluster resource counters (``ResourceManagerImpl``).

    Each ``try_*`` takes one unit when the count is below its maximum (``canCreate``:
    ``count < max``) and returns True; otherwise it grows the overflow counter Envoy reports and
    returns False, and the caller answers :data:`OVERFLOW_STATUS`. Each ``end_*`` gives one back.
    Overflowing ``max_requests`` counts as ``upstream_rq_pending_overflow``, as in Envoy.
    """

    __slots__ = (
        "connection_pools",
        "connections",
        "pending_requests",
        "requests",
        "retries",
        "thresholds",
        "upstream_cx_overflow",
        "upstream_cx_pool_overflow",
        "upstream_rq_pending_overflow",
        "upstream_rq_retry_overflow",
    )

    def __init__(self, thresholds: ClusterCircuitBreakerThresholds | None = None) -> None:
        self.thresholds = thresholds or ClusterCircuitBreakerThresholds()
        self.connections = self.pending_requests = self.requests = self.retries = 0
        self.connection_pools = 0
        self.upstream_cx_overflow = 0
        self.upstream_cx_pool_overflow = 0
        self.upstream_rq_pending_overflow = 0
        self.upstream_rq_retry_overflow = 0

    def try_open_connection(self) -> bool:
        """A new upstream connection (``max_connections``)."""
        if self.connections < self.thresholds.max_connections:
            self.connections += 1
            return True
        self.upstream_cx_overflow += 1
        return False

    def end_connection(self) -> None:
        """An upstream connection closed."""
        self.connections -= 1

    def try_open_connection_pool(self) -> bool:
        """A new connection pool (``max_connection_pools``, unlimited by default)."""
        limit = self.thresholds.max_connection_pools
        if limit is None or self.connection_pools < limit:
            self.connection_pools += 1
            return True
        self.upstream_cx_pool_overflow += 1
        return False

    def end_connection_pool(self) -> None:
        """A connection pool went away."""
        self.connection_pools -= 1

    def try_pend_request(self) -> bool:
        """A request waits for a connection (``max_pending_requests``)."""
        if self.pending_requests < self.thresholds.max_pending_requests:
            self.pending_requests += 1
            return True
        self.upstream_rq_pending_overflow += 1
        return False

    def end_pending_request(self) -> None:
        """A pending request got a connection or gave up."""
        self.pending_requests -= 1

    def try_start_request(self) -> bool:
        """An active request (``max_requests``)."""
        if self.requests < self.thresholds.max_requests:
            self.requests += 1
            return True
        self.upstream_rq_pending_overflow += 1
        return False

    def end_request(self) -> None:
        """An active request completed."""
        self.requests -= 1

    def try_start_retry(self) -> bool:
        """An outstanding retry (``max_retries``)."""
        if self.retries < self.thresholds.max_retries:
            self.retries += 1
            return True
        self.upstream_rq_retry_overflow += 1
        return False

    def end_retry(self) -> None:
        """A retry completed."""
        self.retries -= 1

    @property
    def remaining(self) -> dict[str, Any]:
        """``remaining_*`` gauges (``track_remaining``)."""
        t = self.thresholds
        return {
            "remaining_cx": t.max_connections - self.connections,
            "remaining_pending": t.max_pending_requests - self.pending_requests,
            "remaining_rq": t.max_requests - self.requests,
            "remaining_retries": t.max_retries - self.retries,
            "remaining_cx_pools": (
                None
                if t.max_connection_pools is None
                else t.max_connection_pools - self.connection_pools
            ),
        }
