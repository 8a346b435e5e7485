"""Where cnnlab finds its photos, datasets and pretrained weights (stdlib only).

The photos are package data (``cnnlab/photos/*.png``), so they travel with any install: a
checkout, a wheel, ``pip install git+...`` or a hosted runtime. Datasets go to ``$CNNLAB_DATA``,
else ``data/`` next to ``pyproject.toml`` in a checkout, else ``~/.cache/cnnlab/data``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
# The folder above the package: the repository root in a checkout (see checkout_root()).
PROJECT_ROOT = _PACKAGE_DIR.parent


def img_dir() -> Path:
    """The folder of bundled photos: ``photos/`` inside the installed ``cnnlab`` package."""
    return Path(str(resources.files("cnnlab").joinpath("photos")))


def checkout_root() -> Path | None:
    """The repository root when cnnlab runs from a source checkout, else None (an install)."""
    root = PROJECT_ROOT
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def data_dir() -> Path:
    """The dataset cache: ``$CNNLAB_DATA``, else the checkout's ``data/``, else a user cache."""
    env = os.environ.get("CNNLAB_DATA")
    if env:
        return Path(env).expanduser()
    root = checkout_root()
    if root is not None:
        return root / "data"
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(xdg).expanduser() / "cnnlab" / "data"


def torch_checkpoints_dir() -> Path:
    """Where torch.hub keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints``.

    The same rule as ``torch.hub.get_dir()``, without importing torch.
    """
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home is None:
        xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"
