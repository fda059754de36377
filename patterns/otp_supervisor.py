"""Erlang/OTP supervisors: restart strategies, restart intensity and escalation up the tree.

Sources: erlang/otp ``lib/stdlib/src/supervisor.erl`` (macros ``default_flags`` and
``default_child_spec``, ``do_check_childspec``, ``check_flags``; ``do_restart``, ``restart/2``,
``restart/3``, ``restart_multiple_children``, ``add_restart``, ``terminate_children``,
``do_terminate``, ``shutdown/1``, ``terminate_dynamic_children``, ``extract_child``,
``format_log_multi``), ``lib/kernel/src/application_controller.erl`` (``info_exited``) and the
OTP design principles "Supervisor Behaviour"; see ``../shared/reference/semantics.md`` §7 and §12
V17-V20.

Model (what :class:`Supervisor` reproduces):

* A supervisor is one process with a mailbox. Child exits, retry requests, ``start_child`` calls
  and the parent's shutdown signal are messages handled one at a time, in arrival order; while
  the supervisor starts or stops a child it handles nothing else, exactly like the ``gen_server``
  it is. An exit that arrives from an incarnation the supervisor has already stopped or replaced
  is ignored (``unlink_flush`` / ``find_child_and_args`` returning ``error``).
* On a child exit (``do_restart``): a permanent child is always restarted; a transient child is
  restarted unless the reason is ``normal``, ``shutdown`` or ``{shutdown, Term}``; a temporary child
  never is. A child that is not restarted is not counted; a temporary one is forgotten. Every
  restart, and every abnormal exit of a temporary child, is reported as ``child_terminated``.
* Restart intensity (``add_restart``): the restart times are kept in whole seconds
  (``floor(env.now)``, ``erlang:monotonic_time(second)``), newest first; each restart attempt
  keeps the previous ones while ``now <= t + period`` and adds ``now``. More than ``intensity``
  entries and the supervisor gives up: ``errorContext: shutdown`` with reason
  ``reached_max_restart_intensity``, the remaining children are stopped in reverse start order and
  the supervisor exits with reason ``shutdown``. A restart of several children (one_for_all,
  rest_for_one) is one attempt; a failed start (``start_error``) is retried at once through the
  mailbox (``try_again``), and each retry is another attempt.
* Strategies: one_for_one restarts the child; one_for_all stops every other child (reverse start
  order) and starts them all in start order; rest_for_one does that for the child and those
  started after it; simple_one_for_one is one_for_one over children added with
  :meth:`Supervisor.start_child` from a single template spec. A temporary child caught in a group
  restart is stopped and forgotten, and a transient child that had exited normally is started
  again with its group.
* Stopping a child (``shutdown/1``): ``brutal_kill`` sends ``kill``; ``T`` ms sends
  ``shutdown``, waits up to ``T`` ms of simulated time for the exit, then sends ``kill``;
  ``infinity`` waits as long as it takes. An exit with another reason than the one asked for
  (``killed`` for brutal_kill, ``shutdown`` otherwise; ``normal`` and ``{shutdown, _}`` are also
  fine for a child that is not permanent) is reported as ``shutdown_error``, so a worker killed
  after its timeout shows ``reason: killed``. simple_one_for_one children are signalled all at
  once, share one timer and produce one ``shutdown_error`` per distinct reason with
  ``{nb_children, N}``.
* Escalation: a supervisor is itself a :class:`Child`. Its exit reason ``shutdown`` makes a
  permanent parent-side spec restart it (counted in the *parent's* intensity) and a transient
  one leave it stopped. :class:`Application` plays the application master of the root
  supervisor: when the root exits the application has stopped.

Simplifications:

* Children are abstract (:class:`Child`); ``{M, F, A}`` is replaced by the child object, so reports
  print no ``mfargs``; ``significant`` and ``auto_shutdown`` are not modelled (``auto_shutdown =>
  never``), nor is ``ignore`` from a start function, ``restart_child``, ``delete_child`` or
  ``terminate_child``.
* Pids are ``<0.N.0>`` from a :class:`PidCounter` (share one across a tree for unique numbers).
* Killing a supervisor (``brutal_kill`` of a supervisor child) kills all its children at once:
  they are linked to it and die with it.
* Reports go to ``on_event(kind, text)`` with the report's ``errorContext`` as ``kind`` (the
  logger label ``{supervisor, Kind}``) and the multi-line text of ``format_log_multi`` without
  the timestamp in the header (the recorder stamps the time); the offender list is printed on one
  line. Progress reports are not sent (since OTP 21 the default logger level hides them).

The module reads time only from ``env.now``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from itertools import takewhile
from typing import Any, Literal, Protocol, TypeAlias

import simpy

ReportSink = Callable[[str, str], None]
"""``on_event(kind, text)``: receives each report and its kind (the ``errorContext``)."""

Term: TypeAlias = object
"""An Erlang term: ``str`` atoms, ``tuple`` tuples, ``list`` lists, numbers, ``None`` for
``undefined`` and :class:`Pid`; printed by :func:`format_term`."""

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"]
RestartType = Literal["permanent", "transient", "temporary"]
ChildType = Literal["worker", "supervisor"]
Shutdown = Literal["brutal_kill", "infinity"] | int
ExitSignal = Literal["shutdown", "kill"]
"""What a supervisor sends a child: ``exit(Pid, shutdown)`` or ``exit(Pid, kill)``."""

# Report kinds: the ``errorContext`` of a SUPERVISOR REPORT, and the application master's notice.
REPORT_CHILD_TERMINATED = "child_terminated"
REPORT_SHUTDOWN = "shutdown"
REPORT_START_ERROR = "start_error"
REPORT_SHUTDOWN_ERROR = "shutdown_error"
REPORT_APPLICATION_EXITED = "application_exited"

REACHED_MAX_RESTART_INTENSITY = "reached_max_restart_intensity"

DEFAULT_INTENSITY = 1
"""Restarts (``default_flags``: ``intensity => 1``)."""
DEFAULT_PERIOD = 5
"""Seconds (``default_flags``: ``period => 5``)."""
DEFAULT_WORKER_SHUTDOWN = 5000
"""Milliseconds (``do_check_childspec``: ``#{type := worker} -> 5000``)."""
DEFAULT_SUPERVISOR_SHUTDOWN: Shutdown = "infinity"
"""``do_check_childspec``: ``#{type := supervisor} -> infinity``."""

_STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one")
_RESTART_TYPES = ("permanent", "transient", "temporary")
_CHILD_TYPES = ("worker", "supervisor")


# --------------------------------------------------------------------------------------------
# Erlang terms and reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pid:
    """A process identifier, printed ``<0.N.0>``; one per child incarnation."""

    number: int

    def __str__(self) -> str:
        return f"<0.{self.number}.0>"


class PidCounter:
    """Hands out :class:`Pid` numbers in order, so reports are deterministic.

    Args:
        first: the first number handed out.
    """

    __slots__ = ("_next",)

    def __init__(self, first: int = 1) -> None:
        self._next = first

    def next(self) -> Pid:
        """A fresh pid."""
        pid = Pid(self._next)
        self._next += 1
        return pid


_UNQUOTED_ATOM = re.compile(r"[a-z][A-Za-z0-9_@]*")
_RESERVED_WORDS = frozenset(
    [
        "after",
        "and",
        "andalso",
        "band",
        "begin",
        "bnot",
        "bor",
        "bsl",
        "bsr",
        "bxor",
        "case",
        "catch",
        "cond",
        "div",
        "else",
        "end",
        "fun",
        "if",
        "let",
        "maybe",
        "not",
        "of",
        "or",
        "orelse",
        "receive",
        "rem",
        "try",
        "when",
        "xor",
    ]
)


def format_term(term: Term) -> str:
    """``~p`` on one line for the terms this module prints: ``{shutdown,{badarg,[]}}``."""
    if isinstance(term, bool):
        return "true" if term else "false"
    if term is None:
        return "undefined"
    if isinstance(term, str):
        if _UNQUOTED_ATOM.fullmatch(term) and term not in _RESERVED_WORDS:
            return term
        return "'" + term.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(term, tuple):
        return "{" + ",".join(format_term(item) for item in term) + "}"
    if isinstance(term, list):
        return "[" + ",".join(format_term(item) for item in term) + "]"
    return str(term)


def supervisor_report(name: str, context: str, reason: Term, offender: list[Term]) -> str:
    """The text of a ``=SUPERVISOR REPORT====`` (``format_log_multi``)."""
    return (
        "=SUPERVISOR REPORT====\n"
        f"    supervisor: {format_term(('local', name))}\n"
        f"    errorContext: {context}\n"
        f"    reason: {format_term(reason)}\n"
        f"    offender: {format_term(offender)}"
    )


def is_normal_exit(reason: Term) -> bool:
    """``normal``, ``shutdown`` or ``{shutdown, Term}``: a transient child is not restarted."""
    return reason in ("normal", "shutdown") or (
        isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown"
    )


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SupervisorFlags:
    """``sup_flags()``.

    Attributes:
        strategy: ``one_for_one`` (``default_flags``).
        intensity: 1 restart (``default_flags``); an integer >= 0 (``validIntensity``).
        period: 5 s (``default_flags``); an integer >= 1 (``validPeriod``).
    """

    strategy: Strategy = "one_for_one"
    intensity: int = DEFAULT_INTENSITY
    period: int = DEFAULT_PERIOD

    def __post_init__(self) -> None:
        """Reject what ``check_flags`` rejects."""
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"invalid_strategy: {self.strategy!r}")
        if not _is_int(self.intensity) or self.intensity < 0:
            raise ValueError(f"invalid_intensity: {self.intensity!r} (an integer >= 0)")
        if not _is_int(self.period) or self.period < 1:
            raise ValueError(f"invalid_period: {self.period!r} (an integer >= 1)")


@dataclass(frozen=True)
class ChildSpec:
    """``child_spec()``, with the child object in place of ``start => {M, F, A}``.

    Attributes:
        id: the child's id (an atom in reports).
        child: what to start; leave it ``None`` in the template of a simple_one_for_one
            supervisor, whose children come from :meth:`Supervisor.start_child`.
        restart: ``permanent`` (``default_child_spec``).
        type: ``worker`` (``default_child_spec``).
        shutdown: ``brutal_kill``, milliseconds >= 0 or ``infinity``; unset means 5000 for a
            worker and ``infinity`` for a supervisor (``do_check_childspec``). See
            :attr:`effective_shutdown`.
    """

    id: str
    child: Child | None = None
    restart: RestartType = "permanent"
    type: ChildType = "worker"
    shutdown: Shutdown | None = None

    def __post_init__(self) -> None:
        """Reject what ``do_check_childspec`` rejects."""
        if self.restart not in _RESTART_TYPES:
            raise ValueError(f"invalid_restart_type: {self.restart!r}")
        if self.type not in _CHILD_TYPES:
            raise ValueError(f"invalid_child_type: {self.type!r}")
        shutdown = self.shutdown
        if shutdown not in (None, "brutal_kill", "infinity") and (
            not isinstance(shutdown, int) or isinstance(shutdown, bool) or shutdown < 0
        ):
            raise ValueError(f"invalid_shutdown: {shutdown!r}")

    @property
    def effective_shutdown(self) -> Shutdown:
        """The shutdown spec, defaults applied."""
        if self.shutdown is not None:
            return self.shutdown
        return DEFAULT_WORKER_SHUTDOWN if self.type == "worker" else DEFAULT_SUPERVISOR_SHUTDOWN


# --------------------------------------------------------------------------------------------
# The child protocol
# --------------------------------------------------------------------------------------------


class StartError(Exception):
    """A failed start: the start function returned ``{error, Reason}``.

    Args:
        reason: the Erlang-style reason printed in the ``start_error`` report.
    """

    def __init__(self, reason: Term) -> None:
        super().__init__(reason)
        self.reason = reason


class Child(Protocol):
    """What a supervisor starts, watches and stops: a worker (a service instance) or a supervisor.

    One object can be started again after each exit; each start makes a new *incarnation*, which
    the supervisor gives a new pid.

    * :meth:`start` returns an event that succeeds once the incarnation runs (it may take
      simulated time), with the incarnation's *exit event* as its value; it fails with
      :class:`StartError` (any exception counts) when the start fails.
    * The exit event is how the child reports that it exited, for whatever cause (a crash, a
      normal end, a signal): the child succeeds it with the exit reason (``"normal"``,
      ``"killed"``, ``("shutdown", x)``, ``"badarg"``, any :data:`Term`), exactly once.
    * :meth:`terminate` delivers an exit signal to the running incarnation and returns its exit
      event. ``"shutdown"`` asks it to stop (it may take simulated time; it should then exit with
      reason ``shutdown``); ``"kill"`` must end it at once with reason ``killed``, also while a
      shutdown is under way.
    """

    def start(self) -> simpy.Event:
        """Start an incarnation; the event's value is its exit event."""
        ...

    def terminate(self, signal: ExitSignal) -> simpy.Event:
        """Send ``signal`` to the running incarnation; returns its exit event."""
        ...


# --------------------------------------------------------------------------------------------
# Supervisor
# --------------------------------------------------------------------------------------------


class _Record:
    """One child as the supervisor knows it (``#child{}``); ``pid`` is None when not running."""

    __slots__ = ("child", "exited", "pid", "restarting", "spec")

    def __init__(self, spec: ChildSpec, child: Child) -> None:
        self.spec = spec
        self.child = child
        self.pid: Pid | None = None
        self.restarting = False
        """``{restarting, Pid}``: its restart failed and is to be tried again."""
        self.exited: simpy.Event | None = None

    @property
    def alive(self) -> bool:
        return self.pid is not None and not self.restarting

    def offender(self) -> list[Term]:
        """``extract_child``, without ``mfargs`` and ``significant``."""
        pid: Term = ("restarting", self.pid) if self.restarting else self.pid
        return [("pid", pid), *_spec_terms(self.spec)]

    def clear(self) -> None:
        self.pid = None
        self.restarting = False
        self.exited = None


def _spec_terms(spec: ChildSpec) -> list[Term]:
    return [
        ("id", spec.id),
        ("restart_type", spec.restart),
        ("shutdown", spec.effective_shutdown),
        ("child_type", spec.type),
    ]


@dataclass(frozen=True)
class _Exit:
    """``{'EXIT', Pid, Reason}`` from a child."""

    pid: Pid
    reason: Term


@dataclass(frozen=True)
class _TryAgain:
    """``{try_again_restart, Id}``, cast to itself after a failed restart."""

    record: _Record


@dataclass(frozen=True)
class _StartChild:
    """``start_child`` call; ``reply`` gets ``("ok", pid)`` or ``("error", reason)``."""

    request: ChildSpec | Child
    reply: simpy.Event


@dataclass(frozen=True)
class _Shutdown:
    """The parent's ``exit(Sup, shutdown)``."""


StartChildResult = tuple[Literal["ok"], Pid] | tuple[Literal["error"], Term]
ChildInfo = tuple[str | None, Pid | Literal["restarting"] | None, ChildType]
"""``which_children`` row: (id, pid, type); id is None under simple_one_for_one."""

_Gen = Generator[Any, Any, Any]


class Supervisor:
    """An OTP ``supervisor``: starts its children, restarts them, gives up past its intensity.

    A supervisor is a :class:`Child`: :meth:`start` runs ``init`` (starts the children in order)
    and each start is a fresh incarnation with no restart history and only the specs given here
    (children added with :meth:`start_child` are gone, as after a real restart).

    Args:
        env: the simulation environment.
        name: the registered name, printed ``{local,Name}``.
        flags: strategy, intensity and period; defaults to :class:`SupervisorFlags`'s.
        children: the child specs in start order; under simple_one_for_one exactly one template
            without a ``child``.
        on_event: ``on_event(kind, text)`` for the SUPERVISOR REPORTs.
        pids: where pids come from; share one across a tree for unique numbers.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        flags: SupervisorFlags | None = None,
        children: Sequence[ChildSpec] = (),
        *,
        on_event: ReportSink | None = None,
        pids: PidCounter | None = None,
    ) -> None:
        self.env = env
        self.name = name
        self.flags = flags or SupervisorFlags()
        self.specs = tuple(children)
        self._on_event = on_event
        self._pids = pids or PidCounter()
        if self.simple:
            if len(self.specs) != 1:
                raise ValueError("bad_start_spec: simple_one_for_one takes exactly one child spec")
            if self.specs[0].child is not None:
                raise ValueError("a simple_one_for_one template has no child: use start_child")
        else:
            ids = [spec.id for spec in self.specs]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate_child_name in {ids}")
            if any(spec.child is None for spec in self.specs):
                raise ValueError("every child spec needs a child")
        self._records: list[_Record] = []
        self._restarts: list[int] = []
        self._mailbox: simpy.Store | None = None
        self._process: simpy.Process | None = None
        self._started: simpy.Event | None = None
        self._exited: simpy.Event | None = None
        self._pending_start: tuple[simpy.Event, Child] | None = None

    # -- inspection -------------------------------------------------------------------------

    @property
    def simple(self) -> bool:
        """Whether the strategy is simple_one_for_one."""
        return self.flags.strategy == "simple_one_for_one"

    @property
    def running(self) -> bool:
        """Whether an incarnation has started and not exited."""
        return self._exited is not None and not self._exited.triggered

    @property
    def restarts(self) -> tuple[int, ...]:
        """The restart times (whole seconds) still in the period, newest first."""
        return tuple(self._restarts)

    def which_children(self) -> list[ChildInfo]:
        """``which_children/1``: one row per child, newest first as OTP lists them."""
        return [
            (
                None if self.simple else r.spec.id,
                "restarting" if r.restarting else r.pid,
                r.spec.type,
            )
            for r in reversed(self._records)
        ]

    # -- the Child protocol -----------------------------------------------------------------

    def start(self) -> simpy.Event:
        """``start_link``: start the children in order; the event's value is the exit event.

        If a child fails to start, the ones already started are stopped and the event fails with
        ``StartError(("shutdown", ("failed_to_start_child", Id, Reason)))``.
        """
        if self.running:
            raise RuntimeError(f"supervisor {self.name} is already running")
        self._records = [_Record(s, s.child) for s in self.specs if s.child is not None]
        self._restarts = []
        self._mailbox = simpy.Store(self.env)
        self._started = self.env.event()
        self._exited = self.env.event()
        self._process = self.env.process(self._run(self._started, self._exited, self._mailbox))
        return self._started

    def terminate(self, signal: ExitSignal) -> simpy.Event:
        """The parent's exit signal: ``shutdown`` stops the children, then the supervisor.

        ``shutdown`` is queued behind the messages already in the mailbox; the supervisor then
        stops its children in reverse start order and exits with reason ``shutdown``. ``kill``
        ends it at once (reason ``killed``) and its children with it.
        """
        if self._exited is None or self._mailbox is None:
            raise RuntimeError(f"supervisor {self.name} was never started")
        if not self._exited.triggered:
            if signal == "kill":
                self._kill()
            else:
                self._mailbox.put(_Shutdown())
        return self._exited

    def start_child(self, request: ChildSpec | Child) -> simpy.Event:
        """``start_child/2``: a new child spec, or under simple_one_for_one a new child.

        Handled in turn with the other messages; the event's value is ``("ok", pid)`` or
        ``("error", reason)`` (``already_present``, ``{already_started, Pid}`` or the start
        error).
        """
        if not self.running or self._mailbox is None:
            raise RuntimeError(f"supervisor {self.name} is not running")
        if self.simple == isinstance(request, ChildSpec):
            raise TypeError("simple_one_for_one takes a child; the other strategies a ChildSpec")
        reply = self.env.event()
        self._mailbox.put(_StartChild(request, reply))
        return reply

    # -- the process ------------------------------------------------------------------------

    def _run(self, started: simpy.Event, exited: simpy.Event, mailbox: simpy.Store) -> _Gen:
        try:
            failed = yield from self._start_children(list(self._records), mailbox)
            if failed is not None:
                record, reason = failed
                yield from self._terminate_children(list(self._records))
                error = ("shutdown", ("failed_to_start_child", record.spec.id, reason))
                if not started.triggered:
                    started.fail(StartError(error))
                    exited.succeed(error)
                return
            if started.triggered:
                return  # killed while the last child started
            started.succeed(exited)
            while True:
                message = yield mailbox.get()
                if isinstance(message, _Shutdown):
                    break
                if isinstance(message, _StartChild):
                    yield from self._handle_start_child(message, mailbox)
                elif isinstance(message, _TryAgain):
                    record = message.record
                    retry = record.restarting and record in self._records
                    if retry and (yield from self._restart(record, mailbox)):
                        break
                elif isinstance(message, _Exit):
                    record = self._find(message.pid)
                    if record is not None and (
                        yield from self._do_restart(record, message.reason, mailbox)
                    ):
                        break
            if self.simple:
                yield from self._terminate_dynamic_children()
            else:
                yield from self._terminate_children(list(self._records))
        except simpy.Interrupt:
            return  # killed: _kill has done the rest
        if not exited.triggered:
            exited.succeed("shutdown")

    def _kill(self) -> None:
        """``exit(Sup, kill)``: the supervisor dies now and its linked children with it."""
        assert self._exited is not None
        assert self._started is not None
        process = self._process
        if process is not None and process.is_alive and self.env.active_process is not process:
            process.interrupt("kill")
        if self._pending_start is not None:
            # A child half-way through its start is linked already: it dies once it is up.
            pending, child = self._pending_start
            pending.defused = True
            _when_processed(pending, lambda event: _kill_if_started(event, child))
            self._pending_start = None
        for record in reversed(self._records):
            if record.alive and record.exited is not None and not record.exited.triggered:
                record.child.terminate("kill")
        if not self._started.triggered:
            self._started.fail(StartError("killed"))
            self._started.defused = True
        self._exited.succeed("killed")

    def _report(self, context: str, reason: Term, offender: list[Term]) -> None:
        if self._on_event is not None:
            self._on_event(context, supervisor_report(self.name, context, reason, offender))

    def _find(self, pid: Pid) -> _Record | None:
        for record in self._records:
            if record.pid == pid and not record.restarting:
                return record
        return None

    # -- starting ---------------------------------------------------------------------------

    def _start(self, record: _Record, mailbox: simpy.Store) -> _Gen:
        """Start one incarnation; returns None, or the reason it failed to start."""
        try:
            started = record.child.start()
            self._pending_start = (started, record.child)
            exited = yield started
        except simpy.Interrupt:
            raise
        except StartError as error:
            return error.reason
        except Exception as error:  # a crashing start function is {error, What} too
            return ("EXIT", repr(error))
        finally:
            self._pending_start = None
        pid = self._pids.next()
        record.pid, record.restarting, record.exited = pid, False, exited

        def link(event: simpy.Event) -> None:
            mailbox.put(_Exit(pid, event.value))

        _when_processed(exited, link)
        return None

    def _start_children(self, group: list[_Record], mailbox: simpy.Store) -> _Gen:
        """``start_children``: in start order; stops at the first failure, (record, reason)."""
        for record in group:
            reason = yield from self._start(record, mailbox)
            if reason is not None:
                self._report(REPORT_START_ERROR, reason, record.offender())
                return record, reason
        return None

    def _handle_start_child(self, message: _StartChild, mailbox: simpy.Store) -> _Gen:
        request = message.request
        if isinstance(request, ChildSpec):
            existing = next((r for r in self._records if r.spec.id == request.id), None)
            if existing is not None:
                error: Term = (
                    ("already_started", existing.pid) if existing.alive else "already_present"
                )
                message.reply.succeed(("error", error))
                return
            if request.child is None:
                message.reply.succeed(("error", ("invalid_child_spec", request.id)))
                return
            record = _Record(request, request.child)
        else:
            record = _Record(self.specs[0], request)
        reason = yield from self._start(record, mailbox)
        if reason is not None:
            message.reply.succeed(("error", reason))
            return
        self._records.append(record)
        message.reply.succeed(("ok", record.pid))

    # -- restarting -------------------------------------------------------------------------

    def _do_restart(self, record: _Record, reason: Term, mailbox: simpy.Store) -> _Gen:
        """``do_restart``: returns True when the supervisor must shut down."""
        restart = record.spec.restart
        if restart == "permanent":
            self._report(REPORT_CHILD_TERMINATED, reason, record.offender())
            return (yield from self._restart(record, mailbox))
        if is_normal_exit(reason):
            self._del_child(record)
            return False
        self._report(REPORT_CHILD_TERMINATED, reason, record.offender())
        if restart == "transient":
            return (yield from self._restart(record, mailbox))
        self._del_child(record)
        return False

    def _add_restart(self) -> bool:
        """``add_restart``: record a restart now; False when the intensity is exceeded."""
        now = math.floor(self.env.now)
        threshold = now - self.flags.period
        self._restarts = [now, *takewhile(lambda t: t >= threshold, self._restarts)]
        return len(self._restarts) <= self.flags.intensity

    def _restart(self, record: _Record, mailbox: simpy.Store) -> _Gen:
        """``restart/2``: count the attempt, then restart by strategy; True means give up."""
        if not self._add_restart():
            self._report(REPORT_SHUTDOWN, REACHED_MAX_RESTART_INTENSITY, record.offender())
            self._del_child(record)
            return True
        strategy = self.flags.strategy
        if strategy in ("one_for_one", "simple_one_for_one"):
            reason = yield from self._start(record, mailbox)
            failed = None
            if reason is not None:
                self._report(REPORT_START_ERROR, reason, record.offender())
                record.restarting = True
                failed = record
        else:
            old_pid = record.pid
            index = self._records.index(record)
            group = self._records[index:] if strategy == "rest_for_one" else list(self._records)
            record.clear()
            yield from self._terminate_children(group)
            group = [r for r in group if r in self._records]
            failure = yield from self._start_children(group, mailbox)
            failed = None
            if failure is not None:
                failed = failure[0]
                failed.pid = old_pid if failed is record else None
                failed.restarting = True
        if failed is not None:
            mailbox.put(_TryAgain(failed))
        return False

    def _del_child(self, record: _Record) -> None:
        """``del_child``: forget a temporary (or dynamic) child, else keep its spec."""
        if self.simple or record.spec.restart == "temporary":
            self._records.remove(record)
        else:
            record.clear()

    # -- stopping ---------------------------------------------------------------------------

    def _terminate_children(self, group: list[_Record]) -> _Gen:
        """``terminate_children``: reverse start order; temporary children are forgotten."""
        for record in reversed(group):
            if record.alive:
                yield from self._shutdown(record)
            if record.spec.restart == "temporary":
                self._records.remove(record)
            else:
                record.clear()

    def _shutdown(self, record: _Record) -> _Gen:
        """``do_terminate`` / ``shutdown/1`` of one running child."""
        exited = record.exited
        assert exited is not None
        shutdown = record.spec.effective_shutdown
        if shutdown == "brutal_kill":
            if not exited.triggered:
                record.child.terminate("kill")
            expected = "killed"
        else:
            if not exited.triggered:
                record.child.terminate("shutdown")
                if shutdown != "infinity":
                    yield exited | self.env.timeout(int(shutdown) / 1000)
                    if not exited.triggered:
                        record.child.terminate("kill")
            expected = "shutdown"
        reason = yield exited
        if not _shutdown_ok(reason, expected, record.spec.restart):
            self._report(REPORT_SHUTDOWN_ERROR, reason, record.offender())

    def _terminate_dynamic_children(self) -> _Gen:
        """``terminate_dynamic_children``: signal all at once, one timer, then wait for all."""
        spec = self.specs[0]
        shutdown = spec.effective_shutdown
        live = [r for r in self._records if r.alive]
        exits: list[simpy.Event] = [r.exited for r in live if r.exited is not None]
        signal: ExitSignal = "kill" if shutdown == "brutal_kill" else "shutdown"
        for record in live:
            if record.exited is not None and not record.exited.triggered:
                record.child.terminate(signal)
        if isinstance(shutdown, int):
            yield simpy.AllOf(self.env, exits) | self.env.timeout(shutdown / 1000)
            for record in live:
                if record.exited is not None and not record.exited.triggered:
                    record.child.terminate("kill")
        # A fresh condition: SimPy detaches a nested one once the outer condition has fired.
        yield simpy.AllOf(self.env, exits)
        expected = "killed" if shutdown == "brutal_kill" else "shutdown"
        errors: list[tuple[Term, int]] = []
        for record in live:
            assert record.exited is not None
            reason = record.exited.value
            if not _shutdown_ok(reason, expected, spec.restart):
                for i, (seen, count) in enumerate(errors):
                    if seen == reason:
                        errors[i] = (seen, count + 1)
                        break
                else:
                    errors.append((reason, 1))
        for reason, count in errors:
            offender: list[Term] = [("nb_children", count), *_spec_terms(spec)]
            self._report(REPORT_SHUTDOWN_ERROR, reason, offender)
        self._records.clear()


def _when_processed(event: simpy.Event, callback: Callable[[simpy.Event], None]) -> None:
    """Run ``callback(event)`` once ``event`` is processed (now, if it already is)."""
    if event.callbacks is None:
        callback(event)
    else:
        event.callbacks.append(callback)


def _kill_if_started(event: simpy.Event, child: Child) -> None:
    if event.ok:
        child.terminate("kill")


def _shutdown_ok(reason: Term, expected: str, restart: RestartType) -> bool:
    """Whether a child stopped as asked (``shutdown/1``'s ``unlink_flush`` cases)."""
    if reason == expected:
        return True
    if restart == "permanent":
        return False
    if reason == "normal":
        return True
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown"


# --------------------------------------------------------------------------------------------
# Application master
# --------------------------------------------------------------------------------------------


class Application:
    """The application master of one application: starts the root supervisor, notices its exit.

    When the root exits the application has stopped: :attr:`stopped` fires with the reason and
    the application controller's notice (``info_exited``) is reported as
    ``application_exited``. For a ``permanent`` application OTP then stops the whole node; what
    that means for the simulation is the caller's business (wait on :attr:`stopped`).

    Args:
        env: the simulation environment.
        name: the application's name.
        root: the root supervisor (any :class:`Child`).
        type: ``permanent``, ``transient`` or ``temporary`` (``application:start/2``'s type;
            ``temporary`` is OTP's default, ``permanent`` the usual one for a release).
        on_event: ``on_event(kind, text)`` for the notice.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        root: Child,
        *,
        type: RestartType = "permanent",
        on_event: ReportSink | None = None,
    ) -> None:
        self.env = env
        self.name = name
        self.root = root
        self.type = type
        self._on_event = on_event
        self.stopped = env.event()
        """Fires with the reason the application stopped (the root's exit reason)."""
        self._stopping = False

    def start(self) -> simpy.Event:
        """Start the root; the event's value is ``("ok",)`` or ``("error", reason)``."""
        result = self.env.event()
        self.env.process(self._start(result))
        return result

    def _start(self, result: simpy.Event) -> _Gen:
        try:
            exited = yield self.root.start()
        except StartError as error:
            result.succeed(("error", error.reason))
            self._exited(error.reason)
            return
        _when_processed(exited, lambda event: self._exited(event.value))
        result.succeed(("ok",))

    def stop(self) -> simpy.Event:
        """``application:stop/1``: shut the root down; the application exits with ``stopped``."""
        self._stopping = True
        return self.root.terminate("shutdown")

    def _exited(self, reason: Term) -> None:
        if self.stopped.triggered:
            return
        reason = "stopped" if self._stopping else reason
        if self._on_event is not None:
            self._on_event(
                REPORT_APPLICATION_EXITED,
                "=NOTICE REPORT====\n"
                f"    application: {format_term(self.name)}\n"
                f"    exited: {format_term(reason)}\n"
                f"    type: {self.type}",
            )
        self.stopped.succeed(reason)
