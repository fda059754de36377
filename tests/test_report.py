"""The standalone HTML report and the ``faultlab report`` verb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sim import run
from ui.report import build_report


def test_run_report_has_one_plotly_bundle_kpis_and_figures(tmp_path: Path):
    result = run("three-tier", duration=90.0)
    result.save(tmp_path, ("parquet",))
    text = build_report(tmp_path).read_text(encoding="utf-8")
    assert text.count("plotly.js v") == 1
    assert "Availability" in text
    assert "p99 latency" in text
    assert text.count('class="figure"') == 7


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
