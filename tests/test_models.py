"""Tests of cnnlab.models: parameter counts (by formula and the lessons' numbers), shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.models import ConvBNNet, ConvStack, SmallClassicNet, conv_block, conv_blocks_cnn, mlp
from cnnlab.shapes import conv2d_params, conv_output_size, count_params, linear_params


def _out(model: nn.Module, shape: tuple[int, ...]) -> torch.Size:
    model.eval()
    with torch.no_grad():
        return model(torch.rand(shape)).shape


def test_conv_blocks_cnn_matches_the_lessons():
    model = conv_blocks_cnn()
    by_formula = (conv2d_params(1, 3, 3) + 4 * conv2d_params(3, 3, 3)
                  + linear_params(3 * 128 * 128, 1))
    assert count_params(model) == by_formula == 49_519
    linear = [m for m in model if isinstance(m, nn.Linear)]
    assert [lin.in_features for lin in linear] == [49_152]
    assert sum(isinstance(m, nn.Conv2d) for m in model) == 5
    assert _out(model, (2, 1, 128, 128)) == (2, 1)


def test_conv_blocks_cnn_keeps_the_image_size_through_the_blocks():
    model = conv_blocks_cnn()
    x = torch.rand(1, 1, 128, 128)
    for layer in model:
        if isinstance(layer, nn.Flatten):
            break
        x = layer(x)
        assert x.shape[-2:] == (128, 128)
    assert x.shape == (1, 3, 128, 128)


def test_mlp_matches_the_lessons():
    sizes = [16384, 256, 128, 64, 32, 16, 1]
    model = mlp(sizes)
    by_formula = sum(linear_params(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    assert count_params(model) == by_formula == 4_238_337
    assert _out(model, (3, 1, 128, 128)) == (3, 1)
    assert isinstance(model[-1], nn.Linear)  # logits: no activation at the end
    assert sum(isinstance(m, nn.ReLU) for m in model) == 5


def test_mlp_dropout_and_errors():
    assert sum(isinstance(m, nn.Dropout) for m in mlp([8, 4, 4, 2], dropout=0.5)) == 2
    with pytest.raises(TypeError, match="two layer widths"):
        mlp([10])
    with pytest.raises(TypeError, match="two layer widths"):
        mlp(10)
    with pytest.raises(ValueError, match="sizes\\[1\\]"):
        mlp([10, 0, 2])
    with pytest.raises(ValueError, match="dropout"):
        mlp([10, 2], dropout=1.0)


def test_small_classic_net_shapes_and_count():
    model = SmallClassicNet()
    x = torch.rand(4, 3, 32, 32)
    sizes = []
    for layer in model.features:
        x = layer(x)
        if isinstance(layer, nn.MaxPool2d):
            sizes.append(tuple(x.shape[1:]))
    assert sizes == [(5, 14, 14), (10, 5, 5)]
    assert [5 * 14 * 14, 10 * 5 * 5] == [980, 250]
    assert model.features[0](torch.rand(1, 3, 32, 32)).shape == (1, 5, 28, 28)
    # predicted by formula: 32 -> 28 -> 14 -> 10 -> 5
    n = conv_output_size(32, 5)
    n = conv_output_size(conv_output_size(n, 2, 2), 5)
    assert conv_output_size(n, 2, 2) == 5
    expected = (conv2d_params(3, 5, 5) + conv2d_params(5, 10, 5) + linear_params(250, 32)
                + linear_params(32, 1))
    assert count_params(model) == expected == 9_705
    assert _out(model, (4, 3, 32, 32)) == (4, 1)


def test_conv_stack_shapes_and_count():
    model = ConvStack(num_classes=7)
    assert model.features(torch.rand(2, 3, 64, 64)).shape == (2, 24, 16, 16)
    assert _out(model, (2, 3, 64, 64)) == (2, 7)
    expected = (conv2d_params(3, 12, 3) + conv2d_params(12, 24, 3)
                + linear_params(24 * 16 * 16, 256) + linear_params(256, 128)
                + linear_params(128, 7))
    assert count_params(model) == expected
    widths = [m.out_features for m in model.classifier if isinstance(m, nn.Linear)]
    assert widths == [256, 128, 7]


def test_conv_bn_net_shapes_and_count():
    model = ConvBNNet()
    model.eval()
    x = torch.rand(2, 1, 28, 28)
    sizes = []
    for layer in model.features:
        x = layer(x)
        sizes.append(x.shape[-1])
    assert 14 in sizes and 7 in sizes and sizes[-1] == 5
    assert x.shape == (2, 20, 5, 5)
    kernels = [m.kernel_size for m in model.features if isinstance(m, nn.Conv2d)]
    assert kernels[-2:] == [(1, 1), (1, 1)]  # the channel-shrinking 1x1 convolutions
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.features) == len(kernels)
    assert model.pool(x).shape == (2, 20, 1, 1)
    head = model.classifier[-1]
    assert (head.in_features, head.out_features) == (20, 10)
    assert _out(model, (2, 1, 28, 28)) == (2, 10)
    convs = [(1, 16, 3), (16, 32, 3), (32, 32, 3), (32, 32, 3), (32, 24, 1), (24, 20, 1)]
    expected = (sum(conv2d_params(i, o, k, bias=False) + 2 * o for i, o, k in convs)
                + linear_params(20, 10))
    assert count_params(model) == expected
    assert count_params(model, trainable_only=True) == expected  # BN running stats are buffers


def test_conv_block_follows_the_recipe():
    block = conv_block(3, 8, batch_norm=True, pool=True, dropout=0.25)
    kinds = [type(m) for m in block]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d, nn.MaxPool2d, nn.Dropout]
    block.eval()
    assert block(torch.rand(2, 3, 10, 10)).shape == (2, 8, 5, 5)
    assert conv_block(3, 8, 5)(torch.rand(1, 3, 9, 9)).shape == (1, 8, 9, 9)  # same size
    with pytest.raises(ValueError, match="dropout"):
        conv_block(3, 8, dropout=2)
    with pytest.raises(TypeError, match="in_channels"):
        conv_block(3.0, 8)


def test_bad_class_counts():
    with pytest.raises(ValueError, match="num_classes"):
        ConvStack(num_classes=0)
    with pytest.raises(TypeError, match="num_classes"):
        ConvBNNet(num_classes="10")
