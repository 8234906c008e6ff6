"""The built book in a real browser: serve ``_build/.../html`` on localhost and check each page in headless Chromium.

``tests/test_browser.py`` (part of ``make test``) drives these functions with Playwright's Python API and Debian's
``chromium`` (no browser download). Every request that does not go to the local server is blocked, so a page that
needs the network fails here as it would offline. Per page ``check_page`` reports:

* JavaScript errors: console messages of type ``error`` and uncaught exceptions, from the page and its frames
  (less ``KNOWN_CONSOLE_NOISE``, the toolchain's own, each listed with why it is harmless);
* k3d views: every ``div.mvgtutor-k3d`` iframe (``mvgtutor.viz.scene3d.snapshot_html``) has drawn a canvas that
  is not blank (its pixels hold more than one colour); each view is unloaded once checked (software WebGL is slow),
  so the page's screenshot shows the static figure below each scene, not the scene;
* ipywidgets: every stored widget view (``script[type=application/vnd.jupyter.widget-view+json]``) was rendered;
* images: every ``<img>`` loaded (``naturalWidth > 0``);
* equations: every ``.math`` element was typeset by MathJax (holds an ``mjx-container``, no ``mjx-merror``);
* exercises and solutions: how many of each the page shows, and how many solutions it holds folded (the student
  build folds each solution under its exercise; the instructor build shows them open).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

BROWSER_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
LOCAL_HOSTS = ("127.0.0.1", "localhost")
# Chromium's software WebGL (SwiftShader): headless machines have no GPU, and k3d draws with WebGL.
BROWSER_ARGS = ("--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--ignore-gpu-blocklist")
# Screenshots taller than software WebGL's largest texture (8192 px) come back with their top repeated below:
# longer pages are cut there.
MAX_SCREENSHOT_PX = 8_000
# The book's own inputs: a page is current when its HTML is newer than all of these.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "references.bib", "book", "mvgtutor")


# Console errors of the book's toolchain, not of its pages, each with why it is harmless here. Anything else fails.
KNOWN_CONSOLE_NOISE: dict[str, str] = {
    "Identifier 'THEBE_JS_URL' has already been declared":
        "jupyter-book 1.0.4 emits sphinx-thebe's config script twice per page; thebe (live code cells) is off",
    "Got invalid theme mode":
        "pydata-sphinx-theme on a first visit, before it has stored a light/dark choice; it falls back to auto",
    "Cannot read properties of undefined (reading 'Queue')":
        "the vendored ipywidgets html-manager typesets widget labels with MathJax 2's MathJax.Hub.Queue, the book "
        "loads MathJax 3 (no Hub): labels with LaTeX would stay raw; ours have none, and the widgets render",
}


def is_known_noise(message: str) -> bool:
    """True for a console error listed in ``KNOWN_CONSOLE_NOISE``."""
    return any(known in message for known in KNOWN_CONSOLE_NOISE)


def find_browser(candidates: Iterable[str] = BROWSER_CANDIDATES) -> str | None:
    """The path of an installed Chromium (``$MVGTUTOR_CHROMIUM`` first), or None."""
    for path in (os.environ.get("MVGTUTOR_CHROMIUM"), *candidates, shutil.which("chromium")):
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


def is_local_url(url: str) -> bool:
    """True for what a page may load offline: the local server, ``data:``, ``blob:``, ``about:`` URLs."""
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about"):
        return True
    return parsed.scheme in ("http", "https") and parsed.hostname in LOCAL_HOSTS


def _newest(paths: Iterable[Path]) -> float:
    newest = 0.0
    for path in paths:
        if path.is_dir():
            newest = max([newest, *(p.stat().st_mtime for p in path.rglob("*") if p.is_file()
                                    and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts)])
        elif path.exists():
            newest = max(newest, path.stat().st_mtime)
    return newest


def book_is_current(html_dir: Path, root: Path, pages: Iterable[str],
                    sources: Iterable[str] = BOOK_SOURCES) -> bool:
    """True when every page ``<html_dir>/<page>.html`` exists and is newer than every file of ``sources``
    (relative to ``root``): the build can be reused instead of rebuilt."""
    built = [Path(html_dir) / f"{page}.html" for page in pages]
    if not built or not all(path.is_file() for path in built):
        return False
    return min(path.stat().st_mtime for path in built) > _newest(Path(root) / s for s in sources)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request on stderr
        pass

    def do_GET(self):
        if self.path == "/favicon.ico" and not Path(self.translate_path(self.path)).is_file():
            self.send_response(204)  # the browser asks for one by itself; the book has none, which is no error
            self.end_headers()
            return
        super().do_GET()


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` on ``http://127.0.0.1:<free port>`` in a thread; yields the base URL (no trailing /)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class PageReport:
    """What ``check_page`` found on one page; ``problems()`` lists what is wrong, one line each."""

    url: str
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    noise: list[str] = field(default_factory=list)  # those listed in KNOWN_CONSOLE_NOISE (reported, not failed)
    blocked: list[str] = field(default_factory=list)  # requests to anything but the local server
    k3d_views: int = 0
    k3d_blank: list[int] = field(default_factory=list)  # indices of views that drew nothing
    widget_views: int = 0  # stored widget views
    widgets_rendered: int = 0  # of those, rendered by the widget manager
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    equations: int = 0
    equations_failed: int = 0
    exercises: int = 0
    solutions: int = 0  # solutions whose body is visible (the instructor edition)
    solutions_folded: int = 0  # solutions on the page with their body folded away (the student edition)

    def problems(self) -> list[str]:
        """One line per failed check (empty when the page is fine)."""
        lines = [f"JavaScript error: {e}" for e in self.errors]
        lines += [f"blocked non-local request: {u}" for u in self.blocked]
        lines += [f"k3d view {i} of {self.k3d_views} drew a blank canvas" for i in self.k3d_blank]
        if self.widgets_rendered < self.widget_views:
            lines.append(f"{self.widget_views - self.widgets_rendered} of {self.widget_views} widgets not rendered")
        lines += [f"image did not load: {src}" for src in self.broken_images]
        if self.equations_failed:
            lines.append(f"{self.equations_failed} of {self.equations} equations not typeset by MathJax")
        return lines


def block_non_local(context, report_blocked) -> None:
    """Abort every request of a Playwright ``context`` that ``is_local_url`` refuses (calls ``report_blocked``)."""
    def route(route):
        if is_local_url(route.request.url):
            route.continue_()
        else:
            report_blocked(route.request.url)
            route.abort()

    context.route("**/*", route)


def canvas_is_drawn(png: bytes) -> bool:
    """True when a screenshot (PNG bytes) holds more than one colour: something was drawn on the canvas."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels[:: max(1, len(pixels) // 200_000)], axis=0)) > 1


_PAGE_STATE = """() => {
  const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
  const rendered = views.filter(s => {
    const box = s.previousElementSibling && s.previousElementSibling.classList.contains('jupyter-widgets')
      ? s.previousElementSibling : s.parentElement;
    return box && box.querySelector('.jupyter-widgets, .widget-container, .widget-image, .widget-box') !== null;
  }).length;
  const images = [...document.querySelectorAll('img')];
  const maths = [...document.querySelectorAll('.math')];
  const solutions = [...document.querySelectorAll('.solution')];
  // sphinx-togglebutton folds a solution by giving its body visibility: hidden and height 0 (still display: block)
  const bodyShown = el => [...el.children].some(c => !c.classList.contains('admonition-title') &&
    !c.matches('button, .toggle-button') && getComputedStyle(c).visibility !== 'hidden' &&
    c.getBoundingClientRect().height > 0);
  return {
    widget_views: views.length, widgets_rendered: rendered, images: images.length,
    broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src') || ''),
    equations: maths.length,
    equations_failed: maths.filter(m => !m.querySelector('mjx-container') || m.querySelector('mjx-merror')).length,
    exercises: document.querySelectorAll('.exercise').length,
    solutions: solutions.filter(bodyShown).length,
    solutions_folded: solutions.filter(el => !bodyShown(el)).length,
  };
}"""

_MATHJAX_DONE = """() => !document.querySelector('.math') ||
  (window.MathJax && MathJax.startup && MathJax.startup.promise ? MathJax.startup.promise.then(() => true) : false)"""


def check_page(context, url: str, screenshot: Path | None = None, k3d_timeout_s: float = 300.0,
               k3d: bool = True) -> PageReport:
    """Open ``url`` in a new page of the Playwright ``context`` (requests already filtered by
    ``block_non_local``), wait for it to settle, check it (see the module docstring) and save a full-page
    ``screenshot``. ``k3d=False`` counts the 3D views without waiting for them to draw (the instructor edition
    holds the same outputs as the student one)."""
    report = PageReport(url=url)
    page = context.new_page()
    def record(text: str) -> None:
        (report.noise if is_known_noise(text) else report.errors).append(text)

    page.on("console", lambda message: record(f"{message.text} ({message.location.get('url', '')})")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: record(f"uncaught: {error}"))
    try:
        page.goto(url, wait_until="load", timeout=120_000)
        page.wait_for_function(_MATHJAX_DONE, timeout=60_000)
        frames = page.locator("div.mvgtutor-k3d iframe")
        report.k3d_views = frames.count()
        for index in range(report.k3d_views):
            if not k3d:  # not checked: unloaded at once, or software WebGL would stall the screenshot
                frames.nth(index).element_handle().evaluate(_UNLOAD)
            elif not _k3d_drawn(page, frames.nth(index), k3d_timeout_s):
                report.k3d_blank.append(index)
        page.wait_for_timeout(500)  # the widget manager renders after load
        for key, value in page.evaluate(_PAGE_STATE).items():
            setattr(report, key, value)
        page.evaluate("() => window.scrollTo(0, 0)")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            height = min(page.evaluate("() => document.documentElement.scrollHeight"), MAX_SCREENSHOT_PX)
            width = page.viewport_size["width"]
            page.screenshot(path=str(screenshot), full_page=True, timeout=120_000,
                            clip={"x": 0, "y": 0, "width": width, "height": height})
    finally:
        page.close()
    return report


_CANVAS_PNG = """() => new Promise(resolve => requestAnimationFrame(() => {
  const canvases = [...document.querySelectorAll('canvas')];
  if (!canvases.length) return resolve(null);
  const canvas = canvases.reduce((a, b) => (a.width * a.height >= b.width * b.height ? a : b));
  resolve(canvas.width && canvas.height ? canvas.toDataURL('image/png') : null);
}))"""

_UNLOAD = """frame => { frame.srcdoc = '<p style="font:14px sans-serif">3D view checked (unloaded to spare the CPU)</p>'; }"""


def _k3d_drawn(page, frame_locator, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the k3d iframe's WebGL canvas (k3d keeps its drawing buffer) to hold more than
    one colour, read in the frame after an animation frame; then unload the view, since software WebGL keeps a
    core busy for every view left drawing. The first frame of a volume rendering is slow in software (the shader
    is compiled on the CPU): 15-100 s per view, measured on a loaded 2-core machine."""
    import base64
    import time

    frame_locator.scroll_into_view_if_needed()
    handle = frame_locator.element_handle()
    frame = handle.content_frame()
    deadline = time.monotonic() + timeout_s
    drawn = False
    while frame is not None and not drawn and time.monotonic() < deadline:
        url = frame.evaluate(_CANVAS_PNG)
        drawn = bool(url) and canvas_is_drawn(base64.b64decode(url.split(",", 1)[1]))
        if not drawn:
            page.wait_for_timeout(1000)
    handle.evaluate(_UNLOAD)
    return drawn
