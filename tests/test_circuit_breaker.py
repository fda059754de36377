"""resilience4j CircuitBreaker and Envoy outlier detection (§8; §12 V21-V24, V34)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import simpy

from patterns.circuit_breaker import (
    EVENT_FAILURE_RATE_EXCEEDED,
    EVENT_NOT_PERMITTED,
    EVENT_RESET,
    EVENT_SLOW_CALL_RATE_EXCEEDED,
    EVENT_STATE_TRANSITION,
    CircuitBreaker,
    CircuitBreakerConfig,
    IllegalStateTransitionError,
    OutlierDetectionConfig,
    OutlierDetector,
    SlidingWindowType,
    State,
    java_float_string,
)

NAME = "frontend->cart"


def breaker(
    env: simpy.Environment | None = None, **config: object
) -> tuple[CircuitBreaker, list[tuple[float, str, str]]]:
    """A breaker named ``frontend->cart`` whose events are logged as (time, kind, line)."""
    env = env or simpy.Environment()
    log: list[tuple[float, str, str]] = []
    cb = CircuitBreaker(
        env,
        NAME,
        CircuitBreakerConfig(**config),  # type: ignore[arg-type]
        lambda kind, line: log.append((env.now, kind, line)),
    )
    return cb, log


def calls(cb: CircuitBreaker, outcomes: str, duration: float = 0.01) -> list[bool]:
    """Make one call per letter at the current time (F fails, S succeeds); returns the permits."""
    permits = []
    for outcome in outcomes:
        permitted = cb.try_acquire_permission()
        permits.append(permitted)
        if permitted:
            (cb.on_error if outcome == "F" else cb.on_success)(duration)
    return permits


def transition(source: str, target: str) -> tuple[str, str]:
    return (
        EVENT_STATE_TRANSITION,
        f"CircuitBreaker '{NAME}' changed state from {source} to {target}",
    )


def at(env: simpy.Environment, t: float) -> None:
    """Advance the clock to ``t`` (processing everything scheduled before it)."""
    env.run(until=t)


# -- defaults --------------------------------------------------------------------------------


def test_config_defaults_are_resilience4j_defaults():
    """DEFAULT_* constants of CircuitBreakerConfig.java, durations in seconds."""
    c = CircuitBreakerConfig()
    assert (
        c.sliding_window_type,
        c.sliding_window_size,
        c.minimum_number_of_calls,
        c.failure_rate_threshold,
        c.slow_call_rate_threshold,
        c.slow_call_duration_threshold,
        c.wait_duration_in_open_state,
        c.permitted_number_of_calls_in_half_open_state,
        c.max_wait_duration_in_half_open_state,
        c.transition_to_state_after_wait_duration,
        c.automatic_transition_from_open_to_half_open_enabled,
    ) == (SlidingWindowType.COUNT_BASED, 100, 100, 50, 100, 60, 60, 10, 0, State.OPEN, False)


@pytest.mark.parametrize(
    "bad",
    [
        {"failure_rate_threshold": 0},
        {"failure_rate_threshold": 101},
        {"slow_call_rate_threshold": 0},
        {"sliding_window_size": 0},
        {"minimum_number_of_calls": 0},
        {"permitted_number_of_calls_in_half_open_state": 0},
        {"wait_duration_in_open_state": 0.0005},
        {"max_wait_duration_in_half_open_state": -1},
        {"transition_to_state_after_wait_duration": State.HALF_OPEN},
    ],
)
def test_config_rejects_what_the_builder_rejects(bad):
    """The builder's IllegalArgumentExceptions (thresholds in (0, 100], sizes >= 1, ...)."""
    with pytest.raises(ValueError):  # noqa: PT011
        CircuitBreakerConfig(**bad)


# -- V21 -------------------------------------------------------------------------------------


def test_v21_99_failures_stay_closed_and_the_100th_opens():
    """V21: defaults; 99 failures are below minimumNumberOfCalls (rate -1); the 100th opens."""
    cb, log = breaker()
    calls(cb, "F" * 99)
    assert cb.state is State.CLOSED
    assert cb.failure_rate == -1.0
    assert cb.number_of_buffered_calls == 99
    calls(cb, "F")
    assert cb.state is State.OPEN
    assert [(kind, line) for _, kind, line in log] == [
        (
            EVENT_FAILURE_RATE_EXCEEDED,
            f"CircuitBreaker '{NAME}' exceeded failure rate threshold. Current failure rate: 100.0",
        ),
        transition("CLOSED", "OPEN"),
    ]


def test_v21_exactly_50_percent_opens():
    """V21: 100 calls with exactly 50 failures -> OPEN (failure rate >= threshold)."""
    cb, _ = breaker()
    calls(cb, "S" * 50 + "F" * 49)
    assert cb.state is State.CLOSED
    calls(cb, "F")
    assert cb.state is State.OPEN
    assert cb.failure_rate == 50.0


def test_v21_49_failures_stay_closed_and_new_calls_evict_the_oldest():
    """V21: 49 % stays CLOSED; each new call evicts the oldest outcome of the 100-call ring."""
    cb, _ = breaker()
    calls(cb, "F" * 49 + "S" * 51)
    assert (cb.state, cb.failure_rate) == (State.CLOSED, 49.0)
    calls(cb, "F")  # evicts a failure: still 49 of 100
    assert (cb.state, cb.failure_rate, cb.number_of_buffered_calls) == (State.CLOSED, 49.0, 100)
    calls(cb, "S" * 48)  # evicts the other 48 failures
    assert (cb.state, cb.failure_rate) == (State.CLOSED, 1.0)
    cb2, _ = breaker()
    calls(cb2, "S" + "F" * 49 + "S" * 50)
    calls(cb2, "F")  # evicts the oldest success: 50 of 100
    assert cb2.state is State.OPEN


# -- V22 -------------------------------------------------------------------------------------

V22 = {"sliding_window_size": 10, "minimum_number_of_calls": 5, "failure_rate_threshold": 50}


def test_v22_four_failures_are_below_the_minimum():
    """V22: window 10, minimum 5: F,F,F,F -> still CLOSED, rate unknown (-1)."""
    cb, log = breaker(**V22)
    calls(cb, "FFFF")
    assert (cb.state, cb.failure_rate, log) == (State.CLOSED, -1.0, [])


def test_v22_opens_on_the_fifth_call_at_60_percent():
    """V22: S,S,F,F,F -> OPEN on the 5th call, failure rate 60.0."""
    cb, log = breaker(**V22)
    calls(cb, "SSFF")
    assert cb.state is State.CLOSED
    calls(cb, "F")
    assert cb.state is State.OPEN
    assert log[0][2].endswith("Current failure rate: 60.0")
    assert cb.call_not_permitted_message == (
        f"CircuitBreaker '{NAME}' is OPEN and does not permit further calls"
    )


# -- V23 -------------------------------------------------------------------------------------


def open_at_zero(**config: object) -> tuple[simpy.Environment, CircuitBreaker, list]:
    env = simpy.Environment()
    settings = V22 | config
    cb, log = breaker(env, **settings)
    calls(cb, "F" * int(settings["minimum_number_of_calls"]))  # type: ignore[call-overload]
    assert cb.state is State.OPEN
    return env, cb, log


def test_v23_open_rejects_until_strictly_after_the_wait():
    """V23: wait 60 s: calls at +59.999 s and at exactly +60 s are rejected (not permitted)."""
    env, cb, _ = open_at_zero()
    at(env, 59.999)
    assert cb.try_acquire_permission() is False
    at(env, 60.0)
    assert cb.try_acquire_permission() is False
    assert cb.state is State.OPEN
    assert cb.number_of_not_permitted_calls == 2


def test_v23_first_call_after_the_wait_goes_half_open_and_is_admitted():
    """V23: the first call after +60 s moves the breaker to HALF_OPEN and takes a permit."""
    env, cb, log = open_at_zero()
    at(env, 60.001)
    assert cb.state is State.OPEN  # no automatic transition
    assert cb.try_acquire_permission() is True
    assert cb.state is State.HALF_OPEN
    assert log[-1] == (60.001, *transition("OPEN", "HALF_OPEN"))


def test_v23_half_open_admits_10_and_rejects_the_11th():
    """V23: 10 concurrent calls are admitted in HALF_OPEN, the 11th is rejected."""
    env, cb, _ = open_at_zero()
    at(env, 61)
    assert [cb.try_acquire_permission() for _ in range(11)] == [True] * 10 + [False]
    assert cb.number_of_not_permitted_calls == 1


def half_open(env: simpy.Environment, cb: CircuitBreaker, outcomes: str) -> None:
    permits = [cb.try_acquire_permission() for _ in outcomes]
    assert all(permits)
    for outcome in outcomes:
        (cb.on_error if outcome == "F" else cb.on_success)(0.01)


def test_v23_half_open_5_failures_of_10_open_again():
    """V23: half-open results 5 fail / 5 succeed -> OPEN again (50 % >= 50 %), for a new wait."""
    env, cb, log = open_at_zero(minimum_number_of_calls=10)
    at(env, 61)
    half_open(env, cb, "FSFSFSFSFS")
    assert cb.state is State.OPEN
    assert cb.attempts == 2
    assert cb.wait_until == 121.0
    assert [entry[1:] for entry in log[-3:]] == [
        transition("CLOSED", "OPEN"),
        transition("OPEN", "HALF_OPEN"),
        transition("HALF_OPEN", "OPEN"),
    ]


def test_v23_half_open_4_failures_of_10_close():
    """V23: 4 failures in the 10 half-open calls -> CLOSED with a fresh window."""
    env, cb, log = open_at_zero(minimum_number_of_calls=10)
    at(env, 61)
    half_open(env, cb, "FFFFSSSSSS")
    assert cb.state is State.CLOSED
    assert log[-1][1:] == transition("HALF_OPEN", "CLOSED")
    assert (cb.number_of_buffered_calls, cb.attempts) == (0, 0)


def test_half_open_decides_at_the_capped_minimum_not_at_a_full_window():
    """HALF_OPEN decides at min(minimumNumberOfCalls, permitted) outcomes, not a full window.

    With minimum 5 the breaker decides after 5 of the 10 permitted calls
    (CircuitBreakerMetrics.forHalfOpen caps the minimum at the half-open window).
    """
    env, cb, _ = open_at_zero()  # minimum 5, 10 permitted
    at(env, 61)
    half_open(env, cb, "SSSSS")
    assert cb.state is State.CLOSED


def test_half_open_outcomes_below_the_minimum_decide_nothing():
    """Fewer half-open outcomes than the minimum keep the breaker HALF_OPEN indefinitely.

    maxWaitDurationInHalfOpenState 0 (the default) sets no deadline.
    """
    env, cb, _ = open_at_zero(minimum_number_of_calls=10)
    at(env, 61)
    half_open(env, cb, "FFFFFFFFF")
    at(env, 10_000)
    assert cb.state is State.HALF_OPEN


def test_released_half_open_permit_comes_back():
    """An ignored call gives its half-open permit back (releasePermission)."""
    env, cb, _ = open_at_zero()
    at(env, 61)
    assert all(cb.try_acquire_permission() for _ in range(10))
    assert cb.try_acquire_permission() is False
    cb.on_ignored_error(0.01)
    assert cb.try_acquire_permission() is True


# -- V24 -------------------------------------------------------------------------------------


def run_slow_calls(duration: float) -> tuple[CircuitBreaker, list]:
    """Ten sequential calls of ``duration`` s, each timed by env.now like the call path."""
    env = simpy.Environment()
    cb, log = breaker(
        env,
        slow_call_duration_threshold=2.0,
        slow_call_rate_threshold=100,
        sliding_window_size=10,
        minimum_number_of_calls=10,
    )

    def caller():
        for _ in range(10):
            assert cb.try_acquire_permission()
            start = env.now
            yield env.timeout(duration)
            cb.on_success(env.now - start)

    env.process(caller())
    env.run()
    return cb, log


def test_v24_calls_of_exactly_the_threshold_are_not_slow():
    """V24: slowCallDurationThreshold 2 s: ten calls of exactly 2.000 s -> not slow, CLOSED."""
    cb, log = run_slow_calls(2.0)
    assert (cb.state, cb.slow_call_rate, cb.number_of_slow_calls, log) == (
        State.CLOSED,
        0.0,
        0,
        [],
    )


def test_v24_ten_calls_of_2001_ms_open():
    """V24: ten calls of 2.001 s -> 100 % slow >= 100 % -> OPEN at the 10th, at t = 20.01 s."""
    cb, log = run_slow_calls(2.001)
    assert cb.state is State.OPEN
    assert [(round(t, 3), kind, line) for t, kind, line in log] == [
        (
            20.01,
            EVENT_SLOW_CALL_RATE_EXCEEDED,
            f"CircuitBreaker '{NAME}' exceeded slow call rate threshold. "
            "Current slow call rate: 100.0",
        ),
        (20.01, *transition("CLOSED", "OPEN")),
    ]


def test_slow_errors_count_as_failed_and_slow():
    """SLOW_ERROR: an error slower than the threshold counts in both rates."""
    cb, _ = breaker(sliding_window_size=2, slow_call_duration_threshold=1.0)
    cb.on_error(1.5)
    cb.on_success(0.5)
    assert (cb.number_of_slow_failed_calls, cb.failure_rate, cb.slow_call_rate) == (1, 50.0, 50.0)


# -- windows and minimums --------------------------------------------------------------------


def test_count_based_minimum_is_capped_at_the_window_size():
    """COUNT_BASED: minimum 100 with a window of 10 acts as 10."""
    cb, _ = breaker(sliding_window_size=10, minimum_number_of_calls=100)
    calls(cb, "F" * 9)
    assert cb.state is State.CLOSED
    calls(cb, "F")
    assert cb.state is State.OPEN


def test_time_based_minimum_is_not_capped():
    """TIME_BASED: minimum 5 with a 2 s window stays 5 (calls within a second)."""
    env = simpy.Environment()
    cb, _ = breaker(
        env,
        sliding_window_type=SlidingWindowType.TIME_BASED,
        sliding_window_size=2,
        minimum_number_of_calls=5,
    )
    calls(cb, "FFFF")
    assert cb.state is State.CLOSED
    calls(cb, "F")
    assert cb.state is State.OPEN


def time_based(env: simpy.Environment) -> CircuitBreaker:
    cb, _ = breaker(
        env,
        sliding_window_type=SlidingWindowType.TIME_BASED,
        sliding_window_size=10,
        minimum_number_of_calls=5,
    )
    at(env, 0.5)
    calls(cb, "FFF")
    return cb


def test_time_based_window_keeps_the_last_10_one_second_buckets():
    """TIME_BASED: outcomes of second 0 still count at t = 9.9 (second 9): 3 + 2 failures open."""
    env = simpy.Environment()
    cb = time_based(env)
    at(env, 9.9)
    calls(cb, "FF")
    assert cb.state is State.OPEN


def test_time_based_bucket_expires_at_the_whole_second():
    """TIME_BASED: at t = 10.0 the bucket of second 0 has left the 10 s window: 2 < 5 calls."""
    env = simpy.Environment()
    cb = time_based(env)
    at(env, 10.0)
    assert cb.number_of_buffered_calls == 0
    calls(cb, "FF")
    assert (cb.state, cb.failure_rate) == (State.CLOSED, -1.0)


# -- open state details ----------------------------------------------------------------------


def test_in_flight_outcomes_are_recorded_after_opening():
    """Calls admitted while CLOSED that end while OPEN are still recorded, and change nothing."""
    _, cb, _ = open_at_zero()
    cb.on_success(0.01)
    assert cb.number_of_buffered_calls == 6
    assert cb.state is State.OPEN


def test_automatic_transition_half_opens_exactly_at_the_wait():
    """automaticTransitionFromOpenToHalfOpenEnabled: a timer goes HALF_OPEN at +60 s exactly."""
    env, cb, log = open_at_zero(automatic_transition_from_open_to_half_open_enabled=True)
    env.run(until=60.0)
    assert cb.state is State.OPEN
    env.run(until=60.000001)
    assert cb.state is State.HALF_OPEN
    assert log[-1] == (60.0, *transition("OPEN", "HALF_OPEN"))


def test_automatic_transition_of_a_replaced_open_state_does_nothing():
    """A manual transition cancels the pending automatic one (preTransitionHook)."""
    env, cb, _ = open_at_zero(automatic_transition_from_open_to_half_open_enabled=True)
    at(env, 30)
    cb.transition_to_closed_state()
    at(env, 61)
    assert cb.state is State.CLOSED


def test_wait_interval_function_backs_off_by_attempt():
    """The waitIntervalFunctionInOpenState gets attempts 1, 2, ... for consecutive openings."""
    env, cb, _ = open_at_zero(wait_interval_function_in_open_state=lambda n: 10.0 * 2 ** (n - 1))
    assert cb.wait_until == 10.0
    at(env, 11)
    half_open(env, cb, "FFFFF")
    assert (cb.attempts, cb.wait_until) == (2, 31.0)


def test_max_wait_in_half_open_goes_to_open_by_default():
    """With maxWaitDurationInHalfOpenState 5 s, a breaker still half-open after 5 s -> OPEN."""
    env, cb, log = open_at_zero(max_wait_duration_in_half_open_state=5.0)
    at(env, 61)
    cb.try_acquire_permission()
    at(env, 66.5)
    assert cb.state is State.OPEN
    assert log[-1] == (66.0, *transition("HALF_OPEN", "OPEN"))


def test_max_wait_in_half_open_can_close():
    """With transitionToStateAfterWaitDuration CLOSED the half-open deadline closes it."""
    env, cb, _ = open_at_zero(
        max_wait_duration_in_half_open_state=5.0,
        transition_to_state_after_wait_duration=State.CLOSED,
    )
    at(env, 61)
    cb.try_acquire_permission()
    at(env, 67)
    assert cb.state is State.CLOSED


# -- special states --------------------------------------------------------------------------


def test_disabled_permits_all_and_records_nothing():
    """DISABLED: always permitted, outcomes ignored, rates unknown."""
    cb, log = breaker(**V22)
    cb.disable()
    assert calls(cb, "FFFFFFFFFF") == [True] * 10
    assert (cb.state, cb.number_of_buffered_calls, cb.failure_rate) == (State.DISABLED, 0, -1.0)
    assert log == [(0, *transition("CLOSED", "DISABLED"))]


def test_metrics_only_records_reports_once_and_never_opens():
    """METRICS_ONLY: always permitted; the failure-rate event is published once."""
    cb, log = breaker(**V22)
    cb.metrics_only()
    calls(cb, "F" * 20)
    assert cb.state is State.METRICS_ONLY
    assert cb.failure_rate == 100.0
    assert [kind for _, kind, _ in log] == [EVENT_STATE_TRANSITION, EVENT_FAILURE_RATE_EXCEEDED]


def test_forced_open_rejects_all():
    """FORCED_OPEN: every call is rejected, whatever the time."""
    env = simpy.Environment()
    cb, _ = breaker(env)
    cb.force_open()
    at(env, 10_000)
    assert calls(cb, "SS") == [False, False]
    assert cb.number_of_not_permitted_calls == 2


def test_reset_closes_and_publishes_reset():
    """reset(): a fresh CLOSED state, a transition event (if not CLOSED) and a RESET event."""
    _, cb, log = open_at_zero()
    cb.reset()
    assert (cb.state, cb.number_of_buffered_calls) == (State.CLOSED, 0)
    assert [entry[1:] for entry in log[-2:]] == [
        transition("OPEN", "CLOSED"),
        (EVENT_RESET, f"CircuitBreaker '{NAME}' reset"),
    ]


def test_illegal_transition_is_refused():
    """StateTransition has no METRICS_ONLY -> OPEN (IllegalStateTransitionException)."""
    cb, _ = breaker()
    cb.metrics_only()
    with pytest.raises(IllegalStateTransitionError, match="from METRICS_ONLY to OPEN"):
        cb.transition_to_open_state()


def test_call_events_are_opt_in():
    """Per-call events (NOT_PERMITTED etc.) are sent only with call_events=True."""
    env = simpy.Environment()
    log: list[tuple[str, str]] = []
    cb = CircuitBreaker(
        env, NAME, CircuitBreakerConfig(**V22), lambda k, s: log.append((k, s)), call_events=True
    )
    calls(cb, "FFFFFF", duration=0.25)
    assert log[0] == (
        "ERROR",
        f"CircuitBreaker '{NAME}' recorded an error: 'error'. Elapsed time: 250 ms",
    )
    assert log[-1] == (
        EVENT_NOT_PERMITTED,
        f"CircuitBreaker '{NAME}' recorded a call which was not permitted.",
    )


@pytest.mark.parametrize(
    ("value", "text"), [(100.0, "100.0"), (60.0, "60.0"), (100 / 3, "33.333332"), (12.5, "12.5")]
)
def test_rates_print_like_java_floats(value, text):
    """Float.toString: shortest decimal of the float value, ``.0`` for whole numbers."""
    assert java_float_string(value) == text


# -- V34: Envoy outlier detection ------------------------------------------------------------


def detector(
    hosts: int = 5, **config: object
) -> tuple[simpy.Environment, OutlierDetector, list[tuple[float, str]]]:
    env = simpy.Environment()
    log: list[tuple[float, str]] = []
    od = OutlierDetector(
        env,
        OutlierDetectionConfig(**config),  # type: ignore[arg-type]
        lambda _, line: log.append((env.now, line)),
        hosts=[f"h{i}" for i in range(hosts)],
    )
    return env, od, log


def script(env: simpy.Environment, steps: list[tuple[float, Callable[[], None]]]) -> None:
    """Run ``action`` at each absolute time (after the detector's sweep at that time)."""

    def driver():
        for t, action in steps:
            yield env.timeout(t - env.now)
            action()

    env.process(driver())


def fail5(od: OutlierDetector, host: str = "h0") -> Callable[[], None]:
    return lambda: [od.record(host, False) for _ in range(5)] and None


def test_outlier_defaults_are_envoy_defaults():
    """outlier_detection.proto defaults."""
    c = OutlierDetectionConfig()
    assert (
        c.consecutive_5xx,
        c.interval,
        c.base_ejection_time,
        c.max_ejection_time,
        c.max_ejection_percent,
        c.success_rate_minimum_hosts,
        c.success_rate_request_volume,
        c.success_rate_stdev_factor,
    ) == (5, 10, 30, 300, 10, 5, 100, 1900)


def test_v34_five_consecutive_5xx_eject_for_30s():
    """V34: 5 consecutive 5xx eject at once; the sweep at +30 s returns the host."""
    env, od, log = detector()
    for _ in range(4):
        od.record("h0", False)
    assert not od.is_ejected("h0")
    od.record("h0", False)
    assert od.is_ejected("h0")
    env.run(until=29.9)
    assert od.is_ejected("h0")
    env.run(until=30.1)
    assert not od.is_ejected("h0")
    assert log == [
        (0, "eject host h0 (CONSECUTIVE_5XX) for 30s, num_ejections 1"),
        (30, "uneject host h0"),
    ]


def test_a_success_resets_the_consecutive_run():
    """4 x 5xx, a 2xx, 4 x 5xx: no ejection."""
    _, od, _ = detector()
    for ok in [False] * 4 + [True] + [False] * 4:
        od.record("h0", ok)
    assert not od.is_ejected("h0")


def test_unejection_waits_for_the_next_sweep():
    """Ejected at t = 5: 30 s have passed at 35, but hosts come back only at sweeps: t = 40."""
    env, od, log = detector()
    script(env, [(5, fail5(od))])
    env.run(until=100)
    assert log == [
        (5, "eject host h0 (CONSECUTIVE_5XX) for 30s, num_ejections 1"),
        (40, "uneject host h0"),
    ]


def test_v34_reejections_last_60_then_90_seconds():
    """V34: re-ejected before a healthy sweep: 60 s, then 90 s (returns at 100, then 200)."""
    env, od, log = detector()
    script(env, [(0, fail5(od)), (31, fail5(od)), (101, fail5(od))])
    env.run(until=300)
    assert [(t, line.split(" (")[0]) for t, line in log] == [
        (0, "eject host h0"),
        (30, "uneject host h0"),
        (31, "eject host h0"),
        (100, "uneject host h0"),
        (101, "eject host h0"),
        (200, "uneject host h0"),
    ]
    assert od.num_ejections("h0") == 3


def test_v34_ejection_time_is_capped_at_300s():
    """V34: 30, 60, ..., 270, 300, 300 s for back-to-back ejections."""
    _, od, _ = detector()
    times = []
    for _ in range(12):
        fail5(od)()
        times.append(od.ejection_time("h0"))
        od._hosts["h0"].ejected = False  # let it be ejected again at once
        od.ejections_active -= 1
    assert times == [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]


def test_healthy_sweeps_shrink_the_ejection_time_again():
    """Each sweep that finds the host not ejected takes one base ejection time off."""
    env, od, _ = detector()
    script(env, [(0, fail5(od)), (31, fail5(od)), (101, fail5(od)), (235, fail5(od))])
    env.run(until=236)
    # 90 s ejection ended at the sweep at 200; healthy sweeps at 210, 220, 230 -> backoff 0 -> 30 s
    assert od.ejection_time("h0") == 30


def test_max_ejection_percent_always_allows_the_first_ejection():
    """max_ejection_percent 10 % of 5 hosts still lets the first ejection through.

    The first ejection happens because 0 % < 10 %; the second would find 20 % and overflows.
    """
    _, od, _ = detector(hosts=5)
    fail5(od, "h0")()
    fail5(od, "h1")()
    assert (od.is_ejected("h0"), od.is_ejected("h1"), od.ejections_overflow) == (True, False, 1)


def test_max_ejection_percent_of_20_hosts_allows_two():
    """20 hosts: ejections at 0 % and 5 % go ahead, the third (10 %, not < 10 %) overflows."""
    _, od, _ = detector(hosts=20)
    for host in ("h0", "h1", "h2"):
        fail5(od, host)()
    assert [od.is_ejected(h) for h in ("h0", "h1", "h2")] == [True, True, False]


def success_rate_interval(od: OutlierDetector, volumes: list[int], bad_rate: float) -> None:
    """Requests for each host: h0 succeeds ``bad_rate`` of the time (interleaved), others all."""
    for i, volume in enumerate(volumes):
        host = f"h{i}"
        for n in range(volume):
            ok = True if i else (n % 2 == 0 if bad_rate == 0.5 else True)
            od.record(host, ok)


def test_v34_success_rate_ejects_below_mean_minus_1_9_stdev():
    """V34: success-rate ejection below mean - 1.9 stdev at the sweep closing the interval.

    5 hosts with 100 requests each, h0 at 50 %: mean 90, stdev 20, threshold 52 -> h0 ejected.
    """
    env, od, log = detector()
    success_rate_interval(od, [100] * 5, 0.5)
    env.run(until=10.1)
    assert od.is_ejected("h0")
    assert (od.success_rate_mean, od.success_rate_ejection_threshold) == (90.0, 52.0)
    assert log == [(10, "eject host h0 (SUCCESS_RATE) for 30s, num_ejections 1")]


def test_v34_success_rate_needs_5_hosts_with_100_requests():
    """V34: one host with 99 requests leaves only 4 qualifying hosts: no success-rate analysis."""
    env, od, _ = detector()
    success_rate_interval(od, [100, 100, 100, 100, 99], 0.5)
    env.run(until=10.1)
    assert not od.is_ejected("h0")
    assert od.success_rate_mean == -1.0


def test_success_rate_uses_the_last_complete_interval_only():
    """Requests of the interval before the last one do not count."""
    env, od, _ = detector()
    success_rate_interval(od, [100] * 5, 0.5)
    env.run(until=10.1)  # h0 ejected at 10
    env.run(until=20.1)  # the interval 10-20 had no requests
    assert od.success_rate_mean == -1.0
