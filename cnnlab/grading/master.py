"""Read a lab master notebook: solutions to blank out and the questions' cases.

See the package docstring (``cnnlab.grading``) for the format. Everything here treats the
master as the instructor's trusted code: question cells are executed to build the cases.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab import hosted
from cnnlab.grading.kinds import ATOL, COMPARES, RTOL, kind_of

QUESTION = re.compile(r"#\s*QUESTION\s+(\w+)\s*$")
SOLUTION_TAIL = re.compile(r"\s*#\s*SOLUTION\s*$")
MASTER = object()  # "expected = what the master's solution returns"



@dataclass
class Case:
    """One graded check of a question (see the package docstring for each field)."""

    question: str
    name: str
    code: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    public: bool = False
    points: float = 1.0
    compare: str = "auto"
    rtol: float = RTOL
    atol: float = ATOL
    at_least: float | None = None
    at_most: float | None = None
    expected: Any = MASTER
    hint: str = ""
    static: str | None = None
    function: str | None = None

    @property
    def id(self) -> str:
        return f"{self.question}/{self.name}"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def blank_solutions(source: str) -> tuple[str, list[str]]:
    """Replace solution blocks and `# SOLUTION` lines by `...`; return (student, removed)."""
    out: list[str] = []
    removed: list[str] = []
    inside = False
    for line in source.splitlines():
        tag = line.strip().upper()
        if tag.startswith("# BEGIN SOLUTION"):
            inside = True
            out.append(line[:len(line) - len(line.lstrip())] + "...")
        elif tag.startswith("# END SOLUTION"):
            inside = False
        elif inside:
            removed.append(line)
        elif SOLUTION_TAIL.search(line):
            removed.append(line)
            head = SOLUTION_TAIL.sub("", line)
            match = re.match(r"(\s*[\w.,\s\[\]]+?)\s*=[^=]", head)
            out.append(f"{match.group(1)} = ..." if match else
                       head[:len(head) - len(head.lstrip())] + "...")
        else:
            out.append(line)
    if inside:
        raise ValueError("a `# BEGIN SOLUTION` has no `# END SOLUTION` in the same cell")
    return "\n".join(out), removed


def read_cases(master: Path) -> list[Case]:
    """Execute the master's `# QUESTION qN` raw cells and collect the cases they declare."""
    notebook = json.loads(master.read_text(encoding="utf-8"))
    cases: list[Case] = []
    for cell in notebook["cells"]:
        source = _source(cell)
        first = source.split("\n", 1)[0]
        if cell.get("cell_type") != "raw" or not QUESTION.match(first):
            continue
        question = QUESTION.match(first).group(1)

        def case(name: str, code: str = "", *, _q: str = question, **options: Any) -> None:
            if any(c.question == _q and c.name == name for c in cases):
                raise ValueError(f"{master.name}: case {name!r} of {_q} is declared twice")
            made = Case(_q, name, code, **options)
            if made.compare not in COMPARES:
                raise ValueError(f"{made.id}: compare must be one of {COMPARES}")
            problem = kind_of(made).validate(made)
            if problem:
                raise ValueError(f"{made.id}: {problem}")
            cases.append(made)

        exec(compile(source.split("\n", 1)[1] if "\n" in source else "",  # noqa: S102
                     f"{master.name}:{question}", "exec"), {"case": case, "np": np})
    if not cases:
        raise ValueError(f"{master.name}: no `# QUESTION qN` raw cells with cases found")
    return cases


def student_notebook(master: Path, lab: str) -> tuple[dict, dict, list[str]]:
    """(student notebook, solution notebook, removed solution lines) built from ``master``.

    Question cells become `grader.check("qN")` cells; the checker comes first among the code
    cells (after the install cell, when the master has one).
    """
    notebook = json.loads(master.read_text(encoding="utf-8"))
    student, solution = copy.deepcopy(notebook), copy.deepcopy(notebook)
    removed: list[str] = []
    init = {"cell_type": "code", "execution_count": None, "outputs": [],
            "metadata": {"deletable": False, "editable": False},
            "source": "# grader.check(\"q1\") runs the public checks of question q1\n"
                      "from cnnlab.grading.check import Checker\n\n"
                      f"grader = Checker(\"{lab}\")"}
    for target, blank in ((student, True), (solution, False)):
        cells = []
        for cell in target["cells"]:
            source = _source(cell)
            first = source.split("\n", 1)[0]
            if cell.get("cell_type") == "raw" and QUESTION.match(first):
                question = QUESTION.match(first).group(1)
                cells.append({"cell_type": "code", "execution_count": None, "outputs": [],
                              "metadata": {"deletable": False, "editable": False},
                              "source": f"grader.check(\"{question}\")"})
                continue
            if cell.get("cell_type") == "code":
                text, gone = blank_solutions(source)
                if blank:
                    removed += gone
                    cell = dict(cell, source=text, outputs=[], execution_count=None)
                else:
                    keep = "\n".join(ln for ln in source.splitlines()
                                     if ln.strip().upper() not in ("# BEGIN SOLUTION",
                                                                   "# END SOLUTION"))
                    cell = dict(cell, source=keep, outputs=[], execution_count=None)
                cell.get("metadata", {}).pop("execution", None)
            cells.append(cell)
        first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), 0)
        if first_code < len(cells) and hosted.is_install_cell(_source(cells[first_code])):
            first_code += 1  # on Colab the checker needs cnnlab installed first
        cells.insert(first_code, copy.deepcopy(init))
        target["cells"] = cells
        target.setdefault("metadata", {})["cnnlab"] = {"lab": lab}
    return student, solution, removed
