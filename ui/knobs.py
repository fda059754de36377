"""Scenario knobs generated from the schema: which fields the explorer offers, and their overrides.

Mesa declares model parameters as data and builds its controls from them; here the data is the
pydantic schema itself (``sim/scenario.py``). For the chosen scenario, :func:`scenario_knobs`
walks its models and, for each field named in :data:`EXPOSED`, reads the field's metadata:

- the type gives the widget: ``bool`` a checkbox, a ``Literal`` a choice, a number an input;
- the unit parser attached to the type (``Bytes``, ``Duration``, ``Rate``, ``Fraction``) gives
  the unit shown (MiB, s, /s, %) and the conversion from and to the model's base units;
- ``ge``/``gt``/``le`` constraints give the input's bounds, and ``X | None`` an input that may be
  left empty (``null``: no limit, no timeout, unbounded);
- an optional block (``retry``, ``circuit_breaker``, ``bulkhead``, ``fallback``, a retry
  ``budget``, a ``concurrency_limit``) becomes a *pattern toggle*, with its fields beneath it
  (the block's own values, or the schema's defaults when it is off);
- the help text is the field's entry in its model's ``Attributes:`` docstring (else the model's
  summary line), followed by its bounds and its schema default.

:func:`overrides` turns the widget values back into dotted-path overrides for
:meth:`sim.Scenario.with_overrides` / :func:`sim.experiment.run` (the language of variants),
keeping only what the user changed. No Streamlit here: ``ui/widgets.py`` draws the knobs.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from sim import scenario as sc
from sim import units

MIB = 1024.0 * 1024.0

Kind = Literal["int", "float", "bytes", "duration", "rate", "fraction", "bool", "choice", "toggle"]

UNIT_KINDS: dict[Any, Kind] = {
    units.parse_bytes: "bytes",
    units.parse_duration: "duration",
    units.parse_rate: "rate",
    units.parse_fraction: "fraction",
}
"""The unit parser on a field's type -> how the knob shows it."""

SCALES: dict[Kind, tuple[float, str]] = {
    "bytes": (MIB, "MiB"),
    "duration": (1.0, "s"),
    "rate": (1.0, "/s"),
    "fraction": (0.01, "%"),
}
"""Widget value x scale = model value; and the unit in the knob's label."""

_FAULT_TIME = ("at", "duration")

EXPOSED: dict[type[BaseModel], tuple[str, ...]] = {
    sc.Workload: ("rate", "timeout", "deadline_propagation"),
    sc.ConstantRate: ("rate",),
    sc.StepRate: ("base",),
    sc.RampRate: ("from_", "to"),
    sc.SpikeRate: ("base", "peak", "at", "duration"),
    sc.SineRate: ("base", "amplitude", "period"),
    sc.Host: ("memory", "swap", "eviction"),
    sc.Service: ("replicas", "workers", "resources", "cgroup", "admission"),
    sc.Resources: ("requests", "limits"),
    sc.ResourceAmounts: ("memory",),
    sc.CgroupSettings: ("high",),
    sc.Admission: ("queue", "concurrency_limit"),
    sc.QueueConfig: ("capacity", "discipline"),
    sc.AimdSpec: ("initial_limit", "max_limit"),
    sc.VegasSpec: ("initial_limit", "max_concurrency"),
    sc.Gradient2Spec: ("initial_limit", "max_concurrency"),
    sc.Call: ("timeout", "retry", "circuit_breaker", "bulkhead", "fallback"),
    sc.RetrySpec: ("max_attempts", "budget"),
    sc.EnvoyBudgetSpec: ("budget_percent", "min_retry_concurrency"),
    sc.GrpcBudgetSpec: ("max_tokens", "token_ratio"),
    sc.AwsBudgetSpec: (),
    sc.CircuitBreakerSpec: (
        "failure_rate_threshold",
        "sliding_window_size",
        "minimum_number_of_calls",
        "wait_duration_in_open_state",
    ),
    sc.BulkheadSpec: ("max_concurrent_calls",),
    sc.FallbackSpec: (),
    sc.LatencyFault: (*_FAULT_TIME, "add", "factor"),
    sc.ErrorRateFault: (*_FAULT_TIME, "rate"),
    sc.CrashFault: ("at", "count", "percent"),
    sc.TrafficSurgeFault: (*_FAULT_TIME, "factor"),
    sc.HostDownFault: _FAULT_TIME,
    sc.MemoryLeakFault: (*_FAULT_TIME, "rate"),
    sc.MemorySpikeFault: (*_FAULT_TIME, "size"),
    sc.MemoryHogFault: (*_FAULT_TIME, "size", "rate"),
    sc.PartitionFault: (*_FAULT_TIME, "mode"),
    sc.PoisonRequestFault: (*_FAULT_TIME, "fraction"),
}
"""The fields the explorer offers, per model: the what-if knobs of DESIGN §4 (load, workers,
memory limits, queue, timeouts, retries and budgets, breaker, bulkhead, fallback, fault time and
magnitude). Everything else stays as the scenario file says (edit the YAML for it)."""


@dataclass(frozen=True)
class FieldKnob:
    """One scenario field offered as a widget.

    Attributes:
        path: the dotted path of :meth:`sim.Scenario.with_overrides` (list items by name).
        group: the heading it is drawn under (a service, a call, a fault, a host, the workload).
        label: the field's path inside its group, with the widget's unit.
        kind: how it is edited (see the module docstring).
        value: the current value in the model's base units (a toggle: whether the block is on).
        optional: the field may be ``null`` (an empty input).
        minimum: the smallest widget value, from a ``ge`` constraint.
        maximum: the largest widget value, from a ``le`` constraint.
        options: the choices of a ``choice``.
        help: the field's documentation, bounds and default.
        toggles: the pattern toggles this knob sits under (outermost first): it only applies
            while they are all on.
        enable: for a toggle: the block written when it is switched on (its discriminator, or
            ``{}`` for the schema's defaults); ``None`` when the block exists and has an
            ``enabled`` flag to set instead.
    """

    path: str
    group: str
    label: str
    kind: Kind
    value: Any
    optional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    options: tuple[Any, ...] = ()
    help: str = ""
    toggles: tuple[str, ...] = ()
    enable: dict[str, Any] | None = None

    def to_widget(self, value: Any) -> Any:
        """A model value as the widget shows it (MiB, seconds, percent...)."""
        if value is None or self.kind not in SCALES:
            return value
        return _tidy(float(value) / SCALES[self.kind][0])

    def to_model(self, value: Any) -> Any:
        """A widget value in the model's base units (bytes are whole)."""
        if value is None or self.kind not in SCALES:
            return value
        scaled = float(value) * SCALES[self.kind][0]
        return round(scaled) if self.kind == "bytes" else _tidy(scaled)

    @property
    def initial(self) -> Any:
        """The widget's starting value: the scenario's."""
        return self.to_widget(self.value)


def _tidy(value: float) -> float:
    """Drop binary noise (0.1 * 3 -> 0.3) so unchanged values compare equal."""
    return float(f"{value:.12g}")


# --------------------------------------------------------------------------- field metadata


def _flatten(annotation: Any) -> tuple[list[Any], list[Any]]:
    """The non-None types of an annotation and every metadata item found inside it."""
    metadata: list[Any] = []
    found: list[Any] = []

    def visit(item: Any) -> None:
        origin = typing.get_origin(item)
        if origin is typing.Annotated:
            base, *extra = typing.get_args(item)
            for meta in extra:
                metadata.extend(meta.metadata if isinstance(meta, FieldInfo) else [meta])
            visit(base)
        elif origin in (typing.Union, types.UnionType):
            for arg in typing.get_args(item):
                visit(arg)
        elif item is not type(None):
            found.append(item)

    visit(annotation)
    return found, metadata


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _models(found: Sequence[Any]) -> list[type[BaseModel]]:
    return [t for t in found if isinstance(t, type) and issubclass(t, BaseModel)]


def _bounds(metadata: Sequence[Any]) -> tuple[float | None, float | None]:
    low = high = None
    for meta in metadata:
        if isinstance(meta, annotated_types.Ge):
            low = float(meta.ge)  # type: ignore[arg-type]
        elif isinstance(meta, annotated_types.Gt):
            low = float(meta.gt)  # type: ignore[arg-type]
        elif isinstance(meta, annotated_types.Le):
            high = float(meta.le)  # type: ignore[arg-type]
    return low, high


_ATTRIBUTE = re.compile(r"^(\s+)(\w+)(?:,[\w\s,]+)?: (.*)$")


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The ``Attributes:`` entries of a model's Google-style docstring: ``{field: text}``."""
    docs: dict[str, str] = {}
    lines = inspect.cleandoc(model.__doc__ or "").splitlines()
    if "Attributes:" not in lines:
        return docs
    current: str | None = None
    indent = 0
    for line in lines[lines.index("Attributes:") + 1 :]:
        match = _ATTRIBUTE.match(line)
        if match and (current is None or len(match.group(1)) <= indent):
            indent, current = len(match.group(1)), match.group(2)
            docs[current] = match.group(3).strip()
        elif line.strip() and current is not None and line.startswith(" " * (indent + 1)):
            docs[current] += " " + line.strip()
        elif line.strip():
            break
    return docs


def _summary(model: type[BaseModel]) -> str:
    doc = inspect.cleandoc(model.__doc__ or "")
    return doc.split("\n\n")[0].replace("\n", " ")


def _help(model: type[BaseModel], name: str, knob: FieldKnob, default: Any) -> str:
    """The field's documentation, its unit, bounds and schema default."""
    facts = []
    if knob.minimum is not None:
        facts.append(f"at least {knob.minimum:g}")
    if knob.maximum is not None:
        facts.append(f"at most {knob.maximum:g}")
    if knob.optional:
        facts.append("empty = null")
    if default is not None:
        shown = knob.to_widget(default)
        facts.append(
            f"schema default {shown:g}" if isinstance(shown, float) else f"schema default {shown}"
        )
    unit = f" Unit: {SCALES[knob.kind][1]}." if knob.kind in SCALES else ""
    text = field_docs(model).get(name) or _summary(model)
    return f"{text}{unit}" + (f" ({'; '.join(facts)})" if facts else "")


# --------------------------------------------------------------------------- the walk


def scenario_knobs(scenario: sc.Scenario) -> list[FieldKnob]:
    """Every knob of a scenario, grouped: workload, services and their calls, faults, hosts."""
    knobs: list[FieldKnob] = []
    knobs += _walk(scenario.workload, "workload", "Workload", "", ())
    for name, service in scenario.services.items():
        knobs += _walk(service, f"services.{name}", f"Service {name}", "", ())
        for call in service.calls:
            path = f"services.{name}.calls.{call.to}"
            knobs += _walk(call, path, f"Call {name} → {call.to}", "", ())
    for index, fault in enumerate(scenario.faults):
        target = getattr(fault, "target", None) or scenario.workload.entry
        title = f"Fault {fault.name or index}: {fault.kind} on {target}"
        knobs += _walk(fault, f"faults.{fault.name or index}", title, "", ())
    for host in scenario.hosts:
        knobs += _walk(host, f"hosts.{host.name}", f"Host {host.name}", "", ())
    return knobs


def _walk(
    model: BaseModel, path: str, group: str, prefix: str, toggles: tuple[str, ...]
) -> Iterator[FieldKnob]:
    cls = type(model)
    for name in EXPOSED.get(cls, ()):
        info = cls.model_fields[name]
        key = info.alias or name
        value = getattr(model, name)
        field_path, label = f"{path}.{key}", f"{prefix}{key}"
        blocks = _models(_flatten(info.annotation)[0])
        if not blocks:
            yield _scalar(cls, name, value, field_path, group, label, toggles)
            continue
        if not _is_optional(info.annotation):
            yield from _walk(value, field_path, group, f"{label}.", toggles)
            continue
        enabled = value is not None and getattr(value, "enabled", True)
        block = value if value is not None else _default_block(blocks)
        toggle = FieldKnob(
            path=field_path,
            group=group,
            label=label,
            kind="toggle",
            value=enabled,
            help=f"Pattern toggle. {_summary(type(block))}",
            toggles=toggles,
            enable=None
            if value is not None and "enabled" in type(value).model_fields
            else _discriminator(block),
        )
        yield toggle
        yield from _walk(block, field_path, group, f"{label}.", (*toggles, field_path))


def _default_block(blocks: Sequence[type[BaseModel]]) -> BaseModel:
    """The block a toggle switches on: the first of a union, with the schema's defaults."""
    first = blocks[0]
    return first.model_validate(_discriminator_of(first))


def _discriminator_of(cls: type[BaseModel]) -> dict[str, Any]:
    """The required single-value ``Literal`` fields of a model (its union discriminator)."""
    values: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if info.is_required() and typing.get_origin(info.annotation) is Literal:
            (values[name],) = typing.get_args(info.annotation)
    return values


def _discriminator(block: BaseModel) -> dict[str, Any]:
    return {name: getattr(block, name) for name in _discriminator_of(type(block))}


def _scalar(
    cls: type[BaseModel],
    name: str,
    value: Any,
    path: str,
    group: str,
    label: str,
    toggles: tuple[str, ...],
) -> FieldKnob:
    info = cls.model_fields[name]
    found, inner = _flatten(info.annotation)
    metadata = [*info.metadata, *inner]
    unit = next(
        (
            UNIT_KINDS[m.func]
            for m in metadata
            if isinstance(m, BeforeValidator) and m.func in UNIT_KINDS
        ),
        None,
    )
    options: tuple[Any, ...] = ()
    kind: Kind
    if unit is not None:
        kind = unit
    elif found == [bool]:
        kind = "bool"
    elif found and typing.get_origin(found[0]) is Literal:
        kind, options = "choice", typing.get_args(found[0])
    elif found == [int]:
        kind = "int"
    else:
        kind = "float"
    low, high = _bounds(metadata)
    scale = SCALES[kind][0] if kind in SCALES else 1.0
    shown = f"{label} ({SCALES[kind][1]})" if kind in SCALES else label
    knob = FieldKnob(
        path=path,
        group=group,
        label=shown,
        kind=kind,
        value=value,
        optional=_is_optional(info.annotation),
        minimum=None if low is None else low / scale,
        maximum=None if high is None else high / scale,
        options=options,
        toggles=toggles,
    )
    default = None if info.is_required() else info.default
    return dataclasses.replace(knob, help=_help(cls, name, knob, default))


# --------------------------------------------------------------------------- back to overrides


def overrides(knobs: Sequence[FieldKnob], values: Mapping[str, Any]) -> dict[str, Any]:
    """The dotted-path overrides of the knobs whose widget value differs from the scenario's.

    Args:
        knobs: the scenario's knobs (:func:`scenario_knobs`).
        values: ``{knob.path: widget value}``; knobs missing from it are unchanged.

    Returns:
        Overrides in knob order, so a block switched on comes before its fields. A field under
        a toggle that ends up off is left out; the fields of a block that is switched on are
        written when they differ from what the toggle's form showed.
    """
    on = {k.path: bool(values.get(k.path, k.value)) for k in knobs if k.kind == "toggle"}
    result: dict[str, Any] = {}
    for knob in knobs:
        if not all(on[t] for t in knob.toggles):
            continue
        value = values.get(knob.path, knob.initial)
        if knob.kind == "toggle":
            if bool(value) == knob.value:
                continue
            if not value:
                result[knob.path] = None
            elif knob.enable is None:
                result[f"{knob.path}.enabled"] = True
            else:
                result[knob.path] = dict(knob.enable)
            continue
        if _same(value, knob.initial):
            continue
        result[knob.path] = knob.to_model(value)
    return result


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isfinite(a) and math.isfinite(b):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


# --------------------------------------------------------------------------- sweep values

SWEEP_FACTORS = (0.5, 1.0, 1.5, 2.0)
"""A sweep's default values: these multiples of the knob's current value."""

YAML_UNITS: dict[Kind, str] = {"bytes": "Mi", "duration": "s", "rate": "/s", "fraction": "%"}
"""How a value in widget units is written in YAML (the scenario format's unit suffixes)."""


def sweepable(knobs: Sequence[FieldKnob]) -> list[FieldKnob]:
    """The knobs a sweep can vary: numbers, choices and switches of the blocks that are on."""
    on = {k.path for k in knobs if k.kind == "toggle" and k.value}
    return [k for k in knobs if k.kind != "toggle" and on.issuperset(k.toggles)]


def sweep_values(knob: FieldKnob) -> str:
    """Default sweep values of a knob, as YAML values separated by commas.

    A number: :data:`SWEEP_FACTORS` times its current value, with the unit written the way the
    scenario format reads it (``256Mi, 512Mi``; ``0.5s, 1s``); a choice: every option; a switch:
    both; an empty value: a single empty (``null``).
    """
    if knob.kind == "choice":
        return ", ".join(str(option) for option in knob.options)
    if knob.kind == "bool":
        return "false, true"
    if knob.initial is None:
        return "null"
    if knob.kind == "int":
        values = dict.fromkeys(max(1, round(knob.initial * f)) for f in SWEEP_FACTORS)
        return ", ".join(str(v) for v in values)
    unit = YAML_UNITS.get(knob.kind, "")
    return ", ".join(f"{_tidy(knob.initial * f):g}{unit}" for f in SWEEP_FACTORS)
