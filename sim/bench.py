"""``faultlab bench``: the benchmark suite, each line measured in one process run.

Benchmarks are not tests (``../shared/DESIGN.md`` §5): tests assert behaviour, this reports
numbers. Every line of the suite has a target (issue 8) and says whether it met it; a few lines
are there for information only (no target). The lines, and what each one compares:

* **three-tier, patterns off** (``three-tier``): the catalogue scenario ``three-tier`` run by
  :class:`~sim.world.World` with its fault removed and **every pattern off**, which means
  exactly: ``faults: []``; every call's ``timeout`` and the workload's client ``timeout`` set to
  ``None`` (a call is ``yield from`` in the caller's process: no child process, no ``any_of``,
  no timer per hop); every ``admission.queue.capacity`` set to ``None`` (an unbounded FIFO queue,
  like a ``simpy.Resource``); ``variants: {}``. Everything else is kept: replicas, workers,
  service-time distributions, the 500/s constant arrival rate, the call graph, round-robin load
  balancing, placement on hosts, memory accounting in the cgroup tree (no limit is reached at
  this load), request classes, the recorder, the per-bin gauge sampler and the result tables:
  each repetition times ``World(scenario).run()``, build and results included. Compared per
  hop with the two bare-SimPy models of the same shape (:mod:`sim.bench_models`):

  - the **naive** model, a process per call (:data:`~sim.bench_models.PROCESS_PER_CALL`): the
    textbook way, each tier serving a request in its own process, which the caller waits for
    while it holds its worker. This is "the bare-SimPy generator model of the same shape" of the
    issue's targets: **ratio <= 1.0x**;
  - the **lean** model, ``yield from`` (:data:`~sim.bench_models.YIELD_FROM`): the cheapest
    reasonable SimPy model, no process per call (the way faultlab calls without a timeout). Its
    ratio is reported for information, labelled "yield from", so that nobody mistakes a ratio
    against the naive model for a ratio against the true floor.

* **three-tier, every pattern on**: :func:`patterns_on_scenario` (a timeout, retries, a circuit
  breaker, a rate limiter, a bulkhead and a fallback on every call; a rate limit, an adaptive
  concurrency limit and a CoDel queue on every service; deadlines), against the same two bare
  models (which have no patterns): **ratio <= 2.0x** against the naive one.

* **M/M/c** (``mmc``): the catalogue scenario ``mmc-queue`` (one service, c = 4 workers,
  exponential service of mean 40 ms, Poisson arrivals at 80/s: rho = 0.8), patterns off as
  above, run long enough for ``customers`` customers (default 1 000 000: 12 500 s simulated),
  against the textbook SimPy model: ``simpy.Resource(capacity=c)`` and a process per customer
  (the naive model with one tier), on the same random streams. Both run on ``mmc_seeds`` seeds
  (default 5: the scenario's, 1, then 2, 3...), each run timed once (a long run averages short
  disturbances out), the sides alternating. Two lines: the cost per customer, each side's best
  over the seeds (**ratio <= 1.0x**), and faultlab's mean queue wait ``Wq`` (the ``server``
  row's ``wait_mean``), the mean of the seeds' means, against Erlang C
  (:func:`sim.queueing.mmc_mean_wait`, 29.8 ms): **relative error <= 1%**. Why several seeds:
  at rho = 0.8 waits are strongly correlated, and one run of 1M customers estimates ``Wq`` only
  to about +-1% (one standard deviation over seeds), so a single run would miss the target on
  about a third of seeds by sampling noise alone (seed 1 is +1.5% off); five runs (5M
  customers) bring that to about +-0.45%. The JSON gives every seed's ``Wq``, the 95%
  interval over the seeds (``wait_ci95``), and what shows faultlab right seed by seed: the
  textbook model on the same streams sees the same ``Wq`` (to rounding; ``bare_wait_means``).

* **flagship** (``flagship``): one seed (the scenario's, 7) of ``checkout-noisy-neighbor`` as
  written, through :func:`sim.world.run`: wall seconds (best of ``repeat``) and hops per
  second (a hop is one request finished by one service). No bare model has its shape (OOM
  kills, evictions, retries...): the target is absolute, **under 5 s** for its 5 minutes.

* **memory** (``memory``): the flagship's peak memory for a run 10x longer than its duration,
  against its peak for its duration: **ratio <= 1.2x** (a model whose memory grows with the run
  length cannot run long experiments). Measured as the issue asks, the whole process at its
  peak: a fresh process per run (spawned) imports the model, runs ``World(scenario).run()``
  (build, run and result tables; no warm-up) and reports its peak resident set (``VmHWM``).
  So the interpreter and the imports (about 130 MiB, the same for both runs) are in both
  figures. Why a fresh process: a process never gives its peak back, and memory freed by an
  earlier line would be reused unseen. Why not :mod:`tracemalloc`: it slows allocation 5-14x
  here (the traced 10x run alone took 140-220 s on a 2-core machine), and it sees Python's
  allocations only. Linux only (``/proc``); elsewhere the line reports an error. Two
  information lines, no target: ``memory-run``, what the run alone adds to the resident set
  (in a fresh process, after a 1 s warm-up run, the kernel's peak-RSS mark reset through
  ``/proc/self/clear_refs``; ``VmHWM`` after the run less ``VmRSS`` before it): it grows
  with the number of bins, so its ratio is large, and it is not the figure the target is
  about; and ``memory-bins``, the whole-process peak of the long run recording bins 10x wider
  (``recording.bin``), so with as many bins as the short run: what grows with the run length
  is the recording, one row per bin.

* **scale-out** (``process-pool``, ``dask``): 8 replications of the flagship with
  :func:`sim.experiment.replicate` on 1 worker, then on 2: a spawn-context
  ``ProcessPoolExecutor`` of that many processes (a real pool for 1 worker as well, not the
  serial executor ``jobs=1`` gives, so that both sides pay the same pickling), and a Dask
  ``LocalCluster`` of that many single-threaded workers (``dask://local``, through
  :func:`sim.experiment.open_executor`). Timed: the replications only, after one warm-up task
  per worker has imported the model; the start-up (pool or cluster, and the warm-up) is in the
  JSON as ``startup_s``. Each side times ``repeat`` rounds of the replications in its pool, at
  most :data:`SCALE_OUT_ROUNDS` (2: a round lasts 5-10 s), and keeps its best (every round is
  in the JSON as ``rounds_s``). **Speed-up** = time on 1 / time on 2: **>= 1.8x**. The flagship is
  chosen because a replication lasts seconds, so the per-task overhead is small against it.
  This line needs an otherwise idle machine: with Linux's autogroup scheduling
  (``/proc/sys/kernel/sched_autogroup_enabled``) the CPU is shared between sessions, not
  processes, so while another session keeps a core busy the two workers share about one core
  and the speed-up measures the neighbours, not faultlab (each flagship replication took 1.6 s
  on 1 worker and 3.5 s on each of 2, on the shared development machine).

**Timing.** Each side of a line is run ``repeat`` times (alternating between the sides), after a
short untimed warm-up run of each (imports, caches); the best (minimum) wall time is kept, as
the least disturbed by the rest of the machine. ``gc.collect()`` runs before each timed run and
the collector stays enabled during it. A **ratio** is faultlab's seconds per hop (or customer)
over the reference's. Wall times on a shared machine are noisy; compare figures from one quiet
machine only.

**Where the time goes** (``cProfile`` around one run after a warm-up run; own time per module as
a share of the total; measured on the 2-core development machine, 2026-11-26, so shares, not
seconds; profile again before relying on them):

- *three-tier, every pattern on* (60 s simulated, 89 000 hops): ``sim/service.py`` 34% (its
  call chain ``_chain`` 14%, ``_serve_admitted`` 8%, ``_work`` 3.7%); SimPy's event loop 14%,
  plus 4% in ``heapq`` and generator ``send``; the patterns 23% (``adaptive_concurrency``
  6%, ``retry`` 6%, ``backpressure`` 5%, ``circuit_breaker`` 4%, ``bulkhead`` 2%); the
  recorder 8%; the kernel's memory charges 6%; the call timers (:mod:`patterns.timers`) 3%;
  the workload and requests 4%. No single hot spot is left. The last big ones: a ``Timeout``
  per call sat in SimPy's queue for its whole second, though the call ended in milliseconds
  (a hop cost about 8% less once they moved out of it); the clock read through SimPy's
  ``env.now`` property, a call, about eleven times a hop, and Gradient2's event line
  formatted (floats and all) on every sample, though it is reported only when the limit
  changes (13% less once both were gone); the call timers in a heap, sifted at every pop (3%
  less in FIFO lanes, one per delay).
- *flagship* (5 min, 96 000 hops): ``sim/service.py`` 32% (``_chain`` 12.5%, ``_serve_plain``
  7%, ``_work`` 4%); SimPy 19%, plus 5% in ``heapq`` and ``send``; ``patterns/retry.py`` 11%
  (a ``within`` per attempt: a child process and a timer; the retry decisions); the recorder
  10%; the kernel 8%; the call timers 3.5%; the workload 3%; the result tables under 1%.
- *M/M/c* (100 000 customers): SimPy 33%, plus 7% in ``heapq`` and ``send``; ``sim/service.py``
  22% (``_serve_plain`` 12%, the users' ``Edge.call`` 6%); the recorder 17% (``record``
  11%: a customer is counted by the server and by the client); the workload 9%; the gauges
  sampled every bin 1.5% (wall-clock timing puts sampling and closing the bins at about 4%: with
  80 customers a second, the per-bin work weighs here as nowhere else).
- *garbage collection*: with CPython's default young-generation threshold (700 allocations)
  the patterns-on run spent about 10% of its time in collections that found 28 objects in
  20 s (a request's generators, events and closures are freed by reference counting):
  :func:`sim.world.fewer_collections` raises the threshold to 10 000 while a world runs.
- *memory* (resident set of one process running the flagship, ``VmRSS`` after each phase;
  2026-11-26): the imports take 132 MiB. The 5 min run peaks at 142.4 MiB and the 50 min run
  at 165.3 MiB (1.16x; ``faultlab bench``'s spawned worker, which imports a little more:
  145.5 and 168.4 MiB). Phases of the 50 min run: building the world +2.5 MiB and running it
  +6.4 (the recording); ``timeseries`` (516 000 rows) +17.7, 2.6 more while it is built;
  ``latency`` (372 000 rows) +6.5. The 5 min run's phases: +0.2, +1.2, +8.8, +0.3: its
  ``timeseries`` is nearly all a one-off cost of the first table (pandas' and Arrow's code and
  caches), paid by the 50 min run too. What grows with the run length is data, all of it per
  bin (one-second bins by design): for 50 min, the recording 7.5 MiB (latency histograms 2.4,
  outcome counters 1.7, gauges 1.8, latency, wait and in-system sums 1.6) and the tables
  14.2 MiB (``timeseries`` 8.9 at 18 bytes a row: ``t`` and ``value`` float64, the names one
  byte each; ``latency`` 5.3 at 15 bytes a row). Before (same machine), the runs peaked at
  158 and 240 MiB (1.52x): a dict per bin and entity for the histograms (+22 MiB for 50 min),
  names as strings in the tables (``timeseries`` +30 MiB, +49 while built; ``latency`` +42).
  Now a bin's histogram is packed into flat arrays once no request can land in it
  (:class:`~sim.recorder.EntityStats`, 6 bytes a bucket), the names are Categoricals built from
  their codes, and each table is allocated once at its size and filled in place. Going much
  lower would take smaller tables (the float64 ``t`` per row is 7 MiB of them) or arrays in
  the recording's hot path (``array`` items cost about twice a list's to update).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import simpy

from sim import scenario as sc
from sim.bench_models import PROCESS_PER_CALL, YIELD_FROM, Served, run_bare
from sim.queueing import mmc_mean_wait
from sim.stats import mean_interval, number_or_none
from sim.units import format_duration

SCENARIO = "three-tier"
"""The catalogue scenario of the three-tier lines."""

MMC_SCENARIO = "mmc-queue"
"""The catalogue scenario of the M/M/c lines."""

FLAGSHIP = "checkout-noisy-neighbor"
"""The flagship scenario: the flagship, memory and scale-out lines."""

TARGET_PATTERNS_OFF = 1.0
"""faultlab's hop (patterns off) may cost at most this many naive bare-SimPy hops (issue 8)."""

TARGET_PATTERNS_ON = 2.0
"""With every pattern on, a faultlab hop may cost at most this many naive bare hops (issue 8)."""

TARGET_MMC = 1.0
"""faultlab's M/M/c customer may cost at most this many textbook SimPy customers (issue 8)."""

TARGET_WAIT_ERROR = 0.01
"""faultlab's M/M/c mean wait may be at most this far from Erlang C, relatively (issue 8)."""

TARGET_FLAGSHIP_WALL = 5.0
"""Seconds of wall time one seed of the flagship, as written, must stay under (issue 8)."""

TARGET_MEMORY_RATIO = 1.2
"""A run 10x longer may need at most this many times the peak memory (issue 8)."""

MEMORY_FACTOR = 10
"""How many times longer the long run of the memory line is."""

TARGET_SPEEDUP = 1.8
"""Replications on 2 workers must be at least this many times faster than on 1 (issue 8)."""

SCALE_OUT_ROUNDS = 2
"""At most this many timed rounds of the replications per worker count (``repeat`` if fewer):
a round lasts 5-10 s, and one disturbed round is all it takes to miss the target."""

WARMUP_DURATION = 1.0
"""Simulated seconds of an untimed warm-up run."""

MEASUREMENTS = ("three-tier", "mmc", "flagship", "memory", "process-pool", "dask")
"""What ``--only`` selects; each gives one or more lines of the suite."""


class SettingError(ValueError):
    """A setting of the suite out of range; ``option`` names it (``repeat``, ``customers``...)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


# --------------------------------------------------------------------------- the scenarios


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


def mmc_scenario(customers: int) -> sc.Scenario:
    """``mmc-queue`` with patterns off, long enough for about ``customers`` arrivals."""
    rate = sc.load_scenario(MMC_SCENARIO).workload.rate
    assert isinstance(rate, sc.ConstantRate)
    return bench_scenario(customers / rate.rate, MMC_SCENARIO)


def flagship_scenario(duration: float | None = None) -> sc.Scenario:
    """The flagship as written, ``duration`` long (default: its own); validated again."""
    base = sc.load_scenario(FLAGSHIP)
    return base if duration is None else base.with_overrides({"duration": duration})


def _warm_up(scenario: sc.Scenario) -> sc.Scenario:
    """A short run of ``scenario`` without its faults: imports and caches, untimed."""
    return scenario.with_overrides(
        {"faults": [], "duration": min(scenario.duration, WARMUP_DURATION)}
    )


# --------------------------------------------------------------------------- faultlab's side


def run_faultlab(scenario: sc.Scenario) -> Served:
    """Build and run ``scenario`` with :class:`~sim.world.World`: what its services served.

    The hops of a service are its ``requests`` in ``result.services`` (every finished hop,
    whatever its outcome); its wait is the row's ``wait_mean``.
    """
    from sim.world import World

    services = World(scenario).run().services
    rows = services[services["kind"] == "service"]
    return Served(
        tuple(str(name) for name in rows["entity"]),
        tuple(int(n) for n in rows["requests"]),
        tuple(float(w) for w in rows["wait_mean"]),
    )


# --------------------------------------------------------------------------- measuring


@dataclass
class Side:
    """The wall times of one model on one line, and what it served."""

    served: Served | None = None
    walls: list[float] = field(default_factory=list)

    @property
    def hops(self) -> int:
        """Hops served in each run."""
        return 0 if self.served is None else self.served.hops

    @property
    def wall(self) -> float:
        """The best (smallest) wall time of the repetitions, in seconds."""
        return min(self.walls)

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
            "hops_per_s": self.hops / self.wall,
            "us_per_hop": self.us_per_hop,
        }


def _timed(run: Callable[[], Served]) -> tuple[Served, float]:
    gc.collect()
    start = time.perf_counter()
    served = run()
    return served, time.perf_counter() - start


def best_of(
    runs: Mapping[str, Callable[[], Served]],
    warm_ups: Mapping[str, Callable[[], object]],
    repeat: int,
) -> dict[str, Side]:
    """Warm each side up once, then time every side ``repeat`` times, alternating."""
    for warm_up in warm_ups.values():
        warm_up()
    sides = {name: Side() for name in runs}
    for _ in range(repeat):
        for name, side in sides.items():
            side.served, wall = _timed(runs[name])
            side.walls.append(wall)
    return sides


Sense = Literal["<=", "<", ">="]


@dataclass(frozen=True)
class Line:
    """One line of the suite: faultlab's figure, the reference's, their ratio, the target.

    Attributes:
        key: a stable identifier (``three-tier-off``, ``mmc-wait``...).
        what: what is measured, for people.
        faultlab: faultlab's figure, in ``unit``.
        reference: the reference's figure in ``unit`` (``None``: an absolute target).
        reference_label: what the reference is (``bare SimPy, process per call``...).
        unit: the unit of ``faultlab`` and ``reference`` (``us/hop``, ``s``, ``bytes``...).
        value: the figure compared with the target (a ratio, an error, seconds).
        value_unit: ``x`` (a ratio), ``%`` (a fraction shown in percent) or ``s``.
        target: the bound on ``value`` (``None``: for information only).
        sense: how ``value`` must compare with ``target``.
        details: the raw measurements, for the JSON.
        note: a second figure for the table's faultlab cell (``95,760 hops/s``).
        error: why the line could not be measured (its figures are then ``None``).
    """

    key: str
    what: str
    faultlab: float | None
    reference: float | None
    reference_label: str
    unit: str
    value: float | None
    value_unit: str
    target: float | None
    sense: Sense = "<="
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    error: str | None = None

    @property
    def passed(self) -> bool | None:
        """Whether ``value`` meets the target (``None``: no target, or not measured)."""
        if self.target is None or self.value is None:
            return None
        if self.sense == "<=":
            return self.value <= self.target
        if self.sense == "<":
            return self.value < self.target
        return self.value >= self.target

    @property
    def verdict(self) -> str:
        """``pass``, ``FAIL``, ``info`` (no target) or ``error``."""
        if self.error is not None:
            return "error"
        passed = self.passed
        return "info" if passed is None else ("pass" if passed else "FAIL")

    def cells(self) -> tuple[str, str, str, str, str, str]:
        """The line as the table prints it: what, faultlab, reference, value, target, verdict."""
        what = f"{self.what} vs {self.reference_label}" if self.reference_label else self.what
        if self.error is not None:
            return what, "-", "-", "-", self._target(), "error"
        faultlab = _figure(self.faultlab, self.unit)
        if self.note:
            faultlab += f", {self.note}"
        return (
            what,
            faultlab,
            _figure(self.reference, self.unit),
            _figure(self.value, self.value_unit),
            self._target(),
            self.verdict,
        )

    def _target(self) -> str:
        if self.target is None:
            return "-"
        sense = {"<=": "≤", "<": "<", ">=": "≥"}[self.sense]
        return f"{sense} {_figure(self.target, self.value_unit)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready line."""
        return {
            "key": self.key,
            "what": self.what,
            "faultlab": self.faultlab,
            "reference": self.reference,
            "reference_label": self.reference_label,
            "unit": self.unit,
            "value": self.value,
            "value_unit": self.value_unit,
            "target": self.target,
            "sense": self.sense,
            "passed": self.passed,
            "verdict": self.verdict,
            "error": self.error,
            "note": self.note,
            "details": self.details,
        }


def _figure(number: float | None, unit: str) -> str:
    value = number_or_none(number)
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.2%}"
    if unit == "bytes":
        return f"{value / 2**20:,.1f} MiB"
    if unit == "s" and value < 1:
        return f"{value * 1000:.2f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.2f} {unit.replace('us/', 'µs/')}"


# --------------------------------------------------------------------------- the lines


def measure_three_tier(duration: float, repeat: int) -> list[Line]:
    """The four three-tier lines: patterns off and on, against the naive and the lean model."""
    off = bench_scenario(duration)
    on = patterns_on_scenario(duration)
    runs: dict[str, Callable[[], Served]] = {
        "faultlab, patterns off": lambda: run_faultlab(off),
        "faultlab, every pattern on": lambda: run_faultlab(on),
        "bare, process per call": lambda: run_bare(off, PROCESS_PER_CALL),
        "bare, yield from": lambda: run_bare(off, YIELD_FROM),
    }
    warm = {
        "faultlab, patterns off": lambda: run_faultlab(_warm_up(off)),
        "faultlab, every pattern on": lambda: run_faultlab(_warm_up(on)),
        "bare, process per call": lambda: run_bare(_warm_up(off), PROCESS_PER_CALL),
        "bare, yield from": lambda: run_bare(_warm_up(off), YIELD_FROM),
    }
    sides = best_of(runs, warm, repeat)
    common = {"scenario": SCENARIO, "duration": duration, "seed": off.seed, "repeat": repeat}
    lines = []
    for faultlab, label, target in (
        ("faultlab, patterns off", "patterns off", TARGET_PATTERNS_OFF),
        ("faultlab, every pattern on", "every pattern on", TARGET_PATTERNS_ON),
    ):
        ours = sides[faultlab]
        for bare, reference_label, line_target in (
            ("bare, process per call", "bare SimPy, process per call", target),
            ("bare, yield from", "bare SimPy, yield from", None),
        ):
            theirs = sides[bare]
            suffix = "" if line_target is not None else "-yield-from"
            lines.append(
                Line(
                    key=f"three-tier-{'off' if 'off' in label else 'on'}{suffix}",
                    what=f"three-tier, {label}",
                    faultlab=ours.us_per_hop,
                    reference=theirs.us_per_hop,
                    reference_label=reference_label,
                    unit="us/hop",
                    value=ours.us_per_hop / theirs.us_per_hop,
                    value_unit="x",
                    target=line_target,
                    details=common | {"faultlab": ours.to_dict(), "reference": theirs.to_dict()},
                )
            )
    return lines


def measure_mmc(customers: int, seeds: int) -> list[Line]:
    """The M/M/c lines: cost per customer against textbook SimPy, and Wq against Erlang C.

    Each of ``seeds`` runs of ``customers`` customers (on the scenario's seed, then the next
    ones) is timed once on each side, the sides alternating: the cost is each side's best
    seconds per customer over the seeds, and faultlab's ``Wq`` the mean of its runs' means,
    with a 95% t interval over the seeds.
    """
    base = mmc_scenario(customers)
    server = base.services[base.workload.entry]
    rate = base.workload.rate
    assert isinstance(rate, sc.ConstantRate)
    if not isinstance(server.service_time, sc.Exponential):
        raise ValueError(f"{MMC_SCENARIO}: M/M/c needs exponential service times")
    mean = server.service_time.mean
    workers = server.workers * server.replicas
    erlang = mmc_mean_wait(workers, rate.rate, 1.0 / mean)
    run_seeds = [base.seed + k for k in range(seeds)]
    # per side: wall seconds, microseconds per customer, customers served and Wq of each seed
    ours: dict[str, list[Any]] = {"walls": [], "costs": [], "customers": [], "waits": []}
    theirs: dict[str, list[Any]] = {"walls": [], "costs": [], "customers": [], "waits": []}
    run_faultlab(_warm_up(base))
    run_bare(_warm_up(base), PROCESS_PER_CALL)
    for seed in run_seeds:
        scenario = base.with_overrides({"seed": seed})
        for side, run in (
            (ours, partial(run_faultlab, scenario)),
            (theirs, partial(run_bare, scenario, PROCESS_PER_CALL)),
        ):
            served, wall = _timed(run)
            side["walls"].append(wall)
            side["costs"].append(wall / served.hops * 1e6)
            side["customers"].append(served.hops)
            side["waits"].append(served.wait_means[0])
    waits: list[float] = ours["waits"]
    wait = mean_interval(waits)
    customers_per_run = round(sum(ours["customers"]) / seeds)
    common = {
        "scenario": MMC_SCENARIO,
        "customers": ours["customers"],
        "duration": base.duration,
        "seeds": run_seeds,
        "servers": workers,
        "arrival_rate": rate.rate,
        "service_rate": 1.0 / mean,
    }
    what = f"M/M/{workers} ({MMC_SCENARIO}), {_runs(seeds, customers_per_run)}"
    over = "" if seeds == 1 else f"{seeds} seeds, "
    return [
        Line(
            key="mmc",
            what=what,
            faultlab=min(ours["costs"]),
            reference=min(theirs["costs"]),
            reference_label="bare SimPy",
            unit="us/customer",
            value=min(ours["costs"]) / min(theirs["costs"]),
            value_unit="x",
            target=TARGET_MMC,
            details=common
            | {
                "faultlab": {"walls_s": ours["walls"], "us_per_customer": ours["costs"]},
                "reference": {
                    "walls_s": theirs["walls"],
                    "us_per_customer": theirs["costs"],
                    "customers": theirs["customers"],
                },
            },
        ),
        Line(
            key="mmc-wait",
            what=f"M/M/{workers} mean queue wait Wq, {over}|error|",
            faultlab=wait.mean,
            reference=erlang,
            reference_label="Erlang C",
            unit="s",
            value=abs(wait.mean / erlang - 1.0),
            value_unit="%",
            target=TARGET_WAIT_ERROR,
            details=common
            | {
                "wait_mean": wait.mean,
                "wait_means": waits,
                "wait_ci95": None if seeds < 2 else [wait.low, wait.high],
                "erlang_c_wait_mean": erlang,
                "relative_error": wait.mean / erlang - 1.0,
                "relative_errors": [w / erlang - 1.0 for w in waits],
                "bare_wait_means": theirs["waits"],
                "bare_relative_errors": [w / erlang - 1.0 for w in theirs["waits"]],
            },
        ),
    ]


def _runs(seeds: int, customers: int) -> str:
    """``1,000,000 customers``, or ``5 seeds x ~1,000,000 customers`` (the mean of the runs)."""
    return f"{customers:,} customers" if seeds == 1 else f"{seeds} seeds x ~{customers:,} customers"


def measure_flagship(duration: float | None, repeat: int) -> list[Line]:
    """The flagship line: one seed of the flagship, wall seconds and hops per second."""
    scenario = flagship_scenario(duration)
    sides = best_of(
        {"faultlab": lambda: run_faultlab(scenario)},
        {"faultlab": lambda: run_faultlab(_warm_up(scenario))},
        repeat,
    )
    side = sides["faultlab"]
    own_length = duration is None or duration == sc.load_scenario(FLAGSHIP).duration
    return [
        Line(
            key="flagship",
            what=f"{FLAGSHIP}, seed {scenario.seed}, {format_duration(scenario.duration)}, wall",
            faultlab=side.wall,
            reference=None,
            reference_label="",
            note=f"{side.hops / side.wall:,.0f} hops/s",
            unit="s",
            value=side.wall,
            value_unit="s",
            # the 5 s target is for the scenario as written, not for another run length
            target=TARGET_FLAGSHIP_WALL if own_length else None,
            sense="<",
            details={
                "scenario": FLAGSHIP,
                "duration": scenario.duration,
                "seed": scenario.seed,
                "repeat": repeat,
                "faultlab": side.to_dict(),
            },
        )
    ]


def measure_memory(duration: float | None) -> list[Line]:
    """The memory lines: the flagship 10x longer against as long, each run in a fresh process.

    ``memory`` (the target): the whole process's peak (:func:`peak_memory`). ``memory-run``
    (information): what the run alone grows the resident set by (:func:`run_memory`).
    ``memory-bins`` (information): the whole-process peak of the long run recording bins 10x
    wider, so as many bins as the short run.
    """
    scenario = flagship_scenario(duration)
    longer = scenario.with_overrides({"duration": scenario.duration * MEMORY_FACTOR})
    what = f"{FLAGSHIP} {format_duration(longer.duration)} run"
    short = f"{format_duration(scenario.duration)} run"
    # the same long run recording bins MEMORY_FACTOR times wider: as many bins as the short run
    wide = scenario.recording.bin * MEMORY_FACTOR
    coarse = longer.with_overrides({"recording.bin": wide})
    try:
        short_peak, long_peak = peak_memory(scenario), peak_memory(longer)
        short_run, long_run = run_memory(scenario), run_memory(longer)
        coarse_peak = peak_memory(coarse)
    except (OSError, RuntimeError) as exc:
        return [_failed("memory", f"{what}, process peak memory", short, exc)]
    common = {"scenario": FLAGSHIP, "duration": scenario.duration, "long_duration": longer.duration}

    def line(key: str, label: str, peaks: tuple[int, int], bin_width: float, method: str) -> Line:
        return Line(
            key=key,
            what=label,
            faultlab=peaks[1],
            reference=peaks[0],
            reference_label=short,
            unit="bytes",
            value=peaks[1] / peaks[0],
            value_unit="x",
            target=TARGET_MEMORY_RATIO if key == "memory" else None,
            details=common
            | {"bin": bin_width, "method": method, "bytes": peaks[0], "long_bytes": peaks[1]},
        )

    return [
        line(
            "memory",
            f"{what}, process peak memory",
            (short_peak, long_peak),
            scenario.recording.bin,
            "VmHWM of a fresh process that imports the model and runs it",
        ),
        line(
            "memory-run",
            f"{what}, memory the run adds",
            (short_run, long_run),
            scenario.recording.bin,
            "RSS growth (VmHWM - VmRSS) during the run, in a fresh process after a warm-up",
        ),
        line(
            "memory-bins",
            f"{what} in {format_duration(wide)} bins, process peak memory",
            (short_peak, coarse_peak),
            wide,
            "VmHWM of a fresh process that imports the model and runs it",
        ),
    ]


def peak_memory(scenario: sc.Scenario) -> int:
    """The peak resident set, in bytes, of a fresh process that imports the model and runs it.

    What issue 8 asks for: the whole process (interpreter, imports, the run, its result tables)
    at its highest, ``VmHWM`` after ``World(scenario).run()``, with no warm-up.

    Raises:
        RuntimeError: this system has no ``/proc/self/status`` (not Linux).
    """
    return _in_fresh_process(_process_peak, scenario)


def run_memory(scenario: sc.Scenario) -> int:
    """Bytes the resident set grows by while ``World(scenario).run()`` runs, in a fresh process.

    After a warm-up run (imports, caches), so what the run itself needs, result tables included.

    Raises:
        RuntimeError: this system has no ``/proc/self/status`` (not Linux).
    """
    return _in_fresh_process(_rss_growth, scenario)


def _in_fresh_process(measure: Callable[[sc.Scenario], int], scenario: sc.Scenario) -> int:
    """``measure(scenario)`` in a new (spawned) process: no memory of this one is in it."""
    if not Path("/proc/self/status").exists():
        raise RuntimeError("measuring memory needs Linux's /proc/self/status")
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, scenario).result()


def _process_peak(scenario: sc.Scenario) -> int:
    """In a fresh process: import the model, run, return the process's peak resident set."""
    from sim.world import World

    World(scenario).run()
    return _status_kib("VmHWM") * 1024


def _rss_growth(scenario: sc.Scenario) -> int:
    """In a fresh process: warm up, reset the peak-RSS mark, run, return peak minus start."""
    from sim.world import World

    World(_warm_up(scenario)).run()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
    before = _status_kib("VmRSS")
    World(scenario).run()
    return (_status_kib("VmHWM") - before) * 1024


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/self/status")


ExecutorKind = Literal["process-pool", "dask"]


def measure_scale_out(
    kind: ExecutorKind, duration: float | None, reps: int, rounds: int = 1
) -> list[Line]:
    """The scale-out line: ``reps`` flagship replications on 1 worker, then on 2.

    Each worker count is timed ``rounds`` times in its pool; the best round is kept.
    """
    from sim.experiment import ExperimentError

    scenario = flagship_scenario(duration)
    label = "process pool" if kind == "process-pool" else "Dask LocalCluster"
    what = f"{reps} replications of {FLAGSHIP}, {label}, on 2 workers"
    walls: dict[int, float] = {}
    every: dict[int, list[float]] = {}
    startups: dict[int, float] = {}
    try:
        for workers in (1, 2):
            startups[workers], every[workers] = _replications(kind, scenario, reps, workers, rounds)
            walls[workers] = min(every[workers])
    except (ExperimentError, RuntimeError, OSError) as exc:
        return [_failed(kind, what, "1 worker", exc)]
    return [
        Line(
            key=kind,
            what=what,
            faultlab=walls[2],
            reference=walls[1],
            reference_label="1 worker",
            unit="s",
            value=walls[1] / walls[2],
            value_unit="x",
            target=TARGET_SPEEDUP,
            sense=">=",
            details={
                "scenario": FLAGSHIP,
                "duration": scenario.duration,
                "reps": reps,
                "wall_s": {"1": walls[1], "2": walls[2]},
                "rounds_s": {"1": every[1], "2": every[2]},
                "startup_s": {"1": startups[1], "2": startups[2]},
            },
        )
    ]


def _replications(
    kind: ExecutorKind, scenario: sc.Scenario, reps: int, workers: int, rounds: int
) -> tuple[float, list[float]]:
    """Start-up seconds and each round's wall seconds, on a pool of ``workers`` workers.

    A round is ``reps`` replications of ``scenario``; ``rounds`` of them, one after the other.
    """
    from sim.experiment import replicate

    start = time.perf_counter()
    walls: list[float] = []
    with _executor(kind, workers) as pool:
        wait([pool.submit(_warm_worker) for _ in range(workers)])
        ready = time.perf_counter()
        for _ in range(rounds):
            began = time.perf_counter()
            runs = replicate(scenario, reps=reps, executor=pool, jobs=workers).runs
            walls.append(time.perf_counter() - began)
            failed = [e for e in runs["error"] if isinstance(e, str)]
            if failed:
                raise RuntimeError(f"{len(failed)} replication(s) failed: {failed[0]}")
    return ready - start, walls


@contextmanager
def _executor(kind: ExecutorKind, workers: int) -> Iterator[Executor]:
    if kind == "process-pool":
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            yield pool
    else:
        from sim.experiment import open_executor

        with open_executor("dask://local", workers) as (pool, _):
            yield pool


def _warm_worker() -> None:
    """A worker's first task: import the model, and stay busy long enough for the others."""
    import sim.experiment  # noqa: F401

    time.sleep(0.5)


def _failed(key: str, what: str, reference_label: str, exc: Exception) -> Line:
    return Line(key, what, None, None, reference_label, "", None, "", None, error=str(exc))


# --------------------------------------------------------------------------- the suite


@dataclass(frozen=True)
class Settings:
    """What the suite runs, and how long (the CLI's options).

    Attributes:
        only: the measurements to run (:data:`MEASUREMENTS`), in the suite's order.
        duration: simulated seconds of the three-tier runs.
        repeat: timed runs per side of the three-tier and flagship lines (the best is kept);
            the scale-out lines time at most :data:`SCALE_OUT_ROUNDS` rounds per side.
        customers: M/M/c customers of each seed's run (about; arrivals are random).
        mmc_seeds: M/M/c runs, each on its own seed (one run of 1M customers estimates ``Wq``
            only to about +-1%; five pool 5M customers, about +-0.45%).
        reps: replications of the scale-out lines.
        flagship_duration: the flagship's run length (``None``: its own, 5 min); its 5 s target
            applies to its own length only. The memory and scale-out lines run it too.
    """

    only: tuple[str, ...] = MEASUREMENTS
    duration: float = 60.0
    repeat: int = 3
    customers: int = 1_000_000
    mmc_seeds: int = 5
    reps: int = 8
    flagship_duration: float | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.only if name not in MEASUREMENTS]
        if unknown or not self.only:
            raise SettingError(
                "only",
                f"unknown measurement {', '.join(map(repr, unknown))} "
                f"(choose from {', '.join(MEASUREMENTS)})"
                if unknown
                else f"choose at least one of {', '.join(MEASUREMENTS)}",
            )
        if not self.duration > 0:
            raise SettingError("duration", "must be greater than 0")
        if self.repeat < 1:
            raise SettingError("repeat", "must be at least 1")
        if self.customers < 100:
            raise SettingError("customers", "must be at least 100")
        if self.mmc_seeds < 1:
            raise SettingError("mmc-seeds", "must be at least 1")
        if self.reps < 2:
            raise SettingError("reps", "must be at least 2 (one per worker)")
        if self.flagship_duration is not None:
            try:
                flagship_scenario(self.flagship_duration)
            except sc.ScenarioError as exc:
                raise SettingError("flagship-duration", str(exc).splitlines()[0]) from None

    @property
    def scale_out_rounds(self) -> int:
        """Timed rounds per side of the scale-out lines: ``repeat``, at most 2."""
        return min(self.repeat, SCALE_OUT_ROUNDS)


@dataclass
class Suite:
    """The lines of one run of the suite, with its settings and environment.

    Attributes:
        settings: what was run.
        lines: the measurements, in :data:`MEASUREMENTS` order.
        load: the system's 1-minute load average before and after the suite (``None`` where
            the platform has none): above the number of CPUs, other work was slowing every line.
    """

    settings: Settings
    lines: list[Line]
    load: tuple[float, float] | None = None

    @property
    def passed(self) -> bool:
        """Every line with a target met it (and none failed to run)."""
        return all(line.passed is not False and line.error is None for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready suite."""
        return {
            "settings": {
                "only": list(self.settings.only),
                "duration": self.settings.duration,
                "repeat": self.settings.repeat,
                "customers": self.settings.customers,
                "mmc_seeds": self.settings.mmc_seeds,
                "reps": self.settings.reps,
                "flagship_duration": self.settings.flagship_duration,
            },
            "python": sys.version.split()[0],
            "simpy": getattr(simpy, "__version__", "unknown"),
            "cpus": os.cpu_count(),
            "load_average": None if self.load is None else list(self.load),
            "passed": self.passed,
            "lines": [line.to_dict() for line in self.lines],
        }


def run_suite(settings: Settings, progress: Callable[[str], None] | None = None) -> Suite:
    """Measure the selected lines of the suite, in :data:`MEASUREMENTS` order.

    Args:
        settings: what to run and how long.
        progress: called with the name of each measurement as it starts.
    """
    report = progress or (lambda name: None)
    measure: dict[str, Callable[[], list[Line]]] = {
        "three-tier": lambda: measure_three_tier(settings.duration, settings.repeat),
        "mmc": lambda: measure_mmc(settings.customers, settings.mmc_seeds),
        "flagship": lambda: measure_flagship(settings.flagship_duration, settings.repeat),
        "memory": lambda: measure_memory(settings.flagship_duration),
        "process-pool": lambda: measure_scale_out(
            "process-pool", settings.flagship_duration, settings.reps, settings.scale_out_rounds
        ),
        "dask": lambda: measure_scale_out(
            "dask", settings.flagship_duration, settings.reps, settings.scale_out_rounds
        ),
    }
    lines: list[Line] = []
    before = _load_average()
    for name in MEASUREMENTS:
        if name in settings.only:
            report(name)
            lines += measure[name]()
    after = _load_average()
    load = None if before is None or after is None else (before, after)
    return Suite(settings, lines, load)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        return None


def parse_only(text: str) -> tuple[str, ...]:
    """``three-tier,mmc`` as measurement names in the suite's order (checked by Settings)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    return tuple(sorted(dict.fromkeys(names), key=_order))


def _order(name: str) -> int:
    return MEASUREMENTS.index(name) if name in MEASUREMENTS else len(MEASUREMENTS)
