"""cnnlab.ops against torch.nn.functional: lesson examples exactly, random cases by hypothesis."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import cnnlab

CONVS = [cnnlab.conv2d, cnnlab.conv2d_loops]


@pytest.mark.parametrize("conv", CONVS)
def test_lesson_example_exact(conv, example):
    assert_array_equal(conv(example.x, example.k), example.out)


@pytest.mark.parametrize("conv", CONVS)
def test_example_first_value_is_sum_of_products(conv, example):
    first = (3 * 0 + 3 * 1 + 2 * 2) + (0 * 2 + 0 * 2 + 1 * 0) + (3 * 0 + 1 * 1 + 2 * 2)
    assert first == 12 == conv(example.x, example.k)[0, 0]


@pytest.mark.parametrize("conv", CONVS)
def test_example_padding_1_stride_2_matches_torch(conv, example):
    x = torch.tensor(example.x, dtype=torch.float64)[None, None]
    k = torch.tensor(example.k, dtype=torch.float64)[None, None]
    expected = F.conv2d(x, k, padding=1, stride=2)[0, 0].numpy()
    assert expected.shape == (3, 3)
    assert_array_equal(conv(example.x, example.k, padding=1, stride=2), expected)


@pytest.mark.parametrize("conv", CONVS)
def test_bias_is_added_to_every_position(conv, example):
    out = conv(example.x, example.k, bias=1.5)
    assert_allclose(out, np.asarray(example.out) + 1.5)


@pytest.mark.parametrize("conv", CONVS)
def test_kernel_is_not_flipped(conv):
    x = np.arange(9.0).reshape(3, 3)
    kernel = np.zeros((3, 3))
    kernel[0, 0] = 1  # cross-correlation picks the top-left input value, convolution would not
    assert conv(x, kernel)[0, 0] == x[0, 0]


def test_max_pool_lesson_examples():
    assert_array_equal(cnnlab.max_pool2d([[3, 0, 5, 2], [1, 2, 7, 5], [4, 3, 2, 1],
                                          [3, 1, 0, 4]], 2), [[3, 7], [4, 4]])
    assert_array_equal(cnnlab.max_pool2d([[1, 3, 2, 9], [7, 4, 1, 5], [8, 5, 2, 3],
                                          [4, 2, 1, 4]], 2), [[7, 9], [8, 4]])


def test_avg_pool_lesson_example():
    x = [[1, 3, 2, 9], [7, 4, 1, 5], [8, 5, 2, 3], [4, 2, 1, 4]]
    assert_allclose(cnnlab.avg_pool2d(x, 2), [[15 / 4, 17 / 4], [19 / 4, 10 / 4]])


@pytest.mark.parametrize(("x_shape", "w_shape", "out_shape"), [
    ((6, 7), (3, 3), (4, 5)),
    ((3, 6, 7), (5, 3, 3, 3), (5, 4, 5)),
    ((2, 3, 6, 7), (5, 3, 3, 3), (2, 5, 4, 5)),
])
@pytest.mark.parametrize("conv", CONVS)
def test_result_has_rank_of_input(conv, x_shape, w_shape, out_shape):
    assert conv(np.ones(x_shape), np.ones(w_shape)).shape == out_shape
    assert cnnlab.max_pool2d(np.ones(x_shape), 2).shape == x_shape[:-2] + (3, 3)


def test_accepts_tensors_and_keeps_float32():
    x = torch.rand(1, 3, 8, 8)
    w = torch.rand(4, 3, 3, 3)
    out = cnnlab.conv2d(x, w, torch.rand(4))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert cnnlab.conv2d_loops(x.tolist(), w.numpy()).dtype == np.float64


# --- random cases against torch ----------------------------------------------------------

@st.composite
def conv_cases(draw, max_size=9, max_batch=3, max_channels=3):
    n = draw(st.integers(1, max_batch))
    c_in = draw(st.integers(1, max_channels))
    c_out = draw(st.integers(1, max_channels))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    if draw(st.booleans()) and (sh, sw) == (1, 1):
        padding = draw(st.sampled_from(["same", "valid"]))
        pad_hw = (dh * (kh - 1), dw * (kw - 1)) if padding == "same" else (0, 0)
    else:
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        padding = draw(st.sampled_from([(ph, pw), ph])) if ph == pw else (ph, pw)
        pad_hw = (2 * ph, 2 * pw)
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pad_hw[0]), max_size))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pad_hw[1]), max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w)).astype(np.float32)
    weight = rng.standard_normal((c_out, c_in, kh, kw)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32) if draw(st.booleans()) else None
    return x, weight, bias, (sh, sw), padding, (dh, dw)


def torch_conv(x, weight, bias, stride, padding, dilation):
    bias_t = None if bias is None else torch.from_numpy(bias)
    return F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), bias_t, stride, padding,
                    dilation).numpy()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize(("conv", "sizes"), [(cnnlab.conv2d, (12, 4, 4)),
                                             (cnnlab.conv2d_loops, (7, 2, 2))])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_conv_matches_torch(conv, sizes, data):
    max_size, max_batch, max_channels = sizes
    case = data.draw(conv_cases(max_size, max_batch, max_channels))
    expected = torch_conv(*case)
    got = conv(*case)
    assert got.shape == expected.shape
    assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 10))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 10))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(shape)
    return x.astype(np.float32), (kh, kw), stride, padding


@pytest.mark.parametrize(("ours", "theirs", "tolerance"), [
    (cnnlab.max_pool2d, F.max_pool2d, {"rtol": 1e-6}),
    (cnnlab.avg_pool2d, F.avg_pool2d, {"rtol": 1e-5, "atol": 1e-6}),
])
@settings(max_examples=200, deadline=None)
@given(case=pool_cases())
def test_pool2d_matches_torch(ours, theirs, tolerance, case):
    x, kernel, stride, padding = case
    expected = theirs(torch.from_numpy(x), kernel, stride, padding).numpy()
    assert_allclose(ours(x, kernel, stride, padding), expected, **tolerance)


def test_pooling_agrees_with_the_torch_modules():
    x = torch.rand(2, 3, 8, 8)
    assert_allclose(cnnlab.max_pool2d(x, 2), torch.nn.MaxPool2d(2)(x).numpy())
    assert_allclose(cnnlab.avg_pool2d(x, 2), torch.nn.AvgPool2d(2)(x).numpy(), rtol=1e-6)


SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


@pytest.mark.parametrize(("name", "expected"), [
    ("vertical edge", SOBEL_X),
    ("horizontal edge", np.transpose(SOBEL_X)),
    ("outline", [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    ("blur", np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16),
    ("identity", [[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
])
def test_named_kernels_are_the_textbook_ones_at_size_3(name, expected):
    kernel = cnnlab.named_kernel(name)
    assert kernel.shape == (3, 3) and kernel.dtype == np.float64
    assert_array_equal(kernel, expected)


@pytest.mark.parametrize("size", [1, 2, 5, 6, 15])
def test_named_kernels_at_other_sizes_keep_their_meaning(size):
    flat = np.full((size + 6, size + 6), 0.7)
    step = np.tile(np.r_[np.zeros(size + 3), np.ones(3)], (size + 6, 1))  # a vertical edge
    assert_allclose(cnnlab.conv2d(flat, cnnlab.named_kernel("blur", size)), 0.7)
    assert_allclose(cnnlab.conv2d(flat, cnnlab.named_kernel("outline", size)), 0, atol=1e-12)
    picked = cnnlab.conv2d(step, cnnlab.named_kernel("identity", size))  # the centre pixel
    c = size // 2
    assert_array_equal(picked, step[c:c + picked.shape[0], c:c + picked.shape[1]])
    if size > 1:
        vertical = cnnlab.conv2d(step, cnnlab.named_kernel("vertical edge", size))
        horizontal = cnnlab.conv2d(step, cnnlab.named_kernel("horizontal edge", size))
        assert vertical.max() > 0 and np.abs(horizontal).max() == 0
    outline = cnnlab.named_kernel("outline", size)
    assert outline[size // 2, size // 2] == size * size - 1


def test_named_kernel_errors_list_the_choices_and_sizes():
    with pytest.raises(ValueError, match="'blur', 'identity'.*got 'sharpen'"):
        cnnlab.named_kernel("sharpen")
    with pytest.raises(ValueError, match=r"`size` >= 1.*got 0"):
        cnnlab.named_kernel("blur", 0)
    with pytest.raises(TypeError, match="Use the integer 3"):
        cnnlab.named_kernel("blur", 3.0)
    with pytest.raises(TypeError, match="integer"):
        cnnlab.named_kernel("blur", "3")
