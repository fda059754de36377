"""``faultlab bench``: the per-hop cost of the model against a bare-SimPy floor.

What is compared (``../shared/DESIGN.md`` §5). Two models of the same queueing system run in one
process, on the same seed and for the same simulated time:

* **faultlab**: the catalogue scenario ``three-tier`` run by :class:`~sim.world.World` with its
  fault removed and **every pattern off**, which here means exactly:

  - ``faults: []`` (the ``payments`` crash is gone; no fault of any kind is scheduled);
  - every call's ``timeout`` and the workload's client ``timeout`` set to ``None``: a call is
    ``yield from`` in the caller's process (no child process, no ``any_of``, no timer per hop);
  - every ``admission.queue.capacity`` set to ``None`` (unbounded FIFO queue: no load shedding,
    like a ``simpy.Resource``);
  - ``variants: {}`` and no variant applied.

  Everything else is kept: replicas, workers, service-time distributions, the 500/s constant
  arrival rate, call graph, round-robin load balancing, placement on hosts, memory accounting in
  the cgroup tree (no limit is reached at this load, so there is no OOM kill), request classes,
  the recorder (per-bin counters, latency histograms, queue waits, in-system integrals), the
  per-bin gauge sampler and the result tables. That is the price of a faultlab hop with nothing
  switched on, end to end: each repetition times ``World(scenario).run()``, build and results
  included (both are sized by the number of bins and instances, not by the number of requests).

* **bare**: the same shape written the naive textbook way in plain SimPy: the tiers of the call
  chain (``frontend -> cart -> payments``), each one its replicas as
  ``simpy.Resource(capacity=workers)`` chosen round robin; a Poisson source at the same rate
  starts one process per request, which for each tier does
  ``with res.request() as req: yield req; yield env.timeout(service_time)`` and then calls the
  next tier synchronously (``yield from``, still holding its worker). It draws from the very same
  named random streams as the faultlab run (``arrivals/<entry>``, ``service_time/<tier>``, with
  the batched samplers of :mod:`sim.streams`), so random-number cost is the same on both sides
  and the two models see the same arrivals and service times (common random numbers): they serve
  the same hops, up to ties between simultaneous events.

A **hop** is one request served by one tier. faultlab's hops are the ``requests`` of the three
services in ``result.services`` (every finished hop, whatever its outcome); the bare model counts
a hop when a tier finishes serving a request. Requests still in flight at the end are not hops.

**Timing.** Each side is run ``repeat`` times, alternating, after a short warm-up run of each
(imports, caches); the best (minimum) wall time per side is kept, as the least disturbed by the
rest of the machine. ``gc.collect()`` runs before each timed run and the collector stays enabled
during it (its cost is part of what allocation-heavy code costs). **Ratio** = faultlab seconds per
hop / bare seconds per hop: how many times the cost of the SimPy floor a faultlab hop costs. The
floor is not zero-cost itself (SimPy's event queue, generators, ``Resource`` bookkeeping), so the
ratio is the overhead we add on top of the cheapest reasonable SimPy model; the target for now is
``ratio <= 2.5``.

**Memory.** Peak memory is measured in a separate, untimed pass per side, with
:mod:`tracemalloc` (peak of traced Python and numpy allocations between start and end of one run,
modules already imported), because tracing slows allocation several-fold and would distort the
timings. ``resource.getrusage`` max RSS was not used: it is a process-wide high-water mark that
never goes down, so in one process only the first model measured would get a meaningful delta,
and it also counts interpreter and library pages that neither model owns.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from sim import scenario as sc
from sim.streams import batched, service_time_sampler, stream

SCENARIO = "three-tier"
"""The catalogue scenario the benchmark runs."""

TARGET_RATIO = 2.5
"""faultlab's hop may cost at most this many bare-SimPy hops (the current goal)."""

WARMUP_DURATION = 1.0
"""Simulated seconds of the untimed warm-up run of each side."""


# --------------------------------------------------------------------------- the scenario


def bench_scenario(duration: float, name: str = SCENARIO) -> sc.Scenario:
    """The catalogue scenario ``name`` with its faults removed and all patterns off.

    "Patterns off" is spelled out in the module docstring: no faults, no call or client timeouts,
    unbounded admission queues, no variants. ``duration`` replaces the scenario's run length.
    """
    base = sc.load_scenario(name)
    data = base.model_dump(by_alias=True)
    data["duration"] = duration
    data["faults"] = []
    data["variants"] = {}
    data["workload"]["timeout"] = None
    for service in data["services"].values():
        service["admission"]["queue"]["capacity"] = None
        for call in service["calls"]:
            call["timeout"] = None
    return sc.Scenario.model_validate(data)


PATTERNS_ON_TARGET = 3.5
"""With every pattern on, a faultlab hop may cost at most this many bare-SimPy hops."""


def patterns_on_scenario(duration: float, name: str = SCENARIO) -> sc.Scenario:
    """:func:`bench_scenario` with every pattern on, each on the path of every request.

    Client side, on every call: a 1 s timeout, retries (3 attempts, exponential backoff with full
    jitter, an Envoy retry budget), a resilience4j circuit breaker, a resilience4j rate limiter
    (its defaults), a semaphore bulkhead of 64 and a fallback. Server side, on every service: a
    token-bucket rate limit (10 000/s), a Gradient2 adaptive concurrency limit and a bounded
    CoDel queue of 200. The users time out at 2 s and deadlines propagate. At this load nothing
    trips: the patterns cost what their bookkeeping costs.
    """
    overrides: dict[str, Any] = {"workload.timeout": 2.0, "workload.deadline_propagation": True}
    base = bench_scenario(duration, name)
    for service, config in base.services.items():
        overrides[f"services.{service}.admission"] = {
            "queue": {"capacity": 200, "discipline": "codel"},
            "rate_limit": {"kind": "token_bucket", "rate": 10_000},
            "concurrency_limit": {"algorithm": "gradient2"},
        }
        for call in config.calls:
            path = f"services.{service}.calls.{call.to}"
            overrides[f"{path}.timeout"] = 1.0
            overrides[f"{path}.retry"] = {
                "max_attempts": 3,
                "backoff": {"kind": "exponential", "base": 0.05, "cap": 1.0, "jitter": "full"},
                "budget": {"kind": "envoy"},
            }
            overrides[f"{path}.circuit_breaker"] = {}
            overrides[f"{path}.rate_limiter"] = {}
            overrides[f"{path}.bulkhead"] = {"max_concurrent_calls": 64}
            overrides[f"{path}.fallback"] = {"enabled": True}
    return base.with_overrides(overrides)


@dataclass(frozen=True)
class Tier:
    """One tier of the chain, as the bare model needs it."""

    name: str
    replicas: int
    workers: int
    service_time: sc.Distribution


def chain(scenario: sc.Scenario) -> list[Tier]:
    """The scenario's tiers from the entry service down its (single, certain) call chain.

    Raises:
        ValueError: the call graph is not a chain of sequential calls made with probability 1
            and no timeout, or the arrival rate is not constant (the bare model has neither).
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


# --------------------------------------------------------------------------- the bare model


class BareTier:
    """A tier of the bare model: replicas as ``simpy.Resource``, round robin, a hop counter."""

    def __init__(
        self, env: simpy.Environment, replicas: int, workers: int, sample: Callable[[], float]
    ) -> None:
        self.servers = [simpy.Resource(env, capacity=workers) for _ in range(replicas)]
        self.sample = sample
        self.next = 0
        self.hops = 0


def bare_serve(
    env: simpy.Environment, tiers: list[BareTier], depth: int
) -> Generator[simpy.Event, Any, None]:
    """Serve one request at ``tiers[depth]`` and, holding the worker, call the next tier."""
    tier = tiers[depth]
    server = tier.servers[tier.next % len(tier.servers)]
    tier.next += 1
    with server.request() as req:
        yield req
        yield env.timeout(tier.sample())
        if depth + 1 < len(tiers):
            yield from bare_serve(env, tiers, depth + 1)
    tier.hops += 1


def bare_arrivals(
    env: simpy.Environment, rate: float, gaps: Callable[[], float], tiers: list[BareTier]
) -> Generator[simpy.Event, Any, None]:
    """Poisson arrivals at ``rate``: one process per request, entering the first tier."""
    while True:
        yield env.timeout(gaps() / rate)
        env.process(bare_serve(env, tiers, 0))


def run_bare(scenario: sc.Scenario) -> int:
    """Run the bare-SimPy model of ``scenario``'s chain for its duration; return the hops."""
    tiers = chain(scenario)
    rate = scenario.workload.rate
    assert isinstance(rate, sc.ConstantRate)
    seed = scenario.seed
    env = simpy.Environment()
    bare = [
        BareTier(
            env,
            t.replicas,
            t.workers,
            service_time_sampler(t.service_time, stream(seed, f"service_time/{t.name}")),
        )
        for t in tiers
    ]
    arrivals = stream(seed, f"arrivals/{scenario.workload.entry}")
    gaps = batched(lambda n: arrivals.standard_exponential(n))
    env.process(bare_arrivals(env, rate.rate, gaps, bare))
    env.run(until=scenario.duration)
    return sum(t.hops for t in bare)


# --------------------------------------------------------------------------- faultlab


def run_faultlab(scenario: sc.Scenario) -> int:
    """Build and run ``scenario`` with :class:`~sim.world.World`; return the services' hops."""
    from sim.world import World

    result = World(scenario).run()
    services = result.services
    return int(services.loc[services["kind"] == "service", "requests"].sum())


# --------------------------------------------------------------------------- measuring


@dataclass
class Side:
    """What was measured for one model."""

    name: str
    hops: int = 0
    walls: list[float] = field(default_factory=list)
    peak_bytes: int = 0

    @property
    def wall(self) -> float:
        """The best (smallest) wall time of the repetitions, in seconds."""
        return min(self.walls)

    @property
    def hops_per_s(self) -> float:
        """Hops per wall-clock second at the best repetition."""
        return self.hops / self.wall

    @property
    def us_per_hop(self) -> float:
        """Wall-clock microseconds per hop at the best repetition."""
        return self.wall / self.hops * 1e6

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "hops": self.hops,
            "wall_s": self.wall,
            "walls_s": list(self.walls),
            "hops_per_s": self.hops_per_s,
            "us_per_hop": self.us_per_hop,
            "peak_bytes": self.peak_bytes,
        }


@dataclass
class BenchResult:
    """Both sides of one benchmark run and their ratio."""

    scenario: str
    duration: float
    seed: int
    repeat: int
    bare: Side
    faultlab: Side
    patterns_on: Side

    @property
    def ratio(self) -> float:
        """Time per hop of faultlab (patterns off) divided by that of the bare model."""
        return self.faultlab.us_per_hop / self.bare.us_per_hop

    @property
    def ratio_patterns_on(self) -> float:
        """Time per hop of faultlab with every pattern on divided by that of the bare model."""
        return self.patterns_on.us_per_hop / self.bare.us_per_hop

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result."""
        return {
            "scenario": self.scenario,
            "duration": self.duration,
            "seed": self.seed,
            "repeat": self.repeat,
            "bare": self.bare.to_dict(),
            "faultlab": self.faultlab.to_dict(),
            "patterns_on": self.patterns_on.to_dict(),
            "ratio": self.ratio,
            "target_ratio": TARGET_RATIO,
            "within_target": self.ratio <= TARGET_RATIO,
            "ratio_patterns_on": self.ratio_patterns_on,
            "target_ratio_patterns_on": PATTERNS_ON_TARGET,
            "python": sys.version.split()[0],
            "simpy": getattr(simpy, "__version__", "unknown"),
        }


def _timed(run: Callable[[sc.Scenario], int], scenario: sc.Scenario) -> tuple[int, float]:
    gc.collect()
    start = time.perf_counter()
    hops = run(scenario)
    return hops, time.perf_counter() - start


def _peak(run: Callable[[sc.Scenario], int], scenario: sc.Scenario) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        run(scenario)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench(duration: float = 60.0, repeat: int = 3, memory: bool = True) -> BenchResult:
    """Measure both models on ``duration`` simulated seconds, best of ``repeat`` runs each.

    Args:
        duration: simulated seconds of each run.
        repeat: timed runs per side (the minimum is kept).
        memory: also measure peak memory (one extra traced run per side).

    Raises:
        ValueError: ``duration`` or ``repeat`` out of range.
    """
    if not duration > 0:
        raise ValueError("duration must be greater than 0")
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    scenarios = {
        "bare": bench_scenario(duration),
        "faultlab": bench_scenario(duration),
        "patterns on": patterns_on_scenario(duration),
    }
    runners = {"bare": run_bare, "faultlab": run_faultlab, "patterns on": run_faultlab}
    for name, scenario in scenarios.items():
        runners[name](scenario.with_overrides({"duration": min(duration, WARMUP_DURATION)}))
    sides = {name: Side(name) for name in scenarios}
    for _ in range(repeat):
        for name, side in sides.items():
            side.hops, wall = _timed(runners[name], scenarios[name])
            side.walls.append(wall)
    if memory:
        for name, side in sides.items():
            side.peak_bytes = _peak(runners[name], scenarios[name])
    base = scenarios["faultlab"]
    return BenchResult(
        scenario=base.name,
        duration=duration,
        seed=base.seed,
        repeat=repeat,
        bare=sides["bare"],
        faultlab=sides["faultlab"],
        patterns_on=sides["patterns on"],
    )
