"""Bad input gets a teaching message: what was expected, what came, and the likely fix."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cnnlab

PHOTO_HWC = np.random.default_rng(0).random((32, 48, 3))
RGB_FILTERS = np.ones((4, 3, 3, 3))

# (call, exception type, words the message must contain)
CASES = {
    "HWC photo as CHW": (lambda: cnnlab.conv2d(PHOTO_HWC, RGB_FILTERS), ValueError,
                         ["3 channel(s)", "HWC", "permute(2, 0, 1)"]),
    "NHWC batch as NCHW": (lambda: cnnlab.conv2d(PHOTO_HWC[None], RGB_FILTERS), ValueError,
                           ["NHWC", "permute(0, 3, 1, 2)"]),
    "channel mismatch": (lambda: cnnlab.conv2d(np.ones((2, 5, 8, 8)), RGB_FILTERS), ValueError,
                         ["3 channel(s)", "5 channel(s)", "as many input channels"]),
    "RGBA photo": (lambda: cnnlab.conv2d(np.ones((4, 8, 8)), RGB_FILTERS), ValueError,
                   ["RGBA", "alpha"]),
    "kernel larger than padded input": (lambda: cnnlab.conv2d(np.ones((4, 4)), np.ones((5, 5))),
                                        ValueError, ["no larger than the padded input (4x4)",
                                                     "5x5", "add padding"]),
    "zero stride": (lambda: cnnlab.conv2d(np.ones((5, 5)), np.ones((3, 3)), stride=0),
                    ValueError, ["`stride` >= 1", "got 0", "step between windows"]),
    "negative stride": (lambda: cnnlab.max_pool2d(np.ones((4, 4)), 2, stride=-2), ValueError,
                        ["`stride` >= 1", "got -2"]),
    "fractional stride": (lambda: cnnlab.conv2d(np.ones((5, 5)), np.ones((3, 3)), stride=1.5),
                          TypeError, ["integer", "1.5", "round"]),
    "float stride 2.0": (lambda: cnnlab.conv_output_size(10, 3, stride=2.0), TypeError,
                         ["Use the integer 2"]),
    "negative padding": (lambda: cnnlab.conv2d(np.ones((5, 5)), np.ones((3, 3)), padding=-1),
                         ValueError, ["`padding` >= 0", "cannot remove"]),
    "bias of wrong length": (lambda: cnnlab.conv2d(np.ones((3, 8, 8)), RGB_FILTERS,
                                                   bias=[1, 2]), ValueError,
                             ["bias", "(4,)", "shape (2,)", "one number per output channel"]),
    "1-D input": (lambda: cnnlab.conv2d([1, 2, 3, 4], [[1]]), ValueError,
                  ["rank 2, 3 or 4", "rank 1", "reshape"]),
    "5-D input": (lambda: cnnlab.avg_pool2d(np.ones((1, 1, 1, 4, 4)), 2), ValueError,
                  ["rank 5", "extra axis"]),
    "HW image with 4-D weight": (lambda: cnnlab.conv2d(np.ones((8, 8)), np.ones((2, 1, 3, 3))),
                                 ValueError, ["(C, H, W)", "x[None]"]),
    "3-D weight": (lambda: cnnlab.conv2d(np.ones((3, 8, 8)), np.ones((3, 3, 3))), ValueError,
                   ["(O, C, kH, kW)", "weight[None]"]),
    "text data": (lambda: cnnlab.conv2d("cat.png", np.ones((3, 3))), TypeError,
                  ["list of numbers", "str"]),
    "non-numeric array": (lambda: cnnlab.conv2d(np.array([["a", "b"], ["c", "d"]]), [[1]]),
                          TypeError, ["numbers in `x`", "<U1"]),
    "complex data": (lambda: cnnlab.conv2d(np.ones((4, 4)) * 1j, np.ones((2, 2))), TypeError,
                     ["real numbers", "complex", ".real"]),
    "ragged lists": (lambda: cnnlab.conv2d([[1, 2, 3], [4, 5]], [[1]]), TypeError,
                     ["rectangular", "same length"]),
    "None as input": (lambda: cnnlab.max_pool2d(None, 2), TypeError, ["None"]),
    "impossible output size": (lambda: cnnlab.conv_output_size(4, 7), ValueError,
                               ["no larger than the padded input (4)", "spanning 7",
                                "add padding"]),
    "dilated kernel too large": (lambda: cnnlab.conv_output_size(6, 3, dilation=3), ValueError,
                                 ["(dilated)", "spanning 7"]),
    "zero channels": (lambda: cnnlab.conv2d(np.ones((1, 0, 8, 8)), np.ones((2, 0, 3, 3))),
                      ValueError, ["at least one channel", "(1, 0, 8, 8)"]),
    "empty weight": (lambda: cnnlab.conv2d(np.ones((1, 8, 8)), np.ones((0, 1, 3, 3))),
                     ValueError, ["at least one filter"]),
    "count_params of a tensor": (lambda: cnnlab.count_params(torch.ones(3)), TypeError,
                                 ["torch.nn.Module", "Tensor", "conv2d_params"]),
    "count_params of a class": (lambda: cnnlab.count_params(nn.Conv2d), TypeError,
                                ["module instance", "Conv2d(...)"]),
    "misspelt padding": (lambda: cnnlab.conv2d(np.ones((5, 5)), np.ones((3, 3)), padding="sam"),
                         ValueError, ["'same' or 'valid'", "'sam'"]),
    "'same' with stride 2": (lambda: cnnlab.conv_output_size(9, 3, stride=2, padding="same"),
                             ValueError, ["stride=1", "stride=2"]),
    "pool padding over half the kernel": (lambda: cnnlab.max_pool2d(np.ones((6, 6)), 2,
                                                                    padding=2),
                                          ValueError, ["at most half the kernel"]),
    "pool window too large": (lambda: cnnlab.max_pool2d(np.ones((3, 3)), 4, padding=0),
                              ValueError, ["no larger than the padded input (3x3)"]),
    "shape without channel axis": (lambda: cnnlab.conv_output_shape((28, 28), 6, 3),
                                   ValueError, ["(C, H, W)", "(1, H, W)"]),
    "padding triple": (lambda: cnnlab.conv2d(np.ones((5, 5)), np.ones((3, 3)),
                                             padding=(1, 1, 1)),
                       ValueError, ["(h, w) pair", "length 3"]),
    "bad receptive-field layer": (lambda: cnnlab.receptive_field([3, 3]), TypeError,
                                  ["(kernel, stride", "(3, 1)"]),
    "zero in_channels": (lambda: cnnlab.conv2d_params(0, 3, 3), ValueError,
                         ["`in_channels` >= 1", "got 0"]),
}


def assert_teaches(call, error: type[Exception], words: list[str]) -> None:
    """``call()`` raises ``error`` with a teaching message: it says what was expected and what
    came, and holds every one of ``words`` (the other modules' tables use this check too)."""
    with pytest.raises(error) as info:
        call()
    text = str(info.value)
    assert "expected" in text and "got" in text, text
    missing = [word for word in words if word not in text]
    assert not missing, f"{missing} missing from: {text}"


@pytest.mark.parametrize("name", list(CASES))
def test_teaching_message(name):
    assert_teaches(*CASES[name])


# Whatever shapes and settings come in, a student sees a result or a teaching error:
# never an IndexError, a broadcasting error or a NumPy internal message.
@settings(max_examples=300, deadline=None)
@given(x_shape=st.lists(st.integers(0, 6), min_size=0, max_size=5),
       w_shape=st.lists(st.integers(0, 4), min_size=0, max_size=5),
       bias_len=st.one_of(st.none(), st.integers(0, 4)),
       stride=st.one_of(st.integers(-1, 3), st.tuples(st.integers(0, 2), st.integers(0, 2))),
       padding=st.one_of(st.integers(-1, 3), st.sampled_from(["same", "valid", "full"])),
       dilation=st.integers(0, 3))
def test_conv2d_never_leaks_internal_errors(x_shape, w_shape, bias_len, stride, padding,
                                            dilation):
    bias = None if bias_len is None else np.ones(bias_len)
    for conv in (cnnlab.conv2d, cnnlab.conv2d_loops):
        try:
            conv(np.ones(x_shape), np.ones(w_shape), bias, stride, padding, dilation)
        except (ValueError, TypeError) as error:
            assert "expected" in str(error), str(error)


@settings(max_examples=200, deadline=None)
@given(x_shape=st.lists(st.integers(0, 6), min_size=0, max_size=5),
       kernel=st.one_of(st.integers(-1, 7), st.tuples(st.integers(0, 4), st.integers(0, 4))),
       stride=st.one_of(st.none(), st.integers(-1, 3)), padding=st.integers(-1, 3))
def test_pooling_never_leaks_internal_errors(x_shape, kernel, stride, padding):
    for pool in (cnnlab.max_pool2d, cnnlab.avg_pool2d):
        try:
            pool(np.ones(x_shape), kernel, stride, padding)
        except (ValueError, TypeError) as error:
            assert "expected" in str(error), str(error)
