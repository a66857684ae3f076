"""Learners' working copies keep the committed lessons clean and git pull free of conflicts."""

import json
import shutil
from pathlib import Path

import pytest

from edutools.face.workspace import (
    ROOT,
    WorkspaceError,
    lesson_digest,
    main,
    prepare_workspace,
)


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
    (backup,) = refreshed.backups
    assert "my notes" in (report.folder / backup).read_text()


def test_bad_refresh_names_the_value(course, capsys):
    with pytest.raises(ValueError, match="'42'"):
        prepare_workspace(lessons=course, refresh=["42"])
    with pytest.raises(FileNotFoundError):
        prepare_workspace(lessons=course.parent / "nowhere")
    with pytest.raises(SystemExit):
        main(["--refresh", "42"])


def _answer(copy: Path, text: str) -> None:
    notebook = json.loads(copy.read_text())
    notebook["cells"].append({"cell_type": "code", "metadata": {}, "source": [text],
                              "outputs": [], "execution_count": None})
    copy.write_text(json.dumps(notebook))


def _update_lesson(lesson: Path, text: str) -> None:
    notebook = json.loads(lesson.read_text())
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": [text]})
    lesson.write_text(json.dumps(notebook))


def _files_holding(folder: Path, text: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and text in p.read_text())


def test_refresh_twice_the_answer_is_still_in_a_file(course):
    report = prepare_workspace(lessons=course)
    mine = report.folder / report.copied[1]
    _answer(mine, "answer = 42")
    for _ in range(2):
        again = prepare_workspace(lessons=course, refresh=[mine.name[:2]])
        assert again.copied == () and again.current == (mine.name,)
    assert _files_holding(report.folder, "answer = 42") == [mine.name]  # current: kept as is


def test_every_earlier_copy_survives_refreshes_of_an_updated_lesson(course):
    report = prepare_workspace(lessons=course)
    mine = report.folder / report.copied[1]
    for round_ in range(3):
        _answer(mine, f"answer round {round_}")
        _update_lesson(course / mine.name, f"course update {round_}")
        refreshed = prepare_workspace(lessons=course, refresh=[mine.name])
        assert refreshed.copied == (mine.name,) and len(refreshed.backups) == 1
    for round_ in range(3):
        holders = _files_holding(report.folder, f"answer round {round_}")
        assert len(holders) == 1 and holders[0].endswith(".bak"), holders
    assert len(list(report.folder.glob("*.bak"))) == 3
    assert not list(report.folder.glob("*.tmp")) and not list(report.folder.glob(".*.tmp"))


@pytest.mark.parametrize("entry", ["0", "", " ", "0_", "00_start", "start_here", "1"])
def test_refresh_refuses_prefixes_and_empty_names_and_lists_the_lessons(course, entry):
    prepare_workspace(lessons=course)
    with pytest.raises(ValueError, match=f"refresh={entry!r} names no lesson exactly") as caught:
        prepare_workspace(lessons=course, refresh=[entry])
    assert "00, 01" in str(caught.value) and "00_start_here.ipynb" in str(caught.value)


@pytest.mark.parametrize("entry", ["01", "01_gd_edge_of_stability.ipynb",
                                   "01_gd_edge_of_stability"])
def test_refresh_accepts_exact_numbers_and_names(course, entry):
    report = prepare_workspace(lessons=course)
    _update_lesson(course / report.copied[1], "course update")
    assert prepare_workspace(lessons=course, refresh=[entry]).copied == (report.copied[1],)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))} if folder.exists() else {}


def test_my_lessons_being_a_file_is_one_line_and_changes_nothing(course, monkeypatch, capsys):
    blocker = course.parent / "my_lessons"
    blocker.write_text("notes")
    with pytest.raises(WorkspaceError, match="is a file, not a folder"):
        prepare_workspace(lessons=course)
    assert blocker.read_text() == "notes"
    monkeypatch.setattr("edutools.face.workspace.ROOT", course.parent)
    monkeypatch.setattr(prepare_workspace, "__kwdefaults__",
                        {**prepare_workspace.__kwdefaults__, "lessons": course})
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_a_folder_with_a_lessons_name_is_one_line_and_changes_nothing(course):
    report = prepare_workspace(lessons=course)
    (report.folder / report.copied[0]).unlink()
    (report.folder / report.copied[0]).mkdir()
    _update_lesson(course / report.copied[1], "course update")
    before = _snapshot(report.folder)
    with pytest.raises(WorkspaceError, match="is a folder, not a notebook"):
        prepare_workspace(lessons=course, refresh=["01"])
    assert _snapshot(report.folder) == before


def test_a_read_only_copy_is_refreshed_and_kept(course):
    report = prepare_workspace(lessons=course)
    mine = report.folder / report.copied[1]
    _answer(mine, "answer = 7")
    mine.chmod(0o444)
    _update_lesson(course / mine.name, "course update")
    refreshed = prepare_workspace(lessons=course, refresh=["01"])
    assert "course update" in mine.read_text()
    assert "answer = 7" in (report.folder / refreshed.backups[0]).read_text()


def test_a_failed_write_leaves_the_copy_and_no_temporary_file(course, monkeypatch):
    report = prepare_workspace(lessons=course)
    mine = report.folder / report.copied[1]
    _answer(mine, "answer = 9")
    _update_lesson(course / mine.name, "course update")
    before = _snapshot(report.folder)

    def refuse(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("edutools.face.workspace.os.replace", refuse)
    with pytest.raises(WorkspaceError, match="cannot write .*Permission denied"):
        prepare_workspace(lessons=course, refresh=["01"])
    assert _snapshot(report.folder) == before
