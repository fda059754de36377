"""The headline numbers of a run, formatted once for every face (explorer, HTML report).

Pure functions of a run's ``summary`` and its analysis' headline (:mod:`sim.analysis`, where
every figure is defined): no Streamlit. Formats:

- availability: percent with three decimals (``99.082%``), so that 99.9% and 99.95% differ;
- latency: milliseconds below one second (``168 ms``), seconds above (``1.25 s``);
- counts: integers with thousands separators (``44,781``);
- shares (blast radius fraction, containment): whole percent, ``n/a`` when undefined;
- a value the run could not measure (no request completed): an em dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sim.stats import number_or_none

MISSING = "—"


@dataclass(frozen=True)
class Kpi:
    """One headline number: what it is, its formatted value, and what it means."""

    label: str
    value: str
    help: str


def format_percent(fraction: Any) -> str:
    """A fraction as a percentage with three decimals: ``0.990818`` -> ``99.082%``."""
    number = number_or_none(fraction)
    return MISSING if number is None else f"{number:.3%}"


def format_seconds(seconds: Any) -> str:
    """A duration in seconds, in ms below one second: ``0.16788`` -> ``168 ms``, ``1.25 s``."""
    number = number_or_none(seconds)
    if number is None:
        return MISSING
    if number < 1.0:
        return f"{number * 1000:.0f} ms"
    return f"{number:.3g} s"


def format_count(count: Any) -> str:
    """An integer count with thousands separators: ``44781`` -> ``44,781``."""
    number = number_or_none(count)
    return MISSING if number is None else f"{round(number):,}"


def format_share(fraction: Any) -> str:
    """A fraction as a whole percentage: ``0.6667`` -> ``67%``; NaN (undefined) -> ``n/a``."""
    if fraction is None:
        return MISSING
    number = float(fraction)
    return "n/a" if math.isnan(number) else f"{number:.0%}"


def format_recovery(headline: dict[str, Any]) -> str:
    """Time to recover from the trigger's end; ``not recovered``; a dash when undefined."""
    if "recovered" not in headline:
        return MISSING
    if not headline["recovered"]:
        return "not recovered"
    return format_seconds(headline.get("time_to_recover"))


VERDICTS = {True: "metastable", False: "not metastable", None: "undecided"}
"""The metastability verdict of :class:`sim.analysis.Recovery` in words."""


def headline_kpis(summary: dict[str, Any], headline: dict[str, Any] | None = None) -> list[Kpi]:
    """The KPI row of a run, in display order.

    Args:
        summary: ``RunResult.summary``.
        headline: :meth:`sim.analysis.Analysis.headline` of the same run; without it (a saved
            run that was not analysed) the analysis' KPIs read as a dash.

    Returns:
        Availability, p99 latency, blast radius, containment, time to recover, the
        metastability verdict, OOM kills, evictions, restarts.
    """
    headline = headline or {}
    metastable = headline.get("metastable")
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
        Kpi(
            "Blast radius",
            f"{format_count(headline.get('blast_radius'))} "
            f"({format_share(headline.get('blast_radius_fraction'))})",
            "Services beyond the fault targets that broke their SLO during the incident, and "
            "their share of all services.",
        ),
        Kpi(
            "Containment",
            format_share(headline.get("containment")),
            "1 - broken / reachable: of the services the fault could reach (callers of a target, "
            "neighbours on a faulted host), the share that kept their SLO; n/a when it could "
            "reach none.",
        ),
        Kpi(
            "Time to recover",
            format_recovery(headline),
            "From the end of the trigger (the last fault) until every SLO holds again for the "
            "rest of the run; 0 when the system came back while the fault lasted.",
        ),
        Kpi(
            "Verdict",
            VERDICTS[None if metastable is None else bool(metastable)]
            if "metastable" in headline
            else MISSING,
            "Metastable: the trigger ended and an SLO still failed a hold time later "
            f"({format_seconds(headline.get('hold'))}); undecided when the trigger never ended "
            "or the run stopped too soon.",
        ),
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
    ]
