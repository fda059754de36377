"""Client-side call policies: a call's schema blocks turned into pattern configs and state.

``../shared/DESIGN.md`` §2.4: on the calling side a call runs through a chain of policies,
outermost first (resilience4j's order by default): fallback -> retry -> circuit breaker ->
rate limiter -> timeout -> bulkhead -> transport. :class:`CallPolicies` is the frozen, compiled
chain of one edge (built once with the World); :class:`ClientState` holds what the chain
remembers -- the breaker's window, the bulkhead's permits, the rate limiter's cycle, the retry
budget -- for one calling instance and one dependency.
The instance owns it (``Instance.clients``) and drops it when it starts again, so a restarted
caller begins with a closed breaker and a full budget, as a restarted process would.

The chain itself runs in :meth:`sim.service.Edge.call` as nested generators (``yield from``, no
process per layer); only a timeout (the existing per-call one, or the retry's
``per_try_timeout``) runs what is inside it in a child process, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from patterns.backpressure import RateLimiter, RateLimiterConfig
from patterns.bulkhead import (
    BulkheadConfig,
    SemaphoreBulkhead,
    ThreadPoolBulkhead,
    ThreadPoolBulkheadConfig,
)
from patterns.circuit_breaker import CircuitBreaker, CircuitBreakerConfig, SlidingWindowType, State
from patterns.retry import (
    AwsRetryQuota,
    Backoff,
    ConstantBackoff,
    EnvoyBackoff,
    EnvoyRetryBudget,
    EnvoyRetryBudgetConfig,
    ExponentialBackoff,
    GrpcBackoff,
    GrpcRetryThrottle,
    GrpcRetryThrottleConfig,
    NoBackoff,
    RetryBudget,
    RetryConfig,
    RetryMetrics,
    RetryRules,
)
from sim import scenario as sc
from sim.request import Outcome

if TYPE_CHECKING:
    import simpy

    from sim.service import Instance

FALLBACK = 0
RETRY = 1
CIRCUIT_BREAKER = 2
TIMEOUT = 3
BULKHEAD = 4
RATE_LIMITER = 5
_LAYER_CODES = {
    "fallback": FALLBACK,
    "retry": RETRY,
    "circuit_breaker": CIRCUIT_BREAKER,
    "rate_limiter": RATE_LIMITER,
    "timeout": TIMEOUT,
    "bulkhead": BULKHEAD,
}

BREAKER_GAUGE = {
    State.CLOSED: 0.0,
    State.OPEN: 1.0,
    State.HALF_OPEN: 2.0,
    State.FORCED_OPEN: 1.0,
    State.DISABLED: 0.0,
    State.METRICS_ONLY: 0.0,
}
"""The breaker-state gauge: 0 closed, 1 open, 2 half-open."""


def backoff_of(spec: sc.BackoffSpec) -> Backoff:
    """The :mod:`patterns.retry` back-off of a schema block."""
    if isinstance(spec, sc.NoBackoffSpec):
        return NoBackoff()
    if isinstance(spec, sc.ConstantBackoffSpec):
        return ConstantBackoff(spec.wait)
    if isinstance(spec, sc.ExponentialBackoffSpec):
        return ExponentialBackoff(spec.base, spec.cap, spec.jitter)
    if isinstance(spec, sc.GrpcBackoffSpec):
        return GrpcBackoff(spec.initial, spec.max, spec.multiplier)
    return EnvoyBackoff(spec.base, spec.max)


def budget_factory(spec: sc.BudgetSpec | None) -> Callable[[], RetryBudget] | None:
    """What makes a fresh retry budget for one calling instance (None: no budget)."""
    if spec is None:
        return None
    if isinstance(spec, sc.EnvoyBudgetSpec):
        envoy = EnvoyRetryBudgetConfig(
            budget_percent=spec.budget_percent, min_retry_concurrency=spec.min_retry_concurrency
        )
        return lambda: EnvoyRetryBudget(envoy)
    if isinstance(spec, sc.GrpcBudgetSpec):
        grpc = GrpcRetryThrottleConfig(max_tokens=spec.max_tokens, token_ratio=spec.token_ratio)
        return lambda: GrpcRetryThrottle(grpc)
    return AwsRetryQuota


def breaker_config(spec: sc.CircuitBreakerSpec) -> CircuitBreakerConfig:
    """The :class:`CircuitBreakerConfig` of a schema block."""
    return CircuitBreakerConfig(
        sliding_window_type=SlidingWindowType(spec.sliding_window_type),
        sliding_window_size=spec.sliding_window_size,
        minimum_number_of_calls=spec.minimum_number_of_calls,
        failure_rate_threshold=spec.failure_rate_threshold,
        slow_call_rate_threshold=spec.slow_call_rate_threshold,
        slow_call_duration_threshold=spec.slow_call_duration_threshold,
        wait_duration_in_open_state=spec.wait_duration_in_open_state,
        permitted_number_of_calls_in_half_open_state=(
            spec.permitted_number_of_calls_in_half_open_state
        ),
        automatic_transition_from_open_to_half_open_enabled=(
            spec.automatic_transition_from_open_to_half_open_enabled
        ),
    )


def _succeeded(outcome: Outcome) -> bool:
    """``ok`` or ``degraded``: :meth:`Outcome.success` without a property lookup per attempt."""
    return outcome <= Outcome.DEGRADED


class CallPolicies:
    """The compiled policy chain of one edge (shared by all its calling instances).

    Attributes:
        name: the resilience4j instance name, ``caller->callee``.
        layers: layer codes, outermost first, only those in use (the timeout only with one).
        retry: the retry policy, or None.
        retry_rules: the retry policy with the simulator's outcomes, or None.
        budget: makes a fresh budget per calling instance, or None.
        breaker: the breaker config, or None.
        bulkhead: the bulkhead config, or None.
        rate_limiter: the resilience4j RateLimiter config, or None.
        rng: uniforms for jittered back-off (the edge's own stream).
        metrics: attempts and retries over the whole run (all calling instances, across their
            restarts: observability, not behaviour).
        budget_exhausted: retries refused by a budget, over the run.
        fallbacks: failed calls answered by the fallback, over the run.
        bulkhead_rejected: calls the bulkhead refused, over the run.
    """

    __slots__ = (
        "breaker",
        "budget",
        "budget_exhausted",
        "bulkhead",
        "bulkhead_rejected",
        "bulkhead_waits",
        "fallbacks",
        "layers",
        "metrics",
        "name",
        "rate_limiter",
        "retry",
        "retry_rules",
        "rng",
        "stops",
        "unwind",
    )

    def __init__(self, name: str, call: sc.Call, rng: Callable[[], float]) -> None:
        self.name = name
        self.rng = rng
        self.retry: RetryConfig | None = None
        self.retry_rules: RetryRules | None = None
        self.budget: Callable[[], RetryBudget] | None = None
        self.metrics = RetryMetrics()
        if call.retry is not None:
            self.retry = RetryConfig(
                max_attempts=call.retry.max_attempts,
                retry_on=frozenset(call.retry.retry_on),
                backoff=backoff_of(call.retry.backoff),
                per_try_timeout=call.retry.per_try_timeout,
                name=name,
            )
            self.retry_rules = RetryRules(
                self.retry,
                rng,
                is_success=_succeeded,
                timeout_outcome=Outcome.TIMEOUT,
                deadline_outcome=Outcome.DEADLINE_EXCEEDED,
                metrics=self.metrics,
            )
            self.budget = budget_factory(call.retry.budget)
        cb = call.circuit_breaker
        self.breaker = breaker_config(cb) if cb is not None and cb.enabled else None
        spec = call.bulkhead
        self.bulkhead: BulkheadConfig | ThreadPoolBulkheadConfig | None
        if spec is None:
            self.bulkhead = None
        elif isinstance(spec, sc.ThreadPoolBulkheadSpec):
            self.bulkhead = spec.config()
        else:
            self.bulkhead = BulkheadConfig(
                max_concurrent_calls=spec.max_concurrent_calls,
                max_wait_duration=spec.max_wait_duration,
            )
        self.bulkhead_waits = isinstance(self.bulkhead, ThreadPoolBulkheadConfig) or (
            self.bulkhead is not None and self.bulkhead.max_wait_duration > 0
        )
        """Whether a call may wait for the bulkhead (a thread pool's queue, a semaphore's wait)."""
        rl = call.rate_limiter
        self.rate_limiter = (
            None
            if rl is None
            else RateLimiterConfig(
                limit_for_period=rl.limit_for_period,
                limit_refresh_period=rl.limit_refresh_period,
                timeout_duration=rl.timeout_duration,
            )
        )
        used = {
            "fallback": call.fallback is not None and call.fallback.enabled,
            "retry": self.retry is not None,
            "circuit_breaker": self.breaker is not None,
            "rate_limiter": self.rate_limiter is not None,
            "timeout": call.timeout is not None,
            "bulkhead": self.bulkhead is not None,
        }
        order = call.order or sc.DEFAULT_POLICY_ORDER
        self.layers = tuple(_LAYER_CODES[layer] for layer in order if used[layer])
        layers = self.layers
        self.unwind = [
            [
                tuple(
                    layer
                    for layer in reversed(layers[start:stop])
                    if layer in (FALLBACK, CIRCUIT_BREAKER)
                    or (layer == BULKHEAD and not self.bulkhead_waits)
                )
                for stop in range(len(layers) + 1)
            ]
            for start in range(len(layers) + 1)
        ]
        """``unwind[start][stop]``: the layers a chain level entered from ``start`` and left
        before ``stop`` that act on its way out, innermost first (a bulkhead that may wait
        releases itself)."""
        self.stops = [
            (*(j for j in range(start, len(layers)) if layers[j] != FALLBACK), len(layers))
            for start in range(len(layers) + 1)
        ]
        """``stops[start]``: where a chain level entered at layer ``start`` stops on its way in:
        each layer from ``start`` on that acts on the way in (a fallback acts on the way out
        only), then the transport (``len(layers)``)."""
        self.budget_exhausted = 0
        self.fallbacks = 0
        self.bulkhead_rejected = 0

    @staticmethod
    def wanted(call: sc.Call) -> bool:
        """Whether ``call`` has a policy beyond (at most) a timeout.

        Without one the edge stays on its fast path, exactly as before policies existed.
        """
        return not (
            call.retry is None
            and (call.circuit_breaker is None or not call.circuit_breaker.enabled)
            and call.bulkhead is None
            and call.rate_limiter is None
            and (call.fallback is None or not call.fallback.enabled)
        )


class ClientState:
    """What one calling instance remembers about one dependency (breaker, limiters, budget)."""

    __slots__ = ("breaker", "budget", "bulkhead", "owner", "rate_limiter")

    def __init__(
        self,
        env: simpy.Environment,
        policies: CallPolicies,
        owner: Instance | None,
        on_breaker_event: Callable[[str, str], None] | None,
    ) -> None:
        name = policies.name
        self.owner = owner
        """The calling instance (None: the users)."""
        self.breaker = (
            None
            if policies.breaker is None
            else CircuitBreaker(env, name, policies.breaker, on_breaker_event)
        )
        bulkhead = policies.bulkhead
        self.bulkhead: SemaphoreBulkhead | ThreadPoolBulkhead | None
        if bulkhead is None:
            self.bulkhead = None
        elif isinstance(bulkhead, ThreadPoolBulkheadConfig):
            self.bulkhead = ThreadPoolBulkhead(env, name, bulkhead)
        else:
            self.bulkhead = SemaphoreBulkhead(env, name, bulkhead)
        self.budget = None if policies.budget is None else policies.budget()
        self.rate_limiter = (
            None
            if policies.rate_limiter is None
            else RateLimiter(env, policies.rate_limiter, name=name)
        )
