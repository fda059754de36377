"""The scenario format: pydantic v2 models, the YAML loader and variant overlays.

A scenario is the contract users write (``../shared/DESIGN.md`` §3). Every model is frozen and
forbids unknown fields, so a typo is an error, never a silently ignored knob. Units are parsed by
:mod:`sim.units`; a plain number is in base units (bytes, seconds, per second, fraction).

The loader (:func:`load_scenario`) reports every problem as ``file:line:col: dotted.path:
message`` (:class:`ScenarioError`): YAML syntax, duplicate keys, schema violations, unknown call
targets and hosts, call-graph cycles, placement that cannot fit, supervision trees (unknown,
repeated or cyclic children; a service under OTP with a restart policy or a liveness probe), and
the same for each variant.

Variants are overlays: a mapping from a dotted path to a new value. Path segments name mapping keys;
inside a list they name the item whose ``name`` (or ``to``, for calls) equals the segment, or give
its index. An overlay that names a field the schema does not have is an error.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import networkx as nx
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from patterns import adaptive_concurrency as ac_pattern
from patterns import backpressure as bp_pattern
from patterns import bulkhead as bulkhead_pattern
from patterns import circuit_breaker as cb_pattern
from patterns import degradation as degradation_pattern
from patterns import health_probe as probe_pattern
from patterns import otp_supervisor as otp_pattern
from patterns import retry as retry_pattern
from patterns import supervisor as supervisor_pattern
from sim import units

# --------------------------------------------------------------------------- unit-typed fields


def _unit(parser: Any, example: str, description: str) -> Any:
    return [
        BeforeValidator(parser),
        WithJsonSchema(
            {
                "anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}],
                "description": f"{description}, e.g. {example!r} or a plain number",
            }
        ),
    ]


Bytes = Annotated[int, *_unit(units.parse_bytes, "512Mi", "Memory size in bytes")]
Duration = Annotated[float, *_unit(units.parse_duration, "250ms", "Duration in seconds")]
Rate = Annotated[float, *_unit(units.parse_rate, "300/s", "Rate per second")]
Fraction = Annotated[float, *_unit(units.parse_fraction, "99.9%", "Fraction between 0 and 1")]
Cpu = Annotated[float, *_unit(units.parse_cpu, "500m", "CPU cores")]
PositiveDuration = Annotated[Duration, Field(gt=0)]


class Model(BaseModel):
    """Base of every scenario model: frozen, unknown fields forbidden."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- distributions


class Exponential(Model):
    """Exponential service time (memoryless): the M in M/M/c."""

    dist: Literal["exponential"]
    mean: PositiveDuration


class Deterministic(Model):
    """Constant service time."""

    dist: Literal["deterministic"]
    value: Duration


class LogNormal(Model):
    """Log-normal service time given by its median and 99th percentile.

    sigma = ln(p99 / median) / z(0.99) with z(0.99) = 2.3263; mu = ln(median).
    """

    dist: Literal["lognormal"]
    median: PositiveDuration
    p99: PositiveDuration

    @model_validator(mode="after")
    def _p99_above_median(self) -> LogNormal:
        if self.p99 <= self.median:
            raise ValueError("p99 must be greater than median")
        return self


class Uniform(Model):
    """Uniform service time between ``low`` and ``high``."""

    dist: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must not be less than low")
        return self


class Empirical(Model):
    """Service time drawn from observed values (optionally weighted)."""

    dist: Literal["empirical"]
    values: list[Duration] = Field(min_length=1)
    weights: list[Annotated[float, Field(gt=0)]] | None = None

    @model_validator(mode="after")
    def _weights_match(self) -> Empirical:
        if self.weights is not None and len(self.weights) != len(self.values):
            raise ValueError(
                f"weights has {len(self.weights)} items but values has {len(self.values)}"
            )
        return self


Distribution = Annotated[
    Exponential | Deterministic | LogNormal | Uniform | Empirical, Field(discriminator="dist")
]

# --------------------------------------------------------------------------- hosts


class SysctlConfig(Model):
    """Memory sysctls of a host; defaults are the kernel's (Documentation/admin-guide/sysctl).

    ``kernel_panic`` is ``kernel.panic``: seconds from a panic to the reboot, 0 = never.
    ``swap_rate`` and ``thrash_factor`` are model parameters, not sysctls: how fast the swap
    device moves pages (200 MiB/s) and how much a process slows per share of its memory in swap.
    """

    panic_on_oom: Literal[0, 1, 2] = 0
    oom_kill_allocating_task: Literal[0, 1] = 0
    overcommit_memory: Literal[0, 1, 2] = 0
    overcommit_ratio: Annotated[int, Field(ge=0, le=1000)] = 50
    kernel_panic: Duration = 0.0
    swap_rate: Annotated[Rate, Field(gt=0)] = 200 * 1024**2
    thrash_factor: Annotated[float, Field(ge=0)] = 10.0


class CgroupSettings(Model):
    """cgroup memory files to write (``null``: leave the default ``max`` / 0).

    ``oom_kill_disable`` is cgroup v1's ``memory.oom_control`` (hosts with ``cgroup_version: 1``).
    """

    max: Bytes | None = None
    high: Bytes | None = None
    min: Bytes = 0
    low: Bytes = 0
    swap_max: Bytes | None = None
    oom_group: bool | None = None
    oom_kill_disable: bool = False


class ExtraCgroup(CgroupSettings):
    """A cgroup of the host's own (a batch slice, a limited system service)."""

    path: str = Field(pattern=r"^/[^\s]*$")


class ExtraProcess(Model):
    """A process that is not a service replica: a batch job, a log shipper, a memory hog.

    It allocates ``memory`` at ``rate`` (all at once when ``rate`` is null) from ``at`` on.
    """

    name: str = Field(min_length=1, max_length=15)
    cgroup: str = Field(default="/system.slice/extra.service", pattern=r"^/[^\s]*$")
    memory: Bytes = 0
    rate: Annotated[Bytes, Field(gt=0)] | None = None
    at: Duration = 0.0
    oom_score_adj: Annotated[int, Field(ge=-1000, le=1000)] = 0


class EarlyoomSettings(Model):
    """earlyoom's command line (``patterns/earlyoom.py`` has the defaults and their sources).

    ``report_interval`` is earlyoom's ``-r`` (its default is 1 s); the simulator's default 0
    keeps the periodic memory report out of the event log.
    """

    mem_term_percent: Annotated[float, Field(gt=0, le=100)] = 10.0
    mem_kill_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    swap_term_percent: Annotated[float, Field(gt=0, le=100)] = 10.0
    swap_kill_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    prefer: str | None = None
    avoid: str | None = None
    report_interval: Duration = 0.0


class OomdUnit(Model):
    """A cgroup systemd-oomd watches (``ManagedOOMMemoryPressure=kill``, ``ManagedOOMSwap``)."""

    path: str = Field(pattern=r"^/[^\s]*$")
    memory_pressure: bool = True
    memory_pressure_limit: Fraction | None = None
    memory_pressure_duration: PositiveDuration | None = None
    swap: bool = False


class OomdSettings(Model):
    """systemd-oomd (``oomd.conf``); defaults are systemd's (``patterns/systemd_oomd.py``)."""

    monitor: list[OomdUnit] = Field(min_length=1)
    swap_used_limit: Fraction = 0.9
    default_memory_pressure_limit: Fraction = 0.6
    default_memory_pressure_duration: PositiveDuration = 30.0
    preferences: dict[str, Literal["avoid", "omit"]] = {}


class UserspaceKillers(Model):
    """Optional user-space OOM killers on a host, off by default."""

    earlyoom: EarlyoomSettings | None = None
    systemd_oomd: OomdSettings | None = None


class Host(Model):
    """A machine: RAM, swap, CPUs, and how it is run.

    ``kind: kubernetes`` (default) lays out cgroup v2 the way the kubelet does; ``bare`` runs each
    replica as a systemd service. Allocatable memory for pods is
    ``memory - kube_reserved - system_reserved - eviction_hard`` (Kubernetes "Reserve Compute
    Resources"; the eviction threshold default ``memory.available<100Mi`` is the kubelet's), and
    the kubelet evicts pods below that threshold (``eviction``, on by default).

    ``single_process_oom_kill`` is the kubelet option (default false on cgroup v2: every container
    cgroup gets ``memory.oom.group=1``; forced true on cgroup v1). ``memory_qos`` is the MemoryQoS
    feature gate (off by default): ``memory.high = limit * 0.9`` and ``memory.min = request``.
    """

    name: str = Field(min_length=1)
    memory: Annotated[Bytes, Field(gt=0)]
    cpus: Annotated[float, Field(gt=0)] = 4.0
    swap: Bytes = 0
    kind: Literal["kubernetes", "bare"] = "kubernetes"
    kube_reserved: Bytes = 0
    system_reserved: Bytes = 0
    eviction_hard: Bytes = 100 * 1024**2
    eviction: bool = True
    cgroup_version: Literal[1, 2] = 2
    single_process_oom_kill: bool = False
    memory_qos: bool = False
    sysctls: SysctlConfig = SysctlConfig()
    cgroups: list[ExtraCgroup] = []
    processes: list[ExtraProcess] = []
    oom_killers: UserspaceKillers = UserspaceKillers()

    @property
    def allocatable(self) -> int:
        """Memory the scheduler may hand to pods (requests must fit in it)."""
        if self.kind == "bare":
            return self.memory
        return self.memory - self.kube_reserved - self.system_reserved - self.eviction_hard


# --------------------------------------------------------------------------- services


class ResourceAmounts(Model):
    """Kubernetes-style resource amounts of one container."""

    memory: Bytes | None = None
    cpu: Cpu | None = None


class Resources(Model):
    """Container requests and limits; they decide the QoS class and ``memory.max``."""

    requests: ResourceAmounts = ResourceAmounts()
    limits: ResourceAmounts = ResourceAmounts()

    @property
    def memory_request(self) -> int:
        """Memory request; Kubernetes defaults a missing request to the limit."""
        if self.requests.memory is not None:
            return self.requests.memory
        return self.limits.memory or 0

    @property
    def qos_class(self) -> Literal["Guaranteed", "Burstable", "BestEffort"]:
        """QoS class (Kubernetes; requests default to limits when omitted)."""
        req_mem = self.memory_request
        req_cpu = self.requests.cpu if self.requests.cpu is not None else self.limits.cpu
        if req_mem == 0 and not req_cpu and self.limits.memory is None and self.limits.cpu is None:
            return "BestEffort"
        if (
            self.limits.memory is not None
            and self.limits.cpu is not None
            and req_mem == self.limits.memory
            and req_cpu == self.limits.cpu
        ):
            return "Guaranteed"
        return "Burstable"

    @model_validator(mode="after")
    def _request_within_limit(self) -> Resources:
        for what in ("memory", "cpu"):
            req, lim = getattr(self.requests, what), getattr(self.limits, what)
            if req is not None and lim is not None and req > lim:
                raise ValueError(f"requests.{what} must not exceed limits.{what}")
        return self


class MemoryModel(Model):
    """Memory of one instance: baseline + per in-flight request + per queued request.

    So overload grows memory and can end in an OOM kill. Zero (not modelled) by default.
    ``cache`` is page cache the process keeps (reclaimable), ``leak`` bytes per second that it
    never frees, ``exit_delay`` how long the process takes to exit once SIGKILLed (0: at once; a
    victim stuck longer than 2 s is reaped by the OOM reaper).
    """

    baseline: Bytes = 0
    per_request: Bytes = 0
    per_queued: Bytes = 0
    cache: Bytes = 0
    leak: Bytes = 0
    exit_delay: Duration = 0.0


class ContainerProcess(Model):
    """Another process in the container (a worker, a sidecar-like helper): its memory."""

    name: str = Field(min_length=1, max_length=15)
    memory: Bytes = 0


_BP_QUEUE = bp_pattern.QueueConfig()
_R4J_RL = bp_pattern.RateLimiterConfig()
_AIMD = ac_pattern.AIMDLimitConfig()
_VEGAS = ac_pattern.VegasLimitConfig()
_GRADIENT2 = ac_pattern.Gradient2LimitConfig()

QueueDiscipline = Literal["fifo", "reject_new", "drop_oldest", "lifo", "adaptive_lifo", "codel"]


class QueueConfig(Model):
    """The instance's request queue in front of its workers (:mod:`patterns.backpressure`).

    ``capacity`` is the number of waiting requests (not counting those in service); ``null``
    means unbounded. ``discipline`` orders and sheds them; an arrival or a queued request that
    is turned away ends with outcome ``shed``:

    * ``fifo`` (default) = ``reject_new``: first come first served; a full queue turns the
      arrival away (tail drop).
    * ``drop_oldest``: FIFO; a full queue drops its oldest request to make room (head drop).
    * ``lifo``: the newest first; a full queue turns the arrival away.
    * ``adaptive_lifo``: FIFO, LIFO while a queue stands (not empty for ``codel_interval``, or,
      with ``lifo_switch_threshold``, HHVM's depth rule).
    * ``codel``: RFC 8289 CoDel at dequeue (``codel_target``, ``codel_interval``), FIFO.

    ``priority: true`` sheds by request class: critical requests are served first and shed last
    (a full queue displaces a sheddable request to admit a critical one).
    """

    capacity: Annotated[int, Field(ge=0)] | None = None
    discipline: QueueDiscipline = "fifo"
    priority: bool = False
    codel_target: PositiveDuration = _BP_QUEUE.codel_target
    codel_interval: PositiveDuration = _BP_QUEUE.codel_interval
    lifo_switch_threshold: Annotated[int, Field(ge=0)] | None = None

    @property
    def plain(self) -> bool:
        """Whether this is the plain bounded FIFO (the server's fast path)."""
        return self.discipline in ("fifo", "reject_new") and not self.priority


class TokenBucketSpec(Model):
    """A token-bucket rate limit per instance (Envoy local rate limit).

    ``rate`` tokens per second, at most ``burst`` (default: one second's worth); a request
    without a token is refused at once (HTTP 429: outcome ``rate_limited``).
    """

    kind: Literal["token_bucket"]
    rate: Annotated[Rate, Field(gt=0)]
    burst: Annotated[float, Field(gt=0)] | None = None


class Resilience4jRateLimiterSpec(Model):
    """resilience4j ``RateLimiter``.

    ``limit_for_period`` permissions per
    ``limit_refresh_period`` cycle; a caller waits up to ``timeout_duration`` for a reserved
    permission and is refused (``rate_limited``) after waiting the whole timeout when it cannot
    get one. Defaults are resilience4j's (50 per 500 ns: effectively unlimited; 5 s).
    """

    kind: Literal["resilience4j"] = "resilience4j"
    limit_for_period: Annotated[int, Field(ge=1)] = _R4J_RL.limit_for_period
    limit_refresh_period: Annotated[Duration, Field(ge=1e-9)] = _R4J_RL.limit_refresh_period
    timeout_duration: Duration = _R4J_RL.timeout_duration


RateLimitSpec = Annotated[
    TokenBucketSpec | Resilience4jRateLimiterSpec, Field(discriminator="kind")
]


class AimdSpec(Model):
    """Netflix ``AIMDLimit`` (defaults are the library's)."""

    algorithm: Literal["aimd"]
    initial_limit: Annotated[int, Field(ge=1)] = _AIMD.initial_limit
    min_limit: Annotated[int, Field(ge=1)] = _AIMD.min_limit
    max_limit: Annotated[int, Field(ge=1)] = _AIMD.max_limit
    backoff_ratio: Annotated[float, Field(ge=0.5, lt=1.0)] = _AIMD.backoff_ratio
    timeout: PositiveDuration = _AIMD.timeout


class VegasSpec(Model):
    """Netflix ``VegasLimit`` (defaults are the library's)."""

    algorithm: Literal["vegas"]
    initial_limit: Annotated[int, Field(ge=1)] = _VEGAS.initial_limit
    max_concurrency: Annotated[int, Field(ge=1)] = _VEGAS.max_concurrency
    smoothing: Annotated[float, Field(gt=0, le=1)] = _VEGAS.smoothing
    probe_multiplier: Annotated[int, Field(ge=1)] = _VEGAS.probe_multiplier


class Gradient2Spec(Model):
    """Netflix ``Gradient2Limit`` (defaults are the library's)."""

    algorithm: Literal["gradient2"]
    initial_limit: Annotated[int, Field(ge=1)] = _GRADIENT2.initial_limit
    min_limit: Annotated[int, Field(ge=1)] = _GRADIENT2.min_limit
    max_concurrency: Annotated[int, Field(ge=1)] = _GRADIENT2.max_concurrency
    smoothing: Annotated[float, Field(gt=0, le=1)] = _GRADIENT2.smoothing
    queue_size: Annotated[int, Field(ge=0)] = _GRADIENT2.queue_size
    long_window: Annotated[int, Field(ge=1)] = _GRADIENT2.long_window
    rtt_tolerance: Annotated[float, Field(ge=1.0)] = _GRADIENT2.rtt_tolerance


ConcurrencyLimitSpec = Annotated[
    AimdSpec | VegasSpec | Gradient2Spec, Field(discriminator="algorithm")
]


class WorkerPartition(Model):
    """Workers of each instance kept for some request classes: a server-side bulkhead.

    The requests of ``classes`` get these ``workers`` and a queue of their own (the
    admission ``queue`` settings, per partition); every other class shares the rest of the
    service's workers. So a flood of one class cannot take the threads of another (Nygard,
    *Release It!*, "Bulkheads"; Tomcat's separate connectors and executors do this in practice).
    """

    classes: list[str] = Field(min_length=1)
    workers: Annotated[int, Field(ge=1)]


class Admission(Model):
    """The server-side admission chain of every instance (each replica has its own state).

    Rate limit -> adaptive concurrency limit -> queue -> worker.

    ``rate_limit``: refused requests end ``rate_limited``. ``concurrency_limit``: a request
    arriving while the instance's in-flight count is at the adaptive limit ends ``shed``; the
    limit learns from each admitted request (ok/degraded: a sample; timeout, shed,
    rate_limited, deadline_exceeded, dependency: a drop; error/reset: ignored).
    """

    queue: QueueConfig = QueueConfig()
    rate_limit: RateLimitSpec | None = None
    concurrency_limit: ConcurrencyLimitSpec | None = None
    partitions: list[WorkerPartition] = []

    @property
    def plain(self) -> bool:
        """No admission feature beyond a plain bounded FIFO (the server's fast path)."""
        return (
            self.queue.plain
            and self.rate_limit is None
            and self.concurrency_limit is None
            and not self.partitions
        )


# --------------------------------------------------------------------------- client-side policies

_R4J_CB = cb_pattern.CircuitBreakerConfig()
_R4J_BULKHEAD = bulkhead_pattern.BulkheadConfig()
_R4J_THREAD_POOL = bulkhead_pattern.ThreadPoolBulkheadConfig()
_ENVOY_OUTLIER = cb_pattern.OutlierDetectionConfig()
_EXPONENTIAL = retry_pattern.ExponentialBackoff()
_GRPC_BACKOFF = retry_pattern.GrpcBackoff()
_ENVOY_BACKOFF = retry_pattern.EnvoyBackoff()
_ENVOY_BUDGET = retry_pattern.EnvoyRetryBudgetConfig()
_GRPC_THROTTLE = retry_pattern.GrpcRetryThrottleConfig()

RetryableOutcome = Literal[
    "timeout",
    "shed",
    "rate_limited",
    "bulkhead_full",
    "unavailable",
    "reset",
    "deadline_exceeded",
    "error",
    "dependency",
]
"""Failed outcomes a retry policy may retry; ``circuit_open`` is never retried (a rejection by
the caller's own breaker: retrying it only burns attempts, and resilience4j's usual order puts
the retry outside the breaker for that reason)."""

DEFAULT_RETRY_ON: tuple[RetryableOutcome, ...] = (
    "timeout",
    "unavailable",
    "reset",
    "error",
    "shed",
    "dependency",
)
"""What a server or the network says went wrong and a new attempt may fix: Envoy's ``5xx`` +
``reset`` + ``connect-failure`` + ``refused-stream`` (a 503 for ``shed``/``unavailable``, a 500
for ``error``/``dependency``), plus ``timeout`` (resilience4j retries every exception by default,
``TimeoutException`` included). Not by default: ``rate_limited`` (429: Envoy's ``retriable-4xx``
is 409 only and gRPC does not retry ``RESOURCE_EXHAUSTED`` unless told), ``bulkhead_full`` (a
local rejection, answered at once) and ``deadline_exceeded`` (the caller's whole budget is
spent)."""


class NoBackoffSpec(Model):
    """Retry at once."""

    kind: Literal["none"]


class ConstantBackoffSpec(Model):
    """The same wait before every retry (resilience4j ``waitDuration``, default 500 ms)."""

    kind: Literal["constant"]
    wait: Duration = retry_pattern.RESILIENCE4J_DEFAULT_WAIT


class ExponentialBackoffSpec(Model):
    """Brooker's exponential back-off (AWS): ``min(cap, base * 2**n)`` with a jitter.

    Defaults are botocore standard mode's (base 1 s, cap 20 s, full jitter).
    """

    kind: Literal["exponential"]
    base: PositiveDuration = _EXPONENTIAL.base
    cap: PositiveDuration = _EXPONENTIAL.cap
    jitter: Literal["none", "full", "equal", "decorrelated"] = _EXPONENTIAL.jitter

    @model_validator(mode="after")
    def _ordered(self) -> ExponentialBackoffSpec:
        if self.cap < self.base:
            raise ValueError("cap must not be less than base")
        return self


class GrpcBackoffSpec(Model):
    """gRPC retry back-off (gRFC A6): ``min(initial * multiplier**(k-1), max) * U(0.8, 1.2)``.

    gRPC has no defaults; these are gRFC A6's example policy (100 ms, x2, 1 s).
    """

    kind: Literal["grpc"]
    initial: PositiveDuration = _GRPC_BACKOFF.initial_backoff
    multiplier: Annotated[float, Field(gt=0)] = _GRPC_BACKOFF.backoff_multiplier
    max: PositiveDuration = _GRPC_BACKOFF.max_backoff


class EnvoyBackoffSpec(Model):
    """Envoy router back-off: a uniform whole number of ms below a doubling bound.

    ``base`` 25 ms (router default); ``max`` ``null`` = 10 x base (Envoy's default).
    """

    kind: Literal["envoy"]
    base: Annotated[Duration, Field(ge=0.001)] = _ENVOY_BACKOFF.base_interval
    max: PositiveDuration | None = _ENVOY_BACKOFF.max_interval

    @model_validator(mode="after")
    def _ordered(self) -> EnvoyBackoffSpec:
        if self.max is not None and self.max < self.base:
            raise ValueError("max must not be less than base")
        return self


BackoffSpec = Annotated[
    NoBackoffSpec
    | ConstantBackoffSpec
    | ExponentialBackoffSpec
    | GrpcBackoffSpec
    | EnvoyBackoffSpec,
    Field(discriminator="kind"),
]


class EnvoyBudgetSpec(Model):
    """Envoy retry budget: concurrent retries <= max(budget_percent of active, minimum)."""

    kind: Literal["envoy"]
    budget_percent: Annotated[float, Field(ge=0, le=100)] = _ENVOY_BUDGET.budget_percent
    min_retry_concurrency: Annotated[int, Field(ge=0)] = _ENVOY_BUDGET.min_retry_concurrency


class GrpcBudgetSpec(Model):
    """gRPC ``retryThrottling`` token bucket (the reference's example: 10 tokens, ratio 0.1)."""

    kind: Literal["grpc"]
    max_tokens: Annotated[float, Field(gt=0, le=1000)] = _GRPC_THROTTLE.max_tokens
    token_ratio: Annotated[float, Field(gt=0)] = _GRPC_THROTTLE.token_ratio


class AwsBudgetSpec(Model):
    """AWS SDK standard-mode retry quota (botocore: 500 tokens, 5 per retry, 10 per timeout)."""

    kind: Literal["aws"]


BudgetSpec = Annotated[
    EnvoyBudgetSpec | GrpcBudgetSpec | AwsBudgetSpec, Field(discriminator="kind")
]


class RetrySpec(Model):
    """Client-side retries of one call (per calling instance; see :mod:`patterns.retry`).

    Attributes:
        max_attempts: attempts including the first, 3 (resilience4j ``DEFAULT_MAX_ATTEMPTS``).
        retry_on: outcome labels that are retried (default :data:`DEFAULT_RETRY_ON`); never
            ``circuit_open``.
        backoff: the wait before each retry; default resilience4j's fixed 500 ms.
        per_try_timeout: Envoy's ``per_try_timeout``: the retry layer stops waiting for an
            attempt after this long (the attempt goes on); ``null``: none.
        budget: a retry budget shared by the calling instance's calls on this edge; ``null``:
            attempts per call only (resilience4j).
    """

    max_attempts: Annotated[int, Field(ge=1)] = retry_pattern.RESILIENCE4J_DEFAULT_MAX_ATTEMPTS
    retry_on: list[RetryableOutcome] = list(DEFAULT_RETRY_ON)
    backoff: BackoffSpec = ConstantBackoffSpec(kind="constant")
    per_try_timeout: PositiveDuration | None = None
    budget: BudgetSpec | None = None


WindowType = Literal["COUNT_BASED", "TIME_BASED"]


class CircuitBreakerSpec(Model):
    """resilience4j ``CircuitBreakerConfig`` (names as in resilience4j, snake_case).

    Defaults are resilience4j's (``CircuitBreakerConfig.DEFAULT_*``, see
    :class:`patterns.circuit_breaker.CircuitBreakerConfig`). ``enabled: false`` keeps the block
    but takes the breaker out of the chain.
    """

    enabled: bool = True
    sliding_window_type: WindowType = _R4J_CB.sliding_window_type.value
    sliding_window_size: Annotated[int, Field(ge=1)] = _R4J_CB.sliding_window_size
    minimum_number_of_calls: Annotated[int, Field(ge=1)] = _R4J_CB.minimum_number_of_calls
    failure_rate_threshold: Annotated[float, Field(gt=0, le=100)] = _R4J_CB.failure_rate_threshold
    slow_call_rate_threshold: Annotated[float, Field(gt=0, le=100)] = (
        _R4J_CB.slow_call_rate_threshold
    )
    slow_call_duration_threshold: PositiveDuration = _R4J_CB.slow_call_duration_threshold
    wait_duration_in_open_state: Annotated[Duration, Field(ge=0.001)] = (
        _R4J_CB.wait_duration_in_open_state
    )
    permitted_number_of_calls_in_half_open_state: Annotated[int, Field(ge=1)] = (
        _R4J_CB.permitted_number_of_calls_in_half_open_state
    )
    automatic_transition_from_open_to_half_open_enabled: bool = (
        _R4J_CB.automatic_transition_from_open_to_half_open_enabled
    )


class BulkheadSpec(Model):
    """resilience4j semaphore ``BulkheadConfig``: 25 concurrent calls, no wait (its defaults)."""

    kind: Literal["semaphore"] = "semaphore"
    max_concurrent_calls: Annotated[int, Field(ge=0)] = _R4J_BULKHEAD.max_concurrent_calls
    max_wait_duration: Duration = _R4J_BULKHEAD.max_wait_duration


class ThreadPoolBulkheadSpec(Model):
    """resilience4j ``ThreadPoolBulkheadConfig`` (``ThreadPoolExecutor`` + bounded queue).

    Defaults are resilience4j's for the calling JVM's ``cpus`` (1 unless given): core threads
    ``cpus - 1`` (at least 1), max threads ``cpus``, queue 100, keep-alive 20 ms. A call that
    the caller's timeout abandons keeps its thread until the callee answers, as a pool thread
    does in production.
    """

    kind: Literal["thread_pool"]
    cpus: Annotated[int, Field(ge=1)] = _R4J_THREAD_POOL.cpus
    core_thread_pool_size: Annotated[int, Field(ge=1)] | None = None
    max_thread_pool_size: Annotated[int, Field(ge=1)] | None = None
    queue_capacity: Annotated[int, Field(ge=1)] = _R4J_THREAD_POOL.queue_capacity
    keep_alive_duration: Duration = _R4J_THREAD_POOL.keep_alive_duration

    @model_validator(mode="after")
    def _sizes(self) -> ThreadPoolBulkheadSpec:
        self.config()  # raises ValueError with resilience4j's message
        return self

    def config(self) -> bulkhead_pattern.ThreadPoolBulkheadConfig:
        """The pattern's configuration of this block (sizes resolved as resilience4j does)."""
        return bulkhead_pattern.ThreadPoolBulkheadConfig(
            cpus=self.cpus,
            core_thread_pool_size=self.core_thread_pool_size,
            max_thread_pool_size=self.max_thread_pool_size,
            queue_capacity=self.queue_capacity,
            keep_alive_duration=self.keep_alive_duration,
        )


def _bulkhead_kind(value: Any) -> str:
    kind = value.get("kind", "semaphore") if isinstance(value, dict) else value.kind
    return str(kind)


AnyBulkheadSpec = Annotated[
    Annotated[BulkheadSpec, Tag("semaphore")]
    | Annotated[ThreadPoolBulkheadSpec, Tag("thread_pool")],
    Discriminator(_bulkhead_kind),
]
"""A semaphore bulkhead (``kind: semaphore``, the default) or a thread-pool one."""


class FallbackSpec(Model):
    """A failed call is answered by a fallback: the caller sees ``degraded`` instead."""

    enabled: bool = True


PolicyLayer = Literal["fallback", "retry", "circuit_breaker", "rate_limiter", "timeout", "bulkhead"]

DEFAULT_POLICY_ORDER: tuple[PolicyLayer, ...] = (
    "fallback",
    "retry",
    "circuit_breaker",
    "rate_limiter",
    "timeout",
    "bulkhead",
)
"""resilience4j's aspect order, outermost first (``Retry ( CircuitBreaker ( RateLimiter (
TimeLimiter ( Bulkhead ( function ) ) ) ) )``, fallback around all); the transport is innermost."""


class Call(Model):
    """A synchronous call to another service, with its client-side policies.

    Attributes:
        to: the called service.
        probability: chance that a request makes this call (default 1).
        timeout: the caller stops waiting for an attempt after this long (outcome ``timeout``,
            resilience4j's TimeLimiter: inside retry and breaker); the callee keeps working on it
            (no deadline propagation). ``null``: wait forever.
        optional: a failure of an optional call does not fail the request; it is served
            ``degraded`` instead.
        retry, circuit_breaker, rate_limiter, bulkhead, fallback: client-side policies, kept
            per calling instance (lost when it restarts); ``null``: not used. A refusal by the
            rate limiter is ``rate_limited``.
        order: the chain, outermost first (default :data:`DEFAULT_POLICY_ORDER`); every layer
            once. ``rate_limiter`` may be left out of it: it then sits just inside
            ``circuit_breaker`` (resilience4j's place). Layers that are not configured are
            skipped.
    """

    to: str = Field(min_length=1)
    probability: Fraction = 1.0
    timeout: PositiveDuration | None = None
    optional: bool = False
    retry: RetrySpec | None = None
    circuit_breaker: CircuitBreakerSpec | None = None
    rate_limiter: Resilience4jRateLimiterSpec | None = None
    bulkhead: AnyBulkheadSpec | None = None
    fallback: FallbackSpec | None = None
    order: list[PolicyLayer] | None = None

    @field_validator("order")
    @classmethod
    def _permutation(cls, value: list[PolicyLayer] | None) -> list[PolicyLayer] | None:
        if value is None:
            return value
        if "rate_limiter" not in value and "circuit_breaker" in value:
            value = list(value)
            value.insert(value.index("circuit_breaker") + 1, "rate_limiter")
        if sorted(value) != sorted(DEFAULT_POLICY_ORDER):
            raise ValueError(
                f"order must name each of {', '.join(DEFAULT_POLICY_ORDER)} exactly once"
                " (rate_limiter may be left out)"
            )
        return value


class OutlierDetectionSpec(Model):
    """Envoy ``OutlierDetection`` on the service's cluster: passive per-instance ejection.

    Defaults are Envoy's (``outlier_detection_impl.h``): 5 consecutive 5xx eject an instance
    for ``base_ejection_time`` (30 s) x its ejection count, at most ``max_ejection_time``
    (300 s), while fewer than ``max_ejection_percent`` (10 %) of the instances are ejected; a
    sweep every ``interval`` (10 s) brings instances back. The success-rate detector runs with
    Envoy's defaults too (it needs 5 instances with 100 requests per interval). A 5xx is a hop
    that ends ``error``, ``reset``, ``shed``, ``unavailable``, ``deadline_exceeded`` or
    ``dependency``; ``rate_limited`` is a 429 and does not count.
    """

    consecutive_5xx: Annotated[int, Field(ge=1)] = _ENVOY_OUTLIER.consecutive_5xx
    interval: PositiveDuration = _ENVOY_OUTLIER.interval
    base_ejection_time: PositiveDuration = _ENVOY_OUTLIER.base_ejection_time
    max_ejection_time: PositiveDuration = _ENVOY_OUTLIER.max_ejection_time
    max_ejection_percent: Annotated[float, Field(ge=0, le=100)] = (
        _ENVOY_OUTLIER.max_ejection_percent
    )
    enforcing_consecutive_5xx: Annotated[float, Field(ge=0, le=100)] = (
        _ENVOY_OUTLIER.enforcing_consecutive_5xx
    )
    enforcing_success_rate: Annotated[float, Field(ge=0, le=100)] = (
        _ENVOY_OUTLIER.enforcing_success_rate
    )
    success_rate_minimum_hosts: Annotated[int, Field(ge=1)] = (
        _ENVOY_OUTLIER.success_rate_minimum_hosts
    )
    success_rate_request_volume: Annotated[int, Field(ge=1)] = (
        _ENVOY_OUTLIER.success_rate_request_volume
    )
    success_rate_stdev_factor: Annotated[int, Field(ge=0)] = (
        _ENVOY_OUTLIER.success_rate_stdev_factor
    )

    @model_validator(mode="after")
    def _ordered(self) -> OutlierDetectionSpec:
        if self.max_ejection_time < self.base_ejection_time:
            raise ValueError("max_ejection_time cannot be smaller than base_ejection_time")
        return self


class BrownoutSpec(Model):
    """Brownout: an instance stops making its optional calls while it is under pressure.

    Every ``period`` the instance looks at its last period: it browns out when the p99 of its
    hops exceeded ``latency_p99``, or its memory (the cgroup's usage over ``memory.max``, or over
    the host's RAM without a limit) exceeded ``memory``; it comes back once both are below
    ``recover`` times their thresholds (hysteresis; 0.8 is this model's choice, no standard
    exists). Optional calls skipped in a brownout make
    the request ``degraded``. At least one threshold is required. The shape follows Klein et
    al., "Brownout: building more robust cloud applications" (ICSE 2014), with a threshold
    rule in place of their controller.
    """

    latency_p99: PositiveDuration | None = None
    memory: Annotated[Fraction, Field(gt=0)] | None = None
    recover: Annotated[Fraction, Field(gt=0)] = degradation_pattern.DEFAULT_RECOVER
    period: PositiveDuration = degradation_pattern.DEFAULT_PERIOD

    @model_validator(mode="after")
    def _threshold(self) -> BrownoutSpec:
        degradation_pattern.BrownoutConfig(**self.model_dump())  # raises its ValueError
        return self


class StartupConfig(Model):
    """How a container starts: the time until it serves, then an optional slower warm-up.

    Attributes:
        delay: seconds from the container's start to the application serving (listening on
            its port); 0 by default: it serves at once. No reference system fixes it: a Go
            binary starts in well under a second, a Spring Boot service in 10-60 s.
        warmup: seconds after ``delay`` during which serving is slower (JIT compilation, cold
            caches, connection pools still filling); 0 (default): none.
        warmup_factor: service-time multiplier when the warm-up begins, falling linearly to 1
            at its end; 1 (default): none. Give both ``warmup`` and ``warmup_factor`` or
            neither (a JVM's first requests are commonly several times slower; there is no
            standard value).
    """

    delay: Duration = 0.0
    warmup: Duration = 0.0
    warmup_factor: Annotated[float, Field(ge=1)] = 1.0

    @model_validator(mode="after")
    def _both_or_neither(self) -> StartupConfig:
        if (self.warmup > 0) != (self.warmup_factor > 1):
            raise ValueError("give warmup and a warmup_factor above 1 together, or neither")
        return self


class RestartPolicy(Model):
    """Kubernetes ``restartPolicy`` with the kubelet's CrashLoopBackOff between restarts.

    :mod:`patterns.supervisor` has the semantics and the sources.

    Attributes:
        policy: ``Always`` (the pod spec's default), ``OnFailure`` (non-zero exits only) or
            ``Never``.
        backoff: ``default``: 10 s doubling to 300 s (kubelet ``backOffPeriod``,
            ``MaxContainerBackOff``); ``reduce_default_decay``: 1 s doubling to 60 s (feature
            gate ``ReduceDefaultCrashLoopBackOffDecay``, KEP-4603).
        max_container_restart_period: kubelet ``crashLoopBackOff.maxContainerRestartPeriod``
            (gate ``KubeletCrashLoopBackOffMax``), 1 s..300 s: the cap, and the initial delay
            too when below 10 s; ``null`` (default): not set. Not with ``reduce_default_decay``.
        resync_jitter: a container in back-off restarts at the kubelet's next pod sync, every
            uniform 10-15 s (``pod_workers.go``), not the instant its back-off ends; off by
            default (exact restarts).
    """

    policy: Literal["Always", "OnFailure", "Never"] = "Always"
    backoff: Literal["default", "reduce_default_decay"] = "default"
    max_container_restart_period: Duration | None = None
    resync_jitter: bool = False

    @model_validator(mode="after")
    def _one_gate(self) -> RestartPolicy:
        period = self.max_container_restart_period
        if period is None:
            return self
        low = supervisor_pattern.MIN_MAX_CONTAINER_RESTART_PERIOD
        high = supervisor_pattern.MAX_MAX_CONTAINER_RESTART_PERIOD
        if not low <= period <= high:
            raise ValueError(
                f"max_container_restart_period must be between {low:g}s and {high:g}s, "
                f"got {units.format_duration(period)}"
            )
        if self.backoff == "reduce_default_decay":
            raise ValueError(
                "max_container_restart_period and backoff: reduce_default_decay are two feature "
                "gates; give one"
            )
        return self

    def backoff_config(self) -> supervisor_pattern.BackoffConfig:
        """The kubelet's back-off for this policy."""
        config = supervisor_pattern.BackoffConfig
        jitter = self.resync_jitter
        if self.max_container_restart_period is not None:
            return config.max_container_restart_period(
                self.max_container_restart_period, resync_jitter=jitter
            )
        if self.backoff == "reduce_default_decay":
            return config.reduce_default_decay(resync_jitter=jitter)
        return config.default(resync_jitter=jitter)


class SloConfig(Model):
    """Service level objective, evaluated over a rolling window.

    Defaults: availability 99.9%, p99 latency 1 s, window 30 s (DESIGN §2.7).
    """

    availability: Fraction = 0.999
    latency_p99: PositiveDuration = 1.0
    window: PositiveDuration = 30.0


DEFAULT_PROBE_PORT = 8080
"""The container port a probe targets when none is given (Kubernetes requires one; 8080 here)."""


class HttpGetSpec(Model):
    """``httpGet``: success is a status in 200..399; ``path`` defaults to ``/`` (Kubernetes)."""

    path: str = "/"
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PROBE_PORT


class TcpSocketSpec(Model):
    """``tcpSocket``: success is an accepted connection."""

    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PROBE_PORT


class ProbeSpec(Model):
    """One container probe (``v1.Probe``), Kubernetes' field names in snake_case.

    Defaults are the API server's (``SetDefaults_Probe``; :mod:`patterns.health_probe`): period
    10 s, timeout 1 s, success threshold 1, failure threshold 3, no initial delay, whole
    seconds. The handler is ``http_get`` (the default, on ``/``) or ``tcp_socket``.

    How the container answers (a model choice, not a Kubernetes field):

    * ``http_get`` with ``shares_workers: true`` (default: the health endpoint on the
      application's own port, as Spring Boot's actuator and most HTTP servers have it): the
      probe is a request the instance serves through its admission chain and worker pool, so
      it waits behind the queue and times out under overload; a full queue answers 503.
    * ``http_get`` with ``shares_workers: false`` (a separate management port): answered at
      once while the process is up and not hung.
    * ``tcp_socket``: the kernel accepts the connection while the application listens, even
      when it is hung or overloaded.

    Before the application listens (start-up) and after it stops, every probe is refused.
    """

    http_get: HttpGetSpec | None = None
    tcp_socket: TcpSocketSpec | None = None
    initial_delay_seconds: Annotated[int, Field(ge=0)] = probe_pattern.DEFAULT_INITIAL_DELAY_SECONDS
    period_seconds: Annotated[int, Field(ge=1)] = probe_pattern.DEFAULT_PERIOD_SECONDS
    timeout_seconds: Annotated[int, Field(ge=1)] = probe_pattern.DEFAULT_TIMEOUT_SECONDS
    success_threshold: Annotated[int, Field(ge=1)] = probe_pattern.DEFAULT_SUCCESS_THRESHOLD
    failure_threshold: Annotated[int, Field(ge=1)] = probe_pattern.DEFAULT_FAILURE_THRESHOLD
    termination_grace_period_seconds: Annotated[int, Field(ge=1)] | None = None
    shares_workers: bool = True

    @model_validator(mode="after")
    def _one_handler(self) -> ProbeSpec:
        if self.http_get is not None and self.tcp_socket is not None:
            raise ValueError("give one handler: http_get or tcp_socket")
        if self.tcp_socket is not None and "shares_workers" in self.model_fields_set:
            raise ValueError(
                "shares_workers is for http_get: a tcp_socket probe is answered by the kernel"
            )
        return self

    @property
    def through_workers(self) -> bool:
        """Whether the probe is a request served by the instance's workers."""
        return self.tcp_socket is None and self.shares_workers

    def config(self, kind: str) -> probe_pattern.ProbeConfig:
        """The kubelet's probe of ``kind``; raises ValueError where the API server would."""
        handler: probe_pattern.ProbeHandler
        if self.tcp_socket is not None:
            handler = probe_pattern.TCPSocketAction(port=self.tcp_socket.port)
        else:
            http = self.http_get or HttpGetSpec()
            handler = probe_pattern.HTTPGetAction(port=http.port, path=http.path)
        return probe_pattern.ProbeConfig(
            kind=probe_pattern.ProbeKind(kind),
            handler=handler,
            initial_delay_seconds=self.initial_delay_seconds,
            period_seconds=self.period_seconds,
            timeout_seconds=self.timeout_seconds,
            success_threshold=self.success_threshold,
            failure_threshold=self.failure_threshold,
            termination_grace_period_seconds=self.termination_grace_period_seconds,
        )


class Probes(Model):
    """A service's startup, liveness and readiness probes (each optional; none by default).

    Readiness decides load-balancer membership; a liveness or startup failure kills the
    container (SIGTERM, its grace period, SIGKILL) and the restart policy restarts it through
    CrashLoopBackOff. Without a readiness probe an instance is ready once its start-up delay
    is over (and its startup probe, if any, has passed).
    """

    startup: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    readiness: ProbeSpec | None = None

    @field_validator("startup", "liveness", "readiness")
    @classmethod
    def _kubernetes_rules(cls, value: ProbeSpec | None, info: ValidationInfo) -> ProbeSpec | None:
        if value is not None:
            value.config(str(info.field_name))  # the API server's checks per probe kind
        return value

    def configs(self) -> dict[str, probe_pattern.ProbeConfig]:
        """The configured probes by kind."""
        return {
            kind: spec.config(kind)
            for kind, spec in (
                ("startup", self.startup),
                ("liveness", self.liveness),
                ("readiness", self.readiness),
            )
            if spec is not None
        }

    @property
    def through_workers(self) -> bool:
        """Whether any probe is served by the instance's workers."""
        return any(
            spec is not None and spec.through_workers
            for spec in (self.startup, self.liveness, self.readiness)
        )


IntOrPercent = Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=r"^[0-9]+%$")]
"""Kubernetes ``IntOrString`` as a PodDisruptionBudget takes it: a count, or ``"50%"``."""


class PodDisruptionBudget(Model):
    """A PodDisruptionBudget over the service's replicas (``policy/v1``): give one field.

    Voluntary evictions (a ``drain``) are allowed only while the budget holds after them. The
    disruption controller's arithmetic: desired healthy = ``min_available``, or replicas -
    ``max_unavailable``, a percentage of the replicas rounded up
    (``GetScaledValueFromIntOrPercent(..., roundUp=true)``); disruptions allowed = ready
    replicas - desired healthy. A replica that is not ready may be evicted while the budget
    is met (``unhealthyPodEvictionPolicy: IfHealthyBudget``, the default).
    """

    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None

    @model_validator(mode="after")
    def _one_field(self) -> PodDisruptionBudget:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("give exactly one of min_available and max_unavailable")
        return self

    def desired_healthy(self, expected: int) -> int:
        """How many replicas must stay ready, out of ``expected``."""
        if self.min_available is not None:
            return _scaled(self.min_available, expected)
        assert self.max_unavailable is not None
        return expected - _scaled(self.max_unavailable, expected)


def _scaled(value: int | str, total: int) -> int:
    """``intstr.GetScaledValueFromIntOrPercent`` with ``roundUp=true``."""
    if isinstance(value, int):
        return value
    return -(-int(value[:-1]) * total // 100)


TERMINATION_GRACE_PERIOD = 30
"""Seconds from SIGTERM to SIGKILL when a pod stops (pod spec ``terminationGracePeriodSeconds``,
default 30: ``pkg/apis/core/v1/defaults.go``)."""


class Service(Model):
    """A service: replicas of one container, its worker pool, admission and calls.

    ``workers`` defaults to 200, Apache Tomcat's ``maxThreads`` default.
    ``load_balancer`` defaults to ``round_robin``, Envoy's default ``lb_policy``;
    ``outlier_detection`` (Envoy's, off by default) takes failing instances out of it.
    ``brownout`` (off by default) drops the optional calls of an instance under pressure.
    ``termination_grace_period_seconds``: a container stopped on purpose (a failed liveness or
    startup probe, a drain, an OTP shutdown) gets SIGTERM, leaves the load balancer, finishes
    the requests inside it and exits 143; whatever is still inside after this many seconds is
    cut by SIGKILL (exit 137). Default 30 s (:data:`TERMINATION_GRACE_PERIOD`).
    """

    replicas: Annotated[int, Field(ge=1)] = 1
    placement: Literal["spread"] | list[str] = "spread"
    resources: Resources = Resources()
    workers: Annotated[int, Field(ge=1)] = 200
    service_time: Distribution
    memory: MemoryModel = MemoryModel()
    cgroup: CgroupSettings = CgroupSettings()
    processes: list[ContainerProcess] = []
    priority: int = 0
    admission: Admission = Admission()
    load_balancer: Literal["round_robin", "least_outstanding", "random"] = "round_robin"
    outlier_detection: OutlierDetectionSpec | None = None
    brownout: BrownoutSpec | None = None
    call_mode: Literal["sequential", "parallel"] = "sequential"
    calls: list[Call] = []
    startup: StartupConfig = StartupConfig()
    restart: RestartPolicy = RestartPolicy()
    termination_grace_period_seconds: Annotated[int, Field(ge=0)] = TERMINATION_GRACE_PERIOD
    probes: Probes = Probes()
    pdb: PodDisruptionBudget | None = None
    slo: SloConfig | None = None

    @field_validator("placement")
    @classmethod
    def _non_empty_placement(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("placement lists no host")
        return value


# --------------------------------------------------------------------------- OTP supervisors


class SupervisorChild(Model):
    """A child of an OTP supervisor: a service or another supervisor, by name.

    A service stands for its replicas, each a worker child (ids ``cart-0``, ``cart-1``, in
    replica order). Defaults are supervisor.erl's (``default_child_spec``,
    ``do_check_childspec``).

    Attributes:
        child: the service's or the supervisor's name.
        restart: ``permanent`` (default): always restarted; ``transient``: restarted after an
            abnormal exit only (exit code 0 is ``normal``, a stop asked by the supervisor is
            ``shutdown``); ``temporary``: never restarted.
        shutdown: how the supervisor stops it: ``brutal_kill`` (SIGKILL at once), a duration
            (SIGTERM, then SIGKILL after it; whole milliseconds), or ``infinity`` (wait as long
            as it takes). Default 5 s for a worker (5000 ms), ``infinity`` for a supervisor.
    """

    child: str = Field(min_length=1)
    restart: Literal["permanent", "transient", "temporary"] = "permanent"
    shutdown: Literal["brutal_kill", "infinity"] | Duration | None = None

    def otp_shutdown(self) -> otp_pattern.Shutdown | None:
        """The shutdown spec as supervisor.erl takes it (a timeout in ms); None: the default."""
        if self.shutdown is None or isinstance(self.shutdown, str):
            return self.shutdown
        return round(self.shutdown * 1000)


class SupervisorSpec(Model):
    """An Erlang/OTP supervisor (``supervisor.erl``): its flags and children in start order.

    Defaults are supervisor.erl's ``default_flags``: ``one_for_one``, at most 1 restart in 5 s.
    Restarts are immediate (no back-off); past the intensity the supervisor stops its children
    and exits, and its parent decides, up to the root: when the root gives up, the application
    stops and its services stay down. :mod:`patterns.otp_supervisor` has the semantics.

    Attributes:
        name: the supervisor's registered name (also what a parent lists as its child).
        strategy: ``one_for_one``, ``one_for_all`` or ``rest_for_one``.
        intensity: restarts allowed within ``period`` (an integer >= 0).
        period: whole seconds >= 1.
        children: in start order; a name alone is ``{child: name}``.
    """

    name: str = Field(min_length=1)
    strategy: Literal["one_for_one", "one_for_all", "rest_for_one"] = "one_for_one"
    intensity: Annotated[int, Field(ge=0)] = otp_pattern.DEFAULT_INTENSITY
    period: Duration = float(otp_pattern.DEFAULT_PERIOD)
    children: list[str | SupervisorChild] = Field(min_length=1)

    @field_validator("period")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        if value < 1 or not float(value).is_integer():
            raise ValueError(f"period must be whole seconds >= 1, got {value:g}s")
        return value

    def child_specs(self) -> list[SupervisorChild]:
        """The children, a bare name read as ``{child: name}``."""
        return [SupervisorChild(child=c) if isinstance(c, str) else c for c in self.children]


# --------------------------------------------------------------------------- workload


class RatePoint(Model):
    """A rate from a point in time on."""

    at: Duration
    rate: Rate


class ConstantRate(Model):
    """The same arrival rate for the whole run."""

    profile: Literal["constant"]
    rate: Rate


class StepRate(Model):
    """``base``, then each step's rate from its ``at`` on."""

    profile: Literal["step"]
    base: Rate
    steps: list[RatePoint] = Field(min_length=1)


class RampRate(Model):
    """``from`` until ``start``, linear to ``to`` at ``end``, then ``to``."""

    profile: Literal["ramp"]
    from_: Rate = Field(alias="from")
    to: Rate
    start: Duration = 0.0
    end: Duration

    @model_validator(mode="after")
    def _ordered(self) -> RampRate:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SpikeRate(Model):
    """``base``, and ``peak`` during [at, at + duration)."""

    profile: Literal["spike"]
    base: Rate
    peak: Rate
    at: Duration
    duration: PositiveDuration


class SineRate(Model):
    """Diurnal-like: ``base + amplitude * sin(2 pi t / period)``, never below zero."""

    profile: Literal["sine"]
    base: Rate
    amplitude: Rate
    period: PositiveDuration


class PiecewiseRate(Model):
    """Rates at points in time, joined linearly (or held, ``interpolation: step``)."""

    profile: Literal["piecewise"]
    points: list[RatePoint] = Field(min_length=1)
    interpolation: Literal["linear", "step"] = "linear"


RateProfile = Annotated[
    ConstantRate | StepRate | RampRate | SpikeRate | SineRate | PiecewiseRate,
    Field(discriminator="profile"),
]


class RequestClass(Model):
    """A class of requests: its share of arrivals and whether it is critical."""

    name: str = Field(min_length=1)
    weight: Annotated[float, Field(gt=0)] = 1.0
    critical: bool = False


class UserRetries(Model):
    """The refresh button: a user whose request failed sends it again.

    ``max`` retries per request (default 2), each ``after`` the failure (default 1 s: a person
    reading an error page; this model's choice); a retry is a new arrival. A request answered
    ``degraded`` is not retried. Users retry no matter the load: this is how a slowdown turns
    into a retry storm from outside the system (DESIGN §2.5).
    """

    max: Annotated[int, Field(ge=0)] = 2
    after: Duration = 1.0


class ClosedLoopUsers(Model):
    """A closed loop of ``count`` users: think, send a request, wait for it, think again.

    ``think_time`` defaults to exponential with a 5 s mean (a think time of seconds is the usual
    web-benchmark choice, e.g. TPC-W's 7 s mean; 5 s keeps numbers round). A user waits for the
    answer up to the workload's ``timeout``; its request goes on inside the system after that.
    Each user draws from its own random streams, so adding users leaves the others' draws as
    they were. A ``traffic_surge`` adds ``(factor - 1) x count`` users for its duration (they
    leave after their request in flight when it ends); a surge factor below 1 is refused.
    """

    count: Annotated[int, Field(ge=1)]
    think_time: Distribution = Exponential(dist="exponential", mean=5.0)
    retries: UserRetries | None = None


class Workload(Model):
    """The users: open-loop Poisson arrivals (``rate``) or a closed loop (``users``).

    ``timeout`` is the client's timeout: the user stops waiting (outcome ``timeout``) while the
    entry service keeps working. ``null`` (default): the user waits for the answer.

    ``deadline_propagation`` (default off, as in most stacks without gRPC deadlines) is a
    property of the whole stack, as a gRPC deployment's: each request then carries a deadline,
    the tightest of the timeouts of the callers on its way (client, call and per-try timeouts);
    a server drops it with ``deadline_exceeded`` when a worker picks it up, or before a
    downstream call, once that deadline has passed. Off: abandoned work keeps consuming the
    servers.
    """

    entry: str
    rate: RateProfile | None = None
    users: ClosedLoopUsers | None = None
    classes: list[RequestClass] = Field(default_factory=lambda: [RequestClass(name="default")])
    timeout: PositiveDuration | None = None
    deadline_propagation: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Workload:
        if (self.rate is None) == (self.users is None):
            raise ValueError("give the users either a rate (open loop) or users (closed loop)")
        return self

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, value: list[RequestClass]) -> list[RequestClass]:
        names = [c.name for c in value]
        if not value:
            raise ValueError("at least one request class is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"request class names must be unique, got {names}")
        return value


# --------------------------------------------------------------------------- faults


class FaultBase(Model):
    """When a fault starts (``at``) and for how long (``duration``; null: to the end)."""

    name: str | None = None
    at: Duration
    duration: PositiveDuration | None = None


class LatencyFault(FaultBase):
    """Slower service at a service (or on an edge ``"a -> b"``): ``+add`` then ``x factor``."""

    kind: Literal["latency"]
    target: str
    add: Duration = 0.0
    factor: Annotated[float, Field(gt=0)] = 1.0

    @model_validator(mode="after")
    def _does_something(self) -> LatencyFault:
        if self.add == 0 and self.factor == 1:
            raise ValueError("a latency fault needs add > 0 or factor != 1")
        return self


class ErrorRateFault(FaultBase):
    """A fraction of the requests served by the target (service or edge) fail with ``error``."""

    kind: Literal["error_rate"]
    target: str
    rate: Fraction


class CrashFault(FaultBase):
    """Kill ``count`` instances (or ``percent`` of them, rounded up) of a service at ``at``."""

    kind: Literal["crash"]
    target: str
    count: Annotated[int, Field(ge=1)] | None = None
    percent: Fraction | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> CrashFault:
        if self.count is not None and self.percent is not None:
            raise ValueError("give count or percent, not both")
        if self.duration is not None:
            raise ValueError("a crash happens at one instant: it takes no duration")
        return self


class HangFault(FaultBase):
    """The chosen instances hang: alive, but their process answers nothing.

    A deadlock, a stop-the-world pause, a stuck event loop. Work they pick up from ``at`` on
    never finishes until the hang ends (``duration``; null: until the container is restarted,
    which clears it); requests already in service finish.
    Probes that need the application time out; a ``tcp_socket`` probe still passes.
    ``count``/``percent`` choose which instances (default: all of them).
    """

    kind: Literal["hang"]
    target: str
    count: Annotated[int, Field(ge=1)] | None = None
    percent: Fraction | None = None


class TrafficSurgeFault(FaultBase):
    """Multiply the arrival rate by ``factor`` for the fault's duration."""

    kind: Literal["traffic_surge"]
    factor: Annotated[float, Field(gt=0)]


class HostDownFault(FaultBase):
    """A host goes down: every process on it dies; it is back after ``duration`` (its reboot).

    Its pods wait for it, unless it stays down long enough for Kubernetes to evict them
    (:data:`sim.world.UNREACHABLE_EVICTION`, 340 s): then they are replaced on other hosts
    where they fit. ``duration`` null: it never comes back.
    """

    kind: Literal["host_down"]
    target: str


class CrashLoopFault(FaultBase):
    """The chosen instances exit ``after`` seconds after every start while the fault lasts.

    A bad release, a missing secret, a dependency refused at start-up. A container running when
    the fault begins exits ``after`` seconds after that; each one started before the fault
    ends exits ``after`` seconds after its start. The exit code is ``exit_code`` (1: reason
    ``Error``; 0: ``Completed``, which ``OnFailure`` does not restart and OTP calls
    ``normal``). ``count``/``percent`` choose which instances (default: all of them).
    """

    kind: Literal["crash_loop"]
    target: str
    after: Duration
    exit_code: Annotated[int, Field(ge=0, le=255)] = 1
    count: Annotated[int, Field(ge=1)] | None = None
    percent: Fraction | None = None


class DrainFault(FaultBase):
    """``kubectl drain`` of a host: cordon it, then evict every pod on it.

    Each eviction honours the service's PodDisruptionBudget; a refused one is retried every
    5 s (kubectl's loop). An evicted pod stops gracefully (its termination grace period) and
    its replacement is scheduled on another host where it fits. The host is uncordoned when
    the fault ends (``duration``; null: never).
    """

    kind: Literal["drain"]
    target: str


class MemoryLeakFault(FaultBase):
    """The target service's instances leak ``rate`` bytes per second while the fault lasts.

    ``count``/``percent`` choose which instances (default: all of them).
    """

    kind: Literal["memory_leak"]
    target: str
    rate: Annotated[Bytes, Field(gt=0)]
    count: Annotated[int, Field(ge=1)] | None = None
    percent: Fraction | None = None


class MemorySpikeFault(FaultBase):
    """Each chosen instance allocates ``size`` at once and frees it when the fault ends."""

    kind: Literal["memory_spike"]
    target: str
    size: Annotated[Bytes, Field(gt=0)]
    count: Annotated[int, Field(ge=1)] | None = None
    percent: Fraction | None = None


class MemoryHogFault(FaultBase):
    """A process on a host (``target``) that allocates at ``rate`` up to ``size`` and holds it.

    The noisy neighbour: it runs in ``cgroup`` (default a BestEffort-like slice of its own with no
    limit) with ``oom_score_adj``, and exits when the fault ends.
    """

    kind: Literal["memory_hog"]
    target: str
    size: Annotated[Bytes, Field(gt=0)]
    rate: Annotated[Bytes, Field(gt=0)] | None = None
    cgroup: str = Field(default="/system.slice/memory-hog.service", pattern=r"^/[^\s]*$")
    process: str = Field(default="memhog", min_length=1, max_length=15)
    oom_score_adj: Annotated[int, Field(ge=-1000, le=1000)] = 0


class PartitionFault(FaultBase):
    """A network partition on the edge ``a -> b``.

    ``drop``: the connection is refused (an iptables REJECT: RST / ICMP unreachable at
    connect); Envoy reports a connect failure (503 ``UF``), the request never reached ``b``:
    calls fail at once with ``unavailable``. ``blackhole``: packets vanish (iptables DROP);
    calls hang until the caller's timeout, and those still waiting when the partition heals go
    through then (TCP retransmission, simplified to the instant it heals).
    """

    kind: Literal["partition"]
    target: str
    mode: Literal["drop", "blackhole"] = "blackhole"


class PoisonRequestFault(FaultBase):
    """Poison requests at service ``target``.

    Requests of class ``request_class``, or a
    ``fraction`` of requests (decided per request, so a retry of one is poison again), crash
    the instance that picks them up (reason ``Error``, exit code 1); the request ends ``reset``
    and a retry crashes the next instance (let it crash vs retry amplification).
    """

    kind: Literal["poison_request"]
    target: str
    request_class: str | None = None
    fraction: Fraction | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> PoisonRequestFault:
        if (self.request_class is None) == (self.fraction is None):
            raise ValueError("give exactly one of request_class and fraction")
        return self


Fault = Annotated[
    LatencyFault
    | ErrorRateFault
    | CrashFault
    | HangFault
    | TrafficSurgeFault
    | HostDownFault
    | CrashLoopFault
    | DrainFault
    | MemoryLeakFault
    | MemorySpikeFault
    | MemoryHogFault
    | PartitionFault
    | PoisonRequestFault,
    Field(discriminator="kind"),
]

# --------------------------------------------------------------------------- the scenario


class Recording(Model):
    """Recording resolution: time-bin width (default 1 s) and the event-log cap."""

    bin: PositiveDuration = 1.0
    max_events: Annotated[int, Field(ge=0)] = 100_000


class CrossReferenceError(Exception):
    """Cross-field problems of a scenario, each as (path, message)."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(f"{_dotted(p)}: {m}" for p, m in problems))
        self.problems = problems


class Scenario(Model):
    """A complete scenario: hosts, services, workload, faults, SLO and variants.

    ``title``, ``description`` (a Markdown narrative: context, ``**Predict:**``, ``**Look
    at:**``, what happens) and ``goals`` (the learning goals of its lesson, one sentence each:
    "Tell a kubelet eviction from a kernel OOM kill in the event log") are for people; they
    change nothing in a run.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str = ""
    description: str = ""
    goals: list[Annotated[str, Field(min_length=1)]] = []
    duration: PositiveDuration
    seed: Annotated[int, Field(ge=0)] = 0
    hosts: list[Host] = Field(min_length=1)
    services: dict[str, Service] = Field(min_length=1)
    workload: Workload
    faults: list[Fault] = []
    supervisors: list[SupervisorSpec] = []
    slo: SloConfig = SloConfig()
    recording: Recording = Recording()
    variants: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        problems = list(_reference_problems(self))
        if problems:
            raise CrossReferenceError(problems)
        return self

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        return next(h for h in self.hosts if h.name == name)

    def call_graph(self) -> nx.DiGraph[str]:
        """The call graph: an edge a -> b for each call of a to b."""
        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_nodes_from(self.services)
        for name, service in self.services.items():
            for call in service.calls:
                graph.add_edge(name, call.to)
        return graph

    def supervisor_of(self) -> dict[str, tuple[int, int]]:
        """Who supervises what: child name -> (supervisor index, child index)."""
        return {
            child.child: (index, number)
            for index, spec in enumerate(self.supervisors)
            for number, child in enumerate(spec.child_specs())
        }

    def slo_for(self, service: str) -> SloConfig:
        """The SLO of a service: its own, or the scenario's."""
        return self.services[service].slo or self.slo

    def with_variant(self, variant: str | None) -> Scenario:
        """This scenario with a variant's overlay applied (``None`` or ``baseline``: itself)."""
        if variant is None or (variant == "baseline" and variant not in self.variants):
            return self
        if variant not in self.variants:
            known = ", ".join(sorted(self.variants)) or "none"
            raise ScenarioError(
                [
                    Problem(
                        None, None, None, "variant", f"unknown variant {variant!r} (known: {known})"
                    )
                ]
            )
        return self.with_overrides(self.variants[variant], where=f"variants.{variant}.")

    def with_overrides(self, overrides: Mapping[str, Any], where: str = "") -> Scenario:
        """This scenario with dotted-path overrides applied and validated again.

        ``{"duration": 60, "services.cart.workers": 8}``: the same overlay language as variants
        (and what the UI's knobs and sweeps use). Problems are raised as :class:`ScenarioError`,
        their paths prefixed by ``where``.
        """
        data = self.model_dump(by_alias=True, exclude_defaults=True)
        problems: list[Problem] = []
        for dotted, value in overrides.items():
            try:
                apply_overlay(data, dotted, value)
            except OverlayError as exc:
                problems.append(Problem(None, None, None, f"{where}{dotted}", str(exc)))
        if problems:
            raise ScenarioError(problems)
        try:
            return _validate(data, None, {}, prefix=())
        except ScenarioError as exc:
            raise ScenarioError(
                [Problem(None, None, None, f"{where}{p.path}", p.message) for p in exc.problems]
            ) from None


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in path)


DEFAULT_MEMORY_REQUEST = 200 * 1024**2
"""Memory the scheduler assumes when scoring a pod with no request (``DefaultMemoryRequest``,
kubernetes pkg/scheduler/util/pod_resources.go, 200 MB)."""


def _placements(scenario: Scenario) -> Iterator[tuple[str, int, str]]:
    """Yield (service, replica index, host name) as the model places them.

    ``spread`` mimics the scheduler's defaults: among the hosts whose allocatable memory still
    fits the request (the filter), first spread the replicas of one service over the hosts (the
    default topology spread by hostname), then prefer the host with the most memory left
    (``LeastAllocated``, a pod with no request scored as 200 MB); ties go to the earlier host.
    A host list is used round robin.
    """
    order = [h.name for h in scenario.hosts]
    free = {h.name: h.allocatable for h in scenario.hosts}  # what requests leave: the filter
    score = dict(free)  # the same with no-request pods counted as 200 MB: the scoring
    for name, service in scenario.services.items():
        request = service.resources.memory_request
        mine = dict.fromkeys(order, 0)
        for index in range(service.replicas):
            if service.placement == "spread":
                fitting = [h for h in order if free[h] >= request] or order
                host = min(fitting, key=lambda h: (mine[h], -score[h], order.index(h)))
            else:
                host = service.placement[index % len(service.placement)]
            free[host] -= request
            score[host] -= request or DEFAULT_MEMORY_REQUEST
            mine[host] += 1
            yield name, index, host


def placements(scenario: Scenario) -> dict[str, list[str]]:
    """Map each service to the host of each of its replicas, in replica order."""
    result: dict[str, list[str]] = {name: [] for name in scenario.services}
    for name, _, host in _placements(scenario):
        result[name].append(host)
    return result


def _partition_problems(
    name: str, service: Service, classes: list[str]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Worker partitions name known classes, each once, and leave workers for the rest."""
    seen: set[str] = set()
    partitions = service.admission.partitions
    for index, partition in enumerate(partitions):
        for number, cls in enumerate(partition.classes):
            path = ("services", name, "admission", "partitions", index, "classes", number)
            if cls not in classes:
                yield path, _unknown("request class", cls, classes)
            elif cls in seen:
                yield path, f"request class {cls!r} is in two partitions"
            seen.add(cls)
    kept = sum(p.workers for p in partitions)
    if kept > service.workers:
        yield (
            ("services", name, "admission", "partitions"),
            f"partitions keep {kept} workers, more than the service's {service.workers}",
        )
    elif partitions and kept == service.workers and seen != set(classes):
        yield (
            ("services", name, "admission", "partitions"),
            f"partitions keep all {kept} workers: none left for the other classes",
        )


def _reference_problems(s: Scenario) -> Iterator[tuple[tuple[str | int, ...], str]]:
    host_names = [h.name for h in s.hosts]
    for index, host in enumerate(s.hosts):
        if host_names.index(host.name) != index:
            yield ("hosts", index, "name"), f"duplicate host name {host.name!r}"
        if host.allocatable <= 0:
            yield (
                ("hosts", index, "memory"),
                (f"{units.format_bytes(host.memory)} leaves nothing allocatable after reserves"),
            )
    services = set(s.services)
    for name, service in s.services.items():
        targets = [c.to for c in service.calls]
        for index, call in enumerate(service.calls):
            if call.to not in services:
                yield (
                    ("services", name, "calls", index, "to"),
                    _unknown("service", call.to, services),
                )
            elif targets.index(call.to) != index:
                yield ("services", name, "calls", index, "to"), f"{name} calls {call.to!r} twice"
        yield from _partition_problems(name, service, [c.name for c in s.workload.classes])
        if service.placement != "spread":
            for index, host_name in enumerate(service.placement):
                if host_name not in host_names:
                    yield (
                        ("services", name, "placement", index),
                        _unknown("host", host_name, host_names),
                    )
    if s.workload.entry not in services:
        yield ("workload", "entry"), _unknown("service", s.workload.entry, services)
    graph = s.call_graph()
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        loop = " -> ".join([cycle[0][0], *(b for _, b in cycle)])
        caller, callee = cycle[-1]
        index = [c.to for c in s.services[caller].calls].index(callee)
        yield ("services", caller, "calls", index, "to"), f"call graph has a cycle: {loop}"
    yield from _cgroup_v1_problems(s)
    yield from _supervisor_problems(s)
    names = [fault.name for fault in s.faults if fault.name]
    for index, fault in enumerate(s.faults):
        yield from _fault_problems(index, fault, services, host_names, graph)
        if isinstance(fault, TrafficSurgeFault) and s.workload.users and fault.factor < 1:
            yield (
                ("faults", index, "factor"),
                "a surge below 1 needs open-loop arrivals (closed-loop users only join)",
            )
        if isinstance(fault, PoisonRequestFault) and fault.request_class is not None:
            classes = [c.name for c in s.workload.classes]
            if fault.request_class not in classes:
                yield (
                    ("faults", index, "request_class"),
                    _unknown("request class", fault.request_class, classes),
                )
        if fault.at >= s.duration:
            yield (
                ("faults", index, "at"),
                (
                    f"starts at {units.format_duration(fault.at)}, after the run ends "
                    f"({units.format_duration(s.duration)})"
                ),
            )
        if fault.name and names.count(fault.name) > 1:
            yield ("faults", index, "name"), f"duplicate fault name {fault.name!r}"
    if all(
        host in host_names
        for svc in s.services.values()
        if svc.placement != "spread"
        for host in svc.placement
    ):
        yield from _fit_problems(s)


def _cgroup_v1_problems(s: Scenario) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """``oom_kill_disable`` is cgroup v1's ``memory.oom_control``: v2 has no such file."""
    v1_only = "oom_kill_disable exists only on cgroup v1 hosts (cgroup_version: 1)"
    for index, host in enumerate(s.hosts):
        for number, extra in enumerate(host.cgroups):
            if extra.oom_kill_disable and host.cgroup_version == 2:
                yield ("hosts", index, "cgroups", number, "oom_kill_disable"), v1_only
    placed = (
        placements(s)
        if all(
            h in [x.name for x in s.hosts]
            for svc in s.services.values()
            if svc.placement != "spread"
            for h in svc.placement
        )
        else {}
    )
    for name, service in s.services.items():
        if service.cgroup.oom_kill_disable and any(
            s.host(h).cgroup_version == 2 for h in placed.get(name, [])
        ):
            yield ("services", name, "cgroup", "oom_kill_disable"), v1_only


def _supervisor_problems(s: Scenario) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Supervision trees: known, unique children; no cycle; OTP or the kubelet, not both."""
    names = [spec.name for spec in s.supervisors]
    known = set(s.services) | set(names)
    for index, spec in enumerate(s.supervisors):
        if names.index(spec.name) != index:
            yield ("supervisors", index, "name"), f"duplicate supervisor name {spec.name!r}"
        elif spec.name in s.services:
            yield ("supervisors", index, "name"), f"{spec.name!r} is a service's name too"
    seen: dict[str, str] = {}
    tree: nx.DiGraph[str] = nx.DiGraph()
    for index, spec in enumerate(s.supervisors):
        for number, (raw, child) in enumerate(zip(spec.children, spec.child_specs(), strict=True)):
            path: tuple[str | int, ...] = ("supervisors", index, "children", number)
            if not isinstance(raw, str):
                path = (*path, "child")
            if child.child not in known:
                yield path, _unknown("service or supervisor", child.child, known)
            elif child.child in seen:
                yield path, f"{child.child!r} is already a child of {seen[child.child]!r}"
            else:
                seen[child.child] = spec.name
                tree.add_edge(spec.name, child.child)
    try:
        cycle = nx.find_cycle(tree)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        loop = " -> ".join([cycle[0][0], *(b for _, b in cycle)])
        parent, child_name = cycle[-1]
        index = names.index(parent)
        number = [c.child for c in s.supervisors[index].child_specs()].index(child_name)
        yield ("supervisors", index, "children", number), f"supervisors form a cycle: {loop}"
    for name, service in s.services.items():
        if name not in seen:
            continue
        where = f"{name} is supervised by OTP supervisor {seen[name]!r}"
        if "restart" in service.model_fields_set:
            yield (
                ("services", name, "restart"),
                f"{where}: a service has a Kubernetes restart policy or an OTP supervisor, "
                "not both",
            )
        for kind in ("startup", "liveness"):
            if getattr(service.probes, kind) is not None:
                yield (
                    ("services", name, "probes", kind),
                    f"{where}: a {kind} probe needs the kubelet to restart it "
                    "(readiness probes are fine)",
                )


def _unknown(what: str, name: str, known: Any) -> str:
    return f"unknown {what} {name!r} (known: {', '.join(sorted(known))})"


def _fault_problems(
    index: int, fault: Any, services: set[str], hosts: list[str], graph: nx.DiGraph[str]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    path: tuple[str | int, ...] = ("faults", index, "target")
    if isinstance(fault, PartitionFault) and "->" not in fault.target:
        yield path, "a partition is on an edge 'a -> b'"
    elif isinstance(fault, LatencyFault | ErrorRateFault | PartitionFault):
        if "->" in fault.target:
            caller, _, callee = (part.strip() for part in fault.target.partition("->"))
            for end in (caller, callee):
                if end not in services:
                    yield path, _unknown("service", end, services)
            if caller in services and callee in services and not graph.has_edge(caller, callee):
                yield path, f"{caller} does not call {callee}"
            if isinstance(fault, LatencyFault) and fault.factor != 1:
                yield (
                    ("faults", index, "factor"),
                    ("factor scales a service's own time; on an edge use add"),
                )
        elif fault.target not in services:
            yield path, _unknown("service", fault.target, services) + " (or an edge 'a -> b')"
    elif (
        isinstance(
            fault,
            CrashFault
            | CrashLoopFault
            | HangFault
            | MemoryLeakFault
            | MemorySpikeFault
            | PoisonRequestFault,
        )
        and fault.target not in services
    ):
        yield path, _unknown("service", fault.target, services)
    elif (
        isinstance(fault, HostDownFault | MemoryHogFault | DrainFault) and fault.target not in hosts
    ):
        yield path, _unknown("host", fault.target, hosts)


def _fit_problems(s: Scenario) -> Iterator[tuple[tuple[str | int, ...], str]]:
    used: dict[str, int] = {h.name: 0 for h in s.hosts}
    for name, index, host in _placements(s):
        used[host] += s.services[name].resources.memory_request
        allocatable = s.host(host).allocatable
        if used[host] > allocatable:
            yield (
                ("services", name, "placement"),
                (
                    f"replica {index} does not fit on {host}: memory requests "
                    f"{units.format_bytes(used[host])} > allocatable "
                    f"{units.format_bytes(allocatable)}"
                ),
            )
            return


# --------------------------------------------------------------------------- overlays


class OverlayError(ValueError):
    """An overlay path that does not lead anywhere."""


_LIST_KEYS = ("name", "to")


def apply_overlay(data: dict[str, Any], dotted: str, value: Any) -> tuple[str | int, ...]:
    """Set ``value`` at ``dotted`` in raw scenario data; return the concrete path it reached.

    Missing intermediate mappings are created (the schema then decides whether the field exists);
    list items are addressed by their ``name``/``to`` or by index.
    """
    parts = dotted.split(".")
    if not dotted or any(not p for p in parts):
        raise OverlayError(f"malformed path {dotted!r}")
    node: Any = data
    concrete: list[str | int] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part, ".".join(parts[:depth]))
            concrete.append(index)
            if last:
                node[index] = copy.deepcopy(value)
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise OverlayError(f"{'.'.join(parts[:depth])} is a value, it has no field {part!r}")
        concrete.append(part)
        if last:
            node[part] = copy.deepcopy(value)
        else:
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
    return tuple(concrete)


def _list_index(items: list[Any], part: str, where: str) -> int:
    for index, item in enumerate(items):
        if isinstance(item, dict) and any(item.get(k) == part for k in _LIST_KEYS):
            return index
    if part.isdigit() and int(part) < len(items):
        return int(part)
    names = [
        str(item.get(k))
        for item in items
        if isinstance(item, dict)
        for k in _LIST_KEYS
        if item.get(k) is not None
    ]
    raise OverlayError(f"{where} has no item named {part!r} (items: {', '.join(names) or 'none'})")


# --------------------------------------------------------------------------- errors and loading


@dataclass(frozen=True)
class Problem:
    """One problem in a scenario file, with where it is."""

    file: str | None
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}:{self.column}: " if self.line else f"{self.file}: "
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ScenarioError(Exception):
    """A scenario that cannot be used; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


Marks = dict[tuple[str | int, ...], tuple[tuple[int, int], tuple[int, int]]]
"""Path -> ((key line, key column), (value line, value column)), 1-based."""


class _DuplicateKeyError(Exception):
    def __init__(self, path: tuple[str | int, ...], key: str, line: int, col: int, first: int):
        super().__init__(key)
        self.path, self.key, self.line, self.col, self.first = path, key, line, col, first


def _construct(
    loader: yaml.SafeLoader, node: yaml.Node, path: tuple[str | int, ...], marks: Marks
) -> Any:
    """Build Python data from a YAML node, remembering where every path is in the file."""
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                key = str(key)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKeyError(
                    path, str(key), line, key_node.start_mark.column + 1, seen[key]
                )
            seen[key] = line
            child = (*path, key)
            marks[child] = (
                (line, key_node.start_mark.column + 1),
                (value_node.start_mark.line + 1, value_node.start_mark.column + 1),
            )
            result[key] = _construct(loader, value_node, child, marks)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            child = (*path, index)
            mark = (item_node.start_mark.line + 1, item_node.start_mark.column + 1)
            marks[child] = (mark, mark)
            items.append(_construct(loader, item_node, child, marks))
        return items
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: str) -> tuple[Any, Marks]:
    """Parse YAML text into data and marks; syntax errors and duplicate keys are problems."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        marks: Marks = {}
        data = _construct(loader, node, (), marks) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = str(exc.problem or exc.context)
        if exc.problem and exc.context:
            # the context ("while parsing a flow mapping") often starts where the mistake is
            started = exc.context_mark
            at = f" at line {started.line + 1}, column {started.column + 1}" if started else ""
            message = f"{exc.problem} ({exc.context}{at})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ScenarioError([Problem(file, line, col, "", f"YAML syntax: {message}")]) from None
    except _DuplicateKeyError as exc:
        raise ScenarioError(
            [
                Problem(
                    file,
                    exc.line,
                    exc.col,
                    _dotted((*exc.path, exc.key)),
                    f"duplicate key (first given on line {exc.first})",
                )
            ]
        ) from None
    finally:
        loader.dispose()
    return data, marks


def _locate(
    path: tuple[str | int, ...],
    data: Any,
    marks: Marks,
    at_key: bool,
    absent_leaf: bool = True,
) -> tuple[tuple[str | int, ...], tuple[int, int] | None]:
    """Map a pydantic error location to the path in the data and its place in the file.

    Discriminated-union tags (``'crash'``) and pydantic's own segments that are not in the data
    are dropped; a missing field (``absent_leaf``) points at its nearest parent.
    """
    real: list[str | int] = []
    node = data
    for depth, part in enumerate(path):
        if isinstance(node, dict) and part == "from_" and "from" in node:
            part = "from"
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            real.append(part)
            node = cast(Any, node)[part]
        elif depth == len(path) - 1 and absent_leaf:
            real.append("from" if part == "from_" else part)  # a missing field
        # else: a union tag or another segment of pydantic's own, not in the data
    shown = tuple(real)
    probe = shown
    while probe and probe not in marks:
        probe = probe[:-1]
    if probe not in marks:
        return shown, (1, 1)
    key_mark, value_mark = marks[probe]
    if probe != shown:
        return shown, key_mark
    return shown, key_mark if at_key else value_mark


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx", {})
        expected = ctx.get("expected_tags", "")
        tag = _discriminator(ctx)
        if kind == "union_tag_not_found":
            return f"field {tag!r} required (one of {expected})"
        return f"unknown {tag} {ctx.get('tag')!r} (expected one of {expected})"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _discriminator(ctx: Mapping[str, Any]) -> str:
    """The field a tagged union is told apart by (``kind`` where a function picks the tag)."""
    name = str(ctx.get("discriminator", "")).strip("'")
    return "kind" if name.endswith("()") else name


def _validate(
    data: Any,
    file: str | None,
    marks: Marks,
    prefix: tuple[str | int, ...],
) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            at_key = error["type"] == "extra_forbidden"
            loc = tuple(error["loc"])
            if error["type"] == "union_tag_invalid":
                loc = (*loc, _discriminator(error["ctx"]))
            absent_leaf = error["type"] == "missing"
            path, mark = _locate(loc, data, marks, at_key, absent_leaf)
            line, col = mark if (mark and marks) else (None, None)
            problems.append(Problem(file, line, col, _dotted((*prefix, *path)), _message(error)))
        raise ScenarioError(_unique(problems)) from None
    except CrossReferenceError as exc:
        problems = []
        for path, message in exc.problems:
            shown, mark = _locate(path, data, marks, at_key=False)
            line, col = mark if (mark and marks) else (None, None)
            problems.append(Problem(file, line, col, _dotted((*prefix, *shown)), message))
        raise ScenarioError(problems) from None


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    result = []
    for problem in sorted(problems, key=lambda p: (p.line or 0, p.column or 0)):
        if str(problem) not in seen:
            seen.add(str(problem))
            result.append(problem)
    return result


def load_scenario_text(text: str, file: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text, and every variant in it; raise :class:`ScenarioError`."""
    data, marks = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise ScenarioError([Problem(file, 1, 1, "", "a scenario must be a YAML mapping")])
    scenario = _validate(data, file, marks, prefix=())
    for variant, overlay in scenario.variants.items():
        _validate_variant(data, marks, file, variant, overlay)
    return scenario


def _validate_variant(
    data: dict[str, Any], marks: Marks, file: str, variant: str, overlay: dict[str, Any]
) -> None:
    raw = copy.deepcopy(data)
    raw.pop("variants", None)
    variant_marks: Marks = dict(marks)
    problems = []
    for dotted, value in overlay.items():
        where = ("variants", variant, dotted)
        key_mark = marks.get(where, ((None, None), (None, None)))[0]
        try:
            concrete = apply_overlay(raw, dotted, value)
        except OverlayError as exc:
            problems.append(
                Problem(file, key_mark[0], key_mark[1], f"variants.{variant}.{dotted}", str(exc))
            )
            continue
        # errors under the overlaid value point into the variant, not the base
        for path in [p for p in variant_marks if p[: len(concrete)] == concrete]:
            del variant_marks[path]
        for path, mark in marks.items():
            if path[:3] == where:
                variant_marks[(*concrete, *path[3:])] = mark
    if problems:
        raise ScenarioError(problems)
    try:
        _validate(raw, file, variant_marks, prefix=())
    except ScenarioError as exc:
        raise ScenarioError(
            [
                Problem(p.file, p.line, p.column, f"variants.{variant}.{p.path}", p.message)
                for p in exc.problems
            ]
        ) from None


def load_scenario(source: str | Path) -> Scenario:
    """Load a scenario from a YAML file path or from a catalogue name (``three-tier``)."""
    path = Path(source)
    if not path.exists() and not str(source).endswith((".yaml", ".yml")):
        from scenarios import catalogue_path

        found = catalogue_path(str(source))
        if found is None:
            raise ScenarioError(
                [
                    Problem(
                        None, None, None, "", f"no scenario file or catalogue entry {str(source)!r}"
                    )
                ]
            )
        path = found
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = Problem(str(source), None, None, "", f"cannot read: {reason}")
        raise ScenarioError([problem]) from None
    return load_scenario_text(text, str(source))
