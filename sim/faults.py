"""Fault injectors: scheduled at ``at``, undone after ``duration`` (or never).

* ``latency``: on a service, each hop's service time becomes ``time * factor + add``; on an edge
  ``a -> b``, each call is delayed by ``add`` before it reaches ``b`` (Envoy fault-injection delay).
* ``error_rate``: on a service, that fraction of finished hops fail with ``error``; on an edge, that
  fraction of calls fail at once without reaching the callee (Envoy fault-injection abort).
* ``partition``: on an edge ``a -> b``; ``drop`` refuses each call at once (``unavailable``:
  a connect failure, the request never reaches ``b``), ``blackhole`` holds it until the caller's
  timeout (calls still held when the partition ends go through then).
* ``poison_request``: requests of a class, or a fraction of requests (drawn once per request id
  from the fault's own stream, so a retry of a poison request is poison), crash the instance of
  ``target`` whose worker picks them up (``Error``, exit code 1); the request ends ``reset``.
* ``hang``: the chosen instances (``count``/``percent``, default all) hang: work a worker picks
  up waits until the hang ends, probes that need the application time out; a restart (a new
  process) clears it.
* ``crash``: at ``at``, ``count`` (or ``percent`` of the replicas, rounded up) of the instances
  that are alive are SIGKILLed (reason ``Error``, exit code 137); the restart policy brings them
  back. Which instances is drawn from the fault's own random stream.
* ``traffic_surge``: the arrival rate is multiplied by ``factor`` (see ``sim/workload.py``).
* ``host_down``: the host goes down: every process on it dies (reason ``HostDown``, exit 137), and
  nothing restarts there until it is back; when it comes back its containers start afresh. A
  host down for longer than ``UNREACHABLE_EVICTION`` (340 s) loses its pods: they are replaced
  on other hosts (``sim/world.py``).
* ``crash_loop``: the chosen instances exit ``after`` seconds after every start while the fault
  lasts (and those running when it begins, ``after`` seconds after that), with ``exit_code``.
* ``drain``: ``kubectl drain``: the host is cordoned, each pod on it is evicted once its
  PodDisruptionBudget allows (kubectl retries every :data:`DRAIN_RETRY` s), stops gracefully and
  is replaced on another host; the host is uncordoned when the fault ends.

Overlapping faults on one target combine: delays add, factors multiply, and error rates combine
as independent failures (``1 - prod(1 - rate)``); a blackhole wins over a drop partition; any
poison fault makes a request poison.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from simpy.events import Event

from sim import scenario as sc
from sim import units
from sim.kernel import KILL_EXIT_CODE, Process
from sim.memory import allocate, grow
from sim.request import Request
from sim.service import POD_NAMESPACE, Instance, InstanceState, Perturbation, uniform_source
from sim.streams import stream
from sim.workload import Surge

if TYPE_CHECKING:
    from sim.world import World


Perturbing = (
    sc.LatencyFault | sc.ErrorRateFault | sc.PartitionFault | sc.PoisonRequestFault | sc.HangFault
)
"""Faults applied as a :class:`Perturbation` of a service or an edge while they last."""
PERTURBING = (
    sc.LatencyFault,
    sc.ErrorRateFault,
    sc.PartitionFault,
    sc.PoisonRequestFault,
    sc.HangFault,
)


DRAIN_RETRY = 5.0
"""Seconds kubectl drain waits before retrying an eviction the API refused (a 429 from a
PodDisruptionBudget) [recall: kubectl ``drain`` evicts in a loop with a 5 s sleep]."""


def fault_name(index: int, fault: sc.Fault) -> str:
    """A fault's name: its own, or ``<kind>-<index>``."""
    return fault.name or f"{fault.kind}-{index}"


class Faults:
    """Schedules a scenario's faults on a world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._active: dict[str, list[Perturbing]] = {}
        self._poison: dict[str, Callable[[Request], bool]] = {}
        self._hung: dict[str, dict[Instance, tuple[int, Event]]] = {}
        """The instances each hang fault holds, with the incarnation that hangs and the end."""
        self._hang_ends: dict[str, Event] = {}
        self._on_start: dict[str, Callable[[Instance], None]] = {}
        """The start hook of each crash-loop fault in force."""

    def schedule(self, faults: list[sc.Fault]) -> None:
        """Arrange every fault's start and end."""
        for index, fault in enumerate(faults):
            name = fault_name(index, fault)
            if isinstance(fault, sc.TrafficSurgeFault):
                end = fault.at + fault.duration if fault.duration else math.inf
                self.world.workload.surges.append(Surge(name, fault.at, end, fault.factor))
            self._at(fault.at, functools.partial(self._start, name, fault))
            if fault.duration is not None and not isinstance(fault, sc.CrashFault):
                self._at(fault.at + fault.duration, functools.partial(self._end, name, fault))

    def _at(self, t: float, action: Callable[[], None]) -> None:
        self.world.env.timeout(t).callbacks.append(lambda _: action())

    def _log(self, name: str, fault: sc.Fault, kind: str, detail: str) -> None:
        world = self.world
        target = getattr(fault, "target", world.scenario.workload.entry)
        world.recorder.event(
            world.env.now, "-", target, kind, f"fault {name} ({fault.kind}): {detail}"
        )

    def _start(self, name: str, fault: sc.Fault) -> None:
        if isinstance(fault, PERTURBING):
            if isinstance(fault, sc.HangFault):
                victims = self._choose(name, fault, None)
                ended = self._hang_ends[name] = self.world.env.event()
                self._hung[name] = {v: (v.incarnation, ended) for v in victims}
                detail = f"hanging {', '.join(v.name for v in victims) or 'nothing'}"
            else:
                detail = _describe(fault)
            if isinstance(fault, sc.PoisonRequestFault):
                self._poison[name] = self._poisoner(name, fault)
            self._active.setdefault(fault.target, []).append(fault)
            self._apply(fault.target)
            self._log(name, fault, "fault_start", detail)
        elif isinstance(fault, sc.CrashFault):
            self._crash(name, fault)
        elif isinstance(fault, sc.TrafficSurgeFault):
            self._log(name, fault, "fault_start", f"arrival rate x{fault.factor:g}")
        elif isinstance(fault, sc.HostDownFault):
            self._host_down(name, fault)
        elif isinstance(fault, sc.MemoryHogFault):
            self._hog(name, fault)
        elif isinstance(fault, sc.MemoryLeakFault | sc.MemorySpikeFault):
            self._memory(name, fault)
        elif isinstance(fault, sc.CrashLoopFault):
            self._crash_loop(name, fault)
        elif isinstance(fault, sc.DrainFault):
            self._drain(name, fault)

    def _end(self, name: str, fault: sc.Fault) -> None:
        if isinstance(fault, PERTURBING):
            self._active[fault.target].remove(fault)
            self._hung.pop(name, None)
            self._apply(fault.target)
            if isinstance(fault, sc.HangFault):
                self._hang_ends.pop(name).succeed()  # the work held by the hang goes on
        elif isinstance(fault, sc.HostDownFault):
            self.world.bring_up(fault.target)
        elif isinstance(fault, sc.CrashLoopFault):
            self.world.services[fault.target].on_start.remove(self._on_start.pop(name))
        elif isinstance(fault, sc.DrainFault):
            self.world.cordoned.discard(fault.target)
            self._kubectl(fault.target, f"node/{fault.target} uncordoned")
        self._log(name, fault, "fault_end", "ended")

    def _poisoner(self, name: str, fault: sc.PoisonRequestFault) -> Callable[[Request], bool]:
        """Whether a request is poison for ``fault``: by class, or drawn once per request id."""
        if fault.request_class is not None:
            classes = [c.name for c in self.world.scenario.workload.classes]
            poison_class = classes.index(fault.request_class)
            return lambda request: request.cls == poison_class
        fraction = fault.fraction or 0.0
        draw = uniform_source(stream(self.world.seed, f"faults/{name}"))
        decided: dict[int, bool] = {}

        def poisoned(request: Request) -> bool:
            verdict = decided.get(request.id)
            if verdict is None:
                verdict = decided[request.id] = draw() < fraction
            return verdict

        return poisoned

    def _apply(self, target: str) -> None:
        faults = self._active.get(target, [])
        perturbation: Perturbation | None = None
        world = self.world
        edge = None
        if "->" in target:
            caller, _, callee = (part.strip() for part in target.partition("->"))
            edge = world.edge(caller, callee)
        before = edge.perturbation if edge is not None else None
        if faults:
            perturbation = Perturbation()
            survive = 1.0
            poisons: list[Callable[[Request], bool]] = []
            for fault in faults:
                if isinstance(fault, sc.LatencyFault):
                    perturbation.add += fault.add
                    perturbation.factor *= fault.factor
                elif isinstance(fault, sc.ErrorRateFault):
                    survive *= 1.0 - fault.rate
                elif isinstance(fault, sc.PartitionFault):
                    if perturbation.partition != "blackhole":
                        perturbation.partition = fault.mode
                elif isinstance(fault, sc.HangFault):
                    perturbation.hangs.update(self._hung[fault_name_of(fault, world)])
                else:
                    poisons.append(self._poison[fault_name_of(fault, self.world)])
            perturbation.error_rate = 1.0 - survive
            if poisons:
                perturbation.poison = (
                    poisons[0] if len(poisons) == 1 else lambda r: any(p(r) for p in poisons)
                )
            if perturbation.partition == "blackhole":
                held = before.healed if before is not None else None
                perturbation.healed = held if held is not None else world.env.event()
        if (
            before is not None
            and before.healed is not None
            and (perturbation is None or perturbation.healed is not before.healed)
        ):
            before.healed.succeed()  # healed: the held calls go through
        if edge is not None:
            edge.perturbation = perturbation
        else:
            world.services[target].perturbation = perturbation

    def _choose(
        self,
        name: str,
        fault: sc.CrashFault
        | sc.CrashLoopFault
        | sc.HangFault
        | sc.MemoryLeakFault
        | sc.MemorySpikeFault,
        default: int | None,
        alive_only: bool = True,
    ) -> list[Instance]:
        """The instances a fault hits, drawn from the fault's own stream.

        Live ones only, unless ``alive_only`` is False. ``count``, or ``percent`` (rounded
        up) of them; ``default`` (None: all) when neither.
        """
        service = self.world.services[fault.target]
        alive = [
            i
            for i in service.instances
            if not alive_only or i.state in (InstanceState.STARTING, InstanceState.RUNNING)
        ]
        if fault.percent is not None:
            count = math.ceil(fault.percent * len(service.instances) - 1e-9)
        else:
            count = fault.count or default or len(alive)
        count = min(count, len(alive))
        rng = stream(self.world.seed, f"faults/{name}")
        chosen = sorted(rng.choice(len(alive), size=count, replace=False).tolist()) if count else []
        return [alive[i] for i in chosen]

    def _memory(self, name: str, fault: sc.MemoryLeakFault | sc.MemorySpikeFault) -> None:
        """Leak at a rate, or allocate a spike, in the chosen instances' main processes."""
        env = self.world.env
        targets = self._choose(name, fault, None)
        end = fault.at + fault.duration if fault.duration else math.inf
        for instance in targets:
            process = instance.process
            if process is None:
                continue
            if isinstance(fault, sc.MemoryLeakFault):
                env.process(grow(env, process, fault.rate, until=end, cold=True))
            else:
                env.process(self._spike(process, fault.size, end))
        what = (
            f"leaking {units.format_bytes(fault.rate)}/s"
            if isinstance(fault, sc.MemoryLeakFault)
            else f"allocating {units.format_bytes(fault.size)}"
        )
        self._log(name, fault, "fault_start", f"{what} in {', '.join(i.name for i in targets)}")

    def _spike(self, process: Process, size: int, end: float) -> Generator[Event, Any, None]:
        env = self.world.env
        if not (yield from allocate(env, process, size)):
            return
        if end != math.inf:
            yield env.timeout(max(0.0, end - env.now))
            process.uncharge(size)

    def _hog(self, name: str, fault: sc.MemoryHogFault) -> None:
        """A noisy neighbour: a process of its own that allocates up to ``size`` and holds it."""
        world = self.world
        host = world.hosts[fault.target]
        if not host.up:
            return
        process = host.spawn(fault.process, host.cgroup(fault.cgroup), fault.oom_score_adj)
        end = fault.at + fault.duration if fault.duration else math.inf
        world.env.process(self._hold(process, fault, end))
        self._log(
            name,
            fault,
            "fault_start",
            f"{fault.process} (pid {process.pid}) in {fault.cgroup} allocating "
            f"{units.format_bytes(fault.size)}",
        )

    def _hold(
        self, process: Process, fault: sc.MemoryHogFault, end: float
    ) -> Generator[Event, Any, None]:
        env = self.world.env
        if fault.rate is None:
            yield from allocate(env, process, fault.size)
        else:
            yield from grow(env, process, fault.rate, fault.size, until=end)
        if end != math.inf and process.alive:
            yield env.timeout(max(0.0, end - env.now))
            process.host.kill(process, "Completed")

    def _crash(self, name: str, fault: sc.CrashFault) -> None:
        victims = self._choose(name, fault, 1)
        self._log(
            name,
            fault,
            "fault_start",
            f"killing {', '.join(v.name for v in victims) or 'nothing (no live instance)'}",
        )
        for victim in victims:
            victim.terminate("Error", KILL_EXIT_CODE)

    def _crash_loop(self, name: str, fault: sc.CrashLoopFault) -> None:
        """Each chosen container exits ``after`` s after its start (or after the fault begins)."""
        world = self.world
        victims = self._choose(name, fault, None, alive_only=False)
        reason = "Completed" if fault.exit_code == 0 else "Error"

        def exit_later(instance: Instance) -> None:
            if instance not in victims:
                return
            incarnation = instance.incarnation

            def exit_now(_: Event) -> None:
                if instance.incarnation == incarnation and instance.running:
                    instance.terminate(reason, fault.exit_code)

            world.env.timeout(fault.after).callbacks.append(exit_now)

        self._on_start[name] = exit_later
        world.services[fault.target].on_start.append(exit_later)
        for instance in victims:
            if instance.running:
                exit_later(instance)
        self._log(
            name,
            fault,
            "fault_start",
            f"{', '.join(v.name for v in victims)} exit {fault.exit_code} "
            f"{units.format_duration(fault.after)} after each start",
        )

    def _drain(self, name: str, fault: sc.DrainFault) -> None:
        world = self.world
        world.cordoned.add(fault.target)
        self._log(name, fault, "fault_start", "drain")
        self._kubectl(fault.target, f"node/{fault.target} cordoned")
        pods = [i for i in world.instances_on(fault.target) if i.pod_pending is None]
        world.env.process(self._evict_all(fault.target, pods))

    def _evict_all(self, host: str, pods: list[Instance]) -> Generator[Event, Any, None]:
        env = self.world.env
        evictions = [env.process(self._evict(host, pod)) for pod in pods]
        if evictions:
            yield env.all_of(evictions)
        self._kubectl(host, f"node/{host} drained")

    def _evict(self, host: str, pod: Instance) -> Generator[Event, Any, None]:
        """Kubectl drain's eviction of one pod: retried while its budget forbids it."""
        world = self.world
        while not world.disruption_allowed(pod):
            self._kubectl(
                host,
                f'error when evicting pods/"{pod.name}" -n "{POD_NAMESPACE}" (will retry after '
                f"{DRAIN_RETRY:g}s): Cannot evict pod as it would violate the pod's disruption "
                "budget.",
            )
            yield world.env.timeout(DRAIN_RETRY)
            if pod.host.name != host or pod.pod_pending is not None:
                return  # gone meanwhile (replaced, or deleted by someone else)
        self._kubectl(host, f"evicting pod {POD_NAMESPACE}/{pod.name}")
        yield world.delete_pod(pod, pod.service.config.termination_grace_period_seconds)
        self._kubectl(host, f"pod/{pod.name} evicted")

    def _kubectl(self, host: str, line: str) -> None:
        """A line of kubectl drain's output."""
        world = self.world
        world.recorder.event(world.env.now, host, "kubectl", "drain", line)

    def _host_down(self, name: str, fault: sc.HostDownFault) -> None:
        self._log(name, fault, "fault_start", "host down")
        self.world.take_down(fault.target, "HostDown")


def fault_name_of(fault: sc.Fault, world: World) -> str:
    """The name of a fault of ``world``'s scenario (by identity)."""
    for index, candidate in enumerate(world.scenario.faults):
        if candidate is fault:
            return fault_name(index, fault)
    raise KeyError(fault)


def _describe(
    fault: sc.LatencyFault | sc.ErrorRateFault | sc.PartitionFault | sc.PoisonRequestFault,
) -> str:
    if isinstance(fault, sc.LatencyFault):
        return f"service time x{fault.factor:g} +{fault.add * 1000:g}ms"
    if isinstance(fault, sc.PartitionFault):
        return f"partition ({fault.mode})"
    if isinstance(fault, sc.PoisonRequestFault):
        if fault.request_class is not None:
            return f"requests of class {fault.request_class} are poison"
        return f"{fault.fraction:.1%} of requests are poison"
    return f"{fault.rate:.1%} of requests fail"
