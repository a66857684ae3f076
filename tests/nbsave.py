"""pytest plugin: keep each lesson as the notebook suite executed it, for the course website.

Loaded by ``python -m tests`` (``-p tests.nbsave``). nbval runs a lesson cell by cell and keeps
each cell's outputs (``item.test_outputs``) but writes nothing; this plugin puts them back into the
prepared notebook and, once every cell of a lesson has passed, writes it to
``build/executed/<mode>/`` (mode ``fast`` or ``full``, from ``EDUTOOLS_LESSON_MODE``), stamped with
the digest of the committed lesson it came from. The website build (``python -m docs.build``)
reuses such a notebook while its lesson is unchanged, so CI executes every lesson once, not twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat

from tests.executed import EXECUTED, stamp

_results: dict[Path, list[bool]] = {}


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """The website test last: it builds the site from the lessons this run executes."""
    items.sort(key=lambda item: item.get_closest_marker("site") is not None)


def pytest_runtest_makereport(item: Any, call: Any) -> None:
    if call.when != "call" or not hasattr(item, "test_outputs") or not hasattr(item, "cell"):
        return
    notebook_path = Path(str(item.parent.path))
    passed = call.excinfo is None
    _results.setdefault(notebook_path, []).append(passed)
    if passed and item.test_outputs is not None:
        count = len(_results[notebook_path])
        item.cell.outputs = [_plain(output, count) for output in item.test_outputs]
        item.cell.execution_count = count


def _plain(output: Any, count: int) -> Any:
    """nbval's record of an output as an nbformat output."""
    output = nbformat.from_dict(dict(output))
    if output.get("output_type") == "execute_result":
        output["execution_count"] = count
    return output


def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    if not hasattr(item, "test_outputs") or not hasattr(item, "cell"):
        return
    if nextitem is not None and getattr(nextitem, "parent", None) is item.parent:
        return  # more cells of this lesson to come
    notebook_path = Path(str(item.parent.path))
    results = _results.pop(notebook_path, [])
    mode = os.environ.get("EDUTOOLS_LESSON_MODE", "fast")
    target = EXECUTED / mode / notebook_path.name
    target.unlink(missing_ok=True)  # a stale or partial copy must not be reused
    code_cells = [cell for cell in item.parent.nb.cells if cell.cell_type == "code"]
    if results and all(results) and len(results) == len(code_cells):
        notebook = item.parent.nb
        stamp(notebook, lesson_name=notebook_path.name, mode=mode)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
