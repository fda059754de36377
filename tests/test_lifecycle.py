"""Container lifecycle in a world: start-up and warm-up, graceful stop, CrashLoopBackOff variants.

Exact timelines, as in ``test_service.py``: tiny worlds with no Poisson arrivals, requests sent
by hand at chosen instants, deterministic service times. Reference: semantics §4 (restart
policy, CrashLoopBackOff and its feature gates, terminationGracePeriodSeconds) and §12 V9, V10.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError
from test_service import deterministic, kinds, scenario, send

from sim.scenario import Scenario, ScenarioError, load_scenario_text
from sim.service import InstanceState
from sim.world import World


def at(world: World, t: float, action: Any) -> None:
    """Run ``action()`` at simulated time ``t`` (after the run's boot at 0)."""
    world.env.timeout(t).callbacks.append(lambda _: action())


# --------------------------------------------------------------------------- start-up, warm-up


def test_warm_up_slows_service_after_a_cold_start_and_fades_linearly():
    """A restarted container serves ``warmup_factor`` times slower, falling linearly to 1.

    100 ms service, start-up 1 s, warm-up 10 s from 3x: crashed at 5 s, it restarts at once and
    serves from 6 s; a request at 6.5 s takes 0.1 x (1 + 2 x 9.5/10) = 0.29 s, one at 11 s
    0.2 s, one at 20 s 0.1 s. The replica running when the run begins is already warm.
    """
    world = World(
        scenario(
            {
                "api": {
                    "service_time": deterministic("100ms"),
                    "startup": {"delay": "1s", "warmup": "10s", "warmup_factor": 3},
                }
            },
            faults=[{"kind": "crash", "target": "api", "at": 5}],
            duration=30,
        )
    )
    log = send(world, [1.0, 6.5, 11.0, 20.0])
    world.run()
    assert [(rid, outcome, round(end, 6)) for rid, outcome, end in log] == [
        (0, "ok", 1.1),
        (1, "ok", 6.79),
        (2, "ok", 11.2),
        (3, "ok", 20.1),
    ]


@pytest.mark.parametrize(
    ("startup", "message"),
    [
        ({"warmup": "10s"}, "give warmup and a warmup_factor above 1 together, or neither"),
        ({"warmup_factor": 2}, "give warmup and a warmup_factor above 1 together, or neither"),
        ({"warmup": "5s", "warmup_factor": 0.5}, "Input should be greater than or equal to 1"),
    ],
)
def test_warm_up_needs_both_its_fields(startup: dict[str, Any], message: str):
    """A warm-up without a factor above 1 (or the reverse) is a scenario error."""
    with pytest.raises(ValidationError, match=message):
        scenario({"api": {"service_time": deterministic("1ms"), "startup": startup}})


# --------------------------------------------------------------------------- graceful stop


def graceful_world(grace: float) -> tuple[World, list[tuple[int, str, float]]]:
    """One worker, 1 s per request; requests at 0 and 0.1 (queued), SIGTERM at 0.5, one at 0.6."""
    world = World(
        scenario(
            {
                "api": {
                    "workers": 1,
                    "service_time": deterministic("1s"),
                    "termination_grace_period_seconds": 30,
                }
            },
            duration=10,
        )
    )
    instance = world.services["api"].instances[0]
    log = send(world, [0.0, 0.1, 0.6])
    at(world, 0.5, lambda: instance.stop(grace))
    return world, log


def test_sigterm_drains_requests_inside_then_exits_143():
    """SIGTERM: out of the load balancer, the requests inside finish, then exit 143.

    The container serves the request in service and the queued one, and exits 143 (``Error``)
    when the last leaves. The request at 0.6 s finds no ready replica (``unavailable``);
    restartPolicy Always brings the container back at once (the first restart has no back-off).
    """
    world, log = graceful_world(grace=30)
    instance = world.services["api"].instances[0]
    states: list[str] = []
    at(world, 0.55, lambda: states.append(instance.state.value))
    result = world.run()
    assert sorted(log) == [(0, "ok", 1.0), (1, "ok", 2.0), (2, "unavailable", 0.6)]
    assert states == ["terminating"]
    assert kinds(result, "terminated") == [
        (2.0, "api-0", "Container api-0 terminated: Reason: Error, Exit Code: 143")
    ]
    assert [t for t, _, _ in kinds(result, "restart")] == [2.0]
    assert instance.state is InstanceState.RUNNING


def test_sigkill_at_the_end_of_the_grace_period_resets_what_is_left():
    """A grace period of 1.2 s: SIGKILL at 1.7 s cuts the queued request (``reset``), exit 137."""
    world, log = graceful_world(grace=1.2)
    result = world.run()
    assert sorted(log) == [(0, "ok", 1.0), (1, "reset", 1.7), (2, "unavailable", 0.6)]
    assert kinds(result, "terminated") == [
        (1.7, "api-0", "Container api-0 terminated: Reason: Error, Exit Code: 137")
    ]


def test_sigterm_to_an_idle_container_exits_at_once():
    """Nothing inside: the SIGTERM'd process exits at once with 143."""
    world = World(scenario({"api": {"service_time": deterministic("1s")}}, duration=5))
    instance = world.services["api"].instances[0]
    at(world, 1.0, lambda: instance.stop(30))
    result = world.run()
    assert kinds(result, "terminated") == [
        (1.0, "api-0", "Container api-0 terminated: Reason: Error, Exit Code: 143")
    ]


def test_zero_grace_period_is_an_immediate_sigkill():
    """``grace`` 0: SIGKILL at once, the request in service is reset, exit 137."""
    world = World(scenario({"api": {"service_time": deterministic("1s")}}, duration=5))
    instance = world.services["api"].instances[0]
    log = send(world, [0.0])
    at(world, 0.5, lambda: instance.stop(0))
    result = world.run()
    assert log == [(0, "reset", 0.5)]
    assert kinds(result, "terminated")[0][2].endswith("Exit Code: 137")


# --------------------------------------------------------------------------- CrashLoopBackOff


def oom_loop(restart: dict[str, Any], duration: float = 400.0) -> Scenario:
    """One replica whose baseline does not fit its limit: OOM-killed at every start."""
    return scenario(
        {
            "app": {
                "resources": {"limits": {"memory": "64Mi"}},
                "service_time": deterministic("10ms"),
                "memory": {"baseline": "100Mi"},
                "restart": restart,
            }
        },
        entry="app",
        duration=duration,
    )


def restart_times(result: Any) -> list[float]:
    return [round(t, 6) for t, _, _ in kinds(result, "restart")]


def test_reduce_default_decay_backs_off_from_1s_to_60s():
    """V10 with ReduceDefaultCrashLoopBackOffDecay: delays 0, 1, 2, 4, 8, 16, 32, 60, 60 s."""
    result = World(oom_loop({"backoff": "reduce_default_decay"}, duration=200)).run()
    assert restart_times(result) == [0, 1, 3, 7, 15, 31, 63, 123, 183]


def test_max_container_restart_period_below_10s_is_also_the_initial_delay():
    """``maxContainerRestartPeriod: 5s``: delays 0, 5, 5, 5 (the initial drops to the cap)."""
    result = World(oom_loop({"max_container_restart_period": "5s"}, duration=16)).run()
    assert restart_times(result) == [0, 5, 10, 15]
    waiting = kinds(result, "waiting")
    assert waiting[0][2].startswith("Container app-0 waiting: Reason: CrashLoopBackOff, ")
    message = "Message: back-off 5s restarting failed container=app pod=app-0_default("
    assert message in waiting[0][2]


def test_resync_jitter_restarts_at_the_first_pod_sync_after_the_back_off():
    """With the kubelet's 10-15 s re-syncs, each restart lags its back-off by less than 15 s."""
    result = World(oom_loop({"resync_jitter": True}, duration=300)).run()
    times = restart_times(result)
    exact = [0, 10, 30, 70, 150]
    delays = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == 0
    for delay, backoff in zip(delays, [10, 20, 40, 80], strict=False):
        assert backoff <= delay < backoff + 15
    assert times[1:4] != exact[1:4]  # the syncs do move them


@pytest.mark.parametrize(
    ("restart", "message"),
    [
        (
            {"max_container_restart_period": "10m"},
            "max_container_restart_period must be between 1s and 300s, got 10m",
        ),
        (
            {"max_container_restart_period": "30s", "backoff": "reduce_default_decay"},
            "two feature gates; give one",
        ),
    ],
)
def test_restart_back_off_settings_are_checked(restart: dict[str, Any], message: str):
    """The kubelet's limits on ``maxContainerRestartPeriod``; one feature gate at a time."""
    with pytest.raises(ValidationError, match=message):
        oom_loop(restart)


def test_termination_grace_period_must_not_be_negative():
    """``termination_grace_period_seconds`` is a whole number >= 0, reported at its line."""
    text = """\
name: grace
duration: 1m
hosts: [{name: node-a, memory: 4Gi}]
services:
  api:
    service_time: {dist: exponential, mean: 20ms}
    termination_grace_period_seconds: -1
workload: {entry: api, rate: {profile: constant, rate: 10/s}}
"""
    with pytest.raises(ScenarioError) as error:
        load_scenario_text(text, "grace.yaml")
    assert str(error.value) == (
        "grace.yaml:7:39: services.api.termination_grace_period_seconds: "
        "Input should be greater than or equal to 0"
    )
