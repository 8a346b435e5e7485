"""Graded labs: build student notebooks with otter-grader and grade submissions without Docker.

``cnnlab assign`` runs ``otter assign`` on each master notebook in ``notebooks/labs/`` and
refuses to ship a student version that leaks solution code or hidden tests. ``cnnlab grade``
runs ``otter run`` on a copy of every submission, each in its own temporary directory and
process group under a timeout, several at a time, and writes one CSV row per submission.
Scores come from otter's ``results.json``, never from exit codes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab import paths

LABS_DIR = paths.PROJECT_ROOT / "notebooks" / "labs"
DEFAULT_TIMEOUT = 120.0  # seconds per submission, CLI start-up and kernel start included


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# assign


def _normalise(text: str) -> str:
    """Drop whitespace and quotes, so code survives otter's re-formatting of tests."""
    return re.sub(r"[\s'\"]", "", text)


def _master_secrets(master: Path) -> tuple[list[str], list[str]]:
    """Distinctive solution lines and hidden-test lines of a master notebook."""
    nb = json.loads(master.read_text(encoding="utf-8"))
    solutions: list[str] = []
    hidden: list[str] = []
    public = []  # code that students may see: hidden lines repeated there are not secrets
    in_solution = False
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "raw":
            head = source.strip().upper()
            if head.startswith("# BEGIN SOLUTION"):
                in_solution = True
            elif head.startswith("# END SOLUTION"):
                in_solution = False
            continue
        if cell["cell_type"] != "code":
            continue
        lines = source.splitlines()
        if lines and lines[0].strip().upper().startswith("# HIDDEN"):
            hidden += [line for line in lines[1:] if not line.lstrip().startswith("import ")]
        elif not in_solution:
            public.append(source)
        else:
            block = False
            for line in lines:
                tag = line.strip().upper()
                if tag.startswith("# BEGIN SOLUTION"):
                    block = True
                elif tag.startswith("# END SOLUTION"):
                    block = False
                elif block or re.search(r"#\s*SOLUTION\s*$", line):
                    solutions.append(re.sub(r"#\s*SOLUTION\s*$", "", line))
    # short lines such as `return out` also occur in the prompts: keep the distinctive ones
    seen = _normalise("\n".join(public))
    keep = [(s, _normalise(s)) for s in solutions + hidden]
    distinctive = {raw: norm for raw, norm in keep if len(norm) >= 12 and norm not in seen}
    return ([s for s in solutions if s in distinctive], [h for h in hidden if h in distinctive])


def find_leaks(master: Path, student_dir: Path) -> list[str]:
    """Solution lines or hidden tests of ``master`` that appear in the student files."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(student_dir.rglob("*"))
             if p.is_file() and p.suffix in (".ipynb", ".py")]
    haystack = _normalise("\n".join(texts))
    solutions, hidden = _master_secrets(master)
    leaks = [f"solution line: {s.strip()}" for s in solutions if _normalise(s) in haystack]
    leaks += [f"hidden test line: {h.strip()}" for h in hidden if _normalise(h) in haystack]
    if re.search(r"['\"]hidden['\"]:\s*True", "\n".join(texts)):
        leaks.append("a student test file contains a test case marked hidden")
    return leaks


@dataclass
class AssignResult:
    """The outcome of ``otter assign`` for one master notebook."""

    master: Path
    out: Path
    ok: bool
    problem: str = ""


def _failed_tests(log: str) -> list[str]:
    """The failing questions and the test lines that failed, from otter assign's output."""
    lines, found, question = log.splitlines(), [], "?"
    for i, line in enumerate(lines):
        match = re.match(r"\s*(\S+) results:(.*)", line)
        if match:
            question = match.group(1)
            if "All test cases passed" not in match.group(2):
                found.append(f"{question} fails its tests")
        elif line.strip() == "Failed example:" and i + 1 < len(lines):
            found.append(f"{question}: {lines[i + 1].strip()[:150]}")
    return found[:10]


def assign_one(master: Path, out: Path, timeout: float = 900.0) -> AssignResult:
    """Run ``otter assign`` on one master into ``out`` (replaced), then check for leaks."""
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "otter", "assign", "--no-pdfs", str(master), str(out)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return AssignResult(master, out, False, f"otter assign took longer than {timeout:.0f} s")
    log = (run.stdout + run.stderr).strip()
    zips = sorted((out / "autograder").glob("*.zip"))
    if run.returncode != 0 or not zips:
        detail = "\n    ".join(_failed_tests(log) or log.splitlines()[-12:])
        return AssignResult(master, out, False,
                            "the solutions do not pass their own tests (or otter assign failed; "
                            f"exit status {run.returncode}):\n    {detail}")
    leaks = find_leaks(master, out / "student")
    if leaks:
        return AssignResult(master, out, False,
                            "the student version leaks:\n    " + "\n    ".join(leaks[:10]))
    return AssignResult(master, out, True)


def assign_main(argv: Sequence[str]) -> int:
    """``cnnlab assign``: build student notebooks and autograder zips into dist/<lab>/."""
    parser = argparse.ArgumentParser(
        prog="cnnlab assign",
        description="Build the student notebook, its public tests and the autograder zip of "
                    "each lab master into OUT/<lab>/ with otter assign. Fails if a solution "
                    "fails its own tests or a student file leaks solutions or hidden tests.")
    parser.add_argument("masters", nargs="*", type=Path, metavar="MASTER",
                        help=f"master notebooks (default: every .ipynb in {LABS_DIR})")
    parser.add_argument("--out", type=Path, default=Path("dist"),
                        help="output folder (default: dist/)")
    parser.add_argument("--jobs", type=int, default=_cores(),
                        help="masters built at once (default: number of cores)")
    args = parser.parse_args(list(argv))
    masters = args.masters or sorted(LABS_DIR.glob("*.ipynb"))
    missing = [m for m in masters if not m.is_file()]
    if not masters or missing:
        shown = ", ".join(map(str, missing)) or f"no .ipynb files in {LABS_DIR}"
        print(f"cnnlab assign: master notebook not found: {shown}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max(1, min(args.jobs, len(masters)))) as pool:
        results = list(pool.map(lambda m: assign_one(m, args.out / m.stem), masters))
    for result in results:
        if result.ok:
            print(f"{result.master.name}: student version in {result.out / 'student'}, "
                  f"autograder in {result.out / 'autograder'}")
        else:
            print(f"{result.master.name}: FAILED: {result.problem}", file=sys.stderr)
    failed = sum(not r.ok for r in results)
    print(f"assigned {len(results) - failed} of {len(results)} labs into {args.out}/")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# grade


@dataclass
class Grade:
    """One CSV row: the scores of one submission and what happened to it.

    ``status`` is ``ok`` (graded, no cell raised), ``errors`` (graded, some cells raised),
    ``timeout``, ``invalid`` (not a notebook), ``wrong-lab`` or ``failed`` (otter crashed).
    """

    file: str
    scores: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    reason: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def autograder_info(zip_path: Path) -> tuple[str | None, dict[str, float]]:
    """The assignment name and the points of each question, read from an autograder zip."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        config = {}
        if "otter_config.json" in names:
            config = json.loads(archive.read("otter_config.json"))
        points: dict[str, float] = {}
        for name in sorted(n for n in names if re.fullmatch(r"tests/[^/]+\.py", n)):
            namespace: dict = {}
            exec(archive.read(name).decode("utf-8"), namespace)  # instructor's own test files
            test = namespace.get("test", namespace)
            value = test.get("points", 0)
            points[test.get("name", Path(name).stem)] = float(
                sum(value) if isinstance(value, list) else (value or 0))
    return config.get("assignment_name"), points


def _read_notebook(path: Path) -> tuple[dict | None, str]:
    """The notebook as JSON, or None and the reason it is not one."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return None, f"not a Jupyter notebook ({type(error).__name__}: {str(error)[:80]})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, "not a Jupyter notebook (valid JSON without a list of cells)"
    if data.get("nbformat") != 4:
        return None, f"unsupported notebook format {data.get('nbformat')!r} (expected 4)"
    return data, ""


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    """Kill the worker, its process group and the kernel (which runs in a session of its own)."""
    for pid in _descendants(process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _notes(notebook: dict, questions: Sequence[str], errors: list[dict]) -> list[str]:
    """Human-readable remarks: cells that raised, check cells that were deleted."""
    notes = []
    for error in errors[:3]:
        notes.append(f"{error['ename']}: {error['evalue'][:80]} in cell `{error['line'][:50]}`")
    if len(errors) > 3:
        notes.append(f"{len(errors) - 3} more cells raised")
    text = "\n".join("".join(c.get("source", "")) for c in notebook["cells"]
                     if c.get("cell_type") == "code")
    missing = [q for q in questions
               if not re.search(rf"""check\(\s*["']{re.escape(q)}["']""", text)]
    if missing:
        notes.append(f"check cells missing for {', '.join(missing)} (cells deleted?)")
    return notes


def grade_one(submission: Path, autograder: Path, timeout: float = DEFAULT_TIMEOUT,
              assignment: str | None = None, questions: Sequence[str] = (),
              threads: int = 1) -> Grade:
    """Grade one submission on a private copy, in a temporary folder, under ``timeout``."""
    start = time.monotonic()
    grade = Grade(str(submission))
    if not submission.is_file():
        grade.status, grade.reason = "invalid", "file not found"
        return grade
    notebook, problem = _read_notebook(submission)
    if notebook is None:
        grade.status, grade.reason = "invalid", problem
        return grade
    named = notebook.get("metadata", {}).get("otter", {}).get("assignment_name")
    if assignment and named and named != assignment:
        grade.status = "wrong-lab"
        grade.reason = f"this notebook is for {named!r}, not {assignment!r}"
        return grade
    workdir = Path(tempfile.mkdtemp(prefix="cnnlab-grade-"))
    try:
        # the lab's own file name: a renamed file (or one without .ipynb) grades like any other
        copy = workdir / "submission" / f"{assignment or 'submission'}.ipynb"
        copy.parent.mkdir()
        shutil.copyfile(submission, copy)
        out = workdir / "results"
        out.mkdir()
        env = dict(os.environ, TMPDIR=str(workdir), MPLBACKEND="Agg")
        # Speed: jsonschema (under nbformat, imported by otter in the worker and in the kernel)
        # builds an optional IRI grammar at import, 1.8 s each time; notebooks never need it.
        stubs = workdir / "stubs"
        stubs.mkdir()
        (stubs / "rfc3987_syntax.py").write_text('raise ImportError("skipped by cnnlab grade")\n')
        env["PYTHONPATH"] = os.pathsep.join(
            [str(stubs)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.setdefault("OMP_NUM_THREADS", str(threads))
        with open(workdir / "log.txt", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cnnlab.grading", "--worker",
                 str(autograder.resolve()), str(copy), str(out)],
                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(process)
                grade.status = "timeout"
                grade.reason = (f"stopped after {timeout:g} s (an infinite loop or very slow "
                                "code?); no score")
                return grade
        results = out / "results.json"
        if not results.is_file():
            lines = (workdir / "log.txt").read_text(errors="replace").strip().splitlines()
            last = next((ln for ln in reversed(lines) if re.match(r"\w*(Error|Exception)", ln)),
                        lines[-1] if lines else "no output")
            grade.status, grade.reason = "failed", f"otter could not grade it: {last[:160]}"
            return grade
        for test in json.loads(results.read_text()).get("tests", []):
            if "score" in test and test.get("name"):
                grade.scores[test["name"]] = float(test["score"])
        errors_file = out / "errors.json"
        errors = json.loads(errors_file.read_text()) if errors_file.is_file() else []
        notes = _notes(notebook, questions or list(grade.scores), errors)
        grade.status = "errors" if errors else "ok"
        grade.reason = "; ".join(notes)
        return grade
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        grade.seconds = time.monotonic() - start


def _worker(argv: Sequence[str]) -> int:
    """Run in a child process: otter run on one copied submission, plus the cells that raised."""
    autograder, submission, out = argv
    import otter.run

    results = otter.run.main(submission, autograder=autograder, output_dir=out, no_logo=True)
    errors = []
    for cell in getattr(results, "notebook", None) and results.notebook.cells or []:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = next((ln for ln in cell.source.splitlines()
                              if ln.strip() and not ln.startswith("#")), "")
                errors.append({"ename": output.get("ename", ""),
                               "evalue": output.get("evalue", ""), "line": first.strip()})
    Path(out, "errors.json").write_text(json.dumps(errors))
    return 0


def find_autograder(lab: str, dist: Path) -> Path:
    """The autograder zip that ``cnnlab assign`` wrote for ``lab`` (the newest if several)."""
    zips = sorted((dist / lab / "autograder").glob("*.zip"), key=lambda p: p.stat().st_mtime)
    if not zips:
        raise FileNotFoundError(
            f"no autograder zip in {dist / lab / 'autograder'}: run `cnnlab assign` first, "
            "or pass --autograder PATH_TO_ZIP")
    return zips[-1]


def write_csv(grades: Sequence[Grade], questions: dict[str, float], path: Path) -> None:
    """One row per submission: file, each question's score, total, possible, status, reason."""
    names = list(questions) + sorted({q for g in grades for q in g.scores} - set(questions))
    possible = sum(questions.values())
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", *names, "total", "possible", "status", "reason"])
        for g in grades:
            writer.writerow([g.file, *(f"{g.scores.get(q, 0.0):g}" for q in names),
                             f"{g.total:g}", f"{possible:g}", g.status, g.reason])


def _expand(items: Sequence[Path]) -> list[Path]:
    files = []
    for item in items:
        files += sorted(item.glob("*.ipynb")) if item.is_dir() else [item]
    return files


def _guess_lab(submissions: Sequence[Path]) -> set[str]:
    names = set()
    for path in submissions:
        notebook, _ = _read_notebook(path) if path.is_file() else (None, "")
        if notebook:
            name = notebook.get("metadata", {}).get("otter", {}).get("assignment_name")
            if name:
                names.add(name)
    return names


def grade_main(argv: Sequence[str]) -> int:
    """``cnnlab grade``: grade submissions into a CSV; exit 1 if any could not be graded."""
    parser = argparse.ArgumentParser(
        prog="cnnlab grade",
        description="Grade submitted notebooks with public and hidden tests (otter run, no "
                    "Docker), several at once, each on a copy and under a timeout. Writes one "
                    "CSV row per submission. Exit status 0 when every submission was graded, "
                    "1 when some could not be (timeout, not a notebook, wrong lab, crash), "
                    "2 on usage errors.")
    parser.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                        help="notebooks, or folders whose .ipynb files are all graded")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--autograder", type=Path, metavar="ZIP",
                       help="the autograder zip from `cnnlab assign` / `otter assign`")
    which.add_argument("--lab", help="lab name, e.g. lab1_convolution: uses DIST/LAB/autograder "
                       "(default: read from the submissions' metadata)")
    parser.add_argument("--dist", type=Path, default=Path("dist"),
                        help="where `cnnlab assign` wrote the labs (default: dist/)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds allowed per submission (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--jobs", type=int, default=_cores(),
                        help="submissions graded at once (default: number of cores)")
    args = parser.parse_args(list(argv))
    if args.jobs < 1 or args.timeout <= 0:
        parser.error("--jobs must be >= 1 and --timeout > 0")
    submissions = _expand(args.submissions)
    if not submissions:
        parser.error("no submissions found (a folder is searched for .ipynb files)")
    autograder = args.autograder
    try:
        if autograder is None:
            lab = args.lab
            if lab is None:
                labs = _guess_lab(submissions)
                if len(labs) != 1:
                    found = ", ".join(sorted(labs)) or "none"
                    parser.error(f"cannot tell which lab these submissions are for (found: "
                                 f"{found}); pass --lab NAME or --autograder ZIP")
                lab = labs.pop()
            autograder = find_autograder(lab, args.dist)
        elif not autograder.is_file():
            raise FileNotFoundError(f"autograder zip not found: {autograder}")
        assignment, questions = autograder_info(autograder)
    except (FileNotFoundError, zipfile.BadZipFile, KeyError) as error:
        print(f"cnnlab grade: {error}", file=sys.stderr)
        return 2
    jobs = min(args.jobs, len(submissions))
    threads = max(1, _cores() // jobs)
    print(f"grading {len(submissions)} submissions with {autograder.name}: {jobs} at a time, "
          f"timeout {args.timeout:g} s each")
    done = 0
    lock = threading.Lock()

    def run(path: Path) -> Grade:
        nonlocal done
        grade = grade_one(path, autograder, args.timeout, assignment, list(questions), threads)
        with lock:
            done += 1
            print(f"[{done}/{len(submissions)}] {path}: {grade.total:g}/"
                  f"{sum(questions.values()):g} {grade.status}"
                  + (f" ({grade.reason})" if grade.reason else ""), flush=True)
        return grade

    start = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        grades = list(pool.map(run, submissions))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(grades, questions, args.out)
    count = {s: sum(g.status == s for g in grades)
             for s in ("ok", "errors", "timeout", "invalid", "wrong-lab", "failed")}
    graded = count["ok"] + count["errors"]
    not_graded = len(grades) - graded
    print(f"graded {graded} ({count['errors']} with cells that raised), failed "
          f"{count['invalid'] + count['wrong-lab'] + count['failed']} (invalid "
          f"{count['invalid']}, wrong lab {count['wrong-lab']}, crashed {count['failed']}), "
          f"timed out {count['timeout']}; {len(grades)} submissions in "
          f"{time.monotonic() - start:.0f} s; wrote {args.out}")
    return 1 if not_graded else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker(sys.argv[2:]))
    sys.exit(grade_main(sys.argv[1:]))
