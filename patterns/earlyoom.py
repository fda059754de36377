"""earlyoom: a user-space OOM killer that acts on MemAvailable and SwapFree thresholds.

Source: rfjakob/earlyoom ``main.c`` (defaults, ``lowmem_sig``, ``sleep_time_ms``, ``poll_loop``),
``kill.c`` (``kill_wait``, ``is_larger``, ``kill_process``), ``meminfo.c`` (``print_mem_stats``),
``msg.h`` (``PRIPCT``); see ``../shared/reference/semantics.md`` §6.2 and §12 V15.

Model (``poll_loop``):

* read ``MemAvailable`` and ``SwapFree`` as percentages of their totals (no swap: 0 %);
* SIGKILL when memory AND swap are at or below the kill limits, else SIGTERM when both are at or
  below the term limits;
* victim: the live process with the highest ``oom_score`` (plus 300 if ``prefer`` matches its
  name, minus 300 if ``avoid`` does), ties broken by the larger ``VmRSS``; skipped are init
  (pid 1), earlyoom itself, processes without RSS (kernel threads) and ``oom_score_adj`` -1000;
* re-read memory before signalling and give up if it has recovered;
* send the signal, then poll every 100 ms for up to 10 s; a SIGTERMed victim is sent SIGKILL as soon
  as memory reaches the kill limits;
* sleep 100..1000 ms: the headroom to the term limits divided by the fill rates earlyoom assumes
  (6000 MiB/s of RAM, 800 MiB/s of swap).

Simplifications:

* percentages are of ``MemTotal``; newer earlyoom divides by ``MemAvailable + AnonPages``
  (``UserMemTotalKiB``), which is ``MemTotal`` minus kernel and unreclaimable memory;
* every process has uid 0, and ``cmdline`` is the command name;
* earlyoom's own work takes no simulated time except ``selection_time`` (its /proc scan);
* ``--ignore``, ``--ignore-root-user``, ``-g`` (process groups), notifications, hooks and the
  ``process_mrelease`` call are not modelled.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import simpy

from patterns.host_view import HostView, ProcessView

MIB = 1024 * 1024
KIB = 1024
OOM_SCORE_ADJ_MIN = -1000
"""``oom_score_adj`` of processes earlyoom never kills, like the kernel."""
ADJ_PREFER = 300
"""Added to the ``oom_score`` of a process whose name matches ``--prefer`` (kill.c)."""
ADJ_AVOID = -300
"""Added to the ``oom_score`` of a process whose name matches ``--avoid`` (kill.c)."""
SOURCE = "earlyoom"
"""Log source and signal reason."""

Signal = Literal["SIGTERM", "SIGKILL"]


@dataclass(frozen=True)
class EarlyoomConfig:
    """earlyoom's command line.

    Attributes:
        mem_term_percent: SIGTERM when ``MemAvailable`` is at or below this percent of
            ``MemTotal``, 10 (``-m 10``, main.c defaults).
        mem_kill_percent: SIGKILL limit for memory; ``None`` means half of ``mem_term_percent``,
            so 5 by default (main.c: "kill value defaults to half the term value").
        swap_term_percent: SIGTERM limit for ``SwapFree``, 10 (``-s 10``).
        swap_kill_percent: SIGKILL limit for swap; ``None`` means half of ``swap_term_percent``.
        report_interval: seconds between "mem avail" report lines, 1 (``-r 1``); 0 disables them.
        kill_poll_interval: seconds between checks that the victim exited, 0.1 (kill_wait
            ``poll_ms``).
        kill_wait_polls: how many checks before the victim "did not exit", 100 (so 10 s).
        prefer: regex on the process name that adds 300 to ``oom_score`` (``--prefer``, unset).
        avoid: regex on the process name that subtracts 300 (``--avoid``, unset).
        min_sleep: shortest adaptive sleep, 0.1 s (``sleep_time_ms`` ``min_sleep``).
        max_sleep: longest adaptive sleep, 1 s (``max_sleep``).
        mem_fill_rate: assumed fastest RAM fill rate, 6000 MiB/s ("seen with stress -m 4").
        swap_fill_rate: assumed fastest swap fill rate, 800 MiB/s ("seen with membomb on ZRAM").
        pid: earlyoom's own pid on the host, never chosen as a victim (``None``: not a process).
        selection_time: simulated time the /proc scan takes, 0 s (earlyoom measures 2.5 ms on a
            desktop; the re-check after it is what "memory situation has recovered" reports).
    """

    mem_term_percent: float = 10.0
    mem_kill_percent: float | None = None
    swap_term_percent: float = 10.0
    swap_kill_percent: float | None = None
    report_interval: float = 1.0
    kill_poll_interval: float = 0.1
    kill_wait_polls: int = 100
    prefer: str | None = None
    avoid: str | None = None
    min_sleep: float = 0.1
    max_sleep: float = 1.0
    mem_fill_rate: int = 6000
    swap_fill_rate: int = 800
    pid: int | None = None
    selection_time: float = 0.0

    def __post_init__(self) -> None:
        if self.mem_kill_percent is None:
            object.__setattr__(self, "mem_kill_percent", self.mem_term_percent / 2)
        if self.swap_kill_percent is None:
            object.__setattr__(self, "swap_kill_percent", self.swap_term_percent / 2)
        if not 0 < self.mem_term_percent <= 100 or not 0 <= self.swap_term_percent <= 100:
            raise ValueError("term percentages must be within 0..100")
        if self.mem_kill_limit > self.mem_term_percent:
            raise ValueError("mem_kill_percent must not exceed mem_term_percent")
        if self.swap_kill_limit > self.swap_term_percent:
            raise ValueError("swap_kill_percent must not exceed swap_term_percent")

    @property
    def mem_kill_limit(self) -> float:
        """The resolved SIGKILL limit for memory, percent."""
        assert self.mem_kill_percent is not None
        return self.mem_kill_percent

    @property
    def swap_kill_limit(self) -> float:
        """The resolved SIGKILL limit for swap, percent."""
        assert self.swap_kill_percent is not None
        return self.swap_kill_percent


class EarlyoomState(enum.Enum):
    """What earlyoom is doing."""

    MONITORING = "monitoring"
    """Polling memory with the adaptive sleep."""
    WAITING_FOR_EXIT = "waiting_for_exit"
    """A victim was signalled; polling every 100 ms until it exits (at most 10 s)."""


class MemInfo(NamedTuple):
    """What earlyoom reads of ``/proc/meminfo``; percentages as earlyoom computes them."""

    mem_available: int
    mem_total: int
    swap_free: int
    swap_total: int

    @property
    def mem_available_percent(self) -> float:
        """``MemAvailable`` as a percent of ``MemTotal``."""
        return self.mem_available * 100 / self.mem_total

    @property
    def swap_free_percent(self) -> float:
        """``SwapFree`` as a percent of ``SwapTotal``, 0 without swap (meminfo.c)."""
        if self.swap_total <= 0:
            return 0.0
        return self.swap_free * 100 / self.swap_total


class Victim(NamedTuple):
    """The process earlyoom chose and the numbers its log line shows."""

    process: ProcessView
    badness: int
    oom_score: int


def pripct(percent: float) -> str:
    """The percent format ``PRIPCT`` (``%5.2lf%%``): 10 -> ``10.00%``, 5 -> `` 5.00%``."""
    return f"{percent:5.2f}%"


def lowmem_sig(config: EarlyoomConfig, meminfo: MemInfo) -> Signal | None:
    """The signal earlyoom sends for this memory situation (``lowmem_sig``), or ``None``.

    Both memory AND swap must be at or below a level's limits.
    """
    mem, swap = meminfo.mem_available_percent, meminfo.swap_free_percent
    if mem <= config.mem_kill_limit and swap <= config.swap_kill_limit:
        return "SIGKILL"
    if mem <= config.mem_term_percent and swap <= config.swap_term_percent:
        return "SIGTERM"
    return None


def sleep_time(config: EarlyoomConfig, meminfo: MemInfo) -> float:
    """Seconds to sleep before the next poll (``sleep_time_ms``, in C integer arithmetic).

    The headroom to the SIGTERM limits in KiB, divided by the fill rates in KiB/ms (~MiB/s),
    clamped to ``min_sleep..max_sleep``.
    """
    mem_total_kib = meminfo.mem_total // KIB
    swap_total_kib = meminfo.swap_total // KIB
    mem_headroom_kib = max(
        0, int((meminfo.mem_available_percent - config.mem_term_percent) * mem_total_kib / 100)
    )
    swap_headroom_kib = max(
        0, int((meminfo.swap_free_percent - config.swap_term_percent) * swap_total_kib / 100)
    )
    ms = mem_headroom_kib // config.mem_fill_rate + swap_headroom_kib // config.swap_fill_rate
    ms = min(max(ms, round(config.min_sleep * 1000)), round(config.max_sleep * 1000))
    return ms / 1000


def mem_stats_line(meminfo: MemInfo) -> str:
    """The ``print_mem_stats`` report line."""
    return (
        f"mem avail: {meminfo.mem_available // MIB:5d} of {meminfo.mem_total // MIB:5d} MiB "
        f"({pripct(meminfo.mem_available_percent)}), "
        f"swap free: {meminfo.swap_free // MIB:4d} of {meminfo.swap_total // MIB:4d} MiB "
        f"({pripct(meminfo.swap_free_percent)})"
    )


class Earlyoom:
    """earlyoom running on one host, seen through a :class:`~patterns.host_view.HostView`.

    Args:
        env: the SimPy environment; ``env.now`` is the only clock read.
        host: the host earlyoom polls and signals.
        config: command-line settings; defaults are earlyoom's.
    """

    def __init__(
        self, env: simpy.Environment, host: HostView, config: EarlyoomConfig | None = None
    ) -> None:
        self.env = env
        self.host = host
        self.config = config or EarlyoomConfig()
        self.state = EarlyoomState.MONITORING
        self._prefer = re.compile(self.config.prefer) if self.config.prefer else None
        self._avoid = re.compile(self.config.avoid) if self.config.avoid else None

    def start(self) -> simpy.Process:
        """Start the poll loop as a SimPy process and return it."""
        return self.env.process(self.run())

    def meminfo(self) -> MemInfo:
        """Read ``/proc/meminfo``."""
        host = self.host
        return MemInfo(host.mem_available(), host.mem_total, host.swap_free(), host.swap_total)

    def _log(self, kind: str, line: str) -> None:
        self.host.log(SOURCE, kind, line)

    def badness(self, process: ProcessView, oom_score: int) -> int:
        """``oom_score`` with the ``--prefer`` / ``--avoid`` adjustments (regex search on comm)."""
        badness = oom_score
        if self._prefer is not None and self._prefer.search(process.comm):
            badness += ADJ_PREFER
        if self._avoid is not None and self._avoid.search(process.comm):
            badness += ADJ_AVOID
        return badness

    def find_victim(self) -> Victim | None:
        """The process with the largest badness, ties to the larger RSS (``is_larger``).

        Processes are scanned in pid order, as ``/proc`` lists them; an equal candidate does not
        displace the one found first.
        """
        victim: Victim | None = None
        for process in self.host.processes():
            if not process.alive or process.pid <= 1 or process.pid == self.config.pid:
                continue
            if process.rss == 0 or process.oom_score_adj == OOM_SCORE_ADJ_MIN:
                continue
            oom_score = self.host.oom_score(process)
            badness = self.badness(process, oom_score)
            if victim is not None:
                if badness < victim.badness:
                    continue
                if badness == victim.badness and process.rss <= victim.process.rss:
                    continue
            victim = Victim(process, badness, oom_score)
        return victim

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The poll loop (``poll_loop``); runs forever."""
        config = self.config
        report_countdown = 0.0
        while True:
            meminfo = self.meminfo()
            sig = lowmem_sig(config, meminfo)
            if sig is not None:
                if sig == "SIGKILL":
                    limits = (config.mem_kill_limit, config.swap_kill_limit)
                else:
                    limits = (config.mem_term_percent, config.swap_term_percent)
                self._log("mem_report", mem_stats_line(meminfo))
                self._log(
                    "low_memory",
                    f"low memory! at or below {sig} limits: "
                    f"mem {pripct(limits[0])}, swap {pripct(limits[1])}",
                )
                victim = self.find_victim()
                if config.selection_time > 0:
                    yield self.env.timeout(config.selection_time)
                # The scan takes time; the situation may have changed in the meantime.
                meminfo = self.meminfo()
                if lowmem_sig(config, meminfo) is None:
                    self._log("recovered", "memory situation has recovered while selecting victim")
                else:
                    yield from self.kill_process(sig, victim)
            elif config.report_interval > 0 and report_countdown <= 0:
                self._log("mem_report", mem_stats_line(meminfo))
                report_countdown = config.report_interval
            # Like earlyoom, the sleep is computed from the snapshot taken before the kill.
            pause = sleep_time(config, meminfo)
            yield self.env.timeout(pause)
            report_countdown -= pause

    def kill_process(self, sig: Signal, victim: Victim | None) -> Generator[simpy.Event, Any, None]:
        """Signal the victim and wait for it to exit (``kill_process`` and ``kill_wait``)."""
        if victim is None:
            self._log("no_victim", "Could not find a process to kill. Sleeping 1 second.")
            yield self.env.timeout(1.0)
            return
        process = victim.process
        self._log(
            "sending",
            f'sending {sig} to process {process.pid} uid 0 "{process.comm}": '
            f"oom_score {victim.oom_score}, oom_score_adj {process.oom_score_adj}, "
            f'VmRSS {process.rss // MIB} MiB, cmdline "{process.comm}"',
        )
        if not process.alive:
            # kill(2) fails with ESRCH when the victim exited during the scan.
            self._log("kill_failed", "kill failed: No such process")
            return
        self.host.signal(process, sig, SOURCE)
        self.state = EarlyoomState.WAITING_FOR_EXIT
        try:
            yield from self._kill_wait(process, sig)
        finally:
            self.state = EarlyoomState.MONITORING

    def _kill_wait(self, process: ProcessView, sig: Signal) -> Generator[simpy.Event, Any, None]:
        config = self.config
        t0 = self.env.now
        for _ in range(config.kill_wait_polls):
            secs = self.env.now - t0
            if sig != "SIGKILL":
                meminfo = self.meminfo()
                if (
                    meminfo.mem_available_percent <= config.mem_kill_limit
                    and meminfo.swap_free_percent <= config.swap_kill_limit
                ):
                    sig = "SIGKILL"
                    self._log("escalating", f"escalating to SIGKILL after {secs:.3f} seconds")
                    self.host.signal(process, sig, SOURCE)
            if not process.alive:
                self._log("exited", f"process {process.pid} exited after {secs:.3f} seconds")
                return
            yield self.env.timeout(config.kill_poll_interval)
        self._log("did_not_exit", f"process {process.pid} did not exit")
        self._log("kill_failed", "kill failed: Timer expired")
