"""Data augmentation by random shifts: each training image moved by a few random pixels.

- :func:`random_shift` moves every image of a batch by its own random (dx, dy);
- :class:`RandomShift` wraps a dataset so that every access to an item shifts it anew, which is
  what :func:`cnnlab.fit` needs: each epoch then sees the images in new places.

Shifts use :func:`cnnlab.shift_images` (whole pixels, zeros come in, nothing wraps around) and
never touch the labels. Randomness comes from a ``torch.Generator`` seeded by ``seed``, not
from torch's global generator: the same seed and the same sequence of calls give the same
shifts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from cnnlab._checks import as_int, describe, message
from cnnlab.data import shift_images

__all__ = ["random_shift", "RandomShift"]


def _range(value: Any, name: str, where: str) -> tuple[int, int]:
    """A shift range: d -> (-d, d), or an inclusive (low, high) pair of ints."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        low, high = (as_int(v, name, where, -(2**31)) for v in value)
        if low > high:
            raise ValueError(message(where, f"`{name}` as (low, high) with low <= high",
                                     repr(tuple(value)), f"e.g. {name}=(0, 16)."))
        return low, high
    if isinstance(value, (tuple, list)):
        raise ValueError(message(where, f"`{name}` as an int d (shifts -d..d) or a (low, high) "
                                 "pair", describe(value), f"e.g. {name}=2 or {name}=(0, 16)."))
    d = as_int(value, name, where, 0)
    return -d, d


def _check_fits(dx: tuple[int, int], dy: tuple[int, int], shape: tuple[int, ...],
                where: str) -> None:
    """Every shift leaves part of the image: |dx| < W and |dy| < H."""
    for name, (low, high), size in (("dx", dx, shape[-1]), ("dy", dy, shape[-2])):
        if max(abs(low), abs(high)) >= size:
            raise ValueError(message(where, f"`{name}` shifts smaller than the image ({size} "
                                     "pixels)", f"the range {low}..{high}",
                                     "A shift that large would leave an empty image."))


def _generator(seed: Any, where: str) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(as_int(seed, "seed", where, 0))


def _draw(generator: torch.Generator, low: int, high: int, n: int) -> list[int]:
    return torch.randint(low, high + 1, (n,), generator=generator).tolist()


def random_shift(images: torch.Tensor, dx: Any = 0, dy: Any = 0,
                 seed: int | torch.Generator = 0) -> torch.Tensor:
    """Move each image (C, H, W) of a batch (N, C, H, W) by its own random whole pixels.

    ``dx`` and ``dy`` give the range of the horizontal (right positive) and vertical (down
    positive) shift: an int d draws from -d..d, a pair (low, high) from low..high, both ends
    included, uniformly. All channels of an image move together. ``seed``: an int or a
    ``torch.Generator`` (which advances). Returns a new tensor (N, C, H, W).
    """
    where = "random_shift"
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        hint = ("One image (C, H, W) needs a batch axis: images[None]."
                if isinstance(images, torch.Tensor) and images.dim() == 3 else
                "e.g. random_shift(train.images, dx=(0, 16)).")
        raise ValueError(message(where, "a batch of images (N, C, H, W)", describe(images), hint))
    (x_low, x_high), (y_low, y_high) = _range(dx, "dx", where), _range(dy, "dy", where)
    _check_fits((x_low, x_high), (y_low, y_high), tuple(images.shape), where)
    generator = _generator(seed, where)
    n = len(images)
    steps = zip(_draw(generator, x_low, x_high, n), _draw(generator, y_low, y_high, n),
                strict=True)
    return torch.stack([shift_images(image, dx=a, dy=b) for image, (a, b) in zip(images, steps,
                                                                                 strict=True)])


class RandomShift(Dataset):
    """A dataset whose every item comes back shifted by new random whole pixels; labels kept.

    ``data``: a Dataset of (image (C, H, W), label) pairs, e.g. :class:`cnnlab.ImageData`, or an
    (images (N, C, H, W), labels (N,)) tuple. ``dx``, ``dy``, ``seed`` as in
    :func:`random_shift`. Each ``dataset[i]`` draws its own shift from the dataset's
    generator, so the same item looks different in every epoch of :func:`cnnlab.fit`; make a
    new ``RandomShift`` (same seed) for each training run to repeat it exactly.
    """

    def __init__(self, data: Any, dx: Any = 0, dy: Any = 0, seed: int = 0) -> None:
        where = "RandomShift"
        if isinstance(data, tuple) and len(data) == 2 and all(
                isinstance(t, torch.Tensor) for t in data):
            data = TensorDataset(*data)
        if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
            raise TypeError(message(where, "a Dataset of (image, label) pairs or an (images, "
                                    "labels) tuple", describe(data),
                                    "e.g. RandomShift(train, dx=(0, 16))."))
        if len(data) == 0:
            raise ValueError(message(where, "at least one (image, label) pair", "an empty dataset"))
        self.data = data
        self.dx, self.dy = _range(dx, "dx", where), _range(dy, "dy", where)
        item = data[0]
        if not (isinstance(item, (tuple, list)) and len(item) == 2
                and isinstance(item[0], torch.Tensor) and item[0].dim() >= 2):
            raise TypeError(message(where, "items (image (C, H, W), label)", describe(item),
                                    "A TensorDataset(images, labels) gives such pairs."))
        _check_fits(self.dx, self.dy, tuple(item[0].shape), where)
        self.generator = _generator(seed, where)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.data[index]
        a = _draw(self.generator, *self.dx, 1)[0]
        b = _draw(self.generator, *self.dy, 1)[0]
        return shift_images(image, dx=a, dy=b), label

    def __repr__(self) -> str:
        return f"RandomShift({len(self)} items, dx in {self.dx}, dy in {self.dy})"
