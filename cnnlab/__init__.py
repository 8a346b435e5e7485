"""cnnlab: the helpers that the convolution lessons and labs import.

Every public name is defined in one module and listed in that module's ``__all__``; this file
only names the modules. Names load lazily, so ``import cnnlab`` is cheap: ``cnnlab.conv2d``
imports ``cnnlab.ops`` on first use, and torch, torchvision and matplotlib load only with the
modules that need them. IDEs and type checkers read the ``TYPE_CHECKING`` block below, which
star-imports the same modules (they resolve ``*`` through each ``__all__``).

To add a module to the API: one entry in ``_MODULES`` and one line in the ``TYPE_CHECKING``
block (tests/test_package.py checks that the two agree and that every module exists).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from functools import cache
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# the modules whose ``__all__`` make up the API, bottom-up (see ARCHITECTURE in the README)
_MODULES = ("shapes", "ops", "backward", "images", "data", "models", "train", "blocks", "alexnet",
            "first_layer", "attribution", "augment", "figures", "diagrams", "plotting", "curves",
            "widgets", "animations", "exercises")

if TYPE_CHECKING:
    from cnnlab.alexnet import *  # noqa: F403
    from cnnlab.animations import *  # noqa: F403
    from cnnlab.attribution import *  # noqa: F403
    from cnnlab.augment import *  # noqa: F403
    from cnnlab.backward import *  # noqa: F403
    from cnnlab.blocks import *  # noqa: F403
    from cnnlab.curves import *  # noqa: F403
    from cnnlab.data import *  # noqa: F403
    from cnnlab.diagrams import *  # noqa: F403
    from cnnlab.exercises import *  # noqa: F403
    from cnnlab.figures import *  # noqa: F403
    from cnnlab.first_layer import *  # noqa: F403
    from cnnlab.images import *  # noqa: F403
    from cnnlab.models import *  # noqa: F403
    from cnnlab.ops import *  # noqa: F403
    from cnnlab.plotting import *  # noqa: F403
    from cnnlab.shapes import *  # noqa: F403
    from cnnlab.train import *  # noqa: F403
    from cnnlab.widgets import *  # noqa: F403


def _module_all(module: str) -> tuple[str, ...]:
    """A module's ``__all__``, read from its source without importing it (so without torch)."""
    spec = importlib.util.find_spec(f"cnnlab.{module}")
    if spec is None:  # a module listed in _MODULES is missing: tests/test_package.py says so
        return ()
    if spec.origin and spec.origin.endswith(".py"):
        with open(spec.origin, encoding="utf-8") as file:
            tree = ast.parse(file.read(), spec.origin)
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target",
                                                                                 None)
            if isinstance(target, ast.Name) and target.id == "__all__" and node.value:
                return tuple(ast.literal_eval(node.value))
        return ()
    return tuple(importlib.import_module(f"cnnlab.{module}").__all__)  # no source: import it


@cache
def _exports() -> dict[str, str]:
    """Public name -> the module that defines it, for every module in ``_MODULES``."""
    return {name: module for module in _MODULES for name in _module_all(module)}


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_exports())
    module = _exports().get(name)
    if module is None:
        if name in _MODULES:
            return importlib.import_module(f"cnnlab.{name}")
        raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cnnlab.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_exports()))
