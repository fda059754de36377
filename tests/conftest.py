"""Shared fixtures: the minimal valid scenario every malformed one is derived from."""

from __future__ import annotations

import pytest

from sim.scenario import Scenario, load_scenario_text

MINIMAL_SCENARIO_YAML = """\
name: minimal
duration: 1m
hosts:
  - {name: node-a, memory: 4Gi, cpus: 2}
services:
  frontend:
    replicas: 2
    resources: {requests: {memory: 256Mi}}
    service_time: {dist: lognormal, median: 10ms, p99: 50ms}
    calls:
      - {to: backend, timeout: 200ms}
  backend:
    service_time: {dist: exponential, mean: 20ms}
workload:
  entry: frontend
  rate: {profile: constant, rate: 100/s}
faults:
  - {kind: crash, target: backend, at: 30s}
slo: {availability: 99.9%, latency_p99: 300ms}
variants:
  baseline: {}
  fast-backend:
    services.backend.service_time.mean: 5ms
"""
"""The smallest scenario using every top-level section; ``tests/bad_scenarios`` derive from it."""


@pytest.fixture
def minimal_scenario_yaml() -> str:
    """The minimal valid scenario as YAML text."""
    return MINIMAL_SCENARIO_YAML


@pytest.fixture
def minimal_scenario() -> Scenario:
    """The minimal valid scenario, loaded."""
    return load_scenario_text(MINIMAL_SCENARIO_YAML, "minimal.yaml")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``browser`` marker: tests that drive Debian's chromium (deselect with -m)."""
    config.addinivalue_line(
        "markers", "browser: drives a real browser (Debian's /usr/bin/chromium) via Playwright"
    )
