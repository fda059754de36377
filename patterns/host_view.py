"""What host-level memory policies see of a host, and what they may do to it.

The user-space killers (``patterns/earlyoom.py``, ``patterns/systemd_oomd.py``) and the kubelet's
eviction manager (``patterns/eviction.py``) are policies beside the kernel: they poll a host's
memory state and kill processes, cgroups or pods. They see the host only through these protocols,
which ``sim/kernel.py`` implements, so each policy is unit-testable on a bare
``simpy.Environment`` with a small fake host.

Units: bytes, seconds, percentages 0..100 for PSI (as ``/proc/pressure`` prints them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ProcessView(Protocol):
    """A live process as ``/proc/<pid>`` shows it."""

    @property
    def pid(self) -> int:
        """Process id."""

    @property
    def comm(self) -> str:
        """Command name."""

    @property
    def oom_score_adj(self) -> int:
        """``/proc/<pid>/oom_score_adj`` (-1000..1000)."""

    @property
    def rss(self) -> int:
        """Resident anonymous memory, bytes (``VmRSS``)."""

    @property
    def cgroup_path(self) -> str:
        """The cgroup the process is in, e.g. ``/kubepods.slice/pod-a/app``."""

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""


class CgroupView(Protocol):
    """A cgroup as its interface files show it."""

    @property
    def path(self) -> str:
        """Absolute path, ``/`` for the root."""

    @property
    def usage(self) -> int:
        """``memory.current``: bytes charged to the cgroup and its descendants."""

    @property
    def swap_usage(self) -> int:
        """``memory.swap.current``."""

    @property
    def pgscan(self) -> int:
        """Pages scanned by reclaim in this subtree so far (``memory.stat`` pgscan), cumulative."""

    @property
    def last_reclaim(self) -> float | None:
        """When reclaim last ran in this subtree (None: never)."""

    def psi_full_avg10(self) -> float:
        """``memory.pressure`` ``full avg10``, percent."""

    def descendants(self) -> Sequence[CgroupView]:
        """Every cgroup below this one (not itself), pre-order."""

    def processes(self) -> Sequence[ProcessView]:
        """Live processes in this cgroup and its descendants."""


class HostView(Protocol):
    """A host's memory as ``/proc/meminfo`` and the cgroup tree show it, and how to kill."""

    @property
    def name(self) -> str:
        """Host name, for log lines."""

    @property
    def mem_total(self) -> int:
        """``MemTotal``."""

    def mem_available(self) -> int:
        """``MemAvailable``: free RAM plus reclaimable page cache."""

    @property
    def swap_total(self) -> int:
        """``SwapTotal``."""

    def swap_free(self) -> int:
        """``SwapFree``."""

    def working_set(self) -> int:
        """Memory in use that reclaim cannot easily take: usage minus inactive file cache."""

    def processes(self) -> Sequence[ProcessView]:
        """Every live process, in pid order."""

    def oom_score(self, process: ProcessView) -> int:
        """``/proc/<pid>/oom_score`` of a process (system totalpages)."""

    def cgroup(self, path: str) -> CgroupView:
        """The cgroup at ``path``."""

    def signal(self, process: ProcessView, signal: str, reason: str) -> None:
        """Send ``SIGTERM`` or ``SIGKILL`` to a process; ``reason`` names who sent it."""

    def kill_cgroup(self, cgroup: CgroupView, reason: str) -> None:
        """SIGKILL every process in a cgroup subtree (``cgroup.kill``)."""

    def log(self, source: str, kind: str, line: str) -> None:
        """Write a line to the host's log as ``source`` (``earlyoom``, ``systemd-oomd``...)."""
