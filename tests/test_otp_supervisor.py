"""Erlang/OTP supervisors (§7; §12 V17-V20): restart decisions, intensity, strategies, shutdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import simpy

from patterns.otp_supervisor import (
    REPORT_APPLICATION_EXITED,
    Application,
    ChildSpec,
    Pid,
    PidCounter,
    StartError,
    Supervisor,
    SupervisorFlags,
    format_term,
    is_normal_exit,
    supervisor_report,
)


class FakeChild:
    """A worker taking ``start_time`` s to start and ``shutdown_time`` s to obey ``shutdown``.

    ``kill`` ends it at once (reason ``killed``); the next ``failing_starts`` starts fail with
    ``StartError("boom")``. It logs ``(time, "name up")``, ``(time, "name start failed")`` and
    ``(time, "name exit Reason")``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        log: list[tuple[float, str]],
        name: str,
        *,
        start_time: float = 0.0,
        shutdown_time: float = 0.0,
        failing_starts: int = 0,
    ) -> None:
        self.env = env
        self.log = log
        self.name = name
        self.start_time = start_time
        self.shutdown_time = shutdown_time
        self.failing_starts = failing_starts
        self.exited: simpy.Event | None = None

    def _log(self, what: str) -> None:
        self.log.append((self.env.now, f"{self.name} {what}"))

    def start(self) -> simpy.Event:
        """Start an incarnation after ``start_time``; the value is its exit event."""
        started = self.env.event()
        self.env.process(self._boot(started))
        return started

    def _boot(self, started: simpy.Event) -> Any:
        yield self.env.timeout(self.start_time)
        if self.failing_starts:
            self.failing_starts -= 1
            self._log("start failed")
            started.fail(StartError("boom"))
            return
        self.exited = self.env.event()
        self._log("up")
        started.succeed(self.exited)

    def exit(self, reason: object) -> None:
        """The running incarnation exits (a crash, a normal end, or a signal obeyed)."""
        if self.exited is not None and not self.exited.triggered:
            self._log(f"exit {format_term(reason)}")
            self.exited.succeed(reason)

    def terminate(self, signal: str) -> simpy.Event:
        """``kill``: exit now; ``shutdown``: exit after ``shutdown_time``."""
        exited = self.exited
        assert exited is not None
        if signal == "kill":
            self.exit("killed")
        else:
            self.env.process(self._stop(exited))
        return exited

    def _stop(self, exited: simpy.Event) -> Any:
        yield self.env.timeout(self.shutdown_time)
        if self.exited is exited:
            self.exit("shutdown")


class World:
    """One environment, one timeline of child events and reports, one pid counter."""

    def __init__(self) -> None:
        self.env = simpy.Environment()
        self.log: list[tuple[float, str]] = []
        self.reports: list[str] = []
        self.pids = PidCounter()

    def sink(self, name: str) -> Callable[[str, str], None]:
        """An ``on_event`` that logs ``(time, "name report kind")`` and keeps the text."""

        def on_event(kind: str, text: str) -> None:
            self.log.append((self.env.now, f"{name} report {kind}"))
            self.reports.append(text)

        return on_event

    def child(self, name: str, **kwargs: Any) -> FakeChild:
        """A :class:`FakeChild` logging to this world."""
        return FakeChild(self.env, self.log, name, **kwargs)

    def supervisor(
        self, name: str, specs: Sequence[ChildSpec], flags: SupervisorFlags | None = None
    ) -> Supervisor:
        """A supervisor reporting to this world, drawing pids from its counter."""
        return Supervisor(self.env, name, flags, specs, on_event=self.sink(name), pids=self.pids)

    def start(self, sup: Supervisor) -> simpy.Event:
        """Start ``sup`` now, run until it is up, log its exit; returns its exit event."""
        started = sup.start()
        self.env.run(until=started)
        exited: simpy.Event = started.value
        self.watch(sup.name, exited)
        return exited

    def watch(self, name: str, exited: simpy.Event) -> None:
        """Log ``(time, "name exit Reason")`` when ``exited`` fires."""
        exited.callbacks.append(
            lambda event: self.log.append((self.env.now, f"{name} exit {event.value}"))
        )

    def at(self, time: float, action: Callable[[], object]) -> None:
        """Run ``action`` at ``time``."""

        def run() -> Any:
            yield self.env.timeout(time - self.env.now)
            action()

        self.env.process(run())

    def after(self, since: int) -> list[tuple[float, str]]:
        """The timeline from entry ``since`` on."""
        return self.log[since:]


def worker_report(context: str, reason: str, pid: str, child_id: str = "w") -> str:
    return (
        "=SUPERVISOR REPORT====\n"
        "    supervisor: {local,sup}\n"
        f"    errorContext: {context}\n"
        f"    reason: {reason}\n"
        f"    offender: [{{pid,{pid}}},{{id,{child_id}}},{{restart_type,permanent}},"
        "{shutdown,5000},{child_type,worker}]"
    )


def crash_w_at(
    times: Sequence[float], flags: SupervisorFlags | None = None
) -> tuple[World, Supervisor, FakeChild]:
    """Supervisor ``sup`` of [w, other] (one_for_one); w crashes with badarg at ``times``."""
    world = World()
    w, other = world.child("w"), world.child("other")
    sup = world.supervisor("sup", [ChildSpec("w", w), ChildSpec("other", other)], flags)
    world.start(sup)
    for t in times:
        world.at(t, lambda: w.exit("badarg"))
    world.env.run(until=60)
    return world, sup, w


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_default_flags_are_one_for_one_1_restart_in_5_s() -> None:
    """``default_flags``: one_for_one, intensity 1, period 5."""
    assert SupervisorFlags() == SupervisorFlags("one_for_one", 1, 5)


@pytest.mark.parametrize(
    "kwargs",
    [{"intensity": -1}, {"period": 0}, {"strategy": "one_for_none"}, {"intensity": 1.5}],
)
def test_flags_reject_what_check_flags_rejects(kwargs: dict[str, Any]) -> None:
    """``check_flags``: intensity an integer >= 0, period an integer >= 1, a known strategy."""
    with pytest.raises(ValueError, match="invalid_"):
        SupervisorFlags(**kwargs)


def test_child_spec_defaults_shutdown_by_type() -> None:
    """``default_child_spec``: a permanent worker; shutdown 5000 ms for workers, infinity else."""
    worker = ChildSpec("w")
    assert (worker.restart, worker.type, worker.effective_shutdown) == ("permanent", "worker", 5000)
    assert ChildSpec("s", type="supervisor").effective_shutdown == "infinity"
    assert ChildSpec("s", type="supervisor", shutdown=100).effective_shutdown == 100
    with pytest.raises(ValueError, match="invalid_shutdown"):
        ChildSpec("w", shutdown=-1)
    with pytest.raises(ValueError, match="invalid_restart_type"):
        ChildSpec("w", restart="forever")  # type: ignore[arg-type]


def test_format_term_prints_erlang_terms() -> None:
    """Atoms bare or quoted, tuples in braces, None as undefined, pids as <0.N.0>."""
    term = ("shutdown", ["EXIT", None, True, 5000, "reached_max_restart_intensity", Pid(7)])
    assert format_term(term) == (
        "{shutdown,['EXIT',undefined,true,5000,reached_max_restart_intensity,<0.7.0>]}"
    )
    assert format_term("when") == "'when'"
    assert format_term("it's") == "'it\\'s'"


def test_normal_exit_reasons() -> None:
    """normal, shutdown and {shutdown, Term} are normal; anything else is not."""
    assert all(map(is_normal_exit, ["normal", "shutdown", ("shutdown", "x")]))
    assert not any(map(is_normal_exit, ["killed", "badarg", ("shutdown", 1, 2), ("normal", 1)]))


# --------------------------------------------------------------------------------------------
# V17: restart intensity
# --------------------------------------------------------------------------------------------


def test_v17_second_crash_within_5_s_shuts_the_supervisor_down() -> None:
    """V17: with the defaults a crash at t=0 is restarted and a second one at t=4 is one too many.

    The supervisor reports reached_max_restart_intensity, stops `other` and exits shutdown.
    """
    world, sup, _ = crash_w_at([0, 4])
    assert world.log == [
        (0, "w up"),
        (0, "other up"),
        (0, "w exit badarg"),
        (0, "sup report child_terminated"),
        (0, "w up"),
        (4, "w exit badarg"),
        (4, "sup report child_terminated"),
        (4, "sup report shutdown"),
        (4, "other exit shutdown"),
        (4, "sup exit shutdown"),
    ]
    assert world.reports == [
        worker_report("child_terminated", "badarg", "<0.1.0>"),
        worker_report("child_terminated", "badarg", "<0.3.0>"),
        worker_report("shutdown", "reached_max_restart_intensity", "<0.3.0>"),
    ]
    assert sup.restarts == (4, 0)
    assert not sup.running


def test_v17_crashes_6_s_apart_are_both_restarted() -> None:
    """V17: crashes at t=0 and t=6 are in different windows: both restarted."""
    world, sup, _ = crash_w_at([0, 6])
    assert [entry for entry in world.log if entry[0] == 6] == [
        (6, "w exit badarg"),
        (6, "sup report child_terminated"),
        (6, "w up"),
    ]
    assert sup.running
    assert sup.restarts == (6,)


@pytest.mark.parametrize(
    ("second_crash", "gives_up"), [(5.0, True), (5.9, True), (6.0, False), (6.1, False)]
)
def test_v17_window_uses_whole_seconds_and_is_inclusive(
    second_crash: float, gives_up: bool
) -> None:
    """V17: now = floor(env.now), kept while now <= t + period: 0.0 and 5.9 share a window."""
    _, sup, _ = crash_w_at([0.0, second_crash])
    assert sup.running is not gives_up


def test_v17_intensity_0_exits_on_the_first_crash() -> None:
    """V17: intensity 0: the first restart attempt already exceeds the limit."""
    world, sup, _ = crash_w_at([3], SupervisorFlags(intensity=0))
    assert world.log[2:] == [
        (3, "w exit badarg"),
        (3, "sup report child_terminated"),
        (3, "sup report shutdown"),
        (3, "other exit shutdown"),
        (3, "sup exit shutdown"),
    ]
    assert sup.restarts == (3,)


@pytest.mark.parametrize(("fourth_crash", "gives_up"), [(9, True), (10, True), (11, False)])
def test_v17_intensity_3_period_10_fourth_crash_within_10_s(
    fourth_crash: int, gives_up: bool
) -> None:
    """V17: intensity 3 / period 10: a 4th crash at 9 or 10 (10 <= 0 + 10) kills, at 11 not."""
    world, sup, _ = crash_w_at([0, 3, 6, fourth_crash], SupervisorFlags(intensity=3, period=10))
    assert sup.running is not gives_up
    last = [entry for entry in world.log if entry[0] == fourth_crash]
    if gives_up:
        assert last[-1] == (fourth_crash, "sup exit shutdown")
        assert sup.restarts == (fourth_crash, 6, 3, 0)
    else:
        assert last[-1] == (fourth_crash, "w up")
        assert sup.restarts == (11, 6, 3)


# --------------------------------------------------------------------------------------------
# V18: restart types
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "reason", "restarted", "reported"),
    [
        ("transient", "normal", False, False),
        ("transient", "shutdown", False, False),
        ("transient", ("shutdown", "maintenance"), False, False),
        ("transient", "badarg", True, True),
        ("temporary", "badarg", False, True),
        ("temporary", "normal", False, False),
        ("permanent", "normal", True, True),
        ("permanent", ("shutdown", "maintenance"), True, True),
    ],
)
def test_v18_restart_decision_by_restart_type_and_reason(
    restart: Any, reason: object, restarted: bool, reported: bool
) -> None:
    """V18 (do_restart): what is restarted, reported and counted, by restart type and reason.

    Transient restarts only abnormal exits; temporary never restarts; permanent always does and
    counts it. A temporary child is forgotten, a transient one kept without a pid.
    """
    world = World()
    w = world.child("w")
    sup = world.supervisor("sup", [ChildSpec("w", w, restart=restart)])
    world.start(sup)
    world.at(1, lambda: w.exit(reason))
    world.env.run(until=10)
    expected = [(1, f"w exit {format_term(reason)}")]
    if reported:
        expected.append((1, "sup report child_terminated"))
    if restarted:
        expected.append((1, "w up"))
    assert world.after(1) == expected
    assert sup.restarts == ((1,) if restarted else ())
    if restarted:
        assert sup.which_children() == [("w", Pid(2), "worker")]
    elif restart == "temporary":
        assert sup.which_children() == []
    else:
        assert sup.which_children() == [("w", None, "worker")]


# --------------------------------------------------------------------------------------------
# V19: one_for_all and rest_for_one
# --------------------------------------------------------------------------------------------


def three_children(strategy: Any) -> tuple[World, Supervisor]:
    """[a, b, c] each starting in 0.5 s; a stops in 2 s, c in 1 s; b crashes at t=10."""
    world = World()
    a = world.child("a", start_time=0.5, shutdown_time=2)
    b = world.child("b", start_time=0.5)
    c = world.child("c", start_time=0.5, shutdown_time=1)
    specs = [ChildSpec("a", a), ChildSpec("b", b), ChildSpec("c", c)]
    sup = world.supervisor("sup", specs, SupervisorFlags(strategy))
    world.start(sup)
    assert world.log == [(0.5, "a up"), (1.0, "b up"), (1.5, "c up")]
    world.at(10, lambda: b.exit("badarg"))
    return world, sup


def test_v19_one_for_all_stops_in_reverse_then_starts_in_order() -> None:
    """V19: one_for_all, b crashes: c then a are stopped, then a, b, c start; one restart.

    The stops are sequential, each with the child's own shutdown time.
    """
    world, sup = three_children("one_for_all")
    world.env.run(until=30)
    assert world.after(3) == [
        (10, "b exit badarg"),
        (10, "sup report child_terminated"),
        (11, "c exit shutdown"),
        (13, "a exit shutdown"),
        (13.5, "a up"),
        (14.0, "b up"),
        (14.5, "c up"),
    ]
    assert sup.restarts == (10,)
    assert sup.which_children() == [
        ("c", Pid(6), "worker"),
        ("b", Pid(5), "worker"),
        ("a", Pid(4), "worker"),
    ]


def test_v19_rest_for_one_restarts_the_child_and_those_after_it() -> None:
    """V19: rest_for_one, b crashes: c is stopped, then b and c start; a is left alone."""
    world, sup = three_children("rest_for_one")
    world.env.run(until=30)
    assert world.after(3) == [
        (10, "b exit badarg"),
        (10, "sup report child_terminated"),
        (11, "c exit shutdown"),
        (11.5, "b up"),
        (12.0, "c up"),
    ]
    assert sup.restarts == (10,)
    assert [pid for _, pid, _ in sup.which_children()] == [Pid(5), Pid(4), Pid(1)]


def test_v19_exit_during_group_restart_is_flushed_not_restarted_twice() -> None:
    """A child dying while its siblings are stopped is found dead, and its exit is then ignored.

    Its turn to be stopped reports shutdown_error with its own reason; the queued exit of the old
    incarnation changes nothing after the restart (unlink_flush).
    """
    world, sup = three_children("one_for_all")
    a = sup.specs[0].child
    assert isinstance(a, FakeChild)
    world.at(10.5, lambda: a.exit("badarith"))
    world.env.run(until=30)
    assert world.after(3) == [
        (10, "b exit badarg"),
        (10, "sup report child_terminated"),
        (10.5, "a exit badarith"),
        (11, "c exit shutdown"),
        (11, "sup report shutdown_error"),
        (11.5, "a up"),
        (12.0, "b up"),
        (12.5, "c up"),
    ]
    assert world.reports[-1] == worker_report("shutdown_error", "badarith", "<0.1.0>", "a")
    assert sup.restarts == (10,)


def test_one_for_all_restarts_a_transient_child_that_had_ended_normally() -> None:
    """A group restart starts a transient child that had ended normally, forgets a temporary one."""
    world = World()
    a = world.child("a")
    b = world.child("b")
    t = world.child("t")
    specs = [
        ChildSpec("a", a, restart="transient"),
        ChildSpec("b", b),
        ChildSpec("t", t, restart="temporary"),
    ]
    sup = world.supervisor("sup", specs, SupervisorFlags("one_for_all"))
    world.start(sup)
    world.at(1, lambda: a.exit("normal"))
    world.at(2, lambda: b.exit("badarg"))
    world.env.run(until=10)
    assert world.after(3) == [
        (1, "a exit normal"),
        (2, "b exit badarg"),
        (2, "sup report child_terminated"),
        (2, "t exit shutdown"),
        (2, "a up"),
        (2, "b up"),
    ]
    assert [row[0] for row in sup.which_children()] == ["b", "a"]


# --------------------------------------------------------------------------------------------
# V20: escalation
# --------------------------------------------------------------------------------------------


def escalation(restart: Any) -> tuple[World, Supervisor, Application]:
    """Application `shop` with root `top` [sub (supervisor, `restart`), x]; sub = [w]; defaults.

    w crashes at 1, 2, 3 and 4.
    """
    world = World()
    w, x = world.child("w"), world.child("x")
    s = world.supervisor("sub", [ChildSpec("w", w)])
    p = world.supervisor(
        "top", [ChildSpec("sub", s, restart=restart, type="supervisor"), ChildSpec("x", x)]
    )
    app = Application(world.env, "shop", p, on_event=world.sink("shop"))
    started = app.start()
    world.env.run(until=started)
    assert started.value == ("ok",)
    for t in (1, 2, 3, 4):
        world.at(t, lambda: w.exit("badarg"))
    world.env.run(until=20)
    return world, p, app


def test_v20_permanent_child_supervisor_gives_up_twice_and_so_does_its_parent() -> None:
    """V20: a permanent child supervisor giving up twice in 5 s makes its parent give up.

    sub gives up at t=2 (exit shutdown): top restarts it (1 restart in top's window); sub gives
    up again at t=4: top's second restart in 5 s is one too many, top stops x and exits, and the
    application stops with reason shutdown.
    """
    world, p, app = escalation("permanent")
    assert [entry for entry in world.log if entry[0] in (2, 4)] == [
        (2, "w exit badarg"),
        (2, "sub report child_terminated"),
        (2, "sub report shutdown"),
        (2, "top report child_terminated"),
        (2, "w up"),
        (4, "w exit badarg"),
        (4, "sub report child_terminated"),
        (4, "sub report shutdown"),
        (4, "top report child_terminated"),
        (4, "top report shutdown"),
        (4, "x exit shutdown"),
        (4, "shop report application_exited"),
    ]
    assert world.reports[-2] == (
        "=SUPERVISOR REPORT====\n"
        "    supervisor: {local,top}\n"
        "    errorContext: shutdown\n"
        "    reason: reached_max_restart_intensity\n"
        "    offender: [{pid,<0.6.0>},{id,sub},{restart_type,permanent},{shutdown,infinity},"
        "{child_type,supervisor}]"
    )
    assert world.reports[-1] == (
        "=NOTICE REPORT====\n    application: shop\n    exited: shutdown\n    type: permanent"
    )
    assert p.restarts == (4, 2)
    assert app.stopped.triggered
    assert app.stopped.value == "shutdown"


def test_v20_transient_child_supervisor_is_not_restarted_after_giving_up() -> None:
    """V20: a transient child supervisor that gives up (reason shutdown) is not restarted.

    No report, not counted; top carries on with x.
    """
    world, p, app = escalation("transient")
    assert world.after(2) == [
        (1, "w exit badarg"),
        (1, "sub report child_terminated"),
        (1, "w up"),
        (2, "w exit badarg"),
        (2, "sub report child_terminated"),
        (2, "sub report shutdown"),
    ]
    assert p.restarts == ()
    assert p.which_children() == [("x", Pid(3), "worker"), ("sub", None, "supervisor")]
    assert not app.stopped.triggered


def test_stopping_the_application_waits_for_the_whole_tree() -> None:
    """A supervisor child's default shutdown is infinity: top waits while sub stops its worker."""
    world = World()
    w = world.child("w", shutdown_time=3)
    s = world.supervisor("sub", [ChildSpec("w", w)])
    p = world.supervisor("top", [ChildSpec("sub", s, type="supervisor")])
    app = Application(world.env, "shop", p, on_event=world.sink("shop"))
    world.env.run(until=app.start())
    world.at(10, app.stop)
    world.env.run(until=20)
    assert world.after(1) == [(13, "w exit shutdown"), (13, "shop report application_exited")]
    assert app.stopped.value == "stopped"


# --------------------------------------------------------------------------------------------
# Shutdown specs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shutdown", "expected_log", "reports"),
    [
        ("brutal_kill", [(10, "slow exit killed"), (10, "sup exit shutdown")], 0),
        (
            5000,
            [
                (15, "slow exit killed"),
                (15, "sup report shutdown_error"),
                (15, "sup exit shutdown"),
            ],
            1,
        ),
        (10_000, [(18, "slow exit shutdown"), (18, "sup exit shutdown")], 0),
        ("infinity", [(18, "slow exit shutdown"), (18, "sup exit shutdown")], 0),
    ],
)
def test_shutdown_spec_decides_how_long_a_child_may_take(
    shutdown: Any, expected_log: list[tuple[float, str]], reports: int
) -> None:
    """Shutdown specs for a child that takes 8 s to stop, shut down at t=10.

    brutal_kill kills it at once; 5000 ms kills it at t=15 and reports shutdown_error killed;
    10000 ms and infinity wait until t=18.
    """
    world = World()
    slow = world.child("slow", shutdown_time=8)
    sup = world.supervisor("sup", [ChildSpec("slow", slow, shutdown=shutdown)])
    world.start(sup)
    world.at(10, lambda: sup.terminate("shutdown"))
    world.env.run(until=30)
    assert world.after(1) == expected_log
    assert len(world.reports) == reports
    if reports:
        assert world.reports[0] == (
            "=SUPERVISOR REPORT====\n"
            "    supervisor: {local,sup}\n"
            "    errorContext: shutdown_error\n"
            "    reason: killed\n"
            "    offender: [{pid,<0.1.0>},{id,slow},{restart_type,permanent},{shutdown,5000},"
            "{child_type,worker}]"
        )


def test_killing_a_supervisor_kills_its_children_at_once() -> None:
    """exit(Sup, kill): the supervisor and its linked children die now, whatever their shutdown."""
    world = World()
    slow = world.child("slow", shutdown_time=8)
    sup = world.supervisor("sup", [ChildSpec("slow", slow, shutdown="infinity")])
    world.start(sup)
    world.at(10, lambda: sup.terminate("kill"))
    world.env.run(until=30)
    assert world.after(1) == [(10, "slow exit killed"), (10, "sup exit killed")]


# --------------------------------------------------------------------------------------------
# Start errors
# --------------------------------------------------------------------------------------------


def test_failed_restart_is_retried_and_each_attempt_counts() -> None:
    """A failed restart is retried at once, and the retry counts toward the intensity.

    With the defaults the retry is the second attempt in the window: the supervisor gives up,
    naming the child {restarting, Pid}.
    """
    world = World()
    w = world.child("w")
    sup = world.supervisor("sup", [ChildSpec("w", w)])
    world.start(sup)

    def crash() -> None:
        w.failing_starts = 5
        w.exit("badarg")

    world.at(1, crash)
    world.env.run(until=10)
    assert world.after(1) == [
        (1, "w exit badarg"),
        (1, "sup report child_terminated"),
        (1, "w start failed"),
        (1, "sup report start_error"),
        (1, "sup report shutdown"),
        (1, "sup exit shutdown"),
    ]
    assert world.reports[1] == worker_report("start_error", "boom", "<0.1.0>")
    assert world.reports[2] == worker_report(
        "shutdown", "reached_max_restart_intensity", "{restarting,<0.1.0>}"
    )


def test_failed_restarts_are_retried_until_one_succeeds() -> None:
    """try_again: attempts at t=1, 1.5 and 2.0 are three restarts (whole seconds 1, 1, 2)."""
    world = World()
    w = world.child("w", start_time=0.5)
    sup = world.supervisor("sup", [ChildSpec("w", w)], SupervisorFlags(intensity=3))
    world.start(sup)

    def crash() -> None:
        w.failing_starts = 2
        w.exit("badarg")

    world.at(1, crash)
    world.env.run(until=10)
    assert world.after(1) == [
        (1, "w exit badarg"),
        (1, "sup report child_terminated"),
        (1.5, "w start failed"),
        (1.5, "sup report start_error"),
        (2.0, "w start failed"),
        (2.0, "sup report start_error"),
        (2.5, "w up"),
    ]
    assert sup.restarts == (2, 1, 1)
    assert sup.which_children() == [("w", Pid(2), "worker")]


def test_child_failing_to_start_at_init_fails_the_supervisor_start() -> None:
    """A child failing to start in init stops the started ones and fails the supervisor's start."""
    world = World()
    a, b = world.child("a"), world.child("b", failing_starts=1)
    sup = world.supervisor("sup", [ChildSpec("a", a), ChildSpec("b", b)])
    started = sup.start()
    started.defused = True
    world.env.run(until=5)
    assert world.log == [
        (0, "a up"),
        (0, "b start failed"),
        (0, "sup report start_error"),
        (0, "a exit shutdown"),
    ]
    assert world.reports == [worker_report("start_error", "boom", "undefined", "b")]
    assert isinstance(started.value, StartError)
    assert started.value.reason == ("shutdown", ("failed_to_start_child", "b", "boom"))
    assert not sup.running


# --------------------------------------------------------------------------------------------
# simple_one_for_one
# --------------------------------------------------------------------------------------------


def test_simple_one_for_one_dynamic_children() -> None:
    """simple_one_for_one: one_for_one over dynamic children, stopped all at once.

    Children come from start_child with the template's spec; a crash restarts only that child; a
    transient child ending normally is dropped; at shutdown all are signalled at once under one
    2500 ms timer and the late one is killed (one shutdown_error with nb_children).
    """
    world = World()
    template = ChildSpec("conn", restart="transient", shutdown=2500)
    sup = world.supervisor("pool", [template], SupervisorFlags("simple_one_for_one"))
    world.start(sup)
    conns = [world.child(f"c{i}", shutdown_time=i) for i in (1, 2, 3)]
    replies = [sup.start_child(conn) for conn in conns]
    world.env.run(until=1)
    assert [reply.value for reply in replies] == [("ok", Pid(1)), ("ok", Pid(2)), ("ok", Pid(3))]
    world.at(5, lambda: conns[1].exit("badarg"))
    world.at(6, lambda: conns[0].exit("normal"))
    world.at(10, lambda: sup.terminate("shutdown"))
    world.env.run(until=30)
    assert world.after(3) == [
        (5, "c2 exit badarg"),
        (5, "pool report child_terminated"),
        (5, "c2 up"),
        (6, "c1 exit normal"),
        (12, "c2 exit shutdown"),
        (12.5, "c3 exit killed"),
        (12.5, "pool report shutdown_error"),
        (12.5, "pool exit shutdown"),
    ]
    assert world.reports[-1] == (
        "=SUPERVISOR REPORT====\n"
        "    supervisor: {local,pool}\n"
        "    errorContext: shutdown_error\n"
        "    reason: killed\n"
        "    offender: [{nb_children,1},{id,conn},{restart_type,transient},{shutdown,2500},"
        "{child_type,worker}]"
    )
    assert sup.restarts == (5,)


def test_start_child_rejects_a_duplicate_id() -> None:
    """start_child with an id in use: {already_started, Pid}; a new id is started and added last."""
    world = World()
    a, b = world.child("a"), world.child("b")
    sup = world.supervisor("sup", [ChildSpec("a", a)])
    world.start(sup)
    duplicate = sup.start_child(ChildSpec("a", b))
    added = sup.start_child(ChildSpec("b", b))
    world.env.run(until=1)
    assert duplicate.value == ("error", ("already_started", Pid(1)))
    assert added.value == ("ok", Pid(2))
    assert [row[0] for row in sup.which_children()] == ["b", "a"]


def test_report_text_matches_the_sasl_layout() -> None:
    """format_log_multi: supervisor, errorContext, reason and offender on indented lines."""
    text = supervisor_report("my_sup", "child_terminated", ("badarith", []), [("pid", Pid(123))])
    assert text == (
        "=SUPERVISOR REPORT====\n"
        "    supervisor: {local,my_sup}\n"
        "    errorContext: child_terminated\n"
        "    reason: {badarith,[]}\n"
        "    offender: [{pid,<0.123.0>}]"
    )
    assert REPORT_APPLICATION_EXITED == "application_exited"
