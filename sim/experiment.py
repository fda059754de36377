"""Experiments: replications, variant comparisons and parameter sweeps, on any executor.

The unit of work is a *replication*: one run of the scenario with a variant, a point of a sweep
(dotted-path overrides, the language of variants) and a seed, analysed in the worker
(:func:`sim.analysis.analyze`) so that only a row of headline figures and the event log travel
back. Replication ``r`` runs seed ``seed + r`` for *every* variant and point: common random
numbers (``../shared/DESIGN.md`` §2.1), so a comparison is paired by seed.

Executors (DESIGN §2.8), one code path through the ``concurrent.futures`` interface:

* ``serial``: in this process, one replication at a time;
* ``process`` (the default): a local process pool of ``jobs`` workers (default: every core)
  started with the ``spawn`` context (no fork of a process with threads); ``jobs=1`` runs
  serially, as ``make -j1`` does;
* ``dask://tcp://HOST:PORT``: an existing Dask cluster, through
  ``client.get_executor(pure=False)`` (its workers must be able to import faultlab);
  ``dask://local`` starts a ``LocalCluster`` of ``jobs`` single-threaded worker processes
  (no dashboard, and so no statistical profiler in the workers);
* or any ``concurrent.futures.Executor`` you pass in (and shut down yourself).

A replication is a pure function of its task, so every executor gives identical rows.

Tables (tidy, one observation per row):

* ``runs``: one row per variant x point x replication: the keys (``scenario``,
  ``fingerprint``, ``variant``, ``point``, one column per swept path, ``rep``, ``seed``), an
  ``error`` (``None``, or what went wrong: a failed replication is recorded, not fatal), the
  run's summary figures and every headline figure of :meth:`sim.analysis.Analysis.headline`;
* ``events``: the event logs, long form: ``variant, point, rep, seed, t, host, entity, kind,
  detail``.

With ``out``, both are written as Parquet (``runs.parquet``, ``events.parquet``) as work
completes, at least every :data:`CHECKPOINT` seconds, so an interrupted experiment resumes
where it stopped: a replication already in ``runs.parquet`` without an error is not run again
(one with an error is). The ``fingerprint`` (a hash of the scenario and the run length) guards
against resuming into the results of a different scenario.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim import scenario as sc
from sim.analysis import Analysis, analyze
from sim.recorder import RunResult, write_tables
from sim.request import OUTCOMES
from sim.stats import mean_interval, paired_difference
from sim.world import World

REPS = 5
"""Default replications per variant and point: the fewest for which a 95% t interval is of
practical width (t quantile 2.78 at 4 degrees of freedom, against 12.7 at 1); add replications
until the intervals are as narrow as the decision needs (Law, *Simulation Modeling and
Analysis*, 5th ed., §9.4.1)."""

CHECKPOINT = 5.0
"""Seconds of wall time between two writes of the output tables (and at the end)."""

METRICS = (
    "availability",
    "latency_p99",
    "user_impact_fraction",
    "user_impact_requests",
    "blast_radius",
    "containment",
    "collateral_kills",
    "recovered",
    "time_to_recover",
    "metastable",
    "goodput_lost",
    "peak_error_rate",
    "oom_kills",
    "restarts",
)
"""The figures compared and summarised by default (booleans as the share of replications)."""

KEY_COLUMNS = ("scenario", "fingerprint", "variant", "point")
SUMMARY_COLUMNS = (
    "arrivals",
    "completed",
    "in_flight_at_end",
    "availability",
    "latency_p50",
    "latency_p99",
    "oom_kills",
    "allocation_failures",
    "evictions",
    "restarts",
    "events_dropped",
)
EVENT_COLUMNS = ("t", "host", "entity", "kind", "detail")
BASELINE = "baseline"
"""The name of the scenario as written (no overlay), unless the scenario defines it."""


class ExperimentError(ValueError):
    """An experiment that cannot run as asked (bad executor, output of another scenario...)."""


# --------------------------------------------------------------------------- one replication

Key = tuple[str, str, int]
"""A replication's key in the tables: ``(variant, point, seed)``."""


@dataclass(frozen=True)
class Task:
    """One replication to run: what, where in the design, and its seed.

    Attributes:
        scenario: the base scenario (no variant, no overrides applied).
        variant: the variant's name (:data:`BASELINE` for the scenario as written).
        point: the sweep point: dotted-path overrides, in grid order.
        rep: the replication's number (0-based).
        seed: its seed.
        duration: the run length, if overridden.
        hold: the metastability hold time (``None``: the analysis' default).
    """

    scenario: sc.Scenario
    variant: str
    point: tuple[tuple[str, Any], ...]
    rep: int
    seed: int
    duration: float | None = None
    hold: float | None = None

    @property
    def point_key(self) -> str:
        """The point as canonical JSON (``{}`` without overrides): its key in the tables."""
        return json.dumps(dict(self.point), sort_keys=True, default=str)

    @property
    def key(self) -> Key:
        """``(variant, point, seed)``: what identifies the replication in the output."""
        return self.variant, self.point_key, self.seed

    def prepared(self) -> sc.Scenario:
        """The scenario to build the world from, with the variant still to apply.

        The point's overrides (and the run length) are merged into the variant's overlay, after
        it, so they win over the variant where both set a path; the result is validated when the
        world applies the variant.
        """
        overrides = dict(self.point)
        if self.duration is not None:
            overrides["duration"] = self.duration
        if not overrides:
            return self.scenario
        base = self.scenario
        if self.variant in base.variants:
            variants = dict(base.variants)
            variants[self.variant] = {**variants[self.variant], **overrides}
            return base.model_copy(update={"variants": variants})
        return base.with_overrides(overrides)


HEADLINE_FILE = "headline.json"
"""Where :meth:`Run.save` writes the analysis' headline figures (blast radius, recovery...)."""

SCENARIO_FILE = "scenario.json"
"""Where :meth:`Run.save` writes the scenario as run (``Scenario.model_validate_json`` reads it)."""


@dataclass(frozen=True)
class Run:
    """One run and its analysis."""

    result: RunResult
    analysis: Analysis
    scenario: sc.Scenario
    """The scenario as run: variant and overrides applied."""

    def save(self, directory: str | Path, formats: tuple[str, ...] = ("parquet",)) -> Path:
        """Write the run's tables (:meth:`RunResult.save`), its analysis and the scenario as run.

        Besides the result's tables: ``slo`` (every SLO window) and ``timeline`` (the incident
        timeline) in each format, the analysis' headline figures (:data:`HEADLINE_FILE`) and
        :data:`SCENARIO_FILE` (variants dropped: they are applied already), so that a report can
        show what the explorer shows.
        """
        out = self.result.save(directory, formats)
        write_tables(out, {"slo": self.analysis.slo, "timeline": self.analysis.timeline}, formats)
        headline = json.dumps(self.analysis.headline(), indent=1, sort_keys=True, default=str)
        (out / HEADLINE_FILE).write_text(headline + "\n", encoding="utf-8")
        (out / SCENARIO_FILE).write_text(as_run_json(self.scenario), encoding="utf-8")
        return out


def as_run_json(scenario: sc.Scenario) -> str:
    """A scenario as run, for :data:`SCENARIO_FILE`: ``Scenario.model_validate_json`` reads it.

    Variants are dropped (they are applied already), and so are the fields the scenario never
    set: written out, a default such as a service's ``restart`` policy would read back as set,
    which a service under an OTP supervisor must not have.
    """
    as_run = scenario.model_copy(update={"variants": {}})
    return as_run.model_dump_json(indent=1, exclude_unset=True) + "\n"


def _run_task(task: Task) -> Run:
    world = World(task.prepared(), task.variant, task.seed)
    result = world.run()
    return Run(result, analyze(result, world.scenario, task.hold), world.scenario)


def execute(task: Task) -> tuple[dict[str, Any], pd.DataFrame]:
    """Run one replication: its ``runs`` row and its events (what a worker computes).

    An exception is recorded in the row's ``error`` (the type and message), not raised.
    """
    row = _keys(task)
    try:
        done = _run_task(task)
    except Exception as exc:  # a failed replication is a row, not the end of the experiment
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row, _events(task, pd.DataFrame(columns=list(EVENT_COLUMNS)))
    summary = done.result.summary
    row["error"] = None
    row |= {name: summary[name] for name in SUMMARY_COLUMNS}
    row |= {f"outcome_{o.label}": summary["outcomes"][o.label] for o in OUTCOMES}
    row |= done.analysis.headline()
    return row, _events(task, done.result.events)


def _keys(task: Task) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": task.scenario.name,
        "fingerprint": fingerprint(task.scenario, task.duration),
        "variant": task.variant,
        "point": task.point_key,
    }
    row |= dict(task.point)
    row |= {"rep": task.rep, "seed": task.seed}
    return row


def _events(task: Task, events: pd.DataFrame) -> pd.DataFrame:
    frame = events.loc[:, list(EVENT_COLUMNS)].copy()
    frame.insert(0, "variant", task.variant)
    frame.insert(1, "point", task.point_key)
    frame.insert(2, "rep", task.rep)
    frame.insert(3, "seed", task.seed)
    return frame


def fingerprint(scenario: sc.Scenario, duration: float | None = None) -> str:
    """A short hash of a scenario (with its run length): which results belong together."""
    text = scenario.model_dump_json() + f"|duration={duration}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run(
    scenario: sc.Scenario | str | Path,
    variant: str | None = None,
    seed: int | None = None,
    *,
    duration: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    hold: float | None = None,
) -> Run:
    """Run a scenario once, with a variant and overrides, and analyse the run.

    Args:
        scenario: a :class:`~sim.scenario.Scenario`, a YAML file or a catalogue name.
        variant: the variant to apply (``None``: the scenario as written).
        seed: the seed (default: the scenario's).
        duration: the run length, overriding the scenario's.
        overrides: dotted-path overrides (as in a sweep point), applied after the variant.
        hold: the metastability hold time (default :func:`sim.analysis.default_hold`).
    """
    base = _load(scenario)
    task = Task(
        base,
        variant or BASELINE,
        tuple((overrides or {}).items()),
        0,
        base.seed if seed is None else seed,
        duration,
        hold,
    )
    return _run_task(task)


def _load(scenario: sc.Scenario | str | Path) -> sc.Scenario:
    return scenario if isinstance(scenario, sc.Scenario) else sc.load_scenario(scenario)


# --------------------------------------------------------------------------- executors


class SerialExecutor(Executor):
    """Runs each call when it is submitted, in this process: the executor of ``jobs=1``."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Call ``fn`` now; the returned future is already done."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@contextmanager
def open_executor(
    spec: str | Executor | None, jobs: int | None = None
) -> Iterator[tuple[Executor, int]]:
    """The executor an experiment runs on (see the module docstring), shut down on exit.

    Args:
        spec: ``serial``, ``process`` (default), ``dask://tcp://HOST:PORT``, ``dask://local``,
            or an executor of your own (left running).
        jobs: parallel workers for ``process`` and ``dask://local`` (default: every core).

    Yields:
        The executor, and how many replications it runs at once (a Dask cluster's worker
        threads; ``jobs`` otherwise).

    Raises:
        ExperimentError: an unknown executor, or a Dask cluster that cannot be reached.
    """
    workers = jobs or os.cpu_count() or 1
    if isinstance(spec, Executor):
        yield spec, workers
        return
    spec = check_executor(spec)
    if spec == "serial" or (spec == "process" and workers == 1):
        yield SerialExecutor(), 1
    elif spec == "process":
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            yield pool, workers
    else:
        with _dask_executor(spec.removeprefix("dask://"), workers) as opened:
            yield opened


def check_executor(spec: str | None) -> str:
    """An executor name, checked (``None``: ``process``); :class:`ExperimentError` if unknown."""
    spec = spec or "process"
    if spec in ("serial", "process") or (spec.startswith("dask://") and len(spec) > 7):
        return spec
    raise ExperimentError(
        f"unknown executor {spec!r} (use serial, process, dask://local or dask://tcp://HOST:PORT)"
    )


@contextmanager
def _dask_executor(address: str, workers: int) -> Iterator[tuple[Executor, int]]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ExperimentError(
            "the Dask executor needs dask.distributed: pip install 'faultlab[distributed]'"
        ) from None
    cluster = None
    try:
        if address == "local":
            import dask

            # No dashboard, so nobody sees the workers' statistical profiler: it would sample
            # the deep generator stacks of a run every 10 ms, at about 10% of a worker's CPU.
            # The nannies hand the workers the config they were made with.
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
            client = Client(cluster)  # type: ignore[no-untyped-call]
        else:
            client = Client(address, timeout="10s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ExperimentError(f"cannot reach the Dask cluster at {address}: {exc}") from None
    try:
        executor = client.get_executor(pure=False)  # type: ignore[no-untyped-call]
        threads = sum(client.nthreads().values())  # type: ignore[no-untyped-call]
        yield executor, max(1, threads)
        executor.shutdown(wait=True)
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- running a design

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as replications finish (skipped ones count as done)."""


@dataclass
class Results:
    """The tables of an experiment (see the module docstring)."""

    runs: pd.DataFrame
    events: pd.DataFrame = field(repr=False)


def plan(
    scenario: sc.Scenario,
    variants: Sequence[str],
    points: Sequence[Mapping[str, Any]],
    reps: int,
    seed: int | None = None,
    duration: float | None = None,
    hold: float | None = None,
) -> list[Task]:
    """Every replication of a design, variant-major: common seeds ``seed .. seed + reps - 1``.

    Each variant and point is validated here, so that a bad path or value fails before any
    run: :class:`~sim.scenario.ScenarioError`.
    """
    if reps < 1:
        raise ExperimentError(f"reps must be at least 1, got {reps}")
    if not variants:
        raise ExperimentError("no variant to run")
    if not points:
        raise ExperimentError("no point to run (a swept path has no value)")
    first = scenario.seed if seed is None else seed
    tasks: list[Task] = []
    seen: set[Key] = set()
    for variant in variants:
        for point in points:
            if "seed" in point:
                raise ExperimentError(
                    "replications set the seeds: sweep no 'seed' (give the first seed and reps)"
                )
            template = Task(scenario, variant, tuple(point.items()), 0, first, duration, hold)
            if template.key in seen:
                raise ExperimentError(f"variant {variant} at point {template.point_key} twice")
            seen.add(template.key)
            template.prepared().with_variant(variant)
            tasks += [
                Task(scenario, variant, template.point, rep, first + rep, duration, hold)
                for rep in range(reps)
            ]
    return tasks


def execute_plan(
    tasks: Sequence[Task],
    executor: str | Executor | None = None,
    jobs: int | None = None,
    out: str | Path | None = None,
    progress: Progress | None = None,
) -> Results:
    """Run every task not already done in ``out``; return the design's tables in plan order.

    Args:
        tasks: the design (:func:`plan`).
        executor: see :func:`open_executor`.
        jobs: parallel workers (default: every core).
        out: a directory for ``runs.parquet`` and ``events.parquet`` (resumable), or ``None``.
        progress: called with ``(done, total)`` as replications finish.
    """
    report = progress or (lambda done, total: None)
    directory = None if out is None else Path(out)
    old_runs, old_events = _read(directory, tasks)
    finished = {_row_key(r) for r in old_runs.to_dict("records") if _ok(r["error"])}
    todo = [task for task in tasks if task.key not in finished]
    rows: list[dict[str, Any]] = []
    events: dict[Key, pd.DataFrame] = {}
    report(len(tasks) - len(todo), len(tasks))
    last_write = time.monotonic()
    with open_executor(executor, jobs) as (pool, parallel):
        # a few tasks queued per worker keep it busy; not all of them: each carries a scenario
        for task, outcome in _completed(pool, todo, 1 if parallel == 1 else 2 * parallel):
            try:
                row, events[task.key] = outcome.result()
            except Exception as exc:  # the worker itself died (a broken pool, a lost worker)
                row = _keys(task) | {"error": f"{type(exc).__name__}: {exc}"}
            rows.append(row)
            report(len(tasks) - len(todo) + len(rows), len(tasks))
            if directory is not None and time.monotonic() - last_write >= CHECKPOINT:
                _write(directory, *_merge(tasks, old_runs, old_events, rows, events))
                last_write = time.monotonic()
    runs, all_events = _merge(tasks, old_runs, old_events, rows, events)
    if directory is not None:
        _write(directory, runs, all_events)
    planned = {task.key for task in tasks}
    return Results(
        runs[[_row_key(r) in planned for r in runs.to_dict("records")]].reset_index(drop=True),
        all_events[_event_keys(all_events).isin(planned).to_numpy()].reset_index(drop=True),
    )


def _completed(
    pool: Executor, tasks: Sequence[Task], window: int
) -> Iterator[tuple[Task, Future[Any]]]:
    """Submit ``tasks`` keeping at most ``window`` in flight; yield each as it completes."""
    queue = iter(tasks)
    pending: dict[Future[Any], Task] = {}
    while True:
        for task in itertools.islice(queue, max(0, window - len(pending))):
            pending[pool.submit(execute, task)] = task
        if not pending:
            return
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield pending.pop(future), future


def _ok(error: Any) -> bool:
    return error is None or (isinstance(error, float) and math.isnan(error))


def _row_key(row: Mapping[Any, Any]) -> Key:
    return str(row["variant"]), str(row["point"]), int(row["seed"])


def _event_keys(events: pd.DataFrame) -> pd.Series:
    keys = zip(events["variant"], events["point"], events["seed"].astype(int), strict=True)
    return pd.Series(list(keys), index=events.index, dtype=object)


def _read(directory: Path | None, tasks: Sequence[Task]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables already in ``directory`` (empty ones when there are none)."""
    empty = pd.DataFrame(columns=[*KEY_COLUMNS, "rep", "seed", "error"])
    if directory is None or not (directory / "runs.parquet").exists():
        return empty, _no_events()
    runs = pd.read_parquet(directory / "runs.parquet")
    expected = {fingerprint(t.scenario, t.duration) for t in tasks}
    foreign = set(runs["fingerprint"]) - expected
    if foreign:
        raise ExperimentError(
            f"{directory} holds results of a different scenario or run length "
            f"(fingerprint {', '.join(sorted(foreign))}): use another output directory"
        )
    events_path = directory / "events.parquet"
    events = pd.read_parquet(events_path) if events_path.exists() else _no_events()
    return runs, events


def _no_events() -> pd.DataFrame:
    return pd.DataFrame(columns=["variant", "point", "rep", "seed", *EVENT_COLUMNS])


def _merge(
    tasks: Sequence[Task],
    old_runs: pd.DataFrame,
    old_events: pd.DataFrame,
    rows: list[dict[str, Any]],
    events: Mapping[Key, pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Old rows (less those run again) and new ones, in plan order (others after, by key)."""
    fresh = {_row_key(row) for row in rows}
    order = {task.key: index for index, task in enumerate(tasks)}

    def rank(key: Key) -> tuple[int, Key]:
        return order.get(key, len(order)), key

    records: list[Mapping[Any, Any]] = [
        r for r in old_runs.to_dict("records") if _row_key(r) not in fresh
    ]
    records += rows
    records.sort(key=lambda r: rank(_row_key(r)))
    runs = _tidy_params(pd.DataFrame(records), tasks)
    frames = dict(events)
    if len(old_events):
        for key, frame in old_events.groupby(_event_keys(old_events), sort=False):
            if key not in fresh:
                frames[key] = frame
    ordered = [frames[key] for key in sorted(frames, key=rank) if len(frames[key])]
    all_events = pd.concat(ordered, ignore_index=True) if ordered else _no_events()
    return runs, all_events


def _tidy_params(runs: pd.DataFrame, tasks: Sequence[Task]) -> pd.DataFrame:
    """A swept path's column holds numbers when every value is one, else text (for Parquet)."""
    paths = dict.fromkeys(path for task in tasks for path, _ in task.point)
    for path in paths:
        if path in runs and not pd.api.types.is_numeric_dtype(runs[path]):
            runs[path] = [
                v if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in runs[path]
            ]
    return runs


def _write(directory: Path, runs: pd.DataFrame, events: pd.DataFrame) -> None:
    """Write both tables atomically (a reader never sees half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in (("runs", runs), ("events", events)):
        temporary = directory / f".{name}.parquet.tmp"
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, directory / f"{name}.parquet")


# --------------------------------------------------------------------------- the designs


def replicate(
    scenario: sc.Scenario | str | Path,
    variant: str | None = None,
    reps: int = REPS,
    **options: Any,
) -> Results:
    """Replications of one variant (seeds ``seed .. seed + reps - 1``).

    ``options``: ``seed``, ``duration``, ``hold``, ``overrides`` (a dict of dotted paths),
    ``executor``, ``jobs``, ``out``, ``progress`` (as :func:`sweep`).
    """
    overrides = options.pop("overrides", None) or {}
    grid = {path: [value] for path, value in overrides.items()}
    return sweep(scenario, grid, reps, variants=[variant or BASELINE], **options)


@dataclass
class Comparison(Results):
    """A comparison's tables, plus its statistics.

    Attributes:
        reference: the variant every other one is compared with (the first).
        stats: per metric and variant: ``metric, variant, n, mean, low, high`` (95% t interval
            over replications), and against the reference, paired by seed: ``diff_n, diff,
            diff_low, diff_high, significant`` (the interval excludes 0).
    """

    reference: str = BASELINE
    stats: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def compare(
    scenario: sc.Scenario | str | Path,
    variants: Sequence[str] | None = None,
    reps: int = REPS,
    *,
    seed: int | None = None,
    duration: float | None = None,
    hold: float | None = None,
    metrics: Sequence[str] = METRICS,
    executor: str | Executor | None = None,
    jobs: int | None = None,
    out: str | Path | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Run variants on common seeds and compare each with the first (DESIGN §2.7).

    Args:
        scenario: a scenario, a YAML file or a catalogue name.
        variants: variant names, the reference first (default: :data:`BASELINE` then every
            variant of the scenario).
        reps: replications per variant.
        seed: the first seed (default: the scenario's).
        duration: the run length, overriding the scenario's.
        hold: the metastability hold time (default: :func:`sim.analysis.default_hold`).
        metrics: the columns of ``runs`` to compare.
        executor: see :func:`open_executor`.
        jobs: parallel workers.
        out: a directory for the tables (resumable); ``stats.parquet`` is written there too.
        progress: called with ``(done, total)``.
    """
    base = _load(scenario)
    names = list(variants) if variants else designs(base)
    tasks = plan(base, names, [{}], reps, seed, duration, hold)
    results = execute_plan(tasks, executor, jobs, out, progress)
    stats = comparison_stats(results.runs, names[0], metrics)
    if out is not None:
        stats.to_parquet(Path(out) / "stats.parquet", index=False)
    return Comparison(results.runs, results.events, names[0], stats)


def designs(scenario: sc.Scenario) -> list[str]:
    """The designs of a scenario: :data:`BASELINE` (as written) first, then its variants."""
    return [BASELINE, *(v for v in scenario.variants if v != BASELINE)]


def shown_variants(stats: pd.DataFrame) -> list[str]:
    """The designs of a comparison's stats table, in their order."""
    return list(dict.fromkeys(str(v) for v in stats["variant"]))


@dataclass
class Sweep(Results):
    """A sweep's tables, plus its per-cell summary and its metastability map.

    Attributes:
        summary: per variant, point and metric: ``n, mean, low, high`` (95% t interval).
        regimes: per variant and point, the regime of the cell (:func:`metastability_map`).
    """

    summary: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    regimes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


REGIMES = ("never impacted", "recovered", "metastable")
"""A sweep cell's regime, from best to worst (the metastability map's colours)."""


def regime(run: Mapping[Any, Any]) -> str:
    """The regime of one replication (a ``runs`` row).

    ``metastable`` when sim.analysis says so, ``never impacted`` when no service was impacted,
    else ``recovered``.
    """
    if run["metastable"]:
        return "metastable"
    if not run["impacted_count"]:
        return "never impacted"
    return "recovered"


def metastability_map(runs: pd.DataFrame, paths: Sequence[str]) -> pd.DataFrame:
    """Per variant and point: the regime most of its replications ended in (ties: the worse).

    Replications that failed (``error``) are left out. Columns: ``variant, point``, one per
    swept path, ``regime`` and one count per regime.
    """
    ok = runs[runs["error"].isna()] if "error" in runs else runs
    rows = []
    for keys, cell in ok.groupby(["variant", "point"], sort=True):
        counts = dict.fromkeys(REGIMES, 0)
        for record in cell.to_dict("records"):
            counts[regime(record)] += 1
        worst_first = sorted(REGIMES, key=lambda name: (-counts[name], -REGIMES.index(name)))
        first = cell.iloc[0]
        rows.append(
            {
                "variant": keys[0],
                "point": keys[1],
                **{path: first[path] for path in paths},
                "regime": worst_first[0],
                **counts,
            }
        )
    return pd.DataFrame(rows, columns=["variant", "point", *paths, "regime", *REGIMES])


def sweep(
    scenario: sc.Scenario | str | Path,
    grid: Mapping[str, Sequence[Any]],
    reps: int = REPS,
    *,
    variants: Sequence[str] | None = None,
    seed: int | None = None,
    duration: float | None = None,
    hold: float | None = None,
    metrics: Sequence[str] = METRICS,
    executor: str | Executor | None = None,
    jobs: int | None = None,
    out: str | Path | None = None,
    progress: Progress | None = None,
) -> Sweep:
    """Run every point of a grid of dotted-path values (the cartesian product), per variant.

    Args:
        scenario: a scenario, a YAML file or a catalogue name.
        grid: ``{"services.cart.workers": [8, 16], "workload.rate.rate": ["100/s", "200/s"]}``
            (values as in a scenario file, validated like a variant's overlay).
        reps: replications per variant and point (common seeds).
        variants: variant names (default: :data:`BASELINE` only).
        seed: the first seed (default: the scenario's).
        duration: the run length, overriding the scenario's.
        hold: the metastability hold time (default: :func:`sim.analysis.default_hold`).
        metrics: the columns of ``runs`` to summarise.
        executor: see :func:`open_executor`.
        jobs: parallel workers.
        out: a directory for the tables (resumable); ``summary.parquet`` is written too.
        progress: called with ``(done, total)``.
    """
    base = _load(scenario)
    paths = list(grid)
    points = [dict(zip(paths, values, strict=True)) for values in itertools.product(*grid.values())]
    names = list(variants) if variants else [BASELINE]
    tasks = plan(base, names, points, reps, seed, duration, hold)
    results = execute_plan(tasks, executor, jobs, out, progress)
    summary = describe(results.runs, ["variant", "point", *paths], metrics)
    regimes = metastability_map(results.runs, paths)
    if out is not None:
        summary.to_parquet(Path(out) / "summary.parquet", index=False)
        regimes.to_parquet(Path(out) / "regimes.parquet", index=False)
    return Sweep(results.runs, results.events, summary, regimes)


# --------------------------------------------------------------------------- statistics


def _values(column: pd.Series) -> list[float]:
    """A metric's values as floats: booleans as 0/1, missing (None) as NaN."""
    return [math.nan if v is None or pd.isna(v) else float(v) for v in column]


def describe(
    runs: pd.DataFrame, by: Sequence[str], metrics: Sequence[str] = METRICS
) -> pd.DataFrame:
    """Mean and 95% t interval of each metric over the replications of each group.

    Failed replications (an ``error``) are left out, and so are a metric's missing values.

    Returns:
        ``*by, metric, n, mean, low, high``, groups in their order of appearance.
    """
    done = runs[[_ok(e) for e in runs["error"]]] if len(runs) else runs
    rows = []
    for keys, group in done.groupby(list(by), sort=False, dropna=False):
        labels = dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True))
        for metric in metrics:
            if metric in group:
                interval = mean_interval(_values(group[metric]))
                rows.append(
                    labels
                    | {"metric": metric, "n": interval.n, "mean": interval.mean}
                    | {"low": interval.low, "high": interval.high}
                )
    return pd.DataFrame(rows, columns=[*by, "metric", "n", "mean", "low", "high"])


def comparison_stats(
    runs: pd.DataFrame, reference: str, metrics: Sequence[str] = METRICS
) -> pd.DataFrame:
    """Each variant's mean per metric, and its paired difference with ``reference``.

    Pairs are replications of the same point and seed (common random numbers) where neither
    failed nor misses the metric; ``significant`` when the 95% interval of the mean paired
    difference excludes 0.
    """
    means = describe(runs, ["variant"], metrics)
    done = runs[[_ok(e) for e in runs["error"]]]
    by_key = {
        variant: group.set_index(["point", "seed"])
        for variant, group in done.groupby("variant", sort=False)
    }
    rows = []
    for record in means.to_dict("records"):
        variant, metric = record["variant"], record["metric"]
        treated, reference_runs = by_key.get(variant), by_key.get(reference)
        if variant == reference or treated is None or reference_runs is None:
            rows.append(record | _NO_DIFFERENCE)
            continue
        common = treated.index.intersection(reference_runs.index)
        difference = paired_difference(
            _values(treated.loc[common, metric]), _values(reference_runs.loc[common, metric])
        )
        rows.append(
            record
            | {"diff_n": difference.n, "diff": difference.mean}
            | {"diff_low": difference.low, "diff_high": difference.high}
            | {"significant": difference.significant}
        )
    columns = [*means.columns, "diff_n", "diff", "diff_low", "diff_high", "significant"]
    return pd.DataFrame(rows, columns=columns)


_NO_DIFFERENCE = {
    "diff_n": 0,
    "diff": math.nan,
    "diff_low": math.nan,
    "diff_high": math.nan,
    "significant": False,
}
