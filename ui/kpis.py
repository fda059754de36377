"""The headline numbers of a run, formatted once for every face (explorer, HTML report).

Pure functions of a run's ``summary`` dict: no Streamlit. Formats:

- availability: percent with three decimals (``99.082%``), so that 99.9% and 99.95% differ;
- latency: milliseconds below one second (``168 ms``), seconds above (``1.25 s``);
- counts: integers with thousands separators (``44,781``);
- a value the run could not measure (no request completed): an em dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MISSING = "—"


@dataclass(frozen=True)
class Kpi:
    """One headline number: what it is, its formatted value, and what it means."""

    label: str
    value: str
    help: str


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def format_percent(fraction: Any) -> str:
    """A fraction as a percentage with three decimals: ``0.990818`` -> ``99.082%``."""
    number = _number(fraction)
    return MISSING if number is None else f"{number:.3%}"


def format_seconds(seconds: Any) -> str:
    """A duration in seconds, in ms below one second: ``0.16788`` -> ``168 ms``, ``1.25 s``."""
    number = _number(seconds)
    if number is None:
        return MISSING
    if number < 1.0:
        return f"{number * 1000:.0f} ms"
    return f"{number:.3g} s"


def format_count(count: Any) -> str:
    """An integer count with thousands separators: ``44781`` -> ``44,781``."""
    number = _number(count)
    return MISSING if number is None else f"{round(number):,}"


def headline_kpis(summary: dict[str, Any]) -> list[Kpi]:
    """The explorer's KPI row for a run summary, in display order.

    Args:
        summary: ``RunResult.summary``.

    Returns:
        Availability, p99 latency, arrivals, OOM kills, evictions, restarts, in flight at end.
    """
    return [
        Kpi(
            "Availability",
            format_percent(summary.get("availability")),
            "Share of the completed user requests that ended ok or degraded.",
        ),
        Kpi(
            "p99 latency",
            format_seconds(summary.get("latency_p99")),
            "99th percentile of the end-to-end latency users saw, over the whole run.",
        ),
        Kpi("Arrivals", format_count(summary.get("arrivals")), "Requests users sent."),
        Kpi(
            "OOM kills",
            format_count(summary.get("oom_kills")),
            "Processes the kernel OOM killer killed (memcg and global).",
        ),
        Kpi(
            "Evictions",
            format_count(summary.get("evictions")),
            "Pods the kubelet evicted for node memory pressure (replaced, not restarted).",
        ),
        Kpi("Restarts", format_count(summary.get("restarts")), "Container restarts."),
        Kpi(
            "In flight at end",
            format_count(summary.get("in_flight_at_end")),
            "Requests still being served when the run stopped (not counted in availability).",
        ),
    ]
