"""Datasets for the lessons: generated shapes, scikit-learn's digits, and torchvision's sets.

Everything returns images as float tensors (N, C, H, W) in [0, 1] with int64 labels (N,).

- :func:`make_shapes` draws circles, squares, triangles and crosses (offline, seeded). Its
  ``train_region`` / ``test_region`` arguments put the shapes in one part of the image for
  training and another for testing: the translation experiment.
- :func:`load_digits` is scikit-learn's bundled 8x8 handwritten digits, resized (offline).
- :func:`shift_images` moves a batch of images by whole pixels, filling with zeros.
- :func:`load_mnist`, :func:`load_fashion_mnist`, :func:`load_cifar10` are torchvision's sets
  in :func:`cnnlab.paths.data_dir`; they need the files there (``cnnlab download mnist``
  etc. fetches them).

torchvision and scikit-learn are imported inside the functions that use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch.utils.data import TensorDataset

from cnnlab._checks import as_int, describe, message
from cnnlab.network import reachable
from cnnlab.paths import data_dir

SHAPES = ["circle", "square", "triangle", "cross"]
REGIONS = ("all", "left", "right", "top", "bottom")


class ImageData(TensorDataset):
    """A TensorDataset of ``images`` (N, C, H, W) float32 and ``labels`` (N,) int64.

    ``dataset[i]`` is the pair ``(image (C, H, W), label)``, so it works with a DataLoader
    and with :func:`cnnlab.fit`; ``classes[label]`` is the name of a label.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]):
        super().__init__(images, labels)
        self.classes = list(classes)

    @property
    def images(self) -> torch.Tensor:
        """All images, (N, C, H, W)."""
        return self.tensors[0]

    @property
    def labels(self) -> torch.Tensor:
        """All labels, (N,)."""
        return self.tensors[1]

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"ImageData({n} images of {c}x{h}x{w}, classes={self.classes})"


# --------------------------------------------------------------------------- generated shapes


def _centre_range(region: str, size: int, radius: np.ndarray, axis: str) -> tuple:
    """Lowest and highest centre coordinate (per image) along ``axis`` ("x" or "y")."""
    low, high = radius, size - 1 - radius
    half = (size - 1) / 2
    if (region, axis) in (("left", "x"), ("top", "y")):
        high = half - radius
    elif (region, axis) in (("right", "x"), ("bottom", "y")):
        low = half + radius
    return low, high


def _draw(kind: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, size: int):
    """Boolean masks (N, size, size): shape ``SHAPES[kind[i]]`` of radius r[i] at (cx, cy)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    dx = x[None] - cx[:, None, None]
    dy = y[None] - cy[:, None, None]
    r = r[:, None, None]
    thin = 0.3 * r
    masks = [
        dx**2 + dy**2 <= r**2,  # circle
        (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r),  # square
        (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) * 0.55),  # triangle, apex up
        ((np.abs(dx) <= thin) & (np.abs(dy) <= r)) | ((np.abs(dy) <= thin) & (np.abs(dx) <= r)),
    ]
    return np.choose(kind[:, None, None], masks)


def _shapes(n: int, size: int, region: str, noise: float, rng: np.random.Generator):
    """n images (n, 3, size, size) and balanced labels, drawn from ``rng``."""
    kind = rng.permutation(np.arange(n) % len(SHAPES))
    r = rng.uniform(0.12, 0.2, n) * size
    xlow, xhigh = _centre_range(region, size, r, "x")
    ylow, yhigh = _centre_range(region, size, r, "y")
    cx = rng.uniform(xlow, xhigh)
    cy = rng.uniform(ylow, yhigh)
    colour = rng.uniform(0.5, 1.0, (n, 3))
    background = rng.uniform(0.0, 0.3, (n, 3))
    mask = _draw(kind, cx, cy, r, size)[:, None]  # (n, 1, size, size)
    images = np.where(mask, colour[:, :, None, None], background[:, :, None, None])
    images = images + noise * rng.standard_normal(images.shape)
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(kind.astype(np.int64))


def make_shapes(
    n_train: int = 800,
    n_test: int = 200,
    size: int = 32,
    seed: int = 0,
    *,
    noise: float = 0.05,
    train_region: str = "all",
    test_region: str = "all",
) -> tuple[ImageData, ImageData]:
    """Generated RGB images of circles, squares, triangles and crosses (4 balanced classes).

    Each image (3, size, size) in [0, 1] shows one shape of random size, colour and position
    on a random dark background, plus Gaussian noise of std ``noise``. The class is the shape,
    never the colour or the place.

    ``train_region`` and ``test_region`` keep each shape entirely inside one part of the image:
    "all", "left", "right", "top" or "bottom". Train on "left" and test on "right" to see
    which model recognises a shape in a place it has never seen it.

    The same arguments give the same images (a NumPy Generator seeded with ``seed``; no
    global state). Returns ``(train, test)``: :class:`ImageData` with ``.classes`` = SHAPES.
    """
    where = "make_shapes"
    n_train = as_int(n_train, "n_train", where, 1)
    n_test = as_int(n_test, "n_test", where, 1)
    size = as_int(size, "size", where, 12)
    seed = as_int(seed, "seed", where, 0)
    for name, region in (("train_region", train_region), ("test_region", test_region)):
        if region not in REGIONS:
            raise ValueError(message(where, f"`{name}` in {REGIONS}", repr(region),
                                     'Use "all" for anywhere in the image.'))
    if not isinstance(noise, (int, float)) or not 0 <= noise <= 1:
        raise ValueError(message(where, "`noise` (a standard deviation) between 0 and 1",
                                 repr(noise), "Try noise=0.05."))
    rng = np.random.default_rng(seed)
    train = ImageData(*_shapes(n_train, size, train_region, noise, rng), SHAPES)
    test = ImageData(*_shapes(n_test, size, test_region, noise, rng), SHAPES)
    return train, test


def shift_images(images: torch.Tensor, dx: int = 0, dy: int = 0) -> torch.Tensor:
    """Move images (..., H, W) right by ``dx`` and down by ``dy`` pixels (negative: left, up).

    Pixels pushed over the border are lost and the uncovered strip is filled with zeros
    (black), so nothing wraps around. Returns a new tensor of the same shape.
    """
    where = "shift_images"
    if not isinstance(images, torch.Tensor) or images.ndim < 2:
        raise TypeError(message(where, "a tensor of images (..., H, W)", describe(images),
                                "Pass dataset.images, e.g. shift_images(test.images, dx=2)."))
    height, width = images.shape[-2:]
    for name, step, limit in (("dx", dx, width), ("dy", dy, height)):
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(message(where, f"`{name}` as a whole number of pixels",
                                    describe(step), "Use an int such as 2 or -3."))
        if abs(step) >= limit:
            raise ValueError(message(where, f"|{name}| < {limit} (the image size)", repr(step),
                                     "A shift that large would leave an empty image."))
    out = torch.zeros_like(images)
    src_y, dst_y = slice(max(-dy, 0), height - max(dy, 0)), slice(max(dy, 0), height - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), width - max(dx, 0)), slice(max(dx, 0), width - max(-dx, 0))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out


# --------------------------------------------------------------------------- digits (offline)


def load_digits(
    size: int = 16, seed: int = 0, test_fraction: float = 0.2
) -> tuple[ImageData, ImageData]:
    """scikit-learn's 1,797 handwritten digits (8x8, bundled, offline), resized to size x size.

    Images are scaled to [0, 1] and resized with bilinear interpolation: 16 (or 28) suits a
    CNN with two 2x2 pools (16 -> 8 -> 4). The split is stratified (every digit in the same
    proportion in train and test) and fixed by ``seed``.

    Returns ``(train, test)``: :class:`ImageData` of (N, 1, size, size) images and int64
    labels 0-9, with ``classes`` = ["0", ..., "9"]. Images have torch's default dtype: float32,
    or float64 after ``torch.set_default_dtype(torch.float64)`` (as lesson 06 trains).
    """
    where = "load_digits"
    size = as_int(size, "size", where, 8)
    seed = as_int(seed, "seed", where, 0)
    if not isinstance(test_fraction, float) or not 0 < test_fraction < 1:
        raise ValueError(message(where, "`test_fraction` as a float between 0 and 1",
                                 repr(test_fraction), "Try test_fraction=0.2 (20% for testing)."))
    pixels, target = _digits_table(where)
    images = torch.tensor(pixels.reshape(-1, 1, 8, 8), dtype=torch.get_default_dtype()) / 16.0
    if size != 8:
        images = torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False
        ).clamp(0.0, 1.0)
    labels = torch.tensor(target, dtype=torch.int64)
    train_idx, test_idx = _stratified_split(target, test_fraction, seed)
    classes = [str(d) for d in range(10)]
    return (ImageData(images[train_idx], labels[train_idx], classes),
            ImageData(images[test_idx], labels[test_idx], classes))


def _digits_table(where: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits file, read without importing scikit-learn (1.4 s here):
    (1797, 64) pixel values 0-16 and (1797,) labels, as ``sklearn.datasets.load_digits``."""
    from importlib.util import find_spec

    spec = find_spec("sklearn")
    path = (Path(next(iter(spec.submodule_search_locations)), "datasets", "data",
                 "digits.csv.gz") if spec and spec.submodule_search_locations else None)
    if path is None or not path.is_file():
        raise ValueError(message(where, "scikit-learn's bundled digits (digits.csv.gz)",
                                 "no scikit-learn" if path is None else f"no file {path.name}",
                                 "pip install scikit-learn (cnnlab's own dependency)."))
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(int)


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``draws`` to take from each class: its share, rounded down, plus one more
    for the classes with the largest remainders (ties broken by ``rng``)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            add = min(len(tied), need)
            floored[rng.choice(tied, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def _stratified_split(labels: Sequence[int] | np.ndarray, test_fraction: float,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, test indices) with every class in the same proportion in both; the
    same split as scikit-learn's ``train_test_split(..., stratify=labels, random_state=seed)``
    (its algorithm, written out so that loading the digits does not import scikit-learn)."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n_test = int(np.ceil(test_fraction * len(labels)))
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_train_of = _approximate_mode(counts, len(labels) - n_test, rng)
    n_test_of = _approximate_mode(counts - n_train_of, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for members, n_train_i, n_test_i in zip(by_class, n_train_of, n_test_of, strict=True):
        shuffled = members.take(rng.permutation(len(members)), mode="clip")
        train.extend(shuffled[:n_train_i])
        test.extend(shuffled[n_train_i:n_train_i + n_test_i])
    return (torch.from_numpy(rng.permutation(np.array(train, dtype=np.int64))),
            torch.from_numpy(rng.permutation(np.array(test, dtype=np.int64))))


# --------------------------------------------------------------------------- torchvision sets

# cnnlab name -> (torchvision class name, folder it creates under the root, a URL to probe)
TORCHVISION_SETS: dict[str, tuple[str, str, str]] = {
    "mnist": ("MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST",
                      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/"),
}


def _torchvision_class(name: str) -> type:
    import torchvision.datasets

    return getattr(torchvision.datasets, TORCHVISION_SETS[name][0])


def _fetch(name: str, root: Path, timeout: float) -> None:
    """Download both splits of ``name`` into ``root``; RuntimeError if the network is absent."""
    url = TORCHVISION_SETS[name][2]
    if not reachable(url, timeout):
        raise RuntimeError(
            f"cannot download {name}: {urlparse(url).hostname} is not reachable within "
            f"{timeout:g} s (no network?). On a machine with internet run `cnnlab download "
            f"{name}`, then copy its folder {root / TORCHVISION_SETS[name][1]} here."
        )
    dataset_class = _torchvision_class(name)
    try:
        for train in (True, False):
            dataset_class(root=str(root), train=train, download=True)
    except Exception as error:  # torchvision raises RuntimeError, URLError, OSError...
        error.add_note(f"cnnlab: downloading {name} into {root} failed; run `cnnlab download "
                       f"{name}` again, or copy {root / TORCHVISION_SETS[name][1]} from a "
                       "machine that has it")
        raise


def download_dataset(name: str, root: str | Path | None = None, timeout: float = 5.0) -> Path:
    """Fetch a torchvision dataset ("mnist", "fashion-mnist" or "cifar10") for offline use.

    Files go under ``root`` (default: :func:`cnnlab.paths.data_dir`, ``data/`` in a checkout).
    Returns the dataset's folder. Raises RuntimeError, after at most ``timeout`` seconds when the
    network is absent. Used by ``cnnlab download NAME``.
    """
    if name not in TORCHVISION_SETS:
        raise ValueError(message("download_dataset", f"one of {tuple(TORCHVISION_SETS)}",
                                 repr(name), "The digits and shapes need no download."))
    root = Path(root) if root is not None else data_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot create the data folder {root}: {error}") from error
    _fetch(name, root, timeout)
    return root / TORCHVISION_SETS[name][1]


def _load_torchvision(
    name: str, root: str | Path | None, train: bool, download: bool,
    transform: Callable[[Any], Any] | None, timeout: float,
) -> Any:
    where = f"load_{name.replace('-', '_')}"
    if not isinstance(train, bool):
        raise TypeError(message(where, "`train` as True (training split) or False (test split)",
                                describe(train)))
    root = Path(root) if root is not None else data_dir()
    if transform is None:
        from torchvision.transforms import ToTensor

        transform = ToTensor()
    dataset_class = _torchvision_class(name)
    try:
        return dataset_class(root=str(root), train=train, transform=transform)
    except RuntimeError:  # "Dataset not found": fall through to the download
        pass
    if not download:
        raise RuntimeError(
            f"{where}: the {name} files are not in {root}. Fetch them once with "
            f"`cnnlab download {name}` (needs internet), or call {where}(download=True)."
        )
    _fetch(name, root, timeout)
    return dataset_class(root=str(root), train=train, transform=transform)


def load_mnist(root: str | Path | None = None, train: bool = True, *, download: bool = True,
               transform: Callable[[Any], Any] | None = None, timeout: float = 5.0) -> Any:
    """torchvision's MNIST (60,000 train / 10,000 test handwritten digits, 1x28x28).

    Reads ``root/MNIST/raw`` (``root`` defaults to ``paths.data_dir()``). If the files are
    missing and ``download`` is True it tries the network once: with no network it raises
    RuntimeError within ``timeout`` seconds, naming ``cnnlab download mnist``. Items are
    ``(image (1, 28, 28) float in [0, 1], label int)`` unless ``transform`` says otherwise.
    """
    return _load_torchvision("mnist", root, train, download, transform, timeout)


def load_fashion_mnist(root: str | Path | None = None, train: bool = True, *,
                       download: bool = True, transform: Callable[[Any], Any] | None = None,
                       timeout: float = 5.0) -> Any:
    """torchvision's FashionMNIST (10 kinds of clothing, 1x28x28), like :func:`load_mnist`.

    Reads ``root/FashionMNIST/raw``; fetch it with ``cnnlab download fashion-mnist``.
    """
    return _load_torchvision("fashion-mnist", root, train, download, transform, timeout)


def load_cifar10(root: str | Path | None = None, train: bool = True, *, download: bool = True,
                 transform: Callable[[Any], Any] | None = None, timeout: float = 5.0) -> Any:
    """torchvision's CIFAR-10 (50,000 train / 10,000 test colour photos, 3x32x32, 10 classes).

    Reads ``root/cifar-10-batches-py``; fetch it with ``cnnlab download cifar10``. Items are
    ``(image (3, 32, 32) float in [0, 1], label int)`` unless ``transform`` says otherwise.
    """
    return _load_torchvision("cifar10", root, train, download, transform, timeout)


__all__ = ["ImageData", "make_shapes", "shift_images", "load_digits", "load_mnist",
           "load_fashion_mnist", "load_cifar10", "download_dataset"]
