"""patterns.timers: timers out of SimPy's queue until due, firing exactly where a Timeout would."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import simpy
from simpy.events import PENDING, Event

from patterns.timers import timers_of


def _log(order: list[tuple[float, str]], env: simpy.Environment, name: str) -> Any:
    return lambda *_: order.append((env.now, name))


def test_a_live_timer_fires_where_a_timeout_made_at_its_start_would() -> None:
    """Among events of the same instant, the timer keeps the place of its would-be Timeout."""
    env = simpy.Environment()
    order: list[tuple[float, str]] = []
    watched = env.event()  # never triggers: the timer stays live
    env.timeout(1.0).callbacks.append(_log(order, env, "timeout made before"))
    timers_of(env).start(1.0, watched, _log(order, env, "timer"))
    env.timeout(1.0).callbacks.append(_log(order, env, "timeout made after"))
    env.timeout(0.5).callbacks.append(
        lambda _: env.timeout(0.5).callbacks.append(_log(order, env, "timeout made at 0.5"))
    )
    env.run()
    assert order == [
        (1.0, "timeout made before"),
        (1.0, "timer"),
        (1.0, "timeout made after"),
        (1.0, "timeout made at 0.5"),
    ]


def test_a_timer_armed_late_keeps_the_place_it_took_at_its_start() -> None:
    """A timer armed late keeps its place among the events of its instant.

    It gets its event in SimPy's queue only when the moot one before it is due, yet it comes
    before a Timeout made after its start and due at the same instant.
    """
    env = simpy.Environment()
    order: list[tuple[float, str]] = []
    timers = timers_of(env)
    ended = env.event()
    timers.start(0.5, ended, _log(order, env, "moot"))  # armed at once: the earliest
    timers.start(1.0, env.event(), _log(order, env, "timer"))  # armed at 0.5, when "moot" is due
    env.timeout(0.25).callbacks.append(
        lambda _: env.timeout(0.75).callbacks.append(_log(order, env, "timeout made at 0.25"))
    )
    ended.succeed()
    env.run()
    assert order == [(1.0, "timer"), (1.0, "timeout made at 0.25")]
    assert timers.armed == 2


def test_a_timer_takes_the_event_id_its_timeout_would_have() -> None:
    """The next event scheduled gets the same id with a timer as with a Timeout in its place."""
    with_timeout, with_timer = simpy.Environment(), simpy.Environment()
    with_timeout.timeout(1.0)
    timers_of(with_timer).start(1.0, with_timer.event(), lambda *_: None)
    assert next(with_timeout._eid) == next(with_timer._eid)


def test_a_timer_whose_watched_event_triggers_first_never_fires() -> None:
    """A thousand timed calls of 10 ms under a 1 s limit, one after the other, over 10 s.

    No timer fires; only the earliest live one at any time has an event in SimPy's queue, so
    about one a second is armed (not a thousand), and every moot one is dropped by the end.
    """
    env = simpy.Environment()
    timers = timers_of(env)
    fired: list[float] = []

    def callee(env: simpy.Environment) -> Any:
        yield env.timeout(0.01)

    def caller(env: simpy.Environment) -> Any:
        for _ in range(1000):
            call = env.process(callee(env))
            timers.start(1.0, call, lambda *_: fired.append(env.now))
            yield call

    env.process(caller(env))
    env.run()
    assert fired == []
    # the first timer at 0 s; then, at each due time, the one call in flight then (~ every 0.99 s)
    assert timers.armed == 11
    assert len(timers) == 0


def test_a_live_timer_is_told_what_it_watched_its_argument_and_its_event() -> None:
    env = simpy.Environment()
    watched = env.event()
    seen: list[tuple[Event, object, bool, float]] = []
    timers_of(env).start(
        2.5, watched, lambda w, arg, event: seen.append((w, arg, event.triggered, env.now)), "x"
    )
    env.run()
    assert seen == [(watched, "x", True, 2.5)]


def test_a_later_timer_with_an_earlier_time_fires_first() -> None:
    env = simpy.Environment()
    order: list[tuple[float, str]] = []
    timers = timers_of(env)
    timers.start(5.0, env.event(), _log(order, env, "long"))
    timers.start(1.0, env.event(), _log(order, env, "short"))
    env.run()
    assert order == [(1.0, "short"), (5.0, "long")]


def test_timers_of_two_delays_due_at_the_same_instant_fire_in_the_order_they_started() -> None:
    """As two Timeouts would: the one started first (the smaller event id) fires first.

    "B" is started at 0.5 s by the firing of "x" (so its lane, 0.5 s, comes first), for the
    instant "A" (started at 0 s, 1 s) is due at.
    """
    env = simpy.Environment()
    order: list[tuple[float, str]] = []
    timers = timers_of(env)

    def x_fires(*_: Any) -> None:
        order.append((env.now, "x"))
        timers.start(0.5, env.event(), _log(order, env, "B"))

    timers.start(0.5, env.event(), x_fires)
    timers.start(1.0, env.event(), _log(order, env, "A"))
    env.run()
    assert order == [(0.5, "x"), (1.0, "A"), (1.0, "B")]


def test_timers_between_moot_ones_still_fire_on_time() -> None:
    """Moot timers at the head are dropped; a live one behind them fires at its own time."""
    env = simpy.Environment()
    order: list[tuple[float, str]] = []
    timers = timers_of(env)
    ended = env.event()
    timers.start(1.0, ended, _log(order, env, "moot"))
    timers.start(2.0, env.event(), _log(order, env, "live"))
    timers.start(3.0, ended, _log(order, env, "moot too"))
    ended.succeed()
    env.run()
    assert order == [(2.0, "live")]


def _calls_with_timers(use_timers: bool, seed: int) -> tuple[list[tuple[float, int]], int]:
    """Random timed calls, bounded by timers or by ``Timeout`` events: what fired, when.

    Delays from a few lanes (0, 0.5, 1 and 2 s) and arbitrary ones; calls that end before, at
    or after their limit; and a fired timer that starts another (a retry after a timeout).
    Returns the firings in order, and the next event id at the end.
    """
    rng = random.Random(seed)
    env = simpy.Environment()
    fired: list[tuple[float, int]] = []

    def bound(delay: float, watched: Event, name: int, again: bool) -> None:
        def fire(*_: Any) -> None:
            fired.append((env.now, name))
            if again:  # started from within a firing, at the firing's instant
                bound(delay / 2, env.event(), -name, False)

        if use_timers:
            timers_of(env).start(delay, watched, fire)
        else:
            env.timeout(delay).callbacks.append(
                lambda _: fire() if watched._value is PENDING else None
            )

    plans = [
        (
            rng.choice([0.0, 0.25, 0.5, 0.37, 1.0]),  # when it starts after the one before (ties)
            rng.choice([0.0, 0.5, 1.0, 1.0, 2.0, rng.uniform(0.0, 3.0)]),  # its limit
            rng.choice([0.0, 0.5, 1.0, rng.uniform(0.0, 3.0)]),  # how long it takes
            rng.random() < 0.3,
        )
        for _ in range(400)
    ]

    def caller() -> Any:
        for name, (gap, delay, takes, again) in enumerate(plans, start=1):
            yield env.timeout(gap)
            call = env.event()  # a Timeout has its value from the start: not a call in flight
            env.timeout(takes).callbacks.append(lambda _, call=call: call.succeed())
            bound(delay, call, name, again)

    env.process(caller())
    env.run()
    return fired, next(env._eid)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_timers_fire_as_timeouts_would_whatever_the_mix_of_delays(seed: int) -> None:
    """The same firings, at the same instants, in the same order, and the same event ids."""
    with_timers = _calls_with_timers(True, seed)
    with_timeouts = _calls_with_timers(False, seed)
    assert len(with_timeouts[0]) > 50  # the mix does make live timers, and timers within firings
    assert any(name < 0 for _, name in with_timeouts[0])
    assert with_timers == with_timeouts


def test_a_timer_of_infinite_delay_fires_at_infinity_as_a_timeout_would() -> None:
    env = simpy.Environment()
    order: list[tuple[float, str]] = []
    timers_of(env).start(math.inf, env.event(), _log(order, env, "never before the end"))
    env.run()
    assert order == [(math.inf, "never before the end")]


def test_a_negative_delay_is_refused_as_env_timeout_refuses_it() -> None:
    env = simpy.Environment()
    with pytest.raises(ValueError, match="Negative delay -1"):
        timers_of(env).start(-1.0, env.event(), lambda *_: None)


def test_each_environment_has_its_own_timers() -> None:
    one, two = simpy.Environment(), simpy.Environment()
    assert timers_of(one) is timers_of(one)
    assert timers_of(one) is not timers_of(two)
