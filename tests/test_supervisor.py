"""Restart policy and CrashLoopBackOff (reference semantics §4; §12 V10)."""

from __future__ import annotations

import pytest

from patterns.supervisor import BackoffConfig, CrashLoopBackOff, should_restart
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


def test_crash_loop_logs_back_off_with_the_delay():
    """Each non-zero wait is announced as a kubelet ``Back-off restarting failed container``."""
    events = World(oom_at_start_scenario(duration=100.0)).run().events
    backoffs = events[events.kind == "backoff"]
    assert backoffs.t.tolist() == [0, 10, 30, 70]
    assert backoffs.detail.iloc[2] == (
        "Back-off restarting failed container app in pod app-0 (back-off 40s)"
    )


def test_never_policy_leaves_the_oom_killed_container_terminated():
    """With restartPolicy Never: one OOM kill, no restart, the instance stays terminated."""
    world = World(oom_at_start_scenario("Never", duration=100.0))
    events = world.run().events
    assert (events.kind == "restart").sum() == 0
    assert (events.kind == "oom_kill").sum() == 1
    assert world.services["app"].instances[0].state.value == "terminated"
