"""`cnnlab site OUT`: the course as a static website (Sphinx + MyST-NB, built once per module).

What it guarantees: the introduction, the ten lessons and the four student labs in order; no
solution line of any lab master in any built file; exercise solutions in closed ``<details>``;
the animations' GIFs on their pages; no asset from the network; and, in Debian's Chromium, no
axe-core WCAG 2.1 A/AA violation on any page. Browser checks skip without Chromium or
Playwright, except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import base64
import functools
import html as html_lib
import http.server
import io
import json
import posixpath
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from assigned import LAB_NAMES, assigned_dist
from browser_support import IN_CI, _missing, chromium
from PIL import Image

from cnnlab import cli
from cnnlab import site as cnnlab_site
from cnnlab.grading.master import read_cases, student_notebook

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index", *(f"lessons/{n}" for n in LESSONS), *(f"labs/{n}" for n in LAB_NAMES)]
ANIMATED = ("02", "03", "05", "08")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], float]:
    """(the site, the warnings Sphinx printed, seconds taken), built once for the module."""
    try:
        import sphinx  # noqa: F401
    except ImportError:  # the dev extra includes the site tools: in CI they must be there
        (pytest.fail if IN_CI else pytest.skip)(f"no Sphinx: {cnnlab_site.INSTALL_HINT}")
    dist = assigned_dist(tmp_path_factory)
    out = tmp_path_factory.mktemp("site") / "out"
    out.mkdir()  # an earlier site, which the build replaces
    (out / cnnlab_site.MARKER).write_text("")
    (out / "stale.html").write_text("from an earlier build")
    start = time.perf_counter()
    warnings = cnnlab_site.build_site(out, ROOT, labs=dist)
    return out, warnings, time.perf_counter() - start


@pytest.fixture(scope="module")
def site(built: tuple[Path, list[str], float]) -> Path:
    return built[0]


def _html(site: Path) -> dict[str, str]:
    return {str(p.relative_to(site).with_suffix("")): p.read_text(encoding="utf-8")
            for p in site.rglob("*.html")}


def test_builds_every_page_without_warnings(built):
    site, warnings, seconds = built
    assert warnings == []
    assert set(PAGES) <= set(_html(site)), sorted(set(PAGES) - set(_html(site)))
    assert (site / cnnlab_site.MARKER).is_file() and not (site / "stale.html").exists()
    assert not (site / ".doctrees").exists()  # Sphinx's cache is not published
    assert (site / ".nojekyll").is_file()  # or GitHub Pages would hide _static/
    print(f"built in {seconds:.1f} s")


def test_navigation_is_intro_lessons_then_labs(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    nav = index[index.index('<nav class="bd-links'):]
    order = re.findall(r'href="((?:lessons|labs)/[\w]+)\.html"', nav)
    assert order[:len(PAGES) - 1] == PAGES[1:]
    assert "convolutional neural networks in PyTorch" in index  # README's introduction
    for before, page, after in zip(PAGES[:-1], PAGES[1:], [*PAGES[2:], None], strict=True):
        html = (site / f"{page}.html").read_text(encoding="utf-8")
        links = dict(re.findall(r'class="(left-prev|right-next)"\s+href="([^"]+)"', html))
        here = posixpath.dirname(page)
        assert posixpath.normpath(posixpath.join(here, links["left-prev"])) == f"{before}.html"
        assert (posixpath.normpath(posixpath.join(here, links["right-next"])) if after else
                links.get("right-next")) == (f"{after}.html" if after else None), page


def _squash(text: str) -> str:
    """Text without whitespace and quotes, as `cnnlab assign` compares for leaks."""
    return re.sub(r"[\s'\"]", "", text)


def _secret_lines() -> dict[str, list[str]]:
    """Per lab: every solution line and every line of a hidden case's code in its master that
    is distinctive: 12 characters or more once squashed, and not in the student notebook, the
    public cases or any lesson (a lab may repeat a lesson's `with torch.no_grad():`, and its
    student code may share a line with its solution)."""
    lessons = "".join(_squash((ROOT / "notebooks" / f"{n}.ipynb").read_text()) for n in LESSONS)
    secrets = {}
    for lab in LAB_NAMES:
        master = ROOT / "notebooks" / "labs" / f"{lab}.ipynb"
        student, _, removed = student_notebook(master, lab)
        cases = read_cases(master)
        public = _squash("".join("".join(c["source"]) for c in student["cells"])
                         + "".join(c.code for c in cases if c.public)) + lessons
        hidden = [line for c in cases if not c.public for line in c.code.splitlines()]
        lines = (_squash(line.split("#")[0]) for line in [*removed, *hidden])
        secrets[lab] = sorted({line for line in lines if len(line) >= 12 and line not in public})
    return secrets


def test_labs_are_student_versions_without_solutions_or_hidden_cases(site):
    secrets = _secret_lines()
    assert all(len(lines) >= 10 for lines in secrets.values()), secrets  # a real check
    leaks = []
    for path in (p for p in site.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".html":
            text = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
        squashed = _squash(text)
        leaks += [f"{path.relative_to(site)}: {line}" for lines in secrets.values()
                  for line in lines if line in squashed]
    assert leaks == []
    for lab in LAB_NAMES:
        shipped = json.loads((site / "labs" / f"{lab}.ipynb").read_text(encoding="utf-8"))
        master = ROOT / "notebooks" / "labs" / f"{lab}.ipynb"
        assert shipped == student_notebook(master, lab)[0]  # what `cnnlab assign` writes
        public = {c.id for c in read_cases(master) if c.public and c.static is None}
        checks = json.loads((site / "labs" / f"{lab}.checks.json").read_text())
        assert set(checks) == public, lab  # the public cases only


def test_solutions_are_closed_details(site):
    for name in LESSONS:
        html = (site / "lessons" / f"{name}.html").read_text(encoding="utf-8")
        notebook = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        solutions = sum("".join(c["source"]).startswith(cnnlab_site.SOLUTION)
                        for c in notebook["cells"] if c["cell_type"] == "code")
        blocks = re.findall(r"<details([^>]*)>(.*?)</details>", html, flags=re.S)
        hidden = [body for attrs, body in blocks
                  if "Show the solution" in body and "open" not in attrs.split()]
        assert solutions >= 4 and len(hidden) == solutions, name
        assert all(cnnlab_site.SOLUTION in re.sub(r"<[^>]+>", "", body) for body in hidden)


def test_lesson_pages_link_their_notebook_and_say_how_to_open_it(site):
    for page in PAGES[1:]:
        name = page.split("/")[1]
        html = (site / f"{page}.html").read_text(encoding="utf-8")
        assert f'<a href="{name}.ipynb" download>' in html, page
        assert "JupyterLab" in html and "Colab" in html and "install-source" in html
        source = ROOT / "notebooks" / ("labs/" if page.startswith("labs") else "") / \
            f"{name}.ipynb"
        if page.startswith("lessons"):  # the repository's notebook, unchanged
            assert (site / f"{page}.ipynb").read_bytes() == source.read_bytes()


def test_how_to_open_names_the_configured_install_source():
    from cnnlab import hosted

    def cell(source: str) -> dict:
        return {"cells": [{"cell_type": "code", "source": hosted.install_cell(source)}]}

    assert "upload `cnnlab-0.1.0-py3-none-any.whl`" in cnnlab_site.how_to_open(
        cell("cnnlab-0.1.0-py3-none-any.whl"), ["x.ipynb"])
    url = "git+https://example.org/course.git"
    assert f"installs cnnlab from `{url}`" in cnnlab_site.how_to_open(cell(url), ["x.ipynb"])
    assert "none is set" in cnnlab_site.how_to_open(cell(""), ["x.ipynb"])


def test_animations_are_animated_gifs_on_their_pages(site):
    for name in LESSONS:
        html = (site / "lessons" / f"{name}.html").read_text(encoding="utf-8")
        gifs = re.findall(r'<img src="data:image/gif;base64,([^"]+)"', html)
        assert bool(gifs) == name.startswith(ANIMATED), name
        for data in gifs:
            assert Image.open(io.BytesIO(base64.b64decode(data))).n_frames > 1


def test_references_no_network_asset(site):
    external = re.compile(r'<(?:script|link|img|iframe|source|video|audio)\b[^>]*?'
                          r'\b(?:src|href)="(?:https?:)?//', re.I)
    for page, html in _html(site).items():
        assert not external.search(html), page
        assert "mathjax" not in html.lower() and "require.js" not in html, page
    for css in site.rglob("*.css"):
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", css.read_text()), css


def test_cli_refuses_a_folder_that_is_not_a_site(tmp_path, capsys):
    pytest.importorskip("sphinx")
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["site", str(tmp_path), "--course", str(ROOT)]) == 1
    err = capsys.readouterr().err
    assert "is not a site that `cnnlab site` built" in err and "Traceback" not in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_says_how_to_install_sphinx_when_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sphinx.cmd.build", None)  # as if not installed
    assert cli.main(["site", str(tmp_path / "out")]) == 1
    assert 'pip install -e ".[site]"' in capsys.readouterr().err


def test_cli_needs_the_course_folder(tmp_path, capsys):
    pytest.importorskip("sphinx")
    assert cli.main(["site", str(tmp_path / "out"), "--course", str(tmp_path)]) == 1
    assert "run it from the course folder or pass --course" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_names_a_missing_student_lab(tmp_path, capsys):
    pytest.importorskip("sphinx")
    assert cli.main(["site", str(tmp_path / "out"), "--course", str(ROOT),
                     "--labs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"no student notebook {tmp_path / LAB_NAMES[0]}" in err and "cnnlab assign" in err
    assert not (tmp_path / "out").exists()


def test_cli_help_lists_site(capsys):
    assert cli.main(["--help"]) == 0
    assert "site" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["site", "--help"])
    assert "--execute" in capsys.readouterr().out


# ---- in a real browser -----------------------------------------------------------------

@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The site over HTTP on 127.0.0.1, as a web server would publish it."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no request log in the test output
        pass


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason is None:
        try:
            import axe_playwright_python  # noqa: F401
        except ImportError:
            reason = "axe-playwright-python is not installed (pip install -e '.[dev]')"
    if reason:
        if IN_CI:
            pytest.fail(f"site browser check cannot run in CI: {reason}")
        pytest.skip(reason)
    yield from chromium()


def _open(browser, url: str, scheme: str = "light") -> tuple[object, list[str]]:
    """A page at ``url`` whose requests to anywhere but 127.0.0.1 are blocked and listed."""
    page = browser.new_page(color_scheme=scheme, reduced_motion="reduce")
    outside: list[str] = []

    def route(request_route) -> None:
        address = urlparse(request_route.request.url)
        if address.scheme in ("data", "blob") or address.hostname == "127.0.0.1":
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")  # scripts have run; images are in
    return page, outside


def _axe(page) -> dict[str, int]:
    """axe-core's WCAG 2.1 A/AA violations on ``page`` with every solution open: rule -> count
    of elements."""
    from axe_playwright_python.sync_playwright import Axe

    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    found = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG},
                                     "resultTypes": ["violations"]})
    return {v["id"]: len(v["nodes"]) for v in found.response["violations"]}


# in the dark colour scheme (the theme follows the reader's setting): one lesson page, which
# holds every kind of element the other pages have (text, code, outputs, figures, solutions);
# the theme's dark palette is the same stylesheet on every page
DARK_PAGES = [f"lessons/{LESSONS[0]}"]


@pytest.fixture(scope="module")
def axe_results(browser, served, site) -> dict[str, dict]:
    """Per page (and scheme): the WCAG violations and the requests that left 127.0.0.1. Every
    page: the course's, then the others Sphinx writes (search, index of terms)."""
    pages = [*PAGES, *sorted(set(_html(site)) - set(PAGES))]
    pages = [name for name in pages if not name.startswith("_static/")]  # theme templates
    assert len(pages) > len(PAGES)
    results = {}
    for name, scheme in [*((n, "light") for n in pages), *((n, "dark") for n in DARK_PAGES)]:
        start = time.perf_counter()
        page, outside = _open(browser, f"{served}/{name}.html", scheme)
        results[f"{name} ({scheme})"] = {"outside": outside, "violations": _axe(page),
                                         "seconds": round(time.perf_counter() - start, 1)}
        page.close()
    print(json.dumps(results, indent=1))
    return results


def test_no_page_fetches_anything_from_the_network(axe_results):
    assert {n: r["outside"] for n, r in axe_results.items() if r["outside"]} == {}


def test_every_page_passes_axe_wcag21_aa(axe_results):
    assert {n: r["violations"] for n, r in axe_results.items() if r["violations"]} == {}


def test_every_figure_has_a_description(site):
    """axe accepts the file name that Sphinx writes as ``alt`` when an output has none, so this
    asks for more: every image's alt text is words, not a path (figures get theirs from the
    notebooks' text/html outputs)."""
    missing = {}
    for page, html in _html(site).items():
        alts = re.findall(r"<img\b[^>]*?\balt=\"([^\"]*)\"", html)
        bad = [a for a in alts if not a.strip() or re.search(r"\.(png|jpe?g|gif|svg)$", a)]
        bad += ["(no alt)"] * (html.count("<img") - len(alts))
        if bad:
            missing[page] = len(bad)
    assert missing == {}


def test_solution_opens_with_a_click(browser, served):
    page, _ = _open(browser, f"{served}/lessons/{LESSONS[0]}.html")
    solution = page.locator("details", has_text="Show the solution").first
    assert solution.get_attribute("open") is None
    assert not solution.locator(".cell_input").is_visible()
    solution.locator("summary").click()
    assert solution.locator(".cell_input").is_visible()
    page.close()
