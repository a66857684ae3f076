"""Timings of the browser tests: ``build/browser_report.{json,md}`` and a table for the terminal.

The tests add rows as they go (:func:`record_run_all`, :func:`record_slider`); each call rewrites
both files, so a failing test still leaves what it measured. :func:`markdown_lines` gives the
table for ``tests/nbreport.py`` or the pytest terminal summary (``tests/browser/conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.browser.lab import ROOT
from tests.browser.notebook_page import SliderMove

BUILD = ROOT / "build"
SCREENSHOTS = BUILD / "screenshots"
_run_all: list[dict[str, Any]] = []
_sliders: list[dict[str, Any]] = []
_screenshots: list[str] = []
_binder: dict[str, Any] = {}


def record_run_all(lesson: str, seconds: float, *, what: str = "Run All Cells") -> None:
    """Store how long running ``lesson`` took (``what``: which cells), in seconds."""
    _run_all.append({"lesson": lesson, "what": what, "seconds": round(seconds, 2)})
    write()


def record_slider(move: SliderMove, revisit: SliderMove | None) -> None:
    """Store a slider's move (first feedback, final figure) and its way back (revisit)."""
    _sliders.append({
        "lesson": move.lesson, "slider": move.slider,
        "values": f"{move.value_before} → {move.value_after}",
        "first_feedback_s": None if move.first_feedback_s is None
        else round(move.first_feedback_s, 2),
        "final_figure_s": round(move.final_s, 2),
        "figure_updates": len(move.figure_changes_s),
        "longest_redraw_gap_s": None if move.longest_redraw_gap_s is None
        else round(move.longest_redraw_gap_s, 2),
        "revisit_s": None if revisit is None else round(revisit.final_s, 2),
        "revisit_same_figure": None if revisit is None
        else revisit.figure_after == move.figure_before,
        "statuses": list(move.statuses) + ([] if revisit is None else list(revisit.statuses)),
    })
    write()


def record_screenshot(path: Path) -> None:
    """Remember a screenshot's path (relative to the repository when inside it)."""
    try:
        shown = str(path.resolve().relative_to(ROOT))
    except ValueError:
        shown = str(path)
    if path.exists() and shown not in _screenshots:
        _screenshots.append(shown)
        write()


def record_binder(result: dict[str, Any], build: Path = BUILD) -> None:
    """Store the Binder environment's build and run times in ``build/binder_report.json``."""
    _binder.clear()
    _binder.update(result)
    build.mkdir(parents=True, exist_ok=True)
    (build / "binder_report.json").write_text(json.dumps(result, indent=2))


def has_rows() -> bool:
    """Whether any browser or Binder timing was recorded in this process."""
    return bool(_run_all or _sliders or _binder)


def binder_lines() -> list[str]:
    """The Binder build as Markdown lines (empty if it did not run)."""
    if not _binder:
        return []
    return [f"Binder environment (Python {_binder['python']}): build {_binder['build_s']:.0f} s "
            f"(venv {_binder['venv_s']:.0f} s, pip install {_binder['pip_install_s']:.0f} s, "
            f"postBuild {_binder['postBuild_s']:.0f} s); lesson 00 FAST ran in "
            f"{_binder['lesson_00_fast_run_s']:.0f} s"]


def markdown_lines() -> list[str]:
    """The report as Markdown: Run All times, then one row per slider."""
    lines: list[str] = []
    if _run_all:
        lines += ["| lesson | cells run | wall time (s) |", "|---|---|---:|"]
        lines += [f"| {row['lesson']} | {row['what']} | {row['seconds']:.1f} |"
                  for row in _run_all]
    if _sliders:
        lines += ["", "| lesson | slider | values | first feedback (s) | final figure (s) | "
                  "figure updates | longest wait for a redraw (s) | revisit (s) | "
                  "same figure on revisit |", "|---|---|---|---:|---:|---:|---:|---:|:---:|"]

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    for row in _sliders:
        same = {None: "—", True: "yes", False: "NO"}[row["revisit_same_figure"]]
        lines.append(f"| {row['lesson']} | {row['slider']} | {row['values']} | "
                     f"{number(row['first_feedback_s'])} | {number(row['final_figure_s'])} | "
                     f"{row['figure_updates']} | {number(row['longest_redraw_gap_s'])} | "
                     f"{number(row['revisit_s'])} | {same} |")
    if _screenshots:
        lines += ["", "Screenshots: " + ", ".join(f"`{p}`" for p in _screenshots)]
    if _binder:
        lines += ["", *binder_lines()]
    return lines


def write(build: Path = BUILD) -> Path:
    """Write ``browser_report.json`` and ``.md`` into ``build``; return the Markdown path."""
    build.mkdir(parents=True, exist_ok=True)
    (build / "browser_report.json").write_text(json.dumps(
        {"run_all": _run_all, "sliders": _sliders, "screenshots": _screenshots}, indent=2,
        ensure_ascii=False))
    markdown = build / "browser_report.md"
    markdown.write_text("\n".join(markdown_lines()) + "\n")
    return markdown
