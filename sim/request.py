"""Requests and their outcomes.

Every arrival ends in exactly one :class:`Outcome` (request conservation). Outcomes are small ints
so that the recorder can index per-bin counters with them on the hot path.
"""

from __future__ import annotations

import math
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

NO_DEADLINE = math.inf
"""The deadline of a request no caller bounds (or with deadline propagation off)."""


class Request:
    """One user request, carried through every hop it makes.

    Attributes:
        id: arrival number, from 0.
        cls: index of the request class in the workload.
        t0: arrival time.
        origin: the last primary failure seen on the way (``(service, outcome)``), so that a
            failed request can say why it failed; ``None`` while nothing failed.
        deadline: absolute time after which the callers on the way have given up (deadline
            propagation); ``inf`` when it is off or no caller set a timeout. A view made by
            :meth:`within` carries a tighter one for the hops below a timeout.
    """

    __slots__ = ("cls", "deadline", "id", "origin", "t0")

    def __init__(self, rid: int, cls: int, t0: float) -> None:
        self.id = rid
        self.cls = cls
        self.t0 = t0
        self.origin: tuple[str, Outcome] | None = None
        self.deadline = NO_DEADLINE

    def within(self, deadline: float) -> Request:
        """This request as seen below a caller's timeout ending at ``deadline``.

        The view has the tighter of the two deadlines; a failure it records is copied to this
        request by :meth:`merge` (a view never changes its parent's deadline, so parallel
        calls below different timeouts do not see each other's).
        """
        view = Request(self.id, self.cls, self.t0)
        view.deadline = deadline if deadline < self.deadline else self.deadline
        return view

    def merge(self, view: Request) -> None:
        """Take the failure recorded by ``view`` (made by :meth:`within`)."""
        if view.origin is not None:
            self.origin = view.origin
