"""The package as a whole: light to import, every public name real, the console script works."""

import ast
import importlib
import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import cnnlab
from cnnlab import cli

HEAVY = ("torch", "torchvision", "matplotlib")
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_import_is_lazy():
    code = ("import sys, cnnlab; cnnlab.__all__; cnnlab.conv_output_size; cnnlab.conv2d; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import cnnlab pulled in: {out.stdout.strip()}"


def test_api_modules_exist_and_match_the_type_checking_block():
    """Each module in _MODULES exists, has an __all__, and IDEs see it (TYPE_CHECKING block)."""
    tree = ast.parse(Path(cnnlab.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and getattr(node.test, "id", "") == "TYPE_CHECKING")
    seen = {node.module.removeprefix("cnnlab.") for node in block.body}
    assert seen == set(cnnlab._MODULES)
    for module in cnnlab._MODULES:
        imported = importlib.import_module(f"cnnlab.{module}")
        assert imported.__all__ is not None
        assert tuple(imported.__all__) == cnnlab._module_all(module), module


def test_every_name_has_one_home_and_resolves_to_it():
    homes: dict[str, str] = {}
    for module in cnnlab._MODULES:
        for name in importlib.import_module(f"cnnlab.{module}").__all__:
            assert name not in homes, f"{name} is exported by {homes[name]} and {module}"
            homes[name] = module
    assert sorted(homes) == cnnlab.__all__
    for name, module in homes.items():
        assert getattr(cnnlab, name) is getattr(importlib.import_module(f"cnnlab.{module}"), name)


def _lesson_names() -> set[str]:
    names = set()
    for path in NOTEBOOKS.rglob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                names.update(re.findall(r"\bcnnlab\.([A-Za-z_]\w*)", "".join(cell["source"])))
    return names


def test_every_name_the_lessons_call_exists():
    names = _lesson_names()
    assert {"conv2d", "check_answer", "load_image"} <= names  # the scan finds the calls
    missing = [name for name in sorted(names) if not hasattr(cnnlab, name)]
    assert missing == []


# Modules read from the bottom up: each imports only modules of its own layer or below.
LAYERS = [("_checks", "paths", "network", "hosted"), ("shapes",), ("ops",),
          ("backward", "images", "data"),
          ("models", "train", "alexnet", "first_layer", "augment"),
          ("blocks", "attribution"),
          ("figures", "grids", "diagrams", "plotting", "curves", "widgets",
           "animations"),
          ("exercises", "downloads", "cli", "grading", "site")]


def _cnnlab_imports(path: Path) -> set[str]:
    """The cnnlab modules a file imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        if isinstance(node, ast.ImportFrom) and node.module == "cnnlab":
            names = [f"cnnlab.{a.name}" for a in node.names]
        found.update(n.split(".")[1] for n in names if n.startswith("cnnlab."))
    return found


def test_modules_import_only_their_layer_or_below():
    rank = {module: i for i, layer in enumerate(LAYERS) for module in layer}
    package = Path(cnnlab.__file__).parent
    files = [p for p in package.rglob("*.py") if p.name != "__init__.py" or p.parent != package]
    assert {p.relative_to(package).parts[0].removesuffix(".py") for p in files} == set(rank)
    upward = []
    for path in files:
        module = path.relative_to(package).parts[0].removesuffix(".py")
        upward += [f"{module} imports {other}" for other in _cnnlab_imports(path)
                   if rank.get(other, 0) > rank[module]]
    assert upward == []


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'conv3d'"):
        cnnlab.conv3d  # noqa: B018


def test_doctor_reports_versions_and_locations(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "data"))
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    import torch
    import torchvision

    for text in (torch.__version__, torchvision.__version__, "device", "cpu",
                 str(tmp_path / "data"), "none downloaded",
                 str(tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"),
                 "missing: run `cnnlab download alexnet`"):
        assert text in out, f"{text!r} not in:\n{out}"


def test_doctor_sees_present_weights(capsys, monkeypatch, tmp_path):
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "alexnet-owt-7be5be79.pth").write_bytes(b"")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cli.main(["doctor"])
    assert "(present)" in capsys.readouterr().out


def test_help_and_unknown_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("doctor", "download", "assign", "grade"))
    assert cli.main(["teach"]) == 2
    assert "unknown command 'teach'" in capsys.readouterr().err


def test_console_script_is_installed():
    # beside this Python: found whether or not the venv is activated (on PATH)
    script = Path(sysconfig.get_path("scripts")) / "cnnlab"
    assert script.is_file(), f"no console script at {script}: pip install -e .[dev]"
    out = subprocess.run([str(script), "doctor"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "torch" in out.stdout


def test_download_rejects_unknown_target(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["download", "imagenet"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
