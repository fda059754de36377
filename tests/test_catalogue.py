"""The catalogue: every scenario and variant runs, and golden summaries pin seeded results.

Golden files live in ``tests/golden/<scenario>.json``. A change of behaviour makes them differ;
when the change is intended, regenerate them with ``FAULTLAB_UPDATE_GOLDEN=1 pytest
tests/test_catalogue.py`` and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import scenarios
from sim import Scenario, experiment, load_scenario, run
from ui.lessons import split_narrative

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_RUNS = {
    "three-tier": None,
    "mmc-queue": 300.0,
    "checkout-noisy-neighbor": None,
    "probe-cascade": 130.0,
    "crashloop-vs-supervisor": None,
    "poison-pill": 150.0,
}
"""Catalogue scenarios pinned by a golden summary, and the duration to run them for."""


def _smoke_duration(name: str) -> float:
    """Long enough to pass every fault, at most the scenario's own duration."""
    scenario = load_scenario(name)
    last = max((f.at + (f.duration or 0) for f in scenario.faults), default=0.0)
    return min(scenario.duration, last + 30.0)


@pytest.mark.parametrize(
    ("name", "variant"),
    [(n, v) for n in scenarios.names() for v in [None, *load_scenario(n).variants]],
)
def test_every_catalogue_scenario_and_variant_runs(name: str, variant: str | None):
    """Each scenario (and variant) runs, conserves its requests, is analysed, and reloads.

    Reloads: the scenario as run reads back from what a saved run writes (a report draws it).
    """
    done = experiment.run(name, variant, duration=_smoke_duration(name))
    summary = done.result.summary
    assert summary["arrivals"] > 0
    assert summary["arrivals"] == summary["completed"] + summary["in_flight_at_end"]
    assert sum(summary["outcomes"].values()) == summary["completed"]
    headline = done.analysis.headline()
    impacted = {s for s in headline["impacted"].split(",") if s}
    targets = {s for s in headline["targets"].split(",") if s}
    assert headline["blast_radius"] == len(impacted - targets)
    slo = done.analysis.slo  # an impacted service broke its SLO in some window
    assert impacted <= set(slo.loc[slo["violated"], "service"])
    as_run = done.scenario.model_copy(update={"variants": {}})
    assert Scenario.model_validate_json(experiment.as_run_json(done.scenario)) == as_run


def test_every_catalogue_scenario_tells_its_story():
    """A catalogue entry has a title and a narrative for the trainee."""
    for name in scenarios.names():
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.title
        assert len(scenario.description) > 200


@pytest.mark.parametrize("name", scenarios.names())
def test_every_catalogue_scenario_is_a_lesson(name: str):
    """A lesson: a title, 2-4 learning goals, a ``**Predict:**`` step, and a variant to compare.

    The training page splits the narrative at ``**Predict:**`` (``ui.lessons.split_narrative``):
    without it the trainee would read the answers before predicting.
    """
    scenario = load_scenario(name)
    assert scenario.title
    assert 2 <= len(scenario.goals) <= 4
    assert all(goal.strip() and goal.endswith(".") for goal in scenario.goals)
    assert "**Predict:**" in scenario.description
    context, prompt, debrief = split_narrative(scenario.description)
    assert context
    assert prompt
    assert debrief
    assert any(variant != "baseline" for variant in scenario.variants)


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_golden_summary(name: str):
    """The seeded run's summary and per-entity table are exactly as recorded."""
    result = run(name, duration=GOLDEN_RUNS[name])
    current = json.loads(result.to_json())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("FAULTLAB_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert current == expected
