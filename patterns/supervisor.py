"""Kubernetes restart policy with CrashLoopBackOff.

Source: kubernetes/kubernetes ``pkg/kubelet/kuberuntime/kuberuntime_manager.go`` (``doBackOff``),
client-go ``util/flowcontrol/backoff.go``, ``pkg/kubelet/apis/config/v1beta1/defaults.go``; see
``../shared/reference/semantics.md`` §4.

Delay from each crash to the next start of a container that always crashes at once:
0, 10, 20, 40, 80, 160, 300, 300, ... s; the back-off entry expires (and the next restart is
immediate) once the container has run more than 2 x 300 s since the last restart.

Simplification kept for the lifecycle work: the kubelet's 10-15 s re-sync jitter is not modelled,
so restarts happen exactly when the back-off ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RestartPolicyName = Literal["Always", "OnFailure", "Never"]


@dataclass(frozen=True)
class BackoffConfig:
    """CrashLoopBackOff parameters.

    Attributes:
        initial: first non-zero back-off, 10 s (kubelet ``backOffPeriod``).
        cap: maximum back-off, 300 s (``MaxContainerBackOff``).
    """

    initial: float = 10.0
    cap: float = 300.0


def should_restart(policy: RestartPolicyName, exit_code: int) -> bool:
    """Whether the kubelet restarts a container that exited with ``exit_code``."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


class CrashLoopBackOff:
    """The kubelet's per-container back-off entry (``flowcontrol.Backoff``)."""

    __slots__ = ("backoff", "config", "last_update")

    def __init__(self, config: BackoffConfig | None = None) -> None:
        self.config = config or BackoffConfig()
        self.backoff: float | None = None
        self.last_update: float | None = None

    def _expired(self, finished_at: float) -> bool:
        assert self.last_update is not None
        return finished_at - self.last_update > 2 * self.config.cap

    def restart_delay(self, finished_at: float) -> float:
        """Seconds from a container's exit at ``finished_at`` to its next start."""
        if self.backoff is None or self._expired(finished_at):
            return 0.0
        return self.backoff

    def started(self, now: float, finished_at: float) -> None:
        """Record a (re)start at ``now`` after an exit at ``finished_at`` (``Backoff.Next``)."""
        if self.backoff is None or self._expired(finished_at):
            self.backoff = self.config.initial
        else:
            self.backoff = min(2 * self.backoff, self.config.cap)
        self.last_update = now
