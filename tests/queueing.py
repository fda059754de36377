"""Textbook formulas of Markovian queues, to check the simulator against theory.

Notation (Kendall; Gross and Harris, *Fundamentals of Queueing Theory*, ch. 2): arrivals are
Poisson at rate ``lam``, service times are exponential with rate ``mu`` (mean ``1 / mu``), there are
``c`` identical servers, the offered load is ``a = lam / mu`` Erlangs and the utilisation is
``rho = a / c``. Everything here is derived from the birth-death balance equations
``lam * p[n - 1] = min(n, c) * mu * p[n]`` of the number ``n`` of customers in the system.

The functions are exact (no simulation) and pure; they work in ratios of consecutive terms, so
large ``c`` or ``K`` do not overflow factorials.
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
    """
    return erlang_c(c, lam / mu) / (c * mu - lam)


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
