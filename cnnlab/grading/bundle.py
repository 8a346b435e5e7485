"""The autograder bundle: the grader-only files `cnnlab assign` writes for one lab, in one place.

Layout of DIST/<lab>/autograder (or of its zip, or of Gradescope's ``source`` folder):

- ``lab.json``: questions, points and each case's rules (kind, tolerances, public or hidden);
- ``expected.json`` + ``expected.npz``: the expected answers (plain data, arrays without pickle);
- ``plan.json`` + ``plan.npz``: the call plan, the only part student code ever gets (case ids,
  code and inputs: no expected values, no points).

``SECRET`` are the files that must never be readable by student code. Nothing here executes
anything: loading reads JSON and ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.grading.runner import decode, encode

FILES = ("lab.json", "expected.json", "expected.npz", "plan.json", "plan.npz")
SECRET = ("lab.json", "expected.json", "expected.npz")


def _save(folder: Path, stem: str, values: dict) -> None:
    """values {key: plain data} -> stem.json (tagged) + stem.npz (arrays, no pickle)."""
    arrays: dict[str, np.ndarray] = {}
    trees = {key: encode(value, arrays) for key, value in values.items()}
    (folder / f"{stem}.json").write_text(json.dumps(trees), encoding="utf-8")
    with open(folder / f"{stem}.npz", "wb") as f:
        np.savez(f, **arrays)


def save(folder: Path, lab: dict, expected: dict[str, Any], plan: dict,
         plan_arrays: dict[str, np.ndarray]) -> None:
    """Write a bundle into ``folder`` (which exists)."""
    (folder / "lab.json").write_text(json.dumps(lab, indent=1), encoding="utf-8")
    _save(folder, "expected", expected)
    (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    with open(folder / "plan.npz", "wb") as f:
        np.savez(f, **plan_arrays)


def hide_secrets(folder: Path) -> None:
    """Make the secret files readable by their owner only (the grader has read them)."""
    for name in SECRET:
        (folder / name).chmod(0o600)


class Autograder:
    """A bundle read into memory (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.lab = json.loads((folder / "lab.json").read_text(encoding="utf-8"))
            expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
            with np.load(folder / "expected.npz", allow_pickle=False) as arrays:
                self.expected = {k: decode(v, arrays) for k, v in expected.items()}
            self.plan = (folder / "plan.json").read_bytes()
            self.plan_arrays = (folder / "plan.npz").read_bytes()
        except (OSError, ValueError, KeyError) as error:
            raise FileNotFoundError(f"{folder} is not an autograder folder from `cnnlab "
                                    f"assign` ({type(error).__name__}: {error})") from None
        self.name: str = self.lab["lab"]
        self.questions = {q: float(v["points"]) for q, v in self.lab["questions"].items()}

    def write_plan(self, scratch: Path) -> None:
        """Put the call plan (and nothing else of the bundle) into a sandbox's scratch."""
        (scratch / "plan.json").write_bytes(self.plan)
        (scratch / "plan.npz").write_bytes(self.plan_arrays)


def load(path: Path, keep: list[Path]) -> Autograder:
    """A bundle folder, or its zip unpacked into a temp folder (appended to ``keep``)."""
    if path.is_file() and zipfile.is_zipfile(path):
        target = Path(tempfile.mkdtemp(prefix="cnnlab-autograder-"))
        keep.append(target)
        with zipfile.ZipFile(path) as archive:
            for name in FILES:
                (target / name).write_bytes(archive.read(name))
        return Autograder(target)
    return Autograder(path)
