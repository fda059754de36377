"""Variant overlays: dotted paths into the raw scenario, list items by name, ``to`` or index."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from sim.scenario import (
    OverlayError,
    Scenario,
    ScenarioError,
    apply_overlay,
    load_scenario_text,
)


@pytest.fixture
def raw(minimal_scenario_yaml: str) -> dict[str, Any]:
    """The minimal scenario as plain data, before validation."""
    data: dict[str, Any] = yaml.safe_load(minimal_scenario_yaml)
    return data


def _with_variant(text: str, overlay: str) -> Scenario:
    """Load ``text`` with one more variant, ``what-if``, whose body is ``overlay``."""
    return load_scenario_text(f"{text}  what-if:\n    {overlay}\n", "minimal.yaml")


@pytest.mark.parametrize(
    ("dotted", "reached"),
    [
        ("services.backend.workers", ("services", "backend", "workers")),
        ("hosts.node-a.cpus", ("hosts", 0, "cpus")),
        ("hosts.0.cpus", ("hosts", 0, "cpus")),
        (
            "services.frontend.calls.backend.timeout",
            ("services", "frontend", "calls", 0, "timeout"),
        ),
        ("services.frontend.calls.0.timeout", ("services", "frontend", "calls", 0, "timeout")),
    ],
)
def test_overlay_reaches_mapping_fields_and_list_items(
    raw: dict[str, Any], dotted: str, reached: tuple[str | int, ...]
) -> None:
    """A path names mapping keys; in a list, the item whose ``name``/``to`` matches, or an index."""
    assert apply_overlay(raw, dotted, 16) == reached
    node: Any = raw
    for part in reached:
        node = node[part]
    assert node == 16


def test_overlay_creates_missing_intermediate_mappings(raw: dict[str, Any]) -> None:
    """An absent ``admission`` is created on the way down to ``queue.capacity``."""
    assert "admission" not in raw["services"]["backend"]
    apply_overlay(raw, "services.backend.admission.queue.capacity", 10)
    assert raw["services"]["backend"]["admission"] == {"queue": {"capacity": 10}}


def test_overlay_copies_the_value(raw: dict[str, Any]) -> None:
    """Later changes to the overlay's value do not leak into the data it was applied to."""
    value = {"requests": {"memory": "1Gi"}}
    apply_overlay(raw, "services.backend.resources", value)
    value["requests"]["memory"] = "2Gi"
    assert raw["services"]["backend"]["resources"] == {"requests": {"memory": "1Gi"}}


@pytest.mark.parametrize(
    ("dotted", "message"),
    [
        (
            "services.frontend.calls.nope.timeout",
            "services.frontend.calls has no item named 'nope' (items: backend)",
        ),
        (
            "services.frontend.calls.1.timeout",
            "services.frontend.calls has no item named '1' (items: backend)",
        ),
        (
            "services.frontend.replicas.max",
            "services.frontend.replicas is a value, it has no field 'max'",
        ),
        ("services..replicas", "malformed path 'services..replicas'"),
        ("", "malformed path ''"),
    ],
)
def test_overlay_path_that_leads_nowhere(raw: dict[str, Any], dotted: str, message: str) -> None:
    """A missing list item, a field below a plain value or an empty segment is an OverlayError."""
    before = copy.deepcopy(raw)
    with pytest.raises(OverlayError, match=f"^{re.escape(message)}$"):
        apply_overlay(raw, dotted, 1)
    assert raw == before


def test_variant_sets_a_field_through_the_loader(minimal_scenario: Scenario) -> None:
    """``fast-backend`` changes only the backend's mean service time (5 ms instead of 20 ms)."""
    fast = minimal_scenario.with_variant("fast-backend")
    assert fast.services["backend"].service_time.model_dump() == {
        "dist": "exponential",
        "mean": 0.005,
    }
    assert fast.model_dump(exclude={"services"}) == minimal_scenario.model_dump(
        exclude={"services"}
    )
    assert fast.services["frontend"] == minimal_scenario.services["frontend"]


def test_variant_addresses_a_call_by_its_target(minimal_scenario_yaml: str) -> None:
    """``calls.backend`` is the call whose ``to`` is backend."""
    scenario = _with_variant(minimal_scenario_yaml, "services.frontend.calls.backend.timeout: 1s")
    assert scenario.with_variant("what-if").services["frontend"].calls[0].timeout == 1.0


def test_variant_creates_an_absent_admission_block(minimal_scenario_yaml: str) -> None:
    """The backend has no ``admission``; the overlay creates it and the schema accepts it."""
    scenario = _with_variant(minimal_scenario_yaml, "services.backend.admission.queue.capacity: 10")
    assert scenario.services["backend"].admission.queue.capacity is None
    assert scenario.with_variant("what-if").services["backend"].admission.queue.capacity == 10


def test_variant_naming_a_missing_field_fails_to_load(minimal_scenario_yaml: str) -> None:
    """An overlay of a field the schema does not have is an error at its key, 25:5."""
    with pytest.raises(ScenarioError) as raised:
        _with_variant(minimal_scenario_yaml, "services.backend.colour: blue")
    assert str(raised.value) == (
        "minimal.yaml:25:5: variants.what-if.services.backend.colour: unknown field"
    )


def test_with_variant_rechecks_overlays_of_unloaded_scenarios(minimal_scenario: Scenario) -> None:
    """A scenario built without the loader still gets its overlay paths checked."""
    data = minimal_scenario.model_dump(by_alias=True)
    data["variants"] = {"broken": {"services.frontend.calls.nope.timeout": 1}}
    scenario = Scenario.model_validate(data)
    with pytest.raises(ScenarioError) as raised:
        scenario.with_variant("broken")
    assert str(raised.value) == (
        "variants.broken.services.frontend.calls.nope.timeout: "
        "services.frontend.calls has no item named 'nope' (items: backend)"
    )


def test_baseline_variant_is_the_scenario_itself(minimal_scenario: Scenario) -> None:
    """``baseline`` (and no variant at all) give back the scenario unchanged."""
    assert minimal_scenario.with_variant("baseline") == minimal_scenario
    assert minimal_scenario.with_variant(None) is minimal_scenario


def test_baseline_needs_no_declaration(minimal_scenario: Scenario) -> None:
    """``baseline`` works even when the file lists no variants."""
    bare = minimal_scenario.model_copy(update={"variants": {}})
    assert bare.with_variant("baseline") is bare


def test_unknown_variant_lists_the_known_ones(minimal_scenario: Scenario) -> None:
    """Asking for a variant the scenario does not have names the ones it does."""
    with pytest.raises(ScenarioError) as raised:
        minimal_scenario.with_variant("nope")
    assert str(raised.value) == "variant: unknown variant 'nope' (known: baseline, fast-backend)"
    assert [p.path for p in raised.value.problems] == ["variant"]
