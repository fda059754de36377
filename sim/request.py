"""Requests and their outcomes.

Every arrival ends in exactly one :class:`Outcome` (request conservation). Outcomes are small ints
so that the recorder can index per-bin counters with them on the hot path.
"""

from __future__ import annotations

from enum import IntEnum


class Outcome(IntEnum):
    """How a request (or one hop of it) ended (``../shared/DESIGN.md`` §2.3)."""

    OK = 0
    DEGRADED = 1
    TIMEOUT = 2
    SHED = 3
    RATE_LIMITED = 4
    BULKHEAD_FULL = 5
    CIRCUIT_OPEN = 6
    UNAVAILABLE = 7
    RESET = 8
    DEADLINE_EXCEEDED = 9
    ERROR = 10
    DEPENDENCY = 11

    @property
    def label(self) -> str:
        """The outcome's name as used in tables: ``ok``, ``timeout``, ..."""
        return self.name.lower()

    @property
    def success(self) -> bool:
        """Whether the outcome counts as available (``ok`` or ``degraded``)."""
        return self <= Outcome.DEGRADED


OUTCOMES = tuple(Outcome)
"""All outcomes, in index order."""

OK = Outcome.OK
DEGRADED = Outcome.DEGRADED


class Request:
    """One user request, carried through every hop it makes.

    Attributes:
        id: arrival number, from 0.
        cls: index of the request class in the workload.
        t0: arrival time.
        origin: the last primary failure seen on the way (``(service, outcome)``), so that a
            failed request can say why it failed; ``None`` while nothing failed.
    """

    __slots__ = ("cls", "id", "origin", "t0")

    def __init__(self, rid: int, cls: int, t0: float) -> None:
        self.id = rid
        self.cls = cls
        self.t0 = t0
        self.origin: tuple[str, Outcome] | None = None
