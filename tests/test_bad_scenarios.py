"""Malformed scenarios: ``faultlab validate`` prints one exact ``file:line:col: path: message``.

Each file in ``bad_scenarios/`` is the minimal scenario of ``conftest.py`` with one mistake. The
tests run from ``tests/`` so that the file names in the messages are the ones on the command line.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

HERE = Path(__file__).parent
B = "bad_scenarios/"
EXPECTED_LINES = [
    B + "yaml-syntax.yaml:12:10: YAML syntax: expected ',' or '}', but got ':' "
    "(while parsing a flow mapping at line 11, column 9)",
    B + "duplicate-key.yaml:8:5: services.frontend.replicas: duplicate key (first given on line 7)",
    B + "unknown-field.yaml:7:5: services.frontend.replica: unknown field",
    B + "wrong-type.yaml:7:15: services.frontend.replicas: "
    "Input should be a valid integer, unable to parse string as an integer",
    B + "missing-service-time.yaml:12:3: services.backend.service_time: field required",
    B + "unknown-memory-unit.yaml:4:28: hosts.0.memory: "
    "unknown memory unit 'Gb' in '8Gb' (use B, Ki, Mi, Gi, Ti, k, M, G or T)",
    B + "negative-duration.yaml:18:40: faults.0.at: a duration cannot be negative, got '-30s'",
    B + "percent-over-100.yaml:19:21: slo.availability: "
    "a fraction must lie between 0 and 1 (0% and 100%), got '150%'",
    B + "unknown-dist.yaml:13:26: services.backend.service_time.dist: unknown dist 'gamma' "
    "(expected one of 'exponential', 'deterministic', 'lognormal', 'uniform', 'empirical')",
    B + "unknown-fault-kind.yaml:18:12: faults.0.kind: unknown kind 'meteor' "
    "(expected one of 'latency', 'error_rate', 'crash', 'hang', 'traffic_surge', 'host_down', "
    "'crash_loop', 'drain', 'memory_leak', 'memory_spike', 'memory_hog', 'partition', "
    "'poison_request')",
    B + "crash-count-and-percent.yaml:18:5: faults.0: give count or percent, not both",
    B + "unknown-call-target.yaml:11:14: services.frontend.calls.0.to: "
    "unknown service 'backnd' (known: backend, frontend)",
    B + "call-cycle.yaml:15:14: services.backend.calls.0.to: "
    "call graph has a cycle: frontend -> backend -> frontend",
    B + "placement-unknown-host.yaml:8:25: services.frontend.placement.1: "
    "unknown host 'node-b' (known: node-a)",
    B + "placement-does-not-fit.yaml:6:3: services.frontend.placement: "
    "replica 1 does not fit on node-a: memory requests 6Gi > allocatable 3.902Gi",
    B + "unknown-workload-entry.yaml:15:10: workload.entry: "
    "unknown service 'gateway' (known: backend, frontend)",
    B + "lognormal-p99-below-median.yaml:9:19: services.frontend.service_time: "
    "p99 must be greater than median",
    B + "variant-missing-field.yaml:23:5: "
    "variants.fast-backend.services.backend.service_time.average: unknown field",
    B + "variant-invalid-value.yaml:23:41: "
    "variants.fast-backend.services.backend.service_time.mean: "
    "unknown time unit 'parsecs' in '5 parsecs' (use us, ms, s, m or h)",
    B + "variant-missing-list-item.yaml:23:5: "
    "variants.fast-backend.services.frontend.calls.nope.timeout: "
    "services.frontend.calls has no item named 'nope' (items: backend)",
    B + "otp-and-restart-policy.yaml:14:14: services.backend.restart: backend is supervised by "
    "OTP supervisor 'backend_sup': a service has a Kubernetes restart policy or an OTP "
    "supervisor, not both",
    B + "liveness-success-threshold.yaml:14:24: services.backend.probes.liveness: "
    "success_threshold must be 1 for liveness probes, got 2",
    B + "pdb-both-fields.yaml:14:10: services.backend.pdb: "
    "give exactly one of min_available and max_unavailable",
    B + "crash-loop-without-after.yaml:18:5: faults.0.after: field required",
    B + "not-a-mapping.yaml:1:1: a scenario must be a YAML mapping",
    B + "missing.yaml: cannot read: No such file or directory",
]
"""Each case's one error line, exactly; the file (as on the command line) is before the colon."""
EXPECTED = {line.split(":")[0].removeprefix(B): line for line in EXPECTED_LINES}
NOT_DERIVED = {"not-a-mapping.yaml", "missing.yaml"}


def _error_line(name: str) -> str:
    return f"error: {EXPECTED[name]}\n"


@pytest.fixture
def in_tests_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from ``tests/`` so relative paths on the command line match the expectations."""
    monkeypatch.chdir(HERE)


@pytest.mark.usefixtures("in_tests_dir")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_reports_one_exact_line_and_exits_2(name: str) -> None:
    """Each malformed file gives exactly its error line on stderr, nothing on stdout, exit 2."""
    result = CliRunner().invoke(app, ["validate", B + name])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", _error_line(name))
    assert type(result.exception) is SystemExit  # a deliberate exit, not a crash


@pytest.mark.parametrize("name", ["yaml-syntax.yaml", "wrong-type.yaml", "missing.yaml"])
def test_console_script_prints_no_traceback(name: str) -> None:
    """The installed ``faultlab`` command prints only the error line: no traceback, exit 2."""
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"} | {"NO_COLOR": "1"}
    faultlab = Path(sys.executable).with_name("faultlab")
    done = subprocess.run(
        [str(faultlab), "validate", B + name],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert (done.returncode, done.stdout, done.stderr) == (2, "", _error_line(name))


def test_every_bad_scenario_file_has_an_expectation() -> None:
    """The folder and the table agree, and there are at least 18 malformed files."""
    files = {p.name for p in (HERE / B).glob("*.yaml")}
    assert files == set(EXPECTED) - {"missing.yaml"}
    assert len(files) >= 18


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - NOT_DERIVED))
def test_bad_scenario_is_the_minimal_one_with_one_mistake(
    name: str, minimal_scenario_yaml: str
) -> None:
    """Each derived file differs from the minimal scenario in a single changed block of lines."""
    bad = (HERE / B / name).read_text(encoding="utf-8").splitlines()
    matcher = difflib.SequenceMatcher(a=minimal_scenario_yaml.splitlines(), b=bad, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    assert len(changes) == 1, changes
    _, a_start, a_end, b_start, b_end = changes[0]
    assert max(a_end - a_start, b_end - b_start) <= 2


def test_minimal_scenario_validates(
    minimal_scenario_yaml: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario the bad ones derive from is itself valid: exit 0 and a one-line summary."""
    monkeypatch.chdir(tmp_path)
    Path("minimal.yaml").write_text(minimal_scenario_yaml, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "minimal.yaml"])
    assert (result.exit_code, result.stderr) == (0, "")
    # rich wraps stdout at the console width, so compare the words
    summary = "minimal.yaml: ok — scenario 'minimal', 2 services, 1 hosts, 1 faults, variants:"
    assert " ".join(result.stdout.split()) == f"{summary} baseline, fast-backend"
