"""The Compare and Sweep pages under AppTest: parallel experiments, their figures and errors.

The pages run :mod:`sim.experiment` on a spawn process pool of two workers; the expected tables
come from the same experiment run serially (every executor gives identical rows for identical
seeds). ``memcg-oom-group`` (20 requests/s, one OOM at 60 s) keeps each run short.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from sim import experiment

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
OOM = "memcg-oom-group"
LIMIT = "services.renderer.resources.limits.memory"


def _page(path: str, scenario: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(path).run()
    prefix = path.removeprefix("views/").removesuffix(".py")
    at.selectbox(key=f"{prefix}.catalogue").set_value(scenario).run()
    assert not at.exception
    return at


@pytest.fixture
def compare_page() -> AppTest:
    """The Compare page with memcg-oom-group selected."""
    return _page("views/compare.py", OOM)


@pytest.fixture
def sweep_page() -> AppTest:
    """The Sweep page with memcg-oom-group selected."""
    return _page("views/sweep.py", OOM)


def test_compare_runs_variants_in_parallel_with_intervals(compare_page: AppTest) -> None:
    """Two variants x 2 reps on the pool: the statistics are the serial experiment's."""
    at = compare_page
    assert [t.value for t in at.title] == [f"Compare: {experiment.run(OOM).scenario.title}"]
    at.multiselect(key=f"compare.{OOM}.variants").set_value(["baseline", "single-process"])
    at.number_input(key=f"compare.{OOM}.reps").set_value(2)
    at.number_input(key=f"compare.{OOM}.duration").set_value(120.0)
    at.number_input(key="compare.jobs").set_value(2)
    at.button(key="FormSubmitter:compare.form-Compare").click().run()
    assert not at.exception
    assert not at.error
    expected = experiment.compare(
        OOM, ["baseline", "single-process"], 2, duration=120.0, executor="serial"
    )
    shown = at.dataframe[0].value.reset_index(drop=True)
    wanted = expected.stats[expected.stats["metric"].isin(shown["metric"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(shown, wanted, check_dtype=False)
    oom = shown[(shown["metric"] == "oom_kills") & (shown["variant"] == "single-process")]
    assert oom["diff"].iloc[0] == -3.0, "one kill instead of the group's four"
    # KPI bars, paired differences, SLO windows of the first replications overlaid
    assert len(at.get("plotly_chart")) == 3
    labels = [b.label for b in at.get("download_button")]
    assert labels[:2] == ["Runs (Parquet)", "Runs (CSV)"]


def test_compare_needs_two_variants(compare_page: AppTest) -> None:
    """One variant is not a comparison: a warning, nothing run."""
    at = compare_page
    at.multiselect(key=f"compare.{OOM}.variants").set_value(["baseline"])
    at.button(key="FormSubmitter:compare.form-Compare").click().run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["Choose at least two variants to compare."]
    assert not at.get("plotly_chart")


def test_sweep_draws_heatmaps_of_the_grid(sweep_page: AppTest) -> None:
    """Two memory limits, one replication each: four heatmaps of the serial sweep's means."""
    at = sweep_page
    at.selectbox(key=f"sweep.{OOM}.x").set_value(LIMIT).run()
    at.selectbox(key=f"sweep.{OOM}.y").set_value("(none)").run()
    at.text_input(key=f"sweep.{OOM}.baseline.x.{LIMIT}").set_value("1Gi, 2Gi")
    at.number_input(key=f"sweep.{OOM}.reps").set_value(1)
    at.number_input(key="sweep.jobs").set_value(2)
    at.button(key="FormSubmitter:sweep.form-Sweep").click().run()
    assert not at.exception
    assert not at.error
    expected = experiment.sweep(OOM, {LIMIT: ["1Gi", "2Gi"]}, 1, executor="serial")
    pd.testing.assert_frame_equal(
        at.dataframe[0].value.reset_index(drop=True), expected.summary, check_dtype=False
    )
    charts = at.get("plotly_chart")
    assert len(charts) == 4
    kills = expected.summary[expected.summary["metric"] == "oom_kills"]["mean"].tolist()
    assert kills == [4.0, 0.0]


def test_sweep_reports_bad_values_without_a_traceback(sweep_page: AppTest) -> None:
    """A value the scenario rejects is the scenario's own one-line message."""
    at = sweep_page
    at.selectbox(key=f"sweep.{OOM}.x").set_value(LIMIT).run()
    at.selectbox(key=f"sweep.{OOM}.y").set_value("(none)").run()
    at.text_input(key=f"sweep.{OOM}.baseline.x.{LIMIT}").set_value("1Gb")
    at.button(key="FormSubmitter:sweep.form-Sweep").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"{LIMIT}: unknown memory unit 'Gb' in '1Gb' (use B, Ki, Mi, Gi, Ti, k, M, G or T)"
    ]
    assert not at.get("plotly_chart")
