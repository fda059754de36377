"""Compare variants: replications on common seeds, in parallel, with 95% confidence intervals.

The page runs :func:`sim.experiment.compare` (DESIGN §2.7-2.8) on a local process pool
(:func:`sim.experiment.open_executor`), showing its progress; every variant runs seeds ``seed ..
seed + reps - 1``, so differences are paired by seed. It shows each variant's mean per metric
with its 95% t interval, the paired difference with the reference (the first variant chosen),
the statistics table, and the SLO windows of the first replication of every variant overlaid
(those runs go to the same pool, beside the replications).

Session state: ``compare.result``, the last :class:`Compared`, shown while the same scenario
is selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from sim import Scenario
from sim.experiment import Comparison, Run, compare, designs, open_executor, run
from ui import figures
from ui.views import shared

RESULT_KEY = "compare.result"  # shared.design_page's key for this page

METRIC_TITLES = figures.KPI_TITLES
# The metrics the page draws, in panel order. Page scripts keep notes in comments: Streamlit's
# "magic" would draw a bare string on the page.


@dataclass(frozen=True)
class Compared:
    """A comparison as the page keeps it.

    Attributes:
        key: the scenario's content key (:func:`ui.runs.scenario_key`).
        comparison: the tables and statistics of :func:`sim.experiment.compare`.
        first: the first replication of each variant, run in full (for the overlay).
    """

    key: str
    comparison: Comparison
    first: dict[str, Run]


def page() -> None:
    """Draw the Compare page."""
    shared.design_page(
        "compare",
        "Compare",
        "Compare variants",
        _form,
        lambda scenario, key, request: _compare(scenario, key, **request),
        _show,
        "Choose variants and replications in the sidebar, then press Compare.",
    )


def _form(scenario: Scenario) -> dict[str, Any] | None:
    names = designs(scenario)
    with st.form("compare.form"):
        st.subheader("Design")
        chosen = st.multiselect(
            "Variants (the first is the reference)",
            names,
            default=names,
            key=f"compare.{scenario.name}.variants",
        )
        reps = st.number_input(
            "Replications per variant",
            min_value=2,
            value=5,
            step=1,
            key=f"compare.{scenario.name}.reps",
            help="Seeds seed .. seed + reps - 1, the same for every variant (paired).",
        )
        seed, duration, jobs = shared.seed_duration_jobs(
            scenario, f"compare.{scenario.name}", "compare.jobs"
        )
        pressed = st.form_submit_button("Compare", type="primary", width="stretch")
    if not pressed:
        return None
    return {
        "variants": chosen,
        "reps": int(reps),
        "seed": int(seed),
        "duration": float(duration),
        "jobs": int(jobs),
    }


def _compare(
    scenario: Scenario,
    key: str,
    variants: list[str],
    reps: int,
    seed: int,
    duration: float,
    jobs: int,
) -> None:
    if len(variants) < 2:
        st.warning("Choose at least two variants to compare.")
        return
    bar = st.progress(0.0, text="Starting the workers…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"{done} of {total} replications done")

    try:
        with open_executor("process", jobs) as (pool, _):
            first = {v: pool.submit(run, scenario, v, seed, duration=duration) for v in variants}
            comparison = compare(
                scenario,
                variants,
                reps,
                seed=seed,
                duration=duration,
                executor=pool,
                jobs=jobs,
                progress=progress,
            )
            runs_of_first = {variant: future.result() for variant, future in first.items()}
    except Exception as exc:  # the UI's boundary: bad input is a message, never a traceback
        bar.empty()
        shared.show_failure("The comparison", exc)
        return
    bar.empty()
    st.session_state[RESULT_KEY] = Compared(key, comparison, runs_of_first)


def _show(scenario: Scenario, stored: Compared) -> None:
    comparison = stored.comparison
    failed = comparison.runs[comparison.runs["error"].notna()]
    for row in failed.to_dict("records"):
        st.warning(f"{row['variant']} seed {row['seed']} failed: {row['error']}")
    reps = int(comparison.runs["rep"].max()) + 1
    st.header("Results")
    st.caption(
        f"{len(comparison.runs)} runs: {reps} replications of "
        f"{comparison.runs['variant'].nunique()} variants on common seeds; reference "
        f"`{comparison.reference}`."
    )
    st.plotly_chart(figures.kpi_bars(comparison.stats, METRIC_TITLES), theme=None, width="stretch")
    st.plotly_chart(
        figures.paired_differences(comparison.stats, METRIC_TITLES), theme=None, width="stretch"
    )
    as_run = next(iter(stored.first.values())).scenario
    entry = as_run.workload.entry
    slo = as_run.slo_for(entry)
    st.plotly_chart(
        figures.slo_overlay(
            {f"{v} (seed {r.result.seed})": r.analysis.slo for v, r in stored.first.items()},
            entry,
            slo.availability,
            slo.latency_p99,
        ),
        theme=None,
        width="stretch",
    )
    st.subheader("Statistics")
    stats = comparison.stats[comparison.stats["metric"].isin(list(METRIC_TITLES))]
    st.dataframe(
        stats,
        hide_index=True,
        width="stretch",
        column_config={
            "low": "95% low",
            "high": "95% high",
            "diff": "paired difference",
            "diff_low": "difference 95% low",
            "diff_high": "difference 95% high",
        },
    )
    st.subheader("Downloads")
    shared.table_downloads(
        f"{scenario.name}-compare",
        {"Runs": comparison.runs, "Statistics": comparison.stats, "Events": comparison.events},
        key="compare.download",
    )


if __name__ == "__main__":
    page()
