"""Learners' own copies of the lessons: ``python -m edutools.face.workspace``.

The notebooks in ``lessons/`` are the course's source and are committed without outputs. A
learner who runs them there saves outputs and edits into those files, and the next ``git pull`` of
a course update conflicts. So the README's command (a) first copies every lesson into
``my_lessons/`` (ignored by git) and opens the copy: the learner's work lives there, ``lessons/``
stays clean, and ``git pull`` always applies.

Each copy remembers (in its metadata) the hash of the lesson it was copied from. Running the
command again copies lessons that are new, leaves the learner's copies alone, and lists the copies
whose lesson has changed since; ``--refresh NN`` replaces such a copy (the old one is kept as
``NN_name.ipynb.bak``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edutools.face.lab_settings import install_lab_settings

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE_NAME = "my_lessons"
_ORIGIN_KEY = "edutools_origin"


@dataclass(frozen=True)
class WorkspaceReport:
    """What :func:`prepare_workspace` did: lesson file names copied, kept, and out of date."""

    folder: Path
    copied: tuple[str, ...]
    kept: tuple[str, ...]
    outdated: tuple[str, ...]


def lesson_digest(path: Path) -> str:
    """SHA-256 (first 16 hex digits) of a committed lesson's cell sources: what a copy is of."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    sources = ["".join(cell.get("source", [])) for cell in notebook.get("cells", [])]
    return hashlib.sha256("\x1e".join(sources).encode()).hexdigest()[:16]


def _copy(lesson: Path, target: Path) -> None:
    notebook = json.loads(lesson.read_text(encoding="utf-8"))
    notebook.setdefault("metadata", {})[_ORIGIN_KEY] = {"lesson": lesson.name,
                                                       "digest": lesson_digest(lesson)}
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    temporary = target.with_suffix(".ipynb.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)


def prepare_workspace(*, lessons: Path = ROOT / "lessons", folder: Path | None = None,
                      refresh: Sequence[str] = ()) -> WorkspaceReport:
    """Copy every lesson into ``folder`` (default ``my_lessons/`` beside ``lessons/``).

    Args:
        lessons: the folder of the course's lessons (``NN_name.ipynb``).
        folder: where the learner's copies go.
        refresh: lesson numbers (``"03"``) or file names whose copy is replaced by the current
            lesson; the old copy is kept as ``<name>.bak``.

    Raises:
        FileNotFoundError: ``lessons`` holds no lesson.
        ValueError: a ``refresh`` entry names no lesson.
    """
    sources = sorted(lessons.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no lessons (NN_name.ipynb) in {lessons}")
    folder = lessons.parent / WORKSPACE_NAME if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in refresh:
        if not any(s.name.startswith(entry) for s in sources):
            raise ValueError(f"refresh={entry!r} names no lesson in {lessons}")
    copied, kept, outdated = [], [], []
    for lesson in sources:
        target = folder / lesson.name
        wanted = any(lesson.name.startswith(entry) for entry in refresh)
        if target.exists() and wanted:
            shutil.copy2(target, target.with_name(target.name + ".bak"))
        if not target.exists() or wanted:
            _copy(lesson, target)
            copied.append(lesson.name)
            continue
        kept.append(lesson.name)
        try:
            origin = json.loads(target.read_text(encoding="utf-8"))["metadata"][_ORIGIN_KEY]
            if origin["digest"] != lesson_digest(lesson):
                outdated.append(lesson.name)
        except (KeyError, TypeError, ValueError):
            outdated.append(lesson.name)  # not one of our copies, or unreadable: say so
    return WorkspaceReport(folder=folder, copied=tuple(copied), kept=tuple(kept),
                           outdated=tuple(outdated))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m edutools.face.workspace [--refresh NN ...]``."""
    parser = argparse.ArgumentParser(prog="python -m edutools.face.workspace",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="append", default=[], metavar="NN",
                        help="replace your copy of lesson NN by the course's current version "
                             "(your old copy is kept as .bak)")
    args = parser.parse_args(argv)
    try:
        report = prepare_workspace(refresh=args.refresh)
    except ValueError as error:
        parser.error(str(error))
    where = report.folder.relative_to(Path.cwd()) if report.folder.is_relative_to(Path.cwd()) \
        else report.folder
    if report.copied:
        print(f"copied into {where}/: {', '.join(report.copied)}")
    for name in report.outdated:
        print(f"the course has updated {name} since you copied it: "
              f"python -m edutools.face.workspace --refresh {name[:2]} gets the new version")
    print(f"your lessons are in {where}/ (the course's own copies stay in lessons/)")
    install_lab_settings()  # no news prompt over the lesson in this environment's JupyterLab
    return 0


if __name__ == "__main__":
    sys.exit(main())
