"""The users: open-loop Poisson arrivals or closed-loop users; request classes, traffic surges.

Arrivals form a non-homogeneous Poisson process, drawn by thinning (Lewis and Shedler): candidate
gaps are exponential at the profile's peak rate and a candidate at ``t`` is kept with probability
``rate(t) / peak``. A constant profile keeps every candidate and draws no thinning numbers.

Common random numbers: the base arrivals use their own streams (``arrivals/<entry>``,
``thinning/<entry>``, ``classes/<entry>``), and a ``traffic_surge`` fault adds an independent
Poisson process of rate ``(factor - 1) * rate(t)`` (or, for a factor below 1, removes arrivals
with its own stream), so a variant with a surge sees the very same base arrivals as one without.

Closed loop (``workload.users``): each user thinks (its own think-time stream), sends a request,
waits for the answer or its timeout, and thinks again; a failed request is sent again after
``retries.after`` (the refresh button), each retry a new arrival. Load then follows latency: a
slow system gets fewer new requests, but retries add more. A surge adds users for its duration.

Each arrival is a request process that calls the entry service through the users' edge
(``client -> entry``, with the workload's client timeout), and ends in exactly one outcome.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from patterns.retry import Started
from sim import scenario as sc
from sim.request import DEGRADED, Outcome, Request
from sim.streams import batched, service_time_sampler, stream

if TYPE_CHECKING:
    from sim.recorder import Recorder
    from sim.service import Edge


class Surge:
    """A traffic surge in force: rate multiplied by ``factor`` during [start, end)."""

    __slots__ = ("end", "factor", "name", "start")

    def __init__(self, name: str, start: float, end: float, factor: float) -> None:
        self.name = name
        self.start = start
        self.end = end
        self.factor = factor


class Workload:
    """The users: arrivals at the entry service through ``edge``."""

    def __init__(
        self,
        env: simpy.Environment,
        config: sc.Workload,
        edge: Edge,
        recorder: Recorder,
        seed: int,
    ) -> None:
        self.env = env
        self.config = config
        self.edge = edge
        self.recorder = recorder
        self.stats = recorder.stats[edge.stats.name]
        self.seed = seed
        self.class_names = [c.name for c in config.classes]
        total = sum(c.weight for c in config.classes)
        self.cumulative = [
            w / total for w in itertools.accumulate(c.weight for c in config.classes)
        ]
        entry = config.entry
        self._class_draw = _uniform(seed, f"classes/{entry}") if len(config.classes) > 1 else None
        """Draws an open-loop arrival's class; None with one class (its stream is its own, so
        not drawing changes no other draw)."""
        self.surges: list[Surge] = []
        self._drops: list[tuple[Surge, Callable[[], float]]] = []
        self.next_id = 0
        self.user_retries = 0
        """Requests sent again by closed-loop users after a failure, over the run."""

    def start(self) -> None:
        """Start the base arrival process and every surge's (or the closed loop's users)."""
        env = self.env
        entry = self.config.entry
        users = self.config.users
        if users is not None:
            for number in range(users.count):
                env.process(self._user(users, number))
            first = users.count
            for surge in self.surges:
                joining = round((surge.factor - 1) * users.count)
                for number in range(first, first + joining):
                    env.process(self._user(users, number, surge.start, surge.end))
                first += joining
            return
        profile = self.config.rate
        assert profile is not None
        rate = None if isinstance(profile, sc.ConstantRate) else functools.partial(rate_at, profile)
        env.process(self._arrivals(rate, rate_bounds(profile), entry, 0.0))
        for surge in self.surges:
            if surge.factor > 1:
                extra = surge.factor - 1
                env.process(
                    self._arrivals(
                        functools.partial(_surge_rate, profile, surge, extra),
                        extra * rate_bounds(profile),
                        f"{entry}/surge/{surge.name}",
                        surge.start,
                    )
                )
            elif surge.factor < 1:
                self._drops.append((surge, _uniform(self.seed, f"surge/{surge.name}")))

    def _arrivals(
        self, rate: Callable[[float], float] | None, peak: float, name: str, start: float
    ) -> Generator[simpy.Event, Any, None]:
        """Poisson arrivals at ``rate(t)``, thinned from ``peak`` (``rate`` None: ``peak``)."""
        if peak <= 0:
            return
        env = self.env
        gaps = _exponential(self.seed, f"arrivals/{name}")
        thinning = _uniform(self.seed, f"thinning/{name}")
        draw = self._class_draw
        send = self.edge.send
        end = self._end
        if start > 0:
            yield env.timeout(start)
        while True:
            yield env.timeout(gaps() / peak)
            now = env._now  # SimPy's clock behind env.now, without the property's call
            if rate is not None:
                current = rate(now)
                if current < peak and thinning() * peak >= current:
                    continue
            if self._drops and self._dropped(now):
                continue
            cls = 0 if draw is None else self._class_of(draw())
            Started(env, send(self._new(cls, now), end))

    def _dropped(self, now: float) -> bool:
        for surge, draw in self._drops:
            if surge.start <= now < surge.end and draw() >= surge.factor:
                return True
        return False

    def _class_of(self, u: float) -> int:
        """The request class a uniform draw ``u`` falls in (by the classes' weights)."""
        cls = 0
        cumulative = self.cumulative
        while cls < len(cumulative) - 1 and u >= cumulative[cls]:
            cls += 1
        return cls

    def _new(self, cls: int, now: float) -> Request:
        """A new arrival of class ``cls``: counted, and inside the system from ``now``."""
        request = Request(self.next_id, cls, now)
        self.next_id += 1
        self.recorder.arrivals += 1
        self.stats.change(now, 1)
        return request

    def _user(
        self, users: sc.ClosedLoopUsers, number: int, start: float = 0.0, leave: float = math.inf
    ) -> Generator[simpy.Event, Any, None]:
        """One closed-loop user: think, send, wait for the answer (or the timeout), again.

        A failed request is sent again (a new arrival) ``retries.after`` later, up to
        ``retries.max`` times: the refresh button.
        """
        env = self.env
        entry = self.config.entry
        think = service_time_sampler(users.think_time, stream(self.seed, f"think/{entry}/{number}"))
        class_draw = _uniform(self.seed, f"classes/{entry}/{number}")
        retries = users.retries
        if start > 0:
            yield env.timeout(start)
        while True:
            yield env.timeout(think())  # the first think spreads the users' first requests
            if env.now >= leave:
                return
            cls = self._class_of(class_draw())
            attempt = 0
            while True:
                answered = env.event()
                Started(env, self.edge.send(self._new(cls, env.now), _tell(self._end, answered)))
                outcome = yield answered
                if outcome <= DEGRADED or retries is None or attempt >= retries.max:
                    break
                attempt += 1
                yield env.timeout(retries.after)
                self.user_retries += 1

    def _end(self, request: Request, outcome: Outcome) -> None:
        """The user's view of ``request`` is ``outcome`` (the edge has counted it out)."""
        if outcome > DEGRADED or (outcome == DEGRADED and request.origin is not None):
            where, why = request.origin or (self.config.entry, outcome)
            self.recorder.why[(self.class_names[request.cls], where, why.label, outcome.label)] += 1


def _tell(
    end: Callable[[Request, Outcome], None], answered: simpy.Event
) -> Callable[[Request, Outcome], None]:
    """``end``, then wake the user waiting on ``answered`` with the outcome it saw."""

    def tell(request: Request, outcome: Outcome) -> None:
        end(request, outcome)
        answered.succeed(outcome)

    return tell


def _surge_rate(profile: sc.RateProfile, surge: Surge, extra: float, t: float) -> float:
    return extra * rate_at(profile, t) if surge.start <= t < surge.end else 0.0


def _uniform(seed: int, name: str) -> Callable[[], float]:
    rng = stream(seed, name)
    return batched(lambda n: rng.random(n))


def _exponential(seed: int, name: str) -> Callable[[], float]:
    rng = stream(seed, name)
    return batched(lambda n: rng.standard_exponential(n))


def rate_bounds(profile: Any) -> float:
    """Largest arrival rate a profile reaches (used to thin a non-homogeneous Poisson process)."""
    if isinstance(profile, sc.ConstantRate):
        return profile.rate
    if isinstance(profile, sc.StepRate):
        return max(profile.base, *(s.rate for s in profile.steps))
    if isinstance(profile, sc.RampRate):
        return max(profile.from_, profile.to)
    if isinstance(profile, sc.SpikeRate):
        return max(profile.base, profile.peak)
    if isinstance(profile, sc.SineRate):
        return profile.base + profile.amplitude
    assert isinstance(profile, sc.PiecewiseRate)
    return max(p.rate for p in profile.points)


def rate_at(profile: Any, t: float) -> float:
    """The arrival rate a profile asks for at time ``t`` (per second)."""
    if isinstance(profile, sc.ConstantRate):
        return profile.rate
    if isinstance(profile, sc.StepRate):
        rate = profile.base
        for step in sorted(profile.steps, key=lambda s: s.at):
            if t >= step.at:
                rate = step.rate
        return rate
    if isinstance(profile, sc.RampRate):
        if t <= profile.start:
            return profile.from_
        if t >= profile.end:
            return profile.to
        share = (t - profile.start) / (profile.end - profile.start)
        return profile.from_ + share * (profile.to - profile.from_)
    if isinstance(profile, sc.SpikeRate):
        return profile.peak if profile.at <= t < profile.at + profile.duration else profile.base
    if isinstance(profile, sc.SineRate):
        return max(
            0.0, profile.base + profile.amplitude * math.sin(2 * math.pi * t / profile.period)
        )
    assert isinstance(profile, sc.PiecewiseRate)
    points = sorted(profile.points, key=lambda p: p.at)
    if t <= points[0].at:
        return points[0].rate
    for left, right in itertools.pairwise(points):
        if t < right.at:
            if profile.interpolation == "step":
                return left.rate
            share = (t - left.at) / (right.at - left.at)
            return left.rate + share * (right.rate - left.rate)
    return points[-1].rate
