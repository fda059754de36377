"""The :class:`World`: everything a scenario describes, built, then run.

Build, then run (desmod's elaboration): the constructor lays out hosts and cgroups, spawns the
system processes, places and starts every replica, wires the call graph into edges, builds the
OTP supervision trees (:mod:`sim.supervision`), and schedules the workload and the faults;
:meth:`World.run` starts the clock and returns a :class:`~sim.recorder.RunResult`.

The World plays the control plane and the kubelet: it runs each pod's probe workers
(:meth:`World._watch`), deletes pods through the API (:meth:`World.delete_pod`: drains, hosts
unreachable for longer than :data:`UNREACHABLE_EVICTION`) and schedules their replacements on
hosts that fit them and are not cordoned.

Entity names are dotted scopes: services by name (``cart``), instances ``cart-0``, edges
``frontend -> cart``, the users ``client``, cgroups by path, hosts by name.
"""

from __future__ import annotations

import functools
import gc
import math
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from typing import Any, cast

import pandas as pd
import simpy
from simpy.events import Event

from patterns.circuit_breaker import OutlierDetectionConfig, OutlierDetector
from patterns.degradation import Brownout
from patterns.earlyoom import Earlyoom, EarlyoomConfig
from patterns.eviction import ContainerUsage, EvictionConfig, EvictionManager, PodView, Threshold
from patterns.health_probe import ContainerProber
from patterns.oom_killer import (
    KUBELET_OOM_SCORE_ADJ,
    PAUSE_OOM_SCORE_ADJ,
    container_oom_score_adj,
)
from patterns.supervisor import CrashLoopBackOff
from patterns.systemd_oomd import MonitoredCgroup, OomdConfig, SystemdOomd
from sim import scenario as sc
from sim.faults import Faults
from sim.kernel import KILL_EXIT_CODE, PSI_PERIOD, Cgroup, Host, Process, Sysctls
from sim.memory import allocate, grow
from sim.policies import BREAKER_GAUGE, CallPolicies
from sim.recorder import CLIENT, Recorder, RunResult, percentile
from sim.service import (
    POD_NAMESPACE,
    AdmissionPlan,
    Edge,
    Instance,
    InstanceState,
    LoadBalancer,
    PolicyEdge,
    ProbedInstance,
    Service,
    uniform_source,
)
from sim.streams import service_time_sampler, stream
from sim.supervision import build_applications
from sim.workload import Workload

REPLACEMENT_DELAY = 1.0
"""Seconds from an eviction to the replacement pod's start: the ReplicaSet controller creates it
and the scheduler binds it (a model assumption: about a second on an idle control plane)."""

EVICTION_RETRY = 10.0
"""Seconds between scheduling attempts of a replacement pod that fits nowhere (assumption)."""

NODE_MONITOR_GRACE_PERIOD = 40.0
"""Seconds without a heartbeat before the node controller marks a node unreachable
(kube-controller-manager ``--node-monitor-grace-period``, 40 s [recall; 50 s since 1.32])."""
UNREACHABLE_TOLERATION = 300.0
"""Seconds a pod tolerates ``node.kubernetes.io/unreachable:NoExecute`` before it is evicted
(``DefaultTolerationSeconds`` admission plugin: ``tolerationSeconds: 300``)."""
UNREACHABLE_EVICTION = NODE_MONITOR_GRACE_PERIOD + UNREACHABLE_TOLERATION
"""Seconds from a host going down to its pods being deleted and replaced elsewhere."""

MEMORY_THROTTLING_FACTOR = 0.9
"""MemoryQoS ``memory.high`` = limit x 0.9 (kubelet ``DefaultMemoryThrottlingFactor``)."""

QOS_SLICES = {
    "Guaranteed": None,
    "Burstable": "kubepods-burstable.slice",
    "BestEffort": "kubepods-besteffort.slice",
}


class World:
    """A scenario (with a variant applied) built on a fresh ``simpy.Environment``."""

    def __init__(self, scenario: sc.Scenario, variant: str | None = None, seed: int | None = None):
        self.base = scenario
        self.variant = variant
        self.scenario = scenario.with_variant(variant)
        self.seed = self.scenario.seed if seed is None else seed
        s = self.scenario
        self.env = simpy.Environment()
        graph = s.call_graph()
        self.edge_names = [f"{a} -> {b}" for a, b in graph.edges]
        self.recorder = Recorder(
            s.duration,
            s.recording.bin,
            s.recording.max_events,
            [CLIENT, *s.services, *self.edge_names],
        )
        self.eviction: dict[str, EvictionManager] = {}
        """The kubelet eviction manager of each Kubernetes host (when eviction is on)."""
        self._daemons: dict[str, list[tuple[str, Cgroup, int]]] = {}
        """Per host, the processes that run outside the services' containers."""
        self._kubelet_started = {h.name: 0.0 for h in s.hosts}
        """When each host's kubelet (and with it the probe workers) last started."""
        self._pods_placed = {h.name: 0 for h in s.hosts}
        """Pods placed on each host so far (their IPs are handed out in order)."""
        self._down_since: dict[str, float] = {}
        """When each host that is down went down."""
        self.cordoned: set[str] = set()
        """Hosts marked unschedulable (``kubectl cordon``): no replacement pod goes there."""
        self.hosts = {h.name: self._host(h) for h in s.hosts}
        self.services = {name: self._service(name, cfg) for name, cfg in s.services.items()}
        self._edges: dict[tuple[str, str], Edge] = {}
        for name, cfg in s.services.items():
            for call in cfg.calls:
                edge = self._edge(
                    name,
                    self.services[call.to],
                    call.timeout,
                    call.probability,
                    call.optional,
                    call,
                )
                self.services[name].edges.append(edge)
            self.services[name].every_call_made = all(c.probability >= 1.0 for c in cfg.calls)
        self._policy_edges = [
            (service, edge)
            for service in self.services.values()
            for edge in service.edges
            if edge.policies is not None
        ]
        """Edges with client-side policies, with their calling service (for the gauges)."""
        self._policy_counts: dict[str, tuple[int, ...]] = {}
        self._skipped: dict[str, int] = {}
        self._user_retries = 0
        self._admitted = [s for s in self.services.values() if s.admission is not None]
        """Services with an admission chain (for their counters)."""
        self._admission_counts: dict[str, tuple[int, ...]] = {}
        entry = self.services[s.workload.entry]
        self.workload = Workload(
            self.env,
            s.workload,
            self._edge(CLIENT, entry, s.workload.timeout, 1.0, False),
            self.recorder,
            self.seed,
        )
        for name, hosts in sc.placements(s).items():
            service = self.services[name]
            for index, host_name in enumerate(hosts):
                service.instances.append(self._instance(service, index, self.hosts[host_name]))
        self.applications = build_applications(self.env, s, self.services, self.recorder)
        """The OTP applications, one per root supervisor (started by :meth:`run`)."""
        self.faults = Faults(self)
        self.faults.schedule(list(s.faults))

    # ------------------------------------------------------------------ building

    def _host(self, config: sc.Host) -> Host:
        host = Host(
            config.name,
            config.memory,
            config.cpus,
            self.recorder,
            self._schedule,
            lambda: self.env.now,
            swap=config.swap,
            sysctls=Sysctls(**config.sysctls.model_dump()),
        )
        host.on_panic = functools.partial(self._panicked, config.name)
        host.kubelet = config.kind == "kubernetes"
        system = host.root.child("system.slice")
        daemons = self._daemons.setdefault(config.name, [])
        if config.kind == "kubernetes":
            daemons.append(("kubelet", system.child("kubelet.service"), KUBELET_OOM_SCORE_ADJ))
            daemons.append(
                ("containerd", system.child("containerd.service"), KUBELET_OOM_SCORE_ADJ)
            )
            # enforceNodeAllocatable=[pods]: the pods' cgroup is limited to capacity minus the
            # reservations; the eviction threshold is left to the kubelet, not the cgroup
            kubepods = host.root.child(
                "kubepods.slice", config.memory - config.kube_reserved - config.system_reserved
            )
            for slice_name in ("kubepods-burstable.slice", "kubepods-besteffort.slice"):
                kubepods.child(slice_name)
        for extra in config.cgroups:
            _write_cgroup(host, host.cgroup(extra.path), extra)
        return host

    def _schedule(self, callback: Callable[[], None], delay: float = 0.0) -> None:
        self.env.timeout(delay).callbacks.append(lambda _: callback())

    def _service(self, name: str, config: sc.Service) -> Service:
        seed = self.seed
        service = Service(
            self.env,
            name,
            config,
            self.recorder,
            sample=service_time_sampler(config.service_time, stream(seed, f"service_time/{name}")),
            balancer=LoadBalancer(
                config.load_balancer,
                uniform_source(stream(seed, f"balancer/{name}")),
                self._outlier_detector(name, config.outlier_detection),
            ),
            fault_rng=uniform_source(stream(seed, f"errors/{name}")),
            call_rng=uniform_source(stream(seed, f"calls/{name}")),
            resync=stream(seed, f"resync/{name}").uniform,
        )
        if not config.admission.plain:
            service.admission = AdmissionPlan(
                config.admission,
                self.scenario.workload.classes,
                config.workers,
                stream(seed, f"admission/{name}"),
            )
        return service

    def _outlier_detector(
        self, name: str, spec: sc.OutlierDetectionSpec | None
    ) -> OutlierDetector | None:
        """Envoy outlier detection on the cluster of service ``name`` (its event lines logged)."""
        if spec is None:
            return None
        recorder = self.recorder
        env = self.env

        def log(kind: str, line: str) -> None:
            recorder.event(env.now, "", name, kind, f"outlier_detection: {line}")

        return OutlierDetector(
            env,
            OutlierDetectionConfig(**spec.model_dump()),
            log,
            rng=stream(self.seed, f"outliers/{name}"),
        )

    def _edge(
        self,
        caller: str,
        callee: Service,
        timeout: float | None,
        probability: float,
        optional: bool,
        call: sc.Call | None = None,
    ) -> Edge:
        name = f"{caller} -> {callee.name}"
        stats = self.recorder.stats[CLIENT if caller == CLIENT else name]
        policies = None
        if call is not None and CallPolicies.wanted(call):
            policies = CallPolicies(
                f"{caller}->{callee.name}", call, uniform_source(stream(self.seed, f"retry/{name}"))
            )
        edge = (Edge if policies is None else PolicyEdge)(
            self.env,
            caller,
            callee,
            timeout,
            probability,
            optional,
            uniform_source(stream(self.seed, f"errors/{name}")),
            stats,
            policies,
            self.recorder,
        )
        edge.propagate = self.scenario.workload.deadline_propagation
        self._edges[(caller, callee.name)] = edge
        return edge

    def edge(self, caller: str, callee: str) -> Edge:
        """The edge from ``caller`` to ``callee``."""
        return self._edges[(caller, callee)]

    def _instance(self, service: Service, index: int, host: Host) -> Instance:
        cgroup, adj = self._container(service, index, host)
        kind = ProbedInstance if service.config.probes.through_workers else Instance
        instance = kind(service, index, host, cgroup, adj)
        instance.pod_ip = self._pod_ip(host.name)
        return instance

    def _pod_ip(self, host: str) -> str:
        """The next pod IP on ``host``: ``10.244.<host index>.<n>``, the pod CIDR per node."""
        self._pods_placed[host] += 1
        return f"10.244.{list(self.hosts).index(host)}.{1 + self._pods_placed[host]}"

    def _move(self, instance: Instance, host: Host) -> None:
        """Re-create an instance's pod on another host (a replacement pod)."""
        cgroup, adj = self._container(instance.service, instance.index, host)
        instance.host, instance.cgroup, instance.oom_score_adj = host, cgroup, adj
        for comm, pause, pause_adj in self._daemons[host.name]:
            if pause.parent is cgroup.parent:
                host.spawn(comm, pause, pause_adj)

    def _watch(self, instance: Instance, warm: bool = False) -> None:
        """Start the kubelet's probe workers of ``instance``'s pod (if it has probes).

        A ``warm`` pod has passed its probes for long; the workers of a kubelet that started
        less than a probe period ago first sleep uniform(0, period), drawn from
        ``probes/<pod>/<generation>`` (so a run that starts in steady state probes each
        replica at its own phase).
        """
        service = instance.service
        configs = service.config.probes.configs()
        if not configs:
            return
        prober = ContainerProber(
            self.env,
            instance,
            startup=configs.get("startup"),
            readiness=configs.get("readiness"),
            liveness=configs.get("liveness"),
            container=service.name,
            on_result=instance.probe_result,
            on_kill=instance.probe_kill,
            on_event=instance.probe_event,
            rng=stream(self.seed, f"probes/{instance.name}/{instance.pod_generation}"),
            kubelet_started_at=self._kubelet_started[instance.host.name],
            restart_policy=service.config.restart.policy,
            pod_ip=instance.pod_ip,
        )
        container = instance.container_id
        if warm and container is not None:
            prober.adopt(container)
        instance.prober = prober
        prober.start()

    def _watch_supervised(self) -> None:
        """The probes of the OTP workers, once their trees have started them (warm, at 0)."""
        for service in self.services.values():
            for instance in service.instances:
                if instance.otp is not None:
                    self._watch(instance, warm=True)

    def _unwatch(self, instance: Instance) -> None:
        """The pod is gone, or its kubelet: its probe workers stop."""
        if instance.prober is not None:
            instance.prober.stop()
            instance.prober = None

    def _container(self, service: Service, index: int, host: Host) -> tuple[Cgroup, int]:
        """The container cgroup of replica ``index`` on ``host``, and its ``oom_score_adj``."""
        config = service.config
        host_config = self.scenario.host(host.name)
        pod = f"{service.name}-{index}"
        limit = config.resources.limits.memory
        memory_max = float(limit) if limit is not None else math.inf
        if host_config.kind == "bare":
            cgroup = host.root.child("system.slice").child(f"{pod}.service", memory_max)
            adj = 0
        else:
            qos = config.resources.qos_class
            parent = host.root.child("kubepods.slice")
            slice_name = QOS_SLICES[qos]
            if slice_name is not None:
                parent = parent.child(slice_name)
            pod_cgroup = parent.child(f"pod-{pod}")
            self._daemons[host.name].append(
                ("pause", pod_cgroup.child("pause"), PAUSE_OOM_SCORE_ADJ)
            )
            cgroup = pod_cgroup.child(service.name, memory_max)
            # the kubelet writes memory.oom.group=1 on cgroup v2 unless singleProcessOOMKill
            cgroup.oom_group = host_config.cgroup_version == 2 and not (
                host_config.single_process_oom_kill
            )
            request = config.resources.memory_request
            if host_config.memory_qos:  # MemoryQoS: memory.min = request, high = 0.9 * limit
                cgroup.memory_min = request
                if limit is not None:
                    host.set_memory_high(cgroup, int(limit * MEMORY_THROTTLING_FACTOR))
            adj = container_oom_score_adj(qos, request, host_config.memory)
        _write_cgroup(host, cgroup, config.cgroup)
        return cgroup, adj

    def instances_on(self, host: str) -> list[Instance]:
        """Every instance placed on ``host``."""
        return [i for s in self.services.values() for i in s.instances if i.host.name == host]

    def boot(self, host: str, warm: bool = False) -> None:
        """Boot ``host``: its daemons and pod sandboxes, then every container placed on it.

        Warm at t=0 (the run starts in steady state); cold when a host comes back, with new
        containers that remember no back-off.
        """
        machine = self.hosts[host]
        for comm, cgroup, adj in self._daemons[host]:
            machine.spawn(comm, cgroup, adj)
        for extra in self.scenario.host(host).processes:
            process = machine.spawn(extra.name, machine.cgroup(extra.cgroup), extra.oom_score_adj)
            self.env.process(self._extra(process, extra))
        for instance in self.instances_on(host):
            if instance.otp is None:
                if not warm:
                    instance.backoff = CrashLoopBackOff(instance.service.backoff_config)
                instance.start(warm)
                self._watch(instance, warm)
            elif not warm:
                self._watch(instance)  # its supervisor starts it; the kubelet is back

    def _extra(self, process: Process, extra: sc.ExtraProcess) -> Generator[Event, Any, None]:
        """A scenario's own process: from ``at`` on, allocate its memory (at its rate)."""
        if extra.at > self.env.now:
            yield self.env.timeout(extra.at - self.env.now)
        if extra.rate is None:
            yield from allocate(self.env, process, extra.memory)
        else:
            yield from grow(self.env, process, extra.rate, extra.memory)

    def take_down(self, host: str, reason: str) -> None:
        """``host`` stops: every process on it dies, nothing restarts there until it is back."""
        machine = self.hosts[host]
        machine.up = False
        self.recorder.event(
            self.env.now, host, host, "node_not_ready", f"Node {host} status is now: NodeNotReady"
        )
        for instance in self.instances_on(host):
            self._unwatch(instance)
            instance.terminate(reason, KILL_EXIT_CODE)
        for process in machine.processes():
            machine.kill(process, reason)
        now = self._down_since[host] = self.env.now
        if self.scenario.host(host).kind == "kubernetes":
            self._schedule(lambda: self._unreachable(host, now), UNREACHABLE_EVICTION)

    def _unreachable(self, host: str, since: float) -> None:
        """Still down: the taint manager deletes its pods, and they are replaced elsewhere."""
        if self.hosts[host].up or self._down_since.get(host) != since:
            return
        for instance in self.instances_on(host):
            if instance.pod_pending is not None:
                continue
            self.recorder.event(
                self.env.now,
                host,
                instance.name,
                "TaintManagerEviction",
                f"Marking for deletion Pod {POD_NAMESPACE}/{instance.name}",
            )
            self.delete_pod(instance, 0.0)

    def delete_pod(self, instance: Instance, grace: float) -> Event:
        """Delete a pod through the API: it stops gracefully, the ReplicaSet replaces it.

        The replacement is scheduled :data:`REPLACEMENT_DELAY` after the old container has
        ended (one object per replica: Kubernetes creates it as soon as the old pod is
        terminating). Returns the event of the old container's end.
        """
        self._unwatch(instance)
        instance.pod_pending = self.env.event()
        if instance.running:
            self.recorder.event(
                self.env.now,
                instance.host.name,
                instance.name,
                "Killing",
                f"Stopping container {instance.service.name}",
            )
        stopped = instance.stop(grace)
        stopped.callbacks.append(
            lambda _: self._schedule(lambda: self._replace(instance), REPLACEMENT_DELAY)
        )
        return stopped

    def disruption_allowed(self, instance: Instance) -> bool:
        """Whether the Eviction API lets ``instance``'s pod go (its PodDisruptionBudget)."""
        service = instance.service
        budget = service.config.pdb
        if budget is None:
            return True
        healthy = sum(1 for i in service.instances if i.ready)
        desired = budget.desired_healthy(service.config.replicas)
        if not instance.ready:
            return healthy >= desired  # unhealthyPodEvictionPolicy: IfHealthyBudget
        return healthy - desired >= 1

    def bring_up(self, host: str) -> None:
        """``host`` is back: it boots afresh."""
        self.hosts[host].up = True
        self._kubelet_started[host] = self.env.now
        self.recorder.event(
            self.env.now, host, host, "node_ready", f"Node {host} status is now: NodeReady"
        )
        self.boot(host)

    def _panicked(self, host: str) -> None:
        """A kernel panic: the host goes down, and reboots after ``kernel.panic`` seconds."""
        self.take_down(host, "KernelPanic")
        reboot = self.hosts[host].sysctls.kernel_panic
        if reboot > 0:
            self.recorder.event(
                self.env.now, host, "kernel", "panic_reboot", f"Rebooting in {reboot:g} seconds.."
            )
            self._schedule(lambda: self.bring_up(host), reboot)

    # ------------------------------------------------------------------ host policies

    def _start_policies(self, host: str) -> None:
        """The kubelet's eviction manager and the user-space OOM killers a host runs."""
        config = self.scenario.host(host)
        machine = self.hosts[host]
        if config.kind == "kubernetes" and config.eviction:
            manager = EvictionManager(
                self.env,
                config.memory,
                machine.working_set,
                functools.partial(self._pods, host),
                self._evict,
                functools.partial(self._kubelet_log, host),
                EvictionConfig(hard=Threshold(quantity=config.eviction_hard)),
                node_name=host,
            )
            self.eviction[host] = manager
            manager.start()
        killers = config.oom_killers
        if killers.earlyoom is not None:
            Earlyoom(self.env, machine, EarlyoomConfig(**killers.earlyoom.model_dump())).start()
        if killers.systemd_oomd is not None:
            oomd = killers.systemd_oomd
            units = tuple(
                MonitoredCgroup(
                    unit.path,
                    memory_pressure=unit.memory_pressure,
                    memory_pressure_limit=_percent(unit.memory_pressure_limit),
                    memory_pressure_duration=unit.memory_pressure_duration,
                    swap=unit.swap,
                )
                for unit in oomd.monitor
            )
            SystemdOomd(
                self.env,
                machine,
                OomdConfig(
                    swap_used_limit=100.0 * oomd.swap_used_limit,
                    default_memory_pressure_limit=100.0 * oomd.default_memory_pressure_limit,
                    default_memory_pressure_duration=oomd.default_memory_pressure_duration,
                    monitored=units,
                    preferences=dict(oomd.preferences),
                ),
            ).start()

    def _kubelet_log(self, host: str, kind: str, line: str) -> None:
        self.recorder.event(self.env.now, host, "kubelet", kind, line)

    def _pods(self, host: str) -> list[PodView]:
        """Snapshots of the pods running on ``host``, for the eviction manager."""
        pods = []
        for instance in self.instances_on(host):
            if instance.process is None or not instance.process.alive:
                continue
            resources = instance.service.config.resources
            cgroup = instance.cgroup
            usage = cgroup.usage - cgroup.cache
            request = resources.memory_request
            pods.append(
                PodView(
                    name=instance.name,
                    qos_class=resources.qos_class,
                    priority=instance.service.config.priority,
                    memory_request=request,
                    memory_usage=usage,
                    containers=(ContainerUsage(instance.service.name, usage, request),),
                )
            )
        return pods

    def _evict(self, pod: PodView, message: str, grace: float) -> None:
        """Evict a pod: it fails with reason Evicted; its controller replaces it (§3.5)."""
        instance = next(
            i for s in self.services.values() for i in s.instances if i.name == pod.name
        )
        instance.service.balancer.remove(instance)  # the endpoint goes with the pod
        self._unwatch(instance)
        instance.pod_pending = self.env.event()

        def kill() -> None:
            instance.terminate("Evicted", KILL_EXIT_CODE, restart=False)
            self._schedule(lambda: self._replace(instance), REPLACEMENT_DELAY)

        self._schedule(kill, grace)

    def _replace(self, instance: Instance) -> None:
        """The ReplicaSet's new pod: scheduled where it fits and the node admits it."""
        config = instance.service.config
        request = config.resources.memory_request
        candidates = []
        for name, machine in self.hosts.items():
            manager = self.eviction.get(name)
            if (
                not machine.up
                or name in self.cordoned
                or self.scenario.host(name).kind != "kubernetes"
            ):
                continue
            if manager is not None and manager.under_memory_pressure and request == 0:
                continue  # MemoryPressure: the node admits no BestEffort pod
            free = self.scenario.host(name).allocatable - sum(
                i.service.config.resources.memory_request
                for i in self.instances_on(name)
                if i is not instance and i.state is not InstanceState.TERMINATED
            )
            if free >= request:
                candidates.append((-free, list(self.hosts).index(name), name))
        if not candidates:
            self.recorder.event(
                self.env.now,
                "-",
                instance.name,
                "failed_scheduling",
                f"0/{len(self.hosts)} nodes are available: pod {instance.name} cannot be placed",
            )
            self._schedule(lambda: self._replace(instance), EVICTION_RETRY)
            return
        host = self.hosts[min(candidates)[2]]
        instance.new_pod()
        if host is not instance.host:
            self._move(instance, host)
        instance.pod_ip = self._pod_ip(host.name)
        self.recorder.event(
            self.env.now,
            host.name,
            instance.name,
            "scheduled",
            f"Successfully assigned default/{instance.name} to {host.name}",
        )
        pending, instance.pod_pending = instance.pod_pending, None
        if instance.otp is None:
            instance.start()
        elif pending is not None:
            pending.succeed()  # its supervisor's restart was waiting for the pod
        self._watch(instance)

    def _pressure(self) -> Generator[Event, Any, None]:
        """Every PSI period: count non-idle task time, then fold the period into the averages."""
        while True:
            yield self.env.timeout(PSI_PERIOD)
            for service in self.services.values():
                for instance in service.instances:
                    working = instance.working
                    if working:
                        instance.cgroup.add_busy(working * PSI_PERIOD)
            for host in self.hosts.values():
                host.update_psi()

    # ------------------------------------------------------------------ running

    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        """Sample the gauges at the start of every bin; close each bin at its end."""
        recorder = self.recorder
        width = recorder.bin_width
        for index in range(recorder.n_bins):
            if index:
                yield self.env.timeout(index * width - self.env.now)
                self._close(index - 1, index * width)
            self._sample(index)

    def _close(self, index: int, end: float) -> None:
        """End bin ``index``: integrate in-system counts, keep each cgroup's peak within it."""
        self.recorder.close_bin(index, end)
        for service in self.services.values():
            for instance in service.instances:
                cgroup = instance.cgroup
                self.recorder.gauge(index, instance.name, "memory_peak", cgroup.peak)
                cgroup.peak = cgroup.usage
        for _, edge in self._policy_edges:
            self._policy_counters(index, edge)
        for service in self._admitted:
            self._admission_counters(index, service)
        if self.scenario.workload.users is not None:
            retries = self.workload.user_retries
            self.recorder.gauge(index, CLIENT, "user_retries", retries - self._user_retries)
            self._user_retries = retries
        for name, service in self.services.items():
            if service.brownout is not None:
                skipped = service.optional_skipped
                self.recorder.gauge(
                    index, name, "optional_skipped", skipped - self._skipped.get(name, 0)
                )
                self._skipped[name] = skipped

    def _admission_counters(self, index: int, service: Service) -> None:
        """Per-bin counts of a service's admission chain: refusals, sheds, drops."""
        plan = service.admission
        assert plan is not None
        now = (plan.rate_limited, plan.limit_shed, plan.queue_evicted, plan.codel_dropped)
        before = self._admission_counts.get(service.name, (0, 0, 0, 0))
        self._admission_counts[service.name] = now
        for metric, value, last in zip(
            ("rate_limit_refused", "concurrency_limit_shed", "queue_evicted", "codel_dropped"),
            now,
            before,
            strict=True,
        ):
            self.recorder.gauge(index, service.name, metric, value - last)

    def _policy_counters(self, index: int, edge: Edge) -> None:
        """Per-bin counts of an edge's policies: attempts, retries, refusals, fallbacks."""
        policies = edge.policies
        assert policies is not None
        metrics = policies.metrics
        now = (
            metrics.attempts,
            metrics.retries,
            policies.budget_exhausted,
            policies.fallbacks,
            policies.bulkhead_rejected,
        )
        before = self._policy_counts.get(edge.name, (0, 0, 0, 0, 0))
        self._policy_counts[edge.name] = now
        for metric, value, last in zip(
            ("attempts", "retries", "retry_budget_exhausted", "fallbacks", "bulkhead_rejected"),
            now,
            before,
            strict=True,
        ):
            self.recorder.gauge(index, edge.name, metric, value - last)

    def _sample(self, index: int) -> None:
        """Gauges of bin ``index``: the state at its start."""
        gauge = self.recorder.gauge
        for name, service in self.services.items():
            for state, count in service.instance_counts().items():
                gauge(index, name, f"instances.{state}", count)
            gauge(index, name, "queued", sum(i.queued for i in service.instances))
            gauge(
                index,
                name,
                "busy_workers",
                sum(
                    i.working
                    for i in service.instances
                    if i.process is not None and i.process.alive
                ),
            )
            for instance in service.instances:
                self._cgroup_gauges(index, instance.name, instance.cgroup)
            if service.admission is not None:
                self._admission_gauges(index, service)
        for name, service in self.services.items():
            if service.brownout is not None:
                gauge(index, name, "brownout", float(service.brownout.active))
            detector = service.balancer.outliers
            if detector is not None:
                gauge(index, name, "outlier_ejections_active", detector.ejections_active)
        for service, edge in self._policy_edges:
            if edge.policies is not None and edge.policies.bulkhead is not None:
                states = [s for i in service.instances if (s := i.clients.get(edge)) is not None]
                gauge(
                    index,
                    edge.name,
                    "bulkhead_in_flight",
                    sum(cast(Any, s.bulkhead).in_flight for s in states),
                )
            if edge.policies is None or edge.policies.breaker is None:
                continue
            for instance in service.instances:
                # 0 closed, 1 open, 2 half-open; a caller that has not called yet is closed
                client = instance.clients.get(edge)
                if client is not None and client.breaker is not None:
                    value = BREAKER_GAUGE[client.breaker.state]
                elif instance.ready:
                    value = 0.0
                else:
                    continue
                gauge(index, edge.name, f"circuit_breaker.{instance.name}", value)
        for host in self.hosts.values():
            gauge(index, host.name, "memory", host.used)
            gauge(index, host.name, "memory_total", host.ram)
            gauge(index, host.name, "mem_available", host.mem_available())
            if host.swap_total:
                gauge(index, host.name, "swap", host.swap_used)
                gauge(index, host.name, "swap_total", host.swap_total)
            gauge(index, host.name, "psi_some_avg10", host.root.psi.avg["some"][0])
            gauge(index, host.name, "psi_full_avg10", host.root.psi.avg["full"][0])
            manager = self.eviction.get(host.name)
            if manager is not None:
                gauge(index, host.name, "memory_pressure", float(manager.under_memory_pressure))
            for extra in self.scenario.host(host.name).cgroups:
                self._cgroup_gauges(index, f"{host.name}:{extra.path}", host.cgroup(extra.path))
            if "kubepods.slice" in (c.name for c in host.root.children):
                self._cgroup_gauges(
                    index, f"{host.name}:/kubepods.slice", host.cgroup("/kubepods.slice")
                )

    def _admission_gauges(self, index: int, service: Service) -> None:
        """Concurrency limit and rate-limit permissions: per instance, and summed."""
        gauge = self.recorder.gauge
        limit = permits = 0.0
        has_limit = has_permits = False
        for instance in service.instances:
            state = instance.admission
            if state is None or not instance.ready:
                continue
            if state.limiter is not None:
                has_limit = True
                limit += state.limiter.limit
                gauge(index, instance.name, "concurrency_limit", state.limiter.limit)
            available = state.available_permissions
            if available is not None:
                has_permits = True
                permits += available
                gauge(index, instance.name, "rate_limit_available", available)
        if has_limit:
            gauge(index, service.name, "concurrency_limit", limit)
        if has_permits:
            gauge(index, service.name, "rate_limit_available", permits)

    def _cgroup_gauges(self, index: int, entity: str, cgroup: Cgroup) -> None:
        """``memory.current`` (and cache, swap), its limits, and its pressure."""
        gauge = self.recorder.gauge
        gauge(index, entity, "memory", cgroup.usage)
        if cgroup.cache:
            gauge(index, entity, "memory_cache", cgroup.cache)
        if cgroup.swap:
            gauge(index, entity, "swap", cgroup.swap)
        if cgroup.memory_max != math.inf:
            gauge(index, entity, "memory_max", cgroup.memory_max)
        if cgroup.memory_high != math.inf:
            gauge(index, entity, "memory_high", cgroup.memory_high)
        if cgroup.psi.some_total:
            gauge(index, entity, "psi_full_avg10", cgroup.psi.avg["full"][0])

    def run(self) -> RunResult:
        """Run to the scenario's duration and return the result."""
        for host in self.hosts:
            self.boot(host, warm=True)
        started = [application.start() for application in self.applications]
        if started:  # the trees start their warm workers before anything else happens at 0
            self.env.run(until=self.env.all_of(started))
            self._watch_supervised()
        self.workload.start()
        self.env.process(self._sampler())
        self.env.process(self._pressure())
        for host in self.hosts:
            self._start_policies(host)
        for service in self.services.values():
            if service.brownout is not None:
                self.env.process(self._brownout(service, service.brownout))
        duration = self.scenario.duration
        with fewer_collections():
            self.env.run(until=duration)
        self._close(self.recorder.n_bins - 1, duration)
        return self._result()

    def _brownout(self, service: Service, brownout: Brownout) -> Generator[Event, Any, None]:
        """Every period, read the service's p99 and memory; switch its optional calls."""
        env = self.env
        stats = service.stats
        period = brownout.config.period
        width = self.recorder.bin_width
        while True:
            yield env.timeout(period)
            now = env.now
            first = int((now - period) / width)
            last = max(int(now / width), first + 1)
            merged = stats.merged(first, last)
            memory = max(
                (
                    i.cgroup.usage
                    / (i.cgroup.memory_max if i.cgroup.memory_max != math.inf else i.host.ram)
                    for i in service.instances
                    if i.process is not None and i.process.alive
                ),
                default=0.0,
            )
            if brownout.update(percentile(merged, 0.99), memory):
                line = (
                    f"Brownout '{service.name}': optional calls off ({brownout.reason})"
                    if brownout.active
                    else f"Brownout '{service.name}': optional calls back on"
                )
                self.recorder.event(now, "", service.name, "brownout", line)

    def _result(self) -> RunResult:
        recorder = self.recorder
        rows = [recorder.entity_summary(CLIENT) | {"kind": "client"}]
        rows += [recorder.entity_summary(n) | {"kind": "service"} for n in self.services]
        rows += [recorder.entity_summary(n) | {"kind": "edge"} for n in self.edge_names]
        services = pd.DataFrame(rows)
        services.insert(1, "kind", services.pop("kind"))
        client = rows[0]
        completed = int(client["requests"])
        instances = [i for s in self.services.values() for i in s.instances]
        summary: dict[str, Any] = {
            "scenario": self.scenario.name,
            "variant": self.variant,
            "seed": self.seed,
            "duration": self.scenario.duration,
            "arrivals": recorder.arrivals,
            "completed": completed,
            "in_flight_at_end": recorder.arrivals - completed,
            "availability": _clean(client["availability"]),
            "latency_p50": _clean(client["latency_p50"]),
            "latency_p99": _clean(client["latency_p99"]),
            "outcomes": {k: int(client[k]) for k in _outcome_labels()},
            "oom_kills": sum(h.oom_kills for h in self.hosts.values()),
            "vmstat_oom_kill": {name: h.oom_kills for name, h in self.hosts.items()},
            "memory_events": self._memory_events(),
            "allocation_failures": sum(h.alloc_failures for h in self.hosts.values()),
            "evictions": sum(m.evictions for m in self.eviction.values()),
            "restarts": sum(i.restarts for i in instances),
            "events": len(recorder.events),
            "events_dropped": recorder.dropped_events,
        }
        failures = pd.DataFrame(
            [(*key, count) for key, count in recorder.why.most_common()],
            columns=["class", "where", "cause", "outcome", "count"],
        )
        return RunResult(
            scenario=self.scenario.name,
            variant=self.variant,
            seed=self.seed,
            summary=summary,
            services=services,
            timeseries=recorder.timeseries(),
            events=recorder.events_frame(),
            failures=failures,
            entities=self._entities(),
            latency=recorder.latency_histograms(),
        )

    def _memory_events(self) -> dict[str, dict[str, int]]:
        """``memory.events`` of every cgroup where something happened, as ``host:/path``."""
        return {
            f"{name}:{cgroup.path}": dict(cgroup.events)
            for name, host in self.hosts.items()
            for cgroup in host.cgroups()
            if any(cgroup.events.values())
        }

    def _entities(self) -> pd.DataFrame:
        """What each entity name in the tables is: kind, its service, its host."""
        rows: list[tuple[str, str, str | None, str | None]] = [(CLIENT, "client", None, None)]
        for name, service in self.services.items():
            rows.append((name, "service", name, None))
            rows += [(i.name, "instance", name, i.host.name) for i in service.instances]
        rows += [(edge, "edge", edge.partition(" -> ")[2], None) for edge in self.edge_names]
        rows += [(host, "host", None, host) for host in self.hosts]
        for name in self.hosts:
            paths = [extra.path for extra in self.scenario.host(name).cgroups]
            if self.scenario.host(name).kind == "kubernetes":
                paths.insert(0, "/kubepods.slice")
            rows += [(f"{name}:{path}", "cgroup", None, name) for path in paths]
        return pd.DataFrame(rows, columns=["entity", "kind", "service", "host"])


def _outcome_labels() -> list[str]:
    from sim.request import OUTCOMES

    return [o.label for o in OUTCOMES]


def _clean(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations between two young-generation collections of the cyclic GC while a world runs
(CPython's default is 700)."""


class _CollectorTuning:
    """The young-generation threshold while any world runs in this process, then the old one.

    The collector's thresholds belong to the process, and worlds may run in several threads at
    once (the Streamlit app runs each session's script in its own): the first world to start
    raises the threshold, the last to finish restores what was there before the first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved: tuple[int, int, int] = gc.get_threshold()

    @contextmanager
    def running(self, threshold: int) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._saved = gc.get_threshold()
                gc.set_threshold(threshold, *self._saved[1:])
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    gc.set_threshold(*self._saved)


_COLLECTOR = _CollectorTuning()


def fewer_collections(threshold: int = YOUNG_COLLECTION_THRESHOLD) -> ContextManager[None]:
    """Run the cyclic garbage collector's young generation less often (restored after).

    A request in flight is a stack of generators, events and their callbacks: thousands of
    container objects live at any time, and every young-generation collection walks all those
    allocated since the last one. With CPython's default threshold (700) a three-tier run with
    every pattern on spent about 10 % of its time in collections that found nearly nothing
    (28 objects in a 20 s run: requests are freed by reference counting, not by the collector).
    At 10 000 the same garbage is still found, later; what a collection scans stays bounded.
    Worlds running in several threads share the setting (:class:`_CollectorTuning`).
    """
    return _COLLECTOR.running(threshold)


def run(
    scenario: sc.Scenario | str,
    variant: str | None = None,
    seed: int | None = None,
    duration: float | None = None,
) -> RunResult:
    """Run a scenario (object, file or catalogue name) once and return its result.

    ``duration`` overrides the run length; the scenario is validated again with it (a fault
    that would start after the new end is an error, not silently dropped).
    """
    loaded = scenario if isinstance(scenario, sc.Scenario) else sc.load_scenario(scenario)
    if duration is not None:
        loaded = loaded.with_overrides({"duration": duration})
    return World(loaded, variant=variant, seed=seed).run()


def _write_cgroup(host: Host, cgroup: Cgroup, settings: sc.CgroupSettings) -> None:
    """Write the memory files a scenario sets on a cgroup (unset ones keep their value)."""
    if settings.max is not None:
        cgroup.memory_max = settings.max
    if settings.high is not None:
        host.set_memory_high(cgroup, settings.high)
    cgroup.memory_min = max(cgroup.memory_min, settings.min)
    cgroup.memory_low = max(cgroup.memory_low, settings.low)
    if settings.swap_max is not None:
        cgroup.swap_max = settings.swap_max
    if settings.oom_group is not None:
        cgroup.oom_group = settings.oom_group
    cgroup.oom_kill_disable = settings.oom_kill_disable


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction
