"""The recorder: bounded memory, histogram accuracy, the event-log cap, exports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import load_scenario, run
from sim.recorder import (
    BUCKETS_PER_DECADE,
    N_OUTCOMES,
    EntityStats,
    Recorder,
    bucket_of,
    percentile,
)


def _stored(recorder: Recorder) -> tuple[int, int]:
    """How many numbers the recorder holds: (fixed per-bin slots, histogram entries)."""
    slots = sum(len(series) for series in recorder.gauges.values()) + len(recorder.events)
    entries = 0
    for stats in recorder.stats.values():
        slots += len(stats.counts) + len(stats.lat_sum) + len(stats.wait_sum)
        slots += len(stats.wait_n) + len(stats.area) + len(stats.hist)
        entries += sum(len(h) for h in stats.hist)
    return slots, entries


def test_recording_does_not_grow_with_the_number_of_requests():
    """Same number of bins, 4x the requests: the same slots; histograms stay within their range.

    A histogram holds at most one entry per bucket it has seen, 20 per decade: a bin's latencies
    between 1 µs and 10^4 s fill at most 200 entries, however many requests end in it.
    """
    from sim.world import World

    scenario = load_scenario("mmc-queue")
    short = scenario.with_overrides({"duration": 100, "recording.bin": 1})
    long = scenario.with_overrides({"duration": 400, "recording.bin": 4})
    worlds = [World(short), World(long)]
    results = [w.run() for w in worlds]
    assert results[1].summary["arrivals"] > 3.5 * results[0].summary["arrivals"]
    (slots_short, _), (slots_long, entries_long) = (_stored(w.recorder) for w in worlds)
    assert slots_long == slots_short
    recorder = worlds[1].recorder
    assert entries_long <= len(recorder.stats) * recorder.n_bins * 10 * BUCKETS_PER_DECADE


def test_histogram_percentiles_are_within_six_percent():
    """Log buckets, 20 per decade: every percentile is within ±6% of the exact one."""
    rng = np.random.default_rng(7)
    samples = rng.lognormal(math.log(0.05), 0.8, 50_000)
    histogram: dict[int, int] = {}
    for value in samples:
        key = bucket_of(float(value))
        histogram[key] = histogram.get(key, 0) + 1
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = float(np.quantile(samples, q))
        assert percentile(histogram, q) == pytest.approx(
            exact, rel=10 ** (1 / BUCKETS_PER_DECADE) - 1
        )


def test_record_keeps_exact_sums_and_counts_per_bin():
    """Counts per outcome and latency sums land in the bin of the finishing time."""
    stats = EntityStats("svc", n_bins=3, bin_width=1.0)
    stats.record(0.5, 0, 0.25)
    stats.record(1.5, 0, 0.5)
    stats.record(1.7, 3, 0.1)  # shed: counted, no latency
    stats.record(3.0, 0, 1.0)  # the end instant belongs to the last bin
    assert [stats.lat_sum[i] for i in range(3)] == [0.25, 0.5, 1.0]
    assert stats.counts[1 * N_OUTCOMES + 3] == 1


def test_in_system_is_integrated_exactly_across_bins():
    """One request from 0.5 to 2.25: in-system averages 0.5, 1, 0.25 over three 1 s bins."""
    stats = EntityStats("svc", n_bins=3, bin_width=1.0)
    stats.change(0.5, 1)
    stats.close_bin(0, 1.0)
    stats.close_bin(1, 2.0)
    stats.change(2.25, -1)
    stats.close_bin(2, 3.0)
    assert stats.area == [0.5, 1.0, 0.25]


def test_event_log_is_capped_and_counts_what_it_dropped():
    """Past max_events rows the log keeps nothing more, and says how many it dropped."""
    recorder = Recorder(duration=10, bin_width=1, max_events=2, entities=["client"])
    for i in range(5):
        recorder.event(float(i), "node-a", "x", "k", f"line {i}")
    assert [e.detail for e in recorder.events] == ["line 0", "line 1"]
    assert recorder.dropped_events == 3


def test_results_export_to_parquet_csv_and_json(tmp_path: Path):
    """Every table is written in each format and reads back equal; summary.json is the summary."""
    result = run("three-tier", duration=65)
    out = result.save(tmp_path / "out", formats=("parquet", "csv", "json"))
    for table in ("services", "timeseries", "events", "failures", "entities", "latency"):
        frame = getattr(result, table)
        back = pd.read_parquet(out / f"{table}.parquet")
        pd.testing.assert_frame_equal(back, frame, check_dtype=False)
        assert len(pd.read_csv(out / f"{table}.csv")) == len(frame)
        assert len(pd.read_json(out / f"{table}.json", orient="records")) == len(frame)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arrivals"] == result.summary["arrivals"]
    assert summary["outcomes"] == result.summary["outcomes"]


def test_save_rejects_an_unknown_format(tmp_path: Path):
    """An unknown export format is a clear error, not a silent skip."""
    result = run("three-tier", duration=61)
    with pytest.raises(ValueError, match="unknown format 'xlsx'"):
        result.save(tmp_path, formats=("xlsx",))
