"""``cnnlab grade``: each submission runs in its own sandbox, is scored here, gets one CSV row."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue
from typing import Any

from cnnlab.grading import bundle, sandbox, scoring, static
from cnnlab.grading.bundle import Autograder
from cnnlab.grading.report import STATUSES, Grade, Report
from cnnlab.grading.runner import cell_sources

MAX_NOTEBOOK = 20 * 2**20  # bytes: a submission larger than this is invalid, unread
DEFAULT_TIMEOUT = 120.0


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def read_notebook(path: Path) -> tuple[dict | None, str]:
    """The submission as a notebook dict (size-capped before parsing), or None and why not."""
    try:
        if not path.is_file():
            return None, "file not found (or not a regular file)"
        # non-blocking, and checked again once open: a file swapped for a FIFO cannot hang us
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None, "file not found (or not a regular file)"
            raw = f.read(MAX_NOTEBOOK + 1)  # never more than the cap, whatever the file holds
        if len(raw) > MAX_NOTEBOOK:
            return None, f"larger than {MAX_NOTEBOOK // 2**20} MB: not read"
        data = json.loads(raw)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        return None, f"not a Jupyter notebook ({type(error).__name__}: {str(error)[:80]})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, "not a Jupyter notebook (valid JSON without a list of cells)"
    if data.get("nbformat") != 4:
        return None, f"unsupported notebook format {str(data.get('nbformat'))[:20]!r} (need 4)"
    return data, ""


def _lab_of(notebook: dict) -> str | None:
    meta = notebook.get("metadata")
    info = meta.get("cnnlab") if isinstance(meta, dict) else None
    lab = info.get("lab") if isinstance(info, dict) else None
    return lab if isinstance(lab, str) else None


MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([A-Za-z_][\w.]*)'")


def grader_fault(errors: Sequence[str]) -> str:
    """Why these errors are the grader's fault, or "": student code that could not import a
    module this Python environment has means the sandbox lost the environment."""
    for error in errors:
        found = MISSING_MODULE.search(error)
        top = found.group(1).split(".")[0] if found else ""
        try:
            has_it = bool(top) and importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            has_it = False
        if has_it:
            return (f"grader fault: the sandbox could not import {top!r}, which the grader's "
                    f"Python ({sys.executable}) has; run `cnnlab doctor` and grade again "
                    "(no score given)")
    return ""


def grade_one(path: Path, autograder: Autograder, limits: sandbox.Limits, slot: int = 0,
              confinement: sandbox.Confinement = sandbox.BWRAP) -> Grade:
    """Grade one submission: copy it into a fresh scratch dir, run it confined, score it here."""
    start = time.monotonic()
    grade = Grade(str(path))
    notebook, problem = read_notebook(path)
    if notebook is None:
        grade.status, grade.reason = "invalid", problem
        return grade
    named = _lab_of(notebook)
    if named and named != autograder.name:
        grade.status = "wrong-lab"
        grade.reason = f"this notebook is for {named[:40]!r}, not {autograder.name!r}"
        return grade
    work = Path(tempfile.mkdtemp(prefix="cnnlab-grade-"))
    try:
        scratch = work / "scratch"
        scratch.mkdir()
        (scratch / "submission.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        autograder.write_plan(scratch)
        confinement.prepare(work, scratch, slot)
        run = sandbox.run(scratch, limits, slot, confinement)
        if run.status == "timeout":
            grade.status = "timeout"
            grade.reason = (f"stopped after {limits.timeout:g} s (an infinite loop or very "
                            "slow code?); no score")
            return grade
        try:
            answers, cells, functions = scoring.load_results(scratch / "out",
                                                             list(autograder.lab["cases"]))
        except scoring.BadResults as error:
            last = [ln for ln in run.log_tail.strip().splitlines() if ln.strip()][-1:] or [""]
            grade.status = "failed"
            grade.reason = f"{error}; exit status {run.returncode}; last output: {last[0][:100]}"
            return grade
        fault = grader_fault([str(c.get("error")) for c in cells]
                             + [str(a) for a in answers.values()
                                if isinstance(a, scoring.BadResults)])
        if fault:
            grade.status, grade.reason = "failed", fault
            return grade
        sources = cell_sources(notebook)  # checked against what ran, as the runner reports it
        checks = {cid: static.RULES[c["static"]](sources, c["function"], functions)[1]
                  for cid, c in autograder.lab["cases"].items() if c.get("static")}
        grade.scores, notes = scoring.score(autograder.lab, autograder.expected, answers,
                                            checks)
        grade.notes = notes
        grade.cell_errors = [f"cell {c.get('cell')}: {str(c.get('error'))[:80]}" for c in cells]
        grade.status = "errors" if cells else "ok"
        return grade
    except Exception as error:  # noqa: BLE001 - one bad submission must not end the run
        grade.status, grade.reason = "failed", f"grader error: {type(error).__name__}: {error}"
        return grade
    finally:
        shutil.rmtree(work, ignore_errors=True)
        grade.seconds = time.monotonic() - start


def _expand(items: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        files += sorted(item.glob("*.ipynb")) if item.is_dir() else [item]
    return files


_WARNED: list[bool] = []


def grade_all(submissions: Sequence[Path], autograder: Autograder, out: Path,
              limits: sandbox.Limits, jobs: int,
              confinement: sandbox.Confinement = sandbox.BWRAP,
              echo: Any = print) -> list[Grade]:
    """Grade every submission (``jobs`` at once) into the CSV ``out``; rows kept on Ctrl-C."""
    report = Report(out, autograder.questions)
    slots: Queue[int] = Queue()
    for slot in range(jobs):
        slots.put(slot)
    lock = threading.Lock()
    grades: list[Grade] = []

    def one(path: Path) -> Grade:
        slot = slots.get()
        try:
            grade = grade_one(path, autograder, limits, slot, confinement)
        finally:
            slots.put(slot)
        with lock:
            report.add(grade)
            grades.append(grade)
            echo(f"[{len(grades)}/{len(submissions)}] {path}: {grade.total:g}/"
                 f"{report.possible:g} {grade.status}"
                 + (f" ({grade.summary[:120]})" if grade.summary else ""), flush=True)
        return grade

    pool = ThreadPoolExecutor(jobs)
    try:
        list(pool.map(one, submissions))
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        sandbox.kill_running()
        echo(f"interrupted: {len(grades)} finished rows kept in {out}", file=sys.stderr)
        with lock:
            report.finish()
        raise
    pool.shutdown()
    report.finish()
    return grades


VALUED = {"--out", "--autograder", "--lab", "--dist", "--timeout", "--jobs", "--memory"}


def _files_last(argv: Sequence[str]) -> list[str]:
    """The arguments with the options first and every submission after ``--``.

    `cnnlab grade *.ipynb` may expand to names such as ``-x.ipynb`` or ``--out=y.ipynb``:
    file names are data, so a word that names an existing file is a submission unless it is
    the value of the option before it.
    """
    options: list[str] = []
    files: list[str] = []
    words = list(argv)
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            files += words[index + 1:]
            break
        if word in VALUED:
            options += words[index:index + 2]
            index += 2
            continue
        if word.startswith("-") and not Path(word).exists():
            options.append(word)  # an option (argparse reports it if it is unknown)
        else:
            files.append(word)
        index += 1
    return options + (["--", *files] if files else [])


def grade_main(argv: Sequence[str]) -> int:
    """``cnnlab grade``: exit 0 when every submission was graded, 1 if some were not, 2 usage."""
    parser = argparse.ArgumentParser(
        prog="cnnlab grade", allow_abbrev=False,
        description="Grade submitted notebooks: each runs in a bubblewrap sandbox that only "
                    "hands back plain answers; scores are computed here from the expected "
                    "answers of the autograder. One CSV row per submission.")
    parser.add_argument("submissions", nargs="*", type=Path, metavar="SUBMISSION",
                        help="notebooks, or folders whose .ipynb files are all graded (names "
                             "starting with - work too)")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--autograder", type=Path, metavar="PATH",
                       help="DIR/<lab>/autograder from `cnnlab assign` (or its zip)")
    which.add_argument("--lab", help="lab name: uses DIST/<lab>/autograder")
    parser.add_argument("--dist", type=Path, default=Path("dist"),
                        help="where `cnnlab assign` wrote the labs (default: dist/)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per submission (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--jobs", type=int, default=_cores(), help="submissions at once")
    parser.add_argument("--memory", default="6G",
                        help="address-space cap per submission (default: 6G; torch needs ~4G)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run student code without bubblewrap (trusted code only)")
    args = parser.parse_args(_files_last(argv))
    if args.jobs < 1 or args.timeout <= 0:
        parser.error("--jobs must be >= 1 and --timeout > 0")
    try:
        memory = sandbox.parse_size(args.memory)
    except ValueError as error:
        parser.error(str(error))
    submissions = _expand(args.submissions)
    if not submissions:
        parser.error("no submissions found (a folder is searched for .ipynb files)")
    if args.no_sandbox:
        print("cnnlab grade: WARNING: --no-sandbox runs student code unconfined, with your "
              "files and network in reach", file=sys.stderr)
    else:
        works, why = sandbox.check_bwrap()
        if not works:
            print(f"cnnlab grade: {why}", file=sys.stderr)
            return 2
    temps: list[Path] = []
    try:
        folder = args.autograder or args.dist / args.lab / "autograder"
        autograder = bundle.load(folder, temps)
    except (FileNotFoundError, KeyError, zipfile.BadZipFile, OSError) as error:
        print(f"cnnlab grade: {error}", file=sys.stderr)
        return 2
    jobs = min(args.jobs, len(submissions))
    limits = sandbox.Limits(args.timeout, memory, max(1, _cores() // jobs))
    print(f"grading {len(submissions)} submissions of {autograder.name}: {jobs} at a time, "
          f"timeout {args.timeout:g} s, sandbox {'OFF' if args.no_sandbox else 'bwrap'}")
    start = time.monotonic()

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM: keep the finished rows, kill the sandboxes

    signal.signal(signal.SIGTERM, stop)
    try:
        grades = grade_all(submissions, autograder, args.out, limits, jobs,
                           sandbox.UNCONFINED if args.no_sandbox else sandbox.BWRAP)
    except KeyboardInterrupt:
        print(f"cnnlab grade: interrupted; the rows of finished submissions are in {args.out}",
              file=sys.stderr)
        return 130
    finally:
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)
    count = {s: sum(g.status == s for g in grades) for s in STATUSES}
    print(f"graded {count['ok'] + count['errors']} ({count['errors']} with cells that raised); "
          f"invalid {count['invalid']}, wrong lab {count['wrong-lab']}, failed "
          f"{count['failed']}, timed out {count['timeout']}; {len(grades)} submissions in "
          f"{time.monotonic() - start:.0f} s; wrote {args.out}")
    return 0 if count["ok"] + count["errors"] == len(grades) else 1
