"""Run parameters declared as data, and the Streamlit widgets generated from them.

Mesa's visualisation declares model parameters as data and builds its controls from that list;
the explorer does the same. A :class:`Knob` says which keyword of :func:`sim.run` it feeds, how
to label it, where its default comes from (the scenario), and how to turn the widget's value into
the argument. :func:`render_knobs` draws one widget per knob. Pages add knobs by adding data, not
widget code; scenario fields (the later, schema-generated knobs) will plug in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

from sim import Scenario

NO_VARIANT = "(none)"
"""The variant choice that runs the base scenario."""


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


RUN_KNOBS: tuple[Knob, ...] = (
    Knob(
        name="variant",
        label="Variant",
        kind="choice",
        help="A what-if overlay declared under the scenario's `variants:`; "
        f"{NO_VARIANT} runs the scenario as written.",
        default=lambda scenario: NO_VARIANT,
        options=lambda scenario: [NO_VARIANT, *scenario.variants],
        to_run=lambda value: None if value == NO_VARIANT else value,
    ),
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
"""The knobs of one run: variant, seed, duration."""


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
