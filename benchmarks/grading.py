"""Throughput of `cnnlab grade`: submissions graded per minute on this machine.

Builds the labs with `cnnlab assign` (or reuses --dist), writes N copies of a correct and of
an unanswered lab submission, grades them in one `cnnlab grade` run and prints submissions per
minute. Nothing is unbounded: every submission runs under the grader's timeout.

    python benchmarks/grading.py [--lab lab1_convolution] [-n 20] [--jobs 2] [--dist DIR]

Other processes on the machine slow this down: the figure is a lower bound when it is busy.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab1_convolution",
                        choices=["lab1_convolution", "lab2_build_a_cnn"])
    parser.add_argument("-n", type=int, default=20, help="submissions to grade")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--dist", type=Path, help="reuse this `cnnlab assign` output")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cnnlab-bench-"))
    try:
        dist = args.dist
        if dist is None:
            dist = work / "dist"
            master = ROOT / "notebooks" / "labs" / f"{args.lab}.ipynb"
            subprocess.run([sys.executable, "-m", "cnnlab.cli", "assign", str(master),
                            "--out", str(dist)], check=True)
        student = dist / args.lab / "student"
        autograder = dist / args.lab / "autograder" / f"{args.lab}.ipynb"
        submissions = work / "submissions"
        submissions.mkdir()
        # half correct (the solutions notebook), half unanswered (the student version)
        for i in range(args.n):
            source = autograder if i % 2 == 0 else student / f"{args.lab}.ipynb"
            shutil.copyfile(source, submissions / f"student_{i:03d}.ipynb")
        start = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        status = subprocess.run(
            [sys.executable, "-m", "cnnlab.cli", "grade", *sorted(map(str, submissions.iterdir())),
             "--out", str(work / "grades.csv"), "--autograder",
             str(next((dist / args.lab / "autograder").glob("*.zip"))),
             "--jobs", str(args.jobs)], capture_output=True, text=True).returncode
        seconds = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / args.n
        load = os.getloadavg()[0]
        print(f"{args.lab}: graded {args.n} submissions with --jobs {args.jobs} in "
              f"{seconds:.0f} s: {60 * args.n / seconds:.1f} submissions/minute "
              f"(exit status {status}; load average {load:.1f} on {os.cpu_count()} cores)")
        # workers and kernels are waited for, so their CPU time is counted here
        print(f"CPU time per submission: {cpu:.1f} s, so an otherwise idle machine with "
              f"{args.jobs} cores would grade about {60 * args.jobs / cpu:.0f} a minute")
        return status
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
