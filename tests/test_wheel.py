"""The built wheel works outside the checkout: photos as package data, `cnnlab doctor`, lesson 01.

The wheel is built from a copy of the package (so nothing is written into the checkout),
installed into a fresh virtualenv that reuses the packages of the environment running the tests
(torch, ipykernel & co., through a ``.pth`` file naming its site-packages: installing torch again
would cost gigabytes), and everything runs from a folder outside the checkout, with PYTHONPATH
cleared. That environment may be a venv or the machine's interpreter; either way, the new venv
sees its packages but not its editable cnnlab (a ``.pth`` path line runs no import hook). No
network is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "01_from_dense_to_convolution.ipynb"
PHOTOS = sorted(path.name for path in (ROOT / "cnnlab" / "photos").glob("*.png"))


def _run(args: list, env: dict, cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The wheel, and a virtualenv outside the checkout with the wheel installed in it."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "CNNLAB_DATA", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1",
               XDG_CACHE_HOME=str(tmp / "cache"), TORCH_HOME=str(tmp / "torch"))
    source = tmp / "source"
    shutil.copytree(ROOT / "cnnlab", source / "cnnlab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation",
          "-q", "-w", tmp / "dist"], env, tmp)
    (wheel,) = (tmp / "dist").glob("cnnlab-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env, tmp)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   env, tmp).strip()
    ours = dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"),
                          sysconfig.get_path("platlib")])
    (Path(purelib) / "_test_env.pth").write_text("".join(f"{p}\n" for p in ours))
    _run([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "-q", wheel], env, tmp)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    work = tmp / "work"  # the current directory of every run: outside the checkout
    work.mkdir()
    return SimpleNamespace(wheel=wheel, venv=venv, python=python, env=env, work=work, tmp=tmp)


def test_the_wheel_holds_the_package_and_its_photos(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert PHOTOS == ["astronaut.png", "cat.png", "coffee.png"]
    assert [n for n in names if n.startswith("cnnlab/photos/")] == [
        f"cnnlab/photos/{photo}" for photo in PHOTOS]
    assert "cnnlab/__init__.py" in names and "cnnlab/ops.py" in names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "img/"))]


def test_the_venv_imports_the_wheel_and_loads_a_photo(installed):
    code = ("import json, cnnlab, cnnlab.images as im, cnnlab.paths as p; "
            "print(json.dumps({'file': cnnlab.__file__, 'photos': im.list_images(), "
            "'cat': list(im.load_image('cat').shape), 'path': str(im.photo_path('cat')), "
            "'data': str(p.data_dir()), 'checkout': p.checkout_root()}))")
    found = json.loads(_run([installed.python, "-c", code], installed.env, installed.work))
    site = installed.venv.resolve()
    assert Path(found["file"]).resolve().is_relative_to(site), found["file"]
    assert not Path(found["file"]).resolve().is_relative_to(ROOT)
    assert found["photos"] == [Path(photo).stem for photo in PHOTOS]
    assert found["cat"] == [3, 266, 400]
    assert Path(found["path"]).resolve().is_relative_to(site)
    assert found["checkout"] is None
    assert found["data"] == str(installed.tmp / "cache" / "cnnlab" / "data")


def test_cnnlab_doctor_from_the_wheel(installed):
    out = _run(["cnnlab", "doctor"], installed.env, installed.work, timeout=120)
    photos = next(line for line in out.splitlines() if line.strip().startswith("photos"))
    assert str(installed.venv.resolve()) in photos or str(installed.venv) in photos, photos
    assert "astronaut, cat, coffee" in photos
    assert str(installed.tmp / "torch" / "hub" / "checkpoints") in out


def test_lesson_01_runs_against_the_wheel(installed):
    """Lesson 01, copied outside the checkout, runs top to bottom in a kernel of the venv."""
    notebook = json.loads(LESSON.read_text())
    notebook["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [],
                              "execution_count": None,
                              "source": "print('cnnlab from', cnnlab.__file__)"})
    lesson = installed.work / LESSON.name
    lesson.write_text(json.dumps(notebook))
    kernels = installed.tmp / "jupyter"  # a kernelspec that starts the venv's python
    _run([installed.python, "-m", "ipykernel", "install", "--prefix", kernels, "--name",
          "cnnlab-wheel"], installed.env, installed.work)
    env = {**installed.env, "JUPYTER_PATH": str(kernels / "share" / "jupyter")}
    _run([installed.python, "-m", "nbconvert", "--to", "notebook", "--execute",
          "--ExecutePreprocessor.kernel_name=cnnlab-wheel", "--ExecutePreprocessor.timeout=300",
          "--output", "executed", lesson], env, installed.work)
    executed = json.loads((installed.work / "executed.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert errors == []
    # a print may arrive as several stream outputs (ipykernel flushes as it likes under load)
    last = "".join("".join(o.get("text", "")) for o in executed["cells"][-1]["outputs"])
    assert last.startswith("cnnlab from ") and str(installed.venv) in last
