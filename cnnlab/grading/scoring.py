"""Turn the sandbox's plain-data answers into points, in the grader's own process.

Nothing here executes or unpickles anything a student made: result files are size-checked
before parsing, read with ``json`` and ``np.load(allow_pickle=False)``, decoded into plain
Python/NumPy data, validated and compared with the expected answers the autograder holds.
``compare`` is also what the student-side ``grader.check`` uses on public cases.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cnnlab.grading.kinds import judge
from cnnlab.grading.runner import decode

MAX_JSON = 4 * 2**20  # bytes of results.json
MAX_NPZ = 64 * 2**20  # bytes of arrays.npz, and of all its arrays decoded together
MAX_MEMBERS = 10_000  # arrays in arrays.npz


class BadResults(ValueError):
    """The sandbox's result files are missing, too large or malformed."""


class _Once(dict):
    """Arrays of an npz file, each read at most once however often the answers name it."""

    def __init__(self, stored: Any) -> None:
        super().__init__()
        self.stored = stored

    def __contains__(self, key: object) -> bool:
        return key in self.stored.files

    def __missing__(self, key: str) -> np.ndarray:
        self[key] = self.stored[key]
        return self[key]


class Results(NamedTuple):
    """What the sandbox's runner reported, decoded and checked."""

    answers: dict[str, Any]  # case id -> decoded answer, or a BadResults saying why none
    cells: list[dict]  # cells that raised: {"cell": index, "error": text}
    functions: dict[str, list[int]]  # name -> [cell, line] of the def it is bound to


def load_results(out: Path, case_ids: list[str]) -> Results:
    """Read the runner's files within fixed budgets; raises BadResults."""
    results, arrays_path = out / "results.json", out / "arrays.npz"
    for path, cap in ((results, MAX_JSON), (arrays_path, MAX_NPZ)):
        if path.is_symlink() or not path.is_file():
            raise BadResults(f"the sandbox wrote no {path.name} (the kernel died, or the "
                             "notebook ended the process)")
        if path.stat().st_size > cap:
            raise BadResults(f"{path.name} is larger than {cap // 2**20} MB")
    try:
        data = json.loads(results.read_bytes())
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise BadResults(f"results.json is not valid: {type(error).__name__}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), dict):
        raise BadResults("results.json has no cases")
    cells = [c for c in data.get("cells", []) if isinstance(c, dict)][:50] \
        if isinstance(data.get("cells"), list) else []
    answers: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(arrays_path) as archive:  # sizes as stored: zipfile reads no
            members = archive.infolist()  # more than a member declares, so this bounds it
            if len(members) > MAX_MEMBERS or \
                    sum(info.file_size for info in members) > MAX_NPZ:
                raise BadResults(f"the arrays in arrays.npz take more than "
                                 f"{MAX_NPZ // 2**20} MB decoded")
        with np.load(arrays_path, allow_pickle=False) as stored:
            arrays = _Once(stored)
            for case_id in case_ids:
                entry = data["cases"].get(case_id)
                if not isinstance(entry, dict):
                    answers[case_id] = BadResults("no answer recorded")
                elif "error" in entry:
                    answers[case_id] = BadResults(str(entry["error"])[:300])
                else:
                    try:
                        answers[case_id] = decode(entry.get("value"), arrays)
                    except (ValueError, TypeError, KeyError, OSError, RecursionError) as error:
                        answers[case_id] = BadResults(f"invalid answer: {str(error)[:100]}")
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise BadResults(f"arrays.npz is not valid: {str(error)[:100]}") from None
    functions = data.get("functions")
    functions = {k: v for k, v in list(functions.items())[:10_000]
                 if isinstance(k, str) and isinstance(v, list) and len(v) == 2
                 and all(type(n) is int for n in v)} if isinstance(functions, dict) else {}
    return Results(answers, cells, functions)


def score(lab: dict, expected: dict[str, Any], answers: dict[str, Any],
          static: dict[str, str], instructor: bool = False) -> tuple[dict[str, float], list[str]]:
    """Points per question (clamped to its maximum) and short notes on failed cases. A note
    on a hidden case never shows its expected value, unless it is for the ``instructor``."""
    scores = {q: 0.0 for q in lab["questions"]}
    notes: list[str] = []
    for case_id, case in lab["cases"].items():
        if case.get("static"):
            problem = judge(case, None, static.get(case_id))
        else:
            got = answers.get(case_id, BadResults("no answer"))
            problem = str(got) if isinstance(got, BadResults) else \
                judge(case, expected[case_id], got, reveal=instructor or bool(case.get("public")))
        if problem:
            notes.append(f"{case_id}: {problem}"[:160])
        else:
            scores[case["question"]] += float(case["points"])
    for question, info in lab["questions"].items():
        scores[question] = max(0.0, min(scores[question], float(info["points"])))
    return scores, notes
