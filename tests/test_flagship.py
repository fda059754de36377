"""The flagship scenario tells the truth: its narrative's outcomes, measured by sim.analysis."""

from __future__ import annotations

import pytest

from sim.experiment import Run
from sim.experiment import run as run_once

NAME = "checkout-noisy-neighbor"


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    return {v: run_once(NAME, v) for v in ("baseline", "memory-limit", "breakers")}


def test_baseline_the_kernel_kills_the_neighbours(runs: dict[str, Run]):
    """No limit: the node runs out and the innocent pods die; the blast reaches every caller."""
    done = runs["baseline"]
    blast, recovery = done.analysis.blast, done.analysis.recovery
    assert set(blast.beyond_targets) == {"cart", "frontend"}
    assert blast.count == 2
    assert blast.containment == 0.0
    assert blast.collateral_kills >= 4
    assert blast.user_impact_fraction > 0.2
    kills = done.result.events
    dead = kills.loc[kills["kind"] == "terminated", ["entity", "detail"]].astype(str)
    innocent = dead[dead["entity"].str.startswith(("cart", "frontend"))]
    assert innocent["detail"].str.contains("OOMKilled").any()
    assert innocent["detail"].str.contains("Evicted").any()
    assert recovery.recovered
    assert recovery.time_to_recover is not None
    assert 10.0 < recovery.time_to_recover < 60.0


def test_memory_limit_contains_the_blast(runs: dict[str, Run]):
    """A limit on the leaker: a memcg OOM in its own container, nobody else is touched."""
    blast, recovery = runs["memory-limit"].analysis.blast, runs["memory-limit"].analysis.recovery
    assert blast.count == 0
    assert blast.containment == 1.0
    assert blast.collateral_kills == 0
    assert blast.user_impact_fraction == 0.0
    assert recovery.recovered
    assert recovery.time_to_recover == 0.0
    assert runs["memory-limit"].result.summary["oom_kills"] >= 1


def test_breakers_trim_the_impact_but_do_not_contain_it(runs: dict[str, Run]):
    """Caller-side patterns help the users a little; the kernel kills the same neighbours."""
    base, breakers = runs["baseline"].analysis.blast, runs["breakers"].analysis.blast
    assert breakers.count == 2
    assert breakers.containment == 0.0
    assert breakers.collateral_kills > 0
    assert breakers.user_impact_fraction < base.user_impact_fraction
