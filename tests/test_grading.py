"""Tests of cnnlab.grading: assign, the sandboxed grade run, scoring, static checks, feedback.

The expensive steps run once per module: one `cnnlab assign` of the three labs (plus a broken
master), one `cnnlab grade` of a mixed lab 1 batch and one of lab 3 submissions, with --jobs 2.
Submissions are built from the assigned files (the solution notebook, the blank student
notebook, edits of them).
The red team's attacks live in tests/test_grading_hostile.py.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import csv
import hashlib
import io
import json
import linecache
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from assigned import LAB_NAMES, assigned_dist
from hostile_helpers import require_bwrap
from notebook_text import NOTEBOOKS, cells, source, stored_text

from cnnlab import cli
from cnnlab.grading import (
    assign,
    bundle,
    check,
    kinds,
    master,
    report,
    runner,
    sandbox,
    scoring,
    static,
)
from cnnlab.grading.runner import encode

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "notebooks" / "labs"
CNNLAB = [sys.executable, "-c", "import sys; from cnnlab.cli import main; sys.exit(main())"]


def _sha(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, notebook: dict) -> Path:
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def _edit(notebook: dict, old: str, new: str) -> dict:
    """A copy with ``old`` replaced by ``new`` in the one code cell that contains it."""
    notebook = json.loads(json.dumps(notebook))
    hits = [c for c in notebook["cells"] if c["cell_type"] == "code" and old in
            "".join(c["source"])]
    assert len(hits) == 1, f"{old!r} found in {len(hits)} cells"
    hits[0]["source"] = "".join(hits[0]["source"]).replace(old, new)
    return notebook


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The session's shared `cnnlab assign` of every lab (tests/assigned.py), and one more
    assign of lab 1 next to a master whose solution fails its own case."""
    tmp = tmp_path_factory.mktemp("assign")
    broken = tmp / "broken_lab.ipynb"
    broken.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "answer = 41  # SOLUTION"},
        {"cell_type": "raw", "metadata": {},
         "source": "# QUESTION q1\ncase('the answer', 'answer', expected=42)"}]}))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = assign.assign_main([str(LABS / "lab1_convolution.ipynb"), str(broken),
                                     "--out", str(tmp / "dist")])
    return {"dist": assigned_dist(tmp_path_factory), "status": status, "out": out.getvalue(),
            "err": err.getvalue(), "with_broken": tmp / "dist"}


def test_assign_builds_student_notebooks_and_autograders(dist):
    for lab in LAB_NAMES:
        folder = dist["dist"] / lab
        student = folder / "student" / f"{lab}.ipynb"
        text = student.read_text()
        assert "BEGIN SOLUTION" not in text and "# QUESTION" not in text
        assert 'grader.check(\\"q1\\")' in text and "otter" not in text
        public = json.loads((folder / "student" / f"{lab}.checks.json").read_text())
        info = json.loads((folder / "autograder" / "lab.json").read_text())
        assert public and all(info["cases"][cid]["public"] for cid in public)
        assert len(info["cases"]) > len(public)  # hidden cases exist and are not shipped
        plan = (folder / "autograder" / "plan.json").read_text()
        assert "expected" not in plan and "points" not in plan
        assert sum(q["points"] for q in info["questions"].values()) >= 15
        assert (folder / "autograder" / f"{lab}_gradescope.zip").is_file()


def test_assign_refuses_a_master_whose_solution_fails(dist):
    assert dist["status"] == 1
    assert "broken_lab.ipynb: FAILED" in dist["err"]
    assert "q1/the answer: expected 42" in dist["err"]
    assert "assigned 1 of 2 labs" in dist["out"]  # one failing master does not stop the rest
    assert (dist["with_broken"] / "lab1_convolution" / "autograder" / "lab.json").is_file()
    assert not (dist["with_broken"] / "broken_lab").exists()


def test_assign_without_master_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert assign.assign_main([]) == 2
    assert str(tmp_path / "notebooks" / "labs") in capsys.readouterr().err


def test_labs_do_not_reuse_the_lessons_numbers(dist):
    lessons = ["[[12, 12, 17], [10, 17, 19], [9, 6, 14]]", "(32, 7, 124, 124)",
               "(32, 7, 128, 128)", "Conv2d(3, 7, 5)", "Conv2d(1, 8, 25", "3818", "size=16",
               # lesson 08: its gradient check's shapes, exercise answers and pooling example
               "(3, 2, 3, 3)", "(2, 7, 7)", "(4, 8, 16, 16)", "[18, 18, 18, 18]",
               "[[3, 0, 5, 2]", "[[2, 8, 1, 0]", "(2, 3, 9, 8)"]
    for lab in LAB_NAMES:
        text = (LABS / f"{lab}.ipynb").read_text()
        assert not [n for n in lessons if n in text], lab


def _printed(value) -> list[str]:
    """How a lesson would print an answer: ints of 10 or more, and tuples/lists of ints."""
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        return []
    if isinstance(value, int):
        return [f"{value:,}", str(value)] if abs(value) >= 10 else []
    if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [str(value), str(tuple(value)), str(list(value))]
    return []


def test_no_lab_answer_is_printed_in_a_lesson(dist):
    names = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    lessons = "\n".join("\n".join(source(c) for c in cells(n)) + stored_text(n) for n in names)
    words = set(lessons.replace("(", " ( ").replace(")", " ) ").split())
    for lab in LAB_NAMES:
        expected = bundle.Autograder(dist["dist"] / lab / "autograder").expected
        for case, value in expected.items():
            for text in _printed(value):
                found = text in words if isinstance(value, int) else text in lessons
                assert not found, f"{lab} {case}: its answer {text} is printed in a lesson"


def test_question_headings_state_the_points_the_cases_give(dist):
    for lab in LAB_NAMES:
        info = json.loads((dist["dist"] / lab / "autograder" / "lab.json").read_text())
        headings = {f"q{m.group(1)}": float(m.group(2)) for cell in _nb(LABS / f"{lab}.ipynb")[
            "cells"] if cell["cell_type"] == "markdown" for m in re.finditer(
            r"## Question (\d+):.*\((\d+(?:\.\d+)?) points?\)", "".join(cell["source"]))}
        points = {q: v["points"] for q, v in info["questions"].items()}
        assert headings == points, lab


def test_blank_solutions_keeps_signatures_and_blanks_answers():
    student, removed = master.blank_solutions(
        "def f(x):\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\n"
        "shape_a = (1, 2)  # SOLUTION")
    assert student == "def f(x):\n    ...\nshape_a = ..."
    assert removed == ["    return x + 1", "shape_a = (1, 2)  # SOLUTION"]


SOLUTION = '''import numpy as np

def corr2d(image, kernel):
    image = np.asarray(image, dtype=float)
    kh, kw = np.shape(kernel)
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
    return out
'''


@pytest.mark.parametrize("body, why", [
    ("from numpy.lib.stride_tricks import sliding_window_view as v\n"
     "    return np.einsum('ijkl,kl->ij', v(image, np.shape(kernel)), kernel)", "import"),
    ("w = np.lib.stride_tricks.sliding_window_view(image, np.shape(kernel))\n"
     "    return np.tensordot(w, kernel)", "np.lib"),
    ("for _ in range(1):\n        pass\n    return image @ kernel", "@ operator"),
    ("f = getattr(np, 'ein' + 'sum')\n    return f('ij,ij->', image, kernel)", "getattr"),
    ("return helper(image, kernel)", "np.convolve"),
    ("return image.dot(kernel)", ".dot"),
])
def test_loops_only_rejects_vectorised_shortcuts(body, why):
    helper = "def helper(a, b):\n    for _ in range(1):\n        return np.convolve(a, b)\n"
    cells = ["import numpy as np", helper, f"def corr2d(image, kernel):\n    {body}\n"]
    ok, reason = static.loops_only(cells, "corr2d")
    assert not ok and why in reason, reason


def test_loops_only_accepts_loops_and_rejects_rebinding():
    assert static.loops_only([SOLUTION], "corr2d") == (True, "")
    for extra in ("corr2d = lambda i, k: i", "import torch as np", "corr2d.__code__ = g",
                  "globals()['corr2d'] = print", "np.sum = print",
                  "import numpy as nmp\nm = nmp\nm.zeros = print",
                  "_x = [" + "1, " * 200_000 + "]"):
        ok, reason = static.loops_only([SOLUTION, extra], "corr2d")
        assert not ok, extra
    assert static.loops_only(["x = 1"], "corr2d") == (False, "no function named corr2d found")


def test_compare_checks_types_shapes_and_values():
    equal, close = {"compare": "equal"}, {"compare": "close", "rtol": 1e-7, "atol": 1e-9}
    assert kinds.judge(equal, (1, 2), (1, 2)) == ""
    # a value counts however it is written: a list for a tuple, 3.0 for 3, text in any case
    assert kinds.judge(equal, (1, 2), [1, 2]) == "" and kinds.judge(equal, 3, 3.0) == ""
    assert kinds.judge(equal, "Max", " max ") == ""
    assert "expected a tuple" in kinds.judge(equal, (1, 2), "1, 2")
    assert kinds.judge(equal, 3, 4) == "expected 3, got 4"
    assert kinds.judge(equal, True, 1) != "" and kinds.judge(equal, 1, True) != ""  # not bools
    want = np.arange(6.0).reshape(2, 3)
    assert kinds.judge(close, want, want + 1e-12) == ""
    assert "expected shape (2, 3)" in kinds.judge(close, want, want.T)
    bumped = want.copy()
    bumped[1, 2] += 1
    assert "1 of 6 values differ; first at (1, 2)" in kinds.judge(close, want, bumped)
    accuracy = {"compare": "accuracy", "at_least": 0.5}
    assert kinds.judge(accuracy, np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0])) == ""
    assert "0.250" in kinds.judge(accuracy, np.array([1, 2, 3, 4]), np.array([1, 0, 0, 0]))
    assert "integer class predictions" in kinds.judge(accuracy, np.arange(4), np.ones(4))
    span = {"compare": "range", "at_least": 0.8, "at_most": 1.0}
    assert kinds.judge(span, None, 0.9) == "" and kinds.judge(span, None, 1.5) != ""


def test_points_are_clamped_to_each_question(tmp_path):
    lab = {"questions": {"q1": {"points": 1.0}},
           "cases": {f"q1/c{i}": {"question": "q1", "points": 1.0, "compare": "equal"}
                     for i in range(3)}}
    expected = {f"q1/c{i}": i for i in range(3)}
    scores, notes = scoring.score(lab, expected, dict(expected), {})
    assert scores == {"q1": 1.0} and notes == []
    scores, notes = scoring.score(lab, expected, {"q1/c0": 5}, {})
    assert scores == {"q1": 0.0} and len(notes) == 3


def _results(folder: Path, cases: dict, arrays: dict | None = None) -> Path:
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"cases": cases, "cells": []}))
    with open(out / "arrays.npz", "wb") as f:
        np.savez(f, **(arrays or {}))
    return out


def test_load_results_rejects_malformed_and_oversized_files(tmp_path):
    out = _results(tmp_path / "a", {"q/x": {"value": {"t": [{"i": 1}]}},
                                    "q/y": {"value": {"a": "a0"}}}, {"a0": np.ones(3)})
    answers = scoring.load_results(out, ["q/x", "q/y", "q/z"]).answers
    assert answers["q/x"] == (1,) and answers["q/y"].tolist() == [1.0, 1.0, 1.0]
    assert isinstance(answers["q/z"], scoring.BadResults)
    bomb = _results(tmp_path / "e", {"q/x": {"value": {"l": [{"a": "a0"}] * 3000}}},
                    {"a0": np.zeros(2**20)})
    answers = scoring.load_results(bomb, ["q/x"]).answers  # one 8 MB array named 3000 times
    assert len({id(a) for a in answers["q/x"]}) == 1  # read once, not 3000 copies
    deep = _results(tmp_path / "b", {})
    (deep / "results.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(scoring.BadResults):
        scoring.load_results(deep, ["q/x"])
    huge = _results(tmp_path / "c", {})
    with open(huge / "results.json", "wb") as f:
        f.truncate(scoring.MAX_JSON + 1)
    with pytest.raises(scoring.BadResults, match="larger than"):
        scoring.load_results(huge, ["q/x"])
    objects = _results(tmp_path / "d", {"q/x": {"value": {"a": "a0"}}})
    np.savez(objects / "arrays.npz", a0=np.array([1, None], dtype=object), allow_pickle=True)
    answers = scoring.load_results(objects, ["q/x"]).answers
    assert isinstance(answers["q/x"], scoring.BadResults)  # never unpickled
    with pytest.raises(TypeError, match="not plain data"):
        encode({"a": 1})


def test_report_escapes_formulas_and_keeps_rows_until_finished(tmp_path):
    out = tmp_path / "grades.csv"
    rows = report.Report(out, {"q1": 2.0})
    rows.add(report.Grade("=HYPERLINK(1)", {"q1": 2.0}, "ok", "-2 points\r@x"))
    assert not out.exists() and "HYPERLINK" in rows.partial.read_text()  # durable already
    rows.finish()
    with out.open(newline="") as f:
        parsed = list(csv.reader(f))
    assert parsed[0] == ["file", "q1", "total", "possible", "status", "reason"]
    assert parsed[1] == ["'=HYPERLINK(1)", "2", "2", "2", "ok", "'-2 points\r@x"]


def _checker_and_solution(dist: dict, lab: str) -> tuple[check.Checker, dict]:
    """A student's Checker for ``lab`` and the namespace of the master's solution cells."""
    grader = check.Checker(lab, dist["dist"] / lab / "student")
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):  # what the solution cells print
        for cell in _nb(dist["dist"] / lab / "autograder" / f"{lab}.ipynb")["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "code" and "grader" not in text:
                exec(text, namespace)  # the master's own solution (trusted)
    return grader, namespace


@pytest.mark.parametrize("lab", ["lab1_convolution", "lab3_backward", "lab4_modern_blocks"])
def test_every_unanswered_question_says_not_answered_yet(dist, lab, capsys):
    """The handed-out notebook as is: functions whose body is `...` and values set to `...`."""
    grader = check.Checker(lab, dist["dist"] / lab / "student")
    namespace: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for index, cell in enumerate(_nb(dist["dist"] / lab / "student" / f"{lab}.ipynb")[
                "cells"]):
            text = runner.to_python("".join(cell["source"]))
            if cell["cell_type"] == "code" and "grader" not in text and "pip" not in text:
                name = f"<cell {index}>"  # as IPython does, so that inspect finds the source
                linecache.cache[name] = (len(text), None, text.splitlines(True), name)
                exec(compile(text, name, "exec"), namespace)  # the student stubs (no answers)
    capsys.readouterr()
    for question in sorted({c["question"] for c in grader.cases.values()}):
        grader.check(question, namespace)
        problems = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  - ")]
        assert problems and all("not answered yet" in ln for ln in problems), problems


def test_public_checks_exercise_what_each_question_is_about(dist):
    """Stride, padding, bias, edges, ties and overlap each have a public case (with its expected
    value shown when it fails), not only hidden ones."""
    public = {lab: " ".join(c["name"] for c in json.loads(
        (dist["dist"] / lab / "student" / f"{lab}.checks.json").read_text()).values())
        for lab in ("lab1_convolution", "lab3_backward")}
    for lab, words in [("lab1_convolution", ["stride 2", "padding 1", "bias", "drops"]),
                       ("lab3_backward", ["stride 2", "padding 1", "tie", "overlapping"])]:
        assert all(word in public[lab] for word in words), (lab, public[lab])


def test_student_check_prints_one_line_or_a_few_per_failure(dist, capsys):
    grader, namespace = _checker_and_solution(dist, "lab1_convolution")
    grader.check("q1", namespace)
    assert capsys.readouterr().out.count("\n") == 1 and grader.passed
    namespace["corr2d"] = lambda image, kernel, dilation=1: np.zeros((2, 2))
    namespace["shape_a"] = "8, 9, 58, 42"
    grader.check("q1", namespace)
    lines = capsys.readouterr().out.splitlines()  # two public cases fail: 3 lines at most each
    assert 3 <= len(lines) <= 7 and "expected shape (3, 4), got shape (2, 2)" in lines[1]
    grader.check("q4", namespace)
    assert "expected a tuple" in capsys.readouterr().out
    namespace["shape_a"] = [8, 9, 58, 42]  # a list is the same answer
    grader.check("q4", namespace)
    assert grader.passed
    del namespace["shape_b"]
    grader.check_all()  # the caller's globals: nothing defined here, every check fails
    out = capsys.readouterr().out
    assert "q1: 2 of 2 public checks failed" in out and "not answered yet" in out


@pytest.fixture(scope="module")
def graded(dist, tmp_path_factory):
    """One sandboxed `cnnlab grade` run of lab 1: correct, blank, wrong, odd and broken files."""
    require_bwrap()
    lab = dist["dist"] / "lab1_convolution"
    solution = _nb(lab / "autograder" / "lab1_convolution.ipynb")
    folder = tmp_path_factory.mktemp("submissions")
    files = {
        "correct": _write(folder / "correct.ipynb", solution),
        "blank": _write(folder / "-blank.ipynb", _nb(lab / "student" / "lab1_convolution.ipynb")),
        "list": _write(folder / "=list.ipynb",
                       _edit(solution, "shape_a = (8, 9, 58, 42)", "shape_a = [8, 9, 58, 42]")),
        "einsum": _write(folder / "einsum.ipynb", _edit(
            solution, "    kernel = np.asarray(kernel, dtype=float)\n",
            "    kernel = np.asarray(kernel, dtype=float)\n"
            "    from numpy.lib.stride_tricks import sliding_window_view as view\n"
            "    span = tuple(dilation * (k - 1) + 1 for k in kernel.shape)\n"
            "    windows = view(image, span)[..., ::dilation, ::dilation]\n"
            "    return np.einsum('ijkl,kl->ij', windows, kernel)\n")),
        "lesson_copy": _write(folder / "lesson_copy.ipynb", _with_function(
            solution, "corr2d", _lesson_function("02_", "conv_by_hand", "corr2d"))),
        "loop": _write(folder / "loop.ipynb", _edit(solution, "import numpy as np",
                                                    "import numpy as np\nwhile True:\n    pass")),
        "magic": _write(folder / "magic.ipynb", _edit(solution, "import numpy as np",
                                                      "%matplotlib inline\nimport numpy as np")),
        "optlike": _write(folder / "--out=odd.ipynb", solution),  # a name, not an option
        "deep": folder / "deep.ipynb",
        "lab2": _write(folder / "lab2.ipynb", _nb(dist["dist"] / "lab2_build_a_cnn" / "student" /
                                                 "lab2_build_a_cnn.ipynb")),
    }
    files["deep"].write_text('{"cells": ' + "[" * 50_000 + "]" * 50_000 + "}")
    return _grade_batch(files, folder / "out" / "grades.csv", lab / "autograder",
                        "--timeout", "20")


def _lesson_function(prefix: str, name: str, new_name: str) -> str:
    """The def of ``name`` from the lesson whose file starts with ``prefix``, renamed."""
    lesson = next((ROOT / "notebooks").glob(f"{prefix}*.ipynb"))
    for cell in _nb(lesson)["cells"]:
        for node in ast.parse(runner.to_python("".join(cell["source"]))).body \
                if cell["cell_type"] == "code" else []:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                node.name = new_name
                return ast.unparse(node)
    raise AssertionError(f"{name} not found in {lesson.name}")


def _with_function(notebook: dict, name: str, code: str) -> dict:
    """A copy of ``notebook`` whose cell defining ``name`` holds ``code`` instead."""
    result = json.loads(json.dumps(notebook))
    cell = next(c for c in result["cells"] if f"def {name}(" in "".join(c["source"]))
    cell["source"] = code
    return result


def _grade_batch(files: dict[str, Path], out: Path, autograder: Path, *options: str) -> dict:
    """`cnnlab grade` of ``files`` (by name, from their folder) with --jobs 2 into ``out``,
    with hashes of the folder and the autograder before and after."""
    folder = next(iter(files.values())).parent
    before = _sha(folder) | _sha(autograder)
    done = subprocess.run(
        [*CNNLAB, "grade", *(p.name for p in files.values()), "--out", str(out),
         "--autograder", str(autograder), "--jobs", "2", *options],
        cwd=folder, capture_output=True, text=True, timeout=600)
    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    return {"files": files, "rows": rows, "done": done, "before": before,
            "after": _sha(folder) | _sha(autograder), "out": out}


def _row(graded, name):
    path = graded["files"][name].name
    return graded["rows"].get(path) or graded["rows"][report.escape(path)]


def test_grade_scores_every_submission(graded):
    assert graded["done"].returncode == 1, graded["done"].stderr  # some were not gradable
    assert len(graded["rows"]) == len(graded["files"])
    correct = _row(graded, "correct")
    assert correct["status"] == "ok" and correct["total"] == correct["possible"] == "19"
    blank = _row(graded, "blank")
    assert float(blank["total"]) == 0 and "got NoneType" in blank["reason"]
    assert _row(graded, "magic")["total"] == "19"  # IPython magics run through IPython
    assert _row(graded, "optlike")["total"] == "19" and not (graded["out"].parent.parent /
                                                            "odd.ipynb").exists()
    assert _row(graded, "list")["q4"] == "4"  # a list holds the same four numbers as a tuple
    # lesson 02's cross-correlation, renamed: it answers the undilated public case, and loops
    assert float(_row(graded, "lesson_copy")["q1"]) <= 1.0
    einsum = _row(graded, "einsum")
    assert einsum["q1"] == "3.5" and "must be written with explicit loops" in einsum["reason"]
    assert _row(graded, "loop")["status"] == "timeout"
    assert _row(graded, "deep")["status"] == "invalid"
    assert _row(graded, "lab2")["status"] == "wrong-lab"


def test_grade_leaves_submissions_and_autograder_unchanged(graded):
    unchanged = {k: v for k, v in graded["after"].items() if "grades.csv" not in k}
    assert unchanged == graded["before"]
    assert not graded["out"].with_name("grades.csv.partial").exists()


@pytest.fixture(scope="module")
def graded_lab3(dist, tmp_path_factory):
    """One sandboxed `cnnlab grade` run of lab 3: the solution, the blank notebook and five
    submissions that each get one backward pass subtly wrong (or take a shortcut)."""
    require_bwrap()
    lab = dist["dist"] / "lab3_backward"
    solution = _nb(lab / "autograder" / "lab3_backward.ipynb")
    folder = tmp_path_factory.mktemp("lab3")
    edits = {
        "shortcut": ("    dout = np.asarray(dout, dtype=float)\n    weight = np.asarray(",
                     "    return cnnlab.conv2d_backward(dout, x, weight, stride, padding)[0]\n"
                     "    dout = np.asarray(dout, dtype=float)\n    weight = np.asarray("),
        "padding_kept": ("return dx[:, padding:padding + height, padding:padding + width]",
                         "return dx[:, :height, :width]"),
        "last_tie": ("> x[c, top + best_r, left + best_s]", ">= x[c, top + best_r, left + best_s]"),
        "one_sided": ("grad[index] = (up - down) / (2 * eps)",
                      "grad[index] = (up - f(x)) / eps"),
        "verdicts_guessed": ("verdict_b = True", "verdict_b = False"),
    }
    files = {"correct": _write(folder / "correct.ipynb", solution),
             "blank": _write(folder / "blank.ipynb",
                             _nb(lab / "student" / "lab3_backward.ipynb"))}
    for name, (old, new) in edits.items():
        files[name] = _write(folder / f"{name}.ipynb", _edit(solution, old, new))
    run = _grade_batch(files, folder / "grades.csv", lab / "autograder")
    return {"rows": {name: run["rows"][p.name] for name, p in files.items()},
            "done": run["done"],
            "unchanged": run["before"] == {k: v for k, v in run["after"].items()
                                           if "grades.csv" not in k}}


def test_lab3_partial_credit_follows_the_mistake(graded_lab3):
    assert graded_lab3["done"].returncode == 0, graded_lab3["done"].stderr
    rows = graded_lab3["rows"]
    full = {"q1": 5, "q2": 4, "q3": 2, "q4": 4, "q5": 5, "q6": 3}
    assert rows["correct"]["total"] == rows["correct"]["possible"] == "23"
    assert float(rows["blank"]["total"]) == 0
    lost = {"shortcut": {"q1": 1}, "padding_kept": {"q1": 2}, "last_tie": {"q4": 1},
            "one_sided": {"q5": 1}, "verdicts_guessed": {"q6": 1}}
    for name, losses in lost.items():
        got = {q: float(rows[name][q]) for q in full}
        assert got == {q: full[q] - losses.get(q, 0) for q in full}, (name, rows[name])
    assert "explicit loops" in rows["shortcut"]["reason"]
    assert "ties go to the first maximum" in rows["last_tie"]["reason"]
    assert graded_lab3["unchanged"]


def test_lab3_public_checks_are_short(dist, capsys):
    grader, namespace = _checker_and_solution(dist, "lab3_backward")
    for question in ("q1", "q2", "q3", "q4", "q5", "q6"):
        grader.check(question, namespace)
        assert capsys.readouterr().out.count("\n") == 1, question
    namespace["max_pool_backward"] = lambda dout, x, k, stride=None: np.zeros(np.shape(x))
    grader.check("q4", namespace)
    lines = capsys.readouterr().out.splitlines()
    failing = int(lines[0].split(": ")[1].split(" of ")[0])  # "q4: 2 of 2 public checks failed"
    assert failing >= 2 and len(lines) <= 1 + 3 * failing and "values differ" in lines[1], lines


def test_interrupted_run_keeps_finished_rows_and_kills_sandboxes(dist, tmp_path):
    require_bwrap()
    lab = dist["dist"] / "lab1_convolution"
    solution = _nb(lab / "autograder" / "lab1_convolution.ipynb")
    _write(tmp_path / "a_correct.ipynb", solution)
    _write(tmp_path / "b_loop.ipynb", _edit(solution, "import numpy as np",
                                            "import time\nwhile True:\n    time.sleep(0.1)"))
    out = tmp_path / "grades.csv"
    process = subprocess.Popen(
        [*CNNLAB, "grade", "a_correct.ipynb", "b_loop.ipynb", "--out", str(out), "--jobs", "2",
         "--autograder", str(lab / "autograder"), "--timeout", "300"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "grades.csv.partial"
    deadline = time.monotonic() + 120
    while "a_correct" not in (partial.read_text() if partial.exists() else ""):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == ["a_correct.ipynb"] and rows[0]["total"] == "19"
    left = [p for p in Path("/proc").glob("[0-9]*/cmdline")
            if str(tmp_path) in p.read_bytes().decode(errors="replace")]
    assert not left


def test_grade_without_bwrap_stops_with_install_hint(tmp_path, dist):
    env = {**os.environ, "PATH": str(tmp_path)}  # no bwrap on PATH
    base = [*CNNLAB, "grade", "x.ipynb", "--out", str(tmp_path / "g.csv"),
            "--autograder", str(dist["dist"] / "lab1_convolution" / "autograder")]
    done = subprocess.run(base, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 2 and "apt-get install bubblewrap" in done.stderr
    done = subprocess.run([*base, "--no-sandbox"], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert done.stderr.count("WARNING: --no-sandbox") == 1
    assert "invalid" in (tmp_path / "g.csv").read_text()


def test_gradescope_zip_runs_the_same_grading(dist, tmp_path):
    require_bwrap()
    lab = dist["dist"] / "lab1_convolution"
    with zipfile.ZipFile(lab / "autograder" / "lab1_convolution_gradescope.zip") as archive:
        archive.extractall(tmp_path / "source")
    (tmp_path / "submission").mkdir()
    shutil.copy(lab / "autograder" / "lab1_convolution.ipynb", tmp_path / "submission")
    # run_autograder calls `python3`: on Gradescope, the image's Python that setup.sh filled;
    # here, the Python running the tests (a venv that need not be activated)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(["bash", str(tmp_path / "source" / "run_autograder")],
                          env={**os.environ, "GRADESCOPE_ROOT": str(tmp_path), "PATH": path},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 19 and len(results["tests"]) == 5
    assert all(t["score"] == t["max_score"] for t in results["tests"])


GRADESCOPE_ATTACK = """
import os, subprocess, sys
root = {root!r}
try:
    open(os.path.join(root, "source", "expected.json")).read()
    open(os.path.join(root, "leaks", "expected"), "w").write("read")
except OSError:
    pass
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2); "
                  "open({root!r} + '/leaks/daemon', 'w').write('alive')"],
                 start_new_session=True)
"""


def test_gradescope_without_bwrap_hides_answers_and_kills_leftovers(dist):
    """Gradescope's container has no namespaces: its entry point, run as root with a system
    Python and no bwrap on PATH, still runs student code as another uid."""
    if os.geteuid() != 0 or not Path("/usr/bin/python3").exists():
        pytest.skip("the fallback drops privileges only when run as root (as Gradescope does)")
    lab = dist["dist"] / "lab1_convolution"
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="gradescope-"))
    try:
        root.chmod(0o755)  # as /autograder: others may traverse it
        python = root / "python"  # a Python other users can run, as Gradescope's system one
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(python)],
                       check=True)
        site = next(python.glob("lib/python3*/site-packages"))
        numpy_dir = Path(np.__file__).parent
        for folder in numpy_dir.parent.glob("numpy*"):
            if folder.is_dir() and not folder.name.endswith("-info"):
                shutil.copytree(folder, site / folder.name)
        with zipfile.ZipFile(lab / "autograder" / "lab1_convolution_gradescope.zip") as archive:
            archive.extractall(root / "source")
        for folder in (root / "source", root / "submission", root / "leaks"):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o777 if folder.name == "leaks" else 0o755)
        solution = _nb(lab / "autograder" / "lab1_convolution.ipynb")
        attack = _edit(solution, "import numpy as np",
                       "import numpy as np\n" + GRADESCOPE_ATTACK.format(root=str(root)))
        _write(root / "submission" / "attack.ipynb", attack)
        done = subprocess.run(["/bin/bash", str(root / "source" / "run_autograder")],
                              env={"PATH": str(python / "bin"), "GRADESCOPE_ROOT": str(root)},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        results = json.loads((root / "results" / "results.json").read_text())
        time.sleep(3)  # the daemon would have written by now
        assert results["score"] == 19, results  # the attack left the answers correct
        assert "WARNING" not in results["output"], results["output"]
        assert not (root / "leaks" / "expected").exists(), "student code read the answers"
        assert not (root / "leaks" / "daemon").exists(), "a process outlived the run"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_doctor_reports_the_sandbox(capsys):
    assert cli.main(["doctor"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("sandbox"))
    assert ("bwrap works" in line) == sandbox.check_bwrap()[0]


def test_hidden_cases_say_what_is_wrong_without_the_expected_value():
    """A hidden case's note (CSV, Gradescope, console) never shows its expected value; a public
    case's may. Two submissions once read all six hidden values of lab 1 back this way."""
    lab = {"questions": {"q": {"points": 6}}, "cases": {
        f"q/{name}": {"question": "q", "points": 1, "public": public, "compare": "auto",
                      "rtol": 1e-5, "atol": 1e-6}
        for name, public in [("shape", False), ("count", False), ("array", False),
                             ("short", False), ("scalar", False), ("shown", True)]}}
    expected = {"q/shape": (8, 9, 64, 48), "q/count": 3913, "q/array": np.array([1.5, 2.5]),
                "q/short": (1, 6, 19, 19), "q/scalar": 0.125, "q/shown": (8, 9, 58, 42)}
    answers = {"q/shape": (8, 9, 58, 42), "q/count": 3912, "q/array": np.array([1.5, 9.0]),
               "q/short": (1, 6, 19), "q/scalar": 0.5, "q/shown": (8, 9, 64, 48)}
    scores, notes = scoring.score(lab, expected, answers, {})
    assert scores == {"q": 0.0} and len(notes) == 6
    hidden = " ".join(n for n in notes if not n.startswith("q/shown"))
    for secret in ("64", "48", "3913", "2.5", "0.125", "(1, 6, 19, 19)"):
        assert secret not in hidden, (secret, notes)
    assert "wrong value" in hidden and "1 of 2 values differ" in hidden
    assert "expected (8, 9, 58, 42)" in next(n for n in notes if n.startswith("q/shown"))
    _, for_instructor = scoring.score(lab, expected, answers, {}, instructor=True)
    assert "3913" in " ".join(for_instructor)


def test_npz_with_a_large_decoded_total_is_refused_before_decoding(tmp_path):
    """Small compressed, large decoded: the total of the members' declared sizes is capped
    (each member alone is below the cap)."""
    out = _results(tmp_path / "z", {"q/x": {"value": {"a": "a0"}}})
    zeros = np.zeros(40 * 2**20 // 8)
    np.savez_compressed(out / "arrays.npz", a0=zeros, a1=zeros)
    assert (out / "arrays.npz").stat().st_size < 2**20
    with pytest.raises(scoring.BadResults, match="decoded"):
        scoring.load_results(out, ["q/x"])


@pytest.mark.parametrize("cell, python", [
    ("%%time\ndef f():\n    return 1", "def f():\n    return 1"),
    ("%%capture out\nx = 2", "x = 2"),
    ("%%bash\nrm -rf /", ""),
    ("x = 1\n%timeit -n 3 -r 2 f(x)\n!ls\ny = !ls\nnp.sum?\n  %matplotlib inline",
     "x = 1\nf(x)\npass\ny = None\npass\n  pass"),
    ('s = "50%"\na = b % c\nif x != 3:\n    pass', 's = "50%"\na = b % c\nif x != 3:\n    pass'),
    # inside brackets and strings a line starting with ! or % is Python, as IPython reads it
    ("%time t = 1\nok = (a\n      != b)\nr = (c\n     % 2)\ns = '''\n%d\n'''",
     "t = 1\nok = (a\n      != b)\nr = (c\n     % 2)\ns = '''\n%d\n'''"),
])
def test_cells_are_read_as_jupyter_runs_them(cell, python):
    assert runner.to_python(cell) == python


def test_the_grader_reads_magics_without_ipython():
    """The grader's process reads cells with its own one-pass transform: IPython's took 35-90 s
    on a cell of many shell lines there, outside any timeout."""
    code = ("import sys\nfrom cnnlab.grading import runner\n"
            "nb = {'cells': [{'cell_type': 'code', 'source': '!echo hi\\n' * 100000}]}\n"
            "assert runner.cell_sources(nb)[0].count('pass') == 100000\n"
            "print('IPython' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_each_loops_prompt_shows_the_list_its_rule_allows():
    for lab in ("lab1_convolution", "lab3_backward"):
        notebook = json.loads((LABS / f"{lab}.ipynb").read_text())
        text = "\n".join("".join(c["source"]) for c in notebook["cells"]
                         if c["cell_type"] == "markdown")
        assert static.allowed_text() in " ".join(text.split()), lab


def test_lab2_hidden_accuracy_uses_images_the_notebook_never_touches(dist):
    """The held-out case classifies test images that the lab's fit, validation and test sets
    (as the student notebook builds them) do not contain."""
    import torch

    import cnnlab
    from cnnlab.grading.runner import decode

    folder = dist["dist"] / "lab2_build_a_cnn" / "autograder"
    plan = json.loads((folder / "plan.json").read_text())
    with np.load(folder / "plan.npz") as arrays:
        case = next(c for c in plan["cases"] if "held-out" in c["id"])
        held_out = decode(case["inputs"]["images_held_out"], arrays)
    namespace = {"cnnlab": cnnlab, "torch": torch}
    student = _nb(dist["dist"] / "lab2_build_a_cnn" / "student" / "lab2_build_a_cnn.ipynb")
    data_cell = next("".join(c["source"]) for c in student["cells"]
                     if "load_digits" in "".join(c["source"]) and c["cell_type"] == "code")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(data_cell, namespace)  # the handed-out cell that builds the student's data
    seen = torch.cat([namespace[name][0] for name in ("fit_data", "val_data", "test_data")])
    seen = {tuple(image.flatten().tolist()) for image in seen}
    assert len(held_out) >= 150
    assert not [i for i, image in enumerate(held_out) if tuple(image.flatten().tolist()) in seen]


class _Canonical(ast.NodeTransformer):
    """A def with its identifiers renamed in order of first appearance and no docstring, so
    that two functions differing only in names dump to the same text."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _name(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name, node.decorator_list, node.returns = "f", [], None
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                isinstance(first.value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg, node.annotation = self._name(node.arg), None
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._name(node.id)
        return node


def _canonical_defs(code: str) -> dict[str, str]:
    """{name: canonical dump} of every def in ``code`` (nested ones too)."""
    found = {}
    for node in ast.walk(ast.parse(runner.to_python(code))):
        if isinstance(node, ast.FunctionDef):
            name = node.name
            found[name] = ast.dump(_Canonical().visit(copy.deepcopy(node)))
    return found


def test_no_lab_answer_is_a_lessons_function_renamed():
    """Lesson code copied under a lab's name must not be an answer: compared after renaming
    every identifier and dropping docstrings (lesson 02's conv_by_hand was lab 1's corr2d)."""
    from hostile_helpers import solution_cells

    lessons: dict[str, str] = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in _nb(path)["cells"]:
            if cell["cell_type"] == "code":
                lessons |= {dump: f"{path.stem}: {name}" for name, dump in
                            _canonical_defs("".join(cell["source"])).items()}
    assert len(lessons) > 20
    copies = []
    for lab in LAB_NAMES:
        for code in solution_cells(_nb(LABS / f"{lab}.ipynb")):
            copies += [f"{lab}: {name} is {lessons[dump]}"
                       for name, dump in _canonical_defs(code).items() if dump in lessons]
    assert copies == []
