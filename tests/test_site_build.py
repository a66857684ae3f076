"""The website's assembly (docs/build.py): links, badges, slider notes; the README and the
workflow point at the site. The rendered site is read in a browser by tests/browser/test_site.py."""

from pathlib import Path

import nbformat

from docs.build import (
    lesson_paths,
    lesson_summaries,
    prepare_lesson,
    rewrite_links,
    site_target,
)
from tests.badges import course_repository

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = course_repository()


def test_links_between_pages_stay_on_the_site_and_others_go_to_github():
    text = ("[guide](lessons/INSTRUCTOR_GUIDE.md) [l1](lessons/01_gd_edge_of_stability.ipynb#x) "
            "[bench](tests/benchmarks/bench_sam.py) [web](https://example.org/a) [here](#top) "
            "![pic](data/x.png)")
    out = rewrite_links(text, repo_path="README.md", site_path="readme.md",
                        repository=REPOSITORY)
    assert "[guide](instructor_guide.md)" in out
    assert "[l1](lessons/01_gd_edge_of_stability.ipynb#x)" in out
    assert f"[bench]({REPOSITORY.file_url('tests/benchmarks/bench_sam.py')})" in out
    assert "[web](https://example.org/a)" in out and "[here](#top)" in out
    assert f"![pic]({REPOSITORY.file_url('data/x.png')})" in out
    # From a lesson page (in lessons/), back to the README and to a sibling lesson.
    out = rewrite_links("[r](../README.md) [n](02_sgd_batch_size.ipynb)",
                        repo_path="lessons/01_x.ipynb", site_path="lessons/01_x.ipynb",
                        repository=REPOSITORY)
    assert out == "[r](../readme.md) [n](02_sgd_batch_size.ipynb)"
    assert site_target("lessons/99_missing.ipynb") is None


def test_badges_become_text_launch_links_to_the_same_addresses():
    lesson = lesson_paths()[0].name
    out = rewrite_links(REPOSITORY.badges(lesson), repo_path="README.md", site_path="readme.md",
                        repository=REPOSITORY)
    assert "mybinder.org/badge_logo.svg" not in out and "colab-badge.svg" not in out
    assert f'href="{REPOSITORY.binder_url(lesson)}"' in out
    assert f'href="{REPOSITORY.colab_url(lesson)}"' in out


def test_a_slider_panel_becomes_a_note_and_emptied_outputs_go(tmp_path):
    panel = nbformat.v4.new_code_cell("slider_panel()", outputs=[nbformat.v4.new_output(
        "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m"},
                              "text/plain": "VBox(children=(...))"})])
    emptied = nbformat.v4.new_code_cell("train()", outputs=[
        nbformat.v4.new_output("display_data", data={}),
        nbformat.v4.new_output("stream", name="stdout", text="done\n")])
    injected = nbformat.v4.new_code_cell("FAST = True", metadata={"tags":
                                                                  ["injected-parameters"]})
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 00 · T"),
                                               injected, panel, emptied])
    notebook.metadata["widgets"] = {"state": {}}
    path = tmp_path / "00_start_here.ipynb"
    nbformat.write(notebook, path)
    page = prepare_lesson(path, REPOSITORY, mode="fast")
    cells = [cell for cell in page.cells if cell.cell_type == "code"]
    assert "remove-cell" in cells[0].metadata["tags"]
    note = cells[1].outputs[0]["data"]
    assert "run this lesson to move them" in note["text/html"]
    assert REPOSITORY.binder_url("00_start_here.ipynb") in note["text/html"]
    assert [output["output_type"] for output in cells[2].outputs] == ["stream"]
    assert "widgets" not in page.metadata
    assert "executed in FAST mode" in page.cells[1].source


def test_every_lesson_has_a_summary_from_the_readme_table():
    summaries = lesson_summaries()
    assert sorted(summaries) == [path.name for path in lesson_paths()]
    assert all(len(text) > 20 for text in summaries.values())


def test_readme_links_to_the_site_and_a_workflow_publishes_it():
    assert REPOSITORY.pages_url == "https://sharpness-stability.github.io/course/"
    assert REPOSITORY.pages_url in (ROOT / "README.md").read_text()
    workflow = (ROOT / ".github/workflows/site.yml").read_text()
    assert "python -m docs.build" in workflow and "actions/deploy-pages" in workflow
    assert "-r docs/requirements.txt" in workflow
