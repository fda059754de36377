"""Scenario loading, cached runs and exports for the pages; the only place the UI runs the model.

A run is :func:`sim.experiment.run`: the :class:`~sim.recorder.RunResult` with its analysis
(:mod:`sim.analysis`) and the scenario as run. Runs are cached with ``st.cache_data`` keyed on
the frozen scenario's content (``model_dump_json()``: a catalogue entry and an uploaded file with
the same content share an entry, an edited file never hits a stale one), the variant, the seed,
the run length and the knobs' overrides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st
import yaml

import scenarios
from sim import Scenario, ScenarioError, experiment, load_scenario
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
    key: str,
    _scenario: Scenario,
    variant: str,
    seed: int | None,
    duration: float | None,
    overrides: str,
) -> experiment.Run:
    # ``_scenario`` is left out of the hash (leading underscore); ``key`` stands for it.
    return experiment.run(
        _scenario, variant, seed, duration=duration, overrides=json.loads(overrides)
    )


def cached_run(
    scenario: Scenario,
    variant: str = experiment.BASELINE,
    seed: int | None = None,
    duration: float | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> experiment.Run:
    """:func:`sim.experiment.run`, cached on (scenario, variant, seed, duration, overrides).

    Raises:
        sim.ScenarioError: the variant or an override makes the scenario invalid.
    """
    encoded = json.dumps(dict(overrides or {}))
    return _run_cached(scenario_key(scenario), scenario, variant, seed, duration, encoded)


def scenario_yaml(
    scenario: Scenario,
    variant: str = experiment.BASELINE,
    edits: Mapping[str, Any] | None = None,
) -> str:
    """The scenario as YAML, with a variant's overlay and ``edits`` (dotted paths) applied.

    Written from the validated model (fields left at the schema's defaults omitted), so it loads
    back to the same scenario; numbers are in base units (bytes, seconds, per second), which the
    format accepts. A header says which variant and edits were applied.

    Raises:
        sim.ScenarioError: an edit makes the scenario invalid.
    """
    edited = scenario.with_variant(variant)
    if edits:
        edited = edited.with_overrides(edits)
    data = edited.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    header = [f"# {edited.name}, exported by faultlab's Streamlit app."]
    header += ["# Numbers are in base units: bytes, seconds, requests per second."]
    if variant != experiment.BASELINE:
        header.append(f"# Variant {variant!r} applied.")
    if edits:
        header.append("# Edits applied:")
        header += [f"#   {path}: {json.dumps(value)}" for path, value in edits.items()]
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the Markdown narrative) as ``|`` blocks."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A table as Parquet file content (for a download button)."""
    return frame.to_parquet(index=False)


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV text (for a download button)."""
    return frame.to_csv(index=False)
