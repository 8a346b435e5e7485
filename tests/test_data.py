"""Tests of cnnlab.data: generated shapes, digits, shifting, and the torchvision loaders.

The torchvision loaders run their real code on tiny files written here in torchvision's
layout; the network is replaced so that no test ever touches it.
"""

from __future__ import annotations

import pickle
import socket
import struct
import subprocess
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnlab import data
from cnnlab.data import (
    SHAPES,
    _stratified_split,
    download_dataset,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    make_shapes,
    shift_images,
)
from cnnlab.network import reachable

# ------------------------------------------------------------------ make_shapes


def test_make_shapes_shapes_dtypes_and_classes():
    train, test = make_shapes(40, 12, size=20, seed=3)
    assert train.images.shape == (40, 3, 20, 20) and test.images.shape == (12, 3, 20, 20)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert float(train.images.min()) >= 0.0 and float(train.images.max()) <= 1.0
    assert train.classes == SHAPES == ["circle", "square", "triangle", "cross"]
    assert torch.bincount(train.labels).tolist() == [10, 10, 10, 10]  # balanced
    image, label = train[0]
    assert image.shape == (3, 20, 20) and label.ndim == 0


def test_make_shapes_is_deterministic_for_a_seed_and_leaves_global_state_alone():
    state = torch.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking it is untouched)
    a_train, a_test = make_shapes(30, 10, seed=7)
    b_train, b_test = make_shapes(30, 10, seed=7)
    c_train, _ = make_shapes(30, 10, seed=8)
    torch.testing.assert_close(a_train.images, b_train.images)
    torch.testing.assert_close(a_test.labels, b_test.labels)
    assert not torch.equal(a_train.images, c_train.images)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(numpy_state, np.random.get_state()[1])  # noqa: NPY002


def test_make_shapes_regions_keep_shapes_in_their_half():
    train, test = make_shapes(60, 60, size=32, seed=0, noise=0.0,
                              train_region="left", test_region="right")
    # without noise every pixel is either the background or the shape colour
    for images, in_half in ((train.images, slice(0, 16)), (test.images, slice(16, 32))):
        corner = images[:, :, :1, :1] if in_half.start else images[:, :, :1, -1:]
        shape_pixels = (images - corner).abs().sum(dim=1) > 1e-6  # (N, H, W)
        outside = shape_pixels.clone()
        outside[..., in_half] = False
        assert not outside.any(), "a shape leaks out of its half of the image"
        assert shape_pixels.flatten(1).any(dim=1).all(), "an image has no shape"


def test_make_shapes_shapes_differ_by_class():
    train, _ = make_shapes(200, 4, size=32, seed=1, noise=0.0)
    corner = train.images[:, :, :1, :1]
    area = ((train.images - corner).abs().sum(dim=1) > 1e-6).flatten(1).sum(dim=1).float()
    means = [float(area[train.labels == k].mean()) for k in range(4)]
    # squares (1.6r)^2 = 2.56 r^2 are bigger than crosses (about 2.2 r^2) and triangles
    assert means[1] > means[3] and means[1] > means[2] and means[0] > means[2]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"n_train": 0}, ValueError, "n_train"),
        ({"n_train": 2.0}, TypeError, "integer 2"),
        ({"size": 4}, ValueError, "size"),
        ({"train_region": "middle"}, ValueError, "train_region"),
        ({"noise": -1}, ValueError, "noise"),
    ],
)
def test_make_shapes_bad_arguments(kwargs, error, words):
    args = {"n_train": 4, "n_test": 4} | kwargs
    with pytest.raises(error, match=words):
        make_shapes(**args)


# ------------------------------------------------------------------ shift_images


def test_shift_images_moves_pixels_and_fills_with_zeros():
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    right = shift_images(x, dx=1)
    torch.testing.assert_close(right[0, 0, :, 1:], x[0, 0, :, :3])
    assert right[0, 0, :, 0].eq(0).all()
    up_left = shift_images(x, dx=-2, dy=-1)
    torch.testing.assert_close(up_left[0, 0, :3, :2], x[0, 0, 1:, 2:])
    assert up_left[0, 0, 3].eq(0).all() and up_left[0, 0, :, 2:].eq(0).all()
    torch.testing.assert_close(shift_images(x), x)
    assert right.shape == x.shape


def test_shift_images_errors():
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="dx"):
        shift_images(x, dx=4)
    with pytest.raises(TypeError, match="whole number"):
        shift_images(x, dy=1.5)
    with pytest.raises(TypeError, match="tensor of images"):
        shift_images(np.zeros((4, 4)), dx=1)


# ------------------------------------------------------------------ load_digits


def test_load_digits_sizes_split_and_range():
    train, test = load_digits(size=16, seed=0, test_fraction=0.2)
    assert len(train) + len(test) == 1797
    assert test.images.shape == (360, 1, 16, 16) and train.images.dtype == torch.float32
    assert test.labels.dtype == torch.int64
    assert float(train.images.min()) >= 0 and float(train.images.max()) <= 1
    assert float(train.images.max()) > 0.9  # scaled, not left in 0..16 nor squashed
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: about 36 per digit
    assert train.classes == [str(d) for d in range(10)]


def test_load_digits_follows_the_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        train, test = load_digits(size=16, seed=0)
    finally:
        torch.set_default_dtype(previous)
    reference = load_digits(size=16, seed=0)[1].images
    assert train.images.dtype == test.images.dtype == torch.float64
    torch.testing.assert_close(test.images.float(), reference, atol=1e-6, rtol=0)


def test_load_digits_deterministic_and_seed_changes_split():
    a, _ = load_digits(size=8, seed=1)
    b, _ = load_digits(size=8, seed=1)
    c, _ = load_digits(size=8, seed=2)
    torch.testing.assert_close(a.images, b.images)
    assert not torch.equal(a.labels, c.labels)


def test_load_digits_size_8_is_the_original_data():
    from sklearn.datasets import load_digits as sk_digits

    train, test = load_digits(size=8)
    original = torch.tensor(sk_digits().images, dtype=torch.float32) / 16
    # every returned image is one of the originals (first one checked by search)
    first = train.images[0, 0]
    assert ((original - first).abs().flatten(1).max(dim=1).values < 1e-6).any()


def test_load_digits_is_scikit_learns_data_and_split():
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    digits = sk_digits()
    for seed, fraction in ((0, 0.2), (1, 0.2), (3, 0.1), (7, 0.35)):
        train, test = load_digits(size=8, seed=seed, test_fraction=fraction)
        train_idx, test_idx = train_test_split(np.arange(len(digits.target)),
                                               test_size=fraction, random_state=seed,
                                               stratify=digits.target)
        for split, index in ((train, train_idx), (test, test_idx)):
            assert torch.equal(split.images[:, 0], torch.tensor(digits.images[index],
                                                                dtype=torch.float32) / 16)
            assert split.labels.tolist() == digits.target[index].tolist()


@given(st.lists(st.integers(0, 4), min_size=12, max_size=60), st.integers(0, 2**31 - 1),
       st.sampled_from([0.2, 0.25, 0.4]))
@settings(max_examples=40, deadline=None)
def test_stratified_split_is_scikit_learns(labels, seed, fraction):
    from sklearn.model_selection import train_test_split

    labels = np.array(labels)
    counts = np.bincount(labels)
    n_test = int(np.ceil(fraction * len(labels)))
    n_classes = np.count_nonzero(counts)
    assume(counts[counts > 0].min() >= 2 and n_test >= n_classes
           and len(labels) - n_test >= n_classes)
    want = train_test_split(np.arange(len(labels)), test_size=fraction, random_state=seed,
                            stratify=labels)
    got = _stratified_split(labels, fraction, seed)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]


def test_load_digits_does_not_import_scikit_learn():
    code = ("import sys; from cnnlab import load_digits; load_digits(size=8)\n"
            "print('sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_load_digits_resize_keeps_the_picture():
    small, _ = load_digits(size=8, seed=0)
    big, _ = load_digits(size=28, seed=0)
    assert big.images.shape[-2:] == (28, 28)
    shrunk = torch.nn.functional.interpolate(big.images[:20], size=(8, 8), mode="area")
    assert torch.corrcoef(torch.stack([shrunk.flatten(), small.images[:20].flatten()]))[0, 1] > 0.9


def test_load_digits_bad_arguments():
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)
    with pytest.raises(ValueError, match="size"):
        load_digits(size=4)


# ------------------------------------------------------------------ torchvision loaders


def _write_idx(path, array: np.ndarray) -> None:
    """An uncompressed IDX file (the MNIST format): magic, big-endian sizes, uint8 data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist(root, folder: str, n_train: int = 6, n_test: int = 4):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28))
        labels = np.arange(n) % 10
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize(("loader", "folder"),
                         [(load_mnist, "MNIST"), (load_fashion_mnist, "FashionMNIST")])
def test_mnist_like_loaders_read_idx_files(tmp_path, loader, folder):
    arrays = _write_mnist(tmp_path, folder)
    train = loader(root=tmp_path, train=True, download=False)
    test = loader(root=tmp_path, train=False, download=False)
    assert len(train) == 6 and len(test) == 4
    image, label = test[3]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    np.testing.assert_allclose(image[0].numpy(), arrays["t10k"][0][3] / 255, atol=1e-6)
    assert label == 3


def test_mnist_root_defaults_to_data_dir(tmp_path, monkeypatch):
    _write_mnist(tmp_path, "MNIST")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    assert len(load_mnist(download=False)) == 6


def test_cifar10_loader_reads_pickled_batches(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [name for name, _ in cifar.CIFAR10.train_list + cifar.CIFAR10.test_list]
    batches = {}
    for i, name in enumerate(names):
        batch = {"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), "labels": [i, 9 - i]}
        batches[name] = batch
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [str(k) for k in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    # our tiny files cannot match CIFAR's published checksums: check existence only
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: (tmp_path / path).exists())
    train = load_cifar10(root=tmp_path, train=True, download=False)
    test = load_cifar10(root=tmp_path, train=False, download=False)
    assert len(train) == 10 and len(test) == 2
    image, label = test[1]
    assert image.shape == (3, 32, 32) and label == 4
    expected = batches["test_batch"]["data"][1].reshape(3, 32, 32) / 255
    np.testing.assert_allclose(image.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(("loader", "name"), [(load_mnist, "mnist"),
                                              (load_fashion_mnist, "fashion-mnist"),
                                              (load_cifar10, "cifar10")])
def test_missing_files_offline_fail_naming_the_command(tmp_path, offline, loader, name):
    with pytest.raises(RuntimeError, match=f"cnnlab download {name}"):
        loader(root=tmp_path)
    assert len(offline) == 1  # one probe, then the teaching error
    assert not (tmp_path / data.TORCHVISION_SETS[name][1]).exists()


def test_a_hanging_network_is_bounded_by_the_timeout(tmp_path, monkeypatch):
    """A server that answers only after the timeout counts as unreachable."""
    late = threading.Event()

    def connect_late(*args, **kwargs):
        late.wait(10)
        return SimpleNamespace(close=lambda: None)

    monkeypatch.setattr(socket, "create_connection", connect_late)
    with pytest.raises(RuntimeError, match="not reachable within 0.3 s"):
        load_mnist(root=tmp_path, timeout=0.3)
    late.set()


def test_reachable_when_the_server_answers(monkeypatch):
    seen = []

    def connect(address, timeout):
        seen.append((address, timeout))
        return SimpleNamespace(close=lambda: None)

    monkeypatch.setattr(socket, "create_connection", connect)
    assert reachable("https://example.org/data/", timeout=2)
    assert reachable("http://example.org:8080/", timeout=2)
    assert seen == [(("example.org", 443), 2), (("example.org", 8080), 2)]


def test_missing_files_without_download_say_what_to_run(tmp_path, offline):
    with pytest.raises(RuntimeError, match="cnnlab download fashion-mnist"):
        load_fashion_mnist(root=tmp_path, download=False)
    assert offline == [], "download=False must not touch the network"


def test_loader_train_flag_type():
    with pytest.raises(TypeError, match="train"):
        load_mnist(train="test", download=False)


def test_download_dataset_offline_and_bad_name(tmp_path, offline):
    with pytest.raises(ValueError, match="mnist"):
        download_dataset("imagenet", root=tmp_path)
    assert offline == []
    with pytest.raises(RuntimeError, match="cnnlab download cifar10"):
        download_dataset("cifar10", root=tmp_path)
    assert len(offline) == 1


def test_download_dataset_returns_the_folder_when_files_present(tmp_path, monkeypatch):
    _write_mnist(tmp_path, "MNIST")
    monkeypatch.setattr(data, "reachable", lambda url, timeout: True)
    assert download_dataset("mnist", root=tmp_path) == tmp_path / "MNIST"  # nothing to fetch


def test_failed_dataset_download_keeps_its_type_and_gains_a_note(tmp_path, monkeypatch):
    from urllib.error import URLError

    class Broken:
        def __init__(self, **kwargs):
            raise URLError("connection reset")

    monkeypatch.setattr(data, "reachable", lambda url, timeout: True)
    monkeypatch.setattr(data, "_torchvision_class", lambda name: Broken)
    with pytest.raises(URLError, match="connection reset") as caught:
        download_dataset("fashion-mnist", root=tmp_path)
    assert any("cnnlab download fashion-mnist" in note for note in caught.value.__notes__)
