"""The ``faultlab`` verbs with good and bad input: output, files, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim import load_scenario, run
from sim.cli import app

runner = CliRunner()


def test_list_shows_every_catalogue_scenario():
    """``list`` names each catalogue entry with its title."""
    result = runner.invoke(app, ["list"], terminal_width=200)
    assert result.exit_code == 0
    assert "three-tier" in result.stdout
    assert "Three tiers" in result.stdout
    assert "mmc-queue" in result.stdout


def test_show_prints_the_narrative_and_the_yaml():
    """``show`` prints the title, the narrative and the file itself."""
    result = runner.invoke(app, ["show", "three-tier"], terminal_width=200)
    assert result.exit_code == 0
    assert "three-tier — Three tiers and a crash" in result.stdout
    assert "kind: crash" in result.stdout


def test_show_lists_the_learning_goals_before_the_narrative():
    """``show`` prints each learning goal under its heading, ahead of the narrative."""
    result = runner.invoke(app, ["show", "node-drain"], terminal_width=400)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # rich wraps long lines
    goals = [f"• {goal}" for goal in load_scenario("node-drain").goals]
    assert text.index("Learning goals") < text.index(goals[0]) < text.index("Predict:")
    assert all(goal in text for goal in goals)


def test_run_json_is_the_run_summary():
    """``run --json`` prints the same summary the API returns, as JSON."""
    result = runner.invoke(app, ["run", "three-tier", "--duration", "61s", "--json", "--seed", "4"])
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    expected = json.loads(run("three-tier", seed=4, duration=61).to_json())
    assert printed == expected
    assert printed["seed"] == 4
    assert printed["duration"] == 61


def test_run_writes_every_table_in_each_format(tmp_path: Path):
    """``run --out DIR --format csv,json`` writes the tables, the analysis and the summary."""
    out = tmp_path / "r"
    result = runner.invoke(
        app, ["run", "three-tier", "--duration", "61s", "--out", str(out), "--format", "csv,json"]
    )
    assert result.exit_code == 0
    names = sorted(p.name for p in out.iterdir())
    tables = ("entities", "events", "failures", "latency", "services", "timeseries")
    tables += ("slo", "timeline")  # the analysis, for `faultlab report`
    assert names == sorted(
        [
            *(f"{t}.csv" for t in tables),
            *(f"{t}.json" for t in tables),
            "summary.json",
            "scenario.json",
            "headline.json",
        ]
    )


def test_run_with_a_variant_names_it_in_the_summary():
    """The variant applied is part of the result."""
    result = runner.invoke(
        app,
        ["run", "three-tier", "--variant", "more-payment-workers", "--duration", "61s", "--json"],
    )
    assert json.loads(result.stdout)["variant"] == "more-payment-workers"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope"], "error: no scenario file or catalogue entry 'nope'"),
        (
            ["run", "three-tier", "--variant", "x"],
            "error: --variant x: variant: unknown variant 'x' (known: baseline, "
            "more-payment-workers)",
        ),
        (
            ["run", "three-tier", "--duration", "5parsecs"],
            "error: --duration: unknown time unit 'parsecs' in '5parsecs' (use us, ms, s, m or h)",
        ),
        (["run", "three-tier", "--duration", "0s"], "error: --duration: must be greater than 0"),
        (
            ["run", "three-tier", "--duration", "20s"],
            "error: --duration 20s: faults.0.at: starts at 1m, after the run ends (20s)",
        ),
        (
            ["run", "three-tier", "--format", "xlsx"],
            "error: --format: unknown format 'xlsx' (use parquet, csv, json)",
        ),
        (
            ["run", "three-tier", "--bogus"],
            "error: No such option: --bogus (Possible options: --out) (see 'faultlab run --help')",
        ),
        (
            ["run", "three-tier", "--seed", "-1"],
            "error: Invalid value for '--seed': Input should be greater than or equal to 0 "
            "(see 'faultlab run --help')",
        ),
        (["run"], "error: Missing argument 'scenario'. (see 'faultlab run --help')"),
        (["frobnicate"], "error: No such command 'frobnicate'. (see 'faultlab --help')"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str):
    """Every kind of bad input: one ``error:`` line on stderr, exit 2, nothing on stdout."""
    completed = subprocess.run(
        [sys.executable, "-m", "sim.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": ""},
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [message]


def test_no_arguments_prints_the_help_and_exits_0():
    """``faultlab`` alone asks for help: usage on stdout, exit 0."""
    completed = subprocess.run(
        [sys.executable, "-m", "sim.cli"], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0
    assert "Usage: " in completed.stdout
    assert completed.stderr == ""
