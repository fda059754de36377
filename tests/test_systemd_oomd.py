"""systemd-oomd on a fake host (reference semantics §6.1, §2.8; §12 V16)."""

from __future__ import annotations

import pytest
import simpy
from fake_host import GIB, MIB, FakeHost

from patterns.systemd_oomd import (
    MonitoredCgroup,
    OomdConfig,
    SystemdOomd,
    format_timespan,
    leaf_candidates,
)

RAM = 16 * GIB
SWAP = 8 * GIB
SLICE = "/user.slice"
A, B, C = f"{SLICE}/a.scope", f"{SLICE}/b.scope", f"{SLICE}/c.scope"
SESSION, D = f"{SLICE}/session.slice", f"{SLICE}/session.slice/d.scope"
PRESSURE_UNIT = MonitoredCgroup(SLICE, memory_pressure=True)
SWAP_UNIT = MonitoredCgroup(SLICE, swap=True)


def pressure_line(victim: str, avg10: str = "70.00", limit: str = "60.00", span: str = "30s"):
    return (
        f"Killed {victim} due to memory pressure for {SLICE} being {avg10}% > {limit}% "
        f"for > {span} with reclaim activity"
    )


def make_host(available: int = RAM // 2, swap_free: int = SWAP):
    """A user.slice with three scopes, each with one process, and an idle nested session scope.

    a has scanned a million pages before the test but scans slowly; b scans fastest.
    """
    env = simpy.Environment()
    host = FakeHost(env, RAM, available, SWAP, swap_free)
    host.add_cgroup(SLICE)
    host.add_cgroup(A, usage=2 * GIB, swap_usage=1 * GIB, pgscan=1_000_000)
    host.add_cgroup(B, usage=1 * GIB, swap_usage=2 * GIB)
    host.add_cgroup(C, usage=3 * GIB, swap_usage=400 * MIB)
    host.add_cgroup(SESSION)
    host.add_cgroup(D)
    for pid, path in ((10, A), (20, B), (30, C)):
        host.add_process(pid, path.rsplit("/", 1)[1], 512 * MIB, cgroup_path=path)
    return env, host


def scan_pages(env, host, rates: dict[str, int], until: float = 1e9):
    """Every second, half-way between oomd's samples, reclaim scans pages (sets last_reclaim)."""

    def scanner():
        yield env.timeout(0.5)
        while env.now < until:
            for path, pages in rates.items():
                host.cgroups[path].pgscan += pages
            host.cgroups[SLICE].pgscan += sum(rates.values())
            host.cgroups[SLICE].last_reclaim = env.now
            yield env.timeout(1)

    env.process(scanner())


def pressure(env, host, avg10: float, start: float, end: float, path: str = SLICE):
    """PSI full avg10 of ``path`` is ``avg10`` from ``start`` to ``end``, 0 otherwise."""
    host.at(start, lambda: setattr(host.cgroups[path], "psi_full", avg10))
    host.at(end, lambda: setattr(host.cgroups[path], "psi_full", 0.0))


def run_oomd(env, host, until: float, **config: object) -> SystemdOomd:
    config.setdefault("monitored", (PRESSURE_UNIT,))
    oomd = SystemdOomd(env, host, OomdConfig(**config))  # type: ignore[arg-type]
    oomd.start()
    env.run(until=until)
    return oomd


RATES = {A: 100, B: 300, C: 50}


def test_defaults_come_from_oomd_manager_h():
    """SwapUsedLimit 90 %, pressure 60 % for 30 s, polls 150 ms / 1 s, windows 30 s / 15 s, 5 %."""
    config = OomdConfig()
    assert (config.swap_used_limit, config.swap_candidate_min_percent) == (90.0, 5.0)
    assert config.default_memory_pressure_limit == 60.0
    assert config.default_memory_pressure_duration == 30.0
    assert (config.swap_interval, config.memory_pressure_interval) == (0.15, 1.0)
    assert (config.reclaim_window, config.post_action_delay) == (30.0, 15.0)


def test_config_is_immutable():
    """The preferences mapping is read-only, like the rest of the frozen config."""
    config = OomdConfig(preferences={A: "avoid"})
    with pytest.raises(TypeError):
        config.preferences[B] = "omit"  # type: ignore[index]


def test_v16_pressure_for_29_seconds_kills_nothing():
    """V16: full avg10 = 70 % for 29 s, with reclaim all along: no kill."""
    env, host = make_host()
    scan_pages(env, host, RATES)
    pressure(env, host, 70.0, 0.5, 29.5)
    run_oomd(env, host, until=120)
    assert host.kills == []
    assert host.lines("systemd-oomd") == []


def test_v16_pressure_for_31_seconds_kills_the_highest_pgscan_rate_then_waits_15_seconds():
    """V16: 70 % for 31 s -> b (300 pages/s) is killed, not a (most pages scanned in all).

    The next kill, of a, waits for the 15 s post-action delay while pressure stays high.
    """
    env, host = make_host()
    scan_pages(env, host, RATES)
    pressure(env, host, 70.0, 0.5, 1e9)
    run_oomd(env, host, until=60)
    assert host.kills == [(31.0, B), (46.0, A)]
    assert host.signals == [(31.0, 20, "SIGKILL"), (46.0, 10, "SIGKILL")]
    assert host.lines("systemd-oomd") == [(31.0, pressure_line(B)), (46.0, pressure_line(A))]


def test_v16_kill_needs_reclaim_within_the_last_30_seconds():
    """V16: pressure without recent reclaim kills nothing; reclaim 30 s ago still counts."""
    env, host = make_host()
    host.cgroups[SLICE].last_reclaim = 0.2
    for path, pgscan in ((A, 500), (B, 900)):
        host.cgroups[path].pgscan = pgscan
    pressure(env, host, 70.0, 0.5, 1e9)
    run_oomd(env, host, until=40)
    assert host.kills == []

    env, host = make_host()
    host.cgroups[SLICE].last_reclaim = 1.0
    pressure(env, host, 70.0, 0.5, 1e9)
    run_oomd(env, host, until=32)
    assert host.kills == [(31.0, C)]  # no pgscan rate anywhere: the largest memory.current


def test_pressure_at_exactly_the_limit_is_not_above_it():
    """oomd_pressure_above compares avg10 > limit: 60.00 % never starts a hit."""
    env, host = make_host()
    scan_pages(env, host, RATES)
    pressure(env, host, 60.0, 0.5, 1e9)
    run_oomd(env, host, until=60)
    assert host.kills == []


def test_a_dip_below_the_limit_restarts_the_duration():
    """One sample at 50 % resets the hit: the kill comes 30 s after pressure returns."""
    env, host = make_host()
    scan_pages(env, host, RATES)
    pressure(env, host, 70.0, 0.5, 1e9)
    host.at(20.5, lambda: setattr(host.cgroups[SLICE], "psi_full", 50.0))
    host.at(21.5, lambda: setattr(host.cgroups[SLICE], "psi_full", 70.0))
    run_oomd(env, host, until=60)
    assert host.kills == [(52.0, B)]


def test_per_unit_limit_and_duration_show_in_the_log_line():
    """ManagedOOMMemoryPressureLimit=50% and a 90 s duration; avg10 printed with two decimals."""
    env, host = make_host()
    scan_pages(env, host, RATES)
    pressure(env, host, 72.3, 0.5, 1e9)
    unit = MonitoredCgroup(
        SLICE, memory_pressure=True, memory_pressure_limit=50, memory_pressure_duration=90
    )
    run_oomd(env, host, until=95, monitored=(unit,))
    assert host.lines("systemd-oomd") == [
        (91.0, pressure_line(B, avg10="72.30", limit="50.00", span="1min 30s"))
    ]


def test_omit_is_never_killed_and_avoid_goes_last():
    """ManagedOOMPreference: b (fastest) is omitted, a is avoided -> c, then a, then nothing."""
    env, host = make_host()
    scan_pages(env, host, RATES)
    pressure(env, host, 70.0, 0.5, 1e9)
    run_oomd(env, host, until=100, preferences={B: "omit", A: "avoid"})
    assert host.kills == [(31.0, C), (46.0, A)]
    assert host.procs[20].alive


def test_equal_pgscan_rates_go_to_the_larger_memory_usage():
    """compare_pgscan_rate_and_memory_usage: rate first, then memory.current (c has 3 GiB)."""
    env, host = make_host()
    scan_pages(env, host, {A: 100, B: 100, C: 100})
    pressure(env, host, 70.0, 0.5, 1e9)
    run_oomd(env, host, until=32)
    assert host.kills == [(31.0, C)]


def test_candidates_are_leaves_and_idle_empty_ones_are_skipped():
    """The session slice is not a candidate, only its scope; d has no pgscan and no memory."""
    env, host = make_host()
    assert [c.path for c in leaf_candidates(host.cgroups[SLICE])] == [A, B, C, D]
    assert [c.path for c in leaf_candidates(host.cgroups[D])] == [D]
    host.add_process(40, "d", 512 * MIB, cgroup_path=D)
    scan_pages(env, host, RATES)
    pressure(env, host, 70.0, 0.5, 1e9)
    run_oomd(env, host, until=100, preferences={A: "omit", B: "omit", C: "omit"})
    assert host.kills == []
    assert host.procs[40].alive


def test_kills_one_cgroup_per_interval_across_monitored_units():
    """Two units under pressure: one kill per interval, and the delay covers both units.

    The session slice's d would be killed too if oomd acted on every target; the user slice is
    listed first, so its candidates (b, a, c, then d) go one every 15 s.
    """
    env, host = make_host()
    host.add_process(40, "d", 512 * MIB, cgroup_path=D)
    host.cgroups[D].usage = GIB
    scan_pages(env, host, RATES)
    host.cgroups[SESSION].last_reclaim = 0.5
    pressure(env, host, 70.0, 0.5, 1e9)
    pressure(env, host, 80.0, 0.5, 1e9, path=SESSION)
    units = (PRESSURE_UNIT, MonitoredCgroup(SESSION, memory_pressure=True))
    run_oomd(env, host, until=80, monitored=units)
    assert host.kills == [(31.0, B), (46.0, A), (61.0, C), (76.0, D)]


def kill_on_swap(env, host, until: float) -> SystemdOomd:
    return run_oomd(env, host, until, monitored=(SWAP_UNIT,))


def test_v16_swap_kill_needs_ram_and_swap_both_over_90_percent_used():
    """V16: 94 % RAM used with half the swap free, or 95 % swap used with half the RAM: no kill.

    Both over 90 %: b (2 GiB of swap) goes at the next 150 ms poll, then a (1 GiB) at the next
    one (no delay after a swap kill); c uses 400 MiB, below 5 % of swap, and stays.
    """
    env, host = make_host(available=RAM // 2, swap_free=SWAP * 5 // 100)
    host.at(1.0, mem_available=1 * GIB, swap_free=SWAP // 2)
    host.at(2.0, swap_free=SWAP * 5 // 100)
    kill_on_swap(env, host, until=5)
    assert host.kills == [(2.1, B), (2.25, A)]
    assert host.lines("systemd-oomd") == [
        (
            2.1,
            f"Killed {B} due to memory used (16106127360) / total (17179869184) and "
            "swap used (8160437863) / total (8589934592) being more than 90.00%",
        ),
        (
            2.25,
            f"Killed {A} due to memory used (15569256448) / total (17179869184) and "
            "swap used (8160437863) / total (8589934592) being more than 90.00%",
        ),
    ]
    assert host.procs[30].alive


def test_swap_victim_must_use_more_than_5_percent_of_swap():
    """THRESHOLD_SWAP_USED_PERCENT: usage equal to 5 % of SwapTotal is not enough."""
    env, host = make_host(available=GIB, swap_free=0)
    for path in (A, B):
        host.cgroups[path].swap_usage = SWAP * 5 // 100
    host.cgroups[C].swap_usage = SWAP * 5 // 100 + 1
    kill_on_swap(env, host, until=1)
    assert host.kills == [(0.0, C)]


def test_ram_at_exactly_10_percent_available_is_not_over_the_limit():
    """oomd_mem_available_below is strict: MemAvailable = MemTotal * 1000 / 10000 is fine."""
    env, host = make_host(available=RAM * 1000 // 10000, swap_free=0)
    kill_on_swap(env, host, until=1)
    assert host.kills == []
    host.set(mem_available=RAM * 1000 // 10000 - 1)
    env.run(until=1.2)
    assert host.kills == [(1.05, B)]


def test_swap_rule_never_fires_without_swap():
    """With SwapTotal 0, swap free is never below 10 % of it."""
    env = simpy.Environment()
    host = FakeHost(env, RAM, 0)
    host.add_cgroup(SLICE)
    host.add_cgroup(A, swap_usage=GIB)
    host.add_process(10, "a", GIB, cgroup_path=A)
    kill_on_swap(env, host, until=2)
    assert host.kills == []


def test_swap_preferences_omit_and_avoid():
    """With b omitted and a avoided, c (above 5 % here) goes first and a next."""
    env, host = make_host(available=GIB, swap_free=0)
    host.cgroups[C].swap_usage = GIB // 2
    run_oomd(env, host, 0.2, monitored=(SWAP_UNIT,), preferences={B: "omit", A: "avoid"})
    assert host.kills == [(0.0, C), (0.15, A)]


def test_unmonitored_host_does_nothing():
    """No ManagedOOM*=kill unit: both loops poll and never act."""
    env, host = make_host(available=0, swap_free=0)
    scan_pages(env, host, RATES)
    pressure(env, host, 100.0, 0.0, 1e9)
    run_oomd(env, host, until=60, monitored=())
    assert host.kills == []


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (60, "1min"), (90, "1min 30s"), (3600, "1h"), (0, "0")]
)
def test_timespan_format(seconds, text):
    """FORMAT_TIMESPAN with one-second accuracy, as the pressure log line prints durations."""
    assert format_timespan(seconds) == text
