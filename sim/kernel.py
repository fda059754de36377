"""The kernel layer: hosts, the cgroup v2 memory controller, processes, reclaim, swap and OOM.

Model (``../shared/reference/semantics.md`` §1, §2, §6) and its simplifications:

* **Memory of a process**: resident anonymous memory (``rss``), anonymous memory swapped out
  (``swap``) and page cache it brought in (``cache``, charged to its cgroup, reclaimable).
  Leaked memory is *cold*: the LRU's oldest pages, reclaimed before any warm anonymous memory
  and never faulted back in. Page
  tables are ``rss / 512`` (8 bytes per 4 KiB page), as the badness sum includes them.
* **cgroup v2 files** per :class:`Cgroup`: ``memory.current`` (hierarchical: resident anon + page
  cache of the subtree), ``memory.swap.current``, ``memory.max``, ``memory.high``, ``memory.min``,
  ``memory.low``, ``memory.swap.max``, ``memory.oom.group``, ``memory.peak`` and ``memory.events``
  (hierarchical: ``low, high, max, oom, oom_kill, oom_group_kill``), plus cgroup v1's
  ``memory.oom_control`` ``oom_kill_disable``.
* **A charge** (``try_charge_memcg``, §2.2): if some ancestor would go over ``memory.max``, the
  lowest such cgroup counts ``max`` and reclaims from its subtree: page cache first, then anonymous
  memory to swap (cold pages first) while ``memory.swap.max`` and the host's swap allow;
  reclaim takes from each process in proportion to its size; cgroups at or below their
  ``memory.min`` are never reclaimed, those below ``memory.low`` only when nothing else is left
  (``low`` counted). If that does not make room: a memcg OOM in that cgroup (or, with
  ``oom_kill_disable``, the task waits until memory is freed). Host RAM exhausted after global
  reclaim and swap: a global OOM. ``memory.high`` is never a kill: the allocating task reclaims
  and then sleeps the kernel's penalty (§2.3), counting ``high``.
* **Time**: the allocating task stalls for the reclaim it does (page cache at
  :data:`CACHE_RECLAIM_RATE`, swap-out at ``swap_rate``) and for ``memory.high`` throttling; a
  process with swapped-out memory stalls on refaults in proportion to its swapped share
  (``thrash_factor``) until RAM frees up and its pages come back in. Stalls are returned to the
  caller, who waits them out, and counted as memory pressure (PSI).
* **PSI** (§2.8), PSI-like: per cgroup (hierarchical) and host, the ``some`` share of a 2 s period
  is the stall time in it (capped at the period) and ``full`` that stall time over the non-idle
  task time (tasks serving requests); ``avg10/avg60/avg300`` are the kernel's exponentially decayed
  averages updated every 2 s, ``total`` the cumulative stall in microseconds.
* **OOM killer** (§1): ``oom_badness`` exactly, memcg vs global ``totalpages``, ties to the later
  task, one victim in flight (no second kill until the victim exits or the reaper marks it 2 s
  after the kill), the reaper, ``memory.oom.group`` (highest flagged ancestor within the OOM domain,
  sparing -1000 tasks), ``panic_on_oom``, ``oom_kill_allocating_task``, "no killable processes"
  (global: panic), and the kernel's log lines. A victim exits ``exit_delay`` after its SIGKILL
  (0 by default) and frees its memory then.
* **Overcommit** (``vm.overcommit_memory``): 2 refuses what would take ``Committed_AS`` past
  ``CommitLimit = swap + RAM * overcommit_ratio / 100``; 0 (heuristic, which refuses a single
  mapping larger than RAM + swap) and 1 never refuse, since the model charges touched memory.
  A refused allocation raises :class:`AllocationFailed` (``ENOMEM``) instead of an OOM kill.
* **Panic**: the host goes down at once, everything on it dies, and it reboots after
  ``kernel.panic`` seconds (0: it stays down, the kernel's default).

Not modelled: per-CPU charge batching, NUMA and cpusets, zswap, proportional distribution of
``memory.min/low`` among siblings (each cgroup's own setting is its protection), separate active
and inactive lists (warm pages are reclaimed in proportion to size, after cold and cache).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patterns.host_view import CgroupView, ProcessView
from patterns.oom_killer import (
    OOM_SCORE_ADJ_MIN,
    PAGE_SIZE,
    OomCandidate,
    memory_high_penalty,
    oom_kill_line,
    oom_score,
    oom_summary_line,
    select_victim,
    task_table,
)

if TYPE_CHECKING:
    from sim.recorder import Recorder

UNLIMITED = math.inf

KILL_EXIT_CODE = 137
"""128 + SIGKILL (9): the exit code of an OOM-killed or SIGKILLed container."""

TERM_EXIT_CODE = 143
"""128 + SIGTERM (15): a container that exited on SIGTERM."""

OOM_REAPER_DELAY = 2.0
"""Seconds from an OOM kill to the reaper (``OOM_REAPER_DELAY = 2*HZ``, mm/oom_kill.c)."""

CACHE_RECLAIM_RATE = 4 * 1024**3
"""Bytes of clean page cache reclaimed per second of stall (a model assumption)."""

SWAP_IN_PER_HOP = 4 * 1024**2
"""Bytes of swapped-out working memory one request hop faults back in (a model assumption: the
pages a request touches, with swap readahead; 4 MiB is 20 ms at the default swap rate)."""

PSI_PERIOD = 2.0
"""Seconds between PSI average updates (``PSI_FREQ``, kernel/sched/psi.c)."""

PSI_WINDOWS = (10.0, 60.0, 300.0)

KERNEL_KINDS = frozenset(
    {
        "oom_invoked",
        "oom_meminfo",
        "oom_tasks",
        "oom_summary",
        "oom_kill",
        "oom_group_kill",
        "oom_reaper",
        "oom_no_victim",
        "oom_paused",
        "kernel_panic",
        "panic_reboot",
    }
)
"""Event kinds that are lines of the kernel's ring buffer (what ``dmesg`` prints)."""

Schedule = Callable[[Callable[[], None], float], None]
"""``schedule(callback, delay)``: run ``callback`` ``delay`` seconds from now."""


class AllocationFailed(Exception):  # noqa: N818 - the kernel's name for it is ENOMEM
    """An allocation refused with ``ENOMEM`` (overcommit, or a memcg OOM with no victim)."""


@dataclass(frozen=True)
class Sysctls:
    """The host's memory sysctls, kernel defaults (``Documentation/admin-guide/sysctl/vm.rst``).

    Attributes:
        panic_on_oom: 0 never panic; 1 panic on a global OOM; 2 panic on any OOM.
        oom_kill_allocating_task: 1: a global OOM kills the allocating task instead of scanning.
        overcommit_memory: 0 heuristic, 1 always, 2 strict accounting.
        overcommit_ratio: percent of RAM in ``CommitLimit`` under mode 2 (default 50).
        kernel_panic: seconds after a panic before the host reboots; 0 = never (``kernel.panic``).
        swap_rate: bytes per second the swap device writes or reads (model assumption:
            200 MiB/s, an SSD).
        thrash_factor: how much slower a process runs per unit of its memory that is swapped
            out: a hop of a process with share ``s`` of its memory in swap stalls
            ``s * thrash_factor`` times its service time (model assumption: 10).
    """

    panic_on_oom: int = 0
    oom_kill_allocating_task: int = 0
    overcommit_memory: int = 0
    overcommit_ratio: int = 50
    kernel_panic: float = 0.0
    swap_rate: float = 200 * 1024**2
    thrash_factor: float = 10.0


class Psi:
    """Pressure stall information of one cgroup (or, at the root, of the host)."""

    __slots__ = ("avg", "busy", "full_total", "some_total", "stall")

    def __init__(self) -> None:
        self.stall = 0.0  # stall seconds in the current period
        self.busy = 0.0  # non-idle task seconds in the current period
        self.some_total = 0.0
        self.full_total = 0.0
        self.avg = {"some": [0.0, 0.0, 0.0], "full": [0.0, 0.0, 0.0]}

    def update(self, period: float) -> None:
        """Close a period: fold its shares into the decayed averages."""
        if self.stall == 0.0 and not any(self.avg["some"]) and not any(self.avg["full"]):
            self.busy = 0.0  # no pressure, now or before: every figure stays exactly 0
            return
        some = min(self.stall, period)
        # full: the stalled share of the non-idle task time, over the period (no busy time
        # recorded: the stalled tasks were all there was)
        full = (
            some if self.busy <= 0 else min(some, period * self.stall / max(self.busy, self.stall))
        )
        self.some_total += some
        self.full_total += full
        for kind, share in (("some", some / period), ("full", full / period)):
            averages = self.avg[kind]
            for index, window in enumerate(PSI_WINDOWS):
                decay = math.exp(-period / window)
                averages[index] = averages[index] * decay + 100.0 * share * (1 - decay)
        self.stall = 0.0
        self.busy = 0.0

    def lines(self) -> str:
        """The ``memory.pressure`` file."""
        return "\n".join(
            f"{kind} avg10={a[0]:.2f} avg60={a[1]:.2f} avg300={a[2]:.2f} total={int(total * 1e6)}"
            for kind, a, total in (
                ("some", self.avg["some"], self.some_total),
                ("full", self.avg["full"], self.full_total),
            )
        )


class Cgroup:
    """One cgroup v2 node: the memory controller's files and counters."""

    __slots__ = (
        "cache",
        "children",
        "events",
        "last_reclaim",
        "lineage",
        "members",
        "memory_high",
        "memory_low",
        "memory_max",
        "memory_min",
        "name",
        "oom_group",
        "oom_kill_disable",
        "parent",
        "path",
        "peak",
        "pgscan",
        "psi",
        "swap",
        "swap_max",
        "usage",
        "waiters",
    )

    def __init__(self, name: str, parent: Cgroup | None, memory_max: float = UNLIMITED) -> None:
        self.name = name
        self.parent = parent
        self.lineage: tuple[Cgroup, ...] = (self,) if parent is None else (self, *parent.lineage)
        """This cgroup and every ancestor up to the root, lowest first (a cgroup never moves)."""
        self.path: str = "/" if parent is None else f"{parent.path.rstrip('/')}/{name}"
        self.children: list[Cgroup] = []
        self.memory_max = memory_max
        self.memory_high = UNLIMITED
        self.memory_min = 0
        self.memory_low = 0
        self.swap_max = UNLIMITED
        self.oom_group = False
        self.oom_kill_disable = False
        self.usage = 0  # memory.current: resident anon + page cache of the subtree
        self.cache = 0  # page cache of the subtree (part of usage)
        self.swap = 0  # memory.swap.current of the subtree
        self.peak = 0
        self.pgscan = 0
        self.last_reclaim: float | None = None
        self.members: list[Process] = []  # processes in this cgroup itself (cgroup.procs)
        self.events = {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0, "oom_group_kill": 0}
        self.psi = Psi()
        self.waiters: list[Callable[[], None]] = []
        if parent is not None:
            parent.children.append(self)

    def child(self, name: str, memory_max: float = UNLIMITED) -> Cgroup:
        """The child cgroup ``name``, created when missing."""
        for child in self.children:
            if child.name == name:
                return child
        return Cgroup(name, self, memory_max)

    def ancestors(self) -> Iterator[Cgroup]:
        """This cgroup and every ancestor up to the root, lowest first."""
        return iter(self.lineage)

    def walk(self) -> Iterator[Cgroup]:
        """This cgroup and its descendants, pre-order (the kernel's css scan order)."""
        yield self
        for child in self.children:
            yield from child.walk()

    def descendants(self) -> list[Cgroup]:
        """Every cgroup below this one, pre-order."""
        return [c for c in self.walk() if c is not self]

    def tasks(self) -> Iterator[Process]:
        """Live processes in this subtree, in scan order."""
        for cgroup in self.walk():
            yield from (p for p in cgroup.members if p.alive)

    def count_event(self, name: str) -> None:
        """Count a ``memory.events`` entry here and in every ancestor (the file is hierarchical)."""
        node: Cgroup | None = self
        while node is not None:
            node.events[name] += 1
            node = node.parent

    def _add(self, usage: int, cache: int = 0, swap: int = 0) -> None:
        """Add to the counters of this cgroup and every ancestor."""
        node: Cgroup | None = self
        while node is not None:
            node.usage += usage
            node.cache += cache
            node.swap += swap
            if node.usage > node.peak:
                node.peak = node.usage
            node = node.parent

    def try_add(self, amount: int) -> bool:
        """Charge ``amount`` up the tree if no ``memory.max`` is crossed; else change nothing."""
        for node in self.lineage:
            usage = node.usage + amount
            if usage > node.memory_max:
                for undo in self.lineage:
                    if undo is node:
                        return False
                    undo.usage -= amount
            node.usage = usage
            if usage > node.peak:
                node.peak = usage
        return True

    def over_limit(self, amount: int) -> Cgroup | None:
        """The lowest ancestor that ``amount`` more bytes would take over its ``memory.max``."""
        node: Cgroup | None = self
        while node is not None:
            if node.usage + amount > node.memory_max:
                return node
            node = node.parent
        return None

    def over_high(self) -> Cgroup | None:
        """The ancestor most over its ``memory.high`` (relative overage), if any."""
        worst, worst_ratio = None, 0.0
        node: Cgroup | None = self
        while node is not None and node.parent is not None:
            if node.usage > node.memory_high:
                ratio = (node.usage - node.memory_high) / max(node.memory_high, 1)
                if ratio > worst_ratio:
                    worst, worst_ratio = node, ratio
            node = node.parent
        return worst

    def freed(self, host: Host) -> None:
        """Memory was freed in this subtree: wake the tasks waiting for it on any ancestor."""
        node: Cgroup | None = self
        while node is not None:
            if node.waiters:
                waiters, node.waiters = node.waiters, []
                host.waiting -= len(waiters)
                for wake in waiters:
                    wake()
            node = node.parent

    def add_stall(self, seconds: float) -> None:
        """Count ``seconds`` of memory stall of one task here and in every ancestor."""
        for node in self.ancestors():
            node.psi.stall += seconds

    def add_busy(self, seconds: float) -> None:
        """Count ``seconds`` of non-idle task time here and in every ancestor."""
        for node in self.ancestors():
            node.psi.busy += seconds

    # -------------------------------------------------------- HostView protocol (CgroupView)

    @property
    def swap_usage(self) -> int:
        """``memory.swap.current``."""
        return self.swap

    def psi_full_avg10(self) -> float:
        """``memory.pressure`` ``full avg10``, percent."""
        return self.psi.avg["full"][0]

    def processes(self) -> list[Process]:
        """Live processes in this cgroup's subtree."""
        return list(self.tasks())


class Process:
    """A process: pid, command, cgroup, memory (resident, swapped, page cache) and adj.

    ``on_exit(reason)`` is called when the process dies (the owner, e.g. a container, decides
    what that means for it).
    """

    __slots__ = (
        "alive",
        "blocked_on",
        "cache",
        "cgroup",
        "cold",
        "cold_swapped",
        "comm",
        "exit_delay",
        "host",
        "killed_at",
        "on_exit",
        "oom_score_adj",
        "pid",
        "reaped",
        "rss",
        "swap",
    )

    def __init__(
        self,
        host: Host,
        pid: int,
        comm: str,
        cgroup: Cgroup,
        oom_score_adj: int,
        on_exit: Callable[[str], None] | None,
    ) -> None:
        self.host = host
        self.pid = pid
        self.comm = comm
        self.cgroup = cgroup
        self.oom_score_adj = oom_score_adj
        self.on_exit = on_exit
        self.rss = 0
        self.swap = 0
        self.cache = 0
        self.cold = 0  # anon memory never touched again (a leak): the LRU's oldest pages
        self.cold_swapped = 0  # the part of ``cold`` that is in swap
        self.alive = True
        self.exit_delay = 0.0
        self.killed_at: float | None = None
        self.reaped = False
        self.blocked_on: Cgroup | None = None

    @property
    def cgroup_path(self) -> str:
        """The path of the process's cgroup."""
        return self.cgroup.path

    @property
    def pgtables(self) -> int:
        """Bytes of page tables: 8 bytes per resident or swapped 4 KiB page."""
        return (self.rss + self.swap) // 512

    def candidate(self) -> OomCandidate:
        """What ``oom_badness`` reads of this process."""
        return OomCandidate(
            self.pid,
            self.comm,
            self.rss // PAGE_SIZE,
            self.swap // PAGE_SIZE,
            self.pgtables // PAGE_SIZE,
            self.oom_score_adj,
        )

    def charge(self, amount: int) -> float:
        """Allocate ``amount`` bytes of anonymous memory; return the seconds the task stalls.

        The fast path (every limit far away) returns 0.0. ``math.inf`` means the task must wait
        for memory to be freed (``oom_kill_disable``): call :meth:`wait_for_memory` and retry.
        Raises :class:`AllocationFailed` when the kernel refuses the allocation (``ENOMEM``).
        """
        if amount <= 0 or not self.alive:
            return 0.0
        host = self.host
        if (
            host.used + amount <= host.ram
            and host.committed + amount <= host.commit_limit
            and self.cgroup.try_add(amount)
        ):
            self.rss += amount
            host.used += amount
            host.committed += amount
            return host.throttle(self, amount) if host.any_high else 0.0
        return host.charge_slow(self, amount)

    def uncharge(self, amount: int) -> None:
        """Free ``amount`` bytes of anonymous memory (resident first, then swapped)."""
        if amount <= 0 or not self.alive:
            return
        host = self.host
        if amount <= self.rss:  # the common case: all of it resident
            self.rss -= amount
            for node in self.cgroup.lineage:
                node.usage -= amount
            host.used -= amount
            host.committed -= amount
        else:
            resident = self.rss
            swapped = min(amount - resident, self.swap)
            self.rss = 0
            self.swap -= swapped
            self.cgroup._add(-resident, swap=-swapped)
            host.used -= resident
            host.swap_used -= swapped
            host.committed -= resident + swapped
        if host.waiting:
            self.cgroup.freed(host)

    def read_file(self, amount: int) -> float:
        """Bring ``amount`` bytes into the page cache, charged to this process's cgroup."""
        if not self.alive or amount <= 0:
            return 0.0
        return self.host.cache_pages(self, amount)

    def refault_stall(self, service_time: float) -> float:
        """Seconds a hop of ``service_time`` stalls on refaults of swapped-out working memory.

        The hop touches part of its working set: up to :data:`SWAP_IN_PER_HOP` of swapped-out
        warm pages come back in, as far as RAM and the cgroup's limits allow (read at the swap
        device's rate); what stays out makes the hop thrash, ``thrash_factor`` times its service
        time per share swapped. Cold pages (leaked, never touched again) stay in swap and cost
        nothing. So a process recovers over many hops once memory is free again.
        """
        warm = self.swap - self.cold_swapped
        if warm <= 0:
            return 0.0
        host = self.host
        room = host.ram - host.used
        for node in self.cgroup.ancestors():
            if node.memory_max != UNLIMITED:
                room = min(room, int(node.memory_max) - node.usage)
        back = max(0, min(warm, room, SWAP_IN_PER_HOP))
        stall = 0.0
        if back:
            self.swap -= back
            self.rss += back
            self.cgroup._add(back, swap=-back)
            host.used += back
            host.swap_used -= back
            stall += back / host.sysctls.swap_rate
            warm -= back
        if warm:
            stall += service_time * warm / (warm + self.rss) * host.sysctls.thrash_factor
        self.cgroup.add_stall(stall)
        return stall

    def leak(self, amount: int) -> float:
        """Allocate ``amount`` bytes that are never touched again (see :meth:`charge`)."""
        stall = self.charge(amount)
        if stall != math.inf and self.alive:
            self.cold += amount
        return stall

    def wait_for_memory(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` once memory is freed in the cgroup this task's last charge hit."""
        blocked = self.blocked_on or self.host.root
        self.blocked_on = None
        blocked.waiters.append(wake)
        self.host.waiting += 1

    def exit(self) -> None:
        """The process ends: its memory (resident, swapped, its page cache) goes back."""
        if not self.alive:
            return
        self.cgroup._add(-(self.rss + self.cache), cache=-self.cache, swap=-self.swap)
        host = self.host
        host.used -= self.rss + self.cache
        host.swap_used -= self.swap
        host.committed -= self.rss + self.swap
        self.rss = self.swap = self.cache = self.cold = self.cold_swapped = 0
        self.alive = False
        self.cgroup.members.remove(self)
        self.cgroup.freed(self.host)


class Host:
    """A machine: RAM, swap, a cgroup tree, a process table, sysctls and a kernel log."""

    def __init__(
        self,
        name: str,
        ram: int,
        cpus: float,
        recorder: Recorder,
        schedule: Schedule,
        now: Callable[[], float],
        *,
        swap: int = 0,
        sysctls: Sysctls | None = None,
    ) -> None:
        self.name = name
        self.ram = ram
        self.swap_total = swap
        self.cpus = cpus
        self.sysctls = sysctls or Sysctls()
        self.used = 0  # RAM in use: resident anon + page cache
        self.swap_used = 0
        self.committed = 0  # Committed_AS: anonymous memory, resident or swapped
        self.any_high = False  # some cgroup has a memory.high: charges must check it
        self.kubelet = False  # a kubelet runs here (it reports SystemOOM events)
        self.commit_limit = self._commit_limit()
        self.up = True
        self.root = Cgroup("", None)
        self._table: list[Process] = []  # the process table, in pid order
        self.next_pid = 1000
        self.oom_kills = 0
        self.alloc_failures = 0
        self.waiting = 0  # tasks waiting on an OOM-disabled cgroup
        self.on_panic: Callable[[], None] = lambda: None
        self._recorder = recorder
        self._schedule = schedule
        self._now = now
        self._victims: set[Process] = set()

    # ------------------------------------------------------------------ processes

    @property
    def free(self) -> int:
        """RAM not in use."""
        return self.ram - self.used

    def _commit_limit(self) -> float:
        """``CommitLimit`` under ``overcommit_memory=2``; unlimited otherwise."""
        if self.sysctls.overcommit_memory != 2:
            return UNLIMITED
        return self.swap_total + self.ram * self.sysctls.overcommit_ratio // 100

    def set_memory_high(self, cgroup: Cgroup, high: float) -> None:
        """Write ``memory.high`` of ``cgroup`` (charges start checking it)."""
        cgroup.memory_high = high
        self.any_high = self.any_high or high != UNLIMITED

    @property
    def totalpages(self) -> int:
        """RAM plus swap, in pages: the global OOM's and ``oom_score``'s denominator."""
        return max(1, (self.ram + self.swap_total) // PAGE_SIZE)

    def spawn(
        self,
        comm: str,
        cgroup: Cgroup,
        oom_score_adj: int = 0,
        on_exit: Callable[[str], None] | None = None,
    ) -> Process:
        """Start a process in ``cgroup`` with the next pid."""
        self.next_pid += 1
        process = Process(self, self.next_pid, comm, cgroup, oom_score_adj, on_exit)
        cgroup.members.append(process)
        self._table = [p for p in self._table if p.alive]
        self._table.append(process)
        return process

    def processes(self) -> list[Process]:
        """Every live process, in pid order."""
        return [p for p in self._table if p.alive]

    def log(self, source: str, kind: str, line: str) -> None:
        """Write a line to the host's log; ``source`` is the program that prints it."""
        entity = "kernel" if source == "kernel" else source
        self._recorder.event(self._now(), self.name, entity, kind, line)

    def _kernel(self, kind: str, line: str, entity: str = "kernel") -> None:
        self._recorder.event(self._now(), self.name, entity, kind, line)

    # ------------------------------------------------------------------ the slow path

    def overcommit_ok(self, amount: int) -> bool:
        """Whether ``vm.overcommit_memory`` lets ``amount`` more bytes be committed.

        Mode 0's heuristic refuses a single *mapping* larger than RAM + swap; the model charges
        memory as it is touched, not mapped, so only mode 2 ever refuses here.
        """
        return self.committed + amount <= self.commit_limit

    def charge_slow(self, process: Process, amount: int) -> float:
        """Charge with the limits in sight: reclaim, swap, throttle, OOM (§2.2).

        Returns the stall in seconds, or ``math.inf`` when the task must wait for memory to be
        freed and then try again (an OOM kill is under way, or ``oom_kill_disable``).
        """
        if not self.overcommit_ok(amount):
            self.alloc_failures += 1
            raise AllocationFailed(f"{process.comm}: cannot allocate {amount} bytes (ENOMEM)")
        stall = 0.0
        cgroup = process.cgroup
        limited = cgroup.over_limit(amount)
        if limited is not None:
            limited.count_event("max")
            stall += self._reclaim(limited, limited.usage + amount - int(limited.memory_max))
            limited = cgroup.over_limit(amount)
            if limited is not None:
                process.blocked_on = limited
                self._memcg_oom(process, limited)
                return math.inf
        if self.used + amount > self.ram:
            stall += self._reclaim(self.root, self.used + amount - self.ram)
            if self.used + amount > self.ram:
                process.blocked_on = self.root
                self._global_oom(process)
                return math.inf
        process.rss += amount
        cgroup._add(amount)
        self.used += amount
        self.committed += amount
        if stall:
            cgroup.add_stall(stall)
        if self.any_high:
            stall += self.throttle(process, amount)
        return stall

    def cache_pages(self, process: Process, amount: int) -> float:
        """Charge page cache read by ``process``: against every limit, like anon, but no OOM.

        What reclaim cannot make room for is simply not kept in the cache.
        """
        stall = 0.0
        limited = process.cgroup.over_limit(amount)
        if limited is not None:
            limited.count_event("max")
            stall += self._reclaim(limited, limited.usage + amount - int(limited.memory_max))
        if self.used + amount > self.ram:
            stall += self._reclaim(self.root, self.used + amount - self.ram)
        room = self.ram - self.used
        for node in process.cgroup.ancestors():
            room = min(room, int(min(node.memory_max, 2**62)) - node.usage)
        kept = max(0, min(amount, room))
        process.cache += kept
        process.cgroup._add(kept, cache=kept)
        self.used += kept
        if stall:
            process.cgroup.add_stall(stall)
        return stall

    def throttle(self, process: Process, amount: int) -> float:
        """``memory.high``: reclaim the overage, then the kernel's penalty sleep (§2.3)."""
        worst = process.cgroup.over_high()
        if worst is None:
            return 0.0
        worst.count_event("high")
        stall = self._reclaim(worst, worst.usage - int(worst.memory_high))
        worst = process.cgroup.over_high()
        if worst is not None:
            stall += memory_high_penalty(worst.usage, int(worst.memory_high), amount // PAGE_SIZE)
        if stall:
            process.cgroup.add_stall(stall)
        return stall

    def _reclaim(self, target: Cgroup, amount: int) -> float:
        """Reclaim ``amount`` bytes from ``target``'s subtree; return the stall it costs.

        Page cache first, then anonymous memory to swap, each taken from the processes in
        proportion to what they hold (the kernel scales its scan targets by LRU size); a
        cgroup's ``memory.min`` is never touched, its ``memory.low`` only on a second pass when
        nothing else was left (counting ``low``). Pages taken count as scanned (``pgscan``) in
        the cgroup they came from and its ancestors.
        """
        if amount <= 0:
            return 0.0
        now = self._now()
        freed = {"cache": 0, "cold": 0, "anon": 0}
        for protect_low in (True, False):
            for kind in ("cache", "cold", "anon"):
                need = amount - sum(freed.values())
                if need <= 0:
                    break
                holders = [(p, self._reclaimable(p, kind, protect_low)) for p in target.tasks()]
                total = sum(size for _, size in holders)
                for process, size in holders:
                    if size <= 0:
                        continue
                    share = min(size, -(-need * size // total))
                    if not protect_low and process.cgroup.usage <= max(
                        process.cgroup.memory_low, process.cgroup.memory_min
                    ):
                        process.cgroup.count_event("low")
                    freed[kind] += self._take(process, kind, share, now)
        swapped_out = freed["cold"] + freed["anon"]
        return freed["cache"] / CACHE_RECLAIM_RATE + swapped_out / self.sysctls.swap_rate

    def _reclaimable(self, process: Process, kind: str, protect_low: bool) -> int:
        """What reclaim may take of one process's memory of ``kind`` (cache, or anon to swap)."""
        room = process.cgroup.usage - _protection(process.cgroup, protect_low)
        if room <= 0:
            return 0
        if kind == "cache":
            return min(process.cache, room)
        cold_resident = process.cold - process.cold_swapped
        resident = cold_resident if kind == "cold" else process.rss - cold_resident
        return min(resident, room, self._swap_room(process.cgroup))

    def _take(self, process: Process, kind: str, amount: int, now: float) -> int:
        """Move ``amount`` of a process's page cache out (dropped) or its anon memory to swap."""
        cgroup = process.cgroup
        if kind == "cache":
            amount = min(amount, process.cache)
            process.cache -= amount
            cgroup._add(-amount, cache=-amount)
        else:
            amount = min(amount, process.rss, self._swap_room(cgroup))
            if kind == "cold":
                process.cold_swapped += amount
            process.rss -= amount
            process.swap += amount
            cgroup._add(-amount, swap=amount)
            self.swap_used += amount
        self.used -= amount
        pages = amount // PAGE_SIZE
        if pages:
            for node in cgroup.ancestors():
                node.pgscan += pages
                node.last_reclaim = now
        return amount

    def _swap_room(self, cgroup: Cgroup) -> int:
        """Bytes of anonymous memory ``cgroup`` may still swap out."""
        room = self.swap_total - self.swap_used
        for node in cgroup.ancestors():
            if node.swap_max != UNLIMITED:
                room = min(room, int(node.swap_max) - node.swap)
        return max(0, room)

    # ------------------------------------------------------------------ the OOM killer

    def _victim_in_flight(self, domain: Cgroup) -> bool:
        inside = set(domain.walk())
        return any(v.alive and not v.reaped and v.cgroup in inside for v in self._victims)

    def _memcg_oom(self, process: Process, memcg: Cgroup) -> None:
        """A memcg OOM in ``memcg`` for ``process``'s charge (§1.1, §2.2)."""
        if memcg.oom_kill_disable:
            # cgroup v1 memory.oom_control: no kill; the task sleeps until memory is freed
            memcg.count_event("oom")
            self._kernel(
                "oom_paused",
                f"{process.comm} ({process.pid}) is waiting: {memcg.path} is at its limit "
                "and oom_kill_disable=1",
                memcg.path,
            )
            return
        memcg.count_event("oom")
        if self.sysctls.panic_on_oom == 2:
            self.panic("Out of memory: compulsory panic_on_oom is enabled")
            return
        if self._victim_in_flight(memcg):
            return  # one victim in flight: wait for it to exit or be reaped
        # mem_cgroup_get_max: memory.max plus the swap it may use (swappiness != 0 assumed)
        swap = min(memcg.swap_max, self.swap_total)
        totalpages = max(1, int(memcg.memory_max + swap) // PAGE_SIZE)
        if not self._kill_worst(process, memcg, totalpages):
            self.alloc_failures += 1
            raise AllocationFailed(f"{process.comm}: memcg {memcg.path} has no killable process")

    def _global_oom(self, process: Process) -> None:
        """A global OOM: RAM and swap exhausted (§1.1, §1.2)."""
        if self.sysctls.panic_on_oom in (1, 2):
            self.panic("Out of memory: system-wide panic_on_oom is enabled")
            return
        if self._victim_in_flight(self.root):
            return
        if self.sysctls.oom_kill_allocating_task and process.oom_score_adj != OOM_SCORE_ADJ_MIN:
            self._header(process, None, list(self.root.tasks()))
            self._summary(None, process)
            self._kill(process, "Out of memory (oom_kill_allocating_task)", None)
            return
        if not self._kill_worst(process, None, self.totalpages):
            self.panic("System is deadlocked on memory")

    def _kill_worst(self, allocating: Process, memcg: Cgroup | None, totalpages: int) -> bool:
        """Select and kill (``select_bad_process``, ``oom_kill_process``); False if none."""
        domain = memcg or self.root
        tasks = [task for task in domain.tasks() if not task.reaped]  # MMF_OOM_SKIP
        chosen = select_victim([p.candidate() for p in tasks], totalpages)
        self._header(allocating, memcg, tasks)
        if chosen is None:
            self._kernel("oom_no_victim", "Out of memory and no killable processes...", domain.path)
            return False
        victim = tasks[chosen]
        prefix = "Memory cgroup out of memory" if memcg else "Out of memory"
        self._summary(memcg, victim)
        self._kill(victim, prefix, memcg)
        group = _oom_group(victim.cgroup, domain)
        if group is not None:
            group.count_event("oom_group_kill")
            self._kernel(
                "oom_group_kill",
                f"Tasks in {group.path} are going to be killed due to memory.oom.group set",
                group.path,
            )
            for process in list(group.tasks()):
                if process is not victim and process.oom_score_adj != OOM_SCORE_ADJ_MIN:
                    self._kill(process, prefix, memcg)
        return True

    def _summary(self, memcg: Cgroup | None, victim: Process) -> None:
        """``dump_oom_summary``: the ``oom-kill:constraint=…`` line."""
        self._kernel(
            "oom_summary",
            oom_summary_line(
                memcg.path if memcg else None, victim.cgroup.path, victim.comm, victim.pid
            ),
            victim.cgroup.path,
        )

    def _header(self, allocating: Process, memcg: Cgroup | None, tasks: Sequence[Process]) -> None:
        """``dump_header``: who invoked the killer, the memory state, the task table."""
        domain = memcg.path if memcg is not None else "/"
        self._kernel(
            "oom_invoked",
            f"{allocating.comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, "
            f"oom_score_adj={allocating.oom_score_adj}",
            domain,
        )
        if memcg is not None:
            limit = _kb(memcg.memory_max)
            self._kernel(
                "oom_meminfo",
                f"memory: usage {memcg.usage // 1024}kB, limit {limit}kB, "
                f"failcnt {memcg.events['max']}",
                memcg.path,
            )
            swap_limit = _kb(memcg.swap_max)
            self._kernel(
                "oom_meminfo",
                f"swap: usage {memcg.swap // 1024}kB, limit {swap_limit}kB, failcnt 0",
                memcg.path,
            )
        else:
            self._kernel(
                "oom_meminfo",
                f"Mem-Info: total {self.ram // 1024}kB, used {self.used // 1024}kB, "
                f"swap {self.swap_used // 1024}/{self.swap_total // 1024}kB",
                domain,
            )
        for line in task_table([p.candidate() for p in tasks]):
            self._kernel("oom_tasks", line, domain)

    def _kill(self, process: Process, prefix: str, memcg: Cgroup | None) -> None:
        """``__oom_kill_process``: count, log, SIGKILL; the reaper follows 2 s later."""
        self.oom_kills += 1
        process.cgroup.count_event("oom_kill")
        self._kernel(
            "oom_kill",
            oom_kill_line(
                prefix,
                process.pid,
                process.comm,
                process.rss // 1024,
                process.oom_score_adj,
                process.pgtables // 1024,
                total_vm_kb=(process.rss + process.swap) // 1024,
            ),
            process.cgroup.path,
        )
        if memcg is None and self.kubelet:
            self._kernel(
                "system_oom",
                f"System OOM encountered, victim process: {process.comm}, pid: {process.pid}",
                "kubelet",
            )
        self._victims.add(process)
        self.signal(process, "SIGKILL", "OOMKilled")
        self._schedule(lambda: self._reap(process), OOM_REAPER_DELAY)

    def _reap(self, process: Process) -> None:
        """The OOM reaper: unmap a victim that has not exited yet, and unblock selection."""
        self._victims.discard(process)
        if not process.alive:
            return
        process.reaped = True
        freed = process.rss
        process.cgroup._add(-freed)
        self.used -= freed
        self.swap_used -= process.swap
        process.cgroup._add(0, swap=-process.swap)
        self.committed -= freed + process.swap
        process.rss = process.swap = process.cold = process.cold_swapped = 0
        self._kernel(
            "oom_reaper",
            f"oom_reaper: reaped process {process.pid} ({process.comm}), now anon-rss:0kB, "
            "file-rss:0kB, shmem-rss:0kB",
        )
        process.cgroup.freed(self)

    # ------------------------------------------------------------------ signals, panic

    def signal(self, process: ProcessView, signal: str, reason: str) -> None:
        """Deliver SIGKILL (the process exits after its ``exit_delay``) or SIGTERM (exits now)."""
        assert isinstance(process, Process)
        if not process.alive or process.killed_at is not None:
            return
        process.killed_at = self._now()
        delay = process.exit_delay if signal == "SIGKILL" else 0.0
        why = reason if reason == "OOMKilled" else f"{reason} ({signal})"
        self._schedule(lambda: self.kill(process, why), delay)

    def kill(self, process: Process, reason: str) -> None:
        """``process`` exits now: its memory goes back and its owner learns why."""
        self._victims.discard(process)
        if not process.alive:
            return
        process.exit()
        if process.on_exit is not None:
            process.on_exit(reason)

    def kill_cgroup(self, cgroup: CgroupView, reason: str) -> None:
        """SIGKILL every process in ``cgroup``'s subtree (``cgroup.kill``)."""
        assert isinstance(cgroup, Cgroup)
        for process in list(cgroup.tasks()):
            self.signal(process, "SIGKILL", reason)

    def panic(self, message: str) -> None:
        """``panic()``: the host stops; the world takes everything on it down."""
        self._kernel("kernel_panic", f"Kernel panic - not syncing: {message}")
        self.on_panic()

    # ------------------------------------------------------------------ what tools read

    def mem_available(self) -> int:
        """``MemAvailable``: free RAM plus page cache that reclaim could take."""
        return max(0, self.free + self.root.cache)

    def swap_free(self) -> int:
        """``SwapFree``."""
        return self.swap_total - self.swap_used

    def working_set(self) -> int:
        """Usage minus page cache (the kubelet's working set, cache counted as inactive)."""
        return self.used - self.root.cache

    @property
    def mem_total(self) -> int:
        """``MemTotal``."""
        return self.ram

    def oom_score(self, process: ProcessView) -> int:
        """``/proc/<pid>/oom_score`` (always against RAM + swap)."""
        assert isinstance(process, Process)
        return oom_score(process.candidate(), self.totalpages)

    def cgroup(self, path: str) -> Cgroup:
        """The cgroup at ``path`` (created, with its parents, when missing)."""
        node = self.root
        for part in [p for p in path.split("/") if p]:
            node = node.child(part)
        return node

    def cgroups(self) -> Iterator[Cgroup]:
        """Every cgroup on the host, pre-order."""
        return self.root.walk()

    def update_psi(self) -> None:
        """Close a PSI period for every cgroup (called every :data:`PSI_PERIOD` seconds)."""
        for cgroup in self.root.walk():
            cgroup.psi.update(PSI_PERIOD)


def _protection(cgroup: Cgroup, protect_low: bool) -> int:
    """The usage reclaim must leave ``cgroup``: its ``memory.min``, or ``memory.low`` too."""
    return max(cgroup.memory_min, cgroup.memory_low) if protect_low else cgroup.memory_min


def _oom_group(cgroup: Cgroup, domain: Cgroup) -> Cgroup | None:
    """The highest ancestor of ``cgroup`` within ``domain`` with memory.oom.group set (§2.6)."""
    found = None
    for node in cgroup.ancestors():
        if node.parent is None:
            break
        if node.oom_group:
            found = node
        if node is domain:
            break
    return found


PAGE_COUNTER_MAX_KB = 9007199254740988
"""The limit the kernel prints for an unlimited page counter, kB (``PAGE_COUNTER_MAX``)."""


def _kb(limit: float) -> int:
    """A limit as ``mem_cgroup_print_oom_meminfo`` prints it, in kB."""
    return PAGE_COUNTER_MAX_KB if limit == UNLIMITED else int(limit) // 1024
