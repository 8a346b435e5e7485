"""Throughput of `cnnlab grade` with the sandbox on, and the sandbox's own overhead.

Builds the lab with `cnnlab assign` (or reuses --dist), writes N submissions (half the
solution notebook, half the blank student notebook; all solutions with --all-correct), grades
them in one `cnnlab grade` run with the bwrap sandbox and in one with --no-sandbox, and prints
submissions per minute for both; the difference per submission is what the sandbox costs.
Every run is bounded by the grader's timeout.

    python benchmarks/grading.py [--lab lab1_convolution] [-n 20] [--jobs 2] [--dist DIR]

Other processes on the machine slow this down: the figures are lower bounds when it is busy.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CNNLAB = [sys.executable, "-c", "import sys; from cnnlab.cli import main; sys.exit(main())"]


def _grade(files: list[str], autograder: Path, out: Path, jobs: int,
           sandbox: bool) -> tuple[float, float]:
    """(wall, CPU seconds) of one `cnnlab grade` run; raises if a correct one lost points."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run([*CNNLAB, "grade", *files, "--autograder", str(autograder),
                           "--out", str(out), "--jobs", str(jobs), "--timeout", "120",
                           *([] if sandbox else ["--no-sandbox"])],
                          capture_output=True, text=True)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    rows = out.read_text().splitlines()[1:]
    bad = [r for r in rows if "correct" in r and ",ok," not in r]
    if done.returncode != 0 or bad:
        raise SystemExit(f"grading failed (exit {done.returncode}): {bad[:2]}\n"
                         f"{done.stderr[-1500:]}")
    return seconds, cpu


def _bwrap_true(repeat: int = 10) -> float:
    """Mean seconds to start and end an empty sandbox like the grader's."""
    from cnnlab.grading import sandbox

    command = sandbox.bwrap_command(Path(tempfile.gettempdir()), 0, sandbox.Limits())
    command = command[:command.index("--") + 1] + ["/usr/bin/true"]
    start = time.monotonic()
    for _ in range(repeat):
        subprocess.run(command, check=True)
    return (time.monotonic() - start) / repeat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab1_convolution",
                        choices=sorted(p.stem for p in (ROOT / "notebooks" / "labs").glob(
                            "lab*.ipynb")))
    parser.add_argument("-n", type=int, default=20, help="submissions to grade")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--dist", type=Path, help="reuse this `cnnlab assign` output")
    parser.add_argument("--all-correct", action="store_true",
                        help="every submission answered (the worst case) instead of half blank")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cnnlab-bench-"))
    try:
        dist = args.dist
        if dist is None:
            dist = work / "dist"
            master = ROOT / "notebooks" / "labs" / f"{args.lab}.ipynb"
            subprocess.run([*CNNLAB, "assign", str(master), "--out", str(dist)], check=True,
                           stdout=subprocess.DEVNULL)
        autograder = dist / args.lab / "autograder"
        files = []
        for i in range(args.n):
            kind = "correct" if i % 2 == 0 or args.all_correct else "blank"
            source = autograder / f"{args.lab}.ipynb" if kind == "correct" else \
                dist / args.lab / "student" / f"{args.lab}.ipynb"
            files.append(str(shutil.copyfile(source, work / f"{kind}_{i:03d}.ipynb")))
        sandboxed, cpu = _grade(files, autograder, work / "sandboxed.csv", args.jobs, True)
        plain, plain_cpu = _grade(files, autograder, work / "plain.csv", args.jobs, False)
        empty = _bwrap_true()
        load = os.getloadavg()[0]
        mix = "all correct" if args.all_correct else "half correct, half blank"
        print(f"{args.lab}: {args.n} submissions ({mix}), --jobs "
              f"{args.jobs}, load average {load:.1f} on {os.cpu_count()} cores")
        print(f"  sandboxed:  {sandboxed:6.1f} s = {60 * args.n / sandboxed:5.1f} "
              "submissions/minute")
        print(f"  no sandbox: {plain:6.1f} s = {60 * args.n / plain:5.1f} submissions/minute")
        # bwrap's init reaps the sandboxed processes, so their CPU time is only visible in
        # the unsandboxed run: the same work, counted by getrusage
        per = plain_cpu / args.n
        print(f"  CPU time per submission (unsandboxed run): {per:.2f} s, so an otherwise idle "
              f"machine with {args.jobs} cores would grade about {60 * args.jobs / per:.0f} a "
              f"minute (grader and bwrap themselves: {cpu / args.n:.2f} s)")
        print(f"  sandbox overhead: {args.jobs * (sandboxed - plain) / args.n:+.2f} s per "
              f"submission (wall time of one worker); an empty bwrap sandbox starts and "
              f"ends in {1000 * empty:.0f} ms")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
