"""``faultlab ui``: the command that starts the Streamlit app (``make ui`` does the same)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_ui_runs_streamlit_on_the_router(monkeypatch: pytest.MonkeyPatch) -> None:
    """It runs ``python -m streamlit run ui/app.py`` from the checkout, with the port asked for."""
    calls: list[tuple[list[str], Any]] = []

    def fake_call(command: list[str], cwd: Any = None) -> int:
        calls.append((command, cwd))
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    result = CliRunner().invoke(app, ["ui", "--port", "8600"])
    assert result.exit_code == 0, result.output
    assert calls == [
        (
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "ui" / "app.py"),
                "--server.port",
                "8600",
            ],
            ROOT,
        )
    ]


def test_ui_rejects_a_bad_port() -> None:
    """A port out of range is a usage error (exit 2), never a traceback."""
    result = CliRunner().invoke(app, ["ui", "--port", "0"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
