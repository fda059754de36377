"""The what-if explorer: pick or upload a scenario, turn its knobs, press Run, see what broke.

The sidebar holds the inputs: the scenario source, the variant, then the run form: seed,
duration and the scenario's knobs, generated from the schema (:mod:`ui.knobs`), with pattern
toggles. The main area shows the scenario's narrative, then the last run: KPIs (from
:mod:`sim.analysis`), time series, the topology coloured by impact, the incident timeline with
the kernel's and the kubelet's lines, why requests failed, downloads; then the pinned runs
overlaid, and the session's run history.

Session state (all keys prefixed ``explorer.``):
    - ``explorer.result``: the last :class:`Shown` run; drawn while the selected scenario's
      content is the one that was run.
    - ``explorer.history``: one row per run of the session, newest first, at most
      :data:`HISTORY_LENGTH`.
    - ``explorer.pinned``: label -> pinned :class:`Shown` runs, overlaid on one chart.
    - ``explorer.counter``: how many runs the session made (the runs' numbers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from sim import Scenario, ScenarioError
from sim.analysis import narrate
from sim.experiment import Run
from ui import figures, kpis, report, runs
from ui.knobs import overrides, scenario_knobs
from ui.views import shared
from ui.widgets import RUN_KNOBS, VARIANT, render_field_knobs, render_knobs

HISTORY_LENGTH = 20
RESULT_KEY = "explorer.result"
HISTORY_KEY = "explorer.history"
PINNED_KEY = "explorer.pinned"
COUNTER_KEY = "explorer.counter"


@dataclass(frozen=True)
class Shown:
    """A run as the explorer keeps it: what was asked, and what came back.

    Attributes:
        label: ``#3 three-tier/baseline seed 1`` (``+2 edits`` when knobs were changed).
        key: the content key of the base scenario (:func:`ui.runs.scenario_key`).
        scenario: the base scenario (before the variant and the edits).
        variant: the variant run.
        edits: the knobs' overrides.
        run: the run and its analysis.
    """

    label: str
    key: str
    scenario: Scenario
    variant: str
    edits: dict[str, Any]
    run: Run


def page() -> None:
    """Draw the explorer."""
    with st.sidebar:
        st.header("Scenario")
        picked = shared.pick_scenario("explorer")
        scenario = picked if isinstance(picked, Scenario) else None
        request = None
        if scenario is not None:
            variant = render_knobs([VARIANT], scenario, key_prefix=f"explorer.{scenario.name}")
            request = _run_form(scenario, variant["variant"])
    if scenario is None:
        shared.no_scenario(picked, "What-if explorer")
        return
    st.title(scenario.title or scenario.name)
    st.caption(shared.scenario_caption(scenario))
    with st.expander("Narrative", icon=":material/menu_book:"):
        st.markdown(scenario.description or "_This scenario has no narrative._")
    key = runs.scenario_key(scenario)
    if isinstance(request, ScenarioError):
        shared.show_problems(request)
    elif request is not None:
        _run(scenario, key, request)
    stored: Shown | None = st.session_state.get(RESULT_KEY)
    if stored is not None and stored.key == key:
        _show_result(stored)
    _show_pinned()
    _show_history()


def _run_form(scenario: Scenario, variant: str) -> dict[str, Any] | ScenarioError | None:
    """The run form; the run's arguments when Run was pressed, else ``None``.

    The knobs start from the variant's values; a variant that does not apply is returned as
    its problems.
    """
    try:
        shown = scenario.with_variant(variant)
    except ScenarioError as exc:
        return exc
    knobs = scenario_knobs(shown)
    with st.form("explorer.run"):
        st.subheader("Run")
        prefix = f"explorer.{scenario.name}"
        values = render_knobs(RUN_KNOBS, scenario, key_prefix=prefix)
        st.caption("Scenario knobs (from the schema; pattern toggles switch a block on or off)")
        widgets = render_field_knobs(knobs, key_prefix=f"{prefix}.{variant}")
        pressed = st.form_submit_button("Run", type="primary", width="stretch")
    if not pressed:
        return None
    return values | {"variant": variant, "overrides": overrides(knobs, widgets)}


def _run(scenario: Scenario, key: str, request: dict[str, Any]) -> None:
    duration = request.get("duration") or scenario.duration
    try:
        with st.spinner(f"Running {scenario.name} for {float(duration):g} s of simulated time…"):
            run = runs.cached_run(scenario, **request)
    except Exception as exc:  # the UI's boundary: bad input is a message, never a traceback
        shared.show_failure("The run", exc)
        return
    number = st.session_state.get(COUNTER_KEY, 0) + 1
    st.session_state[COUNTER_KEY] = number
    edits: dict[str, Any] = request["overrides"]
    label = f"#{number} {scenario.name}/{request['variant']} seed {run.result.seed}"
    if edits:
        label += f" +{shared.count(len(edits), 'edit')}"
    shown = Shown(label, key, scenario, request["variant"], edits, run)
    st.session_state[RESULT_KEY] = shown
    history: list[dict[str, Any]] = st.session_state.setdefault(HISTORY_KEY, [])
    history.insert(0, _history_row(shown))
    del history[HISTORY_LENGTH:]


def _history_row(shown: Shown) -> dict[str, Any]:
    summary = shown.run.result.summary
    row: dict[str, Any] = {
        "run": shown.label.split(" ", 1)[0],
        "scenario": summary["scenario"],
        "variant": shown.variant,
        "seed": summary["seed"],
        "duration (s)": f"{float(summary['duration']):g}",
        "edits": json.dumps(shown.edits) if shown.edits else "",
    }
    headline = shown.run.analysis.headline()
    row.update({kpi.label: kpi.value for kpi in kpis.headline_kpis(summary, headline)})
    return row


def _show_result(shown: Shown) -> None:
    result, analysis, as_run = shown.run.result, shown.run.analysis, shown.run.scenario
    summary = result.summary
    st.header("Results")
    st.caption(
        f"{shown.label} · {float(summary['duration']):g} s simulated · "
        f"{kpis.format_count(summary['arrivals'])} arrivals · "
        f"{kpis.format_count(summary['completed'])} completed · "
        f"{kpis.format_count(summary['in_flight_at_end'])} in flight at the end · "
        f"{kpis.format_count(summary['events'])} events"
        + (
            f" ({kpis.format_count(summary['events_dropped'])} dropped)"
            if summary.get("events_dropped")
            else ""
        )
    )
    shared.kpi_row(summary, analysis.headline())
    st.button(
        "Pin this run",
        icon=":material/push_pin:",
        key="explorer.pin",
        on_click=_pin,
        args=(shown,),
        help="Pinned runs are overlaid on one chart below, across scenarios and edits.",
    )
    charts, topology, timeline, log, failures, downloads = st.tabs(
        [
            "Time series",
            "Topology",
            "Incident timeline",
            "Event log",
            "Why requests failed",
            "Downloads",
        ]
    )
    with charts:
        _charts(result.timeseries, result.events)
    with topology:
        st.plotly_chart(
            figures.scenario_topology(as_run, analysis.slo, result.timeseries),
            theme=None,
            width="stretch",
            key="explorer.topology",
        )
    with timeline:
        st.markdown("\n".join(f"- {line}" for line in narrate(analysis)[:5]))
        st.plotly_chart(figures.incident_timeline(analysis.timeline), theme=None, width="stretch")
        _timeline_table(analysis.timeline)
    with log:
        _event_log(result.events)
    with failures:
        _show_failures(result.failures)
    with downloads:
        stem = f"{summary['scenario']}-{shown.variant}-seed{summary['seed']}"
        st.download_button(
            "Summary (JSON)",
            result.to_json(),
            file_name=f"{stem}-summary.json",
            mime="application/json",
            on_click="ignore",
            icon=":material/download:",
        )
        shared.table_downloads(
            stem,
            {
                "Time series": result.timeseries,
                "Events": result.events,
                "Timeline": analysis.timeline,
            },
            key="explorer.download",
        )
        shared.yaml_download(shown.scenario, shown.variant, shown.edits, "explorer.yaml")
        run = shown.run
        shared.report_download(
            lambda: report.run_report(run), f"{stem}-report.html", "explorer.report"
        )


def _charts(timeseries: pd.DataFrame, events: pd.DataFrame) -> None:
    services = figures.services_in(timeseries)
    left, right = st.columns(2)
    _chart(left, figures.throughput_by_outcome(timeseries, "client"), events)
    _chart(right, figures.latency_p99_by_service(timeseries, services), events)
    _chart(st, figures.instance_states(timeseries, services), events)
    _chart(st, figures.memory_vs_limit(timeseries, services), events)
    queues = figures.queue_length_by_service(timeseries, services)
    optional = [
        # A queue chart flat at zero says nothing the other charts do not.
        *([queues] if any((trace.y > 0).any() for trace in queues.data) else []),
        figures.breaker_states(timeseries),
        figures.concurrency_limits(timeseries, services),
    ]
    drawn = [figure for figure in optional if figure.data]
    for start in range(0, len(drawn), 2):
        columns = st.columns(2)
        for column, figure in zip(columns, drawn[start : start + 2], strict=False):
            _chart(column, figure, events)


def _chart(column: Any, figure: Any, events: pd.DataFrame) -> None:
    column.plotly_chart(figures.add_event_markers(figure, events), theme=None, width="stretch")


def _timeline_table(timeline: pd.DataFrame) -> None:
    if timeline.empty:
        st.caption("Nothing happened.")
        return
    table = timeline[["t", "count", "kind", "entity", "text", "cause"]].copy()
    table["cause"] = [
        "" if pd.isna(cause) else f"#{int(cause)} {timeline['text'].iloc[int(cause)]}"
        for cause in timeline["cause"]
    ]
    st.dataframe(
        table,
        width="stretch",
        height=min(420, 38 + 35 * len(table)),
        column_config={
            "_index": st.column_config.NumberColumn("#"),
            "t": st.column_config.NumberColumn("t (s)", format="%.3f"),
            "cause": "likely cause",
        },
    )


def _event_log(events: pd.DataFrame) -> None:
    kinds = events["kind"].value_counts()
    chosen = st.multiselect(
        "Kinds",
        list(kinds.index),
        default=list(kinds.index),
        format_func=lambda kind: f"{kind} ({kinds[kind]:,})",
        key="explorer.kinds",
        help="The event log is what the kernel, the kubelet, the supervisors and the patterns "
        "would print; pick which kinds of lines to show.",
    )
    shown = events[events["kind"].isin(chosen)]
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * max(len(shown), 1)),
        column_config={"t": st.column_config.NumberColumn("t (s)", format="%.3f")},
    )


def _show_failures(failures: pd.DataFrame) -> None:
    if failures.empty:
        st.caption("No request failed.")
        return
    st.dataframe(
        failures.sort_values("count", ascending=False),
        hide_index=True,
        width="stretch",
        column_config={
            "class": "request class",
            "where": "failed at",
            "cause": "root cause",
            "outcome": "outcome seen by the caller",
            "count": st.column_config.NumberColumn("requests", format="%d"),
        },
    )


def _pin(shown: Shown) -> None:
    st.session_state.setdefault(PINNED_KEY, {})[shown.label] = shown


def _show_pinned() -> None:
    pinned: dict[str, Shown] = st.session_state.get(PINNED_KEY, {})
    if not pinned:
        return
    st.header("Pinned runs")
    current: Shown | None = st.session_state.get(RESULT_KEY)
    reference = current or next(iter(pinned.values()))
    as_run = reference.run.scenario
    entry = as_run.workload.entry
    slo = as_run.slo_for(entry)
    overlay = {label: shown.run.analysis.slo for label, shown in pinned.items()}
    if current is not None and current.label not in overlay:
        overlay[f"{current.label} (current)"] = current.run.analysis.slo
    st.plotly_chart(
        figures.slo_overlay(overlay, entry, slo.availability, slo.latency_p99),
        theme=None,
        width="stretch",
    )
    st.button("Clear pinned runs", key="explorer.unpin", on_click=_clear_pins)


def _clear_pins() -> None:
    st.session_state[PINNED_KEY] = {}


def _show_history() -> None:
    history = st.session_state.get(HISTORY_KEY)
    if not history:
        return
    st.subheader("Run history")
    st.dataframe(pd.DataFrame(history), hide_index=True, width="stretch")


if __name__ == "__main__":
    page()
