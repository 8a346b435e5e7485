"""The package as a whole: light to import, every public name real, the console script works."""

import subprocess
import sys

import pytest

import cnnlab
from cnnlab import cli


def test_import_is_lazy():
    code = ("import sys, cnnlab; cnnlab.conv_output_size; cnnlab.conv2d; "
            "heavy = [m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import cnnlab pulled in: {out.stdout.strip()}"


@pytest.mark.parametrize("name", cnnlab.__all__)
def test_every_public_name_exists(name):
    assert getattr(cnnlab, name) is not None


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
    out = subprocess.run(["cnnlab", "doctor"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "torch" in out.stdout


def test_download_rejects_unknown_target(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["download", "imagenet"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
