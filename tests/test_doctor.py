"""`cnnlab doctor` on broken installs, and the torch/torchvision pairing it checks.

A torch and torchvision that do not belong together (two releases, or two package indexes)
make `import torchvision` raise, typically RuntimeError: operator torchvision::nms does not
exist. Doctor must print every line anyway and give the one command that repairs the pair.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from cnnlab import cli, hosted, paths

ROOT = Path(__file__).resolve().parent.parent
NMS = "operator torchvision::nms does not exist"


@pytest.mark.parametrize("torch_version, vision", [
    ("2.4.0", "0.19.0"), ("2.5.1", "0.20.1"), ("2.9.1", "0.24.1"), ("2.14.1", "0.29.1"),
    ("2.14.1+cpu", "0.29.1"), ("2.6.0+cu126", "0.21.0"),
    ("2.3.1", None), ("1.13.1", None), ("3.0.0", None), ("2.5.0a0+git1234", None),
    ("2.14", None), ("not a version", None),
])
def test_matching_torchvision(torch_version, vision):
    assert hosted.matching_torchvision(torch_version) == vision


def test_matching_torchvision_wants_a_string():
    with pytest.raises(TypeError, match=r"expected torch's version as a string.*got float"):
        hosted.matching_torchvision(2.5)


@pytest.mark.parametrize("torch_version, command", [
    ("2.14.1", "pip install --force-reinstall torch==2.14.1 torchvision==0.29.1"),
    ("2.14.1+cpu", "pip install --force-reinstall --index-url "
                   "https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1"),
    ("2.9.1+cu126", "pip install --force-reinstall --index-url "
                    "https://download.pytorch.org/whl/cu126 torch==2.9.1 torchvision==0.24.1"),
    ("2.3.1", None),
])
def test_reinstall_command_keeps_the_index(torch_version, command):
    assert hosted.reinstall_command(torch_version) == command


@pytest.mark.parametrize("torch_version, vision, problem", [
    ("2.14.1", "0.29.1", ""),
    ("2.14.1+cpu", "0.29.1+cpu", ""),
    ("2.14.1", "0.24.1", "torch 2.14.1 needs torchvision 0.29.1"),
    ("2.14.1+cpu", "0.29.1", "different indexes"),
    ("2.3.1", "0.1.0", ""),  # no pairing known: nothing to say
])
def test_torch_pair_problem(torch_version, vision, problem):
    found = hosted.torch_pair_problem(torch_version, vision)
    if problem:
        assert problem in found
    else:
        assert found == ""


# --- doctor on this (good) installation and on simulated broken ones ------------------------

def _fake_versions(monkeypatch, **versions: str | None) -> None:
    """Make importlib.metadata report these versions (None: not installed)."""
    real = metadata.version

    def version(name: str) -> str:
        if name in versions:
            if versions[name] is None:
                raise metadata.PackageNotFoundError(name)
            return versions[name]
        return real(name)

    monkeypatch.setattr(metadata, "version", version)


class _Failing(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes `import <name>` raise ``error``, as a broken build does."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name, self.error = name, error

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise self.error


def _break_import(monkeypatch, name: str, error: Exception) -> None:
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Failing(name, error), *sys.meta_path])


def _doctor(capsys) -> tuple[int, dict[str, str], str]:
    """Run doctor; (exit status, {key: value} of its lines, the whole output)."""
    status = cli.main(["doctor"])
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        key, _, value = line.partition("  ")
        if value:
            lines[key.strip()] = value.strip()
    return status, lines, out


def test_doctor_on_this_install_finds_no_problem(capsys):
    status, lines, out = _doctor(capsys)
    assert status == 0, out
    import torchvision

    assert lines["torchvision"] == torchvision.__version__  # the build, e.g. "0.29.1+cu130"
    assert lines["torchvision"].startswith(metadata.version("torchvision"))
    assert "fix" not in lines and "problem" not in out


def test_versions_alone_reveal_a_mismatch(capsys, monkeypatch):
    _fake_versions(monkeypatch, torch="2.14.1", torchvision="0.24.1")
    status, lines, out = _doctor(capsys)
    assert status == 1
    assert "does not match torch (torch 2.14.1 needs torchvision 0.29.1)" in lines["torchvision"]
    assert lines["fix"] == "pip install --force-reinstall torch==2.14.1 torchvision==0.29.1"
    assert "cnnlab doctor: 1 problem above (the `fix` line" in out
    assert lines["sandbox"], "the lines after the broken one are still printed"


def test_torchvision_that_raises_on_import_gets_the_fix(capsys, monkeypatch):
    _fake_versions(monkeypatch, torch="2.14.1+cpu", torchvision="0.29.1")
    _break_import(monkeypatch, "torchvision", RuntimeError(f"{NMS}\nlong C++ trace"))
    status, lines, out = _doctor(capsys)
    assert status == 1
    assert "0.29.1, but `import torchvision` fails (RuntimeError: " + NMS + ")" in out
    assert "different indexes" in lines["torchvision"]
    assert lines["fix"] == ("pip install --force-reinstall --index-url "
                            "https://download.pytorch.org/whl/cpu torch==2.14.1 "
                            "torchvision==0.29.1")
    assert "Traceback" not in out and "long C++ trace" not in out
    assert {"torch", "device", "photos", "datasets", "alexnet weights", "sandbox"} <= set(lines)


def test_torch_that_raises_on_import(capsys, monkeypatch):
    _fake_versions(monkeypatch, torch="2.9.1", torchvision="0.24.1")
    _break_import(monkeypatch, "torch", OSError("libcudnn.so.9: cannot open shared object file"))
    status, lines, out = _doctor(capsys)
    assert status == 1
    assert lines["torch"] == ("2.9.1, but `import torch` fails "
                              "(OSError: libcudnn.so.9: cannot open shared object file)")
    assert "device" not in lines
    assert lines["torchvision"] == "0.24.1 (not imported: torch fails first)"
    assert lines["fix"] == "pip install --force-reinstall torch==2.9.1 torchvision==0.24.1"


def test_nothing_installed(capsys, monkeypatch):
    _fake_versions(monkeypatch, torch=None, torchvision=None)
    _break_import(monkeypatch, "torch", ModuleNotFoundError("No module named 'torch'"))
    status, lines, _ = _doctor(capsys)
    assert status == 1
    assert lines["torch"].startswith("NOT INSTALLED: pip install")
    assert "photos" in lines and "sandbox" in lines


def test_missing_torchvision_is_a_problem_with_a_fix(capsys, monkeypatch):
    _fake_versions(monkeypatch, torch="2.14.1", torchvision=None)
    _break_import(monkeypatch, "torchvision", ModuleNotFoundError("No module named 'x'"))
    status, lines, _ = _doctor(capsys)
    assert (status, lines["torchvision"]) == (1, "NOT INSTALLED")
    assert lines["fix"].endswith("torch==2.14.1 torchvision==0.29.1")


def test_a_probe_that_raises_prints_one_line_and_the_rest_go_on(capsys, monkeypatch):
    def unreadable():
        raise PermissionError(13, "Permission denied", "/srv/data")

    monkeypatch.setattr(paths, "data_dir", unreadable)
    status, lines, out = _doctor(capsys)
    assert status == 1
    assert lines["datasets"] == ("could not be checked: PermissionError: "
                                 "[Errno 13] Permission denied: '/srv/data'")
    assert "alexnet weights" in lines and "sandbox" in lines
    assert "Traceback" not in out


# --- pyproject.toml admits the matching pairs only up to the tested torch ---------------------

def _requirements() -> dict[str, SpecifierSet]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = {}
    for line in project["dependencies"]:
        name = line.split(">", 1)[0].split("<", 1)[0].split("=", 1)[0].strip()
        if name in ("torch", "torchvision"):
            found[name] = SpecifierSet(line[len(name):])
    return found


def test_pyproject_ranges_admit_matching_pairs_only():
    spec = _requirements()
    for minor in range(4, 15):
        torch, vision = f"2.{minor}.0", hosted.matching_torchvision(f"2.{minor}.0")
        assert Version(torch) in spec["torch"] and Version(vision) in spec["torchvision"], minor
    for minor in range(0, 25):  # the ranges cover the same releases, seen from either side
        admitted = Version(f"2.{minor}.0") in spec["torch"]
        assert admitted == (Version(f"0.{minor + 15}.0") in spec["torchvision"]), minor
    assert Version("2.14.1") in spec["torch"] and Version("0.29.1") in spec["torchvision"]
    assert Version("2.15.0") not in spec["torch"] and Version("0.30.0") not in spec["torchvision"]
    assert Version("2.3.1") not in spec["torch"] and Version("0.18.1") not in spec["torchvision"]
