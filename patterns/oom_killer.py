"""The kernel OOM killer's victim choice and log lines.

Source: torvalds/linux ``mm/oom_kill.c`` (``oom_badness``, ``select_bad_process``,
``oom_evaluate_task``, ``__oom_kill_process``, ``dump_oom_summary``); see
``../shared/reference/semantics.md`` §1.3, §1.4, §1.7, §1.8.

Pure functions over plain numbers: the kernel layer (``sim/kernel.py``) collects the candidates
and applies the kill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

PAGE_SIZE = 4096
"""Bytes per page on x86-64."""

OOM_SCORE_ADJ_MIN = -1000
"""``oom_score_adj`` that makes a task unkillable (include/uapi/linux/oom.h)."""


class OomCandidate(NamedTuple):
    """What ``oom_badness`` reads of a task: memory in pages, and its ``oom_score_adj``."""

    pid: int
    comm: str
    rss_pages: int
    swap_pages: int
    pgtables_pages: int
    oom_score_adj: int


def oom_badness(candidate: OomCandidate, totalpages: int) -> int | None:
    """The kernel's badness of a task, or ``None`` when it is ineligible (adj -1000).

    ``points = rss + swap + page tables + adj * (totalpages // 1000)``; negative is still eligible.
    """
    if candidate.oom_score_adj == OOM_SCORE_ADJ_MIN:
        return None
    points = candidate.rss_pages + candidate.swap_pages + candidate.pgtables_pages
    return points + candidate.oom_score_adj * (totalpages // 1000)


def select_victim(candidates: Sequence[OomCandidate], totalpages: int) -> int | None:
    """Index of the task the OOM killer chooses, or ``None`` when none is killable.

    Candidates are in scan order; on a tie the *later* task wins (``points < chosen`` skips, equal
    replaces), as in ``oom_evaluate_task``.
    """
    chosen, chosen_points = None, None
    for index, candidate in enumerate(candidates):
        points = oom_badness(candidate, totalpages)
        if points is None or (chosen_points is not None and points < chosen_points):
            continue
        chosen, chosen_points = index, points
    return chosen


def oom_score(candidate: OomCandidate, system_totalpages: int) -> int:
    """``/proc/<pid>/oom_score``: ``(1000 + badness * 1000 / totalpages) * 2 / 3``, C truncation."""
    points = oom_badness(candidate, system_totalpages)
    if points is None:
        return 0
    scaled = 1000 + int(points * 1000 / system_totalpages)
    return max(0, int(scaled * 2 / 3))


def oom_summary_line(oom_memcg: str | None, task_memcg: str, comm: str, pid: int) -> str:
    """The ``oom-kill:constraint=…`` summary line of ``dump_oom_summary``."""
    if oom_memcg is not None:
        scope = f"CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={oom_memcg}"
    else:
        scope = "CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom"
    return f"oom-kill:constraint={scope},task_memcg={task_memcg},task={comm},pid={pid},uid=0"


def oom_kill_line(
    prefix: str,
    pid: int,
    comm: str,
    rss_kb: int,
    oom_score_adj: int,
    pgtables_kb: int = 0,
    total_vm_kb: int | None = None,
) -> str:
    """The ``Killed process …`` line of ``__oom_kill_process``.

    ``total-vm`` is resident plus swapped (the model keeps no separate virtual size), as in the
    task table; it defaults to the resident size.
    """
    total_vm = rss_kb if total_vm_kb is None else total_vm_kb
    return (
        f"{prefix}: Killed process {pid} ({comm}) total-vm:{total_vm}kB, anon-rss:{rss_kb}kB, "
        f"file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:{pgtables_kb}kB "
        f"oom_score_adj:{oom_score_adj}"
    )


def task_table(candidates: Sequence[OomCandidate]) -> list[str]:
    """``dump_tasks``: the task table printed before a kill (``vm.oom_dump_tasks=1``, default).

    Memory values in pages; ``total_vm`` is shown as rss + swap (no separate virtual size).
    """
    lines = [
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    ]
    for c in candidates:
        total_vm = c.rss_pages + c.swap_pages
        lines.append(
            f"[{c.pid:>7}] {0:>5} {c.pid:>5} {total_vm:>8} {c.rss_pages:>8} "
            f"{c.pgtables_pages * PAGE_SIZE:>14} {c.swap_pages:>8} {c.oom_score_adj:>13} {c.comm}"
        )
    return lines


MEMCG_MAX_HIGH_DELAY = 2.0
"""Longest ``memory.high`` throttling sleep, seconds (``MEMCG_MAX_HIGH_DELAY_JIFFIES = 2*HZ``)."""

HIGH_DELAY_FLOOR = 0.01
"""Penalties up to this many seconds are not slept (``HZ/100``, mem_cgroup_handle_over_high)."""

MEMCG_CHARGE_BATCH = 64
"""Pages per charge batch the penalty is scaled to (``MEMCG_CHARGE_BATCH``)."""


def memory_high_penalty(usage: int, high: int, nr_pages: int) -> float:
    """Seconds a task sleeps for charging ``nr_pages`` over ``memory.high`` (§2.3).

    ``calculate_high_delay``: overage = ((usage - high) << 20) / high; penalty per 64-page batch
    = overage^2 * HZ >> 20 >> 14 jiffies, i.e. 64 s * r^2 with r = (usage - high) / high; scaled
    by ``nr_pages / 64``, capped at 2 s, and no sleep at or below 10 ms.
    """
    if usage <= high:
        return 0.0
    overage = ((usage - high) << 20) // max(high, 1)
    per_batch = overage * overage / float(1 << 34)
    penalty = min(per_batch * max(nr_pages, 1) / MEMCG_CHARGE_BATCH, MEMCG_MAX_HIGH_DELAY)
    return 0.0 if penalty <= HIGH_DELAY_FLOOR else penalty


KUBELET_OOM_SCORE_ADJ = -999
"""``oom_score_adj`` of the kubelet and kube-proxy (pkg/kubelet/qos/policy.go)."""
PAUSE_OOM_SCORE_ADJ = -998
"""``oom_score_adj`` of the pod sandbox (pause) container (containerd CRI)."""
GUARANTEED_OOM_SCORE_ADJ = -997
BESTEFFORT_OOM_SCORE_ADJ = 1000


def container_oom_score_adj(qos_class: str, memory_request: int, node_capacity: int) -> int:
    """The kubelet's ``GetContainerOOMScoreAdjust`` for a regular container.

    Guaranteed -997, BestEffort 1000, Burstable ``1000 - 1000 * request // capacity`` clamped to
    3..999 (pkg/kubelet/qos/policy.go; reference §3.2).
    """
    if qos_class == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos_class == "BestEffort":
        return BESTEFFORT_OOM_SCORE_ADJ
    adj = 1000 - (1000 * memory_request) // node_capacity
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if adj == BESTEFFORT_OOM_SCORE_ADJ:
        return BESTEFFORT_OOM_SCORE_ADJ - 1
    return adj
