"""Binder and Colab badges of the lessons, made from the course's one repository setting.

The setting is ``[tool.edutools]`` in ``pyproject.toml``::

    repository = "owner/name"   # the course's GitHub repository
    branch = "main"             # its default branch (Colab opens lessons from it)

Binder badges point at ``HEAD`` (the default branch, what Binder builds); Colab badges and the
Colab setup cell (``tests/colab_cell.py``) use ``branch``. ``python -m tests.badges`` prints the
badges of every lesson; ``python -m tests.update_lesson_headers`` writes them into the lessons.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9_./-]+$")
BINDER_LOGO = "https://mybinder.org/badge_logo.svg"
COLAB_LOGO = "https://colab.research.google.com/assets/colab-badge.svg"
# Any badge link to Binder or Colab, wherever it points: what the tests compare to the setting.
BADGE_URL = re.compile(r"https://(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github)"
                       r"/[^\s)\"'<>]+")


@dataclass(frozen=True)
class CourseRepository:
    """Where the course lives on GitHub.

    Attributes:
        repository: ``owner/name`` on GitHub.
        branch: the default branch, which Colab badges and the Colab setup cell use.
    """

    repository: str
    branch: str

    @property
    def name(self) -> str:
        """The repository's name (its folder after ``git clone``)."""
        return self.repository.split("/")[1]

    @property
    def pages_url(self) -> str:
        """The course website's address on GitHub Pages (``https://owner.github.io/name/``)."""
        owner, name = self.repository.split("/")
        return f"https://{owner.lower()}.github.io/{name}/"

    def file_url(self, path: str) -> str:
        """GitHub page of ``path`` (a file or folder of the repository) on the default branch."""
        return f"https://github.com/{self.repository}/blob/{self.branch}/{path}"

    @property
    def clone_url(self) -> str:
        """HTTPS URL for ``git clone``."""
        return f"https://github.com/{self.repository}"

    def binder_url(self, lesson: str) -> str:
        """Binder link opening ``lessons/<lesson>`` in JupyterLab."""
        return (f"https://mybinder.org/v2/gh/{self.repository}/HEAD"
                f"?labpath={quote(f'lessons/{lesson}', safe='')}")

    def colab_url(self, lesson: str) -> str:
        """Colab link opening ``lessons/<lesson>`` from the default branch."""
        return f"https://colab.research.google.com/github/{self.repository}/blob/{self.branch}/" \
               f"lessons/{quote(lesson)}"

    def binder_badge(self, lesson: str) -> str:
        """Markdown badge that launches ``lesson`` on Binder."""
        return f"[![Binder]({BINDER_LOGO})]({self.binder_url(lesson)})"

    def colab_badge(self, lesson: str) -> str:
        """Markdown badge that opens ``lesson`` in Colab."""
        return f"[![Open In Colab]({COLAB_LOGO})]({self.colab_url(lesson)})"

    def badges(self, lesson: str) -> str:
        """Both badges on one line, as the first markdown cell of a lesson shows them."""
        return f"{self.binder_badge(lesson)} {self.colab_badge(lesson)}"

    def owns(self, url: str) -> bool:
        """Whether a Binder/Colab ``url`` points at this repository (and branch, for Colab)."""
        return (url.startswith(f"https://mybinder.org/v2/gh/{self.repository}/HEAD?")
                or url.startswith(f"https://colab.research.google.com/github/{self.repository}"
                                  f"/blob/{self.branch}/"))


def course_repository(pyproject: Path = PYPROJECT) -> CourseRepository:
    """Read ``[tool.edutools]`` ``repository`` and ``branch`` from ``pyproject``.

    Raises:
        ValueError: the table or a key is missing, or a value is not of the GitHub form.
    """
    with open(pyproject, "rb") as file:
        table = tomllib.load(file).get("tool", {}).get("edutools", {})
    repository, branch = table.get("repository"), table.get("branch")
    if not isinstance(repository, str) or not _REPOSITORY.match(repository):
        raise ValueError(f"[tool.edutools] repository in {pyproject} must be 'owner/name', "
                         f"got repository={repository!r}")
    if not isinstance(branch, str) or not _BRANCH.match(branch):
        raise ValueError(f"[tool.edutools] branch in {pyproject} must be a branch name, "
                         f"got branch={branch!r}")
    return CourseRepository(repository=repository, branch=branch)


def badge_urls(text: str) -> list[str]:
    """Every Binder or Colab link in ``text`` (Markdown or HTML)."""
    return BADGE_URL.findall(text)


def main() -> int:
    """Print each lesson's badges (Markdown), for the README or a lesson's header."""
    repo = course_repository()
    for lesson in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        print(f"{lesson.name}: {repo.badges(lesson.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
