"""The lists that write themselves: every lesson panel is declared once, next to its figure.

The precompute registry, the partial-results test and the browser benchmark are built from
:func:`edutools.face.panels.declared_panels`; these tests fail when a lesson's ``slider_panel``
has no declaration (it would silently miss all three), when a declaration names a run no lesson
uses, or when what is read from the lessons would not find the panel.
"""

import importlib
import inspect
import re

import pytest

from edutools.face import exercises
from edutools.face.panels import LESSONS_DIR, code_cells, declared_panels, panel_calls
from edutools.ground.canonical import canonical_float

LESSONS = sorted(path.name[:2] for path in LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
DECLARED = declared_panels()


def test_the_lessons_are_found():
    assert len(LESSONS) >= 8 and LESSONS[0] == "00"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_panel_of_the_lesson_is_declared_once(lesson):
    calls = panel_calls(lesson)
    declared = [panel for panel in DECLARED if panel.lesson == lesson]
    for call in calls:
        matching = [panel.run for panel in declared if call.matches(panel)]
        assert len(matching) == 1, (
            f"lesson {lesson}, cell {call.cell}: slider_panel({call.run}, ...) has "
            f"{len(matching)} declarations; add a Panel to PANELS in "
            f"edutools/face/plots/lesson{lesson}.py")
    for panel in declared:
        assert sum(call.matches(panel) for call in calls) == 1, (
            f"lesson {lesson} declares panel {panel.run!r}, but the lesson has no (or more than "
            f"one) slider_panel({panel.function}, ...)")


@pytest.mark.parametrize("panel", DECLARED, ids=[f"{p.lesson}-{p.function}" for p in DECLARED])
def test_a_declaration_names_real_functions_and_settings(panel):
    run = panel.run_function()
    accepted = inspect.signature(run).parameters
    assert set(panel.sample) | set(panel.quick or {}) <= set(accepted), panel.run
    assert callable(panel.show)
    if panel.grid is not None:
        grid = panel.slider_grid()
        assert set(grid) <= set(accepted), panel.run
        for name, values in grid.items():  # a slider value means the run it names
            floats = [value for value in values if isinstance(value, float)]
            assert [canonical_float(v) for v in floats] == floats, (panel.run, name)


@pytest.mark.parametrize("lesson", LESSONS)
def test_what_is_read_from_the_lesson_finds_the_panel(lesson):
    cells = code_cells(LESSONS_DIR / next(LESSONS_DIR.glob(f"{lesson}_*.ipynb")).name)
    for call in panel_calls(lesson):
        first = next(index for index, source in cells if call.marker in source)
        assert first == call.cell, f"lesson {lesson}: {call.marker!r} is in an earlier cell"
        assert call.labels and "?" not in call.labels, (lesson, call.run, call.labels)


def test_precomputed_panels_read_every_fixed_parameter_from_the_lesson():
    for panel in DECLARED:
        if panel.grid is not None:
            (call,) = [call for call in panel_calls(panel.lesson) if call.matches(panel)]
            assert call.unresolved == () and "seed" in call.fixed, (panel.run, call)


def test_the_exercises_package_exports_every_lessons_checks():
    modules = exercises.LESSON_MODULES
    assert modules and set(modules) <= set(LESSONS), f"exercise modules of no lesson: {modules}"
    for name in modules.values():
        module = importlib.import_module(name)
        assert module.__all__, name
        for public in module.__all__:
            assert getattr(exercises, public) is getattr(module, public)
            assert public in exercises.__all__
    # and every name a lesson imports from the package is there
    for lesson in LESSONS:
        path = next(LESSONS_DIR.glob(f"{lesson}_*.ipynb"))
        for _, source in code_cells(path):
            for names in re.findall(r"from edutools\.face\.exercises import ([\w, ]+)", source):
                for name in names.split(","):
                    assert hasattr(exercises, name.strip()), (lesson, name)
