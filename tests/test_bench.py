"""``faultlab bench``: behaviour only (what is run, compared and reported), never timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim import bench, run
from sim import scenario as sc
from sim.bench import (
    MEASUREMENTS,
    Line,
    SettingError,
    Settings,
    bench_scenario,
    measure_memory,
    measure_mmc,
    measure_scale_out,
    mmc_scenario,
    parse_only,
    patterns_on_scenario,
    peak_memory,
    run_faultlab,
    run_memory,
    run_suite,
)
from sim.bench_models import PROCESS_PER_CALL, YIELD_FROM, chain, run_bare
from sim.cli import _bench_title, app
from sim.queueing import erlang_c, mmc_mean_wait
from sim.scenario import ConstantRate, load_scenario


def test_bench_scenario_turns_patterns_off_and_keeps_the_shape() -> None:
    base = load_scenario("three-tier")
    scenario = bench_scenario(7.0)
    assert scenario.duration == 7.0
    assert scenario.faults == []
    assert scenario.variants == {}
    assert scenario.workload.timeout is None
    assert scenario.workload.rate == base.workload.rate
    for name, service in scenario.services.items():
        original = base.services[name]
        assert service.admission.queue.capacity is None
        assert all(call.timeout is None for call in service.calls)
        assert [c.to for c in service.calls] == [c.to for c in original.calls]
        assert service.replicas == original.replicas
        assert service.workers == original.workers
        assert service.service_time == original.service_time
    assert [t.name for t in chain(scenario)] == ["frontend", "cart", "payments"]


def test_both_bare_models_and_faultlab_serve_the_same_hops() -> None:
    """Common random numbers: the same arrivals and service times, so the same hops per tier.

    Up to ties between simultaneous events and the few requests in flight at the end.
    """
    scenario = bench_scenario(5.0)
    rate = scenario.workload.rate
    assert isinstance(rate, ConstantRate)
    naive = run_bare(scenario, PROCESS_PER_CALL)
    lean = run_bare(scenario, YIELD_FROM)
    faultlab = run_faultlab(scenario)
    assert naive.tiers == lean.tiers == ("frontend", "cart", "payments")
    assert naive.hops == pytest.approx(3 * rate.rate * scenario.duration, rel=0.1)
    assert lean.hops == pytest.approx(naive.hops, rel=0.02)
    assert faultlab.hops == pytest.approx(naive.hops, rel=0.02)
    served = dict(zip(faultlab.tiers, faultlab.hops_per_tier, strict=True))
    for tier, hops in zip(naive.tiers, naive.hops_per_tier, strict=True):
        assert served[tier] == pytest.approx(hops, rel=0.02)
    assert lean.wait_means == pytest.approx(naive.wait_means, rel=0.05, abs=1e-4)


def test_patterns_on_switches_every_pattern_on_and_serves_the_same_hops() -> None:
    """Every call has each client policy, every service each admission stage; nothing trips."""
    scenario = patterns_on_scenario(5.0)
    assert scenario.workload.deadline_propagation
    for service in scenario.services.values():
        admission = service.admission
        assert admission.queue.discipline == "codel"
        assert admission.rate_limit is not None
        assert admission.concurrency_limit is not None
        for call in service.calls:
            assert call.timeout == 1.0
            assert None not in (call.retry, call.circuit_breaker, call.rate_limiter, call.bulkhead)
            assert call.fallback is not None
    result = run(scenario)
    assert result.summary["outcomes"]["ok"] == result.summary["completed"]
    bare = run_bare(bench_scenario(5.0))
    assert run_faultlab(scenario).hops == pytest.approx(bare.hops, rel=0.02)


def test_chain_rejects_what_the_bare_model_cannot_express() -> None:
    with_timeouts = load_scenario("three-tier")
    with pytest.raises(ValueError, match="not a plain synchronous call"):
        chain(with_timeouts)
    with pytest.raises(ValueError, match="unknown call style"):
        run_bare(bench_scenario(1.0), "threads")  # type: ignore[arg-type]


def test_erlang_c_of_the_mmc_scenario_is_its_documented_value() -> None:
    """mmc-queue's narrative: c = 4, a = 3.2 Erlangs: C = 0.596, Wq = C / (c mu - lam) = 29.8 ms."""
    scenario = load_scenario("mmc-queue")
    server = scenario.services[scenario.workload.entry]
    rate = scenario.workload.rate
    assert isinstance(rate, sc.ConstantRate)
    assert isinstance(server.service_time, sc.Exponential)
    c, lam, mu = server.workers * server.replicas, rate.rate, 1.0 / server.service_time.mean
    assert (c, lam, mu) == (4, 80.0, pytest.approx(25.0))
    assert erlang_c(c, lam / mu) == pytest.approx(0.596, abs=5e-4)
    assert mmc_mean_wait(c, lam, mu) == pytest.approx(0.0298, abs=5e-5)
    with pytest.raises(ValueError, match="unstable"):
        mmc_mean_wait(4, 100.0, 25.0)


def test_mmc_lines_compare_cost_and_wait_against_textbook_simpy_and_erlang_c() -> None:
    """The textbook model sees faultlab's waits (same streams); the error is against Erlang C.

    Two seeds: the cost is each side's best per customer, Wq the mean of the seeds' means.
    """
    scenario = mmc_scenario(4000)
    assert scenario.duration == pytest.approx(4000 / 80.0)
    assert [t.name for t in chain(scenario)] == ["server"]
    speed, wait = measure_mmc(4000, seeds=2)
    assert speed.key == "mmc"
    assert speed.target == 1.0
    assert speed.details["seeds"] == [scenario.seed, scenario.seed + 1]
    ours = speed.details["faultlab"]["us_per_customer"]
    theirs = speed.details["reference"]["us_per_customer"]
    assert len(ours) == len(theirs) == 2
    assert (speed.faultlab, speed.reference) == (min(ours), min(theirs))
    assert speed.value == pytest.approx(min(ours) / min(theirs))
    served = speed.details["customers"]
    assert len(served) == 2
    assert speed.details["reference"]["customers"] == served  # the same streams, seed by seed
    assert served == pytest.approx([4000, 4000], rel=0.1)
    assert speed.what == f"M/M/4 (mmc-queue), 2 seeds x ~{round(sum(served) / 2):,} customers"
    assert wait.what == "M/M/4 mean queue wait Wq, 2 seeds, |error|"
    assert wait.key == "mmc-wait"
    assert wait.reference == pytest.approx(mmc_mean_wait(4, 80.0, 25.0))
    means = wait.details["wait_means"]
    assert len(means) == 2
    assert means[0] != means[1]  # two seeds, two samples
    assert wait.faultlab == pytest.approx(sum(means) / 2)
    low, high = wait.details["wait_ci95"]
    assert low < wait.faultlab < high
    assert wait.value == pytest.approx(abs(wait.faultlab / wait.reference - 1))
    assert wait.details["relative_error"] == pytest.approx(wait.faultlab / wait.reference - 1)
    assert wait.target == 0.01
    assert wait.passed == (wait.value <= 0.01)
    # the same streams: the textbook model's mean wait is faultlab's, to rounding, seed by seed
    assert wait.details["bare_wait_means"] == pytest.approx(means, rel=1e-6)


def test_a_line_passes_by_its_sense_and_says_so_in_its_cells() -> None:
    ratio = Line("r", "what", 3.0, 2.0, "ref", "us/hop", 1.5, "x", 2.0)
    assert ratio.passed is True
    assert ratio.verdict == "pass"
    assert ratio.cells() == (
        "what vs ref",
        "3.00 µs/hop",
        "2.00 µs/hop",
        "1.50x",
        "≤ 2.00x",
        "pass",
    )
    speed_up = Line("s", "what", 5.0, 8.0, "1 worker", "s", 1.6, "x", 1.8, sense=">=")
    assert speed_up.passed is False
    assert speed_up.verdict == "FAIL"
    info = Line("i", "what", 1.0, 1.0, "ref", "s", 1.0, "x", None)
    assert info.passed is None
    assert info.verdict == "info"
    broken = Line("e", "what", None, None, "ref", "", None, "", None, error="no /proc")
    assert broken.verdict == "error"
    assert broken.to_dict()["error"] == "no /proc"


def test_memory_lines_are_ratios_of_a_10x_longer_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, float, float]] = []

    def fake(kind: str, figures: dict[tuple[float, float], int]) -> object:
        def measure(scenario: object) -> int:
            key = (scenario.duration, scenario.recording.bin)  # type: ignore[attr-defined]
            calls.append((kind, *key))
            return figures[key]

        return measure

    peaks = {(300.0, 1.0): 100, (3000.0, 1.0): 110, (3000.0, 10.0): 101}
    monkeypatch.setattr(bench, "peak_memory", fake("peak", peaks))
    monkeypatch.setattr(bench, "run_memory", fake("run", {(300.0, 1.0): 10, (3000.0, 1.0): 40}))
    peak, growth, bins = measure_memory(None)
    assert calls == [
        ("peak", 300.0, 1.0),
        ("peak", 3000.0, 1.0),
        ("run", 300.0, 1.0),
        ("run", 3000.0, 1.0),
        ("peak", 3000.0, 10.0),
    ]
    # the target: the whole process's peak, 10x longer against as long
    assert (peak.key, peak.faultlab, peak.reference, peak.value) == ("memory", 110, 100, 1.1)
    assert (peak.target, peak.passed) == (1.2, True)
    # information: what the run alone adds (it grows with the bins recorded), no target
    assert (growth.key, growth.faultlab, growth.reference, growth.value) == (
        "memory-run",
        40,
        10,
        4.0,
    )
    assert (growth.target, growth.passed) == (None, None)
    # information: the long run with bins 10x wider (10 s), whole-process peak, no target
    assert (bins.key, bins.faultlab, bins.reference, bins.value) == ("memory-bins", 101, 100, 1.01)
    assert (bins.details["bin"], bins.target, bins.passed) == (10.0, None, None)


def test_peak_memory_is_the_whole_fresh_process() -> None:
    """The peak of a fresh process (interpreter, imports, run): this process's is not in it."""
    ballast = bytearray(256 * 2**20)  # held here while the other process measures
    peak = peak_memory(bench_scenario(2.0))
    # imports alone are over 32 MiB; the ballast would make it over 256 MiB
    assert 32 * 2**20 < peak < 256 * 2**20
    assert len(ballast) == 256 * 2**20


def test_run_memory_is_the_growth_during_the_run_alone() -> None:
    """What the run adds to a fresh, warmed-up process: neither the imports nor this process."""
    ballast = bytearray(256 * 2**20)
    growth = run_memory(bench_scenario(2.0))
    assert 0 < growth < 64 * 2**20  # a 2 s three-tier run grows by a few MiB
    assert len(ballast) == 256 * 2**20


def test_scale_out_line_is_the_speed_up_from_1_to_2_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake(
        kind: str, scenario: object, reps: int, workers: int, rounds: int
    ) -> tuple[float, list[float]]:
        return 1.0, [10.0 / workers, 12.0 / workers, 9.0 / workers][:rounds]

    monkeypatch.setattr(bench, "_replications", fake)
    (line,) = measure_scale_out("dask", None, 8, rounds=3)
    assert line.key == "dask"
    assert line.value == pytest.approx(2.0)
    assert (line.target, line.sense, line.passed) == (1.8, ">=", True)
    assert line.details["wall_s"] == {"1": 9.0, "2": 4.5}  # each side's best round
    assert line.details["rounds_s"] == {"1": [10.0, 12.0, 9.0], "2": [5.0, 6.0, 4.5]}


@pytest.mark.parametrize(("repeat", "rounds"), [(1, 1), (2, 2), (5, 2)])
def test_the_suite_times_at_most_two_scale_out_rounds(
    monkeypatch: pytest.MonkeyPatch, repeat: int, rounds: int
) -> None:
    """A round of 8 flagship replications lasts 5-10 s: ``repeat`` rounds, but no more than 2."""
    asked: list[int] = []

    def fake(
        kind: str, scenario: object, reps: int, workers: int, rounds: int
    ) -> tuple[float, list[float]]:
        asked.append(rounds)
        return 1.0, [10.0 / workers] * rounds

    monkeypatch.setattr(bench, "_replications", fake)
    suite = run_suite(Settings(only=("process-pool", "dask"), repeat=repeat))
    assert asked == [rounds] * 4  # 1 and 2 workers, for each of the two lines
    assert [len(line.details["rounds_s"]["2"]) for line in suite.lines] == [rounds] * 2


@pytest.mark.parametrize(
    ("only", "repeat", "title"),
    [
        (
            MEASUREMENTS,
            5,
            "faultlab bench (three-tier and flagship: best of 5; scale-out: best of 2)",
        ),
        (("flagship", "dask"), 1, "faultlab bench (three-tier and flagship: best of 1)"),
        (("mmc", "memory"), 3, "faultlab bench"),
        (("process-pool",), 3, "faultlab bench (scale-out: best of 2)"),
    ],
)
def test_the_table_title_says_which_lines_are_a_best_of_several(
    only: tuple[str, ...], repeat: int, title: str
) -> None:
    assert _bench_title(Settings(only=only, repeat=repeat)) == title


def test_scale_out_runs_replications_on_a_real_pool() -> None:
    (line,) = measure_scale_out("process-pool", 61.0, 2)
    assert line.error is None
    assert line.faultlab is not None
    assert line.reference is not None
    assert line.faultlab > 0
    assert line.reference > 0
    assert line.value == pytest.approx(line.reference / line.faultlab)  # time on 1 / time on 2
    assert line.details["wall_s"] == {"1": line.reference, "2": line.faultlab}
    assert line.details["reps"] == 2
    assert [len(line.details["rounds_s"][w]) for w in ("1", "2")] == [1, 1]


def test_json_has_every_selected_line_with_its_target(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    args = ["--only", "mmc,three-tier,flagship", "--duration", "2s", "--repeat", "2"]
    args += ["--customers", "2000", "--mmc-seeds", "2", "--flagship-duration", "61s"]
    args += ["--json", str(path)]
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 0, result.output
    assert "Erlang C" in result.stdout  # the table (wrapped to the test's 80 columns)
    payload = json.loads(path.read_text())
    assert payload["settings"]["only"] == ["three-tier", "mmc", "flagship"]
    assert payload["settings"]["repeat"] == 2
    assert payload["settings"]["mmc_seeds"] == 2
    lines = {line["key"]: line for line in payload["lines"]}
    assert list(lines) == [
        "three-tier-off",
        "three-tier-off-yield-from",
        "three-tier-on",
        "three-tier-on-yield-from",
        "mmc",
        "mmc-wait",
        "flagship",
    ]
    targets = {key: line["target"] for key, line in lines.items()}
    assert targets == {
        "three-tier-off": 1.0,
        "three-tier-off-yield-from": None,
        "three-tier-on": 2.0,
        "three-tier-on-yield-from": None,
        "mmc": 1.0,
        "mmc-wait": 0.01,
        "flagship": None,  # 5 s is the target for the flagship's own 5 minutes, not 61 s
    }
    for line in lines.values():
        assert set(line) >= {"what", "faultlab", "reference", "value", "target", "passed"}
        assert line["verdict"] in ("pass", "FAIL", "info")
        assert (line["passed"] is None) == (line["target"] is None)
    off = lines["three-tier-off"]["details"]
    assert len(off["faultlab"]["walls_s"]) == 2
    assert off["faultlab"]["wall_s"] == min(off["faultlab"]["walls_s"])
    assert lines["flagship"]["details"]["faultlab"]["hops"] > 0
    assert len(lines["mmc-wait"]["details"]["wait_means"]) == 2


def test_json_to_stdout_is_only_json() -> None:
    args = ["--only", "three-tier", "--duration", "1s", "--repeat", "1", "--json", "-"]
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["lines"]) == 4


def test_default_settings_run_every_measurement_at_the_issue_sizes() -> None:
    settings = Settings()
    assert settings.only == MEASUREMENTS
    assert (settings.customers, settings.mmc_seeds) == (1_000_000, 5)
    assert (settings.reps, settings.flagship_duration) == (8, None)
    assert parse_only("dask, mmc,mmc") == ("mmc", "dask")
    with pytest.raises(SettingError, match="only: unknown measurement 'disk'"):
        Settings(only=("disk",))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "soon"], "--duration"),
        (["--duration", "0s"], "--duration: must be greater than 0"),
        (["--repeat", "0"], "--repeat: must be at least 1"),
        (["--customers", "10"], "--customers: must be at least 100"),
        (["--mmc-seeds", "0"], "--mmc-seeds: must be at least 1"),
        (["--mmc-seeds", "x"], "Invalid value for '--mmc-seeds'"),
        (["--reps", "1"], "--reps: must be at least 2"),
        (["--only", "three-tier,disk"], "--only: unknown measurement 'disk'"),
        (["--only", ","], "--only: choose at least one of"),
        (["--flagship-duration", "30s"], "--flagship-duration: faults.0.at"),
        (["--json", "/no/such/dir/bench.json"], "--json: no directory /no/such/dir"),
        (["--json", "/tmp"], "--json: /tmp is a directory (give a file name)"),
        (["--repeat", "two"], "Invalid value for '--repeat'"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error:")
    assert message in lines[0]
