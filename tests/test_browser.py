"""The built book in headless Chromium (Playwright's Python API, Debian's ``chromium``): part of ``make test``.

``make test`` builds the book with execution (``make test-book``: test profile, warnings as errors) and then runs
this module, which reuses that build when it is newer than every source of the book (``mvgtutor.bookcheck``) and
builds it otherwise. Every page of ``_toc.yml`` is opened through a local server with every other request
blocked; a screenshot of each lands in ``_build/screenshots/``. The instructor edition (solutions shown) is
checked when ``_build/instructor`` holds a current build (``make test-instructor``: it reuses the executed
notebooks of the check build). Without a browser or Playwright the browser tests skip and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mvgtutor import bookcheck
from mvgtutor.book import ROOT, exercise_solutions, toc_files

CHECK_HTML = ROOT / "_build" / "check" / "_build" / "html"
INSTRUCTOR_HTML = ROOT / "_build" / "instructor" / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = toc_files()


# ----------------------------------------------------------------------------------- the helpers, no browser needed
def test_only_the_local_server_and_inline_urls_are_allowed():
    assert bookcheck.is_local_url("http://127.0.0.1:8123/book/12_looking_inside.html")
    assert bookcheck.is_local_url("http://localhost:9/_static/x.js")
    assert bookcheck.is_local_url("data:image/png;base64,AAAA") and bookcheck.is_local_url("blob:http://127.0.0.1/1")
    assert not bookcheck.is_local_url("https://cdn.jsdelivr.net/npm/k3d/dist/standalone.js")
    assert not bookcheck.is_local_url("https://unpkg.com/@jupyter-widgets/html-manager")
    assert not bookcheck.is_local_url("http://127.0.0.1.example.com/x")
    assert not bookcheck.is_local_url("file:///etc/passwd")


def test_a_build_is_current_only_when_newer_than_every_source(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "01.ipynb").write_text("{}")
    html = tmp_path / "html"
    assert not bookcheck.book_is_current(html, tmp_path, ["book/01"], sources=["book"])  # not built
    (html / "book").mkdir(parents=True)
    page = html / "book" / "01.html"
    page.write_text("<html></html>")
    source = tmp_path / "book" / "01.ipynb"
    os.utime(source, (1000, 1000))
    os.utime(page, (2000, 2000))
    assert bookcheck.book_is_current(html, tmp_path, ["book/01"], sources=["book"])
    os.utime(source, (3000, 3000))  # the chapter changed after the build
    assert not bookcheck.book_is_current(html, tmp_path, ["book/01"], sources=["book"])
    assert not bookcheck.book_is_current(html, tmp_path, ["book/01", "book/02"], sources=["book"])  # a page missing


def test_a_canvas_is_drawn_when_it_holds_more_than_one_colour():
    import io

    from PIL import Image

    def png(image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    blank = Image.new("RGB", (40, 30), "white")
    assert not bookcheck.canvas_is_drawn(png(blank))
    blank.putpixel((5, 5), (200, 10, 10))
    assert bookcheck.canvas_is_drawn(png(blank))


def test_page_report_lists_each_problem_on_one_line():
    report = bookcheck.PageReport(url="u", errors=["boom"], blocked=["https://x"], k3d_views=2, k3d_blank=[1],
                                  widget_views=3, widgets_rendered=1, broken_images=["a.png"], equations=4,
                                  equations_failed=2)
    assert report.problems() == ["JavaScript error: boom", "blocked non-local request: https://x",
                                 "k3d view 1 of 2 drew a blank canvas", "2 of 3 widgets not rendered",
                                 "image did not load: a.png", "2 of 4 equations not typeset by MathJax"]
    assert bookcheck.PageReport(url="u", noise=["known"]).problems() == []
    assert bookcheck.is_known_noise("uncaught: Identifier 'THEBE_JS_URL' has already been declared")
    assert not bookcheck.is_known_noise("uncaught: Cannot read properties of undefined (reading 'plot')")


# --------------------------------------------------------------------------------------------------- in the browser
def _browser_or_skip() -> str:
    browser = bookcheck.find_browser()
    if browser is None:
        pytest.skip("no Chromium at /usr/bin/chromium (install it with `apt-get install chromium`, as make install "
                    "does when run as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright's Python package is missing: pip install playwright (make install does)")
    return browser


def _build_check_book() -> None:
    """The executed, warnings-as-errors build of ``make test-book`` (test profile)."""
    env = dict(os.environ, MVGTUTOR_PROFILE="test")
    subprocess.run(["make", "--no-print-directory", "test-book"], cwd=ROOT, env=env, check=True)


@pytest.fixture(scope="module")
def browser():
    path = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=list(bookcheck.BROWSER_ARGS))
        yield chromium
        chromium.close()


def test_the_page_checks_catch_each_kind_of_problem(browser, tmp_path):
    """A page made here, with one of each problem and a k3d view that draws, checked as the book's pages are."""
    import shutil

    import torch

    from mvgtutor.viz.inside import graph_scene
    from mvgtutor.viz.scene3d import snapshot_html

    shutil.copytree(ROOT / "book" / "assets" / "mathjax", tmp_path / "mathjax")
    scene = graph_scene(torch.randint(0, 4, (8, 8, 8), generator=torch.Generator().manual_seed(0)), 4)
    (tmp_path / "page.html").write_text(
        '<html><head><script async src="mathjax/tex-mml-chtml.js"></script></head><body>'
        '<p><span class="math notranslate nohighlight">\\(a^2 + b^2\\)</span></p>'
        '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAh'
        'KmMIQAAAABJRU5ErkJggg=="><img src="missing.png"><script>console.error("a deliberate error")</script>'
        f'<script src="https://cdn.example.org/x.js"></script>{snapshot_html(scene.plot)}</body></html>')
    with bookcheck.serve(tmp_path) as base:
        blocked: list[str] = []
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        bookcheck.block_non_local(context, blocked.append)
        report = bookcheck.check_page(context, f"{base}/page.html", screenshot=tmp_path / "page.png")
        context.close()
    assert blocked == ["https://cdn.example.org/x.js"]
    assert report.k3d_views == 1 and report.k3d_blank == []  # the points drew
    assert report.images == 2 and report.broken_images == ["missing.png"]
    assert report.equations == 1 and report.equations_failed == 0
    assert any("a deliberate error" in e for e in report.errors)
    assert any("cdn.example.org" in e for e in report.errors)  # a blocked script is an error on the console too
    assert (tmp_path / "page.png").stat().st_size > 0


def _check_book(browser, html: Path, edition: str, k3d: bool = True,
                screenshots: bool = True) -> dict[str, bookcheck.PageReport]:
    reports = {}
    with bookcheck.serve(html) as base:
        blocked: list[str] = []
        context = browser.new_context(viewport={"width": 1000, "height": 700})  # small: WebGL runs in software
        bookcheck.block_non_local(context, blocked.append)
        for page in PAGES:
            blocked.clear()
            shot = SCREENSHOTS / edition / f"{page.replace('/', '_')}.png" if screenshots else None
            report = bookcheck.check_page(context, f"{base}/{page}.html", screenshot=shot, k3d=k3d)
            report.blocked = sorted(set(blocked))
            reports[page] = report
        context.close()
    summary = [f"{page}: k3d {r.k3d_views}, widgets {r.widgets_rendered}/{r.widget_views}, images {r.images}, "
               f"equations {r.equations}, exercises {r.exercises}, solutions {r.solutions} shown + "
               f"{r.solutions_folded} folded, known console noise "
               f"{len(r.noise)}" for page, r in reports.items()]
    print(f"\n{edition} edition, {len(reports)} pages:\n" + "\n".join(summary), file=sys.stderr)
    return reports


def _solutions_in_source(page: str) -> int:
    notebook = ROOT / f"{page}.ipynb"
    return len(exercise_solutions(notebook)) if notebook.is_file() else 0


def test_every_page_of_the_student_book_works_offline(browser):
    if not bookcheck.book_is_current(CHECK_HTML, ROOT, PAGES):
        _build_check_book()
    reports = _check_book(browser, CHECK_HTML, "student")
    problems = [f"{page}: {line}" for page, report in reports.items() for line in report.problems()]
    for page, report in reports.items():
        expected = _solutions_in_source(page)
        if expected:  # exercises shown, their solutions folded (present, not shown) in the student edition
            if report.exercises == 0 or report.solutions != 0 or report.solutions_folded < expected:
                problems.append(f"{page}: {report.exercises} exercises, {report.solutions} solutions shown and "
                                f"{report.solutions_folded} folded; expected every one of its {expected} "
                                f"solutions folded under its exercise")
    assert not problems, "\n".join(problems)
    assert sum(r.k3d_views for r in reports.values()) > 0 and sum(r.widget_views for r in reports.values()) > 0


def test_the_instructor_book_shows_the_solutions(browser):
    if not bookcheck.book_is_current(INSTRUCTOR_HTML, ROOT, PAGES):
        pytest.skip("no current instructor build in _build/instructor: run `make test-instructor` first")
    # The same pages as the student's, with the solutions open: no 3D views drawn again, no screenshots taken again
    # (a full-page screenshot costs seconds of software rendering per page on CI's 2 cores).
    reports = _check_book(browser, INSTRUCTOR_HTML, "instructor", k3d=False, screenshots=False)
    problems = [f"{page}: {line}" for page, report in reports.items() for line in report.problems()]
    problems += [f"{page}: {report.solutions} solutions shown, the chapter has {_solutions_in_source(page)}"
                 for page, report in reports.items() if report.solutions < _solutions_in_source(page)]
    assert not problems, "\n".join(problems)


def test_the_check_and_instructor_configs_can_share_one_execution_cache(tmp_path):
    from mvgtutor.book import derived_config, main

    shared = tmp_path / "cache"
    check, instructor = derived_config(cache=shared), derived_config(solutions="show", cache=shared)
    assert check["execute"]["cache"] == instructor["execute"]["cache"] == str(shared.resolve())
    assert "cache" not in derived_config()["execute"]  # by default each build keeps its own
    assert main(["config", "--cache", str(shared), "--out", str(tmp_path / "c.yml")]) == 0
    assert str(shared.resolve()) in (tmp_path / "c.yml").read_text()
