"""Learners' own copies of the lessons: ``python -m edutools.face.workspace``.

The notebooks in ``lessons/`` are the course's source and are committed without outputs. A
learner who runs them there saves outputs and edits into those files, and the next ``git pull`` of
a course update conflicts. So the README's command (a) first copies every lesson into
``my_lessons/`` (ignored by git) and opens the copy: the learner's work lives there, ``lessons/``
stays clean, and ``git pull`` always applies.

Each copy remembers (in its metadata) the hash of the lesson it was copied from. Running the
command again copies lessons that are new, leaves the learner's copies alone, and lists the copies
whose lesson has changed since. ``--refresh NN`` (an exact lesson number or file name) replaces
such a copy by the current lesson; the learner's copy is first moved aside to
``NN_name.ipynb.<date-time>.bak`` (a name never used before, so every earlier copy survives), and a
copy that is already of the current lesson is left as it is. Every check runs before anything is
changed: a problem (``my_lessons`` being a file, a folder with a lesson's name, a file that cannot
be written) is reported in one line and leaves no partial copy or temporary file behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edutools.face.lab_settings import install_lab_settings

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE_NAME = "my_lessons"
_ORIGIN_KEY = "edutools_origin"


class WorkspaceError(OSError):
    """The workspace cannot be prepared as asked; the message says why in one line."""


@dataclass(frozen=True)
class WorkspaceReport:
    """What :func:`prepare_workspace` did: lesson file names copied, kept and out of date; the
    learner's copies moved aside by a refresh (their new names); refreshes skipped because the
    copy was already of the current lesson."""

    folder: Path
    copied: tuple[str, ...]
    kept: tuple[str, ...]
    outdated: tuple[str, ...]
    backups: tuple[str, ...] = ()
    current: tuple[str, ...] = ()


def lesson_digest(path: Path) -> str:
    """SHA-256 (first 16 hex digits) of a committed lesson's cell sources: what a copy is of."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    sources = ["".join(cell.get("source", [])) for cell in notebook.get("cells", [])]
    return hashlib.sha256("\x1e".join(sources).encode()).hexdigest()[:16]


def _copy_text(lesson: Path) -> str:
    notebook = json.loads(lesson.read_text(encoding="utf-8"))
    notebook.setdefault("metadata", {})[_ORIGIN_KEY] = {"lesson": lesson.name,
                                                       "digest": lesson_digest(lesson)}
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _origin_digest(copy: Path) -> str | None:
    """The digest of the lesson ``copy`` was made from, or None (not ours, or unreadable)."""
    try:
        return json.loads(copy.read_text(encoding="utf-8"))["metadata"][_ORIGIN_KEY]["digest"]
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _backup_name(target: Path) -> Path:
    """``<name>.<date-time>.bak`` beside ``target``, with a counter if that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = target.with_name(f"{target.name}.{stamp}.bak")
    counter = 2
    while candidate.exists():
        candidate = target.with_name(f"{target.name}.{stamp}-{counter}.bak")
        counter += 1
    return candidate


def _install(text: str, target: Path, *, backup: Path | None) -> None:
    """Write ``text`` to ``target`` atomically, first moving an existing ``target`` to
    ``backup``; on failure the learner's file is put back and no temporary file is left."""
    temporary = target.with_name(f".{target.name}.tmp")
    moved = False
    try:
        temporary.write_text(text, encoding="utf-8")
        if backup is not None:
            os.rename(target, backup)  # a rename: the learner's file itself, never rewritten
            moved = True
        os.replace(temporary, target)
    except OSError as error:
        if moved:
            os.rename(backup, target)
        raise WorkspaceError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)


def _refresh_matches(refresh: Sequence[str], sources: Sequence[Path]) -> set[str]:
    """The lesson file names ``refresh`` names exactly (number, file name or name without
    ``.ipynb``); ``ValueError`` listing the valid names for an entry that names none."""
    names: dict[str, str] = {}
    for source in sources:
        for alias in (source.name[:2], source.name, source.stem):
            names[alias] = source.name
    wanted = set()
    for entry in refresh:
        if not isinstance(entry, str) or entry.strip() not in names:
            raise ValueError(
                f"refresh={entry!r} names no lesson exactly; use a lesson number "
                f"({', '.join(s.name[:2] for s in sources)}) or a file name "
                f"({', '.join(s.name for s in sources)})")
        wanted.add(names[entry.strip()])
    return wanted


def _check_folder(folder: Path, sources: Sequence[Path]) -> None:
    if folder.exists() and not folder.is_dir():
        raise WorkspaceError(f"{folder} is a file, not a folder: move or rename it, then run "
                             "the command again (your lessons are copied into a folder there)")
    for source in sources:
        target = folder / source.name
        if target.exists() and not target.is_file():
            raise WorkspaceError(f"{target} is a folder, not a notebook: move or rename it, "
                                 "then run the command again")


def prepare_workspace(*, lessons: Path = ROOT / "lessons", folder: Path | None = None,
                      refresh: Sequence[str] = ()) -> WorkspaceReport:
    """Copy every lesson into ``folder`` (default ``my_lessons/`` beside ``lessons/``).

    Args:
        lessons: the folder of the course's lessons (``NN_name.ipynb``).
        folder: where the learner's copies go.
        refresh: exact lesson numbers (``"03"``) or file names whose copy is replaced by the
            current lesson, unless it already is of it; the old copy is moved to a new
            ``<name>.<date-time>.bak``.

    Raises:
        FileNotFoundError: ``lessons`` holds no lesson.
        ValueError: a ``refresh`` entry names no lesson exactly (the message lists them).
        WorkspaceError: ``folder`` is a file, a lesson's name is taken by a folder (both found
            before anything changes), or a file cannot be written (that lesson's copy is left
            as it was).
    """
    sources = sorted(lessons.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no lessons (NN_name.ipynb) in {lessons}")
    folder = lessons.parent / WORKSPACE_NAME if folder is None else Path(folder)
    wanted = _refresh_matches(refresh, sources)
    _check_folder(folder, sources)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WorkspaceError(f"cannot create {folder}: {error.strerror or error}") from None
    copied, kept, outdated, backups, current = [], [], [], [], []
    for lesson in sources:
        target = folder / lesson.name
        exists = target.exists()
        digest = _origin_digest(target) if exists else None
        if not exists:
            _install(_copy_text(lesson), target, backup=None)
            copied.append(lesson.name)
        elif lesson.name in wanted and digest != lesson_digest(lesson):
            backup = _backup_name(target)
            _install(_copy_text(lesson), target, backup=backup)
            copied.append(lesson.name)
            backups.append(backup.name)
        else:
            kept.append(lesson.name)
            if digest != lesson_digest(lesson):
                outdated.append(lesson.name)  # not one of our copies, or unreadable: say so
            elif lesson.name in wanted:
                current.append(lesson.name)
    return WorkspaceReport(folder=folder, copied=tuple(copied), kept=tuple(kept),
                           outdated=tuple(outdated), backups=tuple(backups),
                           current=tuple(current))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m edutools.face.workspace [--refresh NN ...]``."""
    parser = argparse.ArgumentParser(prog="python -m edutools.face.workspace",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="append", default=[], metavar="NN",
                        help="replace your copy of lesson NN by the course's current version "
                             "(your copy is moved to NN_name.ipynb.<date-time>.bak)")
    args = parser.parse_args(argv)
    try:
        report = prepare_workspace(refresh=args.refresh)
    except ValueError as error:
        parser.error(str(error))
    except WorkspaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    where = report.folder.relative_to(Path.cwd()) if report.folder.is_relative_to(Path.cwd()) \
        else report.folder
    if report.copied:
        print(f"copied into {where}/: {', '.join(report.copied)}")
    for name in report.backups:
        print(f"your previous copy is kept as {where}/{name}")
    for name in report.current:
        print(f"{name} is already of the current lesson: kept as it is, with your answers "
              "(delete it and run this again to start that lesson afresh)")
    for name in report.outdated:
        print(f"the course has updated {name} since you copied it: "
              f"python -m edutools.face.workspace --refresh {name[:2]} gets the new version")
    print(f"your lessons are in {where}/ (the course's own copies stay in lessons/)")
    install_lab_settings()  # no news prompt over the lesson in this environment's JupyterLab
    return 0


if __name__ == "__main__":
    sys.exit(main())
