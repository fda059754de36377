"""Retries, backoff, jitter and retry budgets (reference semantics §11; §12 V30-V33, V35, V36)."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import simpy

from patterns.retry import (
    AwsRetryQuota,
    AwsRetryQuotaConfig,
    BackoffState,
    ConstantBackoff,
    EnvoyBackoff,
    EnvoyRetryBudget,
    EnvoyRetryBudgetConfig,
    ExponentialBackoff,
    GrpcBackoff,
    GrpcRetryThrottle,
    GrpcRetryThrottleConfig,
    NoBackoff,
    Resilience4jInterval,
    RetryBudget,
    RetryConfig,
    RetryMetrics,
    Started,
    java_duration,
    run_with_retry,
    within,
)
from sim.request import Outcome

DRAWS = 20_000


def draws(backoff, attempt, seed=1, n=DRAWS):
    rng = np.random.default_rng(seed)
    return np.array([backoff.delay(attempt, rng) for _ in range(n)])


def fixed(u):
    """A uniform source that always returns ``u``."""
    return lambda: u


# --------------------------------------------------------------------------- V30: AWS families


@pytest.mark.parametrize(
    ("attempt", "bound"), [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.6), (6, 2.0), (9, 2.0)]
)
def test_full_jitter_bounds_double_to_the_cap_and_mean_is_half(attempt, bound):
    """V30: base 100 ms, cap 2 s: n = 0..5 bounds 100..1600, 2000 ms; mean sleep = bound / 2."""
    backoff = ExponentialBackoff(base=0.1, cap=2.0, jitter="full")
    sleeps = draws(backoff, attempt)
    assert sleeps.min() >= 0.0
    assert sleeps.max() < bound
    assert sleeps.max() > 0.999 * bound
    assert sleeps.mean() == pytest.approx(bound / 2, rel=0.02)


def test_full_jitter_is_brookers_formula_exactly():
    """uniform(0, expo(n)) = u * min(cap, base * 2**n)."""
    backoff = ExponentialBackoff(base=0.1, cap=2.0, jitter="full")
    assert backoff.delay(3, fixed(0.25)) == 0.25 * 0.4
    assert backoff.delay(40, fixed(0.5)) == 1.0


def test_equal_jitter_at_n3_is_between_400_and_800_ms():
    """V30: equal jitter, n = 3 (the fourth attempt's back-off): sleep in [400, 800] ms."""
    backoff = ExponentialBackoff(base=0.1, cap=2.0, jitter="equal")
    sleeps = draws(backoff, 4)
    assert sleeps.min() >= 0.4
    assert sleeps.max() <= 0.8
    assert sleeps.min() < 0.401
    assert sleeps.max() > 0.799
    assert sleeps.mean() == pytest.approx(0.6, rel=0.01)
    v = 0.1 * 2.0**3
    assert backoff.delay(4, fixed(0.5)) == v / 2 + (v / 2) * 0.5


def test_no_jitter_is_the_exponential_itself():
    """expo(n): 100, 200, 400, 800, 1600, 2000, 2000 ms, no randomness."""
    backoff = ExponentialBackoff(base=0.1, cap=2.0, jitter="none")
    assert [backoff.delay(k, fixed(0.9)) for k in range(1, 8)] == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.6,
        2.0,
        2.0,
    ]


def test_decorrelated_first_sleep_is_100_to_300_ms_and_never_above_the_cap():
    """V30: sleep = min(cap, uniform(base, previous * 3)), previous = base at first."""
    backoff = ExponentialBackoff(base=0.1, cap=2.0, jitter="decorrelated")
    first = draws(backoff, 1)
    assert first.min() >= 0.1
    assert first.max() <= 0.3
    assert first.mean() == pytest.approx(0.2, rel=0.01)
    rng = np.random.default_rng(3)
    chains = []
    for _ in range(500):
        state = BackoffState()
        chains.append([backoff.delay(k, rng, state) for k in range(1, 30)])
    flat = np.array(chains)
    assert flat.min() >= 0.1
    assert flat.max() == 2.0  # the cap is reached, and min() keeps every sleep at or below it


def test_decorrelated_uses_the_previous_sleep_from_the_per_call_state():
    """Each sleep is drawn from [base, 3 x previous]; the state carries the previous sleep."""
    backoff = ExponentialBackoff(base=0.1, cap=2.0, jitter="decorrelated")
    state = BackoffState()
    first = backoff.delay(1, fixed(0.5), state)
    assert first == pytest.approx(0.2)
    assert state.previous == first
    second = backoff.delay(2, fixed(0.5), state)
    assert second == pytest.approx(0.1 + 0.5 * (3 * 0.2 - 0.1))
    # The attempt number is ignored: a fresh state starts again from the base.
    assert backoff.delay(7, fixed(0.5), BackoffState()) == pytest.approx(0.2)


def test_botocore_standard_backoff_is_the_default_exponential():
    """AWS standard mode: rand * min(2**(attempt-1), 20) s: full jitter, base 1 s, cap 20 s."""
    backoff = ExponentialBackoff()
    assert backoff == ExponentialBackoff(base=1.0, cap=20.0, jitter="full")
    assert [backoff.delay(k, fixed(0.5)) for k in (1, 2, 3, 5, 6, 9)] == [
        0.5,
        1.0,
        2.0,
        8.0,
        10.0,
        10.0,
    ]


def test_backoffs_reject_attempt_zero():
    """Attempts are counted from 1 (the number of failed attempts before the retry)."""
    with pytest.raises(ValueError, match="starts at 1"):
        ExponentialBackoff().delay(0, fixed(0.5))


def test_none_and_constant_backoff():
    """No back-off retries at once; constant back-off waits 500 ms (resilience4j default)."""
    assert NoBackoff().delay(5, fixed(0.5)) == 0.0
    assert ConstantBackoff().delay(5, fixed(0.5)) == 0.5


# --------------------------------------------------------------------------- V31: gRPC throttle


def test_grpc_throttle_retries_failures_1_to_4_and_throttles_the_5th():
    """V31: maxTokens 10, ratio 0.1: tokens 9, 8, 7, 6 retried; at 5 (<= 5) throttled."""
    throttle = GrpcRetryThrottle(GrpcRetryThrottleConfig(max_tokens=10, token_ratio=0.1))
    seen = []
    for _ in range(5):
        throttle.on_failure()
        seen.append((throttle.tokens, throttle.can_retry()))
    assert seen == [(9, True), (8, True), (7, True), (6, True), (5, False)]


def test_grpc_throttle_needs_11_successes_from_5_tokens_in_float64():
    """V31: 10 successes give 5.999... (not 6.0); with decrement-then-test, 11 are needed."""
    for successes, retried in ((10, False), (11, True)):
        throttle = GrpcRetryThrottle()
        throttle.tokens = 5.0
        for _ in range(successes):
            throttle.on_success()
        if successes == 10:
            assert throttle.tokens == 5.9999999999999964  # float64 sum of ten 0.1s
        throttle.on_failure()
        assert throttle.can_retry() is retried


def test_grpc_throttle_floors_at_0_and_caps_at_max_tokens():
    """Failures floor the tokens at 0; successes cap them at maxTokens."""
    throttle = GrpcRetryThrottle(GrpcRetryThrottleConfig(max_tokens=2, token_ratio=0.5))
    for _ in range(5):
        throttle.on_failure()
    assert throttle.tokens == 0.0
    for _ in range(10):
        throttle.on_success()
    assert throttle.tokens == 2.0


def test_grpc_throttle_config_limits():
    """The config needs maxTokens in (0, 1000] and tokenRatio > 0."""
    with pytest.raises(ValueError, match="maxTokens"):
        GrpcRetryThrottleConfig(max_tokens=1001)
    with pytest.raises(ValueError, match="tokenRatio"):
        GrpcRetryThrottleConfig(token_ratio=0)


def test_grpc_throttle_through_the_loop_counts_every_retryable_failure():
    """The last attempt of a call spends a token too; non-retryable failures spend none."""
    env = simpy.Environment()
    throttle = GrpcRetryThrottle()
    config = RetryConfig.grpc(
        max_attempts=5,
        retryable_status_codes=frozenset({"unavailable"}),
        backoff=GrpcBackoff(),
    )
    results = []

    def failing(outcome):
        def attempt(n):
            yield env.timeout(0.01)
            return outcome

        return attempt

    def caller():
        results.append(
            (
                yield from run_with_retry(
                    env, failing("unavailable"), config, throttle, rng=fixed(0.5)
                )
            )
        )
        results.append(
            (
                yield from run_with_retry(
                    env, failing("invalid_argument"), config, throttle, rng=fixed(0.5)
                )
            )
        )
        results.append(
            (
                yield from run_with_retry(
                    env, failing("unavailable"), config, throttle, rng=fixed(0.5)
                )
            )
        )

    env.process(caller())
    env.run()
    # Call 1: 5 attempts, tokens 10 -> 5 (the 5th failure is throttled and out of attempts).
    # Call 2: not retryable, tokens stay 5. Call 3: 5 -> 4, throttled at once.
    assert results == [("unavailable", 5), ("invalid_argument", 1), ("unavailable", 1)]
    assert throttle.tokens == 4.0
    assert throttle.retries == 4
    assert throttle.exhausted == 1


# --------------------------------------------------------------------------- V32: gRPC backoff


@pytest.mark.parametrize(
    ("retry", "low", "high"),
    [
        (1, 0.08, 0.12),
        (2, 0.16, 0.24),
        (3, 0.32, 0.48),
        (4, 0.64, 0.96),
        (5, 0.8, 1.2),
        (6, 0.8, 1.2),
    ],
)
def test_grpc_backoff_is_within_20_percent_of_the_capped_exponential(retry, low, high):
    """V32: initial 0.1 s, multiplier 2, max 1 s: [80,120], [160,240], ..., 5+ in [800,1200] ms."""
    sleeps = draws(GrpcBackoff(initial_backoff=0.1, max_backoff=1.0, backoff_multiplier=2), retry)
    assert sleeps.min() >= low
    assert sleeps.max() <= high
    assert sleeps.min() < low * 1.001
    assert sleeps.max() > high * 0.999
    assert sleeps.mean() == pytest.approx((low + high) / 2, rel=0.01)


def test_grpc_backoff_truncates_to_whole_nanoseconds():
    """grpc-go: dur = time.Duration(int64(cur)), cur in ns."""
    assert GrpcBackoff().delay(1, fixed(1 / 3)) == math.floor(1e8 * (0.8 + 0.4 / 3)) / 1e9


def test_grpc_legacy_full_jitter_draws_from_0_to_the_value():
    """Older grpc-go / A6 text: uniform(0, min(initial * mult**(k-1), max))."""
    sleeps = draws(GrpcBackoff(legacy_full_jitter=True), 3)
    assert sleeps.min() >= 0
    assert sleeps.max() < 0.4
    assert sleeps.mean() == pytest.approx(0.2, rel=0.02)


def test_grpc_max_attempts_10_is_treated_as_5():
    """V32: maxAttempts 10 in config -> at most 5 attempts; maxAttempts must be >= 2."""
    config = RetryConfig.grpc(max_attempts=10, retryable_status_codes=frozenset({"unavailable"}))
    assert config.max_attempts == 5
    env = simpy.Environment()
    starts = []

    def attempt(n):
        starts.append(env.now)
        yield env.timeout(0)
        return "unavailable"

    proc = env.process(run_with_retry(env, attempt, config, rng=np.random.default_rng(0)))
    env.run()
    assert proc.value == ("unavailable", 5)
    gaps = np.diff(starts)
    for k, gap in enumerate(gaps, start=1):
        nominal = min(0.1 * 2 ** (k - 1), 1.0)
        assert 0.8 * nominal <= gap <= 1.2 * nominal
    with pytest.raises(ValueError, match=">= 2"):
        RetryConfig.grpc(max_attempts=1, retryable_status_codes=frozenset({"unavailable"}))


# --------------------------------------------------------------------------- V33: Envoy


def test_envoy_budget_defaults_20_percent_min_3_and_max_retries_3():
    """V33: 100 active + pending -> 20 concurrent retries; 10 -> 3; without a budget -> 3."""
    load = {"n": 100}
    budget = EnvoyRetryBudget(load=lambda: load["n"])
    assert budget.max_active_retries() == 20
    load["n"] = 10
    assert budget.max_active_retries() == 3
    load["n"] = 17  # 3.4 truncates to 3, like the uint64 conversion
    assert budget.max_active_retries() == 3
    load["n"] = 1000
    no_budget = EnvoyRetryBudget(EnvoyRetryBudgetConfig(retry_budget=False), load=lambda: 1000)
    assert no_budget.max_active_retries() == 3
    assert EnvoyRetryBudgetConfig() == EnvoyRetryBudgetConfig(True, 20.0, 3, 3)


@pytest.mark.parametrize(
    ("retry", "bound_ms"), [(1, 25), (2, 50), (3, 100), (4, 200), (5, 250), (6, 250)]
)
def test_envoy_backoff_draws_whole_ms_below_25_50_100_200_250_250(retry, bound_ms):
    """V33: retry delays from [0,25), [0,50), [0,100), [0,200), [0,250), [0,250) ms."""
    backoff = EnvoyBackoff()
    assert backoff.bound_ms(retry) == bound_ms
    ms = draws(backoff, retry) * 1000
    assert np.allclose(ms, np.round(ms))
    assert round(ms.min()) == 0
    assert round(ms.max()) == bound_ms - 1
    assert ms.mean() == pytest.approx((bound_ms - 1) / 2, rel=0.03)


def test_envoy_backoff_custom_max_interval():
    """Base 100 ms, max 1 s: 100, 200, 400, 800, 1000 (800 > 500, so the next bound is the max)."""
    backoff = EnvoyBackoff(base_interval=0.1, max_interval=1.0)
    assert [backoff.bound_ms(k) for k in range(1, 7)] == [100, 200, 400, 800, 1000, 1000]


def test_envoy_retry_slot_is_held_through_backoff_and_retry_then_freed():
    """Four calls fail at once with min_retry_concurrency 3 and no load: the 4th retry overflows.

    A granted retry holds its slot from the decision, through the back-off, until the retried
    attempt ends.
    """
    env = simpy.Environment()
    budget = EnvoyRetryBudget(EnvoyRetryBudgetConfig(min_retry_concurrency=3))
    config = RetryConfig.envoy(retry_on=frozenset({"reset"}), num_retries=1, backoff=EnvoyBackoff())
    active_retries = []
    results = []

    def attempt(n):
        active_retries.append((n, env.now, budget.active_retries))
        yield env.timeout(0.1)
        return "reset" if n == 1 else "ok"

    def call():
        results.append((yield from run_with_retry(env, attempt, config, budget, rng=fixed(0.0))))

    for _ in range(4):
        env.process(call())
    env.run()
    assert sorted(results) == [("ok", 2)] * 3 + [("reset", 1)]
    assert budget.retries == 3
    assert budget.exhausted == 1
    # Each retry starts at 0.1 s (0 ms back-off) holding its slot; the 4th finds all 3 taken.
    assert [(t, a) for n, t, a in active_retries if n == 2] == [(0.1, 1), (0.1, 2), (0.1, 3)]
    assert budget.active_retries == 0
    assert budget.active_requests == 0


def test_envoy_route_policy_defaults_to_one_retry():
    """num_retries default 1 -> 2 attempts; 25 ms base back-off."""
    config = RetryConfig.envoy(retry_on=frozenset({"unavailable"}))
    assert config.max_attempts == 2
    assert config.backoff == EnvoyBackoff(base_interval=0.025)


def test_interrupted_call_gives_back_its_envoy_retry_slot():
    """A call interrupted during its back-off frees the retry slot (try/finally in the loop)."""
    env = simpy.Environment()
    budget = EnvoyRetryBudget()
    config = RetryConfig(max_attempts=3, backoff=ConstantBackoff(10.0))

    def attempt(n):
        yield env.timeout(1)
        return "error"

    def call():
        with contextlib.suppress(simpy.Interrupt):
            yield from run_with_retry(env, attempt, config, budget)

    proc = env.process(call())
    env.run(until=5)
    assert budget.active_retries == 1
    proc.interrupt()
    env.run()
    assert budget.active_retries == 0


# --------------------------------------------------------------------------- V35: resilience4j


def test_resilience4j_defaults_three_attempts_500ms_apart_then_the_last_failure():
    """V35: an always failing call is attempted 3 times, 500 ms apart; then it gives up."""
    env = simpy.Environment()
    starts, lines = [], []
    metrics = RetryMetrics()

    def attempt(n):
        starts.append(env.now)
        yield env.timeout(0.1)
        return "error"

    config = RetryConfig(name="frontend->cart")
    assert config.max_attempts == 3
    assert config.backoff == Resilience4jInterval(wait_duration=0.5)
    proc = env.process(
        run_with_retry(
            env,
            attempt,
            config,
            on_event=lambda kind, line: lines.append((kind, line)),
            metrics=metrics,
        )
    )
    env.run()
    assert proc.value == ("error", 3)
    assert starts == pytest.approx([0.0, 0.6, 1.2])
    assert env.now == pytest.approx(1.3)  # 1.0 s of pauses added to 0.3 s of attempts
    assert lines == [
        (
            "retry",
            "Retry 'frontend->cart', waiting PT0.5S until attempt '1'. "
            "Last attempt failed with exception 'error'.",
        ),
        (
            "retry",
            "Retry 'frontend->cart', waiting PT0.5S until attempt '2'. "
            "Last attempt failed with exception 'error'.",
        ),
        (
            "error",
            "Retry 'frontend->cart' recorded a failed retry attempt. Number of retry attempts: "
            "'3'. Giving up. Last exception was: 'error'.",
        ),
    ]
    assert metrics == RetryMetrics(failed_calls_with_retry=1, attempts=3, retries=2)


def test_resilience4j_exponential_interval_truncates_each_step():
    """ofExponentialBackoff(500, 1.5): 500, 750, 1125, 1687, 2530 ms (long truncation)."""
    interval = Resilience4jInterval(wait_duration=0.5, multiplier=1.5)
    assert [interval.interval_ms(k) for k in range(1, 6)] == [500, 750, 1125, 1687, 2530]
    capped = Resilience4jInterval(wait_duration=0.5, multiplier=1.5, max_interval=1.0)
    assert [capped.interval_ms(k) for k in range(1, 5)] == [500, 750, 1000, 1000]


def test_resilience4j_randomized_interval_is_within_half_either_side():
    """ofRandomized(500, 0.5): uniform in [250, 750) ms, truncated to whole ms."""
    interval = Resilience4jInterval(wait_duration=0.5, randomization_factor=0.5)
    ms = draws(interval, 1) * 1000
    assert np.allclose(ms, np.round(ms))
    assert ms.min() == 250
    assert ms.max() == 749
    assert ms.mean() == pytest.approx(499.5, rel=0.01)


def test_resilience4j_success_after_retry_line():
    """RetryOnSuccessEvent counts the failed attempts before the success."""
    env = simpy.Environment()
    lines = []

    def attempt(n):
        yield env.timeout(0)
        return "ok" if n == 3 else "timeout"

    proc = env.process(
        run_with_retry(
            env,
            attempt,
            RetryConfig(name="b", backoff=ConstantBackoff(0.25)),
            on_event=lambda kind, line: lines.append(line),
        )
    )
    env.run()
    assert proc.value == ("ok", 3)
    assert lines[-1] == (
        "Retry 'b' recorded a successful retry attempt. Number of retry attempts: '2', "
        "Last exception was: 'timeout'."
    )
    assert lines[0] == (
        "Retry 'b', waiting PT0.25S until attempt '1'. "
        "Last attempt failed with exception 'timeout'."
    )


def test_non_retryable_failure_is_returned_at_once_as_an_ignored_error():
    """An outcome outside retry_on ends the call; RetryOnIgnoredErrorEvent's line."""
    env = simpy.Environment()
    lines = []

    def attempt(n):
        yield env.timeout(0.2)
        return "shed"

    config = RetryConfig(name="a", retry_on=frozenset({"timeout"}))
    proc = env.process(
        run_with_retry(env, attempt, config, on_event=lambda kind, line: lines.append((kind, line)))
    )
    env.run()
    assert proc.value == ("shed", 1)
    assert env.now == 0.2
    assert lines == [
        ("ignored_error", "Retry 'a' recorded an error which has been ignored: 'shed'.")
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "PT0.5S"),
        (1.0, "PT1S"),
        (0.025, "PT0.025S"),
        (0.0, "PT0S"),
        (90.5, "PT1M30.5S"),
        (3600, "PT1H"),
    ],
)
def test_java_duration_text(seconds, text):
    """The wait is printed as java.time.Duration.toString()."""
    assert java_duration(seconds) == text


# --------------------------------------------------------------------------- V36: AWS quota


def test_aws_quota_pays_for_100_retries_or_50_timeout_retries():
    """V36: from 500 tokens, 100 retries at 5 (or 50 timeout retries at 10) before retries stop."""
    for timeout, count in ((False, 100), (True, 50)):
        quota = AwsRetryQuota()
        taken = 0
        while quota.can_retry(timeout):
            quota.on_retry(timeout)
            taken += 1
        assert taken == count
        assert quota.available == 0


def test_aws_quota_refunds_1_per_first_try_success_and_the_last_retry_cost_otherwise():
    """A clean success returns 1; a retried success returns only its last retry's cost."""
    quota = AwsRetryQuota()
    quota.on_success(None)
    assert quota.available == 500  # never above the initial capacity
    first = quota.on_retry(timeout=False)
    last = quota.on_retry(timeout=True)
    assert quota.available == 485
    quota.on_success(last)
    assert (first, last, quota.available) == (5.0, 10.0, 495)
    quota.on_success(None)
    assert quota.available == 496
    assert AwsRetryQuotaConfig() == AwsRetryQuotaConfig(500, 5, 10, 1)


def test_aws_quota_through_the_loop_stops_retrying_after_50_failing_calls():
    """Always-failing calls (3 attempts, 2 retries each) drain 10 tokens per call."""
    env = simpy.Environment()
    quota = AwsRetryQuota()
    config = RetryConfig(max_attempts=3, backoff=ExponentialBackoff())
    results = []

    def attempt(n):
        yield env.timeout(0.05)
        return "unavailable"

    def caller():
        for _ in range(52):
            results.append(
                (
                    yield from run_with_retry(
                        env, attempt, config, quota, rng=np.random.default_rng(0)
                    )
                )
            )

    env.process(caller())
    env.run()
    assert results == [("unavailable", 3)] * 50 + [("unavailable", 1)] * 2
    assert quota.available == 0
    assert quota.retries == 100
    assert quota.exhausted == 2


def test_aws_timeout_outcome_costs_10():
    """A retry after a timeout outcome (label ``timeout``) takes 10 tokens."""
    env = simpy.Environment()
    quota = AwsRetryQuota()

    def attempt(n):
        yield env.timeout(0)
        return Outcome.TIMEOUT if n == 1 else Outcome.OK

    proc = env.process(run_with_retry(env, attempt, RetryConfig(backoff=NoBackoff()), quota))
    env.run()
    assert proc.value == (Outcome.OK, 2)
    assert quota.available == 500  # paid 10, refunded 10


# --------------------------------------------------------------------------- the loop


def test_retry_loop_timeline_with_constant_backoff():
    """Attempts at 0, 0.3, 0.6 (0.1 s each, 0.2 s pauses); success on the third."""
    env = simpy.Environment()
    log = []

    def attempt(n):
        log.append(("start", n, round(env.now, 9)))
        yield env.timeout(0.1)
        return "ok" if n == 3 else "unavailable"

    def caller():
        outcome, attempts = yield from run_with_retry(
            env, attempt, RetryConfig(max_attempts=5, backoff=ConstantBackoff(0.2))
        )
        log.append((outcome, attempts, round(env.now, 9)))

    env.process(caller())
    env.run()
    assert log == [("start", 1, 0.0), ("start", 2, 0.3), ("start", 3, 0.6), ("ok", 3, 0.7)]


def test_attempts_run_in_the_callers_process_without_timeouts():
    """Without per-try timeout or deadline the attempt is driven by ``yield from``: no process."""
    env = simpy.Environment()
    seen = []

    def attempt(n):
        seen.append(env.active_process)
        yield env.timeout(0)
        return "ok"

    proc = env.process(run_with_retry(env, attempt, RetryConfig()))
    env.run()
    assert seen == [proc]


def test_per_try_timeout_abandons_the_attempt_and_retries():
    """Per-try timeout 1 s on 10 s attempts: timeouts at 1, 2.5 and 4 s (0.5 s pauses)."""
    env = simpy.Environment()
    starts = []

    def attempt(n):
        starts.append(env.now)
        yield env.timeout(10)
        return "ok"

    config = RetryConfig(per_try_timeout=1.0, retry_on=frozenset({"timeout"}))
    proc = env.process(run_with_retry(env, attempt, config))
    env.run(until=5)
    assert proc.value == ("timeout", 3)
    assert starts == [0.0, 1.5, 3.0]


def test_deadline_inside_a_backoff_ends_the_call_at_the_deadline():
    """Deadline 1.2 s; attempts of 0.1 s and 0.5 s pauses: the third pause hits the deadline."""
    env = simpy.Environment()
    starts = []

    def attempt(n):
        starts.append(env.now)
        yield env.timeout(0.1)
        return "unavailable"

    config = RetryConfig(max_attempts=10, deadline=1.2, retry_on=frozenset({"unavailable"}))
    proc = env.process(run_with_retry(env, attempt, config))
    env.run()
    assert proc.value == ("deadline_exceeded", 2)
    assert starts == pytest.approx([0.0, 0.6])
    assert env.now == pytest.approx(1.2)


def test_deadline_inside_an_attempt_cuts_it():
    """Deadline 1 s on a 10 s attempt: the call ends at 1 s with the deadline outcome."""
    env = simpy.Environment()

    def attempt(n):
        yield env.timeout(10)
        return "ok"

    config = RetryConfig(deadline=1.0)
    proc = env.process(
        run_with_retry(env, attempt, config, deadline_outcome=Outcome.DEADLINE_EXCEEDED)
    )
    env.run(until=2)
    assert proc.value == (Outcome.DEADLINE_EXCEEDED, 1)


def test_outcome_enums_are_classified_by_label_and_success_flag():
    """sim.request.Outcome members work as outcomes: ``.label`` for retry_on, ``.success``."""
    env = simpy.Environment()

    def attempt(n):
        yield env.timeout(0)
        return [Outcome.RESET, Outcome.UNAVAILABLE, Outcome.DEGRADED][n - 1]

    config = RetryConfig(
        max_attempts=5, backoff=NoBackoff(), retry_on=frozenset({"reset", "unavailable"})
    )
    proc = env.process(run_with_retry(env, attempt, config))
    env.run()
    assert proc.value == (Outcome.DEGRADED, 3)


def test_int_outcomes_and_custom_predicates():
    """Plain ints pass through; ``retry_on`` may list them; predicates override the defaults."""
    env = simpy.Environment()
    codes = iter([503, 500, 201])

    def attempt(n):
        yield env.timeout(0)
        return next(codes)

    config = RetryConfig(max_attempts=5, backoff=NoBackoff(), retry_on=frozenset({503, 500}))
    proc = env.process(run_with_retry(env, attempt, config))
    env.run()
    assert proc.value == (201, 3)

    env = simpy.Environment()
    proc = env.process(
        run_with_retry(
            env,
            lambda n: (yield env.timeout(0)) or "flaky",
            RetryConfig(max_attempts=4, backoff=NoBackoff()),
            is_success=lambda o: False,
            is_retryable=lambda o: o == "flaky",
        )
    )
    env.run()
    assert proc.value == ("flaky", 4)


def test_unlimited_budget_counts_retries_only():
    """RetryBudget() is resilience4j's: attempts per call only; it still counts the retries."""
    env = simpy.Environment()
    budget = RetryBudget()

    def attempt(n):
        yield env.timeout(0)
        return "error"

    env.process(run_with_retry(env, attempt, RetryConfig(backoff=NoBackoff()), budget))
    env.run()
    assert (budget.retries, budget.exhausted) == (2, 0)


def test_jittered_backoff_without_rng_is_an_error():
    """Randomness must be handed in."""
    env = simpy.Environment()

    def attempt(n):
        yield env.timeout(0)
        return "error"

    env.process(run_with_retry(env, attempt, RetryConfig(backoff=ExponentialBackoff())))
    with pytest.raises(ValueError, match="pass rng"):
        env.run()


def test_budget_exhausted_event_line():
    """When the budget refuses a retry the client's own line is sent with kind budget_exhausted."""
    env = simpy.Environment()
    lines = []
    quota = AwsRetryQuota(AwsRetryQuotaConfig(initial_capacity=4))

    def attempt(n):
        yield env.timeout(0)
        return "error"

    env.process(
        run_with_retry(
            env, attempt, RetryConfig(), quota, on_event=lambda k, line: lines.append((k, line))
        )
    )
    env.run()
    assert lines == [
        ("budget_exhausted", "Retry needed but retry quota reached, not retrying request.")
    ]


# --------------------------------------------------------------------------- within


def test_within_resumes_at_the_childs_end_or_at_the_limit():
    """``yield within(env, child, limit)`` resumes at the child's end or at the limit.

    The abandoned child goes on to its own end (the second run starts at 1.0, when the first
    caller's unused timer has fired).
    """
    env = simpy.Environment()
    log = []

    def child(duration):
        yield env.timeout(duration)
        log.append(("child done", env.now))
        return "answer"

    def caller(duration):
        started = env.now
        kid = env.process(child(duration))
        yield within(env, kid, 1.0)
        log.append(
            ("caller", env.now - started, kid.triggered, kid.value if kid.triggered else None)
        )

    env.process(caller(0.5))
    env.run()
    assert log == [("child done", 0.5), ("caller", 0.5, True, "answer")]
    log.clear()
    env.process(caller(3.0))
    env.run()
    assert log == [("caller", 1.0, False, None), ("child done", 4.0)]


def test_within_raises_a_childs_failure_in_the_caller():
    """A child that fails in time fails the caller's ``yield``, as ``yield child`` does."""
    env = simpy.Environment()

    def child():
        yield env.timeout(0.1)
        raise KeyError("boom")

    def caller():
        with pytest.raises(KeyError, match="boom"):
            yield within(env, env.process(child()), 1.0)
        return "caught"

    proc = env.process(caller())
    env.run()
    assert proc.value == "caught"


def test_within_leaves_an_interrupted_caller_alone():
    """A caller interrupted while waiting is not woken again by the timer."""
    env = simpy.Environment()
    log = []

    def child():
        yield env.timeout(5.0)

    def caller():
        try:
            yield within(env, env.process(child()), 1.0)
        except simpy.Interrupt:
            log.append(("interrupted", env.now))
        yield env.timeout(2.0)
        log.append(("slept", env.now))

    proc = env.process(caller())
    env.run(until=0.5)
    proc.interrupt()
    env.run()
    assert log == [("interrupted", 0.5), ("slept", 2.5)]


def test_started_runs_the_child_to_its_first_yield_at_once():
    """``Started`` runs the child (as the active process) before the caller's next line."""
    env = simpy.Environment()
    log = []
    callers: list[simpy.Process] = []

    def child():
        log.append(("child starts", env.active_process is not callers[0]))
        yield env.timeout(1.0)
        log.append(("child ends", env.now))
        return 7

    def caller():
        callers.append(env.active_process)
        kid = Started(env, child())
        log.append(("caller goes on", env.active_process is callers[0]))
        value = yield kid
        log.append(("caller got", value, env.now))

    env.process(caller())
    env.run()
    assert log == [
        ("child starts", True),
        ("caller goes on", True),
        ("child ends", 1.0),
        ("caller got", 7, 1.0),
    ]


def test_started_child_failing_at_once_fails_the_waiter():
    env = simpy.Environment()

    def child():
        raise KeyError("at once")
        yield env.timeout(1.0)  # pragma: no cover - makes this a generator

    def caller():
        with pytest.raises(KeyError, match="at once"):
            yield Started(env, child())
        return "caught"

    proc = env.process(caller())
    env.run()
    assert proc.value == "caught"
