"""``cnnlab site OUT``: the course as a static website (Sphinx, MyST-NB, sphinx-book-theme).

The site holds an introduction (README.md's, up to "Quick start"), the ten lessons in order with
their stored outputs, and the labs as students get them: the notebooks ``cnnlab assign`` writes,
never a master. Everything is staged in a temporary folder first, so the repository's notebooks
are never edited: solution cells (collapsed in JupyterLab, first line ``# Solution``) get
MyST-NB's ``hide-input`` tag, a closed ``<details>`` on the page, and every page gains a
paragraph that links the notebook (copied next to the page) and says how to open it, with the
install source an instructor set with ``cnnlab install-source`` (read by ``cnnlab.hosted``).

The site works offline: no MathJax (the lessons have no maths), no ipywidgets JavaScript from a
CDN, and the theme's fonts and scripts are its own files. The theme's colours pass WCAG 2.1 AA
as they are (tests/test_site.py runs axe-core on every page); ``static/cnnlab-site.css`` only
stops the fade-in of an opened solution for readers who ask for reduced motion. Sphinx is
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import io
import json
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import hosted

if TYPE_CHECKING:
    from sphinx.application import Sphinx

MARKER = ".cnnlab-site"  # written into OUT: a folder holding it may be rebuilt over
SOLUTION = "# Solution"
CSS = Path(__file__).with_name("static") / "cnnlab-site.css"
INSTALL_HINT = 'pip install -e ".[site]"'
# conf.py of the staged project; {execution} is "off" or "force"
CONF = '''\
project = "cnnlab"
html_title = "cnnlab: convolutional neural networks in PyTorch"
extensions = ["myst_nb"]
exclude_patterns = ["_extra", "_static", "**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_theme_options = {{
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_navbar_depth": 1,
    "navigation_with_keys": False,
}}
html_static_path = ["_static"]
html_css_files = ["cnnlab-site.css"]
html_extra_path = ["_extra"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
pygments_style = "default"
nb_execution_mode = {execution!r}
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_ipywidgets_js = {{}}
nb_merge_streams = True
myst_heading_anchors = 3
from cnnlab.site import sphinx_setup as setup
'''


def sphinx_setup(app: Sphinx) -> None:
    """conf.py's ``setup``: MyST-NB's hidden-cell bar without its ``aria-label``, so that a
    screen reader announces what the bar shows ("Show the solution"), not "Toggle hidden
    content" (WCAG 2.5.3, label in name)."""
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput

    def visit(translator: Any, node: Any) -> None:
        translator.body.append(f'<details class="admonition hide {" ".join(node["classes"])}">'
                               '\n<summary>\n')
        for state, prompt in (("collapsed", "prompt_show"), ("expanded", "prompt_hide")):
            translator.body.append(f'<p class="{state} admonition-title">'
                                   f'{html.escape(node[prompt])}</p>\n')
        translator.body.append("</summary>\n")

    app.add_node(HideCodeCellNode, override=True, html=(visit, depart_HideCellInput))


class SiteError(Exception):
    """A problem the command reports in one sentence (no traceback)."""


@dataclass(frozen=True)
class Page:
    """One notebook page: its document name and the notebook it is made from."""

    docname: str  # "lessons/01_from_dense_to_convolution"
    notebook: Path
    extras: tuple[Path, ...] = ()  # files students need beside it (a lab's public checks)


def introduction(readme: str) -> str:
    """README.md's introduction as MyST Markdown: everything before "## Quick start", with
    in-page links (``[text](#anchor)``) made plain text and notebook names linked to pages."""
    head = re.split(r"^## Quick start\b.*$", readme, maxsplit=1, flags=re.MULTILINE)[0]
    head = re.sub(r"\[([^\]]+)\]\(#[^)]*\)", r"\1", head)
    head = re.sub(r"`(\d\d_[a-z0-9_]+)`", r"[\1](lessons/\1.ipynb)", head)
    return re.sub(r"`(lab\d_[a-z0-9_]+)`", r"[\1](labs/\1.ipynb)", head).rstrip() + "\n"


def how_to_open(notebook: dict, files: Sequence[str]) -> str:
    """The Markdown paragraph under a page's title: download links and how to run it."""
    links = " and ".join(f'<a href="{name}" download><code>{name}</code></a>' for name in files)
    together = " (keep both files in one folder)" if len(files) > 1 else ""
    source = hosted.install_source(notebook)
    if source is None:
        hosted_text = "install cnnlab there first, as the course's README says"
    elif not source:
        hosted_text = ("its first cell installs cnnlab there from the source your instructor "
                       "sets with `cnnlab install-source` (none is set in this copy)")
    elif source.endswith(".whl") and "://" not in source:
        hosted_text = (f"upload `{source}` (from your instructor) beside it first; its first "
                       "cell installs cnnlab from that wheel")
    else:
        hosted_text = f"its first cell installs cnnlab from `{source}`"
    solutions = any("".join(c.get("source", "")).startswith(SOLUTION)
                    for c in notebook["cells"] if c.get("cell_type") == "code")
    hidden = (" Solutions stay hidden on this page until you click *Show the solution*."
              if solutions else "")
    return (f"**Run this notebook yourself.** Download {links}{together}. Open it in JupyterLab "
            "on your computer (`jupyter lab`, after installing cnnlab as the course's README "
            "says), or upload it to a hosted runtime such as Google Colab or Kaggle: "
            f"{hosted_text}.{hidden}\n")


def staged_notebook(notebook: dict, files: Sequence[str]) -> dict:
    """A copy of ``notebook`` for the site: collapsed cells tagged ``hide-input`` (solutions
    labelled as such) and the how-to-open paragraph after the first Markdown cell."""
    cells = []
    for cell in notebook["cells"]:
        cell = json.loads(json.dumps(cell))
        meta = cell.setdefault("metadata", {})
        text = "".join(cell.get("source", ""))
        if cell["cell_type"] == "code" and meta.get("jupyter", {}).get("source_hidden"):
            meta["tags"] = [*meta.get("tags", []), "hide-input"]
            what = ("the solution" if text.startswith(SOLUTION) else
                    "the install cell" if hosted.is_install_cell(text) else "the code")
            meta["mystnb"] = {"code_prompt_show": f"Show {what}",
                              "code_prompt_hide": f"Hide {what}"}
        cells.append(cell)
    first = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"), -1)
    cells.insert(first + 1, {"cell_type": "markdown", "metadata": {},
                             "source": how_to_open(notebook, files)})
    for number, cell in enumerate(cells):  # nbformat 4.5 wants an id on every cell
        cell.setdefault("id", f"cnnlab-site-{number}")
    metadata = {k: v for k, v in notebook.get("metadata", {}).items() if k != "widgets"}
    return dict(notebook, cells=cells, metadata=metadata)


def _index(readme: str, pages: Sequence[Page]) -> str:
    """index.md: the introduction, then one table of contents for lessons and one for labs."""
    parts = [introduction(readme)]
    for caption, folder in (("Lessons", "lessons/"), ("Labs", "labs/")):
        names = "\n".join(p.docname for p in pages if p.docname.startswith(folder))
        parts.append(f"\n```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n{names}\n```\n")
    return "".join(parts)


def student_labs(course: Path, labs: Path | None, work: Path) -> list[Page]:
    """The labs' student notebooks: from ``labs`` (an earlier ``cnnlab assign --out`` folder)
    or built now with ``cnnlab assign`` into ``work`` (which runs each master's solution)."""
    masters = sorted((course / "notebooks" / "labs").glob("lab*.ipynb"))
    if labs is None:
        from cnnlab.grading.assign import assign_one

        labs = work / "assigned"
        for master in masters:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    assign_one(master, labs)
            except Exception as error:  # noqa: BLE001 - a broken master: say which, stop
                raise SiteError(f"cnnlab assign failed for {master.name}: {error}") from None
    pages = []
    for master in masters:
        folder = labs / master.stem / "student"
        notebook = folder / f"{master.stem}.ipynb"
        if not notebook.is_file():
            raise SiteError(f"no student notebook {notebook}: run `cnnlab assign "
                            f"notebooks/labs/*.ipynb --out {labs}` first, or leave out --labs")
        pages.append(Page(f"labs/{master.stem}", notebook,
                          tuple(sorted(folder.glob("*.checks.json")))))
    return pages


def stage(course: Path, pages: Sequence[Page], source: Path, execute: bool) -> None:
    """Write the Sphinx project into ``source``: conf.py, index.md, staged notebooks, the
    notebooks themselves (in ``_extra``, copied beside each page) and the CSS."""
    (source / "_static").mkdir(parents=True)
    shutil.copy(CSS, source / "_static" / CSS.name)
    (source / "conf.py").write_text(CONF.format(execution="force" if execute else "off"))
    readme = (course / "README.md").read_text(encoding="utf-8")
    (source / "index.md").write_text(_index(readme, pages), encoding="utf-8")
    for page in pages:
        folder = Path(page.docname).parent
        extra = source / "_extra" / folder
        extra.mkdir(parents=True, exist_ok=True)
        files = [page.notebook, *page.extras]
        for file in files:
            shutil.copy(file, extra / file.name)
        notebook = json.loads(page.notebook.read_text(encoding="utf-8"))
        staged = staged_notebook(notebook, [f.name for f in files])
        if page.docname.startswith("labs/"):  # exercises to fill in: never executed
            staged["metadata"]["mystnb"] = {"execution_mode": "off"}
        (source / folder).mkdir(parents=True, exist_ok=True)
        (source / f"{page.docname}.ipynb").write_text(json.dumps(staged), encoding="utf-8")


def _check_out(out: Path) -> None:
    """Refuse an OUT that exists and is not an earlier site (or an empty folder)."""
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out} exists and is a file; give a new folder or an earlier site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(f"{out} exists and is not a site that `cnnlab site` built (no "
                        f"{MARKER} in it); give a new or empty folder")


def build_site(out: Path, course: Path = Path("."), labs: Path | None = None,
               execute: bool = False) -> list[str]:
    """Build the site into ``out``; the warnings Sphinx printed (an empty list when none).

    ``course`` holds README.md, notebooks/ and notebooks/labs/; ``labs`` an earlier
    ``cnnlab assign`` output (default: assign the labs now); ``execute`` re-runs the lessons.
    An earlier site in ``out`` is replaced only once the new one is built.
    """
    try:
        from sphinx.cmd.build import build_main
    except ImportError:
        raise SiteError(f"Sphinx is not installed; install the site tools: {INSTALL_HINT}"
                        ) from None
    course, out = Path(course), Path(out)
    lessons = sorted((course / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not lessons or not (course / "README.md").is_file():
        raise SiteError(f"no README.md and notebooks/NN_*.ipynb in {course.resolve()}; run it "
                        "from the course folder or pass --course")
    _check_out(out)
    with tempfile.TemporaryDirectory(prefix="cnnlab-site-") as tmp:
        work = Path(tmp)
        pages = [Page(f"lessons/{p.stem}", p) for p in lessons]
        pages += student_labs(course, labs, work)
        stage(course, pages, work / "source", execute)
        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
                warnings.catch_warnings():  # the tools' own deprecations are not the user's
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            status = build_main(["-b", "html", "-q", "-j", "1", "-d", str(work / "doctrees"),
                                 str(work / "source"), str(work / "html")])
        said = log.getvalue()
        if status:
            raise SiteError(f"Sphinx failed (exit status {status}):\n{said.strip()}")
        (work / "html" / MARKER).write_text("built by `cnnlab site`; it may rebuild this "
                                            "folder\n")
        (work / "html" / ".buildinfo").unlink(missing_ok=True)
        (work / "html" / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ as it is
        for debug in (work / "html" / "_static").rglob("*.map"):  # the theme's source maps:
            debug.unlink()  # 3.5 MB that only a browser's developer tools read
        if out.exists():
            shutil.rmtree(out)
        shutil.move(work / "html", out)
    return [line for line in said.splitlines() if "WARNING" in line or "ERROR" in line]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab site",
        description="Build the course as a static website in OUT: the introduction, the ten "
        "lessons with their stored outputs (solutions hidden behind a click) and the labs' "
        "student notebooks. Open OUT/index.html, or publish OUT as it is (GitHub Pages, any "
        "web server); it needs no network.")
    parser.add_argument("out", type=Path, metavar="OUT",
                        help="a new folder, or one an earlier `cnnlab site` built (rebuilt)")
    parser.add_argument("--course", type=Path, default=Path("."),
                        help="the folder with README.md and notebooks/ (default: .)")
    parser.add_argument("--labs", type=Path, metavar="DIST",
                        help="take the student labs from an earlier `cnnlab assign --out DIST` "
                        "(default: assign them now, which runs each master's solution)")
    parser.add_argument("--execute", action="store_true",
                        help="re-run the lessons while building instead of showing their "
                        "stored outputs (slow)")
    return parser


def main(argv: Sequence[str] = ()) -> int:
    """``cnnlab site OUT``: exit status 0 when built, 1 when not (with one message why)."""
    args = _parser().parse_args(list(argv))
    try:
        said = build_site(args.out, args.course, args.labs, args.execute)
    except SiteError as error:
        print(f"cnnlab site: {error}", file=sys.stderr)
        return 1
    for line in said:
        print(line, file=sys.stderr)
    print(f"cnnlab site: built {args.out / 'index.html'}")
    return 0
