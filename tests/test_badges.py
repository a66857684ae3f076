"""The course's Binder/Colab badges and Colab setup cell all come from one setting.

``[tool.edutools]`` in pyproject.toml names the repository (``tests/badges.py``);
``python -m tests.update_lesson_headers`` writes the badges and the Colab cell into the lessons.
``test_lesson_header_is_up_to_date`` fails for a lesson until that script has been run on it.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest

from tests.badges import ROOT, CourseRepository, badge_urls, course_repository
from tests.colab_cell import TAG, cell_source
from tests.update_lesson_headers import update_lesson, update_notebook

LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
OTHER = CourseRepository(repository="someone-else/fork", branch="dev")


def first_markdown(notebook: nbformat.NotebookNode) -> str:
    return next(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def test_setting_is_read_from_pyproject():
    repo = course_repository()
    assert repo.repository.count("/") == 1 and repo.branch
    assert repo.clone_url == f"https://github.com/{repo.repository}"


@pytest.mark.parametrize(("table", "bad"), [
    ('repository = "no-slash"\nbranch = "main"', "repository"),
    ('repository = "a/b"\nbranch = "has space"', "branch"),
    ('branch = "main"', "repository"),
])
def test_bad_setting_is_rejected_by_name(tmp_path, table, bad):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.edutools]\n{table}\n")
    with pytest.raises(ValueError, match=bad):
        course_repository(pyproject)


def test_badges_point_at_the_repository_and_lesson():
    binder, colab = badge_urls(OTHER.badges("03_momentum.ipynb"))
    assert binder == ("https://mybinder.org/v2/gh/someone-else/fork/HEAD"
                      "?labpath=lessons%2F03_momentum.ipynb")
    assert colab == ("https://colab.research.google.com/github/someone-else/fork/blob/dev/"
                     "lessons/03_momentum.ipynb")
    assert OTHER.owns(binder) and OTHER.owns(colab)
    assert not course_repository().owns(binder) and not course_repository().owns(colab)


def test_readme_badges_use_the_setting():
    readme = (ROOT / "README.md").read_text()
    repo = course_repository()
    urls = badge_urls(readme)
    assert urls, "README has no Binder/Colab badge"
    foreign = [url for url in urls if not repo.owns(url)]
    assert not foreign, f"README badges not pointing at {repo}: {foreign}"
    for path in LESSONS:
        assert repo.binder_url(path.name) in urls, f"README lacks the Binder badge of {path.name}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_header_is_up_to_date(path):
    """Badges under the title and the Colab cell after the parameters cell, from the setting.

    Fails until ``python -m tests.update_lesson_headers`` has been run on the lesson.
    """
    repo = course_repository()
    notebook = nbformat.read(path, as_version=4)
    urls = badge_urls(first_markdown(notebook))
    fix = "run `python -m tests.update_lesson_headers`"
    assert repo.binder_url(path.name) in urls and repo.colab_url(path.name) in urls, \
        f"{path.name}: the first markdown cell lacks its Binder/Colab badges; {fix}"
    assert all(repo.owns(url) for url in urls), f"{path.name}: badges {urls} ≠ {repo}; {fix}"
    assert not update_lesson(path, repo, write=False), \
        f"{path.name}: the badges or the Colab setup cell are out of date; {fix}"


def test_update_inserts_badges_and_colab_cell_idempotently(tmp_path):
    copy = tmp_path / LESSONS[0].name
    shutil.copy(LESSONS[0], copy)
    original = nbformat.read(copy, as_version=4)
    # Cells other than the setup cell (the lesson may already have one).
    num_cells = sum(TAG not in c.metadata.get("tags", []) for c in original.cells)

    assert update_lesson(copy, OTHER)
    updated = nbformat.read(copy, as_version=4)
    nbformat.validate(updated)
    markdown = first_markdown(updated).splitlines()
    assert markdown[0] == first_markdown(original).splitlines()[0]  # the title stays first
    assert OTHER.badges(copy.name) in markdown[:4]
    code = [cell for cell in updated.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata["tags"]  # papermill and the house rules need it
    assert TAG in code[1].metadata["tags"] and code[1].source == cell_source(OTHER)
    assert not code[1].outputs and code[1].execution_count is None
    assert len(updated.cells) == num_cells + 1
    assert not update_lesson(copy, OTHER), "a second run must change nothing"

    # Another setting replaces the badges and the cell instead of adding more.
    repo = course_repository()
    assert update_lesson(copy, repo)
    again = nbformat.read(copy, as_version=4)
    urls = badge_urls(first_markdown(again))
    assert sorted(urls) == sorted([repo.binder_url(copy.name), repo.colab_url(copy.name)])
    assert sum(TAG in c.metadata.get("tags", []) for c in again.cells) == 1
    assert len(again.cells) == num_cells + 1


def test_update_refuses_a_notebook_without_parameters_cell():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"),
                                               nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="parameters"):
        update_notebook(notebook, "99_x.ipynb", OTHER)


def test_colab_cell_passes_ruff(tmp_path):
    import subprocess
    import sys

    cell = tmp_path / "colab_cell.py"
    cell.write_text(cell_source() + "\n")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                             str(ROOT / "pyproject.toml"), str(cell)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_badge_urls_finds_markdown_and_html_links():
    text = (f"see {OTHER.binder_badge('a.ipynb')} and "
            f"<a href=\"{OTHER.colab_url('a.ipynb')}\">colab</a>")
    assert badge_urls(text) == [OTHER.binder_url("a.ipynb"), OTHER.colab_url("a.ipynb")]
