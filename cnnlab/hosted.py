"""Installing cnnlab where a notebook runs: hosted runtimes and the torch/torchvision pair.

Colab and Kaggle start without cnnlab, and cnnlab is not on PyPI. The first code cell of every
notebook, ``install_cell(source)``, pip-installs cnnlab from ``CNNLAB_SOURCE`` (a wheel file
name, a path or a ``git+https://`` URL) when it is missing, and does nothing where it is
installed. ``cnnlab install-source SOURCE`` writes that source into the notebooks
(``set_install_source``); ``install_source`` reads it back.

``matching_torchvision`` and ``reinstall_command`` tell ``cnnlab doctor`` which torchvision
belongs to the installed torch, and the one command that repairs a broken pair.

Standard library only: nothing here imports torch, and the cell it writes imports no cnnlab.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

# torch 2.m.p <-> torchvision 0.(m + 15).p, from torch 2.4 on
_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:\+([0-9A-Za-z.]+))?")
_VISION_OFFSET = 15
_FIRST_PAIRED_MINOR = 4
# local version labels of PyTorch's own indexes: download.pytorch.org/whl/<label>
_PYTORCH_LABEL = re.compile(r"cpu|cu\d+|rocm\d+(?:\.\d+)*|xpu")
PYTORCH_INDEX = "https://download.pytorch.org/whl/"

# Both the one-line cell the lessons started with and install_cell() contain these two.
_INSTALL_MARKS = ('find_spec("cnnlab")', '"pip", "install"')
_OLD_TARGET = re.compile(r'"install", "-q", "([^"]*)"')
_CELL_ID = "cnnlab-install"
NOTEBOOK_GLOBS = ("notebooks/*.ipynb", "notebooks/labs/*.ipynb")

_CELL = '''\
CNNLAB_SOURCE = {literal}  # where pip finds cnnlab; instructors set it with `cnnlab install-source`
# Hosted runtimes (Colab, Kaggle) lack cnnlab: this cell installs it there with pip. Where
# cnnlab is installed already, it does nothing.
import os
import subprocess
import sys
import textwrap
from importlib import invalidate_caches
from importlib.util import find_spec

local_wheel = CNNLAB_SOURCE.endswith(".whl") and "://" not in CNNLAB_SOURCE
if find_spec("cnnlab") is not None:
    message = ""
elif not CNNLAB_SOURCE:
    message = ("cnnlab is not installed and CNNLAB_SOURCE is empty: "
               "see 'Hosted runtimes' in the cnnlab README.")
elif local_wheel and not os.path.exists(CNNLAB_SOURCE):  # not uploaded (yet, or again)
    message = f"To install cnnlab, upload {{os.path.abspath(CNNLAB_SOURCE)}}, then rerun this cell."
else:
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", CNNLAB_SOURCE],
                         capture_output=True, text=True)
    invalidate_caches()  # so that the next cell's `import cnnlab` sees the new files
    said = [line.strip() for line in pip.stderr.splitlines() if line.strip()] or ["no reason"]
    why = ([line for line in said if line.startswith(("ERROR", "fatal"))] or said)[-1]
    message = (f"Installed cnnlab from {{CNNLAB_SOURCE}}." if find_spec("cnnlab") else
               f"pip could not install cnnlab from {{CNNLAB_SOURCE}}: {{why}}")
if message:
    print(textwrap.shorten(message, 99))'''


def matching_torchvision(torch_version: str) -> str | None:
    """The torchvision release built for ``torch_version`` ("2.5.1+cpu" -> "0.20.1").

    None when no pairing is known: torch older than 2.4, not 2.x, a pre-release or dev build.
    """
    if not isinstance(torch_version, str):
        raise TypeError(f"matching_torchvision: expected torch's version as a string such as "
                        f"'2.5.1', got {type(torch_version).__name__} {torch_version!r}; pass "
                        "importlib.metadata.version('torch')")
    found = _RELEASE.fullmatch(torch_version.strip())
    if not found or found[1] != "2" or int(found[2]) < _FIRST_PAIRED_MINOR:
        return None
    return f"0.{int(found[2]) + _VISION_OFFSET}.{found[3]}"


def _public(version: str) -> str:
    """A version without its local label: "2.5.1+cpu" -> "2.5.1"."""
    return version.strip().split("+", 1)[0]


def _label(version: str) -> str:
    """A version's local label, the build it names: "2.5.1+cpu" -> "cpu", "2.5.1" -> ""."""
    return version.strip().partition("+")[2]


def reinstall_command(torch_version: str) -> str | None:
    """The one pip command that installs ``torch_version`` with its matching torchvision.

    A PyTorch index build (``+cpu``, ``+cu126``, ``+rocm6.2``) stays on that index. None when
    no torchvision is known to match (see ``matching_torchvision``).
    """
    vision = matching_torchvision(torch_version)
    if vision is None:
        return None
    label = _label(torch_version)
    index = f"--index-url {PYTORCH_INDEX}{label} " if _PYTORCH_LABEL.fullmatch(label) else ""
    return (f"pip install --force-reinstall {index}torch=={_public(torch_version)} "
            f"torchvision=={vision}")


def torch_pair_problem(torch_version: str, torchvision_version: str) -> str:
    """Why these installed versions do not belong together, or "" when they do (or when no
    pairing is known for this torch)."""
    vision = matching_torchvision(torch_version)
    if vision is None:
        return ""
    if _public(torchvision_version) != vision:
        return f"torch {torch_version} needs torchvision {vision}"
    torch_build, vision_build = _label(torch_version), _label(torchvision_version)
    if torch_build != vision_build:
        return (f"torch is the {torch_build or 'PyPI'} build and torchvision the "
                f"{vision_build or 'PyPI'} build: they come from different indexes")
    return ""


def _check_source(source: str) -> str:
    """``source`` if pip can be given it as one requirement; "" (no source) is allowed."""
    if not isinstance(source, str):
        raise TypeError(f"expected the install source as a string (a wheel file name, a path "
                        f"or a git+https:// URL), got {type(source).__name__} {source!r}")
    if source and not source.isprintable():
        raise ValueError(f"expected an install source on one line, got {source!r}, which "
                         "holds a newline, tab, NUL or other control character; remove it")
    if source != source.strip():
        raise ValueError(f"expected an install source without leading or trailing spaces, "
                         f"got {source!r}; use {source.strip()!r}")
    if source.startswith("-"):
        raise ValueError(f"expected an install source, got {source!r}, which pip would read "
                         "as an option; give a file name, a path (./x.whl) or a URL instead")
    return source


def install_cell(source: str = "") -> str:
    """The source text of the first code cell of a notebook: installs cnnlab with pip from
    ``source`` where cnnlab is missing, and prints nothing where it is installed.

    ``source`` is whatever pip accepts as one requirement: the file name of a wheel that
    students upload to the runtime's working folder (Colab: the Files pane), a path, or a
    ``git+https://`` URL. "" leaves it unset: the cell then says that no source is set.
    """
    literal = json.dumps(_check_source(source), ensure_ascii=False)  # a valid Python literal
    return _CELL.format(literal=literal)


def is_install_cell(text: str) -> bool:
    """Whether a code cell's text is an install cell: ``install_cell``'s or the one-line
    cell the lessons started with."""
    return all(mark in text for mark in _INSTALL_MARKS)


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _first_code_cell(notebook: dict) -> int | None:
    """The index of the first code cell, or None when there is none."""
    cells = notebook.get("cells", [])
    return next((i for i, cell in enumerate(cells) if cell.get("cell_type") == "code"), None)


def install_source(notebook: dict) -> str | None:
    """The source that a notebook's install cell names ("" when unset), or None when its first
    code cell is not an install cell (or names no source as a plain string)."""
    first = _first_code_cell(notebook)
    text = _cell_text(notebook["cells"][first]) if first is not None else ""
    if not is_install_cell(text):
        return None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "CNNLAB_SOURCE"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    old = _OLD_TARGET.search(text)  # the one-line cell: pip install -q "<target>"
    return old[1] if old else None


def _read_notebook(path: Path) -> tuple[str, dict]:
    """(the file's text, the notebook it holds); ValueError naming the file otherwise."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a notebook (not UTF-8 text)") from None
    try:
        notebook = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path}: not a notebook (invalid JSON: {error})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{path}: not a notebook (expected a JSON object with a list of "
                         "\"cells\")")
    return text, notebook


def _new_cell(notebook: dict, lines: list[str]) -> dict:
    """A code cell holding ``lines``, with an id when the notebook's cells have ids (nbformat
    4.5), keys sorted as Jupyter writes them."""
    cell: dict = {"cell_type": "code", "execution_count": None}
    if any("id" in c for c in notebook["cells"]):
        taken = {c.get("id") for c in notebook["cells"]}
        ids = (f"{_CELL_ID}-{n}" if n else _CELL_ID for n in itertools.count())
        cell["id"] = next(i for i in ids if i not in taken)
    cell.update(metadata={}, outputs=[], source=lines)
    return cell


def _with_install_cell(notebook: dict, text: str) -> dict:
    """``notebook`` with ``text`` as its install cell: the first code cell rewritten when it is
    an install cell (keeping its id, metadata and execution count), else a new cell inserted
    before it (at the end when there is no code cell)."""
    lines = text.splitlines(keepends=True)
    cells = list(notebook["cells"])
    first = _first_code_cell(notebook)
    if first is not None and is_install_cell(_cell_text(cells[first])):
        cell = dict(cells[first], source=lines, outputs=[])
    else:
        cell = _new_cell(notebook, lines)
        first = len(cells) if first is None else first
        cells.insert(first, cell)
    # collapsed in JupyterLab: set-up, not lesson (one click shows it)
    cell["metadata"] = dict(cell.get("metadata", {}),
                            jupyter=dict(cell.get("metadata", {}).get("jupyter", {}),
                                         source_hidden=True))
    cells[first] = cell
    return dict(notebook, cells=cells)


def _dump(notebook: dict) -> str:
    """A notebook as Jupyter stores it: one-space indent, UTF-8 unescaped, a final newline."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def set_install_source(notebooks: Iterable[str | Path], source: str) -> list[Path]:
    """Make ``install_cell(source)`` the first code cell of each notebook; the files changed.

    The old install cell is rewritten in place (or a new one inserted before the first code
    cell); every other cell stays as it was. All notebooks are read and checked before any is
    written, so a bad file changes none. ``source=""`` clears the source.
    """
    if isinstance(notebooks, (str, Path)):
        raise TypeError(f"set_install_source: expected a list of notebook paths, got the single "
                        f"path {str(notebooks)!r}; wrap it in a list: [{str(notebooks)!r}]")
    text = install_cell(source)
    planned = []
    for path in map(Path, notebooks):
        old, notebook = _read_notebook(path)
        planned.append((path, old, _dump(_with_install_cell(notebook, text))))
    changed = []
    for path, old, new in planned:
        if new != old:
            path.write_bytes(new.encode("utf-8"))
            changed.append(path)
    return changed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab install-source",
        usage="cnnlab install-source [-h] (SOURCE | --clear) [NOTEBOOK ...]",
        description="Set where the first cell of each notebook pip-installs cnnlab from on "
        "hosted runtimes (Colab, Kaggle), where cnnlab is missing.")
    parser.add_argument("source", nargs="?", metavar="SOURCE",
                        help="the file name of a wheel that students upload to the runtime, "
                        "a path, or a git+https:// URL of the course repository")
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebooks to update (default: notebooks/*.ipynb and "
                        "notebooks/labs/*.ipynb under the current folder)")
    parser.add_argument("--clear", action="store_true",
                        help="reset the source to \"\" (the cell then only says it is unset)")
    return parser


def _fail(message: str) -> int:
    print(f"cnnlab install-source: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] = ()) -> int:
    """``cnnlab install-source``: write the install source into notebooks; an exit status."""
    args = _parser().parse_args(argv)
    words = [w for w in (args.source, *args.notebooks) if w is not None]
    if args.clear:
        source, named = "", words
    elif not words or not words[0]:
        return _fail("give the source pip should install cnnlab from (a wheel file name, a "
                     "path or a git+https:// URL), or --clear to unset it")
    elif words[0].endswith(".ipynb"):
        return _fail(f"{words[0]!r} looks like a notebook, not a source; give the source first:"
                     " cnnlab install-source SOURCE [NOTEBOOK ...]")
    else:
        source, named = words[0], words[1:]
    paths = [Path(n) for n in named] or sorted(p for g in NOTEBOOK_GLOBS for p in Path().glob(g))
    if not paths:
        return _fail(f"no notebooks in notebooks/ or notebooks/labs/ under {Path.cwd()}; run "
                     "it from the course folder or name the notebooks")
    try:
        changed = set_install_source(paths, source)
    except (TypeError, ValueError) as error:
        return _fail(str(error))
    for path in changed:
        print(f"updated {path}")
    now = (f"all now install cnnlab from {source!r} where it is missing" if source else
           "CNNLAB_SOURCE is now empty in all of them")
    print(f"{len(changed)} of {len(paths)} notebook(s) changed; {now}.")
    print("`cnnlab assign` carries the install cell into the student notebooks of the labs.")
    return 0
