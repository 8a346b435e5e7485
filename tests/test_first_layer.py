"""The shipped first layer is learned (structured filters), is package data; errors are clear."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnlab import first_layer
from cnnlab.first_layer import (
    FirstLayerNet,
    colour_share,
    load_first_layer_net,
    load_first_layer_record,
    orientation_strength,
    roughness,
)


@pytest.fixture(scope="module")
def shipped() -> FirstLayerNet:
    return load_first_layer_net()


def test_first_layer_has_alexnets_geometry(shipped):
    conv = shipped.features[0]
    assert isinstance(conv, nn.Conv2d)
    assert (conv.in_channels, conv.out_channels) == (3, 64)
    assert (conv.kernel_size, conv.stride, conv.padding) == ((11, 11), (4, 4), (2, 2))
    with torch.no_grad():
        maps = conv(torch.zeros(1, 3, 350, 210))
        logits = shipped(torch.zeros(2, 3, 64, 64))
    assert maps.shape == (1, 64, 86, 51)
    assert logits.shape == (2, 4)
    assert not shipped.training


def test_roughness_measures_noise_against_smooth_patterns():
    generator = torch.Generator().manual_seed(0)
    noise = roughness(torch.randn(200, 3, 11, 11, generator=generator))
    torch.testing.assert_close(noise.median(), torch.tensor(1.0), atol=0.08, rtol=0)
    y, x = torch.meshgrid(torch.arange(11.0), torch.arange(11.0), indexing="ij")
    stripes = torch.cos(2 * torch.pi * (x * 0.6 + y * 0.8) / 8)  # an oriented stripe, period 8
    blob = torch.exp(-((x - 5) ** 2 + (y - 5) ** 2) / 8)
    smooth = torch.stack([stripes, blob])[:, None].expand(2, 3, 11, 11)
    assert (roughness(smooth) < 0.2).all()


def test_roughness_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\(O, C, kH, kW\)"):
        roughness(torch.zeros(3, 11, 11))


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.arange(11.0), torch.arange(11.0), indexing="ij")


def test_orientation_strength_separates_edges_from_blobs_and_noise():
    y, x = _grid()
    angles = torch.rand(20, generator=torch.Generator().manual_seed(3)) * torch.pi
    # straight stripes at random angles, the same in the three channels or opposite in two
    stripes = torch.stack([torch.cos(2 * torch.pi * (x * a.cos() + y * a.sin()) / 7)
                           for a in angles])
    gray = stripes[:, None].expand(20, 3, 11, 11)
    red_green = torch.stack([stripes, -stripes, torch.zeros_like(stripes)], dim=1)
    blob = torch.exp(-((x - 5) ** 2 + (y - 5) ** 2) / 8).expand(1, 3, 11, 11)
    noise = torch.randn(200, 3, 11, 11, generator=torch.Generator().manual_seed(4))
    assert (orientation_strength(gray) > 0.95).all()
    assert (orientation_strength(red_green) > 0.95).all()  # the sign of a gradient is no matter
    assert orientation_strength(blob).item() < 0.05
    assert orientation_strength(noise).max() < 0.4 and orientation_strength(noise).median() < 0.2
    # the measure is the structure tensor's coherence: check one filter against NumPy's eigh
    w = noise[0].double()
    gx = ((w[:, :, 1:] - w[:, :, :-1])[:, 1:] + (w[:, :, 1:] - w[:, :, :-1])[:, :-1]) / 2
    gy = ((w[:, 1:] - w[:, :-1])[:, :, 1:] + (w[:, 1:] - w[:, :-1])[:, :, :-1]) / 2
    tensor = torch.tensor([[(gx * gx).sum(), (gx * gy).sum()], [(gx * gy).sum(), (gy * gy).sum()]])
    low, high = torch.linalg.eigvalsh(tensor)
    assert orientation_strength(noise[:1]).item() == pytest.approx(
        ((high - low) / (high + low)).item(), rel=1e-5)


def test_colour_share_is_zero_for_brightness_and_one_for_opponent_colours():
    y, x = _grid()
    pattern = torch.cos(x / 2) + torch.sin(y / 3)
    same = pattern.expand(1, 3, 11, 11)
    opponent = torch.stack([pattern, -pattern, torch.zeros_like(pattern)])[None]
    one_channel = torch.stack([pattern, torch.zeros_like(pattern), torch.zeros_like(pattern)])
    noise = torch.randn(300, 3, 11, 11, generator=torch.Generator().manual_seed(5))
    assert colour_share(same).item() == pytest.approx(0.0, abs=1e-6)
    assert colour_share(opponent).item() == pytest.approx(1.0)
    assert colour_share(one_channel[None]).item() == pytest.approx(2 / 3)
    torch.testing.assert_close(colour_share(noise).mean(), torch.tensor(2 / 3), atol=0.02, rtol=0)
    # scale-free: a filter's share does not depend on its size
    torch.testing.assert_close(colour_share(noise[:5] * 40), colour_share(noise[:5]))


def test_filter_measures_reject_a_wrong_shape():
    for measure in (orientation_strength, colour_share):
        with pytest.raises(ValueError, match=measure.__name__):
            measure(torch.zeros(3, 11, 11))
        with pytest.raises(ValueError, match="kH, kW >= 2"):
            measure(torch.zeros(4, 3, 1, 1))


def test_shipped_filters_are_mostly_oriented_and_random_ones_are_not(shipped):
    learned = shipped.features[0].weight
    random = FirstLayerNet().features[0].weight
    smooth = roughness(learned) < 0.5
    assert smooth.all(), "every shipped filter should be smooth"
    assert (orientation_strength(learned) > 0.5).sum() >= 16, "expected many oriented edges"
    assert (roughness(random) < 0.5).sum() == 0 and (orientation_strength(random) > 0.5).sum() == 0


def test_shipped_filters_are_structured_and_random_ones_are_not(shipped):
    learned = roughness(shipped.features[0].weight).median().item()
    random = [roughness(FirstLayerNet().features[0].weight).median().item()
              for _ in range(3)]
    assert min(random) > 0.9, f"random init should look like noise, got {random}"
    assert learned < 0.5, f"shipped filters should be smooth, median roughness {learned:.2f}"
    assert learned < 0.5 * min(random)


def test_record_describes_the_shipped_weights(shipped):
    folder = first_layer.weights_dir()
    weights = folder / first_layer.WEIGHTS_FILE
    record = json.loads((folder / first_layer.RECORD_FILE).read_text())
    for key in ("data", "seed", "epochs", "train_seconds", "held_out_rotation_accuracy",
                "threads"):
        assert key in record, f"the record lacks {key!r}"
    assert record["weights_bytes"] == weights.stat().st_size < 1_000_000
    assert len(record["data"]) >= 2
    assert 0.25 < record["held_out_rotation_accuracy"] <= 1.0  # better than chance
    recomputed = roughness(shipped.features[0].weight).median().item()
    assert recomputed == pytest.approx(record["first_layer_roughness_median"], abs=0.01)


def test_record_loader_reads_the_shipped_record_and_explains_a_missing_one(monkeypatch, tmp_path):
    folder = first_layer.weights_dir()
    assert load_first_layer_record() == json.loads((folder / first_layer.RECORD_FILE).read_text())
    record = load_first_layer_record()
    assert record["images_per_step"] == 4 * record["crops_per_step"]  # each crop turned 4 ways
    assert set(record["data"]) == set(first_layer.training_photos())
    monkeypatch.setattr(first_layer, "weights_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m cnnlab.first_layer"):
        load_first_layer_record()


def test_crops_and_rotations_are_seeded_and_labelled():
    photos = [torch.rand(3, 120, 150, generator=torch.Generator().manual_seed(1)),
              torch.rand(3, 200, 100, generator=torch.Generator().manual_seed(2))]
    a = first_layer.random_crops(photos, 5, torch.Generator().manual_seed(0))
    b = first_layer.random_crops(photos, 5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)
    assert a.shape == (5, 3, first_layer.CROP, first_layer.CROP)
    turned, labels = first_layer.rotations(a)
    assert turned.shape == (20, *a.shape[1:])
    assert labels.tolist() == [k for k in range(4) for _ in range(5)]
    torch.testing.assert_close(turned[5:10], torch.rot90(a, 1, dims=(2, 3)))


def test_training_saves_weights_that_the_loader_reads(tmp_path):
    net, record = first_layer.train_first_layer(epochs=1, steps_per_epoch=1, batch=2, log=False)
    path = first_layer.save(net, record, tmp_path)
    again = load_first_layer_net(path)
    torch.testing.assert_close(again.features[0].weight, net.features[0].weight.half().float())
    saved = json.loads((tmp_path / first_layer.RECORD_FILE).read_text())
    assert saved["epochs"] == 1 and saved["weights_bytes"] == path.stat().st_size


def test_loader_explains_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m cnnlab.first_layer"):
        load_first_layer_net(tmp_path / "nothing.pt")


def test_loader_rejects_a_wrong_argument_type():
    with pytest.raises(TypeError, match="path"):
        load_first_layer_net(3)


def test_loader_rejects_a_file_that_is_not_a_state_dict(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="torch.load cannot read"):
        load_first_layer_net(garbage)
    a_list = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], a_list)
    with pytest.raises(ValueError, match="state_dict"):
        load_first_layer_net(a_list)


def test_loader_rejects_another_models_weights(tmp_path):
    other = tmp_path / "other.pt"
    torch.save(nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(ValueError, match="FirstLayerNet"):
        load_first_layer_net(other)
