"""The kernel layer: cgroup accounting, memcg and global OOM, oom.group (§1, §2; V3-V6).

An allocation that needs an OOM kill charges nothing: ``charge`` returns ``math.inf`` (the task
waits for memory and retries) and the victim exits at once through the scheduler, with the OOM
reaper queued 2 s after the kill.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from sim.kernel import OOM_REAPER_DELAY, AllocationFailed, Cgroup, Host
from sim.recorder import Recorder

Mi, Gi = 1024**2, 1024**3


class Machine:
    """A host on a hand-cranked clock: scheduled work waits in ``pending`` until it is due."""

    def __init__(self, ram: int = 8 * Gi, **host: Any) -> None:
        self.t = 0.0
        self.pending: list[tuple[float, int, Callable[[], None]]] = []
        self.recorder = Recorder(100.0, 1.0, 1000, [])
        self.host = Host("node-a", ram, 4, self.recorder, self._schedule, lambda: self.t, **host)
        self.host.kubelet = True  # a Kubernetes node: the kubelet reports SystemOOM
        self.killed: list[tuple[str, str]] = []

    def _schedule(self, callback: Callable[[], None], delay: float = 0.0) -> None:
        self.pending.append((self.t + delay, len(self.pending), callback))

    def spawn(self, comm: str, cgroup: Cgroup, rss: int = 0, adj: int = 0):
        """Start ``comm`` in ``cgroup`` and charge ``rss`` bytes to it."""
        process = self.host.spawn(
            comm, cgroup, adj, on_exit=lambda reason: self.killed.append((comm, reason))
        )
        process.charge(rss)
        return process

    def deliver(self, until: float | None = None) -> None:
        """Run what is due by ``until`` (default: the rest of the current instant), in order."""
        end = self.t if until is None else until
        while True:
            due = sorted(p for p in self.pending if p[0] <= end)
            if not due:
                break
            item = due[0]
            self.pending.remove(item)
            self.t = item[0]
            item[2]()
        self.t = end

    def events(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        """Event log rows ``(kind, entity, detail)``, optionally of one kind."""
        return [
            (e.kind, e.entity, e.detail)
            for e in self.recorder.events
            if kind is None or e.kind == kind
        ]


def counters(**counts: int) -> dict[str, int]:
    """A ``memory.events`` file: every key zero but the ones given."""
    return {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0, "oom_group_kill": 0} | counts


# --------------------------------------------------------------------------- accounting


def test_charge_is_hierarchical():
    """memory.current of a cgroup is its own usage plus its descendants'."""
    m = Machine()
    a = m.host.root.child("A")
    b = a.child("B")
    c = a.child("C")
    m.spawn("p", b, 100 * Mi)
    m.spawn("q", c, 30 * Mi)
    m.spawn("r", a, 5 * Mi)
    assert (b.usage, c.usage, a.usage, m.host.root.usage) == (100 * Mi, 30 * Mi, 135 * Mi, 135 * Mi)
    assert m.host.used == 135 * Mi


def test_uncharge_walks_the_ancestors_and_peak_remembers():
    """Uncharge lowers every ancestor; memory.peak keeps the high-water mark."""
    m = Machine()
    a = m.host.root.child("A")
    b = a.child("B")
    p = m.spawn("p", b, 100 * Mi)
    p.uncharge(60 * Mi)
    assert (p.rss, b.usage, a.usage, m.host.used) == (40 * Mi, 40 * Mi, 40 * Mi, 40 * Mi)
    assert (b.peak, a.peak) == (100 * Mi, 100 * Mi)


def test_child_returns_the_existing_cgroup_and_paths_are_absolute():
    """``child(name)`` creates once; paths are ``/A/B`` from the root."""
    m = Machine()
    b = m.host.root.child("A").child("B", 5 * Mi)
    assert m.host.root.child("A").child("B") is b
    assert b.path == "/A/B"
    assert b.memory_max == 5 * Mi
    assert [c.path for c in m.host.cgroups()] == ["/", "/A", "/A/B"]


def test_pids_increase_from_1001():
    """The process table hands out increasing pids."""
    m = Machine()
    cg = m.host.root.child("A")
    assert [m.spawn(n, cg).pid for n in "xyz"] == [1001, 1002, 1003]


def test_charge_within_limits_logs_nothing():
    """Usage up to memory.max (inclusive) is no OOM: no event, no kill."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    assert m.spawn("p", x, 0).charge(100 * Mi) == 0.0
    assert m.pending == []
    assert x.events == counters()
    assert m.recorder.events == []


# --------------------------------------------------------------------------- V4 memcg OOM


def v4() -> tuple[Machine, Cgroup, dict]:
    """V4: X (512 Mi, swap.max 0) holds p1 400 Mi and p2 100 Mi; ``big`` outside X holds 3 Gi."""
    m = Machine()
    x = m.host.root.child("X", 512 * Mi)
    x.swap_max = 0
    procs = {
        "big": m.spawn("big", m.host.root.child("other"), 3 * Gi),
        "p1": m.spawn("p1", x, 400 * Mi),
        "p2": m.spawn("p2", x, 100 * Mi),
    }
    return m, x, procs


def test_memcg_oom_kills_the_largest_task_inside_the_cgroup():
    """V4: p1 allocating 20 Mi over X's limit kills p1, never the 3 Gi task outside X.

    New semantics: the allocation is not forced; it charges nothing and returns inf (wait).
    """
    m, x, procs = v4()
    assert procs["p1"].charge(20 * Mi) == math.inf
    assert (procs["p1"].rss, x.usage) == (400 * Mi, 500 * Mi)  # nothing was charged
    # the SIGKILL exit (exit_delay 0) now and the reaper 2 s later
    assert [t for t, _, _ in m.pending] == [0.0, OOM_REAPER_DELAY]
    assert procs["p1"].alive  # the kill is delivered after the allocating code returns
    m.deliver()
    assert m.killed == [("p1", "OOMKilled")]
    assert [n for n, p in procs.items() if p.alive] == ["big", "p2"]
    assert x.usage == 100 * Mi


def test_memcg_oom_only_considers_tasks_in_the_cgroup():
    """V4: even when p2 allocates, the victim is p1 (larger); ``big`` is never a candidate."""
    m, _, procs = v4()
    procs["p2"].charge(20 * Mi)
    m.deliver()
    assert m.killed == [("p1", "OOMKilled")]


def test_memcg_oom_memory_events_max_oom_oom_kill():
    """V4: X's memory.events: max 1, oom 1, oom_kill 1; the host's vmstat oom_kill is 1."""
    m, x, procs = v4()
    procs["p1"].charge(20 * Mi)
    m.deliver()
    assert x.events == counters(max=1, oom=1, oom_kill=1)
    assert m.host.root.events == counters(max=1, oom=1, oom_kill=1)
    assert m.host.root.child("other").events["oom_kill"] == 0
    assert m.host.oom_kills == 1


def test_memcg_oom_log_lines():
    """V4 / §1.8: dump_header (invoked, memcg usage, task table), summary, memcg kill line.

    The kill line shows 400 Mi (the 20 Mi were never charged) and pgtables (rss+swap)/512.
    """
    m, _, procs = v4()
    p1, p2 = procs["p1"], procs["p2"]
    p1.charge(20 * Mi)
    assert m.events() == [
        (
            "oom_invoked",
            "/X",
            "p1 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        ),
        ("oom_meminfo", "/X", "memory: usage 512000kB, limit 524288kB, failcnt 1"),
        ("oom_meminfo", "/X", "swap: usage 0kB, limit 0kB, failcnt 0"),
        ("oom_tasks", "/X", "Tasks state (memory values in pages):"),
        (
            "oom_tasks",
            "/X",
            "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        ),
        (
            "oom_tasks",
            "/X",
            f"[   {p1.pid}]     0  {p1.pid}   102400   102400         819200        0"
            "             0 p1",
        ),
        (
            "oom_tasks",
            "/X",
            f"[   {p2.pid}]     0  {p2.pid}    25600    25600         204800        0"
            "             0 p2",
        ),
        (
            "oom_summary",
            "/X",
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
            f"oom_memcg=/X,task_memcg=/X,task=p1,pid={p1.pid},uid=0",
        ),
        (
            "oom_kill",
            "/X",
            f"Memory cgroup out of memory: Killed process {p1.pid} (p1) total-vm:409600kB, "
            "anon-rss:409600kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:800kB oom_score_adj:0",
        ),
    ]
    assert "system_oom" not in {kind for kind, _, _ in m.events()}  # only for global OOMs


def test_memcg_oom_happens_in_the_lowest_ancestor_over_its_limit():
    """Both X (1 Gi) and X/Y (100 Mi) end over their limit: the OOM domain is Y, not X."""
    m = Machine()
    x = m.host.root.child("X", 1 * Gi)
    y = x.child("Y", 100 * Mi)
    m.spawn("outside-y", x, 950 * Mi)
    inside = m.spawn("inside-y", y, 50 * Mi)
    inside.charge(60 * Mi)
    m.deliver()
    assert m.killed == [("inside-y", "OOMKilled")]
    assert "oom_memcg=/X/Y," in m.events("oom_summary")[0][2]


def test_ancestor_limit_oom_scans_the_whole_subtree():
    """A limit hit on X (its children unlimited) takes candidates from all of X's subtree."""
    m = Machine()
    x = m.host.root.child("X", 300 * Mi)
    small = m.spawn("small", x.child("a"), 50 * Mi)
    m.spawn("large", x.child("b"), 200 * Mi)
    small.charge(60 * Mi)
    m.deliver()
    assert m.killed == [("large", "OOMKilled")]


def test_memory_events_of_a_child_oom_show_in_the_parent():
    """§2.5: memory.events is hierarchical: a memcg OOM in X/Y counts max and oom in X too."""
    m = Machine()
    x = m.host.root.child("X")
    y = x.child("Y", 100 * Mi)
    m.spawn("p", y, 120 * Mi)
    m.deliver()
    assert y.events == counters(max=1, oom=1, oom_kill=1)
    assert x.events == counters(max=1, oom=1, oom_kill=1)


def test_guaranteed_task_alone_in_its_cgroup_is_still_killed():
    """§1.10: adj -997 is eligible; alone over its own limit it is the victim."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    m.spawn("db", x, 120 * Mi, adj=-997)
    m.deliver()
    assert m.killed == [("db", "OOMKilled")]


def test_memcg_of_only_unkillable_tasks_logs_no_killable_processes():
    """V1 / §1.2: all tasks -1000 -> header, 'no killable processes...', ENOMEM, no kill.

    New semantics: the charge raises AllocationFailed instead of being forced past memory.max.
    """
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    p = m.spawn("init-like", x, 0, adj=-1000)
    with pytest.raises(AllocationFailed):
        p.charge(120 * Mi)
    m.deliver(until=5.0)
    assert m.killed == []
    assert (p.alive, p.rss, x.usage) == (True, 0, 0)
    assert m.events()[0][2] == (
        "init-like invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=-1000"
    )
    assert m.events()[-2:] == [
        (
            "oom_tasks",
            "/X",
            f"[   {p.pid}]     0  {p.pid}        0        0              0        0"
            "         -1000 init-like",
        ),
        ("oom_no_victim", "/X", "Out of memory and no killable processes..."),
    ]
    assert x.events == counters(max=1, oom=1)
    assert m.host.alloc_failures == 1


# --------------------------------------------------------------------------- V5 oom.group


def v5() -> tuple[Machine, Cgroup, dict]:
    """V5: V4 with memory.oom.group=1 on X and a third, unkillable, task."""
    m = Machine()
    x = m.host.root.child("X", 512 * Mi)
    x.oom_group = True
    procs = {
        "big": m.spawn("big", m.host.root.child("other"), 3 * Gi),
        "p1": m.spawn("p1", x, 300 * Mi),
        "p2": m.spawn("p2", x, 100 * Mi),
        "keeper": m.spawn("keeper", x, 100 * Mi, adj=-1000),
    }
    return m, x, procs


def test_oom_group_kills_every_task_but_the_unkillable_one():
    """V5: two killed (victim first), the -1000 task survives, nothing outside X is touched."""
    m, _, procs = v5()
    procs["p1"].charge(20 * Mi)
    m.deliver()
    assert m.killed == [("p1", "OOMKilled"), ("p2", "OOMKilled")]
    assert [n for n, p in procs.items() if p.alive] == ["big", "keeper"]


def test_oom_group_memory_events():
    """V5: memory.events oom_kill 2, oom_group_kill 1 (and oom 1) on X."""
    m, x, procs = v5()
    procs["p1"].charge(20 * Mi)
    m.deliver()
    assert x.events == counters(max=1, oom=1, oom_kill=2, oom_group_kill=1)
    assert m.host.oom_kills == 2


def test_oom_group_line_is_printed_once():
    """V5: 'Tasks in /X are going to be killed due to memory.oom.group set' exactly once."""
    m, _, procs = v5()
    procs["p1"].charge(20 * Mi)
    m.deliver()
    assert m.events("oom_group_kill") == [
        (
            "oom_group_kill",
            "/X",
            "Tasks in /X are going to be killed due to memory.oom.group set",
        )
    ]
    kills = m.events("oom_kill")
    assert len(kills) == 2
    assert all(d.startswith("Memory cgroup out of memory: Killed process ") for _, _, d in kills)


def test_group_kill_log_order_is_victim_then_group_line_then_members():
    """§1.5: the victim's Killed line, then the oom.group line, then the other members."""
    m, _, procs = v5()
    procs["p1"].charge(20 * Mi)
    lines = [
        (kind, found.group(1) if (found := re.search(r"Killed process (\d+)", detail)) else detail)
        for kind, _, detail in m.events()
        if kind in ("oom_kill", "oom_group_kill")
    ]
    assert lines == [
        ("oom_kill", str(procs["p1"].pid)),
        ("oom_group_kill", "Tasks in /X are going to be killed due to memory.oom.group set"),
        ("oom_kill", str(procs["p2"].pid)),
    ]


def test_without_oom_group_only_the_victim_dies():
    """V4 vs V5: the same OOM without memory.oom.group kills one task and no group line."""
    m, x, procs = v5()
    x.oom_group = False
    procs["p1"].charge(20 * Mi)
    m.deliver()
    assert m.killed == [("p1", "OOMKilled")]
    assert m.events("oom_group_kill") == []
    assert x.events["oom_group_kill"] == 0


# --------------------------------------------------------------------------- V6 nested


def v6(domain: str) -> tuple[Machine, dict[str, Cgroup], dict]:
    """V6: A/B/C with oom.group on A and B; the limit (OOM domain) is on ``domain``."""
    m = Machine()
    a = m.host.root.child("A")
    b = a.child("B")
    c = b.child("C")
    cgroups = {"A": a, "B": b, "C": c}
    for name in ("A", "B"):
        cgroups[name].oom_group = True
    cgroups[domain].memory_max = 500 * Mi
    procs = {
        "in-a": m.spawn("in-a", a, 10 * Mi),
        "in-b": m.spawn("in-b", b, 10 * Mi),
        "in-c": m.spawn("in-c", c, 400 * Mi),
    }
    return m, cgroups, procs


def test_nested_oom_group_kills_the_highest_flagged_ancestor_in_the_domain():
    """V6: OOM domain A, victim in C -> the whole A subtree dies (A's group, not B's)."""
    m, cgroups, procs = v6("A")
    procs["in-c"].charge(100 * Mi)
    m.deliver()
    assert {n for n, p in procs.items() if not p.alive} == {"in-a", "in-b", "in-c"}
    assert m.events("oom_group_kill")[0][1] == "/A"
    assert (cgroups["A"].events["oom_group_kill"], cgroups["B"].events["oom_group_kill"]) == (1, 0)


def test_nested_oom_group_stops_at_the_oom_domain():
    """V6: OOM domain B -> only B's subtree dies even though A has oom.group=1."""
    m, cgroups, procs = v6("B")
    procs["in-c"].charge(100 * Mi)
    m.deliver()
    assert [n for n, p in procs.items() if p.alive] == ["in-a"]
    assert m.events("oom_group_kill")[0][2] == (
        "Tasks in /A/B are going to be killed due to memory.oom.group set"
    )
    # memory.events is hierarchical: B's group kill shows in A too
    assert (cgroups["A"].events["oom_group_kill"], cgroups["B"].events["oom_group_kill"]) == (1, 1)


# --------------------------------------------------------------------------- global OOM


def test_global_oom_when_host_ram_is_exceeded():
    """RAM 1 Gi, no cgroup limit: exceeding RAM kills the worst task host-wide."""
    m = Machine(ram=1 * Gi)
    web = m.spawn("web", m.host.root.child("web"), 300 * Mi, adj=500)
    batch = m.spawn("batch", m.host.root.child("batch"), 600 * Mi)
    assert m.pending == []
    assert batch.charge(200 * Mi) == math.inf  # 1100 Mi > 1 Gi: wait, nothing charged
    m.deliver()
    # badness (rss + pgtables + adj * 262): web 76800 + 150 + 131000 = 207950 > batch 153900
    assert m.killed == [("web", "OOMKilled")]
    assert not web.alive
    assert m.host.used == 600 * Mi


def test_global_oom_log_lines():
    """§1.8: global dump_header on "/", Mem-Info, tasks, CONSTRAINT_NONE, kill, kubelet line."""
    m = Machine(ram=1 * Gi)
    hog = m.spawn("hog", m.host.root.child("system.slice").child("hog.service"), 1100 * Mi)
    cg = "/system.slice/hog.service"
    assert m.events() == [
        (
            "oom_invoked",
            "/",
            "hog invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        ),
        ("oom_meminfo", "/", "Mem-Info: total 1048576kB, used 0kB, swap 0/0kB"),
        ("oom_tasks", "/", "Tasks state (memory values in pages):"),
        (
            "oom_tasks",
            "/",
            "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        ),
        (
            "oom_tasks",
            "/",
            f"[   {hog.pid}]     0  {hog.pid}        0        0              0        0"
            "             0 hog",
        ),
        (
            "oom_summary",
            cg,
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
            f"global_oom,task_memcg={cg},task=hog,pid={hog.pid},uid=0",
        ),
        (
            "oom_kill",
            cg,
            f"Out of memory: Killed process {hog.pid} (hog) total-vm:0kB, anon-rss:0kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0",
        ),
        (
            "system_oom",
            "kubelet",
            f"System OOM encountered, victim process: hog, pid: {hog.pid}",
        ),
    ]


def test_global_oom_counts_no_memcg_oom_event():
    """A global OOM is not a memcg OOM: no cgroup's memory.events oom or max moves."""
    m = Machine(ram=1 * Gi)
    cg = m.host.root.child("A")
    m.spawn("hog", cg, 1100 * Mi)
    m.deliver()
    assert cg.events == counters(oom_kill=1)


def test_global_oom_group_kill_uses_the_container_flag():
    """Global OOM: the victim's container with oom.group=1 dies whole; siblings outside live."""
    m = Machine(ram=1 * Gi)
    pod = m.host.root.child("pod")
    container = pod.child("app")
    container.oom_group = True
    main = m.spawn("main", container, 500 * Mi)
    helper = m.spawn("helper", container, 10 * Mi)
    pause = m.spawn("pause", pod.child("pause"), 1 * Mi, adj=-998)
    main.charge(600 * Mi)
    m.deliver()
    assert (main.alive, helper.alive, pause.alive) == (False, False, True)
    assert m.events("oom_group_kill")[0][1] == "/pod/app"


# --------------------------------------------------------------------------- one victim in flight


def test_one_victim_in_flight_a_second_overcharge_kills_nobody_more():
    """V3: a second over-limit charge before the first kill is delivered waits, kills no one.

    Both charges return inf; ``max`` and ``oom`` count twice (every OOM invocation counts, also
    the one that finds the victim still in flight), ``oom_kill`` once.
    """
    m, x, procs = v4()
    assert procs["p1"].charge(20 * Mi) == math.inf
    assert procs["p2"].charge(20 * Mi) == math.inf
    assert len(m.pending) == 2  # p1's exit and p1's reaper only
    m.deliver()
    assert m.killed == [("p1", "OOMKilled")]
    assert len(m.events("oom_kill")) == 1
    assert len(m.events("oom_invoked")) == 1
    assert x.events == counters(max=2, oom=2, oom_kill=1)
    assert procs["p2"].alive
    assert procs["p2"].charge(20 * Mi) == 0.0  # p1's memory is back: the retry succeeds


def test_after_the_victim_dies_the_next_oom_may_kill_again():
    """V3: once the victim has exited, a new over-limit charge picks a new victim."""
    m, _, procs = v4()
    procs["p1"].charge(20 * Mi)
    m.deliver()
    procs["p2"].charge(500 * Mi)
    m.deliver()
    assert m.killed == [("p1", "OOMKilled"), ("p2", "OOMKilled")]


def test_victim_in_another_memcg_does_not_block_this_one():
    """The abort only looks at victims inside the OOM domain: two memcgs OOM at once."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    y = m.host.root.child("Y", 100 * Mi)
    m.spawn("in-x", x, 120 * Mi)
    m.spawn("in-y", y, 120 * Mi)
    assert len(m.pending) == 4  # an exit and a reaper per kill
    m.deliver()
    assert m.killed == [("in-x", "OOMKilled"), ("in-y", "OOMKilled")]


# --------------------------------------------------------------------------- dead processes


def test_a_dead_process_charges_are_no_ops():
    """Charge and uncharge of a killed process change nothing and trigger no OOM."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    p = m.spawn("p", x, 50 * Mi)
    m.host.kill(p, "Error")
    p.charge(500 * Mi)
    p.uncharge(10 * Mi)
    assert (p.rss, x.usage, m.host.used) == (0, 0, 0)
    assert m.pending == []
    assert m.recorder.events == []


def test_a_killed_process_frees_its_memory():
    """Killing a process uncharges its rss from every ancestor and the host."""
    m = Machine()
    x = m.host.root.child("X")
    y = x.child("Y")
    keep = m.spawn("keep", y, 30 * Mi)
    p = m.spawn("p", y, 70 * Mi)
    m.host.kill(p, "Error")
    assert m.killed == [("p", "Error")]
    assert (y.usage, x.usage, m.host.root.usage, m.host.used) == (30 * Mi,) * 4
    assert p not in y.members
    assert list(y.tasks()) == [keep]


def test_killing_a_dead_process_is_a_no_op():
    """A second kill of the same process does not call its owner again."""
    m = Machine()
    p = m.spawn("p", m.host.root.child("X"), 1 * Mi)
    m.host.kill(p, "Error")
    m.host.kill(p, "OOMKilled")
    assert m.killed == [("p", "Error")]


def test_a_victim_killed_by_someone_else_first_is_not_killed_twice():
    """If the victim dies before the OOM kill is delivered, the delivery does nothing."""
    m, _, procs = v4()
    procs["p1"].charge(20 * Mi)
    m.host.kill(procs["p1"], "Error")
    m.deliver()
    assert m.killed == [("p1", "Error")]


# --------------------------------------------------------------------------- reaper, header


def test_the_reaper_of_a_victim_that_already_exited_does_nothing():
    """§1.6: the reaper runs 2 s after the kill; the victim exited at once, so it logs nothing."""
    m, x, procs = v4()
    procs["p1"].charge(20 * Mi)
    m.deliver(until=OOM_REAPER_DELAY)
    assert m.pending == []
    assert m.events("oom_reaper") == []
    assert x.usage == 100 * Mi


def test_memcg_header_reports_failcnt_and_swap_usage():
    """dump_header's memcg lines: usage/limit in kB, failcnt = max events, swap usage/limit."""
    m = Machine(swap=1 * Gi)
    x = m.host.root.child("X", 100 * Mi)
    x.swap_max = 10 * Mi
    p = m.spawn("p", x, 100 * Mi)
    assert p.charge(20 * Mi) == math.inf  # 10 Mi swapped out, still 10 Mi short
    assert m.events("oom_meminfo") == [
        ("oom_meminfo", "/X", "memory: usage 92160kB, limit 102400kB, failcnt 1"),
        ("oom_meminfo", "/X", "swap: usage 10240kB, limit 10240kB, failcnt 0"),
    ]


def test_unlimited_limits_print_as_a_number_in_the_header():
    """§1.8: the memcg header's limits are numbers in kB even when the file says ``max``."""
    m = Machine()
    x = m.host.root.child("X", 100 * Mi)
    m.spawn("p", x, 120 * Mi)
    assert m.events("oom_meminfo")[1][2] == "swap: usage 0kB, limit 9007199254740988kB, failcnt 0"
