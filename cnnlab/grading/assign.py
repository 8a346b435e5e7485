"""``cnnlab assign``: a lab master -> student notebook, public checks and the autograder.

The master's solution is run once (unsandboxed: it is the instructor's code) through the same
runner the sandbox uses; its answers become the expected values, and the master must then
earn full marks through the same scoring path, or the lab is not built.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.grading import bundle, gradescope, sandbox, scoring, static
from cnnlab.grading.master import MASTER, Case, read_cases, student_notebook
from cnnlab.grading.runner import cell_sources, encode

RUNNER = Path(__file__).with_name("runner.py")


def _plan(cases: list[Case]) -> tuple[dict, dict[str, np.ndarray]]:
    """What the sandbox gets: case ids, code and inputs. No expected values, no points."""
    arrays: dict[str, np.ndarray] = {}
    plan = {"cases": [{"id": c.id, "code": c.code,
                       "inputs": {k: encode(v, arrays) for k, v in c.inputs.items()}}
                      for c in cases if c.static is None]}
    return plan, arrays


def _rules(case: Case) -> dict:
    return {"question": case.question, "name": case.name, "public": case.public,
            "points": case.points, "compare": case.compare, "rtol": case.rtol,
            "atol": case.atol, "at_least": case.at_least, "at_most": case.at_most,
            "hint": case.hint, "static": case.static, "function": case.function}


def run_solution(notebook: dict, plan: dict, arrays: dict, timeout: float = 900.0):
    """Run a (trusted) notebook through the runner in a temp dir: its ``scoring.Results``."""
    work = Path(tempfile.mkdtemp(prefix="cnnlab-assign-"))
    try:
        (work / "submission.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        (work / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        with open(work / "plan.npz", "wb") as f:
            np.savez(f, **arrays)
        done = subprocess.run([sys.executable, "-I", str(RUNNER), str(work)], cwd=work,
                              env=sandbox.runner_env(str(work), str(work), threads=2),
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        try:
            return scoring.load_results(work / "out", [c["id"] for c in plan["cases"]])
        except scoring.BadResults as error:
            tail = done.stderr.decode(errors="replace")[-600:]
            raise ValueError(f"the solution could not be run: {error}\n{tail}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _distinctive(lines: list[str], public_text: str) -> list[str]:
    squash = re.compile(r"[\s'\"]")
    seen = squash.sub("", public_text)
    keep = []
    for line in lines:
        norm = squash.sub("", line.split("#")[0])
        if len(norm) >= 12 and norm not in seen:
            keep.append(norm)
    return keep


def assign_one(master: Path, out: Path) -> Path:
    """Build OUT/<lab>/student and OUT/<lab>/autograder from ``master``; ValueError if unfit."""
    lab = master.stem
    cases = read_cases(master)
    student, solution, removed = student_notebook(master, lab)
    plan, plan_arrays = _plan(cases)
    answers, cells, functions = run_solution(solution, plan, plan_arrays)
    if cells:
        raise ValueError(f"the solution raises: cell {cells[0].get('cell')}: "
                         f"{cells[0].get('error')}")
    expected = {}
    for case in cases:
        if case.static is not None:
            continue
        got = answers[case.id]
        if isinstance(got, scoring.BadResults):
            raise ValueError(f"case {case.id} fails on the solution: {got}")
        expected[case.id] = got if case.expected is MASTER else case.expected
    questions: dict[str, dict] = {}
    for case in cases:
        questions.setdefault(case.question, {"points": 0.0})["points"] += case.points
    lab_info = {"lab": lab, "questions": questions,
                "cases": {c.id: _rules(c) for c in cases}}
    sources = cell_sources(solution)
    checks = {c.id: static.RULES[c.static](sources, c.function, functions)[1]
              for c in cases if c.static}
    scores, notes = scoring.score(lab_info, expected, answers, checks, instructor=True)
    if notes:
        raise ValueError("the solution does not earn full marks:\n    " + "\n    ".join(notes))
    target = out / lab
    if target.exists():
        shutil.rmtree(target)
    (target / "student").mkdir(parents=True)
    grader = target / "autograder"
    grader.mkdir()
    (target / "student" / f"{lab}.ipynb").write_text(json.dumps(student, indent=1) + "\n",
                                                     encoding="utf-8")
    public = {c.id: dict(_rules(c), code=c.code,
                         inputs={k: encode(v) for k, v in c.inputs.items()},
                         expected=encode(expected[c.id]))
              for c in cases if c.public and c.static is None}
    (target / "student" / f"{lab}.checks.json").write_text(json.dumps(public), "utf-8")
    shipped = "\n".join(p.read_text(encoding="utf-8") for p in (target / "student").iterdir())
    public_text = "\n".join(s for s in cell_sources(student))
    squashed = re.sub(r"[\s'\"]", "", shipped)
    leaks = [line for line in _distinctive(removed, public_text) if line in squashed]
    if leaks:
        shutil.rmtree(target)
        raise ValueError("the student version leaks solution lines: " + "; ".join(leaks[:5]))
    bundle.save(grader, lab_info, expected, plan, plan_arrays)
    (grader / f"{lab}.ipynb").write_text(json.dumps(solution, indent=1) + "\n", "utf-8")
    gradescope.write_zip(grader, grader / f"{lab}_gradescope.zip")
    return target


def assign_main(argv: Sequence[str]) -> int:
    """``cnnlab assign MASTER... --out DIR``: exit 0 if every lab was built, 1 if not."""
    parser = argparse.ArgumentParser(
        prog="cnnlab assign",
        description="Build each lab master into DIR/<lab>/student/<lab>.ipynb (+ public "
                    "checks) and DIR/<lab>/autograder/ (expected answers, call plan, "
                    "Gradescope zip). The master's solution must earn full marks.")
    parser.add_argument("masters", nargs="*", type=Path, metavar="MASTER",
                        help="master notebooks (default: ./notebooks/labs/*.ipynb)")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="default: dist/")
    args = parser.parse_args(list(argv))
    masters = args.masters
    if not masters:
        here = Path.cwd() / "notebooks" / "labs"
        masters = sorted(here.glob("*.ipynb"))
        if not masters:
            print(f"cnnlab assign: no MASTER given and no masters in {here}; pass the "
                  "master notebooks, e.g. cnnlab assign notebooks/labs/*.ipynb --out dist",
                  file=sys.stderr)
            return 2
        print(f"cnnlab assign: no MASTER given; using the {len(masters)} masters in {here}")
    missing = [m for m in masters if not m.is_file()]
    if missing:
        print(f"cnnlab assign: master notebook not found: {', '.join(map(str, missing))}",
              file=sys.stderr)
        return 2
    failed = 0
    for master in masters:
        try:
            target = assign_one(master, args.out)
        except Exception as error:  # noqa: BLE001 - a broken master: report it, build the rest
            failed += 1
            print(f"{master.name}: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        print(f"{master.name}: student notebook in {target / 'student'}, autograder in "
              f"{target / 'autograder'}")
    print(f"assigned {len(masters) - failed} of {len(masters)} labs into {args.out}/")
    return 1 if failed else 0
