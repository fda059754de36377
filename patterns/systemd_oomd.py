"""systemd-oomd: kill a cgroup on sustained memory pressure or on RAM and swap both nearly full.

Source: systemd ``src/oom/oomd-manager.c`` (``monitor_memory_pressure_contexts_handler``,
``monitor_swap_contexts_handler``), ``src/oom/oomd-util.c`` (``oomd_pressure_above``,
``oomd_pgscan_rate``, ``oomd_mem_available_below``, ``oomd_swap_free_below``,
``oomd_kill_by_pgscan_rate``, ``oomd_kill_by_swap_usage``), ``oomd-util.h``
(``compare_pgscan_rate_and_memory_usage``, ``compare_swap_usage``), ``oomd-manager.h`` (defaults);
man oomd.conf(5), systemd.resource-control(5); see ``../shared/reference/semantics.md`` §6.1, §2.8
and §12 V16.

Model:

* pressure loop, every 1 s, for each cgroup with ``ManagedOOMMemoryPressure=kill``: its PSI
  ``full avg10`` above the limit starts (or continues) a hit; once the hit has lasted the duration,
  the cgroup is a target. Outside the 15 s post-action delay, the first target with reclaim in
  the last 30 s has its candidates sorted (no preference before ``avoid``, ``omit`` left out; then
  the highest pgscan rate since the previous 1 s sample; then the largest ``memory.current``) and
  the first that has pgscan or memory and live processes is killed (``cgroup.kill``). One cgroup
  at most per interval; the post-action delay restarts whenever a target was acted on.
* swap loop, every 150 ms: when ``MemAvailable`` is below 10 % of ``MemTotal`` and ``SwapFree``
  below 10 % of ``SwapTotal`` (``SwapUsedLimit=90%``), kill the candidate with the most swap
  among those using more than 5 % of ``SwapTotal`` (``avoid`` last, ``omit`` left out). No delay
  follows a swap kill.
* candidates of a monitored cgroup are its leaf descendants (the cgroup itself when it has none),
  as ``recursively_get_cgroup_context`` collects them.

Simplifications:

* pgscan of every candidate is sampled once per pressure interval while any monitored cgroup is
  above its limit (systemd samples them at the same moments, and starts from zero otherwise);
* "reclaim activity" is the host's ``last_reclaim`` of the monitored cgroup, not pgscan deltas
  of it sampled every second;
* ``memory.oom.group=1`` subtrees are not treated as one candidate (``CgroupView`` has no such
  flag); ownership checks on preferences, dry-run, D-Bus signals and the candidate dump are not
  modelled.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import simpy

from patterns.host_view import CgroupView, HostView

SOURCE = "systemd-oomd"
"""Log source and kill reason."""

Preference = Literal["none", "avoid", "omit"]
"""``ManagedOOMPreference=`` of a candidate cgroup."""

_PREFERENCE_ORDER = {"none": 0, "avoid": 1}


@dataclass(frozen=True)
class MonitoredCgroup:
    """A unit that opted in to systemd-oomd (``ManagedOOM*=`` in systemd.resource-control(5)).

    Attributes:
        path: the unit's cgroup, e.g. ``/user.slice``.
        memory_pressure: ``ManagedOOMMemoryPressure=kill``.
        memory_pressure_limit: ``ManagedOOMMemoryPressureLimit=`` in percent; ``None`` uses
            ``OomdConfig.default_memory_pressure_limit``.
        memory_pressure_duration: ``ManagedOOMMemoryPressureDurationSec=``; ``None`` uses
            ``OomdConfig.default_memory_pressure_duration``.
        swap: ``ManagedOOMSwap=kill``.
    """

    path: str
    memory_pressure: bool = False
    memory_pressure_limit: float | None = None
    memory_pressure_duration: float | None = None
    swap: bool = False


@dataclass(frozen=True)
class OomdConfig:
    """oomd.conf(5) settings, the daemon's fixed intervals and the units it monitors.

    Attributes:
        swap_used_limit: ``SwapUsedLimit=``, 90 % (``DEFAULT_SWAP_USED_LIMIT_PERCENT``); the same
            limit applies to RAM used.
        default_memory_pressure_limit: ``DefaultMemoryPressureLimit=``, 60 %
            (``DEFAULT_MEM_PRESSURE_LIMIT_PERCENT``).
        default_memory_pressure_duration: ``DefaultMemoryPressureDurationSec=``, 30 s
            (``DEFAULT_MEM_PRESSURE_DURATION_USEC``).
        swap_interval: swap poll period, 0.15 s (``SWAP_INTERVAL_USEC``).
        memory_pressure_interval: pressure poll period, 1 s (``MEM_PRESSURE_INTERVAL_USEC``).
        reclaim_window: reclaim must have happened this recently, 30 s (``RECLAIM_DURATION_USEC``).
        post_action_delay: no pressure kill this soon after the last one, 15 s
            (``POST_ACTION_DELAY_USEC``).
        swap_candidate_min_percent: a swap victim must use more than this percent of
            ``SwapTotal``, 5 (``THRESHOLD_SWAP_USED_PERCENT``).
        monitored: the units with ``ManagedOOM*=kill``.
        preferences: ``ManagedOOMPreference=`` (``avoid`` or ``omit``) by candidate path.
    """

    swap_used_limit: float = 90.0
    default_memory_pressure_limit: float = 60.0
    default_memory_pressure_duration: float = 30.0
    swap_interval: float = 0.15
    memory_pressure_interval: float = 1.0
    reclaim_window: float = 30.0
    post_action_delay: float = 15.0
    swap_candidate_min_percent: float = 5.0
    monitored: tuple[MonitoredCgroup, ...] = ()
    preferences: Mapping[str, Preference] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "monitored", tuple(self.monitored))
        object.__setattr__(self, "preferences", MappingProxyType(dict(self.preferences)))
        if not 0 <= self.swap_used_limit <= 100:
            raise ValueError("swap_used_limit must be within 0..100")

    def pressure_limit(self, unit: MonitoredCgroup) -> float:
        """The memory pressure limit of ``unit``, percent."""
        if unit.memory_pressure_limit is None:
            return self.default_memory_pressure_limit
        return unit.memory_pressure_limit

    def pressure_duration(self, unit: MonitoredCgroup) -> float:
        """How long pressure must stay above the limit for ``unit``, seconds."""
        if unit.memory_pressure_duration is None:
            return self.default_memory_pressure_duration
        return unit.memory_pressure_duration


def format_timespan(seconds: float) -> str:
    """``FORMAT_TIMESPAN(t, USEC_PER_SEC)``: 30 -> ``30s``, 90 -> ``1min 30s``."""
    remaining = round(seconds)
    if remaining == 0:
        return "0"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return " ".join(parts)


def permyriad(percent: float) -> int:
    """A percentage as systemd stores it, in 1/10000."""
    return round(percent * 100)


def mem_available_below(mem_total: int, mem_available: int, threshold_permyriad: int) -> bool:
    """``oomd_mem_available_below``: available < total * threshold / 10000 (integers)."""
    return mem_available < mem_total * threshold_permyriad // 10000


def swap_free_below(swap_total: int, swap_free: int, threshold_permyriad: int) -> bool:
    """``oomd_swap_free_below``; never true without swap."""
    return swap_free < swap_total * threshold_permyriad // 10000


def leaf_candidates(monitored: CgroupView) -> list[CgroupView]:
    """The leaves below ``monitored``, or ``monitored`` itself when it has no children."""
    descendants = monitored.descendants()
    if not descendants:
        return [monitored]
    return [cgroup for cgroup in descendants if not cgroup.descendants()]


@dataclass
class _PressureState:
    unit: MonitoredCgroup
    hit_start: float | None = None
    avg10: float = 0.0


class SystemdOomd:
    """systemd-oomd on one host, seen through a :class:`~patterns.host_view.HostView`.

    Args:
        env: the SimPy environment; ``env.now`` is the only clock read.
        host: the host whose cgroups are monitored and killed.
        config: daemon settings and monitored units.
    """

    def __init__(
        self, env: simpy.Environment, host: HostView, config: OomdConfig | None = None
    ) -> None:
        self.env = env
        self.host = host
        self.config = config or OomdConfig()
        self._pressure = [_PressureState(u) for u in self.config.monitored if u.memory_pressure]
        self._last_pgscan: dict[str, int] = {}
        self._pgscan_rate: dict[str, int] = {}
        self.post_action_delay_start: float | None = None

    def start(self) -> list[simpy.Process]:
        """Start the pressure and swap loops as SimPy processes and return them."""
        return [
            self.env.process(self.pressure_loop()),
            self.env.process(self.swap_loop()),
        ]

    def _preference(self, path: str) -> Preference:
        return self.config.preferences.get(path, "none")

    def _kill(self, cgroup: CgroupView) -> bool:
        """``cgroup.kill`` the subtree; whether any process was there to kill."""
        if not cgroup.processes():
            return False
        self.host.kill_cgroup(cgroup, SOURCE)
        return True

    # --- memory pressure ---------------------------------------------------------------------

    def pressure_loop(self) -> Generator[simpy.Event, Any, None]:
        """Every ``memory_pressure_interval``, act on sustained pressure; runs forever."""
        while True:
            self.check_pressure()
            yield self.env.timeout(self.config.memory_pressure_interval)

    def _pressure_targets(self, now: float) -> list[_PressureState]:
        """``oomd_pressure_above``: update each hit and return those lasting the duration."""
        targets = []
        for state in self._pressure:
            state.avg10 = self.host.cgroup(state.unit.path).psi_full_avg10()
            if state.avg10 > self.config.pressure_limit(state.unit):
                if state.hit_start is None:
                    state.hit_start = now
                if now - state.hit_start >= self.config.pressure_duration(state.unit):
                    targets.append(state)
            else:
                state.hit_start = None
        return targets

    def _sample_pgscan(self) -> None:
        """Sample the candidates' pgscan; the rate is the increase since the previous sample."""
        rates, current = {}, {}
        for state in self._pressure:
            for cgroup in leaf_candidates(self.host.cgroup(state.unit.path)):
                pgscan = cgroup.pgscan
                last = self._last_pgscan.get(cgroup.path, 0)
                # A counter that went down belongs to a re-created cgroup (oomd_pgscan_rate).
                rates[cgroup.path] = pgscan - last if last <= pgscan else pgscan
                current[cgroup.path] = pgscan
        self._last_pgscan, self._pgscan_rate = current, rates

    def pgscan_rate(self, path: str) -> int:
        """Pages scanned in ``path`` between the last two pressure samples."""
        return self._pgscan_rate.get(path, 0)

    def check_pressure(self) -> CgroupView | None:
        """One pass of the pressure loop at ``env.now``; the cgroup killed, if any."""
        now = self.env.now
        config = self.config
        in_post_action_delay = False
        if self.post_action_delay_start is not None:
            if self.post_action_delay_start + config.post_action_delay > now:
                in_post_action_delay = True
            else:
                self.post_action_delay_start = None
        targets = self._pressure_targets(now)
        if any(state.hit_start is not None for state in self._pressure):
            self._sample_pgscan()
        else:
            # systemd drops candidate data it did not refresh, so rates restart from zero.
            self._last_pgscan, self._pgscan_rate = {}, {}
        if in_post_action_delay:
            return None
        for target in targets:
            monitored = self.host.cgroup(target.unit.path)
            last_reclaim = monitored.last_reclaim
            if last_reclaim is None or now - last_reclaim > config.reclaim_window:
                continue
            killed = self._kill_by_pgscan_rate(monitored)
            self.post_action_delay_start = now
            if killed is not None:
                self.host.log(
                    SOURCE,
                    "kill",
                    f"Killed {killed.path} due to memory pressure for {monitored.path} being "
                    f"{target.avg10:.2f}% > {config.pressure_limit(target.unit):.2f}% for > "
                    f"{format_timespan(config.pressure_duration(target.unit))} "
                    "with reclaim activity",
                )
            return killed
        return None

    def pressure_candidates(self, monitored: CgroupView) -> list[CgroupView]:
        """Candidates under ``monitored``, in ``compare_pgscan_rate_and_memory_usage`` order."""
        candidates = [c for c in leaf_candidates(monitored) if self._preference(c.path) != "omit"]
        return sorted(
            candidates,
            key=lambda c: (
                _PREFERENCE_ORDER[self._preference(c.path)],
                -self.pgscan_rate(c.path),
                -c.usage,
            ),
        )

    def _kill_by_pgscan_rate(self, monitored: CgroupView) -> CgroupView | None:
        for candidate in self.pressure_candidates(monitored):
            # No reclaim and no memory: killing it would not relieve the pressure.
            if candidate.pgscan == 0 and candidate.usage == 0:
                continue
            if self._kill(candidate):
                return candidate
        return None

    # --- swap ----------------------------------------------------------------------------------

    def swap_loop(self) -> Generator[simpy.Event, Any, None]:
        """Every ``swap_interval``, act on RAM and swap both nearly full; runs forever."""
        while True:
            self.check_swap()
            yield self.env.timeout(self.config.swap_interval)

    def swap_candidates(self) -> list[CgroupView]:
        """Candidates under the swap-monitored units in kill order (``compare_swap_usage``)."""
        seen: dict[str, CgroupView] = {}
        for unit in self.config.monitored:
            if unit.swap:
                for cgroup in leaf_candidates(self.host.cgroup(unit.path)):
                    if self._preference(cgroup.path) != "omit":
                        seen.setdefault(cgroup.path, cgroup)
        return sorted(
            seen.values(),
            key=lambda c: (_PREFERENCE_ORDER[self._preference(c.path)], -c.swap_usage),
        )

    def check_swap(self) -> CgroupView | None:
        """One pass of the swap loop; the cgroup killed, if any."""
        if not any(unit.swap for unit in self.config.monitored):
            return None
        host, config = self.host, self.config
        mem_total, mem_available = host.mem_total, host.mem_available()
        swap_total, swap_free = host.swap_total, host.swap_free()
        free_limit = 10000 - permyriad(config.swap_used_limit)
        if not (
            mem_available_below(mem_total, mem_available, free_limit)
            and swap_free_below(swap_total, swap_free, free_limit)
        ):
            return None
        threshold = swap_total * permyriad(config.swap_candidate_min_percent) // 10000
        for candidate in self.swap_candidates():
            if candidate.swap_usage <= threshold:
                continue
            if self._kill(candidate):
                host.log(
                    SOURCE,
                    "kill",
                    f"Killed {candidate.path} due to memory used ({mem_total - mem_available}) / "
                    f"total ({mem_total}) and swap used ({swap_total - swap_free}) / "
                    f"total ({swap_total}) being more than {config.swap_used_limit:.2f}%",
                )
                return candidate
        return None
