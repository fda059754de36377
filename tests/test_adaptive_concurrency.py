"""Adaptive concurrency limits (reference semantics §10.4; §12 V27-V29)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from patterns.adaptive_concurrency import (
    EVENT_LIMIT_CHANGED,
    AIMDLimit,
    AIMDLimitConfig,
    Gradient2Limit,
    Gradient2LimitConfig,
    Limiter,
    VegasLimit,
    VegasLimitConfig,
    log10_root_int,
)

MS = 0.001


def aimd(initial: int = 20) -> AIMDLimit:
    return AIMDLimit(AIMDLimitConfig(initial_limit=initial))


def test_aimd_defaults_match_netflix():
    """AIMDLimit.Builder: initial 20, min 20, max 200, backoff 0.9, timeout 5 s."""
    assert AIMDLimitConfig() == AIMDLimitConfig(20, 20, 200, 0.9, 5.0)
    with pytest.raises(ValueError, match="Backoff ratio"):
        AIMDLimitConfig(backoff_ratio=0.4)


def test_aimd_drop_at_the_default_floor_stays_20():
    """V27: with the defaults a drop at 20 gives int(18) -> clamped back to the floor 20."""
    limit = aimd()
    limit.on_sample(0.0, 10 * MS, 20, True)
    assert limit.limit == 20


def test_aimd_drop_from_100_gives_90():
    """V27: limit 100 and a drop -> int(100 * 0.9) = 90."""
    limit = aimd(100)
    limit.on_sample(0.0, 10 * MS, 50, True)
    assert limit.limit == 90


def test_aimd_grows_by_one_when_half_busy():
    """V27: limit 100, inflight 50 (50 * 2 >= 100), rtt 10 ms -> 101."""
    limit = aimd(100)
    limit.on_sample(0.0, 10 * MS, 50, False)
    assert limit.limit == 101


def test_aimd_holds_when_less_than_half_busy():
    """V27: limit 100, inflight 49 -> unchanged 100."""
    limit = aimd(100)
    limit.on_sample(0.0, 10 * MS, 49, False)
    assert limit.limit == 100


def test_aimd_rtt_over_the_timeout_counts_as_a_drop():
    """V27: rtt 6 s > the 5 s timeout -> 90; exactly 5 s is not over it -> 101."""
    limit = aimd(100)
    limit.on_sample(0.0, 6.0, 50, False)
    assert limit.limit == 90
    limit = aimd(100)
    limit.on_sample(0.0, 5.0, 50, False)
    assert limit.limit == 101


def test_aimd_clamps_to_the_max():
    """The limit never exceeds maxLimit 200."""
    limit = aimd(200)
    limit.on_sample(0.0, 10 * MS, 200, False)
    assert limit.limit == 200


def test_log10_root_int_floors_at_1():
    """Log10RootIntFunction: max(1, (int) log10 x): 1 for 0..99, 2 for 100..999, 3 for 1000."""
    assert [log10_root_int(x) for x in (0, 1, 9, 10, 99, 100, 999, 1000)] == [
        1,
        1,
        1,
        1,
        1,
        2,
        2,
        3,
    ]


def vegas_at_noload(rtt_noload: float = 10 * MS) -> VegasLimit:
    """A default Vegas limit (20) whose first sample set rtt_noload."""
    limit = VegasLimit(np.random.default_rng(0))
    limit.on_sample(0.0, rtt_noload, 1, False)
    assert limit.rtt_noload == round(rtt_noload * 1e9)
    assert limit.limit == 20
    return limit


def test_vegas_defaults_match_netflix():
    """VegasLimit.Builder: initial 20, maxConcurrency 1000, smoothing 1.0, probeMultiplier 30."""
    assert VegasLimitConfig() == VegasLimitConfig(20, 1000, 1.0, 30)


def test_vegas_no_queue_grows_by_beta():
    """V28: rtt == rtt_noload -> queue 0 <= threshold 1 -> 20 + beta 6 = 26."""
    limit = vegas_at_noload()
    limit.on_sample(0.0, 10 * MS, 15, False)
    assert limit.limit == 26


def test_vegas_long_queue_decreases_by_log10():
    """V28: rtt 20 ms -> queue ceil(20 * 0.5) = 10 > beta 6 -> 20 - 1 = 19."""
    limit = vegas_at_noload()
    limit.on_sample(0.0, 20 * MS, 15, False)
    assert limit.limit == 19


def test_vegas_queue_between_alpha_and_beta_holds():
    """V28: rtt 12.5 ms -> queue 4 (in Java's nanosecond doubles) -> alpha 3 <= 4 <= 6: 20."""
    limit = vegas_at_noload()
    limit.on_sample(0.0, 12.5 * MS, 15, False)
    assert limit.limit == 20
    assert limit.estimated_limit == 20.0


def test_vegas_small_queue_increases_by_log10():
    """Queue 2 (threshold 1 < 2 < alpha 3) -> 20 + 1 = 21 (rtt 11 ms: ceil(1.82) = 2)."""
    limit = vegas_at_noload()
    limit.on_sample(0.0, 11 * MS, 15, False)
    assert limit.limit == 21


def test_vegas_idle_limit_does_not_drift_up():
    """V28: inflight 9 (9 * 2 < 20) -> unchanged even with no queue."""
    limit = vegas_at_noload()
    limit.on_sample(0.0, 10 * MS, 9, False)
    assert limit.limit == 20


def test_vegas_drop_decreases():
    """V28: didDrop -> decrease(20) = 19, whatever the queue and inflight."""
    limit = vegas_at_noload()
    limit.on_sample(0.0, 10 * MS, 1, True)
    assert limit.limit == 19


def test_vegas_lower_rtt_only_resets_rtt_noload():
    """A sample below rtt_noload becomes the new rtt_noload and changes nothing else."""
    limit = vegas_at_noload()
    limit.on_sample(0.0, 5 * MS, 15, True)
    assert (limit.rtt_noload, limit.limit) == (5_000_000, 20)


def test_vegas_ignores_zero_rtt():
    """An rtt <= 0 (Java throws) is ignored: rtt_noload stays unset."""
    limit = VegasLimit(np.random.default_rng(0))
    limit.on_sample(0.0, 0.0, 15, False)
    assert (limit.rtt_noload, limit.limit) == (0, 20)


def test_vegas_probe_resets_rtt_noload():
    """Probe when jitter * probeMultiplier * limit <= samples: with 1 x 2 the 2nd sample probes."""
    limit = VegasLimit(
        np.random.default_rng(0), VegasLimitConfig(initial_limit=2, probe_multiplier=1)
    )
    limit.on_sample(0.0, 10 * MS, 2, False)
    assert limit.rtt_noload == 10_000_000
    limit.on_sample(0.0, 50 * MS, 2, False)
    assert (limit.rtt_noload, limit.limit) == (50_000_000, 2)


def gradient2(**kwargs: int) -> Gradient2Limit:
    return Gradient2Limit(Gradient2LimitConfig(initial_limit=100, **kwargs))


def test_gradient2_defaults_match_netflix():
    """Gradient2Limit.Builder: 20, min 20, max 200, smoothing 0.2, queue 4, window 600, 1.5."""
    assert Gradient2LimitConfig() == Gradient2LimitConfig(20, 20, 200, 0.2, 4, 600, 1.5)


def test_gradient2_steady_rtt_grows_by_smoothed_queue_size():
    """V29: long == short -> gradient min(1, 1.5) = 1 -> new 104 -> 0.8 * 100 + 0.2 * 104."""
    limit = gradient2()
    limit.on_sample(0.0, 10 * MS, 80, False)
    assert limit.estimated_limit == pytest.approx(100.8, abs=1e-12)
    assert limit.limit == 100


def halve(limit: Gradient2Limit, inflight: int) -> None:
    """Nine app-limited samples summing to 70 ms, then 30 ms: long = 10 ms, short = 3 x long."""
    for rtt in [10, 10, 10, 10, 10, 5, 5, 5, 5]:
        limit.on_sample(0.0, rtt * MS, 0, False)
    limit.on_sample(0.0, 30 * MS, inflight, False)


def test_gradient2_short_three_times_long_halves():
    """V29: short = 3 x long (long = 10 ms after the sample) -> gradient 0.5 -> 54 -> 90.8."""
    limit = gradient2()
    halve(limit, 80)
    assert limit.long_rtt.value == 10_000_000
    assert limit.estimated_limit == pytest.approx(90.8, abs=1e-12)
    assert limit.limit == 90


def test_gradient2_app_limited_holds():
    """V29: inflight 40 < 100 / 2 -> unchanged (but the long average still learns)."""
    limit = gradient2()
    limit.on_sample(0.0, 30 * MS, 40, False)
    assert limit.estimated_limit == 100.0
    assert limit.long_rtt.value == 30_000_000


def test_gradient2_clamps_to_min_and_max():
    """V29: the limit stays within [20, 200]."""
    limit = Gradient2Limit(Gradient2LimitConfig(initial_limit=200))
    limit.on_sample(0.0, 10 * MS, 200, False)
    assert limit.estimated_limit == 200.0
    low = Gradient2Limit(Gradient2LimitConfig(initial_limit=21))
    halve(low, 21)  # gradient 0.5: 0.8 * 21 + 0.2 * 14.5 = 19.7 -> 20
    assert low.estimated_limit == 20.0


def test_gradient2_decays_a_lagging_long_average_after_the_gradient():
    """When long / short > 2 -> long x 0.95, applied after this sample's gradient is taken."""
    limit = gradient2()
    for _ in range(10):
        limit.on_sample(0.0, 100 * MS, 0, False)
    limit.on_sample(0.0, 10 * MS, 80, False)
    long = 100e6 * (1 - 2 / 601) + 10e6 * 2 / 601
    assert limit.long_rtt.value == pytest.approx(long * 0.95, rel=1e-12)
    assert limit.estimated_limit == pytest.approx(100.8, abs=1e-12)  # gradient was 1


def test_limit_changes_are_reported_with_the_log_line():
    """on_event gets one 'limit_changed' per change of the integer limit, with Netflix's line."""
    events: list[tuple[str, str]] = []
    limit = AIMDLimit(
        AIMDLimitConfig(initial_limit=100), on_event=lambda k, s: events.append((k, s))
    )
    limit.on_sample(0.0, 10 * MS, 10, False)  # no change: no event
    limit.on_sample(0.0, 10 * MS, 10, True)
    assert events == [(EVENT_LIMIT_CHANGED, "New limit=90, previous limit=100")]


def test_limiter_admits_while_inflight_below_limit():
    """SimpleLimiter: acquire succeeds iff inflight < limit; the 21st of 20 is rejected."""
    env = simpy.Environment()
    limiter = Limiter(env, aimd())
    tokens = [limiter.try_acquire() for _ in range(21)]
    assert all(t is not None for t in tokens[:20])
    assert tokens[20] is None
    assert (limiter.inflight, limiter.rejections, limiter.limit) == (20, 1, 20)


def test_limiter_samples_rtt_from_the_clock_and_inflight_at_acquire():
    """The onSuccess sample is (now - start, inflight just after this acquire, didDrop false)."""
    env = simpy.Environment()
    samples: list[tuple[float, float, int, bool]] = []

    class Recording:
        limit = 10

        def on_sample(self, start: float, rtt: float, inflight: int, drop: bool) -> None:
            samples.append((start, rtt, inflight, drop))

    limiter = Limiter(env, Recording())

    def call(delay: float, duration: float, outcome: str):
        yield env.timeout(delay)
        token = limiter.try_acquire()
        assert token is not None
        yield env.timeout(duration)
        getattr(token, outcome)()

    env.process(call(0.0, 0.5, "on_success"))
    env.process(call(0.25, 0.5, "on_dropped"))
    env.process(call(0.5, 0.5, "on_ignore"))
    env.run()
    assert samples == [(0.0, 0.5, 1, False), (0.25, 0.5, 2, True)]
    assert (limiter.successes, limiter.drops, limiter.ignores, limiter.inflight) == (1, 1, 1, 0)


def test_limiter_token_context_manager_ignores_an_unreported_outcome():
    """A token left without an outcome is released with on_ignore (no sample)."""
    env = simpy.Environment()
    limiter = Limiter(env, aimd(100))
    with limiter.try_acquire() as token:
        assert limiter.inflight == 1
    assert token.done
    assert limiter.inflight == 0
    assert limiter.ignores == 1
    assert limiter.limit == 100
    with pytest.raises(RuntimeError):
        token.on_success()


def test_limiter_rejects_while_inflight_exceeds_a_lowered_limit():
    """After a drop lowers the limit below inflight, acquires fail until inflight < limit."""
    env = simpy.Environment()
    limiter = Limiter(env, AIMDLimit(AIMDLimitConfig(initial_limit=10, min_limit=1)))
    tokens = [limiter.try_acquire() for _ in range(10)]
    tokens[0].on_dropped(1.0)  # 10 -> 9, inflight 9
    assert limiter.limit == 9
    assert limiter.try_acquire() is None
    tokens[1].on_ignore()  # inflight 8 < 9
    assert limiter.try_acquire() is not None
