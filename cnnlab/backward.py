"""Backward passes of conv2d, max_pool2d and avg_pool2d, from scratch in NumPy.

Each function takes ``dout``, the gradient of the loss with respect to the layer's output (the
output's shape), plus the forward pass's inputs and arguments, and returns the gradients with
respect to those inputs, the same numbers as ``torch.autograd`` gives.

As for the forward ops there is a ladder: ``*_loops`` versions that read like the chain rule
(every output number sends its gradient back to the inputs that made it) and vectorised
versions. Shapes: ``x`` is (H, W) with ``weight`` (kH, kW), or (C, H, W) / (N, C, H, W) with
``weight`` (O, C, kH, kW). ``dx`` has the shape of ``x``, ``dweight`` that of ``weight`` and
``dbias`` is (O,); a 2-D convolution has one filter, so its ``dbias`` is (1,), which is the
bias shape that ``conv2d`` accepts for 2-D input.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cnnlab._checks import as_array, as_pair, message
from cnnlab.ops import _check_conv, _pool_windows
from cnnlab.shapes import conv_output_size, pool_output_size

Pair = int | tuple[int, int]
Grads = tuple[np.ndarray, np.ndarray, np.ndarray]


class _ConvGrads(NamedTuple):
    """A validated convolution backward problem in NCHW form."""

    x: np.ndarray  # (N, C, H, W), already padded
    weight: np.ndarray  # (O, C, kH, kW)
    dout: np.ndarray  # (N, O, Ho, Wo)
    pads: tuple[int, int, int, int]  # (top, bottom, left, right), to crop dx
    stride: tuple[int, int]
    dilation: tuple[int, int]
    x_shape: tuple[int, ...]  # the caller's shapes, for dx and dweight
    weight_shape: tuple[int, ...]


# --- convolution ---------------------------------------------------------------------------

def conv2d_backward(dout: Any, x: Any, weight: Any, stride: Pair = 1,
                    padding: Pair | str = 0, dilation: Pair = 1) -> Grads:
    """Gradients of ``conv2d(x, weight, bias, ...)``: ``(dx, dweight, dbias)``, vectorised.

    The forward pass is one matrix product, out = W @ windows (see ``cnnlab.conv2d``), so
    dweight = dout @ windows.T (the cross-correlation of the input with ``dout``),
    dwindows = W.T @ dout, scattered back onto the input (the transposed convolution),
    and dbias = dout summed over images and positions.
    """
    p = _prepare_conv_grads("conv2d_backward", dout, x, weight, stride, padding, dilation)
    xp, w, g = p.x, p.weight, p.dout
    n, c, _, _ = xp.shape
    o, _, kh, kw = w.shape
    (sh, sw), (dh, dw), (ho, wo) = p.stride, p.dilation, g.shape[2:]
    windows = np.empty((n, c, kh, kw, ho, wo), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            windows[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                                     j * dw:j * dw + sw * (wo - 1) + 1:sw]
    g_flat = g.reshape(n, o, ho * wo)
    # one (O, L) @ (L, C*kH*kW) product per image, summed over the batch
    dweight = (g_flat @ windows.reshape(n, c * kh * kw, ho * wo).transpose(0, 2, 1)).sum(axis=0)
    dweight = dweight.reshape(w.shape)
    dwindows = (w.reshape(o, c * kh * kw).T @ g_flat).reshape(n, c, kh, kw, ho, wo)
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                j * dw:j * dw + sw * (wo - 1) + 1:sw] += dwindows[:, :, i, j]
    return _crop(dxp, p.pads, p.x_shape), dweight.reshape(p.weight_shape), g.sum(axis=(0, 2, 3))


def conv2d_backward_loops(dout: Any, x: Any, weight: Any, stride: Pair = 1,
                          padding: Pair | str = 0, dilation: Pair = 1) -> Grads:
    """Gradients of ``conv2d`` with plain loops: the chain rule, one output number at a time.

    out[n, o, i, j] = sum(window * weight[o]) + bias[o], so its gradient g flows back as
    g * weight[o] into the window, g * window into weight[o] and g into bias[o].
    """
    p = _prepare_conv_grads("conv2d_backward_loops", dout, x, weight, stride, padding, dilation)
    xp, w, g = p.x, p.weight, p.dout
    n_images, out_channels, kh, kw = xp.shape[0], w.shape[0], w.shape[2], w.shape[3]
    (sh, sw), (dh, dw), (ho, wo) = p.stride, p.dilation, g.shape[2:]
    dxp, dweight, dbias = np.zeros_like(xp), np.zeros_like(w), np.zeros(out_channels, xp.dtype)
    for n in range(n_images):
        for o in range(out_channels):
            for i in range(ho):
                for j in range(wo):
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                    dxp[n, :, rows, cols] += g[n, o, i, j] * w[o]
                    dweight[o] += g[n, o, i, j] * xp[n, :, rows, cols]
                    dbias[o] += g[n, o, i, j]
    return _crop(dxp, p.pads, p.x_shape), dweight.reshape(p.weight_shape), dbias


# --- pooling -------------------------------------------------------------------------------

def max_pool2d_backward(dout: Any, x: Any, kernel_size: Pair, stride: Pair | None = None,
                        padding: Pair = 0) -> np.ndarray:
    """Gradient of ``max_pool2d`` with respect to ``x`` (shape of ``x``), vectorised.

    Each output's gradient goes, whole, to the position of its window's maximum; ties go to
    the first maximum in reading order, as in PyTorch. Overlapping windows add up.
    """
    where = "max_pool2d_backward"
    windows, g, pads, shape, dtype, x_shape = _prepare_pool_grads(
        where, dout, x, kernel_size, stride, padding, "max")
    n, c, ho, wo, kh, kw = windows.shape
    sh, sw = _pool_stride(where, kernel_size, stride)
    winner = windows.reshape(n, c, ho, wo, kh * kw).argmax(axis=-1)  # first maximum wins
    rows = np.arange(ho)[:, None] * sh + winner // kw
    cols = np.arange(wo)[None, :] * sw + winner % kw
    height, width = shape[2] + pads[0] + pads[1], shape[3] + pads[2] + pads[3]
    planes = np.arange(n * c).reshape(n, c, 1, 1)
    flat = (planes * height + rows) * width + cols
    dxp = np.bincount(flat.ravel(), weights=g.ravel(), minlength=n * c * height * width)
    return _crop(dxp.reshape(n, c, height, width).astype(dtype), pads, x_shape)


def max_pool2d_backward_loops(dout: Any, x: Any, kernel_size: Pair,
                              stride: Pair | None = None, padding: Pair = 0) -> np.ndarray:
    """Gradient of ``max_pool2d`` with loops: each output routes its gradient to its argmax."""
    where = "max_pool2d_backward_loops"
    windows, g, pads, shape, dtype, x_shape = _prepare_pool_grads(
        where, dout, x, kernel_size, stride, padding, "max")
    n_images, channels, ho, wo, kh, kw = windows.shape
    sh, sw = _pool_stride(where, kernel_size, stride)
    dxp = np.zeros((n_images, channels, shape[2] + pads[0] + pads[1],
                    shape[3] + pads[2] + pads[3]), dtype=dtype)
    for n in range(n_images):
        for c in range(channels):
            for i in range(ho):
                for j in range(wo):
                    r, s = divmod(int(np.argmax(windows[n, c, i, j])), kw)  # first max wins
                    dxp[n, c, i * sh + r, j * sw + s] += g[n, c, i, j]
    return _crop(dxp, pads, x_shape)


def avg_pool2d_backward(dout: Any, x: Any, kernel_size: Pair, stride: Pair | None = None,
                        padding: Pair = 0) -> np.ndarray:
    """Gradient of ``avg_pool2d`` with respect to ``x``, vectorised.

    Each output is a mean of kH*kW numbers (padding zeros included, PyTorch's default), so
    each of them receives 1/(kH*kW) of the output's gradient.
    """
    where = "avg_pool2d_backward"
    windows, g, pads, shape, dtype, x_shape = _prepare_pool_grads(
        where, dout, x, kernel_size, stride, padding, "avg")
    n, c, ho, wo, kh, kw = windows.shape
    sh, sw = _pool_stride(where, kernel_size, stride)
    share = g / (kh * kw)
    dxp = np.zeros((n, c, shape[2] + pads[0] + pads[1], shape[3] + pads[2] + pads[3]), dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += share
    return _crop(dxp, pads, x_shape)


def avg_pool2d_backward_loops(dout: Any, x: Any, kernel_size: Pair,
                              stride: Pair | None = None, padding: Pair = 0) -> np.ndarray:
    """Gradient of ``avg_pool2d`` with loops: each output spreads its gradient evenly."""
    where = "avg_pool2d_backward_loops"
    windows, g, pads, shape, dtype, x_shape = _prepare_pool_grads(
        where, dout, x, kernel_size, stride, padding, "avg")
    n_images, channels, ho, wo, kh, kw = windows.shape
    sh, sw = _pool_stride(where, kernel_size, stride)
    dxp = np.zeros((n_images, channels, shape[2] + pads[0] + pads[1],
                    shape[3] + pads[2] + pads[3]), dtype=dtype)
    for n in range(n_images):
        for c in range(channels):
            for i in range(ho):
                for j in range(wo):
                    dxp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw] += g[n, c, i, j] / (kh * kw)
    return _crop(dxp, pads, x_shape)


# --- validation ----------------------------------------------------------------------------

def _prepare_conv_grads(where: str, dout: Any, x: Any, weight: Any, stride: Any, padding: Any,
                        dilation: Any) -> _ConvGrads:
    """Validate with the forward pass's checks, then check ``dout`` against the output shape."""
    x4, w, _, stride, dilation, pads, rank = _check_conv(where, x, weight, None, stride,
                                                         padding, dilation)
    (n, _, h, wd), (o, _, kh, kw) = x4.shape, w.shape
    top, bottom, left, right = pads
    out_hw = (conv_output_size(h, kh, stride[0], (top, bottom), dilation[0]),
              conv_output_size(wd, kw, stride[1], (left, right), dilation[1]))
    g = _as_dout(where, dout, (n, o, *out_hw)[4 - rank:], x4.shape[4 - rank:], "conv2d")
    dtype = np.result_type(x4.dtype, g.dtype)
    padded = np.pad(x4.astype(dtype, copy=False), ((0, 0), (0, 0), (top, bottom), (left, right)))
    g4 = g.reshape(n, o, *out_hw).astype(dtype, copy=False)
    weight_shape = (kh, kw) if rank == 2 else w.shape
    return _ConvGrads(padded, w.astype(dtype, copy=False), g4, pads, stride, dilation,
                      x4.shape[4 - rank:], weight_shape)


def _prepare_pool_grads(where: str, dout: Any, x: Any, kernel_size: Any, stride: Any,
                        padding: Any, mode: str) -> tuple[np.ndarray, np.ndarray,
                                                          tuple[int, int, int, int],
                                                          tuple[int, ...], np.dtype,
                                                          tuple[int, ...]]:
    """Validate with the forward pass's checks; return windows, dout (NCHW), pads, x's shape
    as (N, C, H, W), the gradient's dtype and x's own shape."""
    array = as_array(x, "x", where)
    # Float first, so that padding is -inf for max pooling and can never win a tie.
    windows, _ = _pool_windows(where, array.astype(np.result_type(array.dtype, np.float32)),
                               kernel_size, stride, padding, mode)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = _pool_stride(where, kernel_size, stride)
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    out_hw = (pool_output_size(array.shape[-2], kh, sh, ph),
              pool_output_size(array.shape[-1], kw, sw, pw))
    name = "max_pool2d" if mode == "max" else "avg_pool2d"
    g = _as_dout(where, dout, (*array.shape[:-2], *out_hw), array.shape, name)
    dtype = np.result_type(windows.dtype, g.dtype)
    g4 = g.reshape((1,) * (4 - g.ndim) + g.shape).astype(dtype, copy=False)
    shape = (1,) * (4 - array.ndim) + array.shape
    return windows, g4, (ph, ph, pw, pw), shape, dtype, array.shape


def _pool_stride(where: str, kernel_size: Any, stride: Any) -> tuple[int, int]:
    if stride is None:
        return as_pair(kernel_size, "kernel_size", where, minimum=1)
    return as_pair(stride, "stride", where, minimum=1)


def _as_dout(where: str, dout: Any, expected: tuple[int, ...], x_shape: tuple[int, ...],
             forward: str) -> np.ndarray:
    """``dout`` as a float array of exactly the forward output's shape, or a teaching error."""
    g = as_array(dout, "dout", where)
    if g.shape != tuple(expected):
        if g.shape == tuple(x_shape):
            hint = ("That is the shape of x: dout is the gradient with respect to the "
                    "*output*, so it has the output's shape.")
        elif g.size == int(np.prod(expected)):
            hint = f"The number of elements fits; reshape it: dout.reshape{tuple(expected)}."
        else:
            hint = (f"dout has the shape of {forward}(x, ...) with the same arguments; check "
                    "the stride, padding and kernel size given to both passes.")
        raise ValueError(message(where, f"`dout` of shape {tuple(expected)}, the shape of "
                                 f"{forward}'s output for this x", f"shape {g.shape}", hint))
    return g.astype(np.result_type(g.dtype, np.float32), copy=False)


def _crop(dxp: np.ndarray, pads: tuple[int, int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Drop the padding's rows and columns (their gradient goes nowhere); give x's shape."""
    top, bottom, left, right = pads
    dx = dxp[:, :, top:dxp.shape[2] - bottom, left:dxp.shape[3] - right]
    return np.ascontiguousarray(dx.reshape(shape))


__all__ = ["conv2d_backward", "conv2d_backward_loops", "max_pool2d_backward",
           "max_pool2d_backward_loops", "avg_pool2d_backward", "avg_pool2d_backward_loops"]
