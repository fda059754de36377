"""``faultlab compare``, ``sweep`` and ``explain``: output, files, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim import experiment
from sim.cli import app
from sim.scenario import load_scenario

runner = CliRunner()
SHORT = ["--duration", "30s", "--executor", "serial"]


def test_compare_json_is_the_api_comparison():
    """``compare --json`` prints the same statistics the API computes."""
    result = runner.invoke(
        app, ["compare", "mmc-queue", "--variants", "baseline,mm1", "--reps", "2", *SHORT, "--json"]
    )
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert (printed["scenario"], printed["reference"], printed["reps"]) == (
        "mmc-queue",
        "baseline",
        2,
    )
    queue = load_scenario("mmc-queue").with_overrides({"duration": 30})
    expected = experiment.compare(queue, ["baseline", "mm1"], 2, executor="serial")
    assert printed["stats"] == json.loads(expected.stats.to_json(orient="records"))
    assert {row["variant"] for row in printed["stats"]} == {"baseline", "mm1"}


def test_compare_table_and_output_directory(tmp_path: Path):
    """The table shows means, paired differences and their significance.

    ``--out`` holds the Parquet tables.
    """
    result = runner.invoke(
        app,
        [
            "compare",
            "mmc-queue",
            "--variants",
            "baseline,light-load",
            "--reps",
            "3",
            *SHORT,
            "--out",
            str(tmp_path),
        ],
        terminal_width=160,
    )
    assert result.exit_code == 0, result.stderr
    assert "mean ± 95% CI over 3 seeds" in result.stdout
    assert "latency_p99" in result.stdout
    assert "Δ -" in result.stdout
    assert " *" in result.stdout
    assert "results written to" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.parquet",
        "report.html",
        "runs",
        "runs.parquet",
        "stats.parquet",
    ]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["baseline", "light-load"]
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 6


def test_sweep_json_summarises_every_point():
    """``sweep --param`` twice: the cartesian product, each point summarised."""
    result = runner.invoke(
        app,
        [
            "sweep",
            "mmc-queue",
            "--param",
            "services.server.workers=4,5",
            "--param",
            "workload.rate.rate=40/s",
            "--reps",
            "2",
            *SHORT,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["grid"] == {
        "services.server.workers": [4, 5],
        "workload.rate.rate": ["40/s"],
    }
    summary = pd.DataFrame(printed["summary"])
    assert len(summary) == 2 * len(experiment.METRICS)
    assert set(summary["services.server.workers"]) == {4, 5}
    assert (summary.loc[summary["metric"] == "availability", "n"] == 2).all()
    # mmc-queue has no fault: nothing is ever impacted, in every cell of the map
    assert [(r["services.server.workers"], r["regime"]) for r in printed["regimes"]] == [
        (4, "never impacted"),
        (5, "never impacted"),
    ]


def test_explain_tells_the_incident():
    """``explain``: the headline in words, the timeline with causes, why requests failed."""
    result = runner.invoke(app, ["explain", "three-tier", "--duration", "100s"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "three-tier, seed 1"
    assert lines[1] == "A fault at 60.000s (instantaneous), aimed at payments."
    assert (
        "  #1      60.000s  payments-0 terminated (Error, exit code 137); load balancer: 1 of 2 "
        "payments replicas  <- #0"
    ) in lines
    assert "  #2      60.000s  payments-0 restarts  <- #1" in lines
    assert "Why requests failed:" in lines


def test_failed_replications_warn_and_exit_1(monkeypatch: pytest.MonkeyPatch):
    """Replications that fail are reported on stderr, and the exit status says so."""
    real = experiment._run_task

    def flaky(task: experiment.Task) -> experiment.Run:
        if task.seed == 2:
            raise RuntimeError("boom")
        return real(task)

    monkeypatch.setattr(experiment, "_run_task", flaky)
    result = runner.invoke(
        app, ["compare", "mmc-queue", "--variants", "baseline", "--reps", "2", *SHORT]
    )
    assert result.exit_code == 1
    assert result.stderr == "warning: 1 of 2 replications failed: RuntimeError: boom\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "three-tier", "--reps", "0"], "error: --reps: must be at least 1"),
        (["compare", "three-tier", "--jobs", "0"], "error: --jobs: must be at least 1"),
        (
            ["compare", "three-tier", "--executor", "quantum"],
            "error: --executor: unknown executor 'quantum' (use serial, process, dask://local "
            "or dask://tcp://HOST:PORT)",
        ),
        (
            ["compare", "three-tier", "--variants", "baseline,nope"],
            "error: --variants nope: variant: unknown variant 'nope' (known: baseline, "
            "more-payment-workers)",
        ),
        (["compare", "three-tier", "--variants", ","], "error: --variants: no variant given"),
        (
            ["compare", "three-tier", "--duration", "20s"],
            "error: --duration 20s: faults.0.at: starts at 1m, after the run ends (20s)",
        ),
        (["compare", "nope"], "error: no scenario file or catalogue entry 'nope'"),
        (
            ["sweep", "three-tier", "--param", "services.payments.workers"],
            "error: --param services.payments.workers: expected PATH=VALUE[,VALUE...]",
        ),
        (
            ["sweep", "three-tier", "--param", "services.payments.workers=4,"],
            "error: --param services.payments.workers=4,: an empty value",
        ),
        (
            ["sweep", "three-tier", "--param", "services.payments.workers=4,0"],
            "error: --param services.payments.workers=0: services.payments.workers: Input "
            "should be greater than or equal to 1",
        ),
        (
            [
                "sweep",
                "three-tier",
                "--param",
                "services.payments.workers=4",
                "--param",
                "services.payments.workers=8",
            ],
            "error: --param services.payments.workers: given twice",
        ),
        (
            ["sweep", "three-tier", "--param", "seed=1,2"],
            "error: replications set the seeds: sweep no 'seed' (give the first seed and reps)",
        ),
        (["sweep", "three-tier"], "error: Missing option '--param'. (see 'faultlab sweep --help')"),
        (["explain", "three-tier", "--hold", "0s"], "error: --hold: must be greater than 0"),
        (
            ["explain", "three-tier", "--variant", "x"],
            "error: --variant x: variant: unknown variant 'x' (known: baseline, "
            "more-payment-workers)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str):
    """Every kind of bad input: one ``error:`` line on stderr, exit 2, nothing on stdout."""
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [message]


def test_out_holding_another_scenario_is_refused(tmp_path: Path):
    """Resuming into another scenario's results is a one-line error."""
    runner.invoke(
        app,
        [
            "compare",
            "mmc-queue",
            "--variants",
            "baseline",
            "--reps",
            "1",
            *SHORT,
            "--out",
            str(tmp_path),
        ],
    )
    result = runner.invoke(
        app,
        [
            "compare",
            "mmc-queue",
            "--variants",
            "baseline",
            "--reps",
            "1",
            "--duration",
            "31s",
            "--executor",
            "serial",
            "--out",
            str(tmp_path),
        ],
        terminal_width=300,
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path} holds results of a different scenario")
    assert len(result.stderr.splitlines()) == 1
