"""The lessons in JupyterLab in a real browser, as a learner uses them.

Lesson 00 (FAST copy, progress bars on as a learner has them): *Run → Run All Cells*; no error
output, no empty stderr output (JupyterLab draws stderr red: a cleared progress bar would leave an
empty error box), no widget shown as text, no "official Jupyter news?" prompt; the
momentum and batch-size sliders moved with the keyboard change the figure, and moving back shows
the first figure again, fast (from the cache); Ctrl+S, reload: the widgets come back. Lesson 03
(FAST copy, run up to its full-batch curvature panel): that panel's momentum slider changes the
figure, and back.

Timings (Run All; per slider: first visible feedback, final figure, revisit) go to
``build/browser_report.{json,md}``, screenshots to ``build/screenshots/``.
"""

from __future__ import annotations

import os

import pytest

from tests.browser import report
from tests.browser.notebook_page import NotebookPage

pytestmark = pytest.mark.browser

# FAST lessons take 1-2 minutes on 2 idle cores. EDUTOOLS_BROWSER_SLACK multiplies every
# timeout (and EDUTOOLS_BROWSER_TIMEOUT_S, the whole test's) for a machine shared with others.
SLACK = float(os.environ.get("EDUTOOLS_BROWSER_SLACK", "1"))
RUN_TIMEOUT_S = 900.0 * SLACK
SLIDER_TIMEOUT_S = 300.0 * SLACK
# A revisit must come from the cache: at most half the first computation, or this floor (s),
# since redrawing a cached figure still takes a moment.
REVISIT_FLOOR_S = 1.5
REVISIT_FRACTION = 0.5

LESSON_00 = "00_start_here.ipynb"
PANEL_00 = "slider_panel("  # a piece of the source of the cell that shows the panel
SLIDERS_00 = ("momentum β", "batch size B")
LESSON_03 = "03_momentum.ipynb"
PANEL_03 = "show_full_batch"  # the full-batch λ_max (curvature) panel
SLIDERS_03 = ("momentum β",)


def check_no_problems(notebook: NotebookPage, when: str) -> None:
    """Fail with what the learner would see: error outputs, widgets as text."""
    problems = notebook.problems()
    assert not problems, f"{notebook.path} {when}: {problems}"


def open_and_run(notebook: NotebookPage, *, through: str | None = None) -> None:
    """Open the notebook; Run All, or run every cell up to the one containing ``through``."""
    notebook.open(timeout_s=180.0 * SLACK)
    if through is None:
        seconds = notebook.run_all(timeout_s=RUN_TIMEOUT_S)
        report.record_run_all(notebook.path, seconds)
    else:
        seconds = notebook.run_through(through, timeout_s=RUN_TIMEOUT_S)
        report.record_run_all(notebook.path, seconds, what=f"up to the cell with {through!r}")
    check_no_problems(notebook, "after running it")


def move_and_come_back(notebook: NotebookPage, marker: str, slider: str,
                       name: str) -> list[str]:
    """Press → on ``slider`` then ←; the figure must change, then return, from the cache.

    Returns the checks that failed (the moves are recorded either way, so that one run
    reports every slider).
    """
    state = notebook.panel_state(marker)
    assert state["found"], f"{notebook.path}: no slider panel in the cell with {marker!r}"
    assert state["figure"] is not None, f"{notebook.path}: the panel shows no figure: {state}"
    move = notebook.move_slider(marker, slider, "ArrowRight", timeout_s=SLIDER_TIMEOUT_S)
    report.record_screenshot(notebook.screenshot_panel(marker, f"{name}_moved"))
    revisit = notebook.move_slider(marker, slider, "ArrowLeft", timeout_s=SLIDER_TIMEOUT_S)
    report.record_screenshot(notebook.screenshot_panel(marker, f"{name}_back"))
    report.record_slider(move, revisit)
    where = f"{notebook.path}, slider {slider!r}"
    failures = [f"{where}: the panel reported {m.error!r} at {m.value_after}"
                for m in (move, revisit) if m.error is not None]
    if move.value_after == move.value_before:
        failures.append(f"{where}: the key press did not move it ({move.value_before})")
    if move.first_feedback_s is None:
        failures.append(f"{where}: the panel never reacted")
    if not move.figure_changed:
        failures.append(f"{where}: {move.value_before} → {move.value_after} kept the figure")
    if revisit.value_after != move.value_before:
        failures.append(f"{where}: ← went to {revisit.value_after}, not {move.value_before}")
    if revisit.figure_after != move.figure_before:
        failures.append(f"{where}: back at {revisit.value_after} the figure differs from the "
                        f"first one (statuses seen: {revisit.statuses})")
    limit = max(REVISIT_FLOOR_S, REVISIT_FRACTION * move.final_s)
    if revisit.final_s > limit:
        failures.append(f"{where}: back at a visited setting took {revisit.final_s:.2f} s "
                        f"(first visit {move.final_s:.2f} s, limit {limit:.2f} s): not from "
                        f"the cache?")
    return failures


def test_lesson_00_runs_and_its_sliders_work(browser_page, jupyter_server):
    notebook = NotebookPage(browser_page, jupyter_server, LESSON_00,
                            screenshots=report.SCREENSHOTS)
    open_and_run(notebook)
    report.record_screenshot(notebook.screenshot_panel(PANEL_00, "00_panel_after_run_all"))
    failures = []
    for slider in SLIDERS_00:
        failures += move_and_come_back(notebook, PANEL_00, slider, f"00_{slider.split()[0]}")
    check_no_problems(notebook, "after moving the sliders")

    saved = notebook.save()
    unrun = [i for i, cell in enumerate(c for c in saved["cells"] if c["cell_type"] == "code")
             if cell.get("execution_count") is None]
    assert not unrun, f"the saved notebook lacks outputs of code cells {unrun}"

    # A tall window, so that every cell's output is laid out and visible in the screenshot.
    notebook.reload(height=12000, timeout_s=180.0 * SLACK)
    check_no_problems(notebook, "after saving and reloading the page")
    state = notebook.panel_state(PANEL_00)
    assert state["found"] and state["figure"] is not None, \
        f"after reload the slider panel is gone or empty: {state}"
    report.record_screenshot(notebook.screenshot("00_after_reload"))
    jupyter_server.shutdown_kernels()  # free the CPU for the next lesson
    assert not failures, "\n".join(failures)


def test_the_check_sees_an_empty_error_box(browser_page, jupyter_server):
    """What tqdm's text bar leaves in a notebook when it clears its line (``leave=False``): a
    stderr output holding only whitespace. The check must report it (else the lesson checks
    above could not fail on one)."""
    import json

    path = "empty_stderr_box.ipynb"
    cell = {"cell_type": "code", "execution_count": None, "id": "leftover", "metadata": {},
            "outputs": [], "source": "import sys\nsys.stderr.write('\\r' + ' ' * 40 + '\\r')"}
    (jupyter_server.root_dir / path).write_text(json.dumps(
        {"cells": [cell], "nbformat": 4, "nbformat_minor": 5,
         "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}}}))
    notebook = NotebookPage(browser_page, jupyter_server, path, screenshots=report.SCREENSHOTS)
    notebook.open(timeout_s=180.0 * SLACK)
    notebook.run_all(timeout_s=120.0 * SLACK)
    problems = notebook.problems()
    jupyter_server.shutdown_kernels()
    assert problems == ["empty stderr output (an empty red box)"], problems


def test_lesson_03_curvature_panel_slider(browser_page, jupyter_server):
    notebook = NotebookPage(browser_page, jupyter_server, LESSON_03,
                            screenshots=report.SCREENSHOTS)
    # The panel is a third of the way in: run up to it (Run All would add minutes).
    open_and_run(notebook, through=PANEL_03)
    report.record_screenshot(notebook.screenshot_panel(PANEL_03, "03_panel_after_run"))
    failures = []
    for slider in SLIDERS_03:
        failures += move_and_come_back(notebook, PANEL_03, slider, f"03_{slider.split()[0]}")
    check_no_problems(notebook, "after moving the slider")
    jupyter_server.shutdown_kernels()
    assert not failures, "\n".join(failures)
