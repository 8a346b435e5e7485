"""torchvision's AlexNet, with its ImageNet weights when torch.hub's cache holds them.

The weights are torchvision's ``AlexNet_Weights.IMAGENET1K_V1``. torch.hub keeps the file
(``alexnet-owt-7be5be79.pth``, the last part of the enum's URL) in
``$TORCH_HOME/hub/checkpoints``, where every torchvision model looks for it.

- ``load_alexnet("auto")`` uses that file only when it is already there, else returns a seeded
  random AlexNet with a ``RandomWeightsWarning``. It never downloads: a lesson must run the same
  offline, and 30 laptops fetching 233 MB at once in one classroom cell would stall the room.
- ``load_alexnet("imagenet")`` is torchvision's ``alexnet(weights=...)``: it downloads the file
  when it is missing (failing within seconds when offline). So does ``download_alexnet()``,
  which ``cnnlab download alexnet`` runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from cnnlab import paths
from cnnlab._checks import describe, message
from cnnlab.network import PROBE_TIMEOUT, reachable

_HOW_TO_GET = (
    "To get the ImageNet weights run `cnnlab download alexnet` once while online, or copy "
    "{name} into {folder}."
)


class RandomWeightsWarning(UserWarning):
    """``load_alexnet("auto")`` found no ImageNet weights and returned a random model."""


def _imagenet_weights() -> Any:
    """torchvision's weights enum entry, which carries the URL, transforms and class names."""
    from torchvision.models import AlexNet_Weights

    return AlexNet_Weights.IMAGENET1K_V1


def weights_filename() -> str:
    """The ImageNet weights' file name, taken from the weights enum's URL."""
    return os.path.basename(urlparse(_imagenet_weights().url).path)


def weights_path() -> Path:
    """Where torch.hub caches the ImageNet weights (honours ``$TORCH_HOME``)."""
    return paths.torch_checkpoints_dir() / weights_filename()


def _how_to_get() -> str:
    return _HOW_TO_GET.format(name=weights_filename(), folder=paths.torch_checkpoints_dir())


def load_alexnet(weights: str | None = "auto", seed: int = 0) -> nn.Module:
    """torchvision's AlexNet in eval mode; ``weights`` is "auto", "imagenet" or None.

    - ``"auto"``: the ImageNet weights when torch.hub's cache has them (``weights_path()``),
      otherwise a random model seeded by ``seed`` and a ``RandomWeightsWarning`` saying how to
      get the weights. Never uses the network.
    - ``"imagenet"``: the ImageNet weights, downloaded into the cache first if missing.
    - ``None``: a random model seeded by ``seed``, without a warning.

    ``model.cnnlab_weights`` says what was loaded: ``"imagenet"`` or ``"random"``. The model is
    in ``eval()`` mode (dropout off); call ``.train()`` before fine-tuning it.
    Input (N, 3, H, W) with H, W >= 63, normalised with ImageNet's mean and std; output
    (N, 1000) logits over the ImageNet classes.
    """
    where = "load_alexnet"
    if weights not in ("auto", "imagenet", None):
        hint = "Use weights='imagenet' for the ImageNet weights."
        if isinstance(weights, bool):
            hint = ("weights takes a name, not a bool (torchvision's `pretrained=True` is "
                    "deprecated); use weights='imagenet' (or 'auto').")
        elif type(weights).__name__ == "AlexNet_Weights":
            hint = "For AlexNet_Weights.IMAGENET1K_V1 write weights='imagenet'."
        error = ValueError if isinstance(weights, str) else TypeError
        raise error(message(where, "weights='auto', 'imagenet' or None", describe(weights), hint))
    if weights is None:
        return _label(_random_alexnet(seed), "random")
    if weights == "auto" and not weights_path().is_file():
        warnings.warn(
            f"AlexNet has RANDOM weights (seed={seed}): no ImageNet weights at "
            f"{weights_path()}. Its filters are noise and its features are not learned from "
            f"images. {_how_to_get()}", RandomWeightsWarning, stacklevel=2)
        return _label(_random_alexnet(seed), "random")
    download_alexnet()  # a no-op when the file is cached
    from torchvision.models import alexnet

    try:
        return _label(alexnet(weights=_imagenet_weights(), progress=False), "imagenet")
    except Exception as error:  # unpickling and load_state_dict errors come in many types
        error.add_note(f"{where}: the cached weights file {weights_path()} could not be "
                       "loaded into AlexNet. If it is a partial download, delete it and run "
                       "`cnnlab download alexnet`.")
        raise


def _random_alexnet(seed: int) -> nn.Module:
    """A freshly initialised AlexNet; the same ``seed`` gives the same weights.

    The global random state is saved and restored, so calling this does not change it.
    """
    from torchvision.models import alexnet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return alexnet(weights=None)


def _label(model: nn.Module, kind: str) -> nn.Module:
    model.cnnlab_weights = kind
    return model.eval()


def download_alexnet(timeout: float = PROBE_TIMEOUT) -> Path:
    """Download the ImageNet weights into torch.hub's cache; returns the file's path.

    Does nothing if the file is already there. Offline it fails within ``timeout`` seconds
    with an ``OSError`` that says so. torch.hub checks the file's SHA-256 against its name.
    """
    path = weights_path()
    if path.is_file():
        return path
    url = _imagenet_weights().url
    if not reachable(url, timeout):
        raise OSError(
            f"cannot reach {urlparse(url).hostname} within {timeout:g} s to download the "
            f"AlexNet weights. Run `cnnlab download alexnet` again while online, or copy "
            f"{path.name} from a machine that has it into {path.parent}.")
    try:
        _imagenet_weights().get_state_dict(progress=True, check_hash=True)
    except Exception as error:  # URLError, hash mismatch (RuntimeError), disk full...
        error.add_note(f"cnnlab: downloading {url} into {path.parent} failed; run `cnnlab "
                       f"download alexnet` again, or copy {path.name} there from a machine "
                       "that has it")
        raise
    return path


__all__ = ["load_alexnet", "download_alexnet", "weights_path", "RandomWeightsWarning"]
