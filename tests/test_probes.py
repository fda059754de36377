"""Health probes through the whole simulator (semantics §5; §12 V11-V13).

The kubelet's prober workers (:mod:`patterns.health_probe`) run against real instances: the
event log carries the kubelet's ``Unhealthy`` and ``Killing`` lines, readiness decides
load-balancer membership, and liveness or startup failures restart containers through the
restart policy.

A run begins in steady state, so each pod's probe workers tick at a phase of their own: the
worker sleeps ``uniform(0, period)`` first, drawn from the pod's stream ``probes/<pod>/0`` (one
draw per worker, in the kubelet's order startup, readiness, liveness). :func:`phases` draws the
same numbers, so each timeline below is exact.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_service import deterministic, scenario, send

from patterns.health_probe import ProbeKind
from sim.scenario import ScenarioError, load_scenario_text
from sim.service import Instance, InstanceState, ProbedInstance
from sim.streams import stream
from sim.world import World

SEED = 0
HTTP_TIMEOUT = (
    'Liveness probe failed: Get "http://10.244.0.2:8080/healthz": context deadline exceeded '
    "(Client.Timeout exceeded while awaiting headers)"
)
KILLING = "Container app failed liveness probe, will be restarted"


def phases(pod: str, *periods: float) -> list[float]:
    """The first tick of each probe worker of ``pod``, in the kubelet's start order."""
    rng = stream(SEED, f"probes/{pod}/0")
    return [float(rng.random()) * period for period in periods]


def app(probes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One replica of ``app``: 10 ms requests, the given probes."""
    return {"app": {"service_time": deterministic("10ms"), "probes": probes} | extra}


def world_of(services: dict[str, Any], faults: list[dict[str, Any]], duration: float) -> World:
    return World(scenario(services, entry="app", faults=faults, duration=duration), seed=SEED)


def events(world: World, *names: str) -> list[tuple[float, str, str]]:
    """``(t, kind, detail)`` of the events of the given kinds, rounded to the microsecond."""
    frame = world.recorder.events_frame()
    rows = frame[frame.kind.isin(names)]
    return [(round(r.t, 6), r.kind, r.detail) for r in rows.itertuples()]


HEALTHZ = {"http_get": {"path": "/healthz"}, "shares_workers": False}


# --------------------------------------------------------------------------- V11 liveness


def test_v11_liveness_kills_a_hung_container_after_three_failures():
    """V11: the app hangs 35 s after the probe grid's origin; probes at +40, +50, +60 fail.

    Each failed probe logs ``Unhealthy`` when its 1 s timeout ends; the third publishes the
    Failure: one ``Killing`` at +61 s. The hung app holds no request, so SIGTERM ends it at
    once (143); the first restart has no back-off and clears the hang, and the new container
    passes its probes.
    """
    (phase,) = phases("app-0", 10)
    world = world_of(
        app({"liveness": HEALTHZ}), [{"kind": "hang", "target": "app", "at": phase + 35}], 200
    )
    world.run()
    t = round(phase, 6)
    assert events(world, "Unhealthy", "Killing", "terminated", "restart") == [
        (round(t + 41, 6), "Unhealthy", HTTP_TIMEOUT),
        (round(t + 51, 6), "Unhealthy", HTTP_TIMEOUT),
        (round(t + 61, 6), "Unhealthy", HTTP_TIMEOUT),
        (round(t + 61, 6), "Killing", KILLING),
        (
            round(t + 61, 6),
            "terminated",
            "Container app-0 terminated: Reason: Error, Exit Code: 143",
        ),
        (round(t + 61, 6), "restart", "Restarting container app in pod app-0 (restartCount 1)"),
    ]
    assert world.services["app"].instances[0].state is InstanceState.RUNNING


def test_v11_one_success_between_failures_resets_the_run():
    """A 17 s hang fails two probes only; the next one passes: no Killing, no restart."""
    (phase,) = phases("app-0", 10)
    hang = {"kind": "hang", "target": "app", "at": phase + 35, "duration": 17}
    world = world_of(app({"liveness": HEALTHZ}), [hang], 120)
    world.run()
    assert [t for t, _, _ in events(world, "Unhealthy")] == [
        round(phase + 41, 6),
        round(phase + 51, 6),
    ]
    assert events(world, "Killing", "restart") == []


def test_v11_hung_requests_hold_sigterm_until_the_grace_period_ends():
    """Requests stuck in the hung app keep the SIGTERM'd container alive: SIGKILL 30 s later.

    Two requests arrive after the hang starts and never finish; they are reset by the SIGKILL
    at Killing + 30 s (terminationGracePeriodSeconds), exit code 137.
    """
    (phase,) = phases("app-0", 10)
    world = world_of(
        app({"liveness": HEALTHZ}), [{"kind": "hang", "target": "app", "at": phase + 35}], 200
    )
    log = send(world, [phase + 36, phase + 37], entry="app")
    world.run()
    killed = round(phase + 61 + 30, 6)
    assert [(rid, outcome, round(end, 6)) for rid, outcome, end in sorted(log)] == [
        (0, "reset", killed),
        (1, "reset", killed),
    ]
    assert events(world, "terminated") == [
        (killed, "terminated", "Container app-0 terminated: Reason: Error, Exit Code: 137")
    ]


def test_a_probe_grace_period_overrides_the_pods():
    """``termination_grace_period_seconds`` on the liveness probe: SIGKILL 5 s after Killing."""
    (phase,) = phases("app-0", 10)
    liveness = HEALTHZ | {"termination_grace_period_seconds": 5}
    world = world_of(
        app({"liveness": liveness}), [{"kind": "hang", "target": "app", "at": phase + 35}], 200
    )
    send(world, [phase + 36], entry="app")
    world.run()
    assert [t for t, _, _ in events(world, "terminated")] == [round(phase + 66, 6)]


def test_tcp_probe_passes_while_the_app_hangs():
    """The kernel accepts TCP connections for a hung process: a tcp_socket probe never fails."""
    world = world_of(
        app({"liveness": {"tcp_socket": {"port": 5432}}}),
        [{"kind": "hang", "target": "app", "at": 30}],
        200,
    )
    world.run()
    assert events(world, "Unhealthy", "Killing") == []


# --------------------------------------------------------------------------- V12 readiness


def test_v12_ready_only_after_the_first_successful_readiness_probe():
    """V12: a container started at 5 s (a crash) is ready at the first readiness tick after it.

    Until then the replica is out of the load balancer: a request at 5.5 s is ``unavailable``
    (the only replica), one just after the tick is served.
    """
    (phase,) = phases("app-0", 10)
    world = world_of(app({"readiness": HEALTHZ}), [{"kind": "crash", "target": "app", "at": 5}], 30)
    first_tick = next(phase + 10 * k for k in range(5) if phase + 10 * k > 5)
    log = send(world, [5.5, first_tick + 0.5], entry="app")
    world.run()
    assert [(t, kind) for t, kind, _ in events(world, "ready", "not_ready")] == [
        (round(first_tick, 6), "ready")
    ]
    assert [outcome for _, outcome, _ in sorted(log)] == ["unavailable", "ok"]


def test_v12_three_readiness_failures_remove_the_replica_without_a_restart():
    """V12: after three failing readiness probes the replica is not ready; it is not restarted.

    Readiness fails on a hang at +35 s: ticks +40, +50, +60 fail, ``not_ready`` at +61 s
    (their timeouts end then), +70 fails too; the hang ends at +75 s and the tick at +80 s
    makes it ready again.
    """
    (phase,) = phases("app-0", 10)
    hang = {"kind": "hang", "target": "app", "at": phase + 35, "duration": 40}
    world = world_of(app({"readiness": HEALTHZ}), [hang], 120)
    world.run()
    assert [(t, kind) for t, kind, _ in events(world, "ready", "not_ready")] == [
        (round(phase + 61, 6), "not_ready"),
        (round(phase + 80, 6), "ready"),
    ]
    assert [d for _, _, d in events(world, "Unhealthy")] == [
        HTTP_TIMEOUT.replace("Liveness", "Readiness")
    ] * 4
    assert events(world, "Killing", "terminated") == []


def test_a_run_starts_in_steady_state_with_every_replica_ready():
    """Replicas running when the run begins passed their probes long ago: ready from t = 0."""
    world = world_of(app({"startup": HEALTHZ, "readiness": HEALTHZ}, replicas=3), [], 5)
    result = world.run()
    ts = result.timeseries
    ready = ts[(ts.entity == "app") & (ts.metric == "instances.ready")].value.tolist()
    assert ready == [3.0] * 5


# --------------------------------------------------------------------------- V13 startup


def startup_world(delay: float) -> tuple[World, float]:
    """A startup probe (30 x 10 s) and a liveness probe, a container restarting at 1 s.

    It then needs ``delay`` seconds to listen. Returns the world and the first startup tick
    after the restart.
    """
    startup_phase, _ = phases("app-0", 10, 10)
    probes = {"startup": HEALTHZ | {"failure_threshold": 30}, "liveness": HEALTHZ}
    world = world_of(
        app(probes, startup={"delay": delay}),
        [{"kind": "crash", "target": "app", "at": 1}],
        400,
    )
    first = next(startup_phase + 10 * k for k in range(5) if startup_phase + 10 * k > 1)
    return world, first


def test_v13_startup_probe_kills_on_the_30th_failure():
    """V13: an app that needs 400 s to start is refused 30 times, 10 s apart: Killing then.

    Liveness is not run before startup succeeds: no liveness line.
    """
    world, first = startup_world(400)
    world.run()
    refused = (
        'Startup probe failed: Get "http://10.244.0.2:8080/healthz": '
        "dial tcp 10.244.0.2:8080: connect: connection refused"
    )
    unhealthy = events(world, "Unhealthy")
    assert [t for t, _, _ in unhealthy[:30]] == [round(first + 10 * k, 6) for k in range(30)]
    assert {d for _, _, d in unhealthy[:30]} == {refused}
    assert events(world, "Killing")[0] == (
        round(first + 290, 6),
        "Killing",
        "Container app failed startup probe, will be restarted",
    )
    assert not any(d.startswith("Liveness") for _, _, d in unhealthy)


def test_v13_startup_within_the_window_then_liveness_runs():
    """An app that needs 250 s starts in time: no Killing; liveness waits for startup.

    The liveness worker sends nothing between the restart at 1 s and the startup probe's
    success after 251 s, and probes every 10 s after it.
    """
    world, _ = startup_world(250)
    instance = world.services["app"].instances[0]
    seen: list[int] = []

    def count() -> None:
        assert instance.prober is not None
        seen.append(instance.prober.workers[ProbeKind.LIVENESS].probes)

    for t in (1.5, 250.5, 399.5):
        world.env.timeout(t).callbacks.append(lambda _: count())
    world.run()
    assert events(world, "Killing") == []
    assert seen[0] == seen[1]
    assert seen[2] - seen[1] in (14, 15)


# --------------------------------------------------------------------------- shared workers


def busy_world(shares_workers: bool, capacity: int | None = None) -> World:
    """One worker, 2 s per request, a request every 0.5 s: the queue never empties."""
    services = app(
        {"liveness": {"shares_workers": shares_workers}},
        workers=1,
        service_time=deterministic("2s"),
    )
    if capacity is not None:
        services["app"]["admission"] = {"queue": {"capacity": capacity}}
    world = world_of(services, [], 40)
    send(world, [0.5 * k for k in range(80)], entry="app")
    return world


def test_a_probe_sharing_busy_workers_times_out_and_kills_a_healthy_container():
    """The probe-induced restart: a busy but healthy container fails liveness behind its queue."""
    world = busy_world(shares_workers=True)
    world.run()
    unhealthy = events(world, "Unhealthy")
    assert len(unhealthy) == 3
    assert {d for _, _, d in unhealthy} == {HTTP_TIMEOUT.replace("/healthz", "/")}
    assert [kind for _, kind, _ in events(world, "Killing")] == ["Killing"]


def test_a_separate_probe_port_keeps_the_busy_container_alive():
    """The same load with the probe on its own port: no failure, no kill."""
    world = busy_world(shares_workers=False)
    world.run()
    assert events(world, "Unhealthy", "Killing") == []


def test_a_full_queue_answers_a_probe_with_503():
    """No room in the queue: the probe is shed, the kubelet reads a 503."""
    world = busy_world(shares_workers=True, capacity=0)
    world.run()
    assert {d for _, _, d in events(world, "Unhealthy")} == {
        "Liveness probe failed: HTTP probe failed with statuscode: 503"
    }


def test_only_worker_sharing_probes_change_the_instance_class():
    """Instances without worker-sharing probes keep the plain class (a hop costs nothing more)."""
    plain = world_of(app({"liveness": HEALTHZ}), [], 1).services["app"].instances[0]
    shared = world_of(app({"liveness": {}}), [], 1).services["app"].instances[0]
    assert type(plain) is Instance
    assert type(shared) is ProbedInstance


# --------------------------------------------------------------------------- validation


PROBED = """\
name: probed
duration: 1m
hosts: [{name: node-a, memory: 4Gi}]
services:
  api:
    service_time: {dist: exponential, mean: 20ms}
    probes:
      {kind}: {spec}
workload: {entry: api, rate: {profile: constant, rate: 10/s}}
"""


@pytest.mark.parametrize(
    ("kind", "spec", "error"),
    [
        (
            "liveness",
            "{success_threshold: 2}",
            "probed.yaml:8:17: services.api.probes.liveness: "
            "success_threshold must be 1 for liveness probes, got 2",
        ),
        (
            "readiness",
            "{termination_grace_period_seconds: 5}",
            "probed.yaml:8:18: services.api.probes.readiness: "
            "termination_grace_period_seconds must not be set for readiness",
        ),
        (
            "liveness",
            "{tcp_socket: {port: 80}, shares_workers: true}",
            "probed.yaml:8:17: services.api.probes.liveness: "
            "shares_workers is for http_get: a tcp_socket probe is answered by the kernel",
        ),
        (
            "startup",
            "{period_seconds: 0}",
            "probed.yaml:8:33: services.api.probes.startup.period_seconds: "
            "Input should be greater than or equal to 1",
        ),
    ],
)
def test_probe_mistakes_are_reported_at_their_line(kind: str, spec: str, error: str):
    """What the API server rejects is a scenario error at the probe's place in the file."""
    text = PROBED.replace("{kind}", kind).replace("{spec}", spec)
    with pytest.raises(ScenarioError) as raised:
        load_scenario_text(text, "probed.yaml")
    assert str(raised.value) == error
