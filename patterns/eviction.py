"""Kubelet node-pressure eviction for memory (the ``memory.available`` signal).

Source: kubernetes/kubernetes ``pkg/kubelet/eviction/eviction_manager.go`` (``synchronize``,
``evictPod``, ``waitForPodsCleanup``), ``pkg/kubelet/eviction/helpers.go`` (``rankMemoryPressure``,
``evictionMessage``, ``thresholdsMet``, ``thresholdsMetGracePeriod``,
``nodeConditionsObservedSince``), ``pkg/kubelet/eviction/api/types.go``
(``GetThresholdQuantity``), ``pkg/kubelet/nodestatus/setters.go`` (``MemoryPressureCondition``),
``pkg/kubelet/pod_workers.go`` (``calculateEffectiveGracePeriod``), apimachinery
``pkg/api/resource/quantity.go`` (``CanonicalizeBytes``); see ``../shared/reference/semantics.md``
§3.5 and §12 V14.

Model. Every monitoring period (10 s) the manager observes ``memory.available = capacity -
working set`` and compares it with the configured thresholds; a threshold is met when its quantity
is strictly greater than what is available (``100Mi`` available does not meet ``<100Mi``).

* ``MemoryPressure`` is True while a threshold is met (hard or soft, grace period ignored) and
  for the pressure transition period (5 min) after the last pass that saw it met; a status change
  emits the node event ``NodeHasInsufficientMemory`` / ``NodeHasSufficientMemory``.
* A hard threshold acts at once; a soft one only once it has been met continuously for its grace
  period (a pass in which it is not met forgets when it was first seen).
* When a threshold acts, the pods are ranked (:func:`rank_for_eviction`) and the first one that is
  not critical is evicted: exactly one pod per pass. The evicted pod gets the kubelet's message and
  a termination grace period: 1 s for a hard threshold, ``max(1, min(evictionMaxPodGracePeriod,
  terminationGracePeriodSeconds))`` for a soft one.
* After an eviction the kubelet waits for the pod to be cleaned up (polled every 1 s, at most
  30 s) and then synchronizes again at once; without a ``pod_cleaned_up`` callback the next pass
  simply comes one monitoring period later.

Simplifications:

* The working set is supplied by the caller: the node's memory usage minus its inactive file
  cache (cAdvisor's ``working_set_bytes`` of the root cgroup), in bytes. Likewise each pod's and
  container's working set. ``memory.available`` is clamped at 0.
* Stats are always fresh (no cAdvisor housekeeping lag, no ``thresholdsUpdatedStats`` skip), the
  node-status update that publishes the condition is immediate, the kernel memcg threshold
  notifier (off by default) and ``evictionMinimumReclaim`` (0 by default) are not modelled, and the
  ``allocatableMemory.available`` signal is left out.
* ``evict`` is a call, not the kubelet's blocking kill: "evicted successfully" is logged as soon
  as it returns.
* Ties are broken deterministically: the ranking keeps the caller's order among equals (Go's
  ``sort.Sort`` is not stable), and when a hard and a soft threshold both act, the hard one drives
  the pass (the kubelet takes whichever its map iteration yields first).
* Critical pods are those at or above the system-critical priority (2,000,000,000); static and
  mirror pods are not modelled. Admission ignores tolerations.

Units: bytes and seconds. The module reads time only from ``env.now`` and draws no randomness.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import simpy

Ki = 1024
"""Bytes in a kibibyte."""
Mi = 1024 * Ki
"""Bytes in a mebibyte."""
Gi = 1024 * Mi
"""Bytes in a gibibyte."""

DEFAULT_HARD_MEMORY_AVAILABLE = 100 * Mi
"""``memory.available<100Mi``: the Linux default hard threshold (``DefaultEvictionHard``)."""

SYSTEM_CRITICAL_PRIORITY = 2_000_000_000
"""Pods at or above this priority are critical and never evicted (``SystemCriticalPriority``)."""

IMMEDIATE_EVICTION_GRACE_PERIOD = 1.0
"""Grace period of a hard eviction, s (``immediateEvictionGracePeriodSeconds``)."""

DEFAULT_TERMINATION_GRACE_PERIOD = 30.0
"""A pod's ``terminationGracePeriodSeconds`` when its spec leaves it out (API default)."""

POD_CLEANUP_TIMEOUT = 30.0
"""How long the manager waits for an evicted pod to be cleaned up, s (``podCleanupTimeout``)."""

POD_CLEANUP_POLL_FREQ = 1.0
"""How often it checks, s (``podCleanupPollFreq``)."""

PODS_EVICTED_PER_PASS = 1
""""we kill at most a single pod during each eviction interval" (``synchronize``)."""

REASON = "Evicted"
"""Pod status reason and pod event reason of an eviction (``Reason``)."""

KIND_LOG = "kubelet"
"""``log`` kind of the kubelet's own log lines (the text after klog's header)."""

EVENT_THRESHOLD_MET = "EvictionThresholdMet"
"""Node event (Warning) recorded when a threshold drives a pass: "Attempting to reclaim memory"."""

EVENT_EVICTED = REASON
"""Pod event (Warning) carrying the eviction message."""

EVENT_INSUFFICIENT_MEMORY = "NodeHasInsufficientMemory"
"""Node event (Normal) when ``MemoryPressure`` turns True (``MemoryPressureCondition``)."""

EVENT_SUFFICIENT_MEMORY = "NodeHasSufficientMemory"
"""Node event (Normal) when ``MemoryPressure`` turns False (or is first set False)."""

QosClass = Literal["Guaranteed", "Burstable", "BestEffort"]

_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_PARSE_SUFFIXES = {
    "": 1,
    **{s: 1024**i for i, s in enumerate(_BINARY_SUFFIXES) if s},
    **{s: 1000 ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
}


_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?P<suffix>[A-Za-z]*)"
)


def format_quantity(value: int) -> str:
    """``resource.NewQuantity(value, resource.BinarySI).String()``: bytes as Kubernetes prints them.

    ``Quantity.CanonicalizeBytes``: 0 is ``"0"``; a value strictly between -1024 and 1024 is shown
    as DecimalSI (``"512"``, but ``1000`` is ``"1k"``); otherwise the mantissa is divided by 1024
    while it stays an integer and the binary suffix records how often (``94371840`` ->
    ``"90Mi"``, ``1228800`` -> ``"1200Ki"``, ``1234567`` -> ``"1234567"``, ``1 Gi + 1`` -> the
    plain number). The suffix stops at ``Ei``.
    """
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa = abs(value)
    if mantissa < 1024:
        exponent = 0
        while mantissa % 10 == 0:
            mantissa //= 10
            exponent += 1
        # DecimalSI exponents are multiples of 3; below 1024 that is "" or "k".
        mantissa *= 10 ** (exponent % 3)
        exponent -= exponent % 3
        return f"{sign}{mantissa}{'k' if exponent == 3 else ''}"
    power = 0
    while mantissa % 1024 == 0 and power < len(_BINARY_SUFFIXES) - 1:
        mantissa //= 1024
        power += 1
    return f"{sign}{mantissa}{_BINARY_SUFFIXES[power]}"


def parse_quantity(text: str) -> int:
    """Bytes of a quantity string such as ``"100Mi"``, ``"1.5Gi"``, ``"500M"`` or ``"1024"``.

    Fractions round up to a whole byte, as ``Quantity.Value()`` does; ``1e3`` is 1000. Milli-units
    (``m``) are not accepted.
    """
    match = _QUANTITY.fullmatch(text)
    if match is None or match["suffix"] not in _PARSE_SUFFIXES:
        raise ValueError(f"not a byte quantity: {text!r}")
    exact: Fraction = Fraction(match["number"]) * _PARSE_SUFFIXES[match["suffix"]]
    return -(-exact.numerator // exact.denominator)


def _float32(value: float) -> float:
    """``value`` rounded to a Go ``float32``, as the kubelet stores threshold percentages."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


@dataclass(frozen=True)
class Threshold:
    """A ``memory.available`` eviction threshold (``evictionapi.Threshold``).

    Attributes:
        quantity: the threshold in bytes (``memory.available<100Mi`` -> ``100 * Mi``), or None.
        percentage: the threshold as a fraction of node capacity (``"10%"`` -> ``0.1``), or None.
            Exactly one of ``quantity`` and ``percentage`` is set.
        grace_period: how long the signal must stay below before pods are evicted, s; 0 for a
            hard threshold (``evictionHard``), positive for a soft one (``evictionSoft`` with
            ``evictionSoftGracePeriod``).
    """

    quantity: int | None = None
    percentage: float | None = None
    grace_period: float = 0.0

    def __post_init__(self) -> None:
        if (self.quantity is None) == (self.percentage is None):
            raise ValueError("a threshold has exactly one of quantity and percentage")
        if self.quantity is not None and self.quantity <= 0:
            raise ValueError(f"eviction threshold must be positive: {self.quantity}")
        if self.percentage is not None and not 0.0 < self.percentage <= 1.0:
            raise ValueError(f"eviction percentage must be in (0, 1]: {self.percentage}")
        if self.grace_period < 0:
            raise ValueError(f"grace period must be >= 0: {self.grace_period}")

    @classmethod
    def parse(cls, value: str, grace_period: float = 0.0) -> Threshold:
        """The threshold written as in the kubelet config: ``"100Mi"`` or ``"10%"``."""
        if value.endswith("%"):
            return cls(percentage=float(value[:-1]) / 100, grace_period=grace_period)
        return cls(quantity=parse_quantity(value), grace_period=grace_period)

    @property
    def hard(self) -> bool:
        """Whether the threshold acts at once (``isHardEvictionThreshold``: grace period 0)."""
        return self.grace_period == 0

    def bytes(self, capacity: int) -> int:
        """The threshold in bytes on a node of ``capacity`` bytes (``GetThresholdQuantity``).

        A percentage is a Go ``float32``; ``int64(float64(capacity) * float64(pct))`` truncates.
        So ``10%`` of 8 Gi is 858993472 bytes, not 858993459.
        """
        if self.quantity is not None:
            return self.quantity
        assert self.percentage is not None
        return int(float(capacity) * _float32(self.percentage))

    def met(self, available: int, capacity: int) -> bool:
        """Whether ``available`` bytes meet the threshold (``OpLessThan``: strictly below)."""
        return self.bytes(capacity) > available


def _default_hard() -> Threshold:
    return Threshold(quantity=DEFAULT_HARD_MEMORY_AVAILABLE)


@dataclass(frozen=True)
class EvictionConfig:
    """The kubelet's memory eviction settings.

    Attributes:
        hard: hard threshold, default ``memory.available<100Mi`` (Linux ``DefaultEvictionHard``,
            ``pkg/kubelet/eviction/defaults_linux.go``); None for no hard threshold.
        soft: soft threshold with its grace period, default None (``evictionSoft`` is empty).
        max_pod_grace_period: ``evictionMaxPodGracePeriod``, s, default 0 (KubeletConfiguration
            default): the most a soft eviction gives a pod to terminate.
        pressure_transition_period: ``evictionPressureTransitionPeriod``, default 5 min
            (``pkg/kubelet/apis/config/v1beta1/defaults.go``).
        monitoring_period: seconds between passes, default 10 (``evictionMonitoringPeriod`` in
            ``pkg/kubelet/kubelet.go``). At most one pod is evicted per pass
            (:data:`PODS_EVICTED_PER_PASS`, a constant of the kubelet, not a setting).
    """

    hard: Threshold | None = field(default_factory=_default_hard)
    soft: Threshold | None = None
    max_pod_grace_period: float = 0.0
    pressure_transition_period: float = 300.0
    monitoring_period: float = 10.0

    def __post_init__(self) -> None:
        if self.hard is not None and not self.hard.hard:
            raise ValueError("the hard threshold must have no grace period")
        if self.soft is not None and self.soft.hard:
            raise ValueError("grace period must be specified for the soft eviction threshold")
        if self.monitoring_period <= 0:
            raise ValueError("monitoring_period must be positive")

    @property
    def thresholds(self) -> tuple[Threshold, ...]:
        """The configured thresholds, hard first."""
        return tuple(t for t in (self.hard, self.soft) if t is not None)


class ContainerUsage(NamedTuple):
    """One container of a pod as the eviction message reads it: working set and request, bytes."""

    name: str
    usage: int
    request: int


@dataclass(frozen=True)
class PodView:
    """What the eviction manager sees of a running pod at one pass (a snapshot).

    Attributes:
        name: pod name.
        namespace: pod namespace.
        qos_class: QoS class (only admission looks at it; ranking uses usage and request).
        priority: pod priority (``spec.priority``); at or above
            :data:`SYSTEM_CRITICAL_PRIORITY` the pod is critical and not evicted.
        memory_request: the pod's memory request, bytes (sum over containers; 0 for BestEffort).
        memory_usage: the pod's working set, bytes (sum of its containers' in the kubelet's
            stats).
        containers: the regular and init containers, in the stats order, with their working set
            and request.
        termination_grace_period: ``terminationGracePeriodSeconds``, default 30 s.
    """

    name: str
    namespace: str = "default"
    qos_class: QosClass = "BestEffort"
    priority: int = 0
    memory_request: int = 0
    memory_usage: int = 0
    containers: tuple[ContainerUsage, ...] = ()
    termination_grace_period: float = DEFAULT_TERMINATION_GRACE_PERIOD

    @property
    def key(self) -> str:
        """``namespace/name``, as ``klog.KObj`` prints the pod."""
        return f"{self.namespace}/{self.name}"

    @property
    def exceeds_request(self) -> bool:
        """Whether the working set is above the request (``exceedMemoryRequests``).

        A BestEffort pod (request 0) exceeds as soon as it uses any memory.
        """
        return self.memory_usage > self.memory_request

    @property
    def critical(self) -> bool:
        """Whether the kubelet refuses to evict it (``IsCriticalPodBasedOnPriority``)."""
        return self.priority >= SYSTEM_CRITICAL_PRIORITY


def rank_for_eviction(pods: Sequence[PodView]) -> list[PodView]:
    """Pods in the order the kubelet evicts them under memory pressure (``rankMemoryPressure``).

    ``orderedBy(exceedMemoryRequests, priority, memory)``: (1) pods whose working set exceeds
    their request first, (2) then lower priority first, (3) then larger ``usage - request`` first.
    Ties keep the order given. A BestEffort pod ranks ahead of a Burstable one only through these
    keys: at equal priority a Burstable pod far over its request goes before a BestEffort pod using
    less than that overage.
    """
    return sorted(
        pods,
        key=lambda p: (not p.exceeds_request, p.priority, -(p.memory_usage - p.memory_request)),
    )


def eviction_message(resource_threshold: int, available: int, pod: PodView) -> str:
    """The evicted pod's status message (``evictionMessage`` for memory).

    ``"The node was low on resource: memory. Threshold quantity: 100Mi, available: 92Mi. "``
    followed, for every container whose working set exceeds its request (in the pod's container
    order, not only the largest), by ``"Container app was using 1200Mi, request is 1Gi, has larger
    consumption of memory. "``. Quantities as :func:`format_quantity`; the text keeps the
    kubelet's trailing space.
    """
    message = "The node was low on resource: memory. "
    message += (
        f"Threshold quantity: {format_quantity(resource_threshold)}, "
        f"available: {format_quantity(available)}. "
    )
    for container in pod.containers:
        if container.usage > container.request:
            message += (
                f"Container {container.name} was using {format_quantity(container.usage)}, "
                f"request is {format_quantity(container.request)}, "
                "has larger consumption of memory. "
            )
    return message


def eviction_grace_period(threshold: Threshold, pod: PodView, max_pod_grace_period: float) -> float:
    """Seconds the evicted pod gets between SIGTERM and SIGKILL.

    Hard: 1 s (``immediateEvictionGracePeriodSeconds``). Soft: ``min(evictionMaxPodGracePeriod,
    terminationGracePeriodSeconds)`` (``synchronize``), raised to at least 1 s by the pod worker
    (``calculateEffectiveGracePeriod``: "we always supply a grace period of 1"), so the default
    ``evictionMaxPodGracePeriod`` of 0 kills after 1 s. Older kubelets differ: they passed
    ``evictionMaxPodGracePeriod`` alone (issue #64530), and before that hard evictions passed 0.
    """
    if threshold.hard:
        return IMMEDIATE_EVICTION_GRACE_PERIOD
    return max(1.0, min(max_pod_grace_period, pod.termination_grace_period))


def _kobj_slice(pods: Sequence[PodView]) -> str:
    """``klog.KObjSlice`` as klog's text format prints it: ``["ns/a","ns/b"]``."""
    return "[" + ",".join(f'"{p.key}"' for p in pods) + "]"


class ConditionStatus(StrEnum):
    """A node condition's status."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class MemoryPressureCondition:
    """The node's ``MemoryPressure`` condition with the kubelet's transition period.

    ``nodeConditionsLastObservedAt`` / ``nodeConditionsObservedSince``: the condition holds while
    ``now - last pass that saw a threshold met < transition period`` (strict, so a transition
    period of 0 never reports pressure), and ``MemoryPressureCondition`` turns that into a status
    that starts Unknown and whose changes are node events.
    """

    __slots__ = ("last_observed_at", "last_transition_time", "status", "transition_period")

    def __init__(self, transition_period: float) -> None:
        self.transition_period = transition_period
        self.status = ConditionStatus.UNKNOWN
        self.last_observed_at: float | None = None
        self.last_transition_time: float | None = None

    @property
    def reason(self) -> str:
        """The condition's reason (``KubeletHasInsufficientMemory`` when True)."""
        if self.status is ConditionStatus.TRUE:
            return "KubeletHasInsufficientMemory"
        if self.status is ConditionStatus.FALSE:
            return "KubeletHasSufficientMemory"
        return ""

    @property
    def message(self) -> str:
        """The condition's message, as ``kubectl describe node`` shows it."""
        if self.status is ConditionStatus.TRUE:
            return "kubelet has insufficient memory available"
        if self.status is ConditionStatus.FALSE:
            return "kubelet has sufficient memory available"
        return ""

    def update(self, now: float, threshold_met: bool) -> str | None:
        """Record one pass; returns the node event reason when the status changes, else None."""
        if threshold_met:
            self.last_observed_at = now
        pressure = (
            self.last_observed_at is not None
            and now - self.last_observed_at < self.transition_period
        )
        status = ConditionStatus.TRUE if pressure else ConditionStatus.FALSE
        if status is self.status:
            return None
        self.status = status
        self.last_transition_time = now
        return EVENT_INSUFFICIENT_MEMORY if pressure else EVENT_SUFFICIENT_MEMORY


class EvictionManager:
    """The kubelet's eviction manager for memory on one node.

    Args:
        env: the simulation environment (its clock is the only time read).
        node_capacity: the node's memory capacity, bytes (machine capacity, not allocatable).
        working_set: returns the node's working set now, bytes (usage minus inactive file cache).
        pods: returns the active pods now, as snapshots.
        evict: ``evict(pod, message, grace_period)`` terminates a pod: phase Failed, reason
            ``Evicted``, the message as status message, SIGKILL after ``grace_period`` seconds;
            evicted pods are not restarted in place.
        log: ``log(kind, line)``; kind :data:`KIND_LOG` for the kubelet's log lines, otherwise the
            Kubernetes event reason (:data:`EVENT_THRESHOLD_MET`, :data:`EVENT_EVICTED`,
            :data:`EVENT_INSUFFICIENT_MEMORY`, :data:`EVENT_SUFFICIENT_MEMORY`) with the event
            message.
        config: eviction settings; defaults to :class:`EvictionConfig`'s.
        node_name: node name for node events.
        pod_cleaned_up: when given, after an eviction the manager polls it every second (at most
            30 s) and synchronizes again as soon as the pod is gone, as the kubelet does; when
            None the next pass comes one monitoring period later.
    """

    def __init__(
        self,
        env: simpy.Environment,
        node_capacity: int,
        working_set: Callable[[], int],
        pods: Callable[[], Sequence[PodView]],
        evict: Callable[[PodView, str, float], None],
        log: Callable[[str, str], None],
        config: EvictionConfig | None = None,
        *,
        node_name: str = "node",
        pod_cleaned_up: Callable[[PodView], bool] | None = None,
    ) -> None:
        self.env = env
        self.node_capacity = node_capacity
        self.config = config or EvictionConfig()
        self.node_name = node_name
        self.condition = MemoryPressureCondition(self.config.pressure_transition_period)
        self.available: int | None = None
        """``memory.available`` at the last pass, bytes."""
        self.passes = 0
        self.evictions = 0
        self._working_set = working_set
        self._pods = pods
        self._evict = evict
        self._log = log
        self._pod_cleaned_up = pod_cleaned_up
        self._first_observed_at: dict[Threshold, float] = {}

    @property
    def under_memory_pressure(self) -> bool:
        """``IsUnderMemoryPressure``: whether ``MemoryPressure`` is True."""
        return self.condition.status is ConditionStatus.TRUE

    def start(self) -> simpy.Process:
        """Start the monitoring loop; its first pass runs at the current time."""
        return self.env.process(self._run())

    def admit(self, pod: PodView) -> str | None:
        """Admission under pressure (``Admit``): None to admit, else the rejection message.

        Under ``MemoryPressure`` only BestEffort pods are rejected (critical ones are admitted);
        the pod then fails with reason ``Evicted`` and this message.
        """
        if not self.under_memory_pressure or pod.critical or pod.qos_class != "BestEffort":
            return None
        return "The node had condition: [MemoryPressure]. "

    def synchronize(self) -> PodView | None:
        """One pass (``synchronize``): observe, update the condition, evict at most one pod.

        Returns:
            The evicted pod, or None.
        """
        now = self.env.now
        self.passes += 1
        capacity = self.node_capacity
        available = max(0, capacity - self._working_set())
        self.available = available
        met = [t for t in self.config.thresholds if t.met(available, capacity)]
        self._first_observed_at = {t: self._first_observed_at.get(t, now) for t in met}
        event = self.condition.update(now, bool(met))
        if event is not None:
            self._log(event, f"Node {self.node_name} status is now: {event}")
        acting = [t for t in met if now - self._first_observed_at[t] >= t.grace_period]
        if not acting:
            return None
        threshold = acting[0]
        self._log(KIND_LOG, '"Eviction manager: attempting to reclaim" resourceName="memory"')
        self._log(EVENT_THRESHOLD_MET, "Attempting to reclaim memory")
        self._log(
            KIND_LOG, '"Eviction manager: must evict pod(s) to reclaim" resourceName="memory"'
        )
        active = list(self._pods())
        if not active:
            self._log(
                KIND_LOG,
                '"Eviction manager: eviction thresholds have been met, '
                'but no pods are active to evict"',
            )
            return None
        ranked = rank_for_eviction(active)
        self._log(
            KIND_LOG, f'"Eviction manager: pods ranked for eviction" pods={_kobj_slice(ranked)}'
        )
        for pod in ranked:
            if pod.critical:
                self._log(
                    KIND_LOG, f'"Eviction manager: cannot evict a critical pod" pod="{pod.key}"'
                )
                continue
            message = eviction_message(threshold.bytes(capacity), available, pod)
            grace = eviction_grace_period(threshold, pod, self.config.max_pod_grace_period)
            self._log(EVENT_EVICTED, message)
            self._evict(pod, message, grace)
            self.evictions += 1
            self._log(KIND_LOG, f'"Eviction manager: pod is evicted successfully" pod="{pod.key}"')
            return pod
        self._log(KIND_LOG, '"Eviction manager: unable to evict any pods from the node"')
        return None

    def _run(self) -> Generator[simpy.Event, Any, None]:
        try:
            while True:
                evicted = self.synchronize()
                if evicted is None:
                    yield self.env.timeout(self.config.monitoring_period)
                    continue
                self._log(
                    KIND_LOG,
                    '"Eviction manager: pods evicted, waiting for pod to be cleaned up" '
                    f"pods={_kobj_slice([evicted])}",
                )
                if self._pod_cleaned_up is None:
                    yield self.env.timeout(self.config.monitoring_period)
                else:
                    yield from self._wait_for_cleanup(evicted)
        except simpy.Interrupt:
            return

    def _wait_for_cleanup(self, pod: PodView) -> Generator[simpy.Event, Any, None]:
        """``waitForPodsCleanup``: poll every second; give up after 30 s."""
        assert self._pod_cleaned_up is not None
        polls = int(POD_CLEANUP_TIMEOUT / POD_CLEANUP_POLL_FREQ)
        pods = _kobj_slice([pod])
        for poll in range(1, polls + 1):
            yield self.env.timeout(POD_CLEANUP_POLL_FREQ)
            # The timer and the ticker fire together at 30 s; the timeout is taken.
            if poll == polls:
                break
            if self._pod_cleaned_up(pod):
                self._log(KIND_LOG, f'"Eviction manager: pods successfully cleaned up" pods={pods}')
                return
        self._log(
            KIND_LOG, f'"Eviction manager: timed out waiting for pods to be cleaned up" pods={pods}'
        )
