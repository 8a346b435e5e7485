"""One `cnnlab assign` of every lab master per test session, shared by every worker.

Several test files only read what `cnnlab assign` writes (the student notebooks, the public
checks, the autograder). Assigning runs each master's solution, and lab 2 trains, so each file
building its own copy cost the suite about half a minute. The first worker to ask builds it in
the session's shared temp folder under a lock; the others wait and reuse it. Files that test
`cnnlab assign` itself, or whose attacks aim at the folder, still build their own.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from filelock import FileLock

from cnnlab.grading import assign

ROOT = Path(__file__).resolve().parents[1]
LAB_NAMES = tuple(sorted(p.stem for p in (ROOT / "notebooks" / "labs").glob("lab*.ipynb")))


def assigned_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DIST with DIST/<lab>/student and DIST/<lab>/autograder for every lab (read only)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base  # xdist: the session's
    dist, done = shared / "assigned" / "dist", shared / "assigned" / "done"
    with FileLock(str(shared / "assigned.lock")):
        if not done.is_file():
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                status = assign.assign_main(
                    [*(str(ROOT / "notebooks" / "labs" / f"{lab}.ipynb") for lab in LAB_NAMES),
                     "--out", str(dist)])
            assert status == 0, out.getvalue()
            done.write_text("ok")
    return dist
