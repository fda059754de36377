"""Erlang C: the exact mean queue wait of M/M/c, which ``faultlab bench`` checks faultlab against.

Notation (Kendall; Gross and Harris, *Fundamentals of Queueing Theory*, ch. 2): arrivals are
Poisson at rate ``lam``, service times are exponential with rate ``mu`` (mean ``1 / mu``), there are
``c`` identical servers, the offered load is ``a = lam / mu`` Erlangs and the utilisation is
``rho = a / c``. Everything here follows from the birth-death balance equations
``lam * p[n - 1] = min(n, c) * mu * p[n]`` of the number ``n`` of customers in the system.

The functions are exact (no simulation) and pure; they work in ratios of consecutive terms, so a
large ``c`` does not overflow factorials. The test suite's other formulas (M/M/c/K) are in
``tests/queueing.py``.
"""

from __future__ import annotations


def erlang_b(c: int, a: float) -> float:
    """Erlang B: probability that an arrival finds all ``c`` servers busy in M/M/c/c (loss).

    Uses the stable recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``, which follows
    from ``B(k) = (a^k / k!) / sum_{j<=k} a^j / j!``.

    Args:
        c: number of servers (>= 0).
        a: offered load in Erlangs (``lam / mu``).

    Returns:
        The blocking probability of the loss system.
    """
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability that an arrival has to wait in M/M/c (unbounded queue).

    With ``rho = a / c < 1`` the stationary distribution is ``p[n] = p0 a^n / n!`` for ``n < c``
    and ``p0 (a^c / c!) rho^(n-c)`` for ``n >= c``; by PASTA an arrival waits with probability
    ``sum_{n>=c} p[n] = (a^c / c!) / (1 - rho) * p0``. Written with Erlang B ``B``:
    ``C = c B / (c - a (1 - B))``.

    Args:
        c: number of servers (>= 1).
        a: offered load in Erlangs; must be below ``c``.

    Returns:
        The probability of waiting, P(Wq > 0).

    Raises:
        ValueError: when the queue is unstable (``a >= c``).
    """
    if a >= c:
        raise ValueError(f"unstable: offered load {a} >= {c} servers")
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue ``Wq`` of M/M/c (FIFO), over all customers.

    A customer who has to wait (probability ``C``) waits, by memorylessness of the ``c`` busy
    servers, an exponential time with rate ``c mu - lam``; so ``Wq = C / (c mu - lam)``. For
    ``c = 1`` this is the M/M/1 result ``rho / (mu - lam)``.

    Args:
        c: number of servers.
        lam: arrival rate (per second).
        mu: service rate of one server (per second).

    Returns:
        The mean waiting time before service, in seconds.

    Raises:
        ValueError: when the queue is unstable (``lam >= c mu``).
    """
    return erlang_c(c, lam / mu) / (c * mu - lam)
