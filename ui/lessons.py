"""Training lessons derived from catalogue scenarios: narrative, predictions, reveal, discussion.

A scenario carries no quiz; its lesson is derived from what it already has:

- the **goals** are its own ``goals`` (what the trainee should be able to do afterwards);
- the **narrative** is its description, split at its bold section markers: what comes before
  ``**Predict:**`` sets the scene, the ``Predict`` section is the author's question, and the
  rest (``Look at``, ``What happens``, ``Variants``...) is kept for after the reveal, since it
  gives the answers away;
- the **questions** are multiple choice about the headline figures of :mod:`sim.analysis`, asked
  of every scenario with a fault (does the entry's SLO break and come back, how far does it
  spread, does the kernel kill), plus, when the scenario has variants, which design serves the
  users best;
- the **answers** are read from one replication of every variant on common seeds (the ``runs``
  table of :func:`sim.experiment.compare`), so they hold for the seed the lesson ran;
- the **discussion prompts** quote each variant's overlay next to what it changed;
- a scenario whose designs show the four mechanisms (:func:`sim.mechanisms.mechanism_variants`)
  also gets the **side-by-side table** of :func:`sim.mechanisms.mechanism_table`, after the
  reveal.

No Streamlit here: ``ui/views/training.py`` draws the lesson.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim import Scenario
from sim.analysis import fault_targets
from sim.experiment import BASELINE
from sim.mechanisms import Mechanism, MechanismError, mechanism_table, mechanism_variants
from sim.stats import number_or_none
from ui import kpis

RECOVERY = (
    "It never breaks its SLO",
    "It breaks, then recovers soon after the fault ends",
    "It stays broken long after the fault ends (metastable), then recovers",
    "It is still broken when the run ends",
)
"""The recovery question's options, from the best outcome to the worst."""

YES_NO = ("Yes", "No")


@dataclass(frozen=True)
class Question:
    """One multiple-choice prediction.

    Attributes:
        key: identifies the question in the session and in answers.
        text: the question.
        options: the choices, in display order.
    """

    key: str
    text: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Reveal:
    """The answer to a question, from the lesson's runs.

    Attributes:
        correct: the options that are right (several when variants tie).
        explanation: why, with the numbers.
    """

    correct: tuple[str, ...]
    explanation: str


@dataclass(frozen=True)
class Lesson:
    """A training lesson built from a scenario.

    Attributes:
        scenario: the scenario.
        goals: the scenario's learning goals (one sentence each; may be empty).
        context: the narrative up to the predict step (Markdown).
        prompt: the author's own predict section (Markdown; empty when there is none).
        debrief: the rest of the narrative, shown after the reveal (Markdown).
        questions: the multiple-choice predictions.
    """

    scenario: Scenario
    goals: tuple[str, ...]
    context: str
    prompt: str
    debrief: str
    questions: tuple[Question, ...]


_SECTION = re.compile(r"^\*\*([^*\n]+?)[:.]\*\*", re.MULTILINE)


def split_narrative(description: str) -> tuple[str, str, str]:
    """A description as (context, predict section, debrief), split at bold section markers.

    ``**Predict:**`` starts the predict section, and the next marker at the start of a line
    (``**Look at:**``, ``**What happens (baseline).**``...) ends it. Without a predict marker
    the whole description is context.
    """
    markers = list(_SECTION.finditer(description))
    predict = next((m for m in markers if m.group(1).strip().lower() == "predict"), None)
    if predict is None:
        return description.strip(), "", ""
    later = [m for m in markers if m.start() > predict.start()]
    end = later[0].start() if later else len(description)
    return (
        description[: predict.start()].strip(),
        description[predict.end() : end].strip(),
        description[end:].strip(),
    )


def lesson(scenario: Scenario, variants: list[str]) -> Lesson:
    """The lesson of a scenario, whose designs are ``variants`` (the scenario as written first)."""
    context, prompt, debrief = split_narrative(scenario.description)
    questions = []
    if scenario.faults:
        targets, hosts = fault_targets(scenario)
        aimed = ", ".join([*targets, *hosts])
        entry = scenario.workload.entry
        questions.append(
            Question(
                "recovery",
                f"As written, what happens to the service users call (`{entry}`) and the "
                "services behind it once the fault hits?",
                RECOVERY,
            )
        )
        others = len(scenario.services) - len(targets)
        questions.append(
            Question(
                "blast",
                f"How many services beyond the fault's targets ({aimed}) break their SLO "
                "(the blast radius)?",
                tuple(str(n) for n in range(others + 1)),
            )
        )
    questions.append(
        Question("oom", "As written, does the kernel's OOM killer kill a process?", YES_NO)
    )
    if len(variants) > 1:
        questions.append(
            Question(
                "best",
                "Which design gives the users the highest availability?",
                tuple(variants),
            )
        )
    return Lesson(scenario, tuple(scenario.goals), context, prompt, debrief, tuple(questions))


def _baseline(runs: pd.DataFrame) -> Mapping[str, Any]:
    rows = runs[runs["variant"] == BASELINE]
    return {str(k): v for k, v in rows.iloc[0].to_dict().items()} if len(rows) else {}


def _seconds(value: Any) -> str:
    return kpis.format_seconds(value)


def answers(lesson: Lesson, runs: pd.DataFrame) -> dict[str, Reveal]:
    """The answer to each of a lesson's questions, from one run of every design.

    Args:
        lesson: the lesson.
        runs: the ``runs`` table of :func:`sim.experiment.compare` (one replication per
            variant, the scenario as written under :data:`sim.experiment.BASELINE`).
    """
    base = _baseline(runs)
    result: dict[str, Reveal] = {}
    for question in lesson.questions:
        if question.key == "recovery":
            result["recovery"] = _recovery(base)
        elif question.key == "blast":
            impacted = _names(base.get("impacted"))
            targets = _names(base.get("targets"))
            beyond = [s for s in impacted if s not in targets]
            result["blast"] = Reveal(
                (str(int(base.get("blast_radius") or 0)),),
                f"Out of SLO during the incident: {', '.join(impacted) or 'none'}; beyond the "
                f"targets: {', '.join(beyond) or 'none'}. Containment "
                f"{kpis.format_share(base.get('containment'))} of the services the fault could "
                "reach.",
            )
        elif question.key == "oom":
            kills = int(base.get("oom_kills") or 0)
            result["oom"] = Reveal(
                (YES_NO[0] if kills else YES_NO[1],),
                f"The kernel's OOM killer killed {kills} process{'es' if kills != 1 else ''}; "
                f"{int(base.get('evictions') or 0)} pods were evicted and containers restarted "
                f"{int(base.get('restarts') or 0)} times.",
            )
        elif question.key == "best":
            result["best"] = _best(runs, question.options)
    return result


def _recovery(base: Mapping[str, Any]) -> Reveal:
    impacted = int(base.get("impacted_count") or 0)
    recovered = bool(base.get("recovered"))
    metastable = base.get("metastable")
    if not recovered:
        correct = RECOVERY[3]
    elif impacted == 0:
        correct = RECOVERY[0]
    elif _verdict(metastable):
        correct = RECOVERY[2]
    else:
        correct = RECOVERY[1]
    trigger = base.get("trigger_end")
    never = number_or_none(trigger) is None
    told = ["The fault never ends." if never else f"The fault ended at {_seconds(trigger)}."]
    if impacted == 0:
        told.append("No SLO broke during the incident.")
    else:
        told.append(f"Out of SLO during the incident: {', '.join(_names(base.get('impacted')))}.")
    if recovered and impacted:
        ttr = base.get("time_to_recover")
        after = "" if number_or_none(ttr) is None else f", {_seconds(ttr)} after the fault ended"
        told.append(f"Every SLO held again from {_seconds(base.get('recovered_at'))}{after}.")
    elif not recovered:
        told.append("An SLO was still failing when the run ended.")
    told.append(
        f"Metastability verdict: {kpis.VERDICTS.get(_verdict(metastable), kpis.MISSING)} "
        f"(hold {_seconds(base.get('hold'))})."
    )
    return Reveal((correct,), " ".join(told))


def _verdict(value: Any) -> bool | None:
    number = number_or_none(value)
    return None if number is None else bool(number)


def _names(value: Any) -> list[str]:
    """The services of a run-table cell such as ``impacted`` (comma-separated; may be empty)."""
    return [name for name in str(value or "").split(",") if name]


def _best(runs: pd.DataFrame, variants: tuple[str, ...]) -> Reveal:
    availability = {
        str(row["variant"]): float(row["availability"])
        for row in runs.to_dict("records")
        if row["variant"] in variants and row.get("availability") is not None
    }
    best = max(availability.values(), default=math.nan)
    # Differences below the display's precision are ties.
    correct = tuple(v for v, a in availability.items() if round(a, 5) == round(best, 5))
    listing = "; ".join(f"{v} {kpis.format_percent(a)}" for v, a in availability.items())
    return Reveal(correct, f"Users' availability per design: {listing}.")


def discussion(lesson: Lesson, runs: pd.DataFrame) -> list[str]:
    """Prompts for the debrief: each variant's overlay against what it changed, and the incident.

    Args:
        lesson: the lesson.
        runs: as for :func:`answers`.
    """
    scenario = lesson.scenario
    base = _baseline(runs)
    by_variant = {str(row["variant"]): row for row in runs.to_dict("records")}
    prompts = []
    for variant, overlay in scenario.variants.items():
        row = by_variant.get(variant)
        if variant == BASELINE or row is None or not overlay:
            continue
        changes = ", ".join(f"`{path}: {json.dumps(value)}`" for path, value in overlay.items())
        prompts.append(
            f"**{variant}** sets {changes}: availability "
            f"{kpis.format_percent(base.get('availability'))} → "
            f"{kpis.format_percent(row.get('availability'))}, blast radius "
            f"{base.get('blast_radius')} → {row.get('blast_radius')}, OOM kills "
            f"{base.get('oom_kills')} → {row.get('oom_kills')}. Which mechanism in the system "
            "makes that difference, and what does it cost in normal operation?"
        )
    if _verdict(base.get("metastable")):
        prompts.append(
            "The trigger ended, but the system stayed out of its SLO: what kept the load above "
            "the capacity once the fault was gone, and which design breaks that loop?"
        )
    if int(base.get("oom_kills") or 0):
        prompts.append(
            "The kernel killed processes: whose memory limit (a container's `memory.max`, the "
            "node's RAM) was hit, and would a larger limit fix the problem or move it?"
        )
    if int(base.get("blast_radius") or 0):
        prompts.append(
            f"The incident spread beyond its targets to {base.get('blast_radius')} service(s): "
            "which pattern would have contained it where it started?"
        )
    prompts.append(
        "If this happened in production, which line of the incident timeline would have paged "
        "you first, and how long after the cause?"
    )
    return prompts


@dataclass(frozen=True)
class MechanismTable:
    """The four mechanisms side by side, for a lesson whose designs show them.

    Attributes:
        designs: mechanism -> the design (variant) that shows it.
        table: one column per mechanism, one row per question (:data:`sim.mechanisms.ROWS`).
    """

    designs: dict[Mechanism, str]
    table: pd.DataFrame

    @property
    def caption(self) -> str:
        """Which design filled which column."""
        return "Columns from the runs of: " + ", ".join(
            f"{m.value} = `{v}`" for m, v in self.designs.items()
        )


def mechanisms(
    lesson: Lesson, runs: pd.DataFrame, events: pd.DataFrame, edits: Mapping[str, Any]
) -> MechanismTable | None:
    """The side-by-side table of a lesson's run (``None``: its designs lack a mechanism).

    Args:
        lesson: the lesson.
        runs: as for :func:`answers`.
        events: the event logs of the same runs (the ``events`` table of the comparison).
        edits: the lesson's changes to the scenario (seed, duration), applied before reading.

    Raises:
        MechanismError: a design's runs are missing or failed (its column cannot be filled).
    """
    scenario = lesson.scenario
    ran = scenario.with_overrides(dict(edits)) if edits else scenario
    try:
        designs = mechanism_variants(ran)
    except MechanismError:
        return None
    return MechanismTable(designs, mechanism_table(ran, runs, events, designs))
