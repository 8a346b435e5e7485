"""The install cell that starts every notebook, and `cnnlab install-source`, which sets it.

The cell runs where cnnlab may be missing (Colab, Kaggle), so it is tested as plain Python in a
fresh interpreter: silent where cnnlab is installed, one sentence (never a traceback) where it
is not. pip is never allowed to reach the network here (PIP_NO_INDEX, or a fake pip).
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab import cli, hosted
from cnnlab.grading import static

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "01_from_dense_to_convolution.ipynb"
LAB = ROOT / "notebooks" / "labs" / "lab1_convolution.ipynb"
WHEEL = "cnnlab-0.1.0-py3-none-any.whl"
HIDDEN_SOURCE = {"source_hidden": True}  # JupyterLab shows the install cell collapsed
OLD_CELL = ('import importlib.util, subprocess, sys; _ = importlib.util.find_spec("cnnlab") or '
            'subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "cnnlab"])')
# Runs a cell file (argv[1]) where cnnlab cannot be found: -S skips site-packages, and with it
# the editable install's finder; -I skips PYTHONPATH and the current folder.
HIDDEN = ("import os\n"
          "import sys\n"
          "from importlib.util import find_spec\n"
          "sys.path[:0] = sys.argv[2:]\n"
          "assert find_spec('cnnlab') is None, 'the harness failed to hide cnnlab'\n"
          "sys.executable = os.environ.get('FAKE_PYTHON', sys.executable)\n"
          "exec(compile(open(sys.argv[1]).read(), 'install cell', 'exec'), {})\n")


def _run_cell(tmp_path: Path, source: str, hidden: bool, env: dict | None = None,
              extra_path: Path | None = None) -> subprocess.CompletedProcess:
    cell = tmp_path / "cell.py"
    cell.write_text(hosted.install_cell(source), encoding="utf-8")
    if hidden:
        command = [sys.executable, "-I", "-S", "-c", HIDDEN, str(cell),
                   *([str(extra_path)] if extra_path else [])]
    else:
        command = [sys.executable, str(cell)]
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)


# --- the cell ------------------------------------------------------------------------------

def test_cell_text_for_no_source():
    cell = hosted.install_cell("")
    first = cell.splitlines()[0]
    assert first.startswith('CNNLAB_SOURCE = ""  # where pip finds cnnlab')
    assert "cnnlab install-source" in first
    assert cell == hosted.install_cell()
    assert max(len(line) for line in cell.splitlines()) <= 100
    assert "%" not in cell and "!" not in cell, "no IPython magics or shell escapes"
    tree = ast.parse(cell)  # the standard library only: cnnlab may be missing
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"os", "subprocess", "sys", "textwrap", "importlib", "importlib.util"}
    assert hosted.is_install_cell(cell) and hosted.is_install_cell(OLD_CELL)
    assert not hosted.is_install_cell("import cnnlab\nimport torch")


def test_cell_is_silent_where_cnnlab_is_installed(tmp_path):
    for source in ("", WHEEL):
        done = _run_cell(tmp_path, source, hidden=False)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), done


def test_cell_without_a_source_says_so_in_one_line(tmp_path):
    done = _run_cell(tmp_path, "", hidden=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == ("cnnlab is not installed and CNNLAB_SOURCE is empty: see 'Hosted "
                           "runtimes' in the cnnlab README.\n")
    assert len(done.stdout.rstrip("\n")) < 100


@pytest.mark.parametrize("source", ["/nonexistent/cnnlab.whl",
                                    "/nonexistent/" + "long-folder-name/" * 8 + "cnnlab.whl"])
def test_cell_asks_for_a_missing_wheel_in_one_line(tmp_path, source):
    """The usual failure on Colab: the wheel was not uploaded (or a restart deleted it)."""
    done = _run_cell(tmp_path, source, hidden=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 100, lines
    assert lines[0].startswith("To install cnnlab, upload ")
    if len(source) < 60:
        assert lines[0] == f"To install cnnlab, upload {source}, then rerun this cell."


@pytest.mark.parametrize("source, reason", [
    ("cnnlab-course==9.9", "ERROR: No matching distribution found"),
    ("cnnlab-0.1.0-py3-none-any.whl", "ERROR: Wheel 'cnnlab'"),  # not a zip file
])
def test_cell_quotes_pip_when_it_fails(tmp_path, source, reason):
    (tmp_path / "cnnlab-0.1.0-py3-none-any.whl").write_text("not a wheel")
    done = _run_cell(tmp_path, source, hidden=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 100, lines
    assert lines[0].startswith(f"pip could not install cnnlab from {source}: {reason}"), lines
    assert "Traceback" not in done.stdout


def test_cell_reports_success_and_the_next_import_works(tmp_path):
    """A fake `python -m pip` that writes a cnnlab package into a folder on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    fake = tmp_path / "fake-python"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\n'
                    'mkdir -p "$SITE/cnnlab" && : > "$SITE/cnnlab/__init__.py"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    source = "course files/cnnlab.whl"  # a space must reach pip as one argument
    (tmp_path / "course files").mkdir()
    (tmp_path / source).write_text("the uploaded wheel")
    done = _run_cell(tmp_path, source, hidden=True, extra_path=site,
                     env={"FAKE_PYTHON": str(fake), "SITE": str(site)})
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == f"Installed cnnlab from {source}.\n"
    assert (tmp_path / "fake-python.args").read_text().splitlines() == [
        "-m", "pip", "install", "-q", source]


@pytest.mark.parametrize("source", ['say "hi".whl', "it's/cnnlab.whl", r"C:\wheels\cnnlab.whl",
                                    "ünïcode/cnnlab.whl", "git+https://example.org/c.git#egg=x",
                                    "{braces}/cnnlab.whl"])
def test_any_source_is_written_as_a_python_literal(source):
    cell = hosted.install_cell(source)
    namespace: dict = {}
    exec(cell.splitlines()[0], namespace)  # the assignment alone: nothing is installed
    assert namespace["CNNLAB_SOURCE"] == source
    compile(cell, "install cell", "exec")
    assert hosted.install_source({"cells": [{"cell_type": "code", "source": cell}]}) == source


@pytest.mark.parametrize("source, error, words", [
    ("-e", ValueError, "pip would read as an option"),
    ("--index-url=https://evil.example", ValueError, "pip would read as an option"),
    ("cnnlab.whl\nimport os", ValueError, "on one line"),
    ("cnnlab\x00.whl", ValueError, "NUL"),
    ("\tcnnlab.whl", ValueError, "on one line"),
    (" cnnlab.whl", ValueError, "leading or trailing spaces"),
    (42, TypeError, "as a string"),
    (None, TypeError, "got NoneType"),
])
def test_bad_sources_are_refused(source, error, words):
    with pytest.raises(error, match=re.escape(words)):
        hosted.install_cell(source)


def _loops_only_functions(master: Path) -> list[str]:
    raw = "".join("".join(c["source"]) for c in json.loads(master.read_text())["cells"]
                  if c["cell_type"] == "raw")
    return sorted(set(re.findall(r'static="loops_only",\s*function="(\w+)"', raw)))


@pytest.mark.parametrize("master", sorted((ROOT / "notebooks" / "labs").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_cell_keeps_the_loops_only_checks_passing(master):
    """The grader rejects notebooks that name `importlib` (dynamic code): the cell does not."""
    codes = ["".join(c["source"]) for c in json.loads(master.read_text())["cells"]
             if c["cell_type"] == "code"]
    for function in _loops_only_functions(master):
        assert static.loops_only(codes, function) == (True, "")
        assert static.loops_only([hosted.install_cell(WHEEL), *codes], function) == (True, "")
        assert not static.loops_only([OLD_CELL, *codes], function)[0]  # why it had to change


def test_lab1_has_loops_only_checks():
    assert _loops_only_functions(LAB) == ["conv2d_loops", "corr2d", "max_pool2d"]


# --- writing it into notebooks -----------------------------------------------------------

def _copies(folder: Path) -> tuple[Path, Path]:
    """Copies of lesson 01 as it started (the old one-line install cell) and of lab 1 without
    an install cell, whatever install cells the repository's notebooks hold now."""
    (folder / "labs").mkdir(parents=True, exist_ok=True)
    lesson, lab = (json.loads(path.read_text(encoding="utf-8")) for path in (LESSON, LAB))
    i = _code_index(lesson)
    lesson["cells"][i] = dict(lesson["cells"][i], source=OLD_CELL, metadata={})
    lab["cells"] = [c for c in lab["cells"]
                    if not (c["cell_type"] == "code" and hosted.is_install_cell(
                        "".join(c["source"])))]
    paths = folder / LESSON.name, folder / "labs" / LAB.name
    for path, notebook in zip(paths, (lesson, lab), strict=True):
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    return paths


def _code_index(notebook: dict) -> int:
    return next(i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code")


def test_real_notebooks_are_stored_as_json_dumps_writes_them():
    for path in (LESSON, LAB):
        text = path.read_text(encoding="utf-8")
        assert json.dumps(json.loads(text), indent=1, ensure_ascii=False) + "\n" == text


def test_set_install_source_changes_only_the_install_cell(tmp_path):
    lesson, lab = _copies(tmp_path)
    before = {p: json.loads(p.read_text(encoding="utf-8")) for p in (lesson, lab)}
    assert hosted.install_source(before[lesson]) == "cnnlab"  # the old one-line cell
    assert hosted.install_source(before[lab]) is None  # lab 1 has no install cell yet

    assert hosted.set_install_source([lesson, str(lab)], WHEEL) == [lesson, lab]
    cell_text = hosted.install_cell(WHEEL)

    old, new = before[lesson], json.loads(lesson.read_text(encoding="utf-8"))
    i = _code_index(old)
    expected = dict(old["cells"][i], source=cell_text.splitlines(keepends=True),
                    metadata={**old["cells"][i]["metadata"], "jupyter": HIDDEN_SOURCE})
    assert new["cells"][i] == expected  # same id and execution_count, collapsed; no outputs
    assert new["cells"][:i] + new["cells"][i + 1:] == old["cells"][:i] + old["cells"][i + 1:]
    assert {k: v for k, v in new.items() if k != "cells"} == {
        k: v for k, v in old.items() if k != "cells"}
    # byte for byte: the file is the old file with that one cell replaced
    old["cells"][i] = expected
    assert lesson.read_text(encoding="utf-8") == json.dumps(old, indent=1,
                                                            ensure_ascii=False) + "\n"

    old, new = before[lab], json.loads(lab.read_text(encoding="utf-8"))
    i = _code_index(old)
    inserted = new["cells"][i]
    assert inserted == {"cell_type": "code", "execution_count": None, "id": "cnnlab-install",
                        "metadata": {"jupyter": HIDDEN_SOURCE}, "outputs": [],
                        "source": cell_text.splitlines(keepends=True)}
    assert list(inserted) == sorted(inserted), "keys in the order Jupyter writes them"
    assert new["cells"][:i] + new["cells"][i + 1:] == old["cells"]
    for path in (lesson, lab):
        assert hosted.install_source(json.loads(path.read_text(encoding="utf-8"))) == WHEEL


def test_set_install_source_twice_changes_nothing_and_clears(tmp_path):
    lesson, lab = _copies(tmp_path)
    hosted.set_install_source([lesson, lab], WHEEL)
    saved = {p: p.read_bytes() for p in (lesson, lab)}
    assert hosted.set_install_source([lesson, lab], WHEEL) == []
    assert {p: p.read_bytes() for p in (lesson, lab)} == saved
    assert hosted.set_install_source([lesson, lab], "") == [lesson, lab]
    for path in (lesson, lab):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        assert hosted.install_source(notebook) == ""
        assert sum(hosted.is_install_cell("".join(c["source"])) for c in notebook["cells"]) == 1


def test_a_bad_notebook_stops_before_any_file_is_written(tmp_path):
    lesson, _ = _copies(tmp_path)
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": ', encoding="utf-8")
    saved = lesson.read_bytes()
    with pytest.raises(ValueError, match=r"broken\.ipynb: not a notebook \(invalid JSON"):
        hosted.set_install_source([lesson, broken], WHEEL)
    assert lesson.read_bytes() == saved
    with pytest.raises(ValueError, match=r"missing\.ipynb: cannot read it"):
        hosted.set_install_source([tmp_path / "missing.ipynb"], WHEEL)
    with pytest.raises(TypeError, match="wrap it in a list"):
        hosted.set_install_source(lesson, WHEEL)
    with pytest.raises(ValueError, match="pip would read as an option"):
        hosted.set_install_source([lesson], "-r requirements.txt")
    assert lesson.read_bytes() == saved


def test_inserted_cell_gets_a_free_id(tmp_path):
    path = tmp_path / "n.ipynb"
    cells = [{"cell_type": "markdown", "id": "cnnlab-install", "metadata": {}, "source": "# x"},
             {"cell_type": "code", "execution_count": 1, "id": "a1", "metadata": {},
              "outputs": [], "source": "x = 1"}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}, indent=1) + "\n", encoding="utf-8")
    hosted.set_install_source([path], WHEEL)
    new = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert [c.get("id") for c in new] == ["cnnlab-install", "cnnlab-install-1", "a1"]


# --- cnnlab install-source ---------------------------------------------------------------

def _course(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    lesson, lab = _copies(tmp_path / "notebooks")
    monkeypatch.chdir(tmp_path)
    return lesson.relative_to(tmp_path), lab.relative_to(tmp_path)


def _sources(*paths: Path) -> list[str | None]:
    return [hosted.install_source(json.loads(p.read_text(encoding="utf-8"))) for p in paths]


def test_cli_updates_the_course_notebooks(tmp_path, monkeypatch, capsys):
    lesson, lab = _course(tmp_path, monkeypatch)
    assert cli.main(["install-source", WHEEL]) == 0
    out = capsys.readouterr().out
    assert f"updated {lesson}\nupdated {lab}\n" in out
    assert f"2 of 2 notebook(s) changed; all now install cnnlab from {WHEEL!r}" in out
    assert "`cnnlab assign` carries the install cell into the student notebooks" in out
    assert _sources(lesson, lab) == [WHEEL, WHEEL]

    url = "git+https://example.org/course/cnnlab.git"
    assert cli.main(["install-source", url, str(lab)]) == 0
    assert _sources(lesson, lab) == [WHEEL, url]
    assert f"updated {lab}\n" in capsys.readouterr().out

    assert cli.main(["install-source", "--clear"]) == 0
    assert "2 of 2 notebook(s) changed; CNNLAB_SOURCE is now empty" in capsys.readouterr().out
    assert _sources(lesson, lab) == ["", ""]


@pytest.mark.parametrize("argv, words", [
    (["install-source"], "give the source pip should install cnnlab from"),
    (["install-source", ""], "give the source pip should install cnnlab from"),
    (["install-source", "--", "-e"], "pip would read as an option"),
    (["install-source", "notebooks/labs/lab1_convolution.ipynb"], "looks like a notebook"),
    (["install-source", "x.whl", "nowhere.ipynb"], "nowhere.ipynb: cannot read it"),
])
def test_cli_refuses_with_exit_status_2(tmp_path, monkeypatch, capsys, argv, words):
    lesson, lab = _course(tmp_path, monkeypatch)
    saved = [p.read_bytes() for p in (lesson, lab)]
    assert cli.main(argv) == 2
    assert words in capsys.readouterr().err
    assert [p.read_bytes() for p in (lesson, lab)] == saved


def test_cli_without_notebooks_here(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["install-source", WHEEL]) == 2
    assert "no notebooks in notebooks/ or notebooks/labs/" in capsys.readouterr().err


def test_cli_lists_the_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    assert "install-source  set where notebooks pip-install cnnlab from" in capsys.readouterr().out
