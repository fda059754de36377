"""OTP supervision trees over service instances (``supervisors:`` in a scenario).

Each replica of a supervised service is an OTP worker (:class:`InstanceChild`), started,
watched and stopped by a :class:`patterns.otp_supervisor.Supervisor`; supervisors nest, and
each root runs under an :class:`patterns.otp_supervisor.Application` master. Semantics and
sources: :mod:`patterns.otp_supervisor` (reference §7, V17-V20).

How an instance plays the :class:`~patterns.otp_supervisor.Child` protocol:

* ``start()``: the container starts; the start has succeeded once the application serves
  (after its start-up delay), as ``start_link`` returns when ``init/1`` does. The replicas
  running when the run begins are warm: they serve at once. A host that is down, or a death
  during start-up, is a start error (``{error, Reason}``): the supervisor retries at once and
  each retry counts toward its intensity.
* Exit reasons: ``normal`` for exit code 0, ``shutdown`` when the supervisor asked it to stop
  and it did (SIGTERM, the requests inside finish), ``killed`` after the supervisor's
  ``kill`` (``brutal_kill``, or a shutdown timeout), and ``{Reason, ExitCode}`` for any other
  death: ``{'OOMKilled',137}``, ``{'Error',1}``.
* ``terminate("shutdown")`` is SIGTERM with no grace period of its own (the child spec's
  ``shutdown`` timeout is the supervisor's to enforce); ``terminate("kill")`` is SIGKILL.

Restarts are immediate: no CrashLoopBackOff (reference §7.6). A supervised service has no
Kubernetes restart policy and no liveness or startup probe (the scenario loader rejects both).
A pod that is evicted or drained is restarted by its supervisor once its replacement is
scheduled (the start waits for it). When a root supervisor gives up, its application stops and
its services stay down.

Event log: every ``=SUPERVISOR REPORT====`` as kind ``supervisor_<errorContext>``
(``supervisor_child_terminated``, ``supervisor_shutdown``, ``supervisor_start_error``,
``supervisor_shutdown_error``) with the report's text, the application master's notice as
``application_exited``, and each restart of an instance as ``restart``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy
from simpy.events import Event

from patterns.otp_supervisor import (
    Application,
    ChildSpec,
    ExitSignal,
    PidCounter,
    StartError,
    Supervisor,
    SupervisorFlags,
    Term,
)
from sim.kernel import KILL_EXIT_CODE

if TYPE_CHECKING:
    from sim.recorder import Recorder
    from sim.scenario import Scenario
    from sim.service import Instance, Service


class InstanceChild:
    """A service instance as an OTP worker (:class:`patterns.otp_supervisor.Child`).

    Args:
        instance: the replica.
        supervisor: its supervisor's name (for the ``restart`` lines).
    """

    def __init__(self, instance: Instance, supervisor: str) -> None:
        self.instance = instance
        self.supervisor = supervisor
        self.env = instance.env
        self.starts = 0
        self._starting: Event | None = None
        """The pending start, until the application serves or dies."""
        self._exit: Event | None = None
        """The running incarnation's exit event."""
        self._signal: ExitSignal | None = None
        """What the supervisor asked of the running incarnation."""
        instance.otp = self

    def start(self) -> Event:
        """Start the container; the event succeeds with its exit event once it serves."""
        started = self.env.event()
        self._starting = started
        self._signal = None
        pending = self.instance.pod_pending
        if pending is None:
            self._launch()
        else:
            self.env.process(self._after(pending))
        return started

    def _after(self, pending: Event) -> Generator[Event, Any, None]:
        """An evicted pod's worker starts once the replacement pod is scheduled."""
        yield pending
        self._launch()

    def _launch(self) -> None:
        instance = self.instance
        started = self._starting
        assert started is not None
        if not instance.host.up:
            self._starting = None
            started.fail(StartError(("node_down", instance.host.name)))
            return
        warm = self.starts == 0 and self.env.now == 0  # running when the run begins
        self.starts += 1
        if self.starts > 1:
            instance.restarts += 1
            instance.service.recorder.event(
                self.env.now,
                instance.host.name,
                instance.name,
                "restart",
                f"Restarting {instance.name} under supervisor {self.supervisor} "
                f"(restart {instance.restarts})",
            )
        instance.start(warm=warm)

    def listening(self) -> None:
        """The application serves: the start has succeeded."""
        started = self._starting
        if started is None:
            return
        self._starting = None
        self._exit = self.env.event()
        started.succeed(self._exit)

    def exited(self, reason: str, exit_code: int) -> None:
        """The container ended: a failed start, or the running incarnation's exit."""
        term = self._reason(reason, exit_code)
        started = self._starting
        if started is not None:
            self._starting = None
            started.fail(StartError(term))
            return
        exit_event = self._exit
        if exit_event is not None and not exit_event.triggered:
            self._exit = None
            exit_event.succeed(term)

    def _reason(self, reason: str, exit_code: int) -> Term:
        if self._signal == "kill":
            return "killed"
        if self._signal == "shutdown":
            return "shutdown"
        if exit_code == 0:
            return "normal"
        return (reason, exit_code)

    def terminate(self, signal: ExitSignal) -> Event:
        """The supervisor's exit signal: SIGTERM (``shutdown``) or SIGKILL (``kill``)."""
        exit_event = self._exit
        assert exit_event is not None, f"{self.instance.name} is not running"
        if signal == "kill":
            self._signal = "kill"
            self.instance.terminate("Error", KILL_EXIT_CODE)
        else:
            self._signal = self._signal or "shutdown"
            self.instance.stop(math.inf)
        return exit_event


def build_applications(
    env: simpy.Environment,
    scenario: Scenario,
    services: dict[str, Service],
    recorder: Recorder,
) -> list[Application]:
    """The scenario's supervision trees, one application per root, not started yet.

    Every replica of a supervised service becomes an :class:`InstanceChild` (which marks the
    instance as supervised); one :class:`PidCounter` numbers the whole node's processes.
    """
    pids = PidCounter()
    specs = {spec.name: spec for spec in scenario.supervisors}
    built: dict[str, Supervisor] = {}

    def report(name: str, kind: str, text: str) -> None:
        recorder.event(env.now, "-", name, kind, text)

    def supervisor_report(name: str, kind: str, text: str) -> None:
        report(name, f"supervisor_{kind}", text)

    def supervisor(name: str) -> Supervisor:
        if name in built:
            return built[name]
        spec = specs[name]
        children: list[ChildSpec] = []
        for child in spec.child_specs():
            shutdown = child.otp_shutdown()
            if child.child in specs:
                children.append(
                    ChildSpec(
                        child.child,
                        supervisor(child.child),
                        restart=child.restart,
                        type="supervisor",
                        shutdown=shutdown,
                    )
                )
                continue
            for instance in services[child.child].instances:
                children.append(
                    ChildSpec(
                        instance.name,
                        InstanceChild(instance, name),
                        restart=child.restart,
                        type="worker",
                        shutdown=shutdown,
                    )
                )
        built[name] = Supervisor(
            env,
            name,
            SupervisorFlags(spec.strategy, spec.intensity, int(spec.period)),
            children,
            on_event=functools.partial(supervisor_report, name),
            pids=pids,
        )
        return built[name]

    children = {c.child for spec in scenario.supervisors for c in spec.child_specs()}
    return [
        Application(
            env,
            spec.name,
            supervisor(spec.name),
            on_event=functools.partial(report, spec.name),
        )
        for spec in scenario.supervisors
        if spec.name not in children
    ]
