"""Bare-SimPy reference models: the floors that ``faultlab bench`` measures faultlab against.

A *chain* is what these models can express: a Poisson source at a constant rate entering a
first tier, each tier calling the next one synchronously, with probability 1 and no timeout,
while it holds its worker (``frontend -> cart -> payments`` in ``three-tier``; one tier alone is
M/M/c when its service times are exponential). Each tier is its replicas as
``simpy.Resource(capacity=workers)``, chosen round robin, and its service-time distribution.
Nothing else of faultlab exists here: no hosts, memory, patterns, recorder or result tables.

The same chain is written in two ways, and ``faultlab bench`` reports both:

* **process per call** (:data:`PROCESS_PER_CALL`, "naive", the reference of the issue's
  targets): the textbook way, as in SimPy's own examples. The source starts one process per
  request; a tier serves a request in a process of its own, and a caller does
  ``yield env.process(next_tier.serve(...))`` while it holds its worker, so each hop costs a
  process (a generator, an ``Initialize`` event and a ``Process`` event) on top of the
  ``Request`` and ``Timeout`` events.
* **yield from** (:data:`YIELD_FROM`, "lean"): the cheapest reasonable SimPy model of the same
  system. One process per request runs the whole chain; a caller enters the next tier with
  ``yield from`` (a generator, no process, no extra event). faultlab calls a service without a
  timeout the same way, so this floor is what its hop costs with the bookkeeping removed.

Both models draw from the very same named random streams as faultlab's run of the scenario
(``arrivals/<entry>``, ``service_time/<tier>``, with the batched samplers of
:mod:`sim.streams`), so random-number cost is the same on every side and every model sees the
same arrivals and service times (common random numbers): they serve the same hops and see the
same queue waits, up to ties between simultaneous events.

Each tier counts its **hops** (requests it finished serving, whatever happened downstream;
requests still in flight at the end are not hops) and the **queue wait** of every request it
gave a worker to, zero waits included, as faultlab's ``wait_mean`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

import simpy

from sim import scenario as sc
from sim.streams import batched, service_time_sampler, stream

CallStyle = Literal["process", "yield-from"]
"""How a tier of a bare model calls the next one (see the module docstring)."""

PROCESS_PER_CALL: CallStyle = "process"
"""The naive textbook model: a tier serves each call in a child process of its own."""

YIELD_FROM: CallStyle = "yield-from"
"""The lean model: a caller enters the next tier with ``yield from`` (no child process)."""


@dataclass(frozen=True)
class Tier:
    """One tier of a chain, as a bare model needs it."""

    name: str
    replicas: int
    workers: int
    service_time: sc.Distribution


def chain(scenario: sc.Scenario) -> list[Tier]:
    """The scenario's tiers from the entry service down its (single, certain) call chain.

    Raises:
        ValueError: the call graph is not a chain of sequential calls made with probability 1
            and no timeout, or the arrival rate is not constant (the bare models have neither).
    """
    if not isinstance(scenario.workload.rate, sc.ConstantRate):
        raise ValueError("the bare model needs a constant arrival rate")
    tiers: list[Tier] = []
    name: str | None = scenario.workload.entry
    while name is not None:
        if any(t.name == name for t in tiers):
            raise ValueError(f"the call graph loops back to {name!r}")
        service = scenario.services[name]
        if len(service.calls) > 1:
            raise ValueError(f"{name!r} calls {len(service.calls)} services; a chain calls one")
        for call in service.calls:
            if call.probability != 1.0 or call.timeout is not None or call.optional:
                raise ValueError(f"{name!r} -> {call.to!r} is not a plain synchronous call")
        tiers.append(Tier(name, service.replicas, service.workers, service.service_time))
        name = service.calls[0].to if service.calls else None
    return tiers


class BareTier:
    """A tier of a bare model: replicas as ``simpy.Resource``, round robin, its counters."""

    __slots__ = ("hops", "name", "next", "sample", "servers", "wait_total", "waited")

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        replicas: int,
        workers: int,
        sample: Callable[[], float],
    ) -> None:
        self.name = name
        self.servers = [simpy.Resource(env, capacity=workers) for _ in range(replicas)]
        self.sample = sample
        self.next = 0
        self.hops = 0
        self.waited = 0
        self.wait_total = 0.0


Serve = Callable[[simpy.Environment, list[BareTier], int], Generator[simpy.Event, Any, None]]


def serve_in_process(
    env: simpy.Environment, tiers: list[BareTier], depth: int
) -> Generator[simpy.Event, Any, None]:
    """Serve one request at ``tiers[depth]``; call the next tier as a child process, holding on."""
    tier = tiers[depth]
    server = tier.servers[tier.next % len(tier.servers)]
    tier.next += 1
    arrived = env.now
    with server.request() as req:
        yield req
        tier.waited += 1
        tier.wait_total += env.now - arrived
        yield env.timeout(tier.sample())
        if depth + 1 < len(tiers):
            yield env.process(serve_in_process(env, tiers, depth + 1))
    tier.hops += 1


def serve_inline(
    env: simpy.Environment, tiers: list[BareTier], depth: int
) -> Generator[simpy.Event, Any, None]:
    """Serve one request at ``tiers[depth]``; enter the next tier by ``yield from``, holding on."""
    tier = tiers[depth]
    server = tier.servers[tier.next % len(tier.servers)]
    tier.next += 1
    arrived = env.now
    with server.request() as req:
        yield req
        tier.waited += 1
        tier.wait_total += env.now - arrived
        yield env.timeout(tier.sample())
        if depth + 1 < len(tiers):
            yield from serve_inline(env, tiers, depth + 1)
    tier.hops += 1


SERVE: dict[CallStyle, Serve] = {PROCESS_PER_CALL: serve_in_process, YIELD_FROM: serve_inline}


def poisson_source(
    env: simpy.Environment,
    rate: float,
    gaps: Callable[[], float],
    tiers: list[BareTier],
    serve: Serve,
) -> Generator[simpy.Event, Any, None]:
    """Poisson arrivals at ``rate``: one process per request, entering the first tier."""
    while True:
        yield env.timeout(gaps() / rate)
        env.process(serve(env, tiers, 0))


@dataclass(frozen=True)
class Served:
    """What a model served: hops and mean queue wait, per tier (service) in chain order."""

    tiers: tuple[str, ...]
    hops_per_tier: tuple[int, ...]
    wait_means: tuple[float, ...]

    @property
    def hops(self) -> int:
        """Hops served by every tier together."""
        return sum(self.hops_per_tier)


def run_bare(scenario: sc.Scenario, calls: CallStyle = PROCESS_PER_CALL) -> Served:
    """Run a bare-SimPy model of ``scenario``'s chain for its duration, on its seed.

    Args:
        scenario: a scenario whose call graph is a chain (:func:`chain`).
        calls: how a tier calls the next (:data:`PROCESS_PER_CALL` or :data:`YIELD_FROM`).

    Raises:
        ValueError: the scenario is not a chain, or ``calls`` is not a call style.
    """
    if calls not in SERVE:
        raise ValueError(f"unknown call style {calls!r} (use {' or '.join(SERVE)})")
    tiers = chain(scenario)
    rate = scenario.workload.rate
    assert isinstance(rate, sc.ConstantRate)
    seed = scenario.seed
    env = simpy.Environment()
    bare = [
        BareTier(
            env,
            t.name,
            t.replicas,
            t.workers,
            service_time_sampler(t.service_time, stream(seed, f"service_time/{t.name}")),
        )
        for t in tiers
    ]
    arrivals = stream(seed, f"arrivals/{scenario.workload.entry}")
    gaps = batched(lambda n: arrivals.standard_exponential(n))
    env.process(poisson_source(env, rate.rate, gaps, bare, SERVE[calls]))
    env.run(until=scenario.duration)
    return Served(
        tuple(t.name for t in bare),
        tuple(t.hops for t in bare),
        tuple(t.wait_total / t.waited if t.waited else 0.0 for t in bare),
    )
