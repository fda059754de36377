"""The OOM killer's arithmetic and log lines (reference semantics §1, §3.2; §12 V1, V2, V8)."""

from __future__ import annotations

import pytest

from patterns.oom_killer import (
    OomCandidate,
    container_oom_score_adj,
    oom_badness,
    oom_kill_line,
    oom_score,
    oom_summary_line,
    select_victim,
)

Ki, Mi, Gi = 1024, 1024**2, 1024**3
PAGE = 4096

T_4GI = 4 * Gi // PAGE
"""totalpages of a 4 GiB host without swap: 1,048,576 (V1)."""


def task(pid: int, rss_bytes: int, adj: int, comm: str = "app") -> OomCandidate:
    """A candidate with ``rss_bytes`` of anonymous memory and no swap or page tables."""
    return OomCandidate(pid, comm, rss_bytes // PAGE, 0, 0, adj)


A = task(101, 2 * Gi, -997, "a")
B = task(102, 256 * Mi, 750, "b")
C = task(103, 64 * Mi, 1000, "c")


# --------------------------------------------------------------------------- V1


def test_totalpages_of_a_4gi_host_is_1048576():
    """V1's totalpages: 4 GiB of 4 KiB pages, and the adj unit T/1000 is 1048."""
    assert T_4GI == 1_048_576
    assert T_4GI // 1000 == 1048


def test_badness_is_rss_plus_adj_times_totalpages_per_mille():
    """V1 badness values: rss pages + adj * (T // 1000), negative still a number."""
    assert oom_badness(A, T_4GI) == -520_568
    assert oom_badness(B, T_4GI) == 851_536
    assert oom_badness(C, T_4GI) == 1_064_384


def test_badness_counts_swap_and_page_tables():
    """Swap entries and page-table pages add to rss in the badness."""
    candidate = OomCandidate(
        1, "x", rss_pages=100, swap_pages=20, pgtables_pages=3, oom_score_adj=0
    )
    assert oom_badness(candidate, T_4GI) == 123


def test_adj_is_multiplied_after_integer_division_of_totalpages():
    """``adj * (T // 1000)``, not ``adj * T / 1000``: with T = 1999 one adj step is 1 page."""
    assert oom_badness(task(1, 0, 500), 1999) == 500
    assert oom_badness(task(1, 0, 500), 999) == 0


def test_kill_order_is_c_then_b_then_a():
    """V1: the first OOM kills C, the next B, then A (a negative badness is still eligible)."""
    alive = [A, B, C]
    order = []
    while alive:
        chosen = select_victim(alive, T_4GI)
        assert chosen is not None
        order.append(alive.pop(chosen).comm)
    assert order == ["c", "b", "a"]


def test_oom_score_of_v1_tasks():
    """V1 /proc/<pid>/oom_score: C 1343, B 1208, A 336 (C truncation toward zero)."""
    assert oom_score(C, T_4GI) == 1343
    assert oom_score(B, T_4GI) == 1208
    assert oom_score(A, T_4GI) == 336


def test_oom_score_of_a_task_using_all_memory_with_adj_0_is_1333():
    """§1.7: a task using all memory with adj 0 shows about 1333."""
    assert oom_score(task(1, 4 * Gi, 0), T_4GI) == 1333


def test_oom_score_of_an_idle_task_with_adj_0_is_666():
    """An empty task with adj 0: (1000 + 0) * 2 / 3 = 666."""
    assert oom_score(task(1, 0, 0), T_4GI) == 666


def test_adj_minus_1000_is_ineligible_and_scores_0():
    """-1000 (OOM_SCORE_ADJ_MIN): badness None, oom_score 0."""
    immortal = task(1, 3 * Gi, -1000)
    assert oom_badness(immortal, T_4GI) is None
    assert oom_score(immortal, T_4GI) == 0


def test_adj_minus_1000_is_never_chosen_even_when_alone():
    """V1: a lone -1000 task is not chosen: no killable process (``None``)."""
    assert select_victim([task(1, 3 * Gi, -1000)], T_4GI) is None


def test_adj_minus_1000_is_never_chosen_even_when_largest():
    """The biggest task is skipped when it is -1000; the small killable one dies."""
    candidates = [task(1, 3 * Gi, -1000), task(2, 1 * Mi, -999)]
    assert select_victim(candidates, T_4GI) == 1


def test_select_victim_of_no_candidates_is_none():
    """An empty task list has no victim."""
    assert select_victim([], T_4GI) is None


# --------------------------------------------------------------------------- V2


def test_tie_goes_to_the_later_task_in_scan_order():
    """V2: equal badness -> the later (newer) task dies (``points < chosen`` skips, equal wins)."""
    older, newer = task(1, 100 * Mi, 0), task(2, 100 * Mi, 0)
    assert select_victim([older, newer], T_4GI) == 1
    assert select_victim([newer, older], T_4GI) == 1


def test_tie_among_three_goes_to_the_last():
    """V2 with three equal tasks: the last scanned dies."""
    tasks = [task(pid, 10 * Mi, 0) for pid in (1, 2, 3)]
    assert select_victim(tasks, T_4GI) == 2


def test_a_larger_earlier_task_beats_a_smaller_later_one():
    """Only ties go to the later task; a strictly larger earlier task is kept."""
    assert select_victim([task(1, 101 * Mi, 0), task(2, 100 * Mi, 0)], T_4GI) == 0


# --------------------------------------------------------------------------- V8


@pytest.mark.parametrize(
    ("request_bytes", "capacity", "expected"),
    [
        (1 * Gi, 4 * Gi, 750),
        (4000 * Mi, 4 * Gi, 24),
        (100 * Mi, 16 * Gi, 994),
    ],
)
def test_burstable_adj_is_1000_minus_request_per_mille(request_bytes, capacity, expected):
    """V8: Burstable ``1000 - 1000 * request // capacity``."""
    assert container_oom_score_adj("Burstable", request_bytes, capacity) == expected


def test_burstable_adj_clamps_to_3():
    """V8: a 4095 Mi request on a 4 Gi node computes 1 and is clamped up to 3 (1000 - 997)."""
    assert container_oom_score_adj("Burstable", 4095 * Mi, 4 * Gi) == 3


def test_burstable_adj_of_the_whole_node_clamps_to_3():
    """A request equal to the capacity computes 0 and is clamped to 3."""
    assert container_oom_score_adj("Burstable", 4 * Gi, 4 * Gi) == 3


def test_burstable_adj_of_a_tiny_request_is_999():
    """V8: a 1-byte request computes 1000, lowered to 999 to stay above BestEffort."""
    assert container_oom_score_adj("Burstable", 1, 4 * Gi) == 999


def test_guaranteed_adj_is_minus_997():
    """V8: Guaranteed containers get -997 whatever their size."""
    assert container_oom_score_adj("Guaranteed", 1 * Gi, 4 * Gi) == -997


def test_besteffort_adj_is_1000():
    """V8: BestEffort containers get 1000."""
    assert container_oom_score_adj("BestEffort", 0, 4 * Gi) == 1000


# --------------------------------------------------------------------------- §1.8 log lines


def test_memcg_summary_line_format():
    """§1.8: the CONSTRAINT_MEMCG summary names the OOM domain and the task's cgroup."""
    assert oom_summary_line("/X", "/X/app", "stress", 68061) == (
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/X,task_memcg=/X/app,task=stress,pid=68061,uid=0"
    )


def test_global_summary_line_format():
    """§1.8: the CONSTRAINT_NONE summary says ``global_oom`` instead of an oom_memcg."""
    assert oom_summary_line(None, "/system.slice/batch", "java", 1234) == (
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
        "global_oom,task_memcg=/system.slice/batch,task=java,pid=1234,uid=0"
    )


def test_memcg_kill_line_format():
    """§1.8: ``Memory cgroup out of memory: Killed process …`` with sizes in kB and the adj."""
    assert oom_kill_line("Memory cgroup out of memory", 68061, "stress", 2884696, 872) == (
        "Memory cgroup out of memory: Killed process 68061 (stress) total-vm:2884696kB, "
        "anon-rss:2884696kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:872"
    )


def test_global_kill_line_format():
    """§1.8: a global OOM kill line starts ``Out of memory: Killed process``."""
    line = oom_kill_line("Out of memory", 7, "hog", 1024, -997)
    assert line.startswith("Out of memory: Killed process 7 (hog) total-vm:1024kB, ")
    assert line.endswith(" oom_score_adj:-997")
