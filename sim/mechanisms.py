"""Four mechanisms side by side: the OOM killer, a circuit breaker, a bulkhead, a supervisor.

One incident, four designs, one table: a column per mechanism and the rows of :data:`ROWS`
(trigger, action taken, scope of impact, goal, proactive or reactive, key metric, automation,
recovery mechanism). Every cell is a short sentence built from the run of that mechanism's
design: its event log (the kernel's OOM report, resilience4j's breaker and bulkhead events, the
supervisor's reports, the kubelet's restarts), its headline figures (:mod:`sim.analysis`) and the
configuration it ran with (a limit, a threshold, an intensity). A cell may open with a fixed
description of what the mechanism is (its goal, whether it acts before or after the damage),
but every figure in it is read from the run, so a changed scenario changes the table.

**Which design shows which mechanism** is data, not names: :func:`mechanism_variants` reads each
variant's configuration (the scenario with the overlay applied). A design with no circuit
breaker, no bulkhead and no OTP supervisor leaves the kernel's OOM killer (and the kubelet's
restarts) alone; a design that adds exactly one of the three shows that one. The first design
of each kind, the scenario as written first, fills the column. A caller who wants other
designs passes ``columns`` (mechanism -> variant) to :func:`mechanism_table` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd

from patterns.circuit_breaker import STATE_TRANSITION_LINE
from patterns.supervisor import BACKOFF_IN_MESSAGE, parse_go_duration
from sim import scenario as sc
from sim.analysis import container_of
from sim.experiment import designs
from sim.stats import number_or_none
from sim.units import format_bytes, format_duration


class Mechanism(StrEnum):
    """The four mechanisms of the table, in column order."""

    OOM_KILLER = "OOM killer"
    CIRCUIT_BREAKER = "circuit breaker"
    BULKHEAD = "bulkhead"
    SUPERVISOR = "supervisor"


ROWS = (
    "trigger",
    "action taken",
    "scope of impact",
    "goal",
    "proactive or reactive",
    "key metric",
    "automation",
    "recovery mechanism",
)
"""The table's rows, in order."""


class MechanismError(ValueError):
    """A scenario (or a mapping) that does not give every mechanism a design and a run."""


# --------------------------------------------------------------------------- which design is which


def patterns_in(scenario: sc.Scenario) -> frozenset[Mechanism]:
    """The mechanisms a scenario (a variant applied) adds to the kernel's OOM killer.

    A circuit breaker (enabled) or a bulkhead on any call, an OTP supervisor anywhere.
    """
    found: set[Mechanism] = set()
    for service in scenario.services.values():
        for call in service.calls:
            if call.circuit_breaker is not None and call.circuit_breaker.enabled:
                found.add(Mechanism.CIRCUIT_BREAKER)
            if call.bulkhead is not None:
                found.add(Mechanism.BULKHEAD)
    if scenario.supervisors:
        found.add(Mechanism.SUPERVISOR)
    return frozenset(found)


def mechanism_variants(scenario: sc.Scenario) -> dict[Mechanism, str]:
    """Each mechanism's design: the first variant whose configuration shows that mechanism.

    Designs are taken in order, the scenario as written (:data:`~sim.experiment.BASELINE`)
    first: the first with none of the request-level patterns and no supervisor is the OOM
    killer's; the first adding exactly one of them is that one's.

    Raises:
        MechanismError: a mechanism has no design.
    """
    found: dict[Mechanism, str] = {}
    for variant in designs(scenario):
        patterns = patterns_in(scenario.with_variant(variant))
        if not patterns:
            found.setdefault(Mechanism.OOM_KILLER, variant)
        elif len(patterns) == 1:
            found.setdefault(next(iter(patterns)), variant)
    missing = [m.value for m in Mechanism if m not in found]
    if missing:
        raise MechanismError(f"{scenario.name}: no design shows the {', '.join(missing)}")
    return {m: found[m] for m in Mechanism}


# --------------------------------------------------------------------------- one design's run


@dataclass(frozen=True)
class _Run:
    """What the cells of one column read: the design's scenario, its figures, its events."""

    scenario: sc.Scenario
    row: Mapping[str, Any]
    events: pd.DataFrame

    def of(self, *kinds: str) -> pd.DataFrame:
        return self.events[self.events["kind"].isin(kinds)]

    @property
    def start(self) -> float:
        return float(self.row["incident_start"])


def _s(t: float) -> str:
    return f"{t:.1f} s"


def _percent(fraction: Any) -> str:
    number = number_or_none(fraction)
    return "n/a" if number is None else f"{number:.1%}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _availability(run: _Run) -> str:
    return f"users' availability {_percent(run.row['availability'])}"


def _spread(run: _Run) -> str:
    return (
        f"blast radius {int(run.row['blast_radius'])}, "
        f"collateral kills {int(run.row['collateral_kills'])}"
    )


def _slo_back(run: _Run) -> str:
    """When every SLO held again (from the analysis' recovery point)."""
    back = number_or_none(run.row["recovered_at"])
    if back is None:
        return "SLOs still broken when the run ends"
    text = f"every SLO met again at {_s(back)}"
    after = number_or_none(run.row["time_to_recover"])
    if after is not None and number_or_none(run.row["trigger_end"]) is not None:
        text += f", {_s(after)} after the fault ended"
    return text


# --------------------------------------------------------------------------- the OOM killer

_KILLED = re.compile(r"Killed process (\d+) \(([^)]*)\).*?anon-rss:(\d+)kB.*?oom_score_adj:(-?\d+)")
_USAGE = re.compile(r"memory: usage (\d+)kB, limit (\d+)kB")
_CONSTRAINT = re.compile(r"constraint=(\w+)")


def _container(cgroup: str) -> str:
    """The container a cgroup belongs to, or the cgroup's path when it names none."""
    return container_of(cgroup) or cgroup


def _first_match(frame: pd.DataFrame, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The first event of ``frame`` whose detail matches ``pattern``, matched."""
    for detail in frame["detail"]:
        found = pattern.search(str(detail))
        if found:
            return found
    return None


def _reported_with(
    run: _Run, kill: pd.Series, kind: str, pattern: re.Pattern[str]
) -> re.Match[str] | None:
    """The ``kind`` line of the OOM report that ended in ``kill``, matched by ``pattern``.

    The kernel prints a report's lines just before its kill line: the last match logged before
    ``kill`` at its instant and on its host (two OOMs at one instant are told apart).
    """
    events = run.events
    earlier = events.iloc[: int(kill.name)]  # type: ignore[call-overload]
    frame = earlier[
        (earlier["kind"] == kind) & (earlier["t"] == kill["t"]) & (earlier["host"] == kill["host"])
    ]
    for detail in reversed(frame["detail"].tolist()):
        found = pattern.search(str(detail))
        if found:
            return found
    return None


def _oom_column(run: _Run) -> dict[str, str]:
    kills = run.of("oom_kill")
    restarts = run.of("restart")
    if kills.empty:
        return {
            "trigger": "no OOM: no cgroup and no host ran out of memory",
            "action taken": "nothing killed",
            "scope of impact": f"no process killed; {_spread(run)}",
            "goal": "keep the node alive by freeing memory when a limit is hit (not needed)",
            "proactive or reactive": "reactive: it acts only once memory runs out (it never did)",
            "key metric": f"oom_kill 0 (memory.events); {_availability(run)}",
            "automation": "fully automatic, in the kernel, with no operator",
            "recovery mechanism": f"nothing to recover; {_slo_back(run)}",
        }
    first = kills.iloc[0]
    t, host = float(first["t"]), str(first["host"])
    victim = _container(str(first["entity"]))
    killed = _KILLED.search(str(first["detail"]))
    pid, adj = (killed.group(1), killed.group(4)) if killed else ("?", "?")
    rss = int(killed.group(3)) * 1024 if killed else 0
    usage = _reported_with(run, first, "oom_meminfo", _USAGE)
    limit = format_bytes(int(usage.group(2)) * 1024) if usage else "its limit"
    summary = _reported_with(run, first, "oom_summary", _CONSTRAINT)
    constraint = summary.group(1) if summary else "unknown"
    if constraint == "CONSTRAINT_MEMCG":
        trigger = f"{victim} reaches its memory.max ({limit}) at {_s(t)}: memcg OOM"
    else:
        trigger = f"{host} runs out of memory at {_s(t)}: global OOM ({constraint})"
    invoked = run.of("oom_invoked")
    invoked = invoked[(invoked["host"] == host) & (invoked["t"] <= t)]
    acted = t - float(invoked["t"].iloc[-1]) if len(invoked) else 0.0
    victims = sorted({_container(str(e)) for e in kills["entity"]})
    backoffs = [
        parse_go_duration(str(found))
        for found in run.of("waiting")["detail"].str.extract(BACKOFF_IN_MESSAGE)[0].dropna()
    ]
    longest = f", CrashLoopBackOff up to {format_duration(max(backoffs))}" if backoffs else ""
    return {
        "trigger": trigger,
        "action taken": (
            f"SIGKILL of {victim} (pid {pid}, oom_score_adj {adj}, anon-rss "
            f"{format_bytes(rss)}); {_plural(len(kills), 'OOM kill')} in all"
        ),
        "scope of impact": (
            f"a whole container and every request in it, per kill ({', '.join(victims)}); "
            f"{_spread(run)}"
        ),
        "goal": (
            "keep the node alive by freeing the memory of the cgroup over its limit: "
            f"{format_bytes(rss)} freed by the first kill"
        ),
        "proactive or reactive": (
            f"reactive: kills {acted:.3f} s after a charge fails at the limit, "
            f"{_s(t - run.start)} after the fault started"
        ),
        "key metric": f"oom_kill {len(kills)} (memory.events); {_availability(run)}",
        "automation": (
            f"fully automatic, in the kernel: {_plural(len(kills), 'kill')} without an "
            f"operator; the only setting is the limit ({limit})"
        ),
        "recovery mechanism": (
            f"the kubelet restarts the container: {_plural(len(restarts), 'restart')}{longest}; "
            f"{_slo_back(run)}"
            if len(restarts)
            else f"no restart; {_slo_back(run)}"
        ),
    }


# --------------------------------------------------------------------------- the circuit breaker

_EXCEEDED = re.compile(
    r"CircuitBreaker '([^']+)' exceeded (failure rate|slow call rate) threshold\. "
    r"Current (?:failure|slow call) rate: ([\d.]+)"
)


def _call(scenario: sc.Scenario, name: str) -> tuple[str, str, sc.Call | None]:
    """The call a resilience4j instance name (``caller->callee``) stands for."""
    caller, _, callee = name.partition("->")
    service = scenario.services.get(caller)
    calls = [c for c in service.calls if c.to == callee] if service else []
    return caller, callee, calls[0] if calls else None


def _window(spec: sc.CircuitBreakerSpec) -> str:
    if str(spec.sliding_window_type).upper().startswith("TIME"):
        return f"the last {spec.sliding_window_size} s"
    return f"the last {spec.sliding_window_size} calls"


def _breaker_column(run: _Run) -> dict[str, str]:
    events = run.of("circuit_breaker")
    changes = events["detail"].str.extract(STATE_TRANSITION_LINE).dropna()
    changes.columns = ["name", "before", "after"]
    changes["t"] = events.loc[changes.index, "t"]
    changes["entity"] = events.loc[changes.index, "entity"]
    opened = changes[changes["after"] == "OPEN"]
    configured = [
        (service, call)
        for service, config in run.scenario.services.items()
        for call in config.calls
        if call.circuit_breaker is not None and call.circuit_breaker.enabled
    ]
    caller, call = configured[0]
    callee = call.to
    spec = call.circuit_breaker
    assert spec is not None
    oom = int(run.row["oom_kills"])
    callers = run.scenario.services[caller].replicas
    wait = format_duration(spec.wait_duration_in_open_state)
    base = {
        "goal": (
            f"fail fast instead of waiting on a sick dependency, and give it room to recover: "
            f"{callee} is OOM-killed {oom} times"
        ),
        "automation": (
            f"automatic, one breaker per calling replica ({callers}): "
            f"{_plural(len(changes), 'state change')}, no operator"
        ),
    }
    if opened.empty:
        return base | {
            "trigger": f"never tripped: calls to {callee} stayed under the thresholds",
            "action taken": "none: every call went through",
            "scope of impact": f"the calls {caller} -> {callee}; {_spread(run)}",
            "proactive or reactive": "reactive: it needs failed or slow calls first (none)",
            "key metric": f"time open 0 s; {_availability(run)}",
            "recovery mechanism": f"nothing to close; {_slo_back(run)}",
        }
    first = opened.iloc[0]
    exceeded = _first_match(events, _EXCEEDED)
    what, rate = (exceeded.group(2), float(exceeded.group(3))) if exceeded else ("", 0.0)
    if what == "slow call rate":
        cause = (
            f"slow call rate {rate:.1f}% >= {spec.slow_call_rate_threshold:g}% (calls slower "
            f"than {format_duration(spec.slow_call_duration_threshold)})"
        )
    else:
        cause = f"failure rate {rate:.1f}% >= {spec.failure_rate_threshold:g}%"
    open_time = 0.0
    for _, history in changes.groupby("entity", sort=True):
        since: float | None = None
        for t, after in zip(history["t"].astype(float), history["after"], strict=True):
            if after == "OPEN" and since is None:
                since = t
            elif after != "OPEN" and since is not None:
                open_time += t - since
                since = None
        if since is not None:
            open_time += float(run.scenario.duration) - since
    entities = changes["entity"].nunique()
    closed = changes[changes["after"] == "CLOSED"]
    last_closed = f"; last closed at {_s(float(closed['t'].iloc[-1]))}" if len(closed) else ""
    return base | {
        "trigger": (
            f"{cause} over {_window(spec)}, at {_s(float(first['t']))} ({first['entity']})"
        ),
        "action taken": (
            f"opened {_plural(len(opened), 'time')}: every call to {callee} fails fast "
            f"(circuit_open) for {wait} each time"
        ),
        "scope of impact": (
            f"only the calls {caller} -> {callee}; {callee} OOM kills {oom}; {_spread(run)}"
        ),
        "proactive or reactive": (
            f"reactive: first opened {_s(float(first['t']) - run.start)} after the fault "
            f"started, once {spec.minimum_number_of_calls} calls were recorded"
        ),
        "key metric": (
            f"time open {_s(open_time / entities)} per caller (mean of {entities}); "
            f"{_availability(run)}"
        ),
        "recovery mechanism": (
            f"half-open after {wait} (a trial of "
            f"{spec.permitted_number_of_calls_in_half_open_state} calls), closed "
            f"{_plural(len(closed), 'time')}{last_closed}; {_slo_back(run)}"
        ),
    }


# --------------------------------------------------------------------------- the bulkhead

_REJECTED = re.compile(r"Bulkhead '[^']+' rejected a call")


def _capacity(spec: sc.BulkheadSpec | sc.ThreadPoolBulkheadSpec) -> int:
    if isinstance(spec, sc.BulkheadSpec):
        return spec.max_concurrent_calls
    config = spec.config()
    return config.max_size + config.queue_capacity


def _bulkhead_column(run: _Run) -> dict[str, str]:
    events = run.of("bulkhead")
    rejected = events[events["detail"].str.contains(_REJECTED)]
    configured = [
        (service, call)
        for service, config in run.scenario.services.items()
        for call in config.calls
        if call.bulkhead is not None
    ]
    caller, call = configured[0]
    callee = call.to
    assert call.bulkhead is not None
    limit = _capacity(call.bulkhead)
    replicas = run.scenario.services[caller].replicas
    oom = int(run.row["oom_kills"])
    count = len(rejected)
    arrivals = int(run.row["arrivals"])
    share = f" ({count / arrivals:.1%} of the users' requests)" if arrivals else ""
    base = {
        "goal": (
            f"cap what one dependency can hold: at most {replicas} x {limit} = "
            f"{replicas * limit} calls in flight to {callee}"
        ),
        "automation": (
            f"automatic enforcement of a static limit ({limit} per {caller} replica) that an "
            "operator chose; it never adapts"
        ),
        "key metric": f"{_plural(count, 'rejected call')}{share}; {_availability(run)}",
        "scope of impact": (
            f"only the calls over the limit; {callee} OOM kills {oom}; {_spread(run)}"
        ),
    }
    if rejected.empty:
        return base | {
            "trigger": f"never full: at most {limit} calls to {callee} were ever in flight",
            "action taken": "none: every call went through",
            "proactive or reactive": (
                f"proactive: the limit of {limit} is set before any incident (never reached)"
            ),
            "recovery mechanism": f"nothing to restore; {_slo_back(run)}",
        }
    first, last = rejected.iloc[0], rejected.iloc[-1]
    return base | {
        "trigger": (
            f"call {limit + 1} in flight from one {caller} replica to {callee}, first at "
            f"{_s(float(first['t']))} ({first['entity']})"
        ),
        "action taken": (
            f"rejected {_plural(count, 'call')} at once (bulkhead_full), without calling {callee}"
        ),
        "proactive or reactive": (
            f"proactive: the limit of {limit} is set before the incident; first rejection "
            f"{_s(float(first['t']) - run.start)} after the fault started"
        ),
        "recovery mechanism": (
            f"nothing to restart: permits return as calls finish; last rejection at "
            f"{_s(float(last['t']))}; {_slo_back(run)}"
        ),
    }


# --------------------------------------------------------------------------- the supervisor

_REPORT = re.compile(r"reason: (.+?)\n\s+offender: .*?\{id,'([^']+)'\}", re.DOTALL)
_SCOPES = {
    "one_for_one": "only the child that died",
    "one_for_all": "every child of the supervisor",
    "rest_for_one": "the child that died and those started after it",
}


def _peak(times: list[float], period: float) -> int:
    """The most events within any ``period`` seconds (OTP's intensity window)."""
    times = sorted(times)
    most, low = 0, 0
    for high, t in enumerate(times):
        while t - times[low] > period:
            low += 1
        most = max(most, high - low + 1)
    return most


def _supervisor_column(run: _Run) -> dict[str, str]:
    spec = run.scenario.supervisors[0]
    children = sorted({c.child for c in spec.child_specs()} & set(run.scenario.services))
    instances = {
        f"{name}-{i}" for name in children for i in range(run.scenario.services[name].replicas)
    }
    reports = run.of("supervisor_child_terminated")
    restarts = run.of("restart")
    restarts = restarts[restarts["entity"].isin(instances)]
    exits = run.of("terminated")
    exits = exits[exits["entity"].isin(instances)]
    gave_up = run.of("supervisor_shutdown")
    stopped = run.of("application_exited")
    period = format_duration(spec.period)
    base = {
        "goal": (
            "get back to a known good state fast by restarting from scratch, at most "
            f"{spec.intensity} restarts in {period}"
        ),
        "scope of impact": (
            f"{spec.strategy}: {_SCOPES[spec.strategy]} ({', '.join(children)}); "
            f"OOM kills {int(run.row['oom_kills'])}; {_spread(run)}"
        ),
        "key metric": (
            f"restart intensity: up to {_peak(list(restarts['t']), spec.period)} restarts "
            f"within {period} (limit {spec.intensity}); {_availability(run)}"
        ),
    }
    if gave_up.empty:
        automation = "never reached here"
    else:
        automation = f"reached at {_s(float(gave_up['t'].iloc[0]))}"
    base["automation"] = (
        f"automatic, {_plural(len(restarts), 'restart')}; past its intensity it gives up and "
        f"escalates to its parent: {automation}"
    )
    if reports.empty:
        return base | {
            "trigger": "no child died",
            "action taken": "none",
            "proactive or reactive": "reactive: it acts when a child exits (none did)",
            "recovery mechanism": f"nothing to restart; {_slo_back(run)}",
        }
    first = reports.iloc[0]
    found = _REPORT.search(str(first["detail"]))
    reason, child = (found.group(1).strip(), found.group(2)) if found else ("?", "?")
    delays = []
    for entity, t in zip(exits["entity"], exits["t"].astype(float), strict=True):
        later = restarts[(restarts["entity"] == entity) & (restarts["t"] >= t)]
        if len(later):
            delays.append(float(later["t"].iloc[0]) - t)
    waited = (
        f"restarts {min(delays):.1f}-{max(delays):.1f} s after each exit (it starts children "
        "one at a time)"
        if delays
        else "no restart followed an exit"
    )
    action = f"restarts the child at once: {_plural(len(restarts), 'restart')}"
    if not gave_up.empty:
        action += (
            f"; at {_s(float(gave_up['t'].iloc[0]))} it gives up "
            "(reached_max_restart_intensity) and stops its children"
        )
    startup = format_duration(run.scenario.services[children[0]].startup.delay)
    if stopped.empty:
        recovery = f"the restarted child serves after its start-up ({startup}); {_slo_back(run)}"
    else:
        recovery = (
            f"none after {_s(float(stopped['t'].iloc[0]))}: the application stopped and "
            f"{', '.join(children)} stay down; {_slo_back(run)}"
        )
    return base | {
        "trigger": (
            f"{child} exits ({reason}) at {_s(float(first['t']))}: a child_terminated "
            f"report to {spec.name}"
        ),
        "action taken": action,
        "proactive or reactive": f"reactive: {waited}",
        "recovery mechanism": recovery,
    }


_COLUMNS = {
    Mechanism.OOM_KILLER: _oom_column,
    Mechanism.CIRCUIT_BREAKER: _breaker_column,
    Mechanism.BULKHEAD: _bulkhead_column,
    Mechanism.SUPERVISOR: _supervisor_column,
}


# --------------------------------------------------------------------------- the table


def mechanism_table(
    scenario: sc.Scenario,
    runs: pd.DataFrame,
    events: pd.DataFrame,
    columns: Mapping[Mechanism, str] | None = None,
) -> pd.DataFrame:
    """The side-by-side table of the four mechanisms, from one run of each design.

    Args:
        scenario: the scenario as loaded (its variants not applied; a run-length override may
            be).
        runs: the ``runs`` table of :func:`sim.experiment.compare` (the first seed of each
            design is read; failed replications are skipped).
        events: its ``events`` table.
        columns: mechanism -> variant (default: :func:`mechanism_variants`).

    Returns:
        One column per mechanism (:class:`Mechanism` values), one row per entry of
        :data:`ROWS`, each cell a sentence with the figures of that design's run.

    Raises:
        MechanismError: a mechanism without a design, or a design without a run.
    """
    chosen = dict(columns) if columns is not None else mechanism_variants(scenario)
    missing = [m.value for m in Mechanism if m not in chosen]
    if missing:
        raise MechanismError(f"no design given for the {', '.join(missing)}")
    ok = runs[runs["error"].isna()] if "error" in runs else runs
    table: dict[str, dict[str, str]] = {}
    for mechanism in Mechanism:
        variant = chosen[mechanism]
        rows = ok[ok["variant"] == variant].sort_values("seed")
        if rows.empty:
            raise MechanismError(f"no run of the design {variant!r} ({mechanism.value})")
        row = {str(k): v for k, v in rows.iloc[0].to_dict().items()}
        mine = events[(events["variant"] == variant) & (events["seed"] == row["seed"])]
        ordered = mine.sort_values("t", kind="stable").reset_index(drop=True)  # log order
        run = _Run(scenario.with_variant(variant), row, ordered)
        cells = _COLUMNS[mechanism](run)
        table[mechanism.value] = {name: cells[name] for name in ROWS}
    return pd.DataFrame(table, index=list(ROWS))
