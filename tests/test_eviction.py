"""Kubelet node-pressure eviction for memory (reference semantics §3.5; §12 V14)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import simpy

from patterns.eviction import (
    EVENT_EVICTED,
    EVENT_INSUFFICIENT_MEMORY,
    EVENT_SUFFICIENT_MEMORY,
    EVENT_THRESHOLD_MET,
    KIND_LOG,
    ConditionStatus,
    ContainerUsage,
    EvictionConfig,
    EvictionManager,
    MemoryPressureCondition,
    PodView,
    Threshold,
    eviction_grace_period,
    eviction_message,
    format_quantity,
    parse_quantity,
    rank_for_eviction,
)

Ki, Mi, Gi = 1024, 1024**2, 1024**3
NODE_EVENTS = (EVENT_INSUFFICIENT_MEMORY, EVENT_SUFFICIENT_MEMORY)


def pod(
    name: str,
    usage: int,
    request: int = 0,
    priority: int = 0,
    qos: str = "",
    grace: float = 30.0,
) -> PodView:
    """A one-container pod (container ``app``) with the given working set and request."""
    qos_class = qos or ("BestEffort" if request == 0 else "Burstable")
    return PodView(
        name=name,
        qos_class=qos_class,  # type: ignore[arg-type]
        priority=priority,
        memory_request=request,
        memory_usage=usage,
        containers=(ContainerUsage("app", usage, request),),
        termination_grace_period=grace,
    )


class FakeNode:
    """A node for the manager: evicting a pod removes it at once and frees its working set.

    Its working set is ``system()`` plus the working set of the pods still on it.
    """

    def __init__(self, env: simpy.Environment, capacity: int, pods: list[PodView]) -> None:
        self.env = env
        self.capacity = capacity
        self.pods = list(pods)
        self.system: Callable[[], int] = lambda: 0
        self.evicted: list[tuple[float, str, float]] = []
        self.messages: dict[str, str] = {}
        self.log: list[tuple[float, str, str]] = []

    def leave_available(self, available: Callable[[float], int]) -> None:
        """Script the signal: whatever the pods use, ``available(now)`` bytes stay free."""
        self.system = lambda: (
            self.capacity - available(self.env.now) - sum(p.memory_usage for p in self.pods)
        )

    def working_set(self) -> int:
        """The node's working set now, bytes."""
        return self.system() + sum(p.memory_usage for p in self.pods)

    def evict(self, victim: PodView, message: str, grace_period: float) -> None:
        """The ``evict`` callback: the pod is gone at once."""
        self.pods.remove(victim)
        self.evicted.append((self.env.now, victim.name, grace_period))
        self.messages[victim.name] = message

    def record(self, kind: str, line: str) -> None:
        """The ``log`` callback."""
        self.log.append((self.env.now, kind, line))

    def node_events(self) -> list[tuple[float, str]]:
        """``(time, reason)`` of the MemoryPressure node events."""
        return [(t, kind) for t, kind, _ in self.log if kind in NODE_EVENTS]

    def manager(self, config: EvictionConfig | None = None, **kwargs: object) -> EvictionManager:
        """An eviction manager wired to this node."""
        return EvictionManager(
            self.env,
            self.capacity,
            self.working_set,
            lambda: self.pods,
            self.evict,
            self.record,
            config,
            **kwargs,  # type: ignore[arg-type]
        )


# --------------------------------------------------------------------------- V14

BE_BIG = pod("be-big", 300 * Mi)
BE_SMALL = pod("be-small", 200 * Mi)
BURST_LOW = pod("burst-low", 356 * Mi, request=256 * Mi)  # 100 Mi over, priority 0
BURST_HIGH = pod("burst-high", 506 * Mi, request=256 * Mi, priority=1000)  # 250 Mi over
BURST_UNDER = pod("burst-under", 300 * Mi, request=512 * Mi)
GUARANTEED = pod("guaranteed", 512 * Mi, request=512 * Mi, qos="Guaranteed")
V14_PODS = [GUARANTEED, BURST_HIGH, BURST_UNDER, BE_SMALL, BURST_LOW, BE_BIG]


def test_v14_one_pod_per_10s_pass_besteffort_first_then_burstable_by_priority():
    """V14: 8 Gi node left with 90 Mi (< 100 Mi) for 35 s -> one eviction per pass, in rank order.

    The BestEffort pods go first (their whole usage is over a zero request), then the Burstable
    pods over their request, lower priority first; pods within their request stay.
    """
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, V14_PODS)
    node.leave_available(lambda now: 90 * Mi if now < 35 else 2 * Gi)
    node.manager().start()
    env.run(until=400)
    assert node.evicted == [
        (0, "be-big", 1.0),
        (10, "be-small", 1.0),
        (20, "burst-low", 1.0),
        (30, "burst-high", 1.0),
    ]
    assert [p.name for p in node.pods] == ["guaranteed", "burst-under"]
    assert node.messages["be-big"] == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 90Mi. "
        "Container app was using 300Mi, request is 0, has larger consumption of memory. "
    )
    assert node.messages["burst-high"].startswith("The node was low on resource: memory. ")
    assert "Container app was using 506Mi, request is 256Mi," in node.messages["burst-high"]


def test_v14_memory_pressure_stays_true_for_5_minutes_after_recovery():
    """V14: last pass below the threshold at 30 s -> MemoryPressure False at 330 s, not before."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, V14_PODS)
    node.leave_available(lambda now: 90 * Mi if now < 35 else 2 * Gi)
    manager = node.manager()
    manager.start()
    env.run(until=330)  # the pass at 330 has not run yet
    assert manager.under_memory_pressure
    env.run(until=331)
    assert not manager.under_memory_pressure
    assert node.node_events() == [(0, EVENT_INSUFFICIENT_MEMORY), (330, EVENT_SUFFICIENT_MEMORY)]
    assert manager.condition.reason == "KubeletHasSufficientMemory"
    assert manager.condition.last_transition_time == 330


def test_eviction_that_frees_enough_memory_stops_after_one_pod():
    """The top-ranked pod's working set is freed: 90 + 300 Mi available, no second eviction."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, V14_PODS)
    in_pods = sum(p.memory_usage for p in V14_PODS)
    node.system = lambda: 8 * Gi - 90 * Mi - in_pods
    manager = node.manager()
    manager.start()
    env.run(until=310)
    assert node.evicted == [(0, "be-big", 1.0)]
    assert manager.available == 390 * Mi
    assert node.node_events() == [(0, EVENT_INSUFFICIENT_MEMORY), (300, EVENT_SUFFICIENT_MEMORY)]


def test_exactly_100mi_available_does_not_meet_the_threshold():
    """``memory.available<100Mi`` is strict: 100 Mi available is no pressure, 1 byte less is."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG])
    node.leave_available(lambda now: 100 * Mi if now < 25 else 100 * Mi - 1)
    manager = node.manager()
    manager.start()
    env.run(until=25)
    assert node.evicted == []
    assert manager.condition.status is ConditionStatus.FALSE
    assert node.node_events() == [(0, EVENT_SUFFICIENT_MEMORY)]
    env.run(until=35)
    assert node.evicted == [(30, "be-big", 1.0)]
    assert node.messages["be-big"].startswith(
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 104857599. "
    )


def test_pass_logs_the_kubelet_lines_and_events_in_order():
    """One evicting pass: the kubelet's klog lines and events, in ``synchronize``'s order."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BURST_LOW, BE_BIG])
    node.leave_available(lambda now: 90 * Mi)
    node.manager(node_name="node-a").start()
    env.run(until=1)
    assert [(kind, line) for _, kind, line in node.log] == [
        (EVENT_INSUFFICIENT_MEMORY, "Node node-a status is now: NodeHasInsufficientMemory"),
        (KIND_LOG, '"Eviction manager: attempting to reclaim" resourceName="memory"'),
        (EVENT_THRESHOLD_MET, "Attempting to reclaim memory"),
        (KIND_LOG, '"Eviction manager: must evict pod(s) to reclaim" resourceName="memory"'),
        (
            KIND_LOG,
            '"Eviction manager: pods ranked for eviction" '
            'pods=["default/be-big","default/burst-low"]',
        ),
        (EVENT_EVICTED, node.messages["be-big"]),
        (KIND_LOG, '"Eviction manager: pod is evicted successfully" pod="default/be-big"'),
        (
            KIND_LOG,
            '"Eviction manager: pods evicted, waiting for pod to be cleaned up" '
            'pods=["default/be-big"]',
        ),
    ]


def test_critical_pod_is_skipped_and_the_next_one_evicted():
    """A pod at system-critical priority is never evicted; the next in rank is."""
    env = simpy.Environment()
    critical = pod("kube-proxy", 900 * Mi, priority=2_000_001_000)
    node = FakeNode(env, 8 * Gi, [critical, BE_SMALL])
    node.leave_available(lambda now: 90 * Mi)
    node.manager().start()
    env.run(until=1)
    assert node.evicted == [(0, "be-small", 1.0)]
    # By rank the critical pod is last (higher priority), so it is never even reached here.
    only_critical = FakeNode(simpy.Environment(), 8 * Gi, [critical])
    only_critical.leave_available(lambda now: 90 * Mi)
    only_critical.manager().synchronize()
    assert only_critical.evicted == []
    assert [line for _, kind, line in only_critical.log if kind == KIND_LOG][-2:] == [
        '"Eviction manager: cannot evict a critical pod" pod="default/kube-proxy"',
        '"Eviction manager: unable to evict any pods from the node"',
    ]


def test_no_active_pods_logs_an_error_and_evicts_nothing():
    """Thresholds met with no pods: the kubelet's error line, pressure still reported."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [])
    node.leave_available(lambda now: 10 * Mi)
    manager = node.manager()
    assert manager.synchronize() is None
    assert node.log[-1][2] == (
        '"Eviction manager: eviction thresholds have been met, but no pods are active to evict"'
    )
    assert manager.under_memory_pressure


def test_percentage_threshold_is_a_float32_fraction_of_capacity():
    """``memory.available<10%`` on 8 Gi: float32(0.1) * 8 Gi truncates to 858993472 bytes."""
    threshold = Threshold.parse("10%")
    assert threshold.bytes(8 * Gi) == 858_993_472
    assert not threshold.met(858_993_472, 8 * Gi)
    assert threshold.met(858_993_471, 8 * Gi)
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG])
    node.leave_available(lambda now: 800 * Mi)
    node.manager(EvictionConfig(hard=threshold)).synchronize()
    assert node.messages["be-big"].startswith(
        "The node was low on resource: memory. Threshold quantity: 858993472, available: 800Mi. "
    )


def test_interrupt_stops_the_loop():
    """The manager dies with its kubelet: an interrupt ends the process quietly."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG])
    manager = node.manager()
    process = manager.start()
    env.run(until=15)
    process.interrupt()
    env.run(until=100)
    assert manager.passes == 2
    assert not process.is_alive


# --------------------------------------------------------------------------- cleanup wait


def test_with_cleanup_callback_next_pass_follows_the_cleanup_not_the_period():
    """``waitForPodsCleanup``: polled every 1 s; once gone, the next pass runs at once."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG, BE_SMALL, BURST_LOW])
    node.leave_available(lambda now: 90 * Mi)

    def cleaned_up(victim: PodView) -> bool:
        evicted_at = next(t for t, name, _ in node.evicted if name == victim.name)
        return env.now >= evicted_at + 2  # the poll at +1 s finds it still terminating

    node.manager(pod_cleaned_up=cleaned_up).start()
    env.run(until=5)
    assert node.evicted == [(0, "be-big", 1.0), (2, "be-small", 1.0), (4, "burst-low", 1.0)]
    assert (
        2,
        KIND_LOG,
        '"Eviction manager: pods successfully cleaned up" pods=["default/be-big"]',
    ) in node.log


def test_cleanup_wait_times_out_after_30s():
    """A pod that never goes away holds the loop for 30 s, then the manager moves on."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG, BE_SMALL])
    node.leave_available(lambda now: 90 * Mi)
    node.manager(pod_cleaned_up=lambda victim: False).start()
    env.run(until=31)
    assert node.evicted == [(0, "be-big", 1.0), (30, "be-small", 1.0)]
    assert (
        30,
        KIND_LOG,
        '"Eviction manager: timed out waiting for pods to be cleaned up" pods=["default/be-big"]',
    ) in node.log


# --------------------------------------------------------------------------- soft threshold


def soft_config(**kwargs: float) -> EvictionConfig:
    """Hard 100 Mi plus a soft 500 Mi threshold with a 30 s grace period."""
    return EvictionConfig(soft=Threshold.parse("500Mi", grace_period=30.0), **kwargs)  # type: ignore[arg-type]


def test_soft_threshold_evicts_only_after_its_grace_period():
    """Below 500 Mi from 0 s: pressure at once, first eviction at the 30 s pass, not before."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG, BE_SMALL])
    node.leave_available(lambda now: 400 * Mi)
    node.manager(soft_config()).start()
    env.run(until=35)
    assert node.node_events() == [(0, EVENT_INSUFFICIENT_MEMORY)]
    assert node.evicted == [(30, "be-big", 1.0)]
    assert node.messages["be-big"].startswith(
        "The node was low on resource: memory. Threshold quantity: 500Mi, available: 400Mi. "
    )


def test_soft_threshold_grace_restarts_when_the_signal_recovers():
    """A pass above the soft threshold (at 20 s) forgets the first observation: evict at 60 s."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG])
    node.leave_available(lambda now: 600 * Mi if 15 < now < 25 else 400 * Mi)
    node.manager(soft_config()).start()
    env.run(until=65)
    assert node.evicted == [(60, "be-big", 1.0)]


def test_soft_eviction_grace_is_min_of_max_pod_grace_and_pod_grace():
    """Soft: min(evictionMaxPodGracePeriod, terminationGracePeriodSeconds), at least 1 s."""
    env = simpy.Environment()
    short = pod("short", 300 * Mi, grace=30.0)
    node = FakeNode(env, 8 * Gi, [short])
    node.leave_available(lambda now: 400 * Mi)
    node.manager(soft_config(max_pod_grace_period=60.0)).start()
    env.run(until=31)
    assert node.evicted == [(30, "short", 30.0)]
    soft = Threshold(quantity=500 * Mi, grace_period=30.0)
    long = pod("long", 300 * Mi, grace=120.0)
    assert eviction_grace_period(soft, long, 60.0) == 60.0
    assert eviction_grace_period(soft, long, 0.0) == 1.0  # default max 0 -> pod worker's 1 s
    assert eviction_grace_period(soft, pod("zero", 1, grace=0.0), 60.0) == 1.0


def test_hard_threshold_wins_when_both_act():
    """Below both thresholds: the hard one drives the pass (1 s grace, 100Mi in the message)."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [BE_BIG, BE_SMALL])
    node.leave_available(lambda now: 50 * Mi)
    node.manager(soft_config(max_pod_grace_period=60.0)).start()
    env.run(until=35)
    assert node.evicted == [(0, "be-big", 1.0), (10, "be-small", 1.0)]
    assert "Threshold quantity: 100Mi, available: 50Mi. " in node.messages["be-small"]


# --------------------------------------------------------------------------- ranking


def names(pods: list[PodView]) -> list[str]:
    return [p.name for p in pods]


def test_pods_over_request_rank_before_pods_within_request_whatever_their_priority():
    """Rule (1): exceeding the request comes before priority."""
    within = pod("within", 100 * Mi, request=200 * Mi, priority=-10)
    over = pod("over", 201 * Mi, request=200 * Mi, priority=1000)
    assert names(rank_for_eviction([within, over])) == ["over", "within"]


def test_lower_priority_ranks_first_among_pods_over_request():
    """Rule (2): among pods over their request, lower priority first, whatever the overage."""
    big_high = pod("big-high", 2 * Gi, priority=100)
    small_low = pod("small-low", 10 * Mi, priority=0)
    assert names(rank_for_eviction([big_high, small_low])) == ["small-low", "big-high"]


def test_larger_overage_ranks_first_at_equal_priority():
    """Rule (3): larger ``usage - request`` first, also among pods within their request."""
    over_a = pod("over-a", 300 * Mi, request=100 * Mi)  # +200 Mi
    over_b = pod("over-b", 500 * Mi, request=100 * Mi)  # +400 Mi
    under_a = pod("under-a", 100 * Mi, request=300 * Mi)  # -200 Mi
    under_b = pod("under-b", 250 * Mi, request=300 * Mi)  # -50 Mi
    ranked = rank_for_eviction([under_a, over_a, under_b, over_b])
    assert names(ranked) == ["over-b", "over-a", "under-b", "under-a"]


def test_burstable_far_over_request_outranks_a_small_besteffort_at_equal_priority():
    """BestEffort is not a rank of its own: usage 50 Mi loses to a Burstable 400 Mi over."""
    besteffort = pod("besteffort", 50 * Mi)
    burstable = pod("burstable", 656 * Mi, request=256 * Mi)
    assert names(rank_for_eviction([besteffort, burstable])) == ["burstable", "besteffort"]


def test_idle_besteffort_pod_does_not_exceed_its_request():
    """``usage > request`` is strict: a BestEffort pod using nothing is not "over"."""
    idle = pod("idle", 0)
    within = pod("within", 100 * Mi, request=200 * Mi, priority=5)
    assert not idle.exceeds_request
    assert names(rank_for_eviction([within, idle])) == ["idle", "within"]


def test_ties_keep_the_given_order():
    """Equal on every key: the caller's order is kept (Go's sort.Sort would not promise it)."""
    pods = [pod(f"p{i}", 100 * Mi) for i in range(5)]
    assert names(rank_for_eviction(pods)) == ["p0", "p1", "p2", "p3", "p4"]
    assert names(rank_for_eviction(pods[::-1])) == ["p4", "p3", "p2", "p1", "p0"]


# --------------------------------------------------------------------------- message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (1, "1"),
        (512, "512"),
        (1000, "1k"),  # below 1024 bytes BinarySI falls back to DecimalSI
        (1023, "1023"),
        (1024, "1Ki"),
        (1_228_800, "1200Ki"),
        (1_234_567, "1234567"),
        (94_371_840, "90Mi"),
        (96_468_992, "92Mi"),
        (100 * Mi, "100Mi"),
        (1 * Gi + 1, "1073741825"),
        (8 * Gi, "8Gi"),
        (24_672_280_576, "24094024Ki"),
        (-2 * Mi, "-2Mi"),
        (3 * 1024**6, "3Ei"),
        (1024**7, "1024Ei"),
    ],
)
def test_quantities_print_like_resource_quantity(value: int, text: str):
    """``resource.NewQuantity(v, BinarySI).String()``: largest exact binary suffix, else bytes."""
    assert format_quantity(value) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100Mi", 100 * Mi),
        ("1.5Gi", 1536 * Mi),
        ("500M", 500_000_000),
        ("1k", 1000),
        ("7", 7),
        ("1e3", 1000),
        ("0.5", 1),
    ],
)
def test_parse_quantity(text: str, value: int):
    """Threshold strings as written in the kubelet config."""
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Mi", "100MB", "1/2", "ten", "1e"])
def test_parse_quantity_rejects_what_it_does_not_know(text: str):
    """Unknown suffixes and forms are errors, not silent zeros."""
    with pytest.raises(ValueError, match="byte quantity"):
        parse_quantity(text)


def test_message_names_every_container_over_its_request_in_pod_order():
    """``evictionMessage`` lists each container whose usage exceeds its request, not just one."""
    victim = PodView(
        name="web",
        qos_class="Burstable",
        memory_request=768 * Mi,
        memory_usage=1536 * Mi,
        containers=(
            ContainerUsage("sidecar", 200 * Mi, 128 * Mi),
            ContainerUsage("idle", 100 * Mi, 128 * Mi),
            ContainerUsage("app", 1236 * Mi, 512 * Mi),
        ),
    )
    assert eviction_message(100 * Mi, 92 * Mi, victim) == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92Mi. "
        "Container sidecar was using 200Mi, request is 128Mi, has larger consumption of memory. "
        "Container app was using 1236Mi, request is 512Mi, has larger consumption of memory. "
    )


def test_message_with_no_container_over_request_has_only_the_node_part():
    """A pod evicted while within its requests (e.g. all pods are) gets just the node sentence."""
    victim = pod("guaranteed", 512 * Mi, request=512 * Mi, qos="Guaranteed")
    assert eviction_message(100 * Mi, 0, victim) == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 0. "
    )


# --------------------------------------------------------------------------- condition, config


def test_condition_starts_unknown_and_first_pass_without_pressure_reports_sufficient():
    """``MemoryPressureCondition``: a new condition goes Unknown -> False with an event."""
    condition = MemoryPressureCondition(300.0)
    assert condition.status is ConditionStatus.UNKNOWN
    assert condition.update(0.0, threshold_met=False) == EVENT_SUFFICIENT_MEMORY
    assert condition.update(10.0, threshold_met=False) is None
    assert condition.update(20.0, threshold_met=True) == EVENT_INSUFFICIENT_MEMORY
    assert condition.message == "kubelet has insufficient memory available"
    assert condition.update(319.0, threshold_met=False) is None
    assert condition.update(320.0, threshold_met=False) == EVENT_SUFFICIENT_MEMORY


def test_admission_rejects_besteffort_pods_under_memory_pressure():
    """``Admit``: under MemoryPressure only BestEffort pods are refused (critical ones pass)."""
    env = simpy.Environment()
    node = FakeNode(env, 8 * Gi, [])
    node.leave_available(lambda now: 90 * Mi if now < 5 else 4 * Gi)
    manager = node.manager()
    besteffort = pod("new", 0)
    assert manager.admit(besteffort) is None  # before any pass: no condition
    manager.synchronize()
    assert manager.admit(besteffort) == "The node had condition: [MemoryPressure]. "
    assert manager.admit(pod("burstable", 0, request=Mi)) is None
    assert manager.admit(pod("critical", 0, priority=2_000_000_000)) is None


def test_config_defaults_come_from_the_kubelet():
    """memory.available<100Mi hard, no soft, max pod grace 0, transition 5 min, period 10 s."""
    config = EvictionConfig()
    assert config.hard == Threshold(quantity=100 * Mi)
    assert config.soft is None
    assert config.max_pod_grace_period == 0.0
    assert config.pressure_transition_period == 300.0
    assert config.monitoring_period == 10.0
    assert config.thresholds == (Threshold(quantity=100 * Mi),)


def test_config_rejects_inconsistent_thresholds():
    """A hard threshold has no grace period, a soft one must have one; one value per threshold."""
    with pytest.raises(ValueError, match="no grace period"):
        EvictionConfig(hard=Threshold(quantity=Mi, grace_period=10.0))
    with pytest.raises(ValueError, match="grace period must be specified"):
        EvictionConfig(soft=Threshold(quantity=Mi))
    with pytest.raises(ValueError, match="exactly one"):
        Threshold(quantity=Mi, percentage=0.1)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Threshold.parse("150%")
