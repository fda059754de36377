"""Scenario loading and cached runs for the pages; the only place the UI calls the model.

Runs are cached with ``st.cache_data``, keyed on the scenario's ``model_dump_json()`` (so a
catalogue entry and an uploaded file with the same content share a cache entry, and an edited
file does not hit a stale one), the variant, the seed and the duration.
"""

from __future__ import annotations

import streamlit as st

import scenarios
from sim import RunResult, Scenario, ScenarioError, load_scenario, run
from sim.scenario import Problem, load_scenario_text


def catalogue() -> list[str]:
    """The names of the catalogue's scenarios."""
    return scenarios.names()


def catalogue_scenario(name: str) -> Scenario:
    """A catalogue scenario by name; raises :class:`sim.ScenarioError`."""
    return load_scenario(name)


def uploaded_scenario(file_name: str, data: bytes) -> Scenario:
    """Validate an uploaded YAML file; raises :class:`sim.ScenarioError` (one line per problem)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(
            [Problem(file_name, None, None, "", "cannot read: not UTF-8 text")]
        ) from None
    return load_scenario_text(text, file_name)


def scenario_key(scenario: Scenario) -> str:
    """What identifies a scenario's content in caches and session state."""
    return scenario.model_dump_json()


@st.cache_data(max_entries=32, show_spinner=False)
def _run_cached(
    key: str, _scenario: Scenario, variant: str | None, seed: int | None, duration: float | None
) -> RunResult:
    # ``_scenario`` is left out of the hash (leading underscore); ``key`` stands for it.
    return run(_scenario, variant=variant, seed=seed, duration=duration)


def cached_run(
    scenario: Scenario,
    variant: str | None = None,
    seed: int | None = None,
    duration: float | None = None,
) -> RunResult:
    """:func:`sim.run`, cached on (scenario content, variant, seed, duration)."""
    return _run_cached(scenario_key(scenario), scenario, variant, seed, duration)
