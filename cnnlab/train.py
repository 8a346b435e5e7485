"""A small, seeded training loop: :func:`fit`, :func:`evaluate` and the :class:`History` they keep.

The loss follows the model's output: several logits per image (N, K) use cross-entropy over
K classes; a single logit (N, 1) or (N,) is a binary classifier and uses binary
cross-entropy on labels 0/1. Accuracy is the fraction of images whose predicted class (the
largest logit, or logit > 0) equals the label.

Determinism: ``fit`` shuffles with its own ``torch.Generator`` seeded by ``seed``, and runs
inside ``torch.random.fork_rng`` seeded by ``seed`` too, so dropout is repeatable and the
caller's global random state is left as it was. The model's initial weights are the caller's
business: call ``torch.manual_seed(...)`` before building it. Same seed, same initial weights,
same machine and thread count: identical histories. Across machines, float32 training amplifies
the last-bit differences between CPU kernels (AVX-512, AVX2, ARM) until a few predictions
change; a float64 model (``torch.set_default_dtype(torch.float64)`` before building it) keeps
them around 1e-15, far below any digit a lesson prints.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from cnnlab._checks import as_int, describe, message

Data = Dataset | tuple[torch.Tensor, torch.Tensor]


@dataclass
class History:
    """Per-epoch results of :func:`fit`: mean training loss and accuracy, validation loss and
    accuracy.

    The validation lists stay empty when ``fit`` had no validation data. Accuracies are
    fractions in [0, 1].
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Number of epochs recorded."""
        return len(self.train_loss)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a torch.device, checked to exist here."""
    where = "device"
    if not isinstance(device, (str, torch.device)):
        raise TypeError(message(where, '"cpu", "cuda", "mps" or a torch.device', describe(device)))
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(message(where, 'one of "cpu", "cuda", "cuda:0", "mps"', repr(device),
                                 "Run `cnnlab doctor` to see which device this machine has.")
                         ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(message(where, "a CUDA GPU for device='cuda'",
                                 "a machine where torch.cuda.is_available() is False",
                                 "Use device='cpu' (every lesson runs on the CPU in seconds)."))
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(message(where, f"a GPU index below {torch.cuda.device_count()}",
                                 str(device), "Use device='cuda' for the first GPU."))
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(message(where, "Apple's Metal GPU for device='mps'",
                                     "a machine where torch.backends.mps.is_available() is False",
                                     "Use device='cpu' (every lesson runs on the CPU in seconds)."))
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(message(where, '"cpu", "cuda" or "mps"', repr(str(device)),
                                 "cnnlab's training loop supports these three."))
    return device


def _as_dataset(data: Any, name: str, where: str) -> Dataset:
    """A Dataset of (image, label) pairs from a Dataset or an (images, labels) tuple."""
    pair = isinstance(data, tuple) and len(data) == 2
    if pair and all(isinstance(t, torch.Tensor) for t in data):
        images, labels = data
        if len(images) != len(labels):
            raise ValueError(message(where, f"as many labels as images in `{name}`",
                                     f"{len(images)} images and {len(labels)} labels"))
        data = TensorDataset(images, labels)
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise TypeError(message(where, f"`{name}` as a Dataset of (image, label) pairs or an "
                                "(images, labels) tuple of tensors", describe(data),
                                "e.g. train, test = cnnlab.load_digits(); fit(model, train, ...)."))
    if len(data) == 0:
        raise ValueError(message(where, f"at least one example in `{name}`", "an empty dataset"))
    item = data[0]
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise TypeError(message(where, f"items of `{name}` as (image, label) pairs",
                                describe(item), "A TensorDataset(images, labels) gives pairs."))
    return data


def _loss_and_correct(logits: torch.Tensor, labels: torch.Tensor, where: str):
    """Summed loss over the batch and the number of correct predictions."""
    labels = torch.as_tensor(labels, device=logits.device)
    if logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
        logits = logits.reshape(-1)
        if labels.numel() != logits.numel() or not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError(message(where, "labels 0 or 1 for a model with one output (binary)",
                                     f"labels {labels.unique().tolist()[:10]}",
                                     "For K classes the last layer needs K outputs, "
                                     "e.g. nn.Linear(..., 10)."))
        target = labels.to(logits.dtype)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        correct = ((logits > 0).long() == labels.long()).sum()
        return loss, correct
    if logits.ndim != 2:
        raise ValueError(message(where, "model outputs (N, classes) logits",
                                 f"output of shape {tuple(logits.shape)}",
                                 "End the model with nn.Flatten() and an nn.Linear layer."))
    n_classes = logits.shape[1]
    if labels.dtype not in (torch.int64, torch.int32, torch.uint8) or labels.numel() != len(logits):
        raise ValueError(message(where, "one integer class label per image",
                                 f"labels of shape {tuple(labels.shape)}, dtype {labels.dtype}",
                                 "Labels are class numbers 0..K-1, e.g. torch.tensor([3, 0, 7])."))
    if bool((labels < 0).any()) or bool((labels >= n_classes).any()):
        raise ValueError(message(where, f"labels between 0 and {n_classes - 1} "
                                 f"(the model has {n_classes} outputs)",
                                 f"labels up to {int(labels.max())}",
                                 "Give the last Linear layer one output per class."))
    labels = labels.long()
    loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
    correct = (logits.argmax(dim=1) == labels).sum()
    return loss, correct


def _forward(model: nn.Module, images: torch.Tensor, where: str) -> torch.Tensor:
    """model(images); torch's error keeps its type and gains a note on the usual cause."""
    try:
        return model(images)
    except RuntimeError as error:
        error.add_note(f"{where}: the model failed on a batch of images of shape "
                       f"{tuple(images.shape)}. If torch's message is about shapes or channels, "
                       "check in_channels of the first Conv2d and in_features of the first "
                       "Linear after Flatten (cnnlab.conv_output_size predicts the sizes).")
        raise


def _to_model(images: torch.Tensor, device: torch.device, dtype: torch.dtype | None
              ) -> torch.Tensor:
    """A batch on the model's device, and in its float dtype when both are floating point (a
    float64 model takes float32 images)."""
    if dtype is not None and images.is_floating_point():
        return images.to(device, dtype=dtype)
    return images.to(device)


def _float_dtype(model: nn.Module) -> torch.dtype | None:
    """The dtype of the model's first floating-point parameter, if it has one."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def _loader(data: Dataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _run_eval(model: nn.Module, data: Dataset, device: torch.device, batch_size: int,
              where: str) -> tuple[float, float]:
    was_training = model.training
    dtype = _float_dtype(model)
    model.eval()
    total_loss, total_correct, count = 0.0, 0, 0
    try:
        with torch.no_grad():
            for images, labels in _loader(data, batch_size, shuffle=False):
                images = _to_model(images, device, dtype)
                labels = torch.as_tensor(labels).to(device)
                loss, correct = _loss_and_correct(_forward(model, images, where), labels, where)
                total_loss += loss.item()
                total_correct += int(correct)
                count += len(images)
    finally:
        model.train(was_training)
    return total_loss / count, total_correct / count


def evaluate(model: nn.Module, data: Data, device: str | torch.device = "cpu",
             batch_size: int = 256) -> tuple[float, float]:
    """Mean loss and accuracy (a fraction) of ``model`` on ``data``, without training it.

    ``data``: a Dataset of (image, label) pairs or an (images (N, C, H, W), labels (N,)) tuple.
    The model is put in eval mode (BatchNorm uses its running statistics, dropout is off) and
    restored to its previous mode afterwards.
    """
    where = "evaluate"
    _check_model(model, where)
    data = _as_dataset(data, "data", where)
    batch_size = as_int(batch_size, "batch_size", where, 1)
    device = resolve_device(device)
    model.to(device)
    return _run_eval(model, data, device, batch_size, where)


def _check_model(model: Any, where: str) -> None:
    if isinstance(model, type) or not isinstance(model, nn.Module):
        raise TypeError(message(where, "a torch.nn.Module instance", describe(model),
                                "Build the network first, e.g. model = nn.Sequential(...)."))


def _make_optimizer(optimizer: str | Callable, parameters: Iterable, lr: float,
                    where: str) -> torch.optim.Optimizer:
    if callable(optimizer):
        return optimizer(parameters, lr=lr)
    if optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9)
    raise ValueError(message(where, '`optimizer` "adam", "sgd" or a function like '
                             "torch.optim.AdamW", repr(optimizer)))


def fit(
    model: nn.Module,
    train_data: Data,
    val_data: Data | None = None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    optimizer: str | Callable = "adam",
) -> History:
    """Train ``model`` in place for ``epochs`` passes over ``train_data``; returns a History.

    Data: a Dataset of (image, label) pairs (e.g. from :func:`cnnlab.load_digits`) or an
    (images (N, C, H, W), labels (N,)) tuple. After every epoch the validation data (if given)
    is evaluated; keep the test set for one final :func:`evaluate`. ``optimizer``: "adam"
    (default), "sgd" (momentum 0.9) or a function such as ``torch.optim.AdamW`` called as
    ``optimizer(model.parameters(), lr=lr)``.
    ``device``: "cpu", "cuda", "mps" or a torch.device; the model is moved there, and each
    batch follows it (in the model's float dtype: a float64 model trains on float32 data).
    ``progress`` shows a text progress bar over the epochs (tqdm, on standard output, so that
    a saved notebook keeps the finished bar as plain text) with the latest loss and accuracy.

    The reported train loss/accuracy are means over the epoch's batches as the model was
    learning (so they lag a little behind the validation figures computed after the epoch).
    Shuffling and dropout are seeded by ``seed``; see the module docstring.
    """
    where = "fit"
    _check_model(model, where)
    train_data = _as_dataset(train_data, "train_data", where)
    if val_data is not None:
        val_data = _as_dataset(val_data, "val_data", where)
    epochs = as_int(epochs, "epochs", where, 1)
    batch_size = as_int(batch_size, "batch_size", where, 1)
    seed = as_int(seed, "seed", where, 0)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(message(where, "a learning rate `lr` > 0", repr(lr),
                                 "Typical values: 1e-3 for Adam, 0.01-0.1 for SGD."))
    device = resolve_device(device)
    model.to(device)
    dtype = _float_dtype(model)
    opt = _make_optimizer(optimizer, model.parameters(), float(lr), where)
    history = History()
    from tqdm.std import tqdm

    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        batches = _loader(train_data, batch_size, shuffle=True, seed=seed)
        bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress,
                   file=sys.stdout, ncols=96)
        for _ in bar:
            model.train()
            total_loss, total_correct, count = 0.0, 0, 0
            for images, labels in batches:
                images = _to_model(images, device, dtype)
                labels = torch.as_tensor(labels).to(device)
                loss, correct = _loss_and_correct(_forward(model, images, where), labels, where)
                opt.zero_grad()
                (loss / len(images)).backward()
                opt.step()
                total_loss += loss.item()
                total_correct += int(correct)
                count += len(images)
            history.train_loss.append(total_loss / count)
            history.train_acc.append(total_correct / count)
            shown = {"loss": f"{history.train_loss[-1]:.3f}",
                     "acc": f"{history.train_acc[-1]:.3f}"}
            if val_data is not None:
                val_loss, val_acc = _run_eval(model, val_data, device, 256, where)
                history.val_loss.append(val_loss)
                history.val_acc.append(val_acc)
                shown["val_acc"] = f"{val_acc:.3f}"
            bar.set_postfix(shown)
        bar.close()
    return history


__all__ = ["fit", "evaluate", "History"]
