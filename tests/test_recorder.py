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
    bin_percentiles,
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
        entries += stats.n_entries
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


def test_closing_a_bin_packs_the_histogram_of_the_one_before():
    """Closing bin i packs bin i - 1; closing the last bin packs the rest.

    A record at the very end of bin i may still land in it through rounding, so bin i stays a
    dict until bin i + 1 is closed. Packed or not, a bin reads back the same histogram.
    """
    stats = EntityStats("svc", n_bins=4, bin_width=1.0)
    stats.record(0.5, 0, 0.25)
    stats.record(0.7, 1, 0.25)
    stats.record(0.9, 0, 2e-3)
    stats.record(1.5, 0, 1e-7)  # under 1 µs: bucket 0
    stats.record(3.5, 0, 0.5)
    expected = [{bucket_of(0.25): 2, bucket_of(2e-3): 1}, {0: 1}, {}, {bucket_of(0.5): 1}]
    stats.close_bin(0, 1.0)
    assert stats.packed == 0
    stats.close_bin(1, 2.0)
    assert stats.packed == 1
    assert [stats.histogram(i) for i in range(4)] == expected
    with pytest.raises(RuntimeError, match="already packed"):
        stats.record(0.95, 0, 0.1)
    stats.record(1.99, 0, 0.25)  # bin 1 was closed, not packed: it still counts
    expected[1][bucket_of(0.25)] = 1
    stats.close_bin(2, 3.0)
    stats.close_bin(3, 4.0)
    assert stats.packed == 4
    assert [stats.histogram(i) for i in range(4)] == expected
    assert list(stats.buckets) == [key for hist in expected for key in sorted(hist)]
    assert stats.merged(0, 2) == {bucket_of(0.25): 3, bucket_of(2e-3): 1, 0: 1}
    assert stats.merged(2, 99) == expected[3]


def test_entries_and_bin_percentiles_read_packed_and_open_bins_alike():
    """Every (bin, bucket, count), packed bins then open ones; percentiles as percentile()."""
    rng = np.random.default_rng(3)
    stats = EntityStats("svc", n_bins=6, bin_width=0.5)
    for now in np.sort(rng.uniform(0, 3, 2000)):
        stats.record(float(now), 0, float(rng.lognormal(math.log(0.05), 1.0)))
    stats.pack(2)  # bins 0-2 packed, 3-5 still dicts
    bins, buckets, counts = stats.entries()
    assert len(bins) == stats.n_entries
    rebuilt: list[dict[int, int]] = [{} for _ in range(6)]
    for i, key, count in zip(bins, buckets, counts, strict=True):
        rebuilt[int(i)][int(key)] = int(count)
    assert rebuilt == [stats.histogram(i) for i in range(6)]
    for q in (0.5, 0.99, 1.0):
        exact = [percentile(stats.histogram(i), q) for i in range(6)]
        assert bin_percentiles(6, bins, buckets, counts, q).tolist() == exact
    empty = bin_percentiles(3, *EntityStats("none", 3, 1.0).entries(), 0.5)
    assert np.isnan(empty).all()


def test_entries_read_mid_run_do_not_stop_later_bins_from_packing():
    """Before every bin is packed, entries() gives copies: packing goes on while they are held."""
    stats = EntityStats("svc", n_bins=4, bin_width=1.0)
    stats.record(0.5, 0, 0.25)
    stats.close_bin(0, 1.0)
    stats.close_bin(1, 2.0)
    held = stats.entries()
    stats.record(2.5, 0, 0.5)
    stats.close_bin(2, 3.0)
    stats.close_bin(3, 4.0)  # packs bins 1-3 into the arrays held[1] and held[2] came from
    assert [a.tolist() for a in held] == [[0], [bucket_of(0.25)], [1]]
    after = stats.entries()  # every bin packed: views, nothing more will be appended
    assert [a.tolist() for a in after] == [[0, 2], [bucket_of(0.25), bucket_of(0.5)], [1, 1]]
    assert after[1].base is not None


def test_tables_store_names_as_categories_and_small_integers():
    """The names are Categoricals (sorted categories), bucket int16, count int32."""
    result = run("three-tier", duration=61)
    series, latency = result.timeseries, result.latency
    for column in (series["entity"], series["metric"], latency["entity"]):
        assert isinstance(column.dtype, pd.CategoricalDtype)
        assert list(column.cat.categories) == sorted(set(column.astype(str)))
    assert str(series["t"].dtype) == str(series["value"].dtype) == "float64"
    assert (str(latency["bucket"].dtype), str(latency["count"].dtype)) == ("int16", "int32")


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
