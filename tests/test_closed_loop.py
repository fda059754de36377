"""Closed-loop users: think, send, wait, think again; the refresh button retries failures.

Exact timelines with deterministic think and service times, and the interactive response time
law (X = N / (R + Z)) on a Poisson-thinking population.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim.scenario import CrossReferenceError, Scenario
from sim.world import World


def scenario(users: dict[str, Any], **extra: Any) -> Scenario:
    """``api`` (100 ms, 50 workers) behind closed-loop ``users``."""
    workload = {"entry": "api", "users": users, **extra.pop("workload", {})}
    return Scenario.model_validate(
        {
            "name": "closed",
            "duration": extra.pop("duration", 10.0),
            "hosts": [{"name": "node-a", "memory": "8Gi"}],
            "services": {
                "api": {"workers": 50, "service_time": {"dist": "deterministic", "value": "100ms"}}
            },
            "workload": workload,
            "recording": {"bin": 0.1},
            **extra,
        }
    )


def client_counts(result, metric: str) -> dict[float, float]:
    """Non-zero values of one ``client`` gauge or rate, by bin start."""
    ts = result.timeseries
    rows = ts[(ts.entity == "client") & (ts.metric == metric) & (ts.value != 0)]
    return {round(t, 6): v for t, v in zip(rows.t, rows.value, strict=True)}


DETERMINISTIC_THINK = {"dist": "deterministic", "value": "1s"}


def test_one_user_thinks_sends_and_waits():
    """Think 1 s, 100 ms answer: requests at 1.0, 2.1, 3.2, ... (the think starts at the answer)."""
    result = World(scenario({"count": 1, "think_time": DETERMINISTIC_THINK}, duration=5.0)).run()
    assert result.summary["arrivals"] == 4  # 1.0, 2.1, 3.2, 4.3
    assert list(client_counts(result, "rate.ok")) == [1.1, 2.2, 3.3, 4.4]


def test_the_refresh_button_sends_a_failed_request_again():
    """The refresh button: up to ``max`` new arrivals, ``after`` each failure, then think.

    Every hop fails: the request at 1.0 fails at 1.1, is sent again at 1.6 (fails 1.7) and
    2.2 (fails 2.3); then the user gives up, thinks 1 s, and sends a new one at 3.3.
    """
    result = World(
        scenario(
            {
                "count": 1,
                "think_time": DETERMINISTIC_THINK,
                "retries": {"max": 2, "after": "500ms"},
            },
            duration=3.8,
            faults=[{"kind": "error_rate", "target": "api", "rate": 1.0, "at": 0}],
        )
    ).run()
    assert result.summary["arrivals"] == 4
    assert list(client_counts(result, "rate.error")) == [1.1, 1.7, 2.3, 3.4]
    assert sum(client_counts(result, "user_retries").values()) == 2


def test_a_user_stops_waiting_at_the_timeout_and_the_work_goes_on():
    """With a 50 ms client timeout the user moves on at 1.05 while api finishes at 1.1."""
    result = World(
        scenario(
            {"count": 1, "think_time": DETERMINISTIC_THINK, "retries": {"max": 1, "after": 0}},
            duration=2.5,
            workload={"timeout": "50ms"},
        )
    ).run()
    # 1.0 -> timeout 1.05, retried at once -> timeout 1.1; think -> 2.1 -> timeout 2.15, ...
    assert list(client_counts(result, "rate.timeout")) == [1.0, 1.1, 2.1]
    assert result.services.set_index("entity").loc["api", "ok"] == 4


def test_interactive_response_time_law():
    """X = N / (R + Z): 200 users, exponential think 1 s, R = 0.1 s -> 181.8 requests/s."""
    result = World(
        scenario(
            {"count": 200, "think_time": {"dist": "exponential", "mean": "1s"}},
            duration=200.0,
        )
    ).run()
    throughput = result.summary["arrivals"] / 200.0
    assert throughput == pytest.approx(200 / 1.1, rel=0.02)


def test_a_surge_adds_users_for_its_duration():
    """A surge of 2x doubles the population from 50 s to 100 s: about twice the arrivals."""
    users = {"count": 100, "think_time": {"dist": "exponential", "mean": "1s"}}
    surge = [{"kind": "traffic_surge", "at": 50, "duration": 50, "factor": 2}]
    result = World(scenario(users, duration=150.0, faults=surge)).run()
    ts = result.timeseries
    ok = ts[(ts.entity == "client") & (ts.metric == "rate.ok")]
    during = ok[(ok.t >= 55) & (ok.t < 100)].value.sum()
    after = ok[(ok.t >= 105) & (ok.t < 150)].value.sum()
    assert during / after == pytest.approx(2.0, rel=0.05)


def test_workload_needs_a_rate_or_users_not_both():
    with pytest.raises(ValueError, match="either a rate"):
        scenario({"count": 1}, workload={"rate": {"profile": "constant", "rate": 1}})
    with pytest.raises(CrossReferenceError, match="a surge below 1 needs open-loop arrivals"):
        scenario(
            {"count": 10},
            faults=[{"kind": "traffic_surge", "at": 1, "duration": 1, "factor": 0.5}],
        )
