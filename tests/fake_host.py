"""A small fake host implementing ``patterns.host_view`` for the user-space OOM killer tests.

Memory is whatever the test sets, at any simulated time (``host.at(t, mem_available=...)``).
``signal`` records ``(t, pid, signal)``; SIGKILL ends a process at once, SIGTERM after the
process's ``term_delay`` (``None``: it ignores SIGTERM). A process that exits gives its RSS back to
``MemAvailable`` when ``release_on_exit`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import simpy

from patterns.oom_killer import OomCandidate, oom_score

GIB = 1024**3
MIB = 1024**2
PAGE = 4096


@dataclass
class FakeProcess:
    """A process; ``oom_score`` overrides the kernel formula when set."""

    pid: int
    comm: str
    rss: int
    oom_score_adj: int = 0
    cgroup_path: str = "/"
    alive: bool = True
    oom_score: int | None = None
    term_delay: float | None = 0.0


@dataclass
class FakeCgroup:
    """A cgroup whose interface files the test writes directly."""

    host: FakeHost
    path: str
    usage: int = 0
    swap_usage: int = 0
    pgscan: int = 0
    last_reclaim: float | None = None
    psi_full: float = 0.0

    def psi_full_avg10(self) -> float:
        """``memory.pressure`` full avg10."""
        return self.psi_full

    def _contains(self, path: str) -> bool:
        return self.path == "/" or path == self.path or path.startswith(self.path + "/")

    def descendants(self) -> list[FakeCgroup]:
        """Every cgroup below this one, pre-order (paths sort that way)."""
        return [
            cgroup
            for path, cgroup in sorted(self.host.cgroups.items())
            if path != self.path and self._contains(path)
        ]

    def processes(self) -> list[FakeProcess]:
        """Live processes in this subtree."""
        return [p for p in self.host.processes() if self._contains(p.cgroup_path)]


@dataclass
class FakeHost:
    """A host with settable memory, a cgroup tree and recorded kills and log lines."""

    env: simpy.Environment
    mem_total: int
    available: int
    swap_total: int = 0
    swap_free_bytes: int = 0
    name: str = "node-a"
    release_on_exit: bool = True
    procs: dict[int, FakeProcess] = field(default_factory=dict)
    cgroups: dict[str, FakeCgroup] = field(default_factory=dict)
    signals: list[tuple[float, int, str]] = field(default_factory=list)
    kills: list[tuple[float, str]] = field(default_factory=list)
    logs: list[tuple[float, str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cgroups.setdefault("/", FakeCgroup(self, "/"))

    # --- test set-up -------------------------------------------------------------------------

    def add_process(self, pid: int, comm: str, rss: int, **kwargs: Any) -> FakeProcess:
        """Add a live process."""
        process = FakeProcess(pid, comm, rss, **kwargs)
        self.procs[pid] = process
        return process

    def add_cgroup(self, path: str, **kwargs: Any) -> FakeCgroup:
        """Add a cgroup (parents are not created implicitly)."""
        cgroup = FakeCgroup(self, path, **kwargs)
        self.cgroups[path] = cgroup
        return cgroup

    def set(self, mem_available: int | None = None, swap_free: int | None = None) -> None:
        """Change ``MemAvailable`` and/or ``SwapFree`` now."""
        if mem_available is not None:
            self.available = mem_available
        if swap_free is not None:
            self.swap_free_bytes = swap_free

    def at(self, t: float, action: Callable[[], None] | None = None, **memory: int) -> None:
        """At simulated time ``t``, run ``action`` and/or set memory (``mem_available=...``)."""

        def change() -> Any:
            yield self.env.timeout(t - self.env.now)
            if memory:
                self.set(**memory)
            if action is not None:
                action()

        self.env.process(change())

    def now(self) -> float:
        """``env.now`` rounded to the microsecond, so sums of 0.1 s compare exactly."""
        return round(self.env.now, 6)

    def lines(self, source: str, *exclude_kinds: str) -> list[tuple[float, str]]:
        """``(t, line)`` logged by ``source``, leaving out the given kinds."""
        return [
            (t, line)
            for t, src, kind, line in self.logs
            if src == source and kind not in exclude_kinds
        ]

    # --- HostView --------------------------------------------------------------------------

    def mem_available(self) -> int:
        """``MemAvailable``."""
        return self.available

    def swap_free(self) -> int:
        """``SwapFree``."""
        return self.swap_free_bytes

    def working_set(self) -> int:
        """Not used by these policies."""
        return self.mem_total - self.available

    def processes(self) -> list[FakeProcess]:
        """Live processes in pid order."""
        return [self.procs[pid] for pid in sorted(self.procs) if self.procs[pid].alive]

    def oom_score(self, process: FakeProcess) -> int:
        """The override, else the kernel's formula over RAM + swap with RSS only."""
        if process.oom_score is not None:
            return process.oom_score
        totalpages = (self.mem_total + self.swap_total) // PAGE
        candidate = OomCandidate(
            process.pid, process.comm, process.rss // PAGE, 0, 0, process.oom_score_adj
        )
        return oom_score(candidate, totalpages)

    def cgroup(self, path: str) -> FakeCgroup:
        """The cgroup at ``path``."""
        return self.cgroups[path]

    def signal(self, process: FakeProcess, signal: str, reason: str) -> None:
        """Record the signal; SIGKILL ends the process now, SIGTERM after its ``term_delay``."""
        self.signals.append((self.now(), process.pid, signal))
        if not process.alive:
            return
        if signal == "SIGKILL":
            self._exit(process)
        elif process.term_delay is not None:
            delay = process.term_delay

            def exit_later() -> Any:
                yield self.env.timeout(delay)
                if process.alive:
                    self._exit(process)

            self.env.process(exit_later())

    def _exit(self, process: FakeProcess) -> None:
        process.alive = False
        if self.release_on_exit:
            self.available = min(self.mem_total, self.available + process.rss)

    def kill_cgroup(self, cgroup: FakeCgroup, reason: str) -> None:
        """Record the group kill and SIGKILL every process below ``cgroup``."""
        self.kills.append((self.now(), cgroup.path))
        for process in cgroup.processes():
            self.signal(process, "SIGKILL", reason)

    def log(self, source: str, kind: str, line: str) -> None:
        """Record a log line with its time."""
        self.logs.append((self.now(), source, kind, line))
