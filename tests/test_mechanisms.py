"""The four-mechanisms lesson: which design is which, the table's cells, and the narrative.

``four-mechanisms`` runs one memory-exhaustion incident (a slow query whose backlog fills
``search``'s 512 MiB) under the OOM killer alone, a circuit breaker, a bulkhead and an OTP
supervisor; :mod:`sim.mechanisms` fills the side-by-side table from one run of each design.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from sim import experiment, load_scenario
from sim.cli import app
from sim.experiment import Comparison
from sim.mechanisms import (
    ROWS,
    Mechanism,
    MechanismError,
    mechanism_table,
    mechanism_variants,
    patterns_in,
)
from ui import lessons

LESSON = "four-mechanisms"
DESIGNS = {
    Mechanism.OOM_KILLER: "baseline",
    Mechanism.CIRCUIT_BREAKER: "circuit-breaker",
    Mechanism.BULKHEAD: "bulkhead",
    Mechanism.SUPERVISOR: "supervisor",
}
APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
PREFIX = f"training.{LESSON}"

EXPECTED = {
    "OOM killer": {
        "trigger": "search-0 reaches its memory.max (512Mi) at 35.9 s: memcg OOM",
        "action taken": (
            "SIGKILL of search-0 (pid 1006, oom_score_adj 969, anon-rss 512Mi); 6 OOM kills in all"
        ),
        "scope of impact": (
            "a whole container and every request in it, per kill (search-0, search-1); "
            "blast radius 1, collateral kills 0"
        ),
        "goal": (
            "keep the node alive by freeing the memory of the cgroup over its limit: "
            "512Mi freed by the first kill"
        ),
        "proactive or reactive": (
            "reactive: kills 0.000 s after a charge fails at the limit, "
            "5.9 s after the fault started"
        ),
        "key metric": "oom_kill 6 (memory.events); users' availability 67.6%",
        "automation": (
            "fully automatic, in the kernel: 6 kills without an operator; "
            "the only setting is the limit (512Mi)"
        ),
        "recovery mechanism": (
            "the kubelet restarts the container: 6 restarts, CrashLoopBackOff up to 20s; "
            "every SLO met again at 106.0 s, 16.0 s after the fault ended"
        ),
    },
    "circuit breaker": {
        "trigger": (
            "slow call rate 50.0% >= 50% (calls slower than 250ms) over the last 20 calls, "
            "at 31.2 s (frontend-1)"
        ),
        "action taken": (
            "opened 17 times: every call to search fails fast (circuit_open) for 5s each time"
        ),
        "scope of impact": (
            "only the calls frontend -> search; search OOM kills 0; "
            "blast radius 1, collateral kills 0"
        ),
        "goal": (
            "fail fast instead of waiting on a sick dependency, and give it room to recover: "
            "search is OOM-killed 0 times"
        ),
        "proactive or reactive": (
            "reactive: first opened 1.2 s after the fault started, once 10 calls were recorded"
        ),
        "key metric": "time open 42.6 s per caller (mean of 2); users' availability 70.9%",
        "automation": (
            "automatic, one breaker per calling replica (2): 51 state changes, no operator"
        ),
        "recovery mechanism": (
            "half-open after 5s (a trial of 10 calls), closed 17 times; last closed at 90.7 s; "
            "every SLO met again at 101.0 s, 11.0 s after the fault ended"
        ),
    },
    "bulkhead": {
        "trigger": (
            "call 49 in flight from one frontend replica to search, first at 31.8 s (frontend-0)"
        ),
        "action taken": "rejected 2557 calls at once (bulkhead_full), without calling search",
        "scope of impact": (
            "only the calls over the limit; search OOM kills 0; blast radius 1, collateral kills 0"
        ),
        "goal": "cap what one dependency can hold: at most 2 x 48 = 96 calls in flight to search",
        "proactive or reactive": (
            "proactive: the limit of 48 is set before the incident; "
            "first rejection 1.8 s after the fault started"
        ),
        "key metric": (
            "2557 rejected calls (5.7% of the users' requests); users' availability 94.3%"
        ),
        "automation": (
            "automatic enforcement of a static limit (48 per frontend replica) that an operator "
            "chose; it never adapts"
        ),
        "recovery mechanism": (
            "nothing to restart: permits return as calls finish; last rejection at 90.0 s; "
            "every SLO met again at 100.0 s, 10.0 s after the fault ended"
        ),
    },
    "supervisor": {
        "trigger": (
            "search-0 exits ({'OOMKilled',137}) at 35.9 s: a child_terminated report to search_sup"
        ),
        "action taken": "restarts the child at once: 12 restarts",
        "scope of impact": (
            "one_for_one: only the child that died (search); OOM kills 12; "
            "blast radius 1, collateral kills 0"
        ),
        "goal": (
            "get back to a known good state fast by restarting from scratch, "
            "at most 20 restarts in 1m"
        ),
        "proactive or reactive": (
            "reactive: restarts 0.0-5.0 s after each exit (it starts children one at a time)"
        ),
        "key metric": (
            "restart intensity: up to 12 restarts within 1m (limit 20); users' availability 64.9%"
        ),
        "automation": (
            "automatic, 12 restarts; past its intensity it gives up and escalates to its "
            "parent: never reached here"
        ),
        "recovery mechanism": (
            "the restarted child serves after its start-up (5s); "
            "every SLO met again at 101.0 s, 11.0 s after the fault ended"
        ),
    },
}
"""The table of seed 1, cell by cell."""


@pytest.fixture(scope="module")
def designs() -> Comparison:
    """One run of each mechanism's design, and of the supervisor that gives up, on seed 1."""
    return experiment.compare(
        load_scenario(LESSON), [*DESIGNS.values(), "supervisor-intensity-10"], 1, executor="serial"
    )


def test_designs_are_read_from_each_variants_configuration() -> None:
    """No pattern: the OOM killer alone; exactly one added: that one; the first design wins."""
    scenario = load_scenario(LESSON)
    assert mechanism_variants(scenario) == DESIGNS
    assert patterns_in(scenario) == frozenset()
    assert patterns_in(scenario.with_variant("bulkhead")) == {Mechanism.BULKHEAD}
    assert patterns_in(scenario.with_variant("supervisor-intensity-10")) == {Mechanism.SUPERVISOR}
    # Renaming a variant does not change what it shows: the configuration decides.
    renamed = dict(scenario.variants)
    renamed["isolation"] = renamed.pop("bulkhead")
    moved = scenario.model_copy(update={"variants": renamed})
    assert mechanism_variants(moved)[Mechanism.BULKHEAD] == "isolation"
    # The flagship has breakers and bulkheads, but no supervisor: no table.
    flagship = load_scenario("checkout-noisy-neighbor")
    with pytest.raises(MechanismError, match="no design shows the supervisor"):
        mechanism_variants(flagship)


def test_table_cells_on_seed_1(designs: Comparison) -> None:
    """Every cell, with the figure or event of its design's run."""
    table = mechanism_table(load_scenario(LESSON), designs.runs, designs.events)
    assert list(table.columns) == [m.value for m in Mechanism]
    assert list(table.index) == list(ROWS)
    assert table.to_dict() == EXPECTED


def test_lesson_table_is_none_without_the_designs_and_an_error_when_a_design_failed(
    designs: Comparison,
) -> None:
    """The training page's table: the lesson's cells, or none, or a MechanismError.

    None for a lesson without the four designs; a design whose runs are missing (failed) is a
    MechanismError, which the page shows as a warning.
    """
    scenario = load_scenario(LESSON)
    lesson = lessons.lesson(scenario, experiment.designs(scenario))
    shown = lessons.mechanisms(lesson, designs.runs, designs.events, {})
    assert shown is not None
    assert shown.table.to_dict() == EXPECTED
    assert shown.caption.startswith("Columns from the runs of: OOM killer = `baseline`")
    flagship = load_scenario("checkout-noisy-neighbor")
    other = lessons.lesson(flagship, experiment.designs(flagship))
    assert lessons.mechanisms(other, designs.runs, designs.events, {}) is None
    failed = designs.runs[designs.runs["variant"] != "bulkhead"]
    with pytest.raises(MechanismError, match="bulkhead"):
        lessons.mechanisms(lesson, failed, designs.events, {})


def test_explicit_columns_show_the_supervisor_giving_up(designs: Comparison) -> None:
    """``columns`` picks the designs: the supervisor past its intensity stops the application."""
    columns = DESIGNS | {Mechanism.SUPERVISOR: "supervisor-intensity-10"}
    table = mechanism_table(load_scenario(LESSON), designs.runs, designs.events, columns)
    supervisor = table["supervisor"]
    assert supervisor["action taken"] == (
        "restarts the child at once: 10 restarts; at 85.9 s it gives up "
        "(reached_max_restart_intensity) and stops its children"
    )
    assert supervisor["automation"] == (
        "automatic, 10 restarts; past its intensity it gives up and escalates to its parent: "
        "reached at 85.9 s"
    )
    assert supervisor["recovery mechanism"] == (
        "none after 85.9 s: the application stopped and search stay down; "
        "SLOs still broken when the run ends"
    )
    assert table["OOM killer"].to_dict() == EXPECTED["OOM killer"]
    with pytest.raises(MechanismError, match="no design given for the bulkhead"):
        mechanism_table(
            load_scenario(LESSON),
            designs.runs,
            designs.events,
            {m: v for m, v in DESIGNS.items() if m != Mechanism.BULKHEAD},
        )
    with pytest.raises(MechanismError, match="no run of the design 'bulkhead'"):
        mechanism_table(
            load_scenario(LESSON),
            designs.runs[designs.runs["variant"] != "bulkhead"],
            designs.events,
        )


def test_a_changed_scenario_changes_the_cells() -> None:
    """A larger limit, a smaller bulkhead, a longer open state: the cells follow the runs."""
    written = load_scenario(LESSON)
    variants = dict(written.variants)
    variants["bulkhead"] = {"services.frontend.calls.search.bulkhead": {"max_concurrent_calls": 32}}
    scenario = written.model_copy(update={"variants": variants}).with_overrides(
        {"duration": 110, "services.search.resources.limits.memory": "576Mi"}
    )
    changed = experiment.compare(scenario, list(DESIGNS.values()), 1, executor="serial")
    table = mechanism_table(scenario, changed.runs, changed.events)
    oom = table["OOM killer"]
    assert re.fullmatch(
        r"search-\d reaches its memory\.max \(576Mi\) at \d+\.\d s: memcg OOM", oom["trigger"]
    )
    assert oom["trigger"] != EXPECTED["OOM killer"]["trigger"]
    assert oom["automation"].endswith("the only setting is the limit (576Mi)")
    bulkhead = table["bulkhead"]
    assert bulkhead["goal"] == (
        "cap what one dependency can hold: at most 2 x 32 = 64 calls in flight to search"
    )
    assert bulkhead["trigger"].startswith("call 33 in flight from one frontend replica")
    found = re.search(r"rejected (\d+) calls", bulkhead["action taken"])
    assert found is not None
    rejected = int(found.group(1))
    outcome = changed.runs.set_index("variant").loc["bulkhead", "outcome_dependency"]
    assert rejected == outcome  # every failed user request was a rejected call
    assert rejected > 2557


def test_the_narrative_quotes_the_runs(designs: Comparison) -> None:
    """Each figure of the narrative's "What happens" is a figure of its run (seed 1)."""
    scenario = load_scenario(LESSON)
    text = " ".join(scenario.description.split())
    by = designs.runs.set_index("variant")
    events = designs.events

    def of(variant: str, kind: str) -> pd.DataFrame:
        return events[(events["variant"] == variant) & (events["kind"] == kind)]

    for variant, phrase in [
        ("baseline", "{} availability over the run"),
        ("circuit-breaker", "{} availability, recovered at 101 s"),
        ("bulkhead", "**{}** availability"),
        ("supervisor", "{} availability, below the baseline"),
        ("supervisor-intensity-10", "{} availability, never recovered"),
    ]:
        assert phrase.format(f"{by.loc[variant, 'availability']:.1%}") in text, variant
    assert by.loc["baseline", "oom_kills"] == by.loc["baseline", "restarts"] == 6
    assert "**6 OOM kills, 6 restarts**" in text
    assert by.loc["supervisor", "oom_kills"] == by.loc["supervisor", "restarts"] == 12
    assert "**12 OOM kills, 12 restarts**" in text
    assert by.loc["circuit-breaker", "oom_kills"] == by.loc["bulkhead", "oom_kills"] == 0
    kills = of("baseline", "oom_kill")["t"].round(1).tolist()
    assert kills == [35.9, 36.0, 47.4, 47.4, 70.1, 70.2]
    assert "`memory.max` (512 MiB) at 35.9 s, 5.9 s into the fault" in text
    assert "killed again at 47.4 s" in text
    assert "the kills at 70.1 s" in text
    assert by.loc["baseline", "recovered_at"] == 106.0
    assert by.loc["baseline", "time_to_recover"] == 16.0
    assert "Every SLO is met again at 106 s, 16 s after the fault ended" in text
    opened = of("circuit-breaker", "circuit_breaker")
    opened = opened[opened["detail"].str.endswith("to OPEN")]
    assert round(float(opened["t"].iloc[0]), 1) == 31.2
    assert len(opened) == 17
    assert "opens at 31.2 s, 1.2 s into the fault" in text
    assert "(17 openings, open 42.6 s per caller" in text
    rejected = of("bulkhead", "bulkhead")
    assert len(rejected) == 2557
    assert round(float(rejected["t"].iloc[0]), 1) == 31.8
    assert f"(2557, {2557 / by.loc['bulkhead', 'arrivals']:.1%} of the requests" in text
    assert by.loc["bulkhead", "recovered_at"] == 100.0
    assert by.loc["supervisor", "recovered_at"] == 101.0
    shutdown = of("supervisor-intensity-10", "supervisor_shutdown")
    assert round(float(shutdown["t"].iloc[0]), 1) == 85.9
    assert "eleventh exit, at 85.9 s" in text
    assert len(of("supervisor-intensity-10", "supervisor_child_terminated")) == 11
    assert by.loc["supervisor-intensity-10", "metastable"]
    assert len(scenario.goals) == 4
    assert any("eight questions" in goal for goal in scenario.goals)


def test_explain_mechanisms_prints_the_table() -> None:
    """``explain --mechanisms``: the four designs on one seed, a column each."""
    root = Path(__file__).resolve().parents[1]
    completed = subprocess.run(
        [sys.executable, "-m", "sim.cli", "explain", LESSON, "--mechanisms", "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={"COLUMNS": "250", "PATH": "", "PYTHONPATH": str(root)},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.startswith("four-mechanisms: four mechanisms side by side, seed 1\n")
    flat = " ".join(re.sub(r"[│┃]", " ", out).split())
    for header in ("OOM killer", "(baseline)", "(circuit-breaker)", "(supervisor)"):
        assert header in flat
    for row in ROWS:
        assert row.split()[0] in flat
    assert "rejected 2557 calls" in flat
    assert "oom_kill 6 (memory.events)" in flat


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["explain", "checkout-noisy-neighbor", "--mechanisms"],
            "error: checkout-noisy-neighbor: no design shows the supervisor",
        ),
        (
            ["explain", LESSON, "--mechanisms", "--variant", "bulkhead"],
            "error: --mechanisms runs every mechanism's design: give no --variant",
        ),
    ],
)
def test_explain_mechanisms_bad_input(args: list[str], message: str) -> None:
    """A scenario without the four designs, or a variant with the table: one line, exit 2."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]


def test_training_page_shows_the_table_after_the_reveal() -> None:
    """The lesson's run fills the side-by-side table, under the reveal, before the debrief."""
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("views/training.py").run()
    at.selectbox(key="training.lesson").set_value(LESSON).run()
    assert not at.exception
    assert not at.table, "no table before the run"
    scenario = load_scenario(LESSON)
    lesson = lessons.lesson(scenario, experiment.designs(scenario))
    for question in lesson.questions:
        at.radio(key=f"{PREFIX}.q.{question.key}").set_value(question.options[0])
    at.button(key=f"FormSubmitter:{PREFIX}.predict-Lock in my predictions").click().run()
    assert not at.table, "no table before the run"
    at.number_input(key="training.jobs").set_value(2)
    at.button(key=f"FormSubmitter:{PREFIX}.run-Run the lesson").click().run()
    assert not at.exception
    subheaders = [s.value for s in at.subheader]
    assert subheaders[1] == "Four mechanisms side by side"
    assert subheaders[0].endswith("predictions right")
    assert any(
        c.value == "Columns from the runs of: OOM killer = `baseline`, circuit breaker = "
        "`circuit-breaker`, bulkhead = `bulkhead`, supervisor = `supervisor`"
        for c in at.caption
    )
    shown = at.table[0].value
    assert list(shown.columns) == [m.value for m in Mechanism]
    assert list(shown.index) == list(ROWS)
    assert shown.to_dict() == EXPECTED
