"""Circuit breakers: resilience4j's ``CircuitBreaker`` and Envoy's outlier detection.

Sources: resilience4j/resilience4j ``CircuitBreakerConfig.java`` (``DEFAULT_*`` constants),
``internal/CircuitBreakerStateMachine.java`` (``ClosedState``, ``OpenState``, ``HalfOpenState``,
``DisabledState``, ``MetricsOnlyState``, ``ForcedOpenState``),
``internal/CircuitBreakerMetrics.java`` (``checkIfThresholdsExceeded``),
``core/metrics/FixedSizeSlidingWindowMetrics.java``, ``SlidingTimeWindowMetrics.java``,
``SnapshotImpl.java`` and the ``event/CircuitBreakerOn*Event`` classes; envoyproxy/envoy
``api/envoy/config/cluster/v3/outlier_detection.proto`` and
``source/common/upstream/outlier_detection_impl.cc`` (``ejectHost``, ``checkHostForUneject``,
``onIntervalTimer``, ``processSuccessRateEjections``); see ``../shared/reference/semantics.md`` §8
and §12 V21-V24, V34.

resilience4j model (what :class:`CircuitBreaker` reproduces):

* CLOSED permits every call and records each outcome in a sliding window: COUNT_BASED keeps the
  last ``sliding_window_size`` outcomes; TIME_BASED keeps one-second buckets (``floor(env.now)``)
  for the last ``sliding_window_size`` seconds, the current second included. After each recorded
  outcome, when at least the minimum number of calls is buffered (``min(minimum_number_of_calls,
  sliding_window_size)`` for COUNT_BASED, ``minimum_number_of_calls`` for TIME_BASED) and the
  failure rate or the slow-call rate is ``>=`` its threshold, the breaker goes OPEN.
* Rates are Java ``float``: ``failed * 100.0f / total``; they read -1 below the minimum.
* A call is slow when its duration, in whole nanoseconds, is strictly greater than
  ``slow_call_duration_threshold``: a call of exactly the threshold is not slow.
* OPEN rejects every call (``CallNotPermittedException``) until ``env.now`` is *strictly after*
  ``opened_at + wait``; the first call after that moves the breaker to HALF_OPEN and tries to take a
  permit there. With ``automatic_transition_from_open_to_half_open_enabled`` a timer moves it at
  ``opened_at + wait`` exactly. Outcomes of calls admitted before the breaker opened are still
  recorded (in the window it had when it opened) and change nothing.
* HALF_OPEN hands out ``permitted_number_of_calls_in_half_open_state`` permits, no more (a
  released permit, e.g. an ignored error, comes back); outcomes go to a fresh COUNT_BASED window of
  that size whose minimum is ``min(minimum_number_of_calls, permitted)``. As soon as that minimum
  is buffered the breaker decides: thresholds exceeded -> OPEN, else -> CLOSED with a fresh window.
  With ``max_wait_duration_in_half_open_state`` >= 1 ms, a breaker still half-open after that long
  goes to ``transition_to_state_after_wait_duration`` (OPEN by default).
* ``attempts`` counts consecutive openings (CLOSED -> OPEN is 1, each HALF_OPEN -> OPEN adds one);
  an optional ``wait_interval_function_in_open_state`` maps it to the open wait (resilience4j's
  ``IntervalFunction``); CLOSED resets it.
* DISABLED permits all and records nothing, METRICS_ONLY permits all, records and only reports
  thresholds (once each), FORCED_OPEN rejects all. Manual transitions follow resilience4j's
  ``StateTransition`` table; a same-state transition replaces the state without an event.

Simplifications:

* Time is ``env.now`` in seconds (resilience4j's injected ``Clock``); the open wait is truncated
  to whole milliseconds as ``Duration.toMillis()`` does, durations are rounded to nanoseconds.
* Exceptions are not modelled: the caller says whether an outcome is an error (``on_error``), a
  success (``on_success``) or ignored (``release_permission``); ``recordExceptions``,
  ``ignoreExceptions``, ``recordResult`` and ``transitionOnResult`` predicates are the caller's
  business. Everything is single-threaded, so resilience4j's CAS races do not exist here.
* Events go to ``on_event(kind, line)`` with resilience4j's event type as ``kind`` and its
  ``toString()`` without the leading timestamp as ``line`` (the recorder stamps the time). State
  transitions, threshold and reset events are always sent; per-call events (SUCCESS, ERROR,
  IGNORED_ERROR, NOT_PERMITTED) only with ``call_events=True``, so the hot path builds no strings.

Envoy model (:class:`OutlierDetector`): see its docstring.

The module reads time only from ``env.now`` and draws randomness only from a generator handed in.
On the per-request path it is read as ``env._now``, the attribute behind the property (SimPy is
pinned to 4.1.x: :mod:`patterns.timers`).
"""

from __future__ import annotations

import math
import re
import struct
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import simpy

EventSink = Callable[[str, str], None]
"""``on_event(kind, line)``: where a pattern sends its transition events."""

NANOS_PER_SECOND = 1_000_000_000


def _nanos(seconds: float) -> int:
    """Whole nanoseconds of a duration given in seconds."""
    return round(seconds * NANOS_PER_SECOND)


def _millis(seconds: float) -> int:
    """``Duration.toMillis()``: whole milliseconds, truncated."""
    return math.floor(round(seconds * NANOS_PER_SECOND) / 1_000_000)


def _float32(value: float) -> float:
    """``value`` rounded to a Java ``float``."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def java_float_string(value: float) -> str:
    """``Float.toString`` for the rates resilience4j prints: ``100.0``, ``60.0``, ``33.333332``.

    The shortest decimal that reads back as the same ``float``, with ``.0`` for whole numbers
    (plain notation; rates never need Java's exponent form).
    """
    value = _float32(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if _float32(float(text)) == value:
            break
    if "e" in text:
        text = f"{float(text):f}".rstrip("0")
    if "." not in text:
        text += ".0"
    if text.endswith("."):
        text += "0"
    return text


# --------------------------------------------------------------------------------------------
# resilience4j CircuitBreaker
# --------------------------------------------------------------------------------------------

DEFAULT_FAILURE_RATE_THRESHOLD = 50.0
"""Percent (``DEFAULT_FAILURE_RATE_THRESHOLD = 50``)."""
DEFAULT_SLOW_CALL_RATE_THRESHOLD = 100.0
"""Percent (``DEFAULT_SLOW_CALL_RATE_THRESHOLD = 100``)."""
DEFAULT_WAIT_DURATION_IN_OPEN_STATE = 60.0
"""Seconds (``DEFAULT_WAIT_DURATION_IN_OPEN_STATE = 60``)."""
DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN_STATE = 10
"""Calls (``DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN_STATE = 10``)."""
DEFAULT_MINIMUM_NUMBER_OF_CALLS = 100
"""Calls (``DEFAULT_MINIMUM_NUMBER_OF_CALLS = 100``)."""
DEFAULT_SLIDING_WINDOW_SIZE = 100
"""Calls or seconds (``DEFAULT_SLIDING_WINDOW_SIZE = 100``)."""
DEFAULT_SLOW_CALL_DURATION_THRESHOLD = 60.0
"""Seconds (``DEFAULT_SLOW_CALL_DURATION_THRESHOLD = 60``)."""
DEFAULT_WAIT_DURATION_IN_HALF_OPEN_STATE = 0.0
"""Seconds; 0 waits indefinitely (``DEFAULT_WAIT_DURATION_IN_HALF_OPEN_STATE = 0``)."""

# Event kinds: resilience4j's ``CircuitBreakerEvent.Type`` names.
EVENT_STATE_TRANSITION = "STATE_TRANSITION"
EVENT_FAILURE_RATE_EXCEEDED = "FAILURE_RATE_EXCEEDED"
EVENT_SLOW_CALL_RATE_EXCEEDED = "SLOW_CALL_RATE_EXCEEDED"
EVENT_RESET = "RESET"
EVENT_NOT_PERMITTED = "NOT_PERMITTED"
EVENT_SUCCESS = "SUCCESS"
EVENT_ERROR = "ERROR"
EVENT_IGNORED_ERROR = "IGNORED_ERROR"

_FORCE_PUBLISH = frozenset({EVENT_STATE_TRANSITION, EVENT_RESET})
"""Event types published whatever the state (``Type.forcePublish``)."""


class SlidingWindowType(StrEnum):
    """``CircuitBreakerConfig.SlidingWindowType``."""

    COUNT_BASED = "COUNT_BASED"
    TIME_BASED = "TIME_BASED"


class State(StrEnum):
    """``CircuitBreaker.State``."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    DISABLED = "DISABLED"
    FORCED_OPEN = "FORCED_OPEN"
    METRICS_ONLY = "METRICS_ONLY"

    @property
    def allow_publish(self) -> bool:
        """``State.allowPublish``: DISABLED and FORCED_OPEN publish only forced events."""
        return self not in (State.DISABLED, State.FORCED_OPEN)


_LEGAL_TRANSITIONS = frozenset(
    (a, b)
    for a, targets in {
        State.CLOSED: "CLOSED OPEN DISABLED METRICS_ONLY FORCED_OPEN",
        State.HALF_OPEN: "HALF_OPEN CLOSED OPEN DISABLED METRICS_ONLY FORCED_OPEN",
        State.OPEN: "OPEN CLOSED HALF_OPEN DISABLED METRICS_ONLY FORCED_OPEN",
        State.FORCED_OPEN: "FORCED_OPEN CLOSED OPEN DISABLED METRICS_ONLY HALF_OPEN",
        State.DISABLED: "DISABLED CLOSED OPEN FORCED_OPEN HALF_OPEN METRICS_ONLY",
        State.METRICS_ONLY: "METRICS_ONLY CLOSED FORCED_OPEN DISABLED",
    }.items()
    for b in (State(t) for t in targets.split())
)
"""``CircuitBreaker.StateTransition``: the transitions resilience4j allows."""


class IllegalStateTransitionError(ValueError):
    """``IllegalStateTransitionException``: a manual transition resilience4j refuses."""


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """resilience4j ``CircuitBreakerConfig`` (names in snake_case, durations in seconds).

    Attributes:
        sliding_window_type: COUNT_BASED (``DEFAULT_SLIDING_WINDOW_TYPE``).
        sliding_window_size: 100 calls or seconds (``DEFAULT_SLIDING_WINDOW_SIZE``).
        minimum_number_of_calls: 100 (``DEFAULT_MINIMUM_NUMBER_OF_CALLS``); capped at the window
            size for COUNT_BASED.
        failure_rate_threshold: 50 % (``DEFAULT_FAILURE_RATE_THRESHOLD``), in (0, 100].
        slow_call_rate_threshold: 100 % (``DEFAULT_SLOW_CALL_RATE_THRESHOLD``), in (0, 100].
        slow_call_duration_threshold: 60 s (``DEFAULT_SLOW_CALL_DURATION_THRESHOLD``).
        wait_duration_in_open_state: 60 s (``DEFAULT_WAIT_DURATION_IN_OPEN_STATE``).
        permitted_number_of_calls_in_half_open_state: 10
            (``DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN_STATE``).
        max_wait_duration_in_half_open_state: 0 s = wait indefinitely
            (``DEFAULT_WAIT_DURATION_IN_HALF_OPEN_STATE``).
        transition_to_state_after_wait_duration: OPEN
            (``DEFAULT_TRANSITION_TO_STATE_AFTER_WAIT_DURATION``); OPEN or CLOSED.
        automatic_transition_from_open_to_half_open_enabled: False (field initialiser of
            ``automaticTransitionFromOpenToHalfOpenEnabled``).
        wait_interval_function_in_open_state: optional ``IntervalFunction``: attempts (1 for the
            first opening) -> open wait in seconds; when set it replaces
            ``wait_duration_in_open_state`` (resilience4j refuses both at once).
    """

    sliding_window_type: SlidingWindowType = SlidingWindowType.COUNT_BASED
    sliding_window_size: int = DEFAULT_SLIDING_WINDOW_SIZE
    minimum_number_of_calls: int = DEFAULT_MINIMUM_NUMBER_OF_CALLS
    failure_rate_threshold: float = DEFAULT_FAILURE_RATE_THRESHOLD
    slow_call_rate_threshold: float = DEFAULT_SLOW_CALL_RATE_THRESHOLD
    slow_call_duration_threshold: float = DEFAULT_SLOW_CALL_DURATION_THRESHOLD
    wait_duration_in_open_state: float = DEFAULT_WAIT_DURATION_IN_OPEN_STATE
    permitted_number_of_calls_in_half_open_state: int = DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN_STATE
    max_wait_duration_in_half_open_state: float = DEFAULT_WAIT_DURATION_IN_HALF_OPEN_STATE
    transition_to_state_after_wait_duration: State = State.OPEN
    automatic_transition_from_open_to_half_open_enabled: bool = False
    wait_interval_function_in_open_state: Callable[[int], float] | None = None

    def __post_init__(self) -> None:
        """Reject what ``CircuitBreakerConfig.Builder`` rejects."""
        if not 0 < self.failure_rate_threshold <= 100:
            raise ValueError("failure_rate_threshold must be between 1 and 100")
        if not 0 < self.slow_call_rate_threshold <= 100:
            raise ValueError("slow_call_rate_threshold must be between 1 and 100")
        if self.sliding_window_size < 1:
            raise ValueError("sliding_window_size must be greater than 0")
        if self.minimum_number_of_calls < 1:
            raise ValueError("minimum_number_of_calls must be greater than 0")
        if self.permitted_number_of_calls_in_half_open_state < 1:
            raise ValueError("permitted_number_of_calls_in_half_open_state must be greater than 0")
        if _millis(self.wait_duration_in_open_state) < 1:
            raise ValueError("wait_duration_in_open_state must be at least 1 ms")
        if _nanos(self.slow_call_duration_threshold) < 1:
            raise ValueError("slow_call_duration_threshold must be at least 1 ns")
        if self.max_wait_duration_in_half_open_state < 0:
            raise ValueError("max_wait_duration_in_half_open_state must be >= 0")
        if self.transition_to_state_after_wait_duration not in (State.OPEN, State.CLOSED):
            raise ValueError("transition_to_state_after_wait_duration must be OPEN or CLOSED")

    def open_wait(self, attempts: int) -> float:
        """Seconds to stay OPEN at the ``attempts``-th consecutive opening, whole ms."""
        wait = (
            self.wait_duration_in_open_state
            if self.wait_interval_function_in_open_state is None
            else self.wait_interval_function_in_open_state(attempts)
        )
        return _millis(wait) / 1000


class _Window(Protocol):
    """A sliding window of outcomes (``core.metrics.Metrics``)."""

    total: int
    failed: int
    slow: int
    slow_failed: int

    def record(self, now: float, outcome: int) -> None: ...

    def refresh(self, now: float) -> None: ...


_FAILED = 1
_SLOW = 2


class _CountWindow:
    """``FixedSizeSlidingWindowMetrics``: the last ``size`` outcomes in a ring buffer."""

    __slots__ = ("_head", "_ring", "failed", "slow", "slow_failed", "total")

    def __init__(self, size: int) -> None:
        self._ring: list[int | None] = [None] * size
        self._head = 0
        self.total = self.failed = self.slow = self.slow_failed = 0

    def _add(self, outcome: int, sign: int) -> None:
        self.total += sign
        if outcome & _FAILED:
            self.failed += sign
        if outcome & _SLOW:
            self.slow += sign
            if outcome & _FAILED:
                self.slow_failed += sign

    def record(self, now: float, outcome: int) -> None:
        ring = self._ring
        if not ring:
            return
        head = self._head
        old = ring[head]
        ring[head] = outcome
        self._head = head + 1 if head + 1 < len(ring) else 0
        if old is None:
            self._add(outcome, 1)
        elif old != outcome:  # an equal outcome replacing the oldest changes no count
            self._add(old, -1)
            self._add(outcome, 1)

    def refresh(self, now: float) -> None:
        return None


class _TimeWindow:
    """``SlidingTimeWindowMetrics``: one bucket per epoch second, the last ``size`` seconds.

    A bucket for second ``s`` counts while ``floor(now) - s < size``.
    """

    __slots__ = ("_buckets", "_size", "failed", "slow", "slow_failed", "total")

    def __init__(self, size: int) -> None:
        self._size = size
        self._buckets: deque[list[int]] = deque()  # [second, total, failed, slow, slow_failed]
        self.total = self.failed = self.slow = self.slow_failed = 0

    def refresh(self, now: float) -> None:
        oldest_live = math.floor(now) - self._size + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest_live:
            _, total, failed, slow, slow_failed = buckets.popleft()
            self.total -= total
            self.failed -= failed
            self.slow -= slow
            self.slow_failed -= slow_failed

    def record(self, now: float, outcome: int) -> None:
        self.refresh(now)
        second = math.floor(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0, 0, 0])
        bucket = self._buckets[-1]
        failed = outcome & _FAILED
        slow = (outcome & _SLOW) >> 1
        bucket[1] += 1
        bucket[2] += failed
        bucket[3] += slow
        bucket[4] += failed & slow
        self.total += 1
        self.failed += failed
        self.slow += slow
        self.slow_failed += failed & slow


class CircuitBreakerMetrics:
    """``CircuitBreakerMetrics``: one state's window, its minimum and its rejected-call count."""

    __slots__ = ("_window", "minimum_number_of_calls", "number_of_not_permitted_calls")

    def __init__(self, size: int, window_type: SlidingWindowType, config: CircuitBreakerConfig):
        if window_type is SlidingWindowType.COUNT_BASED:
            self._window: _Window = _CountWindow(size)
            self.minimum_number_of_calls = min(config.minimum_number_of_calls, size)
        else:
            self._window = _TimeWindow(size)
            self.minimum_number_of_calls = config.minimum_number_of_calls
        self.number_of_not_permitted_calls = 0

    def _rates(self) -> tuple[float, float]:
        w = self._window
        if w.total == 0 or w.total < self.minimum_number_of_calls:
            return -1.0, -1.0
        failed, slow, total = w.failed, w.slow, w.total
        return (
            _float32(failed * 100.0 / total) if failed else 0.0,
            _float32(slow * 100.0 / total) if slow else 0.0,
        )

    def record(self, now: float, outcome: int) -> tuple[float, float]:
        """Record an outcome; returns (failure rate, slow-call rate) after it, -1 below minimum."""
        self._window.record(now, outcome)
        return self._rates()

    def snapshot(self, now: float) -> tuple[float, float]:
        """(failure rate, slow-call rate) now (the time window ages first)."""
        self._window.refresh(now)
        return self._rates()

    def counts(self, now: float) -> tuple[int, int, int, int]:
        """(buffered, failed, slow, slow failed) calls now."""
        w = self._window
        w.refresh(now)
        return w.total, w.failed, w.slow, w.slow_failed


STATE_TRANSITION_LINE = re.compile(r"CircuitBreaker '([^']+)' changed state from (\w+) to (\w+)")
"""Finds name, from and to state (groups 1-3) in a breaker's state-transition line."""


class CircuitBreaker:
    """A resilience4j ``CircuitBreakerStateMachine`` on simulated time.

    The call path (non-blocking, no process of its own)::

        if not breaker.try_acquire_permission():
            return CIRCUIT_OPEN                    # CallNotPermittedException
        start = env.now
        ok = yield from inner()                    # may raise simpy.Interrupt
        (breaker.on_success if ok else breaker.on_error)(env.now - start)

    A call that ends in an ignored exception, or is abandoned without an outcome, must call
    :meth:`release_permission` instead (it only matters in HALF_OPEN, as in resilience4j).

    Args:
        env: the simulation environment (its clock is the breaker's ``Clock``).
        name: the breaker's name, e.g. ``"frontend->cart"``.
        config: settings; defaults to :class:`CircuitBreakerConfig`'s.
        on_event: ``on_event(kind, line)`` receives the events (module docstring).
        call_events: also send SUCCESS, ERROR, IGNORED_ERROR and NOT_PERMITTED per call.
    """

    __slots__ = (
        "_auto_timer_token",
        "_call_events",
        "_failure_threshold",
        "_flags",
        "_half_open_permits",
        "_metrics",
        "_on_event",
        "_slow_nanos",
        "_slow_threshold",
        "_wait_until",
        "attempts",
        "config",
        "env",
        "name",
        "state",
    )

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: CircuitBreakerConfig | None = None,
        on_event: EventSink | None = None,
        *,
        call_events: bool = False,
    ) -> None:
        self.env = env
        self.name = name
        self.config = config or CircuitBreakerConfig()
        self._on_event = on_event
        self._call_events = call_events and on_event is not None
        self.state = State.CLOSED
        self.attempts = 0
        """Consecutive openings (resilience4j's ``attempts``), 0 when CLOSED."""
        self._metrics = self._closed_metrics()
        self._wait_until = 0.0
        self._half_open_permits = 0
        self._flags: set[str] = set()
        """METRICS_ONLY: which exceeded events were already published."""
        self._auto_timer_token = object()
        """Identity of the current state instance; timers of replaced states see a new one."""
        self._failure_threshold = _float32(self.config.failure_rate_threshold)
        self._slow_threshold = _float32(self.config.slow_call_rate_threshold)
        self._slow_nanos = _nanos(self.config.slow_call_duration_threshold)

    # -- events ---------------------------------------------------------------------------------

    def _publish(self, kind: str, line: str) -> None:
        if self._on_event is not None and (kind in _FORCE_PUBLISH or self.state.allow_publish):
            self._on_event(kind, line)

    def _publish_transition(self, source: State, target: State) -> None:
        if source is not target:
            self._publish(
                EVENT_STATE_TRANSITION,
                f"CircuitBreaker '{self.name}' changed state from {source} to {target}",
            )

    def _publish_exceeded(self, failure_exceeded: bool, slow_exceeded: bool) -> None:
        failure_rate, slow_rate = self._metrics.snapshot(self.env.now)
        if failure_exceeded:
            self._publish(
                EVENT_FAILURE_RATE_EXCEEDED,
                f"CircuitBreaker '{self.name}' exceeded failure rate threshold. "
                f"Current failure rate: {java_float_string(failure_rate)}",
            )
        if slow_exceeded:
            self._publish(
                EVENT_SLOW_CALL_RATE_EXCEEDED,
                f"CircuitBreaker '{self.name}' exceeded slow call rate threshold. "
                f"Current slow call rate: {java_float_string(slow_rate)}",
            )

    # -- states ---------------------------------------------------------------------------------

    def _closed_metrics(self) -> CircuitBreakerMetrics:
        c = self.config
        return CircuitBreakerMetrics(c.sliding_window_size, c.sliding_window_type, c)

    def _enter(self, target: State) -> None:
        """Replace the current state by a new instance of ``target`` (``stateTransition``)."""
        source = self.state
        if (source, target) not in _LEGAL_TRANSITIONS:
            raise IllegalStateTransitionError(
                f"CircuitBreaker '{self.name}' tried an illegal state transition "
                f"from {source} to {target}"
            )
        token = self._auto_timer_token = object()
        c = self.config
        if target is State.CLOSED:
            self.attempts = 0
            self._metrics = self._closed_metrics()
        elif target is State.OPEN:
            self.attempts += 1
            # The window of the state it leaves goes on recording in-flight outcomes.
            wait = c.open_wait(self.attempts)
            self._wait_until = self.env.now + wait
            if c.automatic_transition_from_open_to_half_open_enabled:
                self._schedule(wait, token, self._auto_half_open)
        elif target is State.HALF_OPEN:
            permitted = c.permitted_number_of_calls_in_half_open_state
            self._metrics = CircuitBreakerMetrics(permitted, SlidingWindowType.COUNT_BASED, c)
            self._half_open_permits = permitted
            if _millis(c.max_wait_duration_in_half_open_state) >= 1:
                self._schedule(
                    _millis(c.max_wait_duration_in_half_open_state) / 1000,
                    token,
                    self._half_open_timeout,
                )
        elif target is State.FORCED_OPEN:
            self.attempts += 1
            self._metrics = CircuitBreakerMetrics(0, SlidingWindowType.COUNT_BASED, c)
        elif target is State.DISABLED:
            self.attempts = 0
            self._metrics = CircuitBreakerMetrics(0, SlidingWindowType.COUNT_BASED, c)
        else:  # METRICS_ONLY
            self.attempts = 0
            self._metrics = self._closed_metrics()
            self._flags = set()
        self.state = target
        self._publish_transition(source, target)

    def _schedule(self, delay: float, token: object, action: Callable[[], None]) -> None:
        def fire(_: simpy.Event) -> None:
            if self._auto_timer_token is token:
                action()

        timer = self.env.timeout(delay)
        timer.callbacks.append(fire)

    def _auto_half_open(self) -> None:
        self._enter(State.HALF_OPEN)

    def _half_open_timeout(self) -> None:
        self._enter(self.config.transition_to_state_after_wait_duration)

    # -- the call path --------------------------------------------------------------------------

    def try_acquire_permission(self) -> bool:
        """Whether a call may go ahead now; False is ``CallNotPermittedException``."""
        state = self.state
        if state is State.CLOSED or state is State.DISABLED or state is State.METRICS_ONLY:
            return True
        if state is State.OPEN:
            if self.env.now > self._wait_until:
                self._enter(State.HALF_OPEN)
                return self._try_half_open()
            self._metrics.number_of_not_permitted_calls += 1
        elif state is State.HALF_OPEN:
            return self._try_half_open()
        else:  # FORCED_OPEN
            self._metrics.number_of_not_permitted_calls += 1
        self._not_permitted()
        return False

    def _try_half_open(self) -> bool:
        if self._half_open_permits > 0:
            self._half_open_permits -= 1
            return True
        self._metrics.number_of_not_permitted_calls += 1
        self._not_permitted()
        return False

    def _not_permitted(self) -> None:
        if self._call_events:
            self._publish(
                EVENT_NOT_PERMITTED,
                f"CircuitBreaker '{self.name}' recorded a call which was not permitted.",
            )

    @property
    def call_not_permitted_message(self) -> str:
        """``CallNotPermittedException``'s message for the current state."""
        return f"CircuitBreaker '{self.name}' is {self.state} and does not permit further calls"

    def release_permission(self) -> None:
        """Give back a permit without an outcome (an ignored exception); only HALF_OPEN counts."""
        if self.state is State.HALF_OPEN:
            self._half_open_permits += 1

    def on_ignored_error(self, duration: float, error: str = "error") -> None:
        """An ignored exception: the permit comes back and nothing is recorded."""
        self.release_permission()
        if self._call_events:
            self._publish(
                EVENT_IGNORED_ERROR,
                f"CircuitBreaker '{self.name}' recorded an error which has been ignored: "
                f"'{error}'. Elapsed time: {_nanos(duration) // 1_000_000} ms",
            )

    def on_success(self, duration: float) -> None:
        """Record a successful call that took ``duration`` seconds."""
        if self._call_events:
            self._publish(
                EVENT_SUCCESS,
                f"CircuitBreaker '{self.name}' recorded a successful call. "
                f"Elapsed time: {_nanos(duration) // 1_000_000} ms",
            )
        self._record(duration, 0)

    def on_error(self, duration: float, error: str = "error") -> None:
        """Record a failed call that took ``duration`` seconds (``error`` names it in events)."""
        if self._call_events:
            self._publish(
                EVENT_ERROR,
                f"CircuitBreaker '{self.name}' recorded an error: '{error}'. "
                f"Elapsed time: {_nanos(duration) // 1_000_000} ms",
            )
        self._record(duration, _FAILED)

    def _record(self, duration: float, outcome: int) -> None:
        state = self.state
        if state is State.DISABLED or state is State.FORCED_OPEN:
            return
        if round(duration * NANOS_PER_SECOND) > self._slow_nanos:  # _nanos(), inline
            outcome |= _SLOW
        failure_rate, slow_rate = self._metrics.record(self.env._now, outcome)
        if state is State.OPEN:
            return  # in-flight outcomes are recorded, but decide nothing
        if failure_rate == -1.0:
            return  # below the minimum number of calls: no decision
        failure_exceeded = failure_rate >= self._failure_threshold
        slow_exceeded = slow_rate >= self._slow_threshold
        exceeded = failure_exceeded or slow_exceeded
        if state is State.CLOSED:
            if exceeded:
                self._publish_exceeded(failure_exceeded, slow_exceeded)
                self._enter(State.OPEN)
        elif state is State.HALF_OPEN:
            self._enter(State.OPEN if exceeded else State.CLOSED)
        elif exceeded:  # METRICS_ONLY: report each threshold once
            failure_new = failure_exceeded and "failure" not in self._flags
            slow_new = slow_exceeded and "slow" not in self._flags
            if failure_new:
                self._flags.add("failure")
            if slow_new:
                self._flags.add("slow")
            self._publish_exceeded(failure_new, slow_new)

    # -- manual transitions ---------------------------------------------------------------------

    def transition_to_closed_state(self) -> None:
        """``transitionToClosedState``."""
        self._enter(State.CLOSED)

    def transition_to_open_state(self) -> None:
        """``transitionToOpenState``: opens (again) for the wait of the next attempt."""
        self._enter(State.OPEN)

    def transition_to_half_open_state(self) -> None:
        """``transitionToHalfOpenState``."""
        self._enter(State.HALF_OPEN)

    def disable(self) -> None:
        """``transitionToDisabledState``: permit everything, record nothing."""
        self._enter(State.DISABLED)

    def force_open(self) -> None:
        """``transitionToForcedOpenState``: reject everything until another transition."""
        self._enter(State.FORCED_OPEN)

    def metrics_only(self) -> None:
        """``transitionToMetricsOnlyState``: permit everything, record and report, never open."""
        self._enter(State.METRICS_ONLY)

    def reset(self) -> None:
        """``reset``: back to a fresh CLOSED state from any state, then a RESET event."""
        source = self.state
        self._auto_timer_token = object()
        self.state = State.CLOSED
        self.attempts = 0
        self._metrics = self._closed_metrics()
        self._publish_transition(source, State.CLOSED)
        self._publish(EVENT_RESET, f"CircuitBreaker '{self.name}' reset")

    # -- metrics --------------------------------------------------------------------------------

    @property
    def failure_rate(self) -> float:
        """Failure rate in percent of the current state's window, -1 below the minimum."""
        return self._metrics.snapshot(self.env.now)[0]

    @property
    def slow_call_rate(self) -> float:
        """Slow-call rate in percent of the current state's window, -1 below the minimum."""
        return self._metrics.snapshot(self.env.now)[1]

    @property
    def number_of_buffered_calls(self) -> int:
        """Outcomes in the current window."""
        return self._metrics.counts(self.env.now)[0]

    @property
    def number_of_failed_calls(self) -> int:
        """Failed outcomes in the current window (slow or not)."""
        return self._metrics.counts(self.env.now)[1]

    @property
    def number_of_successful_calls(self) -> int:
        """Successful outcomes in the current window (slow or not)."""
        total, failed, _, _ = self._metrics.counts(self.env.now)
        return total - failed

    @property
    def number_of_slow_calls(self) -> int:
        """Slow outcomes in the current window."""
        return self._metrics.counts(self.env.now)[2]

    @property
    def number_of_slow_failed_calls(self) -> int:
        """Slow failed outcomes in the current window."""
        return self._metrics.counts(self.env.now)[3]

    @property
    def number_of_not_permitted_calls(self) -> int:
        """Calls rejected since the current metrics were created (CLOSED, HALF_OPEN, ...)."""
        return self._metrics.number_of_not_permitted_calls

    @property
    def wait_until(self) -> float | None:
        """When an OPEN breaker's wait ends (calls are let through strictly after it)."""
        return self._wait_until if self.state is State.OPEN else None


# --------------------------------------------------------------------------------------------
# Envoy outlier detection
# --------------------------------------------------------------------------------------------

KIND_OUTLIER = "outlier_detection"
"""``on_event`` kind of the outlier detector's lines (Envoy's outlier event log)."""


@dataclass(frozen=True)
class OutlierDetectionConfig:
    """Envoy ``config.cluster.v3.OutlierDetection`` (durations in seconds, percentages 0-100).

    Attributes:
        consecutive_5xx: 5 (``DEFAULT_CONSECUTIVE_5XX``).
        interval: 10 s between ejection analysis sweeps (``DEFAULT_INTERVAL_MS``).
        base_ejection_time: 30 s (``DEFAULT_BASE_EJECTION_TIME_MS``).
        max_ejection_time: 300 s (``DEFAULT_MAX_EJECTION_TIME_MS``); not below the base.
        max_ejection_percent: 10 % (``DEFAULT_MAX_EJECTION_PERCENT``); an ejection happens while
            the ejected share is strictly below it, so the first one always does.
        enforcing_consecutive_5xx: 100 % (``DEFAULT_ENFORCING_CONSECUTIVE_5XX``).
        enforcing_success_rate: 100 % (``DEFAULT_ENFORCING_SUCCESS_RATE``).
        success_rate_minimum_hosts: 5 (``DEFAULT_SUCCESS_RATE_MINIMUM_HOSTS``).
        success_rate_request_volume: 100 requests in the last interval
            (``DEFAULT_SUCCESS_RATE_REQUEST_VOLUME``).
        success_rate_stdev_factor: 1900, i.e. threshold ``mean - 1.9 * stdev``
            (``DEFAULT_SUCCESS_RATE_STDEV_FACTOR``).
        failure_percentage_threshold: 85 % (``DEFAULT_FAILURE_PERCENTAGE_THRESHOLD``).
        enforcing_failure_percentage: 0 %, i.e. off (``DEFAULT_ENFORCING_FAILURE_PERCENTAGE``).
        failure_percentage_minimum_hosts: 5 (``DEFAULT_FAILURE_PERCENTAGE_MINIMUM_HOSTS``).
        failure_percentage_request_volume: 50 (``DEFAULT_FAILURE_PERCENTAGE_REQUEST_VOLUME``).
        always_eject_one_host: False (proto field, newer Envoy): eject a host even when
            ``max_ejection_percent`` would forbid it, provided none is ejected.
    """

    consecutive_5xx: int = 5
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 10.0
    enforcing_consecutive_5xx: float = 100.0
    enforcing_success_rate: float = 100.0
    success_rate_minimum_hosts: int = 5
    success_rate_request_volume: int = 100
    success_rate_stdev_factor: int = 1900
    failure_percentage_threshold: float = 85.0
    enforcing_failure_percentage: float = 0.0
    failure_percentage_minimum_hosts: int = 5
    failure_percentage_request_volume: int = 50
    always_eject_one_host: bool = False

    def __post_init__(self) -> None:
        """Reject what Envoy rejects."""
        if self.interval <= 0:
            raise ValueError("outlier detection interval must be positive")
        if self.max_ejection_time < self.base_ejection_time:
            raise ValueError(
                "outlier detector's max_ejection_time cannot be smaller than base_ejection_time"
            )


class _Uniform(Protocol):
    def random(self) -> float: ...


class _HostMonitor:
    """``DetectorHostMonitorImpl``: one host's counters."""

    __slots__ = (
        "consecutive_5xx",
        "eject_time_backoff",
        "ejected",
        "last_ejection_time",
        "last_interval",
        "num_ejections",
        "requests",
        "successes",
    )

    def __init__(self) -> None:
        self.consecutive_5xx = 0
        self.ejected = False
        self.num_ejections = 0
        self.eject_time_backoff = 0
        self.last_ejection_time = 0.0
        self.requests = 0
        self.successes = 0
        self.last_interval: tuple[int, int] = (0, 0)
        """(requests, successes) of the last complete interval (the success-rate bucket)."""


class OutlierDetector:
    """Envoy's passive outlier detection for one cluster, as a load-balancer helper.

    Model (``outlier_detection_impl.cc``):

    * every response is :meth:`record`-ed against its host; ``consecutive_5xx`` failures in a row
      try an ejection at once (a success resets the run; a host already ejected is left alone);
    * a sweep runs every ``interval`` from construction: it un-ejects every host whose ejection
      has lasted ``min(base_ejection_time * backoff, max_ejection_time)`` or more, decrements the
      backoff of every host that is not ejected, closes the success-rate bucket of the interval and
      runs the success-rate (and failure-percentage) analysis over hosts that are not ejected;
    * success rate: with at least ``success_rate_minimum_hosts`` hosts having at least
      ``success_rate_request_volume`` requests in the closed interval, hosts whose success rate is
      below ``mean - stdev_factor / 1000 * stdev`` (population stdev) are ejected;
    * an ejection happens only while ``100 * ejected / hosts < max_ejection_percent`` (else the
      ``ejections_overflow`` counter grows), and is enforced with its ``enforcing_*`` probability;
      an enforced ejection increments the host's backoff while ``backoff * base < max + base``.

    So a host is out for at least the ejection time and until the next sweep after it: with the
    defaults 30 s after a sweep-aligned ejection, up to 40 s otherwise. A host re-ejected before any
    sweep finds it healthy is out for 60 s, 90 s, ... up to 300 s; each healthy sweep takes 30 s
    off again.

    Simplifications: every failure counts as a 5xx (gateway-failure and local-origin detectors
    are not modelled), ejection is immediate (no post to the main thread), no jitter and no panic
    mode (the caller decides what to do when every host is ejected).

    Args:
        env: the simulation environment.
        config: settings; defaults to :class:`OutlierDetectionConfig`'s.
        on_event: ``on_event(KIND_OUTLIER, line)`` for ejections and unejections.
        hosts: the cluster's initial hosts (any hashable keys); more can be added.
        rng: a generator for enforcement percentages strictly between 0 and 100.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: OutlierDetectionConfig | None = None,
        on_event: EventSink | None = None,
        hosts: Iterable[Hashable] = (),
        rng: _Uniform | None = None,
    ) -> None:
        self.env = env
        self.config = config or OutlierDetectionConfig()
        self._on_event = on_event
        self._rng = rng
        self._hosts: dict[Hashable, _HostMonitor] = {}
        self.ejections_active = 0
        self.ejections_overflow = 0
        self.ejections_enforced_total = 0
        self.ejections_detected_consecutive_5xx = 0
        self.ejections_detected_success_rate = 0
        self.ejections_detected_failure_percentage = 0
        self.success_rate_mean = -1.0
        self.success_rate_ejection_threshold = -1.0
        for host in hosts:
            self.add_host(host)
        self.process = env.process(self._sweeps())

    # -- hosts ------------------------------------------------------------------------------

    def add_host(self, host: Hashable) -> None:
        """Start monitoring ``host`` (``addHostMonitor``)."""
        if host not in self._hosts:
            self._hosts[host] = _HostMonitor()

    def remove_host(self, host: Hashable) -> None:
        """Stop monitoring ``host``."""
        monitor = self._hosts.pop(host, None)
        if monitor is not None and monitor.ejected:
            self.ejections_active -= 1

    @property
    def hosts(self) -> list[Hashable]:
        """The monitored hosts."""
        return list(self._hosts)

    def is_ejected(self, host: Hashable) -> bool:
        """Whether the load balancer must skip ``host`` now."""
        monitor = self._hosts.get(host)
        return monitor is not None and monitor.ejected

    def num_ejections(self, host: Hashable) -> int:
        """How many times ``host`` has been ejected."""
        return self._hosts[host].num_ejections

    def ejection_time(self, host: Hashable) -> float:
        """The current ejection time of ``host``: ``min(base * backoff, max)``, s."""
        c = self.config
        return min(c.base_ejection_time * self._hosts[host].eject_time_backoff, c.max_ejection_time)

    # -- responses --------------------------------------------------------------------------

    def record(self, host: Hashable, ok: bool) -> None:
        """A response from ``host``: ``ok`` False is a 5xx (``putHttpResponseCode``)."""
        monitor = self._hosts.get(host)
        if monitor is None:
            return
        monitor.requests += 1
        if ok:
            monitor.successes += 1
            monitor.consecutive_5xx = 0
            return
        monitor.consecutive_5xx += 1
        if monitor.consecutive_5xx == self.config.consecutive_5xx and not monitor.ejected:
            self.ejections_detected_consecutive_5xx += 1
            self._eject(host, monitor, "CONSECUTIVE_5XX", self.config.enforcing_consecutive_5xx)
            monitor.consecutive_5xx = 0

    # -- ejection ---------------------------------------------------------------------------

    def _enforced(self, percent: float) -> bool:
        if percent >= 100:
            return True
        if percent <= 0:
            return False
        if self._rng is None:
            raise ValueError("an enforcement percentage between 0 and 100 needs an rng")
        return self._rng.random() * 100 < percent

    def _eject(self, host: Hashable, monitor: _HostMonitor, kind: str, enforcing: float) -> None:
        c = self.config
        ejected_percent = 100.0 * self.ejections_active / len(self._hosts)
        allowed = ejected_percent < min(100.0, c.max_ejection_percent) or (
            c.always_eject_one_host and self.ejections_active == 0
        )
        if not allowed:
            self.ejections_overflow += 1
            return
        if not self._enforced(enforcing):
            self._log(f"host {host} detected as outlier ({kind}), not enforced")
            return
        self.ejections_active += 1
        self.ejections_enforced_total += 1
        monitor.ejected = True
        monitor.num_ejections += 1
        monitor.last_ejection_time = self.env.now
        if monitor.eject_time_backoff * c.base_ejection_time < c.max_ejection_time + (
            c.base_ejection_time
        ):
            monitor.eject_time_backoff += 1
        self._log(
            f"eject host {host} ({kind}) for {self.ejection_time(host):g}s, "
            f"num_ejections {monitor.num_ejections}"
        )

    def _log(self, line: str) -> None:
        if self._on_event is not None:
            self._on_event(KIND_OUTLIER, line)

    # -- sweeps -----------------------------------------------------------------------------

    def _sweeps(self) -> Any:
        while True:
            yield self.env.timeout(self.config.interval)
            self.sweep()

    def sweep(self) -> None:
        """One ``onIntervalTimer`` pass (run by the detector's own process every interval)."""
        now = self.env.now
        c = self.config
        for host, monitor in self._hosts.items():
            if not monitor.ejected:
                if monitor.eject_time_backoff:
                    monitor.eject_time_backoff -= 1
            elif now - monitor.last_ejection_time >= min(
                c.base_ejection_time * monitor.eject_time_backoff, c.max_ejection_time
            ):
                self.ejections_active -= 1
                monitor.ejected = False
                monitor.consecutive_5xx = 0
                self._log(f"uneject host {host}")
            monitor.last_interval = (monitor.requests, monitor.successes)
            monitor.requests = monitor.successes = 0
        self._success_rate_ejections()

    def _success_rate_ejections(self) -> None:
        c = self.config
        self.success_rate_mean = self.success_rate_ejection_threshold = -1.0
        if (
            len(self._hosts) < c.success_rate_minimum_hosts
            and len(self._hosts) < c.failure_percentage_minimum_hosts
        ):
            return
        sr_hosts: list[tuple[Hashable, float]] = []
        fp_hosts: list[tuple[Hashable, float]] = []
        for host, monitor in self._hosts.items():
            requests, successes = monitor.last_interval
            if monitor.ejected or requests == 0:
                continue
            rate = successes * 100.0 / requests
            if requests >= c.success_rate_request_volume:
                sr_hosts.append((host, rate))
            if requests >= c.failure_percentage_request_volume:
                fp_hosts.append((host, rate))
        if sr_hosts and len(sr_hosts) >= c.success_rate_minimum_hosts:
            mean = sum(rate for _, rate in sr_hosts) / len(sr_hosts)
            variance = sum((rate - mean) ** 2 for _, rate in sr_hosts) / len(sr_hosts)
            threshold = mean - c.success_rate_stdev_factor / 1000.0 * math.sqrt(variance)
            self.success_rate_mean = mean
            self.success_rate_ejection_threshold = threshold
            for host, rate in sr_hosts:
                monitor = self._hosts[host]
                if rate < threshold and not monitor.ejected:
                    self.ejections_detected_success_rate += 1
                    self._eject(host, monitor, "SUCCESS_RATE", c.enforcing_success_rate)
        if fp_hosts and len(fp_hosts) >= c.failure_percentage_minimum_hosts:
            for host, rate in fp_hosts:
                monitor = self._hosts[host]
                if 100.0 - rate >= c.failure_percentage_threshold and not monitor.ejected:
                    self.ejections_detected_failure_percentage += 1
                    self._eject(host, monitor, "FAILURE_PERCENTAGE", c.enforcing_failure_percentage)
