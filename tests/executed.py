"""Executed copies of the lessons: where they are kept and whether one is still current.

The notebook suite (``tests/nbsave.py``) and the website build (``docs/build.py``) share them:
``build/executed/fast/`` and ``build/executed/full/``. Each copy carries, in its metadata, the
mode it ran in and the digest of the committed lesson it was made from, so a copy is reused only
while that lesson is unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
EXECUTED = ROOT / "build" / "executed"
_KEY = "edutools_executed"


def lesson_digest(lesson_name: str) -> str:
    """SHA-256 of the committed lesson ``lessons/<lesson_name>``."""
    return hashlib.sha256((LESSONS / lesson_name).read_bytes()).hexdigest()


def stamp(notebook: Any, *, lesson_name: str, mode: str) -> None:
    """Record in ``notebook``'s metadata which lesson (digest) and mode it was executed from."""
    notebook.metadata[_KEY] = {"mode": mode, "lesson_digest": lesson_digest(lesson_name)}


def current_copy(lesson_name: str, mode: str) -> Path | None:
    """The executed copy of ``lesson_name`` in ``mode`` if it exists and its lesson is unchanged."""
    path = EXECUTED / mode / lesson_name
    if not path.exists():
        return None
    try:
        record = nbformat.read(path, as_version=4).metadata.get(_KEY, {})
    except Exception:  # unreadable: not current
        return None
    if record.get("mode") == mode and record.get("lesson_digest") == lesson_digest(lesson_name):
        return path
    return None
