"""The Colab setup cell of every lesson: on Colab only, fetch the course and turn widgets on.

A lesson opened from its Colab badge arrives alone, without ``edutools`` or ``data/``; the cell
clones the repository (``[tool.edutools]`` in ``pyproject.toml``, see ``tests/badges.py``) next
to the notebook's working folder, installs it editable with the pinned ``ipywidgets``, puts it on
``sys.path`` for the running kernel, and enables Colab's custom widget manager. Anywhere else
``google.colab`` is not imported, so the cell does nothing. It must run before edutools exists,
so it is plain Python with no imports beyond the standard library and no IPython ``!`` magics
(which the lesson checks cannot parse inside an ``if``).

:func:`cell_source` renders it; ``tests/update_lesson_headers.py`` puts it right after each
lesson's parameters cell (the parameters cell stays the first code cell, as papermill and the
house rules want, and it only assigns constants, so nothing runs before the setup).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.badges import ROOT, CourseRepository, course_repository

TAG = "colab-setup"  # cell tag by which update_lesson_headers finds and refreshes the cell

TEMPLATE = '''\
# On Google Colab only: fetch the course (edutools and its data) and turn widgets on.
# Anywhere else this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    COURSE_DIR = os.path.abspath("{name}")
    if not os.path.isdir(COURSE_DIR):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}",
                        "{clone_url}", COURSE_DIR], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", COURSE_DIR,
                    "{ipywidgets}"], check=True)
    if COURSE_DIR not in sys.path:
        sys.path.insert(0, COURSE_DIR)
    from google.colab import output

    output.enable_custom_widget_manager()
'''


def pinned(package: str, requirements: Path = ROOT / "requirements.txt") -> str:
    """The ``package==version`` line of ``requirements`` (the course pins exact versions).

    Raises:
        ValueError: ``package`` has no ``==`` pin in ``requirements``.
    """
    pattern = re.compile(rf"^{re.escape(package)}==\S+", re.IGNORECASE)
    for line in requirements.read_text().splitlines():
        match = pattern.match(line.strip())
        if match:
            return match.group(0)
    raise ValueError(f"package={package!r} has no '==' pin in {requirements}")


def cell_source(repo: CourseRepository | None = None) -> str:
    """Source of the Colab setup cell for ``repo`` (default: the pyproject setting)."""
    repo = repo or course_repository()
    return TEMPLATE.format(name=repo.name, branch=repo.branch, clone_url=repo.clone_url,
                           ipywidgets=pinned("ipywidgets")).rstrip("\n")


if __name__ == "__main__":
    sys.stdout.write(cell_source() + "\n")
