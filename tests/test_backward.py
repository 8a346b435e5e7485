"""cnnlab.backward against torch.autograd and against numerical gradients (hypothesis).

Every property runs both ladder rungs, the loop version and the vectorised one, so they are
also checked against each other. Float64 throughout, so the tolerances can be tight.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import cnnlab
from cnnlab.backward import (
    avg_pool2d_backward,
    avg_pool2d_backward_loops,
    conv2d_backward,
    conv2d_backward_loops,
    max_pool2d_backward,
    max_pool2d_backward_loops,
)

EXAMPLE_X = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
EXAMPLE_K = [[0, 1, 2], [2, 2, 0], [0, 1, 2]]
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
POOLS = {"max": (F.max_pool2d, cnnlab.max_pool2d, max_pool2d_backward, max_pool2d_backward_loops),
         "avg": (F.avg_pool2d, cnnlab.avg_pool2d, avg_pool2d_backward, avg_pool2d_backward_loops)}


# --- random problems --------------------------------------------------------------------------

@st.composite
def conv_problems(draw):
    """(x, weight, bias, dout, kwargs): any rank conv2d accepts, any valid geometry."""
    rank = draw(st.sampled_from([2, 3, 4]))
    n = draw(st.integers(1, 2)) if rank == 4 else 1
    c, o = (1, 1) if rank == 2 else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    kind = draw(st.sampled_from(["int", "pair", "same", "valid"] if stride == (1, 1)
                                else ["int", "pair", "valid"]))
    padding = {"int": draw(st.integers(0, 2)), "pair": (draw(st.integers(0, 2)),
                                                         draw(st.integers(0, 2))),
               "same": "same", "valid": "valid"}[kind]
    ph, pw = ((0, 0) if isinstance(padding, str) else
              (padding, padding) if isinstance(padding, int) else padding)
    spans = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = max(1, spans[0] - 2 * ph) + draw(st.integers(0, 4))
    w = max(1, spans[1] - 2 * pw) + draw(st.integers(0, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(((n, c, h, w), (c, h, w), (h, w))[4 - rank])
    weight = rng.standard_normal((o, c, kh, kw) if rank > 2 else (kh, kw))
    bias = rng.standard_normal(o)
    out = cnnlab.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation}
    return x, weight, bias, rng.standard_normal(out.shape), kwargs


@st.composite
def pool_problems(draw, ties: bool = False):
    """(x, dout, kwargs) for pooling; ``ties`` draws small integers so maxima repeat."""
    rank = draw(st.sampled_from([2, 3, 4]))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h = max(1, kh - 2 * padding[0]) + draw(st.integers(0, 4))
    w = max(1, kw - 2 * padding[1]) + draw(st.integers(0, 4))
    lead = ((draw(st.integers(1, 2)), draw(st.integers(1, 3))), (draw(st.integers(1, 3)),),
            ())[4 - rank]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (*lead, h, w)
    x = rng.integers(-1, 2, shape).astype(float) if ties else rng.standard_normal(shape)
    kwargs = {"kernel_size": (kh, kw), "stride": stride, "padding": padding}
    out = cnnlab.max_pool2d(x, **kwargs)
    return x, rng.standard_normal(out.shape), kwargs


def _batched(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a.reshape((1,) * (4 - a.ndim) + a.shape), requires_grad=True)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): 0 when equal, 1 when unrelated (0 if both are zero)."""
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numerical_gradient(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of a (in place)."""
    grad = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        saved = a[index]
        a[index] = saved + eps
        up = f()
        a[index] = saved - eps
        down = f()
        a[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


# --- against torch.autograd -------------------------------------------------------------------

@SETTINGS
@given(conv_problems())
def test_conv2d_backward_matches_autograd(problem):
    x, weight, bias, dout, kw = problem
    xt, wt = _batched(x), torch.tensor(weight.reshape((1,) * (4 - weight.ndim) + weight.shape),
                                       requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    out = F.conv2d(xt, wt, bt, **kw)
    out.backward(torch.tensor(dout).reshape(out.shape))
    for backward in (conv2d_backward, conv2d_backward_loops):
        dx, dweight, dbias = backward(dout, x, weight, **kw)
        assert dx.shape == x.shape and dweight.shape == weight.shape and dbias.shape == bias.shape
        assert_allclose(dx, xt.grad.reshape(x.shape).numpy(), rtol=1e-9, atol=1e-10)
        assert_allclose(dweight, wt.grad.reshape(weight.shape).numpy(), rtol=1e-9, atol=1e-10)
        assert_allclose(dbias, bt.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["max", "avg"])
@SETTINGS
@given(problem=pool_problems(ties=False), tie_problem=pool_problems(ties=True))
def test_pool_backward_matches_autograd(mode, problem, tie_problem):
    torch_pool, _, fast, loops = POOLS[mode]
    for x, dout, kw in (problem, tie_problem):  # the second has ties in most windows
        xt = _batched(x)
        out = torch_pool(xt, **kw)
        out.backward(torch.tensor(dout).reshape(out.shape))
        expected = xt.grad.reshape(x.shape).numpy()
        for backward in (fast, loops):
            dx = backward(dout, x, **kw)
            assert dx.shape == x.shape
            assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)


# --- against numerical gradients --------------------------------------------------------------

@SETTINGS
@given(conv_problems())
def test_conv2d_backward_passes_numerical_check(problem):
    x, weight, bias, dout, kw = problem

    def loss():  # the scalar whose gradient dout describes: sum(out * dout)
        return float(np.sum(cnnlab.conv2d(x, weight, bias, **kw) * dout))

    dx, dweight, dbias = conv2d_backward(dout, x, weight, **kw)
    assert relative_error(dx, numerical_gradient(loss, x)) < 1e-6
    assert relative_error(dweight, numerical_gradient(loss, weight)) < 1e-6
    assert relative_error(dbias, numerical_gradient(loss, bias)) < 1e-6


@pytest.mark.parametrize("mode", ["max", "avg"])
@SETTINGS
@given(problem=pool_problems())
def test_pool_backward_passes_numerical_check(mode, problem):
    x, dout, kw = problem  # continuous random x: no ties, so max pooling is differentiable
    _, forward, backward, _ = POOLS[mode]
    numerical = numerical_gradient(lambda: float(np.sum(forward(x, **kw) * dout)), x)
    assert relative_error(backward(dout, x, **kw), numerical) < 1e-6


def test_numerical_check_catches_a_wrong_backward():
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal((2, 7, 7)), rng.standard_normal((3, 2, 3, 3))
    dout = rng.standard_normal((3, 3, 3))
    numerical = numerical_gradient(
        lambda: float(np.sum(cnnlab.conv2d(x, weight, stride=2) * dout)), x)
    assert relative_error(conv2d_backward(dout, x, weight, stride=2)[0], numerical) < 1e-8
    flipped = weight[:, :, ::-1, ::-1].copy()  # a classic bug: flipping the kernel
    assert relative_error(conv2d_backward(dout, x, flipped, stride=2)[0], numerical) > 0.1


# --- worked examples --------------------------------------------------------------------------

@pytest.mark.parametrize("backward", [conv2d_backward, conv2d_backward_loops])
def test_example_ones_gradient_counts_window_hits(backward):
    """With dout all ones, dW[i, j] sums the inputs under kernel entry (i, j), db = 9."""
    dx, dweight, dbias = backward(np.ones((3, 3)), EXAMPLE_X, EXAMPLE_K)
    x = np.asarray(EXAMPLE_X, dtype=float)
    assert_array_equal(dweight, [[x[i:i + 3, j:j + 3].sum() for j in range(3)] for i in range(3)])
    assert_array_equal(dbias, [9.0])
    assert_array_equal(dx, cnnlab.conv2d(np.pad(np.ones((3, 3)), 2), np.rot90(EXAMPLE_K, 2)))


@pytest.mark.parametrize("backward", [max_pool2d_backward, max_pool2d_backward_loops])
def test_max_pool_tie_goes_to_first_max_like_torch(backward):
    x = np.array([[1.0, 5.0, 5.0], [5.0, 2.0, 5.0], [0.0, 5.0, 1.0]])
    xt = torch.tensor(x[None, None], requires_grad=True)
    F.max_pool2d(xt, 2, stride=1).sum().backward()
    dx = backward(np.ones((2, 2)), x, 2, stride=1)
    assert_array_equal(dx, xt.grad[0, 0].numpy())
    assert_array_equal(dx, [[0, 2, 0], [1, 0, 1], [0, 0, 0]])  # overlapping windows add up


@pytest.mark.parametrize("backward", [avg_pool2d_backward, avg_pool2d_backward_loops])
def test_avg_pool_counts_padding_zeros(backward):
    dx = backward(np.ones((2, 2)), np.ones((3, 3)), 3, stride=2, padding=1)
    assert_allclose(dx, np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 9)


def test_dtypes_follow_the_forward_pass():
    x, w = np.ones((1, 5, 5), np.float32), np.ones((2, 1, 3, 3), np.float32)
    dx, dweight, dbias = conv2d_backward(np.ones((2, 3, 3), np.float32), x, w)
    assert dx.dtype == dweight.dtype == dbias.dtype == np.float32
    assert conv2d_backward(np.ones((3, 3)), EXAMPLE_X, EXAMPLE_K)[0].dtype == np.float64
    assert max_pool2d_backward(np.ones((2, 2)), np.arange(16).reshape(4, 4), 2).dtype.kind == "f"


def test_accepts_tensors_that_require_grad():
    x = torch.ones(1, 2, 4, 4, requires_grad=True)
    w = torch.ones(1, 2, 3, 3, requires_grad=True)
    dx, dweight, _ = conv2d_backward(torch.ones(1, 1, 2, 2), x, w)
    assert isinstance(dx, np.ndarray) and dx.shape == (1, 2, 4, 4) and dweight.shape == (1, 2, 3, 3)


# --- teaching errors ----------------------------------------------------------------------------

def test_wrong_dout_shape_names_expected_and_got():
    with pytest.raises(ValueError, match=r"expected `dout` of shape \(1, 2, 3, 3\).*got shape "
                                         r"\(1, 2, 4, 4\).*stride, padding"):
        conv2d_backward(np.ones((1, 2, 4, 4)), np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"\(2, 2\).*got shape \(4, 4\).*shape of x"):
        max_pool2d_backward(np.ones((4, 4)), np.ones((4, 4)), 2)
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*got shape \(18,\).*reshape"):
        avg_pool2d_backward(np.ones(18), np.ones((2, 6, 6)), 2)


def test_hwc_input_gets_the_layout_hint():
    with pytest.raises(ValueError, match="HWC"):
        conv2d_backward(np.ones((4, 3, 3)), np.ones((5, 5, 3)), np.ones((4, 3, 3, 3)))


@pytest.mark.parametrize("call", [
    lambda: conv2d_backward("dout", np.ones((5, 5)), np.ones((3, 3))),
    lambda: conv2d_backward(np.ones((3, 3)), np.ones((5, 5)) * 1j, np.ones((3, 3))),
    lambda: max_pool2d_backward(np.ones((2, 2)), np.ones((4, 4)), 2.0),
    lambda: avg_pool2d_backward(None, np.ones((4, 4)), 2),
])
def test_wrong_types_are_type_errors_with_a_hint(call):
    with pytest.raises(TypeError, match=r"expected .*got .*\. \w"):
        call()


@pytest.mark.parametrize("call", [
    lambda: conv2d_backward(np.ones(3), np.ones(5), np.ones(3)),
    lambda: conv2d_backward(np.ones((1, 1, 1, 3, 3)), np.ones((1, 1, 1, 5, 5)),
                            np.ones((1, 1, 3, 3))),
    lambda: conv2d_backward(np.ones((3, 3)), np.ones((5, 5)), np.ones((1, 1, 3, 3))),
    lambda: max_pool2d_backward(np.ones(2), np.ones(4), 2),
    lambda: conv2d_backward(np.ones((3, 3)), np.ones((5, 5)), np.ones((3, 3)), stride=0),
])
def test_wrong_ranks_and_values_are_value_errors_with_a_hint(call):
    with pytest.raises(ValueError, match=r"expected .*got .*\. \w"):
        call()
