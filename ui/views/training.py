"""Training: a lesson per catalogue scenario: narrative, predict, run, reveal, discuss.

The steps (:mod:`ui.lessons` derives the questions and answers from the scenario and its
variants):

0. **Goals**: the scenario's learning goals, at the top of the page.
1. **Narrative**: the scenario's description up to its predict section.
2. **Predict**: the trainee answers multiple-choice questions and locks them in.
3. **Run**: one replication of every design (the scenario as written and each variant) on
   common seeds, on the local process pool (:func:`sim.experiment.compare`), plus the full run
   of the scenario as written for the trainer.
4. **Reveal**: each prediction against the result, with the numbers behind it (and, for a
   lesson whose designs show the four mechanisms, their side-by-side table), then the rest of
   the narrative.
5. **Discuss**: prompts quoting what each variant changed and what that did.

**Trainer mode** steps through the incident timeline of the scenario as written, entry by
entry: the entry and its chain of likely causes, the raw lines the kernel, the kubelet and the
patterns printed at that moment, and the topology at that time. **Export** gives the lesson's
tables (Parquet/CSV), the scenario YAML with the lesson's seed and duration, and the HTML report
(the comparison of the designs and the scenario as written in full).

Session state, per lesson (``training.<scenario>.``): ``predictions`` (question key ->
option), ``result`` (:class:`Ran`), ``step`` (the trainer's timeline entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from sim import Scenario
from sim.experiment import BASELINE, Comparison, Run, compare, designs, open_executor, run
from sim.mechanisms import MechanismError
from ui import figures, lessons, report, runs
from ui.views import shared

NEAR = 1.0
# Seconds around a timeline entry whose raw log lines the trainer shows with it.


@dataclass(frozen=True)
class Ran:
    """A lesson's runs: every design once, and the scenario as written in full.

    Attributes:
        seed: the seed every design ran with.
        edits: the lesson's changes to the scenario (seed, duration).
        comparison: one replication per design (:func:`sim.experiment.compare`).
        baseline: the full run of the scenario as written (for the trainer).
    """

    seed: int
    edits: dict[str, Any]
    comparison: Comparison
    baseline: Run


def page() -> None:
    """Draw the Training page."""
    names = runs.catalogue()
    with st.sidebar:
        st.header("Lesson")
        name = st.selectbox(
            "Catalogue scenario",
            names,
            index=names.index(shared.FEATURED) if shared.FEATURED in names else 0,
            key="training.lesson",
        )
        trainer = st.toggle(
            "Trainer mode",
            key="training.trainer",
            help="Step through the incident timeline of the run, entry by entry.",
        )
    picked = shared.load(lambda: runs.catalogue_scenario(name))
    if not isinstance(picked, Scenario):
        shared.no_scenario(picked, "Training")
        return
    scenario = picked
    lesson = lessons.lesson(scenario, designs(scenario))
    prefix = f"training.{scenario.name}"
    st.sidebar.button(
        "Start this lesson over",
        key="training.restart",
        on_click=_restart,
        args=(prefix,),
        icon=":material/restart_alt:",
    )
    st.title(f"Lesson: {scenario.title or scenario.name}")
    st.caption(shared.scenario_caption(scenario))
    if lesson.goals:
        st.markdown(
            "**After this lesson you can:**\n" + "\n".join(f"- {goal}" for goal in lesson.goals)
        )

    st.header("1. The situation")
    st.markdown(lesson.context or "_This scenario has no narrative._")

    st.header("2. Predict")
    if lesson.prompt:
        st.markdown(f"**Predict:** {lesson.prompt}")
    predictions = _predict(lesson, prefix)

    st.header("3. Run")
    _run_step(scenario, prefix, locked=predictions is not None)
    ran: Ran | None = st.session_state.get(f"{prefix}.result")
    if ran is None or predictions is None:
        return

    st.header("4. Reveal")
    _reveal(lesson, predictions, ran)
    st.header("5. Discuss")
    for prompt in lessons.discussion(lesson, ran.comparison.runs):
        st.markdown(f"- {prompt}")
    if trainer:
        st.header("Trainer: the incident, step by step")
        _trainer(ran.baseline, prefix)
    st.header("Export")
    shared.table_downloads(
        f"{scenario.name}-lesson",
        {
            "Runs": ran.comparison.runs,
            "Events": ran.comparison.events,
            "Timeline": ran.baseline.analysis.timeline,
        },
        key=f"{prefix}.download",
    )
    shared.yaml_download(scenario, BASELINE, ran.edits, f"{prefix}.yaml")
    shared.report_download(
        lambda: report.comparison_report(ran.comparison, ran.baseline),
        f"{scenario.name}-lesson-report.html",
        f"{prefix}.report",
    )


def _predict(lesson: lessons.Lesson, prefix: str) -> dict[str, str] | None:
    """The questions in a form; the locked-in predictions, or ``None`` before they are.

    Once locked in, the form gives way to the predictions as text: they cannot change.
    """
    locked: dict[str, str] | None = st.session_state.get(f"{prefix}.predictions")
    if locked is not None:
        st.markdown("\n".join(f"- {q.text} **{locked[q.key]}**" for q in lesson.questions))
        st.success("Predictions locked in. Now run the scenario.", icon=":material/lock:")
        return locked
    with st.form(f"{prefix}.predict"):
        for q in lesson.questions:
            st.radio(q.text, q.options, index=None, key=f"{prefix}.q.{q.key}")
        st.form_submit_button(
            "Lock in my predictions", type="primary", on_click=_lock, args=(lesson, prefix)
        )
    missing = st.session_state.pop(f"{prefix}.missing", 0)
    if missing:
        st.warning(f"Answer every question first ({missing} left).")
    return None


def _lock(lesson: lessons.Lesson, prefix: str) -> None:
    """Record the predictions when every question has an answer (before the page is drawn)."""
    choices = {q.key: st.session_state.get(f"{prefix}.q.{q.key}") for q in lesson.questions}
    missing = sum(choice is None for choice in choices.values())
    if missing:
        st.session_state[f"{prefix}.missing"] = missing
    else:
        st.session_state[f"{prefix}.predictions"] = {k: str(v) for k, v in choices.items()}


def _run_step(scenario: Scenario, prefix: str, locked: bool) -> None:
    names = designs(scenario)
    st.markdown(f"Runs every design once on the same seed: {', '.join(f'`{d}`' for d in names)}.")
    with st.form(f"{prefix}.run"):
        seed, duration, jobs = shared.seed_duration_jobs(
            scenario, prefix, "training.jobs", "Seed", st.columns(3)
        )
        pressed = st.form_submit_button(
            "Run the lesson",
            type="primary",
            disabled=not locked,
            help=None if locked else "Lock in your predictions first.",
        )
    if not pressed:
        return
    edits: dict[str, Any] = {}
    if int(seed) != scenario.seed:
        edits["seed"] = int(seed)
    if float(duration) != float(scenario.duration):
        edits["duration"] = float(duration)
    bar = st.progress(0.0, text="Starting the workers…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"{done} of {total} designs run")

    try:
        with open_executor("process", int(jobs)) as (pool, _):
            full = pool.submit(run, scenario, BASELINE, int(seed), duration=float(duration))
            comparison = compare(
                scenario,
                names,
                1,
                seed=int(seed),
                duration=float(duration),
                executor=pool,
                jobs=int(jobs),
                progress=progress,
            )
            baseline = full.result()
    except Exception as exc:  # the UI's boundary: bad input is a message, never a traceback
        bar.empty()
        shared.show_failure("The lesson's run", exc)
        return
    bar.empty()
    st.session_state[f"{prefix}.result"] = Ran(int(seed), edits, comparison, baseline)
    st.session_state[f"{prefix}.step"] = 0


def _reveal(lesson: lessons.Lesson, predictions: dict[str, str], ran: Ran) -> None:
    reveals = lessons.answers(lesson, ran.comparison.runs)
    right = sum(predictions[k] in r.correct for k, r in reveals.items())
    st.subheader(f"{right} of {len(reveals)} predictions right")
    for question in lesson.questions:
        reveal = reveals[question.key]
        guess = predictions[question.key]
        body = (
            f"**{question.text}**  \nYou predicted: _{guess}_. "
            f"Result: _{' or '.join(reveal.correct)}_.  \n{reveal.explanation}"
        )
        if guess in reveal.correct:
            st.success(body, icon=":material/check_circle:")
        else:
            st.error(body, icon=":material/cancel:")
    table = ran.comparison.runs.set_index("variant")[
        [
            "availability",
            "blast_radius",
            "containment",
            "time_to_recover",
            "metastable",
            "oom_kills",
            "restarts",
        ]
    ]
    st.dataframe(table, width="stretch")
    try:
        side_by_side = lessons.mechanisms(
            lesson, ran.comparison.runs, ran.comparison.events, ran.edits
        )
    except MechanismError as exc:
        st.warning(f"No side-by-side table of the four mechanisms: {exc}")
        side_by_side = None
    if side_by_side is not None:
        st.subheader("Four mechanisms side by side")
        st.caption(side_by_side.caption)
        st.table(side_by_side.table)
    if lesson.debrief:
        with st.expander("The scenario's own explanation", expanded=True):
            st.markdown(lesson.debrief)


def _trainer(baseline: Run, prefix: str) -> None:
    timeline = baseline.analysis.timeline
    if timeline.empty:
        st.caption("Nothing happened in this run.")
        return
    key = f"{prefix}.step"
    last = len(timeline) - 1
    step = min(int(st.session_state.get(key, 0)), last)
    row = st.container(horizontal=True)
    row.button(
        "Previous",
        key=f"{prefix}.previous",
        disabled=step == 0,
        on_click=_move,
        args=(key, step - 1),
        icon=":material/arrow_back:",
    )
    row.button(
        "Next",
        key=f"{prefix}.next",
        disabled=step == last,
        on_click=_move,
        args=(key, step + 1),
        icon=":material/arrow_forward:",
    )
    row.markdown(f"Entry **{step + 1}** of {last + 1}")
    entry = timeline.iloc[step]
    st.markdown(f"### t = {entry['t']:.3f} s: {entry['text']}")
    chain = _causes(timeline, step)
    if chain:
        st.markdown(
            "Likely cause: " + " ← ".join(f"#{i} {timeline['text'].iloc[i]}" for i in chain)
        )
    events = baseline.result.events
    near = (events["t"] >= entry["t"] - NEAR) & (events["t"] <= entry["t_last"] + NEAR)
    lines = events[near]
    st.caption(f"What the system printed within {NEAR:g} s of it ({len(lines)} lines):")
    st.code(
        "\n".join(
            f"[{t:10.3f}] {host} {detail}"
            for t, host, detail in zip(lines["t"], lines["host"], lines["detail"], strict=True)
        )
        or "(nothing)",
        language=None,
    )
    as_run = baseline.scenario
    left, right = st.columns(2)
    left.plotly_chart(
        figures.incident_timeline(timeline, at=float(entry["t"])), theme=None, width="stretch"
    )
    right.plotly_chart(
        figures.scenario_topology(
            as_run, baseline.analysis.slo, baseline.result.timeseries, at=float(entry["t"])
        ),
        theme=None,
        width="stretch",
    )


def _restart(prefix: str) -> None:
    for key in [k for k in st.session_state if str(k).startswith(f"{prefix}.")]:
        del st.session_state[key]


def _move(key: str, step: int) -> None:
    st.session_state[key] = step


def _causes(timeline: pd.DataFrame, index: int) -> list[int]:
    """The chain of likely causes of an entry, nearest first."""
    chain: list[int] = []
    cause = timeline["cause"].iloc[index]
    while not pd.isna(cause) and int(cause) not in chain:
        chain.append(int(cause))
        cause = timeline["cause"].iloc[int(cause)]
    return chain


if __name__ == "__main__":
    page()
