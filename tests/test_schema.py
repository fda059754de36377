"""``scenarios/schema.json``: current with the models, and it accepts the catalogue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import scenarios
from sim.schema import SCHEMA_PATH, schema_text, write_schema


def test_schema_json_is_current() -> None:
    """The committed schema is exactly what the models generate."""
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "scenarios/schema.json is stale: run `python -m sim.schema`"
    )


def test_schema_text_is_sorted_pretty_json(tmp_path: Path) -> None:
    """Keys sorted, two-space indent, one trailing newline; ``write_schema`` writes just that."""
    text = schema_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    target = tmp_path / "schema.json"
    assert write_schema(target) == target
    assert target.read_text(encoding="utf-8") == text


def test_schema_uses_yaml_names() -> None:
    """Aliases are the names users write: the ramp profile's start rate is ``from``."""
    ramp = json.loads(schema_text())["$defs"]["RampRate"]
    assert sorted(ramp["required"]) == ["end", "from", "profile", "to"]


@pytest.fixture(scope="module")
def validator() -> Any:
    """A JSON Schema validator for schema.json (skipped when ``jsonschema`` is not installed)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", scenarios.names())
def test_catalogue_scenario_matches_schema(validator: Any, name: str) -> None:
    """Every catalogue scenario passes the editor-side schema check."""
    path = scenarios.catalogue_path(name)
    assert path is not None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [error.message for error in validator.iter_errors(data)] == []


def test_schema_rejects_a_typo(validator: Any, minimal_scenario_yaml: str) -> None:
    """An editor flags an unknown field just as the loader does."""
    data = yaml.safe_load(minimal_scenario_yaml.replace("    replicas: 2\n", "    replica: 2\n"))
    errors = [(list(e.absolute_path), e.validator) for e in validator.iter_errors(data)]
    assert errors == [(["services", "frontend"], "additionalProperties")]
