"""AlexNet from torchvision, with ImageNet weights when they are on disk, and its parameter table.

The ImageNet weights are one file, ``alexnet-owt-7be5be79.pth`` (the name comes from
``AlexNet_Weights.IMAGENET1K_V1.url``), that torch keeps in ``$TORCH_HOME/hub/checkpoints``.
``load_alexnet`` only ever *reads* that file; ``download_alexnet`` (run by
``cnnlab download alexnet`` while online) is the only code here that touches the network.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

import torch
from torch import nn

from cnnlab import paths
from cnnlab._checks import describe, message

WEIGHTS_CHOICES = ("auto", "imagenet", None)
CONNECT_TIMEOUT = 5.0  # seconds to reach the download server before giving up
READ_TIMEOUT = 30.0  # seconds a stalled download may wait for the next bytes

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
    """Where ``load_alexnet`` looks for the ImageNet weights (honours ``$TORCH_HOME``)."""
    return paths.torch_checkpoints_dir() / weights_filename()


def _how_to_get() -> str:
    return _HOW_TO_GET.format(name=weights_filename(), folder=paths.torch_checkpoints_dir())


def _random_alexnet(seed: int) -> nn.Module:
    """A freshly initialised AlexNet; the same ``seed`` gives the same weights.

    The global random state is saved and restored, so calling this does not change it.
    """
    from torchvision.models import alexnet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return alexnet(weights=None)


def _load_file(path: Path, where: str) -> nn.Module:
    """An AlexNet whose parameters are the state_dict stored in ``path``."""
    from torchvision.models import alexnet

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise ValueError(message(
            where, "a file saved with torch.save(model.state_dict(), path)",
            f"{path}, which torch.load cannot read ({type(error).__name__}: {error})",
            "The download may be incomplete: delete the file and run `cnnlab download alexnet`.",
        )) from error
    if not isinstance(state, dict):
        raise ValueError(message(
            where, "a state_dict (a dict of parameter name -> tensor) in the file",
            f"{describe(state)} in {path}",
            "Save the weights with torch.save(model.state_dict(), path), not the whole model.",
        ))
    with torch.device("meta"):  # no memory, no random init: the file provides every value
        model = alexnet(weights=None)
    try:
        model.load_state_dict({k: torch.as_tensor(v).float().contiguous()
                               for k, v in state.items()}, assign=True)
    except RuntimeError as error:
        raise ValueError(message(
            where, "the parameters of torchvision's AlexNet (features.0.weight ... "
            "classifier.6.bias)", f"a state_dict in {path} that does not fit: {error}",
            "Is this file the weights of a different model?",
        )) from error
    return model


def load_alexnet(weights: Any = "auto", seed: int = 0) -> nn.Module:
    """torchvision's AlexNet in eval mode, with ImageNet weights if they are on disk.

    ``weights``:
      - ``"auto"``: the ImageNet weights when ``weights_path()`` exists, otherwise a random
        model (seeded by ``seed``) and a ``RandomWeightsWarning`` telling how to get the weights.
        Never uses the network.
      - ``"imagenet"`` (or ``AlexNet_Weights.IMAGENET1K_V1``): the ImageNet weights; raises
        ``FileNotFoundError`` naming ``cnnlab download alexnet`` if the file is missing.
      - a path to a saved AlexNet state_dict: those weights.
      - ``None``: a random model seeded by ``seed``, without a warning.

    The model is returned in ``eval()`` mode (dropout off, so the same input always gives the
    same output); call ``.train()`` before fine-tuning it. Two attributes say what was loaded:
    ``model.cnnlab_weights`` is ``"imagenet"``, ``"file"`` or ``"random"`` and
    ``model.cnnlab_weights_file`` is the Path read (``None`` for random weights).

    Input (N, 3, H, W) with H, W >= 63, normalised with ImageNet's mean and std; output
    (N, 1000) logits over the ImageNet classes.
    """
    where = "load_alexnet"
    if isinstance(weights, bool) or not (
        weights is None or isinstance(weights, (str, os.PathLike)) or _is_weights_enum(weights)
    ):
        hint = ("`pretrained=True` is gone from torchvision; use weights='imagenet' (or 'auto')."
                if isinstance(weights, bool) else "")
        raise TypeError(message(
            where, "weights='auto', 'imagenet', None or a path to a .pth file",
            describe(weights), hint))
    if _is_weights_enum(weights):
        if weights != _imagenet_weights():
            raise ValueError(message(where, "AlexNet_Weights.IMAGENET1K_V1", repr(weights),
                                     "AlexNet has only the ImageNet weights."))
        weights = "imagenet"

    if weights is None:
        return _label(_random_alexnet(seed), "random", None)
    if weights in ("auto", "imagenet"):
        path = weights_path()
        if path.is_file():
            return _label(_load_file(path, where), "imagenet", path)
        if weights == "imagenet":
            raise FileNotFoundError(message(
                where, f"the ImageNet weights file {path}", "no such file", _how_to_get()))
        warnings.warn(
            f"AlexNet has RANDOM weights (seed={seed}): no ImageNet weights at {path}. "
            f"Its filters are noise and its features are not learned from images. {_how_to_get()}",
            RandomWeightsWarning, stacklevel=2)
        return _label(_random_alexnet(seed), "random", None)

    path = Path(weights).expanduser()
    if not path.suffix and not path.exists():
        # a plain word such as "IMAGENET" or "pretrained": a typo of a choice, not a path
        raise ValueError(message(
            where, "weights='auto', 'imagenet', None or a path to a .pth file", repr(weights),
            "Use weights='imagenet' for the ImageNet weights."))
    if not path.is_file():
        raise FileNotFoundError(message(
            where, "an existing weights file", f"{path} (no such file)",
            "Check the path, or use weights='auto' to look in torch's cache."))
    return _label(_load_file(path, where), "file", path)


def _is_weights_enum(value: Any) -> bool:
    return type(value).__name__.endswith("_Weights") and hasattr(value, "url")


def _label(model: nn.Module, kind: str, path: Path | None) -> nn.Module:
    model.cnnlab_weights = kind
    model.cnnlab_weights_file = path
    return model.eval()


def download_alexnet(timeout: float = CONNECT_TIMEOUT) -> Path:
    """Download the ImageNet weights into torch's checkpoint folder; returns the file's path.

    Does nothing if the file is already there. Offline it fails within ``timeout`` seconds
    with an ``OSError`` that says so. The file's SHA-256 is checked against its name.
    """
    path = weights_path()
    if path.is_file():
        return path
    url = _imagenet_weights().url
    host = urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        raise OSError(
            f"cannot reach {host} to download the AlexNet weights ({error}). Run this command "
            f"again while online, or copy {path.name} from a machine that has it into "
            f"{path.parent}."
        ) from error
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(READ_TIMEOUT)  # torch.hub's urlopen has no timeout of its own
    try:
        _imagenet_weights().get_state_dict(model_dir=str(path.parent), progress=True,
                                           check_hash=True)
    except Exception as error:
        raise OSError(f"downloading {url} into {path.parent} failed: {error}") from error
    finally:
        socket.setdefaulttimeout(previous)
    return path


class LayerRow(NamedTuple):
    """One line of ``layer_table``: module name, its repr, its parameter count, output shape."""

    name: str
    layer: str
    params: int
    output_shape: tuple[int, ...] | None


def layer_table(model: nn.Module,
                input_shape: tuple[int, ...] | None = None) -> list[LayerRow]:
    """One row per leaf module of ``model``, in the order they were defined.

    ``params`` counts the module's own parameters, so the rows sum to the model's total
    (AlexNet: 61,100,840). With ``input_shape`` (e.g. ``(1, 3, 224, 224)``) a zero input of
    that shape is run through the model and each row also gets its output shape.
    """
    where = "layer_table"
    if not isinstance(model, nn.Module):
        raise TypeError(message(where, "a torch.nn.Module", describe(model),
                                "Pass the model itself, e.g. layer_table(load_alexnet())."))
    leaves = [(name, module) for name, module in model.named_modules()
              if name and (not list(module.children())
                           or list(module.parameters(recurse=False)))]
    shapes: dict[str, tuple[int, ...]] = {}
    if input_shape is not None:
        if not (isinstance(input_shape, (tuple, list)) and input_shape
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                        for n in input_shape)):
            raise ValueError(message(where, "input_shape as a tuple of positive ints",
                                     describe(input_shape), "For one RGB image: (1, 3, 224, 224)."))
        hooks = [module.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
            for name, module in leaves]
        try:
            with torch.no_grad():
                model(torch.zeros(*input_shape))
        finally:
            for hook in hooks:
                hook.remove()
    return [LayerRow(name, _short_repr(module),
                     sum(p.numel() for p in module.parameters(recurse=False)),
                     shapes.get(name))
            for name, module in leaves]


def _short_repr(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def format_layer_table(rows: list[LayerRow]) -> str:
    """The rows of ``layer_table`` as aligned text, with a total line."""
    with_shapes = any(row.output_shape is not None for row in rows)
    head = ["layer", "module", "params"] + (["output shape"] if with_shapes else [])
    body = [[row.name, row.layer, f"{row.params:,}"]
            + ([" x ".join(map(str, row.output_shape or ()))] if with_shapes else [])
            for row in rows]
    total = ["total", "", f"{sum(row.params for row in rows):,}"] + ([""] if with_shapes else [])
    table = [head, *body, total]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]

    def fmt(line: list[str]) -> str:
        cells = [cell.rjust(w) if i == 2 else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(line, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(fmt(head))
    return "\n".join([fmt(head), rule, *map(fmt, body), rule, fmt(total)])
