"""The rendered course website, checked in a real browser.

The book's sources (``_config.yml``, ``_toc.yml``, ``book/``) are copied into a
temporary directory and built there with the README's command
(``jupyter-book build . -W -n --keep-going``), so no ``_build/`` is written
into the repository.  The site is served from a local HTTP server on
127.0.0.1 and every page is loaded in headless Chromium, driven by Selenium:

* the build succeeds with warnings as errors;
* the sidebar has one caption per part of ``_toc.yml`` and every notebook in
  ``book/`` is listed in ``_toc.yml``;
* every page's mathematics is typeset by MathJax (served with the site from
  ``book/_static/mathjax``, so nothing is fetched from a CDN), with no raw
  ``$$`` or ``\\begin`` left in the rendered text and no MathJax errors;
* every image loads, and every same-site link answers HTTP 200 (and its
  ``#fragment`` exists in the target page);
* numbered equations, cross-references to them, figures with captions and a
  bibliography are there; the bibliography's labels are author-year
  ("[Bates et al., 2015]"), as the text cites each entry;
* each chapter page has a Binder button (JupyterLab) built from the
  ``repository:`` section of ``_config.yml``, a repository button, and a
  download button for its ``.ipynb``;
* the search page finds "random intercept", and each page shows one search
  box (the sidebar's), not two;
* the **student edition** (``python -m lmelib.grading student-site``, the README's
  command for instructors) is built from a copy of the same sources, at the same
  time as the normal build: every exercise is
  there, and no solution's text or code is, neither on the pages (checked
  against the normal build, where each solution is present, and against the
  solution cells of the notebooks), nor in its search index, nor in the
  notebooks offered for download.

Screenshots of the landing page and of one chapter are written to the folder
named by ``SITE_TEST_ARTEFACTS`` (default: pytest's temporary directory).  With
``UPDATE_SITE_SCREENSHOT=1`` the landing page is also written to
``book/_static/site.png``, the picture shown in the README.

Chromium and ChromeDriver come from Debian (``chromium``, ``chromium-driver``);
``.ci/run`` installs them (see the README).  If they are missing the browser
tests are skipped with a message saying what to install; the build tests run
without them.  No network is used: the browser only talks to 127.0.0.1.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--window-size=1280,900",
]
SCREENSHOT = ROOT / "book" / "_static" / "site.png"
SCREENSHOT_MAX_BYTES = 300_000
README_WINDOW = (1440, 1100)
SEARCH_PHRASE = "random intercept"
# the chapter whose screenshot is kept as an artefact
CHAPTER_SCREENSHOT = "03_random_intercept"


# --------------------------------------------------------------------------
# Chromium, ChromeDriver and Selenium
# --------------------------------------------------------------------------


def _missing_browser() -> list[str]:
    return [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]


@pytest.fixture(scope="session")
def browser_paths():
    """Chromium, ChromeDriver and Selenium, or skip saying what is missing."""
    pytest.importorskip(
        "selenium", reason="selenium is not installed (pip install -r requirements.txt)"
    )
    missing = _missing_browser()
    if missing:
        pytest.skip(
            f"missing {', '.join(missing)}: install Debian's chromium and "
            "chromium-driver (as root: apt-get install chromium chromium-driver; "
            ".ci/run does this)"
        )
    return CHROMIUM, CHROMEDRIVER


# --------------------------------------------------------------------------
# The book, built in a temporary directory
# --------------------------------------------------------------------------


def _toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            for section in chapter.get("sections", []):
                files.append(section["file"])
    for chapter in toc.get("chapters", []):
        files.append(chapter["file"])
    return [f.removesuffix(".md").removesuffix(".ipynb") for f in files]


@pytest.fixture(scope="session")
def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))


@pytest.fixture(scope="session")
def toc() -> dict:
    return yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))


@pytest.fixture(scope="session")
def book_src(tmp_path_factory) -> Path:
    """A copy of the book's sources, built by `site` and `student_site`."""
    src = tmp_path_factory.mktemp("book-src")
    shutil.copy2(ROOT / "_config.yml", src / "_config.yml")
    shutil.copy2(ROOT / "_toc.yml", src / "_toc.yml")
    shutil.copytree(
        ROOT / "book",
        src / "book",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "_build"),
    )
    return src


def _start_build(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)


def _finish_build(build: tuple, what: str) -> Path:
    """Wait for a build started by `builds`; assert that it succeeded; return its HTML folder."""
    proc, log, build_dir = build
    code = proc.wait(timeout=900)
    out = log.read_text()
    warnings = [ln for ln in out.splitlines() if "WARNING" in ln or "ERROR" in ln]
    assert code == 0, f"{what} failed:\n" + "\n".join(warnings or out.splitlines()[-40:])
    assert (build_dir / "html" / "index.html").is_file()
    return build_dir / "html"


@pytest.fixture(scope="session")
def builds(book_src, tmp_path_factory):
    """Start both builds at once, each a single-process Sphinx run, so that on two cores they
    take the time of one.  The student edition reads its own copy of the sources."""
    logs = tmp_path_factory.mktemp("build-logs")
    student_src = tmp_path_factory.mktemp("book-src-student")
    shutil.copytree(book_src, student_src, dirs_exist_ok=True)
    student_out = tmp_path_factory.mktemp("student-edition")
    book_cmd = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(book_src),
        "-W",
        "-n",
        "--keep-going",
    ]
    student_cmd = [
        sys.executable,
        "-m",
        "lmelib.grading",
        "student-site",
        "--source",
        str(student_src),
        "--out",
        str(student_out),
    ]
    procs = {
        "site": (_start_build(book_cmd, logs / "site.log"), logs / "site.log", book_src / "_build"),
        "student": (_start_build(student_cmd, logs / "student.log"), logs / "student.log",
                    student_out / "_build"),
    }
    yield procs
    for proc, _, _ in procs.values():
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="session")
def site(builds) -> Path:
    """The book built with the README's command: its HTML folder."""
    return _finish_build(builds["site"], "jupyter-book build -W -n --keep-going")


@pytest.fixture(scope="session")
def student_site(builds) -> Path:
    """The student edition built with the README's command: its HTML folder."""
    return _finish_build(builds["student"], "python -m lmelib.grading student-site")


# --------------------------------------------------------------------------
# HTTP server and browser
# --------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    failures: list[str]

    def log_message(self, format, *args):  # noqa: A002 - stdlib's name
        pass

    def log_request(self, code="-", size="-"):
        try:
            failed = int(code) >= 400
        except (TypeError, ValueError):
            failed = True
        if failed and not self.path.startswith("/favicon.ico"):
            self.server.failures.append(f"{code} {self.path}")


def _serve(directory: Path):
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(directory))
    )
    httpd.failures = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(site):
    yield from _serve(site)


@pytest.fixture(scope="session")
def student_server(student_site):
    yield from _serve(student_site)


@pytest.fixture(scope="session")
def base_url(server) -> str:
    return f"http://127.0.0.1:{server.server_port}/"


@pytest.fixture(scope="session")
def driver(browser_paths, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium Manager is not needed (both paths are given); keep it quiet.
    os.environ.setdefault("SE_AVOID_STATS", "true")
    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=options, service=Service(str(chromedriver)))
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> Path:
    env = os.environ.get("SITE_TEST_ARTEFACTS")
    path = Path(env) if env else tmp_path_factory.mktemp("site-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------
# Reading pages
# --------------------------------------------------------------------------

_WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const hasScript = [...document.scripts].some(s => /mathjax/i.test(s.src));
if (!hasScript) { done("no-mathjax"); return; }
const t0 = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done("ok"), e => done("error: " + e));
  } else if (Date.now() - t0 > 5000) {
    // deferred scripts have run by the time the page has loaded
    done("MathJax was not loaded");
  } else {
    setTimeout(poll, 50);
  }
})();
"""

_WAIT_FOR_IMAGES = """
const done = arguments[arguments.length - 1];
const imgs = [...document.images];
imgs.forEach(i => { i.loading = "eager"; });
Promise.all(imgs.map(i => i.decode().then(() => null, () => null))).then(() =>
  done(imgs.map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])));
"""

# Everything the page shows, less code, plus facts about math, links, figures.
_READ_PAGE = """
const skip = "pre, code, script, style, textarea, mjx-container, .highlight, .MathJax";
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const parts = [];
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (el && !el.closest(skip) && el.getClientRects().length) parts.push(n.textContent);
}
const mathEls = [...document.querySelectorAll("div.math, span.math")];
const links = [...document.querySelectorAll("a[href], link[href], script[src], img[src]")]
  .map(e => e.href || e.src);
return {
  text: parts.join(" "),
  math: mathEls.length,
  mathUntypeset: mathEls.filter(e => !e.querySelector("mjx-container")).length,
  mjx: document.querySelectorAll("mjx-container").length,
  mjxErrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
  eqno: document.querySelectorAll("span.eqno").length,
  eqrefs: document.querySelectorAll('a[href*="#equation-"]').length,
  figcaptions: document.querySelectorAll("figure figcaption").length,
  citations: document.querySelectorAll('a[href*="bibliography.html#"]').length,
  bibEntries: document.querySelectorAll("div.citation, dl.citation > dt, .bibliography dt").length,
  links: links,
  captions: [...document.querySelectorAll("nav.bd-links p.caption")].map(e => e.textContent.trim()),
  binder: [...document.querySelectorAll('a[href*="mybinder"], a[href*="/v2/gh/"]')].map(e => e.href),
  repo: [...document.querySelectorAll("a.btn-source-repository-button, a[title*='repository' i]")].map(e => e.href),
  downloads: [...document.querySelectorAll("a.btn-download-source-button")].map(e => e.href),
  title: document.title,
  bibLabels: [...document.querySelectorAll("div.citation")].map(d =>
    [d.id, d.querySelector(".label") ? d.querySelector(".label").textContent : ""]),
  citeLinks: [...document.querySelectorAll('a[href*="bibliography.html#"]')].map(a =>
    [a.getAttribute("href").split("#")[1], a.textContent]),
  searchBoxes: [...document.querySelectorAll(
      ".search-button-field, button.search-button, input[type=search]")]
    .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== "hidden"
                 && !e.closest("#pst-search-dialog, dialog:not([open])"))
    .map(e => e.closest("[id]") ? e.closest("[id]").id : e.className),
};
"""

# Console messages that are not the book's fault: Chromium asks for
# /favicon.ico; Jupyter Book 1 writes sphinx-thebe's inline configuration
# script twice into every page (the second `const` fails, the first holds the
# same values; a stock `jupyter-book create` book does the same); and
# pydata-sphinx-theme reports the empty colour-mode setting of a new profile.
_KNOWN_CONSOLE = re.compile(
    r"favicon\.ico"
    r"|Identifier 'THEBE_JS_URL' has already been declared"
    r"|Got invalid theme mode: \. Resetting to auto"
)

# TeX that MathJax should have replaced: $$, \begin, \end{, the delimiters
# Sphinx writes (\( \) \[ \]), and common macros.
RAW_TEX = re.compile(
    r"\$\$|\\begin\b|\\end\{|\\[()\[\]]"
    r"|\\(?:frac|mathbf|boldsymbol|sigma|beta|theta|sum|hat|varepsilon)\b"
)


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


def _fetch(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _pages(site: Path) -> list[str]:
    skip = {"_static", "_sources", "_images"}
    return sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if not skip & set(p.relative_to(site).parts)
    )


def _is_redirect(path: Path) -> bool:
    head = path.read_text(encoding="utf8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


@pytest.fixture(scope="session")
def crawl(driver, site, base_url, server, artefacts):
    """Load every page once; return what each showed."""
    results = {}
    for rel in _pages(site):
        if _is_redirect(site / rel):
            continue
        url = base_url + rel
        t0 = time.monotonic()
        driver.get(url)
        mathjax = driver.execute_async_script(_WAIT_FOR_MATHJAX)
        images = driver.execute_async_script(_WAIT_FOR_IMAGES)
        info = driver.execute_script(_READ_PAGE)
        info.update(
            mathjax=mathjax,
            images=images,
            console=[
                e["message"]
                for e in driver.get_log("browser")
                if e["level"] == "SEVERE" and not _KNOWN_CONSOLE.search(e["message"])
            ],
            seconds=time.monotonic() - t0,
        )
        results[rel] = info
        if rel == "book/index.html":
            driver.save_screenshot(str(artefacts / "landing.png"))
        if rel == f"book/{CHAPTER_SCREENSHOT}.html":
            driver.save_screenshot(str(artefacts / "chapter.png"))
    return results


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_every_notebook_is_in_the_toc(toc):
    listed = set(_toc_files(toc))
    notebooks = sorted(
        p.relative_to(ROOT).with_suffix("").as_posix()
        for p in (ROOT / "book").glob("*.ipynb")
    )
    missing = [nb for nb in notebooks if nb not in listed]
    assert not missing, f"notebooks in book/ that _toc.yml does not list: {missing}"


def test_navigation_follows_the_toc(crawl, toc, site):
    landing = crawl["book/index.html"]
    captions = [part["caption"] for part in toc.get("parts", [])]
    assert landing["captions"] == captions
    # every page of the toc was built and is reachable from the sidebar
    linked = {urllib.parse.urlsplit(u).path.lstrip("/") for u in landing["links"]}
    for doc in _toc_files(toc):
        assert (site / f"{doc}.html").is_file(), f"{doc} was not built"
        assert f"{doc}.html" in linked, f"{doc} is not linked from the landing page"


def test_root_index_redirects_to_the_book(driver, site, base_url):
    assert _is_redirect(site / "index.html")
    driver.get(base_url)
    deadline = time.monotonic() + 20
    while not driver.current_url.endswith("book/index.html") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.current_url.endswith("book/index.html")


def test_math_is_typeset(crawl):
    problems = []
    for page, info in crawl.items():
        if info["math"] and info["mathjax"] != "ok":
            problems.append(f"{page}: {info['math']} formulas, MathJax: {info['mathjax']}")
            continue
        if info["mathjax"] not in ("ok", "no-mathjax"):
            problems.append(f"{page}: MathJax: {info['mathjax']}")
        if info["mathUntypeset"]:
            problems.append(f"{page}: {info['mathUntypeset']} formulas not typeset")
        if info["mjxErrors"]:
            problems.append(f"{page}: {info['mjxErrors']} MathJax errors")
        raw = sorted({m.group(0) for m in RAW_TEX.finditer(info["text"])})
        if raw:
            problems.append(f"{page}: raw TeX in the rendered text: {raw}")
    assert not problems, "\n".join(problems)
    assert sum(info["mjx"] for info in crawl.values()) > 0, "no typeset formula anywhere"


def test_images_load(crawl):
    broken = [
        f"{page}: {src}"
        for page, info in crawl.items()
        for src, complete, width in info["images"]
        if not (complete and width > 0)
    ]
    assert not broken, "images that did not load:\n" + "\n".join(broken)


def test_no_browser_errors(crawl, server):
    errors = [f"{page}: {msg}" for page, info in crawl.items() for msg in info["console"]]
    assert not errors, "console errors:\n" + "\n".join(errors)
    assert not server.failures, "requests the server could not answer:\n" + "\n".join(
        server.failures
    )


def test_internal_links_resolve(crawl, base_url):
    targets: dict[str, set[str]] = {}
    for page, info in crawl.items():
        for link in info["links"]:
            if not link.startswith(base_url):
                continue
            url, fragment = urllib.parse.urldefrag(link)
            targets.setdefault(url, set())
            if fragment:
                targets[url].add(urllib.parse.unquote(fragment))
    bad = []
    for url, fragments in sorted(targets.items()):
        status, body = _fetch(url)
        if status != 200:
            bad.append(f"{status} {url}")
            continue
        if fragments and urllib.parse.urlsplit(url).path.endswith((".html", "/")):
            ids = _Ids()
            ids.feed(body.decode("utf8", errors="replace"))
            bad += [f"no #{f} in {url}" for f in sorted(fragments - ids.ids)]
    assert not bad, "same-site links that do not resolve:\n" + "\n".join(bad)
    assert len(targets) > 10


def test_book_features(crawl):
    total = {
        key: sum(info[key] for info in crawl.values())
        for key in ("eqno", "eqrefs", "figcaptions", "citations")
    }
    assert total["eqno"] > 0, "no numbered equation"
    assert total["eqrefs"] > 0, "no cross-reference to an equation"
    assert total["figcaptions"] > 0, "no figure with a caption"
    assert total["citations"] > 0, "no citation linking to the bibliography"
    assert crawl["book/bibliography.html"]["bibEntries"] > 0, "empty bibliography"


_AUTHOR_YEAR = re.compile(r"(?P<who>\S.*), (?P<year>\d{4}|n\.d\.)[a-z]?")


def test_bibliography_is_author_year(crawl):
    """The bibliography's labels read as the text cites: "[Bates et al., 2015]"."""
    bib = crawl["book/bibliography.html"]
    labels = {i: _norm(lab).strip("[]") for i, lab in bib["bibLabels"]}
    assert labels, "no entry in the bibliography"
    bad = sorted(lab for lab in labels.values() if not _AUTHOR_YEAR.fullmatch(lab))
    assert not bad, f"bibliography labels not in author-year form: {bad}"
    assert len(set(labels.values())) == len(labels), "two entries with the same label"
    # a parenthetical citation, [Bates et al., 2015], links its entry's label;
    # a textual one, Bates et al. [2015], the label's year
    problems, n = [], 0
    for page, info in crawl.items():
        for target, text in info["citeLinks"]:
            text, n = _norm(text), n + 1
            label = labels.get(target)
            if label is None:
                problems.append(f"{page}: citation {text!r} links no entry (#{target})")
            elif text != label and not label.endswith(", " + text):
                problems.append(f"{page}: citation {text!r} links the entry labelled {label!r}")
    assert n > 0, "no citation"
    assert not problems, "\n".join(problems)


def test_chapter_buttons(crawl, site, book_config, base_url):
    repo = book_config["repository"]
    url = repo["url"].rstrip("/")
    owner_name = urllib.parse.urlsplit(url).path.strip("/")
    branch = repo.get("branch", "main")
    binderhub = book_config["launch_buttons"]["binderhub_url"].rstrip("/")
    assert book_config["launch_buttons"]["notebook_interface"] == "jupyterlab"
    path_to_book = (repo.get("path_to_book") or "").strip("/")
    chapters = sorted(p.name for p in (site / "_sources" / "book").glob("*.ipynb"))
    assert chapters, "no notebook page in the site"
    for nb in chapters:
        page = f"book/{nb.removesuffix('.ipynb')}.html"
        info = crawl[page]
        nb_path = "/".join(x for x in (path_to_book, "book", nb) if x)
        expected = f"{binderhub}/v2/gh/{owner_name}/{branch}?urlpath=lab/tree/{nb_path}"
        assert expected in info["binder"], f"{page}: Binder links {info['binder']}"
        assert url in info["repo"], f"{page}: repository links {info['repo']}"
        download = base_url + f"_sources/book/{nb}"
        assert download in info["downloads"], f"{page}: downloads {info['downloads']}"
        status, body = _fetch(download)
        assert status == 200
        assert json.loads(body)["cells"], f"{download} is not a notebook"


def test_one_search_box(crawl):
    """One search box per page (the sidebar's), not a second one in a header bar."""
    bad = {
        page: info["searchBoxes"]
        for page, info in crawl.items()
        if page != "search.html" and len(info["searchBoxes"]) != 1
    }
    assert not bad, f"pages without exactly one visible search box: {bad}"


def test_search_finds_random_intercept(driver, base_url, crawl):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base_url + "search.html?q=" + urllib.parse.quote_plus(SEARCH_PHRASE))
    summary = WebDriverWait(driver, 60).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#search-results .search-summary")
            and d.find_element(By.CSS_SELECTOR, "#search-results .search-summary").text
        )
    )
    hits = [
        a.get_attribute("href")
        for a in driver.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")
    ]
    assert hits, f"search for {SEARCH_PHRASE!r} found nothing: {summary}"
    assert any("/book/" in h for h in hits), hits


def test_screenshots(driver, crawl, artefacts, base_url):
    for name in ("landing.png", "chapter.png"):
        path = artefacts / name
        assert path.is_file() and path.stat().st_size > 10_000, path
    if os.environ.get("UPDATE_SITE_SCREENSHOT") == "1":
        size = driver.get_window_size()
        driver.set_window_size(*README_WINDOW)
        try:
            driver.get(base_url + "book/index.html")
            assert driver.execute_async_script(_WAIT_FOR_MATHJAX) == "ok"
            _write_small_png(driver.get_screenshot_as_png(), SCREENSHOT)
        finally:
            driver.set_window_size(size["width"], size["height"])
    if SCREENSHOT.exists():
        assert SCREENSHOT.stat().st_size < SCREENSHOT_MAX_BYTES


def _write_small_png(png: bytes, dest: Path) -> None:
    """Save a screenshot as a PNG under SCREENSHOT_MAX_BYTES (Pillow comes with matplotlib)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    for colours in (256, 128, 64):
        buf = io.BytesIO()
        img.quantize(colours, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
        if buf.tell() < SCREENSHOT_MAX_BYTES:
            break
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------
# The student edition
# --------------------------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class _PageText(html.parser.HTMLParser):
    """A page's text, with each solution's text (sphinx-exercise's
    ``div.solution``) apart from the rest; counts exercises and solutions."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.divs: list[bool] = []  # for each open div: is it a solution?
        self.skip = 0  # inside <script> or <style>
        self.solutions: list[list[str]] = []
        self.other: list[str] = []
        self.exercises = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "div":
            classes = (dict(attrs).get("class") or "").split()
            is_solution = "solution" in classes
            if is_solution and not any(self.divs):
                self.solutions.append([])
            self.exercises += "exercise" in classes
            self.divs.append(is_solution)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag == "div" and self.divs:
            self.divs.pop()

    def handle_data(self, data):
        if not self.skip:
            (self.solutions[-1] if any(self.divs) else self.other).append(data)


def _read_page(path: Path) -> _PageText:
    page = _PageText()
    page.feed(path.read_text(encoding="utf8"))
    page.close()
    return page


_SOLUTION_START = re.compile(r"^\s*(`{3,}|:{3,})\s*\{solution-start\}", re.M)
_SOLUTION_END = re.compile(r"^\s*(`{3,}|:{3,})\s*\{solution-end\}", re.M)


def _solution_cells(nb: dict) -> tuple[int, list[dict], list[dict]]:
    """(number of gated solutions, code cells inside them, all other cells)."""
    count, inside, sol, rest = 0, False, [], []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            (sol if inside else rest).append(cell)
            continue
        rest.append(cell)
        src = "".join(cell["source"])
        events = sorted(
            [(m.start(), True) for m in _SOLUTION_START.finditer(src)]
            + [(m.start(), False) for m in _SOLUTION_END.finditer(src)]
        )
        for _, starts in events:
            count += starts
            inside = starts
    return count, sol, rest


def _solution_code_lines(nb: dict) -> tuple[list[str], list[str]]:
    """Lines of solution code that appear nowhere else in the notebook:
    (lines of cells the site shows, lines of cells it hides)."""
    _, sol, rest = _solution_cells(nb)
    elsewhere = _norm(" ".join("".join(c["source"]) for c in rest))
    shown, hidden = [], []
    for cell in sol:
        tags = cell.get("metadata", {}).get("tags", [])
        removed = any(t in ("remove-input", "remove-cell", "remove_cell") for t in tags)
        for line in "".join(cell["source"]).splitlines():
            line = _norm(line)
            if len(line) >= 20 and not line.startswith("#") and line not in elsewhere:
                (hidden if removed else shown).append(line)
    return shown, hidden


def _chapters(site: Path) -> list[str]:
    return sorted(p.stem for p in (ROOT / "book").glob("*.ipynb") if (site / "book" / f"{p.stem}.html").exists())


def test_student_edition_has_the_exercises_and_no_solutions(site, student_site, book_src):
    """Every exercise is in the student edition; no solution text or code is.

    The solutions' text is taken from the normal build (each chapter's
    ``div.solution`` blocks, one per ``{solution-start}`` of its notebook); a
    line of it that the page shows nowhere outside the solutions must not
    appear anywhere in the student edition's page.  The solutions' code is
    taken from the notebooks: each line of a solution code cell that the
    notebook has nowhere else must be on the normal page (unless the cell is
    hidden) and not on the student edition's page.
    """
    chapters = _chapters(site)
    assert chapters, "no chapter page in the site"
    problems, checked, n_solutions = [], 0, 0
    for ch in chapters:
        nb = json.loads((book_src / "book" / f"{ch}.ipynb").read_text(encoding="utf8"))
        n_gated, _, _ = _solution_cells(nb)
        normal = _read_page(site / "book" / f"{ch}.html")
        student = _read_page(student_site / "book" / f"{ch}.html")
        n_solutions += n_gated
        if len(normal.solutions) != n_gated:
            problems.append(
                f"{ch}: {n_gated} solutions in the notebook, {len(normal.solutions)} on the page"
            )
        if student.solutions:
            problems.append(f"{ch}: {len(student.solutions)} solutions in the student edition")
        if student.exercises != normal.exercises:
            problems.append(
                f"{ch}: {normal.exercises} exercises, {student.exercises} in the student edition"
            )
        outside = _norm("".join(normal.other))
        page = _norm("".join(student.other))
        for i, sol in enumerate(normal.solutions, 1):
            lines = [_norm(ln) for ln in "".join(sol).splitlines()]
            lines = [ln for ln in lines if len(ln) >= 20 and ln not in outside]
            if not lines and n_gated:
                problems.append(f"{ch}: solution {i} has no text of its own to look for")
            for ln in lines:
                checked += 1
                if ln in page:
                    problems.append(f"{ch}: solution {i}'s text in the student edition: {ln!r}")
        shown, hidden = _solution_code_lines(nb)
        normal_text = _norm("".join(normal.other + [t for s in normal.solutions for t in s]))
        for ln in shown:
            checked += 1
            if ln not in normal_text:
                problems.append(f"{ch}: solution code not on the normal page: {ln!r}")
        for ln in shown + hidden:
            if ln in page:
                problems.append(f"{ch}: solution code in the student edition: {ln!r}")
    assert n_solutions > 0, "no {solution-start} in any chapter"
    assert checked > n_solutions, "too little solution text to compare"
    assert not problems, "\n".join(problems[:40])


def test_student_edition_downloads_have_no_solutions(student_site, book_src):
    """The notebooks behind the download button keep the exercises and lose the solutions."""
    problems = []
    downloads = sorted((student_site / "_sources" / "book").glob("*.ipynb"))
    assert downloads, "no notebook offered for download"
    for path in downloads:
        nb = json.loads(path.read_text(encoding="utf8"))
        original = json.loads((book_src / "book" / path.name).read_text(encoding="utf8"))
        text = "\n".join("".join(c["source"]) for c in nb["cells"])
        if "{solution-start}" in text or "{solution-end}" in text:
            problems.append(f"{path.name}: solution markers left")
        shown, hidden = _solution_code_lines(original)
        problems += [f"{path.name}: solution code left: {ln!r}" for ln in shown + hidden if ln in _norm(text)]
        n_ex = sum("{exercise}" in "".join(c["source"]) for c in original["cells"])
        if sum("{exercise}" in "".join(c["source"]) for c in nb["cells"]) != n_ex:
            problems.append(f"{path.name}: exercises lost")
    assert not problems, "\n".join(problems[:40])


def test_student_edition_in_the_browser(driver, student_server, student_site):
    """A chapter of the student edition shows its exercises and no solution."""
    from selenium.webdriver.common.by import By

    base = f"http://127.0.0.1:{student_server.server_port}/"
    for ch in _chapters(student_site):
        driver.get(base + f"book/{ch}.html")
        exercises = driver.find_elements(By.CSS_SELECTOR, "div.exercise")
        solutions = driver.find_elements(By.CSS_SELECTOR, "div.solution, .solution-title")
        text = driver.find_element(By.TAG_NAME, "body").get_attribute("textContent")
        assert not solutions, f"{ch}: solution blocks in the student edition"
        assert "Solution to" not in text, f"{ch}: a solution title in the student edition"
        if "{exercise}" in (ROOT / "book" / f"{ch}.ipynb").read_text(encoding="utf8"):
            assert exercises, f"{ch}: no exercise shown"
    assert not student_server.failures, student_server.failures


def _search_terms(site: Path) -> set[str]:
    text = (site / "searchindex.js").read_text(encoding="utf8")
    return set(json.loads(text[text.index("(") + 1 : text.rindex(")")])["terms"])


def test_student_edition_search_index(site, student_site):
    """The student edition's search index has no word the normal one lacks,
    and lacks the words only the solutions use."""
    normal, student = _search_terms(site), _search_terms(student_site)
    assert student <= normal, sorted(student - normal)[:20]
    assert len(student) < len(normal)
