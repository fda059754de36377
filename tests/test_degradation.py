"""Load-balancer outlier detection (Envoy) and brownout, wired into a running world.

Tiny worlds with deterministic service times; requests are sent by hand at chosen instants (as
in ``test_call_policies``), so every pick, ejection and switch time is exact.
"""

from __future__ import annotations

from typing import Any

import pytest
import simpy
from test_admission import send

from patterns.circuit_breaker import OutlierDetectionConfig, OutlierDetector
from patterns.degradation import Brownout, BrownoutConfig
from sim.request import Outcome
from sim.scenario import Scenario
from sim.service import PANIC_THRESHOLD, LoadBalancer
from sim.world import World


class Replica:
    """What the load balancer reads of an instance: its name, replica index, hops inside."""

    def __init__(self, index: int) -> None:
        self.name = f"cart-{index}"
        self.index = index
        self.active: dict[Any, None] = {}


def balancer(replicas: int, **config: Any) -> tuple[LoadBalancer, list[Replica], OutlierDetector]:
    env = simpy.Environment()
    detector = OutlierDetector(env, OutlierDetectionConfig(**config))
    lb = LoadBalancer("round_robin", lambda: 0.0, detector)
    instances = [Replica(i) for i in range(replicas)]
    for instance in instances:
        lb.add(instance)  # type: ignore[arg-type]
    return lb, instances, detector


# --------------------------------------------------------------------------- outlier detection


def test_five_consecutive_5xx_eject_the_instance_from_rotation():
    """Envoy's default: the 5th consecutive 5xx ejects; round robin then skips the instance."""
    lb, (_, b, _), detector = balancer(3, max_ejection_percent=50)
    for _ in range(4):
        lb.observe(b, Outcome.ERROR)  # type: ignore[arg-type]
    assert [lb.pick().name for _ in range(3)] == ["cart-0", "cart-1", "cart-2"]  # type: ignore[union-attr]
    lb.observe(b, Outcome.SHED)  # type: ignore[arg-type]
    assert detector.is_ejected("cart-1")
    # round robin goes on over the two left (its position carries over: 3 picks so far)
    assert [lb.pick().name for _ in range(4)] == ["cart-2", "cart-0", "cart-2", "cart-0"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("outcome", "counts"),
    [
        (Outcome.ERROR, True),
        (Outcome.RESET, True),
        (Outcome.SHED, True),
        (Outcome.DEPENDENCY, True),
        (Outcome.DEADLINE_EXCEEDED, True),
        (Outcome.RATE_LIMITED, False),  # a 429
        (Outcome.DEGRADED, False),
    ],
)
def test_what_counts_as_a_5xx(outcome: Outcome, counts: bool):
    """Failures a server answers with 5xx count; a 429 and a degraded answer do not."""
    lb, (a, _), detector = balancer(2, max_ejection_percent=100)
    for _ in range(5):
        lb.observe(a, outcome)  # type: ignore[arg-type]
    assert detector.is_ejected("cart-0") is counts


def test_a_success_resets_the_run_of_5xx():
    lb, (a, _), detector = balancer(2, max_ejection_percent=100)
    for outcome in [Outcome.ERROR] * 4 + [Outcome.OK] + [Outcome.ERROR] * 4:
        lb.observe(a, outcome)  # type: ignore[arg-type]
    assert not detector.is_ejected("cart-0")


def test_panic_mode_uses_every_instance_below_half_healthy():
    """Envoy's healthy_panic_threshold (50 %): with 1 of 3 healthy, all three take traffic."""
    assert PANIC_THRESHOLD == 50.0
    lb, (a, b, _), detector = balancer(3, max_ejection_percent=100)
    for instance in (a, b):
        for _ in range(5):
            lb.observe(instance, Outcome.ERROR)  # type: ignore[arg-type]
    assert detector.ejections_active == 2
    assert [lb.pick().name for _ in range(3)] == ["cart-0", "cart-1", "cart-2"]  # type: ignore[union-attr]


def three_carts(extra: dict[str, Any], faults: list[dict[str, Any]], duration: float) -> World:
    """``api`` calls ``cart`` (3 replicas, round robin); every cart hop fails during the fault."""
    return World(
        Scenario.model_validate(
            {
                "name": "outliers",
                "duration": duration,
                "hosts": [{"name": "node-a", "memory": "8Gi"}],
                "services": {
                    "api": {
                        "workers": 10,
                        "service_time": {"dist": "deterministic", "value": "10ms"},
                        "calls": [{"to": "cart", "optional": True}],
                    },
                    "cart": {
                        "replicas": 3,
                        "workers": 10,
                        "service_time": {"dist": "deterministic", "value": "10ms"},
                        **extra,
                    },
                },
                "workload": {"entry": "api", "rate": {"profile": "constant", "rate": 0}},
                "faults": faults,
                "recording": {"bin": 1.0},
            }
        )
    )


def test_outlier_detection_in_a_world_ejects_one_of_three_then_brings_it_back():
    """Envoy's defaults in a world: one of three ejected, back at the first sweep after 30 s.

    Every cart hop fails from t=0: cart-0 collects 5 consecutive 5xx first (round robin, one
    request every 0.1 s: its 5th failure is request 12, served 1.21-1.22) and is ejected; 10 %
    max ejection keeps the other two in. The sweep at 40 s (30 s served, interval 10 s) brings
    it back, logged as Envoy's outlier event lines; the gauge shows one ejection meanwhile.
    """
    world = three_carts(
        {"outlier_detection": {}},
        [{"kind": "error_rate", "target": "cart", "rate": 1.0, "at": 0, "duration": 2.0}],
        duration=45.0,
    )
    send(world, [0.1 * i for i in range(20)])
    result = world.run()
    rows = result.events[result.events.kind == "outlier_detection"]
    assert [(round(t, 6), d) for t, d in zip(rows.t, rows.detail, strict=True)] == [
        (1.22, "outlier_detection: eject host cart-0 (CONSECUTIVE_5XX) for 30s, num_ejections 1"),
        (40.0, "outlier_detection: uneject host cart-0"),
    ]
    ts = result.timeseries
    gauge = ts[(ts.entity == "cart") & (ts.metric == "outlier_ejections_active")]
    values = dict(zip(gauge.t.round(6), gauge.value, strict=True))
    assert (values[0.0], values[2.0], values[39.0], values[41.0]) == (0, 1, 1, 0)


# --------------------------------------------------------------------------- brownout


def test_brownout_switches_with_hysteresis():
    """On above the threshold, off only below ``recover`` x the threshold."""
    brownout = Brownout(BrownoutConfig(latency_p99=1.0, recover=0.8))
    assert brownout.update(1.2, 0.0) is True
    assert (brownout.active, brownout.reason) == (True, "p99 1.2s > 1s")
    assert brownout.update(0.9, 0.0) is False  # below the threshold, above 0.8 s: stays on
    assert brownout.update(0.79, 0.0) is True
    assert brownout.active is False
    memory = Brownout(BrownoutConfig(memory=0.9))
    assert memory.update(float("nan"), 0.95)
    assert memory.reason == "memory 95% > 90%"
    assert memory.activations == 1


def test_a_brownout_needs_a_threshold():
    with pytest.raises(ValueError, match="needs latency_p99 or memory"):
        BrownoutConfig()


def test_brownout_in_a_world_skips_the_optional_call_while_latency_is_high():
    """A brownout skips the optional call while p99 is high, and flaps while the cause lasts.

    Cart is 200 ms slower until 2.5 s; api browns out on a p99 over 100 ms (checked every
    second): off at 1 s (p99 of 0.22 s, shown as its histogram bucket, 0.211 s), back on at
    2 s (the skipping requests took 10 ms), off again at 3 s (cart was still slow in 2-2.5 s),
    on for good at 4 s.
    """
    world = World(
        three_carts({}, [], duration=6.0).scenario.with_overrides(
            {
                "services.api.brownout": {"latency_p99": "100ms", "period": "1s"},
                "faults": [
                    {"kind": "latency", "target": "cart", "add": "200ms", "at": 0, "duration": 2.5}
                ],
            }
        )
    )
    log = send(world, [0.25 * i for i in range(24)])
    result = world.run()
    rows = result.events[result.events.kind == "brownout"]
    off = "Brownout 'api': optional calls off (p99 0.211s > 0.1s)"
    on = "Brownout 'api': optional calls back on"
    assert [(round(t, 6), d) for t, d in zip(rows.t, rows.detail, strict=True)] == [
        (1.0, off),
        (2.0, on),
        (3.0, off),
        (4.0, on),
    ]
    outcomes = [outcome for _, outcome, _ in sorted(log)]
    assert outcomes == ["ok"] * 4 + ["degraded"] * 4 + ["ok"] * 4 + ["degraded"] * 4 + ["ok"] * 8
    ends = {rid: round(end - 0.25 * rid, 6) for rid, _, end in log}
    assert (ends[0], ends[4], ends[16]) == (0.22, 0.01, 0.02)  # slow cart, skipped, fast cart
    ts = result.timeseries
    skipped = ts[(ts.entity == "api") & (ts.metric == "optional_skipped")].sort_values("t")
    assert list(skipped.value) == [0, 4, 0, 4, 0, 0]
