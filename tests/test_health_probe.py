"""Kubernetes probes: the kubelet prober worker (reference semantics §5; §12 V11, V12, V13)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import simpy

from patterns.health_probe import (
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_INITIAL_DELAY_SECONDS,
    DEFAULT_PERIOD_SECONDS,
    DEFAULT_SUCCESS_THRESHOLD,
    DEFAULT_TIMEOUT_SECONDS,
    ContainerProber,
    ExecAction,
    GRPCAction,
    HTTPGetAction,
    ProbeConfig,
    ProbeKind,
    ProbeOutcome,
    ProbeResult,
    ProbeWorker,
    TCPSocketAction,
)

POD_IP = "10.0.0.5"
HEALTHZ = HTTPGetAction(port=8080, path="/healthz")
LIVENESS = ProbeConfig(ProbeKind.LIVENESS, HEALTHZ)
READINESS = ProbeConfig(ProbeKind.READINESS, HEALTHZ)
HTTP_TIMEOUT = (
    'Get "http://10.0.0.5:8080/healthz": context deadline exceeded '
    "(Client.Timeout exceeded while awaiting headers)"
)
HTTP_500 = "HTTP probe failed with statuscode: 500"
KILL_LIVENESS = "Container app failed liveness probe, will be restarted"
KILL_STARTUP = "Container app failed startup probe, will be restarted"

Health = Callable[[ProbeKind, float], object]
"""``health(kind, now)``: the probe's answer, or None for a probe that never answers (a hang)."""


def always(_kind: ProbeKind, _now: float) -> object:
    return True


def hangs_during(*windows: tuple[float, float]) -> Health:
    """Healthy except inside the ``[start, end)`` windows, where probes hang."""

    def health(_kind: ProbeKind, now: float) -> object:
        return None if any(a <= now < b for a, b in windows) else True

    return health


def fails_during(*windows: tuple[float, float]) -> Health:
    """Healthy except inside the ``[start, end)`` windows, where probes answer False at once."""

    def health(_kind: ProbeKind, now: float) -> object:
        return not any(a <= now < b for a, b in windows)

    return health


class FakeContainer:
    """A :class:`ProbeTarget`: probes answer ``health(kind, now)`` after ``latency`` seconds."""

    def __init__(
        self,
        env: simpy.Environment,
        health: Health = always,
        *,
        latency: float = 0.0,
        container_id: str | None = "c1",
        started_at: float | None = 0.0,
    ) -> None:
        self.env = env
        self.health = health
        self.latency = latency
        self.container_id = container_id
        self.started_at = started_at
        self.running = container_id is not None
        self.attempts: list[tuple[str, float]] = []

    def probe(self, kind: ProbeKind):
        """Record the attempt; answer after ``latency`` or, for None, never."""
        self.attempts.append((kind.value, self.env.now))
        answer = self.health(kind, self.env.now)
        if answer is None:
            return self.env.event()  # never triggered: the probe hangs
        return self._answer(answer)

    def _answer(self, answer: object):
        yield self.env.timeout(self.latency)
        return answer

    def times(self, kind: str = "") -> list[float]:
        """Start times of the probes (of one kind)."""
        return [t for k, t in self.attempts if not kind or k == kind]

    def stop(self) -> None:
        """The container exits (same ID, not running)."""
        self.running = False

    def restart(self, container_id: str) -> None:
        """A new container starts now."""
        self.container_id = container_id
        self.started_at = self.env.now
        self.running = True


class Log:
    """Everything the workers report, stamped with ``env.now``."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.results: list[tuple[float, str, str]] = []
        self.kills: list[tuple[float, str, str]] = []
        self.events: list[tuple[float, str, str]] = []

    def on_result(self, kind: ProbeKind, result: ProbeResult) -> None:
        """Record a result update."""
        self.results.append((self.env.now, kind.value, result.value))

    def on_kill(self, kind: ProbeKind, message: str) -> None:
        """Record a kill request."""
        self.kills.append((self.env.now, kind.value, message))

    def on_event(self, reason: str, message: str) -> None:
        """Record a Kubernetes event."""
        self.events.append((self.env.now, reason, message))

    def times(self, reason: str) -> list[float]:
        """Times of the events with this reason."""
        return [t for t, r, _ in self.events if r == reason]

    @property
    def sinks(self) -> dict[str, object]:
        """The three callbacks as keyword arguments."""
        return {"on_result": self.on_result, "on_kill": self.on_kill, "on_event": self.on_event}


def start_worker(
    env: simpy.Environment, target: FakeContainer, config: ProbeConfig, log: Log, **kwargs: object
) -> ProbeWorker:
    worker = ProbeWorker(env, target, config, pod_ip=POD_IP, **log.sinks, **kwargs)
    worker.start()
    return worker


def at(env: simpy.Environment, when: float, action: Callable[[], object]) -> None:
    """Run ``action`` at ``env.now == when``."""

    def script():
        yield env.timeout(when - env.now)
        action()

    env.process(script())


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_probe_defaults_are_set_defaults_probe():
    """Defaults: delay 0, period 10 s, timeout 1 s, success 1, failure 3 (SetDefaults_Probe)."""
    config = ProbeConfig(ProbeKind.LIVENESS)
    assert (
        config.initial_delay_seconds,
        config.period_seconds,
        config.timeout_seconds,
        config.success_threshold,
        config.failure_threshold,
        config.termination_grace_period_seconds,
    ) == (0, 10, 1, 1, 3, None)
    assert (
        DEFAULT_INITIAL_DELAY_SECONDS,
        DEFAULT_PERIOD_SECONDS,
        DEFAULT_TIMEOUT_SECONDS,
        DEFAULT_SUCCESS_THRESHOLD,
        DEFAULT_FAILURE_THRESHOLD,
    ) == (0, 10, 1, 1, 3)


def test_initial_results_are_failure_success_unknown():
    """``newWorker``: readiness starts Failure, liveness Success, startup Unknown."""
    assert ProbeKind.READINESS.initial_result is ProbeResult.FAILURE
    assert ProbeKind.LIVENESS.initial_result is ProbeResult.SUCCESS
    assert ProbeKind.STARTUP.initial_result is ProbeResult.UNKNOWN


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("liveness", {"period_seconds": 0}, "period_seconds must be >= 1, got 0"),
        ("liveness", {"timeout_seconds": 0}, "timeout_seconds must be >= 1, got 0"),
        ("readiness", {"failure_threshold": 0}, "failure_threshold must be >= 1, got 0"),
        ("readiness", {"success_threshold": 0}, "success_threshold must be >= 1, got 0"),
        ("liveness", {"initial_delay_seconds": -1}, "initial_delay_seconds must be >= 0"),
        ("liveness", {"success_threshold": 2}, "success_threshold must be 1 for liveness"),
        ("startup", {"success_threshold": 3}, "success_threshold must be 1 for startup"),
        ("liveness", {"period_seconds": 2.5}, "period_seconds must be a whole number"),
        ("liveness", {"timeout_seconds": True}, "timeout_seconds must be a whole number"),
        ("bogus", {}, "kind must be one of liveness, readiness, startup"),
        (
            "readiness",
            {"termination_grace_period_seconds": 10},
            "termination_grace_period_seconds must not be set for readiness",
        ),
        (
            "liveness",
            {"termination_grace_period_seconds": 0},
            "termination_grace_period_seconds must be >= 1",
        ),
    ],
)
def test_invalid_probe_config_is_rejected(kind, fields, message):
    """The API server's probe validation, with a message naming the field and the rule."""
    with pytest.raises(ValueError, match=message):
        ProbeConfig(kind, **fields)


def test_valid_configs_are_accepted_and_normalised():
    """Readiness may ask for several successes; whole floats become ints; strings become kinds."""
    config = ProbeConfig("readiness", success_threshold=2, period_seconds=5.0)
    assert config.kind is ProbeKind.READINESS
    assert config.period_seconds == 5
    assert isinstance(config.period_seconds, int)
    grace = ProbeConfig(ProbeKind.STARTUP, termination_grace_period_seconds=5)
    assert grace.termination_grace_period_seconds == 5


@pytest.mark.parametrize(
    ("config", "line"),
    [
        (
            LIVENESS,
            "Liveness: http-get http://:8080/healthz delay=0s timeout=1s period=10s "
            "#success=1 #failure=3",
        ),
        (
            ProbeConfig(ProbeKind.READINESS, TCPSocketAction(5432), initial_delay_seconds=5),
            "Readiness: tcp-socket :5432 delay=5s timeout=1s period=10s #success=1 #failure=3",
        ),
        (
            ProbeConfig(
                ProbeKind.STARTUP, ExecAction(("cat", "/tmp/healthy")), failure_threshold=30
            ),
            "Startup: exec [cat /tmp/healthy] delay=0s timeout=1s period=10s "
            "#success=1 #failure=30",
        ),
        (
            ProbeConfig(ProbeKind.LIVENESS, GRPCAction(9090), timeout_seconds=2),
            "Liveness: grpc <pod>:9090  delay=0s timeout=2s period=10s #success=1 #failure=3",
        ),
        (
            ProbeConfig(
                ProbeKind.READINESS,
                HTTPGetAction(port="http", path="ready", host="10.1.1.1", scheme="HTTPS"),
            ),
            "Readiness: http-get https://10.1.1.1:http/ready delay=0s timeout=1s period=10s "
            "#success=1 #failure=3",
        ),
        (
            ProbeConfig(ProbeKind.LIVENESS),
            "Liveness: unknown delay=0s timeout=1s period=10s #success=1 #failure=3",
        ),
    ],
)
def test_describe_renders_like_kubectl(config, line):
    """``kubectl describe pod`` probe lines (``DescribeProbe``)."""
    assert config.describe() == line


def test_failure_texts_follow_the_go_probe_runners():
    """Timeout and refusal outputs of the http, tcp, exec and grpc runners."""
    assert HEALTHZ.timeout_output(POD_IP, 1) == HTTP_TIMEOUT
    assert HEALTHZ.failure_output(POD_IP) == HTTP_500
    tcp = TCPSocketAction(5432)
    assert tcp.timeout_output(POD_IP, 1) == "dial tcp 10.0.0.5:5432: i/o timeout"
    assert tcp.failure_output("fd00::5") == "dial tcp [fd00::5]:5432: connect: connection refused"
    assert ExecAction(("cat", "/tmp/healthy")).timeout_output(POD_IP, 1) == (
        'command "cat /tmp/healthy" timed out'
    )
    grpc = GRPCAction(9090)
    assert grpc.timeout_output(POD_IP, 60) == "timeout: health rpc did not complete within 1m0s"
    assert grpc.failure_output(POD_IP) == 'service unhealthy (responded with "NOT_SERVING")'


# --------------------------------------------------------------------------------------------
# V11: liveness
# --------------------------------------------------------------------------------------------


def test_v11_liveness_hang_at_35s_is_killed_at_61s():
    """V11: a hang at 35 s is killed at 61 s, after one Unhealthy event per failed probe.

    Ticks at 0, 10, ...; the probes at 40, 50 and 60 each time out 1 s later; the third failure is
    the verdict: one Killing event and one kill request at 61 s, then the worker holds.
    """
    env = simpy.Environment()
    app = FakeContainer(env, hangs_during((35, 1e9)))
    log = Log(env)
    start_worker(env, app, LIVENESS, log)
    env.run(until=100)
    unhealthy = f"Liveness probe failed: {HTTP_TIMEOUT}"
    assert app.times() == [0, 10, 20, 30, 40, 50, 60]  # on hold afterwards
    assert log.events == [
        (41, "Unhealthy", unhealthy),
        (51, "Unhealthy", unhealthy),
        (61, "Unhealthy", unhealthy),
        (61, "Killing", KILL_LIVENESS),
    ]
    assert log.kills == [(61, "liveness", KILL_LIVENESS)]
    assert log.results == [(0, "liveness", "Success"), (61, "liveness", "Failure")]


def test_v11_a_single_success_resets_the_failure_run():
    """V11: a single success between failures resets the failure run.

    Failures at 40 and 50, a success at 60, failures at 70, 80, 90: the kill waits for the third
    consecutive failure, at 91 s.
    """
    env = simpy.Environment()
    app = FakeContainer(env, hangs_during((35, 55), (65, 1e9)))
    log = Log(env)
    start_worker(env, app, LIVENESS, log)
    env.run(until=120)
    assert log.times("Unhealthy") == [41, 51, 71, 81, 91]
    assert log.times("Killing") == [91]
    assert log.kills == [(91, "liveness", KILL_LIVENESS)]


def test_liveness_worker_holds_until_a_new_container_id():
    """After a liveness verdict the worker holds until a new container ID appears.

    It skips ticks (even once the old container stops: no Failure is stored) until the restarted
    container's ID shows up at the 80 s tick; then the result resets to Success and probing resumes.
    """
    env = simpy.Environment()
    app = FakeContainer(env, hangs_during((35, 75)))
    log = Log(env)
    worker = start_worker(env, app, LIVENESS, log)
    at(env, 62, app.stop)
    at(env, 75, lambda: app.restart("c2"))
    env.run(until=100)
    assert app.times() == [0, 10, 20, 30, 40, 50, 60, 80, 90]
    assert log.results == [
        (0, "liveness", "Success"),
        (61, "liveness", "Failure"),
        (80, "liveness", "Success"),
    ]
    assert log.kills == [(61, "liveness", KILL_LIVENESS)]
    assert worker.container_id == "c2"
    assert not worker.on_hold


def test_hold_resets_the_run_so_the_new_container_gets_its_own_threshold():
    """The hold resets the run count, so a new container gets its own failure threshold.

    A restarted container that refuses every probe is killed on its own third failure (80, 90,
    100 s), not on its first.
    """
    env = simpy.Environment()
    app = FakeContainer(env, hangs_during((35, 75)))
    log = Log(env)
    start_worker(env, app, LIVENESS, log)
    at(env, 62, app.stop)

    def restart_broken() -> None:
        app.health = fails_during((0, 1e9))
        app.restart("c2")

    at(env, 75, restart_broken)
    env.run(until=130)
    assert log.times("Unhealthy") == [41, 51, 61, 80, 90, 100]
    assert log.events[-2:] == [
        (100, "Unhealthy", f"Liveness probe failed: {HTTP_500}"),
        (100, "Killing", KILL_LIVENESS),
    ]
    assert log.kills == [(61, "liveness", KILL_LIVENESS), (100, "liveness", KILL_LIVENESS)]


def test_kill_message_under_restart_policy_never_says_no_restart():
    """``computePodActions`` appends ", will be restarted" only when the policy restarts."""
    env = simpy.Environment()
    app = FakeContainer(env, fails_during((0, 1e9)))
    log = Log(env)
    start_worker(env, app, LIVENESS, log, restart_policy="Never")
    env.run(until=30)
    assert log.kills == [(20, "liveness", "Container app failed liveness probe")]


def test_no_kill_when_the_container_died_during_the_deciding_probe():
    """No kill request for a container that exited while the deciding probe ran.

    The container exits at 60.5 while the probe at 60 hangs: Failure is stored at 61 but there is
    nothing to kill (no Killing event); the ordinary exit path restarts it.
    """
    env = simpy.Environment()
    app = FakeContainer(env, hangs_during((35, 1e9)))
    log = Log(env)
    start_worker(env, app, LIVENESS, log)
    at(env, 60.5, app.stop)
    env.run(until=100)
    assert log.results[-1] == (61, "liveness", "Failure")
    assert log.times("Unhealthy") == [41, 51, 61]
    assert log.times("Killing") == []
    assert log.kills == []


# --------------------------------------------------------------------------------------------
# V12: readiness
# --------------------------------------------------------------------------------------------


def test_v12_readiness_ready_after_first_success_unready_after_three_failures():
    """V12: ready only after the first success; unready after three failures; no restart.

    Ready=False from the start, True at the first successful probe (10 s), False after the third
    consecutive failure (70 s), True again at the next success; probing never pauses.
    """
    env = simpy.Environment()
    app = FakeContainer(env, fails_during((0, 5), (45, 85)))
    log = Log(env)
    prober = ContainerProber(env, app, readiness=READINESS, pod_ip=POD_IP, **log.sinks)
    prober.start()
    ready: list[tuple[float, bool]] = []
    for t in (5, 15, 65, 75, 95):
        at(env, t, lambda: ready.append((env.now, prober.ready())))
    env.run(until=100)
    assert log.results == [
        (0, "readiness", "Failure"),
        (10, "readiness", "Success"),
        (70, "readiness", "Failure"),
        (90, "readiness", "Success"),
    ]
    assert ready == [(5, False), (15, True), (65, True), (75, False), (95, True)]
    assert log.times("Unhealthy") == [0, 50, 60, 70, 80]
    assert log.events[0] == (0, "Unhealthy", f"Readiness probe failed: {HTTP_500}")
    assert log.kills == []
    assert app.times() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]


def test_readiness_success_threshold_needs_consecutive_successes():
    """With successThreshold 2, Ready comes at the second success in a row (30 s, not 20 s)."""
    env = simpy.Environment()
    app = FakeContainer(env, fails_during((0, 15)))
    log = Log(env)
    start_worker(env, app, ProbeConfig(ProbeKind.READINESS, success_threshold=2), log)
    env.run(until=40)
    assert log.results == [(0, "readiness", "Failure"), (30, "readiness", "Success")]


def test_new_container_id_resets_readiness_to_failure():
    """A restart puts the stored readiness back to Failure until the new container passes."""
    env = simpy.Environment()
    app = FakeContainer(env)
    log = Log(env)
    start_worker(env, app, READINESS, log)
    at(env, 25, app.stop)

    def restart_slow() -> None:
        app.health = fails_during((0, 45))
        app.restart("c2")

    at(env, 27, restart_slow)
    env.run(until=60)
    assert log.results == [
        (0, "readiness", "Failure"),
        (0, "readiness", "Success"),
        (30, "readiness", "Failure"),
        (50, "readiness", "Success"),
    ]


def test_run_count_survives_a_restart_without_hold():
    """A new container ID without a hold keeps ``lastResult``/``resultRun`` (``worker.go``).

    With successThreshold 2 the run of successes carried over makes the new container's first
    success publish at once (30 s).
    """
    env = simpy.Environment()
    app = FakeContainer(env)
    log = Log(env)
    start_worker(env, app, ProbeConfig(ProbeKind.READINESS, success_threshold=2), log)
    at(env, 25, lambda: app.restart("c2"))
    env.run(until=35)
    assert log.results == [
        (0, "readiness", "Failure"),
        (10, "readiness", "Success"),
        (30, "readiness", "Failure"),
        (30, "readiness", "Success"),
    ]


# --------------------------------------------------------------------------------------------
# V13: startup
# --------------------------------------------------------------------------------------------

STARTUP_30 = ProbeConfig(ProbeKind.STARTUP, HEALTHZ, failure_threshold=30)


def test_v13_startup_30th_failure_kills_and_liveness_never_runs():
    """V13: the 30th consecutive startup failure kills; liveness never runs before startup.

    failureThreshold 30, period 10 s: the failing startup probes run at 0..290 s and the 30th
    kills the container; the liveness worker never probes; the startup worker then holds.
    """
    env = simpy.Environment()
    app = FakeContainer(env, fails_during((0, 1e9)))
    log = Log(env)
    prober = ContainerProber(
        env, app, startup=STARTUP_30, liveness=LIVENESS, pod_ip=POD_IP, **log.sinks
    )
    prober.start()
    env.run(until=400)
    assert app.times("startup") == [10.0 * k for k in range(30)]
    assert app.times("liveness") == []
    assert log.times("Unhealthy") == [10.0 * k for k in range(30)]
    assert log.events[0] == (0, "Unhealthy", f"Startup probe failed: {HTTP_500}")
    assert log.kills == [(290, "startup", KILL_STARTUP)]
    assert log.results == [
        (0, "startup", "UNKNOWN"),
        (0, "liveness", "Success"),
        (290, "startup", "Failure"),
    ]
    assert not prober.started()


def test_v13_startup_success_lets_liveness_start():
    """V13: a startup success before the 30th failure lets liveness start.

    The app is up at 95 s; the startup probe passes at 100 s (then holds) and the liveness worker
    probes from its next tick, 110 s; no kill.
    """
    env = simpy.Environment()
    app = FakeContainer(env, lambda kind, now: now >= 95)
    log = Log(env)
    prober = ContainerProber(env, app, startup=STARTUP_30, liveness=LIVENESS, **log.sinks)
    prober.start()
    started: list[bool] = []
    at(env, 99, lambda: started.append(prober.started()))
    at(env, 101, lambda: started.append(prober.started()))
    env.run(until=135)
    assert app.times("startup") == [10.0 * k for k in range(11)]
    assert app.times("liveness") == [110, 120, 130]
    assert (100, "startup", "Success") in log.results
    assert log.kills == []
    assert started == [False, True]


def test_container_prober_ready_needs_started_and_readiness():
    """``UpdatePodStatus``: Ready needs Started and a passing readiness probe.

    Not ready before the startup probe passes, though readiness would pass; ready once both have;
    not ready once the container stops.
    """
    env = simpy.Environment()
    app = FakeContainer(env, lambda kind, now: kind is not ProbeKind.STARTUP or now >= 15)
    prober = ContainerProber(env, app, startup=STARTUP_30, readiness=READINESS)
    prober.start()
    seen: list[tuple[float, bool, bool]] = []
    for t in (5, 25, 35):
        at(env, t, lambda: seen.append((env.now, prober.started(), prober.ready())))
    at(env, 33, app.stop)
    env.run(until=40)
    # startup passes at 20; readiness (gated) first runs at 30
    assert seen == [(5, False, False), (25, True, False), (35, False, False)]


def test_container_prober_without_probes_is_ready_while_running():
    """No startup or readiness probe: started and ready follow the container."""
    env = simpy.Environment()
    app = FakeContainer(env)
    prober = ContainerProber(env, app, liveness=LIVENESS)
    assert prober.started()
    assert prober.ready()
    app.stop()
    assert not prober.started()
    assert not prober.ready()


def test_container_prober_rejects_a_probe_in_the_wrong_slot():
    """Each slot takes its own kind."""
    env = simpy.Environment()
    with pytest.raises(ValueError, match="the liveness slot got a readiness probe"):
        ContainerProber(env, FakeContainer(env), liveness=READINESS)


def test_container_prober_describes_in_kubectl_order():
    """Liveness, Readiness, Startup."""
    env = simpy.Environment()
    prober = ContainerProber(
        env, FakeContainer(env), startup=STARTUP_30, readiness=READINESS, liveness=LIVENESS
    )
    assert [line.split(":")[0] for line in prober.describe()] == [
        "Liveness",
        "Readiness",
        "Startup",
    ]


# --------------------------------------------------------------------------------------------
# Timing: initial delay, ticker, initial sleep
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("started_at", "initial_delay", "first"),
    [(0.0, 15, 20), (0.0, 10, 10), (0.5, 10, 20), (0.5, 0, 10)],
)
def test_initial_delay_skips_ticks_by_whole_seconds_since_start(started_at, initial_delay, first):
    """Ticks are skipped while ``int(seconds since start) < initialDelaySeconds``.

    10 s after a start at 0 runs with a 10 s delay; 9.5 s after a start at 0.5 does not.
    """
    env = simpy.Environment()
    app = FakeContainer(env, container_id=None, started_at=None)
    at(env, started_at, lambda: app.restart("c1"))
    log = Log(env)
    config = ProbeConfig(ProbeKind.LIVENESS, initial_delay_seconds=initial_delay)
    start_worker(env, app, config, log)
    env.run(until=first + 5)
    assert app.times() == [first]


def test_no_container_yet_waits_without_publishing():
    """Before the container exists the worker stores and publishes nothing."""
    env = simpy.Environment()
    app = FakeContainer(env, container_id=None, started_at=None)
    at(env, 12, lambda: app.restart("c1"))
    log = Log(env)
    worker = start_worker(env, app, READINESS, log)
    env.run(until=11)
    assert worker.result is None
    assert log.results == []
    env.run(until=25)
    assert log.results == [(20, "readiness", "Failure"), (20, "readiness", "Success")]


def test_ticker_does_not_drift_with_slow_probes():
    """Probes answering after 0.9 s still start on the 10 s grid (a ticker, not a sleep)."""
    env = simpy.Environment()
    app = FakeContainer(env, latency=0.9)
    log = Log(env)
    start_worker(env, app, LIVENESS, log)
    env.run(until=35)
    assert app.times() == [0, 10, 20, 30]


def test_overrunning_probe_is_followed_at_once_by_the_pending_tick():
    """A probe that overruns a tick is followed at once by the pending tick.

    Timeout 20 s, period 10 s, answers after 13 s: each probe overruns a tick, so the next starts
    as soon as it ends (Go keeps one pending tick and drops the others).
    """
    env = simpy.Environment()
    app = FakeContainer(env, latency=13)
    log = Log(env)
    start_worker(env, app, ProbeConfig(ProbeKind.LIVENESS, timeout_seconds=20), log)
    env.run(until=70)
    assert app.times() == [0, 13, 26, 39, 52, 65]


def test_initial_sleep_when_the_kubelet_started_within_a_period():
    """The kubelet started at 0 and the worker at 0 < period: it sleeps ``u * period`` first."""
    env = simpy.Environment()
    app = FakeContainer(env)
    start_worker(env, app, LIVENESS, Log(env), rng=lambda: 0.25)
    env.run(until=30)
    assert app.times() == [2.5, 12.5, 22.5]


def test_initial_sleep_draws_from_a_numpy_generator():
    """A numpy Generator is accepted; the draw is its first ``random()``."""
    env = simpy.Environment()
    app = FakeContainer(env)
    start_worker(env, app, LIVENESS, Log(env), rng=np.random.default_rng(7))
    env.run(until=10)
    assert app.times() == [10 * np.random.default_rng(7).random()]


def test_no_initial_sleep_once_the_kubelet_has_run_a_period():
    """A worker started a full period (or more) after the kubelet probes at once; no draw."""
    env = simpy.Environment()
    app = FakeContainer(env)
    draws: list[float] = []

    def rng() -> float:
        draws.append(0.5)
        return 0.5

    def late_start() -> None:
        start_worker(env, app, LIVENESS, Log(env), rng=rng, kubelet_started_at=0.0)

    at(env, 10, late_start)
    env.run(until=25)
    assert app.times() == [10, 20]
    assert draws == []


# --------------------------------------------------------------------------------------------
# Container states, stop, answers
# --------------------------------------------------------------------------------------------


def test_stopped_container_is_a_silent_failure_and_restart_resumes():
    """A stopped container is a silent Failure; a restart resets the result and probing resumes.

    Failure is stored without a probe or an event.
    """
    env = simpy.Environment()
    app = FakeContainer(env)
    log = Log(env)
    start_worker(env, app, READINESS, log)
    at(env, 25, app.stop)
    at(env, 35, lambda: app.restart("c2"))
    env.run(until=45)
    assert log.results == [
        (0, "readiness", "Failure"),
        (0, "readiness", "Success"),
        (30, "readiness", "Failure"),
        (40, "readiness", "Failure"),
        (40, "readiness", "Success"),
    ]
    assert app.times() == [0, 10, 20, 40]
    assert log.events == []


def test_stopped_container_under_restart_policy_never_ends_the_worker():
    """Not running and ``restartPolicy: Never``: the worker stores Failure and exits."""
    env = simpy.Environment()
    app = FakeContainer(env)
    log = Log(env)
    worker = start_worker(env, app, READINESS, log, restart_policy="Never")
    at(env, 25, app.stop)
    env.run(until=60)
    assert log.results[-1] == (30, "readiness", "Failure")
    assert worker.process is not None
    assert worker.process.processed
    assert not worker.alive
    assert worker.result is None


def test_stop_ends_the_loop_at_once_and_forgets_the_result():
    """``stop()``: no further probes; the stored result is removed without an update."""
    env = simpy.Environment()
    app = FakeContainer(env)
    log = Log(env)
    worker = start_worker(env, app, READINESS, log)
    at(env, 25, worker.stop)
    env.run(until=60)
    assert app.times() == [0, 10, 20]
    assert worker.process is not None
    assert worker.process.processed
    assert worker.result is None
    assert log.results == [(0, "readiness", "Failure"), (0, "readiness", "Success")]


@pytest.mark.parametrize(
    ("answer", "unhealthy"),
    [
        (True, []),
        ("success", []),
        (ProbeOutcome(True), []),
        (False, [f"Readiness probe failed: {HTTP_500}"]),
        ("failure", [f"Readiness probe failed: {HTTP_500}"]),
        (
            ProbeOutcome(False, "Get: connection reset"),
            ["Readiness probe failed: Get: connection reset"],
        ),
    ],
)
def test_probe_answers(answer, unhealthy):
    """Accepted answers; a ProbeOutcome's output replaces the handler's default text."""
    env = simpy.Environment()
    app = FakeContainer(env, lambda kind, now: answer)
    log = Log(env)
    start_worker(env, app, READINESS, log)
    env.run(until=5)
    assert [message for _, _, message in log.events] == unhealthy


def test_event_attempt_and_answer_at_exactly_the_timeout():
    """An attempt may be a plain event; one answering at exactly ``timeout_seconds`` counts."""

    class EventTarget(FakeContainer):
        def probe(self, kind):
            self.attempts.append((kind.value, self.env.now))
            return self.env.timeout(1, value=True)

    env = simpy.Environment()
    log = Log(env)
    start_worker(env, EventTarget(env), READINESS, log)
    env.run(until=5)
    assert log.results == [(0, "readiness", "Failure"), (1, "readiness", "Success")]


def test_a_malformed_answer_is_an_error_not_a_result():
    """Anything else than a bool, 'success', 'failure' or a ProbeOutcome raises."""
    env = simpy.Environment()
    app = FakeContainer(env, lambda kind, now: 200)
    start_worker(env, app, READINESS, Log(env))
    with pytest.raises(TypeError, match="a probe attempt must yield"):
        env.run(until=5)


def test_worker_starts_once():
    """``start()`` twice is a bug in the owner."""
    env = simpy.Environment()
    worker = start_worker(env, FakeContainer(env), READINESS, Log(env))
    with pytest.raises(RuntimeError, match="already started"):
        worker.start()
