"""Textbook formulas of Markovian queues, to check the simulator against theory.

Notation (Kendall; Gross and Harris, *Fundamentals of Queueing Theory*, ch. 2): arrivals are
Poisson at rate ``lam``, service times are exponential with rate ``mu`` (mean ``1 / mu``), there are
``c`` identical servers, the offered load is ``a = lam / mu`` Erlangs and the utilisation is
``rho = a / c``. Everything here is derived from the birth-death balance equations
``lam * p[n - 1] = min(n, c) * mu * p[n]`` of the number ``n`` of customers in the system.

Erlang B and C and the M/M/c mean wait live in :mod:`sim.queueing` (``faultlab bench`` checks
against them too) and are re-exported here. The functions are exact (no simulation) and pure;
they work in ratios of consecutive terms, so large ``c`` or ``K`` do not overflow factorials.
"""

from __future__ import annotations

from sim.queueing import erlang_b, erlang_c, mmc_mean_wait

__all__ = [
    "erlang_b",
    "erlang_c",
    "mmc_mean_wait",
    "mmc_mean_wait_given_wait",
    "mmck_blocking",
    "mmck_distribution",
    "mmck_mean_in_system",
]


def mmc_mean_wait_given_wait(c: int, lam: float, mu: float) -> float:
    """Mean wait of the customers who do wait in M/M/c: ``E[Wq | Wq > 0] = 1 / (c mu - lam)``.

    Args:
        c: number of servers.
        lam: arrival rate (per second).
        mu: service rate of one server (per second).

    Returns:
        The conditional mean wait, in seconds.
    """
    if lam >= c * mu:
        raise ValueError("unstable queue")
    return 1.0 / (c * mu - lam)


def mmck_distribution(c: int, k: int, a: float) -> list[float]:
    """Stationary distribution ``p[0..K]`` of the number in system of M/M/c/K.

    ``K >= c`` is the room in the system (``c`` in service + ``K - c`` waiting). The balance
    equations give ``p[n] / p[n-1] = a / min(n, c)``; normalising over ``0..K`` gives ``p``. Any
    load is stable (the queue is finite).

    Args:
        c: number of servers (>= 1).
        k: system capacity ``K`` (>= c).
        a: offered load in Erlangs.

    Returns:
        ``[p0, ..., pK]``.
    """
    if k < c:
        raise ValueError(f"K={k} must be at least c={c}")
    terms = [1.0]
    for n in range(1, k + 1):
        terms.append(terms[-1] * a / min(n, c))
    total = sum(terms)
    return [t / total for t in terms]


def mmck_blocking(c: int, k: int, a: float) -> float:
    """Blocking probability of M/M/c/K: an arrival finds the system full (``p[K]``, by PASTA).

    Args:
        c: number of servers.
        k: system capacity ``K`` (servers plus waiting room).
        a: offered load in Erlangs.

    Returns:
        The fraction of arrivals turned away.
    """
    return mmck_distribution(c, k, a)[-1]


def mmck_mean_in_system(c: int, k: int, a: float) -> float:
    """Mean number in system ``L = sum n p[n]`` of M/M/c/K.

    Args:
        c: number of servers.
        k: system capacity ``K``.
        a: offered load in Erlangs.

    Returns:
        The time-average number of customers in the system.
    """
    return sum(n * p for n, p in enumerate(mmck_distribution(c, k, a)))
