"""The kernel layer: hosts, cgroup v2 memory accounting and processes.

Model and simplifications (``../shared/reference/semantics.md`` §1-§3):

* A :class:`Cgroup` tree per host with hierarchical ``memory.current``, ``memory.max``,
  ``memory.peak``, ``memory.oom.group`` and ``memory.events`` counters. Every charge walks the
  ancestors, as ``try_charge_memcg`` does.
* A charge that leaves some ancestor over its ``memory.max`` triggers a memcg OOM in the *lowest*
  ancestor over its limit; a charge that leaves the host's RAM exhausted triggers a global OOM.
  The charge itself succeeds (the kernel may force-charge past ``memory.max`` briefly) and the
  kill is delivered at the same instant, so a cgroup is never over its limit without an OOM event.
* Not yet modelled (kept for the memory-fidelity work): reclaim of page cache, swap, ``memory.high``
  throttling, PSI, overcommit modes, ``panic_on_oom``. A killed process frees its memory when it
  dies, at the kill instant (no reaper delay).
* Kubernetes layout on cgroup v2: ``/system.slice`` (kubelet, container runtime) and
  ``/kubepods.slice/kubepods-{burstable,besteffort}.slice/<pod>/<container>``; Guaranteed pods sit
  directly under ``kubepods.slice``. ``kubepods.slice`` is limited to node allocatable
  (``enforceNodeAllocatable: [pods]``, the kubelet default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from patterns.oom_killer import (
    OOM_SCORE_ADJ_MIN,
    PAGE_SIZE,
    OomCandidate,
    oom_kill_line,
    oom_summary_line,
    select_victim,
)

if TYPE_CHECKING:
    from sim.recorder import Recorder

UNLIMITED = float("inf")

KILL_EXIT_CODE = 137
"""128 + SIGKILL (9): the exit code of an OOM-killed or SIGKILLed container."""


class Cgroup:
    """One cgroup v2 node with the memory controller's counters."""

    __slots__ = (
        "children",
        "events",
        "memory_max",
        "name",
        "oom_group",
        "parent",
        "path",
        "peak",
        "processes",
        "usage",
    )

    def __init__(self, name: str, parent: Cgroup | None, memory_max: float = UNLIMITED) -> None:
        self.name = name
        self.parent = parent
        self.path: str = "/" if parent is None else f"{parent.path.rstrip('/')}/{name}"
        self.children: list[Cgroup] = []
        self.memory_max = memory_max
        self.oom_group = False
        self.usage = 0
        self.peak = 0
        self.processes: list[Process] = []
        self.events = {"max": 0, "oom": 0, "oom_kill": 0, "oom_group_kill": 0}
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
        node: Cgroup | None = self
        while node is not None:
            yield node
            node = node.parent

    def walk(self) -> Iterator[Cgroup]:
        """This cgroup and its descendants, pre-order (the kernel's css scan order)."""
        yield self
        for child in self.children:
            yield from child.walk()

    def tasks(self) -> Iterator[Process]:
        """Live processes in this subtree, in scan order."""
        for cgroup in self.walk():
            yield from (p for p in cgroup.processes if p.alive)

    def count_event(self, name: str) -> None:
        """Count a ``memory.events`` entry here and in every ancestor (the file is hierarchical)."""
        node: Cgroup | None = self
        while node is not None:
            node.events[name] += 1
            node = node.parent

    def charge(self, amount: int) -> Cgroup | None:
        """Add ``amount`` bytes up the tree; return the lowest ancestor now over its limit."""
        over = None
        node: Cgroup | None = self
        while node is not None:
            usage = node.usage + amount
            node.usage = usage
            if usage > node.peak:
                node.peak = usage
            if over is None and usage > node.memory_max:
                over = node
            node = node.parent
        return over

    def uncharge(self, amount: int) -> None:
        """Remove ``amount`` bytes up the tree."""
        node: Cgroup | None = self
        while node is not None:
            node.usage -= amount
            node = node.parent


class Process:
    """A process: pid, command, cgroup, resident memory and ``oom_score_adj``.

    ``on_kill(reason)`` is called when the kernel kills it (the owner of the process, e.g. a
    container, decides what dying means for it).
    """

    __slots__ = ("alive", "cgroup", "comm", "host", "on_kill", "oom_score_adj", "pid", "rss")

    def __init__(
        self,
        host: Host,
        pid: int,
        comm: str,
        cgroup: Cgroup,
        oom_score_adj: int,
        on_kill: Callable[[str], None] | None,
    ) -> None:
        self.host = host
        self.pid = pid
        self.comm = comm
        self.cgroup = cgroup
        self.oom_score_adj = oom_score_adj
        self.on_kill = on_kill
        self.rss = 0
        self.alive = True

    def charge(self, amount: int) -> None:
        """Allocate ``amount`` bytes (a no-op once the process is dead)."""
        if not self.alive or amount == 0:
            return
        self.rss += amount
        over = self.cgroup.charge(amount)
        host = self.host
        host.used += amount
        if over is not None:
            over.count_event("max")
            host.oom(self, over)
        elif host.used > host.ram:
            host.oom(self, None)

    def uncharge(self, amount: int) -> None:
        """Free ``amount`` bytes (a no-op once the process is dead)."""
        if not self.alive or amount == 0:
            return
        self.rss -= amount
        self.cgroup.uncharge(amount)
        self.host.used -= amount

    def exit(self) -> None:
        """The process ends: its memory goes back to the host."""
        if not self.alive:
            return
        self.cgroup.uncharge(self.rss)
        self.host.used -= self.rss
        self.rss = 0
        self.alive = False
        self.cgroup.processes.remove(self)


class Host:
    """A machine with RAM, a cgroup tree, a process table and a kernel log.

    Kills are delivered through ``schedule(callback)``, which runs the callback at the current
    instant after the allocating code has returned, as a SIGKILL would be.
    """

    def __init__(
        self,
        name: str,
        ram: int,
        cpus: float,
        recorder: Recorder,
        schedule: Callable[[Callable[[], None]], None],
        now: Callable[[], float],
    ) -> None:
        self.name = name
        self.ram = ram
        self.cpus = cpus
        self.used = 0
        self.up = True
        self.root = Cgroup("", None)
        self.processes: list[Process] = []
        self.next_pid = 1000
        self.oom_kills = 0
        self._recorder = recorder
        self._schedule = schedule
        self._now = now
        self._victims: set[Process] = set()

    def spawn(
        self,
        comm: str,
        cgroup: Cgroup,
        oom_score_adj: int = 0,
        on_kill: Callable[[str], None] | None = None,
    ) -> Process:
        """Start a process in ``cgroup`` with the next pid."""
        self.next_pid += 1
        process = Process(self, self.next_pid, comm, cgroup, oom_score_adj, on_kill)
        cgroup.processes.append(process)
        self.processes = [p for p in self.processes if p.alive]
        self.processes.append(process)
        return process

    def oom(self, allocating: Process, memcg: Cgroup | None) -> None:
        """Run the OOM killer for a charge by ``allocating`` (memcg OOM when ``memcg`` is set)."""
        domain = memcg or self.root
        if memcg is not None:
            memcg.count_event("oom")
        if any(v.alive and v.cgroup in set(domain.walk()) for v in self._victims):
            return  # one victim in flight: wait for it to die before choosing another
        if memcg is not None:
            totalpages = max(1, int(memcg.memory_max) // PAGE_SIZE)
        else:
            totalpages = max(1, self.ram // PAGE_SIZE)
        tasks = list(domain.tasks())
        candidates = [
            OomCandidate(p.pid, p.comm, p.rss // PAGE_SIZE, 0, 0, p.oom_score_adj) for p in tasks
        ]
        chosen = select_victim(candidates, totalpages)
        now = self._now()
        entity = memcg.path if memcg else self.name
        if chosen is None:
            self._recorder.event(
                now,
                self.name,
                entity,
                "oom_no_victim",
                "Out of memory and no killable processes...",
            )
            return
        victim = tasks[chosen]
        self._recorder.event(
            now,
            self.name,
            victim.cgroup.path,
            "oom_invoked",
            f"{allocating.comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, "
            f"oom_score_adj={allocating.oom_score_adj}",
        )
        self._recorder.event(
            now,
            self.name,
            victim.cgroup.path,
            "oom_summary",
            oom_summary_line(
                memcg.path if memcg else None, victim.cgroup.path, victim.comm, victim.pid
            ),
        )
        prefix = "Memory cgroup out of memory" if memcg else "Out of memory"
        self._oom_kill(victim, prefix, now)
        group = self._oom_group(victim.cgroup, domain)
        if group is not None:
            group.count_event("oom_group_kill")
            self._recorder.event(
                now,
                self.name,
                group.path,
                "oom_group_kill",
                f"Tasks in {group.path} are going to be killed due to memory.oom.group set",
            )
            for process in list(group.tasks()):
                if process is not victim and process.oom_score_adj != OOM_SCORE_ADJ_MIN:
                    self._oom_kill(process, prefix, now)

    def _oom_kill(self, process: Process, prefix: str, now: float) -> None:
        """``__oom_kill_process``: count, log, and deliver SIGKILL at this instant."""
        self.oom_kills += 1
        process.cgroup.count_event("oom_kill")
        self._recorder.event(
            now,
            self.name,
            process.cgroup.path,
            "oom_kill",
            oom_kill_line(
                prefix, process.pid, process.comm, process.rss // 1024, process.oom_score_adj
            ),
        )
        self._victims.add(process)
        self._schedule(functools.partial(self.kill, process, "OOMKilled"))

    @staticmethod
    def _oom_group(cgroup: Cgroup, domain: Cgroup) -> Cgroup | None:
        """The highest ancestor of ``cgroup`` within ``domain`` with memory.oom.group set."""
        found = None
        for node in cgroup.ancestors():
            if node.parent is None:
                break
            if node.oom_group:
                found = node
            if node is domain:
                break
        return found

    def kill(self, process: Process, reason: str) -> None:
        """SIGKILL ``process``: it exits and its owner learns why."""
        self._victims.discard(process)
        if not process.alive:
            return
        process.exit()
        if process.on_kill is not None:
            process.on_kill(reason)

    def cgroups(self) -> Iterator[Cgroup]:
        """Every cgroup on the host, pre-order."""
        return self.root.walk()
