"""What the browser checks share: a JupyterLab server on a copy of the notebooks, headless
Chromium (Debian's package, driven by Playwright through ``executable_path``: browsers cannot
be downloaded here), and the helpers that open a notebook, run it and read what it shows.

Two test files use it, ``test_browser.py`` (the lessons as stored) and ``test_browser_labs.py``
(the student labs and lesson 03 run, a broken lesson, the explorer), so that pytest-xdist runs
them side by side, each with its own server. Without Chromium or Playwright they skip, except
under CI (``CI=true``), where they fail: CI installs chromium itself.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from assigned import assigned_dist

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LABS = sorted(p.stem for p in (ROOT / "notebooks" / "labs").glob("lab*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TOKEN = "cnnlab-browser-check"
_PAGES = itertools.count()
# a notebook that must fail the check: stale display name, an error, a cell after it
FIXTURE = ROOT / "tests" / "fixtures" / "browser" / "broken_lesson.ipynb"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

# one JavaScript call: what the open notebook holds after a run (JupyterLab 4 model API)
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.filter(c => c.model.type === 'code').map((c, i) => ({
    index: i,
    tags: c.model.getMetadata('tags') || [],
    count: c.model.executionCount,
    errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                .map(o => o.ename + ': ' + o.evalue),
  }));
}"""
OUTPUT_TEXT_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON())
  .map(o => [].concat(o.text || (o.data && o.data['text/plain']) || []).join(''))
  .join('\\n')"""
BUSY_JS = """() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status
  !== 'idle'"""
RUN_ALL_JS = """() => {
  window.cnnlabRunAll = 'running';
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    () => { window.cnnlabRunAll = 'done'; }, () => { window.cnnlabRunAll = 'failed'; });
}"""


def _missing() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(tmp_path_factory: pytest.TempPathFactory, labs: bool) -> Iterator[str]:
    """A JupyterLab server on a copy of the lessons (and, with ``labs``, the broken fixture and
    the student lab notebooks as `cnnlab assign` writes them); yields its URL."""
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(f"browser check cannot run in CI: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "labs"))
    if (ROOT / "img").is_dir():
        shutil.copytree(ROOT / "img", root / "img")
    dist = assigned_dist(tmp_path_factory) if labs else None
    for lab in LABS if labs else []:  # what students open: the notebooks `cnnlab assign` writes
        shutil.copytree(dist / lab / "student", root / "notebooks" / lab)
    if labs:
        shutil.copy(FIXTURE, root / "notebooks" / FIXTURE.name)
    # every cell in the page, not only those scrolled into view: the checks read what it shows
    tracker = root / ".lab-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".jupyter-runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".lab-settings")}
    env.pop("CNNLAB_WIDGETS", None)
    log = (root / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("JupyterLab did not start:\n"
                                + (root / "server.log").read_text(errors="replace")[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def chromium() -> Iterator[object]:
    """Headless Chromium, launched through Playwright (a test module's ``browser`` fixture)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


_TABS: dict[int, object] = {}  # one JupyterLab tab per browser, reused from notebook to notebook
OPENED_JS = """(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.context && w.context.path === path && w.context.isReady
            && w.sessionContext.session?.kernel?.status === 'idle'); }"""
OPEN_JS = """(path) => { window.jupyterapp.commands.execute('docmanager:open',
                                                     {path: path, factory: 'Notebook'}); }"""
# closes every document without asking to save (a run leaves it modified), then the tab is
# empty of documents: the next notebook opens in it without loading JupyterLab again
CLOSE_ALL_JS = """async () => {
  const shell = window.jupyterapp.shell;
  for (const w of [...shell.widgets('main')]) {
    if (w.context) { w.context.model.dirty = false; }
  }
  const closed = window.jupyterapp.commands.execute('application:close-all');
  const late = new Promise(resolve => setTimeout(() => resolve('late'), 20000));
  if ((await Promise.race([closed, late])) === 'late') { return -1; }
  // the command settles before the last document is disposed; JupyterLab may open a launcher
  // in the emptied area: wait (at most 10 s) until no document is left
  const documents = () => [...shell.widgets('main')].filter(w => w.context).length;
  for (let i = 0; i < 100 && documents(); i++) { await new Promise(r => setTimeout(r, 100)); }
  return documents();
}"""


# waits (at most 10 s) until JupyterLab has written the kernel's metadata into the opened
# notebook, as it does once the kernel connects: kernelspec and language_info equal the
# kernel's (key order aside). A stale stored value then shows as a modified notebook.
SETTLED_JS = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const [info, spec] = await Promise.all([kernel.info, kernel.spec]);
  const canon = v => Array.isArray(v) ? v.map(canon) : (v && typeof v === 'object')
    ? Object.keys(v).sort().map(k => [k, canon(v[k])]) : v;
  const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));
  const model = panel.context.model;
  for (let i = 0; i < 100; i++) {
    const stored = model.getMetadata('kernelspec') || {};
    if (stored.name === kernel.name && stored.display_name === spec.display_name
        && same(model.getMetadata('language_info'), info.language_info)) { return true; }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  return false;
}"""


def _settle(page) -> None:
    """Wait until JupyterLab has rewritten the notebook's kernel metadata (see SETTLED_JS)."""
    if not page.evaluate(SETTLED_JS):
        raise AssertionError("JupyterLab did not write the kernel's metadata within 10 s")


def _open(browser: object, lab_url: str, lesson: str):  # -> playwright Page
    """The browser's tab with ``notebooks/<lesson>`` open and its kernel idle. The first call
    loads JupyterLab (about 7 s of a 2-core machine); later ones reuse that tab."""
    path = f"notebooks/{lesson}"
    page = _TABS.get(id(browser))
    if page is not None and not page.is_closed():
        page.evaluate(OPEN_JS, path)
    else:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # a workspace of its own: JupyterLab would otherwise reopen every notebook opened in
        # earlier runs, each with a kernel competing for two cores
        workspace = f"check-{next(_PAGES)}"
        page.goto(f"{lab_url}/lab/workspaces/{workspace}/tree/{path}?token={TOKEN}")
        _TABS[id(browser)] = page
    page.wait_for_function(OPENED_JS, arg=path, timeout=60_000)
    return page


def _run_all(page, timeout_s: float = 120) -> None:
    """Run All, then wait (at most ``timeout_s``) until JupyterLab says it has finished: the
    command's promise settles when every cell has run, or at the first error. It is not awaited
    through ``evaluate`` (it never settles if the kernel dies): the page records it, and this
    polls with a deadline. Counts and prompts are not read: off-screen cells of a windowed
    notebook are not rendered, so their prompts can lag behind."""
    page.evaluate(RUN_ALL_JS)
    deadline = time.monotonic() + timeout_s
    while page.evaluate("() => window.cnnlabRunAll") == "running" or page.evaluate(BUSY_JS):
        assert time.monotonic() < deadline, "Run All did not finish in time"
        time.sleep(0.5)


def _problems(browser: object, lab_url: str, lesson: str) -> list[str]:
    """Open a lesson, run all its cells, and list what a student would see go wrong."""
    page = _open(browser, lab_url, lesson)
    problems = []
    try:
        _settle(page)
        if _opened_modified(page, lab_url, f"notebooks/{lesson}"):
            problems.append("opening it marks it modified (stored metadata is stale)")
        _run_all(page)
        cells = page.evaluate(CELLS_JS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{lesson}.png"), full_page=True)
        problems += [f"code cell {c['index']} shows {c['errors']}" for c in cells
                     if c["errors"] and "nbval-raises-exception" not in c["tags"]]
        not_run = [c["index"] for c in cells if c["count"] is None]
        if not_run:
            problems.append(f"code cells {not_run} did not run")
    finally:
        _close(page, lab_url)
    return problems


def _opened_modified(page, lab_url: str, path: str) -> bool:
    """Whether opening the notebook marked it modified for a reason the repository controls.

    JupyterLab writes the kernel's `language_info` into the notebook when it connects, so with
    another patch release of Python (3.11.2 here, 3.11.7 where the outputs were stored) every
    notebook shows as modified: that alone is the machine, not stale metadata."""
    if not page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty"):
        return False
    now = json.loads(page.evaluate("() => JSON.stringify(window.jupyterapp.shell.currentWidget"
                                   ".context.model.toJSON().metadata)"))
    with urllib.request.urlopen(f"{lab_url}/api/contents/{path}?content=1&token={TOKEN}",
                                timeout=30) as response:
        stored = json.load(response)["content"]["metadata"]
    if now == stored:
        return True  # the cells changed
    for metadata in (now, stored):
        metadata.get("language_info", {}).pop("version", None)
    return now != stored


def _close(page, lab_url: str) -> None:
    """Close the notebook (the tab stays for the next one; a tab that does not answer is
    closed too), then shut down every kernel of the server through its REST API, so that a
    hung page cannot hang this (kernels left running slow the rest)."""
    try:
        left = page.evaluate(CLOSE_ALL_JS)
        if left:
            raise RuntimeError(f"{left} documents stayed open")
    except Exception:  # noqa: BLE001 - any failure: start the next check in a fresh tab
        page.close()
    request = urllib.request.Request(f"{lab_url}/api/kernels?token={TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as response:
        kernels = json.load(response)
    for kernel in kernels:
        urllib.request.urlopen(urllib.request.Request(
            f"{lab_url}/api/kernels/{kernel['id']}?token={TOKEN}", method="DELETE"), timeout=30)


def module_fixtures(labs: bool) -> tuple[object, object]:
    """The ``lab_url`` and ``browser`` fixtures of one test file: a server and a browser of its
    own, so that the files run side by side (``lab_url, browser = module_fixtures(...)``)."""

    @pytest.fixture(scope="module")
    def lab_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        yield from serve(tmp_path_factory, labs=labs)

    @pytest.fixture(scope="module")
    def browser(lab_url: str) -> Iterator[object]:
        yield from chromium()

    return lab_url, browser


# what the page shows of each code cell's stored outputs (windowing is off: all are rendered)
SHOWN_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code').map((c, i) => ({
    index: i,
    stored: c.model.outputs.length,
    shown: c.node.querySelectorAll('.jp-OutputArea-output').length,
    unrendered: [...c.node.querySelectorAll('.jp-OutputArea-output')]
      .filter(o => !o.children.length && !o.textContent.trim()).length,
    images: [...c.node.querySelectorAll('.jp-OutputArea-output img')]
      .map(img => ({alt: (img.getAttribute('alt') || '').trim(), loaded: img.naturalWidth > 0})),
  }))"""


def _display_problems(page) -> list[str]:
    """What is wrong with the stored outputs as JupyterLab shows them: an output with no view,
    an empty view, an image that did not load or has no alt text."""
    page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                           ".every(img => img.complete)", timeout=30_000)
    problems = []
    for cell in page.evaluate(SHOWN_JS):
        where = f"code cell {cell['index']}"
        if cell["shown"] != cell["stored"]:
            problems.append(f"{where} shows {cell['shown']} of its {cell['stored']} outputs")
        if cell["unrendered"]:
            problems.append(f"{where} has {cell['unrendered']} empty output(s)")
        for image in cell["images"]:
            if not image["loaded"]:
                problems.append(f"{where} has an image that does not load")
            if not image["alt"]:
                problems.append(f"{where} has an image without alt text")
    return problems
