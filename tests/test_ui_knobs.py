"""The explorer's scenario knobs (``ui/knobs.py``) and the scenario export (``ui/runs.py``).

The knobs are generated from the pydantic schema's metadata; these tests pin what the metadata
turns into (widget kind, unit, bounds, help) and that the overrides they give are the language
of variants, accepted by :meth:`sim.Scenario.with_overrides`.
"""

from __future__ import annotations

import pytest

from sim import Scenario, load_scenario
from sim.scenario import load_scenario_text
from ui import knobs, runs


@pytest.fixture(scope="module")
def three_tier() -> Scenario:
    """The three-tier catalogue scenario."""
    return load_scenario("three-tier")


def _by_path(scenario: Scenario) -> dict[str, knobs.FieldKnob]:
    return {knob.path: knob for knob in knobs.scenario_knobs(scenario)}


def test_field_metadata_gives_kind_unit_and_bounds(three_tier: Scenario) -> None:
    """Types, unit parsers and ge/le constraints become widget kinds, units and bounds."""
    found = _by_path(three_tier)
    workers = found["services.payments.workers"]
    assert (workers.kind, workers.label, workers.value, workers.minimum) == ("int", "workers", 8, 1)
    limit = found["services.payments.resources.limits.memory"]
    assert (limit.kind, limit.label, limit.initial, limit.optional) == (
        "bytes",
        "resources.limits.memory (MiB)",
        256.0,
        True,
    )
    timeout = found["services.cart.calls.payments.timeout"]
    assert (timeout.kind, timeout.initial, timeout.group) == (
        "duration",
        0.5,
        "Call cart → payments",
    )
    rate = found["workload.rate.rate"]
    assert (rate.kind, rate.label, rate.initial) == ("rate", "rate.rate (/s)", 500.0)
    discipline = found["services.payments.admission.queue.discipline"]
    assert discipline.kind == "choice"
    assert discipline.options[:3] == ("fifo", "reject_new", "drop_oldest")
    threshold = found["services.frontend.calls.cart.circuit_breaker.failure_rate_threshold"]
    assert (threshold.minimum, threshold.maximum, threshold.initial) == (0.0, 100.0, 50.0)
    assert threshold.toggles == ("services.frontend.calls.cart.circuit_breaker",)
    fault = found["faults.payments-crash.at"]
    assert (fault.group, fault.initial) == ("Fault payments-crash: crash on payments", 60.0)


def test_help_comes_from_the_models_docstrings(three_tier: Scenario) -> None:
    """A field's help is its Attributes: entry, its unit, bounds and schema default."""
    found = _by_path(three_tier)
    timeout = found["services.cart.calls.payments.timeout"].help
    assert timeout.startswith("the caller stops waiting for an attempt after this long")
    assert timeout.endswith("Unit: s. (at least 0; empty = null)")
    assert found["services.payments.workers"].help.endswith("(at least 1; schema default 200)")
    assert "Pattern toggle" in found["services.frontend.calls.cart.retry"].help


def test_docstring_attributes_are_parsed() -> None:
    """Continuation lines join their entry; grouped names share one entry."""
    from sim.scenario import Call

    docs = knobs.field_docs(Call)
    assert docs["probability"] == "chance that a request makes this call (default 1)."
    assert docs["retry"].startswith("client-side policies, kept per calling instance")
    assert "order" in docs


def test_unchanged_widgets_give_no_override(three_tier: Scenario) -> None:
    """Every widget at its starting value: nothing to override."""
    found = knobs.scenario_knobs(three_tier)
    assert knobs.overrides(found, {k.path: k.initial for k in found}) == {}


def test_overrides_convert_units_and_switch_patterns(three_tier: Scenario) -> None:
    """MiB back to bytes; a block switched on before its fields; fields of off blocks ignored."""
    found = knobs.scenario_knobs(three_tier)
    breaker = "services.frontend.calls.cart.circuit_breaker"
    retry = "services.cart.calls.payments.retry"
    values = {
        "services.payments.resources.limits.memory": 512.0,
        "services.payments.resources.requests.memory": 384.0,
        breaker: True,
        f"{breaker}.failure_rate_threshold": 25.0,
        f"{retry}.max_attempts": 5,  # retry stays off: ignored
        "services.payments.admission.concurrency_limit": True,
        "services.payments.admission.queue.capacity": None,
    }
    edits = knobs.overrides(found, values)
    assert edits == {
        "services.payments.resources.requests.memory": 384 * 1024**2,
        "services.payments.resources.limits.memory": 512 * 1024**2,
        "services.payments.admission.queue.capacity": None,
        "services.payments.admission.concurrency_limit": {"algorithm": "aimd"},
        breaker: {},
        f"{breaker}.failure_rate_threshold": 25.0,
    }
    edited = three_tier.with_overrides(edits)
    payments = edited.services["payments"]
    assert payments.resources.limits.memory == 512 * 1024**2
    assert payments.admission.queue.capacity is None
    assert payments.admission.concurrency_limit is not None
    cart_call = edited.services["frontend"].calls[0]
    assert cart_call.circuit_breaker is not None
    assert cart_call.circuit_breaker.failure_rate_threshold == 25.0
    assert edited.services["cart"].calls[0].retry is None


def test_switching_off_and_enabled_flags() -> None:
    """Off is null; a present but disabled breaker is switched on through its enabled flag."""
    scenario = load_scenario("retry-storm").with_overrides(
        {"services.frontend.calls.inventory.circuit_breaker": {"enabled": False}}
    )
    found = knobs.scenario_knobs(scenario)
    path = "services.frontend.calls.inventory"
    assert knobs.overrides(found, {f"{path}.retry": False}) == {f"{path}.retry": None}
    assert knobs.overrides(found, {f"{path}.circuit_breaker": True}) == {
        f"{path}.circuit_breaker.enabled": True
    }
    budget = knobs.overrides(found, {f"{path}.retry.budget": True})
    assert budget == {f"{path}.retry.budget": {"kind": "envoy"}}
    assert scenario.with_overrides(budget).services["frontend"].calls[0].retry.budget is not None  # type: ignore[union-attr]


def test_scenario_yaml_loads_back_with_the_edits(three_tier: Scenario) -> None:
    """The exported YAML is the scenario with its variant and edits, and says so."""
    edits = {"services.payments.workers": 12}
    text = runs.scenario_yaml(three_tier, "more-payment-workers", edits)
    assert "# Variant 'more-payment-workers' applied." in text
    assert "#   services.payments.workers: 12" in text
    assert "description: |\n  A classic web stack" in text
    loaded = load_scenario_text(text, "exported.yaml")
    expected = three_tier.with_variant("more-payment-workers").with_overrides(edits)
    assert loaded == expected
