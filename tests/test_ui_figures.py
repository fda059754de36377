"""The pure figure builders of ``ui/figures.py`` and the KPI formats of ``ui/kpis.py``.

Built from one real short run of three-tier (the crash at 60 s and the restart at 65 s inside it),
and from hand-made frames where a case needs exact data.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sim import RunResult, experiment
from sim.scenario import placements
from ui import figures, kpis


@pytest.fixture(scope="module")
def analysed() -> experiment.Run:
    """three-tier for 70 s, with its analysis: one crash, one restart, shed and reset requests."""
    return experiment.run("three-tier", duration=70)


@pytest.fixture(scope="module")
def result(analysed: experiment.Run) -> RunResult:
    """The run of :func:`analysed`."""
    return analysed.result


def test_services_and_instances_are_read_from_the_timeseries(result: RunResult) -> None:
    """Services are the entities with a queue gauge; instances map back by longest name."""
    assert figures.services_in(result.timeseries) == ["frontend", "cart", "payments"]
    assert figures.instance_service("cart-1", ["cart", "cart-api"]) == "cart"
    assert figures.instance_service("cart-api-0", ["cart", "cart-api"]) == "cart-api"
    assert figures.instance_service("node-a", ["cart"]) is None


def test_throughput_stacks_only_outcomes_that_happened(result: RunResult) -> None:
    """One stacked band per outcome seen at the client, in the outcome's fixed colour."""
    fig = figures.throughput_by_outcome(result.timeseries, "client")
    seen = {label for label, count in result.summary["outcomes"].items() if count}
    assert {trace.name for trace in fig.data} == seen
    assert {trace.stackgroup for trace in fig.data} == {"outcomes"}
    assert all(trace.line.color == figures.OUTCOME_COLOURS[trace.name] for trace in fig.data)
    assert fig.layout.yaxis.title.text == "requests/s"
    assert fig.layout.xaxis.title.text == "time (s)"


def test_latency_is_drawn_in_milliseconds(result: RunResult) -> None:
    """The p99 lines are the recorded seconds times 1000, one per service."""
    fig = figures.latency_p99_by_service(result.timeseries)
    assert [trace.name for trace in fig.data] == ["frontend", "cart", "payments"]
    ts = result.timeseries
    seconds = ts[(ts.entity == "cart") & (ts.metric == "latency_p99")].sort_values("t")["value"]
    drawn = list(fig.data[1].y)
    assert len(drawn) == len(seconds)
    assert all(
        (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b * 1000)
        for a, b in zip(drawn, seconds, strict=True)
    )
    assert fig.layout.yaxis.title.text == "p99 latency (ms)"


def test_ready_instances_show_the_crash_and_the_restart(result: RunResult) -> None:
    """Payments drops to one ready instance at the crash, and is back to two after the restart."""
    fig = figures.ready_instances(result.timeseries)
    payments = next(trace for trace in fig.data if trace.name == "payments")
    ready = dict(zip(payments.x, payments.y, strict=True))
    # Which bin shows the crash at 60 s depends on when in the bin a gauge is sampled.
    assert ready[55.0] == 2
    assert min(ready[t] for t in (59.0, 60.0, 61.0)) == 1
    assert ready[67.0] == 2
    assert payments.line.shape == "hv"


def test_instance_states_show_the_crash_and_the_restart(result: RunResult) -> None:
    """Payments drops to one ready instance at the crash and is back to two after the restart.

    Meanwhile the crashed replica is starting (its 5 s cold start).
    """
    fig = figures.instance_states(result.timeseries)
    titles = [annotation.text for annotation in fig.layout.annotations]
    assert titles == ["frontend", "cart", "payments"]
    payments = {trace.name: trace for trace in fig.data if trace.xaxis == "x3"}
    assert list(payments) == ["running", "starting", "waiting", "ready"]
    ready = dict(zip(payments["ready"].x, payments["ready"].y, strict=True))
    # Which bin shows the crash at 60 s depends on when in the bin a gauge is sampled.
    assert ready[55.0] == 2
    assert min(ready[t] for t in (59.0, 60.0, 61.0)) == 1
    assert ready[67.0] == 2
    starting = dict(zip(payments["starting"].x, payments["starting"].y, strict=True))
    assert max(starting[t] for t in (60.0, 61.0, 62.0)) == 1
    assert all(trace.line.shape == "hv" for trace in payments.values())


def test_memory_panels_have_a_dashed_limit_per_instance(result: RunResult) -> None:
    """One panel per service; each instance's memory in MiB with its memory.max dashed."""
    fig = figures.memory_vs_limit(result.timeseries)
    titles = [annotation.text for annotation in fig.layout.annotations]
    assert titles[:3] == ["frontend", "cart", "payments"]
    limits = {t.legendgroup: max(t.y) for t in fig.data if t.line.dash == "dash"}
    assert limits == {
        "frontend-0": 512,
        "frontend-1": 512,
        "cart-0": 512,
        "cart-1": 512,
        "payments-0": 256,
        "payments-1": 256,
    }


def test_a_limitless_instance_has_no_limit_line() -> None:
    """memory.max = max (infinite) draws no dashed line rather than an axis up to infinity."""
    rows = [
        (0.0, "batch", "queued", 0.0),
        (0.0, "batch-0", "memory", 100 * figures.MIB),
        (0.0, "batch-0", "memory_max", math.inf),
    ]
    timeseries = pd.DataFrame(rows, columns=["t", "entity", "metric", "value"])
    fig = figures.memory_vs_limit(timeseries)
    assert [(trace.name, list(trace.y)) for trace in fig.data] == [("batch-0", [100.0])]


def test_empty_timeseries_say_why_they_are_empty() -> None:
    """A chart with nothing to draw carries a message instead of blank axes."""
    empty = pd.DataFrame({"t": [], "entity": [], "metric": [], "value": []})
    for fig in (
        figures.throughput_by_outcome(empty),
        figures.latency_p99_by_service(empty),
        figures.ready_instances(empty),
        figures.instance_states(empty),
        figures.breaker_states(empty),
        figures.concurrency_limits(empty),
        figures.queue_length_by_service(empty),
        figures.memory_vs_limit(empty),
    ):
        assert not fig.data
        assert any("no " in str(annotation.text) for annotation in fig.layout.annotations)


def test_fault_markers_are_vertical_lines_at_fault_times(result: RunResult) -> None:
    """The crash at 60 s becomes one dotted line labelled 'fault start'."""
    fig = figures.add_event_markers(
        figures.latency_p99_by_service(result.timeseries), result.events
    )
    assert [(shape.x0, shape.line.dash) for shape in fig.layout.shapes] == [(60.0, "dot")]
    assert [a.text for a in fig.layout.annotations] == ["fault start"]


@pytest.mark.parametrize(
    ("summary", "headline", "expected"),
    [
        (
            {
                "availability": 0.9908181046423306,
                "latency_p99": 0.16788040181225589,
                "oom_kills": 0,
                "evictions": 0,
                "restarts": 1,
            },
            {
                "blast_radius": 2,
                "blast_radius_fraction": 2 / 3,
                "containment": 0.0,
                "recovered": True,
                "time_to_recover": 35.0,
                "metastable": False,
                "hold": 60.0,
            },
            ["99.082%", "168 ms", "2 (67%)", "0%", "35 s", "not metastable", "0", "0", "1"],
        ),
        (
            {
                "availability": None,
                "latency_p99": float("nan"),
                "oom_kills": 1234,
                "evictions": 2,
                "restarts": 0,
            },
            {
                "blast_radius": 0,
                "blast_radius_fraction": 0.0,
                "containment": float("nan"),
                "recovered": False,
                "time_to_recover": None,
                "metastable": True,
            },
            ["—", "—", "0 (0%)", "n/a", "not recovered", "metastable", "1,234", "2", "0"],
        ),
        (
            {"availability": 1.0, "latency_p99": 1.25},
            {"recovered": True, "time_to_recover": 0.25, "metastable": None},
            ["100.000%", "1.25 s", "— (—)", "—", "250 ms", "undecided", "—", "—", "—"],
        ),
        (
            {"availability": 1.0, "latency_p99": 0.05, "restarts": 2},
            None,
            ["100.000%", "50 ms", "— (—)", "—", "—", "—", "—", "—", "2"],
        ),
    ],
)
def test_kpi_formats(
    summary: dict[str, object], headline: dict[str, object] | None, expected: list[str]
) -> None:
    """Availability to 0.001%, latency in ms below 1 s, shares in whole percent.

    Undefined shares read n/a, recovery or its absence and the verdict in words, unknowns a dash.
    """
    assert [kpi.value for kpi in kpis.headline_kpis(summary, headline)] == expected


def test_topology_colours_services_by_their_slo_window(analysed: experiment.Run) -> None:
    """Users, then services by call depth, hosts below; a frame per window end; red = violated."""
    scenario = analysed.scenario
    fig = figures.topology(
        scenario.call_graph(),
        placements(scenario),
        scenario.workload.entry,
        analysed.analysis.slo,
        analysed.result.timeseries,
        at=69.0,
    )
    # the same figure from the scenario itself, as the explorer, the lesson and the report draw it
    of_scenario = figures.scenario_topology(
        scenario, analysed.analysis.slo, analysed.result.timeseries, at=69.0
    )
    assert of_scenario.to_dict() == fig.to_dict()
    positions = figures.topology_positions(
        scenario.call_graph(), placements(scenario), scenario.workload.entry
    )
    xs = [positions[n][0] for n in ("users", "frontend", "cart", "payments")]
    assert xs == sorted(xs), "tiers left to right along the calls"
    assert positions["host:node-a"][1] < min(positions[n][1] for n in ("frontend", "cart"))
    slo = analysed.analysis.slo
    assert [frame.name for frame in fig.frames] == [f"{t:g}s" for t in sorted(set(slo["t"]))]
    assert fig.frames[fig.layout.sliders[0].active].name == "69s"
    services = fig.data[-2]
    window = slo[slo["t"] == 69.0].set_index("service")
    expected = [
        figures.IMPACT_COLOURS["violated" if window.loc[s, "violated"] else "ok"]
        for s in services.text
    ]
    assert list(services.marker.color) == expected
    assert figures.IMPACT_COLOURS["violated"] in expected, "the crash broke an SLO"
    hosts = fig.data[-1]
    assert list(hosts.text) == ["node-a", "node-b"]
    assert all(0.0 < share < 1.0 for share in hosts.marker.color)


def test_incident_timeline_has_a_lane_per_subject(analysed: experiment.Run) -> None:
    """Each entry is a marker on its subject's lane; hover names its likely cause."""
    timeline = analysed.analysis.timeline
    fig = figures.incident_timeline(timeline, at=60.0)
    markers = sum(len(trace.x) for trace in fig.data)
    assert markers == len(timeline)
    assert list(fig.layout.yaxis.categoryarray) == list(dict.fromkeys(timeline["entity"]))
    caused = [text for trace in fig.data for text in trace.text if "← #" in text]
    assert len(caused) == int(timeline["cause"].notna().sum())
    assert [shape.x0 for shape in fig.layout.shapes if shape.type == "line"][-1] == 60.0


STATS = pd.DataFrame(
    [
        ("availability", "baseline", 3, 0.90, 0.85, 0.95, 0, None, None, None, False),
        ("availability", "fix", 3, 0.99, 0.98, 1.00, 3, 0.09, 0.04, 0.14, True),
        ("restarts", "baseline", 3, 2.0, 1.0, 3.0, 0, None, None, None, False),
        ("restarts", "fix", 3, 2.0, 0.0, 4.0, 3, 0.0, -1.0, 1.0, False),
    ],
    columns=[
        "metric",
        "variant",
        "n",
        "mean",
        "low",
        "high",
        "diff_n",
        "diff",
        "diff_low",
        "diff_high",
        "significant",
    ],
)


def test_kpi_bars_whiskers_are_the_confidence_intervals() -> None:
    """One panel per metric, one bar per variant, whiskers from mean to low and high."""
    fig = figures.kpi_bars(STATS, {"availability": "Availability", "restarts": "Restarts"})
    assert [a.text for a in fig.layout.annotations] == ["Availability", "Restarts"]
    bars = fig.data[0]
    assert list(bars.x) == ["baseline", "fix"]
    assert list(bars.y) == [0.90, 0.99]
    assert list(bars.error_y.array) == pytest.approx([0.05, 0.01])
    assert list(bars.error_y.arrayminus) == pytest.approx([0.05, 0.01])
    assert list(bars.text) == ["0.9", "0.99"]


def test_kpi_bars_write_zero_and_undefined_means() -> None:
    """A zero mean is written "0" (not a missing bar); a mean undefined everywhere "n/a"."""
    stats = STATS.copy()
    stats.loc[2, "mean"] = 0.0
    stats.loc[3, ["mean", "low", "high"]] = math.nan
    fig = figures.kpi_bars(stats, {"restarts": "Restarts"})
    assert list(fig.data[0].text) == ["0", "n/a"]


def test_paired_differences_mark_the_significant_ones() -> None:
    """The reference has no difference; a significant one is red, the others grey."""
    fig = figures.paired_differences(STATS, {"availability": "A", "restarts": "R"})
    assert [list(trace.y) for trace in fig.data] == [["fix"], ["fix"]]
    assert [trace.marker.color[0] for trace in fig.data] == ["#d62728", "#7f7f7f"]
    assert list(fig.data[0].error_x.arrayminus) == pytest.approx([0.05])


def test_sweep_heatmap_pivots_the_grid() -> None:
    """The swept values as given along x and y; cells carry the mean and n; undefined says so."""
    summary = pd.DataFrame(
        [
            ("b", "{}", "100/s", 8, "metastable", 2, 0.0, 0.0, 0.0),
            ("b", "{}", "200/s", 8, "metastable", 2, 0.5, 0.0, 1.0),
            ("b", "{}", "100/s", 16, "metastable", 2, 0.0, 0.0, 0.0),
            ("b", "{}", "200/s", 16, "metastable", 2, 1.0, 1.0, 1.0),
            ("b", "{}", "100/s", 8, "time_to_recover", 0, math.nan, math.nan, math.nan),
        ],
        columns=["variant", "point", "rate", "workers", "metric", "n", "mean", "low", "high"],
    )
    fig = figures.sweep_heatmap(summary, "metastable", "rate", "workers", "map", share=True)
    heat = fig.data[0]
    assert (list(heat.x), list(heat.y)) == (["100/s", "200/s"], ["8", "16"])
    assert heat.z == ([0.0, 0.5], [0.0, 1.0])
    assert heat.text[0][1] == "50%<br>n=2"
    assert (heat.zmin, heat.zmax) == (0.0, 1.0)
    single = figures.sweep_heatmap(summary, "time_to_recover", "rate", None, "ttr")
    assert [a.text for a in single.layout.annotations] == [
        "time_to_recover is undefined in every cell"
    ]


def test_slo_overlay_draws_each_run_against_the_target(analysed: experiment.Run) -> None:
    """Availability in percent above, p99 in ms below, one colour per run, dashed targets."""
    slo = analysed.analysis.slo
    fig = figures.slo_overlay({"a": slo, "b": slo}, "frontend", 0.995, 0.3)
    assert [(t.name, t.yaxis) for t in fig.data] == [
        ("a", "y"),
        ("a", "y2"),
        ("b", "y"),
        ("b", "y2"),
    ]
    frontend = slo[slo["service"] == "frontend"]
    assert list(fig.data[1].y) == pytest.approx(list(frontend["latency_p99"] * 1000), nan_ok=True)
    assert sorted(shape.y0 for shape in fig.layout.shapes) == [99.5, 300.0]


def test_breaker_and_concurrency_limit_charts() -> None:
    """A breaker per calling instance in its three states; the adaptive limit per service."""
    storm = experiment.run("retry-storm", "circuit-breaker", duration=60).result.timeseries
    fig = figures.breaker_states(storm)
    assert [t.name for t in fig.data] == [
        "frontend -> inventory @ frontend-0",
        "frontend -> inventory @ frontend-1",
    ]
    assert set(fig.data[0].y) <= {0.0, 1.0, 2.0}
    assert 1.0 in set(fig.data[0].y), "the breaker opened during the slowdown"
    assert list(fig.layout.yaxis.ticktext) == ["closed", "open", "half-open"]
    shed = experiment.run("load-shedding", "adaptive-concurrency", duration=30).result.timeseries
    limits = figures.concurrency_limits(shed)
    assert [t.name for t in limits.data] == ["api"]
    assert max(limits.data[0].y) > 0
