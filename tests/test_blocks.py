"""cnnlab.blocks against PyTorch and torchinfo: formulas over random sizes, shapes, the residual
identity, gradient_norms against autograd, and the teaching errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchinfo
from hypothesis import given, settings
from hypothesis import strategies as st
from test_errors import assert_teaches
from torch import nn

import cnnlab
from cnnlab.blocks import (
    DepthwiseSeparable,
    PlainBlock,
    ResidualBlock,
    conv2d_mult_adds,
    deep_stack,
    gradient_norms,
    grouped_conv2d_params,
    vgg_block,
)
from cnnlab.shapes import conv2d_params, conv_output_size, count_params, receptive_field

SETTINGS = settings(max_examples=60, deadline=None)
kernels = st.integers(1, 5) | st.tuples(st.integers(1, 5), st.integers(1, 5))


@SETTINGS
@given(groups=st.integers(1, 4), per_in=st.integers(1, 6), per_out=st.integers(1, 6),
       kernel=kernels, bias=st.booleans())
def test_grouped_params_match_nn_conv2d(groups, per_in, per_out, kernel, bias):
    c_in, c_out = groups * per_in, groups * per_out
    with torch.device("meta"):  # counting needs no memory
        conv = nn.Conv2d(c_in, c_out, kernel, groups=groups, bias=bias)
    assert grouped_conv2d_params(c_in, c_out, kernel, groups, bias) == count_params(conv)
    # groups divides the weights: the same layer without groups has g times more
    if groups > 1:
        whole = conv2d_params(c_in, c_out, kernel, bias=False)
        assert grouped_conv2d_params(c_in, c_out, kernel, groups, bias=False) * groups == whole


@SETTINGS
@given(groups=st.integers(1, 3), per_in=st.integers(1, 4), per_out=st.integers(1, 4),
       kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2),
       size=st.tuples(st.integers(4, 12), st.integers(4, 12)), bias=st.booleans())
def test_mult_adds_match_torchinfo(groups, per_in, per_out, kernel, stride, padding, size, bias):
    c_in, c_out = groups * per_in, groups * per_out
    with torch.device("meta"):
        conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=bias)
    data = torch.empty(1, c_in, *size, device="meta")
    info = torchinfo.summary(conv, input_data=data, verbose=0)
    out = tuple(conv_output_size(n, kernel, stride, padding) for n in size)
    assert conv2d_mult_adds(c_in, c_out, kernel, out, groups, bias) == info.total_mult_adds
    assert conv(data).shape[-2:] == out


def test_formulas_match_alexnets_two_gpu_layer():
    conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
    assert grouped_conv2d_params(96, 256, 5, groups=2) == count_params(conv2)
    assert grouped_conv2d_params(96, 256, 5) == count_params(nn.Conv2d(96, 256, 5))
    assert conv2.weight.shape == (256, 48, 5, 5)
    assert conv2d_mult_adds(3, 8, 3, 32) == conv2d_mult_adds(3, 8, 3, (32, 32)) == 28 * 8 * 1024


@SETTINGS
@given(c_in=st.integers(1, 6), c_out=st.integers(1, 6), convs=st.integers(1, 3),
       h=st.integers(2, 9), w=st.integers(2, 9), batch_norm=st.booleans())
def test_vgg_block_shapes_params_and_field(c_in, c_out, convs, h, w, batch_norm):
    block = vgg_block(c_in, c_out, convs, batch_norm=batch_norm)
    out = block(torch.rand(2, c_in, h, w))
    assert out.shape == (2, c_out, h // 2, w // 2)
    convs_params = sum(conv2d_params(c_in if i == 0 else c_out, c_out, 3, bias=not batch_norm)
                       for i in range(convs))
    assert count_params(block) == convs_params + batch_norm * 2 * c_out * convs
    assert receptive_field(block) == 2 * convs + 2  # each 3x3 adds 2, the 2x2 pool 1
    assert sum(isinstance(m, nn.ReLU) for m in block) == convs
    assert isinstance(block[-1], nn.MaxPool2d)


@SETTINGS
@given(c_in=st.integers(1, 6), c_out=st.integers(1, 6), stride=st.integers(1, 3),
       h=st.integers(3, 11), w=st.integers(3, 11), batch_norm=st.booleans())
def test_residual_block_shapes_params_and_sum(c_in, c_out, stride, h, w, batch_norm):
    block = ResidualBlock(c_in, c_out, stride, batch_norm=batch_norm)
    x = torch.randn(3, c_in, h, w)
    y = block(x)
    expected = (3, c_out, conv_output_size(h, 3, stride, 1), conv_output_size(w, 3, stride, 1))
    assert y.shape == expected == nn.Conv2d(c_in, c_out, 3, stride, 1)(x).shape
    same_shape = c_in == c_out and stride == 1
    assert isinstance(block.shortcut, nn.Identity) == same_shape
    torch.testing.assert_close(y, torch.relu(block.shortcut(x) + block.branch(x)))
    if same_shape:  # y = relu(x + F(x))
        torch.testing.assert_close(y, torch.relu(x + block.branch(x)))
    bias = not batch_norm
    norm = 2 * c_out if batch_norm else 0
    by_formula = (conv2d_params(c_in, c_out, 3, bias) + conv2d_params(c_out, c_out, 3, bias)
                  + 2 * norm + (0 if same_shape else conv2d_params(c_in, c_out, 1, bias) + norm))
    assert count_params(block) == by_formula
    convs = [m for m in block.branch if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(stride, stride), (1, 1)]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_residual_block_is_identity_plus_its_branch(batch_norm):
    torch.manual_seed(0)
    block = ResidualBlock(5, batch_norm=batch_norm)
    with torch.no_grad():  # silence F: the last layer of the branch outputs zeros
        block.branch[-1].weight.zero_()
        block.branch[-1].bias.zero_()
    x = torch.randn(2, 5, 6, 6, requires_grad=True)
    y = block(x)
    assert torch.equal(y, torch.relu(x))
    # the gradient flows through the skip untouched: d sum(y) / dx = 1 where x > 0
    y.sum().backward()
    assert torch.equal(x.grad, (x > 0).to(x.dtype))


def test_plain_block_is_the_residual_block_without_the_skip():
    torch.manual_seed(3)
    plain = PlainBlock(4, batch_norm=False)
    torch.manual_seed(3)
    residual = ResidualBlock(4, batch_norm=False)
    assert plain.state_dict().keys() == residual.state_dict().keys()
    for a, b in zip(plain.state_dict().values(), residual.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(plain(x), torch.relu(residual.branch(x)))
    torch.testing.assert_close(residual(x), torch.relu(x + plain.branch(x)))


@SETTINGS
@given(c_in=st.integers(1, 6), c_out=st.integers(1, 6), kernel=st.sampled_from([1, 3, 5]),
       stride=st.integers(1, 3), h=st.integers(5, 10), w=st.integers(5, 10),
       bias=st.booleans())
def test_depthwise_separable_counts_shapes_and_values(c_in, c_out, kernel, stride, h, w, bias):
    layer = DepthwiseSeparable(c_in, c_out, kernel, stride, bias=bias)
    assert count_params(layer) == c_in * kernel * kernel + c_in * c_out + bias * c_out
    assert layer.depthwise.groups == c_in and layer.pointwise.kernel_size == (1, 1)
    x = torch.randn(2, c_in, h, w)
    y = layer(x)
    standard = nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2)
    assert y.shape == standard(x).shape
    # it is a standard convolution whose kernel factorises: W[o, c] = pointwise[o, c] * dw[c]
    dw = layer.depthwise.weight[:, 0]  # (C, k, k)
    pw = layer.pointwise.weight[:, :, 0, 0]  # (O, C)
    full = pw[:, :, None, None] * dw[None]
    torch.testing.assert_close(y, F.conv2d(x, full, layer.pointwise.bias, stride,
                                           padding=kernel // 2))
    data = torch.zeros(1, c_in, h, w)
    info = torchinfo.summary(layer, input_data=data, verbose=0)
    out = tuple(y.shape[-2:])
    assert info.total_mult_adds == (conv2d_mult_adds(c_in, c_in, kernel, out, c_in, bias=False)
                                    + conv2d_mult_adds(c_in, c_out, 1, out, bias=bias))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_deep_stack_twins_share_their_weights(batch_norm):
    torch.manual_seed(7)
    plain = deep_stack(6, 4, residual=False, batch_norm=batch_norm, in_channels=3,
                       num_classes=5)
    torch.manual_seed(7)
    residual = deep_stack(6, 4, residual=True, batch_norm=batch_norm, in_channels=3,
                          num_classes=5)
    assert plain.state_dict().keys() == residual.state_dict().keys()
    for a, b in zip(plain.state_dict().values(), residual.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    convs = [m for m in plain.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and all((c.bias is None) == batch_norm for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules()) == 7 * batch_norm
    assert [type(b) for b in residual[1:4]] == [ResidualBlock] * 3
    assert [type(b) for b in plain[1:4]] == [PlainBlock] * 3
    x = torch.randn(2, 3, 9, 7)
    assert plain(x).shape == residual(x).shape == (2, 5)
    assert not torch.allclose(plain(x), residual(x))


def test_gradient_norms_match_autograd():
    torch.manual_seed(1)
    model = deep_stack(4, 3, residual=True, batch_norm=True)
    images, labels = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = gradient_norms(model, images, labels)
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert list(norms) == [name for name, _ in convs]  # layer order, input to output
    assert all(m.weight.grad is None for _, m in convs)  # .grad left untouched
    assert model.training  # mode left as it was
    for key, value in model.state_dict().items():  # so are BatchNorm's running statistics
        assert torch.equal(value, before[key]), key
    F.cross_entropy(model(images), labels).backward()
    for name, m in convs:
        assert norms[name] == pytest.approx(float(m.weight.grad.norm()), rel=1e-6)
    model.eval()
    gradient_norms(model, images, labels)
    assert not model.training


def test_gradient_norms_take_float32_images_for_a_float64_model():
    torch.manual_seed(0)
    model = deep_stack(2, 6, residual=True).double()
    norms = gradient_norms(model, torch.rand(4, 1, 6, 6), torch.tensor([0, 1, 2, 3]))
    assert len(norms) == 3 and all(v > 0 for v in norms.values())


def test_the_lesson_calls_them_from_cnnlab():
    assert cnnlab.ResidualBlock is ResidualBlock and cnnlab.gradient_norms is gradient_norms
    assert cnnlab.grouped_conv2d_params is grouped_conv2d_params


# --- teaching errors ------------------------------------------------------------------------

ERRORS = {
    "channels not divisible by groups": (lambda: grouped_conv2d_params(10, 16, 3, groups=4),
                                         ValueError, ["divisible by groups=4", "in_channels=10",
                                                      "multiples"]),
    "out channels not divisible": (lambda: conv2d_mult_adds(8, 6, 3, 5, groups=4), ValueError,
                                   ["out_channels=6"]),
    "zero output size": (lambda: conv2d_mult_adds(3, 8, 3, 0), ValueError, ["output_size"]),
    "float channels": (lambda: vgg_block(3.0, 8), TypeError, ["Use the integer 3"]),
    "no convolutions": (lambda: vgg_block(3, 8, 0), ValueError, ["`num_convs` >= 1"]),
    "wrong channels": (lambda: ResidualBlock(16)(torch.randn(2, 3, 8, 8)), ValueError,
                       ["(N, 16, H, W)", "shape (2, 3, 8, 8)", "ResidualBlock(3, ...)"]),
    "image without batch axis": (lambda: DepthwiseSeparable(3, 8)(torch.randn(3, 8, 8)),
                                 ValueError, ["(N, 3, H, W)", "x[None]"]),
    "integer images": (lambda: PlainBlock(2)(torch.ones(1, 2, 4, 4, dtype=torch.int64)),
                       TypeError, ["float tensor", "torch.int64"]),
    "numpy input": (lambda: ResidualBlock(1)([[1.0]]), TypeError, ["float tensor", "list"]),
    "float32 into float64": (lambda: ResidualBlock(2).double()(torch.rand(1, 2, 4, 4)),
                             TypeError, ["torch.float64", "torch.float32", "x.to("]),
    "zero kernel": (lambda: DepthwiseSeparable(4, 8, kernel_size=0), ValueError,
                    ["`kernel_size` >= 1"]),
    "odd depth": (lambda: deep_stack(15, 8), ValueError, ["even", "depth=15", "depth=14"]),
    "class, not model": (lambda: gradient_norms(ResidualBlock, None, None), TypeError,
                         ["nn.Module instance"]),
    "no conv in model": (lambda: gradient_norms(nn.Linear(4, 2), torch.rand(2, 1, 2, 2),
                                                torch.tensor([0, 1])), ValueError,
                         ["at least one nn.Conv2d", "Linear"]),
    "flat images": (lambda: gradient_norms(deep_stack(2, 2), torch.rand(4, 64),
                                           torch.tensor([0, 1, 2, 3])), ValueError,
                    ["(N, C, H, W)", "(4, 64)"]),
    "labels of wrong length": (lambda: gradient_norms(deep_stack(2, 2), torch.rand(4, 1, 8, 8),
                                                      torch.tensor([0, 1])), ValueError,
                               ["(4,)", "One class number per image"]),
    "label out of range": (lambda: gradient_norms(deep_stack(2, 2, num_classes=3),
                                                  torch.rand(2, 1, 8, 8), torch.tensor([0, 5])),
                           ValueError, ["between 0 and 2"]),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_teaching_errors(case):
    assert_teaches(*ERRORS[case])
