"""Adaptive concurrency limits: Netflix concurrency-limits' AIMD, Vegas and Gradient2.

Source: Netflix/concurrency-limits ``limit/AbstractLimit.java``, ``limit/AIMDLimit.java``,
``limit/VegasLimit.java``, ``limit/Gradient2Limit.java``,
``limit/measurement/ExpAvgMeasurement.java``, ``limit/functions/Log10RootIntFunction.java``,
``limiter/AbstractLimiter.java``, ``limiter/SimpleLimiter.java``; see
``../shared/reference/semantics.md`` §10.4 and §12 V27-V29.

Model. A *limit* turns completed-request samples ``(start_time, rtt, inflight, did_drop)`` into a
concurrency limit; a :class:`Limiter` (``SimpleLimiter``) admits a request iff fewer than ``limit``
requests are in flight and hands back a :class:`LimiterToken`; the caller reports the outcome with
``on_success`` (a sample), ``on_dropped`` (a sample with ``did_drop``, e.g. a timeout or an overload
response) or ``on_ignore`` (no sample). The sample's ``inflight`` is the count just after this
request was admitted (``AbstractLimiter.createListener``), not the count at completion.

Arithmetic follows the Java code, which matters at boundaries:

* RTTs are converted to integer nanoseconds (Java's ``long``) before any arithmetic, so Vegas'
  ``ceil(limit * (1 - rtt_noload / rtt))`` sees the same doubles as Java (with float seconds
  ``20 * (1 - 0.01 / 0.0125)`` rounds up to 5 instead of 4).
* :attr:`Limit.limit` is the integer limit (``getLimit``: the estimate truncated toward zero);
  Vegas and Gradient2 keep a fractional estimate, exposed as ``estimated_limit``.
* AIMD's decrease truncates (``(int) (limit * backoffRatio)``), then clamps to [min, max].
* Gradient2's gradient uses the long-window average *before* its 0.95 decay (the decay only
  affects later samples), and ``inflight < limit / 2`` compares with the fractional estimate.

Simplifications and choices:

* Vegas rejects ``rtt <= 0`` with an exception in Java; here such a sample is ignored (no change,
  no probe count), as the reference says. Vegas' probe jitter (``ThreadLocalRandom``) is drawn from
  the numpy Generator handed in.
* ``WindowedLimit`` (sample aggregation per window) is not modelled: every sample reaches the
  limit, which is how ``SimpleLimiter`` uses a bare limit.
* Partitions, bypass and ``BlockingLimiter`` are not modelled.

Units: seconds at the interface. Time is read only from ``env.now``. On the per-request path it
is read as ``env._now``, the attribute behind the property (SimPy is pinned to 4.1.x:
:mod:`patterns.timers`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import numpy as np
import simpy

EventSink = Callable[[str, str], None]
"""``on_event(kind, line)``: receives a transition and the line the real system would log."""

EVENT_LIMIT_CHANGED = "limit_changed"
"""Kind of the event sent when the integer limit changes (``AbstractLimit.setLimit`` notifies)."""

_NANOS = 1_000_000_000


def _nanos(seconds: float) -> int:
    """Seconds as Java's ``long`` nanoseconds."""
    return round(seconds * _NANOS)


def _ms(nanos: float) -> float:
    """``TimeUnit.NANOSECONDS.toMicros(x) / 1000.0``: milliseconds with microsecond resolution."""
    return int(nanos // 1000) / 1000.0


def log10_root_int(value: int) -> int:
    """``Log10RootIntFunction``: ``max(1, (int) log10(value))`` (1 for values below 1)."""
    if value < 1:
        return 1
    return max(1, int(math.log10(value)))


class Limit(Protocol):
    """A concurrency-limit algorithm (``com.netflix.concurrency.limits.Limit``)."""

    @property
    def limit(self) -> int:
        """The current integer limit (``getLimit``)."""
        ...

    def on_sample(self, start_time: float, rtt: float, inflight: int, did_drop: bool) -> None:
        """Update the limit from one completed request (seconds, in-flight count, drop flag)."""
        ...


class _AbstractLimit:
    """``AbstractLimit``: holds the integer limit and reports its changes."""

    __slots__ = ("_limit", "_on_event")

    def __init__(self, initial_limit: int, on_event: EventSink | None) -> None:
        self._limit = initial_limit
        self._on_event = on_event

    @property
    def limit(self) -> int:
        """The current integer limit (``getLimit``)."""
        return self._limit

    def _set_limit(self, new_limit: int, line: Callable[[], str]) -> None:
        """Set the limit; if it changed, report ``line()`` (made only then: it runs per request)."""
        if new_limit != self._limit:
            self._limit = new_limit
            if self._on_event is not None:
                self._on_event(EVENT_LIMIT_CHANGED, line())


@dataclass(frozen=True)
class AIMDLimitConfig:
    """``AIMDLimit.Builder`` settings.

    Attributes:
        initial_limit: starting limit, 20 (``initialLimit``).
        min_limit: floor, 20 (``minLimit``); with the defaults a drop at 20 changes nothing.
        max_limit: ceiling, 200 (``maxLimit``).
        backoff_ratio: multiplicative decrease, 0.9; must be in [0.5, 1.0) (``backoffRatio``).
        timeout: an RTT above this counts as a drop, 5 s (``DEFAULT_TIMEOUT``).
    """

    initial_limit: int = 20
    min_limit: int = 20
    max_limit: int = 200
    backoff_ratio: float = 0.9
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.backoff_ratio < 1.0:
            raise ValueError("Backoff ratio must be in the range [0.5, 1.0)")
        if self.timeout <= 0:
            raise ValueError("Timeout must be positive")


class AIMDLimit(_AbstractLimit):
    """Loss-based limit: +1 while busy and healthy, x ``backoff_ratio`` on a drop or timeout."""

    __slots__ = ("_timeout_ns", "config")

    def __init__(
        self, config: AIMDLimitConfig | None = None, *, on_event: EventSink | None = None
    ) -> None:
        self.config = config or AIMDLimitConfig()
        super().__init__(self.config.initial_limit, on_event)
        self._timeout_ns = _nanos(self.config.timeout)

    def on_sample(self, start_time: float, rtt: float, inflight: int, did_drop: bool) -> None:
        """``AIMDLimit._update``: decrease on a drop or ``rtt > timeout``, else grow if busy."""
        config = self.config
        current = self._limit
        new = current
        if did_drop or _nanos(rtt) > self._timeout_ns:
            new = int(current * config.backoff_ratio)
        elif inflight * 2 >= current:
            new = current + 1
        new = min(config.max_limit, max(config.min_limit, new))
        self._set_limit(new, lambda: f"New limit={new}, previous limit={current}")


@dataclass(frozen=True)
class VegasLimitConfig:
    """``VegasLimit.Builder`` settings (alpha/beta/threshold/increase/decrease use log10).

    Attributes:
        initial_limit: starting limit, 20 (``initialLimit``).
        max_concurrency: ceiling, 1000 (``maxConcurrency``); the floor is 1.
        smoothing: weight of a new estimate, 1.0 (``smoothing``).
        probe_multiplier: probe a new no-load RTT about every ``probe_multiplier * limit *
            U(0.5, 1)`` samples, 30 (``probeMultiplier``).
    """

    initial_limit: int = 20
    max_concurrency: int = 1000
    smoothing: float = 1.0
    probe_multiplier: int = 30


class VegasLimit(_AbstractLimit):
    """Delay-based limit after TCP Vegas: estimates the queue from ``rtt`` vs ``rtt_noload``."""

    __slots__ = ("_probe_count", "_probe_jitter", "_rng", "config", "estimated_limit", "rtt_noload")

    def __init__(
        self,
        rng: np.random.Generator,
        config: VegasLimitConfig | None = None,
        *,
        on_event: EventSink | None = None,
    ) -> None:
        self.config = config or VegasLimitConfig()
        super().__init__(self.config.initial_limit, on_event)
        self._rng = rng
        self.estimated_limit = float(self.config.initial_limit)
        """The fractional estimate (``estimatedLimit``); :attr:`limit` is its integer part."""
        self.rtt_noload = 0
        """The no-load RTT in nanoseconds; 0 until the first sample."""
        self._probe_count = 0
        self._probe_jitter = 0.0
        self._reset_probe_jitter()

    def _reset_probe_jitter(self) -> None:
        self._probe_jitter = float(self._rng.uniform(0.5, 1.0))

    def on_sample(self, start_time: float, rtt: float, inflight: int, did_drop: bool) -> None:
        """``VegasLimit._update``: probe, track the minimum RTT, then adjust the estimate."""
        rtt_ns = _nanos(rtt)
        if rtt_ns <= 0:
            return
        self._probe_count += 1
        if (
            self._probe_jitter * self.config.probe_multiplier * self.estimated_limit
            <= self._probe_count
        ):
            self._reset_probe_jitter()
            self._probe_count = 0
            self.rtt_noload = rtt_ns
            return
        if self.rtt_noload == 0 or rtt_ns < self.rtt_noload:
            self.rtt_noload = rtt_ns
            return
        self._update_estimated_limit(rtt_ns, inflight, did_drop)

    def _update_estimated_limit(self, rtt_ns: int, inflight: int, did_drop: bool) -> None:
        estimated = self.estimated_limit
        queue_size = math.ceil(estimated * (1 - self.rtt_noload / rtt_ns))
        log10 = log10_root_int(int(estimated))
        if did_drop:
            new = estimated - log10
        elif inflight * 2 < estimated:
            return  # prevent upward drift when not close to the limit
        else:
            alpha = 3 * log10
            beta = 6 * log10
            threshold = log10
            if queue_size <= threshold:
                new = estimated + beta
            elif queue_size < alpha:
                new = estimated + log10
            elif queue_size > beta:
                new = estimated - log10
            else:
                return
        new = max(1.0, min(self.config.max_concurrency, new))
        smoothing = self.config.smoothing
        new = (1 - smoothing) * estimated + smoothing * new
        self.estimated_limit = new
        self._set_limit(
            int(new),
            lambda: (
                f"New limit={int(new)} minRtt={_ms(self.rtt_noload)} ms "
                f"winRtt={_ms(rtt_ns)} ms queueSize={queue_size}"
            ),
        )


class ExpAvgMeasurement:
    """``ExpAvgMeasurement``: plain mean for ``warmup_window`` samples, then an EMA.

    The EMA factor is ``2 / (window + 1)``.
    """

    __slots__ = ("_count", "_sum", "value", "warmup_window", "window")

    def __init__(self, window: int, warmup_window: int) -> None:
        self.window = window
        self.warmup_window = warmup_window
        self.value = 0.0
        self._sum = 0.0
        self._count = 0

    def add(self, sample: float) -> float:
        """Add a sample and return the new average."""
        if self._count < self.warmup_window:
            self._count += 1
            self._sum += sample
            self.value = self._sum / self._count
        else:
            factor = 2.0 / (self.window + 1)
            self.value = self.value * (1 - factor) + sample * factor
        return self.value


@dataclass(frozen=True)
class Gradient2LimitConfig:
    """``Gradient2Limit.Builder`` settings.

    Attributes:
        initial_limit: starting limit, 20 (``initialLimit``).
        min_limit: floor, 20 (``minLimit``).
        max_concurrency: ceiling, 200 (``maxConcurrency``).
        smoothing: weight of a new estimate, 0.2 (``smoothing``).
        queue_size: headroom added to ``limit * gradient``, 4 (``queueSize``).
        long_window: samples in the long-term RTT average, 600 (``longWindow``), after a
            10-sample warm-up (fixed in the constructor).
        rtt_tolerance: accepted growth of the RTT before the limit shrinks, 1.5
            (``rttTolerance``); must be >= 1.
    """

    initial_limit: int = 20
    min_limit: int = 20
    max_concurrency: int = 200
    smoothing: float = 0.2
    queue_size: int = 4
    long_window: int = 600
    rtt_tolerance: float = 1.5

    def __post_init__(self) -> None:
        if self.rtt_tolerance < 1.0:
            raise ValueError("Tolerance must be >= 1.0")


GRADIENT2_WARMUP_WINDOW = 10
"""Warm-up samples of Gradient2's long RTT average (``new ExpAvgMeasurement(longWindow, 10)``)."""


class Gradient2Limit(_AbstractLimit):
    """Limit following the gradient between a long-term average RTT and the latest RTT."""

    __slots__ = ("config", "estimated_limit", "last_rtt", "long_rtt")

    def __init__(
        self, config: Gradient2LimitConfig | None = None, *, on_event: EventSink | None = None
    ) -> None:
        self.config = config or Gradient2LimitConfig()
        super().__init__(self.config.initial_limit, on_event)
        self.estimated_limit = float(self.config.initial_limit)
        """The fractional estimate (``estimatedLimit``); :attr:`limit` is its integer part."""
        self.last_rtt = 0
        """The latest RTT in nanoseconds (the "short" RTT)."""
        self.long_rtt = ExpAvgMeasurement(self.config.long_window, GRADIENT2_WARMUP_WINDOW)
        """The long-term RTT average in nanoseconds."""

    def on_sample(self, start_time: float, rtt: float, inflight: int, did_drop: bool) -> None:
        """``Gradient2Limit._update`` (``did_drop`` is not used by the algorithm)."""
        config = self.config
        estimated = self.estimated_limit
        queue_size = config.queue_size
        rtt_ns = round(rtt * _NANOS)  # _nanos(rtt), inline: a call per request
        self.last_rtt = rtt_ns
        short = float(rtt_ns)
        long = self.long_rtt.add(short)
        # Java divides doubles: a 0 ns RTT (a request dropped at once) gives Infinity; 0 / 0
        # (NaN in Java, which would poison the limit) is taken as no change (ratio 1).
        ratio = long / short if short else (math.inf if long else 1.0)
        # After a long overload the average lags far above the latest RTT: pull it down faster.
        if ratio > 2:
            self.long_rtt.value *= 0.95
        if inflight < estimated / 2:
            return  # app-limited: do not grow
        gradient = max(0.5, min(1.0, config.rtt_tolerance * ratio))
        new = estimated * gradient + queue_size
        new = estimated * (1 - config.smoothing) + new * config.smoothing
        new = float(max(config.min_limit, min(config.max_concurrency, new)))
        self.estimated_limit = new
        self._set_limit(
            int(new),
            lambda: (
                f"New limit={int(new)} shortRtt={_ms(short)} ms "
                f"longRtt={_ms(self.long_rtt.value)} ms queueSize={float(queue_size)} "
                f"gradient={gradient}"
            ),
        )


class Limiter:
    """``SimpleLimiter``: admit while ``inflight < limit``; outcomes feed the limit.

    Args:
        env: the simulation environment (its clock measures RTTs).
        limit: the limit algorithm. Netflix's default is ``VegasLimit.newDefault()``: pass
            ``VegasLimit(rng)`` for that.
        name: the limiter's name (``named``).

    Attributes:
        inflight: requests admitted and not yet completed (``getInflight``).
        successes, drops, ignores, rejections: outcome counters (``call`` metric by status).
    """

    __slots__ = (
        "drops",
        "env",
        "ignores",
        "inflight",
        "limit_algorithm",
        "name",
        "rejections",
        "successes",
    )

    def __init__(self, env: simpy.Environment, limit: Limit, *, name: str = "limiter") -> None:
        self.env = env
        self.limit_algorithm = limit
        self.name = name
        self.inflight = 0
        self.successes = 0
        self.drops = 0
        self.ignores = 0
        self.rejections = 0

    @property
    def limit(self) -> int:
        """The current integer concurrency limit (``getLimit``), for the time series."""
        return self.limit_algorithm.limit

    def try_acquire(self) -> LimiterToken | None:
        """``acquire``: a token if ``inflight < limit`` (the semaphore has a permit), else None."""
        if self.inflight >= self.limit_algorithm.limit:
            self.rejections += 1
            return None
        self.inflight += 1
        return LimiterToken(self, self.env._now, self.inflight)


class LimiterToken:
    """The ``Limiter.Listener`` of one admitted request; report exactly one outcome.

    Used as a context manager, a token left without an outcome (e.g. the process was
    interrupted) is released with :meth:`on_ignore`.

    Attributes:
        start_time: when the request was admitted, s.
        inflight: the limiter's in-flight count just after admitting it (the sample's value).
    """

    __slots__ = ("_limiter", "done", "inflight", "start_time")

    def __init__(self, limiter: Limiter, start_time: float, inflight: int) -> None:
        self._limiter = limiter
        self.start_time = start_time
        self.inflight = inflight
        self.done = False

    def _release(self) -> Limiter:
        if self.done:
            raise RuntimeError("limiter token already released")
        self.done = True
        limiter = self._limiter
        limiter.inflight -= 1
        return limiter

    def on_success(self, rtt: float | None = None) -> None:
        """Release and sample ``rtt`` (default ``env.now - start_time``) with ``did_drop=False``."""
        if self.done:
            raise RuntimeError("limiter token already released")
        self.done = True  # _release(), inline: a call per request
        limiter = self._limiter
        limiter.inflight -= 1
        limiter.successes += 1
        if rtt is None:
            rtt = limiter.env._now - self.start_time
        limiter.limit_algorithm.on_sample(self.start_time, rtt, self.inflight, False)

    def on_dropped(self, rtt: float | None = None) -> None:
        """Release and sample with ``did_drop=True`` (timeout, overload response)."""
        limiter = self._release()
        limiter.drops += 1
        if rtt is None:
            rtt = limiter.env.now - self.start_time
        limiter.limit_algorithm.on_sample(self.start_time, rtt, self.inflight, True)

    def on_ignore(self) -> None:
        """Release without a sample (the outcome says nothing about capacity)."""
        self._release().ignores += 1

    def __enter__(self) -> LimiterToken:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.done:
            self.on_ignore()
