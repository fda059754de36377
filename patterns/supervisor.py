"""Kubernetes restart policy with CrashLoopBackOff.

Sources (see ``../shared/reference/semantics.md`` §4 and §12 V10):

* client-go ``util/flowcontrol/backoff.go`` (``Backoff.Next``, ``IsInBackOffSince``,
  ``HasExpiredFunc``): the per-container back-off entry.
* kubelet ``pkg/kubelet/kuberuntime/kuberuntime_manager.go`` (``doBackOff``): the waiting reason,
  message and ``BackOff`` event texts; ``pkg/kubelet/kubelet.go`` (initial 10 s,
  ``newCrashLoopBackOff``, the ``crashLoopBackOff.HasExpiredFunc`` 600 s rule);
  ``pkg/kubelet/apis/config/v1beta1/defaults.go`` (``MaxContainerBackOff = 300 * time.Second``).
* Feature gates ``ReduceDefaultCrashLoopBackOffDecay`` and ``KubeletCrashLoopBackOffMax``
  (KEP-4603, "Tune CrashLoopBackoff").
* Pod re-sync: ``pkg/kubelet/pod_workers.go`` (``completeWork``: a failed sync is requeued after
  ``wait.Jitter(backOffPeriod, workerBackOffPeriodJitterFactor)``, with ``backOffPeriod = 10 s``
  and ``workerBackOffPeriodJitterFactor = 0.5``).

Model. One :class:`CrashLoopBackOff` entry per container (the kubelet keys it by pod + container).
When a container exits at ``F``, :meth:`CrashLoopBackOff.restart_delay` says how long it waits:
0 with no entry or an expired one, else the entry's back-off. :meth:`CrashLoopBackOff.started`
is ``Backoff.Next``: fresh or expired entries start at ``initial``, others double up to ``cap``.
Delays from each crash to the next start of a container that exits 1 s after every start:
0, 10, 20, 40, 80, 160, 300, 300, ... s (default), 0, 1, 2, 4, ..., 32, 60, 60 s (reduced decay).
The entry expires, and the next restart is immediate with the back-off back at ``initial``, when
the exit comes more than ``stable_after`` (600 s by default) after the last restart.

Assumptions and simplifications:

* Exact by default: a container restarts exactly when its back-off ends. The kubelet only
  re-checks a pod in back-off when it re-syncs it, every uniform 10-15 s, so the observed restart
  is the first sync at or after the end of the back-off (V10: "observed restart may lag by up to
  one 10-15 s sync"). ``BackoffConfig(resync_jitter=True)`` with
  :meth:`CrashLoopBackOff.observed_restart_delay` (or :func:`observed_restart_time` directly)
  models that lag with a generator handed in; PLEG-triggered syncs other than the one at the
  exit itself are not modelled.
* client-go's own ``Backoff`` jitter is 0 for the kubelet (``NewBackOff``), so the back-off
  values themselves are never randomised.
* Turning on both feature gates at once is not modelled; pick one named constructor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

RestartPolicyName = Literal["Always", "OnFailure", "Never"]

Uniform = Callable[[float, float], float]
"""A uniform generator ``uniform(low, high)``: ``random.Random.uniform`` or
``numpy.random.Generator.uniform``."""

DEFAULT_INITIAL_BACKOFF = 10.0
"""First non-zero back-off, s: kubelet ``backOffPeriod`` (``pkg/kubelet/kubelet.go``)."""
DEFAULT_MAX_BACKOFF = 300.0
"""Back-off cap, s: ``MaxContainerBackOff`` (``pkg/kubelet/apis/config/v1beta1/defaults.go``)."""
REDUCED_INITIAL_BACKOFF = 1.0
"""Initial back-off with ``ReduceDefaultCrashLoopBackOffDecay``, s (KEP-4603)."""
REDUCED_MAX_BACKOFF = 60.0
"""Back-off cap with ``ReduceDefaultCrashLoopBackOffDecay``, s (KEP-4603)."""
KUBELET_STABLE_AFTER = 600.0
"""Run time, s, after which the kubelet forgets a back-off: its ``crashLoopBackOff.HasExpiredFunc``
is ``eventTime - lastUpdate > 600 s`` whatever the cap (KEP-4603 keeps the 10-minute window)."""
MIN_MAX_CONTAINER_RESTART_PERIOD = 1.0
"""Lowest ``crashLoopBackOff.maxContainerRestartPeriod`` the kubelet accepts, s."""
MAX_MAX_CONTAINER_RESTART_PERIOD = 300.0
"""Highest ``crashLoopBackOff.maxContainerRestartPeriod`` the kubelet accepts, s (its default)."""

POD_RESYNC_BACKOFF_PERIOD = 10.0
"""Base delay, s, before the kubelet re-syncs a pod whose sync failed (a pod in back-off):
kubelet ``backOffPeriod`` passed to the pod workers (``pkg/kubelet/pod_workers.go``)."""
POD_RESYNC_JITTER_FACTOR = 0.5
"""``workerBackOffPeriodJitterFactor`` (``pkg/kubelet/pod_workers.go``): ``wait.Jitter(10 s, 0.5)``
is uniform in [10 s, 15 s)."""

CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
"""Waiting reason of a container in back-off (``kubecontainer.ErrCrashLoopBackOff``)."""
BACK_OFF_EVENT_REASON = "BackOff"
"""Reason of the Warning event (``events.BackOffStartContainer``)."""


@dataclass(frozen=True, init=False)
class BackoffConfig:
    """CrashLoopBackOff parameters.

    Attributes:
        initial: first non-zero back-off, 10 s (kubelet ``backOffPeriod``).
        cap: maximum back-off, 300 s (``MaxContainerBackOff``).
        stable_after: the entry expires when a container exits more than this long after its
            last restart. Defaults to 2 x ``cap`` (client-go's default ``HasExpiredFunc``), which
            is the kubelet's 600 s for the default cap; the feature-gate constructors set the
            kubelet's fixed 600 s explicitly. ``dataclasses.replace`` keeps the old value unless
            given ``stable_after=None``.
        resync_jitter: model the kubelet's 10-15 s pod re-sync (``pod_workers.go``,
            ``wait.Jitter(backOffPeriod, workerBackOffPeriodJitterFactor)``, 10 s and 0.5) in
            :meth:`CrashLoopBackOff.observed_restart_delay`. Off by default: restarts are exact.
    """

    initial: float = DEFAULT_INITIAL_BACKOFF
    cap: float = DEFAULT_MAX_BACKOFF
    stable_after: float = 2 * DEFAULT_MAX_BACKOFF
    resync_jitter: bool = False

    def __init__(
        self,
        initial: float = DEFAULT_INITIAL_BACKOFF,
        cap: float = DEFAULT_MAX_BACKOFF,
        stable_after: float | None = None,
        resync_jitter: bool = False,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError(f"need 0 < initial <= cap, got initial={initial}s, cap={cap}s")
        if stable_after is None:
            stable_after = 2 * cap
        if stable_after < 0:
            raise ValueError(f"stable_after must be >= 0, got {stable_after}s")
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "cap", cap)
        object.__setattr__(self, "stable_after", stable_after)
        object.__setattr__(self, "resync_jitter", resync_jitter)

    @classmethod
    def default(cls, *, resync_jitter: bool = False) -> BackoffConfig:
        """The kubelet default: 10 s doubling to 300 s, forgotten after 2 x 300 = 600 s."""
        return cls(resync_jitter=resync_jitter)

    @classmethod
    def reduce_default_decay(cls, *, resync_jitter: bool = False) -> BackoffConfig:
        """``ReduceDefaultCrashLoopBackOffDecay`` (alpha 1.33, off by default).

        1 s doubling to 60 s. The stability window stays 10 minutes, not 2 x 60 s: KEP-4603 does
        not change "the time Kubernetes waits before resetting the backoff counter", and the
        kubelet's ``HasExpiredFunc`` is a fixed 600 s (reference §4).
        """
        return cls(
            initial=REDUCED_INITIAL_BACKOFF,
            cap=REDUCED_MAX_BACKOFF,
            stable_after=KUBELET_STABLE_AFTER,
            resync_jitter=resync_jitter,
        )

    @classmethod
    def max_container_restart_period(
        cls, period: float, *, resync_jitter: bool = False
    ) -> BackoffConfig:
        """``KubeletCrashLoopBackOffMax``: kubelet ``crashLoopBackOff.maxContainerRestartPeriod``.

        Beta, on by default since 1.35. The cap becomes ``period`` (1 s..300 s); a period below
        the 10 s initial back-off lowers the initial to ``period`` too (``newCrashLoopBackOff``).
        The 600 s stability window is unchanged (the kubelet's fixed ``HasExpiredFunc``).

        Raises:
            ValueError: ``period`` is outside 1 s..300 s.
        """
        if not MIN_MAX_CONTAINER_RESTART_PERIOD <= period <= MAX_MAX_CONTAINER_RESTART_PERIOD:
            raise ValueError(
                "crashLoopBackOff.maxContainerRestartPeriod must be between "
                f"{go_duration(MIN_MAX_CONTAINER_RESTART_PERIOD)} and "
                f"{go_duration(MAX_MAX_CONTAINER_RESTART_PERIOD)}, got {go_duration(period)}"
            )
        return cls(
            initial=min(DEFAULT_INITIAL_BACKOFF, period),
            cap=period,
            stable_after=KUBELET_STABLE_AFTER,
            resync_jitter=resync_jitter,
        )


def should_restart(policy: RestartPolicyName, exit_code: int) -> bool:
    """Whether the kubelet restarts a container that exited with ``exit_code``."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def resync_wait(backoff: float, uniform: Uniform) -> float:
    """Seconds from a crash to the first pod sync at or after ``backoff`` has elapsed.

    The kubelet syncs the pod at the crash (the container-died event) and, while the container is
    in back-off, re-syncs it every ``uniform(10, 15)`` s; a sync restarts the container once
    ``now - finishedAt >= backoff`` (``doBackOff`` keeps waiting only while it is ``<``).
    """
    low = POD_RESYNC_BACKOFF_PERIOD
    high = POD_RESYNC_BACKOFF_PERIOD * (1 + POD_RESYNC_JITTER_FACTOR)
    # Summed from 0 rather than added to the crash time, so that an exact draw lands exactly.
    elapsed = 0.0
    while elapsed < backoff:
        elapsed += uniform(low, high)
    return elapsed


def observed_restart_time(crashed_at: float, backoff: float, uniform: Uniform) -> float:
    """When a container that crashed at ``crashed_at`` is seen to restart after ``backoff``.

    Sync ticks at ``crashed_at``, then every ``uniform(10, 15)`` s; the restart is the first tick
    at or after ``crashed_at + backoff``, so it lags the back-off by less than 15 s.

    Args:
        crashed_at: the container's exit time (``finishedAt``), s.
        backoff: the back-off it waits, s (:meth:`CrashLoopBackOff.restart_delay`).
        uniform: the generator, called as ``uniform(10.0, 15.0)`` once per re-sync.
    """
    return crashed_at + resync_wait(backoff, uniform)


class CrashLoopBackOff:
    """The kubelet's per-container back-off entry (``flowcontrol.Backoff``)."""

    __slots__ = ("backoff", "config", "last_update")

    def __init__(self, config: BackoffConfig | None = None) -> None:
        self.config = config or BackoffConfig()
        self.backoff: float | None = None
        self.last_update: float | None = None

    def _expired(self, finished_at: float) -> bool:
        assert self.last_update is not None
        return finished_at - self.last_update > self.config.stable_after

    def restart_delay(self, finished_at: float) -> float:
        """Seconds from a container's exit at ``finished_at`` to its next start (exact)."""
        if self.backoff is None or self._expired(finished_at):
            return 0.0
        return self.backoff

    def observed_restart_delay(self, finished_at: float, uniform: Uniform) -> float:
        """Like :meth:`restart_delay`, plus the re-sync lag when ``config.resync_jitter`` is on.

        With ``resync_jitter`` off this is :meth:`restart_delay` and ``uniform`` is not called.
        """
        delay = self.restart_delay(finished_at)
        if not self.config.resync_jitter:
            return delay
        return resync_wait(delay, uniform)

    def started(self, now: float, finished_at: float) -> None:
        """Record a (re)start at ``now`` after an exit at ``finished_at`` (``Backoff.Next``)."""
        if self.backoff is None or self._expired(finished_at):
            self.backoff = self.config.initial
        else:
            self.backoff = min(2 * self.backoff, self.config.cap)
        self.last_update = now


# --------------------------------------------------------------------------- operator texts


def go_duration(seconds: float) -> str:
    """Format ``seconds`` like Go's ``time.Duration.String``: 40s, 5m0s, 2m40s, 1.5s, 500ms, 1h0m0s.

    The duration is rounded to whole nanoseconds first, as a ``time.Duration`` holds them.
    """
    nanos = round(seconds * 1_000_000_000)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_fraction(*divmod(nanos, 1_000), digits=3)}\u00b5s"
    if nanos < 1_000_000_000:
        return f"{sign}{_fraction(*divmod(nanos, 1_000_000), digits=6)}ms"
    whole_seconds, nanos = divmod(nanos, 1_000_000_000)
    hours, rest = divmod(whole_seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_fraction(secs, nanos, digits=9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _fraction(whole: int, frac: int, digits: int) -> str:
    """``whole.frac`` with ``frac`` zero-padded to ``digits`` and trailing zeros dropped (Go)."""
    if not frac:
        return str(whole)
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


def format_pod(name: str, namespace: str, uid: str) -> str:
    """A pod as the kubelet names it in messages (``format.Pod``): ``name_namespace(uid)``."""
    return f"{name}_{namespace}({uid})"


_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "\u00b5s": 1e-6, "us": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|\u00b5s|us|ns)")
GO_DURATION = r"-?(?:\d+(?:\.\d+)?(?:h|ms|m|s|\u00b5s|us|ns))+"
"""A regular expression matching what :func:`go_duration` writes (to find one in a line)."""


def parse_go_duration(text: str) -> float:
    """Seconds of a Go ``time.Duration`` string (``2m40s``, ``1.5s``, ``500ms``).

    The inverse of :func:`go_duration`.

    Raises:
        ValueError: ``text`` is not a Go duration.
    """
    if not re.fullmatch(GO_DURATION, text):
        raise ValueError(f"not a Go duration: {text!r}")
    seconds = sum(float(n) * _GO_UNITS[unit] for n, unit in _GO_PART.findall(text))
    return -seconds if text.startswith("-") else seconds


def waiting_message(backoff: float, container: str, pod: str) -> str:
    """The Waiting state's message while in back-off (reason :data:`CRASH_LOOP_BACK_OFF`).

    Args:
        backoff: the entry's back-off, s.
        container: the container's name.
        pod: the pod as :func:`format_pod` renders it.
    """
    return f"back-off {go_duration(backoff)} restarting failed container={container} pod={pod}"


BACKOFF_IN_MESSAGE = re.compile(rf"back-off ({GO_DURATION}) ")
"""Finds the back-off (group 1, a Go duration) in a :func:`waiting_message`."""


def backoff_event_message(container: str, pod: str) -> str:
    """The Warning ``BackOff`` event's message; ``pod`` as :func:`format_pod` renders it."""
    return f"Back-off restarting failed container {container} in pod {pod}"
