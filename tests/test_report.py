"""The standalone HTML report and the ``faultlab report`` verb."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim import Scenario, experiment, run
from sim.experiment import HEADLINE_FILE, SCENARIO_FILE
from ui.report import ReportError, build_report, comparison_report, run_report


def test_run_report_has_one_plotly_bundle_kpis_and_figures(tmp_path: Path):
    """A saved run with its analysis: the explorer's timeline and topology, plotly.js once."""
    done = experiment.run("three-tier", duration=90.0)
    done.save(tmp_path)
    text = build_report(tmp_path).read_text(encoding="utf-8")
    assert text.count("plotly.js v") == 1
    assert "Availability" in text
    assert "p99 latency" in text
    assert text.count('class="figure"') == 7
    # the explorer's builders: the timeline's lines and the topology's time slider
    assert "Incident timeline" in text
    assert "Topology coloured by impact (the slider moves through the run)" in text
    assert done.analysis.timeline["text"].iloc[1] in text  # "payments-0 terminated (Error..."
    assert '"sliders"' in text
    # the analysis' KPIs, not dashes: three-tier's crash of payments breaks frontend too
    blast = done.analysis.headline()["blast_radius"]
    assert f"<td>{blast} (" in text


def test_saved_run_round_trips_the_scenario_and_analysis(tmp_path: Path):
    """Run.save writes the scenario as run (variant applied, no variants) and its analysis."""
    done = experiment.run("three-tier", "baseline", duration=90.0)
    done.save(tmp_path)
    loaded = Scenario.model_validate_json((tmp_path / SCENARIO_FILE).read_text(encoding="utf-8"))
    assert loaded == done.scenario.model_copy(update={"variants": {}})
    slo = pd.read_parquet(tmp_path / "slo.parquet")
    pd.testing.assert_frame_equal(slo, done.analysis.slo, check_dtype=False)
    assert len(pd.read_parquet(tmp_path / "timeline.parquet")) == len(done.analysis.timeline)


def test_run_without_analysis_reports_without_timeline_or_topology(tmp_path: Path):
    """A directory of RunResult.save alone: the charts, and one line saying what is missing."""
    run("three-tier", duration=90.0).save(tmp_path, ("parquet",))
    text = build_report(tmp_path).read_text(encoding="utf-8")
    assert text.count('class="figure"') == 5
    assert "this directory has no scenario.json" in text


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True, check=False
    )


def test_report_verb_good_and_bad(tmp_path: Path):
    run("three-tier", duration=90.0).save(tmp_path / "r", ("parquet",))
    good = _cli("report", str(tmp_path / "r"))
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "r" / "report.html").exists()
    bad = _cli("report", str(tmp_path / "missing"))
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith("error:")


def test_run_report_in_memory_is_the_saved_runs_report(tmp_path: Path):
    """The app's download: the same page as `faultlab report` of the saved run, titled by run."""
    done = experiment.run("three-tier", duration=90.0)
    text = run_report(done)
    assert "<title>faultlab report — three-tier / baseline</title>" in text
    done.save(tmp_path)
    saved = build_report(tmp_path).read_text(encoding="utf-8")
    # the same page after the title, but for plotly's random div ids
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert uuid.sub("", text.split("</h1>", 1)[1]) == uuid.sub("", saved.split("</h1>", 1)[1])


def test_comparison_report_in_memory_has_the_comparison_and_one_run():
    """A lesson's download: every design's KPIs with CIs, then the scenario as written in full."""
    comparison = experiment.compare("three-tier", reps=1, duration=90.0, jobs=1)
    shown = experiment.run("three-tier", "baseline", duration=90.0)
    text = comparison_report(comparison, shown)
    assert "<title>faultlab report — three-tier: baseline, more-payment-workers</title>" in text
    assert "Comparison: mean and 95% CI over replications" in text
    assert "three-tier / baseline, seed 1" in text
    assert text.count("plotly.js v") == 1
    # the KPI table has a column per design; the KPI bars carry their intervals
    assert text.count("<th>baseline</th>") == text.count("<th>more-payment-workers</th>") == 1
    assert '"error_y"' in text.split("three-tier / baseline, seed 1")[0]
    # one figure of means, then the run's seven: throughput, p99, memory, instances,
    # breakers, incident timeline, topology
    assert text.count("Plotly.newPlot") == 8
    headings = re.findall(r"<h3>([^<]*)</h3>", text)
    assert headings[0] == "Throughput and errors by outcome"
    assert headings[-1].startswith("Topology coloured by impact")
    assert len(headings) == 7


def test_report_of_a_run_under_an_otp_supervisor():
    """A service under a supervisor has no restart policy: its saved scenario reads back."""
    text = run_report(experiment.run("poison-pill", "otp", duration=90.0))
    assert "<title>faultlab report — poison-pill / otp</title>" in text
    assert "Topology coloured by impact" in text


def test_unreadable_saved_scenario_is_a_report_error(tmp_path: Path):
    """A scenario.json that does not validate is one clear error, not a traceback."""
    experiment.run("three-tier", duration=90.0).save(tmp_path)
    (tmp_path / SCENARIO_FILE).write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(ReportError) as raised:
        build_report(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / SCENARIO_FILE}: not a saved scenario (")
    assert "errors; first: " in message
    assert "\n" not in message


def test_broken_json_of_a_saved_run_is_one_line_naming_the_file(tmp_path: Path):
    experiment.run("three-tier", duration=90.0).save(tmp_path)
    (tmp_path / HEADLINE_FILE).write_text("not json{", encoding="utf-8")
    with pytest.raises(ReportError) as raised:
        build_report(tmp_path)
    assert (
        str(raised.value) == f"{tmp_path / HEADLINE_FILE}: not valid JSON (Expecting value, line 1)"
    )


def test_missing_table_is_named_in_the_report_error(tmp_path: Path):
    """A run directory without its time series: the error names the missing file."""
    run("three-tier", duration=90.0).save(tmp_path, ("parquet",))
    (tmp_path / "timeseries.parquet").unlink()
    with pytest.raises(
        ReportError, match=r"cannot read the results: timeseries\.parquet is missing"
    ):
        build_report(tmp_path)
