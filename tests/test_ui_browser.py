"""The explorer in a real browser: ``streamlit run ui/app.py`` driven by Debian's chromium.

What AppTest cannot see: the server starts from the repository root, the router serves the page
over HTTP and websockets, the widgets respond to clicks and typing, and the KPIs appear. Uses
Playwright's Python driver with ``/usr/bin/chromium`` (never ``playwright install``); skipped
only when that browser is missing. Deselect with ``-m "not browser"``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim import load_scenario, run

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT = 30.0
DURATION = 70


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The app served by ``python -m streamlit run ui/app.py`` on a free port; its base URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "streamlit.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "ui/app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (tmp_path / "streamlit.log").read_text(errors="replace")
                pytest.fail(f"streamlit did not become healthy at {url}:\n{output}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_explorer_runs_three_tier_in_chromium(server: str, tmp_path: Path) -> None:
    """Pick three-tier, type a duration, press Run: the Availability KPI shows the model's value."""
    from playwright.sync_api import sync_playwright

    expected = f"{run(load_scenario('three-tier'), duration=DURATION).summary['availability']:.3%}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(server)

            picker = page.locator('[data-testid="stSelectbox"]').filter(
                has_text="Catalogue scenario"
            )
            picker.click()
            page.get_by_role("option", name="three-tier").click()
            page.get_by_role("heading", name="Three tiers and a crash").wait_for()
            assert page.title() == "faultlab"

            duration = page.get_by_role("spinbutton", name="Duration (s)")
            duration.fill(str(DURATION))
            duration.press("Tab")
            page.get_by_role("button", name="Run").click()

            kpi = page.locator('[data-testid="stMetric"]').filter(has_text="Availability")
            kpi.wait_for()
            assert kpi.locator('[data-testid="stMetricValue"]').inner_text() == expected
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "explorer.png").stat().st_size > 0
