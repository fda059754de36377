"""Bounded recording of a run, and the :class:`RunResult` built from it.

What is kept (``../shared/DESIGN.md`` §2.6), all of it sized by the number of time bins, never by
the number of requests:

* per entity (each service, plus ``client`` for what the users see) and per time bin (default
  1 s): a counter per :class:`~sim.request.Outcome`; for successful requests (``ok`` and
  ``degraded``) the latency sum and a sparse histogram over fixed log-spaced buckets (20 per
  decade from 1 µs, so a percentile is within ±6% of the truth); the queue-wait sum and count;
  the time-integral of the number of requests in the entity (queued + in service), so the bin's
  mean in-system count is exact (Little's law holds to rounding);
* gauges sampled at the end of each bin (instance states, queue lengths, in-flight, memory per
  cgroup and host with the peak seen within the bin);
* an event log of discrete events with the line the real system would print, capped at
  ``recording.max_events`` rows (the number dropped is reported);
* why requests failed: per request class, the service and outcome where the failure started.

Results are pandas DataFrames, exported to Parquet, CSV or JSON.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.request import OUTCOMES

N_OUTCOMES = len(OUTCOMES)
BUCKETS_PER_DECADE = 20
BUCKET_FLOOR = 1e-6
"""Latencies below 1 µs share bucket 0."""

CLIENT = "client"
"""Entity name of the users' view (the outcome and latency each arrival sees)."""


def bin_count(duration: float, bin_width: float) -> int:
    """How many bins of ``bin_width`` cover ``duration`` (the last one may be shorter)."""
    return max(1, math.ceil(duration / bin_width - 1e-9))


def bucket_of(latency: float) -> int:
    """Histogram bucket of a latency in seconds."""
    if latency <= BUCKET_FLOOR:
        return 0
    return int(math.log10(latency / BUCKET_FLOOR) * BUCKETS_PER_DECADE)


def bucket_value(index: int) -> float:
    """The representative latency of a bucket (its geometric middle)."""
    return float(BUCKET_FLOOR * 10 ** ((index + 0.5) / BUCKETS_PER_DECADE))


def percentile(histogram: dict[int, int], q: float) -> float:
    """The ``q``-quantile (0..1) of a bucket histogram; NaN when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return math.nan
    rank = q * total
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(max(histogram))


class EntityStats:
    """Per-bin counters of one entity (a service, or the client); the hot path writes here."""

    __slots__ = (
        "area",
        "counts",
        "hist",
        "in_system",
        "inv_width",
        "last",
        "lat_sum",
        "n_bins",
        "name",
        "wait_n",
        "wait_sum",
    )

    def __init__(self, name: str, n_bins: int, bin_width: float) -> None:
        self.name = name
        self.n_bins = n_bins
        self.inv_width = 1.0 / bin_width
        self.counts = [0] * (n_bins * N_OUTCOMES)
        self.lat_sum = [0.0] * n_bins
        self.hist: list[dict[int, int]] = [{} for _ in range(n_bins)]
        self.wait_sum = [0.0] * n_bins
        self.wait_n = [0] * n_bins
        self.area = [0.0] * n_bins
        self.in_system = 0
        self.last = 0.0

    def record(self, now: float, outcome: int, latency: float, leaving: bool = False) -> None:
        """Count one finished request (or hop) with its latency.

        ``leaving``: it also leaves the entity (``change(now, -1)`` in the same pass).

        The bin index and :func:`bucket_of` are computed inline here and in :meth:`waited` and
        :meth:`change`: these run on every hop, where a function call is a measurable cost.
        """
        index = int(now * self.inv_width)
        if index >= self.n_bins:
            index = self.n_bins - 1
        if leaving:
            self.area[index] += self.in_system * (now - self.last)
            self.last = now
            self.in_system -= 1
        self.counts[index * N_OUTCOMES + outcome] += 1
        if outcome <= 1:  # ok or degraded
            self.lat_sum[index] += latency
            hist = self.hist[index]
            key = (
                int(math.log10(latency * 1e6) * BUCKETS_PER_DECADE) if latency > BUCKET_FLOOR else 0
            )
            hist[key] = hist.get(key, 0) + 1

    def waited(self, now: float, wait: float) -> None:
        """Add one queue wait (time from arrival at the instance to a worker; 0 when none)."""
        index = int(now * self.inv_width)
        if index >= self.n_bins:
            index = self.n_bins - 1
        self.wait_sum[index] += wait
        self.wait_n[index] += 1

    def change(self, now: float, delta: int) -> None:
        """The number of requests in the entity changes by ``delta`` at ``now``."""
        index = int(now * self.inv_width)
        if index >= self.n_bins:
            index = self.n_bins - 1
        self.area[index] += self.in_system * (now - self.last)
        self.last = now
        self.in_system += delta

    def enter(self, now: float, served: bool) -> None:
        """A request enters the entity at ``now``: :meth:`change` by one.

        ``served``: a worker took it at once, so it also counts a queue wait of zero (as
        ``waited(now, 0.0)`` would), in the same pass.
        """
        index = int(now * self.inv_width)
        if index >= self.n_bins:
            index = self.n_bins - 1
        self.area[index] += self.in_system * (now - self.last)
        self.last = now
        self.in_system += 1
        if served:
            self.wait_n[index] += 1

    def close_bin(self, index: int, end: float) -> None:
        """Integrate the in-system count up to the end of bin ``index``."""
        self.area[index] += self.in_system * (end - self.last)
        self.last = end


class Names:
    """Names coded as small integers, decoded into a string column by Arrow in one pass."""

    def __init__(self, names: list[str] | None = None) -> None:
        self.names: list[str] = []
        self._codes: dict[str, int] = {}
        for name in names or []:
            self.code(name)

    def code(self, name: str) -> int:
        """The code of ``name`` (a new one the first time)."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.names)
            self.names.append(name)
        return code

    def decode(self, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """The names of ``codes`` as pandas' default string column (no Python str per row)."""
        column = pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32()), pa.array(self.names, pa.string())
        ).cast(pa.string())
        decoded: pd.api.extensions.ExtensionArray = pd.array(
            column, dtype=pd.StringDtype("pyarrow", na_value=math.nan)
        )
        return decoded


@dataclass
class EventRow:
    """One row of the event log."""

    t: float
    host: str
    entity: str
    kind: str
    detail: str


class Recorder:
    """Owns every :class:`EntityStats`, the gauges and the event log of one run."""

    def __init__(
        self, duration: float, bin_width: float, max_events: int, entities: list[str]
    ) -> None:
        self.bin_width = bin_width
        self.n_bins = bin_count(duration, bin_width)
        self.duration = duration
        self.stats = {name: EntityStats(name, self.n_bins, bin_width) for name in entities}
        self.gauges: dict[tuple[str, str], array[float]] = {}
        """Sampled gauges, one compact array of floats (8 bytes a bin) per entity and metric."""
        self.events: list[EventRow] = []
        self.max_events = max_events
        self.dropped_events = 0
        self.why: Counter[tuple[str, str, str, str]] = Counter()
        self.arrivals = 0

    def event(self, t: float, host: str, entity: str, kind: str, detail: str) -> None:
        """Log a discrete event with the line a real system would print."""
        if len(self.events) < self.max_events:
            self.events.append(EventRow(t, host, entity, kind, detail))
        else:
            self.dropped_events += 1

    def gauge(self, index: int, entity: str, metric: str, value: float) -> None:
        """Set a sampled gauge for bin ``index``."""
        series = self.gauges.get((entity, metric))
        if series is None:
            series = self.gauges[(entity, metric)] = array("d", [math.nan]) * self.n_bins
        series[index] = value

    def close_bin(self, index: int, end: float) -> None:
        """Close bin ``index`` of every entity at time ``end``."""
        for stats in self.stats.values():
            stats.close_bin(index, end)

    # ------------------------------------------------------------------ results

    def timeseries(self) -> pd.DataFrame:
        """Tidy long table: one row per bin start ``t``, ``entity`` and ``metric``.

        Rows run entity by entity, bin by bin, the metrics of a bin together (the counters'
        entities first, then each gauge's series). Built column by column, with no Python object
        per row (the names are codes that Arrow decodes): a long run's table is the biggest
        thing a run allocates.
        """
        n = self.n_bins
        width = self.bin_width
        starts = np.arange(n) * width
        spans = np.minimum(width, self.duration - starts)
        metrics = [*(f"rate.{o.label}" for o in OUTCOMES)]
        metrics += ["latency_mean", "latency_p50", "latency_p99", "in_system"]
        k = len(metrics)
        entities = Names()
        names = Names(metrics)
        columns: dict[str, list[np.ndarray]] = {"t": [], "entity": [], "metric": [], "value": []}

        def add(t: np.ndarray, entity: str, metric: np.ndarray, value: np.ndarray) -> None:
            columns["t"].append(t)
            columns["entity"].append(np.full(len(value), entities.code(entity), np.int32))
            columns["metric"].append(metric)
            columns["value"].append(value)

        per_bin = np.tile(np.arange(k, dtype=np.int32), n)
        for name, stats in self.stats.items():
            counts = np.array(stats.counts, dtype=float).reshape(n, N_OUTCOMES)
            block = np.empty((n, k))
            block[:, :N_OUTCOMES] = counts / spans[:, None]
            good = counts[:, 0] + counts[:, 1]
            block[:, N_OUTCOMES] = np.divide(
                np.array(stats.lat_sum), good, out=np.full(n, math.nan), where=good > 0
            )
            block[:, N_OUTCOMES + 1] = [percentile(hist, 0.50) for hist in stats.hist]
            block[:, N_OUTCOMES + 2] = [percentile(hist, 0.99) for hist in stats.hist]
            block[:, N_OUTCOMES + 3] = np.array(stats.area) / spans
            add(np.repeat(starts, k), name, per_bin, block.ravel())
        for (entity, metric), series in self.gauges.items():
            add(starts, entity, np.full(n, names.code(metric), np.int32), np.asarray(series))
        if not columns["t"]:
            return pd.DataFrame(columns=["t", "entity", "metric", "value"])
        joined = {key: np.concatenate(parts) for key, parts in columns.items()}
        return pd.DataFrame(
            {
                "t": joined["t"],
                "entity": entities.decode(joined["entity"]),
                "metric": names.decode(joined["metric"]),
                "value": joined["value"],
            }
        )

    def latency_histograms(self) -> pd.DataFrame:
        """The latency histogram of each bin's successful requests: ``t, entity, bucket, count``.

        Sparse (non-empty buckets only). Summing bins merges histograms exactly, so a rolling
        window's percentile (``sim/analysis.py``) is as good as a single bin's.
        """
        width = self.bin_width
        index = array("q")
        entity = array("i")
        bucket = array("q")
        count = array("q")
        entities = Names()
        for name, stats in self.stats.items():
            code = entities.code(name)
            for i, hist in enumerate(stats.hist):
                for key in sorted(hist):
                    index.append(i)
                    entity.append(code)
                    bucket.append(key)
                    count.append(hist[key])
        return pd.DataFrame(
            {
                "t": np.frombuffer(index, dtype=np.int64) * width,
                "entity": entities.decode(np.frombuffer(entity, dtype=np.int32)),
                "bucket": np.frombuffer(bucket, dtype=np.int64),
                "count": np.frombuffer(count, dtype=np.int64),
            }
        )

    def events_frame(self) -> pd.DataFrame:
        """The event log as a DataFrame (``t, host, entity, kind, detail``)."""
        return pd.DataFrame(
            [(e.t, e.host, e.entity, e.kind, e.detail) for e in self.events],
            columns=["t", "host", "entity", "kind", "detail"],
        )

    def entity_summary(self, name: str) -> dict[str, Any]:
        """Whole-run figures of one entity."""
        stats = self.stats[name]
        totals = [0] * N_OUTCOMES
        for index in range(self.n_bins):
            base = index * N_OUTCOMES
            for outcome in range(N_OUTCOMES):
                totals[outcome] += stats.counts[base + outcome]
        histogram: Counter[int] = Counter()
        for hist in stats.hist:
            histogram.update(hist)
        finished = sum(totals)
        good = totals[0] + totals[1]
        waits = sum(stats.wait_n)
        row: dict[str, Any] = {
            "entity": name,
            "requests": finished,
            "availability": good / finished if finished else math.nan,
            "latency_mean": sum(stats.lat_sum) / good if good else math.nan,
            "latency_p50": percentile(histogram, 0.50),
            "latency_p95": percentile(histogram, 0.95),
            "latency_p99": percentile(histogram, 0.99),
            "wait_mean": sum(stats.wait_sum) / waits if waits else math.nan,
            "in_system_mean": sum(stats.area) / self.duration,
        }
        for outcome in OUTCOMES:
            row[outcome.label] = totals[outcome]
        return row


@dataclass
class RunResult:
    """What one run produced: summary, time series, events, plus what was run.

    Attributes:
        scenario: the scenario name.
        variant: the variant applied (``None`` for the base scenario).
        seed: the run's seed.
        summary: headline figures (JSON-safe dict).
        services: one row per entity (``client`` first, then each service).
        timeseries: tidy long DataFrame ``t, entity, metric, value``.
        events: the event log ``t, host, entity, kind, detail``.
        failures: why requests failed: ``class, where, cause, outcome, count``.
        entities: what each entity name is: ``entity, kind, service, host`` (kinds: client,
            service, instance, edge, host).
        latency: per-bin latency histograms of successful requests: ``t, entity, bucket, count``
            (bucket as :func:`bucket_of`; what SLO windows are evaluated on).
    """

    scenario: str
    variant: str | None
    seed: int
    summary: dict[str, Any]
    services: pd.DataFrame
    timeseries: pd.DataFrame
    events: pd.DataFrame
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    entities: pd.DataFrame = field(default_factory=pd.DataFrame)
    latency: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_json(self) -> str:
        """The summary and per-service table as JSON."""
        payload = dict(self.summary)
        payload["services"] = json.loads(self.services.to_json(orient="records"))
        payload["failures"] = json.loads(self.failures.to_json(orient="records"))
        return json.dumps(payload, indent=2, sort_keys=True, allow_nan=False, default=str)

    def save(self, directory: str | Path, formats: tuple[str, ...] = ("parquet", "json")) -> Path:
        """Write every table to ``directory`` in each of ``formats`` (parquet, csv, json)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tables = {
            "services": self.services,
            "timeseries": self.timeseries,
            "events": self.events,
            "failures": self.failures,
            "entities": self.entities,
            "latency": self.latency,
        }
        write_tables(out, tables, formats)
        (out / "summary.json").write_text(self.to_json() + "\n", encoding="utf-8")
        return out


def write_tables(out: Path, tables: dict[str, pd.DataFrame], formats: tuple[str, ...]) -> None:
    """Write each table as ``out/<name>.<format>`` in each of ``formats`` (parquet, csv, json).

    Raises:
        ValueError: an unknown format.
    """
    for fmt in formats:
        for name, frame in tables.items():
            if fmt == "parquet":
                frame.to_parquet(out / f"{name}.parquet", index=False)
            elif fmt == "csv":
                frame.to_csv(out / f"{name}.csv", index=False)
            elif fmt == "json":
                frame.to_json(out / f"{name}.json", orient="records", indent=1)
            else:
                raise ValueError(f"unknown format {fmt!r} (use parquet, csv or json)")
