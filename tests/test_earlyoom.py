"""earlyoom on a fake host (reference semantics §6.2; §12 V15)."""

from __future__ import annotations

import pytest
import simpy
from fake_host import GIB, MIB, FakeHost

from patterns.earlyoom import (
    Earlyoom,
    EarlyoomConfig,
    EarlyoomState,
    MemInfo,
    lowmem_sig,
    pripct,
    sleep_time,
)

RAM = 16 * GIB
SWAP = 8 * GIB
JAVA_SCORE = 916  # (1000 + 6 GiB * 1000 / 16 GiB) * 2 / 3, truncated
LOW_TERM = "low memory! at or below SIGTERM limits: mem 10.00%, swap 10.00%"
LOW_KILL = "low memory! at or below SIGKILL limits: mem  5.00%, swap  5.00%"
SEND_JAVA = (
    'uid 0 "java": oom_score 916, oom_score_adj 0, VmRSS 6144 MiB, cmdline "java"'  # after pid
)


def make_host(available: int, swap_total: int = 0, swap_free: int = 0, **java: object):
    """16 GiB host with init, a 6 GiB java (exits 0.45 s after SIGTERM) and a 3 GiB postgres."""
    env = simpy.Environment()
    host = FakeHost(env, RAM, available, swap_total, swap_free)
    host.add_process(1, "systemd", 12 * MIB)
    host.add_process(100, "java", 6 * GIB, **({"term_delay": 0.45} | java))
    host.add_process(200, "postgres", 3 * GIB)
    return env, host


def run_earlyoom(env, host, until: float, **config: object) -> Earlyoom:
    earlyoom = Earlyoom(env, host, EarlyoomConfig(**config))  # type: ignore[arg-type]
    earlyoom.start()
    env.run(until=until)
    return earlyoom


def victim_pid(env, host, config: EarlyoomConfig | None = None) -> int | None:
    """The pid earlyoom would choose now."""
    victim = Earlyoom(env, host, config).find_victim()
    return None if victim is None else victim.process.pid


def events(host: FakeHost) -> list[tuple[float, str]]:
    """The earlyoom log without the periodic memory reports."""
    return host.lines("earlyoom", "mem_report")


def test_defaults_come_from_earlyoom_main_c():
    """-m 10 / -s 10, kill limits half the term limits, report 1 s, 100 x 100 ms kill wait."""
    config = EarlyoomConfig()
    assert (config.mem_term_percent, config.mem_kill_percent) == (10.0, 5.0)
    assert (config.swap_term_percent, config.swap_kill_percent) == (10.0, 5.0)
    assert config.report_interval == 1.0
    assert (config.kill_poll_interval, config.kill_wait_polls) == (0.1, 100)
    assert (config.min_sleep, config.max_sleep) == (0.1, 1.0)
    assert (config.mem_fill_rate, config.swap_fill_rate) == (6000, 800)


def test_kill_limit_defaults_to_half_of_a_custom_term_limit():
    """``-m 20`` alone means SIGKILL at 10 %; explicit kill limits are kept."""
    assert EarlyoomConfig(mem_term_percent=20).mem_kill_percent == 10.0
    assert EarlyoomConfig(swap_term_percent=20, swap_kill_percent=3).swap_kill_percent == 3


def test_kill_limit_above_term_limit_is_rejected():
    """A SIGKILL limit above the SIGTERM limit makes no sense, as earlyoom's parser says."""
    with pytest.raises(ValueError, match="mem_kill_percent"):
        EarlyoomConfig(mem_term_percent=10, mem_kill_percent=11)


@pytest.mark.parametrize(
    ("mem_available", "expected"),
    [
        (RAM // 2, None),
        (1639 * MIB, None),  # 10.004 %
        (RAM // 10, "SIGTERM"),  # 1.6 GiB, rounded down to the byte
        (1638 * MIB, "SIGTERM"),
        (820 * MIB, "SIGTERM"),  # 5.005 %
        (RAM // 20, "SIGKILL"),  # 0.8 GiB
        (819 * MIB, "SIGKILL"),
        (0, "SIGKILL"),
    ],
)
def test_v15_limits_on_16_gib_without_swap(mem_available, expected):
    """V15: without swap, SIGTERM at MemAvailable <= 1.6 GiB and SIGKILL at <= 0.8 GiB."""
    assert lowmem_sig(EarlyoomConfig(), MemInfo(mem_available, RAM, 0, 0)) == expected


@pytest.mark.parametrize(
    ("swap_free_percent", "expected"),
    [(50, None), (11, None), (10, "SIGTERM"), (6, "SIGTERM"), (5, "SIGKILL")],
)
def test_v15_swap_must_be_low_as_well(swap_free_percent, expected):
    """V15: at 1 % RAM, the signal depends on free swap too: both conditions must hold."""
    meminfo = MemInfo(RAM // 100, RAM, SWAP * swap_free_percent // 100, SWAP)
    assert lowmem_sig(EarlyoomConfig(), meminfo) == expected


def test_v15_sigterm_when_mem_available_reaches_10_percent():
    """V15: 1639 MiB is not low; 1.6 GiB is: SIGTERM to the highest oom_score, which exits."""
    env, host = make_host(8 * GIB)
    host.at(2.5, mem_available=1639 * MIB)
    host.at(3.05, mem_available=RAM // 10)
    run_earlyoom(env, host, until=5)
    assert events(host) == [
        (3.1, LOW_TERM),
        (3.1, f"sending SIGTERM to process 100 {SEND_JAVA}"),
        (3.6, "process 100 exited after 0.500 seconds"),
    ]
    assert host.signals == [(3.1, 100, "SIGTERM")]


def test_v15_sigkill_when_mem_available_reaches_5_percent():
    """V15: at 0.8 GiB earlyoom sends SIGKILL at once; the victim is gone at the first poll."""
    env, host = make_host(RAM // 20)
    run_earlyoom(env, host, until=1)
    assert events(host) == [
        (0.0, LOW_KILL),
        (0.0, f"sending SIGKILL to process 100 {SEND_JAVA}"),
        (0.0, "process 100 exited after 0.000 seconds"),
    ]
    assert host.signals == [(0.0, 100, "SIGKILL")]


def test_v15_nothing_happens_at_1_percent_ram_with_half_the_swap_free():
    """V15: 8 GiB swap, 50 % free: even with 1 % RAM available nobody is signalled."""
    env, host = make_host(RAM // 100, swap_total=SWAP, swap_free=SWAP // 2)
    run_earlyoom(env, host, until=60)
    assert events(host) == []
    assert host.signals == []


def test_v15_victim_that_ignores_sigterm_did_not_exit_after_10_seconds():
    """V15: 100 polls of 100 ms, then "did not exit"; the next poll picks the victim again."""
    env, host = make_host(RAM * 8 // 100, term_delay=None)
    earlyoom = run_earlyoom(env, host, until=9.95)
    assert earlyoom.state is EarlyoomState.WAITING_FOR_EXIT
    env.run(until=10.15)
    assert earlyoom.state is EarlyoomState.WAITING_FOR_EXIT
    assert events(host) == [
        (0.0, LOW_TERM),
        (0.0, f"sending SIGTERM to process 100 {SEND_JAVA}"),
        (10.0, "process 100 did not exit"),
        (10.0, "kill failed: Timer expired"),
        (10.1, LOW_TERM),
        (10.1, f"sending SIGTERM to process 100 {SEND_JAVA}"),
    ]
    assert host.signals == [(0.0, 100, "SIGTERM"), (10.1, 100, "SIGTERM")]


def test_sigterm_escalates_to_sigkill_when_memory_reaches_the_kill_limits():
    """A SIGTERMed victim still alive when MemAvailable falls to 5 % gets SIGKILL at that poll."""
    env, host = make_host(RAM * 8 // 100, term_delay=None)
    host.at(2.05, mem_available=RAM * 4 // 100)
    run_earlyoom(env, host, until=3)
    assert events(host) == [
        (0.0, LOW_TERM),
        (0.0, f"sending SIGTERM to process 100 {SEND_JAVA}"),
        (2.1, "escalating to SIGKILL after 2.100 seconds"),
        (2.1, "process 100 exited after 2.100 seconds"),
    ]
    assert host.signals == [(0.0, 100, "SIGTERM"), (2.1, 100, "SIGKILL")]


def test_recovery_while_selecting_a_victim_sends_nothing():
    """Memory is re-read after the /proc scan; if it recovered, earlyoom only says so."""
    env, host = make_host(RAM * 8 // 100)
    host.at(0.002, mem_available=RAM // 2)
    run_earlyoom(env, host, until=2, selection_time=0.005)
    assert events(host) == [
        (0.0, LOW_TERM),
        (0.005, "memory situation has recovered while selecting victim"),
    ]
    assert host.signals == []


def test_victim_is_the_highest_oom_score_not_the_largest_rss():
    """oom_score includes oom_score_adj: a 1 GiB process with adj 900 beats 6 GiB java."""
    env, host = make_host(RAM)
    host.add_process(300, "batch", 1 * GIB, oom_score_adj=900)
    victim = Earlyoom(env, host).find_victim()
    assert victim is not None
    assert (victim.process.pid, victim.oom_score) == (300, host.oom_score(host.procs[300]))
    assert victim.oom_score > JAVA_SCORE


def test_equal_oom_score_goes_to_the_larger_rss():
    """Ties on oom_score are broken by VmRSS, whatever the pid order."""
    env, host = make_host(RAM)
    host.procs[100].oom_score = host.procs[200].oom_score = 500
    host.procs[100].rss, host.procs[200].rss = 1 * GIB, 2 * GIB
    assert victim_pid(env, host) == 200


def test_equal_oom_score_and_rss_keeps_the_lower_pid():
    """A candidate equal in score and RSS does not displace the one /proc listed first."""
    env, host = make_host(RAM)
    host.procs[100].oom_score = host.procs[200].oom_score = 500
    host.procs[100].rss = host.procs[200].rss = 2 * GIB
    assert victim_pid(env, host) == 100


def test_oom_score_adj_minus_1000_init_itself_and_kernel_threads_are_never_chosen():
    """An adj of -1000 is skipped however large; so are pid 1, earlyoom's own pid and RSS 0."""
    env, host = make_host(RAM)
    host.procs[1].rss = 10 * GIB
    host.procs[100].oom_score_adj = -1000
    host.add_process(50, "earlyoom", 12 * GIB)
    host.add_process(2, "kthreadd", 0, oom_score=2000)
    assert victim_pid(env, host, EarlyoomConfig(pid=50)) == 200


def test_no_killable_process_sleeps_one_second():
    """With only adj -1000 processes earlyoom says so and sleeps 1 s (plus its poll sleep)."""
    env, host = make_host(RAM * 8 // 100)
    for process in host.procs.values():
        process.oom_score_adj = -1000
    run_earlyoom(env, host, until=1.15)
    message = "Could not find a process to kill. Sleeping 1 second."
    assert events(host) == [(0.0, LOW_TERM), (0.0, message), (1.1, LOW_TERM), (1.1, message)]
    assert host.signals == []


def test_prefer_adds_300_to_the_oom_score():
    """--prefer '^postgres$' makes 3 GiB postgres (oom_score 791 + 300) beat java (916)."""
    env, host = make_host(RAM * 8 // 100)
    run_earlyoom(env, host, until=0.05, prefer="^postgres$")
    assert events(host)[1] == (
        0.0,
        'sending SIGTERM to process 200 uid 0 "postgres": oom_score 791, oom_score_adj 0, '
        'VmRSS 3072 MiB, cmdline "postgres"',
    )


def test_avoid_subtracts_300_from_the_oom_score():
    """--avoid 'java' takes java (916 - 300) below postgres (791)."""
    env, host = make_host(RAM)
    victim = Earlyoom(env, host, EarlyoomConfig(avoid="java")).find_victim()
    assert victim is not None
    assert (victim.process.pid, victim.badness, victim.oom_score) == (200, 791, 791)
    assert Earlyoom(env, host, EarlyoomConfig(avoid="java")).badness(host.procs[100], 916) == 616


@pytest.mark.parametrize(
    ("mem_percent", "swap_total", "swap_percent", "expected"),
    [
        (50, 0, 0, 1.0),  # 40 % of 16 GiB / 6000 MiB/s = 1118 ms, clamped
        (15, 0, 0, 0.139),  # 838860 KiB / 6000 = 139 ms
        (10.5, 0, 0, 0.1),  # 13 ms, clamped up
        (5, 0, 0, 0.1),  # no headroom
        (10, SWAP, 11, 0.104),  # 1 % of 8 GiB swap / 800 MiB/s = 104 ms
        (10, SWAP, 50, 1.0),
    ],
)
def test_adaptive_sleep_is_headroom_over_fill_rate(mem_percent, swap_total, swap_percent, expected):
    """sleep_time_ms: headroom to the SIGTERM limits / (6000 MiB/s RAM, 800 MiB/s swap)."""
    meminfo = MemInfo(
        int(RAM * mem_percent / 100), RAM, swap_total * swap_percent // 100, swap_total
    )
    assert sleep_time(EarlyoomConfig(), meminfo) == expected


def test_polls_follow_the_adaptive_sleep_and_report_every_second():
    """At 15 % polls are 139 ms apart; the report line comes on the first poll past 1 s."""
    env, host = make_host(RAM * 15 // 100)
    run_earlyoom(env, host, until=2.3)
    line = "mem avail:  2457 of 16384 MiB (15.00%), swap free:    0 of    0 MiB ( 0.00%)"
    assert host.lines("earlyoom") == [(0.0, line), (1.112, line), (2.224, line)]


def test_percent_format_is_five_wide_with_two_decimals():
    """PRIPCT is ``%5.2lf%%``: the default SIGKILL limits print as `` 5.00%``."""
    assert [pripct(10), pripct(5), pripct(100)] == ["10.00%", " 5.00%", "100.00%"]
