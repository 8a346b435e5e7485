"""Saliency, occlusion, class activation maps, top patches and random shifts, checked against
autograd, plain loops and the definitions, on random models and images.

Lesson 10 uses these functions, and a graded lab will ask students to compute a saliency map:
``saliency`` must equal autograd's input gradient of the eval-mode model, value for value.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_errors import assert_teaches
from torch import nn

import cnnlab
from cnnlab.attribution import TopPatches

# the autouse fixture sets float64 once per test; the examples do not depend on it being fresh
FAST = settings(max_examples=20, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _float64():
    """float64, one thread (tiny networks) and fixed seeds inside each test; torch's settings
    restored afterwards."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def random_cnn(seed: int, channels: int = 1, classes: int = 10, head: str = "avg",
               dropout: bool = False) -> nn.Sequential:
    """A small conv-BN-ReLU net with trained-looking (random, non-trivial) BatchNorm statistics."""
    generator = torch.Generator().manual_seed(seed)
    widths = [4 + int(torch.randint(0, 4, (), generator=generator)) for _ in range(2)]
    layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1),
                               nn.BatchNorm2d(widths[0]), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(widths[0], widths[1], 3, padding=1),
                               nn.BatchNorm2d(widths[1]), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout2d(0.5))
    if head == "avg":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[1], classes)]
    elif head == "max":
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[1], classes)]
    else:
        layers += [nn.Flatten(), nn.Linear(widths[1] * 4 * 4, classes)]  # for 8x8 images
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for module in model.modules():
            for parameter in module.parameters(recurse=False):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(torch.rand(module.num_features, generator=generator)
                                         + 0.5)
    return model


def images_for(seed: int, n: int = 3, channels: int = 1, size: tuple[int, int] = (8, 8)):
    return torch.rand(n, channels, *size, generator=torch.Generator().manual_seed(seed))


# --- saliency ---------------------------------------------------------------------------------

def test_saliency_is_exactly_the_documented_autograd_recipe():
    model = random_cnn(0, channels=3)
    image = images_for(1, n=1, channels=3)
    x = image.clone().requires_grad_(True)
    model.eval()(x)[0, 4].backward()
    expected = x.grad.abs().amax(dim=1)
    assert torch.equal(cnnlab.saliency(model, image, 4), expected)


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), channels=st.sampled_from([1, 3]),
       dropout=st.booleans())
def test_saliency_equals_autograd_per_image(seed, n, channels, dropout):
    model = random_cnn(seed, channels=channels, dropout=dropout).train()
    images = images_for(seed + 1, n=n, channels=channels, size=(6, 10))
    targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))
    got = cnnlab.saliency(model, images, targets)
    assert got.shape == (n, 6, 10) and bool((got >= 0).all())
    model.eval()
    for i in range(n):
        x = images[i:i + 1].clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(x)[0, targets[i]], x)
        torch.testing.assert_close(got[i], gradient[0].abs().amax(dim=0), rtol=1e-12,
                                   atol=1e-14)


def test_saliency_of_a_linear_model_is_its_weights():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 4, 5))
    weight = model[1].weight.detach().reshape(5, 2, 3, 4)
    for seed in range(3):
        got = cnnlab.saliency(model, images_for(seed, n=2, channels=2, size=(3, 4)), 3)
        torch.testing.assert_close(got, weight[3].abs().amax(dim=0).expand(2, 3, 4))


def test_saliency_leaves_modes_and_parameter_gradients_alone():
    model = random_cnn(3, dropout=True).train()
    model[1].eval()  # a mix of modes must come back as it was
    modes = [m.training for m in model.modules()]
    with torch.no_grad():  # also works when the caller disabled gradients
        cnnlab.saliency(model, images_for(0), 2)
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())


def test_saliency_converts_images_to_the_model_dtype_and_accepts_one_target_per_image():
    model = random_cnn(4)
    images = images_for(5).float()
    got = cnnlab.saliency(model, images, [1, 2, 3])
    assert got.dtype == torch.float64
    torch.testing.assert_close(got[1], cnnlab.saliency(model, images[1:2].double(), 2)[0])


# --- occlusion --------------------------------------------------------------------------------

@settings(FAST, max_examples=10)
@given(seed=st.integers(0, 10_000), patch=st.integers(1, 4), stride=st.integers(1, 3),
       fill=st.sampled_from([0.0, 0.5, -1.0]), channels=st.sampled_from([1, 3]))
def test_occlusion_equals_a_loop_of_forward_passes(seed, patch, stride, fill, channels):
    model = random_cnn(seed, channels=channels).train()
    image = images_for(seed, n=1, channels=channels, size=(6, 7))[0]
    target = seed % 10
    got = cnnlab.occlusion(model, image, target, patch=patch, stride=stride, fill=fill)
    rows = cnnlab.conv_output_size(6, patch, stride)
    cols = cnnlab.conv_output_size(7, patch, stride)
    assert got.shape == (rows, cols)
    assert model.training, "the caller's mode is restored"
    model.eval()
    expected = torch.zeros(rows, cols)
    with torch.no_grad():
        base = model(image[None])[0, target]
        for i in range(rows):  # one forward pass per position, as the definition reads
            for j in range(cols):
                covered = image.clone()
                covered[:, i * stride:i * stride + patch, j * stride:j * stride + patch] = fill
                expected[i, j] = base - model(covered[None])[0, target]
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10)


def test_occlusion_takes_one_image_with_or_without_its_batch_axis():
    model = random_cnn(7)
    image = images_for(8, n=1)
    torch.testing.assert_close(cnnlab.occlusion(model, image, 1, patch=(2, 3), stride=(1, 2)),
                               cnnlab.occlusion(model, image[0], 1, patch=(2, 3), stride=(1, 2)))


def test_occlusion_of_an_already_black_patch_is_zero():
    model = random_cnn(9)
    image = images_for(10, n=1)
    image[..., :4, :4] = 0.0
    got = cnnlab.occlusion(model, image, 0, patch=4, stride=4, fill=0.0)
    assert abs(float(got[0, 0])) < 1e-12 and float(got.abs().max()) > 1e-6


# --- class activation maps --------------------------------------------------------------------

@FAST
@given(seed=st.integers(0, 10_000), size=st.sampled_from([(8, 8), (10, 14), (16, 16)]))
def test_cam_is_the_weighted_sum_of_the_last_maps_and_explains_the_logit(seed, size):
    model = random_cnn(seed).train()
    image = images_for(seed, n=1, size=size)
    target = seed % 10
    cam = cnnlab.class_activation_map(model, image, target, upsample=False)
    assert model.training
    model.eval()
    with torch.no_grad():
        maps = model[:7](image)[0]  # the last ReLU's output (C, h, w)
        logit = model(image)[0, target]
    linear = model[-1]
    torch.testing.assert_close(cam, (linear.weight[target][:, None, None] * maps).sum(dim=0))
    h, w = maps.shape[1:]
    assert cam.shape == (h, w) == (size[0] // 2, size[1] // 2)
    torch.testing.assert_close(cam.sum() / (h * w) + linear.bias[target], logit)
    upsampled = cnnlab.class_activation_map(model, image[0], target)
    assert upsampled.shape == size
    expected = nn.functional.interpolate(cam[None, None], size=size, mode="bilinear",
                                         align_corners=False)[0, 0]
    torch.testing.assert_close(upsampled, expected)


def test_cam_opens_nested_sequentials_as_in_conv_bn_net():
    model = cnnlab.ConvBNNet().double().eval()
    image = torch.rand(1, 1, 28, 28)
    cam = cnnlab.class_activation_map(model, image, 6, upsample=False)
    with torch.no_grad():
        logit = model(image)[0, 6]
    assert cam.shape == (5, 5)
    torch.testing.assert_close(cam.mean() + model.classifier[1].bias[6], logit)


# --- top patches ------------------------------------------------------------------------------

def geometry_net(seed: int) -> nn.Sequential:
    """Strides, paddings, a dilation and a non-square kernel: every rule of the field."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1)), nn.ReLU(),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.Conv2d(4, 5, 3, padding="same"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))


@FAST
@given(seed=st.integers(0, 10_000), layer_index=st.sampled_from([2, 5, 6, 8]),
       k=st.integers(1, 6))
def test_top_patches_are_the_strongest_units_and_their_receptive_fields(seed, layer_index, k):
    model = geometry_net(seed).eval()
    layer = model[layer_index]
    images = torch.rand(4, 2, 12, 11, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        acts = model[:layer_index + 1](images)
    channel = seed % acts.shape[1]
    found = cnnlab.top_patches(model, layer, images, channel, k=k)
    assert isinstance(found, TopPatches)
    # the k highest activations, strongest first, each read back at its unit
    expected = acts[:, channel].reshape(-1).sort(descending=True).values[:k]
    torch.testing.assert_close(found.values, expected)
    for value, n, (y, x) in zip(found.values, found.index, found.positions, strict=True):
        assert acts[n, channel, y, x] == value
    # each patch is the input under the unit's receptive field (zeros past the border)
    field = [cnnlab.receptive_field([(k_[a], s_[a], d_[a]) for k_, s_, d_ in _geometry(
        model[:layer_index + 1])]) for a in (0, 1)]
    assert found.patches.shape == (k, 2, *field)
    padded = nn.functional.pad(images, (20, 20, 20, 20))
    for patch, n, r, c in zip(found.patches, found.index, found.rows, found.cols, strict=True):
        assert torch.equal(patch, padded[n, :, r + 20:r + 20 + field[0], c + 20:c + 20 + field[1]])
    # nothing outside the field reaches the unit: change every other pixel, the value stays
    n, (y, x) = int(found.index[0]), found.positions[0].tolist()
    r, c = int(found.rows[0]), int(found.cols[0])
    noise = torch.rand(1, 2, 12, 11, generator=torch.Generator().manual_seed(seed + 1)) * 5
    inside = torch.zeros(12, 11, dtype=torch.bool)
    inside[max(r, 0):r + field[0], max(c, 0):c + field[1]] = True
    changed = torch.where(inside, images[n:n + 1], noise)
    with torch.no_grad():
        again = model[:layer_index + 1](changed)[0, channel, y, x]
    torch.testing.assert_close(again, found.values[0])


def _geometry(layers: nn.Sequential) -> list[tuple]:
    """(kernel, stride, dilation) pairs of the conv and pool layers, for receptive_field."""
    out = []
    for m in layers:
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            out.append(tuple(v if isinstance(v, tuple) else (v, v)
                             for v in (m.kernel_size, m.stride, getattr(m, "dilation", 1))))
    return out


def test_top_patches_break_ties_by_image_then_position():
    model = geometry_net(0).eval()
    found = cnnlab.top_patches(model, model[2], torch.zeros(3, 2, 6, 6), 0, k=4)
    assert found.index.tolist() == [0, 0, 0, 0]
    assert found.positions.tolist() == [[0, 0], [0, 1], [0, 2], [0, 3]]


# --- random shifts ----------------------------------------------------------------------------

def _offset(original: torch.Tensor, shifted: torch.Tensor, dx_range, dy_range):
    """The (dx, dy) in the ranges that turns original into shifted (None if there is none)."""
    for dx in range(dx_range[0], dx_range[1] + 1):
        for dy in range(dy_range[0], dy_range[1] + 1):
            if torch.equal(cnnlab.shift_images(original, dx=dx, dy=dy), shifted):
                return dx, dy
    return None


def test_random_shift_is_seeded_and_shifts_each_image_within_its_range():
    images = torch.rand(20, 2, 9, 12, generator=torch.Generator().manual_seed(0)) + 0.1
    first = cnnlab.random_shift(images, dx=(0, 5), dy=2, seed=3)
    assert torch.equal(first, cnnlab.random_shift(images, dx=(0, 5), dy=2, seed=3))
    assert not torch.equal(first, cnnlab.random_shift(images, dx=(0, 5), dy=2, seed=4))
    offsets = [_offset(images[i], first[i], (0, 5), (-2, 2)) for i in range(20)]
    assert None not in offsets
    assert len(set(offsets)) > 5, "shifts differ from image to image"


def test_random_shift_dataset_keeps_labels_and_repeats_with_a_fresh_copy():
    train, _ = cnnlab.load_digits(size=8, seed=0)
    first = cnnlab.RandomShift(train, dx=(0, 3), dy=1, seed=0)
    second = cnnlab.RandomShift(train, dx=(0, 3), dy=1, seed=0)
    draws = [first[i % 5] for i in range(15)]  # each item drawn three times
    for (image, label), i in zip(draws, [i % 5 for i in range(15)], strict=True):
        assert int(label) == int(train.labels[i])
        assert _offset(train.images[i], image, (0, 3), (-1, 1)) is not None
        again = second[i]
        assert torch.equal(again[0], image) and int(again[1]) == int(label)
    assert len(first) == len(train)
    pairs = cnnlab.RandomShift((train.images[:4], train.labels[:4]), dx=1)
    assert len(pairs) == 4 and int(pairs[2][1]) == int(train.labels[2])


def test_training_with_random_shift_is_repeatable():
    train, _ = cnnlab.load_digits(size=8, seed=0)
    subset = (train.images[:64], train.labels[:64])
    histories = []
    for _ in range(2):
        torch.manual_seed(0)
        model = cnnlab.mlp([64, 8, 10])
        histories.append(cnnlab.fit(model, cnnlab.RandomShift(subset, dx=2, dy=2, seed=1),
                                    epochs=2, progress=False))
    assert histories[0] == histories[1]


# --- teaching errors --------------------------------------------------------------------------

MODEL = random_cnn(0)
FLATTEN = random_cnn(0, head="flatten")
IMAGES = images_for(0)


class _Doubled(nn.Module):
    """Lists its layers like a GAP model but doubles the pooled features in forward."""

    def __init__(self):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(1, 3, 3), nn.AdaptiveAvgPool2d(1)
        self.flat, self.fc = nn.Flatten(), nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(2 * self.flat(self.pool(self.conv(x))))


ERRORS = {
    "saliency of a 3-D image": (lambda: cnnlab.saliency(MODEL, IMAGES[0], 1), ValueError,
                                ["(N, C, H, W)", "rank 3", "[None]"]),
    "target out of range": (lambda: cnnlab.saliency(MODEL, IMAGES, 10), ValueError,
                            ["0 to 9", "10 outputs", "class 10"]),
    "negative target": (lambda: cnnlab.occlusion(MODEL, IMAGES[0], -1), ValueError,
                        ["0 to 9", "class -1"]),
    "float target": (lambda: cnnlab.saliency(MODEL, IMAGES, 2.0), TypeError,
                     ["class number", "float"]),
    "bool target": (lambda: cnnlab.saliency(MODEL, IMAGES, True), TypeError, ["class number"]),
    "float labels as targets": (lambda: cnnlab.saliency(MODEL, IMAGES, torch.ones(3)), TypeError,
                                ["class numbers (ints)"]),
    "wrong number of targets": (lambda: cnnlab.saliency(MODEL, IMAGES, [1, 2]), ValueError,
                                ["one per image (3)", "2 targets", "labels[:n]"]),
    "model class, not instance": (lambda: cnnlab.saliency(nn.Sequential, IMAGES, 1), TypeError,
                                  ["torch.nn.Module", "saliency(model, images, 3)"]),
    "integer images": (lambda: cnnlab.saliency(MODEL, torch.ones(2, 1, 8, 8, dtype=torch.uint8),
                                               1), TypeError, ["floating-point", "/ 255"]),
    "list as images": (lambda: cnnlab.saliency(MODEL, [[0.0]], 1), TypeError,
                       ["tensor of shape (N, C, H, W)", "list"]),
    "model without logits": (lambda: cnnlab.saliency(nn.Conv2d(1, 2, 3), IMAGES, 0), ValueError,
                             ["(N, classes)", "(3, 2, 6, 6)", "nn.Linear"]),
    "occlusion of a batch": (lambda: cnnlab.occlusion(MODEL, IMAGES, 1), ValueError,
                             ["one image", "(3, 1, 8, 8)", "images[0]"]),
    "patch larger than the image": (lambda: cnnlab.occlusion(MODEL, IMAGES[0], 1, patch=9),
                                    ValueError, ["fits in the 8x8 image", "patch 9x9"]),
    "zero stride": (lambda: cnnlab.occlusion(MODEL, IMAGES[0], 1, stride=0), ValueError,
                    ["`stride` >= 1"]),
    "fill as text": (lambda: cnnlab.occlusion(MODEL, IMAGES[0], 1, fill="grey"), TypeError,
                     ["`fill` as one number", "fill=0.0"]),
    "CAM with a Flatten head": (lambda: cnnlab.class_activation_map(FLATTEN, IMAGES[0], 1),
                                ValueError, ["global-average-pooling", "ReLU -> Flatten -> "
                                             "Linear", "lesson 09"]),
    "CAM with global max pooling": (
        lambda: cnnlab.class_activation_map(random_cnn(0, head="max"), IMAGES[0], 1),
        ValueError, ["AdaptiveAvgPool2d(1)", "AdaptiveMaxPool2d -> Flatten -> Linear"]),
    "CAM when forward differs from the listed layers": (
        lambda: cnnlab.class_activation_map(_Doubled(), IMAGES[0], 1), ValueError,
        ["applies its layers in the order", "nn.Sequential"]),
    "CAM of a 5-D input": (lambda: cnnlab.class_activation_map(MODEL, IMAGES[None], 1),
                           ValueError, ["(N, C, H, W)", "rank 5"]),
    "top patches of a layer from another model": (
        lambda: cnnlab.top_patches(MODEL, nn.ReLU(), IMAGES, 0), ValueError,
        ["one of the model's layers", "not a layer of the model", "model[6]"]),
    "top patches with a layer index": (lambda: cnnlab.top_patches(MODEL, 6, IMAGES, 0),
                                       TypeError, ["module of the model", "not its index"]),
    "top patches past the head": (lambda: cnnlab.top_patches(MODEL, MODEL[-1], IMAGES, 0),
                                  ValueError, ["before `layer`", "AdaptiveAvgPool2d",
                                               "before the head"]),
    "channel out of range": (lambda: cnnlab.top_patches(MODEL, MODEL[2], IMAGES, 99),
                             ValueError, ["`channel` from 0 to", "99"]),
    "channel as float": (lambda: cnnlab.top_patches(MODEL, MODEL[2], IMAGES, 1.0), TypeError,
                         ["channel number (int)"]),
    "too many patches": (lambda: cnnlab.top_patches(MODEL, MODEL[2], IMAGES, 0, k=1000),
                         ValueError, ["at most 192", "3 images x 8x8 positions"]),
    "top patches of a 3-D image": (lambda: cnnlab.top_patches(MODEL, MODEL[2], IMAGES[0], 0),
                                   ValueError, ["(N, C, H, W)", "unsqueeze(0)"]),
    "random shift of one image": (lambda: cnnlab.random_shift(IMAGES[0], dx=1), ValueError,
                                  ["(N, C, H, W)", "images[None]"]),
    "shift range too large": (lambda: cnnlab.random_shift(IMAGES, dx=(0, 8)), ValueError,
                              ["smaller than the image (8 pixels)", "0..8"]),
    "shift range reversed": (lambda: cnnlab.random_shift(IMAGES, dy=(3, 1)), ValueError,
                             ["low <= high", "(3, 1)"]),
    "shift range of three": (lambda: cnnlab.RandomShift((IMAGES, torch.zeros(3)), dx=(0, 1, 2)),
                             ValueError, ["(low, high) pair"]),
    "negative seed": (lambda: cnnlab.random_shift(IMAGES, dx=1, seed=-1), ValueError,
                      ["`seed` >= 0"]),
    "shift of a plain list": (lambda: cnnlab.RandomShift([1, 2, 3]), TypeError,
                              ["items (image (C, H, W), label)", "got 1 (int)"]),
    "shift of nothing": (lambda: cnnlab.RandomShift(42), TypeError,
                         ["Dataset of (image, label) pairs", "RandomShift(train"]),
    "shift of an empty dataset": (
        lambda: cnnlab.RandomShift((torch.zeros(0, 1, 4, 4), torch.zeros(0))), ValueError,
        ["at least one", "empty"]),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_teaching_errors(case):
    assert_teaches(*ERRORS[case])
