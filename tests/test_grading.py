"""Tests of cnnlab.grading: `cnnlab assign` and `cnnlab grade` on the real lab masters.

Slow by nature (otter runs whole notebooks), so the expensive steps run once per module: one
`cnnlab assign` of both labs plus a deliberately broken master, and one `cnnlab grade` of all
lab 1 fixture submissions with --jobs 2. The fixtures are written from the student notebook
by tests/fixtures/grading/make_submissions.py.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.util
import io
import json
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from cnnlab import cli, grading

LABS = grading.LABS_DIR
FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "make_submissions.py"
LOOP_TIMEOUT = 45  # seconds; every honest fixture grades in well under this, even under load

spec = importlib.util.spec_from_file_location("make_submissions", FIXTURES)
make_submissions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_submissions)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def assigned(tmp_path_factory):
    """One `cnnlab assign` of both labs and of a master whose solution fails its own test."""
    tmp = tmp_path_factory.mktemp("assign")
    broken = tmp / "broken_lab.ipynb"  # tiny, so that otter assign of it costs little
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_raw_cell("# ASSIGNMENT CONFIG\nname: broken_lab\ntests:\n  files: true"),
        nbformat.v4.new_raw_cell("# BEGIN QUESTION\nname: q1\npoints: 1"),
        nbformat.v4.new_raw_cell("# BEGIN SOLUTION"),
        nbformat.v4.new_code_cell("answer = 41  # SOLUTION"),
        nbformat.v4.new_raw_cell("# END SOLUTION"),
        nbformat.v4.new_raw_cell("# BEGIN TESTS"),
        nbformat.v4.new_code_cell('assert answer == 42, f"answer should be 42, got {answer}"'),
        nbformat.v4.new_raw_cell("# END TESTS"),
        nbformat.v4.new_raw_cell("# END QUESTION"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}}), broken)
    masters = [LABS / "lab1_convolution.ipynb", LABS / "lab2_build_a_cnn.ipynb", broken]
    start = time.monotonic()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = grading.assign_main([*map(str, masters), "--out", str(tmp / "dist")])
    return {"dist": tmp / "dist", "status": status, "seconds": time.monotonic() - start,
            "out": out.getvalue(), "err": err.getvalue()}


def test_assign_builds_student_versions_and_autograders(assigned):
    for lab in ("lab1_convolution", "lab2_build_a_cnn"):
        folder = assigned["dist"] / lab
        assert (folder / "student" / f"{lab}.ipynb").is_file()
        assert sorted(p.name for p in (folder / "student" / "tests").glob("q*.py"))
        assert len(list((folder / "autograder").glob("*.zip"))) == 1
        name, points = grading.autograder_info(grading.find_autograder(lab, assigned["dist"]))
        assert name == lab and sum(points.values()) >= 15


def test_assign_fails_when_a_solution_fails_its_tests(assigned):
    assert assigned["status"] == 1  # the broken master fails; the two real labs still build
    assert "broken_lab.ipynb: FAILED: the solutions do not pass their own tests" in assigned["err"]
    assert "q1 fails its tests" in assigned["err"]  # the failing question is named
    assert "assert answer == 42" in assigned["err"]  # and the failing test line
    assert "assigned 2 of 3 labs" in assigned["out"]
    assert "lab1_convolution.ipynb: FAILED" not in assigned["err"]


def test_student_versions_contain_no_solutions_or_hidden_tests(assigned):
    secrets = {
        "lab1_convolution": [
            "out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)",
            "window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw]",
            "(1, 8, 26, 26)", "9705", "do not start the maximum at 0", "default_rng(10)",
        ],
        "lab2_build_a_cnn": [
            "nn.Linear(16 * 4 * 4, 10)", "epochs=5, lr=5e-3", "(16, 4, 4)",
            "report the accuracy of the trained model", "do not return a global model",
        ],
    }
    for lab, lines in secrets.items():
        student = assigned["dist"] / lab / "student"
        text = "\n".join(p.read_text() for p in student.rglob("*") if p.is_file())
        for line in lines:
            assert grading._normalise(line) not in grading._normalise(text), (lab, line)
        assert "'hidden': True" not in text and '"hidden": true' not in text
        assert grading.find_leaks(LABS / f"{lab}.ipynb", student) == []
        # the hidden tests are in the autograder, so the scan above could have failed
        autograder = "\n".join(p.read_text() for p in (student.parent / "autograder" / "tests")
                               .glob("*.py"))
        assert "'hidden': True" in autograder


def test_find_leaks_reports_a_leaked_solution(assigned, tmp_path):
    student = tmp_path / "student"
    shutil.copytree(assigned["dist"] / "lab1_convolution" / "student", student)
    notebook = student / "lab1_convolution.ipynb"
    notebook.write_text(notebook.read_text().replace(
        "params_net = ...", "params_net = 9705"))
    leaks = grading.find_leaks(LABS / "lab1_convolution.ipynb", student)
    assert any("9705" in leak for leak in leaks), leaks


def _execute(notebook: Path) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return nb


def test_student_versions_run_top_to_bottom_and_report_unanswered(assigned):
    labs = {"lab1_convolution": 5, "lab2_build_a_cnn": 4}
    paths = [assigned["dist"] / lab / "student" / f"{lab}.ipynb" for lab in labs]
    with ThreadPoolExecutor(2) as pool:
        notebooks = list(pool.map(_execute, paths))  # raises CellExecutionError on a crash
    for nb, questions in zip(notebooks, labs.values(), strict=True):
        checks = {}
        for cell in nb.cells:
            found = re.search(r'grader\.check\("(q\d+)"\)', cell.source)
            if cell.cell_type == "code" and found:
                checks[found.group(1)] = json.dumps(cell.outputs)
        assert len(checks) == questions
        for question, output in checks.items():
            assert f"{question} results" in output and "failed" in output.lower(), output[:300]


@pytest.fixture(scope="module")
def graded(assigned, tmp_path_factory):
    """One `cnnlab grade` run over every fixture submission of lab 1."""
    folder = tmp_path_factory.mktemp("submissions")
    paths = make_submissions.make(assigned["dist"] / "lab1_convolution" / "student",
                                  LABS / "lab1_convolution.ipynb", folder)
    before = {name: _sha(path) for name, path in paths.items()}
    out = folder.parent / "grades.csv"
    # the infinite loop first, so its timeout overlaps the other worker's submissions
    order = sorted(paths, key=lambda name: name != "infinite_loop.ipynb")
    start = time.monotonic()
    status = cli.main(["grade", *(str(paths[name]) for name in order), "--out", str(out),
                       "--lab", "lab1_convolution", "--dist", str(assigned["dist"]),
                       "--timeout", str(LOOP_TIMEOUT), "--jobs", "2"])
    seconds = time.monotonic() - start
    rows = {Path(row["file"]).name: row for row in csv.DictReader(out.open())}
    return {"status": status, "rows": rows, "paths": paths, "before": before,
            "seconds": seconds}


@pytest.mark.parametrize("name", sorted(make_submissions.EXPECTED))
def test_fixture_gets_expected_score_status_and_reason(graded, name):
    total, status, reason = make_submissions.EXPECTED[name]
    row = graded["rows"][name]
    assert (float(row["total"]), row["status"]) == (total, status), row
    assert reason in row["reason"], row
    assert float(row["possible"]) == 20
    scores = [float(row[q]) for q in ("q1", "q2", "q3", "q4", "q5")]
    assert sum(scores) == pytest.approx(float(row["total"]))


def test_submissions_are_not_modified(graded):
    after = {name: _sha(path) for name, path in graded["paths"].items()}
    assert after == graded["before"]


def test_grade_run_is_bounded_and_reports_failures(graded, capsys):
    assert graded["status"] == 1  # the timeout and the non-notebook could not be graded
    assert len(graded["rows"]) == len(make_submissions.EXPECTED)
    # 9 submissions, 2 at a time: far less than one timeout per submission
    assert graded["seconds"] < 4 * LOOP_TIMEOUT, graded["seconds"]
    print(f"graded {len(graded['rows'])} fixtures in {graded['seconds']:.0f} s")


def test_grade_usage_errors(tmp_path, capsys):
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    assert grading.grade_main([str(notebook), "--out", str(tmp_path / "g.csv"),
                               "--autograder", str(tmp_path / "missing.zip")]) == 2
    assert "autograder zip not found" in capsys.readouterr().err
    assert grading.grade_main([str(notebook), "--out", str(tmp_path / "g.csv"),
                               "--lab", "lab9", "--dist", str(tmp_path)]) == 2
    assert "run `cnnlab assign` first" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # no --lab and no metadata naming the lab
        grading.grade_main([str(notebook), "--out", str(tmp_path / "g.csv")])
    assert "cannot tell which lab" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grading.grade_main([str(notebook)])  # --out is required


def test_read_notebook_rejects_non_notebooks(tmp_path):
    cases = {"text.ipynb": "hello", "list.ipynb": "[1, 2]",
             "v3.ipynb": '{"cells": [], "nbformat": 3}'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        notebook, reason = grading._read_notebook(tmp_path / name)
        assert notebook is None and reason, name
    (tmp_path / "binary.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    assert grading._read_notebook(tmp_path / "binary.ipynb")[0] is None


def test_write_csv_has_one_row_per_submission(tmp_path):
    grades = [grading.Grade("a.ipynb", {"q1": 2.0, "q2": 1.5}),
              grading.Grade("b.ipynb", status="timeout", reason="stopped")]
    grading.write_csv(grades, {"q1": 2.0, "q2": 3.0}, tmp_path / "g.csv")
    rows = list(csv.reader((tmp_path / "g.csv").open()))
    assert rows == [["file", "q1", "q2", "total", "possible", "status", "reason"],
                    ["a.ipynb", "2", "1.5", "3.5", "5", "ok", ""],
                    ["b.ipynb", "0", "0", "0", "5", "timeout", "stopped"]]
