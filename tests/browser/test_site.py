"""The course website as a reader meets it: built from FAST runs, every page opened in Chromium.

``python -m docs.build --fast`` (the lessons the notebook suite executed in this run are reused:
``tests/nbsave.py``; ``python -m tests`` runs this test after the lessons), then a local HTTP
server serves ``build/site/`` and headless Chromium opens every page: every lesson has its page,
with its Binder and Colab links; every image loaded (``naturalWidth > 0``) and every lesson page
shows figures; no error or traceback output, no widget shown as text, every formula typeset;
every link inside the site resolves (page and ``#anchor``); nothing is fetched from another host.
A full-page screenshot of every page goes to ``build/site_screens/``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.badges import course_repository
from tests.browser.lab import ROOT, free_port

pytestmark = pytest.mark.site
SCREENS = ROOT / "build" / "site_screens"
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
WIDGET_AS_TEXT = re.compile(r"\b(VBox|HBox|ExperimentPanel|\w*Slider)\(")

# What a page looks like to a reader, read in the browser after MathJax has typeset it.
PAGE_STATE_JS = """async () => {
  if (window.MathJax && window.MathJax.Hub) {
    await new Promise((resolve) => window.MathJax.Hub.Queue(resolve));
  }
  const main = document.querySelector('main') || document.body;
  const images = Array.from(document.images).map((img) => ({
    src: img.getAttribute('src') || '', ok: img.complete && img.naturalWidth > 0,
    figure: !!img.closest('.cell_output, .output')}));
  const outputs = Array.from(document.querySelectorAll('.cell_output, .output'));
  return {
    images,
    tracebacks: document.querySelectorAll('.output.traceback, .output.error').length,
    stderr: Array.from(document.querySelectorAll('.output.stderr')).map((n) => n.innerText),
    systemMessages: Array.from(document.querySelectorAll('.system-message'))
      .map((n) => n.innerText.slice(0, 200)),
    outputText: outputs.map((n) => n.innerText).join('\\n'),
    text: main.innerText,
    untypeset: Array.from(document.querySelectorAll('span.math.notranslate, div.math.notranslate'))
      .filter((n) => !n.querySelector('.MathJax, .MathJax_Display, .MathJax_SVG, mjx-container')
                     && !(n.nextElementSibling && /MathJax/.test(n.nextElementSibling.className)))
      .length,
    links: Array.from(document.querySelectorAll('a[href]')).map((a) => a.href),
    ids: Array.from(document.querySelectorAll('[id]')).map((n) => n.id),
    sliderNotes: document.querySelectorAll('div.slider-note').length,
  };
}"""


@pytest.fixture(scope="module")
def site() -> Path:
    """Build the website from FAST runs (reusing the lessons this test run executed)."""
    if os.environ.get("EDUTOOLS_SKIP_SITE", "") not in ("", "0"):
        pytest.skip("python -m tests --unit-only: the website test needs the executed lessons "
                    "(python -m tests, or pytest tests/browser/test_site.py)")
    try:
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError as error:
        pytest.fail(f"the website's tools are missing ({error}): "
                    "pip install -r docs/requirements.txt", pytrace=False)
    from docs.build import build

    return build(fast=True)


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (as GitHub Pages serves it); the base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()),
                                             functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_every_lesson_has_a_page_and_the_guide_and_readme_are_there(site):
    for lesson in LESSONS:
        assert (site / "lessons" / f"{lesson.stem}.html").exists(), f"no page for {lesson.name}"
    for page in ("index.html", "readme.html", "instructor_guide.html"):
        assert (site / page).exists(), page


def check_page(page: Any, url: str, relative: str, state: dict[str, Any]) -> list[str]:
    """What a reader would find wrong on one page."""
    problems = [f"{relative}: image {image['src'][:80]} did not load"
                for image in state["images"] if not image["ok"]]
    if state["tracebacks"]:
        problems.append(f"{relative}: {state['tracebacks']} error output(s)")
    if "Traceback (most recent call last)" in state["text"]:
        problems.append(f"{relative}: a traceback is shown")
    problems += [f"{relative}: error text on stderr: {text[:200]}" for text in state["stderr"]
                 if re.search(r"Traceback|\w*Error\b", text)]
    problems += [f"{relative}: Sphinx/docutils message: {m}" for m in state["systemMessages"]]
    if WIDGET_AS_TEXT.search(state["outputText"]):
        problems.append(f"{relative}: a widget shown as text")
    if state["untypeset"]:
        problems.append(f"{relative}: {state['untypeset']} formula(s) not typeset")
    return problems


def check_lesson_page(relative: str, state: dict[str, Any]) -> list[str]:
    lesson = Path(relative).stem + ".ipynb"
    repository = course_repository()
    problems = []
    if not any(image["figure"] and image["ok"] for image in state["images"]):
        problems.append(f"{relative}: no figure")
    for kind, link in (("Binder", repository.binder_url(lesson)),
                       ("Colab", repository.colab_url(lesson))):
        if link not in state["links"]:
            problems.append(f"{relative}: no {kind} link ({link})")
    return problems


def test_every_page_as_a_reader_sees_it(site, chromium):
    # Every page of the site (_static/ holds the theme's templates, not pages).
    pages = sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html")
                   if not path.relative_to(site).as_posix().startswith(("_static/", "_sources/")))
    SCREENS.mkdir(parents=True, exist_ok=True)
    for old in SCREENS.glob("*.png"):
        old.unlink()
    problems: list[str] = []
    ids: dict[str, set[str]] = {}
    links: dict[str, set[str]] = {}
    notes = 0
    with serving(site) as base:
        origin = urllib.parse.urlsplit(base).netloc
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        foreign: list[str] = []
        context.on("request", lambda request: foreign.append(request.url)
                   if urllib.parse.urlsplit(request.url).netloc not in (origin, "")
                   and not request.url.startswith("data:") else None)
        missing: list[str] = []  # a script, style, font or image of the site that is not there
        context.on("response", lambda response: missing.append(f"{response.status} {response.url}")
                   if response.status >= 400 else None)
        page = context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        try:
            for relative in pages:
                url = base + relative
                response = page.goto(url, wait_until="load", timeout=60_000)
                if response is None or response.status != 200:
                    problems.append(f"{relative}: HTTP {response.status if response else '?'}")
                    continue
                state = page.evaluate(PAGE_STATE_JS)
                problems += check_page(page, url, relative, state)
                if relative.startswith("lessons/"):
                    problems += check_lesson_page(relative, state)
                    notes += state["sliderNotes"]
                problems += [f"{relative}: script error {error}" for error in page_errors]
                page_errors.clear()
                ids[url] = set(state["ids"])
                links[relative] = set(state["links"])
                page.screenshot(path=str(SCREENS / (relative.replace("/", "__") + ".png")),
                                full_page=True)
        finally:
            context.close()
        problems += [f"fetched from another host: {url}" for url in sorted(set(foreign))]
        problems += [f"missing on the site: {entry}" for entry in sorted(set(missing))]
        problems += broken_links(links, ids, base)
    assert notes > 0, "no slider panel became a 'run it to move the sliders' note"
    assert not problems, "\n".join(problems)


def broken_links(links: dict[str, set[str]], ids: dict[str, set[str]], base: str) -> list[str]:
    """Links inside the site whose page does not answer or whose #anchor is not on it."""
    problems = []
    for relative, hrefs in sorted(links.items()):
        for href in sorted(hrefs):
            if not href.startswith(base):
                continue
            target, _, fragment = href.partition("#")
            if target not in ids:  # not a page we opened: it must still answer
                try:
                    with urllib.request.urlopen(target, timeout=10) as response:
                        ok = response.status == 200
                except OSError:
                    ok = False
                if not ok:
                    problems.append(f"{relative}: broken link {href}")
                continue
            if fragment and urllib.parse.unquote(fragment) not in ids[target]:
                problems.append(f"{relative}: link {href}: no #{fragment} on that page")
    return problems
