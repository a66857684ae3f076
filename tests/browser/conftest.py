"""Fixtures of the browser tests: Chromium through Playwright, and a JupyterLab on lesson copies.

Without Playwright or Chromium these tests are skipped, unless ``EDUTOOLS_REQUIRE_BROWSER=1``
(CI sets it), which turns a missing browser into a failure. Chromium is Debian's
(``apt-get install chromium``), never one that ``playwright install`` downloads; set
``EDUTOOLS_CHROMIUM`` to use another executable. The Binder test is gated by
``EDUTOOLS_BINDER_TEST=1`` (``test_binder_env.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.browser import report
from tests.browser.lab import LabServer, find_chromium, prepare_lessons, running_lab

# Flags for a headless Chromium in a container, as root, with no network beyond localhost.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# The lessons the browser tests open (FAST copies); the every-panel benchmark opens all of them.
ALL_PANELS = os.environ.get("EDUTOOLS_BROWSER_ALL_PANELS", "") not in ("", "0")
BROWSER_LESSONS = (("00", "01", "02", "03", "04", "05", "06", "07") if ALL_PANELS
                   else ("00", "03"))
# Last resort against a hang: every wait has its own deadline, this bounds a whole test.
TEST_TIMEOUT_S = (float(os.environ.get("EDUTOOLS_BROWSER_TIMEOUT_S", "1500"))
                  * float(os.environ.get("EDUTOOLS_BROWSER_SLACK", "1")))


def browser_required() -> bool:
    """Whether a missing browser is a failure (``EDUTOOLS_REQUIRE_BROWSER=1``) or a skip."""
    return os.environ.get("EDUTOOLS_REQUIRE_BROWSER", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives JupyterLab in a real (headless) browser")
    config.addinivalue_line("markers", "binder: builds the Binder environment (slow, "
                                       "EDUTOOLS_BINDER_TEST=1)")
    config.addinivalue_line("markers", "site: builds the course website and reads every page")


def _unavailable(reason: str) -> NoReturn:
    if browser_required():
        pytest.fail(f"EDUTOOLS_REQUIRE_BROWSER is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (skips, or fails when required, without one)."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed")
    executable = find_chromium()
    if executable is None:
        _unavailable("no Chromium found (apt-get install chromium, or set EDUTOOLS_CHROMIUM)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                                 timeout=120_000)
        except PlaywrightError as error:
            _unavailable(f"Chromium at {executable} did not start: {error}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab serving FAST copies of the browser lessons (never the committed notebooks)."""
    work = tmp_path_factory.mktemp("jupyterlab")
    root = work / "lessons"
    prepare_lessons(BROWSER_LESSONS, root, fast=True)
    # A fresh disk cache for the panels, so a slider's first move really computes.
    with running_lab(root, work_dir=work,
                     env={"EDUTOOLS_CACHE_DIR": str(work / "edutools_cache")}) as server:
        yield server


@pytest.fixture
def browser_page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (1280×1000) with generous timeouts; screenshot on failure."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        yield page
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            path = report.SCREENSHOTS / f"failure_{request.node.name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(path))
        context.close()


@pytest.fixture(autouse=True)
def _whole_test_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """Raise TimeoutError in a browser test that runs past ``EDUTOOLS_BROWSER_TIMEOUT_S``."""
    if request.node.get_closest_marker("browser") is None or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"browser test ran longer than {TEST_TIMEOUT_S:.0f} s "
                           "(EDUTOOLS_BROWSER_TIMEOUT_S)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(TEST_TIMEOUT_S))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    result = outcome.get_result()
    if result.when == "call":
        item.rep_call = result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not report.has_rows():
        return
    terminalreporter.section("browser report (JupyterLab in headless Chromium, FAST lessons)")
    for line in report.markdown_lines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {report.BUILD / 'browser_report.md'})")


def screenshot_dir() -> Path:
    """Where the browser tests put their screenshots (``build/screenshots``)."""
    return report.SCREENSHOTS
