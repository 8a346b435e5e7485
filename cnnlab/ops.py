"""Convolution and pooling from scratch in NumPy, checked against ``torch.nn.functional``.

``conv2d_loops`` reads like the definition (pad, slide the kernel, multiply and sum, add the
bias); ``conv2d`` computes the same numbers fast by gathering every window into one matrix and
doing a single matrix product. Both take lists, NumPy arrays or torch tensors and return NumPy.

Shapes: ``x`` is (H, W) with ``weight`` (kH, kW), or (C, H, W) / (N, C, H, W) with ``weight``
(O, C, kH, kW) and ``bias`` (O,). The result has the rank of ``x``.
Like deep-learning libraries, "convolution" here is cross-correlation: the kernel is not flipped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab._checks import as_array, as_pair, message

Pair = int | tuple[int, int]


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
    """2-D convolution with plain loops: the definition, one output number at a time."""
    p = _prepare_conv("conv2d_loops", x, weight, bias, stride, padding, dilation)
    n_images, out_channels = p.x.shape[0], p.weight.shape[0]
    _, _, kh, kw = p.weight.shape
    (sh, sw), (dh, dw), (ho, wo) = p.stride, p.dilation, p.out_hw
    out = np.zeros((n_images, out_channels, ho, wo), dtype=p.x.dtype)
    for n in range(n_images):
        for o in range(out_channels):
            for i in range(ho):
                for j in range(wo):
                    top, left = i * sh, j * sw  # where the window starts in the padded input
                    window = p.x[n, :, top:top + dh * (kh - 1) + 1:dh,
                                 left:left + dw * (kw - 1) + 1:dw]
                    out[n, o, i, j] = np.sum(window * p.weight[o]) + p.bias[o]
    return _restore_rank(out, p.rank)


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


# --- validation and reshaping -------------------------------------------------------------

_LAYOUT_HINT = {
    3: "It looks like an HWC image (height, width, channels), as read from a PNG; move the "
       "channels first with x.transpose(2, 0, 1) (NumPy) or x.permute(2, 0, 1) (torch).",
    4: "It looks like NHWC (channels last); convert with x.transpose(0, 3, 1, 2) (NumPy) or "
       "x.permute(0, 3, 1, 2) (torch).",
}


def _as_nchw(where: str, x: np.ndarray, rank_names: str) -> np.ndarray:
    """Validate the rank and size of ``x`` and view it as (N, C, H, W)."""
    if x.ndim not in (2, 3, 4):
        hints = {0: "A single number is not an image.",
                 1: "A 1-D row is not an image; reshape it into 2-D, e.g. x.reshape(h, w).",
                 5: "Remove the extra axis; a batch of images is 4-D (N, C, H, W)."}
        raise ValueError(message(where, f"`x` of rank 2, 3 or 4 ({rank_names})",
                                 f"rank {x.ndim} with shape {x.shape}", hints.get(x.ndim, "")))
    if x.size == 0:
        raise ValueError(message(where, "`x` with at least one channel, row and column",
                                 f"shape {x.shape}", "An axis of size 0 leaves nothing to "
                                 "convolve; check how the input was sliced or built."))
    return x.reshape((1,) * (4 - x.ndim) + x.shape)


def _prepare_conv(where: str, x: Any, weight: Any, bias: Any, stride: Any, padding: Any,
                  dilation: Any) -> _Conv:
    x = as_array(x, "x", where)
    weight = as_array(weight, "weight", where)
    rank = x.ndim
    x4 = _as_nchw(where, x, "(H, W), (C, H, W) or (N, C, H, W)")
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
        hint = "Give the layer as many input channels as the image has."
        if rank >= 3 and x.shape[-1] == in_channels and x.shape[-1] in (1, 3, 4):
            hint = _LAYOUT_HINT[rank]
        elif x4.shape[1] == 4 and in_channels == 3:
            hint = "This looks like an RGBA image; drop the alpha channel with x[..., :3, :, :]."
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
    out_hw = ((height - spans[0]) // stride[0] + 1, (width - spans[1]) // stride[1] + 1)
    return _Conv(_pad(x4.astype(dtype, copy=False), pads, 0), weight.astype(dtype, copy=False),
                 bias_vec.astype(dtype, copy=False), stride, dilation, out_hw, rank)


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
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(message(where, "padding as an int, an (h, w) pair, 'same' or "
                                     "'valid'", repr(padding), "Did you mean padding='same'?"))
        if stride != (1, 1):
            raise ValueError(message(where, "stride 1 with padding='same'", f"stride={stride}",
                                     "As in PyTorch, 'same' needs stride 1; give the padding "
                                     "as a number instead."))
        (th, tw) = (spans[0] - 1, spans[1] - 1)  # total zeros; odd totals put the extra after
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    return ph, ph, pw, pw


def _pad(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _restore_rank(out: np.ndarray, rank: int) -> np.ndarray:
    return out.reshape(out.shape[4 - rank:])


def _pool_windows(where: str, x: Any, kernel_size: Any, stride: Any, padding: Any,
                  mode: str) -> tuple[np.ndarray, int]:
    """Validate pooling arguments; return windows (N, C, Ho, Wo, kH, kW) and x's rank."""
    x = as_array(x, "x", where)
    rank = x.ndim
    x4 = _as_nchw(where, x, "(H, W), (C, H, W) or (N, C, H, W)")
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
    padded = _pad(x4, (ph, ph, pw, pw), fill)
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return windows, rank


__all__ = ["conv2d", "conv2d_loops", "max_pool2d", "avg_pool2d"]
