"""Turn the sandbox's plain-data answers into points, in the grader's own process.

Nothing here executes or unpickles anything a student made: result files are size-checked
before parsing, read with ``json`` and ``np.load(allow_pickle=False)``, decoded into plain
Python/NumPy data, validated and compared with the expected answers the autograder holds.
``compare`` is also what the student-side ``grader.check`` uses on public cases.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cnnlab.grading.master import ATOL, RTOL
from cnnlab.grading.runner import decode

MAX_JSON = 4 * 2**20  # bytes of results.json
MAX_NPZ = 64 * 2**20  # bytes of arrays.npz, and of all its arrays decoded together
MAX_MEMBERS = 10_000  # arrays in arrays.npz


class BadResults(ValueError):
    """The sandbox's result files are missing, too large or malformed."""


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"array {np.array2string(value.ravel(), precision=4)} shape {value.shape}"
        return f"array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, np.ndarray) else "array"


def _same(expected: Any, got: Any, close: bool, rtol: float, atol: float,
          where: str = "", reveal: bool = True) -> str:
    """'' when ``got`` matches ``expected``, else a one-line reason. With ``reveal`` False (a
    hidden case) the reason says what is wrong in words and never shows an expected value."""
    here = f" at {where}" if where else ""
    if isinstance(expected, (np.ndarray, float)) and close or isinstance(expected, np.ndarray):
        if isinstance(got, bool) or not isinstance(got, (np.ndarray, int, float)):
            return f"expected a number array{here}, got {_kind(got)}"
        want, have = np.asarray(expected), np.asarray(got)
        if want.shape != have.shape:
            return (f"expected shape {want.shape}{here}, got shape {have.shape}" if reveal
                    else f"wrong shape{here}: got {have.shape}")
        if have.dtype.kind not in "biuf":
            return f"expected numbers{here}, got dtype {have.dtype}"
        if close:
            good = np.isclose(have.astype(float), want.astype(float), rtol=rtol, atol=atol)
        else:
            good = have == want
        if not np.all(good):
            if not want.ndim:
                return (f"expected {float(want):.6g}{here}, got {float(have):.6g}" if reveal
                        else f"wrong value{here}: got {float(have):.6g}")
            wrong = f"{int((~good).sum())} of {want.size} values differ{here}"
            if not reveal:
                return wrong
            first = tuple(int(i) for i in np.argwhere(~good)[0])
            return (f"{wrong}; first at {first}: expected {want[first]:.6g}, "
                    f"got {have[first]:.6g}")
        return ""
    if isinstance(expected, (list, tuple)):
        if type(got) is not type(expected):
            return f"expected a {type(expected).__name__}{here}, got {_describe(got)}"
        if len(got) != len(expected):
            return (f"expected {len(expected)} items{here}, got {len(got)}: {_describe(got)}"
                    if reveal else f"wrong number of items{here}: got {_describe(got)}")
        for index, (e, g) in enumerate(zip(expected, got, strict=True)):
            problem = _same(e, g, close, rtol, atol, f"{where}[{index}]", reveal)
            if problem:
                if where or isinstance(e, (list, tuple, np.ndarray)):
                    return problem
                return (f"expected {_describe(expected)}, got {_describe(got)}" if reveal
                        else f"wrong value at [{index}]: got {_describe(got)}")
        return ""
    if type(got) is not type(expected):
        return f"expected {_describe(expected) + ' (' if reveal else 'a '}{_kind(expected)}" \
               f"{')' if reveal else ''}{here}, got {_describe(got)} ({_kind(got)})"
    if isinstance(expected, float) and close:
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return (f"expected {expected:.6g}{here}, got {got:.6g}" if reveal
                    else f"wrong value{here}: got {got:.6g}")
        return ""
    if got == expected:
        return ""
    return (f"expected {_describe(expected)}{here}, got {_describe(got)}" if reveal
            else f"wrong value{here}: got {_describe(got)}")


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    return False


def compare(case: dict, expected: Any, got: Any, reveal: bool = True) -> str:
    """'' when the answer earns the case's points, else a short reason: expected vs got, or
    (``reveal`` False, for hidden cases) what is wrong without the expected value."""
    kind = case.get("compare", "auto")
    if kind == "range":
        low, high = float(case["at_least"]), float(case.get("at_most") or math.inf)
        if type(got) not in (int, float) or not low <= got <= high:
            return f"expected a number between {low:g} and {high:g}, got {_describe(got)}"
        return ""
    if kind == "accuracy":
        if isinstance(got, (list, tuple)) and all(type(v) is int for v in got):
            got = np.asarray(got)
        if not isinstance(got, np.ndarray) or got.dtype.kind not in "iu" or \
                got.shape != np.shape(expected):
            return f"expected {np.size(expected)} integer class predictions, got " \
                   f"{_describe(got)}"
        accuracy = float(np.mean(got == np.asarray(expected)))
        if accuracy < case["at_least"]:
            return f"accuracy {accuracy:.3f} on held-out images, below {case['at_least']:.2f}"
        return ""
    close = kind == "close" or (kind == "auto" and _has_float(expected))
    return _same(expected, got, close, float(case.get("rtol", RTOL)),
                 float(case.get("atol", ATOL)), reveal=reveal)


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
            problem = static.get(case_id, "not checked")
        else:
            got = answers.get(case_id, BadResults("no answer"))
            problem = str(got) if isinstance(got, BadResults) else \
                compare(case, expected[case_id], got,
                        reveal=instructor or bool(case.get("public")))
        if problem:
            notes.append(f"{case_id}: {problem}"[:160])
        else:
            scores[case["question"]] += float(case["points"])
    for question, info in lab["questions"].items():
        scores[question] = max(0.0, min(scores[question], float(info["points"])))
    return scores, notes
