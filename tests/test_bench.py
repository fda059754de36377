"""``faultlab bench``: behaviour only (what is run and reported), never timing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sim import run
from sim.bench import bench_scenario, chain, patterns_on_scenario, run_bare, run_faultlab
from sim.cli import app
from sim.scenario import ConstantRate, load_scenario


def test_bench_scenario_turns_patterns_off_and_keeps_the_shape() -> None:
    base = load_scenario("three-tier")
    bench = bench_scenario(7.0)
    assert bench.duration == 7.0
    assert bench.faults == []
    assert bench.variants == {}
    assert bench.workload.timeout is None
    assert bench.workload.rate == base.workload.rate
    for name, service in bench.services.items():
        original = base.services[name]
        assert service.admission.queue.capacity is None
        assert all(call.timeout is None for call in service.calls)
        assert [c.to for c in service.calls] == [c.to for c in original.calls]
        assert service.replicas == original.replicas
        assert service.workers == original.workers
        assert service.service_time == original.service_time
    assert [t.name for t in chain(bench)] == ["frontend", "cart", "payments"]


def test_bare_and_faultlab_serve_the_same_hops() -> None:
    # The same queueing system on the same random streams: the same hops, up to ties and to the
    # few requests in flight at the end.
    scenario = bench_scenario(5.0)
    rate = scenario.workload.rate
    assert isinstance(rate, ConstantRate)
    bare = run_bare(scenario)
    faultlab = run_faultlab(scenario)
    expected = 3 * rate.rate * scenario.duration
    assert bare == pytest.approx(expected, rel=0.1)
    assert faultlab == pytest.approx(bare, rel=0.02)


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
    assert run_faultlab(scenario) == pytest.approx(run_bare(bench_scenario(5.0)), rel=0.02)


def test_chain_rejects_what_the_bare_model_cannot_express() -> None:
    with_timeouts = load_scenario("three-tier")
    with pytest.raises(ValueError, match="not a plain synchronous call"):
        chain(with_timeouts)


def test_json_output_has_the_expected_keys() -> None:
    result = CliRunner().invoke(app, ["bench", "--duration", "2s", "--repeat", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) >= {
        "scenario",
        "duration",
        "seed",
        "repeat",
        "bare",
        "faultlab",
        "patterns_on",
        "ratio",
        "target_ratio",
        "within_target",
        "ratio_patterns_on",
        "target_ratio_patterns_on",
    }
    assert payload["scenario"] == "three-tier"
    assert payload["duration"] == 2.0
    assert payload["repeat"] == 2
    for side in ("bare", "faultlab", "patterns_on"):
        figures = payload[side]
        assert set(figures) >= {"hops", "wall_s", "walls_s", "hops_per_s", "us_per_hop"}
        assert "peak_bytes" in figures
        assert figures["hops"] > 0
        assert len(figures["walls_s"]) == 2
        assert figures["wall_s"] == min(figures["walls_s"])
        assert figures["peak_bytes"] > 0
    assert payload["ratio"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "soon"], "--duration"),
        (["--duration", "0s"], "--duration: must be greater than 0"),
        (["--repeat", "0"], "--repeat: must be at least 1"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error:")
    assert message in lines[0]
