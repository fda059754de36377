"""Client-side retries: backoff with jitter, retry policies and retry budgets.

Sources (see ``../shared/reference/semantics.md`` §11 and §12 V30-V36):

* AWS: Marc Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015) and its
  simulator ``aws-samples/aws-arch-backoff-simulator`` ``src/backoff_simulator.py``
  (``ExpoBackoff*``, ``ExpoBackoffDecorr``); botocore ``botocore/retries/standard.py``
  (``ExponentialBackoff``, ``RetryQuotaChecker``) and ``quota.py`` (``RetryQuota``).
* resilience4j: ``RetryConfig.java``, ``core/IntervalFunction.java``
  (``IntervalFunctionCompanion.randomize``), ``internal/RetryImpl.java`` and the ``RetryOn*Event``
  classes (the text of :func:`run_with_retry`'s event lines).
* gRPC: gRFC A6 (``A6-client-retries.md``); grpc-go ``stream.go`` (``csAttempt.shouldRetry``,
  ``clientStream.finish``) and ``clientconn.go`` (``retryThrottler``).
* Envoy: ``source/common/common/backoff_strategy.cc``
  (``JitteredExponentialBackOffStrategy::nextBackOffMs``), ``source/common/upstream/
  resource_manager_impl.h`` (``RetryBudgetImpl::max``), ``router/retry_state_impl.cc``
  (``shouldRetry``/``resetRetry``), ``api/envoy/config/cluster/v3/circuit_breaker.proto``.

Model. :func:`run_with_retry` is a generator the call path drives with ``yield from``: it runs
``attempt(n)`` for n = 1, 2, ..., classifies the outcome, asks the budget, sleeps the backoff with
``env.timeout`` and gives up at ``max_attempts`` or at the overall deadline. Its decision after a
failed attempt follows the production order:

1. success -> budget ``on_success`` (gRPC +token_ratio, AWS refund), done;
2. not retryable -> done, the budget untouched (gRPC: "we count this as a failure only if the
   code matched a retryable code");
3. retryable -> budget ``on_failure`` (gRPC's decrement, made *before* the attempts check, so
   the last attempt of a call spends a token too);
4. attempts exhausted (``n >= max_attempts``) -> done;
5. budget ``can_retry`` false -> done, ``exhausted`` counted;
6. otherwise ``on_retry`` (AWS pays 5 or 10 tokens, Envoy holds a retry slot until the retried
   attempt ends), sleep the backoff, go to the next attempt.

Backoff numbering. ``delay(attempt, rng)`` takes the number of attempts that have failed so far:
1 before the first retry. This is resilience4j's ``IntervalFunction.apply(numOfAttempts)``,
botocore's ``attempt_number``, gRPC's retry number k and Envoy's first bound (the base). Brooker's
formulas use n = attempt - 1 (``expo(0) = base``, as in the reference). His simulator increments
its attempt counter *before* calling ``backoff``, so its first sleep uses ``expo(1) = 2 * base``:
``ExponentialBackoff(base=2b)`` here reproduces his ``ExpoBackoff*(b, cap)``; his decorrelated
jitter does not depend on n and needs no conversion.

Simplifications:

* Times are seconds (floats); Envoy's and resilience4j's integer milliseconds and grpc-go's
  integer nanoseconds are reproduced by rounding the way they do, then converted.
* Server push-back (``grpc-retry-pushback-ms``, ``x-amz-retry-after``, Envoy's rate-limited
  back-off), hedging, transparent retries and Envoy's ``retry_host_predicate`` are not modelled.
* A per-try timeout or an overall deadline runs the attempt in a child process and stops
  waiting for it when the timer fires; the abandoned attempt keeps running (there is no
  cancellation), as with the call path's own timeouts. Without either, no process is created.
* When the deadline falls inside a back-off the call ends at the deadline with
  ``deadline_outcome`` (current grpc-go and Envoy's global timeout), not before it.

Time comes only from ``env.now``; randomness only from the ``rng`` handed in: a
``numpy.random.Generator`` or a zero-argument callable returning a uniform float in [0, 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

import numpy as np
import simpy
from simpy.events import Event

from patterns.timers import timers_of

Jitter = Literal["none", "full", "equal", "decorrelated"]
RandomSource = np.random.Generator | Callable[[], float]
"""A numpy Generator, or a zero-argument callable returning a uniform float in [0, 1)."""

O = TypeVar("O", bound=Hashable)  # noqa: E741 - the outcome type, as in Generator[..., O]

EventSink = Callable[[str, str], None]
"""``on_event(kind, line)``: ``kind`` is ``retry``, ``error``, ``success``, ``ignored_error`` or
``budget_exhausted``; ``line`` the text the real client would log."""

GRPC_MAX_ATTEMPTS_CAP = 5
"""gRFC A6: ``maxAttempts`` values above 5 are treated as 5."""

RESILIENCE4J_DEFAULT_MAX_ATTEMPTS = 3
"""``RetryConfig.DEFAULT_MAX_ATTEMPTS``: attempts including the first call."""

RESILIENCE4J_DEFAULT_WAIT = 0.5
"""``IntervalFunction.DEFAULT_INITIAL_INTERVAL``: 500 ms between attempts."""

RESILIENCE4J_DEFAULT_MULTIPLIER = 1.5
"""``IntervalFunction.DEFAULT_MULTIPLIER``, used once exponential back-off is enabled."""

RESILIENCE4J_DEFAULT_RANDOMIZATION_FACTOR = 0.5
"""``IntervalFunction.DEFAULT_RANDOMIZATION_FACTOR``, used once randomisation is enabled."""

ENVOY_DEFAULT_NUM_RETRIES = 1
"""Route ``retry_policy.num_retries`` default ("optional and defaults to 1")."""


def uniform01(rng: RandomSource) -> float:
    """One uniform draw in [0, 1) from ``rng``."""
    if isinstance(rng, np.random.Generator):
        return float(rng.random())
    return float(rng())


def _uniform(rng: RandomSource, low: float, high: float) -> float:
    """``random.uniform(low, high)`` as Brooker's simulator draws it: ``low + (high-low) * u``."""
    return low + (high - low) * uniform01(rng)


def _check_attempt(attempt: int) -> None:
    if attempt < 1:
        raise ValueError(f"attempt counts the failed attempts and starts at 1: {attempt}")


@dataclass(slots=True)
class BackoffState:
    """Per-call back-off state: the previous sleep, for decorrelated jitter (None before one)."""

    previous: float | None = None


class Backoff(Protocol):
    """A back-off policy: the sleep before the retry that follows ``attempt`` failed attempts."""

    def delay(self, attempt: int, rng: RandomSource, state: BackoffState | None = None) -> float:
        """Seconds to sleep after ``attempt`` failed attempts (1 before the first retry)."""
        ...


@dataclass(frozen=True)
class NoBackoff:
    """Retry at once (Brooker's ``NoBackoff``)."""

    def delay(self, attempt: int, rng: RandomSource, state: BackoffState | None = None) -> float:
        """Always 0."""
        _check_attempt(attempt)
        return 0.0


@dataclass(frozen=True)
class ConstantBackoff:
    """The same pause before every retry.

    Attributes:
        wait: seconds, 0.5 (resilience4j ``waitDuration`` default).
    """

    wait: float = RESILIENCE4J_DEFAULT_WAIT

    def __post_init__(self) -> None:
        if self.wait < 0:
            raise ValueError(f"wait must be >= 0: {self.wait}")

    def delay(self, attempt: int, rng: RandomSource, state: BackoffState | None = None) -> float:
        """``wait``, whatever the attempt."""
        _check_attempt(attempt)
        return self.wait


@dataclass(frozen=True)
class ExponentialBackoff:
    """Brooker's exponential back-off families (AWS).

    With n = attempt - 1 and ``expo(n) = min(cap, base * 2**n)``:

    * ``none``: ``expo(n)``;
    * ``full``: ``uniform(0, expo(n))``;
    * ``equal``: ``expo(n)/2 + uniform(0, expo(n)/2)``;
    * ``decorrelated``: ``min(cap, uniform(base, previous * 3))`` with ``previous = base`` before
      the first sleep; it ignores n and keeps the previous sleep in the per-call state.

    Attributes:
        base: seconds, 1.0 (botocore standard mode: ``rand * 2**(attempt-1)`` s, i.e. full
            jitter with a 1 s base; Brooker's simulator uses 5 ms with n counted from 1).
        cap: seconds, 20.0 (botocore ``ExponentialBackoff._MAX_BACKOFF``; Brooker: 2 s).
        jitter: ``full`` (botocore standard mode; JS v3 uses base 100 ms, 500 ms when throttled).
    """

    base: float = 1.0
    cap: float = 20.0
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError(f"need 0 < base <= cap: base={self.base}, cap={self.cap}")
        if self.jitter not in ("none", "full", "equal", "decorrelated"):
            raise ValueError(f"unknown jitter: {self.jitter!r}")

    def expo(self, n: int) -> float:
        """``min(cap, base * 2**n)`` (Brooker's ``Backoff.expo``)."""
        # 2**n overflows a float near n = 1024; the cap has long been reached by then.
        return self.cap if n >= 1023 else min(self.cap, self.base * 2.0**n)

    def delay(self, attempt: int, rng: RandomSource, state: BackoffState | None = None) -> float:
        """The sleep after ``attempt`` failed attempts; decorrelated jitter updates ``state``."""
        _check_attempt(attempt)
        if self.jitter == "decorrelated":
            previous = self.base if state is None or state.previous is None else state.previous
            sleep = min(self.cap, _uniform(rng, self.base, previous * 3))
            if state is not None:
                state.previous = sleep
            return sleep
        v = self.expo(attempt - 1)
        if self.jitter == "none":
            return v
        if self.jitter == "full":
            return _uniform(rng, 0.0, v)
        return v / 2 + _uniform(rng, 0.0, v / 2)


@dataclass(frozen=True)
class GrpcBackoff:
    """gRPC retry back-off (gRFC A6, grpc-go ``shouldRetry``).

    Retry k (= attempt) sleeps ``min(initial_backoff * multiplier**(k-1), max_backoff) *
    uniform(0.8, 1.2)``, truncated to whole nanoseconds; so late retries can exceed
    ``max_backoff`` by 20 %. gRPC has no defaults (all three are required in the service
    config); these are gRFC A6's example policy (0.1 s, 1 s, 2).

    Attributes:
        initial_backoff: seconds, 0.1.
        max_backoff: seconds, 1.0.
        backoff_multiplier: 2.0.
        legacy_full_jitter: draw ``uniform(0, value)`` instead (the A6 text and grpc-go before
            the August 2024 change: ``grpcrand.Int63n(cur)``).
    """

    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    backoff_multiplier: float = 2.0
    legacy_full_jitter: bool = False

    def __post_init__(self) -> None:
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("gRPC back-off parameters must be > 0")

    def delay(self, attempt: int, rng: RandomSource, state: BackoffState | None = None) -> float:
        """The sleep before retry ``attempt`` (1 for the first retry)."""
        _check_attempt(attempt)
        fact = self.backoff_multiplier ** (attempt - 1)
        cur = min(round(self.initial_backoff * 1e9) * fact, float(round(self.max_backoff * 1e9)))
        if self.legacy_full_jitter:
            return math.floor(cur * uniform01(rng)) / 1e9
        return math.floor(cur * (0.8 + 0.4 * uniform01(rng))) / 1e9


@dataclass(frozen=True)
class EnvoyBackoff:
    """Envoy router retry back-off (``JitteredExponentialBackOffStrategy``).

    The bound starts at ``base_interval`` and doubles after each retry until doubling would pass
    ``max_interval / 2``, after which it is ``max_interval``; each retry sleeps a uniform whole
    number of milliseconds in [0, bound). Defaults give the bounds 25, 50, 100, 200, 250, 250 ms.

    Attributes:
        base_interval: seconds, 0.025 (router docs; runtime ``upstream.base_retry_backoff_ms``).
        max_interval: seconds; None means 10 x base (``BackoffStrategy.max_interval`` default).
    """

    base_interval: float = 0.025
    max_interval: float | None = None

    def __post_init__(self) -> None:
        if self.base_interval < 0.001:
            raise ValueError(f"Envoy's base interval is at least 1 ms: {self.base_interval}")
        if self.max_interval is not None and self.max_interval < self.base_interval:
            raise ValueError("max_interval must be >= base_interval")

    def bound_ms(self, attempt: int) -> int:
        """The exclusive upper bound, in ms, of retry ``attempt``'s sleep."""
        _check_attempt(attempt)
        base = round(self.base_interval * 1000)
        top = 10 * base if self.max_interval is None else round(self.max_interval * 1000)
        bound = base
        for _ in range(attempt - 1):
            bound = top if bound > top // 2 else bound * 2
            if bound == top:
                break
        return bound

    def delay(self, attempt: int, rng: RandomSource, state: BackoffState | None = None) -> float:
        """A whole number of ms in [0, bound) (``random() % bound``), in seconds."""
        return math.floor(uniform01(rng) * self.bound_ms(attempt)) / 1000


@dataclass(frozen=True)
class Resilience4jInterval:
    """resilience4j ``IntervalFunction`` (``resilience4j-core``).

    * fixed (default): ``wait_duration`` every time (``IntervalFunction.ofDefaults``, 500 ms);
    * ``multiplier`` set: ``ofExponentialBackoff``: interval(1) = wait, then
      ``x -> (long) (x * multiplier)`` once per further attempt (truncated to whole ms at every
      step), capped by ``max_interval`` if given;
    * ``randomization_factor`` set: ``randomize(v) = v - f*v + u * 2*f*v`` with u in [0, 1),
      truncated to whole ms (``ofRandomized`` / ``ofExponentialRandomBackoff``); the cap, if
      any, applies after randomisation.

    Attributes:
        wait_duration: seconds, 0.5 (``DEFAULT_INITIAL_INTERVAL``).
        multiplier: None for a fixed interval; 1.5 is resilience4j's default once enabled.
        randomization_factor: None for no jitter; 0.5 is the default once enabled.
        max_interval: seconds, optional cap.
    """

    wait_duration: float = RESILIENCE4J_DEFAULT_WAIT
    multiplier: float | None = None
    randomization_factor: float | None = None
    max_interval: float | None = None

    def __post_init__(self) -> None:
        if round(self.wait_duration * 1000) < 1:
            raise ValueError(f"interval must be >= 1 ms: {self.wait_duration}")
        if self.randomization_factor is not None and not 0 <= self.randomization_factor <= 1:
            raise ValueError(f"randomization factor in [0, 1]: {self.randomization_factor}")

    def interval_ms(self, attempt: int, rng: RandomSource | None = None) -> int:
        """``IntervalFunction.apply(attempt)`` in whole milliseconds."""
        _check_attempt(attempt)
        interval = round(self.wait_duration * 1000)
        if self.multiplier is not None:
            for _ in range(attempt - 1):
                interval = int(interval * self.multiplier)
        if self.randomization_factor is not None:
            if rng is None:
                raise ValueError("a randomized interval needs a random source")
            delta = self.randomization_factor * interval
            low, high = interval - delta, interval + delta
            interval = int(low + uniform01(rng) * (high - low))
        if self.max_interval is not None:
            interval = min(interval, round(self.max_interval * 1000))
        return interval

    def delay(self, attempt: int, rng: RandomSource, state: BackoffState | None = None) -> float:
        """The wait, in seconds, after ``attempt`` failed attempts."""
        return self.interval_ms(attempt, rng) / 1000


# --------------------------------------------------------------------------- retry budgets


class RetryBudget:
    """No budget: every retry the policy wants is allowed (resilience4j: attempts per call only).

    The hooks :func:`run_with_retry` calls, in order, and what the budgets do with them:

    * ``on_attempt_start`` / ``on_attempt_end`` around every attempt (Envoy counts active
      requests);
    * ``on_success(last_retry_cost)`` when the call succeeds (gRPC adds ``token_ratio``; AWS
      refunds 1, or the cost of the call's last retry);
    * ``on_failure()`` after every retryable failure (gRPC's token decrement);
    * ``can_retry(timeout)`` once a retry is wanted and attempts remain;
    * ``on_retry(timeout) -> cost`` when it is taken, ``on_retry_done()`` when the retried
      attempt has ended (Envoy frees the retry slot).

    Attributes:
        retries: retries granted.
        exhausted: retries the policy wanted and the budget refused.
    """

    exhausted_line = "retry budget exhausted"
    """What the real client logs (or counts) when the budget refuses a retry."""

    def __init__(self) -> None:
        self.retries = 0
        self.exhausted = 0

    def on_attempt_start(self) -> None:
        """An attempt is sent."""

    def on_attempt_end(self) -> None:
        """An attempt has ended (answered, failed or abandoned)."""

    def on_success(self, last_retry_cost: float | None = None) -> None:
        """The call succeeded; ``last_retry_cost`` is what its last retry paid (None: no retry)."""

    def on_failure(self) -> None:
        """An attempt failed with a retryable outcome."""

    def can_retry(self, timeout: bool = False) -> bool:
        """Whether a retry is allowed now; ``timeout`` says the failure was a timeout."""
        return True

    def on_retry(self, timeout: bool = False) -> float:
        """Take a retry; returns what it cost."""
        self.retries += 1
        return 0.0

    def on_retry_done(self) -> None:
        """The retried attempt has ended."""


@dataclass(frozen=True)
class EnvoyRetryBudgetConfig:
    """Envoy's limit on concurrent retries per cluster and priority.

    Attributes:
        retry_budget: whether the cluster's ``circuit_breakers.thresholds.retry_budget`` is set;
            without it ``max_retries`` applies.
        budget_percent: 20.0 (``RetryBudget.budget_percent`` default), percent of active plus
            pending requests.
        min_retry_concurrency: 3 (``RetryBudget.min_retry_concurrency`` default).
        max_retries: 3 (``Thresholds.max_retries`` default).
    """

    retry_budget: bool = True
    budget_percent: float = 20.0
    min_retry_concurrency: int = 3
    max_retries: int = 3


class EnvoyRetryBudget(RetryBudget):
    """Envoy retry budget / ``max_retries`` circuit breaker.

    ``max = max(uint64(budget_percent / 100.0 * (active + pending)), min_retry_concurrency)``; a
    retry is allowed while ``active_retries < max`` (``canCreate``). A granted retry holds its
    slot through the back-off and the retried attempt (``resetRetry`` at the next decision).
    Refusals are counted as ``upstream_rq_retry_overflow``.

    Args:
        config: the thresholds.
        load: optional callable giving the cluster's active + pending requests; by default the
            attempts in flight through this object are counted (the failed attempt has ended
            when the decision is made, as its stream has closed).
    """

    exhausted_line = "upstream_rq_retry_overflow"

    def __init__(
        self, config: EnvoyRetryBudgetConfig | None = None, load: Callable[[], int] | None = None
    ) -> None:
        super().__init__()
        self.config = config or EnvoyRetryBudgetConfig()
        self.load = load
        self.active_requests = 0
        self.active_retries = 0

    def max_active_retries(self) -> int:
        """The current concurrent-retry limit (``RetryBudgetImpl::max``)."""
        config = self.config
        if not config.retry_budget:
            return config.max_retries
        active = self.load() if self.load is not None else self.active_requests
        return max(int(config.budget_percent / 100.0 * active), config.min_retry_concurrency)

    def on_attempt_start(self) -> None:  # noqa: D102
        self.active_requests += 1

    def on_attempt_end(self) -> None:  # noqa: D102
        self.active_requests -= 1

    def can_retry(self, timeout: bool = False) -> bool:  # noqa: D102
        return self.active_retries < self.max_active_retries()

    def on_retry(self, timeout: bool = False) -> float:  # noqa: D102
        self.retries += 1
        self.active_retries += 1
        return 1.0

    def on_retry_done(self) -> None:  # noqa: D102
        self.active_retries -= 1


@dataclass(frozen=True)
class GrpcRetryThrottleConfig:
    """gRPC ``retryThrottling``, one per server name.

    gRPC has no defaults; these are the reference's example (§11.5).

    Attributes:
        max_tokens: in (0, 1000], 10.
        token_ratio: > 0, 0.1.
    """

    max_tokens: float = 10.0
    token_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.max_tokens <= 1000:
            raise ValueError(f"maxTokens must be in (0, 1000]: {self.max_tokens}")
        if self.token_ratio <= 0:
            raise ValueError(f"tokenRatio must be > 0: {self.token_ratio}")


class GrpcRetryThrottle(RetryBudget):
    """grpc-go ``retryThrottler``, in float64 as grpc-go computes it.

    Every retryable failure: ``tokens = max(0, tokens - 1)``, then retries are throttled while
    ``tokens <= max_tokens / 2``; every successful RPC: ``tokens = min(max_tokens, tokens +
    token_ratio)``. (grpc-core C++ keeps integer milli-tokens, so its sums are exact; the
    threshold test is the same.)
    """

    exhausted_line = "retries throttled"

    def __init__(self, config: GrpcRetryThrottleConfig | None = None) -> None:
        super().__init__()
        self.config = config or GrpcRetryThrottleConfig()
        self.tokens = float(self.config.max_tokens)
        self.threshold = self.config.max_tokens / 2

    def on_failure(self) -> None:  # noqa: D102
        self.tokens -= 1
        if self.tokens < 0:
            self.tokens = 0.0

    def can_retry(self, timeout: bool = False) -> bool:  # noqa: D102
        return not self.tokens <= self.threshold

    def on_success(self, last_retry_cost: float | None = None) -> None:  # noqa: D102
        self.tokens += self.config.token_ratio
        if self.tokens > self.config.max_tokens:
            self.tokens = float(self.config.max_tokens)


@dataclass(frozen=True)
class AwsRetryQuotaConfig:
    """AWS SDK standard-mode retry quota (botocore ``RetryQuota`` / ``RetryQuotaChecker``).

    Attributes:
        initial_capacity: 500 tokens (``RetryQuota.INITIAL_CAPACITY``), also the maximum.
        retry_cost: 5 (``_RETRY_COST``).
        timeout_retry_cost: 10 (``_TIMEOUT_RETRY_REQUEST``).
        no_retry_increment: 1 (``_NO_RETRY_INCREMENT``), refunded by a first-try success.
    """

    initial_capacity: int = 500
    retry_cost: int = 5
    timeout_retry_cost: int = 10
    no_retry_increment: int = 1


class AwsRetryQuota(RetryBudget):
    """botocore's retry quota: a retry is made only if the bucket can pay for it.

    A call that succeeds at once returns 1 token; a call that succeeds after retries returns the
    cost of its *last* retry only (botocore keeps one ``retry_quota_capacity`` per request and
    overwrites it at each acquisition); a call that fails returns nothing. Never above the
    initial capacity.
    """

    exhausted_line = "Retry needed but retry quota reached, not retrying request."

    def __init__(self, config: AwsRetryQuotaConfig | None = None) -> None:
        super().__init__()
        self.config = config or AwsRetryQuotaConfig()
        self.available = self.config.initial_capacity

    def _cost(self, timeout: bool) -> int:
        return self.config.timeout_retry_cost if timeout else self.config.retry_cost

    def can_retry(self, timeout: bool = False) -> bool:  # noqa: D102
        return self._cost(timeout) <= self.available

    def on_retry(self, timeout: bool = False) -> float:  # noqa: D102
        cost = self._cost(timeout)
        self.available -= cost
        self.retries += 1
        return float(cost)

    def on_success(self, last_retry_cost: float | None = None) -> None:  # noqa: D102
        amount = self.config.no_retry_increment if last_retry_cost is None else last_retry_cost
        self.available = min(self.config.initial_capacity, self.available + int(amount))


# --------------------------------------------------------------------------- policy and loop


@dataclass(frozen=True)
class RetryConfig:
    """A retry policy.

    Attributes:
        max_attempts: attempts including the first call, 3 (resilience4j
            ``DEFAULT_MAX_ATTEMPTS``; AWS standard mode also 3; use :meth:`grpc` and
            :meth:`envoy` for theirs).
        retry_on: outcome labels (``"timeout"``, ``"unavailable"``, ``"reset"``, ``"error"``,
            ``"shed"``, ...) or plain ints that are retried; None retries every failure
            (resilience4j retries all exceptions by default).
        backoff: the pause policy, 500 ms fixed (resilience4j ``waitDuration``).
        per_try_timeout: seconds allowed to each attempt, or None (Envoy ``per_try_timeout``).
        deadline: seconds allowed to the whole call from its start, or None (gRPC deadline,
            Envoy route timeout).
        name: the name in the event lines (resilience4j instance name, e.g. ``frontend->cart``).
    """

    max_attempts: int = RESILIENCE4J_DEFAULT_MAX_ATTEMPTS
    retry_on: frozenset[str | int] | None = None
    backoff: Backoff = field(default_factory=Resilience4jInterval)
    per_try_timeout: float | None = None
    deadline: float | None = None
    name: str = "retry"

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1: {self.max_attempts}")
        for label, value in (
            ("per_try_timeout", self.per_try_timeout),
            ("deadline", self.deadline),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{label} must be > 0: {value}")

    @classmethod
    def grpc(
        cls,
        max_attempts: int,
        retryable_status_codes: frozenset[str | int],
        backoff: GrpcBackoff | None = None,
        deadline: float | None = None,
        name: str = "retry",
    ) -> RetryConfig:
        """A gRPC ``retryPolicy``: ``maxAttempts`` must be >= 2 and is capped at 5."""
        if max_attempts < 2:
            raise ValueError(f"gRPC maxAttempts must be >= 2: {max_attempts}")
        return cls(
            max_attempts=min(max_attempts, GRPC_MAX_ATTEMPTS_CAP),
            retry_on=retryable_status_codes,
            backoff=backoff or GrpcBackoff(),
            deadline=deadline,
            name=name,
        )

    @classmethod
    def envoy(
        cls,
        retry_on: frozenset[str | int],
        num_retries: int = ENVOY_DEFAULT_NUM_RETRIES,
        per_try_timeout: float | None = None,
        timeout: float | None = None,
        backoff: EnvoyBackoff | None = None,
        name: str = "retry",
    ) -> RetryConfig:
        """An Envoy route ``retry_policy``: ``num_retries`` (default 1) retries after the first."""
        return cls(
            max_attempts=num_retries + 1,
            retry_on=retry_on,
            backoff=backoff or EnvoyBackoff(),
            per_try_timeout=per_try_timeout,
            deadline=timeout,
            name=name,
        )


def outcome_label(outcome: object) -> object:
    """The label an outcome is classified by.

    Its ``label`` attribute if it has one (an enum of outcomes), else the outcome itself (a string
    or an int).
    """
    label = getattr(outcome, "label", None)
    return label if isinstance(label, str) else outcome


def default_is_success(outcome: object) -> bool:
    """Whether an outcome is a success.

    ``outcome.success`` if it has such a flag, else whether its label is ``ok`` or ``degraded``
    (or an HTTP 2xx int).
    """
    flag = getattr(outcome, "success", None)
    if isinstance(flag, bool):
        return flag
    label = outcome_label(outcome)
    if isinstance(label, int):
        return 200 <= label < 300
    return label in ("ok", "degraded")


def default_is_timeout(outcome: object) -> bool:
    """Whether the outcome's label is ``timeout`` (AWS charges 10 tokens for such retries)."""
    return outcome_label(outcome) == "timeout"


@dataclass(slots=True)
class RetryMetrics:
    """resilience4j ``Retry.Metrics`` plus attempt and retry totals, for the time series."""

    successful_calls_without_retry: int = 0
    successful_calls_with_retry: int = 0
    failed_calls_without_retry: int = 0
    failed_calls_with_retry: int = 0
    attempts: int = 0
    retries: int = 0


def java_duration(seconds: float) -> str:
    """``java.time.Duration.toString()`` of ``seconds``: ``PT0.5S``, ``PT1M30S``, ``PT0S``."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "PT0S"
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), 1_000_000_000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{sign}{hours}H"
    if minutes:
        text += f"{sign}{minutes}M"
    if secs == 0 and frac == 0:
        return text
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    return f"{text}{sign}{secs}{fraction}S"


class _Begun:
    """What a fresh generator is sent to start it (the ``Initialize`` event's value)."""

    _ok = True
    _value = None


_BEGUN = cast(Event, _Begun)


class Started(simpy.Process):
    """A process that starts at once, inside the step that makes it.

    ``env.process(generator)`` schedules an ``Initialize`` event and the generator first runs
    when it is processed, later in the same instant. A timed call's child, or a request a user
    has just sent (``sim.workload``), gains nothing from that hop through the event queue: this
    runs the generator to its first ``yield`` straight away (as ``Process._resume`` would from
    ``Initialize``), then hands the active process back to the caller. Everything else is a
    plain :class:`simpy.Process`.
    """

    def __init__(self, env: simpy.Environment, generator: Generator[Event, Any, Any]) -> None:
        self.env = env  # Event.__init__, inline: a call per timed call
        self.callbacks = []
        self._generator = generator
        caller = env._active_proc
        self._resume(_BEGUN)
        env._active_proc = caller


def within(env: simpy.Environment, child: simpy.Process, limit: float) -> simpy.Process:
    """``child``, for the active process to yield, woken after ``limit`` s if still running.

    ``yield within(env, child, limit)`` waits for ``child`` like ``yield child``, but at most
    ``limit`` seconds; afterwards ``child.triggered`` tells whether it ended in time (at the
    timer's very instant, only if its end was already scheduled when the timer fired, as with
    ``any_of``). What ``env.any_of((child, env.timeout(limit)))`` does without a
    :class:`simpy.Condition` or any event of its own: on the hot path of every timed call, the
    waiting process resumes straight from the child's end. The timer is one of
    :func:`patterns.timers.timers_of` ``env``, watching the child: it fires exactly where
    ``env.timeout(limit)`` would, and stays out of SimPy's event queue when the child ends
    first, as nearly every child does. It wakes the waiting process the way SimPy's own
    ``Interruption`` does: it takes the process off the child's callbacks and resumes it with
    the timer's event. A child failing in time raises its exception in the waiting process, as
    ``yield child`` does.
    """
    waiting = env._active_proc
    assert waiting is not None, "within() is for the process that yields it"
    timers_of(env).start(limit, child, _expire, waiting)
    return child


def _expire(child: Event, waiting: simpy.Process, timer: Event) -> None:
    """``within``'s timer fired while ``child`` runs: wake ``waiting`` if it still waits for it."""
    if waiting._target is child:
        cast(list[Any], child.callbacks).remove(waiting._resume)
        waiting._resume(timer)


def _attempt_with_timeout(
    env: simpy.Environment, body: Generator[Event, Any, O], limit: float
) -> Generator[Event, Any, tuple[bool, O | None]]:
    """Run ``body`` in a child process for at most ``limit`` s: (finished, value)."""
    child = Started(env, body)
    yield within(env, child, limit)
    if child.triggered:
        return True, child.value
    # Nobody waits for the abandoned attempt any more: a failure in it must not crash the run.
    child.callbacks.append(lambda event: setattr(event, "defused", True))
    return False, None


class RetryRules:
    """What stays the same across the calls of one retry policy: made once, shared by calls.

    Args: as :func:`run_with_retry` (``config`` to ``metrics``, budget excepted).
    """

    __slots__ = (
        "config",
        "deadline_outcome",
        "is_retryable",
        "is_success",
        "is_timeout",
        "metrics",
        "on_event",
        "rng",
        "timeout_outcome",
    )

    def __init__(
        self,
        config: RetryConfig,
        rng: RandomSource | None = None,
        *,
        is_success: Callable[[Any], bool] = default_is_success,
        is_retryable: Callable[[Any], bool] | None = None,
        is_timeout: Callable[[Any], bool] = default_is_timeout,
        timeout_outcome: object = "timeout",
        deadline_outcome: object = "deadline_exceeded",
        on_event: EventSink | None = None,
        metrics: RetryMetrics | None = None,
    ) -> None:
        self.config = config
        self.rng = rng
        self.is_success = is_success
        self.is_retryable = is_retryable
        self.is_timeout = is_timeout
        self.timeout_outcome = timeout_outcome
        self.deadline_outcome = deadline_outcome
        self.on_event = on_event
        self.metrics = metrics


class RetryCall:
    """The decisions of one call under a retry policy: the state :func:`run_with_retry` drives.

    A caller that runs its attempts itself (the simulator's call path, with no generator of
    its own for the retry layer) does the same::

        call = RetryCall(env, rules, budget)
        try:
            while True:
                limit = call.begin()                 # attempt call.attempts starts
                outcome = yield from attempt()       # cut at ``limit`` s if not None
                sleep = call.end(outcome)            # or call.end(None, finished=False)
                if sleep:
                    yield env.timeout(sleep)
                if call.over:
                    break
        finally:
            call.close()
        outcome = call.outcome

    Args:
        env: the simulation environment (the clock).
        rules: the policy and how outcomes are classified (:class:`RetryRules`).
        budget: shared per client / cluster / target; None for no budget.

    Attributes:
        attempts: attempts begun so far.
        over: whether the call has ended (after the sleep ``end`` returned, if any).
        outcome: the final outcome once ``over``.
    """

    __slots__ = (
        "_budget",
        "_deadline",
        "_env",
        "_holding_retry",
        "_in_attempt",
        "_last_cost",
        "_last_failure",
        "_rules",
        "_state",
        "attempts",
        "outcome",
        "over",
    )

    def __init__(
        self, env: simpy.Environment, rules: RetryRules, budget: RetryBudget | None = None
    ) -> None:
        self._env = env
        self._rules = rules
        self._budget = budget if budget is not None else RetryBudget()
        deadline = rules.config.deadline
        self._deadline = None if deadline is None else env._now + deadline
        self._state: BackoffState | None = None  # at the first back-off: most calls never retry
        self._last_cost: float | None = None
        self._last_failure: object = None
        self._holding_retry = False
        self._in_attempt = False
        self.attempts = 0
        self.outcome: object = None
        self.over = False

    def begin(self) -> float | None:
        """Start the next attempt; its time limit in s (per-try timeout, deadline), or None."""
        self.attempts += 1
        limit = self._rules.config.per_try_timeout
        deadline = self._deadline
        if deadline is not None:
            remaining = deadline - self._env._now
            limit = remaining if limit is None else min(limit, remaining)
        self._budget.on_attempt_start()
        self._in_attempt = True
        return limit

    def _attempt_ended(self) -> None:
        self._in_attempt = False
        budget = self._budget
        budget.on_attempt_end()
        if self._holding_retry:
            self._holding_retry = False
            budget.on_retry_done()

    def close(self) -> None:
        """Give back what an attempt cut short (by an interrupt) still holds in the budget."""
        if self._in_attempt:
            self._attempt_ended()
        if self._holding_retry:
            self._holding_retry = False
            self._budget.on_retry_done()

    def _finish(self, outcome: object) -> None:
        self.over = True
        self.outcome = outcome
        metrics = self._rules.metrics
        if metrics is None or self._rules.is_success(outcome):
            return
        if self.attempts > 1:
            metrics.failed_calls_with_retry += 1
        else:
            metrics.failed_calls_without_retry += 1

    def end(self, outcome: object, finished: bool = True) -> float:
        """The attempt ended with ``outcome`` (``finished=False``: cut at its limit).

        Returns the seconds to sleep: before the next attempt, or (with ``over`` set) before
        the call ends at its deadline; 0 for none.
        """
        self._attempt_ended()
        rules = self._rules
        env = self._env
        n = self.attempts
        metrics = rules.metrics
        if metrics is not None:
            metrics.attempts += 1
        deadline = self._deadline
        if not finished:
            if deadline is not None and env._now >= deadline:
                self._finish(rules.deadline_outcome)
                return 0.0
            outcome = rules.timeout_outcome
        budget = self._budget
        name = rules.config.name
        on_event = rules.on_event
        if rules.is_success(outcome):
            budget.on_success(self._last_cost)
            self.over = True
            self.outcome = outcome
            if metrics is not None:
                if n > 1:
                    metrics.successful_calls_with_retry += 1
                else:
                    metrics.successful_calls_without_retry += 1
            if n > 1 and on_event is not None:
                on_event(
                    "success",
                    f"Retry '{name}' recorded a successful retry attempt. Number of retry "
                    f"attempts: '{n - 1}', Last exception was: '{_text(self._last_failure)}'.",
                )
            return 0.0
        self._last_failure = outcome
        is_retryable = rules.is_retryable
        retry_on = rules.config.retry_on
        if (
            not (retry_on is None or outcome_label(outcome) in retry_on)
            if is_retryable is None
            else not is_retryable(outcome)
        ):
            self._finish(outcome)
            if on_event is not None:
                on_event(
                    "ignored_error",
                    f"Retry '{name}' recorded an error which has been ignored: '{_text(outcome)}'.",
                )
            return 0.0
        budget.on_failure()
        if n >= rules.config.max_attempts:
            self._finish(outcome)
            if on_event is not None:
                on_event(
                    "error",
                    f"Retry '{name}' recorded a failed retry attempt. Number of retry "
                    f"attempts: '{n}'. Giving up. Last exception was: '{_text(outcome)}'.",
                )
            return 0.0
        if deadline is not None and env._now >= deadline:
            self._finish(outcome)
            return 0.0
        timeout = rules.is_timeout(outcome)
        if not budget.can_retry(timeout):
            budget.exhausted += 1
            self._finish(outcome)
            if on_event is not None:
                on_event("budget_exhausted", budget.exhausted_line)
            return 0.0
        if self._state is None:
            self._state = BackoffState()
        rng = rules.rng
        sleep = rules.config.backoff.delay(n, _no_random if rng is None else rng, self._state)
        self._last_cost = budget.on_retry(timeout)
        self._holding_retry = True
        if metrics is not None:
            metrics.retries += 1
        if on_event is not None:
            on_event(
                "retry",
                f"Retry '{name}', waiting {java_duration(sleep)} until attempt '{n}'. "
                f"Last attempt failed with exception '{_text(outcome)}'.",
            )
        if deadline is not None and env._now + sleep >= deadline:
            self._finish(rules.deadline_outcome)
            return deadline - env._now
        return sleep


def run_with_retry(
    env: simpy.Environment,
    attempt: Callable[[int], Generator[Event, Any, O]],
    config: RetryConfig,
    budget: RetryBudget | None = None,
    rng: RandomSource | None = None,
    *,
    is_success: Callable[[O], bool] = default_is_success,
    is_retryable: Callable[[O], bool] | None = None,
    is_timeout: Callable[[O], bool] = default_is_timeout,
    timeout_outcome: O | str = "timeout",
    deadline_outcome: O | str = "deadline_exceeded",
    on_event: EventSink | None = None,
    metrics: RetryMetrics | None = None,
) -> Generator[Event, Any, tuple[O | str, int]]:
    """Call ``attempt(n)`` for n = 1, 2, ... until it succeeds or retrying stops.

    Use with ``outcome, attempts = yield from run_with_retry(env, attempt, config, ...)``.

    Args:
        env: the simulation environment (the clock).
        attempt: makes attempt ``n`` (from 1): a generator that returns an outcome.
        config: the policy.
        budget: shared per client / cluster / target; None for no budget.
        rng: random source for jittered back-off (required when the back-off draws).
        is_success: whether an outcome is a success.
        is_retryable: whether a failed outcome may be retried; by default its label is in
            ``config.retry_on`` (every failure when that is None).
        is_timeout: whether a failure was a timeout (AWS charges more for retrying those).
        timeout_outcome: outcome of an attempt cut by ``per_try_timeout``.
        deadline_outcome: outcome of a call cut by ``deadline``.
        on_event: receives ``(kind, line)`` with resilience4j's event text (no timestamp).
        metrics: counters to update.

    Returns:
        The final outcome and the number of attempts made.
    """
    rules = RetryRules(
        config,
        rng,
        is_success=is_success,
        is_retryable=is_retryable,
        is_timeout=is_timeout,
        timeout_outcome=timeout_outcome,
        deadline_outcome=deadline_outcome,
        on_event=on_event,
        metrics=metrics,
    )
    call = RetryCall(env, rules, budget)
    try:
        while True:
            limit = call.begin()
            if limit is None:
                sleep = call.end((yield from attempt(call.attempts)))
            else:
                finished, value = yield from _attempt_with_timeout(
                    env, attempt(call.attempts), limit
                )
                sleep = call.end(value, finished)
            if sleep > 0:
                yield env.timeout(sleep)
            if call.over:
                return cast(O, call.outcome), call.attempts
    finally:
        call.close()


def _no_random() -> float:
    raise ValueError("this back-off draws random numbers: pass rng to run_with_retry")


def _text(outcome: object) -> str:
    return str(outcome_label(outcome))
