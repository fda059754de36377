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
from collections.abc import Mapping, Sequence
from typing import cast

import networkx as nx
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.scenario import Scenario, placements

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

    The one-chart overview (the HTML report's); :func:`instance_states` breaks each service
    down by container state.

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


def _max_value(fig: go.Figure) -> float:
    values = [v for trace in fig.data for v in trace.y if v is not None and not math.isnan(v)]
    return max(values, default=0.0)


INSTANCE_STATES: dict[str, str] = {
    "running": "#2ca02c",
    "starting": "#1f77b4",
    "waiting": "#ff7f0e",
    "terminated": "#d62728",
}
"""The container states of an instance (``instances.<state>`` gauges) and their colours; the
``ready`` gauge (load-balancer members) is drawn over them as a dashed black line."""


def instance_states(timeseries: pd.DataFrame, services: Sequence[str] | None = None) -> go.Figure:
    """Instances of each service by container state over time, one panel per service.

    Stacked steps of running / starting / waiting (back-off) / terminated, and the ready count
    (load-balancer members) as a dashed line: a replica that runs but is not ready shows as the
    gap between the two.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.
        services: which services, in panel order; default every service of the run.

    Returns:
        The figure, y in instances.
    """
    chosen = list(services) if services is not None else services_in(timeseries)
    panels = [s for s in chosen if not _series(timeseries, s, "instances.ready").empty]
    fig = make_subplots(
        rows=1,
        cols=max(len(panels), 1),
        shared_yaxes=True,
        subplot_titles=panels or None,
        horizontal_spacing=0.03,
    )
    for col, service in enumerate(panels, start=1):
        for state, colour in INSTANCE_STATES.items():
            series = _series(timeseries, service, f"instances.{state}")
            if series.empty or not (series["value"].fillna(0) > 0).any():
                continue
            fig.add_trace(
                go.Scatter(
                    x=series["t"],
                    y=series["value"],
                    name=state,
                    legendgroup=state,
                    showlegend=col == 1 or state not in _legend_names(fig),
                    mode="lines",
                    line={"shape": "hv", "width": 0.5, "color": colour},
                    stackgroup=service,
                    hovertemplate=f"{state} %{{y:.0f}}",
                ),
                row=1,
                col=col,
            )
        ready = _series(timeseries, service, "instances.ready")
        fig.add_trace(
            go.Scatter(
                x=ready["t"],
                y=ready["value"],
                name="ready",
                legendgroup="ready",
                showlegend=col == 1,
                mode="lines",
                line={"shape": "hv", "color": "#000", "dash": "dash", "width": 1.5},
                hovertemplate="ready %{y:.0f}",
            ),
            row=1,
            col=col,
        )
    _layout(fig, "Instances per service by state (dashed: ready)", "instances")
    fig.update_yaxes(tickformat="d", dtick=1 if _max_value(fig) <= 10 else None)
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0},
        margin={"b": 40, "t": 70},
    )
    for col in range(2, len(panels) + 1):
        fig.update_yaxes(title_text=None, row=1, col=col)
    if not fig.data:
        _empty(fig, "no instance states recorded")
    return fig


def _legend_names(fig: go.Figure) -> set[str]:
    return {trace.name for trace in fig.data if trace.showlegend is not False}


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
    for (time, kind), _rows in marked.groupby(["t", "kind"], sort=True):
        t = float(cast(float, time))
        line = {"dash": "dot", "color": "#555", "width": 1}
        label = {
            "annotation_text": str(kind).replace("_", " "),
            "annotation_position": "top left",
            "annotation_font": {"size": 10, "color": "#555"},
        }
        if grid:
            fig.add_vline(x=t, line=line, row="all", col="all")
            fig.add_vline(x=t, line=line, row=1, col=1, **label)
        else:
            fig.add_vline(x=t, line=line, **label)
    return fig


BREAKER_STATES = ("closed", "open", "half-open")
"""The breaker gauge's values 0, 1, 2 (``circuit_breaker.<instance>`` on each edge)."""


def breaker_states(timeseries: pd.DataFrame) -> go.Figure:
    """The circuit breaker state of each calling instance on each edge, as steps.

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.

    Returns:
        The figure, y closed / open / half-open; empty (with a message) without breakers.
    """
    rows = timeseries[timeseries["metric"].astype(str).str.startswith("circuit_breaker.")]
    fig = go.Figure()
    for index, ((edge, metric), group) in enumerate(rows.groupby(["entity", "metric"], sort=False)):
        caller = str(metric).removeprefix("circuit_breaker.")
        series = group.sort_values("t")
        fig.add_trace(
            go.Scatter(
                x=series["t"],
                y=series["value"],
                name=f"{edge} @ {caller}",
                mode="lines",
                line={
                    "shape": "hv",
                    "color": SERIES_COLOURS[index % len(SERIES_COLOURS)],
                    "width": _overlap_width(
                        index, rows[["entity", "metric"]].drop_duplicates().shape[0]
                    ),
                },
                hovertemplate="%{y}",
            )
        )
    _layout(fig, "Circuit breaker state per calling instance", "state")
    fig.update_yaxes(
        tickvals=[0, 1, 2], ticktext=list(BREAKER_STATES), range=[-0.2, 2.2], rangemode=None
    )
    if not fig.data:
        _empty(fig, "no circuit breaker in this run")
    return fig


def concurrency_limits(
    timeseries: pd.DataFrame, services: Sequence[str] | None = None
) -> go.Figure:
    """The adaptive concurrency limit of each service (summed over its ready instances).

    Args:
        timeseries: the tidy ``t, entity, metric, value`` table of a run.
        services: which services, in legend order; default every service of the run.

    Returns:
        The figure, y in concurrent requests; empty (with a message) without a limit.
    """
    fig = _service_lines(timeseries, services, "concurrency_limit", steps=True)
    _layout(fig, "Adaptive concurrency limit per service", "concurrency limit")
    if not fig.data:
        _empty(fig, "no adaptive concurrency limit in this run")
    return fig


TIMELINE_COLOURS: dict[str, str] = {
    "fault_start": "#000000",
    "fault_end": "#555555",
    "memory": "#ff7f0e",
    "node_pressure": "#e6550d",
    "oom_kill": "#d62728",
    "userspace_kill": "#a50f15",
    "evicted": "#9467bd",
    "kernel_panic": "#67000d",
    "node_not_ready": "#8c564b",
    "node_ready": "#17becf",
    "terminated": "#e377c2",
    "backoff": "#bcbd22",
    "restart": "#1f77b4",
    "scheduled": "#aec7e8",
    "failed_scheduling": "#7f7f7f",
    "ready": "#2ca02c",
    "breaker_open": "#ff9896",
    "breaker_closed": "#98df8a",
    "slo_violation": "#d62728",
    "slo_ok": "#2ca02c",
}
"""Colour of each kind of incident-timeline entry (:func:`sim.analysis.timeline`)."""


def incident_timeline(timeline: pd.DataFrame, at: float | None = None) -> go.Figure:
    """The incident timeline: one lane per subject, one marker per entry, coloured by kind.

    An entry that repeated (``count`` > 1) is a bar from its first to its last time. Hovering
    shows the entry's text and its likely cause.

    Args:
        timeline: :attr:`sim.analysis.Analysis.timeline` (``t, t_last, count, kind, entity,
            service, host, text, cause``).
        at: draw a vertical line at this time (the trainer's current entry).

    Returns:
        The figure, x in simulated seconds.
    """
    fig = go.Figure()
    texts = timeline["text"].tolist()
    lanes = list(dict.fromkeys(timeline["entity"].astype(str)))
    for kind, group in timeline.groupby("kind", sort=False):
        hover = [
            f"#{index} {text}"
            + (f"<br>x{count} until {last:g}s" if count > 1 else "")
            + ("" if pd.isna(cause) else f"<br>← #{int(cause)} {texts[int(cause)]}")
            for index, text, count, last, cause in zip(
                group.index,
                group["text"],
                group["count"],
                group["t_last"],
                group["cause"],
                strict=True,
            )
        ]
        colour = TIMELINE_COLOURS.get(str(kind))
        fig.add_trace(
            go.Scatter(
                x=group["t"],
                y=group["entity"].astype(str),
                name=str(kind).replace("_", " "),
                mode="markers",
                marker={"color": colour, "size": 11, "symbol": "diamond"},
                text=hover,
                hovertemplate="%{x:.3f}s %{text}<extra></extra>",
            )
        )
        repeated = group[group["count"] > 1]
        for t, last, lane in zip(
            repeated["t"], repeated["t_last"], repeated["entity"], strict=True
        ):
            fig.add_shape(
                type="line",
                x0=float(t),
                x1=float(last),
                y0=str(lane),
                y1=str(lane),
                line={"color": colour, "width": 4},
                opacity=0.5,
            )
    _layout(fig, "Incident timeline (hover for the line and its likely cause)", "")
    fig.update_layout(
        height=max(260, 60 + 28 * len(lanes)), hovermode="closest", yaxis={"autorange": "reversed"}
    )
    fig.update_yaxes(rangemode=None, categoryorder="array", categoryarray=lanes)
    if at is not None:
        fig.add_vline(x=at, line={"color": "#d62728", "width": 2})
    if not fig.data:
        _empty(fig, "nothing happened")
    return fig


USERS = "users"
"""The node standing for the workload's users in :func:`topology`."""

IMPACT_COLOURS = {"ok": "#2ca02c", "violated": "#d62728", "idle": "#c7c7c7"}
"""Service colours in :func:`topology`: SLO held, SLO violated, no full window yet."""

MAX_FRAMES = 60
"""The most time steps :func:`topology` animates (longer runs are sampled evenly)."""


def _layers(graph: nx.DiGraph[str]) -> dict[str, int]:
    """Each service's tier: 1 for callers nobody calls, then one more per call hop (longest)."""
    layer: dict[str, int] = {}
    for node in nx.topological_sort(graph):
        callers = [layer[p] for p in graph.predecessors(node)]
        layer[node] = 1 + max(callers, default=0)
    return layer


def topology_positions(
    graph: nx.DiGraph[str], placements: Mapping[str, Sequence[str]], entry: str
) -> dict[str, tuple[float, float]]:
    """Where :func:`topology` draws each node: users and services by tier, hosts below.

    networkx's multipartite layout puts the users and the services in columns by call depth
    (left to right); the hosts their replicas run on form a row along the bottom.
    """
    layout: nx.DiGraph[str] = nx.DiGraph()
    layout.add_node(USERS, layer=0)
    for service, layer in _layers(graph).items():
        layout.add_node(service, layer=layer)
    layout.add_edge(USERS, entry)
    positions = {
        node: (float(x), 0.35 + 0.6 * float(y))
        for node, (x, y) in nx.multipartite_layout(layout, subset_key="layer").items()
    }
    hosts = list(dict.fromkeys(host for names in placements.values() for host in names))
    for index, host in enumerate(hosts):
        positions[f"host:{host}"] = ((index + 1) / (len(hosts) + 1) * 2.0 - 1.0, -0.8)
    return positions


def scenario_topology(
    scenario: Scenario, slo: pd.DataFrame, timeseries: pd.DataFrame, at: float | None = None
) -> go.Figure:
    """:func:`topology` of a scenario as run: its call graph, placements and entry service."""
    return topology(
        scenario.call_graph(), placements(scenario), scenario.workload.entry, slo, timeseries, at
    )


def topology(
    graph: nx.DiGraph[str],
    placements: Mapping[str, Sequence[str]],
    entry: str,
    slo: pd.DataFrame,
    timeseries: pd.DataFrame,
    at: float | None = None,
) -> go.Figure:
    """The call graph coloured by impact over time, with a time slider.

    Services are circles, green while their SLO holds in the window ending at the slider's
    time, red while it is violated (grey before the first full window); the users call the
    entry service; hosts are squares coloured by their memory use, joined by dotted lines to
    the services with a replica on them. Hover a node for its numbers at that time.

    Args:
        graph: the call graph (:meth:`sim.Scenario.call_graph`).
        placements: service -> hosts of its replicas (:func:`sim.scenario.placements`).
        entry: the workload's entry service.
        slo: :attr:`sim.analysis.Analysis.slo` (``t, service, availability, latency_p99,
            violated, ...``).
        timeseries: the run's time series (ready instances, host memory).
        at: the time the slider starts at (default: the time most services are violated).

    Returns:
        The figure, with one animation frame per time step and a slider over them.
    """
    positions = topology_positions(graph, placements, entry)
    hosts = list(dict.fromkeys(h for names in placements.values() for h in names))
    services = list(graph.nodes)
    times = sorted(set(slo["t"])) if len(slo) else sorted(set(timeseries["t"]))[-1:] or [0.0]
    if len(times) > MAX_FRAMES:
        step = math.ceil(len(times) / MAX_FRAMES)
        times = times[::step]
    fig = go.Figure()
    _topology_edges(fig, graph, placements, positions, entry)
    gauges = _gauges_at(timeseries, times, [*services, *hosts], TOPOLOGY_GAUGES)
    windows = {t: group.set_index("service") for t, group in slo.groupby("t")} if len(slo) else {}
    frames = [
        _topology_nodes(services, hosts, positions, windows.get(t), gauges.loc[t]) for t in times
    ]
    start = _start_frame(times, slo, at)
    fig.add_traces(frames[start])
    node_traces = list(range(len(fig.data) - 2, len(fig.data)))
    fig.frames = [
        go.Frame(data=nodes, traces=node_traces, name=_frame_name(t))
        for t, nodes in zip(times, frames, strict=True)
    ]
    fig.update_layout(
        title={"text": "Topology coloured by impact (slide through time)", "x": 0.0},
        template=TEMPLATE,
        height=440,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"visible": False, "range": [-1.25, 1.25]},
        yaxis={"visible": False, "range": [-1.25, 1.25]},
        sliders=[
            {
                "active": start,
                "currentvalue": {"prefix": "window ending at "},
                "pad": {"t": 10},
                "steps": [
                    {
                        "label": _frame_name(t),
                        "method": "animate",
                        "args": [
                            [_frame_name(t)],
                            {"mode": "immediate", "frame": {"duration": 0, "redraw": True}},
                        ],
                    }
                    for t in times
                ],
            }
        ],
    )
    return fig


def _frame_name(t: float) -> str:
    return f"{t:g}s"


def _start_frame(times: Sequence[float], slo: pd.DataFrame, at: float | None) -> int:
    """The frame nearest ``at``; else the first with the most violated SLOs; else the last."""
    if at is not None:
        return min(range(len(times)), key=lambda i: abs(times[i] - at))
    if not len(slo):
        return len(times) - 1
    violated = slo.groupby("t")["violated"].sum().reindex(list(times), fill_value=0).to_numpy()
    return int(violated.argmax()) if violated.max() > 0 else len(times) - 1


def _topology_edges(
    fig: go.Figure,
    graph: nx.DiGraph[str],
    placements: Mapping[str, Sequence[str]],
    positions: Mapping[str, tuple[float, float]],
    entry: str,
) -> None:
    """Calls as arrows, placements as dotted lines (static: they do not change over time)."""
    for caller, callee in [(USERS, entry), *graph.edges]:
        (x0, y0), (x1, y1) = positions[caller], positions[callee]
        fig.add_annotation(
            x=x1,
            y=y1,
            ax=x0,
            ay=y0,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            showarrow=True,
            arrowhead=3,
            arrowsize=1.2,
            arrowwidth=1.5,
            arrowcolor="#888",
            standoff=22,
            startstandoff=22,
        )
    xs: list[float | None] = []
    ys: list[float | None] = []
    for service, names in placements.items():
        for host in dict.fromkeys(names):
            (x0, y0), (x1, y1) = positions[service], positions[f"host:{host}"]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            hoverinfo="skip",
            line={"color": "#bbb", "dash": "dot", "width": 1},
        )
    )
    (x, y) = positions[USERS]
    fig.add_trace(
        go.Scatter(
            x=[x],
            y=[y],
            mode="markers+text",
            text=[USERS],
            textposition="bottom center",
            marker={"symbol": "star", "size": 22, "color": "#1f77b4"},
            hoverinfo="text",
        )
    )


TOPOLOGY_GAUGES = ("instances.ready", "instances.running", "memory", "memory_total")
"""The gauges :func:`topology` shows in its nodes' hover text and host colours."""


def _gauges_at(
    timeseries: pd.DataFrame,
    times: Sequence[float],
    entities: Sequence[str],
    metrics: Sequence[str],
) -> pd.DataFrame:
    """The last value of each gauge at or before each time.

    Rows are ``times``, columns ``(entity, metric)``; NaN before a gauge starts, or for one
    never recorded.
    """
    rows = timeseries[timeseries["entity"].isin(entities) & timeseries["metric"].isin(metrics)]
    wide = rows.pivot_table(index="t", columns=["entity", "metric"], values="value", aggfunc="last")
    columns = pd.MultiIndex.from_product([list(entities), list(metrics)])
    wide = wide.reindex(columns=columns).sort_index()
    return wide.reindex(sorted(set(wide.index) | set(times))).ffill().loc[list(times)]


def _topology_nodes(
    services: Sequence[str],
    hosts: Sequence[str],
    positions: Mapping[str, tuple[float, float]],
    window: pd.DataFrame | None,
    gauges: pd.Series,
) -> list[go.Scatter]:
    """The service and host markers of one time step.

    Args:
        services: the services, in trace order.
        hosts: the hosts, in trace order.
        positions: where each node is drawn.
        window: the SLO windows ending at this time, indexed by service (``None``: none yet).
        gauges: the gauges at this time, indexed by ``(entity, metric)``.
    """
    colours, hovers = [], []
    for service in services:
        ready = float(gauges[(service, "instances.ready")])
        running = float(gauges[(service, "instances.running")])
        ready_text = "" if math.isnan(ready) else f"<br>ready {ready:.0f} of {running:.0f} running"
        if window is not None and service in window.index:
            row = window.loc[service]
            state = "violated" if bool(row["violated"]) else "ok"
            availability = row["availability"]
            p99 = row["latency_p99"]
            hovers.append(
                f"<b>{service}</b> ({'SLO violated' if state == 'violated' else 'SLO holds'})"
                + ("" if pd.isna(availability) else f"<br>availability {availability:.2%}")
                + ("" if pd.isna(p99) else f"<br>p99 {p99 * 1000:.0f} ms")
                + ready_text
            )
        else:
            state = "idle"
            hovers.append(f"<b>{service}</b> (no full SLO window yet){ready_text}")
        colours.append(IMPACT_COLOURS[state])
    service_trace = go.Scatter(
        x=[positions[s][0] for s in services],
        y=[positions[s][1] for s in services],
        mode="markers+text",
        text=list(services),
        textposition="top center",
        hovertext=hovers,
        hoverinfo="text",
        marker={"size": 34, "color": colours, "line": {"color": "#333", "width": 1}},
    )
    fills, host_hovers = [], []
    for host in hosts:
        used = float(gauges[(host, "memory")])
        total = float(gauges[(host, "memory_total")])
        share = used / total if total and not math.isnan(total) else math.nan
        fills.append(0.0 if math.isnan(share) else share)
        host_hovers.append(
            f"<b>{host}</b>"
            + (
                "<br>down"
                if math.isnan(share)
                else f"<br>memory {share:.0%} of {total / MIB:.0f} MiB"
            )
        )
    host_trace = go.Scatter(
        x=[positions[f"host:{h}"][0] for h in hosts],
        y=[positions[f"host:{h}"][1] for h in hosts],
        mode="markers+text",
        text=list(hosts),
        textposition="bottom center",
        hovertext=host_hovers,
        hoverinfo="text",
        marker={
            "symbol": "square",
            "size": 30,
            "color": fills,
            "cmin": 0.0,
            "cmax": 1.0,
            "colorscale": "YlOrRd",
            "line": {"color": "#333", "width": 1},
        },
    )
    return [service_trace, host_trace]


def slo_overlay(
    runs: Mapping[str, pd.DataFrame], service: str, availability: float, latency_p99: float
) -> go.Figure:
    """Several runs of one service's SLO windows overlaid: availability and p99, one line each.

    The pinned runs of the explorer, and the variants of a comparison, drawn on one time axis
    with the SLO's targets as dashed lines.

    Args:
        runs: label -> :attr:`sim.analysis.Analysis.slo` of that run.
        service: whose windows (the entry service: what the users see).
        availability: the SLO's availability target (a fraction).
        latency_p99: the SLO's p99 target in seconds.

    Returns:
        The figure: availability (%) above, p99 (ms) below.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for index, (label, slo) in enumerate(runs.items()):
        rows = slo[slo["service"] == service].sort_values("t")
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        for row, column, scale, unit in (
            (1, "availability", 100.0, "%"),
            (2, "latency_p99", 1000.0, " ms"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=rows["t"],
                    y=rows[column] * scale,
                    name=label,
                    legendgroup=label,
                    showlegend=row == 1,
                    mode="lines",
                    line={"color": colour},
                    hovertemplate=f"{label} %{{y:.3g}}{unit}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    _layout(
        fig, f"SLO windows of {service} as its callers see them (dashed: target)", "", height=460
    )
    fig.update_yaxes(title_text="availability (%)", rangemode=None, row=1, col=1)
    fig.update_yaxes(title_text="p99 (ms)", row=2, col=1)
    fig.update_xaxes(title_text=None, row=1, col=1)
    fig.add_hline(y=availability * 100, line={"dash": "dash", "color": "#555"}, row=1, col=1)
    fig.add_hline(y=latency_p99 * 1000, line={"dash": "dash", "color": "#555"}, row=2, col=1)
    if not fig.data:
        _empty(fig, "no SLO window to draw")
    return fig


def _grid(count: int, columns: int = 3) -> tuple[int, int]:
    return max(1, math.ceil(count / columns)), min(columns, max(count, 1))


KPI_TITLES: dict[str, str] = {
    "availability": "Availability",
    "latency_p99": "p99 latency (s)",
    "blast_radius": "Blast radius (services)",
    "containment": "Containment",
    "time_to_recover": "Time to recover (s)",
    "metastable": "Metastable (share of runs)",
    "user_impact_fraction": "User impact (share of requests)",
    "oom_kills": "OOM kills",
    "restarts": "Restarts",
}
"""The metrics a comparison draws (Compare page, report), in panel order, with their titles."""


def kpi_bars(stats: pd.DataFrame, metrics: Mapping[str, str]) -> go.Figure:
    """Each variant's mean of each metric, with its 95% confidence interval, one panel per metric.

    Args:
        stats: :attr:`sim.experiment.Comparison.stats` (``metric, variant, n, mean, low, high``).
        metrics: metric -> panel title, in panel order (metrics missing from ``stats`` skipped).

    Returns:
        The figure; a bar's whisker is its 95% t interval over replications, and its mean is
        written above it (``n/a`` when undefined in every replication, e.g. the time to recover
        of a design that never broke).
    """
    shown = [m for m in metrics if m in set(stats["metric"])]
    rows, cols = _grid(len(shown))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[metrics[m] for m in shown] or None,
        vertical_spacing=0.18,
        horizontal_spacing=0.06,
    )
    variants = list(dict.fromkeys(stats["variant"]))
    for index, metric in enumerate(shown):
        part = stats[stats["metric"] == metric].set_index("variant").reindex(variants)
        mean = part["mean"].to_numpy(dtype=float)
        fig.add_trace(
            go.Bar(
                x=variants,
                y=mean,
                marker={
                    "color": [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(variants))]
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": part["high"].to_numpy(dtype=float) - mean,
                    "arrayminus": mean - part["low"].to_numpy(dtype=float),
                },
                customdata=part[["low", "high", "n"]].to_numpy(dtype=float),
                hovertemplate="%{x}: %{y:.4g} [%{customdata[0]:.4g}, %{customdata[1]:.4g}]"
                " n=%{customdata[2]:.0f}<extra></extra>",
                # written on the bar: a zero is not a missing bar, an undefined mean says so
                text=["n/a" if value != value else f"{value:.3g}" for value in mean],
                textposition="outside",
                cliponaxis=False,
                showlegend=False,
            ),
            row=index // cols + 1,
            col=index % cols + 1,
        )
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(
        title={"text": "Means with 95% confidence intervals", "x": 0.0},
        template=TEMPLATE,
        height=260 * rows + 60,
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    if not fig.data:
        _empty(fig, "no metric to compare")
    return fig


def paired_differences(stats: pd.DataFrame, metrics: Mapping[str, str]) -> go.Figure:
    """Each variant minus the reference, paired by seed, with 95% intervals (a forest plot).

    A point is the mean paired difference; its whisker the 95% t interval; red when the
    interval excludes 0 (significant), grey when not. The dashed line is no difference.

    Args:
        stats: :attr:`sim.experiment.Comparison.stats` (``diff, diff_low, diff_high,
            significant``; the reference's rows have no difference).
        metrics: metric -> panel title, in panel order.

    Returns:
        The figure, one panel per metric.
    """
    compared = stats[stats["diff_n"] > 0]
    shown = [m for m in metrics if m in set(compared["metric"])]
    rows, cols = _grid(len(shown))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[metrics[m] for m in shown] or None,
        vertical_spacing=0.18,
        horizontal_spacing=0.12,
    )
    for index, metric in enumerate(shown):
        part = compared[compared["metric"] == metric]
        diff = part["diff"].to_numpy(dtype=float)
        fig.add_trace(
            go.Scatter(
                x=diff,
                y=part["variant"],
                mode="markers",
                marker={
                    "size": 11,
                    "color": ["#d62728" if s else "#7f7f7f" for s in part["significant"]],
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": part["diff_high"].to_numpy(dtype=float) - diff,
                    "arrayminus": diff - part["diff_low"].to_numpy(dtype=float),
                },
                hovertemplate="%{y}: %{x:.4g}<extra></extra>",
                showlegend=False,
            ),
            row=index // cols + 1,
            col=index % cols + 1,
        )
        fig.add_vline(
            x=0, line={"dash": "dash", "color": "#555"}, row=index // cols + 1, col=index % cols + 1
        )
    fig.update_layout(
        title={"text": "Paired differences with the reference (red: significant at 95%)", "x": 0},
        template=TEMPLATE,
        height=max(220, (100 + 30 * compared["variant"].nunique()) * rows),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    if not fig.data:
        _empty(fig, "no difference to show: compare at least two variants")
    return fig


SWEEP_HEATMAPS = (
    ("blast_radius", "Blast radius (services beyond the targets)", "Reds", False),
    ("time_to_recover", "Time to recover after the trigger (s)", "Oranges", False),
    ("metastable", "Metastability map: share of replications metastable", "Reds", True),
    ("availability", "Availability (users)", "RdYlGn", True),
)
"""The heatmaps of a sweep (Sweep page, report): metric, title, colour scale, and whether it is a
fraction (coloured over 0..1 and written in percent: a share of runs, or availability)."""


def sweep_heatmap(
    summary: pd.DataFrame,
    metric: str,
    x: str,
    y: str | None,
    title: str,
    colorscale: str = "Reds",
    share: bool = False,
) -> go.Figure:
    """The mean of one metric over a sweep's grid, as a heatmap (one row for a single path).

    Args:
        summary: :attr:`sim.experiment.Sweep.summary` (``variant, point, <paths>, metric, n,
            mean, low, high``) of one variant.
        metric: which metric's mean colours the cells.
        x: the swept path along x.
        y: the swept path along y, or ``None`` for a one-parameter sweep.
        title: the figure's title.
        colorscale: a Plotly colour scale name.
        share: the metric is a fraction (a share of replications such as metastable, or an
            availability): colours span 0..1 and cells read as percentages.

    Returns:
        The figure, each cell annotated with its mean and the number of replications.
    """
    part = summary[summary["metric"] == metric]
    xs = list(dict.fromkeys(part[x].astype(str)))
    ys = list(dict.fromkeys(part[y].astype(str))) if y is not None else [metric]
    z = [[math.nan] * len(xs) for _ in ys]
    text = [[""] * len(xs) for _ in ys]
    for row in part.to_dict("records"):
        i = ys.index(str(row[y])) if y is not None else 0
        j = xs.index(str(row[x]))
        mean = row["mean"]
        z[i][j] = mean
        shown = "—" if pd.isna(mean) else (f"{mean:.0%}" if share else f"{mean:.3g}")
        text[i][j] = f"{shown}<br>n={int(row['n'])}"
    fig = go.Figure(
        go.Heatmap(
            x=xs,
            y=ys,
            z=z,
            text=text,
            texttemplate="%{text}",
            colorscale=colorscale,
            zmin=0.0 if share else None,
            zmax=1.0 if share else None,
            hovertemplate=f"{x}=%{{x}}<br>{y or ''}%{{y}}<br>%{{text}}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": title, "x": 0.0},
        template=TEMPLATE,
        height=max(260, 120 + 60 * len(ys)),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"title": x, "type": "category"},
        yaxis={"title": y or "", "type": "category"},
    )
    if not len(part):
        _empty(fig, f"no {metric} in this sweep")
    elif part["mean"].isna().all():
        _empty(fig, f"{metric} is undefined in every cell")
    return fig


REGIME_COLOURS = {"never impacted": "#2e7d32", "recovered": "#f9a825", "metastable": "#c62828"}
"""The metastability map's colours, by regime (green, amber, red)."""


def regime_map(regimes: pd.DataFrame, variant: str) -> go.Figure | None:
    """The metastability map of one design: each sweep cell coloured by its regime.

    Args:
        regimes: the sweep's ``regimes`` table (``variant, point``, one column per swept path,
            ``regime`` and the count of replications per regime).
        variant: the design to draw.

    Returns:
        The figure, or ``None`` when the design has no cell or nothing was swept.
    """
    names = list(REGIME_COLOURS)
    params = [c for c in regimes.columns if c not in {"variant", "point", "regime", *names}]
    rows = regimes[regimes["variant"] == variant]
    if rows.empty or not params:
        return None
    x = params[0]
    y = params[1] if len(params) > 1 else None
    rows = rows.assign(code=[names.index(r) for r in rows["regime"]])
    if y is None:
        codes = rows.set_index(x)["code"].to_frame().T
        labels = rows.set_index(x)["regime"].to_frame().T
        ylabels = [variant]
    else:
        codes = rows.pivot_table(index=y, columns=x, values="code", aggfunc="first")
        labels = rows.pivot_table(index=y, columns=x, values="regime", aggfunc="first")
        ylabels = [str(v) for v in codes.index]
    # one flat band per regime: codes 0, 1, 2 fall in the middle of thirds of [-0.5, 2.5]
    scale = [
        [bound / 3, colour]
        for i, colour in enumerate(REGIME_COLOURS.values())
        for bound in (i, i + 1)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=codes.to_numpy(),
            x=[str(v) for v in codes.columns],
            y=ylabels,
            text=labels.to_numpy(),
            texttemplate="%{text}",
            colorscale=scale,
            zmin=-0.5,
            zmax=2.5,
            showscale=False,
        )
    )
    fig.update_layout(
        title={"text": f"Metastability map: {variant}", "x": 0.0},
        template=TEMPLATE,
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig
