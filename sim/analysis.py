"""The headline numbers of a run: SLO windows, blast radius, recovery, and the incident timeline.

Every definition of ``../shared/DESIGN.md`` §2.7 lives here, once; the experiments, the CLI and
the UI use these functions and nothing else. The README's "Metrics" section says the same in
words. All of it is computed from a :class:`~sim.recorder.RunResult` (its per-bin counters,
latency histograms, gauges, event log and failure counts) and the scenario that was run (with
its variant applied), so it works on a saved or a hand-built result as well as on a fresh run.

Decisions where DESIGN §2.7 is silent, each repeated where it is made:

* **A service as its callers see it.** A service's SLO is measured on the calls made *to* it:
  the sum of its incoming edges ``a -> s`` (and of ``client`` for the workload's entry), the
  caller-side view a service mesh reports. The server-side view would miss every request that
  never reached an instance (``unavailable`` when no replica is ready, a caller's timeout while
  the callee still works, an open breaker), which is precisely what an outage looks like.
* **Windows** are ``round(window / bin)`` bins wide and slide one bin at a time; one is
  evaluated at the end of every bin once it is full. A window with no finished request meets its
  SLO (there is no evidence against it).
* **The incident** starts when the first fault starts (at 0 when the scenario has none); the
  *trigger* ends when the last fault ends (a crash ends at once; a fault with no duration never
  does). It ends on recovery, or with the run.
* **Fault targets** are services: a service target; the callee of an edge target ``a -> b``;
  the workload's entry for a traffic surge. Host faults (``host_down``, ``memory_hog``) target a
  host and no service; that host, and the hosts of the replicas of a memory-faulted service, are
  the *faulted hosts* whose neighbours may suffer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from patterns.circuit_breaker import STATE_TRANSITION_LINE
from patterns.supervisor import BACKOFF_IN_MESSAGE
from sim import scenario as sc
from sim.recorder import CLIENT, RunResult, bin_count, bucket_values
from sim.request import OUTCOMES, Outcome
from sim.units import format_bytes, format_duration
from sim.world import MEMORY_THROTTLING_FACTOR

SLO_QUANTILE = 0.99
"""The latency SLO bounds the 99th percentile (DESIGN §2.7: "p99 <= target")."""

HOLD_WINDOWS = 2.0
"""Default metastability hold time, in SLO windows (of the longest window of any service).

A system that recovers the instant its trigger ends still shows violated windows for one window
length, while the trigger's bins slide out; a second window is the margin in which it must then
hold. DESIGN §2.7 asks for "a stated hold time" without a number: this is ours.
"""

MEMORY_NEAR_LIMIT = MEMORY_THROTTLING_FACTOR
"""A cgroup near its limit, for the timeline: 90% of ``memory.max`` (or of a host's RAM), where
the kubelet's MemoryQoS sets ``memory.high`` (``DefaultMemoryThrottlingFactor`` = 0.9)."""

TOP_REASONS = 3
"""Failure reasons reported per request class (the most frequent first)."""

DEATH_KINDS = frozenset({"terminated", "oom_kill", "kill", "sending", "node_not_ready"})
"""Event kinds that mean a process died (or was sent its kill signal): a container terminated,
the kernel's OOM kill, systemd-oomd's kill, earlyoom's signal, a host going down."""


# --------------------------------------------------------------------------- the results


@dataclass(frozen=True)
class Incident:
    """When the incident was and what it aimed at.

    Attributes:
        start: when the first fault started (0 when the scenario has no fault).
        trigger_end: when the last fault ended (``None``: a fault outlasts the run, or there is
            no fault).
        end: end of the incident window: recovery (or the trigger's end, if later), else the
            run's end.
        targets: the fault-target services.
        faulted_hosts: hosts targeted by a host fault or holding a memory-faulted replica.
    """

    start: float
    trigger_end: float | None
    end: float
    targets: tuple[str, ...]
    faulted_hosts: tuple[str, ...]


@dataclass(frozen=True)
class BlastRadius:
    """How far the incident spread (DESIGN §2.7 "Impacted", "Blast radius").

    Attributes:
        impacted: services out of SLO in a window after the incident started, and in none
            before it.
        beyond_targets: the impacted services that are not fault targets.
        count: ``len(beyond_targets)``.
        fraction: ``count`` over the number of services.
        impacted_hosts: hosts where a process died during the incident.
        user_impact_fraction: share of the users' requests finished during the incident that
            failed or were slower than the entry service's latency SLO.
        user_impact_requests: their number: the area under the bad-request rate over the incident,
            in request-seconds ((requests/s) x s).
        collateral_kills: containers terminated during the incident that were not fault targets
            (the noisy-neighbour effect); a replica on a host taken down by a ``host_down``
            fault is a target of that fault.
        potential: services the incident could reach: every (transitive) caller of a target,
            plus every service with a replica on a faulted host, targets excluded.
        containment: ``1 - |beyond_targets & potential| / |potential|`` (NaN when nothing could
            be reached).
    """

    impacted: tuple[str, ...]
    beyond_targets: tuple[str, ...]
    count: int
    fraction: float
    impacted_hosts: tuple[str, ...]
    user_impact_fraction: float
    user_impact_requests: int
    collateral_kills: int
    potential: tuple[str, ...]
    containment: float


@dataclass(frozen=True)
class Recovery:
    """How, and whether, the system came back (DESIGN §2.7 "Recovery").

    Attributes:
        recovered: every SLO holds in the run's last window, and has since ``recovered_at``.
        recovered_at: end of the first window of the run's final stretch in which every SLO
            holds (the incident's start when no SLO broke); ``None`` when not recovered.
        time_to_recover: ``recovered_at`` minus the trigger's end (0 when it recovered before
            the trigger ended; ``None`` when the trigger never ended or it did not recover).
        time_to_recover_from_start: ``recovered_at`` minus the incident's start.
        metastable: the trigger ended but an SLO still failed ``hold`` seconds later (``None``
            when the trigger never ended, or the run ended before the hold time had passed
            without a recovery).
        hold: the hold time of the verdict, in seconds.
        goodput_lost: requests the users did not get served, against the pre-incident goodput
            (see :func:`goodput_lost`; NaN when the incident starts at 0, with no baseline).
        peak_error_rate: the highest per-bin share of failed user requests during the incident.
        restarts: container restarts from the trigger's end (its start, when it never ends) to
            the incident's end.
        oom_kills: the kernel's OOM kills in the same interval.
    """

    recovered: bool
    recovered_at: float | None
    time_to_recover: float | None
    time_to_recover_from_start: float | None
    metastable: bool | None
    hold: float
    goodput_lost: float
    peak_error_rate: float
    restarts: int
    oom_kills: int


@dataclass(frozen=True)
class Analysis:
    """Everything :func:`analyze` finds in one run.

    Attributes:
        incident: when, and aimed at what.
        blast: how far it spread.
        recovery: how it came back.
        slo: every window of every service: ``t`` (window end), ``service``, ``requests``,
            ``availability``, ``degraded`` (share served degraded), ``latency_p99``,
            ``violated``.
        timeline: the incident timeline (see :func:`timeline`).
        reasons: the top failure reasons per request class (see :func:`failure_reasons`).
    """

    incident: Incident
    blast: BlastRadius
    recovery: Recovery
    slo: pd.DataFrame = field(repr=False)
    timeline: pd.DataFrame = field(repr=False)
    reasons: pd.DataFrame = field(repr=False)

    def headline(self) -> dict[str, Any]:
        """The scalar figures, flat: one row of an experiment's ``runs`` table."""
        blast, recovery = self.blast, self.recovery
        return {
            "incident_start": self.incident.start,
            "trigger_end": self.incident.trigger_end,
            "incident_end": self.incident.end,
            "targets": ",".join(self.incident.targets),
            "impacted": ",".join(blast.impacted),
            "impacted_count": len(blast.impacted),
            "blast_radius": blast.count,
            "blast_radius_fraction": blast.fraction,
            "impacted_hosts": ",".join(blast.impacted_hosts),
            "user_impact_fraction": blast.user_impact_fraction,
            "user_impact_requests": blast.user_impact_requests,
            "collateral_kills": blast.collateral_kills,
            "potential": ",".join(blast.potential),
            "containment": blast.containment,
            "recovered": recovery.recovered,
            "recovered_at": recovery.recovered_at,
            "time_to_recover": recovery.time_to_recover,
            "time_to_recover_from_start": recovery.time_to_recover_from_start,
            "metastable": recovery.metastable,
            "hold": recovery.hold,
            "goodput_lost": recovery.goodput_lost,
            "peak_error_rate": recovery.peak_error_rate,
            "recovery_restarts": recovery.restarts,
            "recovery_oom_kills": recovery.oom_kills,
        }


# --------------------------------------------------------------------------- per-bin traffic


@dataclass(frozen=True)
class _Bins:
    """The run's time bins: count, width, and each bin's real length (the last may be short)."""

    width: float
    duration: float

    @property
    def n(self) -> int:
        return bin_count(self.duration, self.width)

    @property
    def spans(self) -> np.ndarray:
        starts = np.arange(self.n) * self.width
        return np.asarray(np.minimum(self.width, self.duration - starts))

    def index(self, t: float) -> int:
        """The bin holding time ``t`` (the last bin for the run's end)."""
        return min(self.n - 1, max(0, math.floor(t / self.width + 1e-9)))


@dataclass(frozen=True)
class _Traffic:
    """Per-bin finished requests of one view: outcome counts and successful-latency histograms."""

    counts: np.ndarray  # (bins, outcomes)
    hist: np.ndarray  # (bins, buckets)

    @property
    def finished(self) -> np.ndarray:
        return np.asarray(self.counts.sum(axis=1))

    @property
    def good(self) -> np.ndarray:
        return np.asarray(self.counts[:, Outcome.OK] + self.counts[:, Outcome.DEGRADED])


def _traffic(result: RunResult, entities: list[str], bins: _Bins) -> _Traffic:
    """Sum the per-bin counters and histograms of ``entities``.

    Counts come back from the time series' per-second rates times each bin's length (rounded:
    the recorder divided an integer count by that same length).
    """
    series = result.timeseries
    counts = np.zeros((bins.n, len(OUTCOMES)), dtype=np.int64)
    rates = series[series["entity"].isin(entities) & series["metric"].str.startswith("rate.")]
    if len(rates):
        index = np.minimum(np.round(rates["t"].to_numpy() / bins.width).astype(int), bins.n - 1)
        column = rates["metric"].str.slice(5).map({o.label: int(o) for o in OUTCOMES})
        values = np.round(rates["value"].to_numpy() * bins.spans[index]).astype(np.int64)
        np.add.at(counts, (index, column.to_numpy(dtype=int)), values)
    latency = result.latency
    rows = latency[latency["entity"].isin(entities)] if len(latency) else latency
    width = int(rows["bucket"].max()) + 1 if len(rows) else 1
    hist = np.zeros((bins.n, width), dtype=np.int64)
    if len(rows):
        index = np.minimum(np.round(rows["t"].to_numpy() / bins.width).astype(int), bins.n - 1)
        np.add.at(
            hist, (index, rows["bucket"].to_numpy(dtype=int)), rows["count"].to_numpy(np.int64)
        )
    return _Traffic(counts, hist)


def _callers_view(scenario: sc.Scenario, service: str) -> list[str]:
    """The entities that record the calls made to ``service``.

    Its incoming edges, and ``client`` for the workload's entry.
    """
    callers = [f"{caller} -> {service}" for caller in scenario.call_graph().predecessors(service)]
    return [CLIENT, *callers] if service == scenario.workload.entry else callers


def _bins(scenario: sc.Scenario) -> _Bins:
    return _Bins(scenario.recording.bin, scenario.duration)


def _window_bins(window: float, bins: _Bins) -> int:
    return max(1, round(window / bins.width))


def _over(hist: np.ndarray, threshold: float) -> np.ndarray:
    """Per row, the successful requests slower than ``threshold`` (by their bucket's value)."""
    return np.asarray(hist[:, bucket_values(hist.shape[1]) > threshold].sum(axis=1))


# --------------------------------------------------------------------------- SLO windows


def slo_windows(result: RunResult, scenario: sc.Scenario) -> pd.DataFrame:
    """Every service's SLO over its rolling window, evaluated at the end of every bin.

    A window of ``round(window / bin)`` bins ending at ``t`` meets the SLO when its success
    ratio (``ok`` + ``degraded`` over finished calls) is at least ``availability`` and the 99th
    percentile of its successful calls' latency (merged histograms, as
    :func:`~sim.recorder.percentile` reads them) is at most ``latency_p99`` (DESIGN §2.7). Calls
    are counted as the service's callers saw them (see the module docstring); a window with no
    call meets the SLO. Only full windows are evaluated.

    Returns:
        ``t, service, requests, availability, degraded, latency_p99, violated``.
    """
    bins = _bins(scenario)
    ends = np.minimum((np.arange(bins.n) + 1) * bins.width, bins.duration)
    frames = []
    for service in scenario.services:
        slo = scenario.slo_for(service)
        traffic = _traffic(result, _callers_view(scenario, service), bins)
        k = _window_bins(slo.window, bins)
        if bins.n < k:
            continue
        windows = _Traffic(_rolling(traffic.counts, k), _rolling(traffic.hist, k))
        finished = windows.finished
        with np.errstate(invalid="ignore", divide="ignore"):
            availability = np.where(finished > 0, windows.good / finished, np.nan)
            degraded = np.where(
                finished > 0, windows.counts[:, Outcome.DEGRADED] / finished, np.nan
            )
        p99 = _quantiles(windows.hist, SLO_QUANTILE)
        violated = (finished > 0) & (
            (np.nan_to_num(availability, nan=0.0) < slo.availability)
            | (np.nan_to_num(p99, nan=0.0) > slo.latency_p99)
        )
        frames.append(
            pd.DataFrame(
                {
                    "t": ends[k - 1 :],
                    "service": service,
                    "requests": finished,
                    "availability": availability,
                    "degraded": degraded,
                    "latency_p99": p99,
                    "violated": violated,
                }
            )
        )
    columns = ["t", "service", "requests", "availability", "degraded", "latency_p99", "violated"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _rolling(per_bin: np.ndarray, k: int) -> np.ndarray:
    """Sums over every run of ``k`` consecutive rows (one per full window)."""
    cumulative = np.vstack([np.zeros((1, per_bin.shape[1]), dtype=per_bin.dtype), per_bin])
    cumulative = cumulative.cumsum(axis=0)
    return np.asarray(cumulative[k:] - cumulative[:-k])


def _quantiles(hist: np.ndarray, q: float) -> np.ndarray:
    """Row-wise ``q``-quantile of bucket histograms, as :func:`~sim.recorder.percentile`."""
    totals = hist.sum(axis=1)
    seen = hist.cumsum(axis=1)
    first = np.argmax(seen >= (q * totals)[:, None], axis=1)
    return np.where(totals > 0, bucket_values(hist.shape[1])[first], np.nan)


# --------------------------------------------------------------------------- the incident


def fault_window(scenario: sc.Scenario) -> tuple[float, float | None]:
    """When the first fault starts (0 without faults) and the last one ends (``None``: never).

    A crash happens at an instant; a fault without a duration lasts to the end of the run.
    """
    faults = scenario.faults
    if not faults:
        return 0.0, None
    start = min(f.at for f in faults)
    ends = []
    for fault in faults:
        if isinstance(fault, sc.CrashFault):
            ends.append(fault.at)
        elif fault.duration is None:
            return start, None
        else:
            ends.append(fault.at + fault.duration)
    return start, max(ends)


def fault_targets(scenario: sc.Scenario) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fault-target services and the faulted hosts (see the module docstring)."""
    services: set[str] = set()
    hosts: set[str] = set()
    placed = sc.placements(scenario)
    for fault in scenario.faults:
        if isinstance(fault, sc.TrafficSurgeFault):
            services.add(scenario.workload.entry)
        elif isinstance(fault, sc.HostDownFault | sc.DrainFault | sc.MemoryHogFault):
            hosts.add(fault.target)
        else:
            target = fault.target.partition("->")[2].strip() or fault.target
            services.add(target)
            if isinstance(fault, sc.MemoryLeakFault | sc.MemorySpikeFault):
                hosts.update(placed[target])
    return tuple(sorted(services)), tuple(sorted(hosts))


def potential_reach(
    graph: nx.DiGraph[str],
    targets: Iterable[str],
    faulted_hosts: Iterable[str],
    placement: dict[str, list[str]],
) -> tuple[str, ...]:
    """Services an incident could reach (DESIGN §2.7 "containment": the *potential*).

    The targets' callers, transitively (networkx ancestors in the call graph), plus every
    service with a replica on a faulted host; the targets themselves excluded.
    """
    targets = set(targets)
    hosts = set(faulted_hosts)
    reach: set[str] = set()
    for target in targets:
        reach |= nx.ancestors(graph, target)
    reach |= {name for name, placed in placement.items() if hosts.intersection(placed)}
    return tuple(sorted(reach - targets))


def containment(beyond_targets: Iterable[str], potential: Iterable[str]) -> float:
    """``1 - actual / potential``: actual the impacted non-targets the incident could reach.

    1 means nothing it could reach was impacted, 0 that everything was; NaN when it could reach
    nothing. Impacted services outside the potential set count in the blast radius, not here.
    """
    reach = set(potential)
    if not reach:
        return math.nan
    return 1.0 - len(reach.intersection(beyond_targets)) / len(reach)


def impacted_services(slo: pd.DataFrame, start: float) -> tuple[str, ...]:
    """Services out of SLO after ``start`` and not before it (DESIGN §2.7 "Impacted").

    After: in a window ending after ``start``; before: in a window ending at or before it.
    """
    before = set(slo.loc[slo["violated"] & (slo["t"] <= start), "service"])
    after = set(slo.loc[slo["violated"] & (slo["t"] > start), "service"])
    return tuple(sorted(after - before))


def recovery_point(slo: pd.DataFrame, start: float) -> tuple[bool, float | None]:
    """Whether, and when, every SLO holds again: ``(recovered, recovered_at)``.

    Services already out of SLO before ``start`` are left out (their SLO did not break in the
    incident). ``recovered_at`` is the end of the window after the last one, ending after
    ``start``, in which some SLO fails; when none fails it is ``start``. Not recovered when the
    run's last window fails.
    """
    before = set(slo.loc[slo["violated"] & (slo["t"] <= start), "service"])
    considered = slo[~slo["service"].isin(before)]
    ends = np.sort(considered["t"].unique())
    failing = considered.loc[considered["violated"] & (considered["t"] > start), "t"]
    if failing.empty:
        return True, start
    last = float(failing.max())
    later = ends[ends > last]
    if not len(later):
        return False, None
    return True, float(later[0])


def metastable_verdict(
    trigger_end: float | None, recovered_at: float | None, hold: float, run_end: float
) -> bool | None:
    """Metastable: the trigger ended, yet an SLO still fails ``hold`` seconds later.

    ``None`` when the trigger never ended, or when the run ended less than ``hold`` after it
    without a recovery (undecided). Bronson et al., "Metastable Failures in Distributed Systems"
    (HotOS 2021): a failure that sustains itself after its trigger is removed.
    """
    if trigger_end is None:
        return None
    if recovered_at is not None:
        return recovered_at > trigger_end + hold
    if run_end < trigger_end + hold:
        return None
    return True


def default_hold(scenario: sc.Scenario) -> float:
    """:data:`HOLD_WINDOWS` times the longest SLO window of any service."""
    return HOLD_WINDOWS * max(scenario.slo_for(s).window for s in scenario.services)


def _incident_bins(bins: _Bins, start: float, end: float) -> slice:
    """The bins of the incident window.

    From the bin holding ``start`` to the last one starting before ``end`` (at least one).
    """
    first = bins.index(start)
    last = max(first + 1, math.ceil(end / bins.width - 1e-9))
    return slice(first, min(last, bins.n))


def _events_between(events: pd.DataFrame, kinds: Iterable[str], low: float, high: float) -> Any:
    return events[events["kind"].isin(list(kinds)) & (events["t"] >= low) & (events["t"] <= high)]


def _reason(detail: str) -> str:
    found = re.search(r"Reason: ([^,]+)", detail)
    return found.group(1) if found else ""


def collateral_kills(
    events: pd.DataFrame,
    entities: pd.DataFrame,
    targets: Iterable[str],
    downed_hosts: Iterable[str],
    start: float,
    end: float,
) -> int:
    """Containers terminated in ``[start, end]`` that were not fault targets.

    A replica of a target service is a target; so is a replica that died ``HostDown`` on a host
    a ``host_down`` fault took down.
    """
    owner = _instance_services(entities)
    targets, downed = set(targets), set(downed_hosts)
    count = 0
    for row in _events_between(events, ["terminated"], start, end).itertuples():
        service = owner.get(str(row.entity))
        if service is None or service in targets:
            continue
        if _reason(str(row.detail)) == "HostDown" and row.host in downed:
            continue
        count += 1
    return count


def _instance_services(entities: pd.DataFrame) -> dict[str, str]:
    if entities.empty:
        return {}
    rows = entities[entities["kind"] == "instance"]
    return dict(zip(rows["entity"].astype(str), rows["service"].astype(str), strict=True))


def analyze(result: RunResult, scenario: sc.Scenario, hold: float | None = None) -> Analysis:
    """Analyse one run.

    Args:
        result: the :class:`~sim.recorder.RunResult`.
        scenario: the scenario as run (variant and overrides applied: ``World.scenario``).
        hold: the metastability hold time in seconds (default :func:`default_hold`).
    """
    bins = _bins(scenario)
    hold = default_hold(scenario) if hold is None else hold
    slo = slo_windows(result, scenario)
    start, trigger_end = fault_window(scenario)
    targets, faulted_hosts = fault_targets(scenario)
    recovered, recovered_at = recovery_point(slo, start)
    run_end = scenario.duration
    end = recovered_at if recovered_at is not None else run_end
    end = max(end, trigger_end if trigger_end is not None else run_end)
    incident = Incident(start, trigger_end, end, targets, faulted_hosts)

    impacted = impacted_services(slo, start)
    beyond = tuple(s for s in impacted if s not in targets)
    potential = potential_reach(
        scenario.call_graph(), targets, faulted_hosts, sc.placements(scenario)
    )
    events = result.events
    downed = {f.target for f in scenario.faults if isinstance(f, sc.HostDownFault)}
    users = _traffic(result, [CLIENT], bins)
    window = _incident_bins(bins, start, end)
    bad, total = user_impact(users, window, scenario.slo_for(scenario.workload.entry).latency_p99)
    blast = BlastRadius(
        impacted=impacted,
        beyond_targets=beyond,
        count=len(beyond),
        fraction=len(beyond) / len(scenario.services),
        impacted_hosts=impacted_hosts(events, [h.name for h in scenario.hosts], start, end),
        user_impact_fraction=bad / total if total else 0.0,
        user_impact_requests=bad,
        collateral_kills=collateral_kills(events, result.entities, targets, downed, start, end),
        potential=potential,
        containment=containment(beyond, potential),
    )

    recovery_from = trigger_end if trigger_end is not None else start
    recovery = Recovery(
        recovered=recovered,
        recovered_at=recovered_at,
        time_to_recover=(
            max(0.0, recovered_at - trigger_end)
            if recovered_at is not None and trigger_end is not None
            else None
        ),
        time_to_recover_from_start=None if recovered_at is None else recovered_at - start,
        metastable=metastable_verdict(trigger_end, recovered_at, hold, run_end),
        hold=hold,
        goodput_lost=goodput_lost(users.good, bins.spans, window),
        peak_error_rate=peak_error_rate(users, window),
        restarts=len(_events_between(events, ["restart"], recovery_from, end)),
        oom_kills=len(_events_between(events, ["oom_kill"], recovery_from, end)),
    )
    return Analysis(
        incident=incident,
        blast=blast,
        recovery=recovery,
        slo=slo,
        timeline=timeline(result, scenario, slo),
        reasons=failure_reasons(result.failures),
    )


def user_impact(users: _Traffic, window: slice, latency_slo: float) -> tuple[int, int]:
    """``(bad, finished)`` user requests in the incident's bins.

    Bad: failed, or successful but slower than ``latency_slo`` (by their histogram bucket's
    value, as the SLO's p99 reads it).
    """
    finished = users.finished[window]
    failed = int((finished - users.good[window]).sum())
    return failed + int(_over(users.hist[window], latency_slo).sum()), int(finished.sum())


def peak_error_rate(users: _Traffic, window: slice) -> float:
    """The highest per-bin share of failed user requests in the incident's bins (0 if none)."""
    finished = users.finished[window]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(finished > 0, (finished - users.good[window]) / finished, 0.0)
    return float(rates.max()) if len(rates) else 0.0


def impacted_hosts(
    events: pd.DataFrame, hosts: Iterable[str], start: float, end: float
) -> tuple[str, ...]:
    """Hosts where a process died in ``[start, end]`` (an event of :data:`DEATH_KINDS`)."""
    dead = _events_between(events, DEATH_KINDS, start, end)
    return tuple(sorted(set(dead["host"]) & set(hosts)))


def goodput_lost(good: np.ndarray, spans: np.ndarray, window: slice) -> float:
    """Requests not served against the pre-incident goodput, over the incident's bins.

    The baseline is the mean goodput (``ok`` + ``degraded`` per second) of the bins before the
    incident; the loss is the area between it and the goodput over the incident, net (bins
    above the baseline offset bins below it, so Poisson noise cancels instead of piling up),
    and never below 0: ``max(0, baseline x length - good requests)``. In request-seconds
    ((requests/s) x s, i.e. requests). NaN when the incident starts in the first bin (no
    baseline).
    """
    first = window.start or 0
    if first == 0:
        return math.nan
    baseline = good[:first].sum() / spans[:first].sum()
    return float(max(0.0, baseline * spans[window].sum() - good[window].sum()))


# --------------------------------------------------------------------------- failure reasons


def failure_reasons(failures: pd.DataFrame, top: int = TOP_REASONS) -> pd.DataFrame:
    """Per request class with failures, its ``top`` most frequent reasons.

    Args:
        failures: ``RunResult.failures`` (``class, where, cause, outcome, count``).
        top: how many reasons per class.

    Returns:
        ``class, failed`` (the class's failed requests), ``rank`` (1 = most frequent),
        ``where, cause, outcome, count, share`` (of the class's failures).
    """
    columns = ["class", "failed", "rank", "where", "cause", "outcome", "count", "share"]
    if failures.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for name, group in failures.groupby("class", sort=True):
        failed = int(group["count"].sum())
        ordered = group.sort_values(["count", "where", "cause"], ascending=[False, True, True])
        for rank, row in enumerate(ordered.head(top).to_dict("records"), start=1):
            count = int(row["count"])
            reason = (row["where"], row["cause"], row["outcome"], count, count / failed)
            rows.append((name, failed, rank, *reason))
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- the timeline

CAUSES: dict[str, tuple[str, ...]] = {
    "fault_start": (),
    "fault_end": ("fault_start",),
    "memory": ("fault_start",),
    "node_pressure": ("memory", "fault_start"),
    "oom_kill": ("memory", "node_pressure", "fault_start"),
    "userspace_kill": ("memory", "node_pressure", "fault_start"),
    "evicted": ("node_pressure", "memory", "fault_start"),
    "kernel_panic": ("memory", "fault_start"),
    "node_not_ready": ("kernel_panic", "fault_start"),
    "node_ready": ("node_not_ready",),
    "terminated": (
        "oom_kill",
        "userspace_kill",
        "evicted",
        "node_not_ready",
        "kernel_panic",
        "fault_start",
    ),
    "backoff": ("terminated",),
    "restart": ("backoff", "terminated"),
    "scheduled": ("terminated",),
    "failed_scheduling": ("terminated",),
    "ready": ("restart", "scheduled", "node_ready"),
    "breaker_open": (
        "terminated",
        "slo_violation",
        "oom_kill",
        "node_not_ready",
        "fault_start",
    ),
    "breaker_closed": ("breaker_open",),
    "slo_violation": (
        "terminated",
        "breaker_open",
        "slo_violation",
        "oom_kill",
        "evicted",
        "memory",
        "fault_start",
    ),
    "slo_ok": ("ready", "breaker_closed", "slo_ok", "fault_end"),
}
"""The causal model of the timeline: which kinds of entry can cause each kind (fault -> memory
-> OOM kill -> terminated -> back-off -> restart -> ready; a dependency's death -> a breaker
opens -> its callers' SLO breaks; ...)."""


@dataclass
class _Entry:
    t: float
    order: int
    kind: str
    key: str
    entity: str
    service: str | None
    host: str | None
    text: str
    count: int = 1
    t_last: float = 0.0
    cause: int | None = None


def timeline(result: RunResult, scenario: sc.Scenario, slo: pd.DataFrame) -> pd.DataFrame:
    """The incident timeline: what happened, in order, each entry linked to its likely cause.

    Entries come from the event log (faults, the kernel's OOM kills and panics, the kubelet's
    evictions and memory pressure, user-space OOM killers, containers terminating, backing off,
    restarting and becoming ready, breakers opening and closing), plus two derived kinds: a
    cgroup or host reaching :data:`MEMORY_NEAR_LIMIT` of its limit (from the gauges), and a
    service leaving or re-entering its SLO (from :func:`slo_windows`). Chatty lines (the OOM
    report's task table, eviction manager logs, half-open probes, per-call bulkhead refusals)
    are left out; an entry that repeats the previous one of the same subject is merged into it
    (``count``, ``t_last``).

    The cause of an entry is the latest earlier entry of a kind :data:`CAUSES` allows, looked
    for first on the same subject (instance, breaker, host...), then on the same service or one
    it calls (transitively), then on the same host, and finally a fault on a service connected
    to it in the call graph: a heuristic reading of the log, the way an engineer would read it,
    not a proof.

    Returns:
        ``t, t_last, count, kind, entity, service, host, text, cause`` (the row index of the
        cause, ``<NA>`` for none), in time order.
    """
    instances = _instance_services(result.entities)
    entries = _event_entries(result.events, scenario, instances)
    entries += _memory_entries(result, instances)
    entries += _slo_entries(slo, scenario)
    entries.sort(key=lambda e: (e.t, e.order))
    merged: list[_Entry] = []
    last_of: dict[str, _Entry] = {}
    for entry in entries:
        previous = last_of.get(entry.key)
        if previous is not None and (previous.kind, previous.text) == (entry.kind, entry.text):
            previous.count += 1
            previous.t_last = entry.t
            continue
        entry.t_last = entry.t
        merged.append(entry)
        last_of[entry.key] = entry
    _link(merged, scenario.call_graph())
    return pd.DataFrame(
        {
            "t": [e.t for e in merged],
            "t_last": [e.t_last for e in merged],
            "count": [e.count for e in merged],
            "kind": [e.kind for e in merged],
            "entity": [e.entity for e in merged],
            "service": [e.service for e in merged],
            "host": [e.host for e in merged],
            "text": [e.text for e in merged],
            "cause": pd.array([e.cause for e in merged], dtype="Int64"),
        }
    )


def _link(entries: list[_Entry], graph: nx.DiGraph[str]) -> None:
    """Set each entry's cause (see :func:`timeline`).

    Earlier entries are indexed by kind and by subject, service and host, so each entry finds
    its cause without scanning the whole timeline (a flapping breaker in a long run makes
    thousands of entries).
    """
    reach = {
        s: _Reach(
            {s, *nx.descendants(graph, s)}, {s, *nx.ancestors(graph, s), *nx.descendants(graph, s)}
        )
        for s in graph
    }
    seen: dict[tuple[str, str, str], dict[str, int]] = {}
    """(kind, "key" | "service" | "host", its value) -> subject key -> latest entry index."""
    for index, entry in enumerate(entries):
        entry.cause = _cause(entry, seen, reach.get(entry.service or ""))
        for scope, value in (("key", entry.key), ("service", entry.service), ("host", entry.host)):
            if value is not None:
                seen.setdefault((entry.kind, scope, value), {})[entry.key] = index


@dataclass(frozen=True)
class _Reach:
    """Services related to one in the call graph."""

    depends: set[str]
    """Itself and what it calls, transitively."""
    connected: set[str]
    """Itself, its callers and what it calls, transitively."""


def _cause(
    entry: _Entry, seen: dict[tuple[str, str, str], dict[str, int]], related: _Reach | None
) -> int | None:
    """The latest earlier entry of an allowed kind, in the closest scope that has one.

    Scopes, closest first: the same subject; the same service or one it calls; the same host;
    a fault on a service connected to it in the call graph. An earlier entry of the same kind
    on the same subject is a previous episode, not a cause.
    """
    allowed = CAUSES[entry.kind]
    faults = ("fault_start",) if "fault_start" in allowed else ()
    scopes: tuple[tuple[str, Iterable[str], tuple[str, ...]], ...] = (
        ("key", [entry.key], allowed),
        ("service", related.depends if related else (), allowed),
        ("host", [entry.host] if entry.host is not None else (), allowed),
        ("service", related.connected if related else (), faults),
    )
    for scope, values, kinds in scopes:
        found = [
            index
            for kind in kinds
            for value in values
            for key, index in seen.get((kind, scope, value), {}).items()
            if not (kind == entry.kind and key == entry.key)
        ]
        if found:
            return max(found)
    return None


CONTAINER_PATHS = (re.compile(r"/pod-([^/]+)/"), re.compile(r"/([^/]+)\.service$"))
"""How a cgroup path names its container: a kubepods pod's, or a bare host's unit (group 1)."""
_KILLED = re.compile(r"^(.*?Killed process \d+ \([^)]*\))")
_EVICTED_CONTAINER = re.compile(r"Container (\S+) was using")
"""The back-off in a container's Waiting message (the ``BackOff`` event itself gives none)."""
_EXIT = re.compile(r"Reason: ([^,]+), Exit Code: (\d+)")


def _event_entries(
    events: pd.DataFrame, scenario: sc.Scenario, instances: dict[str, str]
) -> list[_Entry]:
    """Timeline entries from the event log (lines of no interest are left out)."""
    hosts = {h.name for h in scenario.hosts}
    replicas = {name: s.replicas for name, s in scenario.services.items()}
    ready = set(instances)  # warm start: every replica serves at t=0
    entries = []
    records = events.to_dict("records")
    # a BackOff event is followed, at its instant, by the Waiting line that says how long
    waiting = {(r["t"], r["entity"]): str(r["detail"]) for r in records if r["kind"] == "waiting"}
    for order, row in enumerate(records):
        entity, kind, detail, host = (str(row[c]) for c in ("entity", "kind", "detail", "host"))
        # (kind, text, subject key, service, host) of the entry, when the line makes one
        found: tuple[str, str, str, str | None, str | None] | None = None
        on_host = host if host in hosts else None
        if kind in ("fault_start", "fault_end"):
            target = entity.partition("->")[2].strip() or entity
            name, _, what = detail.removeprefix("fault ").partition(": ")
            text = f"fault {name} {'starts' if kind == 'fault_start' else 'ends'} on {entity}"
            text += f": {what}" if kind == "fault_start" else ""
            service = target if target in scenario.services else None
            found = (kind, text, entity, service, entity if entity in hosts else None)
        elif kind == "oom_kill":
            instance = container_of(entity, instances)
            killed = _KILLED.match(detail)
            text = f"kernel: {killed.group(1) if killed else detail} in {instance or entity}"
            service = instances.get(instance or "")
            entity = instance or entity
            found = ("oom_kill", text, entity, service, on_host)
        elif kind in ("kernel_panic", "node_not_ready", "node_ready"):
            found = (kind, f"{host}: {detail}", host, None, on_host)
        elif kind == "NodeHasInsufficientMemory":
            found = (
                "node_pressure",
                f"{host}: kubelet reports MemoryPressure",
                host,
                None,
                on_host,
            )
        elif kind == "Evicted":
            container = _EVICTED_CONTAINER.search(detail)
            service = container.group(1) if container else None
            text = f"kubelet evicts the {service} pod: {detail.strip()}"
            found = ("evicted", text, host, service, on_host)
        elif kind == "kill" or (entity == "earlyoom" and kind == "sending"):
            found = ("userspace_kill", f"{entity}: {detail}", host, None, on_host)
        elif kind in _INSTANCE_KINDS and entity in instances:
            service = instances[entity]
            if kind == "terminated":
                ready.discard(entity)
            elif kind == "ready":
                ready.add(entity)
            serving = sum(1 for i in ready if instances[i] == service)
            balance = f"load balancer: {serving} of {replicas[service]} {service} replicas"
            if kind == "backoff":
                detail = waiting.get((row["t"], row["entity"]), detail)
            text = _instance_text(kind, entity, detail, balance)
            found = (kind, text, entity, service, on_host)
        elif kind == "circuit_breaker":
            change = STATE_TRANSITION_LINE.search(detail)
            if change is not None and change.group(3) in ("OPEN", "CLOSED"):
                name, opened = change.group(1), change.group(3) == "OPEN"
                verb = "opens: calls fail fast" if opened else "closes: calls flow again"
                found = (
                    "breaker_open" if opened else "breaker_closed",
                    f"{entity}: circuit breaker {name} {verb}",
                    f"{entity} {name}",
                    name.partition("->")[2] or None,
                    on_host,
                )
        if found is not None:
            what, text, key, service, where = found
            entries.append(_Entry(float(row["t"]), order, what, key, entity, service, where, text))
    return entries


_AFTER_EVENTS = 1 << 40
"""Order of derived SLO entries among the event log's lines at the same instant: after them."""

_INSTANCE_KINDS = ("terminated", "backoff", "restart", "ready", "scheduled", "failed_scheduling")


def _instance_text(kind: str, instance: str, detail: str, balance: str) -> str:
    if kind == "terminated":
        found = _EXIT.search(detail)
        why = f"{found.group(1)}, exit code {found.group(2)}" if found else detail
        return f"{instance} terminated ({why}); {balance}"
    if kind == "backoff":
        found = BACKOFF_IN_MESSAGE.search(detail)
        return f"{instance}: CrashLoopBackOff, restart in {found.group(1) if found else '?'}"
    if kind == "restart":
        return f"{instance} restarts"
    if kind == "ready":
        return f"{instance} ready; {balance}"
    if kind == "scheduled":
        return f"{instance}: {detail}"
    return f"{instance} cannot be scheduled: {detail}"


def container_of(cgroup: str, known: Container[str] | None = None) -> str | None:
    """The container whose cgroup ``cgroup`` is (a kubepods pod's, or a bare host's unit).

    With ``known``, only a name in it counts (``None`` when there is none).
    """
    for pattern in CONTAINER_PATHS:
        found = pattern.search(cgroup)
        if found and (known is None or found.group(1) in known):
            return found.group(1)
    return None


def _memory_entries(result: RunResult, instances: dict[str, str]) -> list[_Entry]:
    """A container, cgroup or host whose memory reaches :data:`MEMORY_NEAR_LIMIT` of its limit.

    Rising edges only, after the first bin: from ``memory_peak`` (the bin's highest usage) of an
    instance, ``memory`` of another cgroup, against ``memory_max``; a host's ``memory`` against
    ``memory_total``.
    """
    series = result.timeseries
    if series.empty or result.entities.empty:
        return []
    wanted = ["memory", "memory_peak", "memory_max", "memory_total"]
    gauges = series[series["metric"].isin(wanted)]
    table = gauges.pivot_table(index=["entity", "t"], columns="metric", values="value")
    kinds = dict(zip(result.entities["entity"], result.entities["kind"], strict=True))
    hosts_of = dict(zip(result.entities["entity"], result.entities["host"], strict=True))
    entries = []
    for entity, frame in table.groupby(level="entity", sort=True):
        kind = kinds.get(entity)
        usage_name = "memory_peak" if kind == "instance" else "memory"
        limit_name = "memory_total" if kind == "host" else "memory_max"
        if usage_name not in frame or limit_name not in frame:
            continue
        usage = frame[usage_name].to_numpy()
        limit = frame[limit_name].to_numpy()
        times = frame.index.get_level_values("t").to_numpy()
        with np.errstate(invalid="ignore"):
            near = np.nan_to_num(usage / limit, nan=0.0) >= MEMORY_NEAR_LIMIT
        for i in np.flatnonzero(near[1:] & ~near[:-1]) + 1:
            what = "the host's RAM" if kind == "host" else "its limit"
            text = (
                f"{entity} memory at {usage[i] / limit[i]:.0%} of {what} "
                f"({format_bytes(usage[i])} of {format_bytes(limit[i])})"
            )
            host = hosts_of.get(entity)
            entries.append(
                _Entry(
                    float(times[i]),
                    -1,
                    "memory",
                    str(entity),
                    str(entity),
                    instances.get(str(entity)),
                    None if host is None or pd.isna(host) else str(host),
                    text,
                )
            )
    return entries


def _slo_entries(slo: pd.DataFrame, scenario: sc.Scenario) -> list[_Entry]:
    """A service leaving its SLO (the first failing window) or meeting it again.

    At the same instant, callees come before their callers (the order the failure spreads in).
    """
    depth = {
        name: i for i, name in enumerate(reversed(list(nx.topological_sort(scenario.call_graph()))))
    }
    entries = []
    for service, frame in slo.groupby("service", sort=True):
        config = scenario.slo_for(str(service))
        violated = frame["violated"].to_numpy(bool)
        changes = np.flatnonzero(violated != np.concatenate([[False], violated[:-1]]))
        for i in changes:
            row = frame.iloc[i]
            window = format_duration(config.window)
            if violated[i]:
                problems = []
                if not row["availability"] >= config.availability:
                    problems.append(
                        f"availability {row['availability']:.2%} < {config.availability:.2%}"
                    )
                if row["latency_p99"] > config.latency_p99:
                    problems.append(
                        f"p99 {format_duration(row['latency_p99'])} > "
                        f"{format_duration(config.latency_p99)}"
                    )
                text = f"{service} out of SLO over the last {window}: {', '.join(problems)}"
            else:
                text = f"{service} back within SLO over the last {window}"
            kind = "slo_violation" if violated[i] else "slo_ok"
            entries.append(
                _Entry(
                    float(row["t"]),
                    _AFTER_EVENTS + depth[str(service)],
                    kind,
                    f"slo {service}",
                    str(service),
                    str(service),
                    None,
                    text,
                )
            )
    return entries


# --------------------------------------------------------------------------- in words


def narrate(analysis: Analysis) -> list[str]:
    """The analysis in words: the headline, the timeline with causes, why requests failed."""
    incident, blast, recovery = analysis.incident, analysis.blast, analysis.recovery
    lines = []
    if incident.targets or incident.faulted_hosts:
        aimed = ", ".join(incident.targets) or "no service"
        if incident.faulted_hosts:
            aimed += f" (faulted hosts: {', '.join(incident.faulted_hosts)})"
        if incident.trigger_end is None:
            when = f"Faults from {_at(incident.start)} to the end of the run"
        elif incident.trigger_end == incident.start:
            when = f"A fault at {_at(incident.start)} (instantaneous)"
        else:
            when = f"Faults from {_at(incident.start)} until {_at(incident.trigger_end)}"
        lines.append(f"{when}, aimed at {aimed}.")
    else:
        lines.append("No fault is injected: the whole run is the incident window.")
    impacted = ", ".join(blast.impacted) or "none"
    reach = (
        "n/a (no other service within reach)"
        if math.isnan(blast.containment)
        else f"{blast.containment:.0%} of the reachable {', '.join(blast.potential)}"
    )
    lines.append(
        f"Impacted services: {impacted}; blast radius {blast.count} beyond the targets "
        f"({blast.fraction:.0%} of the services); containment {reach}."
    )
    lines.append(
        f"Users: {blast.user_impact_fraction:.2%} of requests failed or were too slow during the "
        f"incident ({blast.user_impact_requests} requests); collateral kills: "
        f"{blast.collateral_kills}."
    )
    if recovery.recovered:
        after = (
            f", {format_duration(recovery.time_to_recover)} after the trigger ended"
            if recovery.time_to_recover is not None
            else ""
        )
        lines.append(f"Recovered at {_at(recovery.recovered_at)}{after}.")
    else:
        lines.append("Not recovered by the end of the run.")
    verdict = {True: "metastable", False: "not metastable", None: "undecided"}
    lines.append(
        f"Verdict: {verdict[recovery.metastable]} (hold {format_duration(recovery.hold)}); "
        f"peak error rate {recovery.peak_error_rate:.1%}, restarts {recovery.restarts}, "
        f"OOM kills {recovery.oom_kills} during recovery."
    )
    lines.append("")
    lines.append("Timeline:")
    table = analysis.timeline
    for index, row in enumerate(table.to_dict("records")):
        repeat = f" (x{row['count']}, until {_at(row['t_last'])})" if row["count"] > 1 else ""
        cause = "" if pd.isna(row["cause"]) else f"  <- #{int(row['cause'])}"
        lines.append(f"  #{index:<3} {_at(row['t']):>10}  {row['text']}{repeat}{cause}")
    if table.empty:
        lines.append("  (nothing happened)")
    reasons = analysis.reasons
    if not reasons.empty:
        lines.append("")
        lines.append("Why requests failed:")
        for name, group in reasons.groupby("class", sort=False):
            failed = int(group["failed"].iloc[0])
            parts = [
                f"{r['share']:.0%} {r['cause']} at {r['where']} (users saw {r['outcome']})"
                for r in group.to_dict("records")
            ]
            lines.append(f"  {name}: {failed} failed; " + "; ".join(parts))
    return lines


def _at(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}s"
