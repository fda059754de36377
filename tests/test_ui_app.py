"""The explorer page under ``streamlit.testing.v1.AppTest``: the real app, no browser.

Each test starts ``ui/app.py`` (the router) and drives the explorer's widgets. The expected
values come from calling the model directly with the same arguments
(:func:`sim.experiment.run`: the run and its analysis), formatted as the page documents
(``ui/kpis.py``, tested in ``test_ui_figures.py``). Cheap catalogue scenarios keep it quick:
``memcg-oom-group`` (20 requests/s) and a short ``three-tier``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from sim import experiment, load_scenario
from sim.scenario import load_scenario_text
from ui import kpis

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "ui" / "app.py"
BAD = Path(__file__).parent / "bad_scenarios"
OOM = "memcg-oom-group"
"""One memcg OOM at 60 s that group-kills the renderer; 20 requests/s, so runs are quick."""
LIMIT = "services.renderer.resources.limits.memory"


@pytest.fixture
def app() -> AppTest:
    """The app after its first run (catalogue source, the featured scenario selected)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _choose(at: AppTest, scenario: str) -> AppTest:
    at.selectbox(key="explorer.catalogue").set_value(scenario)
    return at.run()


def _press_run(
    at: AppTest,
    scenario: str,
    duration: float | None = None,
    variant: str = "baseline",
    knobs: dict[str, object] | None = None,
) -> AppTest:
    prefix = f"explorer.{scenario}"
    if variant != "baseline":
        at.selectbox(key=f"{prefix}.variant").set_value(variant).run()
    if duration is not None:
        at.number_input(key=f"{prefix}.duration").set_value(duration)
    for path, value in (knobs or {}).items():
        at.number_input(key=f"{prefix}.{variant}.{path}").set_value(value)
    at.button(key="FormSubmitter:explorer.run-Run").click()
    return at.run()


def _kpis(run: experiment.Run) -> dict[str, str]:
    summary, headline = run.result.summary, run.analysis.headline()
    return {kpi.label: kpi.value for kpi in kpis.headline_kpis(summary, headline)}


def _shown(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_router_opens_the_explorer(app: AppTest) -> None:
    """The app starts on the explorer: narrative, variants, run knobs and schema knobs."""
    assert "three-tier" in app.selectbox(key="explorer.catalogue").options
    _choose(app, "three-tier")
    scenario = load_scenario("three-tier")
    assert [t.value for t in app.title] == [scenario.title]
    assert app.expander[0].label == "Narrative"
    assert app.expander[0].markdown[0].value == scenario.description.strip()
    assert app.selectbox(key="explorer.three-tier.variant").options == [
        "baseline",
        "more-payment-workers",
    ]
    assert app.number_input(key="explorer.three-tier.seed").value == scenario.seed
    assert app.number_input(key="explorer.three-tier.duration").value == scenario.duration
    groups = [e.label for e in app.expander[1:]]
    assert groups[:3] == ["Workload", "Service frontend", "Call frontend → cart"]
    assert "Fault payments-crash: crash on payments" in groups
    workers = app.number_input(key="explorer.three-tier.baseline.services.payments.workers")
    assert (workers.label, workers.value) == ("workers", 8)
    limit = app.number_input(
        key="explorer.three-tier.baseline.services.payments.resources.limits.memory"
    )
    assert (limit.label, limit.value) == ("resources.limits.memory (MiB)", 256.0)
    breaker = app.toggle(
        key="explorer.three-tier.baseline.services.frontend.calls.cart.circuit_breaker"
    )
    assert (breaker.label, breaker.value) == ("circuit_breaker", False)
    assert not app.metric, "no results before Run"


def test_variant_sets_the_knobs_starting_values(app: AppTest) -> None:
    """Picking a variant redraws the knobs with the variant's values."""
    _choose(app, "three-tier")
    app.selectbox(key="explorer.three-tier.variant").set_value("more-payment-workers").run()
    key = "explorer.three-tier.more-payment-workers.services.payments.workers"
    assert app.number_input(key=key).value == 16


def test_run_shows_the_models_numbers(app: AppTest) -> None:
    """Run memcg-oom-group: KPIs, charts and tables are exactly those of the model's run."""
    _press_run(_choose(app, OOM), OOM)
    assert not app.exception
    assert not app.error
    expected = experiment.run(OOM)
    assert _shown(app) == _kpis(expected)
    assert _shown(app)["OOM kills"] == "4"
    assert [m.label for m in app.metric] == [
        "Availability",
        "p99 latency",
        "Blast radius",
        "Containment",
        "Time to recover",
        "Verdict",
        "OOM kills",
        "Evictions",
        "Restarts",
    ]
    assert [t.label for t in app.tabs] == [
        "Time series",
        "Topology",
        "Incident timeline",
        "Event log",
        "Why requests failed",
        "Downloads",
    ]
    # throughput, p99, instance states, memory, topology, incident timeline (nothing queued)
    assert len(app.get("plotly_chart")) == 6
    timeline, event_log, failures, history = (d.value for d in app.dataframe)
    assert list(timeline["text"]) == list(expected.analysis.timeline["text"])
    pd.testing.assert_frame_equal(
        event_log.reset_index(drop=True), expected.result.events, check_dtype=False
    )
    assert len(failures) == len(expected.result.failures)
    assert list(history["Availability"]) == [_kpis(expected)["Availability"]]
    assert [b.label for b in app.get("download_button")] == [
        "Summary (JSON)",
        "Time series (Parquet)",
        "Time series (CSV)",
        "Events (Parquet)",
        "Events (CSV)",
        "Timeline (Parquet)",
        "Timeline (CSV)",
        "Scenario YAML",
        "HTML report",
    ]


def test_changed_knobs_change_the_kpis(app: AppTest) -> None:
    """A 2 GiB renderer limit: no memcg OOM, so no kills and no restart; the model agrees."""
    _choose(app, OOM)
    _press_run(app, OOM)
    before = _shown(app)
    _press_run(app, OOM, knobs={LIMIT: 2048.0})
    assert not app.exception
    after = _shown(app)
    expected = experiment.run(OOM, overrides={LIMIT: 2 * 1024**3})
    assert after == _kpis(expected)
    assert (before["OOM kills"], after["OOM kills"]) == ("4", "0")
    assert before["Availability"] != after["Availability"]
    history = app.dataframe[-1].value
    assert list(history["edits"]) == [f'{{"{LIMIT}": {2 * 1024**3}}}', ""]
    assert [b.label for b in app.get("download_button")][-2] == "Scenario YAML (with your edits)"


def test_pattern_toggle_switches_a_breaker_on(app: AppTest) -> None:
    """The circuit-breaker toggle on web -> renderer runs the scenario with a breaker."""
    _choose(app, OOM)
    app.toggle(
        key=f"explorer.{OOM}.baseline.services.web.calls.renderer.circuit_breaker"
    ).set_value(True)
    _press_run(app, OOM)
    assert not app.exception
    expected = experiment.run(OOM, overrides={"services.web.calls.renderer.circuit_breaker": {}})
    assert _shown(app) == _kpis(expected)
    # the breaker chart joins the six of a run without one
    assert len(app.get("plotly_chart")) == 7


def test_variant_run_history_and_pins(app: AppTest) -> None:
    """Two runs, both pinned: the history lists them newest first and one chart overlays them."""
    _choose(app, OOM)
    _press_run(app, OOM)
    app.button(key="explorer.pin").click().run()
    _press_run(app, OOM, variant="single-process")
    assert not app.exception
    assert _shown(app) == _kpis(experiment.run(OOM, "single-process"))
    app.button(key="explorer.pin").click().run()
    history = app.dataframe[-1].value
    assert list(history["variant"]) == ["single-process", "baseline"]
    assert list(history["run"]) == ["#2", "#1"]
    overlay = app.get("plotly_chart")[-1]
    names = {trace["name"] for trace in json.loads(overlay.proto.spec)["data"]}
    assert names == {f"#1 {OOM}/baseline seed 5", f"#2 {OOM}/single-process seed 5"}
    app.button(key="explorer.unpin").click().run()
    assert len(app.get("plotly_chart")) == 6


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


def test_knobs_that_break_the_scenario_show_its_problems(app: AppTest) -> None:
    """A memory limit below the request is the scenario's error message, not a traceback."""
    _choose(app, OOM)
    _press_run(app, OOM, knobs={LIMIT: 512.0})
    assert not app.exception
    assert [e.value for e in app.error] == [
        "services.renderer.resources: requests.memory must not exceed limits.memory"
    ]
    assert not app.metric


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
    expected = experiment.run(
        load_scenario_text(minimal_scenario_yaml, "minimal.yaml"), duration=40.0
    )
    assert _shown(app) == _kpis(expected)


def test_every_catalogue_scenario_opens_on_every_page(app: AppTest) -> None:
    """Each catalogue scenario draws its explorer form, comparison and sweep forms and lesson."""
    names = app.selectbox(key="explorer.catalogue").options
    for name in names:
        _choose(app, name)
        assert not app.exception, name
        assert app.button(key="FormSubmitter:explorer.run-Run"), name
    for page, key in (
        ("views/compare.py", "compare.catalogue"),
        ("views/sweep.py", "sweep.catalogue"),
        ("views/training.py", "training.lesson"),
    ):
        app.switch_page(page).run()
        for name in names:
            app.selectbox(key=key).set_value(name).run()
            assert not app.exception, (page, name)
            assert not app.error, (page, name)
