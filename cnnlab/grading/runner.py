"""The tiny program that runs a submission INSIDE the sandbox and hands back plain data.

    python -I runner.py SCRATCH

reads ``SCRATCH/submission.ipynb`` and the call plan ``SCRATCH/plan.json`` (+ ``plan.npz``),
executes the notebook's code cells in order (a cell that raises is recorded and execution
goes on), then runs each planned case in the student's namespace and writes
``SCRATCH/out/results.json`` (+ ``out/arrays.npz``, ``allow_pickle=False``).

It imports only the standard library and NumPy (torch only if the student does), knows no
expected answer and no points, and is stdlib-importable on the student side too: ``encode``
and ``decode`` (plain data <-> tagged JSON) are shared with the grader and ``grader.check``.
Everything here runs with the student's privileges: the grader trusts none of its output.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import traceback
import types
from pathlib import Path
from typing import Any

import numpy as np

MAX_DEPTH = 12  # nesting of lists/tuples in one answer
MAX_ITEMS = 100_000  # scalars plus containers in one answer
MAX_ARRAY_BYTES = 16 * 2**20  # one answer's arrays
MAX_TEXT = 10_000  # characters of one string answer or error message
NUMERIC_KINDS = "biuf"  # bool, int, unsigned, float dtypes


class Unsupported(TypeError):
    """An answer that is not plain data (numbers, strings, lists/tuples, numeric arrays)."""


def _as_array(value: Any) -> np.ndarray | None:
    """A NumPy copy of a NumPy array or a torch tensor, else None (torch is never imported)."""
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True)
    module = type(value).__module__ or ""
    if module.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter"):
        return np.array(value.detach().cpu().numpy(), copy=True)
    return None


def encode(value: Any, arrays: dict[str, np.ndarray] | None = None, depth: int = 0,
           budget: list[int] | None = None) -> Any:
    """Plain data -> tagged JSON: {"i": 3}, {"f": 0.5}, {"b": true}, {"s": ".."}, {"n": null},
    {"l": [..]}, {"t": [..]} and {"a": key} for an array stored in ``arrays`` (inline as
    {"A": {"dtype", "shape", "data"}} when ``arrays`` is None). Anything else raises
    :class:`Unsupported`."""
    budget = [MAX_ITEMS, MAX_ARRAY_BYTES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise Unsupported(f"answer too large or too deeply nested (> {MAX_ITEMS} items or "
                          f"> {MAX_DEPTH} levels)")
    kind = type(value)
    if value is Ellipsis:
        raise Unsupported("not answered yet (still `...`)")
    if value is None:
        return {"n": None}
    if kind is bool or kind is np.bool_:
        return {"b": bool(value)}
    if kind is int or isinstance(value, np.integer):
        number = int(value)
        if abs(number) > 2**63:
            raise Unsupported("integer answer too large")
        return {"i": number}
    if kind is float or isinstance(value, np.floating):
        return {"f": float(value)}
    if kind is str:
        if len(value) > MAX_TEXT:
            raise Unsupported(f"string answer longer than {MAX_TEXT} characters")
        return {"s": str.__str__(value)}
    if kind is list or kind is tuple:
        items = [encode(v, arrays, depth + 1, budget) for v in list.__iter__(value)] \
            if kind is list else [encode(v, arrays, depth + 1, budget)
                                  for v in tuple.__iter__(value)]
        return {"l" if kind is list else "t": items}
    array = _as_array(value)
    if array is None:
        raise Unsupported(f"got a {kind.__module__}.{kind.__qualname__}, which is not plain "
                          "data (a number, string, list, tuple or numeric array)")
    if array.dtype.kind not in NUMERIC_KINDS:
        raise Unsupported(f"arrays must be numeric, got dtype {array.dtype}")
    budget[1] -= array.nbytes
    if budget[1] < 0:
        raise Unsupported(f"arrays in one answer exceed {MAX_ARRAY_BYTES // 2**20} MB")
    if arrays is None:
        return {"A": {"dtype": array.dtype.str, "shape": list(array.shape),
                      "data": array.ravel().tolist()}}
    key = f"a{len(arrays)}"
    arrays[key] = array
    return {"a": key}


def decode(tree: Any, arrays: Any = None, depth: int = 0) -> Any:
    """Tagged JSON -> plain data; raises ValueError on anything malformed (grader side too)."""
    if depth > MAX_DEPTH + 1 or not isinstance(tree, dict) or len(tree) != 1:
        raise ValueError("malformed answer encoding")
    (tag, item), = tree.items()
    if tag == "n" and item is None:
        return None
    if tag == "b" and type(item) is bool:
        return item
    if tag == "i" and type(item) is int:
        return item
    if tag == "f" and type(item) in (int, float):
        return float(item)
    if tag == "s" and type(item) is str:
        return item
    if tag in ("l", "t") and type(item) is list:
        values = [decode(v, arrays, depth + 1) for v in item]
        return values if tag == "l" else tuple(values)
    if tag == "a" and type(item) is str and arrays is not None and item in arrays:
        array = arrays[item]
        if array.dtype.kind not in NUMERIC_KINDS:
            raise ValueError("non-numeric array in an answer")
        return array
    if tag == "A" and type(item) is dict:
        dtype = np.dtype(str(item.get("dtype")))
        if dtype.kind not in NUMERIC_KINDS:
            raise ValueError("non-numeric array in an answer")
        return np.array(item["data"], dtype=dtype).reshape([int(n) for n in item["shape"]])
    raise ValueError(f"malformed answer encoding (tag {tag!r})")


def short_error(error: BaseException) -> str:
    """'TypeError: message' on one line, at most 300 characters."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text[:300]


def run_case(code: str, namespace: dict, inputs: dict) -> Any:
    """Run a case's code (statements, then a final expression) in the student's namespace."""
    scope = dict(namespace)
    scope.update(inputs)
    tree = ast.parse(code.strip(), "<case>", "exec")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<case>", "exec"), scope)  # noqa: S102 - instructor's case, own process
    if last is None:
        raise ValueError("a case must end with an expression")
    return eval(compile(ast.Expression(last.value), "<case>", "eval"), scope)  # noqa: S307


# Magics whose code is Python that runs (once) in the notebook's namespace, as in Jupyter:
# `%%time` on an answer cell must define the answer. Every other magic and shell line does
# nothing here (no shell, no network, no files outside the scratch folder).
CELL_MAGICS_THAT_RUN = ("time", "timeit", "capture", "prun")
LINE_MAGICS_THAT_RUN = ("time", "timeit", "prun")
_TIMEIT_OPTIONS = re.compile(r"^(?:-[nrp]\s*\d+\s+|-[qotc]\s+)*")
_SHELL_ASSIGN = re.compile(r"^([\w.,\s\[\]()*]+?=)\s*[!%]")
_HELP = re.compile(r"^\??[\w.\[\]()]+\?{1,2}$")


def _python_line(line: str) -> str:
    """One line of a cell as Python: `%time stmt` -> `stmt`, `x = !ls` -> `x = None`,
    `np.sum?` and other magics or shell lines -> `pass` (indentation kept)."""
    stripped = line.lstrip()
    indent = line[:len(line) - len(stripped)]
    if stripped.startswith("%") and not stripped.startswith("%%"):
        name, _, rest = stripped[1:].partition(" ")
        rest = _TIMEIT_OPTIONS.sub("", rest.strip())
        return indent + (rest if name in LINE_MAGICS_THAT_RUN and rest else "pass")
    if stripped.startswith(("!", "%%")) or _HELP.match(stripped):
        return indent + "pass"
    shell = _SHELL_ASSIGN.match(stripped)
    return indent + shell.group(1) + " None" if shell else line


def to_python(text: str) -> str:
    """A notebook cell as plain Python, in one pass over its lines (linear in its size: this
    also runs in the grader's process, where IPython's own transformer could take a minute on
    a cell of shell lines). A `%%time`-like cell keeps its body; any other cell magic
    (`%%bash`, `%%html` ...) makes the cell do nothing."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = (lines[first].strip()[2:].split() or [""])[0]
        if name not in CELL_MAGICS_THAT_RUN:
            return ""
        lines = lines[first + 1:]
    if not any(line.lstrip()[:1] in ("%", "!") or line.rstrip().endswith("?")
               or "=" in line and ("!" in line or "%" in line) for line in lines):
        return "\n".join(lines)
    return "\n".join(_python_line(line) if starts else line
                     for line, starts in zip(lines, _statement_starts(lines), strict=True))


def _statement_starts(lines: list[str]) -> list[bool]:
    """For each line, whether it starts outside brackets and strings (where a magic may be):
    `!= b` continuing an expression in parentheses is Python, not a shell line. One pass."""
    starts, depth, quote = [], 0, ""
    for line in lines:
        starts.append(depth == 0 and not quote and not line.lstrip().startswith("!="))
        index = 0
        while index < len(line):
            char = line[index]
            if quote:
                if char == "\\":
                    index += 1
                elif line.startswith(quote, index):
                    index += len(quote) - 1
                    quote = ""
            elif char == "#":
                break
            elif char in "\"'":
                quote = char * 3 if line.startswith(char * 3, index) else char
                index += len(quote) - 1
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                depth = max(0, depth - 1)
            index += 1
        if len(quote) == 1:  # a one-line string ends with its line
            quote = ""
    return starts


class _NoShell:
    """Stands in for IPython inside the sandbox: `get_ipython()` calls do nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def cell_sources(notebook: Any) -> list[str]:
    """The code cells of a notebook dict as plain Python (see ``to_python``)."""
    sources = []
    for cell in notebook.get("cells", []) if isinstance(notebook, dict) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(s for s in source if isinstance(s, str)) if isinstance(
            source, list) else source if isinstance(source, str) else ""
        sources.append(to_python(text))
    return sources


def run_notebook(sources: list[str], namespace: dict) -> list[dict]:
    """Execute cells in order; return [{"cell": i, "error": ...}] for cells that raised."""
    errors = []
    for index, source in enumerate(sources):
        try:
            exec(compile(source, f"<cell {index}>", "exec"), namespace)  # noqa: S102
        except BaseException as error:  # noqa: BLE001 - SystemExit, KeyboardInterrupt too
            errors.append({"cell": index, "error": short_error(error)})
            traceback.print_exc(limit=2)
    return errors


def defined_functions(namespace: dict) -> dict[str, list[int]]:
    """{name: [cell, line]} for each module-level name bound to a function that a cell
    defined: what the cases will call, for the grader's static rules to check."""
    found = {}
    for name, value in list(namespace.items())[:10_000]:
        code = value.__code__ if type(value) is types.FunctionType else None
        where = re.fullmatch(r"<cell (\d+)>", code.co_filename) if code else None
        if where and isinstance(name, str) and len(name) <= 100:
            found[name] = [int(where.group(1)), code.co_firstlineno]
    return found


def main(scratch: str) -> int:
    """Run the submission and the plan in ``scratch``; write out/results.json."""
    root = Path(scratch)
    package_parent = str(Path(__file__).resolve().parents[2])
    if package_parent not in sys.path:  # cnnlab importable where it is not installed
        sys.path.append(package_parent)
    plan = json.loads((root / "plan.json").read_text(encoding="utf-8"))
    with np.load(root / "plan.npz", allow_pickle=False) as stored:
        inputs = {key: stored[key] for key in stored.files}
    notebook = json.loads((root / "submission.ipynb").read_text(encoding="utf-8"))
    out = root / "out"
    out.mkdir(exist_ok=True)
    sys.argv = ["submission.ipynb"]
    namespace: dict = {"__name__": "__main__", "get_ipython": _NoShell,
                       "__builtins__": __builtins__}
    errors = run_notebook(cell_sources(notebook), namespace)
    functions = defined_functions(namespace)
    arrays: dict[str, np.ndarray] = {}
    cases = {}
    for case in plan["cases"]:
        try:
            given = {name: decode(tree, inputs) for name, tree in case["inputs"].items()}
            value = run_case(case["code"], namespace, given)
            cases[case["id"]] = {"value": encode(value, arrays)}
        except BaseException as error:  # noqa: BLE001
            cases[case["id"]] = {"error": short_error(error)}
    with open(out / "arrays.npz", "wb") as f:
        np.savez(f, **arrays)
    text = json.dumps({"cases": cases, "cells": errors[:50], "functions": functions},
                      allow_nan=True)
    (out / "results.json").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
