"""Learners' working copies keep the committed lessons clean and git pull free of conflicts."""

import json
import shutil
from pathlib import Path

import pytest

from edutools.face.workspace import ROOT, lesson_digest, main, prepare_workspace


@pytest.fixture
def course(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    for path in sorted((ROOT / "lessons").glob("0[01]_*.ipynb")):
        shutil.copy(path, lessons / path.name)
    return lessons


def test_first_run_copies_every_lesson_with_its_origin(course):
    report = prepare_workspace(lessons=course)
    assert report.folder == course.parent / "my_lessons"
    assert report.copied == tuple(sorted(p.name for p in course.glob("*.ipynb")))
    copy = json.loads((report.folder / report.copied[0]).read_text())
    assert copy["metadata"]["edutools_origin"]["digest"] == lesson_digest(course /
                                                                          report.copied[0])


def test_learners_work_is_kept_and_course_updates_are_reported(course):
    report = prepare_workspace(lessons=course)
    mine = report.folder / report.copied[0]
    notebook = json.loads(mine.read_text())
    notebook["cells"][0]["outputs"] = []
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["my notes"]})
    mine.write_text(json.dumps(notebook))
    lesson = course / report.copied[0]
    updated = json.loads(lesson.read_text())
    updated["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["new text"]})
    lesson.write_text(json.dumps(updated))
    again = prepare_workspace(lessons=course)
    assert again.copied == () and report.copied[0] in again.outdated
    assert "my notes" in mine.read_text()
    refreshed = prepare_workspace(lessons=course, refresh=[report.copied[0][:2]])
    assert refreshed.copied == (report.copied[0],) and "new text" in mine.read_text()
    assert "my notes" in Path(str(mine) + ".bak").read_text()


def test_bad_refresh_names_the_value(course, capsys):
    with pytest.raises(ValueError, match="'42'"):
        prepare_workspace(lessons=course, refresh=["42"])
    with pytest.raises(FileNotFoundError):
        prepare_workspace(lessons=course.parent / "nowhere")
    with pytest.raises(SystemExit):
        main(["--refresh", "42"])
