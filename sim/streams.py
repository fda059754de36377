"""Named random streams and batched samplers.

Every stochastic component draws from its own ``numpy.random.Generator`` made from
``SeedSequence(entropy=seed, spawn_key=(stable_hash(name),))``. Streams are keyed by *what* draws
(``arrivals/frontend``, ``service_time/cart``), never by creation order, so a variant that changes
one component leaves every other stream as it was: variants share common random numbers and a
comparison is paired (``../shared/DESIGN.md`` §2.1).

Draws are made in batches (numpy is fast per batch, slow per call) and handed out one at a time;
a batch is consumed in order, so results do not depend on the batch size.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from functools import partial
from itertools import chain

import numpy as np

BATCH = 1024

Sampler = Callable[[], float]


def stable_hash(name: str) -> int:
    """A 64-bit hash of ``name`` that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def stream(seed: int, name: str) -> np.random.Generator:
    """The random generator of component ``name`` for run ``seed``."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=(stable_hash(name),)))
    )


def batched(draw: Callable[[int], np.ndarray]) -> Sampler:
    """Turn ``draw(n) -> array`` into a zero-argument sampler that draws ``BATCH`` at a time.

    The sampler is ``next`` on the endless chain of batches, bound with :func:`functools.partial`:
    a draw runs no Python code of ours until a batch is used up (a sample is taken per hop).
    A batch is drawn when its first value is asked for, never before.
    """
    batches = iter(lambda: draw(BATCH).tolist(), None)  # never None: endless
    return partial(next, chain.from_iterable(batches))


def service_time_sampler(dist: object, rng: np.random.Generator) -> Sampler:
    """A sampler of service times (seconds) for a scenario ``Distribution``."""
    from sim import scenario as s

    if isinstance(dist, s.Exponential):
        mean = dist.mean
        return batched(lambda n: rng.exponential(mean, n))
    if isinstance(dist, s.Deterministic):
        value = dist.value
        return lambda: value
    if isinstance(dist, s.LogNormal):
        mu = math.log(dist.median)
        sigma = math.log(dist.p99 / dist.median) / Z99
        return batched(lambda n: rng.lognormal(mu, sigma, n))
    if isinstance(dist, s.Uniform):
        low, high = dist.low, dist.high
        return batched(lambda n: rng.uniform(low, high, n))
    assert isinstance(dist, s.Empirical)
    values = np.asarray(dist.values, dtype=float)
    weights = None
    if dist.weights is not None:
        weights = np.asarray(dist.weights, dtype=float)
        weights = weights / weights.sum()
    return batched(lambda n: rng.choice(values, size=n, p=weights))


Z99 = 2.3263478740408408
"""The standard normal quantile at 0.99 (scipy.stats.norm.ppf(0.99))."""
