"""House rules for the lesson notebooks, checked without running them."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def python_source(cell) -> str:
    # IPython magics and shell escapes are not Python; blank them before parsing.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in cell.source.splitlines())


def test_there_are_lessons_numbered_without_gaps():
    assert LESSONS, "no lessons found"
    names = [p.name for p in LESSONS]
    bad = [n for n in names if not NAME.match(n)]
    assert not bad, f"lesson files must be named NN_snake_case.ipynb: {bad}"
    numbers = [int(NAME.match(n).group(1)) for n in names]
    assert numbers == list(range(len(numbers))), f"lesson numbers have gaps: {numbers}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_notebook_is_valid_and_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, c in enumerate(notebook.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_first_code_cell_is_tagged_parameters_with_fast_and_seed(path):
    first = code_cells(path)[0]
    assert "parameters" in first.metadata.get("tags", []), \
        f"{path.name}: the first code cell must be tagged 'parameters'"
    assigned = {target.id for node in ast.parse(first.source).body
                if isinstance(node, ast.Assign) for target in node.targets
                if isinstance(target, ast.Name)}
    assert {"FAST", "SEED"} <= assigned, f"{path.name}: parameters cell assigns {assigned}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_checks_its_claims_with_asserts(path):
    asserts = sum(isinstance(node, ast.Assert)
                  for cell in code_cells(path)
                  for node in ast.walk(ast.parse(python_source(cell))))
    assert asserts >= 1, f"{path.name} asserts none of its claims"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_every_code_cell_parses(path):
    for index, cell in enumerate(code_cells(path)):
        try:
            ast.parse(python_source(cell))
        except SyntaxError as error:
            pytest.fail(f"{path.name} code cell {index}: {error}")


def test_readme_lists_every_lesson_with_a_binder_badge():
    readme = (ROOT / "README.md").read_text()
    for path in LESSONS:
        assert path.name in readme, f"README does not mention {path.name}"
        assert f"labpath=lessons%2F{path.name}" in readme, f"no Binder badge for {path.name}"


def test_code_is_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
