"""The ``cnnlab`` command: ``doctor``, ``download``, ``assign`` and ``grade``.

Each subcommand's work lives in the module it belongs to; this file only dispatches, and
imports those modules when their subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from collections.abc import Callable, Sequence

from cnnlab import paths

# subcommand -> (module, function taking the remaining argv and returning an exit status)
_DELEGATED: dict[str, tuple[str, str, str]] = {
    "download": ("cnnlab.downloads", "main",
                 "pre-fetch datasets and AlexNet weights for offline use"),
    "assign": ("cnnlab.grading", "assign_main",
               "build student notebooks and the autograder from lab masters"),
    "grade": ("cnnlab.grading", "grade_main", "grade submitted notebooks into a CSV"),
}


def doctor(argv: Sequence[str] = ()) -> int:
    """Print versions, the compute device and where data and weights are looked up."""
    argparse.ArgumentParser(prog="cnnlab doctor", description=doctor.__doc__).parse_args(argv)
    import cnnlab

    lines = [("cnnlab", cnnlab.__version__), ("python", platform.python_version())]
    try:
        import torch

        lines.append(("torch", torch.__version__))
        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = f"cpu ({torch.get_num_threads()} threads)"
        lines.append(("device", device))
    except ImportError:
        lines.append(("torch", "NOT INSTALLED: pip install -e \".[dev]\""))
    try:
        import torchvision

        lines.append(("torchvision", torchvision.__version__))
    except ImportError:
        lines.append(("torchvision", "NOT INSTALLED"))
    photos = sorted(p.stem for p in paths.img_dir().glob("*.png"))
    lines.append(("photos", f"{paths.img_dir()} ({', '.join(photos) or 'none found'})"))
    data = paths.data_dir()
    present = sorted(p.name for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
    lines.append(("datasets", f"{data} ({', '.join(present) or 'none downloaded'})"))
    weights = paths.torch_checkpoints_dir() / "alexnet-owt-7be5be79.pth"
    state = "present" if weights.is_file() else "missing: run `cnnlab download alexnet` online"
    lines.append(("alexnet weights", f"{weights} ({state})"))
    lines.append(("sandbox", _sandbox_line()))
    width = max(len(key) for key, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    return 0


def _sandbox_line() -> str:
    """Whether `cnnlab grade` can sandbox here: actually runs `bwrap ... true`."""
    from cnnlab.grading import sandbox

    works, why = sandbox.check_bwrap()
    return "bwrap works (cnnlab grade runs submissions sandboxed)" if works else \
        f"NOT AVAILABLE: {why}"


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
    usage = "\n".join(f"  {name:<9} {summary}" for name, (_, summary) in commands.items())
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
