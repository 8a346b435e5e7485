"""The ``cnnlab`` command: ``doctor``, ``download``, ``assign``, ``grade``, ``install-source``,
``site``.

Each subcommand's work lives in the module it belongs to; this file only dispatches, and
imports those modules when their subcommand runs. ``doctor`` is the exception: it is the
command a broken installation needs, so every line it prints is probed on its own and a probe
that fails prints why, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

from cnnlab import hosted, paths

# subcommand -> (module, function taking the remaining argv and returning an exit status)
_DELEGATED: dict[str, tuple[str, str, str]] = {
    "download": ("cnnlab.downloads", "main",
                 "pre-fetch datasets and AlexNet weights for offline use"),
    "assign": ("cnnlab.grading", "assign_main",
               "build student notebooks and the autograder from lab masters"),
    "grade": ("cnnlab.grading", "grade_main", "grade submitted notebooks into a CSV"),
    "install-source": ("cnnlab.hosted", "main",
                       "set where notebooks pip-install cnnlab from on Colab or Kaggle"),
    "site": ("cnnlab.site", "main",
             "build the course as a static website (lessons, student labs), offline"),
}
Probe = Callable[[], tuple[str, bool]]  # () -> (the value printed, whether all is well)


@dataclass
class _Report:
    """The lines ``cnnlab doctor`` prints, and how many of them report a problem."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    problems: int = 0

    def add(self, key: str, value: str, ok: bool = True) -> None:
        self.lines.append((key, value))
        self.problems += not ok

    def probe(self, key: str, probe: Probe) -> None:
        """One line from ``probe``; if it raises, a line that says so, and the rest go on."""
        try:
            value, ok = probe()
        except Exception as error:  # noqa: BLE001 - doctor reports a failure, it never crashes
            value, ok = f"could not be checked: {_one_line(error)}", False
        self.add(key, value, ok)

    def show(self) -> None:
        width = max(len(key) for key, _ in self.lines)
        for key, value in self.lines:
            print(f"{key:<{width}}  {value}")
        if self.problems:
            fix = " (the `fix` line is the command that repairs it)" if any(
                key == "fix" for key, _ in self.lines) else ""
            many = "s" if self.problems > 1 else ""
            print(f"\ncnnlab doctor: {self.problems} problem{many} above{fix}.")


def _one_line(error: BaseException, limit: int = 90) -> str:
    """``TypeName: first line of the message``, cut to ``limit`` characters."""
    text = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}".rstrip(": ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _installed_version(name: str) -> str | None:
    """A distribution's installed version, read without importing it; None if not installed."""
    try:
        return metadata.version(name)
    except Exception:  # noqa: BLE001 - PackageNotFoundError, or broken metadata
        return None


def _try_import(name: str) -> tuple[ModuleType | None, BaseException | None]:
    """(module, None), or (None, the error) when importing it raises anything."""
    try:
        return importlib.import_module(name), None
    except Exception as error:  # noqa: BLE001 - e.g. RuntimeError from a mismatched build
        return None, error


def doctor(argv: Sequence[str] = ()) -> int:
    """Print versions, the compute device and where data and weights are looked up.

    Exit status 0 when all is well, 1 when a line reports a problem.
    """
    argparse.ArgumentParser(prog="cnnlab doctor", description=doctor.__doc__).parse_args(argv)
    report = _Report()
    report.probe("cnnlab", lambda: (importlib.import_module("cnnlab").__version__, True))
    report.probe("python", lambda: (platform.python_version(), True))
    try:
        _pytorch(report)
    except Exception as error:  # noqa: BLE001 - the lines below must still print
        report.add("torch", f"could not be checked: {_one_line(error)}", ok=False)
    report.probe("photos", _photos)
    report.probe("datasets", _datasets)
    report.probe("alexnet weights", _weights)
    report.probe("sandbox", _sandbox)
    report.show()
    return 1 if report.problems else 0


def _pytorch(report: _Report) -> None:
    """The torch, device and torchvision lines, and a `fix` line when the pair is broken.

    Versions come from the installed metadata, so they are known even when an import fails.
    """
    torch_version = _installed_version("torch")
    torch, torch_error = _try_import("torch")
    if torch is None and torch_version is None:
        report.add("torch", "NOT INSTALLED: pip install -e \".[dev]\"", ok=False)
        return
    torch_version = torch_version or str(getattr(torch, "__version__", "unknown"))
    broken = torch is None
    if torch is None:
        report.add("torch", f"{torch_version}, but `import torch` fails "
                   f"({_one_line(torch_error)})", ok=False)
    else:  # the build as torch names itself ("2.14.1+cu130"); pairs compare metadata
        report.add("torch", str(getattr(torch, "__version__", torch_version)))
        report.probe("device", lambda: (_device(torch), True))
    vision_version = _installed_version("torchvision")
    if torch is None:
        report.add("torchvision", f"{vision_version or 'not installed'} (not imported: "
                   "torch fails first)")
    else:
        broken |= _torchvision(report, torch_version, vision_version)
    if broken:
        report.add("fix", hosted.reinstall_command(torch_version) or
                   "reinstall torch and torchvision together, from one package index")


def _torchvision(report: _Report, torch_version: str, vision_version: str | None) -> bool:
    """The torchvision line; True when torchvision is missing, broken or the wrong release."""
    vision, error = _try_import("torchvision")
    if vision is None and vision_version is None:
        report.add("torchvision", "NOT INSTALLED", ok=False)
        return True
    vision_version = vision_version or str(getattr(vision, "__version__", "unknown"))
    problem = hosted.torch_pair_problem(torch_version, vision_version)
    if vision is None:
        why = f"; {problem}" if problem else ""
        report.add("torchvision", f"{vision_version}, but `import torchvision` fails "
                   f"({_one_line(error)}){why}", ok=False)
        return True
    if problem:
        report.add("torchvision", f"{vision_version}: does not match torch ({problem})",
                   ok=False)
        return True
    report.add("torchvision", str(getattr(vision, "__version__", vision_version)))
    return False


def _device(torch: ModuleType) -> str:
    """The device the lessons train on: CUDA, Apple's MPS, or the CPU and its threads."""
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return f"cpu ({torch.get_num_threads()} threads)"


def _photos() -> tuple[str, bool]:
    """The bundled photos: missing ones mean a broken install (they are package data)."""
    photos = sorted(p.stem for p in paths.img_dir().glob("*.png"))
    return f"{paths.img_dir()} ({', '.join(photos) or 'none found'})", bool(photos)


def _datasets() -> tuple[str, bool]:
    data = paths.data_dir()
    present = sorted(p.name for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
    return f"{data} ({', '.join(present) or 'none downloaded'})", True


def _weights() -> tuple[str, bool]:
    """AlexNet's ImageNet weights: optional (lesson 07 works without them)."""
    weights = paths.torch_checkpoints_dir() / "alexnet-owt-7be5be79.pth"
    state = "present" if weights.is_file() else "missing: run `cnnlab download alexnet` online"
    return f"{weights} ({state})", True


def _sandbox() -> tuple[str, bool]:
    """Whether `cnnlab grade` can sandbox here: actually runs `bwrap ... true`. Only graders
    need it, so its absence is not a problem of the installation."""
    from cnnlab.grading import sandbox

    works, why = sandbox.check_bwrap()
    return ("bwrap works (cnnlab grade runs submissions sandboxed)" if works else
            f"NOT AVAILABLE: {why}"), True


def _delegate(module: str, function: str) -> Callable[[Sequence[str]], int]:
    def run(argv: Sequence[str]) -> int:
        return getattr(importlib.import_module(module), function)(argv)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cnnlab`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
        "doctor": (doctor, "check the installation: versions, device, data and weights"),
    }
    for name, (module, function, summary) in _DELEGATED.items():
        commands[name] = (_delegate(module, function), summary)
    width = max(map(len, commands))
    usage = "\n".join(f"  {name:<{width}}  {summary}"
                      for name, (_, summary) in commands.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: cnnlab COMMAND [options]\n\ncommands:\n{usage}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"cnnlab: unknown command {name!r}; choose one of: {', '.join(commands)}",
              file=sys.stderr)
        return 2
    return int(commands[name][0](rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
