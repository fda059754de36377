"""Allocations as processes see them: stalls, waits for memory, leaks and hogs.

:meth:`sim.kernel.Process.charge` answers at once with the seconds the allocating task stalls
(reclaim, ``memory.high`` throttling), or ``inf`` when it must wait for memory to be freed (an
OOM kill under way, ``oom_kill_disable``) and then try again. These generators turn that answer
into SimPy time, for a request hop or for a background allocator (a leak, a hog).

Background allocation proceeds in ticks of :data:`GROWTH_TICK` seconds, ``rate * tick`` bytes
at a time (a model granularity: a leak of 2 MiB/s charges 2 MiB every second).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy
from simpy.events import Event

from sim.kernel import AllocationFailed, Process

GROWTH_TICK = 1.0
"""Seconds between two charges of a leak or a hog."""

Allocation = Generator[Event, Any, bool]


def settle(
    env: simpy.Environment, process: Process, amount: int, stall: float, cold: bool = False
) -> Allocation:
    """Wait out an allocation's stall, retrying while it must wait for memory.

    Returns True once ``amount`` is charged; False when the kernel refused it (``ENOMEM``) or
    the process died meanwhile (nothing is charged then). ``cold``: leaked memory.
    """
    charge = process.leak if cold else process.charge
    while stall == math.inf:
        wake = env.event()
        process.wait_for_memory(_waker(wake))
        yield wake
        if not process.alive:
            return False
        try:
            stall = charge(amount)
        except AllocationFailed:
            return False
    if stall > 0:
        yield env.timeout(stall)
    return process.alive


def allocate(
    env: simpy.Environment, process: Process, amount: int, cold: bool = False
) -> Allocation:
    """Charge ``amount`` bytes to ``process``, waiting as long as the kernel makes it wait."""
    try:
        stall = process.leak(amount) if cold else process.charge(amount)
    except AllocationFailed:
        return False
    return (yield from settle(env, process, amount, stall, cold))


def grow(
    env: simpy.Environment,
    process: Process,
    rate: float,
    size: float = math.inf,
    until: float = math.inf,
    cold: bool = False,
) -> Generator[Event, Any, int]:
    """Allocate ``rate`` bytes per second up to ``size`` bytes, while the process lives.

    Stops at time ``until``; returns the bytes it charged (a refused chunk is tried again at the
    next tick). ``cold``: a leak, memory never touched again.
    """
    total = 0
    while process.alive and total < size and env.now + GROWTH_TICK <= until + 1e-9:
        yield env.timeout(GROWTH_TICK)
        chunk = int(min(rate * GROWTH_TICK, size - total))
        if chunk <= 0:
            break
        if (yield from allocate(env, process, chunk, cold)):
            total += chunk
    return total


def _waker(event: Event) -> Callable[[], None]:
    """A callback that triggers ``event`` once."""

    def wake() -> None:
        if not event.triggered:
            event.succeed()

    return wake
