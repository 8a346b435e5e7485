"""Student-side public checks: ``grader = Checker("lab1_convolution"); grader.check("q1")``.

Needs no grading stack: it reads ``<lab>.checks.json`` (written next to the student notebook
by ``cnnlab assign``; public cases only, with their expected answers), runs each case in the
notebook's namespace and prints one line when a question passes, at most three lines per
failing case otherwise. Your instructor grades with hidden cases too, in a sandbox.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from cnnlab.grading.kinds import judge
from cnnlab.grading.runner import Unsupported, decode, encode, run_case, short_error


class Checker:
    """Runs the public checks of one lab from the student's notebook."""

    def __init__(self, lab: str, folder: str | Path = ".") -> None:
        path = Path(folder) / f"{lab}.checks.json"
        self.lab = lab
        self.cases: dict[str, dict] = {}
        self.missing = "" if path.is_file() else (
            f"{path} not found: keep {lab}.checks.json (it came with the notebook) in the "
            "notebook's folder to run the public checks")
        if self.missing:
            print(self.missing)
        else:
            self.cases = json.loads(path.read_text(encoding="utf-8"))
        self.passed = False  # the last check's verdict

    def _result(self, case: dict, namespace: dict) -> str:
        """'' when the case passes, else what went wrong (short)."""
        why = self._verdict(case, namespace)
        stubs = _stubs(case["code"], namespace) if why and "not answered" not in why else []
        if stubs:  # e.g. a class whose forward is still `...`: it runs, but answers nothing
            return (f"not answered yet ({', '.join(stubs)} still has `...` in place of code)")
        return why

    def _verdict(self, case: dict, namespace: dict) -> str:
        inputs = {k: decode(v) for k, v in case["inputs"].items()}
        try:
            value = run_case(case["code"], namespace, inputs)
        except NameError as error:
            return f"not answered yet ({short_error(error)})"
        except Exception as error:  # noqa: BLE001 - the student's code raised
            return f"raised {short_error(error)}"
        if value is Ellipsis or isinstance(value, (list, tuple)) and Ellipsis in value:
            return "not answered yet (still `...`)"
        if value is None and case["expected"] is not None:  # a stub's body is only `...`
            return ("not answered yet (it returned None: write the code in place of `...` and "
                    "end it with `return`)")
        try:
            got = decode(encode(value))
        except Unsupported as error:
            return str(error)
        return judge(case, decode(case["expected"]), got)

    def check(self, question: str, namespace: dict[str, Any] | None = None) -> None:
        """Run the public cases of ``question``; print a one-line verdict (plus failures)."""
        self.passed = self._check(question, namespace or sys._getframe(1).f_globals)

    def _check(self, question: str, namespace: dict[str, Any]) -> bool:
        cases = [c for c in self.cases.values() if c["question"] == question]
        if self.missing:
            print(f"{question}: not checked ({self.lab}.checks.json not found)")
            return False
        if not cases:
            print(f"{question}: no public checks (graded by your instructor only)")
            return True
        failures = [(c, self._result(c, namespace)) for c in cases]
        failures = [(c, problem) for c, problem in failures if problem]
        if not failures:
            print(f"{question}: all {len(cases)} public checks passed "
                  "(your instructor also runs hidden ones)")
            return True
        print(f"{question}: {len(failures)} of {len(cases)} public checks failed")
        for case, problem in failures:
            print(f"  - {case['name']}: {problem[:200]}")
            if case.get("hint"):
                print(f"    hint: {case['hint'][:200]}")
        return False

    def check_all(self) -> None:
        """Run every question's public checks."""
        namespace = sys._getframe(1).f_globals
        questions = dict.fromkeys(c["question"] for c in self.cases.values())
        self.passed = all([self._check(q, namespace) for q in questions])


def _stubs(code: str, namespace: dict[str, Any]) -> list[str]:
    """The functions and classes that ``code`` names which still hold a line that is only
    `...` (the handed-out blank), read from their source (IPython keeps each cell's)."""
    try:
        names = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
    except SyntaxError:
        return []
    found = []
    for name in sorted(names):
        value = namespace.get(name)
        if inspect.isfunction(value):
            functions = [value]
        elif isinstance(value, type) and value.__module__ == namespace.get("__name__"):
            functions = [v for v in vars(value).values() if inspect.isfunction(v)]
        else:
            continue
        for function in functions:
            try:
                lines = inspect.getsource(function).splitlines()
            except (OSError, TypeError):
                continue
            if any(line.strip() == "..." for line in lines):
                found.append(name)
                break
    return found
