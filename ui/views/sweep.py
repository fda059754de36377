"""Sweep one or two scenario fields over a grid: heatmaps and the metastability map.

Pick one or two fields (the explorer's knobs, by dotted path) and their values (YAML values with
units, comma-separated: ``140/s, 280/s``), a variant, replications and seeds; the page runs
:func:`sim.experiment.sweep` on a local process pool, showing its progress, and draws per cell
the mean over replications of the blast radius, the time to recover, the availability, and the
share of replications that were metastable (the metastability map: where the system does not
come back once the trigger is gone). A point that makes the scenario invalid is reported with
the scenario's own message before anything runs.

Session state: ``sweep.result``, the last :class:`Swept`, shown while the same scenario is
selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st
import yaml

from sim import Scenario
from sim.experiment import Sweep, designs, sweep
from ui import figures
from ui.knobs import scenario_knobs, sweep_values, sweepable
from ui.views import shared

RESULT_KEY = "sweep.result"  # shared.design_page's key for this page
NONE = "(none)"
# The second parameter's choice for a one-parameter sweep.

HEATMAPS = figures.SWEEP_HEATMAPS


@dataclass(frozen=True)
class Swept:
    """A sweep as the page keeps it: the scenario key, the swept paths, the tables."""

    key: str
    x: str
    y: str | None
    result: Sweep


def parse_values(text: str) -> list[Any]:
    """Comma-separated YAML values: ``140/s, 280/s`` -> ``["140/s", "280/s"]``, ``8, 16`` -> ints.

    Raises:
        ValueError: an empty list, or an item that is not a YAML value.
    """
    values = []
    for item in text.split(","):
        if not item.strip():
            continue
        try:
            values.append(yaml.safe_load(item))
        except yaml.YAMLError as exc:
            reason = str(exc).splitlines()[0]
            raise ValueError(f"{item.strip()!r} is not a YAML value ({reason})") from None
    if not values:
        raise ValueError("no value given")
    return values


def page() -> None:
    """Draw the Sweep page."""
    shared.design_page(
        "sweep",
        "Sweep",
        "Parameter sweep",
        _form,
        _sweep,
        _show,
        "Choose one or two fields and their values in the sidebar, then press Sweep.",
    )


def _default_axes(paths: list[str]) -> tuple[str, str]:
    """Load along x and the first fault's magnitude (or length) along y, where there are."""
    x = "workload.rate.rate" if "workload.rate.rate" in paths else paths[0]
    faults = [p for p in paths if p.startswith("faults.") and not p.endswith(".at")]
    return x, faults[0] if faults else NONE


def _form(scenario: Scenario) -> dict[str, Any] | None:
    prefix = f"sweep.{scenario.name}"
    variant = st.selectbox("Variant", designs(scenario), key=f"{prefix}.variant")
    knobs = {k.path: k for k in sweepable(scenario_knobs(scenario.with_variant(variant)))}
    paths = list(knobs)
    default_x, default_y = _default_axes(paths)
    x = st.selectbox("Field along x", paths, index=paths.index(default_x), key=f"{prefix}.x")
    y_options = [NONE, *paths]
    y = st.selectbox(
        "Field along y", y_options, index=y_options.index(default_y), key=f"{prefix}.y"
    )
    with st.form("sweep.form"):
        st.subheader("Grid")
        x_text = st.text_input(
            f"Values of {x}",
            sweep_values(knobs[x]),
            key=f"{prefix}.{variant}.x.{x}",
            help=knobs[x].help + " YAML values, comma-separated; units as in a scenario file.",
        )
        y_text = (
            st.text_input(
                f"Values of {y}",
                sweep_values(knobs[y]),
                key=f"{prefix}.{variant}.y.{y}",
                help=knobs[y].help + " YAML values, comma-separated; units as in a scenario file.",
            )
            if y != NONE
            else ""
        )
        reps = st.number_input(
            "Replications per point", min_value=1, value=3, step=1, key=f"{prefix}.reps"
        )
        seed, duration, jobs = shared.seed_duration_jobs(scenario, prefix, "sweep.jobs")
        pressed = st.form_submit_button("Sweep", type="primary", width="stretch")
    if not pressed:
        return None
    return {
        "variant": variant,
        "x": (x, x_text),
        "y": None if y == NONE else (y, y_text),
        "reps": int(reps),
        "seed": int(seed),
        "duration": float(duration),
        "jobs": int(jobs),
    }


def _sweep(scenario: Scenario, key: str, request: dict[str, Any]) -> None:
    grid: dict[str, list[Any]] = {}
    for axis in (request["x"], request["y"]):
        if axis is None:
            continue
        path, text = axis
        try:
            grid[path] = parse_values(text)
        except ValueError as exc:
            st.error(f"{path}: {exc}", icon=":material/error:")
            return
    if request["y"] is not None and request["y"][0] == request["x"][0]:
        st.error("Choose two different fields, or (none) along y.", icon=":material/error:")
        return
    total = (
        request["reps"]
        * len(grid[request["x"][0]])
        * (len(grid[request["y"][0]]) if request["y"] else 1)
    )
    bar = st.progress(0.0, text=f"Starting the workers for {total} runs…")

    def progress(done: int, all_runs: int) -> None:
        bar.progress(done / all_runs, text=f"{done} of {all_runs} runs done")

    try:
        result = sweep(
            scenario,
            grid,
            request["reps"],
            variants=[request["variant"]],
            seed=request["seed"],
            duration=request["duration"],
            executor="process",
            jobs=request["jobs"],
            progress=progress,
        )
    except Exception as exc:  # the UI's boundary: bad input is a message, never a traceback
        bar.empty()
        shared.show_failure("The sweep", exc)
        return
    bar.empty()
    y = request["y"][0] if request["y"] else None
    st.session_state[RESULT_KEY] = Swept(key, request["x"][0], y, result)


def _show(scenario: Scenario, stored: Swept) -> None:
    result = stored.result
    failed = result.runs[result.runs["error"].notna()]
    for row in failed.to_dict("records"):
        st.warning(f"point {row['point']} seed {row['seed']} failed: {row['error']}")
    st.header("Results")
    st.caption(
        f"{len(result.runs)} runs of variant `{result.runs['variant'].iloc[0]}`: "
        f"{result.runs['point'].nunique()} points x {result.runs['rep'].nunique()} replications "
        "on common seeds. Each cell: the mean over replications and their number (n); a metric "
        "a run cannot define (no trigger end, no recovery) is left out of its cell's mean."
    )
    columns = st.columns(2)
    for index, (metric, title, colours, share) in enumerate(HEATMAPS):
        columns[index % 2].plotly_chart(
            figures.sweep_heatmap(
                result.summary, metric, stored.x, stored.y, title, colorscale=colours, share=share
            ),
            theme=None,
            width="stretch",
        )
    st.subheader("Summary")
    st.dataframe(result.summary, hide_index=True, width="stretch")
    st.subheader("Downloads")
    shared.table_downloads(
        f"{scenario.name}-sweep",
        {"Runs": result.runs, "Summary": result.summary, "Events": result.events},
        key="sweep.download",
    )


if __name__ == "__main__":
    page()
