"""Convolution and pooling from scratch in NumPy, checked against ``torch.nn.functional``.

``conv2d_loops`` reads like the definition (pad, slide the kernel, multiply and sum, add the
bias); ``conv2d`` computes the same numbers fast by gathering every window into one matrix and
doing a single matrix product. Both take lists, NumPy arrays or torch tensors and return NumPy.

Shapes: ``x`` is (H, W) with ``weight`` (kH, kW), or (C, H, W) / (N, C, H, W) with ``weight``
(O, C, kH, kW) and ``bias`` (O,). The result has the rank of ``x``.
Like deep-learning libraries, "convolution" here is cross-correlation: the kernel is not flipped.
"""

from __future__ import annotations

from math import comb
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab._checks import as_array, as_int, as_nchw, as_pair, layout_hint, looks_hwc, message
from cnnlab.shapes import conv_output_size, padding_sides

Pair = int | tuple[int, int]
KERNEL_NAMES = ("vertical edge", "horizontal edge", "outline", "blur", "identity")


class _Conv(NamedTuple):
    """A validated convolution problem in NCHW form."""

    x: np.ndarray  # (N, C, H, W), already padded
    weight: np.ndarray  # (O, C, kH, kW)
    bias: np.ndarray  # (O,)
    stride: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]
    rank: int  # rank of the caller's x, to shape the result the same way


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Pair = 1,
           padding: Pair | str = 0, dilation: Pair = 1) -> np.ndarray:
    """Vectorised 2-D convolution (cross-correlation), the same numbers as ``F.conv2d``.

    Every kernel offset (i, j) copies one shifted view of the input into a window matrix of
    shape (N, C*kH*kW, Ho*Wo); one matrix product with the weights, (O, C*kH*kW), then gives
    all outputs at once: (N, O, Ho*Wo).
    """
    p = _prepare_conv("conv2d", x, weight, bias, stride, padding, dilation)
    n, c, _, _ = p.x.shape
    o, _, kh, kw = p.weight.shape
    (sh, sw), (dh, dw), (ho, wo) = p.stride, p.dilation, p.out_hw
    windows = np.empty((n, c, kh, kw, ho, wo), dtype=p.x.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            windows[:, :, i, j] = p.x[:, :, top:top + sh * (ho - 1) + 1:sh,
                                      left:left + sw * (wo - 1) + 1:sw]
    out = p.weight.reshape(o, c * kh * kw) @ windows.reshape(n, c * kh * kw, ho * wo)
    out = out.reshape(n, o, ho, wo)
    out += p.bias[:, None, None]
    return _restore_rank(out, p.rank)


def conv2d_loops(x: Any, weight: Any, bias: Any = None, stride: Pair = 1,
                 padding: Pair | str = 0, dilation: Pair = 1) -> np.ndarray:
    """2-D convolution with plain loops: the definition, one output number at a time.

    x (N, C, H, W), weight (O, C, kH, kW), bias (O,) -> (N, O, Ho, Wo); see the module docstring.
    """
    x, weight, bias, (sh, sw), (dh, dw), (top, bottom, left, right), rank = _check_conv(
        "conv2d_loops", x, weight, bias, stride, padding, dilation)
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # zeros around each image
    n_images, _, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out_h = conv_output_size(height, kh, sh, dilation=dh)
    out_w = conv_output_size(width, kw, sw, dilation=dw)
    out = np.zeros((n_images, out_channels, out_h, out_w), dtype=x.dtype)
    for n in range(n_images):
        for o in range(out_channels):
            for i in range(out_h):
                for j in range(out_w):
                    row, col = i * sh, j * sw  # where the window starts in the padded input
                    window = x[n, :, row:row + dh * (kh - 1) + 1:dh, col:col + dw * (kw - 1) + 1:dw]
                    out[n, o, i, j] = np.sum(window * weight[o]) + bias[o]
    return _restore_rank(out, rank)


def max_pool2d(x: Any, kernel_size: Pair, stride: Pair | None = None,
               padding: Pair = 0) -> np.ndarray:
    """Max pooling, as ``F.max_pool2d``: the largest value in each window.

    ``x`` is (H, W), (C, H, W) or (N, C, H, W); ``stride`` defaults to ``kernel_size``.
    Padding counts as minus infinity, so it never wins. Integer input stays integer.
    """
    windows, rank = _pool_windows("max_pool2d", x, kernel_size, stride, padding, "max")
    return _restore_rank(windows.max(axis=(-2, -1)), rank)


def avg_pool2d(x: Any, kernel_size: Pair, stride: Pair | None = None,
               padding: Pair = 0) -> np.ndarray:
    """Average pooling, as ``F.avg_pool2d``: the mean of each window (padding zeros included)."""
    windows, rank = _pool_windows("avg_pool2d", x, kernel_size, stride, padding, "avg")
    return _restore_rank(windows.mean(axis=(-2, -1)), rank)


def named_kernel(name: str, size: int = 3) -> np.ndarray:
    """A classic (size, size) float64 kernel by name, one of ``KERNEL_NAMES``.

    At size 3: "vertical edge" is the Sobel kernel [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] (it
    responds to vertical edges), "horizontal edge" its transpose, "outline" -1 everywhere and 8
    in the centre (sums to 0), "blur" the 1-2-1 binomial kernel / 16 (sums to 1), "identity" a
    single 1 in the centre. Larger sizes use binomial rows (Pascal's triangle) the same way.
    """
    where = "named_kernel"
    if name not in KERNEL_NAMES:
        raise ValueError(message(where, f"`name` in {list(KERNEL_NAMES)}", repr(name),
                                 "Pick one of the listed names."))
    size = as_int(size, "size", where, minimum=1)  # odd sizes (3, 5, ...) have a centre
    centre = size // 2
    if name in ("identity", "outline"):
        kernel = np.zeros((size, size)) if name == "identity" else -np.ones((size, size))
        kernel[centre, centre] = 1.0 if name == "identity" else size * size - 1.0
        return kernel
    smooth = np.array([float(comb(size - 1, i)) for i in range(size)])  # 1 2 1 for size 3
    if name == "blur":
        return np.outer(smooth, smooth) / smooth.sum() ** 2
    slope = np.arange(size) - (size - 1) / 2  # -1 0 1 for size 3
    return np.outer(smooth, slope) if name == "vertical edge" else np.outer(slope, smooth)


# --- validation and reshaping -------------------------------------------------------------

def _check_conv(where: str, x: Any, weight: Any, bias: Any, stride: Any, padding: Any,
                dilation: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int],
                                        tuple[int, int], tuple[int, int, int, int], int]:
    """Validate a convolution; return x (N, C, H, W) unpadded, weight (O, C, kH, kW), bias (O,)
    in one float dtype, stride, dilation, pads (top, bottom, left, right) and x's rank."""
    x = as_array(x, "x", where)
    weight = as_array(weight, "weight", where)
    rank = x.ndim
    x4 = as_nchw(x, where)
    if rank == 2 and weight.ndim == 2:
        weight = weight[None, None]
    elif rank == 2 and weight.ndim == 4:
        raise ValueError(message(where, "`x` of shape (C, H, W) or (N, C, H, W) for a weight "
                                 "of shape (O, C, kH, kW)", f"a 2-D x of shape {x.shape}",
                                 "Add a channel axis: x[None] is (1, H, W)."))
    elif weight.ndim != 4:
        hint = ("Add the out-channel axis: weight[None] is (1, C, kH, kW)."
                if weight.ndim == 3 else
                "For several channels the weight is 4-D: (out_channels, in_channels, kH, kW).")
        expected = ("`weight` of shape (kH, kW) for a 2-D x, or (O, C, kH, kW)" if rank == 2
                    else "`weight` of shape (O, C, kH, kW)")
        raise ValueError(message(where, expected, f"shape {weight.shape}", hint))
    if weight.size == 0:
        raise ValueError(message(where, "a weight with at least one filter and channel",
                                 f"shape {weight.shape}", "Check how the weight was built."))
    out_channels, in_channels, kh, kw = weight.shape
    if x4.shape[1] != in_channels:
        fixed = x.shape[-1] if looks_hwc(x.shape) else 3 if x4.shape[1] == 4 else None
        hint = (layout_hint(x.shape) if fixed == in_channels else
                "Give the layer as many input channels as the image has.")
        raise ValueError(message(where, f"x with {in_channels} channel(s) to match weight "
                                 f"{weight.shape} (O, C, kH, kW)",
                                 f"x of shape {x.shape} with {x4.shape[1]} channel(s) on axis "
                                 f"{rank - 3}", hint))
    bias_vec = _prepare_bias(where, bias, out_channels, rank)
    stride = as_pair(stride, "stride", where, minimum=1)
    dilation = as_pair(dilation, "dilation", where, minimum=1)
    spans = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    pads = _padding(where, padding, spans, stride)
    height, width = x4.shape[2] + pads[0] + pads[1], x4.shape[3] + pads[2] + pads[3]
    if spans[0] > height or spans[1] > width:
        raise ValueError(message(
            where, f"a kernel window no larger than the padded input ({height}x{width})",
            f"a window of {spans[0]}x{spans[1]} (kernel {kh}x{kw}, dilation {dilation})",
            "Use a smaller kernel, or add padding (padding=k//2 keeps the size)."))
    dtype = np.result_type(x4.dtype, weight.dtype, np.float32)
    return (x4.astype(dtype, copy=False), weight.astype(dtype, copy=False),
            bias_vec.astype(dtype, copy=False), stride, dilation, pads, rank)


def _prepare_conv(where: str, x: Any, weight: Any, bias: Any, stride: Any, padding: Any,
                  dilation: Any) -> _Conv:
    """Validate a convolution and pad x: the problem as ``conv2d`` (and backward) use it."""
    x4, weight, bias, stride, dilation, pads, rank = _check_conv(
        where, x, weight, bias, stride, padding, dilation)
    top, bottom, left, right = pads
    padded = np.pad(x4, ((0, 0), (0, 0), (top, bottom), (left, right)))
    _, _, kh, kw = weight.shape
    out_hw = (conv_output_size(padded.shape[2], kh, stride[0], dilation=dilation[0]),
              conv_output_size(padded.shape[3], kw, stride[1], dilation=dilation[1]))
    return _Conv(padded, weight, bias, stride, dilation, out_hw, rank)


def _prepare_bias(where: str, bias: Any, out_channels: int, rank: int) -> np.ndarray:
    if bias is None:
        return np.zeros(out_channels)
    b = as_array(bias, "bias", where)
    if b.ndim == 0 and out_channels == 1:
        return b.reshape(1)
    if b.shape != (out_channels,):
        raise ValueError(message(where, f"`bias` of shape ({out_channels},): one number per "
                                 "output channel", f"shape {b.shape}",
                                 "The bias has as many entries as the weight has filters "
                                 "(its first axis)." if rank > 2 else
                                 "A 2-D convolution has one filter: give one number."))
    return b


def _padding(where: str, padding: Any, spans: tuple[int, int],
             stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zeros for an int, an (h, w) pair, 'same' or 'valid'."""
    if isinstance(padding, str):
        return (*padding_sides(padding, spans[0], stride[0], where),
                *padding_sides(padding, spans[1], stride[1], where))
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    return ph, ph, pw, pw


def _restore_rank(out: np.ndarray, rank: int) -> np.ndarray:
    return out.reshape(out.shape[4 - rank:])


def _pool_windows(where: str, x: Any, kernel_size: Any, stride: Any, padding: Any,
                  mode: str) -> tuple[np.ndarray, int]:
    """Validate pooling arguments; return windows (N, C, Ho, Wo, kH, kW) and x's rank."""
    x = as_array(x, "x", where)
    rank = x.ndim
    x4 = as_nchw(x, where)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = (kh, kw) if stride is None else as_pair(stride, "stride", where, minimum=1)
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(message(where, f"padding at most half the kernel ({kh // 2}, {kw // 2})",
                                 f"padding=({ph}, {pw})", "As in PyTorch: with more padding "
                                 "a window could hold nothing but padding."))
    height, width = x4.shape[2] + 2 * ph, x4.shape[3] + 2 * pw
    if kh > height or kw > width:
        raise ValueError(message(where, f"a pooling window no larger than the padded input "
                                 f"({height}x{width})", f"kernel_size=({kh}, {kw})",
                                 "Use a smaller window, or pool an earlier, larger map."))
    if mode == "max":
        fill = np.iinfo(x4.dtype).min if np.issubdtype(x4.dtype, np.integer) else -np.inf
    else:
        x4, fill = x4.astype(np.result_type(x4.dtype, np.float32), copy=False), 0
    padded = np.pad(x4, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return windows, rank


__all__ = ["conv2d", "conv2d_loops", "max_pool2d", "avg_pool2d", "named_kernel"]
