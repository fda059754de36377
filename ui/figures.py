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


# --------------------------------------------------------------------------- report builders

BREAKER_KINDS = ("breaker_transition", "circuit_breaker")
"""Event kinds whose detail is a resilience4j ``changed state from X to Y`` line."""


def report_breaker_states(
    timeseries: pd.DataFrame, events: pd.DataFrame | None = None
) -> go.Figure:
    """Circuit-breaker transitions over time: one row per breaker, a marker per new state.

    Args:
        timeseries: the run's tidy time series (unused beyond the x range).
        events: the event log; breaker lines are those saying ``changed state from``.

    Returns:
        The figure: x simulated time, y the breaker, marker colour the state entered.
    """
    fig = go.Figure()
    colours = {"OPEN": "#d62728", "HALF_OPEN": "#ff7f0e", "CLOSED": "#2ca02c"}
    if events is not None and not events.empty:
        lines = events[events["detail"].astype(str).str.contains("changed state from", na=False)]
        for state, colour in colours.items():
            rows = lines[lines["detail"].astype(str).str.endswith(f"to {state}")]
            if rows.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=rows["t"],
                    y=rows["entity"].astype(str),
                    mode="markers",
                    name=state,
                    marker={"color": colour, "size": 10, "symbol": "line-ns-open"},
                    hovertext=rows["detail"].astype(str),
                )
            )
    _layout(fig, "Circuit-breaker states", "breaker", height=300)
    if not fig.data:
        _empty(fig, "no circuit breaker changed state")
    return fig


def report_incident_timeline(events: pd.DataFrame) -> go.Figure:
    """The event log as a timeline: one row per event kind, a marker per event.

    Args:
        events: the event log ``t, host, entity, kind, detail``.

    Returns:
        The figure; hovering a marker shows the logged line.
    """
    fig = go.Figure()
    chatty = {"oom_tasks", "oom_meminfo"}
    shown = events[~events["kind"].isin(list(chatty))] if not events.empty else events
    for index, (kind, rows) in enumerate(shown.groupby("kind", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=rows["t"],
                y=[str(kind)] * len(rows),
                mode="markers",
                name=str(kind),
                showlegend=False,
                marker={"size": 9, "color": SERIES_COLOURS[index % len(SERIES_COLOURS)]},
                hovertext=(rows["entity"].astype(str) + ": " + rows["detail"].astype(str)).map(
                    lambda s: s[:160]
                ),
                hoverinfo="text+x",
            )
        )
    height = max(260, 40 + 22 * shown["kind"].nunique()) if not shown.empty else 260
    _layout(fig, "Incident timeline (events by kind)", "", height=height)
    fig.update_layout(hovermode="closest")
    if not fig.data:
        _empty(fig, "no events")
    return fig


def report_topology(services: pd.DataFrame, events: pd.DataFrame | None = None) -> go.Figure:
    """The call graph (networkx spring layout, seeded) with services coloured by availability.

    Args:
        services: the run's per-entity table (``entity, kind, availability``); edges are the
            rows of kind ``edge`` named ``a -> b``.
        events: unused; kept for a uniform signature.

    Returns:
        The figure: green = no failed request, red = availability at or below 90%.
    """
    import networkx as nx

    graph: nx.DiGraph[str] = nx.DiGraph()
    availability: dict[str, float] = {}
    for row in services.to_dict("records"):
        name = str(row["entity"])
        if row["kind"] == "edge" and " -> " in name:
            a, b = name.split(" -> ", 1)
            graph.add_edge(a, b)
        elif name != "client":
            graph.add_node(name)
            value = row.get("availability")
            availability[name] = float(value) if value is not None else float("nan")
    fig = go.Figure()
    if graph.number_of_nodes():
        pos = nx.spring_layout(graph, seed=1)
        xs: list[float | None] = []
        ys: list[float | None] = []
        for a, b in graph.edges:
            xs += [float(pos[a][0]), float(pos[b][0]), None]
            ys += [float(pos[a][1]), float(pos[b][1]), None]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#999"}, hoverinfo="skip")
        )
        for a, b in graph.edges:
            fig.add_annotation(
                x=float(pos[b][0]),
                y=float(pos[b][1]),
                ax=float(pos[a][0]),
                ay=float(pos[a][1]),
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                arrowhead=3,
                arrowsize=1.5,
                standoff=18,
                arrowcolor="#999",
            )
        names = list(graph.nodes)
        values = [availability.get(n, float("nan")) for n in names]
        fig.add_trace(
            go.Scatter(
                x=[float(pos[n][0]) for n in names],
                y=[float(pos[n][1]) for n in names],
                mode="markers+text",
                text=[
                    f"{n}<br>{v:.2%}" if v == v else n for n, v in zip(names, values, strict=True)
                ],
                textposition="bottom center",
                marker={
                    "size": 34,
                    "color": [1.0 if v != v else v for v in values],
                    "colorscale": [[0.0, "#d62728"], [0.5, "#ff7f0e"], [1.0, "#2ca02c"]],
                    "cmin": 0.9,
                    "cmax": 1.0,
                    "showscale": True,
                    "colorbar": {"title": "availability"},
                    "line": {"color": "#333", "width": 1},
                },
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title={"text": "Topology coloured by impact (availability)", "x": 0.0},
        template=TEMPLATE,
        height=420,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    if not fig.data:
        _empty(fig, "no services")
    return fig


def report_comparison_bars(stats: pd.DataFrame, metric: str) -> go.Figure:
    """One metric across variants: bars of the mean with the 95% CI as error bars.

    Args:
        stats: the comparison's ``stats`` table (``variant, metric, mean, low, high``).
        metric: which metric.

    Returns:
        The figure.
    """
    rows = stats[stats["metric"] == metric]
    mean = rows["mean"].astype(float)
    upper = (rows["high"].astype(float) - mean).fillna(0.0)
    lower = (mean - rows["low"].astype(float)).fillna(0.0)
    fig = go.Figure(
        go.Bar(
            x=rows["variant"].astype(str),
            y=mean,
            error_y={"type": "data", "array": upper, "arrayminus": lower, "visible": True},
            marker={"color": SERIES_COLOURS[0]},
            hovertemplate="%{x}: %{y:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": f"{metric} (mean, 95% CI)", "x": 0.0},
        template=TEMPLATE,
        height=300,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    fig.update_yaxes(title_text=metric, rangemode="tozero")
    return fig


def report_sweep_heatmap(summary: pd.DataFrame, metric: str) -> go.Figure | None:
    """A heatmap of a sweep metric's mean over the first two swept paths (first variant).

    Args:
        summary: the sweep's ``summary`` table (``variant``, one column per swept path,
            ``metric, mean, ...``).
        metric: which metric.

    Returns:
        The figure, or ``None`` when the metric is missing.
    """
    known = {"variant", "point", "metric", "n", "mean", "low", "high"}
    params = [c for c in summary.columns if c not in known and "." in str(c)]
    rows = summary[summary["metric"] == metric]
    if rows.empty or not params:
        return None
    rows = rows[rows["variant"] == rows["variant"].iloc[0]]
    x = params[0]
    y = params[1] if len(params) > 1 else None
    if y is None:
        table = rows.set_index(x)["mean"].to_frame().T
        ylabels = [metric]
    else:
        table = rows.pivot_table(index=y, columns=x, values="mean")
        ylabels = [str(v) for v in table.index]
    fig = go.Figure(
        go.Heatmap(
            z=table.to_numpy(),
            x=[str(v) for v in table.columns],
            y=ylabels,
            colorscale="RdYlGn",
            colorbar={"title": metric},
        )
    )
    fig.update_layout(
        title={"text": f"Sweep: {metric} (mean)", "x": 0.0},
        template=TEMPLATE,
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig
