"""Restart policy and CrashLoopBackOff (reference semantics §4; §12 V10)."""

from __future__ import annotations

import random
import re

import pytest

from patterns.supervisor import (
    BACK_OFF_EVENT_REASON,
    CRASH_LOOP_BACK_OFF,
    BackoffConfig,
    CrashLoopBackOff,
    backoff_event_message,
    format_pod,
    go_duration,
    observed_restart_time,
    parse_go_duration,
    should_restart,
    waiting_message,
)
from sim.scenario import Scenario
from sim.world import World


def crash_loop(backoff: CrashLoopBackOff, runs: list[float], first_start: float = 0.0):
    """Drive ``backoff`` like the kubelet: each start runs ``runs[i]`` s, then exits.

    Returns the delay from each exit to the next start, and the start times.
    """
    delays, starts = [], [first_start]
    now = first_start
    for run in runs:
        finished = now + run
        delay = backoff.restart_delay(finished)
        delays.append(delay)
        now = finished + delay
        backoff.started(now, finished)
        starts.append(now)
    return delays, starts


def test_backoff_defaults_are_10s_and_300s():
    """Initial back-off 10 s (kubelet backOffPeriod), cap 300 s (MaxContainerBackOff)."""
    assert BackoffConfig() == BackoffConfig(initial=10.0, cap=300.0)
    assert BackoffConfig.default() == BackoffConfig()


def test_default_stability_window_is_2_x_cap():
    """The entry expires after 2 x cap (client-go's default): 600 s for the kubelet default."""
    assert BackoffConfig().stable_after == 600.0
    assert BackoffConfig(initial=1.0, cap=60.0).stable_after == 120.0
    assert BackoffConfig(cap=60.0, stable_after=30.0).stable_after == 30.0


def test_resync_jitter_is_off_by_default():
    """The simulator stays exact unless the 10-15 s pod re-sync is switched on."""
    assert BackoffConfig().resync_jitter is False
    assert BackoffConfig.default(resync_jitter=True).resync_jitter is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0.0}, "0 < initial <= cap"),
        ({"initial": 20.0, "cap": 10.0}, "0 < initial <= cap"),
        ({"stable_after": -1.0}, "stable_after must be >= 0"),
    ],
)
def test_invalid_config_is_rejected(kwargs, message):
    """A non-positive initial, a cap below the initial or a negative window is an error."""
    with pytest.raises(ValueError, match=re.escape(message)):
        BackoffConfig(**kwargs)


def test_crash_loop_delays_double_from_0_to_the_300s_cap():
    """V10: exiting 1 s after every start -> delays 0, 10, 20, 40, 80, 160, 300, 300."""
    delays, starts = crash_loop(CrashLoopBackOff(), [1.0] * 8)
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    assert starts == [0, 1, 12, 33, 74, 155, 316, 617, 918]


def test_first_restart_is_immediate():
    """A container with no back-off entry restarts at once."""
    assert CrashLoopBackOff().restart_delay(5.0) == 0.0


def test_delay_is_read_without_advancing_the_entry():
    """``restart_delay`` is a query: asking twice gives the same answer; ``started`` advances."""
    backoff = CrashLoopBackOff()
    backoff.started(0.0, 0.0)
    assert backoff.restart_delay(1.0) == backoff.restart_delay(1.0) == 10.0
    backoff.started(11.0, 1.0)
    assert backoff.restart_delay(12.0) == 20.0


def test_running_more_than_10_minutes_resets_the_backoff():
    """V10: after a run of 11 min the restart is immediate and the next delay is 10 s again."""
    backoff = CrashLoopBackOff()
    crash_loop(backoff, [1.0] * 8)  # in the 300 s plateau, last start at 918
    delays, starts = crash_loop(backoff, [660.0, 1.0, 1.0], first_start=918.0)
    assert delays == [0, 10, 20]
    assert starts == [918, 1578, 1589, 1610]


def test_running_exactly_10_minutes_does_not_reset_the_backoff():
    """Expiry needs *more* than 2 x 300 s since the last update: 600 s keeps the back-off."""
    backoff = CrashLoopBackOff()
    crash_loop(backoff, [1.0] * 3)  # delays 0, 10, 20; back-off now 40, last start at 33
    assert backoff.restart_delay(33.0 + 600.0) == 40.0
    assert backoff.restart_delay(33.0 + 600.5) == 0.0


def test_custom_config_changes_initial_and_cap():
    """ReduceDefaultCrashLoopBackOffDecay-like config (1 s, 60 s): 0, 1, 2, 4, ..., 60, 60."""
    backoff = CrashLoopBackOff(BackoffConfig(initial=1.0, cap=60.0))
    delays, _ = crash_loop(backoff, [0.5] * 9)
    assert delays == [0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_waiting_message_for_the_40s_backoff():
    """V10: while waiting out the 40 s back-off, the Waiting state reads as the kubelet's."""
    backoff = CrashLoopBackOff()
    _, starts = crash_loop(backoff, [1.0] * 3)  # delays 0, 10, 20; next back-off 40 s
    finished = starts[-1] + 1.0
    delay = backoff.restart_delay(finished)
    uid = "5f3c1d2e-0000-4000-8000-000000000001"
    pod = format_pod("app-xyz", "default", uid)
    assert delay == 40.0
    assert CRASH_LOOP_BACK_OFF == "CrashLoopBackOff"
    assert waiting_message(delay, "app", pod) == (
        f"back-off 40s restarting failed container=app pod=app-xyz_default({uid})"
    )


def test_backoff_event_message_names_the_container_and_the_pod():
    """The Warning BackOff event: ``Back-off restarting failed container <c> in pod <pod>``."""
    pod = format_pod("app-xyz", "default", "uid-1")
    assert BACK_OFF_EVENT_REASON == "BackOff"
    assert backoff_event_message("app", pod) == (
        "Back-off restarting failed container app in pod app-xyz_default(uid-1)"
    )


def test_waiting_message_uses_go_durations_at_the_cap():
    """At the 300 s cap the message says ``5m0s``, as Go prints a ``time.Duration``."""
    assert waiting_message(300.0, "app", "p_ns(u)") == (
        "back-off 5m0s restarting failed container=app pod=p_ns(u)"
    )


# --------------------------------------------------------------------------- feature gates


def test_reduce_default_decay_delays_are_0_1_2_up_to_60():
    """V10 with ReduceDefaultCrashLoopBackOffDecay: 0, 1, 2, 4, 8, 16, 32, 60, 60 s."""
    config = BackoffConfig.reduce_default_decay()
    assert (config.initial, config.cap, config.stable_after) == (1.0, 60.0, 600.0)
    delays, _ = crash_loop(CrashLoopBackOff(config), [1.0] * 9)
    assert delays == [0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_reduce_default_decay_keeps_the_10_minute_stability_window():
    """KEP-4603: a 3-minute run (> 2 x 60 s) keeps the back-off; an 11-minute run resets it."""
    backoff = CrashLoopBackOff(BackoffConfig.reduce_default_decay())
    _, starts = crash_loop(backoff, [1.0] * 9)  # back-off now 60 s
    delays, _ = crash_loop(backoff, [180.0, 660.0, 1.0], first_start=starts[-1])
    assert delays == [60, 0, 1]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (5.0, [0, 5, 5, 5]),
        (60.0, [0, 10, 20, 40, 60, 60]),
        (300.0, [0, 10, 20, 40, 80, 160, 300, 300]),
        (1.0, [0, 1, 1]),
    ],
)
def test_max_container_restart_period_caps_the_delays(period, expected):
    """KubeletCrashLoopBackOffMax: the cap is the period; below 10 s it is the initial too."""
    config = BackoffConfig.max_container_restart_period(period)
    assert config.cap == period
    assert config.initial == min(10.0, period)
    delays, _ = crash_loop(CrashLoopBackOff(config), [1.0] * len(expected))
    assert delays == expected


def test_max_container_restart_period_keeps_the_10_minute_stability_window():
    """With a 5 s cap an 11 s run (> 2 x 5 s) still keeps the back-off: the kubelet's 600 s."""
    backoff = CrashLoopBackOff(BackoffConfig.max_container_restart_period(5.0))
    delays, _ = crash_loop(backoff, [1.0, 1.0, 11.0, 601.0, 1.0])
    assert delays == [0, 5, 5, 0, 5]


@pytest.mark.parametrize("period", [0.0, 0.5, 0.999, 300.001, 301.0, 600.0, -10.0])
def test_max_container_restart_period_outside_1s_to_300s_is_rejected(period):
    """The kubelet accepts 1 s..300 s only; the error names the field and the range."""
    with pytest.raises(ValueError, match=r"maxContainerRestartPeriod must be between 1s and 5m0s"):
        BackoffConfig.max_container_restart_period(period)


def test_feature_gate_constructors_pass_the_resync_jitter_switch():
    """Each named constructor takes ``resync_jitter``; it stays off unless asked for."""
    assert not BackoffConfig.reduce_default_decay().resync_jitter
    assert BackoffConfig.reduce_default_decay(resync_jitter=True).resync_jitter
    assert BackoffConfig.max_container_restart_period(30.0, resync_jitter=True).resync_jitter


# --------------------------------------------------------------------------- pod re-sync jitter


class Draws:
    """A fixed ``uniform(low, high)`` sequence that records the bounds it was called with."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)
        self.calls: list[tuple[float, float]] = []

    def __call__(self, low: float, high: float) -> float:
        """Return the next fixed value, noting the bounds asked for."""
        self.calls.append((low, high))
        return self.values.pop(0)


def test_observed_restart_is_the_first_sync_at_or_after_the_backoff():
    """Crash at 100 s, 40 s back-off, syncs at 100, 112, 123, 137, 147: restart seen at 147."""
    draws = Draws(12.0, 11.0, 14.0, 10.0, 99.0)
    assert observed_restart_time(100.0, 40.0, draws) == 147.0
    assert draws.calls == [(10.0, 15.0)] * 4


def test_a_sync_exactly_when_the_backoff_ends_restarts_the_container():
    """``doBackOff`` waits only while ``now - finishedAt < backoff``: a sync at the end restarts."""
    assert observed_restart_time(50.0, 20.0, Draws(10.0, 10.0)) == 70.0


def test_no_backoff_restarts_at_the_crash_sync_without_drawing():
    """A zero back-off restarts at the sync the exit itself triggers: no re-sync is drawn."""
    draws = Draws()
    assert observed_restart_time(7.0, 0.0, draws) == 7.0
    assert draws.calls == []


def test_a_short_backoff_waits_a_whole_resync():
    """A 1 s back-off (reduced decay) is seen only at the first re-sync, 10-15 s later."""
    assert observed_restart_time(0.0, 1.0, Draws(13.5)) == 13.5


@pytest.mark.parametrize("seed", range(5))
def test_resync_lag_is_always_in_0_to_15s(seed):
    """V10: the observed restart lags the back-off by at least 0 and less than one 15 s sync."""
    rng = random.Random(seed)
    for backoff in [0, 1, 2, 5, 10, 20, 40, 60, 80, 160, 300]:
        for crashed_at in (0.0, 33.0, 1234.5):
            observed = observed_restart_time(crashed_at, backoff, rng.uniform)
            assert 0.0 <= observed - (crashed_at + backoff) < 15.0


def test_observed_restart_delay_is_exact_unless_resync_jitter_is_on():
    """``observed_restart_delay`` equals ``restart_delay`` by default and draws nothing."""
    exact = CrashLoopBackOff()
    crash_loop(exact, [1.0] * 3)  # back-off 40 s, last start at 33
    draws = Draws(12.0, 14.0, 11.0, 10.0)
    assert exact.observed_restart_delay(34.0, draws) == 40.0
    assert draws.calls == []

    jittered = CrashLoopBackOff(BackoffConfig(resync_jitter=True))
    crash_loop(jittered, [1.0] * 3)
    assert jittered.restart_delay(34.0) == 40.0
    assert jittered.observed_restart_delay(34.0, draws) == 47.0  # syncs at +12, +26, +37, +47


def test_jittered_crash_loop_keeps_the_v10_backoffs():
    """With the re-sync lag the back-off entries still go 10, 20, 40, ..., 300, 300."""
    backoff = CrashLoopBackOff(BackoffConfig(resync_jitter=True))
    rng = random.Random(7)
    now, entries = 0.0, []
    for _ in range(8):
        finished = now + 1.0
        delay = backoff.observed_restart_delay(finished, rng.uniform)
        assert 0.0 <= delay - backoff.restart_delay(finished) < 15.0
        now = finished + delay
        backoff.started(now, finished)
        entries.append(backoff.backoff)
    assert entries == [10, 20, 40, 80, 160, 300, 300, 300]


# --------------------------------------------------------------------------- Go durations


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (40.0, "40s"),
        (300.0, "5m0s"),
        (1.0, "1s"),
        (160.0, "2m40s"),
        (10.0, "10s"),
        (60.0, "1m0s"),
        (0.0, "0s"),
        (1.5, "1.5s"),
        (90.25, "1m30.25s"),
        (3600.0, "1h0m0s"),
        (3661.0, "1h1m1s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (0.000002, "2\u00b5s"),
        (1e-9, "1ns"),
        (-10.0, "-10s"),
    ],
)
def test_go_duration_matches_time_duration_string(seconds, text):
    """Durations print as Go's ``time.Duration.String`` does (the kubelet's ``%s``)."""
    assert go_duration(seconds) == text


@pytest.mark.parametrize(
    ("policy", "exit_code", "restarts"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 1, True),
        ("Never", 0, False),
        ("Never", 1, False),
    ],
)
def test_should_restart_follows_the_restart_policy(policy, exit_code, restarts):
    """V10: Always restarts on any exit, OnFailure on non-zero only, Never never."""
    assert should_restart(policy, exit_code) is restarts


def test_oom_killed_exit_137_is_a_failure_for_on_failure():
    """Exit code 137 (OOMKilled) is non-zero: OnFailure restarts it."""
    assert should_restart("OnFailure", 137)


# --------------------------------------------------------------------------- in a world


def oom_at_start_scenario(policy: str = "Always", duration: float = 1000.0) -> Scenario:
    """One replica whose 100 Mi baseline does not fit its 64 Mi limit: OOM-killed at every start."""
    return Scenario.model_validate(
        {
            "name": "crash-loop",
            "duration": duration,
            "hosts": [{"name": "node-a", "memory": "4Gi"}],
            "services": {
                "app": {
                    "resources": {"limits": {"memory": "64Mi"}},
                    "service_time": {"dist": "deterministic", "value": "10ms"},
                    "memory": {"baseline": "100Mi"},
                    "restart": {"policy": policy},
                }
            },
            "workload": {"entry": "app", "rate": {"profile": "constant", "rate": 0}},
        }
    )


def test_container_oom_killed_at_every_start_restarts_at_v10_delays():
    """V10 in a world: restarts at 0, 10, 30, 70, 150, 310, 610, 910 (delays 0..300, 300)."""
    events = World(oom_at_start_scenario()).run().events
    restarts = events[events.kind == "restart"]
    assert restarts.t.tolist() == [0, 10, 30, 70, 150, 310, 610, 910]
    assert restarts.entity.unique().tolist() == ["app-0"]
    assert restarts.detail.iloc[-1] == "Restarting container app in pod app-0 (restartCount 8)"


def test_crash_loop_kills_are_oom_kills_with_exit_code_137():
    """V9: each start is OOMKilled, Exit Code 137; one kill and one termination per start."""
    result = World(oom_at_start_scenario(duration=100.0)).run()
    events = result.events
    terminated = events[events.kind == "terminated"]
    assert terminated.t.tolist() == [0, 0, 10, 30, 70]
    assert set(terminated.detail) == {
        "Container app-0 terminated: Reason: OOMKilled, Exit Code: 137"
    }
    assert (events.kind == "oom_kill").sum() == 5
    assert result.summary["oom_kills"] == 5
    assert result.summary["restarts"] == 4


def test_crash_loop_logs_back_off_with_the_kubelet_texts():
    """Each non-zero wait logs the kubelet's ``BackOff`` event and the Waiting state's message.

    V10's texts: ``Back-off restarting failed container app in pod <pod>`` and ``back-off 40s
    restarting failed container=app pod=app-0_default(<uid>)``, the pod's UID a UUID.
    """
    world = World(oom_at_start_scenario(duration=100.0))
    events = world.run().events
    instance = world.services["app"].instances[0]
    pod = f"app-0_default({instance.uid})"
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", instance.uid)
    backoffs = events[events.kind == "backoff"]
    assert backoffs.t.tolist() == [0, 10, 30, 70]
    assert set(backoffs.detail) == {f"Back-off restarting failed container app in pod {pod}"}
    waiting = events[events.kind == "waiting"]
    assert waiting.t.tolist() == [0, 10, 30, 70]
    assert waiting.detail.iloc[2] == (
        "Container app-0 waiting: Reason: CrashLoopBackOff, "
        f"Message: back-off 40s restarting failed container=app pod={pod}"
    )
    assert instance.state.value == "waiting"
    assert instance.waiting_message == f"back-off 1m20s restarting failed container=app pod={pod}"


def test_never_policy_leaves_the_oom_killed_container_terminated():
    """With restartPolicy Never: one OOM kill, no restart, the instance stays terminated."""
    world = World(oom_at_start_scenario("Never", duration=100.0))
    events = world.run().events
    assert (events.kind == "restart").sum() == 0
    assert (events.kind == "oom_kill").sum() == 1
    assert world.services["app"].instances[0].state.value == "terminated"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("10s", 10.0),
        ("1m20s", 80.0),
        ("5m0s", 300.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("1h2m5.25s", 3725.25),
        ("-40s", -40.0),
    ],
)
def test_parse_go_duration_reads_what_go_duration_writes(text: str, seconds: float) -> None:
    """The inverse of go_duration, as the kubelet's back-off lines spell durations."""
    assert parse_go_duration(text) == pytest.approx(seconds)
    assert go_duration(seconds) == text


@pytest.mark.parametrize("text", ["80", "--40s", "-", "1m-20s", "s"])
def test_parse_go_duration_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration(text)
