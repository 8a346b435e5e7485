"""Tests for cnnlab.alexnet: loading with and without the ImageNet weights,
offline behaviour, AlexNet's layer table and its shapes on a 350x210 image. Nothing here uses the
network."""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab import alexnet as ax
from cnnlab.alexnet import (
    RandomWeightsWarning,
    download_alexnet,
    load_alexnet,
    weights_filename,
    weights_path,
)

ALEXNET_PARAMS = 61_100_840


def fake_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """An AlexNet state_dict with seeded random values, stored small.

    Each tensor is one random vector (its last axis) repeated by ``expand``; torch.save keeps
    only the vector, so the file is ~100 kB instead of 244 MB, yet every parameter gets
    distinct known values.
    """
    from torchvision.models import alexnet

    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):  # shapes only: no memory, no random init
        shapes = {k: v.shape for k, v in alexnet(weights=None).state_dict().items()}
    return {k: torch.randn(s[-1], generator=generator).expand(s) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def saved_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A fake ImageNet weights file inside a fresh TORCH_HOME."""
    torch_home = tmp_path_factory.mktemp("torch_home")
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    state = fake_state_dict()
    torch.save(state, folder / "alexnet-owt-7be5be79.pth")
    return torch_home, state


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def assert_state_equal(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=f"{key} differs")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """A random AlexNet (seed 0), shared by the tests that only read it."""
    return load_alexnet(None)


# ---------------------------------------------------------------- where the weights live

def test_weights_file_name_comes_from_the_enum_and_honours_torch_home(empty_torch_home):
    assert weights_filename() == "alexnet-owt-7be5be79.pth"
    assert weights_path() == empty_torch_home / "hub" / "checkpoints" / weights_filename()


# ---------------------------------------------------------------- no weights: random + warning

def test_auto_without_weights_is_random_warns_and_stays_offline(empty_torch_home, offline):
    with pytest.warns(RandomWeightsWarning, match="cnnlab download alexnet") as record:
        model = load_alexnet()
    assert offline == [], f"load_alexnet tried the network: {offline}"
    text = str(record[0].message)
    assert "RANDOM" in text and str(empty_torch_home) in text and weights_filename() in text
    assert model.cnnlab_weights == "random"
    assert not model.training, "load_alexnet should return the model in eval mode"
    assert not weights_path().exists()


def test_random_weights_are_seeded_and_leave_global_rng_alone(model):
    before = torch.random.get_rng_state()
    a, b, c = model, load_alexnet(None), load_alexnet(None, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before), "global RNG state changed"
    torch.testing.assert_close(a.features[0].weight, b.features[0].weight, rtol=0, atol=0)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


def test_none_gives_random_without_warning(empty_torch_home, offline):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_alexnet(weights=None)
    assert model.cnnlab_weights == "random"
    assert offline == []


# ---------------------------------------------------------------- weights in torch.hub's cache

@pytest.mark.parametrize("weights", ["auto", "imagenet"])
def test_cached_weights_are_loaded_offline(saved_state, monkeypatch, offline, weights):
    torch_home, state = saved_state
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_alexnet(weights)
    assert model.cnnlab_weights == "imagenet"
    assert_state_equal(model, state)
    assert offline == []
    assert not model.training


def test_imagenet_missing_offline_names_the_command(empty_torch_home, offline):
    with pytest.raises(OSError, match="cnnlab download alexnet") as info:
        load_alexnet("imagenet")
    assert str(empty_torch_home) in str(info.value)
    assert not weights_path().exists()


def test_unreadable_cache_file_keeps_torchs_error_and_adds_a_hint(empty_torch_home, offline):
    weights_path().parent.mkdir(parents=True)
    cases = [b"not a checkpoint", torch.zeros(3), torch.nn.Linear(2, 3).state_dict()]
    for content in cases:
        if isinstance(content, bytes):
            weights_path().write_bytes(content)
        else:
            torch.save(content, weights_path())
        with pytest.raises(Exception) as info:
            load_alexnet("auto")
        assert type(info.value).__module__ in ("builtins", "_pickle", "pickle")
        assert any("cnnlab download alexnet" in note for note in info.value.__notes__)
    assert offline == []


# ---------------------------------------------------------------- teaching errors

@pytest.mark.parametrize("bad, error, match", [
    (True, TypeError, "pretrained=True"),
    (1, TypeError, "weights='auto'"),
    (["imagenet"], TypeError, "weights='auto'"),
    ("IMAGENET", ValueError, "weights='imagenet'"),
    ("weights.pth", ValueError, "weights='imagenet'"),
])
def test_bad_weights_values(bad, error, match, empty_torch_home):
    with pytest.raises(error, match=match):
        load_alexnet(bad)


def test_weights_enum_gets_a_hint():
    from torchvision.models import AlexNet_Weights, ResNet18_Weights

    with pytest.raises(TypeError, match="weights='imagenet'"):
        load_alexnet(AlexNet_Weights.IMAGENET1K_V1)
    with pytest.raises(TypeError, match="weights='auto'"):
        load_alexnet(ResNet18_Weights.IMAGENET1K_V1)


# ---------------------------------------------------------------- download

def test_download_offline_fails_with_a_clear_message(empty_torch_home, offline):
    with pytest.raises(OSError, match="cannot reach download.pytorch.org") as info:
        download_alexnet()
    assert "online" in str(info.value) and weights_filename() in str(info.value)
    assert not weights_path().exists()


def test_download_is_a_no_op_when_the_file_exists(saved_state, monkeypatch, offline):
    torch_home, _ = saved_state
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    assert download_alexnet() == weights_path()
    assert offline == []


def test_download_goes_through_torch_hub_into_its_cache(empty_torch_home, monkeypatch):
    """After the probe, torch.hub downloads (with its hash check) into TORCH_HOME; the
    process-wide socket timeout is left alone."""
    seen: dict[str, object] = {}

    def fake_download(url, dst, hash_prefix=None, progress=True):
        seen["url"], seen["hash"], seen["dst"] = url, hash_prefix, dst
        seen["socket_timeout"] = socket.getdefaulttimeout()
        torch.save({}, dst)

    monkeypatch.setattr(ax, "reachable", lambda url, timeout: seen.setdefault("probe", url))
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    path = download_alexnet(timeout=3)
    assert path == weights_path() and path.is_file()
    assert seen["probe"] == seen["url"] and seen["url"].endswith(weights_filename())
    assert seen["hash"] == "7be5be79" and seen["dst"] == str(weights_path())
    assert seen["socket_timeout"] is None


def test_download_failure_keeps_its_type_and_gains_a_note(empty_torch_home, monkeypatch,
                                                         capsys):
    from cnnlab.downloads import main

    monkeypatch.setattr(ax, "reachable", lambda url, timeout: True)

    def broken(*args, **kwargs):
        raise RuntimeError("invalid hash value")

    monkeypatch.setattr(torch.hub, "download_url_to_file", broken)
    with pytest.raises(RuntimeError, match="invalid hash value") as caught:
        download_alexnet()
    assert any("cnnlab download alexnet" in note for note in caught.value.__notes__)
    assert not weights_path().exists()
    assert main(["alexnet"]) == 1  # the command reports it with the note, and goes on
    assert "FAILED: invalid hash value cnnlab: downloading" in capsys.readouterr().out


def test_cli_download_reports_failure(empty_torch_home, offline, capsys):
    from cnnlab.downloads import main

    assert main(["alexnet"]) == 1
    assert "alexnet: FAILED" in capsys.readouterr().out


# ---------------------------------------------------------------- architecture facts

def test_parameter_table_sums_to_61_100_840(model):
    import torchinfo  # the table lesson 07 prints

    summary = torchinfo.summary(model, verbose=0)
    assert summary.total_params == ALEXNET_PARAMS
    assert sum(p.numel() for p in model.parameters()) == ALEXNET_PARAMS
    assert cnnlab.count_params(model.features[0]) == (3 * 11 * 11 + 1) * 64 == 23_296
    assert cnnlab.count_params(model.classifier[1]) == (9216 + 1) * 4096
    assert cnnlab.count_params(model.features[2]) == 0  # max pooling


def test_shapes_on_a_350x210_image(model):
    x = torch.rand(1, 3, 350, 210, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert tuple(model.features[0](x).shape) == (1, 64, 86, 51)
        assert tuple(model.features(x).shape) == (1, 256, 9, 5)
        assert tuple(model(x).shape) == (1, 1000)
