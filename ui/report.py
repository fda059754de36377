"""The standalone HTML report of a run or a comparison (``faultlab report DIR``).

One self-contained file: plotly.js is embedded once (with the first figure), every other figure
refers to it. The figures are the explorer's (:mod:`ui.figures`), so a chart looks the same in the
app and in the report. Input is an output directory:

* of ``faultlab run --out DIR``: ``summary.json``, ``timeseries.parquet``, ``events.parquet``,
  and the analysis and the scenario as run (``slo.parquet``, ``timeline.parquet``,
  ``scenario.json``: :meth:`sim.experiment.Run.save`) for the incident timeline and the topology;
* of ``faultlab compare --out DIR``: ``stats.parquet`` (comparison bars with 95% CIs, the KPI
  table per variant) and, when ``compare`` wrote them, one run directory per variant under
  ``DIR/runs/<variant>/`` (the first seed), drawn like a run;
* of ``faultlab sweep --out DIR``: ``summary.parquet`` and ``regimes.parquet`` (per design,
  heatmaps over the first two swept paths and the metastability map).

Nothing in ``sim`` imports this module; the CLI imports it lazily.
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from pydantic import ValidationError

from sim import Scenario, ScenarioError
from sim.experiment import BASELINE, HEADLINE_FILE, SCENARIO_FILE, Comparison, Run, shown_variants
from sim.scenario import CrossReferenceError
from ui import figures
from ui.kpis import headline_kpis

REPORT = "report.html"


class ReportError(ValueError):
    """The directory holds nothing a report can be made of."""


class _Page:
    """Sections of HTML; plotly.js goes with the first figure only."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.figures = 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, frame: pd.DataFrame) -> None:
        self.parts.append(frame.to_html(index=False, classes="kpi", border=0, na_rep="—"))

    def figure(self, fig: go.Figure) -> None:
        include: bool | str = "inline" if self.figures == 0 else False
        self.figures += 1
        div = fig.to_html(full_html=False, include_plotlyjs=include is not False)
        self.parts.append(f'<div class="figure">{div}</div>')

    def render(self) -> str:
        style = (
            "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1300px;color:#222}"
            "table.kpi{border-collapse:collapse;margin:1em 0}"
            "table.kpi td,table.kpi th{padding:4px 10px;border-bottom:1px solid #ddd;"
            "text-align:right}table.kpi th{background:#f4f4f4}.figure{margin:1em 0}"
        )
        body = "\n".join(self.parts)
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{style}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        )


def _read_json(path: Path) -> Any:
    """A saved JSON file; a broken one is a :class:`ReportError` naming it, in one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _read_scenario(path: Path) -> Scenario:
    """The saved scenario; one that does not validate is a :class:`ReportError`, in one line."""
    try:
        return Scenario.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ReportError(
            f"{path}: not a saved scenario ({exc.error_count()} errors; first: {where}: "
            f"{first['msg']})"
        ) from None


def _run_sections(page: _Page, directory: Path, title: str | None = None) -> None:
    summary = _read_json(directory / "summary.json")
    ts = pd.read_parquet(directory / "timeseries.parquet")
    events = pd.read_parquet(directory / "events.parquet")
    variant = summary.get("variant") or "as written"
    page.heading(title or f"{summary['scenario']} / {variant}, seed {summary['seed']}")
    saved = directory / HEADLINE_FILE
    headline = _read_json(saved) if saved.exists() else None
    page.table(pd.DataFrame([{k.label: k.value for k in headline_kpis(summary, headline)}]))
    page.heading("Throughput and errors by outcome", 3)
    page.figure(figures.add_event_markers(figures.throughput_by_outcome(ts), events))
    page.heading("p99 latency", 3)
    page.figure(figures.add_event_markers(figures.latency_p99_by_service(ts), events))
    page.heading("Memory vs limits per cgroup", 3)
    page.figure(figures.add_event_markers(figures.memory_vs_limit(ts), events))
    page.heading("Instance states", 3)
    page.figure(figures.add_event_markers(figures.ready_instances(ts), events))
    page.heading("Breaker states", 3)
    page.figure(figures.breaker_states(ts))
    scenario_file = directory / SCENARIO_FILE
    if not scenario_file.exists():
        page.text(
            "No incident timeline or topology: this directory has no scenario.json (written by "
            "faultlab run --out and faultlab compare --out since they draw them); run it again."
        )
        return
    scenario = _read_scenario(scenario_file)
    slo = pd.read_parquet(directory / "slo.parquet")
    page.heading("Incident timeline", 3)
    page.figure(figures.incident_timeline(pd.read_parquet(directory / "timeline.parquet")))
    page.heading("Topology coloured by impact (the slider moves through the run)", 3)
    page.figure(figures.scenario_topology(scenario, slo, ts))


def _comparison_sections(page: _Page, directory: Path) -> None:
    stats = pd.read_parquet(directory / "stats.parquet")
    page.heading("Comparison: mean and 95% CI over replications")
    wide = stats.pivot_table(index="metric", columns="variant", values="mean", sort=False)
    wide = wide.reset_index()
    page.table(wide.round(4))
    page.figure(figures.kpi_bars(stats, figures.KPI_TITLES))
    runs_dir = directory / "runs"
    if runs_dir.is_dir():
        for sub in sorted(p for p in runs_dir.iterdir() if (p / "summary.json").exists()):
            _run_sections(page, sub)


def _sweep_sections(page: _Page, directory: Path) -> None:
    summary = pd.read_parquet(directory / "summary.parquet")
    page.heading("Sweep")
    fixed = {"variant", "point", "metric", "n", "mean", "low", "high"}
    paths = [str(c) for c in summary.columns if c not in fixed]
    x, y = paths[0], (paths[1] if len(paths) > 1 else None)
    for variant, part in summary.groupby("variant", sort=False):
        page.heading(f"Design: {variant}", 3)
        for metric, title, colours, share in figures.SWEEP_HEATMAPS:
            page.figure(figures.sweep_heatmap(part, metric, x, y, title, colours, share))
    if (directory / "regimes.parquet").exists():
        regimes = pd.read_parquet(directory / "regimes.parquet")
        for variant in dict.fromkeys(regimes["variant"]):
            fig = figures.regime_map(regimes, str(variant))
            if fig is not None:
                page.figure(fig)


def build_report(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for a run, comparison or sweep directory; return its path.

    Raises:
        ReportError: the directory is missing or holds no run, comparison or sweep tables.
    """
    folder = Path(directory)
    html_text = render_report(folder, f"faultlab report — {folder.name}")
    target = Path(out) if out is not None else folder / REPORT
    target.write_text(html_text, encoding="utf-8")
    return target


def render_report(folder: Path, title: str) -> str:
    """The report of a run, comparison or sweep directory, as one HTML page titled ``title``.

    Raises:
        ReportError: the directory is missing or holds no run, comparison or sweep tables.
    """
    if not folder.is_dir():
        raise ReportError(f"{folder}: not a directory")
    page = _Page(title)
    try:
        if (folder / "stats.parquet").exists():
            _comparison_sections(page, folder)
        elif (folder / "summary.parquet").exists():
            _sweep_sections(page, folder)
        elif (folder / "summary.json").exists():
            _run_sections(page, folder)
        else:
            raise ReportError(
                f"{folder}: no run (summary.json), comparison (stats.parquet) or sweep "
                "(summary.parquet) found"
            )
    except FileNotFoundError as exc:
        missing = Path(str(exc.filename or exc))  # pyarrow's message is the bare path
        shown = missing.relative_to(folder) if missing.is_relative_to(folder) else missing.name
        raise ReportError(f"{folder}: cannot read the results: {shown} is missing") from exc
    except (OSError, KeyError, ValueError, ScenarioError, CrossReferenceError) as exc:
        if isinstance(exc, ReportError):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReportError(f"{folder}: cannot read the results: {first}") from exc
    return page.render()


def run_report(done: Run) -> str:
    """The HTML report of one run held in memory (the app's download; as ``run --out``)."""
    summary = done.result.summary
    title = f"faultlab report — {summary['scenario']} / {summary['variant'] or BASELINE}"
    with tempfile.TemporaryDirectory() as folder:
        done.save(folder)
        return render_report(Path(folder), title)


def comparison_report(comparison: Comparison, shown: Run) -> str:
    """The HTML report of a comparison held in memory, with one run drawn in full.

    ``shown`` is the run whose charts follow the comparison (a lesson's scenario as written).
    """
    designs = ", ".join(shown_variants(comparison.stats))
    title = f"faultlab report — {shown.scenario.name}: {designs}"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        comparison.stats.to_parquet(out / "stats.parquet", index=False)
        shown.save(out / "runs" / (shown.result.summary["variant"] or BASELINE))
        return render_report(out, title)
