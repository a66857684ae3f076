"""Insert or refresh each lesson's Binder/Colab badges and its Colab setup cell.

``python -m tests.update_lesson_headers`` rewrites ``lessons/NN_*.ipynb`` in place:

* the first markdown cell gets one badge line (Binder and Colab, from ``[tool.edutools]`` in
  ``pyproject.toml``) right under its title; badge lines already there are replaced;
* the code cell tagged ``colab-setup`` (``tests/colab_cell.py``) is put right after the
  ``parameters`` cell, replacing any earlier copy.

Running it twice changes nothing the second time. ``--check`` only reports which lessons are out
of date (exit status 1 if any), ``--print-readme`` prints the README's lesson badges.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from tests.badges import ROOT, CourseRepository, badge_urls, course_repository
from tests.colab_cell import TAG, cell_source

LESSONS = ROOT / "lessons"


def _with_badges(markdown: str, badges: str) -> str:
    """``markdown`` with its badge lines replaced by ``badges`` under the first heading."""
    lines = [line for line in markdown.splitlines() if not badge_urls(line)]
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("#")), 0)
    # One blank line around the badges; drop the blank lines that removed badges left behind.
    rest = lines[at:]
    while rest and not rest[0].strip():
        rest.pop(0)
    head = lines[:at]
    return "\n".join([*head, *([""] if head else []), badges, "", *rest]).rstrip("\n")


def _setup_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [TAG]})
    cell["id"] = TAG
    return cell


def update_notebook(notebook: nbformat.NotebookNode, lesson: str,
                    repo: CourseRepository) -> nbformat.NotebookNode:
    """Return ``notebook`` with the badges and the Colab setup cell of ``lesson`` refreshed.

    Raises:
        ValueError: the notebook has no markdown cell or no code cell tagged ``parameters``.
    """
    cells = [cell for cell in notebook.cells
             if TAG not in cell.get("metadata", {}).get("tags", [])]
    first_markdown = next((cell for cell in cells if cell.cell_type == "markdown"), None)
    if first_markdown is None:
        raise ValueError(f"lesson={lesson!r} has no markdown cell for the badges")
    first_markdown.source = _with_badges(first_markdown.source, repo.badges(lesson))
    parameters = next((i for i, cell in enumerate(cells) if cell.cell_type == "code"
                       and "parameters" in cell.get("metadata", {}).get("tags", [])), None)
    if parameters is None:
        raise ValueError(f"lesson={lesson!r} has no code cell tagged 'parameters'")
    cells.insert(parameters + 1, _setup_cell(cell_source(repo)))
    notebook.cells = cells
    return notebook


def update_lesson(path: Path, repo: CourseRepository, *, write: bool = True) -> bool:
    """Refresh the lesson at ``path``; whether it changed (written only if ``write``)."""
    before = path.read_text()
    notebook = update_notebook(nbformat.reads(before, as_version=4), path.name, repo)
    nbformat.validate(notebook)
    after = nbformat.writes(notebook) + "\n"
    if after == before:
        return False
    if write:
        path.write_text(after)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.update_lesson_headers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a lesson is out of date")
    parser.add_argument("--print-readme", action="store_true",
                        help="print each lesson's README badge instead")
    parser.add_argument("lessons", nargs="*", type=Path,
                        help="notebooks to update (default: every lessons/NN_*.ipynb)")
    args = parser.parse_args(argv)
    repo = course_repository()
    paths = args.lessons or sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
    if args.print_readme:
        for path in paths:
            print(f"| {repo.binder_badge(path.name)} {repo.colab_badge(path.name)} | "
                  f"[`{path.name}`](lessons/{path.name}) |")
        return 0
    stale = [path.name for path in paths if update_lesson(path, repo, write=not args.check)]
    verb = "out of date" if args.check else "updated"
    print(f"{len(stale)} of {len(paths)} lessons {verb}: {', '.join(stale) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
