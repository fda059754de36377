"""Timers that are nearly always moot (call timeouts), kept out of SimPy's event queue.

A timed call waits for its callee at most ``limit`` seconds. SimPy's way is a ``Timeout`` event
per call, which stays in the event queue for the whole ``limit`` (a second is common) although
nearly every call ends long before, and SimPy cannot take an event back: the queue holds a dead
timer for every call of the last ``limit`` seconds, every event pays for them on its way
through the queue, and each dead timer is popped and stepped for nothing.

:class:`Timers` keeps them out of it instead, in FIFO lanes of its own (one per delay), and
gives only the earliest live one an event in SimPy's queue. A timer *watches* an event (the
call it bounds): once that event has triggered, the timer is moot and is dropped unseen. One
that is still live when its time comes fires exactly where a ``Timeout`` would have: its key
in SimPy's queue, ``(time, priority, event id)``, is the key ``env.timeout(delay)`` would have
got at the timer's start, the event id taken from the environment's own counter then. So every
event id of a run is what it was with ``Timeout`` events, and among events of the very same
instant a timer comes exactly where its ``Timeout`` came: runs are identical, to the last
event.

This reads two attributes of SimPy's environment that are not its public API (``_queue``,
``_eid``); ``pyproject.toml`` pins SimPy to 4.1.x for them (and for :mod:`patterns.retry`'s use
of ``Process`` internals).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL, PENDING, Event

Fire = Callable[[Event, Any, Event], None]
"""``fire(watched, arg, event)``: what a live timer does when its time comes (``event`` is the
timer's own event in SimPy's queue, for a process to be resumed with)."""

Entry = tuple[float, int, Event, Fire, Any]
"""A timer: its key in SimPy's queue (time and event id), the event it watches, what it does
when its time comes, and that function's argument."""


class Timers:
    """The timers of one environment (:func:`timers_of`).

    Timers of the same delay start in the order of their keys, so each delay has a FIFO lane
    (a deque: O(1) in and out) rather than one heap for all (a pop sifts through its whole
    depth, and a timer is started per call). The earliest timer of all is at the head of one
    of the lanes; there are few lanes (one per timeout in the scenario), and they are only
    looked through when a timer is due, about once per delay.

    Attributes:
        armed: how many timers got an event in SimPy's queue (the others were moot first).
    """

    __slots__ = ("_armed_keys", "_env", "_first", "_lanes", "armed")

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env
        self._lanes: dict[float, deque[Entry]] = {}
        """Timers by delay, each lane in key order: the live ones, and moot ones not dropped yet."""
        self._first: float | None = None
        """When the earliest timer of all is due (None: no timer); it is armed."""
        self._armed_keys: set[int] = set()
        """Event ids of the timers that have their event in SimPy's queue."""
        self.armed = 0

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def start(self, delay: float, watched: Event, fire: Fire, arg: Any = None) -> None:
        """In ``delay`` s, ``fire(watched, arg, event)``, unless ``watched`` has triggered.

        Raises:
            ValueError: ``delay`` is negative (as ``env.timeout`` does).
        """
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        env = self._env
        # the key env.timeout(delay) would get now: the same time and event id
        at = env._now + delay
        entry = (at, next(env._eid), watched, fire, arg)
        lane = self._lanes.get(delay)
        if lane is None:
            lane = self._lanes[delay] = deque()
        lane.append(entry)
        first = self._first
        if first is None or at < first:  # the earliest now (at the same time, an older one is)
            self._first = at
            self._arm(entry)

    def _arm(self, entry: Entry) -> None:
        """Give the timer ``entry`` its event in SimPy's queue, at its own key."""
        at, eid = entry[0], entry[1]
        due = Event(self._env)
        due._ok = True
        due._value = None
        due.callbacks.append(lambda event: self._due(entry, event))
        self._armed_keys.add(eid)
        self.armed += 1
        heappush(self._env._queue, (at, NORMAL, eid, due))

    def _due(self, entry: Entry, event: Event) -> None:
        """``entry``'s time came: fire it if still live; then arm the earliest live timer."""
        self._armed_keys.discard(entry[1])
        lanes = self._lanes
        for lane in lanes.values():
            if lane[0] is entry:  # not dropped as moot yet
                lane.popleft()
                watched = entry[2]
                if watched._value is PENDING:
                    entry[3](watched, entry[4], event)
                break
        first: Entry | None = None
        for delay in list(lanes):
            lane = lanes[delay]
            while lane and lane[0][2]._value is not PENDING:
                lane.popleft()  # moot: the call it bounded is over
            if not lane:
                del lanes[delay]
            elif first is None or lane[0][:2] < first[:2]:
                first = lane[0]
        if first is None:
            self._first = None
            return
        self._first = first[0]
        if first[1] not in self._armed_keys:
            self._arm(first)


def timers_of(env: simpy.Environment) -> Timers:
    """The :class:`Timers` of ``env``, made on first use (kept in the environment itself)."""
    try:
        return env._faultlab_timers  # type: ignore[attr-defined,no-any-return]
    except AttributeError:
        timers = env._faultlab_timers = Timers(env)  # type: ignore[attr-defined]
        return timers
