"""Bounded recording of a run, and the :class:`RunResult` built from it.

What is kept (``../shared/DESIGN.md`` §2.6), all of it sized by the number of time bins, never by
the number of requests:

* per entity (each service, plus ``client`` for what the users see) and per time bin (default
  1 s): a counter per :class:`~sim.request.Outcome`; for successful requests (``ok`` and
  ``degraded``) the latency sum and a sparse histogram over fixed log-spaced buckets (20 per
  decade from 1 µs, so a percentile is within ±6% of the truth), packed into flat arrays once
  the bin is over (:class:`EntityStats`); the queue-wait sum and count;
  the time-integral of the number of requests in the entity (queued + in service), so the bin's
  mean in-system count is exact (Little's law holds to rounding);
* gauges sampled at the end of each bin (instance states, queue lengths, in-flight, memory per
  cgroup and host with the peak seen within the bin);
* an event log of discrete events with the line the real system would print, capped at
  ``recording.max_events`` rows (the number dropped is reported);
* why requests failed: per request class, the service and outcome where the failure started.

Results are pandas DataFrames (names as Categoricals, see :class:`RunResult`), exported to
Parquet, CSV or JSON.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


def bucket_values(count: int) -> np.ndarray:
    """:func:`bucket_value` of buckets ``0 .. count - 1``, as an array (the very same floats)."""
    return np.array([bucket_value(index) for index in range(count)])


def bin_percentiles(
    n_bins: int, bins: np.ndarray, buckets: np.ndarray, counts: np.ndarray, q: float
) -> np.ndarray:
    """The ``q``-quantile of each of ``n_bins`` histograms given as :meth:`EntityStats.entries`.

    Exactly :func:`percentile` of each bin's histogram (NaN for an empty bin), for all bins at
    once: the first bucket of a bin where the running count reaches ``q`` times its total.
    """
    result = np.full(n_bins, math.nan)
    if not len(bins):
        return result
    totals = np.bincount(bins, weights=counts, minlength=n_bins)
    before = np.cumsum(totals) - totals  # requests in the bins before each one
    seen = np.cumsum(counts, dtype=np.int64) - before[bins]
    below = np.bincount(bins[seen < q * totals[bins]], minlength=n_bins)
    sizes = np.bincount(bins, minlength=n_bins)
    first = np.cumsum(sizes) - sizes  # where each bin's entries start
    has = sizes > 0
    index = buckets[np.minimum(first + below, first + sizes - 1)[has]]
    values = bucket_values(int(index.max()) + 1)
    result[has] = values[index]
    return result


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


class _Packed(dict[int, int]):
    """Stands in :attr:`EntityStats.hist` for a bin whose histogram was packed: writing is a bug."""

    __slots__ = ()

    def __setitem__(self, key: int, value: int) -> None:
        raise RuntimeError("a latency was recorded in a bin whose histogram is already packed")


PACKED = _Packed()
"""The one placeholder of every packed bin in :attr:`EntityStats.hist`."""


class EntityStats:
    """Per-bin counters of one entity (a service, or the client); the hot path writes here.

    The latency histogram of the bin being recorded is a dict (``hist[index]``, bucket ->
    count): cheap to update. Once no request can land in a bin any more, its histogram is
    *packed*: appended to three flat arrays (``buckets`` and ``bucket_counts``, bucket order,
    and ``offsets``: bin ``i``'s entries are ``offsets[i]:offsets[i + 1]``), 6 bytes an entry
    instead of a dict (a long run's histograms were most of what it recorded). Read a bin's
    histogram with :meth:`histogram`, a range's with :meth:`merged`, every entry with
    :meth:`entries`: never through ``hist``, which holds :data:`PACKED` for a packed bin.
    """

    __slots__ = (
        "area",
        "bucket_counts",
        "buckets",
        "counts",
        "hist",
        "in_system",
        "inv_width",
        "last",
        "lat_sum",
        "n_bins",
        "name",
        "offsets",
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
        self.buckets = array("h")
        self.bucket_counts = array("i")
        self.offsets = array("q", [0])
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
        """Integrate the in-system count up to the end of bin ``index``; pack a histogram.

        The bin packed is the one before ``index``: a request finishing at the very end of bin
        ``index`` may still land in it through rounding. Closing the last bin ends the run, and
        packs it too.
        """
        self.area[index] += self.in_system * (end - self.last)
        self.last = end
        self.pack(index if index == self.n_bins - 1 else index - 1)

    @property
    def packed(self) -> int:
        """How many bins, from the first, have their histogram packed."""
        return len(self.offsets) - 1

    def pack(self, index: int) -> None:
        """Pack the histograms of the bins up to ``index`` (included), in order."""
        for i in range(self.packed, min(index + 1, self.n_bins)):
            hist = self.hist[i]
            keys = sorted(hist)
            self.buckets.extend(keys)
            self.bucket_counts.extend([hist[key] for key in keys])
            self.offsets.append(len(self.buckets))
            self.hist[i] = PACKED

    def histogram(self, index: int) -> dict[int, int]:
        """Bin ``index``'s latency histogram, bucket -> count (not to be modified)."""
        if index < self.packed:
            start, end = self.offsets[index], self.offsets[index + 1]
            return dict(zip(self.buckets[start:end], self.bucket_counts[start:end], strict=True))
        return self.hist[index]

    def merged(self, first: int, last: int) -> dict[int, int]:
        """The latency histogram of bins ``first`` to ``last`` (excluded) together."""
        merged: dict[int, int] = {}
        for index in range(first, min(last, self.n_bins)):
            for key, count in self.histogram(index).items():
                merged[key] = merged.get(key, 0) + count
        return merged

    @property
    def n_entries(self) -> int:
        """How many non-empty buckets the histograms of all bins have together."""
        return len(self.buckets) + sum(len(self.hist[i]) for i in range(self.packed, self.n_bins))

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every bin's non-empty buckets, bin by bin in bucket order: ``(bin, bucket, count)``.

        Views of the packed arrays when every bin is packed (as after a run; a view held while
        more bins are packed would stop the arrays from growing), copies before.
        """
        bins = np.repeat(np.arange(self.packed), np.diff(self.offsets))
        buckets = np.frombuffer(self.buckets, np.int16)
        counts = np.frombuffer(self.bucket_counts, np.int32)
        if self.packed < self.n_bins:
            buckets, counts = buckets.copy(), counts.copy()
        tail = [
            (i, key, count)
            for i in range(self.packed, self.n_bins)
            for key, count in sorted(self.hist[i].items())
        ]
        if not tail:
            return bins, buckets, counts
        more = np.array(tail, dtype=np.int64)
        return (
            np.concatenate([bins, more[:, 0]]),
            np.concatenate([buckets, more[:, 1]]),
            np.concatenate([counts, more[:, 2]]),
        )


class Names:
    """The names of a table column, stored as small integer codes: a pandas Categorical.

    The categories are sorted, so sorting or grouping by the column orders the names as strings.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        self.codes = {name: code for code, name in enumerate(self.names)}
        size = len(self.names)
        # pandas keeps int8 codes below 127 categories, int16 below 32767 (else it copies them)
        self.dtype = np.int8 if size < 127 else np.int16 if size < 32767 else np.int32
        """The dtype of the codes: the smallest pandas keeps."""

    def decode(self, codes: np.ndarray) -> pd.Categorical:
        """The column of ``codes`` (of :attr:`dtype`, used as they are)."""
        return pd.Categorical.from_codes(codes, categories=pd.Index(self.names, dtype="str"))


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
        entities first, then each gauge's series). The columns are allocated once at their size
        and filled in place, the names as codes (:class:`Names`): a long run's table is the
        biggest thing a run allocates.
        """
        n = self.n_bins
        width = self.bin_width
        starts = np.arange(n) * width
        spans = np.minimum(width, self.duration - starts)
        metrics = [*(f"rate.{o.label}" for o in OUTCOMES)]
        metrics += ["latency_mean", "latency_p50", "latency_p99", "in_system"]
        k = len(metrics)
        entities = Names([*self.stats, *(entity for entity, _ in self.gauges)])
        names = Names([*metrics, *(metric for _, metric in self.gauges)])
        size = n * (k * len(self.stats) + len(self.gauges))
        t = np.empty(size)
        entity = np.empty(size, entities.dtype)
        metric = np.empty(size, names.dtype)
        value = np.empty(size)
        per_bin = np.array([names.codes[m] for m in metrics], names.dtype)
        row = 0
        for name, stats in self.stats.items():
            rows = slice(row, row + n * k)
            row += n * k
            t[rows].reshape(n, k)[:] = starts[:, None]
            entity[rows] = entities.codes[name]
            metric[rows].reshape(n, k)[:] = per_bin
            block = value[rows].reshape(n, k)
            counts = np.array(stats.counts, dtype=float).reshape(n, N_OUTCOMES)
            block[:, :N_OUTCOMES] = counts / spans[:, None]
            good = counts[:, 0] + counts[:, 1]
            block[:, N_OUTCOMES] = np.divide(
                np.array(stats.lat_sum), good, out=np.full(n, math.nan), where=good > 0
            )
            bins, buckets, hits = stats.entries()
            block[:, N_OUTCOMES + 1] = bin_percentiles(n, bins, buckets, hits, 0.50)
            block[:, N_OUTCOMES + 2] = bin_percentiles(n, bins, buckets, hits, 0.99)
            block[:, N_OUTCOMES + 3] = np.array(stats.area) / spans
        for (name, gauge), series in self.gauges.items():
            rows = slice(row, row + n)
            row += n
            t[rows] = starts
            entity[rows] = entities.codes[name]
            metric[rows] = names.codes[gauge]
            value[rows] = series
        return pd.DataFrame(
            {
                "t": t,
                "entity": entities.decode(entity),
                "metric": names.decode(metric),
                "value": value,
            },
            copy=False,
        )

    def latency_histograms(self) -> pd.DataFrame:
        """The latency histogram of each bin's successful requests: ``t, entity, bucket, count``.

        Sparse (non-empty buckets only), bin by bin in bucket order, entity by entity. Summing
        bins merges histograms exactly, so a rolling window's percentile (``sim/analysis.py``)
        is as good as a single bin's.
        """
        entities = Names(self.stats)
        size = sum(stats.n_entries for stats in self.stats.values())
        t = np.empty(size)
        entity = np.empty(size, entities.dtype)
        bucket = np.empty(size, np.int16)
        count = np.empty(size, np.int32)
        row = 0
        for name, stats in self.stats.items():
            bins, buckets, counts = stats.entries()
            rows = slice(row, row + len(bins))
            row += len(bins)
            np.multiply(bins, self.bin_width, out=t[rows])
            entity[rows] = entities.codes[name]
            bucket[rows] = buckets
            count[rows] = counts
        return pd.DataFrame(
            {"t": t, "entity": entities.decode(entity), "bucket": bucket, "count": count},
            copy=False,
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
        totals: list[int] = np.array(stats.counts).reshape(-1, N_OUTCOMES).sum(axis=0).tolist()
        _, buckets, counts = stats.entries()
        whole = np.bincount(buckets, weights=counts).astype(np.int64)  # exact below 2**53
        histogram = {int(key): int(whole[key]) for key in np.flatnonzero(whole)}
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
        timeseries: tidy long DataFrame ``t, entity, metric, value``: ``t`` (bin start, s) and
            ``value`` float64; ``entity`` and ``metric`` pandas Categoricals of str with sorted
            categories (one byte a row; compare with ``==``, ``isin``, ``.str``; ``.astype(str)``
            gives plain strings).
        events: the event log ``t, host, entity, kind, detail``.
        failures: why requests failed: ``class, where, cause, outcome, count``.
        entities: what each entity name is: ``entity, kind, service, host`` (kinds: client,
            service, instance, edge, host).
        latency: per-bin latency histograms of successful requests: ``t, entity, bucket, count``
            (bucket as :func:`bucket_of`; what SLO windows are evaluated on): ``t`` float64,
            ``entity`` a Categorical as in ``timeseries``, ``bucket`` int16, ``count`` int32
            (a sum over rows is int64).
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
