"""Experiments (``sim/experiment.py``): executors, common random numbers, resuming, statistics.

Most designs here run ``mmc-queue`` (one M/M/4 server) for 30 simulated seconds: about 0.1 s
a replication, so the statistics have data without slowing the suite down.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim import experiment
from sim.experiment import (
    REGIMES,
    ExperimentError,
    compare,
    execute_plan,
    metastability_map,
    plan,
    replicate,
    run,
    sweep,
)
from sim.scenario import ScenarioError, load_scenario
from sim.stats import paired_difference, unpaired_difference

QUEUE = load_scenario("mmc-queue").with_overrides({"duration": 30})


def test_every_executor_gives_identical_tables():
    """Every executor gives the same tables for the same seeds.

    Serial, a spawn process pool and a real Dask cluster (two worker processes, reached by its
    address).
    """
    distributed = pytest.importorskip("distributed")
    design = {"variants": ["baseline", "mm1"], "reps": 2}
    serial = compare(QUEUE, **design, executor="serial")
    pool = compare(QUEUE, **design, executor="process", jobs=2)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        dask = compare(QUEUE, **design, executor=f"dask://{cluster.scheduler_address}", jobs=2)
    finally:
        cluster.close()
    assert serial.runs["error"].isna().all()
    assert serial.runs[["variant", "rep", "seed"]].values.tolist() == [
        ["baseline", 0, 1],
        ["baseline", 1, 2],
        ["mm1", 0, 1],
        ["mm1", 1, 2],
    ]
    for other in (pool, dask):
        pd.testing.assert_frame_equal(other.runs, serial.runs)
        pd.testing.assert_frame_equal(other.events, serial.events)
        pd.testing.assert_frame_equal(other.stats, serial.stats)
    # common random numbers: the variants see the very same arrivals, seed by seed
    by_variant = serial.runs.pivot(index="seed", columns="variant", values="arrivals")
    assert (by_variant["baseline"] == by_variant["mm1"]).all()


def _profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_a_local_dask_cluster_runs_its_workers_without_the_profiler():
    """``dask://local`` shows no dashboard, so its workers do not run Dask's profiler.

    It would sample a run's deep generator stacks every 10 ms, at about 10% of a worker's CPU.
    """
    pytest.importorskip("distributed")
    with experiment.open_executor("dask://local", 1) as (pool, workers):
        in_worker = pool.submit(_profiling).result()
    assert workers == 1
    assert in_worker is False
    assert _profiling() is True  # Dask's default, in this process as before


@pytest.fixture(scope="module")
def eight_reps() -> experiment.Comparison:
    """The baseline (80/s) against light-load (40/s), eight seeds."""
    return compare(QUEUE, ["baseline", "light-load"], reps=8, executor="serial")


def test_resuming_runs_only_what_is_missing(tmp_path: Path, eight_reps: experiment.Comparison):
    """A rerun into the same directory runs only the replications it lacks.

    Three seeds, then eight: only the ten new replications run, and the tables equal a fresh
    eight-seed run's.
    """
    reports: list[tuple[int, int]] = []
    compare(QUEUE, ["baseline", "light-load"], reps=3, executor="serial", out=tmp_path)
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 6
    resumed = compare(
        QUEUE,
        ["baseline", "light-load"],
        reps=8,
        executor="serial",
        out=tmp_path,
        progress=lambda done, total: reports.append((done, total)),
    )
    assert reports[0] == (6, 16)
    assert reports[-1] == (16, 16)
    assert len(reports) == 11
    pd.testing.assert_frame_equal(resumed.runs, eight_reps.runs)
    pd.testing.assert_frame_equal(resumed.events, eight_reps.events)
    on_disk = pd.read_parquet(tmp_path / "runs.parquet")
    assert (
        on_disk[["variant", "seed"]].values.tolist()
        == eight_reps.runs[["variant", "seed"]].values.tolist()
    )
    assert len(pd.read_parquet(tmp_path / "events.parquet")) == len(eight_reps.events)
    assert set(pd.read_parquet(tmp_path / "stats.parquet")["metric"]) == set(experiment.METRICS)


def test_confidence_interval_narrows_as_replications_grow(eight_reps: experiment.Comparison):
    """The paired interval of light-load's p99 difference over 3 seeds holds that over 8."""
    three = compare(QUEUE, ["baseline", "light-load"], reps=3, executor="serial")

    def diff(comparison: experiment.Comparison) -> dict[str, Any]:
        stats = comparison.stats
        row = stats[(stats["variant"] == "light-load") & (stats["metric"] == "latency_p99")]
        return dict(row.iloc[0])

    few, many = diff(three), diff(eight_reps)
    assert (few["diff_n"], many["diff_n"]) == (3, 8)
    assert many["diff_high"] - many["diff_low"] < few["diff_high"] - few["diff_low"]
    assert few["diff_low"] < many["diff_low"] < many["diff_high"] < few["diff_high"]
    assert many["significant"]
    assert many["diff"] < 0  # half the load: a shorter tail


def test_paired_interval_is_tighter_than_unpaired_on_the_same_runs(
    eight_reps: experiment.Comparison,
):
    """Pairing by seed gives a tighter interval than ignoring the pairs.

    Common seeds make the two variants' request counts move together: the paired interval of
    the difference is much narrower than Welch's on the very same numbers.
    """
    runs = eight_reps.runs
    light = runs[runs["variant"] == "light-load"]["completed"].tolist()
    base = runs[runs["variant"] == "baseline"]["completed"].tolist()
    paired, unpaired = paired_difference(light, base), unpaired_difference(light, base)
    assert paired.mean == unpaired.mean
    assert paired.half_width < 0.75 * unpaired.half_width
    stats = eight_reps.stats
    row = stats[(stats["variant"] == "light-load") & (stats["metric"] == "availability")]
    assert row.iloc[0]["diff_n"] == 8


def test_a_failed_replication_is_a_row_and_is_run_again_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A replication that fails is recorded, and retried by the next run.

    An exception in one replication fills its error column; the others go on; the rerun
    retries only that one.
    """
    real = experiment._run_task

    def flaky(task: experiment.Task) -> experiment.Run:
        if task.variant == "mm1" and task.seed == 2:
            raise RuntimeError("boom")
        return real(task)

    monkeypatch.setattr(experiment, "_run_task", flaky)
    first = compare(QUEUE, ["baseline", "mm1"], reps=3, executor="serial", out=tmp_path)
    errors = [None if pd.isna(e) else e for e in first.runs["error"]]
    assert errors == [None, None, None, None, "RuntimeError: boom", None]
    assert pd.isna(first.runs.loc[4, "availability"])
    stats = first.stats.set_index(["variant", "metric"])
    assert stats.loc[("mm1", "latency_p99"), "n"] == 2
    assert stats.loc[("mm1", "latency_p99"), "diff_n"] == 2
    monkeypatch.setattr(experiment, "_run_task", real)
    reports: list[tuple[int, int]] = []
    again = compare(
        QUEUE,
        ["baseline", "mm1"],
        reps=3,
        executor="serial",
        out=tmp_path,
        progress=lambda done, total: reports.append((done, total)),
    )
    assert reports[0] == (5, 6)
    assert again.runs["error"].isna().all()


class _DeadPool(Executor):
    """An executor whose workers are all gone."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(BrokenProcessPool("a worker died"))
        return future


def test_a_lost_worker_is_recorded_in_the_rows():
    """A future that fails (the worker died) becomes an error row, not an exception."""
    tasks = plan(QUEUE, ["baseline"], [{}], reps=2)
    results = execute_plan(tasks, executor=_DeadPool())
    assert results.runs["error"].tolist() == ["BrokenProcessPool: a worker died"] * 2
    assert results.runs["seed"].tolist() == [1, 2]
    assert results.events.empty


def test_sweep_runs_the_grid_on_common_seeds(tmp_path: Path):
    """A sweep runs every point of the grid on the same seeds.

    Two paths x two values: four points, each on seeds 1 and 2; a column per path (text when a
    value is text), the point as JSON, and a summary per point.
    """
    grid = {"services.server.workers": [4, 5], "workload.rate.rate": ["40/s", 60]}
    result = sweep(QUEUE, grid, reps=2, executor="serial", out=tmp_path)
    runs = result.runs
    assert len(runs) == 8
    assert list(runs.columns[:9]) == [
        "scenario",
        "fingerprint",
        "variant",
        "point",
        "services.server.workers",
        "workload.rate.rate",
        "rep",
        "seed",
        "error",
    ]
    assert runs["services.server.workers"].tolist() == [4, 4, 4, 4, 5, 5, 5, 5]
    assert runs["workload.rate.rate"].tolist() == ["40/s", "40/s", "60", "60"] * 2
    assert json.loads(runs["point"].iloc[2]) == {
        "services.server.workers": 4,
        "workload.rate.rate": 60,
    }
    assert runs["seed"].tolist() == [1, 2] * 4
    # the same arrivals at the same rate and seed, whatever the workers
    assert runs["arrivals"].iloc[:4].tolist() == runs["arrivals"].iloc[4:].tolist()
    summary = result.summary
    cell = summary[(summary["metric"] == "latency_p99") & (summary["point"] == runs["point"][0])]
    assert cell["n"].tolist() == [2]
    assert cell["mean"].iloc[0] == pytest.approx(runs["latency_p99"].iloc[:2].mean(), abs=1e-15)
    assert pd.read_parquet(tmp_path / "summary.parquet").shape == summary.shape
    assert pd.read_parquet(tmp_path / "runs.parquet")["workload.rate.rate"].tolist()[:3] == [
        "40/s",
        "40/s",
        "60",
    ]


def test_a_sweep_point_wins_over_its_variant():
    """A point's override beats its variant's: light-load at 95/s is heavy-load."""
    swept = sweep(
        QUEUE, {"workload.rate.rate": ["95/s"]}, reps=1, variants=["light-load"], executor="serial"
    )
    heavy = replicate(QUEUE, "heavy-load", reps=1, executor="serial")
    columns = ["arrivals", "completed", "latency_p99"]
    assert swept.runs[columns].values.tolist() == heavy.runs[columns].values.tolist()
    assert heavy.runs["variant"].tolist() == ["heavy-load"]


def test_results_of_another_scenario_are_not_resumed(tmp_path: Path):
    """An output directory remembers the scenario (a fingerprint): another one is refused."""
    replicate(QUEUE, reps=1, executor="serial", out=tmp_path)
    longer = QUEUE.with_overrides({"duration": 31})
    with pytest.raises(ExperimentError, match="holds results of a different scenario"):
        replicate(longer, reps=1, executor="serial", out=tmp_path)


def test_bad_designs_fail_before_any_run():
    """Unknown executors and variants, bad paths and swept seeds are errors up front."""
    with pytest.raises(ExperimentError, match="unknown executor 'gpu'"):
        replicate(QUEUE, reps=1, executor="gpu")
    with pytest.raises(ScenarioError, match="unknown variant 'nope'"):
        compare(QUEUE, ["baseline", "nope"], reps=1, executor="serial")
    with pytest.raises(ScenarioError, match=r"services\.server\.workers"):
        sweep(QUEUE, {"services.server.workers": [0]}, reps=1, executor="serial")
    with pytest.raises(ExperimentError, match="sweep no 'seed'"):
        sweep(QUEUE, {"seed": [1]}, reps=1, executor="serial")
    with pytest.raises(ExperimentError, match="reps must be at least 1"):
        replicate(QUEUE, reps=0)
    with pytest.raises(ExperimentError, match=r"variant mm1 at point \{\} twice"):
        compare(QUEUE, ["mm1", "mm1"], reps=1, executor="serial")
    with pytest.raises(ExperimentError, match="no point to run"):
        sweep(QUEUE, {"services.server.workers": []}, reps=1, executor="serial")
    with pytest.raises(ExperimentError, match="twice"):
        sweep(QUEUE, {"services.server.workers": [4, 4]}, reps=1, executor="serial")


def test_retry_storm_is_metastable_and_recovers_without_retries():
    """The catalogue's retry storm is metastable; without retries it recovers.

    With three attempts and no budget it stays out of SLO after the 15 s spike is gone
    (metastable, never recovered); without retries it comes back.
    """
    storm = run("retry-storm")
    assert storm.analysis.recovery.metastable is True
    assert storm.analysis.recovery.recovered is False
    assert storm.analysis.blast.impacted == ("frontend", "inventory")
    calm = run("retry-storm", "no-retries")
    assert calm.analysis.recovery.metastable is False
    assert calm.analysis.recovery.recovered is True
    assert calm.result.variant == "no-retries"
    assert calm.scenario.services["frontend"].calls[0].retry.max_attempts == 1  # as run


def test_metastability_map_takes_the_majority_regime_and_the_worse_on_a_tie():
    """Per variant and point, the regime most replications ended in.

    A tie goes to the worse regime; failed replications are left out.
    """
    runs = pd.DataFrame(
        [
            # variant, point, path, metastable, impacted_count, error
            ("budget", "p1", 1.0, False, 0, None),
            ("budget", "p1", 1.0, False, 0, None),
            ("budget", "p1", 1.0, False, 2, None),
            ("budget", "p2", 5.0, True, 2, None),
            ("budget", "p2", 5.0, False, 1, None),
            ("budget", "p2", 5.0, True, 2, "boom"),
            ("none", "p1", 1.0, True, 2, None),
        ],
        columns=["variant", "point", "trigger", "metastable", "impacted_count", "error"],
    )
    table = metastability_map(runs, ["trigger"])
    assert table.to_dict("records") == [
        {
            "variant": "budget",
            "point": "p1",
            "trigger": 1.0,
            "regime": "never impacted",
            "never impacted": 2,
            "recovered": 1,
            "metastable": 0,
        },
        {
            "variant": "budget",
            "point": "p2",
            "trigger": 5.0,
            "regime": "metastable",  # 1 metastable vs 1 recovered: the worse wins
            "never impacted": 0,
            "recovered": 1,
            "metastable": 1,
        },
        {
            "variant": "none",
            "point": "p1",
            "trigger": 1.0,
            "regime": "metastable",
            "never impacted": 0,
            "recovered": 0,
            "metastable": 1,
        },
    ]
    assert REGIMES == ("never impacted", "recovered", "metastable")


def test_a_retry_storm_sweep_maps_metastable_and_recovered_designs(tmp_path: Path):
    """The metastability map of the retry storm's trigger length, per design.

    With 3 tries and no budget even a 1 s spike flips the system (metastable); without retries
    it always recovers. The map is written beside the tables and drawn in the report.
    """
    grid = {"faults.0.duration": ["1s", "15s"]}
    result = sweep(
        "retry-storm",
        grid,
        reps=1,
        variants=["baseline", "no-retries"],
        executor="serial",
        duration=120.0,
        out=tmp_path,
    )
    regimes = result.regimes.set_index(["variant", "faults.0.duration"])["regime"].to_dict()
    assert regimes == {
        ("baseline", "1s"): "metastable",
        ("baseline", "15s"): "metastable",
        ("no-retries", "1s"): "recovered",
        ("no-retries", "15s"): "recovered",
    }
    assert pd.read_parquet(tmp_path / "regimes.parquet").shape == result.regimes.shape
    from ui.report import build_report

    html = build_report(tmp_path).read_text()
    assert "Metastability map: baseline" in html
    assert "Metastability map: no-retries" in html
