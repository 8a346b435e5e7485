"""The Gradescope autograder zip and its entry point (the same grading code as `cnnlab grade`).

Layout inside Gradescope's container (ROOT is /autograder; tests pass another folder):
ROOT/source (the unzipped autograder: setup.sh, run_autograder, this cnnlab package, the
lab's expected answers and plan), ROOT/submission (the student's upload) and
ROOT/results/results.json (written here, in Gradescope's format).

    python -m cnnlab.grading.gradescope ROOT

Where bwrap cannot create a sandbox (Gradescope's container usually forbids namespaces),
the submission runs unsandboxed inside that container, with the same limits, but as an
unprivileged uid: the expected answers and lab rules are made readable by root only first,
and every process of that uid is killed after the run, so nothing it starts can rewrite
``results.json`` later. Scoring still happens outside the student's process.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import cnnlab
from cnnlab.grading import sandbox
from cnnlab.grading.bundle import FILES, Autograder, hide_secrets
from cnnlab.grading.grade import grade_one

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -e
apt-get update && apt-get install -y bubblewrap python3 python3-pip
pip3 install numpy torch torchvision scikit-learn ipython
"""
RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission; GRADESCOPE_ROOT lets tests use a temp folder.
ROOT="${GRADESCOPE_ROOT:-/autograder}"
cd "$ROOT/source" && PYTHONPATH="$ROOT/source" exec python3 -m cnnlab.grading.gradescope "$ROOT"
"""


def write_zip(autograder: Path, target: Path) -> None:
    """Zip the lab's grader files, the cnnlab package, setup.sh and run_autograder."""
    package = Path(cnnlab.__file__).resolve().parent
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            archive.write(autograder / name, name)
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, f"cnnlab/{path.relative_to(package)}")
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            archive.writestr(info, text)


def main(root: Path) -> int:
    """Grade the one notebook in ROOT/submission into ROOT/results/results.json."""
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    autograder = Autograder(root / "source")
    notebooks = sorted((root / "submission").glob("*.ipynb"))
    payload: dict = {"score": 0.0, "tests": []}
    if len(notebooks) != 1:
        payload["output"] = f"expected one .ipynb file in the submission, found {len(notebooks)}"
    else:
        works, _ = sandbox.check_bwrap()
        limits = sandbox.Limits(timeout=600.0)
        hide_secrets(root / "source")  # already read into the grader
        drop = not works and sandbox.others_can_run_python()
        confinement = sandbox.BWRAP if works else \
            sandbox.DROPPED_UID if drop else sandbox.UNCONFINED
        grade = grade_one(notebooks[0], autograder, limits, 0, confinement)
        for question, points in autograder.questions.items():
            mine = [n for n in grade.notes if n.startswith(f"{question}/")]
            payload["tests"].append({"name": question, "score": grade.scores.get(question, 0.0),
                                     "max_score": points, "output": "\n".join(mine)})
        payload["score"] = grade.total
        payload["output"] = f"status: {grade.status}" + (f"; {grade.summary}" if grade.summary
                                                         else "")
        if not works and not drop:
            payload["output"] += ("; WARNING: no sandbox and this Python is not readable by "
                                  "other users, so student code ran with the grader's rights")
    work = Path(tempfile.mkdtemp(dir=results))
    try:
        (work / "results.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
        (work / "results.json").replace(results / "results.json")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/autograder")))
