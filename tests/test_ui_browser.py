"""The explorer in a real browser: ``streamlit run ui/app.py`` driven by Debian's chromium.

What AppTest cannot see: the server starts from the repository root, the router serves the pages
over HTTP and websockets, the widgets respond to clicks and typing, the KPIs appear, Plotly draws
the charts, and the process pool of Compare and Training starts under the server. Screenshots of
each page go to a temporary directory (or ``$FAULTLAB_SCREENSHOTS``). Uses
Playwright's Python driver with ``/usr/bin/chromium`` (never ``playwright install``); skipped
only when that browser is missing. Deselect with ``-m "not browser"``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sim import experiment, load_scenario, run
from ui import lessons

if TYPE_CHECKING:
    from playwright.sync_api import Page

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
FLAGSHIP = "checkout-noisy-neighbor"
"""The explorer's scenario: the flagship (its leak, evictions and OOM kills by 200 s)."""
FLAGSHIP_DURATION = 200
OOM = "memcg-oom-group"
"""The comparison's scenario: 20 requests/s, one memcg OOM at 60 s."""
DURATION = 100
LESSON = "panic-on-oom"


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
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go: ``$FAULTLAB_SCREENSHOTS`` if set, else a temporary directory."""
    chosen = os.environ.get("FAULTLAB_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def _choose(page: Page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def _type(page: Page, label: str, value: float) -> None:
    field = page.get_by_role("spinbutton", name=label)
    field.fill(f"{value:g}")
    field.press("Tab")


def _idle(page: Page) -> None:
    """Wait until the script run is over (Streamlit's running indicator is gone)."""
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")


def _screenshot(page: Page, path: Path) -> None:
    """The whole page: the viewport is stretched to the main area's height for the shot."""
    _idle(page)
    size = page.viewport_size or {"width": 1500, "height": 1000}
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 600), 9000)})
    page.wait_for_timeout(600)  # Plotly redraws for the new size
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def _wait_for_charts(page: Page, count: int) -> None:
    """Wait until ``count`` Plotly charts have drawn their SVG."""
    drawn = "Array.from(document.querySelectorAll('.js-plotly-plot'))"
    page.wait_for_function(f"{drawn}.filter(p => p.querySelector('.main-svg')).length >= {count}")


def test_explorer_compare_and_training_in_chromium(server: str, shots: Path) -> None:
    """Run the flagship in the explorer, then a comparison and a lesson; screenshot each page."""
    from playwright.sync_api import sync_playwright

    flagship = load_scenario(FLAGSHIP)
    expected = f"{run(flagship, duration=FLAGSHIP_DURATION).summary['availability']:.3%}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(180_000)  # generous: CI runs other tests beside this one
            page.goto(server)

            # Explorer: pick the flagship, shorten it, run, wait for the KPIs and the charts.
            _choose(page, "Catalogue scenario", FLAGSHIP)
            page.get_by_role("heading", name=flagship.title).wait_for()
            assert page.title() == "faultlab"
            _type(page, "Duration (s)", FLAGSHIP_DURATION)
            page.get_by_role("button", name="Run", exact=True).click()
            kpi = page.locator('[data-testid="stMetric"]').filter(has_text="Availability")
            kpi.wait_for()
            assert kpi.locator('[data-testid="stMetricValue"]').inner_text() == expected
            _wait_for_charts(page, 5)
            assert page.locator('[data-testid="stException"]').count() == 0
            _screenshot(page, shots / "explorer.png")
            page.get_by_role("tab", name="Topology").click()
            _screenshot(page, shots / "explorer-topology.png")
            page.get_by_role("tab", name="Incident timeline").click()
            _screenshot(page, shots / "explorer-timeline.png")
            # the HTML report of this run, made when the button is clicked
            page.get_by_role("tab", name="Downloads").click()
            with page.expect_download() as download:
                page.get_by_role("button", name="HTML report").click()
            report = download.value.path().read_text(encoding="utf-8")
            assert f"<title>faultlab report — {FLAGSHIP} / baseline</title>" in report
            assert expected in report  # the availability the KPI showed

            # Compare: two variants, two replications each, on two workers.
            page.get_by_role("link", name="Compare").click()
            page.get_by_role("heading", name=f"Compare: {load_scenario(FLAGSHIP).title}").wait_for()
            _idle(page)
            _choose(page, "Catalogue scenario", OOM)
            page.get_by_role("heading", name="Compare: memory.oom.group").wait_for()
            variants = page.locator('[data-testid="stMultiSelect"]')
            for name in ("cgroup-v1", "single-process-main-victim"):
                variants.get_by_role("button", name=f"Remove {name}").click()
            _type(page, "Replications per variant", 2)
            _type(page, "Duration (s)", DURATION)
            _type(page, "Parallel workers", 2)
            page.get_by_role("button", name="Compare", exact=True).click()
            page.get_by_role("heading", name="Statistics").wait_for()
            _wait_for_charts(page, 3)
            assert page.locator('[data-testid="stException"]').count() == 0
            _screenshot(page, shots / "compare.png")

            # Training: a lesson, predictions locked in, run, revealed.
            page.get_by_role("link", name="Training").click()
            page.get_by_role("heading", name=f"Lesson: {load_scenario(FLAGSHIP).title}").wait_for()
            _idle(page)
            _choose(page, "Catalogue scenario", LESSON)
            page.get_by_role("heading", name=f"Lesson: {load_scenario(LESSON).title}").wait_for()
            _idle(page)
            # the previous lesson's questions may linger for a moment: wait for this one's
            scenario = load_scenario(LESSON)
            asked = len(lessons.lesson(scenario, experiment.designs(scenario)).questions)
            page.wait_for_function(
                f"document.querySelectorAll('[data-testid=\"stRadio\"]').length == {asked}"
            )
            radios = page.locator('[data-testid="stRadio"]')
            for index in range(asked):
                radios.nth(index).locator("label").nth(1).click()
            page.get_by_role("button", name="Lock in my predictions").click()
            page.get_by_text("Predictions locked in.").wait_for()
            _type(page, "Parallel workers", 2)
            page.get_by_role("button", name="Run the lesson").click()
            page.get_by_role("heading", name="4. Reveal").wait_for()
            page.get_by_text("predictions right").wait_for()
            assert page.locator('[data-testid="stException"]').count() == 0
            _screenshot(page, shots / "training.png")
        finally:
            browser.close()
    for name in ("explorer", "explorer-topology", "explorer-timeline", "compare", "training"):
        assert (shots / f"{name}.png").stat().st_size > 0
