"""Where cnnlab looks for photos, datasets and pretrained weights (no imports beyond stdlib)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def img_dir() -> Path:
    """The folder of bundled photos (``img/`` in the checkout)."""
    return PROJECT_ROOT / "img"


def data_dir() -> Path:
    """The dataset cache: ``$CNNLAB_DATA`` if set, else ``data/`` in the checkout."""
    env = os.environ.get("CNNLAB_DATA")
    return Path(env).expanduser() if env else PROJECT_ROOT / "data"


def torch_checkpoints_dir() -> Path:
    """Where torch keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home is None:
        xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"
