"""The pure figure builders of ``ui/figures.py`` and the KPI formats of ``ui/kpis.py``.

Built from one real short run of three-tier (the crash at 60 s and the restart at 65 s inside it),
and from hand-made frames where a case needs exact data.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sim import RunResult, load_scenario, run
from ui import figures, kpis


@pytest.fixture(scope="module")
def result() -> RunResult:
    """three-tier for 70 s: one crash, one restart, shed and reset requests."""
    return run(load_scenario("three-tier"), duration=70)


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
    ],
)
def test_kpi_formats(
    summary: dict[str, object], headline: dict[str, object], expected: list[str]
) -> None:
    """Availability to 0.001%, latency in ms below 1 s, shares in whole percent.

    Undefined shares read n/a, recovery or its absence and the verdict in words, unknowns a dash.
    """
    assert [kpi.value for kpi in kpis.headline_kpis(summary, headline)] == expected
