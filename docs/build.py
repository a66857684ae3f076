"""Build the course website: ``python -m docs.build`` (``--fast`` for FAST runs).

1. **Execute** every lesson with papermill, in full mode by default (``--fast``: FAST mode), into
   ``build/executed/<mode>/``. A copy that the notebook suite (``python -m tests``, which saves
   what it executed: ``tests/nbsave.py``) or an earlier build left there is reused while its
   lesson is unchanged (``--rerun`` executes anyway).
2. **Assemble** the pages in ``build/site_src/``: a landing page, the README, the instructor
   guide and the executed lessons. Links to lessons and to the guide become links between pages,
   links to other repository files point at GitHub; Binder/Colab badges become plain launch links
   (no third-party images); each slider panel, which needs a running kernel, becomes a note
   saying how to run the lesson to move its sliders.
3. **Render** with Sphinx, myst-nb and sphinx-book-theme into ``build/site/`` (open
   ``build/site/index.html``); the notebooks are not executed again.

Why this tool: Sphinx + myst-nb (what Jupyter Book 1 is made of) is maintained by the Executable
Books project, installs from PyPI (``docs/requirements.txt``) and builds offline in well under a
minute. Jupyter Book 2 / mystmd downloads its site theme from the internet at build time
(``myst build --html`` fails without it), and nbconvert's HTML exporter makes loose pages with no
navigation between them.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat

from tests.badges import CourseRepository, course_repository
from tests.executed import EXECUTED, LESSONS, ROOT, current_copy, stamp

DOCS = ROOT / "docs"
SOURCE = ROOT / "build" / "site_src"
SITE = ROOT / "build" / "site"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Repository file → page of the site (paths relative to the repository / the site source).
PAGES = {"README.md": "readme.md", "lessons/INSTRUCTOR_GUIDE.md": "instructor_guide.md"}
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_BADGE = re.compile(r"\[!\[(Binder|Open In Colab)\]\([^)]*\)\]\(([^)\s]+)\)")


def lesson_paths() -> list[Path]:
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


# -- 1. execute ---------------------------------------------------------------------------------
def executed_lessons(*, fast: bool, rerun: bool = False) -> list[Path]:
    """An executed copy of every lesson in the mode asked for; reuses current ones."""
    mode = "fast" if fast else "full"
    copies = []
    for lesson in lesson_paths():
        found = None if rerun else current_copy(lesson.name, mode)
        if found is None:
            found = execute(lesson, mode)
        else:
            print(f"  {lesson.name}: reusing {found.relative_to(ROOT)}", flush=True)
        copies.append(found)
    return copies


def execute(lesson: Path, mode: str) -> Path:
    """Run ``lesson`` with papermill (``FAST`` injected) into ``build/executed/<mode>/``."""
    import papermill

    target = EXECUTED / mode / lesson.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    environment = {"EDUTOOLS_QUIET": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                               os.environ.get("PYTHONPATH")]))}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the kernel inherits it
    try:
        partial = target.with_suffix(".running.ipynb")
        papermill.execute_notebook(str(lesson), str(partial), parameters={"FAST": mode == "fast"},
                                   kernel_name="python3", progress_bar=False, cwd=str(LESSONS))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    notebook = nbformat.read(partial, as_version=4)
    stamp(notebook, lesson_name=lesson.name, mode=mode)
    nbformat.write(notebook, target)
    partial.unlink()
    print(f"  {lesson.name}: executed ({mode}) in {time.perf_counter() - start:.0f} s",
          flush=True)
    return target


# -- 2. assemble --------------------------------------------------------------------------------
def site_target(repo_path: str) -> str | None:
    """The site-source path of repository file ``repo_path``, or None if it has no page."""
    if repo_path in PAGES:
        return PAGES[repo_path]
    if re.fullmatch(r"lessons/\d\d_[^/]+\.ipynb", repo_path) and (ROOT / repo_path).exists():
        return repo_path
    return None


def rewrite_links(text: str, *, repo_path: str, site_path: str,
                  repository: CourseRepository) -> str:
    """Badges → launch links; links to pages → page links; other repository files → GitHub."""
    def badge(match: re.Match[str]) -> str:
        kind = "binder" if match.group(1) == "Binder" else "colab"
        label = "Run on Binder" if kind == "binder" else "Open in Colab"
        return f'<a class="launch-link {kind}" href="{match.group(2)}">{label}</a>'

    def link(match: re.Match[str]) -> str:
        bang, label, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):
            return match.group(0)
        path, _, fragment = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
        page = site_target(resolved)
        if page is None:
            new = repository.file_url(resolved)
        else:
            new = posixpath.relpath(page, posixpath.dirname(site_path) or ".")
        return f"{bang}[{label}]({new}{'#' + fragment if fragment else ''})"

    return _LINK.sub(link, _BADGE.sub(badge, text))


def slider_note(lesson: str, repository: CourseRepository) -> dict[str, str]:
    """The output shown where a slider panel was."""
    html = (f'<div class="slider-note"><b>Interactive panel.</b> Its sliders need a running '
            f'notebook: run this lesson to move them — '
            f'<a class="launch-link binder" href="{repository.binder_url(lesson)}">Run on '
            f'Binder</a> <a class="launch-link colab" href="{repository.colab_url(lesson)}">'
            f'Open in Colab</a>, or on your machine (README, command (a)).</div>')
    return {"text/html": html,
            "text/plain": "[Interactive panel: run this lesson to move its sliders.]"}


def prepare_lesson(executed: Path, repository: CourseRepository, *, mode: str) -> Any:
    """The executed lesson as the site shows it."""
    notebook = nbformat.read(executed, as_version=4)
    name = executed.name
    repo_path = f"lessons/{name}"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(cell.source, repo_path=repo_path, site_path=repo_path,
                                        repository=repository)
            continue
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags:
            tags.append("remove-cell")  # papermill's copy of the parameters: noise for a reader
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None and WIDGET_MIME in data:
                output = nbformat.v4.new_output("display_data", data=slider_note(name,
                                                                                 repository))
            elif data is not None and not data:
                continue  # an emptied progress bar: nothing to show
            outputs.append(output)
        cell.outputs = outputs
    notebook.metadata.pop("widgets", None)  # widget state: no widget manager on a static page
    when = "in full mode" if mode == "full" else "in FAST mode (smaller settings than full mode)"
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell(
        f"*This page shows the lesson as executed {when}. Its figures are what you get when "
        f"you run it; the sliders move only in a running notebook.*"))
    return notebook


def lesson_summaries() -> dict[str, str]:
    """Each lesson's one-line description, from the README's lesson table."""
    table = re.findall(r"^\|[^\n]*?\[`(\d\d_[^`]+\.ipynb)`\]\([^)]*\) \| ([^\n]*?) \|$",
                       (ROOT / "README.md").read_text(), flags=re.MULTILINE)
    return dict(table)


def landing_page(repository: CourseRepository, mode: str) -> str:
    """``index.md``: docs/index.md with the lesson list and the table of contents filled in."""
    summaries = lesson_summaries()
    rows = []
    for lesson in lesson_paths():
        title = nbformat.read(lesson, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
        rows.append(f"| [{title}](lessons/{lesson.name}) | {summaries.get(lesson.name, '')} | "
                    f'<a class="launch-link binder" href="{repository.binder_url(lesson.name)}">'
                    f'Binder</a> <a class="launch-link colab" '
                    f'href="{repository.colab_url(lesson.name)}">Colab</a> |')
    toc = "\n".join(f"lessons/{lesson.stem}" for lesson in lesson_paths())
    text = (DOCS / "index.md").read_text()
    return (text.replace("{{ lessons }}", "\n".join(rows)).replace("{{ toc }}", toc)
            .replace("{{ mode }}", "full" if mode == "full" else "FAST")
            .replace("{{ repository_url }}", repository.clone_url))


def assemble(executed: list[Path], *, mode: str, repository: CourseRepository) -> Path:
    """Write the site's source folder; return it."""
    shutil.rmtree(SOURCE, ignore_errors=True)
    (SOURCE / "lessons").mkdir(parents=True)
    shutil.copy(DOCS / "conf.py", SOURCE / "conf.py")
    shutil.copytree(DOCS / "_static", SOURCE / "_static")
    import jupyter_server_mathjax

    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static",
                    SOURCE / "_static" / "mathjax")
    (SOURCE / "site.json").write_text(json.dumps({
        "pages_url": repository.pages_url, "repository_url": repository.clone_url,
        "branch": repository.branch,
        "footer": f"Lessons executed in {mode} mode. Source: "
                  f'<a href="{repository.clone_url}">{repository.repository}</a>.'}))
    (SOURCE / "index.md").write_text(landing_page(repository, mode))
    for repo_path, page in PAGES.items():
        text = rewrite_links((ROOT / repo_path).read_text(), repo_path=repo_path,
                             site_path=page, repository=repository)
        if repo_path == "README.md":  # its title is the landing page's: name the page instead
            text = re.sub(r"\A# .*", "# README: install, run, test", text, count=1)
        (SOURCE / page).write_text(text)
    for path in executed:
        nbformat.write(prepare_lesson(path, repository, mode=mode), SOURCE / "lessons" / path.name)
    return SOURCE


# -- 3. render ----------------------------------------------------------------------------------
def render(source: Path, out: Path) -> None:
    """Sphinx's HTML builder, warnings as errors (a broken link or image fails the build)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
               "-d", str(source.parent / "site_doctrees"), str(source), str(out)]
    subprocess.run(command, check=True, cwd=ROOT)


def build(*, fast: bool, rerun: bool = False, out: Path = SITE) -> Path:
    """Execute (or reuse), assemble and render; the site's folder."""
    mode = "fast" if fast else "full"
    repository = course_repository()
    start = time.perf_counter()
    print(f"lessons ({mode} mode):", flush=True)
    executed = executed_lessons(fast=fast, rerun=rerun)
    executed_s = time.perf_counter() - start
    render(assemble(executed, mode=mode, repository=repository), out)
    print(f"site built in {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/ "
          f"(lessons {executed_s:.0f} s, pages {time.perf_counter() - start - executed_s:.0f} s);"
          f" published at {repository.pages_url}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true",
                        help="execute the lessons in FAST mode (minutes) instead of full mode")
    parser.add_argument("--rerun", action="store_true",
                        help="execute every lesson even if a current executed copy exists")
    parser.add_argument("--out", type=Path, default=SITE, help="output folder (build/site)")
    args = parser.parse_args(argv)
    build(fast=args.fast, rerun=args.rerun, out=args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
