"""Kubernetes container probes: the kubelet's prober worker for liveness, readiness and startup.

Sources: kubernetes/kubernetes ``pkg/kubelet/prober/worker.go`` (``newWorker``, ``run``,
``doProbe``; commit 61ecc560), ``pkg/kubelet/prober/prober.go`` (``probe``: the ``Unhealthy``
event texts), ``pkg/kubelet/prober/prober_manager.go`` (``AddPod`` worker order,
``UpdatePodStatus``: a container's ``Started`` and ``Ready``),
``pkg/kubelet/prober/results/results_manager.go`` (``Set`` sends an update only when a container's
result changes; ``Result.String``), ``pkg/kubelet/kuberuntime/kuberuntime_manager.go``
(``computePodActions``: the ``Killing`` message), ``pkg/apis/core/v1/defaults.go``
(``SetDefaults_Probe``, ``SetDefaults_HTTPGetAction``), ``pkg/apis/core/validation/validation.go``
(``validateProbe``, ``validateLivenessProbe``, ``validateReadinessProbe``,
``validateStartupProbe``), kubectl ``pkg/describe/describe.go`` (``DescribeProbe``) and the probe
runners ``pkg/probe/{http,tcp,exec,grpc}`` (failure outputs); see
``../shared/reference/semantics.md`` §5 and §12 V11-V13.

Model (what :class:`ProbeWorker` reproduces, one per container and probe kind):

* The stored result starts at the kind's initial value: readiness Failure, liveness Success,
  startup Unknown. It is set again to that value whenever a new container ID appears (a restart),
  which also lifts a hold. Like the kubelet's results manager, the worker publishes
  (``on_result``) only when the stored result of the current container changes, or when it is
  first set for a new container.
* If the kubelet started less than one period ago, the worker first sleeps
  ``uniform(0, period)`` (the injected generator; none given = no sleep, so ticks align with the
  worker's start). Then it probes at once and on every tick of a ``time.Ticker`` with the probe
  period: ticks stay on the grid laid at the first probe, whatever each probe takes. A probe that
  overruns a tick is followed at once by the next one (Go keeps one pending tick and drops the
  rest), then the grid resumes.
* Each tick, in the kubelet's order: no container yet -> wait; new container ID -> reset the
  result; on hold -> skip; container not running -> store Failure (and stop for good under
  ``restartPolicy: Never``); ``int(seconds since the container started) < initialDelaySeconds``
  -> skip; startup probes run only until the container is started, liveness and readiness only
  after it; else probe.
* A probe the target does not answer within ``timeout_seconds`` is a Failure. Every failed probe
  emits ``Unhealthy`` ``"<Kind> probe failed: <output>"``. Consecutive identical results are
  counted; a Failure run below ``failure_threshold`` or a Success run below ``success_threshold``
  changes nothing, otherwise the result is stored (and published if it changed).
* A published liveness Failure, or any published startup result, puts the worker on hold (no
  probing until a new container ID) and resets the run count. A Failure verdict (liveness or
  startup) of a container that is still running is a kill request: ``Killing`` ``"Container <c>
  failed liveness probe, will be restarted"`` (``startup`` likewise; ``will be restarted`` only
  when the restart policy is not ``Never``) and ``on_kill(kind, message)``. A readiness Failure
  only publishes: the owner takes the replica out of its load balancer, nothing restarts.
* The previous result and its run count survive a container change that did not go through a
  hold (as in ``worker.go``): two readiness failures before a crash and one after it publish.
* A simulation that begins in steady state hands the workers containers that have passed their
  probes for long (:meth:`ProbeWorker.adopt`): started, ready, live, with nothing published.

:class:`ContainerProber` groups the workers of one container (startup, readiness, liveness, in
``AddPod``'s order) and answers ``UpdatePodStatus``'s two questions: ``started()`` (running, and
the startup probe's result for the current container is Success, or there is no startup worker)
and ``ready()`` (started, and the readiness result for the current container is Success, or there
is no readiness worker).

Simplifications:

* The probed container is abstract (:class:`ProbeTarget`): it says which container ID is current,
  when it started, whether it runs, and answers a probe attempt. What the answer depends on (a
  hung event loop, a full accept queue, a dead dependency) is the owner's business.
* The status the workers read is always fresh (the kubelet's status manager lags by a pod sync),
  a startup verdict is seen by the other workers at once, and the kill is a request: the owner
  stops the container (grace period ``termination_grace_period_seconds`` or the pod's) and
  restarts it under its restart policy and CrashLoopBackOff.
* Not modelled: ``UpdatePodStatus``'s manual trigger of a readiness probe that has no result yet,
  the pod-deletion shortcut (liveness/startup report Success and stop) and the exit on a terminal
  pod phase (the owner calls :meth:`ProbeWorker.stop`), prober errors (results thrown away), probe
  warnings, and ``runProbeWithRetries``'s retries of errored runs.
* Outputs for a failed or timed-out probe follow the handler's Go runner; a target may pass its
  own with :class:`ProbeOutcome`. The exec timeout text is ``[recall]``.

The module reads time only from ``env.now`` and draws randomness only from a generator handed in.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias

import numpy as np
import simpy

NANOS_PER_SECOND = 1_000_000_000

DEFAULT_INITIAL_DELAY_SECONDS = 0
"""Seconds (``initialDelaySeconds`` unset = 0; ``SetDefaults_Probe`` leaves it)."""
DEFAULT_PERIOD_SECONDS = 10
"""Seconds (``SetDefaults_Probe``: ``PeriodSeconds == 0 -> 10``)."""
DEFAULT_TIMEOUT_SECONDS = 1
"""Seconds (``SetDefaults_Probe``: ``TimeoutSeconds == 0 -> 1``)."""
DEFAULT_SUCCESS_THRESHOLD = 1
"""Probes (``SetDefaults_Probe``: ``SuccessThreshold == 0 -> 1``)."""
DEFAULT_FAILURE_THRESHOLD = 3
"""Probes (``SetDefaults_Probe``: ``FailureThreshold == 0 -> 3``)."""

EVENT_UNHEALTHY = "Unhealthy"
"""Warning event reason of a failed probe (``events.ContainerUnhealthy``)."""
EVENT_KILLING = "Killing"
"""Normal event reason of a container kill (``events.KillingContainer``)."""

RestartPolicyName: TypeAlias = Literal["Always", "OnFailure", "Never"]
RandomSource: TypeAlias = np.random.Generator | Callable[[], float]
"""A numpy Generator, or a zero-argument callable returning a uniform float in [0, 1)."""


def _uniform01(rng: RandomSource) -> float:
    """One uniform draw in [0, 1) (Go's ``rand.Float64``)."""
    if isinstance(rng, np.random.Generator):
        return float(rng.random())
    return float(rng())


def _nanos(seconds: float) -> int:
    """Whole nanoseconds of a time in seconds (Go's ``time.Duration`` resolution)."""
    return round(seconds * NANOS_PER_SECOND)


def _go_duration(seconds: int) -> str:
    """``time.Duration.String`` for whole seconds: ``1s``, ``1m0s``, ``1h0m30s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _join_host_port(host: str, port: int | str) -> str:
    """``net.JoinHostPort``: brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ProbeResult(StrEnum):
    """``results.Result`` with its ``String()``."""

    UNKNOWN = "UNKNOWN"
    SUCCESS = "Success"
    FAILURE = "Failure"


class ProbeKind(StrEnum):
    """The kubelet's ``probeType``."""

    LIVENESS = "liveness"
    READINESS = "readiness"
    STARTUP = "startup"

    @property
    def label(self) -> str:
        """``probeType.String()``: ``Liveness``, ``Readiness``, ``Startup``."""
        return self.value.capitalize()

    @property
    def initial_result(self) -> ProbeResult:
        """The result before the first verdict (``newWorker``'s ``initialValue``)."""
        return _INITIAL_RESULT[self]


_INITIAL_RESULT = {
    ProbeKind.READINESS: ProbeResult.FAILURE,
    ProbeKind.LIVENESS: ProbeResult.SUCCESS,
    ProbeKind.STARTUP: ProbeResult.UNKNOWN,
}


# --------------------------------------------------------------------------------------------
# Handlers: what kubectl describe shows and what a failed or timed-out probe reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HTTPGetAction:
    """``httpGet``: success is a status in 200..399.

    Attributes:
        port: container port number or name (required, no default).
        path: ``/`` (``SetDefaults_HTTPGetAction``).
        host: empty = the pod IP (API default).
        scheme: ``HTTP`` (``SetDefaults_HTTPGetAction``).
    """

    port: int | str
    path: str = "/"
    host: str = ""
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"

    def _url(self, host: str) -> str:
        path = self.path
        if path and not path.startswith("/"):
            path = "/" + path  # url.URL.String adds the slash when there is a host part
        return f"{self.scheme.lower()}://{_join_host_port(host, self.port)}{path}"

    def describe(self) -> str:
        """``DescribeProbe``'s action part: ``http-get http://:8080/healthz``."""
        return f"http-get {self._url(self.host)}"

    def failure_output(self, pod_ip: str) -> str:
        """A refused status (``pkg/probe/http``: ``HTTP probe failed with statuscode: %d``)."""
        return self.status_output(500)

    def status_output(self, status: int) -> str:
        """The output for an answer with ``status`` outside 200..399 (``pkg/probe/http``)."""
        return f"HTTP probe failed with statuscode: {status}"

    def refused_output(self, pod_ip: str) -> str:
        """Nothing listens on the port: Go's dial error wrapped by ``http.Client``."""
        host = self.host or pod_ip
        return (
            f'Get "{self._url(host)}": dial tcp {_join_host_port(host, self.port)}: '
            "connect: connection refused"
        )

    def reset_output(self, pod_ip: str) -> str:
        """The server closed the connection before answering (``http.Client``'s ``EOF``)."""
        return f'Get "{self._url(self.host or pod_ip)}": EOF'

    def timeout_output(self, pod_ip: str, timeout_seconds: int) -> str:
        """Go's ``http.Client`` timeout error, as the runner reports it."""
        return (
            f'Get "{self._url(self.host or pod_ip)}": context deadline exceeded '
            "(Client.Timeout exceeded while awaiting headers)"
        )


@dataclass(frozen=True)
class TCPSocketAction:
    """``tcpSocket``: success is an accepted connection.

    Attributes:
        port: container port number or name (required).
        host: empty = the pod IP (API default).
    """

    port: int | str
    host: str = ""

    def describe(self) -> str:
        """``DescribeProbe``'s action part: ``tcp-socket :5432``."""
        return f"tcp-socket {self.host}:{self.port}"

    def failure_output(self, pod_ip: str) -> str:
        """Nothing listens (``pkg/probe/tcp`` returns the dial error)."""
        address = _join_host_port(self.host or pod_ip, self.port)
        return f"dial tcp {address}: connect: connection refused"

    def refused_output(self, pod_ip: str) -> str:
        """Nothing listens: the only way a TCP probe fails short of a timeout."""
        return self.failure_output(pod_ip)

    def timeout_output(self, pod_ip: str, timeout_seconds: int) -> str:
        """``net.DialTimeout``'s error."""
        return f"dial tcp {_join_host_port(self.host or pod_ip, self.port)}: i/o timeout"


@dataclass(frozen=True)
class ExecAction:
    """``exec``: success is exit status 0 within the timeout.

    Attributes:
        command: the argv run in the container.
    """

    command: tuple[str, ...]

    def describe(self) -> str:
        """``DescribeProbe``'s action part: ``exec [cat /tmp/healthy]`` (Go's ``%v``)."""
        return f"exec [{' '.join(self.command)}]"

    def failure_output(self, pod_ip: str) -> str:
        """The command's output, empty unless the target passes one."""
        return ""

    def timeout_output(self, pod_ip: str, timeout_seconds: int) -> str:
        """The exec runner's timeout error [recall]."""
        joined = " ".join(self.command).replace("\\", "\\\\").replace('"', '\\"')
        return f'command "{joined}" timed out'


@dataclass(frozen=True)
class GRPCAction:
    """``grpc``: success is ``SERVING`` from ``grpc.health.v1.Health/Check``.

    Attributes:
        port: container port (required).
        service: empty = the server's overall health (``SetDefaults_GRPCAction``).
    """

    port: int
    service: str = ""

    def describe(self) -> str:
        """``DescribeProbe``'s action part: ``grpc <pod>:9090 <service>``."""
        return f"grpc <pod>:{self.port} {self.service}"

    def failure_output(self, pod_ip: str) -> str:
        """A health server answering ``NOT_SERVING`` (``pkg/probe/grpc``)."""
        return 'service unhealthy (responded with "NOT_SERVING")'

    def timeout_output(self, pod_ip: str, timeout_seconds: int) -> str:
        """``pkg/probe/grpc`` on ``DeadlineExceeded``."""
        return f"timeout: health rpc did not complete within {_go_duration(timeout_seconds)}"


ProbeHandler: TypeAlias = HTTPGetAction | TCPSocketAction | ExecAction | GRPCAction


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _whole(name: str, value: object, minimum: int) -> int:
    """``value`` as an int32-like whole number ``>= minimum``, else ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not float(value).is_integer()
    ):
        raise ValueError(f"{name} must be a whole number (Kubernetes int32), got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {int(value)}")
    return int(value)


@dataclass(frozen=True)
class ProbeConfig:
    """A container probe (``v1.Probe``), with the API server's defaults and validation.

    The API server turns a 0 in ``periodSeconds``, ``timeoutSeconds``, ``successThreshold`` or
    ``failureThreshold`` into that field's default; this config takes the values after
    defaulting, so each must be at least 1. Whole floats (``10.0``) are accepted and stored as
    ints.

    Attributes:
        kind: liveness, readiness or startup (a string is converted).
        handler: the probe action; it only shapes ``describe()`` and the failure texts. None
            renders as kubectl's ``unknown``.
        initial_delay_seconds: 0 (``SetDefaults_Probe`` leaves it unset), ``>= 0``.
        period_seconds: 10 (``SetDefaults_Probe``), ``>= 1``.
        timeout_seconds: 1 (``SetDefaults_Probe``), ``>= 1``.
        success_threshold: 1 (``SetDefaults_Probe``), ``>= 1``; must be 1 for liveness and
            startup (``validateLivenessProbe``, ``validateStartupProbe``).
        failure_threshold: 3 (``SetDefaults_Probe``), ``>= 1``.
        termination_grace_period_seconds: None = the pod's (30 s by default); when set, ``> 0``
            and not allowed on readiness probes (``validateReadinessProbe``).
    """

    kind: ProbeKind
    handler: ProbeHandler | None = None
    initial_delay_seconds: int = DEFAULT_INITIAL_DELAY_SECONDS
    period_seconds: int = DEFAULT_PERIOD_SECONDS
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    success_threshold: int = DEFAULT_SUCCESS_THRESHOLD
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    termination_grace_period_seconds: int | None = None

    def __post_init__(self) -> None:
        """Reject what the API server's probe validation rejects."""
        try:
            kind = ProbeKind(self.kind)
        except ValueError:
            raise ValueError(
                f"kind must be one of liveness, readiness, startup, got {self.kind!r}"
            ) from None
        object.__setattr__(self, "kind", kind)
        for name, minimum in (
            ("initial_delay_seconds", 0),
            ("period_seconds", 1),
            ("timeout_seconds", 1),
            ("success_threshold", 1),
            ("failure_threshold", 1),
        ):
            object.__setattr__(self, name, _whole(name, getattr(self, name), minimum))
        if kind is not ProbeKind.READINESS and self.success_threshold != 1:
            raise ValueError(
                f"success_threshold must be 1 for {kind.value} probes, got {self.success_threshold}"
            )
        grace = self.termination_grace_period_seconds
        if grace is not None:
            if kind is ProbeKind.READINESS:
                raise ValueError("termination_grace_period_seconds must not be set for readiness")
            object.__setattr__(
                self,
                "termination_grace_period_seconds",
                _whole("termination_grace_period_seconds", grace, 1),
            )

    def describe(self) -> str:
        """The probe's line in ``kubectl describe pod`` (``DescribeProbe``).

        Example: ``Liveness: http-get http://:8080/healthz delay=0s timeout=1s period=10s
        #success=1 #failure=3``.
        """
        action = "unknown" if self.handler is None else self.handler.describe()
        return (
            f"{self.kind.label}: {action} delay={self.initial_delay_seconds}s "
            f"timeout={self.timeout_seconds}s period={self.period_seconds}s "
            f"#success={self.success_threshold} #failure={self.failure_threshold}"
        )


# --------------------------------------------------------------------------------------------
# The probed container and the callbacks
# --------------------------------------------------------------------------------------------


class ProbeOutcome(NamedTuple):
    """A probe answer with its output text.

    Attributes:
        success: whether the probe passed.
        output: the runner's output for the ``Unhealthy`` event; None = the handler's default.
    """

    success: bool
    output: str | None = None


ProbeAnswer: TypeAlias = bool | Literal["success", "failure"] | ProbeOutcome
"""What a probe attempt yields: True/``"success"``, False/``"failure"``, or a ProbeOutcome."""

ProbeAttempt: TypeAlias = simpy.Event | Generator[simpy.Event, Any, ProbeAnswer]
"""An event whose value is a :data:`ProbeAnswer`, or a generator returning one (run as a
process). An attempt that never answers is fine: the worker's timeout decides."""


class ProbeTarget(Protocol):
    """The container a worker probes, as the kubelet's status manager sees it."""

    @property
    def container_id(self) -> str | None:
        """The current container's ID (None until created); a new value is a new container."""
        ...

    @property
    def started_at(self) -> float | None:
        """``env.now`` when the current container started running (None = not running)."""
        ...

    @property
    def running(self) -> bool:
        """Whether the current container is running."""
        ...

    def probe(self, kind: ProbeKind) -> ProbeAttempt:
        """Start one probe of ``kind`` against the current container."""
        ...


ResultSink = Callable[[ProbeKind, ProbeResult], None]
"""``on_result(kind, result)``: the stored result of the current container changed (or was set
for a new one). Readiness drives load-balancer membership; a liveness Failure stored because
the container stopped is not a kill."""
KillSink = Callable[[ProbeKind, str], None]
"""``on_kill(kind, message)``: a liveness or startup Failure verdict of a running container; the
message is the ``Killing`` event's."""
EventSink = Callable[[str, str], None]
"""``on_event(reason, message)``: Kubernetes events (:data:`EVENT_UNHEALTHY`,
:data:`EVENT_KILLING`)."""


def _ignore(*_: object) -> None:
    return None


# --------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------


class ProbeWorker:
    """The kubelet's prober ``worker`` for one container and one probe kind.

    Args:
        env: the simulation environment (its clock is the only time read).
        target: the probed container.
        config: the probe; its ``kind`` is the worker's.
        container: container name for the ``Killing`` message.
        is_started: whether the container counts as started (``ContainerStatus.Started``);
            None = started while running (no startup probe). :class:`ContainerProber` passes
            its ``started``.
        on_result: result updates; see :data:`ResultSink`.
        on_kill: kill requests; see :data:`KillSink`.
        on_event: ``Unhealthy`` and ``Killing`` events; see :data:`EventSink`.
        rng: draws the initial ``uniform(0, period)`` sleep; None = never sleep (ticks align
            with :meth:`start`).
        kubelet_started_at: ``env.now`` when the kubelet (probe manager) started; the initial
            sleep happens only when the worker starts less than one period after it.
        restart_policy: the pod's (default ``Always``); ``Never`` drops ``, will be restarted``
            from the kill message and ends the worker once the container has stopped.
        pod_ip: the pod IP used in failure texts when the handler names no host.
    """

    def __init__(
        self,
        env: simpy.Environment,
        target: ProbeTarget,
        config: ProbeConfig,
        *,
        container: str = "app",
        is_started: Callable[[], bool] | None = None,
        on_result: ResultSink | None = None,
        on_kill: KillSink | None = None,
        on_event: EventSink | None = None,
        rng: RandomSource | None = None,
        kubelet_started_at: float = 0.0,
        restart_policy: RestartPolicyName = "Always",
        pod_ip: str = "",
    ) -> None:
        self.env = env
        self.target = target
        self.config = config
        self.kind = config.kind
        self.container = container
        self.restart_policy = restart_policy
        self.pod_ip = pod_ip
        self.container_id: str | None = None
        """The last container ID seen (``worker.containerID``)."""
        self.last_result: ProbeResult | None = None
        """The last probe's result (``lastResult``)."""
        self.result_run = 0
        """How many probes in a row returned ``last_result`` (``resultRun``)."""
        self.on_hold = False
        """Skip probing until a new container ID appears (``onHold``)."""
        self.probes = 0
        """Probes run (attempts sent to the target)."""
        self._result: ProbeResult | None = None
        self._alive = False
        self._stop = env.event()
        self._is_started = is_started
        self._on_result = on_result or _ignore
        self._on_kill = on_kill or _ignore
        self._on_event = on_event or _ignore
        self._rng = rng
        self._kubelet_started_at = kubelet_started_at
        self.process: simpy.Process | None = None

    @property
    def result(self) -> ProbeResult | None:
        """The stored result for the last container seen; None before one or after stop."""
        return self._result

    @property
    def alive(self) -> bool:
        """Whether the worker is running (started and not yet stopped)."""
        return self._alive

    def result_for(self, container_id: str | None) -> ProbeResult | None:
        """``resultsManager.Get(container_id)``: None when nothing is stored for it."""
        if container_id is None or container_id != self.container_id:
            return None
        return self._result

    def describe(self) -> str:
        """The probe's ``kubectl describe`` line."""
        return self.config.describe()

    def start(self) -> simpy.Process:
        """Start the probe loop (``run``); the first probe comes now or after the sleep."""
        if self.process is not None:
            raise RuntimeError("probe worker already started")
        self._alive = True
        self.process = self.env.process(self._run())
        return self.process

    def stop(self) -> None:
        """``stop``: end the loop at its next wake-up; the stored result is forgotten."""
        if not self._stop.triggered:
            self._stop.succeed()

    def adopt(self, container_id: str) -> None:
        """Take over a container that has passed this probe for a long time (steady state).

        A run that begins in steady state starts with containers the kubelet has probed before:
        the stored result is Success after a run of successes, and a startup worker has
        published its verdict and is on hold. Call before :meth:`start`; nothing is published.
        """
        self.container_id = container_id
        self._result = self.last_result = ProbeResult.SUCCESS
        self.result_run = self.config.success_threshold
        if self.kind is ProbeKind.STARTUP:
            self.on_hold = True
            self.result_run = 0

    # -- the loop --------------------------------------------------------------------------

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        period = self.config.period_seconds
        if self._rng is not None and period > env.now - self._kubelet_started_at:
            # A restarted kubelet would otherwise probe every container at once.
            yield env.any_of([env.timeout(_uniform01(self._rng) * period), self._stop])
        origin = _nanos(env.now)
        period_ns = period * NANOS_PER_SECOND
        consumed = 0  # index of the last tick taken; tick k fires at origin + k * period
        while not self._stop.triggered:
            keep_going = yield from self._do_probe()
            if not keep_going or self._stop.triggered:
                break
            fired = (_nanos(env.now) - origin) // period_ns
            if fired > consumed:
                consumed = fired
                continue
            consumed += 1
            next_tick = (origin + consumed * period_ns) / NANOS_PER_SECOND
            yield env.any_of([env.timeout(next_tick - env.now), self._stop])
        self._alive = False
        self._result = None  # resultsManager.Remove: no update is sent

    def _do_probe(self) -> Generator[simpy.Event, Any, bool]:
        """``doProbe``: one tick. Returns whether the worker keeps going."""
        target = self.target
        container_id = target.container_id
        if container_id is None:
            return True
        if container_id != self.container_id:
            self.container_id = container_id
            self._set(self.kind.initial_result, new_container=True)
            self.on_hold = False
        if self.on_hold:
            return True
        if not target.running:
            self._set(ProbeResult.FAILURE)
            return self.restart_policy != "Never"
        if self._seconds_since_start() < self.config.initial_delay_seconds:
            return True
        if self._started() == (self.kind is ProbeKind.STARTUP):
            return True
        result = yield from self._probe()
        if result is self.last_result:
            self.result_run += 1
        else:
            self.last_result = result
            self.result_run = 1
        threshold = (
            self.config.failure_threshold
            if result is ProbeResult.FAILURE
            else self.config.success_threshold
        )
        if self.result_run < threshold:
            return True
        self._set(result)
        if self.kind is ProbeKind.STARTUP or (
            self.kind is ProbeKind.LIVENESS and result is ProbeResult.FAILURE
        ):
            self.on_hold = True
            self.result_run = 0
            if result is ProbeResult.FAILURE:
                self._request_kill()
        return True

    def _probe(self) -> Generator[simpy.Event, Any, ProbeResult]:
        """``prober.probe``: one attempt, the timeout, the ``Unhealthy`` event."""
        env = self.env
        self.probes += 1
        attempt = self.target.probe(self.kind)
        answer: simpy.Event = env.process(attempt) if isinstance(attempt, Generator) else attempt
        yield env.any_of([answer, env.timeout(self.config.timeout_seconds)])
        if answer.triggered:  # an answer at exactly the timeout counts as an answer
            if not answer.ok:
                answer.defused = True
                error = answer.value
                assert isinstance(error, BaseException)
                raise error
            success, output = self._interpret(answer.value)
        else:
            success, output = False, self._timeout_output()
        if success:
            return ProbeResult.SUCCESS
        self._on_event(EVENT_UNHEALTHY, f"{self.kind.label} probe failed: {output}")
        return ProbeResult.FAILURE

    # -- helpers ---------------------------------------------------------------------------

    def _interpret(self, answer: object) -> tuple[bool, str]:
        if isinstance(answer, ProbeOutcome):
            success = bool(answer.success)
            if answer.output is not None:
                return success, answer.output
        elif answer is True or answer == "success":
            success = True
        elif answer is False or answer == "failure":
            success = False
        else:
            raise TypeError(
                f"a probe attempt must yield a bool, 'success', 'failure' or a ProbeOutcome, "
                f"got {answer!r}"
            )
        return success, ("" if success else self._failure_output())

    def _failure_output(self) -> str:
        handler = self.config.handler
        return "" if handler is None else handler.failure_output(self.pod_ip)

    def _timeout_output(self) -> str:
        handler = self.config.handler
        timeout = self.config.timeout_seconds
        if handler is None:
            return f"probe did not answer within {_go_duration(timeout)}"
        return handler.timeout_output(self.pod_ip, timeout)

    def _seconds_since_start(self) -> int:
        """``int32(time.Since(startedAt).Seconds())``: whole seconds, truncated."""
        started_at = self.target.started_at
        if started_at is None:
            return 0
        return (_nanos(self.env.now) - _nanos(started_at)) // NANOS_PER_SECOND

    def _started(self) -> bool:
        if self._is_started is None:
            return self.target.running
        return self._is_started()

    def _set(self, result: ProbeResult, *, new_container: bool = False) -> None:
        """``resultsManager.Set``: publish only a change (or the first value of a container)."""
        if not new_container and result is self._result:
            return
        self._result = result
        self._on_result(self.kind, result)

    def _request_kill(self) -> None:
        """``computePodActions`` for a Failure verdict: kill a container that still runs."""
        target = self.target
        if not target.running or target.container_id != self.container_id:
            return  # it stopped meanwhile: an ordinary exit, restarted without this message
        message = f"Container {self.container} failed {self.kind.value} probe"
        if self.restart_policy != "Never":
            message += ", will be restarted"
        self._on_event(EVENT_KILLING, message)
        self._on_kill(self.kind, message)


# --------------------------------------------------------------------------------------------
# All probes of one container
# --------------------------------------------------------------------------------------------


class ContainerProber:
    """The probe workers of one container and the status they imply (``UpdatePodStatus``).

    Args:
        env: the simulation environment.
        target: the probed container.
        startup: the startup probe, if any.
        readiness: the readiness probe, if any.
        liveness: the liveness probe, if any.
        container: container name for the ``Killing`` message.
        on_result: result updates of every worker.
        on_kill: kill requests of the liveness and startup workers.
        on_event: ``Unhealthy`` and ``Killing`` events of every worker.
        rng: initial-sleep draws, one per worker in start order; None = no sleep.
        kubelet_started_at: ``env.now`` when the kubelet started.
        restart_policy: the pod's restart policy (default ``Always``).
        pod_ip: the pod IP for failure texts.
    """

    def __init__(
        self,
        env: simpy.Environment,
        target: ProbeTarget,
        *,
        startup: ProbeConfig | None = None,
        readiness: ProbeConfig | None = None,
        liveness: ProbeConfig | None = None,
        container: str = "app",
        on_result: ResultSink | None = None,
        on_kill: KillSink | None = None,
        on_event: EventSink | None = None,
        rng: RandomSource | None = None,
        kubelet_started_at: float = 0.0,
        restart_policy: RestartPolicyName = "Always",
        pod_ip: str = "",
    ) -> None:
        self.target = target
        self.workers: dict[ProbeKind, ProbeWorker] = {}
        # AddPod's order: startup, readiness, liveness.
        for kind, config in (
            (ProbeKind.STARTUP, startup),
            (ProbeKind.READINESS, readiness),
            (ProbeKind.LIVENESS, liveness),
        ):
            if config is None:
                continue
            if config.kind is not kind:
                raise ValueError(f"the {kind.value} slot got a {config.kind.value} probe")
            self.workers[kind] = ProbeWorker(
                env,
                target,
                config,
                container=container,
                is_started=self.started,
                on_result=on_result,
                on_kill=on_kill,
                on_event=on_event,
                rng=rng,
                kubelet_started_at=kubelet_started_at,
                restart_policy=restart_policy,
                pod_ip=pod_ip,
            )

    def start(self) -> list[simpy.Process]:
        """Start every worker."""
        return [worker.start() for worker in self.workers.values()]

    def stop(self) -> None:
        """Stop every worker (pod terminal or deleted)."""
        for worker in self.workers.values():
            worker.stop()

    def adopt(self, container_id: str) -> None:
        """Every worker takes over a running, ready container (:meth:`ProbeWorker.adopt`)."""
        for worker in self.workers.values():
            worker.adopt(container_id)

    def _probe_passed(self, kind: ProbeKind) -> bool:
        worker = self.workers.get(kind)
        if worker is None or not worker.alive:
            # No running worker of this kind (none configured, not started yet, or stopped):
            # getWorker finds none, so the condition follows the container.
            return True
        return worker.result_for(self.target.container_id) is ProbeResult.SUCCESS

    def started(self) -> bool:
        """``ContainerStatus.Started``: running and past its startup probe (if any)."""
        return self.target.running and self._probe_passed(ProbeKind.STARTUP)

    def ready(self) -> bool:
        """``ContainerStatus.Ready``: started and passing its readiness probe (if any)."""
        return self.started() and self._probe_passed(ProbeKind.READINESS)

    def describe(self) -> list[str]:
        """The probe lines in ``kubectl describe`` order: Liveness, Readiness, Startup."""
        order = (ProbeKind.LIVENESS, ProbeKind.READINESS, ProbeKind.STARTUP)
        return [self.workers[k].describe() for k in order if k in self.workers]
