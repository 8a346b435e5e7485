"""Helpers of the hostile grading suite (tests/test_grading_hostile.py).

Submissions are built from the lab's own files, never from hard-coded answers: the correct
one is the student notebook from ``cnnlab assign`` with each answer cell replaced by the
master's solution cell (matched by the names the cell defines); the honest wrong one edits
those solutions (every function returns its result + 1, every number assigned is off by one).
The rest: running ``cnnlab grade`` in a child process with a temp HOME and a secret variable,
sampling the grader's own memory, snapshots of files, and finding left-over processes.
"""

from __future__ import annotations

import ast
import copy
import csv
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "notebooks" / "labs"
FORMULA = ("=", "+", "-", "@")  # a CSV cell starting with one of these is a spreadsheet formula


def require_bwrap() -> None:
    """Fail in CI, skip elsewhere, when bubblewrap is missing or cannot create a sandbox."""
    from cnnlab.grading import sandbox

    works, reason = sandbox.check_bwrap()
    if works:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI must exercise the real sandbox)")
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# submissions built from the master


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def solution_cells(master: dict) -> list[str]:
    """The master's code cells that hold solutions, with the solution markers removed.

    Knows both master formats: `# BEGIN/END SOLUTION` lines or `# SOLUTION` line tails in a
    code cell, and otter's raw `# BEGIN SOLUTION` / `# END SOLUTION` cells around code cells.
    """
    found, inside_raw = [], False
    for cell in master["cells"]:
        text = source(cell)
        head = text.strip().upper()
        if cell.get("cell_type") == "raw":
            if head.startswith("# BEGIN SOLUTION"):
                inside_raw = True
            elif head.startswith("# END SOLUTION"):
                inside_raw = False
            continue
        if cell.get("cell_type") != "code":
            continue
        marked = re.search(r"#\s*(BEGIN\s+)?SOLUTION\s*$", text, re.M | re.I)
        if not (marked or inside_raw):
            continue
        lines = [re.sub(r"\s*#\s*SOLUTION\s*$", "", line) for line in text.splitlines()
                 if line.strip().upper() not in ("# BEGIN SOLUTION", "# END SOLUTION")]
        found.append("\n".join(lines))
    assert found, "no solution cells found in the master: has its format changed?"
    return found


def bound_names(code: str) -> set[str]:
    """Names a cell defines at top level (functions, classes, assignment targets); magics are
    read as the grader's runner reads them."""
    from cnnlab.grading.runner import to_python

    names: set[str] = set()
    for node in ast.parse(to_python(code)).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def function_names(code: str) -> list[str]:
    return [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]


def loops_required(lab: str) -> list[str]:
    """Functions the master requires to be written with loops.

    Read from the master's question cells (``static="loops_only", function="name"``), or
    from otter-style hidden tests that parse a function's source for forbidden names."""
    text = (LABS / f"{lab}.ipynb").read_text()
    found = re.findall(r'static=\\?"loops_only\\?",\s*function=\\?"(\w+)', text)
    found += re.findall(r"getsource\((\w+)\)", text)
    return sorted(set(found))


class _OffByOne(ast.NodeTransformer):
    """Honest mistakes: `return x` -> `return x + 1`; assigned numbers + 1 outside functions."""

    def __init__(self) -> None:
        self.depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        if node.value is not None:
            node.value = ast.BinOp(node.value, ast.Add(), ast.Constant(1))
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if self.depth == 0:
            for constant in ast.walk(node.value):
                if isinstance(constant, ast.Constant) and type(constant.value) in (int, float):
                    constant.value += 1
        return node


def wrong_version(code: str) -> str:
    return ast.unparse(ast.fix_missing_locations(_OffByOne().visit(ast.parse(code))))


def fill(student: dict, answers: list[str]) -> dict:
    """The student notebook with each answer cell replaced by its answer: the cell defining the
    same names, else the one sharing most lines, else the next cell blanked to `...`."""
    notebook = copy.deepcopy(student)
    used: set[int] = set()
    code = [i for i, c in enumerate(notebook["cells"]) if c.get("cell_type") == "code"]

    def overlap(index: int, answer: str) -> int:
        """Lines the student cell shares with the answer (a blanked block keeps the rest)."""
        mine = {ln.strip() for ln in source(notebook["cells"][index]).splitlines()}
        return len(mine & {ln.strip() for ln in answer.splitlines()} - {"", "..."})

    for answer in answers:
        names = bound_names(answer)
        free = [i for i in code if i not in used]
        by_name = [i for i in free if _defines(source(notebook["cells"][i])) & names]
        blanked = [i for i in free if "..." in {ln.strip() for ln in
                                                 source(notebook["cells"][i]).splitlines()}]
        best = by_name[:1] or sorted((i for i in free if overlap(i, answer)),
                                     key=lambda i: -overlap(i, answer))[:1] or blanked[:1]
        if not best:
            raise AssertionError(f"no student cell for the answer defining {sorted(names)}")
        cell = notebook["cells"][best[0]]
        cell["source"], cell["outputs"], cell["execution_count"] = answer, [], None
        used.add(best[0])
    return notebook


def _defines(text: str) -> set[str]:
    try:
        return bound_names(text)
    except SyntaxError:
        return set()


def add_cells(notebook: dict, codes: list[str], at_start: bool = False) -> dict:
    """A copy with code cells added at the end (or right after the first code cell)."""
    result = copy.deepcopy(notebook)
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
              "source": code} for code in codes]
    if at_start:
        first = next(i for i, c in enumerate(result["cells"]) if c["cell_type"] == "code")
        result["cells"][first + 1:first + 1] = cells
    else:
        result["cells"] += cells
    return result


@dataclass
class Lab:
    """A lab assigned into a temp dist/: its student notebook and answers from the master."""

    name: str
    dist: Path
    student: dict
    solutions: list[str]
    wrong: list[str] = field(default_factory=list)

    @property
    def correct_notebook(self) -> dict:
        return fill(self.student, self.solutions)

    @property
    def wrong_notebook(self) -> dict:
        return fill(self.student, self.wrong)

    @property
    def functions(self) -> list[str]:
        return [f for code in self.solutions for f in function_names(code)]

    @property
    def values(self) -> list[str]:
        return sorted({n for code in self.solutions if not function_names(code)
                       for n in bound_names(code)})


def copy_assigned(lab: str, shared: Path, dist: Path) -> Lab:
    """The session's shared `cnnlab assign` of ``lab`` (tests/assigned.py), copied into
    ``dist``: attacks aim at that folder, so each world gets its own copy."""
    shutil.copytree(shared / lab, dist / lab, symlinks=True)
    return read_lab(lab, dist)


def read_lab(lab: str, dist: Path) -> Lab:
    """The lab as `cnnlab assign` wrote it into ``dist``, with the master's answers."""
    master_path = LABS / f"{lab}.ipynb"
    student = json.loads((dist / lab / "student" / f"{lab}.ipynb").read_text())
    solutions = solution_cells(json.loads(master_path.read_text()))
    return Lab(lab, dist, student, solutions, [wrong_version(s) for s in solutions])


def write(path: Path, notebook: dict) -> Path:
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# running the grader


def cnnlab_command() -> list[str]:
    return [sys.executable, "-c", "import sys; from cnnlab.cli import main; sys.exit(main())"]


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parts = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if comm != "bwrap":  # the sandbox's memory is the sandbox's business
            found.setdefault(int(parts[1]), []).append(int(stat.parent.name))
    return found


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Peak RSS of the grader and its own helper processes (not its sandboxes), every 0.1 s.

    Kills the grader if it passes ``kill_above`` bytes, so that a grader that reads without a
    cap cannot take the machine down with it (the test then fails on the peak)."""

    def __init__(self, pid: int, kill_above: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.kill_above, self.peak = pid, kill_above, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            tree, stack, children = [], [self.pid], _children()
            while stack:
                pid = stack.pop()
                tree.append(pid)
                stack += children.get(pid, [])
            total = sum(_rss(pid) for pid in tree)
            self.peak = max(self.peak, total)
            if total > self.kill_above:
                try:
                    os.kill(self.pid, 9)
                except ProcessLookupError:
                    pass
            self.stop.wait(0.1)


@dataclass
class Run:
    """One `cnnlab grade` run: rows by file name as passed, exit status, output, peak RSS."""

    status: int
    rows: dict[str, dict[str, str]]
    raw_rows: list[list[str]]
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int
    csv_text: str


def unescape(cell: str) -> str:
    """A CSV cell with formula escaping (a leading ' or tab) taken off."""
    if cell[:1] in ("'", "\t") and cell[1:2] in FORMULA:
        return cell[1:]
    return cell


def grade(files: list[str], out: Path, cwd: Path, env: dict[str, str], lab: str,
          timeout: float, jobs: int = 2, kill_above: int = 3 * 2**30,
          extra: tuple[str, ...] | list[str] = ()) -> Run:
    """Run `cnnlab grade FILES --lab LAB --out OUT` in ``cwd`` (which holds dist/)."""
    command = [*cnnlab_command(), "grade", *files, "--lab", lab, "--out", str(out),
               "--timeout", str(timeout), "--jobs", str(jobs), *extra]
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               errors="replace")
    sampler = MemorySampler(process.pid, kill_above)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    finally:
        sampler.stop.set()
        sampler.join()
    seconds = time.monotonic() - start
    text = out.read_text(encoding="utf-8") if out.is_file() else ""
    raw = list(csv.reader(text.splitlines(keepends=True))) if text else []
    rows: dict[str, dict[str, str]] = {}
    if raw:
        header = raw[0]
        for values in raw[1:]:
            row = dict(zip(header, values, strict=False))
            rows[unescape(row.get("file", ""))] = row
    return Run(process.returncode, rows, raw, stdout, stderr, seconds, sampler.peak, text)


def find_row(rows: dict[str, dict[str, str]], name: str) -> dict[str, str] | None:
    """The row of file ``name``; a newline in a name may be written as a space (one line)."""
    return rows.get(name) or rows.get(name.replace("\r", " ").replace("\n", " "))


def scores(row: dict[str, str], questions: list[str]) -> dict[str, float]:
    return {q: float(row[q]) for q in questions}


# ---------------------------------------------------------------------------------------------
# what must not change, what must not survive


def snapshot(*folders: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """{path: sha256 (or 'link -> target')} of every file below ``folders``."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path in skip or any(s in path.parents for s in skip):
                continue
            if path.is_symlink():
                found[str(path)] = f"link -> {os.readlink(path)}"
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                found[str(path)] = "dir"
            else:
                found[str(path)] = "special"
    return found


def processes_with(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose command line contains ``marker``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text and int(cmdline.parent.name) != os.getpid():
            found.append((int(cmdline.parent.name), text.strip()))
    return found


def kill_all(found: list[tuple[int, str]]) -> None:
    """Clean up processes an attack left behind (they were started by this test)."""
    for pid, _ in found:
        try:
            os.kill(pid, 9)
        except (ProcessLookupError, PermissionError):
            pass


class Listener(threading.Thread):
    """Counts connections to a TCP port, an abstract and a path unix socket on the host."""

    def __init__(self, path: Path, abstract: str) -> None:
        super().__init__(daemon=True)
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(str(path))
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind("\0" + abstract)
        for s in (self.tcp, self.unix, self.abstract):
            s.listen()
            s.settimeout(0.2)
        self.port, self.hits, self.done = self.tcp.getsockname()[1], [], threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for s in (self.tcp, self.unix, self.abstract):
                try:
                    conn, _ = s.accept()
                except OSError:
                    continue
                self.hits.append(s.family.name)
                conn.close()

    def close(self) -> None:
        self.done.set()
        self.join()
        for s in (self.tcp, self.unix, self.abstract):
            s.close()
