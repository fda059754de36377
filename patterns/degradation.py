"""Graceful degradation: fallbacks, optional calls, brownout.

Sources: C. Klein, M. Maggio, K.-E. Årzén, F. Hernández-Rodriguez, "Brownout: building more
robust cloud applications" (ICSE 2014) -- optional content served with a probability (the
*dimmer*) that a controller lowers when response time exceeds its set point; resilience4j
``Decorators.withFallback`` (a failed call answered by a fallback); Netflix Hystrix's
``getFallback`` (the same idea, where "graceful degradation" got its name in this field).

What the simulator does with them:

* **Fallback** (a call's ``fallback``): a call that fails is answered by a cached or default
  response; the caller sees ``degraded`` instead of the failure (the policy chain in
  :mod:`sim.service`).
* **Optional call** (a call's ``optional``): its failure does not fail the request, which is
  served ``degraded``. When the call's circuit breaker is open it is refused at once
  (``circuit_open``), so the request skips it without waiting.
* **Brownout** (:class:`Brownout`, a service's ``brownout``): while the service is under
  pressure its instances make none of their optional calls; the requests are served
  ``degraded``, and the capacity the optional work used goes to the mandatory work.

Simplification: Klein et al. adjust a dimmer (the share of requests that get optional content)
with a PI-like controller on the 95th-percentile latency. Here the dimmer is 0 or 1 and a
threshold rule with hysteresis moves it, on p99 latency and on memory: the reference for this
simulator's users is the "shed optional features under load" switch that production systems
expose (feature flags, load-shedding tiers), which behaves as a threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_RECOVER = 0.8
"""Come back below 0.8 x each threshold: a 20 % hysteresis band (this model's choice)."""
DEFAULT_PERIOD = 1.0
"""Read the signals every second (the recorder's default bin)."""


@dataclass(frozen=True)
class BrownoutConfig:
    """When a service browns out and comes back.

    Attributes:
        latency_p99: brown out when the p99 of the last period exceeds this (s); None: not used.
        memory: brown out when memory use (a share of the limit) exceeds this; None: not used.
        recover: come back when every signal in use is below ``recover`` x its threshold
            (0.8: a 20 % hysteresis band, this model's choice -- no standard exists).
        period: how often the signals are read (s); 1 s, the recorder's default bin.
    """

    latency_p99: float | None = None
    memory: float | None = None
    recover: float = DEFAULT_RECOVER
    period: float = DEFAULT_PERIOD

    def __post_init__(self) -> None:
        """Reject a brownout that could never trigger, or never recover."""
        if self.latency_p99 is None and self.memory is None:
            raise ValueError("a brownout needs latency_p99 or memory (or both)")
        if not 0 < self.recover <= 1:
            raise ValueError("recover must be in (0, 1]")
        if self.period <= 0:
            raise ValueError("period must be positive")


class Brownout:
    """The brownout switch of one service: :meth:`update` with the signals every period.

    Attributes:
        active: whether optional calls are being skipped now.
        reason: why it is active (or why it last was), e.g. ``p99 1.2s > 1s``.
        activations: how many times it has switched on.
    """

    __slots__ = ("activations", "active", "config", "reason")

    def __init__(self, config: BrownoutConfig) -> None:
        self.config = config
        self.active = False
        self.reason = ""
        self.activations = 0

    def update(self, p99: float, memory: float) -> bool:
        """Take the last period's p99 latency (NaN: nothing served) and memory share.

        Returns whether the switch changed.
        """
        c = self.config
        if not self.active:
            reasons = []
            if c.latency_p99 is not None and not math.isnan(p99) and p99 > c.latency_p99:
                reasons.append(f"p99 {p99:.3g}s > {c.latency_p99:g}s")
            if c.memory is not None and memory > c.memory:
                reasons.append(f"memory {memory:.0%} > {c.memory:.0%}")
            if reasons:
                self.active = True
                self.activations += 1
                self.reason = ", ".join(reasons)
                return True
            return False
        latency_ok = c.latency_p99 is None or math.isnan(p99) or p99 < c.recover * c.latency_p99
        memory_ok = c.memory is None or memory < c.recover * c.memory
        if latency_ok and memory_ok:
            self.active = False
            return True
        return False
