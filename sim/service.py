"""Services, their instances (container replicas) and the load balancer in front of them.

A request hop is a generator run with ``yield from`` inside the process of the request that makes
it, so that a hop costs no extra process:

    caller ── Edge.call ──> LoadBalancer.pick ──> Instance.serve
                                                   queue -> worker -> memory charge ->
                                                   service time -> downstream calls -> response

* A call with a timeout runs the callee in a child process and waits for it or for the timeout,
  whichever comes first; after a timeout the callee keeps working, which is the amplification
  behind retry storms -- unless deadline propagation is on (``workload.deadline_propagation``):
  then the hops below a timeout see a request view (:meth:`Request.within`) whose deadline is
  the tightest of the timeouts above it, and a server drops the request with
  ``deadline_exceeded`` when a worker picks it up, or before a downstream call, after that
  deadline. Parallel fan-out runs each call in a child process and waits for all of them.
* A call with client-side policies (retry, circuit breaker, bulkhead, fallback: :mod:`sim.policies`)
  goes through a :class:`PolicyEdge`, whose chain is nested generators (``yield from``), in
  resilience4j's order by default: fallback -> retry -> circuit breaker -> rate limiter ->
  timeout -> bulkhead -> transport. Their state lives in the calling instance
  (``Instance.clients``) and is lost when it restarts. A call without policies keeps the plain
  :class:`Edge` and costs what it always did.
* An instance that dies interrupts every process inside it (queued or in service); each one ends
  with outcome ``reset``, seen by its caller. Its memory is freed by the kernel layer.
* Instance states follow the container: ``starting`` (start-up delay) -> ``running`` (serving,
  warming up after a cold start; ready, i.e. in the load balancer, unless its readiness or
  startup probe says otherwise) -> ``terminating`` (SIGTERM: out of the load balancer, the
  requests inside finish, SIGKILL at the grace period) -> ``terminated`` (reason, exit code)
  -> ``waiting`` (CrashLoopBackOff) -> ``starting`` ...
* Probes (:mod:`patterns.health_probe`): the instance is the kubelet's probe target. An HTTP
  probe that shares the workers is a :class:`ProbeRequest` served like any request (the
  instance is then a :class:`ProbedInstance`, so that others pay nothing for telling probes
  apart); otherwise it is answered at once unless the process hangs. Known simplifications:
  an instance leaves the load balancer the instant it is told to stop (no endpoint
  propagation lag), and without a readiness probe it is ready once it serves.
* Server-side admission (``admission``: rate limit -> adaptive concurrency limit -> queue with a
  discipline -> worker, :mod:`patterns.backpressure` and :mod:`patterns.adaptive_concurrency`)
  runs in :meth:`Instance._serve_admitted`, with state per incarnation (:class:`AdmissionState`);
  a service with only a plain bounded FIFO keeps the deque fast path of :attr:`Instance.serve`.
* Edge faults: a ``partition`` refuses calls (``unavailable``) or blackholes them (they hang
  until the caller gives up, or go through when it heals). A ``poison_request`` crashes the
  instance whose worker picks it up (``Error``, exit code 1): the request ends ``reset``.
* Service time is sampled per hop from the service's distribution; latency faults add to it and
  scale it; error-rate faults turn a finished hop into ``error``.

On the way every hop takes, the clock and the running process are read as ``env._now`` and
``env._active_proc``, the attributes behind SimPy's ``env.now`` and ``env.active_process``
properties (a property is a call, and a hop reads the clock about ten times); SimPy is pinned to
4.1.x for such internals (:mod:`patterns.timers`).
"""

from __future__ import annotations

import enum
import math
import uuid
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, cast

import simpy
from simpy.events import Event

from patterns.adaptive_concurrency import (
    AIMDLimit,
    AIMDLimitConfig,
    Gradient2Limit,
    Gradient2LimitConfig,
    Limit,
    Limiter,
    LimiterToken,
    VegasLimit,
    VegasLimitConfig,
)
from patterns.backpressure import (
    Discipline,
    QueueTicket,
    RateLimiter,
    RateLimiterConfig,
    TokenBucket,
    TokenBucketConfig,
    WaitQueue,
)
from patterns.backpressure import QueueConfig as WaitQueueConfig
from patterns.bulkhead import SemaphoreBulkhead, ThreadPoolBulkhead
from patterns.circuit_breaker import OutlierDetector
from patterns.degradation import Brownout, BrownoutConfig
from patterns.health_probe import (
    ContainerProber,
    HTTPGetAction,
    ProbeAnswer,
    ProbeAttempt,
    ProbeKind,
    ProbeOutcome,
    ProbeResult,
    TCPSocketAction,
)
from patterns.retry import RetryCall, RetryRules, Started, within
from patterns.supervisor import (
    CRASH_LOOP_BACK_OFF,
    CrashLoopBackOff,
    Uniform,
    backoff_event_message,
    format_pod,
    should_restart,
    waiting_message,
)
from patterns.timers import timers_of
from sim.kernel import KILL_EXIT_CODE, TERM_EXIT_CODE, AllocationFailed, Cgroup, Host, Process
from sim.memory import allocate, grow, settle
from sim.policies import (
    BULKHEAD,
    CIRCUIT_BREAKER,
    RATE_LIMITER,
    RETRY,
    CallPolicies,
    ClientState,
)
from sim.recorder import CLIENT, EntityStats
from sim.request import Outcome, Request

if TYPE_CHECKING:
    import numpy as np

    from sim import scenario as sc
    from sim.recorder import Recorder
    from sim.supervision import InstanceChild

HopResult = Generator[Event, Any, Outcome]

OK = Outcome.OK
DEGRADED = Outcome.DEGRADED
DEPENDENCY = Outcome.DEPENDENCY
RESET = Outcome.RESET
SHED = Outcome.SHED
TIMEOUT = Outcome.TIMEOUT
UNAVAILABLE = Outcome.UNAVAILABLE
ERROR = Outcome.ERROR
BULKHEAD_FULL = Outcome.BULKHEAD_FULL
CIRCUIT_OPEN = Outcome.CIRCUIT_OPEN
DEADLINE_EXCEEDED = Outcome.DEADLINE_EXCEEDED
RATE_LIMITED = Outcome.RATE_LIMITED

POISON_EXIT_CODE = 1
"""Exit code of a container crashed by a poison request (an unhandled error: ``Error``, 1)."""

PROBE_REQUEST_ID = -1
"""Request id of every probe (they are no users' arrivals)."""
HTTP_SERVICE_UNAVAILABLE = 503
"""What a server answers a request it sheds (a full queue, a concurrency limit)."""
HTTP_TOO_MANY_REQUESTS = 429
"""What a rate limit answers."""

POD_NAMESPACE = "default"
"""The namespace of every pod (the kubelet's messages name pods ``name_namespace(uid)``)."""


def pod_uid(name: str, generation: int) -> str:
    """A pod's UID: a UUID as the API server gives, derived from its name so runs repeat."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"faultlab:pod/{name}/{generation}"))


class InstanceState(enum.Enum):
    """Container states (Kubernetes: Waiting / Running / Terminated; starting = not yet ready)."""

    STARTING = "starting"
    RUNNING = "running"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    WAITING = "waiting"


RUNNING_STATES = frozenset(
    (InstanceState.STARTING, InstanceState.RUNNING, InstanceState.TERMINATING)
)
"""States in which a container runs (the kubelet's ``Running``)."""


class Death:
    """The cause carried by the interrupt that ends the requests of a dying instance."""

    __slots__ = ("instance", "reason")

    def __init__(self, instance: Instance, reason: str) -> None:
        self.instance = instance
        self.reason = reason


class Perturbation:
    """Fault effects currently applied to a service or an edge (set by ``sim/faults.py``).

    ``partition``: on an edge, ``"drop"`` or ``"blackhole"`` (None: none); blackholed calls
    wait for ``healed``. ``poison``: on a service, tells whether a request is poison.
    ``hangs``: on a service, its hung instances, each with the incarnation that hangs (a
    restart clears a hang) and the event that ends the hang.
    """

    __slots__ = ("add", "error_rate", "factor", "hangs", "healed", "partition", "poison")

    def __init__(self) -> None:
        self.add = 0.0
        self.factor = 1.0
        self.error_rate = 0.0
        self.partition: str | None = None
        self.healed: Event | None = None
        self.poison: Callable[[Request], bool] | None = None
        self.hangs: dict[Instance, tuple[int, Event]] = {}

    @property
    def active(self) -> bool:
        """Whether any effect is in force."""
        return (
            self.add != 0.0
            or self.factor != 1.0
            or self.error_rate != 0.0
            or self.partition is not None
            or self.poison is not None
            or bool(self.hangs)
        )


class AdmissionPlan:
    """A service's compiled admission chain (shared by its instances) and its counters.

    Attributes:
        queue: the wait-queue settings (:mod:`patterns.backpressure`).
        priorities: the queue priority of each request class (1: critical, when shedding by
            class; otherwise all 0).
        pool_workers: the workers of each pool of an instance: the shared pool first, then
            one per worker partition.
        pool_of: the pool of each request class.
        rate_limited, limit_shed, queue_evicted, codel_dropped: requests refused by the rate
            limit, shed at the concurrency limit, pushed out of a full queue by an arrival, and
            dropped by CoDel, over the run (all instances and incarnations).
    """

    __slots__ = (
        "codel_dropped",
        "config",
        "limit_shed",
        "pool_of",
        "pool_workers",
        "priorities",
        "queue",
        "queue_evicted",
        "rate_limited",
        "rng",
    )

    def __init__(
        self,
        config: sc.Admission,
        classes: list[sc.RequestClass],
        workers: int,
        rng: np.random.Generator,
    ) -> None:
        self.config = config
        critical = [c.critical for c in classes]
        self.pool_workers = [workers - sum(p.workers for p in config.partitions)]
        self.pool_of = [0] * len(classes)
        names = [c.name for c in classes]
        for number, partition in enumerate(config.partitions, start=1):
            self.pool_workers.append(partition.workers)
            for cls in partition.classes:
                self.pool_of[names.index(cls)] = number
        q = config.queue
        discipline = "reject_new" if q.discipline == "fifo" else q.discipline
        self.queue = WaitQueueConfig(
            capacity=q.capacity,
            discipline=Discipline(discipline),
            codel_target=q.codel_target,
            codel_interval=q.codel_interval,
            lifo_switch_threshold=q.lifo_switch_threshold,
        )
        self.priorities = [1 if c and q.priority else 0 for c in critical]
        self.rng = rng
        self.rate_limited = 0
        self.limit_shed = 0
        self.queue_evicted = 0
        self.codel_dropped = 0

    def limit(self) -> Limit | None:
        """A fresh adaptive limit (None: no concurrency limit)."""
        spec = self.config.concurrency_limit
        if spec is None:
            return None
        fields = spec.model_dump(exclude={"algorithm"})
        if spec.algorithm == "aimd":
            return AIMDLimit(AIMDLimitConfig(**fields))
        if spec.algorithm == "vegas":
            return VegasLimit(self.rng, VegasLimitConfig(**fields))
        return Gradient2Limit(Gradient2LimitConfig(**fields))


class WorkerPool:
    """Workers of an instance and the queue in front of them (one per worker partition)."""

    __slots__ = ("busy", "queue", "workers")

    def __init__(self, workers: int, queue: WaitQueue[QueueTicket]) -> None:
        self.workers = workers
        self.busy = 0
        self.queue = queue


class AdmissionState:
    """One incarnation's admission state: rate limiter, concurrency limiter, wait queue.

    Made when the instance starts and dropped when it ends (process memory).
    """

    __slots__ = ("bucket", "limiter", "plan", "pools", "rate_limiter")

    def __init__(self, env: simpy.Environment, plan: AdmissionPlan, name: str) -> None:
        self.plan = plan
        spec = plan.config.rate_limit
        self.bucket: TokenBucket | None = None
        self.rate_limiter: RateLimiter | None = None
        if spec is not None:
            if spec.kind == "token_bucket":
                burst = spec.burst if spec.burst is not None else spec.rate
                self.bucket = TokenBucket(env, TokenBucketConfig(burst, spec.rate))
            else:
                self.rate_limiter = RateLimiter(
                    env,
                    RateLimiterConfig(
                        spec.limit_for_period, spec.limit_refresh_period, spec.timeout_duration
                    ),
                    name=name,
                )
        limit = plan.limit()
        self.limiter = None if limit is None else Limiter(env, limit, name=name)
        self.pools = [
            WorkerPool(workers, WaitQueue(env, plan.queue, on_drop=self._dropped))
            for workers in plan.pool_workers
        ]
        """The shared worker pool, then one per worker partition (each with its queue)."""

    def _dropped(self, ticket: QueueTicket) -> None:
        """CoDel dropped ``ticket`` at dequeue: its request ends ``shed``."""
        self.plan.codel_dropped += 1
        ticket.payload.succeed(SHED)

    @property
    def available_permissions(self) -> float | None:
        """Tokens or permissions the rate limit would grant now (None: no rate limit)."""
        if self.bucket is not None:
            return self.bucket.tokens
        if self.rate_limiter is not None:
            return float(self.rate_limiter.available_permissions)
        return None


class Instance:
    """One replica of a service: a container cgroup, its main process and a worker pool.

    The pod it belongs to is ``<name>_default(<uid>)`` for the kubelet's messages; a replacement
    pod (after an eviction or a drain) gets a new UID (:meth:`new_pod`).
    """

    __slots__ = (
        "active",
        "admission",
        "backoff",
        "busy",
        "cgroup",
        "clients",
        "containers",
        "draining",
        "env",
        "exit_code",
        "finished_at",
        "helpers",
        "host",
        "incarnation",
        "index",
        "name",
        "oom_score_adj",
        "otp",
        "pod_generation",
        "pod_ip",
        "pod_pending",
        "prober",
        "process",
        "queue",
        "queue_capacity",
        "reason",
        "restarts",
        "sample",
        "serve",
        "service",
        "serving",
        "started_at",
        "state",
        "stopped",
        "uid",
        "waiting_message",
        "workers",
    )

    answers_probes = False
    """Whether some requests are the kubelet's probes (:class:`ProbedInstance`): their work is
    not the service's, so a hop cannot take :meth:`_serve_plain`'s inline way."""

    def __init__(
        self,
        service: Service,
        index: int,
        host: Host,
        cgroup: Cgroup,
        oom_score_adj: int,
    ) -> None:
        self.service = service
        self.env = service.env
        self.index = index
        self.name = f"{service.name}-{index}"
        self.host = host
        self.cgroup = cgroup
        self.oom_score_adj = oom_score_adj
        self.workers = service.config.workers
        self.queue_capacity = service.config.admission.queue.capacity
        self.busy = 0
        """Busy workers on the plain path (with an admission chain each pool counts its own:
        :attr:`working` covers both)."""
        self.queue: deque[Event] = deque()
        self.admission: AdmissionState | None = None
        """Admission state of the current incarnation (None: the plain fast path)."""
        self.active: dict[simpy.Process, None] = {}
        self.state = InstanceState.WAITING
        self.serving = False
        """Whether the load balancer sends requests here (see :attr:`ready`)."""
        self.draining = False
        """Stopping on SIGTERM: the last request to leave ends the container (:meth:`stop`)."""
        self.stopped: Event | None = None
        """Succeeds when a container told to stop has ended (:meth:`stop`)."""
        self.process: Process | None = None
        self.helpers: list[Process] = []
        self.incarnation = 0
        self.containers = 0
        """Containers started in this pod so far; the current one's ID is derived from it."""
        self.started_at: float | None = None
        """When the current container started (None: no container running)."""
        self.restarts = 0
        self.reason = ""
        self.exit_code = 0
        self.finished_at = 0.0
        self.waiting_message = ""
        """The Waiting state's message while in CrashLoopBackOff (empty otherwise)."""
        self.pod_generation = 0
        self.uid = pod_uid(self.name, 0)
        self.pod_ip = ""
        """The pod's IP (set by the World where the pod is placed), in probe failure texts."""
        self.prober: ContainerProber | None = None
        """The kubelet's probe workers of this pod (None: no probes)."""
        self.otp: InstanceChild | None = None
        """Its OTP supervisor's view of it (None: the kubelet's restart policy restarts it)."""
        self.pod_pending: Event | None = None
        """Set while the pod is deleted and its replacement not scheduled yet."""
        self.backoff = CrashLoopBackOff(service.backoff_config)
        self.sample = service.sample
        """Service-time sampler of the current container (slower while it warms up)."""
        self.serve: Callable[[Request], HopResult] = (
            self._serve_plain if service.admission is None else self._serve_admitted
        )
        """Serve one request here: the generator of the hop, whose value is its outcome (the
        server-side view), for the caller's ``yield from``. Chosen once (the World sets a
        service's admission plan before it makes instances): :meth:`_serve_admitted` when the
        service has an admission chain, else :meth:`_serve_plain` (one call less per hop than a
        method deciding each time)."""
        self.clients: dict[Edge, ClientState] = {}
        """Client-side policy state per dependency (breakers, bulkheads, budgets); lost when
        the container ends, as a process's memory is."""

    @property
    def pod(self) -> str:
        """The pod as the kubelet names it in messages: ``cart-0_default(<uid>)``."""
        return format_pod(self.name, POD_NAMESPACE, self.uid)

    def new_pod(self) -> None:
        """This replica is a new pod now (a replacement): a new UID, no back-off history."""
        self.pod_generation += 1
        self.uid = pod_uid(self.name, self.pod_generation)
        self.backoff = CrashLoopBackOff(self.service.backoff_config)

    # ------------------------------------------------------------------ lifecycle

    def start(self, warm: bool = False) -> None:
        """Start the container: spawn its process, charge its baseline, serve, become ready.

        A cold start serves after the start-up delay, through an event that comes after
        anything that killed it at this very instant (an OOM at start-up: such a container never
        was ready), and then warms up. A ``warm`` one, a replica already running when the run
        begins (the run starts in steady state), serves at once, warmed up, and logs nothing.
        """
        if not self.host.up:
            return
        self.incarnation += 1
        self.containers += 1
        self.started_at = self.env.now
        self.busy = 0
        self.queue.clear()
        self.clients = {}
        self.sample = self.service.sample
        self.waiting_message = ""
        plan = self.service.admission
        if plan is not None:
            self.admission = AdmissionState(self.env, plan, self.name)
        self.state = InstanceState.STARTING
        config = self.service.config
        host = self.host
        main = host.spawn(self.service.comm, self.cgroup, self.oom_score_adj, self._exited)
        main.exit_delay = config.memory.exit_delay
        self.process = main
        self.helpers = [
            host.spawn(helper.name, self.cgroup, self.oom_score_adj, self._helper_exited)
            for helper in config.processes
        ]
        incarnation = self.incarnation
        for hook in self.service.on_start:
            hook(self)
        if warm:
            # already running when the run begins: its memory is in place, it is ready
            main.charge(config.memory.baseline)
            main.read_file(config.memory.cache)
            for helper, spec in zip(self.helpers, config.processes, strict=True):
                helper.charge(spec.memory)
            self._listening(incarnation, warm=True)
            self._leak(main)
            return
        self.env.process(self._boot(incarnation))

    def _boot(self, incarnation: int) -> Generator[Event, Any, None]:
        """A cold start: allocate the baseline (as the kernel lets it), wait the start-up delay."""
        env = self.env
        config = self.service.config
        main = self.process
        assert main is not None
        if not (yield from allocate(env, main, config.memory.baseline)):
            return
        yield env.timeout(main.read_file(config.memory.cache))
        for helper, spec in zip(self.helpers, config.processes, strict=True):
            yield from allocate(env, helper, spec.memory)
        yield env.timeout(config.startup.delay)
        self._listening(incarnation)
        if self.incarnation == incarnation:
            self._leak(main)

    def _leak(self, process: Process) -> None:
        leak = self.service.config.memory.leak
        if leak:
            self.env.process(grow(self.env, process, leak, cold=True))

    def _listening(self, incarnation: int, warm: bool = False) -> None:
        """The application serves: it runs (warming up after a cold start) and is ready."""
        if self.incarnation != incarnation or self.state is not InstanceState.STARTING:
            return
        self.state = InstanceState.RUNNING
        startup = self.service.config.startup
        if startup.warmup and not warm:
            self._warm_up(startup.warmup, startup.warmup_factor)
        self._update_ready(log=not warm)
        if self.otp is not None:
            self.otp.listening()

    def _warm_up(self, warmup: float, factor: float) -> None:
        """Service times start ``factor`` times longer and fall linearly to normal in ``warmup``."""
        env = self.env
        base = self.service.sample
        end = env.now + warmup
        extra = (factor - 1.0) / warmup

        def warming() -> float:
            left = end - env.now
            if left <= 0:
                self.sample = base
                return base()
            return base() * (1.0 + extra * left)

        self.sample = warming

    def _update_ready(self, log: bool = True) -> None:
        """Join or leave the load balancer: a running container is ready unless probes say no."""
        prober = self.prober
        self._set_serving(
            self.state is InstanceState.RUNNING and (prober is None or prober.ready()), log
        )

    def _set_serving(self, serving: bool, log: bool) -> None:
        if serving == self.serving:
            return
        self.serving = serving
        balancer = self.service.balancer
        if serving:
            balancer.add(self)
        else:
            balancer.remove(self)
        if log:
            what = "ready" if serving else "not_ready"
            self.service.recorder.event(
                self.env.now,
                self.host.name,
                self.name,
                what,
                f"Container {self.name} is {what.replace('_', ' ')}",
            )

    def _exited(self, reason: str) -> None:
        """The container's main process died: the container ends with it.

        The status reads as containerd reports it (§3.4): ``OOMKilled`` when the kernel's OOM
        killer killed it, otherwise ``Error`` with 143 after a SIGTERM and 137 after a SIGKILL.
        """
        if reason == "OOMKilled":
            self.terminate(reason, KILL_EXIT_CODE)
        elif reason.endswith("(SIGTERM)"):
            self.terminate("Error", TERM_EXIT_CODE)
        else:
            self.terminate("Error" if "(SIGKILL)" in reason else reason, KILL_EXIT_CODE)

    def _helper_exited(self, reason: str) -> None:
        """Another process of the container died: only the kernel log shows it (§3.4)."""

    def stop(self, grace: float) -> Event:
        """Stop the container on purpose: SIGTERM, then SIGKILL after ``grace`` seconds.

        On SIGTERM it leaves the load balancer and takes no new request; the requests inside it
        (in service and queued) finish, and when the last one leaves the process exits with 143
        (``Error``: the JVM's and Node's exit status after SIGTERM). Whatever is still inside
        when the grace period ends is cut short by SIGKILL (137). ``grace`` 0: SIGKILL at once;
        ``inf``: no SIGKILL (an OTP supervisor sends its own ``kill``). The event returned
        succeeds when the container has ended (at once if none runs).
        """
        if self.stopped is None:
            self.stopped = self.env.event()
        stopped = self.stopped
        if not self.running:
            self.stopped = None
            stopped.succeed()
            return stopped
        if self.state is InstanceState.TERMINATING:
            return stopped
        self.state = InstanceState.TERMINATING
        self._set_serving(False, log=False)
        if grace <= 0:
            self.terminate("Error", KILL_EXIT_CODE)
        elif not self.active:
            self.terminate("Error", TERM_EXIT_CODE)
        else:
            self.draining = True
            if grace != math.inf:
                incarnation = self.incarnation
                self.env.timeout(grace).callbacks.append(lambda _: self._grace_over(incarnation))
        return stopped

    def _grace_over(self, incarnation: int) -> None:
        if self.incarnation == incarnation and self.state is InstanceState.TERMINATING:
            self.terminate("Error", KILL_EXIT_CODE)

    def _drained(self) -> None:
        """The last request left a container stopping on SIGTERM: its process exits."""
        self.draining = False
        self.terminate("Error", TERM_EXIT_CODE)

    def terminate(self, reason: str, exit_code: int, restart: bool = True) -> None:
        """The container ends: requests inside it are reset; its restart policy decides.

        Under an OTP supervisor (:mod:`sim.supervision`) the supervisor decides instead.
        ``restart=False``: the pod is gone (evicted) and is not restarted in place. A restart
        after a non-zero back-off leaves the container Waiting in ``CrashLoopBackOff`` with the
        kubelet's message, and logs the kubelet's ``BackOff`` event.
        """
        if self.state in (InstanceState.TERMINATED, InstanceState.WAITING):
            return
        env = self.env
        self.state = InstanceState.TERMINATED
        self.incarnation += 1  # what the dead incarnation's requests release is no longer ours
        self.clients = {}  # client-side state (breakers, budgets) dies with the process
        self.reason = reason
        self.exit_code = exit_code
        self.finished_at = env.now
        self.started_at = None
        self.draining = False
        if self.stopped is not None:
            self.stopped.succeed()
            self.stopped = None
        self._set_serving(False, log=False)
        for process in [self.process, *self.helpers]:
            if process is not None and process.alive:
                process.host.kill(process, reason)  # frees its memory
        death = Death(self, reason)
        for proc in list(self.active):
            if proc.is_alive and proc is not env.active_process:
                proc.interrupt(death)
        self.active.clear()
        service = self.service
        recorder = service.recorder
        recorder.event(
            env.now,
            self.host.name,
            self.name,
            "terminated",
            f"Container {self.name} terminated: Reason: {reason}, Exit Code: {exit_code}",
        )
        if self.otp is not None:
            self.otp.exited(reason, exit_code)  # its supervisor decides
            return
        policy = service.config.restart.policy
        if (
            not restart
            or self.pod_pending is not None  # the pod is deleted: a new one replaces it
            or not should_restart(policy, exit_code)
            or not self.host.up
        ):
            return
        backoff = self.backoff.restart_delay(env.now)
        delay = self.backoff.observed_restart_delay(env.now, service.resync)
        self.state = InstanceState.WAITING
        if backoff > 0:
            pod = self.pod
            recorder.event(
                env.now,
                self.host.name,
                self.name,
                "backoff",
                backoff_event_message(service.name, pod),
            )
            self.waiting_message = waiting_message(backoff, service.name, pod)
            recorder.event(
                env.now,
                self.host.name,
                self.name,
                "waiting",
                f"Container {self.name} waiting: Reason: {CRASH_LOOP_BACK_OFF}, "
                f"Message: {self.waiting_message}",
            )
        incarnation = self.incarnation
        env.timeout(delay).callbacks.append(lambda _: self._restart(incarnation))

    def _restart(self, incarnation: int) -> None:
        if (
            self.incarnation != incarnation
            or self.state is not InstanceState.WAITING
            or self.pod_pending is not None  # the pod was deleted while it waited
        ):
            return
        if not self.host.up:
            return  # the node is down: its containers start when it comes back
        self.backoff.started(self.env.now, self.finished_at)
        self.restarts += 1
        self.service.recorder.event(
            self.env.now,
            self.host.name,
            self.name,
            "restart",
            f"Restarting container {self.service.name} in pod {self.name} "
            f"(restartCount {self.restarts})",
        )
        self.start()

    # ------------------------------------------------------------------ probes

    @property
    def container_id(self) -> str | None:
        """The current container's ID, new at each start (None before the first)."""
        if not self.containers:
            return None
        return f"containerd://{self.uid}/{self.containers}"

    @property
    def running(self) -> bool:
        """Whether a container runs: starting, serving or stopping."""
        return self.state in RUNNING_STATES

    def probe(self, kind: ProbeKind) -> ProbeAttempt:
        """One probe of ``kind`` against the current container (a :class:`ProbeTarget`).

        Refused unless the application listens (it serves, and has not been told to stop); a
        TCP probe is then accepted by the kernel; an HTTP probe is a request through the
        workers (``shares_workers``) or answered at once on a separate port unless hung.
        """
        assert self.prober is not None
        handler = self.prober.workers[kind].config.handler
        assert isinstance(handler, HTTPGetAction | TCPSocketAction)
        env = self.env
        if self.state is not InstanceState.RUNNING:
            return env.timeout(0, ProbeOutcome(False, handler.refused_output(self.pod_ip)))
        if isinstance(handler, TCPSocketAction):
            return env.timeout(0, True)
        spec = getattr(self.service.config.probes, kind.value)
        if spec.through_workers:
            return self._probe_request(handler)
        return self._probe_separately()

    def _probe_request(self, handler: HTTPGetAction) -> Generator[Event, Any, ProbeAnswer]:
        """An HTTP probe served like any request: admission chain, queue, a worker."""
        outcome = yield from self.serve(ProbeRequest(self.env.now))
        if outcome is OK:
            return True
        if outcome is RESET:
            return ProbeOutcome(False, handler.reset_output(self.pod_ip))
        status = HTTP_TOO_MANY_REQUESTS if outcome is RATE_LIMITED else HTTP_SERVICE_UNAVAILABLE
        return ProbeOutcome(False, handler.status_output(status))

    def _probe_separately(self) -> Generator[Event, Any, ProbeAnswer]:
        """An HTTP probe on a port of its own: answered at once unless the process hangs."""
        yield from self._wait_out_hangs()
        return True

    def _hang(self) -> Event | None:
        """The end of the hang this container is in, or None when it is not hung."""
        fault = self.service.perturbation
        if fault is None:
            return None
        entry = fault.hangs.get(self)
        if entry is None or entry[0] != self.incarnation or entry[1].triggered:
            return None
        return entry[1]

    def _wait_out_hangs(self) -> Generator[Event, Any, None]:
        hang = self._hang()
        while hang is not None:
            yield hang
            hang = self._hang()

    def probe_result(self, kind: ProbeKind, result: ProbeResult) -> None:
        """A probe's stored result changed (``on_result``): readiness may have changed."""
        self._update_ready()

    def probe_kill(self, kind: ProbeKind, message: str) -> None:
        """A liveness or startup failure (``on_kill``): stop the container, then restart it.

        The grace period is the probe's ``termination_grace_period_seconds`` or the pod's.
        """
        assert self.prober is not None
        grace = self.prober.workers[kind].config.termination_grace_period_seconds
        if grace is None:
            grace = self.service.config.termination_grace_period_seconds
        self.stop(grace)

    def probe_event(self, reason: str, message: str) -> None:
        """A kubelet event of the prober (``Unhealthy``, ``Killing``) into the event log."""
        self.service.recorder.event(self.env.now, self.host.name, self.name, reason, message)

    # ------------------------------------------------------------------ serving

    def _serve_plain(self, request: Request) -> HopResult:
        """:attr:`serve` without an admission chain: the worker pool and its FIFO queue."""
        env = self.env
        service = self.service
        stats = service.stats
        t0 = env._now
        proc = env._active_proc
        assert proc is not None
        active = self.active
        active[proc] = None
        incarnation = self.incarnation
        process = self.process
        assert process is not None
        holding = False
        try:
            if self.busy < self.workers:
                self.busy += 1
                holding = True
                stats.enter(t0, True)
                now = t0
            else:
                stats.enter(t0, False)
                capacity = self.queue_capacity
                if capacity is not None and len(self.queue) >= capacity:
                    request.origin = (service.name, SHED)
                    return self._done(SHED, t0)
                ticket = env.event()
                self.queue.append(ticket)
                queued_memory = service.per_queued
                queued_charged = queued_memory > 0 and _charge_queued(process, queued_memory)
                try:
                    yield ticket
                    holding = True
                finally:
                    if queued_charged:
                        process.uncharge(queued_memory)
                    if not holding and self.incarnation == incarnation:
                        if ticket.triggered:
                            holding = True  # the slot was handed to us; give it back below
                        else:
                            self.queue.remove(ticket)
                now = env._now
                stats.waited(now, now - t0)
            if request.deadline <= now:  # the caller gave up while this waited
                request.origin = (service.name, DEADLINE_EXCEEDED)
                return self._done(DEADLINE_EXCEEDED, t0)
            if service.perturbation is None and not (
                service.per_request or process.swap or self.answers_probes
            ):  # _work(), inline when it has nothing else to do
                yield env.timeout(self.sample())
                outcome = OK
                if service.edges:
                    outcome = yield from service.call_downstream(request, self)
            else:
                outcome = yield from self._work(request, process)
            now = env._now  # _done(), inline on the way every hop takes
            stats.record(now, outcome, now - t0, leaving=True)
            return outcome
        except simpy.Interrupt as interrupt:
            return self._cut(request, t0, interrupt)
        finally:
            if holding and self.incarnation == incarnation:
                queue = self.queue
                if queue:
                    queue.popleft().succeed()
                else:
                    self.busy -= 1
            active.pop(proc, None)
            if self.draining and not active:
                self._drained()

    def _serve_admitted(self, request: Request) -> HopResult:
        """:attr:`serve` through the admission chain.

        Rate limit -> concurrency limit -> wait queue (discipline, priority by class) -> worker
        -> deadline check -> work.
        """
        env = self.env
        service = self.service
        stats = service.stats
        t0 = env._now
        proc = env._active_proc
        assert proc is not None
        active = self.active
        active[proc] = None
        stats.change(t0, 1)
        incarnation = self.incarnation
        process = self.process
        state = self.admission
        assert process is not None
        assert state is not None
        plan = state.plan
        holding = False
        token: LimiterToken | None = None
        try:
            bucket = state.bucket
            rate_limiter = state.rate_limiter
            if (bucket is not None and not bucket.try_take()) or (
                rate_limiter is not None and not (yield from rate_limiter.acquire_permission())
            ):
                plan.rate_limited += 1
                request.origin = (service.name, RATE_LIMITED)
                return self._done(RATE_LIMITED, t0)
            limiter = state.limiter
            if limiter is not None:
                token = limiter.try_acquire()
                if token is None:
                    plan.limit_shed += 1
                    request.origin = (service.name, SHED)
                    return self._done(SHED, t0)
            pool = state.pools[plan.pool_of[request.cls]]
            if pool.busy < pool.workers:
                pool.busy += 1
                holding = True
                stats.waited(t0, 0.0)
                now = t0
            else:
                queue = pool.queue
                ticket = QueueTicket(t0, plan.priorities[request.cls], env.event())
                for victim in queue.put(ticket):
                    if victim is not ticket:
                        plan.queue_evicted += 1
                    victim.payload.succeed(SHED)
                slot = ticket.payload
                got: Any = SHED
                if not slot.triggered:
                    queued_memory = service.per_queued
                    queued_charged = queued_memory > 0 and _charge_queued(process, queued_memory)
                    got = None
                    try:
                        got = yield slot
                    finally:
                        if queued_charged:
                            process.uncharge(queued_memory)
                        if got is None and self.incarnation == incarnation:
                            if not slot.triggered:
                                queue.remove(ticket)
                            elif slot.value is True:
                                holding = True  # the slot was handed to us; give it back below
                if got is SHED:
                    if token is not None:
                        token.on_dropped()
                    request.origin = (service.name, SHED)
                    return self._done(SHED, t0)
                holding = True
                now = env._now
                stats.waited(now, now - t0)
            if request.deadline <= now:  # the caller gave up while this waited
                request.origin = (service.name, DEADLINE_EXCEEDED)
                outcome = DEADLINE_EXCEEDED
            else:
                outcome = yield from self._work(request, process)
            if token is not None:
                if outcome <= DEGRADED:
                    token.on_success()
                elif outcome is ERROR or outcome is RESET:
                    token.on_ignore()
                else:
                    token.on_dropped()
            now = env._now  # _done(), inline on the way every hop takes
            stats.record(now, outcome, now - t0, leaving=True)
            return outcome
        except simpy.Interrupt as interrupt:
            return self._cut(request, t0, interrupt)
        finally:
            if token is not None and not token.done:
                token.on_ignore()
            if holding and self.incarnation == incarnation:
                nxt = pool.queue.get()
                if nxt is None:
                    pool.busy -= 1
                else:
                    nxt.payload.succeed(True)
            active.pop(proc, None)
            if self.draining and not active:
                self._drained()

    def _cut(self, request: Request, t0: float, interrupt: simpy.Interrupt) -> Outcome:
        """A hop cut short by a death: it ends ``reset``; re-raised unless the death was ours.

        Our own death, or the death of a caller up this process's stack: with no timeout the
        call shares the caller's connection, and its closing cancels the work here.
        """
        request.origin = (self.service.name, RESET)
        self._done(RESET, t0)
        cause = interrupt.cause
        if isinstance(cause, Death) and cause.instance is self:
            return RESET
        raise interrupt

    def _done(self, outcome: Outcome, t0: float) -> Outcome:
        """Count the hop's end (``serve``'s ``finally`` forgets the process)."""
        now = self.env._now
        self.service.stats.record(now, outcome, now - t0, leaving=True)
        return outcome

    def _work(self, request: Request, process: Process) -> HopResult:
        service = self.service
        env = self.env
        fault = service.perturbation
        if fault is not None and fault.hangs:
            yield from self._wait_out_hangs()  # a hung process picks work up, never does it
            fault = service.perturbation
        if fault is not None and fault.poison is not None and fault.poison(request):
            # let it crash: the unhandled error takes the container down with this request
            request.origin = (service.name, RESET)
            self.terminate("Error", POISON_EXIT_CODE)
            return RESET
        per_request = service.per_request
        if per_request:
            try:
                stall = process.charge(per_request)
            except AllocationFailed:
                request.origin = (service.name, ERROR)  # ENOMEM: the allocation was refused
                return ERROR
            if stall:
                if not (yield from settle(env, process, per_request, stall)):
                    request.origin = (service.name, ERROR)
                    return ERROR
                fault = service.perturbation
        try:
            duration = self.sample()
            if fault is not None:
                duration = duration * fault.factor + fault.add
            if process.swap:
                duration += process.refault_stall(duration)
            yield env.timeout(duration)
            if fault is not None and fault.error_rate and service.fault_rng() < fault.error_rate:
                request.origin = (service.name, ERROR)
                return ERROR
            if not service.edges:
                return OK
            return (yield from service.call_downstream(request, self))
        finally:
            if per_request:
                process.uncharge(per_request)

    @property
    def ready(self) -> bool:
        """Whether the load balancer may send requests here."""
        return self.serving

    @property
    def working(self) -> int:
        """Workers busy with a request now (each pool's count when there is an admission chain)."""
        if self.admission is not None:
            return sum(pool.busy for pool in self.admission.pools)
        return self.busy

    @property
    def queued(self) -> int:
        """Requests waiting for a worker."""
        if self.admission is not None:
            return sum(len(pool.queue) for pool in self.admission.pools)
        return len(self.queue)


FIVE_XX = frozenset({ERROR, RESET, SHED, UNAVAILABLE, DEADLINE_EXCEEDED, DEPENDENCY, TIMEOUT})
"""Hop outcomes an Envoy outlier detector counts as 5xx (``rate_limited`` is a 429)."""

PANIC_THRESHOLD = 50.0
"""Envoy's ``healthy_panic_threshold`` default (%): below it, balance over every instance."""


class ProbeRequest(Request):
    """A kubelet probe on the application's own port: served like a request.

    It goes through the instance's admission chain and worker pool and is counted among the
    service's hops, as a server's access log and request metrics show health checks. Its work
    takes no time once a worker has it, unless the process hangs.
    """

    __slots__ = ()

    def __init__(self, t0: float) -> None:
        super().__init__(PROBE_REQUEST_ID, 0, t0)


class ProbedInstance(Instance):
    """An instance whose probes share its workers (``shares_workers``).

    A subclass, so that an instance without such probes pays nothing for telling them apart.
    """

    __slots__ = ()

    answers_probes = True

    def _work(self, request: Request, process: Process) -> HopResult:
        if request.__class__ is ProbeRequest:
            return self._answer_probe()
        return Instance._work(self, request, process)

    def _answer_probe(self) -> HopResult:
        yield from self._wait_out_hangs()
        return OK


class LoadBalancer:
    """Spreads requests over a service's ready instances.

    ``round_robin`` (Envoy's default), ``least_outstanding`` (fewest requests inside; ties go to
    the next in round-robin order) or ``random`` (kube-proxy's iptables mode picks at random).
    With ``outliers`` (Envoy outlier detection) ejected instances are skipped, unless fewer
    than :data:`PANIC_THRESHOLD` percent are left, when Envoy's panic mode uses them all.
    """

    __slots__ = ("_next", "outliers", "policy", "ready", "rng")

    def __init__(
        self, policy: str, rng: Callable[[], float], outliers: OutlierDetector | None = None
    ) -> None:
        self.policy = policy
        self.ready: list[Instance] = []
        self.rng = rng
        self._next = 0
        self.outliers = outliers

    def observe(self, instance: Instance, outcome: Outcome) -> None:
        """Tell the outlier detector how a hop to ``instance`` ended."""
        detector = cast(OutlierDetector, self.outliers)
        detector.add_host(instance.name)
        detector.record(instance.name, outcome not in FIVE_XX)

    def _healthy(self, ready: list[Instance]) -> list[Instance]:
        detector = cast(OutlierDetector, self.outliers)
        healthy = [i for i in ready if not detector.is_ejected(i.name)]
        return healthy if 100 * len(healthy) >= PANIC_THRESHOLD * len(ready) else ready

    def add(self, instance: Instance) -> None:
        """Put a ready instance in rotation (kept in replica order)."""
        if instance not in self.ready:
            self.ready.append(instance)
            self.ready.sort(key=lambda i: i.index)

    def remove(self, instance: Instance) -> None:
        """Take an instance out of rotation."""
        if instance in self.ready:
            self.ready.remove(instance)

    def pick(self) -> Instance | None:
        """The instance for the next request, or ``None`` when none is ready."""
        ready = self.ready if self.outliers is None else self._healthy(self.ready)
        n = len(ready)
        if n == 0:
            return None
        if n == 1:
            return ready[0]
        if self.policy == "random":
            return ready[int(self.rng() * n)]
        start = self._next % n
        self._next = start + 1
        if self.policy == "round_robin":
            return ready[start]
        best = ready[start]
        for offset in range(1, n):
            candidate = ready[(start + offset) % n]
            if len(candidate.active) < len(best.active):
                best = candidate
        return best


class Edge:
    """A call from a caller (a service, or the users) to a service: one arc of the call graph."""

    __slots__ = (
        "callee",
        "env",
        "leaves",
        "name",
        "optional",
        "perturbation",
        "policies",
        "probability",
        "propagate",
        "recorder",
        "rng",
        "shared",
        "stats",
        "timeout",
    )

    def __init__(
        self,
        env: simpy.Environment,
        caller: str,
        callee: Service,
        timeout: float | None,
        probability: float,
        optional: bool,
        rng: Callable[[], float],
        stats: EntityStats,
        policies: CallPolicies | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.env = env
        self.name = f"{caller} -> {callee.name}"
        self.callee = callee
        self.timeout = timeout
        self.probability = probability
        self.optional = optional
        self.rng = rng
        self.stats = stats
        self.perturbation: Perturbation | None = None
        self.policies = policies
        """The client-side policy chain; None: a bare call (the fast path)."""
        self.recorder = recorder
        """Where the policies' event lines go (None: nowhere)."""
        self.shared: ClientState | None = None
        """Policy state of calls made without a calling instance (the users' edge)."""
        self.propagate = False
        """Deadline propagation: the hops below this edge's timeouts see their deadline."""
        self.leaves = caller == CLIENT
        """The users' edge: a request whose call ends here leaves the system (its ``stats``,
        the client's, count it out in the same pass as its outcome)."""

    def send(
        self, request: Request, end: Callable[[Request, Outcome], None]
    ) -> Generator[Event, Any, Outcome | None]:
        """The users' side of ``request``, for its own process to run: ``end`` hears its outcome.

        A plain function handing back the generator to run (no generator level of its own): a
        call under the users' timeout walks away (:meth:`call_and_walk_away`); any other is
        :meth:`call`, which tells ``end`` when it is over. The users' edge has no client-side
        policies (a plain :class:`Edge`: :class:`PolicyEdge` refuses ``end``).
        """
        if self.timeout is not None:
            return self.call_and_walk_away(request, end)
        return self.call(request, None, end)

    def call(
        self,
        request: Request,
        caller: Instance | None = None,
        end: Callable[[Request, Outcome], None] | None = None,
    ) -> HopResult:
        """Make the call; return the outcome the caller sees (and count it on the edge).

        The timeout covers the whole way to the callee and back, network delay included.
        ``caller`` is the calling instance (used by :class:`PolicyEdge`; a bare edge, the fast
        path, has no client-side state). ``end``, if given, hears the outcome (:meth:`send`).
        """
        env = self.env
        t0 = env._now
        outcome: Outcome
        try:
            if self.timeout is None:
                outcome = yield from self._deliver(request)
            else:
                hop = request.within(t0 + self.timeout) if self.propagate else request
                child = Started(env, self._deliver(hop))
                yield within(env, child, self.timeout)
                if hop is not request:
                    request.merge(hop)
                if child.triggered:
                    outcome = child.value  # type: ignore[assignment]  # no cast(): a call per hop
                else:
                    request.origin = (self.name, TIMEOUT)
                    outcome = TIMEOUT
        except simpy.Interrupt:
            # the caller died mid-call: the call ends with its connection
            self.stats.record(env._now, RESET, env._now - t0, self.leaves)
            raise
        now = env._now
        self.stats.record(now, outcome, now - t0, self.leaves)
        if end is not None:
            end(request, outcome)
        return outcome

    def call_and_walk_away(
        self, request: Request, end: Callable[[Request, Outcome], None]
    ) -> Generator[simpy.Event, Any, None]:
        """The users' call under their timeout: ``end`` hears what the user sees, once.

        A late answer is a ``timeout`` the moment the timer fires; the entry's work goes on in
        this same process, which nobody waits for any more. :meth:`call` does the same with a
        child process and a race, which a caller that must go on after the timeout needs.
        """
        env = self.env
        t0 = env._now
        timeout: float = self.timeout  # type: ignore[assignment]  # no cast(): a call per hop
        hop = request.within(t0 + timeout) if self.propagate else request
        stats = self.stats
        gave_up = False

        def give_up(_: object, __: object, ___: object) -> None:
            nonlocal gave_up
            gave_up = True
            if hop is not request:
                request.merge(hop)
            request.origin = (self.name, TIMEOUT)
            stats.record(env._now, TIMEOUT, timeout, self.leaves)
            end(request, TIMEOUT)

        # the timer watches the user's process (this generator's): moot once it has its answer
        timers_of(env).start(timeout, cast(simpy.Process, env._active_proc), give_up)
        outcome = yield from self._deliver(hop)
        if gave_up:
            return  # the user left at the timeout
        if hop is not request:
            request.merge(hop)
        now = env._now
        stats.record(now, outcome, now - t0, self.leaves)
        end(request, outcome)

    def _deliver(self, request: Request) -> HopResult:
        """The request's way to the callee: network faults, the load balancer, the server.

        A plain function: on a healthy edge to a plain load balancer it picks the instance and
        hands back the generator that serves (one generator level less per hop, as
        :attr:`Instance.serve`); anything else goes through :meth:`_deliver_slowly`.
        """
        balancer = self.callee.balancer
        if self.perturbation is None and balancer.outliers is None:
            instance = balancer.pick()
            if instance is not None:
                return instance.serve(request)
        return self._deliver_slowly(request)

    def _deliver_slowly(self, request: Request) -> HopResult:
        """:meth:`_deliver` with edge faults, outlier detection, or no instance ready."""
        fault = self.perturbation
        if fault is not None and fault.partition is not None:
            if fault.partition == "drop":  # connection refused: never reached the callee
                request.origin = (self.name, UNAVAILABLE)
                return UNAVAILABLE
            healed = fault.healed
            assert healed is not None
            yield healed  # blackholed until the caller gives up, or the partition heals
            fault = self.perturbation
        if fault is not None:
            if fault.add:
                yield self.env.timeout(fault.add)
            if fault.error_rate and self.rng() < fault.error_rate:
                request.origin = (self.name, ERROR)
                return ERROR
        balancer = self.callee.balancer
        instance = balancer.pick()
        if instance is None:
            request.origin = (self.callee.name, UNAVAILABLE)
            return UNAVAILABLE
        if balancer.outliers is None:
            return (yield from instance.serve(request))
        outcome = yield from instance.serve(request)
        balancer.observe(instance, outcome)
        return outcome


class PolicyEdge(Edge):
    """An edge with client-side policies (``policies`` set): the call runs through the chain.

    A subclass, so that a bare :class:`Edge` pays nothing for policies it does not have.
    """

    __slots__ = ()

    def call(
        self,
        request: Request,
        caller: Instance | None = None,
        end: Callable[[Request, Outcome], None] | None = None,
    ) -> HopResult:
        """Make the call through the policy chain; count the caller's final view once.

        A plain function handing back the chain's generator (which counts the call, as it is
        the outermost level), so that the caller's ``yield from`` drives it directly. A service's
        call: ``end`` (the users' side, :meth:`Edge.send`) is not for a policy edge.
        """
        if end is not None:
            raise TypeError("the users' edge has no client-side policies")
        return self._chain(0, request, self._state(caller), self.env._now)

    def _state(self, caller: Instance | None) -> ClientState:
        """The policy state of ``caller`` for this edge, made on its first call."""
        if caller is None:
            if self.shared is None:
                self.shared = ClientState(self.env, cast(CallPolicies, self.policies), None, None)
            return self.shared
        state = caller.clients.get(self)
        if state is None:
            state = caller.clients[self] = ClientState(
                self.env, cast(CallPolicies, self.policies), caller, self._breaker_sink(caller)
            )
        return state

    def _breaker_sink(self, caller: Instance) -> Callable[[str, str], None] | None:
        recorder = self.recorder
        if recorder is None:
            return None
        incarnation = caller.incarnation

        def sink(kind: str, line: str) -> None:
            # a breaker of a dead incarnation (a timer still pending) is nobody's any more
            if caller.incarnation == incarnation:
                recorder.event(self.env.now, caller.host.name, caller.name, "circuit_breaker", line)

        return sink

    def _chain(
        self, index: int, request: Request, state: ClientState, t0: float = -1.0
    ) -> HopResult:
        """Layers ``index``.. of the policy chain (outermost first) around the transport.

        The layers that do not wait (fallback, circuit breaker, a rate limiter or bulkhead that
        grant or refuse at once) run inline in one generator, and so does the retry loop; each
        attempt, the timeout's child and a bulkhead that waits for a permit nest a level. ``t0``
        (the call's start) is given to the outermost level only: it counts the caller's view.
        """
        policies: CallPolicies = self.policies  # type: ignore[assignment]  # no cast(): a call per hop
        layers = policies.layers
        n = len(layers)
        env = self.env
        i = index
        breaker_t0 = 0.0
        outcome: Outcome
        try:
            for i in policies.stops[index]:  # i: where this level stopped (unwound below)
                if i == n:
                    outcome = yield from self._deliver(request)
                    break
                layer = layers[i]
                if layer == CIRCUIT_BREAKER:
                    breaker = state.breaker
                    assert breaker is not None
                    if not breaker.try_acquire_permission():
                        request.origin = (self.name, CIRCUIT_OPEN)
                        outcome = CIRCUIT_OPEN
                        break
                    breaker_t0 = env._now
                    continue
                if layer == RATE_LIMITER:
                    rate_limiter = state.rate_limiter
                    assert rate_limiter is not None
                    permitted, park = rate_limiter.try_acquire_permission()
                    if park > 0:
                        rate_limiter.waiting += 1
                        try:
                            yield env.timeout(park)
                        finally:
                            rate_limiter.waiting -= 1
                    if not permitted:
                        request.origin = (self.name, RATE_LIMITED)
                        outcome = RATE_LIMITED
                        break
                    continue
                if layer == BULKHEAD:
                    bulkhead = state.bulkhead
                    if policies.bulkhead_waits:
                        outcome = yield from self._bulkhead_wait(i + 1, request, state)
                        break
                    assert isinstance(bulkhead, SemaphoreBulkhead)
                    if not bulkhead.try_acquire_permission():
                        self._bulkhead_rejected(request, state)
                        outcome = BULKHEAD_FULL
                        break
                    continue
                if layer == RETRY:  # RetryCall decides; each attempt is the rest of the chain
                    inner = i + 1
                    budget = state.budget
                    exhausted = 0 if budget is None else budget.exhausted
                    rules: RetryRules = policies.retry_rules  # type: ignore[assignment]
                    call = RetryCall(env, rules, budget)
                    below_per_try = self.propagate and rules.config.per_try_timeout is not None
                    try:
                        while True:
                            limit = call.begin()
                            if limit is None:
                                sleep = call.end((yield from self._chain(inner, request, state)))
                            else:
                                hop = request.within(env._now + limit) if below_per_try else request
                                child = Started(env, self._chain(inner, hop, state))
                                yield within(env, child, limit)
                                if hop is not request:
                                    request.merge(hop)
                                ended = child.triggered
                                sleep = call.end(child.value if ended else None, ended)
                            if sleep > 0:
                                yield env.timeout(sleep)
                            if call.over:
                                break
                    finally:
                        call.close()
                    if budget is not None:
                        policies.budget_exhausted += budget.exhausted - exhausted
                    outcome = call.outcome  # type: ignore[assignment]
                    if outcome is TIMEOUT and request.origin is None:
                        request.origin = (self.name, TIMEOUT)
                    break
                # the timeout (resilience4j's TimeLimiter): the callee goes on after it fires
                timeout: float = self.timeout  # type: ignore[assignment]  # no cast(): a call per hop
                hop = request.within(env._now + timeout) if self.propagate else request
                child = Started(env, self._chain(i + 1, hop, state))
                yield within(env, child, timeout)
                if hop is not request:
                    request.merge(hop)
                if child.triggered:
                    outcome = child.value  # type: ignore[assignment]  # no cast(): a call per hop
                else:
                    request.origin = (self.name, TIMEOUT)
                    outcome = TIMEOUT
                break
        except BaseException as exc:
            # unwind the layers entered, innermost first, as their generators would have
            interrupted = isinstance(exc, simpy.Interrupt)
            if interrupted and t0 >= 0:  # the caller died mid-call: it ends with its connection
                self.stats.record(env._now, RESET, env._now - t0)
            for layer in policies.unwind[index][i]:
                if layer == BULKHEAD:
                    state.bulkhead.on_complete()  # type: ignore[union-attr]
                elif layer == CIRCUIT_BREAKER and interrupted:
                    state.breaker.release_permission()  # type: ignore[union-attr]
            raise
        for layer in policies.unwind[index][i]:
            if layer == BULKHEAD:
                state.bulkhead.on_complete()  # type: ignore[union-attr]
            elif layer == CIRCUIT_BREAKER:
                breaker = state.breaker
                if outcome <= DEGRADED:
                    breaker.on_success(env._now - breaker_t0)  # type: ignore[union-attr]
                else:
                    breaker.on_error(env._now - breaker_t0, outcome.label)  # type: ignore[union-attr]
            elif outcome > DEGRADED:  # the fallback
                policies.fallbacks += 1
                outcome = DEGRADED
        if t0 >= 0:
            now = env._now
            self.stats.record(now, outcome, now - t0)
        return outcome

    def _bulkhead_wait(self, inner: int, request: Request, state: ClientState) -> HopResult:
        """A bulkhead that may make the call wait around the rest of the chain.

        A semaphore with ``max_wait_duration`` > 0 (waiting for a permit), or a thread pool (a
        submitted call waits in its queue for a thread).
        """
        bulkhead = state.bulkhead
        assert bulkhead is not None
        permit = (
            bulkhead.submit() if isinstance(bulkhead, ThreadPoolBulkhead) else bulkhead.request()
        )
        with permit:
            if not permit.triggered:
                yield permit
            if not permit.granted:
                self._bulkhead_rejected(request, state)
                return BULKHEAD_FULL
            return (yield from self._chain(inner, request, state))

    def _bulkhead_rejected(self, request: Request, state: ClientState) -> None:
        request.origin = (self.name, BULKHEAD_FULL)
        cast(CallPolicies, self.policies).bulkhead_rejected += 1
        recorder = self.recorder
        if recorder is not None:
            owner = state.owner
            recorder.event(
                self.env.now,
                "" if owner is None else owner.host.name,
                self.name.split(" -> ")[0] if owner is None else owner.name,
                "bulkhead",
                f"Bulkhead '{cast(CallPolicies, self.policies).name}' rejected a call.",
            )


class Service:
    """A service: its instances, load balancer, sampler and the edges it calls."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: sc.Service,
        recorder: Recorder,
        sample: Callable[[], float],
        balancer: LoadBalancer,
        fault_rng: Callable[[], float],
        call_rng: Callable[[], float],
        resync: Uniform,
    ) -> None:
        self.env = env
        self.name = name
        self.config = config
        self.recorder = recorder
        self.stats = recorder.stats[name]
        self.sample = sample
        self.balancer = balancer
        self.fault_rng = fault_rng
        self.call_rng = call_rng
        self.instances: list[Instance] = []
        self.edges: list[Edge] = []
        """The calls, in order (the World adds them; never changed while running)."""
        self.every_call_made = True
        """Whether every call has probability 1 (then no draw and no list per request)."""
        self.comm = name[:15]  # TASK_COMM_LEN: the kernel keeps 15 characters of a name
        self.per_request = config.memory.per_request
        self.per_queued = config.memory.per_queued
        self.parallel = config.call_mode == "parallel"
        self.perturbation: Perturbation | None = None
        self.admission: AdmissionPlan | None = None
        """The admission chain beyond a plain bounded FIFO (set by the World), or None."""
        spec = config.brownout
        self.brownout = None if spec is None else Brownout(BrownoutConfig(**spec.model_dump()))
        """The brownout switch (the World flips it), or None."""
        self.optional_skipped = 0
        """Optional calls skipped in a brownout, over the run."""
        self.backoff_config = config.restart.backoff_config()
        self.resync = resync
        """Draws the kubelet's 10-15 s pod re-syncs (used when ``restart.resync_jitter``)."""
        self.on_start: list[Callable[[Instance], None]] = []
        """Called with each instance whose container starts (faults that act on starts)."""

    def call_downstream(self, request: Request, caller: Instance | None = None) -> HopResult:
        """Make this service's calls for ``request``; ``ok``, ``degraded`` or ``dependency``.

        ``caller`` is the instance making them: it holds the client-side policy state.
        """
        chosen = self.edges
        if not chosen:
            return OK
        if not self.every_call_made:
            chosen = [
                edge
                for edge in chosen
                if edge.probability >= 1.0 or self.call_rng() < edge.probability
            ]
            if not chosen:
                return OK
        env = self.env
        deadline = request.deadline  # the callers gave up after it: do not call on their behalf
        degraded = False
        brownout = self.brownout
        if brownout is not None and brownout.active:
            kept = [edge for edge in chosen if not edge.optional]
            if len(kept) < len(chosen):
                self.optional_skipped += len(chosen) - len(kept)
                degraded = True
                chosen = kept
                if not chosen:
                    return DEGRADED
        if self.parallel and len(chosen) > 1:
            if deadline <= env._now:
                request.origin = (self.name, DEADLINE_EXCEEDED)
                return DEADLINE_EXCEEDED
            children = [env.process(edge.call(request, caller)) for edge in chosen]
            yield env.all_of(children)
            for edge, child in zip(chosen, children, strict=True):
                outcome: Outcome = child.value  # type: ignore[assignment]  # no cast(): a call per hop
                if outcome > DEGRADED and not edge.optional:
                    return DEPENDENCY
                degraded = degraded or outcome is not OK
            return DEGRADED if degraded else OK
        for edge in chosen:
            if deadline <= env._now:
                request.origin = (self.name, DEADLINE_EXCEEDED)
                return DEADLINE_EXCEEDED
            outcome = yield from edge.call(request, caller)
            if outcome > DEGRADED and not edge.optional:
                return DEPENDENCY
            degraded = degraded or outcome is not OK
        return DEGRADED if degraded else OK

    def instance_counts(self) -> dict[str, int]:
        """How many instances are in each state, plus how many are ready."""
        counts = {state.value: 0 for state in InstanceState}
        for instance in self.instances:
            counts[instance.state.value] += 1
        counts["ready"] = len(self.balancer.ready)
        return counts


def _charge_queued(process: Process, amount: int) -> bool:
    """Charge a queued request's ``amount`` (> 0) bytes; whether they were (to uncharge after).

    A queued request holds no thread: it does not wait for the memory, and a refused
    allocation (``ENOMEM``) leaves it queued, uncharged.
    """
    try:
        return process.charge(amount) != math.inf
    except AllocationFailed:
        return False


def uniform_source(rng: np.random.Generator) -> Callable[[], float]:
    """A zero-argument source of uniforms in [0, 1) drawn in batches from ``rng``."""
    from sim.streams import batched

    return batched(lambda n: rng.random(n))
