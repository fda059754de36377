"""Pure Plotly figure builders: DataFrames of a run in, ``go.Figure`` out.

Each function draws one chart from the tidy tables of :class:`sim.RunResult` and nothing else: no
Streamlit, no model calls, no I/O. The explorer shows them with ``st.plotly_chart`` and the HTML
report embeds the same figures, so a chart looks the same wherever it appears.

Conventions:
    - time runs along x in simulated seconds, labelled ``time (s)``;
    - latencies are shown in milliseconds and memory in MiB (the model records seconds and bytes);
    - every outcome has a fixed colour, so ``shed`` is the same purple in every chart and run;
    - services are the entities that report a ``queued`` gauge; instances are named
      ``<service>-<index>`` (the model's convention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TIME_AXIS = "time (s)"
MIB = 1024.0 * 1024.0
TEMPLATE = "plotly_white"

OUTCOME_COLOURS: dict[str, str] = {
    "ok": "#2ca02c",
    "degraded": "#bcbd22",
    "timeout": "#ff7f0e",
    "shed": "#9467bd",
    "rate_limited": "#8c564b",
    "bulkhead_full": "#e377c2",
    "circuit_open": "#7f7f7f",
    "unavailable": "#17becf",
    "reset": "#d62728",
    "deadline_exceeded": "#1f77b4",
    "error": "#67000d",
    "dependency": "#fdae6b",
}
"""Colour of each outcome label; labels the model adds later fall back to Plotly's palette."""

SERIES_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

MARKER_KINDS = ("fault_start", "fault_end")
"""Event kinds drawn as vertical lines by :func:`add_event_markers`."""


def _series(timeseries: pd.DataFrame, entity: str, metric: str) -> pd.DataFrame:
    """Rows ``t, value`` of one entity's metric, sorted by time."""
    rows = timeseries[(timeseries["entity"] == entity) & (timeseries["metric"] == metric)]
    return rows[["t", "value"]].sort_values("t")


def _layout(fig: go.Figure, title: str, yaxis_title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        template=TEMPLATE,
        height=height,
        hovermode="x unified",
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
    )
    fig.update_xaxes(title_text=TIME_AXIS, rangemode="tozero", zeroline=False)
    fig.update_yaxes(title_text=yaxis_title, rangemode="tozero")
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    """Say why a chart has no lines rather than drawing blank axes."""
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#666"},
    )
    return fig


def services_in(timeseries: pd.DataFrame) -> list[str]:
    """The services of a run's time series, in order of first appearance.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.

    Returns:
        Entities that report the per-service ``queued`` gauge.
    """
    entities = timeseries.loc[timeseries["metric"] == "queued", "entity"]
    return list(dict.fromkeys(entities))


def instance_service(instance: str, services: Sequence[str]) -> str | None:
    """The service an instance belongs to (``cart-0`` -> ``cart``), or ``None``.

    The longest matching service name wins, so ``cart-api-0`` belongs to ``cart-api`` even when a
    service ``cart`` exists.
    """
    best: str | None = None
    for service in services:
        prefix = f"{service}-"
        suffix = instance[len(prefix) :]
        if (
            instance.startswith(prefix)
            and suffix.isdigit()
            and (best is None or len(service) > len(best))
        ):
            best = service
    return best


def throughput_by_outcome(timeseries: pd.DataFrame, entity: str = "client") -> go.Figure:
    """Stacked area of an entity's completions per second, one band per outcome.

    Outcomes that never occur are left out, so the legend lists only what happened.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.
        entity: whose ``rate.<outcome>`` metrics to draw; ``client`` is what users saw.

    Returns:
        The figure, y in requests per second.
    """
    fig = go.Figure()
    rows = timeseries[
        (timeseries["entity"] == entity) & timeseries["metric"].astype(str).str.startswith("rate.")
    ]
    for metric, group in rows.groupby("metric", sort=False):
        outcome = str(metric).removeprefix("rate.")
        if not (group["value"].fillna(0) > 0).any():
            continue
        series = group.sort_values("t")
        fig.add_trace(
            go.Scatter(
                x=series["t"],
                y=series["value"].fillna(0),
                name=outcome,
                mode="lines",
                line={"width": 0.5, "color": OUTCOME_COLOURS.get(outcome)},
                stackgroup="outcomes",
                hovertemplate="%{y:.1f}/s",
            )
        )
    _layout(fig, f"Throughput by outcome ({entity})", "requests/s")
    if not fig.data:
        _empty(fig, f"no requests completed at {entity}")
    return fig


def _service_lines(
    timeseries: pd.DataFrame,
    services: Sequence[str] | None,
    metric: str,
    *,
    scale: float = 1.0,
    hover: str = "%{y:.0f}",
    steps: bool = False,
) -> go.Figure:
    """One line per service of ``metric`` over time, in the legend order of ``services``.

    Step lines (``steps``) get decreasing widths, so services at equal values all stay visible.
    """
    fig = go.Figure()
    chosen = list(services) if services is not None else services_in(timeseries)
    for index, service in enumerate(chosen):
        series = _series(timeseries, service, metric)
        if series.empty:
            continue
        line: dict[str, object] = {"color": SERIES_COLOURS[index % len(SERIES_COLOURS)]}
        if steps:
            line |= {"shape": "hv", "width": _overlap_width(index, len(chosen))}
        fig.add_trace(
            go.Scatter(
                x=series["t"],
                y=series["value"] * scale,
                name=service,
                mode="lines",
                line=line,
                hovertemplate=hover,
            )
        )
    return fig


def latency_p99_by_service(
    timeseries: pd.DataFrame, services: Sequence[str] | None = None
) -> go.Figure:
    """p99 latency of each service per time bin, as lines.

    A bin in which a service completed nothing has no percentile; the line has a gap there.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.
        services: which services, in legend order; default every service of the run.

    Returns:
        The figure, y in milliseconds.
    """
    fig = _service_lines(timeseries, services, "latency_p99", scale=1000.0, hover="%{y:.0f} ms")
    _layout(fig, "p99 latency per service", "p99 latency (ms)")
    if not fig.data:
        _empty(fig, "no latency recorded")
    return fig


def ready_instances(timeseries: pd.DataFrame, services: Sequence[str] | None = None) -> go.Figure:
    """Ready instances (load-balancer members) of each service over time, as steps.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.
        services: which services, in legend order; default every service of the run.

    Returns:
        The figure, y in instances.
    """
    fig = _service_lines(timeseries, services, "instances.ready", steps=True)
    _layout(fig, "Ready instances per service", "ready instances")
    fig.update_yaxes(tickformat="d", dtick=1 if _max_value(fig) <= 10 else None)
    if not fig.data:
        _empty(fig, "no instance states recorded")
    return fig


def _overlap_width(index: int, count: int) -> float:
    """Line widths that decrease along the legend, so lines at equal values all stay visible."""
    return 2.0 + 2.5 * (count - 1 - index)


def queue_length_by_service(
    timeseries: pd.DataFrame, services: Sequence[str] | None = None
) -> go.Figure:
    """Requests waiting in each service's admission queues (all instances), at each bin's start.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.
        services: which services, in legend order; default every service of the run.

    Returns:
        The figure, y in requests.
    """
    fig = _service_lines(timeseries, services, "queued")
    _layout(fig, "Queued requests per service", "queued requests")
    if not fig.data:
        _empty(fig, "no queues recorded")
    return fig


def _max_value(fig: go.Figure) -> float:
    values = [v for trace in fig.data for v in trace.y if v is not None and not math.isnan(v)]
    return max(values, default=0.0)


LIMIT_LINES = (("memory_max", "dash", "max"), ("memory_high", "dot", "high"))
"""The cgroup limits drawn beside an instance's memory: metric, line dash, label."""


def memory_vs_limit(timeseries: pd.DataFrame, services: Sequence[str] | None = None) -> go.Figure:
    """Memory of every instance against its ``memory.max``, one panel per service.

    Solid lines are each instance's charged memory; the dashed line of the same colour is its
    cgroup's ``memory.max``, the dotted one its ``memory.high``. An instance without a limit
    (``memory.max`` = max) has no dashed line. The panels share the y axis so that services
    compare honestly.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.
        services: which services, in panel order; default every service of the run.

    Returns:
        The figure, y in MiB.
    """
    chosen = list(services) if services is not None else services_in(timeseries)
    memory_rows = timeseries[timeseries["metric"] == "memory"]
    instances: dict[str, list[str]] = {service: [] for service in chosen}
    for entity in dict.fromkeys(memory_rows["entity"]):
        service = instance_service(str(entity), chosen)
        if service is not None:
            instances[service].append(str(entity))
    panels = [service for service in chosen if instances[service]]
    fig = make_subplots(
        rows=1,
        cols=max(len(panels), 1),
        shared_yaxes=True,
        subplot_titles=panels or None,
        horizontal_spacing=0.03,
    )
    index = 0
    for col, service in enumerate(panels, start=1):
        for instance in instances[service]:
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            index += 1
            used = _series(timeseries, instance, "memory")
            fig.add_trace(
                go.Scatter(
                    x=used["t"],
                    y=used["value"] / MIB,
                    name=instance,
                    legendgroup=instance,
                    mode="lines",
                    line={"color": colour},
                    hovertemplate="%{y:.0f} MiB",
                ),
                row=1,
                col=col,
            )
            for metric, dash, label in (
                ("memory_max", "dash", "max"),
                ("memory_high", "dot", "high"),
            ):
                limit = _series(timeseries, instance, metric)
                limit = limit[limit["value"].map(math.isfinite)]
                if limit.empty:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=limit["t"],
                        y=limit["value"] / MIB,
                        name=f"{instance} memory.{label}",
                        legendgroup=instance,
                        showlegend=False,
                        mode="lines",
                        line={"color": colour, "dash": dash, "width": 1},
                        hovertemplate=f"{label} %{{y:.0f}} MiB",
                    ),
                    row=1,
                    col=col,
                )
    _layout(
        fig,
        "Memory per instance vs its memory.max (dashed) and memory.high (dotted)",
        "memory (MiB)",
        height=400,
    )
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0},
        margin={"b": 40, "t": 70},
    )
    for col in range(2, len(panels) + 1):
        fig.update_yaxes(title_text=None, row=1, col=col)
    if not fig.data:
        _empty(fig, "no instance memory recorded")
    return fig


def add_event_markers(
    fig: go.Figure, events: pd.DataFrame, kinds: Sequence[str] = MARKER_KINDS
) -> go.Figure:
    """Draw a dotted vertical line at each event of the given kinds (fault start and end).

    Args:
        fig: a figure whose x axis is simulated time; changed in place.
        events: the event log ``t, host, entity, kind, detail`` of the run.
        kinds: which event kinds to mark.

    Returns:
        The same figure, for chaining.
    """
    marked = events[events["kind"].isin(list(kinds))]
    # On a grid of panels, one label per line is enough: label the first panel only.
    grid = fig._has_subplots()
    for (t, kind), _rows in marked.groupby(["t", "kind"], sort=True):
        line = {"dash": "dot", "color": "#555", "width": 1}
        label = {
            "annotation_text": str(kind).replace("_", " "),
            "annotation_position": "top left",
            "annotation_font": {"size": 10, "color": "#555"},
        }
        if grid:
            fig.add_vline(x=float(t), line=line, row="all", col="all")
            fig.add_vline(x=float(t), line=line, row=1, col=1, **label)
        else:
            fig.add_vline(x=float(t), line=line, **label)
    return fig
