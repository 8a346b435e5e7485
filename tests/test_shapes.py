"""cnnlab.shapes: each formula held against what real torch modules produce."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torchinfo import summary

import cnnlab


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3),
       d=st.integers(1, 3))
def test_conv_output_size_matches_conv2d(n, k, s, p, d):
    if d * (k - 1) + 1 > n + 2 * p:
        with pytest.raises(ValueError, match="larger|no larger"):
            cnnlab.conv_output_size(n, k, s, p, d)
        return
    layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    out = layer(torch.zeros(1, 1, n, 3 + 2 * d * k))
    assert cnnlab.conv_output_size(n, k, s, p, d) == out.shape[2]


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 30), k=st.integers(1, 6), s=st.integers(1, 4), data=st.data())
def test_pool_output_size_matches_maxpool(n, k, s, data):
    p = data.draw(st.integers(0, k // 2))
    if k > n + 2 * p:
        return
    out = nn.MaxPool2d(k, s, p)(torch.zeros(1, 1, n, n))
    assert cnnlab.pool_output_size(n, k, s, p) == out.shape[2]


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("d", [1, 2])
def test_same_and_valid_padding(k, d):
    for n in (k * d + 1, 17):
        out = nn.Conv2d(1, 1, k, padding="same", dilation=d)(torch.zeros(1, 1, n, n))
        assert cnnlab.conv_output_size(n, k, padding="same", dilation=d) == out.shape[2] == n
        assert cnnlab.conv_output_size(n, k, padding="valid", dilation=d) == n - d * (k - 1)


def test_asymmetric_padding_pair():
    assert cnnlab.conv_output_size(5, 3, padding=(0, 1)) == 4


@pytest.mark.parametrize(("n", "k", "s", "p", "expected"), [
    (4, 3, 1, 0, 2), (100, 51, 1, 0, 50), (100, 51, 1, 25, 100), (100, 25, 3, 0, 26),
    (5, 3, 2, 1, 3), (5, 3, 1, 0, 3),
])
def test_lesson_sizes(n, k, s, p, expected):
    assert cnnlab.conv_output_size(n, k, stride=s, padding=p) == expected


@pytest.mark.parametrize(("shape", "layer"), [
    ((32, 3, 128, 128), nn.Conv2d(3, 7, 5)),
    ((32, 3, 128, 128), nn.Conv2d(3, 7, 5, padding=2)),
    ((16, 3, 32, 32), nn.Conv2d(3, 1, 5)),
    ((16, 3, 32, 32), nn.Conv2d(3, 5, 5, padding=1)),
    ((10, 1, 28, 28), nn.Conv2d(1, 6, 3, padding=1)),
    ((3, 20, 17), nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
])
def test_conv_output_shape_matches_module(shape, layer):
    expected = tuple(layer(torch.zeros(shape)).shape)
    got = cnnlab.conv_output_shape(shape, layer.out_channels, layer.kernel_size, layer.stride,
                                   layer.padding, layer.dilation)
    assert got == expected


def test_lesson_predicted_shapes():
    assert cnnlab.conv_output_shape((32, 3, 128, 128), 7, 5) == (32, 7, 124, 124)
    assert cnnlab.conv_output_shape((32, 3, 128, 128), 7, 5, padding=2) == (32, 7, 128, 128)
    assert cnnlab.conv_output_shape((16, 3, 32, 32), 1, 5) == (16, 1, 28, 28)
    assert cnnlab.conv_output_shape((16, 3, 32, 32), 5, 5, padding=1) == (16, 5, 30, 30)


@settings(max_examples=60, deadline=None)
@given(c_in=st.integers(1, 8), c_out=st.integers(1, 8), kh=st.integers(1, 5),
       kw=st.integers(1, 5), bias=st.booleans())
def test_conv2d_params_matches_module(c_in, c_out, kh, kw, bias):
    layer = nn.Conv2d(c_in, c_out, (kh, kw), bias=bias)
    assert cnnlab.conv2d_params(c_in, c_out, (kh, kw), bias) == cnnlab.count_params(layer)
    assert layer.weight.shape == (c_out, c_in, kh, kw)


@settings(max_examples=60, deadline=None)
@given(i=st.integers(1, 300), o=st.integers(1, 50), bias=st.booleans())
def test_linear_params_matches_module(i, o, bias):
    assert cnnlab.linear_params(i, o, bias) == cnnlab.count_params(nn.Linear(i, o, bias=bias))


def test_lesson_counts():
    assert cnnlab.conv2d_params(1, 3, 3) == 30
    assert cnnlab.conv2d_params(3, 3, 3) == 84
    assert cnnlab.conv2d_params(3, 16, 3, bias=False) == 432 == 16 * 3 * 3 * 3
    assert cnnlab.linear_params(200 * 200, 500, bias=False) == 20_000_000
    assert cnnlab.linear_params(3 * 32 * 32, 100, bias=False) == 307_200
    assert cnnlab.linear_params(16, 4) + cnnlab.linear_params(4, 1) == 73
    assert 4 * cnnlab.linear_params(4, 1) + cnnlab.linear_params(4, 1) == 25


def test_torchinfo_totals_match_formulas():
    def model(pool: bool) -> nn.Sequential:
        extra = [nn.MaxPool2d(2)] if pool else []
        flat = 2 * 25 * 25 if pool else 2 * 100 * 100
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), *extra, nn.Conv2d(3, 2, 3, padding=1),
                             *extra, nn.Flatten(), nn.Linear(flat, 1))

    for pool, total in ((False, 20_087), (True, 1_337)):
        net = model(pool)
        info = summary(net, input_size=(1, 1, 100, 100), verbose=0)
        flat = (2 * 25 * 25) if pool else 20_000
        by_formula = (cnnlab.conv2d_params(1, 3, 3) + cnnlab.conv2d_params(3, 2, 3)
                      + cnnlab.linear_params(flat, 1))
        assert info.total_params == cnnlab.count_params(net) == by_formula == total


def test_count_params_trainable_only():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Linear(4, 2))
    net[0].requires_grad_(False)
    assert cnnlab.count_params(net) == 30 + 10
    assert cnnlab.count_params(net, trainable_only=True) == 10


def test_pooling_has_no_parameters():
    assert cnnlab.count_params(nn.MaxPool2d(2)) == 0


def empirical_receptive_field(net: nn.Module, size: int = 64) -> int:
    """Rows of the input that influence the centre output unit, found with a gradient.

    (Average pooling, not max: a max pool passes the gradient to one input per window only.)
    """
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = (x.grad[0, 0].abs().sum(dim=1) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("layers", [
    [nn.Conv2d(1, 1, 3)],
    [nn.Conv2d(1, 1, 3), nn.ReLU(), nn.Conv2d(1, 1, 3)],
    [nn.Conv2d(1, 1, 3), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3)],
    [nn.Conv2d(1, 1, 5, stride=2), nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3)],
    [nn.Conv2d(1, 1, 3, stride=2), nn.AvgPool2d(2), nn.Conv2d(1, 1, 2)],
])
def test_receptive_field_matches_gradient(layers):
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    assert cnnlab.receptive_field(net) == empirical_receptive_field(net)


def test_receptive_field_tuples_and_dicts():
    assert cnnlab.receptive_field([(3, 1), (3, 1)]) == 5
    assert cnnlab.receptive_field([(3, 1), (2, 2), (3, 1)]) == 8
    assert cnnlab.receptive_field([{"kernel_size": 3, "dilation": 2}]) == 5
    assert cnnlab.receptive_field([(3, 1, 2), (3, 1, 4)]) == 13
    assert cnnlab.receptive_field([]) == 1
    max_stack = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    assert cnnlab.receptive_field(max_stack) == 8
