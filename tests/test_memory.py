"""Memory fidelity: reaper, reclaim, swap, memory.high, protection, overcommit, panic, PSI.

Reference ``semantics.md`` §1, §2, §3.4 and §12 V1, V3-V7, V9; hosts on the hand-cranked clock
of ``test_kernel.Machine``, containers in a :class:`sim.world.World`.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from test_kernel import Machine, counters

from patterns.oom_killer import memory_high_penalty
from sim.kernel import (
    CACHE_RECLAIM_RATE,
    OOM_REAPER_DELAY,
    AllocationFailed,
    Cgroup,
    Psi,
    Sysctls,
)
from sim.scenario import Scenario
from sim.world import World

Ki, Mi, Gi = 1024, 1024**2, 1024**3


def reaper_line(pid: int, comm: str) -> str:
    """The OOM reaper's success line (§1.6)."""
    return (
        f"oom_reaper: reaped process {pid} ({comm}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
    )


def waker(m: Machine, woken: list[float]):
    """A ``wait_for_memory`` callback that records when it was called."""
    return lambda: woken.append(m.t)


# --------------------------------------------------------------------------- V3 in flight


def v3() -> tuple[Machine, Cgroup, dict]:
    """V4's X (512 Mi, swap.max 0) with p1 400 Mi and p2 100 Mi; p1 takes 5 s to exit."""
    m = Machine()
    x = m.host.root.child("X", 512 * Mi)
    x.swap_max = 0
    procs = {"p1": m.spawn("p1", x, 400 * Mi), "p2": m.spawn("p2", x, 100 * Mi)}
    procs["p1"].exit_delay = 5.0
    return m, x, procs


def test_v3_second_failure_100ms_after_the_kill_kills_nobody():
    """V3: p1 is killed at 0 (exits at 5 s); p2's over-limit charge at 0.1 s waits, no new kill."""
    m, x, procs = v3()
    assert procs["p1"].charge(20 * Mi) == math.inf
    m.deliver(until=0.1)
    assert procs["p1"].alive
    assert procs["p1"].killed_at == 0.0
    assert procs["p2"].charge(20 * Mi) == math.inf
    assert len(m.events("oom_kill")) == 1
    assert len(m.events("oom_invoked")) == 1
    # oom counts every invocation, the one that found a victim in flight too
    assert x.events == counters(max=2, oom=2, oom_kill=1)
    assert m.killed == []
    assert (procs["p2"].rss, x.usage) == (100 * Mi, 500 * Mi)


def test_v3_the_reaper_at_2s_frees_the_victim_and_wakes_the_waiter():
    """V3: at 2 s the reaper frees p1's anon memory, logs, wakes p2; p2's retry succeeds."""
    m, x, procs = v3()
    p1, p2 = procs["p1"], procs["p2"]
    p1.charge(20 * Mi)
    m.deliver(until=0.1)
    assert p2.charge(20 * Mi) == math.inf
    woken: list[float] = []
    p2.wait_for_memory(waker(m, woken))
    m.deliver(until=OOM_REAPER_DELAY - 0.01)
    assert (woken, m.events("oom_reaper")) == ([], [])
    m.deliver(until=OOM_REAPER_DELAY)
    assert woken == [OOM_REAPER_DELAY]
    assert m.events("oom_reaper") == [("oom_reaper", "kernel", reaper_line(p1.pid, "p1"))]
    assert (p1.alive, p1.reaped, p1.rss, x.usage, m.host.used) == (
        True,
        True,
        0,
        100 * Mi,
        100 * Mi,
    )
    assert p2.charge(20 * Mi) == 0.0
    m.deliver(until=5.0)  # p1 finally exits; it had nothing left to free
    assert m.killed == [("p1", "OOMKilled")]
    assert x.usage == 120 * Mi


def test_v3_only_after_the_reaper_can_a_second_process_be_killed():
    """V3: before 2 s an OOM kills nobody; after the reaper, the next OOM kills p2."""
    m, x, procs = v3()
    procs["p1"].charge(20 * Mi)
    m.deliver(until=1.9)
    assert procs["p2"].charge(500 * Mi) == math.inf
    assert len(m.events("oom_kill")) == 1
    m.deliver(until=2.1)
    assert procs["p2"].charge(500 * Mi) == math.inf
    kills = [detail for _, _, detail in m.events("oom_kill")]
    assert len(kills) == 2
    assert kills[1].startswith(
        f"Memory cgroup out of memory: Killed process {procs['p2'].pid} (p2)"
    )
    assert x.events == counters(max=3, oom=3, oom_kill=2)  # one invocation found p1 in flight
    m.deliver(until=2.1)
    assert m.killed == [("p2", "OOMKilled")]


def test_a_reaped_victim_is_not_chosen_again():
    """§1.4: after the reaper, a still-exiting victim (MMF_OOM_SKIP) is skipped by selection."""
    m = Machine()
    x = m.host.root.child("X", 512 * Mi)
    x.swap_max = 0
    p1 = m.spawn("p1", x, 300 * Mi, adj=1000)
    p1.exit_delay = 5.0
    p2 = m.spawn("p2", x, 200 * Mi)
    p2.charge(20 * Mi)  # kills p1 (adj 1000)
    m.deliver(until=2.5)  # p1 reaped, still exiting
    p2.charge(400 * Mi)
    m.deliver(until=2.5)
    assert m.killed == [("p2", "OOMKilled")]


# --------------------------------------------------------------------------- V4-V6


def test_v4_memcg_oom_scope_totalpages_and_events():
    """V4: only X's tasks are candidates; p1's kill line and X's events max 1, oom 1, kill 1."""
    m = Machine(ram=8 * Gi)
    x = m.host.root.child("X", 512 * Mi)
    x.swap_max = 0
    big = m.spawn("big", m.host.root.child("other"), 3 * Gi)
    p1 = m.spawn("p1", x, 400 * Mi)
    p2 = m.spawn("p2", x, 100 * Mi, adj=587)
    # totalpages 131,072 -> 131 per adj point: p2 = 25,600 + 50 + 587 * 131 = 102,547 < p1's
    # 102,400 + 200 = 102,600; with the host's 2,097,152 pages p2 would win (587 * 2097)
    p1.charge(20 * Mi)
    m.deliver()
    assert m.killed == [("p1", "OOMKilled")]
    assert big.alive
    assert p2.alive
    assert "oom_memcg=/X,task_memcg=/X,task=p1" in m.events("oom_summary")[0][2]
    assert m.events("oom_kill")[0][2].startswith("Memory cgroup out of memory: Killed process")
    assert x.events == counters(max=1, oom=1, oom_kill=1)
    assert m.host.root.child("other").events == counters()


def test_memcg_totalpages_include_the_swap_the_cgroup_may_use():
    """§1.3: memcg totalpages = memory.max + min(swap.max, swap) -> p2 (adj 550) is the victim."""
    m = Machine(ram=8 * Gi, swap=64 * Mi)
    x = m.host.root.child("X", 512 * Mi)
    p1 = m.spawn("p1", x, 400 * Mi)
    m.spawn("p2", x, 100 * Mi, adj=550)
    # reclaim swaps 64 Mi of p1 out, then OOM; p1 = 86,016 + 16,384 + 200 = 102,600;
    # p2 = 25,650 + 550 * 147 = 106,500 (with 131 per point it would be 97,700)
    assert p1.charge(100 * Mi) == math.inf
    m.deliver()
    assert m.killed == [("p2", "OOMKilled")]


def test_v5_oom_group_kills_two_and_spares_the_unkillable():
    """V5: oom.group on X, three tasks, one -1000: two killed, oom_kill 2, group kill 1."""
    m = Machine()
    x = m.host.root.child("X", 512 * Mi)
    x.oom_group = True
    procs = {
        "p1": m.spawn("p1", x, 300 * Mi),
        "p2": m.spawn("p2", x, 100 * Mi),
        "p3": m.spawn("p3", x, 100 * Mi, adj=-1000),
    }
    procs["p1"].charge(20 * Mi)
    m.deliver()
    assert m.killed == [("p1", "OOMKilled"), ("p2", "OOMKilled")]
    assert procs["p3"].alive
    assert x.events == counters(max=1, oom=1, oom_kill=2, oom_group_kill=1)
    assert [d for _, _, d in m.events("oom_group_kill")] == [
        "Tasks in /X are going to be killed due to memory.oom.group set"
    ]
    # every group member gets its own reaper
    assert sorted(t for t, _, _ in m.pending) == [OOM_REAPER_DELAY, OOM_REAPER_DELAY]


@pytest.mark.parametrize(
    ("domain", "dead"), [("A", {"in-a", "in-b", "in-c"}), ("B", {"in-b", "in-c"})]
)
def test_v6_nested_oom_group(domain: str, dead: set[str]):
    """V6: oom.group on A and B; domain A kills A's subtree, domain B only B's."""
    m = Machine()
    a = m.host.root.child("A")
    b = a.child("B")
    c = b.child("C")
    a.oom_group = b.oom_group = True
    {"A": a, "B": b}[domain].memory_max = 500 * Mi
    procs = {
        "in-a": m.spawn("in-a", a, 10 * Mi),
        "in-b": m.spawn("in-b", b, 10 * Mi),
        "in-c": m.spawn("in-c", c, 400 * Mi),
    }
    procs["in-c"].charge(100 * Mi)
    m.deliver()
    assert {n for n, p in procs.items() if not p.alive} == dead
    group = "/A" if domain == "A" else "/A/B"
    assert m.events("oom_group_kill")[0][1] == group


# --------------------------------------------------------------------------- V7 memory.high


V7_TABLE = [
    (100, 0.0),
    (101, 0.0),
    (102, 0.025),
    (104, 0.102),
    (105, 0.160),
    (110, 0.640),
    (115, 1.440),
    (117, 1.850),
    (118, 2.0),
    (200, 2.0),
]
"""(usage Mi, seconds) over memory.high 100 Mi per 64-page batch: the kernel's own table (§2.3)."""


@pytest.mark.parametrize(("usage_mi", "seconds"), V7_TABLE)
def test_v7_memory_high_penalty_table(usage_mi: int, seconds: float):
    """V7 / §2.3: penalty per 64-page batch over high 100 Mi (6 ms is under the 10 ms floor)."""
    assert memory_high_penalty(usage_mi * Mi, 100 * Mi, 64) == pytest.approx(seconds, abs=1e-3)


def test_v7_penalty_scales_with_the_charge_and_caps_at_2s():
    """§2.3: the penalty is scaled by nr_pages / 64, and capped at 2 s."""
    assert memory_high_penalty(105 * Mi, 100 * Mi, 32) == pytest.approx(0.080, abs=1e-3)
    assert memory_high_penalty(110 * Mi, 100 * Mi, 640) == 2.0


def test_v7_throttling_through_the_host_counts_high():
    """V7: charging 64 pages that end at 105 Mi over high 100 Mi sleeps ~160 ms, counts high."""
    m = Machine()
    x = m.host.root.child("X")
    m.host.set_memory_high(x, 100 * Mi)
    p = m.spawn("p", x, 105 * Mi - 256 * Ki)
    assert x.events["high"] == 1  # the first charge was over high too (penalty > 2 s cap)
    stall = p.charge(256 * Ki)
    assert stall == pytest.approx(0.160, abs=1e-3)
    assert x.events == counters(high=2)
    assert p.charge(256 * Ki) == pytest.approx(memory_high_penalty(x.usage, 100 * Mi, 64))


def test_v7_memory_high_never_kills():
    """V7: far over memory.high (300 Mi over 100 Mi): 2 s stalls, no OOM, no max event."""
    m = Machine()
    x = m.host.root.child("X")
    m.host.set_memory_high(x, 100 * Mi)
    p = m.spawn("p", x, 0)
    stalls = [p.charge(50 * Mi) for _ in range(6)]
    assert stalls == [0.0, 0.0, 2.0, 2.0, 2.0, 2.0]
    assert p.alive
    assert x.usage == 300 * Mi
    assert x.events == counters(high=4)
    assert m.pending == []
    assert m.events() == []


def test_memory_high_reclaims_cache_before_sleeping():
    """§2.3: over high, the task first reclaims the overage (cache); back under high: no sleep."""
    m = Machine()
    x = m.host.root.child("X")
    m.host.set_memory_high(x, 100 * Mi)
    p = m.spawn("p", x, 60 * Mi)
    p.read_file(40 * Mi)
    stall = p.charge(10 * Mi)
    assert stall == pytest.approx(10 * Mi / CACHE_RECLAIM_RATE)
    assert (x.usage, x.cache, p.cache) == (100 * Mi, 30 * Mi, 30 * Mi)
    assert x.events == counters(high=1)


def test_memory_high_throttling_counts_as_memory_pressure():
    """§2.8: a memory.high sleep is a memory stall in the cgroup's PSI."""
    m = Machine()
    x = m.host.root.child("X")
    m.host.set_memory_high(x, 100 * Mi)
    p = m.spawn("p", x, 100 * Mi)
    assert p.charge(10 * Mi) == 2.0
    assert x.psi.stall == 2.0


# --------------------------------------------------------------------------- reclaim and swap


def test_page_cache_is_reclaimed_before_an_oom():
    """§2.7: usage near the limit is mostly cache: the charge reclaims it, no OOM; max counted."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    p = m.spawn("p", x, 50 * Mi)
    assert p.read_file(40 * Mi) == 0.0
    assert (x.usage, x.cache) == (90 * Mi, 40 * Mi)
    stall = p.charge(30 * Mi)
    assert stall == pytest.approx(20 * Mi / CACHE_RECLAIM_RATE)
    assert (x.usage, x.cache, p.rss, p.cache) == (100 * Mi, 20 * Mi, 80 * Mi, 20 * Mi)
    assert x.events == counters(max=1)
    assert x.psi.stall == pytest.approx(stall)
    assert m.events() == []


def test_anon_memory_is_swapped_out_then_the_process_thrashes():
    """§2.4: with swap, over-limit anon goes to swap at swap_rate; refaults stall the task."""
    m = Machine(swap=1 * Gi)
    x = m.host.root.child("X", 100 * Mi)
    p = m.spawn("p", x, 100 * Mi)
    stall = p.charge(20 * Mi)
    assert stall == pytest.approx(20 * Mi / (200 * Mi))  # 0.1 s
    assert (p.rss, p.swap, x.usage, x.swap) == (100 * Mi, 20 * Mi, 100 * Mi, 20 * Mi)
    assert (m.host.used, m.host.swap_used, m.host.committed) == (100 * Mi, 20 * Mi, 120 * Mi)
    assert p.pgtables == 120 * Mi // 512
    # a 10 ms hop with 1/6 of its memory swapped out stalls 10 ms * 1/6 * thrash_factor 10
    assert p.refault_stall(0.010) == pytest.approx(0.010 * (20 / 120) * 10)
    assert x.psi.stall == pytest.approx(0.1 + 0.010 * (20 / 120) * 10)
    assert m.events() == []


def test_swap_max_limits_swap_out_then_oom():
    """§2.4: memory.swap.max 10 Mi: 10 Mi swapped out, the remaining 10 Mi overage is an OOM."""
    m = Machine(swap=1 * Gi)
    x = m.host.root.child("X", 100 * Mi)
    x.swap_max = 10 * Mi
    p = m.spawn("p", x, 100 * Mi)
    assert p.charge(20 * Mi) == math.inf
    assert (p.swap, x.swap) == (10 * Mi, 10 * Mi)
    m.deliver()
    assert m.killed == [("p", "OOMKilled")]
    assert (x.usage, x.swap, m.host.swap_used) == (0, 0, 0)


def test_uncharge_frees_resident_then_swapped_memory():
    """Freeing anon memory gives back resident pages first, then swap entries."""
    m = Machine(swap=1 * Gi)
    x = m.host.root.child("X", 100 * Mi)
    p = m.spawn("p", x, 100 * Mi)
    p.charge(20 * Mi)
    p.uncharge(110 * Mi)
    assert (p.rss, p.swap, x.usage, x.swap, m.host.swap_used) == (0, 10 * Mi, 0, 10 * Mi, 10 * Mi)


def test_memory_min_is_never_reclaimed_and_low_only_last():
    """§2.1: reclaim takes C first, B (low) only when nothing else is left, A (min) never."""
    m = Machine(swap=1 * Gi)
    x = m.host.root.child("X", 300 * Mi)
    a, b, c = x.child("A"), x.child("B"), x.child("C")
    a.memory_min = 100 * Mi
    b.memory_low = 100 * Mi
    pa, pb, pc = m.spawn("pa", a, 100 * Mi), m.spawn("pb", b, 100 * Mi), m.spawn("pc", c, 100 * Mi)
    pc.charge(50 * Mi)  # 50 Mi from C alone
    assert (pa.swap, pb.swap, pc.swap) == (0, 0, 50 * Mi)
    assert b.events["low"] == 0
    pc.charge(150 * Mi)  # C has 100 Mi resident; B gives the other 50 Mi, below its low
    assert (pa.swap, pb.swap, pc.swap) == (0, 50 * Mi, 150 * Mi)
    assert b.events == counters(low=1)
    assert x.events == counters(low=1, max=2)
    assert a.events == counters()
    assert pa.rss == 100 * Mi
    # C's 150 Mi and B's last 50 Mi are not enough for 250 Mi: an OOM, A's memory.min is kept
    assert pa.charge(250 * Mi) == math.inf
    assert (pa.swap, pb.swap, pc.swap) == (0, 100 * Mi, 300 * Mi)
    assert x.events == counters(low=2, max=3, oom=1, oom_kill=1)


def test_global_reclaim_before_a_global_oom():
    """RAM full of page cache: a charge past RAM reclaims it (no cgroup limit), no OOM."""
    m = Machine(ram=1 * Gi)
    cache = m.spawn("reader", m.host.root.child("batch"), 0)
    cache.read_file(600 * Mi)
    p = m.spawn("p", m.host.root.child("app"), 400 * Mi)
    stall = p.charge(100 * Mi)
    assert stall == pytest.approx(76 * Mi / CACHE_RECLAIM_RATE)
    assert (m.host.used, cache.cache) == (1 * Gi, 524 * Mi)
    assert m.events() == []


def test_page_cache_respects_memory_max():
    """§2.2: page cache is charged like anon: reading 200 Mi into a 100 Mi cgroup stays <= max."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    p = m.spawn("p", x, 0)
    p.read_file(200 * Mi)
    assert x.usage <= 100 * Mi


def test_page_cache_never_takes_the_host_past_its_ram():
    """§1.1: page cache needs free pages: host used never exceeds RAM."""
    m = Machine(ram=1 * Gi)
    p = m.spawn("p", m.host.root.child("A"), 900 * Mi)
    p.read_file(300 * Mi)
    assert m.host.used <= m.host.ram


# --------------------------------------------------------------------------- oom_kill_disable


def test_oom_kill_disable_pauses_the_task_until_memory_is_freed():
    """Cgroup-v1 oom_kill_disable: no kill; the task waits (oom counted) until memory frees."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    x.oom_kill_disable = True
    p = m.spawn("p", x, 80 * Mi)
    q = m.spawn("q", x, 20 * Mi)
    assert p.charge(10 * Mi) == math.inf
    assert m.events() == [
        (
            "oom_paused",
            "/X",
            f"p ({p.pid}) is waiting: /X is at its limit and oom_kill_disable=1",
        )
    ]
    assert x.events == counters(max=1, oom=1)
    woken: list[float] = []
    p.wait_for_memory(waker(m, woken))
    assert m.host.waiting == 1
    m.deliver(until=30.0)
    assert (woken, m.killed, m.pending) == ([], [], [])
    q.uncharge(10 * Mi)
    assert woken == [30.0]
    assert m.host.waiting == 0
    assert p.charge(10 * Mi) == 0.0
    assert x.usage == 100 * Mi


# --------------------------------------------------------------------------- overcommit


def test_overcommit_2_refuses_past_the_commit_limit():
    """vm.overcommit_memory=2: CommitLimit = swap + RAM * 50% -> ENOMEM, nothing charged."""
    m = Machine(ram=1 * Gi, swap=256 * Mi, sysctls=Sysctls(overcommit_memory=2))
    assert m.host.commit_limit == 768 * Mi
    p = m.spawn("p", m.host.root.child("A"), 768 * Mi)
    assert m.host.committed == 768 * Mi
    with pytest.raises(AllocationFailed):
        p.charge(4 * Ki)
    assert (p.rss, m.host.committed, m.host.alloc_failures) == (768 * Mi, 768 * Mi, 1)
    assert m.events() == []
    assert m.pending == []
    p.uncharge(100 * Mi)
    assert p.charge(100 * Mi) == 0.0


@pytest.mark.parametrize("mode", [0, 1])
def test_overcommit_0_and_1_never_refuse(mode: int):
    """Modes 0 and 1: an allocation past RAM is an OOM, never ENOMEM."""
    m = Machine(ram=1 * Gi, sysctls=Sysctls(overcommit_memory=mode))
    p = m.spawn("p", m.host.root.child("A"), 0)
    assert p.charge(2 * Gi) == math.inf
    assert m.host.alloc_failures == 0
    assert len(m.events("oom_kill")) == 1


# --------------------------------------------------------------------------- panic


def panicking(m: Machine) -> list[list[str]]:
    """Make ``on_panic`` record the kernel_panic lines logged by the time it is called."""
    calls: list[list[str]] = []
    m.host.on_panic = lambda: calls.append([d for _, _, d in m.events("kernel_panic")])
    return calls


def test_panic_on_oom_1_panics_on_a_global_oom():
    """panic_on_oom=1: a global OOM panics ('system-wide') instead of killing."""
    m = Machine(ram=1 * Gi, sysctls=Sysctls(panic_on_oom=1))
    calls = panicking(m)
    m.spawn("hog", m.host.root.child("A"), 2 * Gi)
    assert calls == [
        ["Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled"]
    ]
    assert m.events("oom_kill") == []
    assert m.pending == []


def test_panic_on_oom_1_still_kills_on_a_memcg_oom():
    """panic_on_oom=1 only panics on CONSTRAINT_NONE: a memcg OOM kills as usual."""
    m = Machine(sysctls=Sysctls(panic_on_oom=1))
    calls = panicking(m)
    m.spawn("p", m.host.root.child("X", 100 * Mi), 120 * Mi)
    m.deliver()
    assert calls == []
    assert m.killed == [("p", "OOMKilled")]


def test_panic_on_oom_2_panics_on_a_memcg_oom():
    """panic_on_oom=2: even a memcg OOM panics ('compulsory'); oom is counted first."""
    m = Machine(sysctls=Sysctls(panic_on_oom=2))
    calls = panicking(m)
    x = m.host.root.child("X", 100 * Mi)
    m.spawn("p", x, 120 * Mi)
    assert calls == [
        ["Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled"]
    ]
    assert x.events == counters(max=1, oom=1)
    assert m.events("oom_kill") == []


def test_global_oom_with_nothing_killable_panics_deadlocked():
    """V1 / §1.2: only -1000 tasks on a global OOM: 'no killable processes', then panic."""
    m = Machine(ram=1 * Gi)
    calls = panicking(m)
    m.spawn("init", m.host.root.child("A"), 2 * Gi, adj=-1000)
    assert [k for k, _, _ in m.events()][-2:] == ["oom_no_victim", "kernel_panic"]
    assert m.events("oom_no_victim")[0][2] == "Out of memory and no killable processes..."
    assert calls == [["Kernel panic - not syncing: System is deadlocked on memory"]]


# --------------------------------------------------------------------------- allocating task


def test_oom_kill_allocating_task_kills_the_allocator():
    """vm.oom_kill_allocating_task=1: a global OOM kills the small allocator, not the big task."""
    m = Machine(ram=1 * Gi, sysctls=Sysctls(oom_kill_allocating_task=1))
    big = m.spawn("big", m.host.root.child("A"), 900 * Mi)
    small = m.spawn("small", m.host.root.child("B"), 10 * Mi)
    assert small.charge(200 * Mi) == math.inf
    m.deliver()
    assert m.killed == [("small", "OOMKilled")]
    assert big.alive
    assert m.events("oom_kill")[0][2].startswith(
        f"Out of memory (oom_kill_allocating_task): Killed process {small.pid} (small)"
    )


def test_oom_kill_allocating_task_does_not_kill_an_unkillable_allocator():
    """An allocator with adj -1000 is not killed: the OOM killer scans as usual."""
    m = Machine(ram=1 * Gi, sysctls=Sysctls(oom_kill_allocating_task=1))
    m.spawn("big", m.host.root.child("A"), 900 * Mi)
    small = m.spawn("small", m.host.root.child("B"), 10 * Mi, adj=-1000)
    small.charge(200 * Mi)
    m.deliver()
    assert m.killed == [("big", "OOMKilled")]


def test_oom_kill_allocating_task_logs_the_full_header():
    """§1.5: the allocating-task kill prints every task and the oom-kill summary line."""
    m = Machine(ram=1 * Gi, sysctls=Sysctls(oom_kill_allocating_task=1))
    m.spawn("big", m.host.root.child("A"), 900 * Mi)
    small = m.spawn("small", m.host.root.child("B"), 10 * Mi)
    small.charge(200 * Mi)
    assert len(m.events("oom_tasks")) == 4
    assert len(m.events("oom_summary")) == 1


# --------------------------------------------------------------------------- PSI


def test_psi_some_averages_and_total():
    """§2.8: 1 s of stall in a 2 s period -> 50% folded into avg10/60/300; total in µs."""
    m = Machine()
    x = m.host.root.child("X")
    child = x.child("Y")
    sibling = m.host.root.child("Z")
    child.add_stall(1.0)
    m.host.update_psi()
    line = "avg10=9.06 avg60=1.64 avg300=0.33 total=1000000"
    for cgroup in (child, x, m.host.root):
        assert cgroup.psi.lines() == f"some {line}\nfull {line}"
    assert sibling.psi.lines() == (
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0"
    )
    assert child.psi_full_avg10() == pytest.approx(100 * 0.5 * (1 - math.exp(-0.2)))


def test_psi_decays_and_caps_the_stall_at_the_period():
    """§2.8: a stall beyond the period counts as 100%; an idle period decays the averages."""
    psi = Psi()
    psi.stall = 5.0
    psi.update(2.0)
    first = psi.avg["some"][0]
    assert first == pytest.approx(100 * (1 - math.exp(-0.2)))
    assert psi.some_total == 2.0
    psi.update(2.0)
    assert psi.avg["some"][0] == pytest.approx(first * math.exp(-0.2))
    assert psi.some_total == 2.0


def test_psi_without_any_pressure_stays_exactly_zero_and_forgets_the_busy_time():
    """A period with no stall, and none before: every figure stays 0.0 (nothing to decay)."""
    psi = Psi()
    psi.busy = 2.0
    psi.update(2.0)
    assert psi.avg == {"some": [0.0, 0.0, 0.0], "full": [0.0, 0.0, 0.0]}
    assert (psi.some_total, psi.full_total, psi.busy) == (0.0, 0.0, 0.0)
    psi.stall = 1.0
    psi.update(2.0)
    psi.busy = 2.0
    psi.update(2.0)  # no stall now, but some before: the averages decay
    assert psi.avg["some"][0] == pytest.approx(100 * 0.5 * (1 - math.exp(-0.2)) * math.exp(-0.2))
    assert psi.busy == 0.0


def test_psi_full_equals_some_when_every_busy_task_stalls():
    """§2.8: the only non-idle task stalled the whole period -> full equals some (100%)."""
    psi = Psi()
    psi.stall = 2.0
    psi.busy = 2.0
    psi.update(2.0)
    assert psi.full_total == psi.some_total == 2.0


# --------------------------------------------------------------------------- V1 oom_score


def test_v1_oom_score_and_kill_order_through_the_host():
    """V1: oom_score C 1343, B 1208, A 336, -1000 0; successive global OOMs kill C, B, A."""
    m = Machine(ram=4 * Gi)
    a = m.spawn("A", m.host.root.child("a"), 2 * Gi, adj=-997)
    b = m.spawn("B", m.host.root.child("b"), 256 * Mi, adj=750)
    c = m.spawn("C", m.host.root.child("c"), 64 * Mi, adj=1000)
    d = m.spawn("D", m.host.root.child("d"), 0, adj=-1000)
    assert m.host.totalpages == 1_048_576
    assert [m.host.oom_score(p) for p in (c, b, a, d)] == [1343, 1208, 336, 0]
    for _ in range(3):
        assert d.charge(3 * Gi) == math.inf
        m.deliver()
    assert m.killed == [("C", "OOMKilled"), ("B", "OOMKilled"), ("A", "OOMKilled")]
    assert d.charge(3 * Gi) == 0.0


def test_v2_ties_kill_the_later_task():
    """V2: equal badness -> the later task in scan order (the newer process) dies."""
    m = Machine()
    x = m.host.root.child("X", 200 * Mi)
    m.spawn("older", x, 100 * Mi)
    newer = m.spawn("newer", x, 100 * Mi)
    newer.charge(1 * Mi)
    m.deliver()
    assert m.killed == [("newer", "OOMKilled")]


# --------------------------------------------------------------------------- worlds


def world(services: dict[str, Any], faults: list[dict] = (), duration: str = "20s", **host):
    """Run a one-host world (4 Gi, kubernetes) with ``app`` as the entry; return it."""
    data = {
        "name": "memory",
        "duration": duration,
        "seed": 1,
        "hosts": [{"name": "node-a", "memory": "4Gi", "cpus": 2} | host],
        "services": services,
        "workload": {"entry": "app", "rate": {"profile": "constant", "rate": "1/s"}},
        "faults": list(faults),
    }
    w = World(Scenario.model_validate(data))
    w.result = w.run()
    return w


def app(**config: Any) -> dict[str, Any]:
    """The ``app`` service: limit 256 Mi, 10 ms hops, plus ``config``."""
    return {
        "app": {
            "resources": {"limits": {"memory": "256Mi"}},
            "service_time": {"dist": "deterministic", "value": "10ms"},
        }
        | config
    }


def container_events(w: World) -> list[tuple[float, str, str]]:
    """``(t, kind, detail)`` of the container lifecycle events of ``app-0``."""
    frame = w.result.events
    rows = frame[frame.kind.isin(["terminated", "restart", "backoff", "ready"])]
    return [(r.t, r.kind, r.detail) for r in rows.itertuples()]


OOMKILLED = "Container app-0 terminated: Reason: OOMKilled, Exit Code: 137"


def test_v9_container_over_its_limit_is_oomkilled_and_restarted():
    """V9: 100 Mi baseline + 200 Mi spike over a 256 Mi limit -> OOMKilled 137, restart 1."""
    w = world(
        app(memory={"baseline": "100Mi"}),
        [{"kind": "memory_spike", "target": "app", "at": "5s", "size": "200Mi"}],
    )
    assert container_events(w) == [
        (5.0, "terminated", OOMKILLED),
        (5.0, "restart", "Restarting container app in pod app-0 (restartCount 1)"),
        (5.0, "ready", "Container app-0 is ready"),
    ]
    instance = w.services["app"].instances[0]
    assert (instance.restarts, instance.reason, instance.exit_code) == (1, "OOMKilled", 137)
    assert w.result.summary["oom_kills"] == 1
    assert instance.cgroup.usage == 100 * Mi  # the new container's baseline
    cg = "/kubepods.slice/kubepods-burstable.slice/pod-app-0/app"
    assert instance.cgroup.events == counters(max=1, oom=1, oom_kill=1, oom_group_kill=1)
    assert w.hosts["node-a"].cgroup(cg) is instance.cgroup


def test_v9_baseline_over_the_limit_crash_loops():
    """V9 + §4: a 300 Mi baseline under a 256 Mi limit OOMs at every start; back-off 10 s, 20 s."""
    w = world(app(memory={"baseline": "300Mi"}), duration="35s")
    restart = "Restarting container app in pod app-0 (restartCount {})"
    pod = w.services["app"].instances[0].pod
    backoff = f"Back-off restarting failed container app in pod {pod}"
    assert container_events(w) == [
        (0.0, "terminated", OOMKILLED),
        (0.0, "restart", restart.format(1)),
        (0.0, "terminated", OOMKILLED),
        (0.0, "backoff", backoff),
        (10.0, "restart", restart.format(2)),
        (10.0, "terminated", OOMKILLED),
        (10.0, "backoff", backoff),
        (30.0, "restart", restart.format(3)),
        (30.0, "terminated", OOMKILLED),
        (30.0, "backoff", backoff),
    ]


def test_v9_restart_policy_never_leaves_it_terminated():
    """§3.4: restartPolicy Never: OOMKilled 137 and no restart."""
    w = world(
        app(memory={"baseline": "100Mi"}, restart={"policy": "Never"}),
        [{"kind": "memory_spike", "target": "app", "at": "5s", "size": "200Mi"}],
    )
    assert container_events(w) == [(5.0, "terminated", OOMKILLED)]
    assert w.services["app"].instances[0].restarts == 0


@pytest.mark.parametrize(("duration", "usage_mi"), [("5.5s", 100), ("12.5s", 170), ("30s", 200)])
def test_memory_leak_fault_charges_rate_every_second(duration: str, usage_mi: int):
    """memory_leak 10 Mi/s from 5 s for 10 s: one 10 Mi chunk per GROWTH_TICK, then it stops."""
    w = world(
        app(memory={"baseline": "100Mi"}),
        [{"kind": "memory_leak", "target": "app", "at": "5s", "duration": "10s", "rate": "10Mi"}],
        duration=duration,
    )
    assert w.services["app"].instances[0].cgroup.usage == usage_mi * Mi


def test_service_memory_leak_grows_from_the_start():
    """services.*.memory.leak 1 Mi/s: after 10.5 s the container holds 100 + 10 Mi."""
    w = world(app(memory={"baseline": "100Mi", "leak": "1Mi"}), duration="10.5s")
    assert w.services["app"].instances[0].cgroup.usage == 110 * Mi


@pytest.mark.parametrize(("duration", "usage_mi"), [("7s", 150), ("12s", 100)])
def test_memory_spike_fault_allocates_and_frees(duration: str, usage_mi: int):
    """memory_spike 50 Mi at 5 s for 5 s: held during the fault, freed when it ends."""
    w = world(
        app(memory={"baseline": "100Mi"}),
        [{"kind": "memory_spike", "target": "app", "at": "5s", "duration": "5s", "size": "50Mi"}],
        duration=duration,
    )
    assert w.services["app"].instances[0].cgroup.usage == usage_mi * Mi


@pytest.mark.parametrize(
    ("duration", "usage_mi", "alive"), [("3.5s", 200, True), ("10s", 300, True), ("16s", 0, False)]
)
def test_memory_hog_fault_grows_holds_and_exits(duration: str, usage_mi: int, alive: bool):
    """memory_hog 300 Mi at 100 Mi/s from 1 s for 10 s: 200 Mi at 3.5 s, 300 Mi, gone after."""
    w = world(
        app(memory={"baseline": "100Mi"}),
        [
            {
                "kind": "memory_hog",
                "target": "node-a",
                "at": "1s",
                "duration": "10s",
                "size": "300Mi",
                "rate": "100Mi",
            }
        ],
        duration=duration,
    )
    host = w.hosts["node-a"]
    assert host.cgroup("/system.slice/memory-hog.service").usage == usage_mi * Mi
    assert ("memhog" in [p.comm for p in host.processes()]) is alive
