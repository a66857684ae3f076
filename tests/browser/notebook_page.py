"""Drive one notebook in JupyterLab like a learner: Run All, move sliders, save, reload.

Reads what the page shows through ``page_helpers.js`` (installed on every page load) and times it
with ``time.perf_counter`` in this process. Every wait polls with a deadline: nothing here waits
forever, however slow the machine.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.browser.lab import LabServer

HELPERS_JS = (Path(__file__).with_name("page_helpers.js")).read_text()
HANDLE_ID = "edutools-test-slider-handle"
PANEL_ID = "edutools-test-panel"
POLL_S = 0.05  # how often a wait looks at the page while timing a slider
# A run that failed: the panel's status line names the exception ("KeyError: 'lr'").
PANEL_ERROR = re.compile(r"\b\w*(Error|Exception)\b:")
UNMOVED_AFTER_S = 1.0  # a key that changed neither value nor panel by then did nothing


class BrowserCheckError(AssertionError):
    """What the learner would see went wrong (an error output, a widget shown as text, ...)."""


@dataclass(frozen=True)
class SliderMove:
    """One key press on a slider and what the panel did after it.

    Attributes:
        lesson: notebook file name.
        slider: the slider's description (e.g. ``"momentum β"``).
        key: the key pressed (``"ArrowRight"``/``"ArrowLeft"``).
        value_before, value_after: the slider's readout before and after.
        first_feedback_s: seconds from the key press until the panel first changed (status text
            or figure); ``None`` if it never changed.
        final_s: seconds from the key press until the figure's last change before the panel
            settled (kernel idle, not busy, nothing changing for the settle time).
        figure_before, figure_after: fingerprints of the panel's images (``None``: no image).
        statuses: the distinct status texts seen meanwhile, in order.
        figure_changes_s: seconds from the key press to each change of the figure (partial
            curves while it trains, then the final one).
    """

    lesson: str
    slider: str
    key: str
    value_before: str | None
    value_after: str | None
    first_feedback_s: float | None
    final_s: float
    figure_before: str | None
    figure_after: str | None
    statuses: tuple[str, ...] = field(default_factory=tuple)
    figure_changes_s: tuple[float, ...] = field(default_factory=tuple)

    @property
    def error(self) -> str | None:
        """The error the panel's status line reported at the end, if any."""
        last = self.statuses[-1] if self.statuses else ""
        return last if last and PANEL_ERROR.search(last) else None

    @property
    def longest_redraw_gap_s(self) -> float | None:
        """The longest wait for a new figure, from the first feedback to the final figure: how
        long the learner looked at an unchanged figure while the run went on (``None`` if the
        panel never reacted)."""
        if self.first_feedback_s is None:
            return None
        times = [self.first_feedback_s, *self.figure_changes_s]
        return max((b - a for a, b in zip(times[:-1], times[1:], strict=True)), default=0.0)

    @property
    def figure_changed(self) -> bool:
        """Whether the panel shows a different figure than before the key press."""
        return self.figure_after is not None and self.figure_after != self.figure_before


class NotebookPage:
    """A Playwright page showing one notebook of a :class:`LabServer`."""

    def __init__(self, page: Any, server: LabServer, path: str, *, screenshots: Path) -> None:
        self.page, self.server, self.path = page, server, path
        self.screenshots = screenshots
        self.screenshots.mkdir(parents=True, exist_ok=True)
        page.add_init_script(HELPERS_JS)

    # -- reading the page -------------------------------------------------------------------
    def _call(self, function: str, *args: Any) -> Any:
        return self.page.evaluate(
            f"(args) => window.__edutoolsTest.{function}(...args)", [self.path, *args])

    def kernel_state(self) -> dict[str, Any]:
        """Kernel status, execution counts, error outputs and dirty flag of the notebook."""
        return self._call("kernelState")

    def problems(self) -> list[str]:
        """Error outputs, widgets shown as text, "Error displaying widget" on the page."""
        return self._call("problems")

    def panel_state(self, marker: str) -> dict[str, Any]:
        """Status text, figure fingerprint, busy flag and readouts of the panel of ``marker``.

        ``marker`` is a piece of the source of the cell that displays the panel.
        """
        return self._call("panelState", marker)

    def _wait(self, condition: Any, *, timeout_s: float, what: str, poll_s: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                self.screenshot(f"timeout_{Path(self.path).stem}")
                raise TimeoutError(f"{self.path}: {what} not within {timeout_s:.0f} s")
            time.sleep(poll_s)

    # -- actions ------------------------------------------------------------------------------
    def open(self, *, timeout_s: float = 180.0) -> None:
        """Load the notebook's URL and wait until its kernel is idle."""
        # `reset`: a fresh workspace, so that notebooks opened earlier do not start kernels.
        self.page.goto(self.server.url(f"lab/tree/{self.path}") + "&reset",
                       timeout=timeout_s * 1000)
        self.wait_until_ready(timeout_s=timeout_s)

    def wait_until_ready(self, *, timeout_s: float) -> None:
        """Wait until the notebook is shown and its kernel answers (status idle)."""
        self._wait(lambda: self.page.evaluate("() => !!window.__edutoolsTest && "
                                              "!!window.jupyterapp"),
                   timeout_s=timeout_s, what="JupyterLab loaded")
        self._wait(lambda: self.kernel_state().get("status") == "idle",
                   timeout_s=timeout_s, what="kernel idle")

    def _menu(self, menu: str, command: str, label: str) -> None:
        """Click ``menu`` in the menu bar, then its entry for ``command`` (or with ``label``)."""
        self.page.locator("li.lm-MenuBar-item", has_text=menu).first.click()
        item = self.page.locator(f"li.lm-Menu-item[data-command='{command}']")
        if item.count() == 0:  # other JupyterLab versions: find the entry by its label
            item = self.page.locator("li.lm-Menu-item", has_text=label)
        item.first.click()

    def _wait_for_cells(self, last_cell: int | None, *, timeout_s: float, what: str) -> None:
        """Wait until the code cells up to ``last_cell`` (all if None) ran and the kernel idles.

        Raises:
            BrowserCheckError: a cell raised (JupyterLab then stops running the others).
        """
        def finished() -> bool:
            state = self.kernel_state()
            if state.get("errors"):
                raise BrowserCheckError(f"{self.path}: error during {what}: {state['errors']}")
            counts = [count for count, index in zip(state.get("counts", []),
                                                    state.get("codeIndices", []), strict=True)
                      if last_cell is None or index <= last_cell]
            return (state.get("status") == "idle" and state.get("pending") == 0
                    and bool(counts) and all(count is not None for count in counts))

        self._wait(finished, timeout_s=timeout_s, what=f"{what} finished")

    def run_all(self, *, timeout_s: float) -> float:
        """*Run → Run All Cells* from the menu bar; seconds until every cell has run."""
        start = time.perf_counter()
        self._menu("Run", "runmenu:run-all", "Run All Cells")
        self._wait_for_cells(None, timeout_s=timeout_s, what="Run All")
        return time.perf_counter() - start

    def run_through(self, marker: str, *, timeout_s: float) -> float:
        """Select the cell of ``marker``; *Run All Above Selected Cell*, then *Run Selected Cell*.

        Seconds until every code cell up to that one has run. Faster than Run All when the cell
        is early in a long lesson.
        """
        index = self._call("cellIndex", marker)
        if index < 0:
            raise BrowserCheckError(f"{self.path}: no code cell contains {marker!r}")
        prompt = self.page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()
        start = time.perf_counter()
        self._menu("Run", "notebook:run-all-above", "Run All Above Selected Cell")
        self._wait_for_cells(index - 1, timeout_s=timeout_s, what="Run All Above")
        remaining = max(timeout_s - (time.perf_counter() - start), 1.0)
        prompt.click()  # the selection stays on the cell; a click makes sure of it
        self._menu("Run", "runmenu:run", "Run Selected Cell")
        self._wait_for_cells(index, timeout_s=remaining, what=f"running the cell with {marker!r}")
        return time.perf_counter() - start

    def move_slider(self, marker: str, label: str, key: str, *, timeout_s: float = 300.0,
                    settle_s: float = 1.0) -> SliderMove:
        """Focus the slider ``label`` of the panel of ``marker``, press ``key``, time the panel.

        The panel has settled when its figure differs from the one before, the kernel is idle,
        the status does not say it is busy, and neither figure nor status changed for
        ``settle_s``. The final time is that of the figure's last change, not of the settling.
        A key that changed neither the value nor the panel within ``UNMOVED_AFTER_S`` (a slider
        at the end of its range) returns at once, with ``value_after == value_before``.
        """
        outcome = self.page.evaluate(
            "(args) => window.__edutoolsTest.markSliderHandle(...args)",
            [self.path, marker, label, HANDLE_ID])
        if outcome != "ok":
            raise BrowserCheckError(f"{self.path}: slider {label!r} of the panel of {marker!r}: "
                                    f"{outcome}")
        before = self.panel_state(marker)
        handle = self.page.locator(f"#{HANDLE_ID}")
        handle.focus()
        start = time.perf_counter()
        handle.press(key)
        first_feedback = None
        last_figure, last_status = before["figure"], before["status"]
        last_change = last_any_change = 0.0
        statuses = [before["status"]]
        figure_changes: list[float] = []
        deadline = start + timeout_s
        while True:
            state = self.panel_state(marker)
            now = time.perf_counter() - start
            if state["status"] != last_status or state["figure"] != last_figure:
                if first_feedback is None:
                    first_feedback = now
                last_any_change = now
                if state["figure"] != last_figure:
                    last_change = now
                    figure_changes.append(now)
                last_figure, last_status = state["figure"], state["status"]
                if state["status"] not in statuses:
                    statuses.append(state["status"])
            settled = (state["figure"] is not None and state["figure"] != before["figure"]
                       and not state["busy"] and now - last_any_change >= settle_s
                       and self.kernel_state().get("status") == "idle")
            unmoved = (now >= UNMOVED_AFTER_S and first_feedback is None
                       and state["readouts"].get(label) == before["readouts"].get(label))
            failed = (PANEL_ERROR.search(state["status"] or "") is not None
                      and not state["busy"] and now - last_any_change >= settle_s)
            if settled or unmoved or failed:  # unmoved: at the end of its range
                break
            if time.perf_counter() > deadline:
                self.screenshot(f"timeout_{Path(self.path).stem}_{key}")
                raise TimeoutError(f"{self.path}: panel of {marker!r} did not settle within "
                                   f"{timeout_s:.0f} s after {key} on {label!r} (last state "
                                   f"{state})")
            time.sleep(POLL_S)
        return SliderMove(lesson=self.path, slider=label, key=key,
                          value_before=before["readouts"].get(label),
                          value_after=state["readouts"].get(label),
                          first_feedback_s=first_feedback, final_s=last_change,
                          figure_before=before["figure"], figure_after=state["figure"],
                          statuses=tuple(statuses), figure_changes_s=tuple(figure_changes))

    def save(self, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """Press Ctrl+S in the notebook; wait until saved; return the notebook read from disk."""
        self.page.locator(".jp-Notebook .jp-Cell").first.click()
        self.page.keyboard.press("Control+s")
        self._wait(lambda: self.kernel_state().get("dirty") is False, timeout_s=timeout_s,
                   what="notebook saved (not dirty)")
        return json.loads((self.server.root_dir / self.path).read_text())

    def reload(self, *, width: int = 1280, height: int = 1000, timeout_s: float = 180.0) -> None:
        """Reload the page (at this viewport size) and wait until every widget has loaded."""
        self.page.set_viewport_size({"width": width, "height": height})
        self.page.reload(timeout=timeout_s * 1000)
        self.wait_until_ready(timeout_s=timeout_s)
        self._wait(lambda: self._call("loadingWidgets") == 0, timeout_s=timeout_s,
                   what="widgets loaded after reload")

    # -- pictures -----------------------------------------------------------------------------
    def screenshot(self, name: str) -> Path:
        """Screenshot of the viewport as ``<screenshots>/<name>.png``."""
        path = self.screenshots / f"{name}.png"
        try:
            self.page.screenshot(path=str(path))
        except Exception:  # a failed picture must not hide the failure being reported
            pass
        return path

    def screenshot_panel(self, marker: str, name: str) -> Path:
        """Screenshot of the panel of ``marker`` only."""
        path = self.screenshots / f"{name}.png"
        if self.page.evaluate("(args) => window.__edutoolsTest.markPanel(...args)",
                              [self.path, marker, PANEL_ID]):
            self.page.locator(f"#{PANEL_ID}").screenshot(path=str(path))
        return path
