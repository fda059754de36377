"""The explorer page under ``streamlit.testing.v1.AppTest``: the real app, no browser.

Each test starts ``ui/app.py`` (the router) and drives the explorer's widgets. The expected
values come from calling the model directly with the same arguments, formatted the way the page
documents (``ui/kpis.py``): availability with three decimals, p99 in ms, counts with separators.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from sim import load_scenario, run
from sim.scenario import load_scenario_text

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "ui" / "app.py"
BAD = Path(__file__).parent / "bad_scenarios"
DURATION = 70.0
"""Past three-tier's crash at 60 s and the restart 5 s later, and short enough to be quick."""


@pytest.fixture
def app() -> AppTest:
    """The app after its first run (catalogue source, first scenario selected)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _choose(at: AppTest, scenario: str) -> AppTest:
    at.selectbox(key="explorer.catalogue").set_value(scenario)
    return at.run()


def _press_run(at: AppTest, scenario: str, duration: float, variant: str | None = None) -> AppTest:
    prefix = f"explorer.{scenario}"
    at.number_input(key=f"{prefix}.duration").set_value(duration)
    if variant is not None:
        at.selectbox(key=f"{prefix}.variant").set_value(variant)
    at.button(key="FormSubmitter:explorer.run-Run").click()
    return at.run()


def _expected_kpis(summary: dict[str, object]) -> dict[str, str]:
    p99 = float(summary["latency_p99"])  # type: ignore[arg-type]
    assert p99 < 1.0, "the p99 format below is the millisecond one"
    return {
        "Availability": f"{float(summary['availability']):.3%}",  # type: ignore[arg-type]
        "p99 latency": f"{p99 * 1000:.0f} ms",
        "Arrivals": f"{summary['arrivals']:,}",
        "OOM kills": f"{summary['oom_kills']:,}",
        "Evictions": f"{summary['evictions']:,}",
        "Restarts": f"{summary['restarts']:,}",
        "In flight at end": f"{summary['in_flight_at_end']:,}",
    }


def test_router_opens_the_explorer(app: AppTest) -> None:
    """The app starts on the explorer with a catalogue scenario, its narrative and a run form."""
    names = app.selectbox(key="explorer.catalogue").options
    assert "three-tier" in names
    _choose(app, "three-tier")
    scenario = load_scenario("three-tier")
    assert [t.value for t in app.title] == [scenario.title]
    assert [e.label for e in app.expander] == ["Narrative"]
    assert app.expander[0].markdown[0].value == scenario.description.strip()
    assert app.selectbox(key="explorer.three-tier.variant").options == [
        "(none)",
        "baseline",
        "more-payment-workers",
    ]
    assert app.number_input(key="explorer.three-tier.seed").value == scenario.seed
    assert app.number_input(key="explorer.three-tier.duration").value == scenario.duration
    assert not app.metric, "no results before Run"


def test_run_shows_the_models_numbers(app: AppTest) -> None:
    """Run three-tier for 70 s: KPIs, charts and tables are exactly those of sim.run."""
    _press_run(_choose(app, "three-tier"), "three-tier", DURATION)
    assert not app.exception
    assert not app.error
    expected = run(load_scenario("three-tier"), duration=DURATION)

    assert {m.label: m.value for m in app.metric} == _expected_kpis(expected.summary)
    assert [m.label for m in app.metric] == list(_expected_kpis(expected.summary))
    assert len(app.get("plotly_chart")) == 5

    event_log, failures, history = (d.value for d in app.dataframe)
    pd.testing.assert_frame_equal(
        event_log.reset_index(drop=True), expected.events, check_dtype=False
    )
    assert len(failures) == len(expected.failures)
    assert list(history["Availability"]) == [_expected_kpis(expected.summary)["Availability"]]
    assert list(history["duration (s)"]) == ["70"]
    assert [b.label for b in app.get("download_button")] == [
        "Summary (JSON)",
        "Time series (CSV)",
    ]


def test_variant_run_and_history(app: AppTest) -> None:
    """A second run with a variant is shown, and the history lists both runs, newest first."""
    _choose(app, "three-tier")
    _press_run(app, "three-tier", DURATION)
    _press_run(app, "three-tier", DURATION, variant="more-payment-workers")
    assert not app.exception
    expected = run(load_scenario("three-tier"), variant="more-payment-workers", duration=DURATION)
    assert {m.label: m.value for m in app.metric} == _expected_kpis(expected.summary)
    history = app.dataframe[-1].value
    assert list(history["variant"]) == ["more-payment-workers", "(none)"]


def test_bad_upload_shows_each_problem_without_a_traceback(app: AppTest) -> None:
    """An invalid upload lists its problem as file:line:col: path: message and offers no Run."""
    app.radio(key="explorer.source").set_value("Upload YAML").run()
    data = (BAD / "unknown-field.yaml").read_bytes()
    app.file_uploader(key="explorer.upload").upload("unknown-field.yaml", data, "application/yaml")
    app.run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "unknown-field.yaml:7:5: services.frontend.replica: unknown field"
    ]
    assert [h.value for h in app.subheader] == ["1 problem in the scenario"]
    assert not app.button, "no run form for an invalid scenario"
    assert not app.metric


def test_bad_upload_with_several_problems_gives_one_error_each(app: AppTest) -> None:
    """Two mistakes in one file: two error boxes, in file order."""
    text = (BAD / "unknown-field.yaml").read_text().replace("memory: 4Gi", "memory: 4Gb")
    app.radio(key="explorer.source").set_value("Upload YAML").run()
    app.file_uploader(key="explorer.upload").upload("two.yaml", text.encode(), "application/yaml")
    app.run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "two.yaml:4:28: hosts.0.memory: "
        "unknown memory unit 'Gb' in '4Gb' (use B, Ki, Mi, Gi, Ti, k, M, G or T)",
        "two.yaml:7:5: services.frontend.replica: unknown field",
    ]


def test_valid_upload_runs(app: AppTest, minimal_scenario_yaml: str) -> None:
    """A valid uploaded scenario runs like the same text loaded through the API."""
    app.radio(key="explorer.source").set_value("Upload YAML").run()
    app.file_uploader(key="explorer.upload").upload(
        "minimal.yaml", minimal_scenario_yaml.encode(), "application/yaml"
    )
    app.run()
    assert not app.error
    _press_run(app, "minimal", 40.0)
    assert not app.exception
    expected = run(load_scenario_text(minimal_scenario_yaml, "minimal.yaml"), duration=40.0)
    assert {m.label: m.value for m in app.metric} == _expected_kpis(expected.summary)
