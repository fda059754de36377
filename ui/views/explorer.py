"""The what-if explorer: pick or upload a scenario, set the run, press Run, see what broke.

The sidebar holds the inputs (scenario source, then the run form generated from
:data:`ui.widgets.RUN_KNOBS`); the main area shows the scenario's narrative, then the last run's
KPIs, charts, event log, failure causes and downloads, then the session's run history.

Session state (all keys prefixed ``explorer.``):
    - ``explorer.result``: ``(scenario key, RunResult)`` of the last run; shown while the
      selected scenario's content is the one that was run.
    - ``explorer.history``: summaries of the session's runs, newest first, at most
      :data:`HISTORY_LENGTH`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from sim import RunResult, Scenario, ScenarioError
from ui import figures, kpis, runs
from ui.widgets import NO_VARIANT, RUN_KNOBS, render_knobs

CATALOGUE = "Catalogue"
UPLOAD = "Upload YAML"
HISTORY_LENGTH = 10
RESULT_KEY = "explorer.result"
HISTORY_KEY = "explorer.history"

FEATURED = "three-tier"
"""The catalogue scenario the explorer opens with."""


def page() -> None:
    """Draw the explorer."""
    with st.sidebar:
        picked = _pick_scenario()
        scenario = picked if isinstance(picked, Scenario) else None
        request = _run_form(scenario) if scenario is not None else None
    if scenario is None:
        st.title("What-if explorer")
        if isinstance(picked, ScenarioError):
            st.subheader(_count(len(picked.problems), "problem") + " in the scenario")
            _show_problems(picked)
        else:
            st.info("Pick a scenario from the catalogue or upload a YAML file in the sidebar.")
        return
    _show_scenario(scenario)
    key = runs.scenario_key(scenario)
    if request is not None:
        _run(scenario, key, request)
    stored = st.session_state.get(RESULT_KEY)
    if stored is not None and stored[0] == key:
        _show_result(stored[1])
    _show_history()


def _pick_scenario() -> Scenario | ScenarioError | None:
    """The scenario source widgets: the chosen scenario, why it is invalid, or ``None``."""
    st.header("Scenario")
    source = st.radio("Source", [CATALOGUE, UPLOAD], horizontal=True, key="explorer.source")
    if source == CATALOGUE:
        names = runs.catalogue()
        if not names:
            return None
        first = names.index(FEATURED) if FEATURED in names else 0
        name = st.selectbox("Catalogue scenario", names, index=first, key="explorer.catalogue")
        return _load(lambda: runs.catalogue_scenario(name))
    uploaded = st.file_uploader(
        "Scenario YAML", type=["yaml", "yml"], key="explorer.upload", max_upload_size=5
    )
    if uploaded is None:
        st.caption("A scenario file in faultlab's YAML format; problems are listed one per line.")
        return None
    return _load(lambda: runs.uploaded_scenario(uploaded.name, uploaded.getvalue()))


def _load(loader: Callable[[], Scenario]) -> Scenario | ScenarioError:
    try:
        return loader()
    except ScenarioError as exc:
        return exc


def _show_problems(exc: ScenarioError) -> None:
    """One ``st.error`` per problem line (``file:line:col: path: message``), no traceback."""
    for line in str(exc).splitlines():
        st.error(line, icon=":material/error:")


def _run_form(scenario: Scenario) -> dict[str, Any] | None:
    """The run form; the :func:`sim.run` arguments when Run was pressed, else ``None``."""
    with st.form("explorer.run"):
        st.subheader("Run")
        values = render_knobs(RUN_KNOBS, scenario, key_prefix=f"explorer.{scenario.name}")
        pressed = st.form_submit_button("Run", type="primary", width="stretch")
    return values if pressed else None


def _show_scenario(scenario: Scenario) -> None:
    st.title(scenario.title or scenario.name)
    variants = ", ".join(scenario.variants) or "none"
    st.caption(
        f"`{scenario.name}` · {float(scenario.duration):g} s simulated · seed {scenario.seed} · "
        f"{_count(len(scenario.hosts), 'host')} · {_count(len(scenario.services), 'service')} · "
        f"{_count(len(scenario.faults), 'fault')} · variants: {variants}"
    )
    with st.expander("Narrative", icon=":material/menu_book:"):
        st.markdown(scenario.description or "_This scenario has no narrative._")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _run(scenario: Scenario, key: str, request: dict[str, Any]) -> None:
    duration = request.get("duration") or scenario.duration
    try:
        with st.spinner(f"Running {scenario.name} for {float(duration):g} s of simulated time…"):
            result = runs.cached_run(scenario, **request)
    except ScenarioError as exc:
        _show_problems(exc)
        return
    st.session_state[RESULT_KEY] = (key, result)
    history: list[dict[str, Any]] = st.session_state.setdefault(HISTORY_KEY, [])
    history.insert(0, _history_row(result.summary))
    del history[HISTORY_LENGTH:]


def _history_row(summary: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": summary["scenario"],
        "variant": summary["variant"] or NO_VARIANT,
        "seed": summary["seed"],
        "duration (s)": f"{float(summary['duration']):g}",
    }
    row.update({kpi.label: kpi.value for kpi in kpis.headline_kpis(summary)})
    return row


def _show_result(result: RunResult) -> None:
    summary = result.summary
    st.header("Results")
    st.caption(
        f"`{summary['scenario']}` · variant {summary['variant'] or NO_VARIANT} · "
        f"seed {summary['seed']} · {float(summary['duration']):g} s simulated · "
        f"{kpis.format_count(summary['completed'])} completed · "
        f"{kpis.format_count(summary['events'])} events"
        + (
            f" ({kpis.format_count(summary['events_dropped'])} dropped)"
            if summary.get("events_dropped")
            else ""
        )
    )
    # A wrapping row: values are never cut to "99.08…" on a narrow window.
    with st.container(horizontal=True, gap="small"):
        for kpi in kpis.headline_kpis(summary):
            st.metric(kpi.label, kpi.value, help=kpi.help, border=True, width="stretch")

    timeseries, events = result.timeseries, result.events
    services = figures.services_in(timeseries)
    left, right = st.columns(2)
    _chart(left, figures.throughput_by_outcome(timeseries, "client"), events)
    _chart(right, figures.latency_p99_by_service(timeseries, services), events)
    left, right = st.columns(2)
    _chart(left, figures.ready_instances(timeseries, services), events)
    _chart(right, figures.queue_length_by_service(timeseries, services), events)
    _chart(st, figures.memory_vs_limit(timeseries, services), events)

    st.subheader("Event log")
    st.dataframe(
        events,
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * max(len(events), 1)),
        column_config={"t": st.column_config.NumberColumn("t (s)", format="%.3f")},
    )
    st.subheader("Why requests failed")
    _show_failures(result.failures)

    st.subheader("Downloads")
    stem = f"{summary['scenario']}-{summary['variant'] or 'base'}-seed{summary['seed']}"
    downloads = st.container(horizontal=True)
    downloads.download_button(
        "Summary (JSON)",
        result.to_json(),
        file_name=f"{stem}-summary.json",
        mime="application/json",
        on_click="ignore",
        icon=":material/download:",
    )
    downloads.download_button(
        "Time series (CSV)",
        result.timeseries.to_csv(index=False),
        file_name=f"{stem}-timeseries.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
    )


def _chart(column: Any, figure: Any, events: pd.DataFrame) -> None:
    column.plotly_chart(figures.add_event_markers(figure, events), theme=None, width="stretch")


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


def _show_history() -> None:
    history = st.session_state.get(HISTORY_KEY)
    if not history:
        return
    st.subheader("Run history")
    st.dataframe(pd.DataFrame(history), hide_index=True, width="stretch")
