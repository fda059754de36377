"""Training lessons: the pure lesson logic (``ui/lessons.py``) and the page under AppTest.

``panic-on-oom`` is the lesson under test: cheap to run (one request stream at 50/s) and full of
traps (a global OOM that panics instead of killing: no OOM kill is counted as written).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from sim import experiment, load_scenario
from ui import lessons

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
LESSON = "panic-on-oom"
PREFIX = f"training.{LESSON}"


@pytest.fixture(scope="module")
def lesson_runs() -> pd.DataFrame:
    """One replication of every design of the lesson, as the page runs them."""
    scenario = load_scenario(LESSON)
    return experiment.compare(scenario, experiment.designs(scenario), 1, executor="serial").runs


def test_narrative_is_split_at_the_predict_section() -> None:
    """Context before **Predict:**, the question itself, and the spoilers kept for later."""
    context, prompt, debrief = lessons.split_narrative(load_scenario("three-tier").description)
    assert context.startswith("A classic web stack")
    assert context.endswith("half the workers that the load needs.")
    assert prompt == (
        "do users see errors? Which tier's SLO breaks first, and does `cart` break too?"
    )
    assert debrief.startswith("**Look at:** the `reset` errors")
    assert lessons.split_narrative("No markers here.") == ("No markers here.", "", "")


def test_a_lesson_carries_the_scenario_goals() -> None:
    """The learning goals are the scenario's own, in order; a scenario without any has none."""
    scenario = load_scenario(LESSON)
    assert lessons.lesson(scenario, ["baseline"]).goals == tuple(scenario.goals)
    assert len(scenario.goals) == 2
    bare = scenario.model_copy(update={"goals": []})
    assert lessons.lesson(bare, ["baseline"]).goals == ()


def test_questions_come_from_faults_and_variants() -> None:
    """Faults give the recovery, blast radius and OOM questions; variants the best design."""
    scenario = load_scenario(LESSON)
    lesson = lessons.lesson(scenario, experiment.designs(scenario))
    assert [q.key for q in lesson.questions] == ["recovery", "blast", "oom", "best"]
    assert lesson.questions[1].options == ("0", "1")
    assert lesson.questions[3].options == ("baseline", "no-panic", "no-reboot")
    quiet = load_scenario("mmc-queue")
    assert [q.key for q in lessons.lesson(quiet, ["baseline"]).questions] == ["oom"]


def test_answers_are_read_from_the_runs(lesson_runs: pd.DataFrame) -> None:
    """As written the host panics (no OOM kill); without panic_on_oom users see no error."""
    scenario = load_scenario(LESSON)
    lesson = lessons.lesson(scenario, experiment.designs(scenario))
    answers = lessons.answers(lesson, lesson_runs)
    assert answers["oom"].correct == ("No",)
    assert answers["best"].correct == ("no-panic",)
    assert answers["blast"].correct == ("0",)
    assert answers["recovery"].correct == (lessons.RECOVERY[0],)
    assert "no-panic 100.000%" in answers["best"].explanation
    prompts = lessons.discussion(lesson, lesson_runs)
    assert prompts[0].startswith("**no-panic** sets `hosts.db-a.sysctls.panic_on_oom: 0`")


def test_recovery_answer_covers_every_outcome() -> None:
    """Never broken, recovered, metastable, still broken: one option each."""
    lesson = lessons.lesson(load_scenario("retry-storm"), ["baseline"])
    rows = [
        {"impacted_count": 0, "recovered": True, "metastable": False},
        {"impacted_count": 1, "recovered": True, "metastable": False},
        {"impacted_count": 1, "recovered": True, "metastable": True},
        {"impacted_count": 1, "recovered": False, "metastable": True},
    ]
    found = [
        lessons.answers(lesson, pd.DataFrame([{"variant": "baseline", **row}]))["recovery"].correct
        for row in rows
    ]
    assert found == [(option,) for option in lessons.RECOVERY]


def test_recovery_explanation_lists_the_impacted_services() -> None:
    """The services out of SLO are written as a list, not the runs table's raw field."""
    lesson = lessons.lesson(load_scenario("retry-storm"), ["baseline"])
    row = {"impacted_count": 2, "impacted": "frontend,inventory", "recovered": False}
    runs = pd.DataFrame([{"variant": "baseline", "metastable": True, **row}])
    text = lessons.answers(lesson, runs)["recovery"].explanation
    assert "Out of SLO during the incident: frontend, inventory." in text


def test_training_flow_records_predictions_and_reveals(lesson_runs: pd.DataFrame) -> None:
    """Predict, lock in, run on the pool, reveal each prediction, then step the timeline."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/training.py").run()
    at.selectbox(key="training.lesson").set_value(LESSON).run()
    assert not at.exception
    assert [h.value for h in at.header][:3] == ["1. The situation", "2. Predict", "3. Run"]
    goals = load_scenario(LESSON).goals
    assert at.markdown[0].value == "**After this lesson you can:**\n" + "\n".join(
        f"- {goal}" for goal in goals
    ), "the learning goals come first, before the situation and the predictions"
    run_button = at.button(key=f"FormSubmitter:{PREFIX}.run-Run the lesson")
    assert run_button.disabled, "no run before the predictions are locked in"

    predictions = {"recovery": lessons.RECOVERY[1], "blast": "0", "oom": "Yes", "best": "no-panic"}
    for key, value in predictions.items():
        at.radio(key=f"{PREFIX}.q.{key}").set_value(value)
    at.button(key=f"FormSubmitter:{PREFIX}.predict-Lock in my predictions").click().run()
    assert at.session_state[f"{PREFIX}.predictions"] == predictions
    assert not at.radio, "locked predictions are text, no longer choices"
    assert "kill a process? **Yes**" in at.markdown[3].value

    at.number_input(key="training.jobs").set_value(2)
    at.button(key=f"FormSubmitter:{PREFIX}.run-Run the lesson").click().run()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["2 of 4 predictions right"]
    right = [s.value for s in at.success if s.value.startswith("**")]
    wrong = [e.value for e in at.error]
    assert [v.split("**")[1] for v in right] == [
        "How many services beyond the fault's targets (db-a) break their SLO (the blast radius)?",
        "Which design gives the users the highest availability?",
    ]
    assert "You predicted: _Yes_. Result: _No_." in wrong[1]
    shown = at.dataframe[0].value
    assert list(shown.index) == ["baseline", "no-panic", "no-reboot"]
    assert list(shown["availability"]) == list(lesson_runs["availability"])
    assert any(m.value.startswith("- **no-panic** sets") for m in at.markdown)

    at.toggle(key="training.trainer").set_value(True).run()
    assert not at.exception
    assert "Entry **1** of" in " ".join(m.value for m in at.markdown)
    at.button(key=f"{PREFIX}.next").click().run()
    at.button(key=f"{PREFIX}.next").click().run()
    text = " ".join(m.value for m in at.markdown)
    assert "Entry **3** of 7" in text
    assert "Likely cause: #1 db-a memory at 91% of the host's RAM" in text
    assert "← #0 fault runaway-report (memory_hog) starts on db-a" in text
    printed = at.code[0].value
    assert "[    61.000] db-a Kernel panic - not syncing: Out of memory" in printed
    assert printed.endswith("db-a Rebooting in 30 seconds..")
    labels = [b.label for b in at.get("download_button")]
    assert labels[-2:] == ["Scenario YAML", "HTML report"]


def test_predictions_need_every_answer_and_a_lesson_can_start_over() -> None:
    """Locking in with a question unanswered warns and keeps the form; starting over clears."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/training.py").run()
    at.selectbox(key="training.lesson").set_value(LESSON).run()
    at.radio(key=f"{PREFIX}.q.oom").set_value("No")
    at.button(key=f"FormSubmitter:{PREFIX}.predict-Lock in my predictions").click().run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["Answer every question first (3 left)."]
    assert f"{PREFIX}.predictions" not in at.session_state
    for key, value in {"recovery": lessons.RECOVERY[0], "blast": "1", "best": "baseline"}.items():
        at.radio(key=f"{PREFIX}.q.{key}").set_value(value)
    at.button(key=f"FormSubmitter:{PREFIX}.predict-Lock in my predictions").click().run()
    assert at.session_state[f"{PREFIX}.predictions"]["oom"] == "No"
    at.button(key="training.restart").click().run()
    assert f"{PREFIX}.predictions" not in at.session_state
    assert [r.value for r in at.radio] == [None, None, None, None]
