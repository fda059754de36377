"""Run parameters declared as data, and the Streamlit widgets generated from them.

Mesa's visualisation declares model parameters as data and builds its controls from that list;
the explorer does the same, twice:

- a :class:`Knob` is a run argument (variant, seed, duration): which keyword of
  :func:`sim.experiment.run` it feeds, how to label it, where its default comes from (the
  scenario), and how to turn the widget's value into the argument; :func:`render_knobs`;
- a :class:`ui.knobs.FieldKnob` is a scenario field, generated from the schema's metadata
  (:func:`ui.knobs.scenario_knobs`); :func:`render_field_knobs` draws them grouped by service,
  call, fault and host, pattern toggles first in their block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

from sim import Scenario
from sim.experiment import BASELINE, designs
from ui.knobs import FieldKnob


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Knob:
    """One run parameter, declared as data.

    Attributes:
        name: the keyword argument of :func:`sim.run` it feeds.
        label: the widget's label.
        kind: ``choice`` (a selectbox), ``int`` or ``float`` (number inputs).
        help: the tooltip.
        default: the initial value, from the scenario.
        options: the choices of a ``choice`` knob, from the scenario.
        min_value: the smallest value of a number knob.
        step: the +/- step of a number knob.
        to_run: turns the widget's value into the argument of :func:`sim.run`.
    """

    name: str
    label: str
    kind: Literal["choice", "int", "float"]
    help: str
    default: Callable[[Scenario], Any]
    options: Callable[[Scenario], Sequence[Any]] | None = None
    min_value: float | None = None
    step: float | None = None
    to_run: Callable[[Any], Any] = _identity


VARIANT = Knob(
    name="variant",
    label="Variant",
    kind="choice",
    help="A what-if overlay declared under the scenario's `variants:`; "
    f"`{BASELINE}` runs the scenario as written. The knobs below start from the variant's values.",
    default=lambda scenario: BASELINE,
    options=designs,
)
"""Which variant to run: chosen before the knobs, whose starting values depend on it."""

RUN_KNOBS: tuple[Knob, ...] = (
    Knob(
        name="seed",
        label="Seed",
        kind="int",
        help="Same scenario, variant and seed give the identical run; variants share random "
        "numbers, so a comparison at one seed is paired.",
        default=lambda scenario: scenario.seed,
        min_value=0,
        step=1,
    ),
    Knob(
        name="duration",
        label="Duration (s)",
        kind="float",
        help="Simulated seconds to run; the scenario's own duration by default.",
        default=lambda scenario: float(scenario.duration),
        min_value=1.0,
        step=10.0,
    ),
)
"""The knobs of one run besides the scenario's fields: seed and duration."""


def render_knobs(knobs: Sequence[Knob], scenario: Scenario, key_prefix: str) -> dict[str, Any]:
    """Draw one widget per knob and return the :func:`sim.run` keyword arguments they give.

    Args:
        knobs: the knobs to draw, in order.
        scenario: where defaults and choices come from.
        key_prefix: makes widget keys unique per scenario, so that picking another scenario
            resets the widgets to that scenario's defaults.

    Returns:
        ``{knob.name: knob.to_run(widget value)}``.
    """
    values: dict[str, Any] = {}
    for knob in knobs:
        key = f"{key_prefix}.{knob.name}"
        default = knob.default(scenario)
        value: Any
        if knob.kind == "choice":
            options = list(knob.options(scenario)) if knob.options else [default]
            value = st.selectbox(
                knob.label, options, index=options.index(default), key=key, help=knob.help
            )
        elif knob.kind == "int":
            value = st.number_input(
                knob.label,
                min_value=None if knob.min_value is None else int(knob.min_value),
                value=int(default),
                step=int(knob.step or 1),
                key=key,
                help=knob.help,
            )
        else:
            value = st.number_input(
                knob.label,
                min_value=knob.min_value,
                value=float(default),
                step=knob.step,
                format="%g",
                key=key,
                help=knob.help,
            )
        values[knob.name] = knob.to_run(value)
    return values


def _step(value: float | None) -> float:
    """A +/- step: a tenth of the value's order of magnitude from 10 up, the order below it.

    500 -> 10, 8192 -> 100, 3 -> 1, 0.2 -> 0.1; 1 for zero or empty.
    """
    if not value:
        return 1.0
    order = math.floor(math.log10(abs(value)) + 1e-9)
    return float(10 ** (order - 1 if abs(value) >= 10 else order))


def render_field_knobs(knobs: Sequence[FieldKnob], key_prefix: str) -> dict[str, Any]:
    """Draw the scenario's field knobs, one expander per group; return the widget values.

    Args:
        knobs: :func:`ui.knobs.scenario_knobs` of the scenario (variant applied).
        key_prefix: makes widget keys unique per scenario and variant, so that picking another
            one starts from its values.

    Returns:
        ``{knob.path: widget value}``, for :func:`ui.knobs.overrides`.
    """
    values: dict[str, Any] = {}
    groups = dict.fromkeys(knob.group for knob in knobs)
    for group in groups:
        with st.expander(group):
            for knob in (k for k in knobs if k.group == group):
                values[knob.path] = _field_widget(knob, f"{key_prefix}.{knob.path}")
    return values


def _field_widget(knob: FieldKnob, key: str) -> Any:
    initial = knob.initial
    if knob.kind in ("toggle", "bool"):
        return st.toggle(knob.label, value=bool(initial), key=key, help=knob.help)
    if knob.kind == "choice":
        options = list(knob.options)
        return st.selectbox(
            knob.label, options, index=options.index(initial), key=key, help=knob.help
        )
    if knob.kind == "int":
        return st.number_input(
            knob.label,
            value=None if initial is None else int(initial),
            min_value=None if knob.minimum is None else int(knob.minimum),
            max_value=None if knob.maximum is None else int(knob.maximum),
            step=1,
            key=key,
            help=knob.help,
            placeholder="null",
        )
    return st.number_input(
        knob.label,
        value=None if initial is None else float(initial),
        min_value=knob.minimum,
        max_value=knob.maximum,
        step=_step(initial),
        format="%g",
        key=key,
        help=knob.help,
        placeholder="null",
    )
