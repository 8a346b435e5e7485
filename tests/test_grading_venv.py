"""Grading from a virtualenv anywhere (issue 15): the sandbox runs student code with the
grader's own Python environment, not the interpreter behind the venv's symlink.

For each lab, the master's own solution (as a student would hand it in) is graded by a
`cnnlab grade` started from a fresh venv that lives under a home folder of mode 700, once as
the user running the tests (root in CI, or a normal user) and, when that is root, once more as
an unprivileged user of its own, and must earn full marks. The venv holds a cnnlab
installed from a copy of the package and reaches torch & co. through a ``.pth`` file naming
the site-packages of the environment running the tests (reinstalling torch would cost
gigabytes): exactly the layout that lost torch when the sandbox resolved ``bin/python``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hostile_helpers as hh
import pytest
from assigned import LAB_NAMES, assigned_dist

from cnnlab.grading.grade import grader_fault

LABS = LAB_NAMES
USER = 60123  # an unprivileged uid with no other processes (the sandbox uses 61000 and up)
TIMEOUT = 120


def _searchable_by_others(path: Path) -> bool:
    return all(folder.stat().st_mode & 0o001 for folder in (path, *path.parents))


def _base_python(for_others: bool) -> str | None:
    """An interpreter of this Python version to build the venv from (one that other users can
    run, for ``for_others``), or None."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    candidates = [base, Path(f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}")]
    for python in candidates:
        if python.is_file() and (not for_others or _searchable_by_others(python.parent)):
            return str(python)
    return None


def _site_dirs() -> list[str]:
    """The site-packages of the environment running the tests (where torch lives)."""
    return list(dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"),
                               sysconfig.get_path("platlib")]))


def _run(args: list, user: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    return subprocess.run([*prefix, *map(str, args)], capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL, **kwargs)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    hh.require_bwrap()
    return assigned_dist(tmp_path_factory)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    """cnnlab's source, outside the checkout, to pip-install into the test venvs."""
    source = tmp_path_factory.mktemp("venv-source")
    shutil.copytree(hh.ROOT / "cnnlab", source / "cnnlab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(hh.ROOT / name, source / name)
    source.chmod(0o755)
    return source


def _world(dist: Path, package: Path, user: int | None) -> Iterator[tuple[Path, Path, dict]]:
    """A home folder (mode 700, owned by ``user``) holding a venv with cnnlab, the assigned
    labs and the submissions; yields (home, venv python, environment)."""
    base = _base_python(for_others=user is not None)
    if base is None:
        pytest.skip(f"no Python {sys.version_info[0]}.{sys.version_info[1]} that another user "
                    "can run (the machine's own lives under a private home)")
    if user is not None and not all(_searchable_by_others(Path(p)) for p in _site_dirs()):
        pytest.skip("this environment's site-packages are not readable by other users")
    outer = Path(tempfile.mkdtemp(prefix="cnnlab-venv-"))
    try:
        outer.chmod(0o755)
        home = outer / "home"
        home.mkdir()
        venv = home / ".local" / "share" / "grader-venv"
        created = _run([base, "-m", "venv", "--without-pip", venv])
        assert created.returncode == 0, created.stderr
        python = venv / "bin" / "python"
        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
        (Path(purelib.stdout.strip()) / "_grader_deps.pth").write_text(
            "".join(f"{p}\n" for p in _site_dirs()))
        env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
               "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TMPDIR": "/tmp",
               "XDG_CACHE_HOME": str(home / ".cache")}
        build = outer / "build"
        shutil.copytree(package, build)
        installed = _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "-q", build], env=env, cwd=outer)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        shutil.rmtree(build)
        shutil.copytree(dist, home / "dist")
        for lab in LABS:
            student = json.loads((dist / lab / "student" / f"{lab}.ipynb").read_text())
            master = json.loads((hh.LABS / f"{lab}.ipynb").read_text())
            hh.write(home / f"{lab}_solution.ipynb", hh.fill(student, hh.solution_cells(master)))
        if user is not None:
            for path in (home, *home.rglob("*")):
                os.lchown(path, user, user)
        home.chmod(0o700)
        yield home, python, env
    finally:
        shutil.rmtree(outer, ignore_errors=True)


def _grade(home: Path, python: Path, env: dict, lab: str, user: int | None) -> dict[str, str]:
    out = home / f"{lab}.csv"
    done = _run([python, "-m", "cnnlab.cli", "grade", home / f"{lab}_solution.ipynb", "--lab",
                 lab, "--dist", home / "dist", "--out", out, "--timeout", TIMEOUT,
                 "--jobs", "1"], user, env=env, cwd=home)
    assert out.is_file(), done.stdout + done.stderr
    (row,) = list(csv.DictReader(out.read_text().splitlines()))
    return row | {"stdout": done.stdout, "stderr": done.stderr}


@pytest.fixture(scope="module")
def as_self(dist, package_copy):
    """The venv and home of the user running the tests (root in CI)."""
    yield from _world(dist, package_copy, None)


@pytest.fixture(scope="module")
def as_user(dist, package_copy):
    """As root: the same for an unprivileged user of its own (its home, its venv)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root; as a normal user, the other "
                    "tests here are that case")
    yield from _world(dist, package_copy, USER)


@pytest.mark.parametrize("lab", LABS)
def test_master_solution_scores_full_from_a_venv(as_self, lab):
    home, python, env = as_self
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    row = _grade(home, python, env, lab, None)
    assert row["status"] == "ok" and float(row["total"]) == float(row["possible"]), row


@pytest.mark.parametrize("lab", LABS)
def test_master_solution_scores_full_from_a_venv_as_a_user(as_user, lab):
    home, python, env = as_user
    assert home.stat().st_uid == USER
    row = _grade(home, python, env, lab, USER)
    assert row["status"] == "ok" and float(row["total"]) == float(row["possible"]), row


def test_a_grader_without_its_packages_in_the_sandbox_fails_loudly(as_self):
    """Packages reached only through PYTHONPATH are the grader's, not its environment's: the
    runner (isolated, like every Python in the sandbox) cannot import them, and the row says
    so instead of giving a partial score."""
    home, python, env = as_self
    pth = next(home.rglob("_grader_deps.pth"))
    saved = pth.read_text()
    pth.unlink()
    try:
        row = _grade(home, python, {**env, "PYTHONPATH": ":".join(_site_dirs())},
                     "lab1_convolution", None)
    finally:
        pth.write_text(saved)
    assert row["status"] == "failed" and float(row["total"]) == 0, row
    assert "No module named 'numpy'" in row["reason"], row


def test_grader_fault_names_a_module_the_grader_has():
    assert grader_fault(["ModuleNotFoundError: No module named 'numpy'"]).startswith(
        "grader fault: the sandbox could not import 'numpy'")
    assert grader_fault(["ModuleNotFoundError: No module named 'numpy.linalg'"])
    # a module nobody has is the student's own mistake: scored as usual
    assert grader_fault(["ModuleNotFoundError: No module named 'no_such_module_xyz'"]) == ""
    assert grader_fault(["NameError: name 'torch' is not defined", "ValueError: x"]) == ""
