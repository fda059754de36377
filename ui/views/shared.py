"""Streamlit pieces every page uses: the scenario picker, problem lists, KPI rows, downloads.

Widget keys are prefixed with the page's name (``explorer.``, ``compare.`` ...), so each page
keeps its own choices in the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from sim import Scenario, ScenarioError
from ui import kpis, runs

CATALOGUE = "Catalogue"
UPLOAD = "Upload YAML"
FEATURED = "checkout-noisy-neighbor"
"""The catalogue scenario pages open with: the flagship."""


def pick_scenario(prefix: str) -> Scenario | ScenarioError | None:
    """The scenario source widgets: the chosen scenario, why it is invalid, or ``None``."""
    source = st.radio("Source", [CATALOGUE, UPLOAD], horizontal=True, key=f"{prefix}.source")
    if source == CATALOGUE:
        names = runs.catalogue()
        if not names:
            return None
        first = names.index(FEATURED) if FEATURED in names else 0
        name = st.selectbox("Catalogue scenario", names, index=first, key=f"{prefix}.catalogue")
        return load(lambda: runs.catalogue_scenario(name))
    uploaded = st.file_uploader(
        "Scenario YAML", type=["yaml", "yml"], key=f"{prefix}.upload", max_upload_size=5
    )
    if uploaded is None:
        st.caption("A scenario file in faultlab's YAML format; problems are listed one per line.")
        return None
    return load(lambda: runs.uploaded_scenario(uploaded.name, uploaded.getvalue()))


def design_page(
    page: str,
    heading: str,
    empty_title: str,
    form: Callable[[Scenario], dict[str, Any] | None],
    run: Callable[[Scenario, str, dict[str, Any]], None],
    show: Callable[[Scenario, Any], None],
    hint: str,
) -> None:
    """The frame of a page that runs a design of many runs (Compare, Sweep).

    Without a scenario the page is titled ``empty_title``; with one, ``heading: <its title>``.
    The sidebar picks the scenario and holds ``form`` (its request, or None until submitted);
    ``run`` computes and stores the result in ``st.session_state[f"{page}.result"]`` (an object
    with the scenario's ``key``); ``show`` draws a stored result of this scenario; ``hint`` says
    what to do before any.
    """
    with st.sidebar:
        st.header("Scenario")
        picked = pick_scenario(page)
        scenario = picked if isinstance(picked, Scenario) else None
        request = form(scenario) if scenario is not None else None
    if scenario is None:
        no_scenario(picked, empty_title)
        return
    st.title(f"{heading}: {scenario.title or scenario.name}")
    st.caption(scenario_caption(scenario))
    key = runs.scenario_key(scenario)
    if request is not None:
        run(scenario, key, request)
    stored = st.session_state.get(f"{page}.result")
    if stored is not None and stored.key == key:
        show(scenario, stored)
    elif request is None:
        st.info(hint)


def load(loader: Callable[[], Scenario]) -> Scenario | ScenarioError:
    """Call ``loader``; a :class:`sim.ScenarioError` is returned rather than raised."""
    try:
        return loader()
    except ScenarioError as exc:
        return exc


def no_scenario(picked: Scenario | ScenarioError | None, title: str) -> None:
    """The page body when there is no valid scenario: its problems, or how to pick one."""
    st.title(title)
    if isinstance(picked, ScenarioError):
        st.subheader(count(len(picked.problems), "problem") + " in the scenario")
        show_problems(picked)
    else:
        st.info("Pick a scenario from the catalogue or upload a YAML file in the sidebar.")


def show_problems(exc: ScenarioError) -> None:
    """One ``st.error`` per problem line (``file:line:col: path: message``), no traceback."""
    for line in str(exc).splitlines():
        st.error(line, icon=":material/error:")


def show_failure(what: str, exc: Exception) -> None:
    """A run the model refused: the scenario's problems, or the error in one line."""
    if isinstance(exc, ScenarioError):
        show_problems(exc)
    else:
        st.error(f"{what} failed: {type(exc).__name__}: {exc}", icon=":material/error:")


def count(n: int, noun: str) -> str:
    """``1 host``, ``2 hosts``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def scenario_caption(scenario: Scenario) -> str:
    """One line about a scenario: name, length, seed, sizes, variants."""
    variants = ", ".join(scenario.variants) or "none"
    return (
        f"`{scenario.name}` · {float(scenario.duration):g} s simulated · seed {scenario.seed} · "
        f"{count(len(scenario.hosts), 'host')} · {count(len(scenario.services), 'service')} · "
        f"{count(len(scenario.faults), 'fault')} · variants: {variants}"
    )


def kpi_row(summary: dict[str, Any], headline: dict[str, Any]) -> None:
    """The run's KPIs as a wrapping row of bordered metrics."""
    # A wrapping row: values are never cut to "99.08…" on a narrow window.
    with st.container(horizontal=True, gap="small"):
        for kpi in kpis.headline_kpis(summary, headline):
            st.metric(kpi.label, kpi.value, help=kpi.help, border=True, width="stretch")


def seed_duration_jobs(
    scenario: Scenario,
    prefix: str,
    jobs_key: str,
    seed_label: str = "First seed",
    places: Sequence[Any] | None = None,
) -> tuple[int, float, int]:
    """A design's seed, run length and worker count: the last three fields of its form.

    Args:
        scenario: gives the defaults (its seed and duration).
        prefix: the seed's and the duration's widget keys (``<prefix>.seed``...).
        jobs_key: the worker count's key (one per page: it outlives a change of scenario).
        seed_label: the seed field's label.
        places: three containers to draw them in (columns); default one under another.
    """
    seed_at, duration_at, jobs_at = places or (st, st, st)
    seed = seed_at.number_input(
        seed_label, min_value=0, value=scenario.seed, step=1, key=f"{prefix}.seed"
    )
    duration = duration_at.number_input(
        "Duration (s)",
        min_value=1.0,
        value=float(scenario.duration),
        step=10.0,
        format="%g",
        key=f"{prefix}.duration",
    )
    jobs = jobs_at.number_input(
        "Parallel workers",
        min_value=1,
        value=os.cpu_count() or 1,
        step=1,
        key=jobs_key,
        help="Processes of the local pool (spawn); 1 runs in this process.",
    )
    return int(seed), float(duration), int(jobs)


def table_downloads(name: str, tables: dict[str, pd.DataFrame], key: str) -> None:
    """A Parquet and a CSV download button for each table, in one wrapping row."""
    row = st.container(horizontal=True)
    for label, frame in tables.items():
        stem = f"{name}-{label.lower().replace(' ', '-')}"
        row.download_button(
            f"{label} (Parquet)",
            runs.parquet_bytes(frame),
            file_name=f"{stem}.parquet",
            mime="application/vnd.apache.parquet",
            on_click="ignore",
            icon=":material/download:",
            key=f"{key}.{label}.parquet",
        )
        row.download_button(
            f"{label} (CSV)",
            runs.csv_text(frame),
            file_name=f"{stem}.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
            key=f"{key}.{label}.csv",
        )


def report_download(make: Callable[[], str], file_name: str, key: str) -> None:
    """A download of a standalone HTML report, made by ``make`` only when it is clicked."""
    st.download_button(
        "HTML report",
        make,
        file_name=file_name,
        mime="text/html",
        on_click="ignore",
        icon=":material/download:",
        key=key,
    )


def yaml_download(scenario: Scenario, variant: str, edits: dict[str, Any], key: str) -> None:
    """A download of the scenario YAML with the variant and the user's edits applied."""
    st.download_button(
        "Scenario YAML" + (" (with your edits)" if edits else ""),
        runs.scenario_yaml(scenario, variant, edits),
        file_name=f"{scenario.name}{'-edited' if edits else ''}.yaml",
        mime="application/yaml",
        on_click="ignore",
        icon=":material/download:",
        key=key,
    )
