"""Data-drawn diagrams: small grids with every number written in its cell.

``plot_conv_grid`` (one convolution step: padding ring, window, stride), ``plot_channel_sum``
(a multi-channel convolution summed into one map) and ``plot_pool_grid`` (pooling windows).
Every number comes from ``cnnlab.ops``; the grid primitives they draw with live in
``cnnlab.grids``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab import ops
from cnnlab._checks import as_array, as_int, as_pair, describe, message
from cnnlab.figures import check_text, describe_figure
from cnnlab.grids import (
    CELL,
    KERNEL,
    NEXT_EDGE,
    WINDOW,
    WINDOW_EDGE,
    as_grid,
    check_small,
    draw_grid,
    fmt,
    outline,
    pair_text,
    pool_grid_args,
    rows_text,
    size_text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_conv_grid", "plot_channel_sum", "plot_pool_grid"]

# colours of the grid diagrams (the shared ones live in cnnlab.grids)
PAD = "#d9d9d9"  # padding zeros
PAD_TEXT = "#7a7a7a"
_POOL_COLOURS = ("#bcd7ff", "#ffd0a8", "#c6ecc1", "#f3c4e6", "#fff1a8", "#d3ccf5", "#c9eef0",
                 "#f5c9c9")
_POOL_EDGES = ("#1f5fbf", "#d2691e", "#2e8b57", "#b03a8c", "#a08c00", "#6a5acd", "#1f9aa5",
               "#c0392b")  # the same hues, dark enough to outline overlapping windows
_SHARED = (CELL, CELL, "#e3e3e3", "#cfcfcf", "#bbbbbb")  # cells in 0, 1, 2, 3, 4+ windows


# --- drawing helpers ------------------------------------------------------------------------

def _panel(ax: Axes, values: np.ndarray, title: str, fill: str = CELL) -> None:
    """A numbered grid in one fill colour, with a small title."""
    draw_grid(ax, values, fill)
    ax.set_title(title, fontsize=10)


def _operator(ax: Axes, symbol: str) -> None:
    ax.text(0.5, 0.5, symbol, ha="center", va="center", fontsize=22, transform=ax.transAxes)
    ax.axis("off")


# --- grid diagrams ----------------------------------------------------------------------------

def plot_conv_grid(x: Any, kernel: Any, padding: Any = 0, stride: Any = 1, dilation: Any = 1,
                   position: tuple[int, int] = (0, 0), alt: str | None = None) -> Figure:
    """Draw one step of a convolution with all its numbers; returns the Figure.

    ``x`` (H, W) and ``kernel`` (kH, kW) are small grids (at most 16x16 with padding). Panels:
    the input with its padding as a ring of gray zeros, the kernel window at output
    ``position`` = (row, column) shaded blue (each cell also shows the kernel weight it meets,
    small), the next window one stride away outlined in orange with an arrow; the kernel; and
    the output with the produced cell shaded. The title writes out the sum of products.
    Numbers come from ``cnnlab.ops.conv2d``. ``alt`` replaces the default alt text, which
    lists the grids' numbers and the sum (see ``cnnlab.describe_figure``).
    """
    where = "plot_conv_grid"
    alt = check_text(alt, "alt", where)
    grid = as_grid(x, "x", where, "plot_conv_grid draws one channel; for several channels use "
                 "plot_channel_sum(x, weight).")
    k = as_grid(kernel, "kernel", where, "The kernel is one 2-D grid (kH, kW), e.g. "
              "[[0, 1, 2], [2, 2, 0], [0, 1, 2]].")
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    sh, sw = as_pair(stride, "stride", where, minimum=1)
    dh, dw = as_pair(dilation, "dilation", where, minimum=1)
    out = ops.conv2d(grid, k, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    padded = np.pad(grid, ((ph, ph), (pw, pw)))
    check_small(padded.shape, "`x` with its padding", where)
    check_small(k.shape, "`kernel`", where)
    i, j = _position(position, out.shape, where)
    kh, kw = k.shape
    top, left = i * sh, j * sw
    window = [(top + a * dh, left + b * dw) for a in range(kh) for b in range(kw)]

    rows, cols = padded.shape
    is_pad = np.pad(np.zeros(grid.shape, dtype=bool), ((ph, ph), (pw, pw)), constant_values=True)
    fills = np.where(is_pad, PAD, CELL).astype(object)
    fills[tuple(np.transpose(window))] = WINDOW
    colours = np.where(is_pad, PAD_TEXT, "black")

    import matplotlib.pyplot as plt
    height = max(rows, kh, out.shape[0])
    fig, axes = plt.subplots(1, 5, figsize=(0.55 * (cols + kw + out.shape[1]) + 3.0,
                                            0.55 * height + 1.8),
                             width_ratios=[cols + 1, 1.2, kw, 1.2, out.shape[1]],
                             layout="constrained")
    ax_in, ax_times, ax_k, ax_eq, ax_out = axes
    draw_grid(ax_in, padded, fills, colours)
    for (r, c), weight in zip(window, k.ravel(), strict=True):
        ax_in.text(c + 0.93, r + 0.93, fmt(weight), ha="right", va="bottom", fontsize=7,
                   color=WINDOW_EDGE)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    outline(ax_in, top, left, span_h, span_w, WINDOW_EDGE)
    _draw_stride(ax_in, (i, j), out.shape, (sh, sw), (span_h, span_w))
    extras = [f"padding {pair_text(ph, pw)}", f"stride {pair_text(sh, sw)}"]
    if (dh, dw) != (1, 1):
        extras.append(f"dilation {pair_text(dh, dw)}")
    ax_in.set_title(f"input ({size_text(grid.shape)})\n" + ", ".join(extras), fontsize=11)

    _operator(ax_times, "*")
    draw_grid(ax_k, k, KERNEL)
    ax_k.set_title(f"kernel ({size_text(k.shape)})", fontsize=11)
    _operator(ax_eq, "=")
    out_fills = np.full(out.shape, CELL, dtype=object)
    out_fills[i, j] = WINDOW
    draw_grid(ax_out, out, out_fills)
    outline(ax_out, i, j, 1, 1, WINDOW_EDGE)
    ax_out.set_title(f"output ({size_text(out.shape)})", fontsize=11)

    values = [padded[r, c] for r, c in window]
    total = sum_of_products(f"output[{i}, {j}]", values, k, out[i, j])
    fig.suptitle(total, fontsize=11)
    return describe_figure(fig, alt or _conv_grid_alt(grid, k, out, (ph, pw), (sh, sw),
                                                        (dh, dw), (i, j), total))


def _conv_grid_alt(grid: np.ndarray, k: np.ndarray, out: np.ndarray, padding: tuple[int, int],
                   stride: tuple[int, int], dilation: tuple[int, int], ij: tuple[int, int],
                   total: str) -> str:
    """plot_conv_grid's default alt text: the three grids, where the window is, the sum."""
    (ph, pw), (sh, sw), (dh, dw), (i, j) = padding, stride, dilation, ij
    ring = (f", inside a gray ring of padding zeros {pair_text(ph, pw)} "
            f"cell{'s' if max(ph, pw) > 1 else ''} wide" if max(ph, pw) else "")
    place = "top-left window" if (i, j) == (0, 0) else f"window for output[{i}, {j}]"
    gaps = f" (dilation {pair_text(dh, dw)}: it reads cells {pair_text(dh, dw)} apart)" if max(
        dh, dw) > 1 else ""
    if j + 1 < out.shape[1]:
        step = f" The next window, stride {sw} to the right, is outlined in orange."
    elif i + 1 < out.shape[0]:
        step = f" The next window, stride {sh} down, is outlined in orange."
    else:
        step = ""
    return (f"Convolution diagram: a {size_text(grid.shape)} input grid ({rows_text(grid)})"
            f"{ring}, a {size_text(k.shape)} kernel ({rows_text(k)}) and the "
            f"{size_text(out.shape)} output grid ({rows_text(out)}). The kernel is shaded blue "
            f"over the input's {place}{gaps}, and the output cell it makes is shaded too.{step} "
            f"Title: {total.replace(chr(10), ' ')}.").replace(" ()", "")


def _position(position: Any, out_shape: tuple[int, int], where: str) -> tuple[int, int]:
    if not isinstance(position, (tuple, list)) or len(position) != 2:
        raise TypeError(message(where, "`position` as a (row, column) pair of the output",
                                describe(position), "For the top-left output use (0, 0)."))
    i = as_int(position[0], "position[0]", where, minimum=0)
    j = as_int(position[1], "position[1]", where, minimum=0)
    if i >= out_shape[0] or j >= out_shape[1]:
        raise ValueError(message(where, f"a `position` inside the output of shape "
                                 f"{size_text(out_shape)} (rows 0..{out_shape[0] - 1}, columns "
                                 f"0..{out_shape[1] - 1})", f"position=({i}, {j})",
                                 "Positions count output cells, starting at 0."))
    return i, j


def _draw_stride(ax: Axes, ij: tuple[int, int], out_shape: tuple[int, int],
                 stride: tuple[int, int], span: tuple[int, int]) -> None:
    """Outline the next window (right, else below) and draw an arrow of one stride."""
    i, j = ij
    if j + 1 < out_shape[1]:
        step = (0, stride[1])
    elif i + 1 < out_shape[0]:
        step = (stride[0], 0)
    else:
        return  # a single output position: no next window
    top, left = i * stride[0], j * stride[1]
    outline(ax, top + step[0], left + step[1], span[0], span[1], NEXT_EDGE, "--")
    rows, cols = ax.get_ylim()[0] - 0.15, ax.get_xlim()[1] - 0.15  # grid size
    if step[0] == 0:  # arrow above the grid, from this window's column to the next one's
        start, end = (left + 0.5, -0.35), (left + step[1] + 0.5, -0.35)
        label = {"x": (start[0] + end[0]) / 2, "y": -0.5, "ha": "center", "va": "bottom"}
    else:  # arrow right of the grid, from this window's row to the next one's
        start, end = (cols + 0.35, top + 0.5), (cols + 0.35, top + step[0] + 0.5)
        label = {"x": cols + 0.5, "y": (start[1] + end[1]) / 2, "ha": "left", "va": "center",
                 "rotation": 90}
    ax.annotate("", xy=end, xytext=start, annotation_clip=False,
                arrowprops={"arrowstyle": "->", "color": NEXT_EDGE, "lw": 2})
    x, y = label.pop("x"), label.pop("y")
    ax.text(x, y, f"stride {max(step)}", color=NEXT_EDGE, fontsize=9, clip_on=False, **label)
    ax.set_xlim(ax.get_xlim()[0], cols + 1.0)
    ax.set_ylim(rows + 0.15, -0.9)


def sum_of_products(label: str, values: list, kernel: np.ndarray, result: float,
                     bias: float | None = None) -> str:
    """'label = (a*w + ...) + (...) = result', one bracket per kernel row (if not too long)."""
    kh, kw = kernel.shape
    if kh * kw > 25:
        terms = f"sum of {kh * kw} products"
    else:
        rows = []
        for a in range(kh):
            products = [f"{fmt(values[a * kw + b])}*{fmt(kernel[a, b])}" for b in range(kw)]
            rows.append("(" + " + ".join(products) + ")" if kw > 1 else products[0])
        per_line = 3 if kw <= 3 else 1
        lines = [" + ".join(rows[n:n + per_line]) for n in range(0, kh, per_line)]
        terms = "\n+ ".join(lines)
    if bias is not None:
        terms += f" + bias {fmt(bias)}"
    return f"{label} = {terms} = {fmt(result)}"


def plot_channel_sum(x: Any, weight: Any, bias: Any = None, alt: str | None = None) -> Figure:
    """How a multi-channel convolution makes ONE output map; returns the Figure.

    ``x`` is (C, H, W), ``weight`` is (C, kH, kW) (or (1, C, kH, kW)), ``bias`` a number or
    None; no padding, stride 1. One row per input channel: channel c * kernel slice c =
    partial map c. On the right: the sum of the partial maps (+ bias) = the output map.
    All grids show their numbers (at most 16x16 each). ``alt`` replaces the default alt text.
    """
    where = "plot_channel_sum"
    alt = check_text(alt, "alt", where)
    inp = as_array(x, "x", where)
    w = as_array(weight, "weight", where)
    if w.ndim == 4 and w.shape[0] == 1:
        w = w[0]
    if inp.ndim != 3:
        hint = ("For one channel use plot_conv_grid(x, kernel)." if inp.ndim == 2 else
                "Pass one image (C, H, W), e.g. x[0]." if inp.ndim == 4 else "")
        raise ValueError(message(where, "`x` of shape (C, H, W)", f"shape {inp.shape}", hint))
    if w.ndim != 3:
        hint = ("With several filters, pass one: weight[o] is (C, kH, kW)." if w.ndim == 4
                else "Give one kH x kW slice per input channel: shape (C, kH, kW).")
        raise ValueError(message(where, "`weight` of shape (C, kH, kW) (one filter)",
                                 f"shape {w.shape}", hint))
    if w.shape[0] != inp.shape[0]:
        raise ValueError(message(where, f"one kernel slice per input channel ({inp.shape[0]})",
                                 f"weight of shape {w.shape} with {w.shape[0]} slices",
                                 "weight.shape[0] must equal x.shape[0]."))
    b = 0.0
    if bias is not None:
        b_arr = as_array(bias, "bias", where)
        if b_arr.size != 1:
            raise ValueError(message(where, "`bias` as one number (one output map)",
                                     f"shape {b_arr.shape}", "Use bias[o] for filter o."))
        b = float(b_arr.reshape(()))
    check_small(inp.shape[1:], "each channel of `x`", where)
    channels = inp.shape[0]
    partials = [ops.conv2d(inp[c], w[c]) for c in range(channels)]
    total = ops.conv2d(inp, w[None], bias=None if bias is None else [b])

    import matplotlib.pyplot as plt
    (h, wid), (kh, kw), (ho, wo) = inp.shape[1:], w.shape[1:], total.shape[1:]
    fig = plt.figure(figsize=(0.5 * (wid + kw + 2 * wo) + 4.5, (0.5 * h + 0.9) * channels + 1),
                     layout="constrained")
    spec = fig.add_gridspec(channels, 7, width_ratios=[wid, 1.2, kw, 1.2, wo, 2.2, wo])
    for c in range(channels):
        _panel(fig.add_subplot(spec[c, 0]), inp[c], f"input channel {c} ({h}x{wid})")
        _operator(fig.add_subplot(spec[c, 1]), "*")
        _panel(fig.add_subplot(spec[c, 2]), w[c], f"kernel slice {c} ({kh}x{kw})", KERNEL)
        _operator(fig.add_subplot(spec[c, 3]), "=")
        _panel(fig.add_subplot(spec[c, 4]), partials[c], f"partial map {c}", WINDOW)
    sum_text = "sum over\nchannels" + (f"\n+ bias {fmt(b)}" if bias is not None else "")
    ax = fig.add_subplot(spec[:, 5])
    ax.text(0.5, 0.5, sum_text + "\n=", ha="center", va="center", fontsize=12,
            transform=ax.transAxes)
    ax.axis("off")
    _panel(fig.add_subplot(spec[:, 6]), total[0], f"output map ({ho}x{wo})", WINDOW)
    first = " + ".join(fmt(p[0, 0]) for p in partials)
    bias_text = f" + {fmt(b)}" if bias is not None else ""
    title = (f"{channels} input channels, one filter of shape {channels}x{kh}x{kw} -> one "
             f"output map; e.g. output[0, 0] = {first}{bias_text} = {fmt(total[0, 0, 0])}")
    fig.suptitle(title)
    rows = "; ".join(f"channel {c} ({rows_text(inp[c], 25) or f'{h}x{wid}'}) * kernel slice {c} "
                     f"({rows_text(w[c], 25) or f'{kh}x{kw}'}) = partial map {c} "
                     f"({rows_text(partials[c], 25) or f'{ho}x{wo}'})" for c in range(channels))
    bias_alt = f" plus the bias {fmt(b)}" if bias is not None else ""
    return describe_figure(fig, alt or (
        f"Multi-channel convolution diagram, one row per input channel: {rows}. The partial "
        f"maps summed{bias_alt} give the {ho}x{wo} output map "
        f"({rows_text(total[0]) or 'too large to list'}). Title: {title}."))


def plot_pool_grid(x: Any, kernel_size: Any = 2, stride: Any = None, mode: str = "max",
                   alt: str | None = None) -> Figure:
    """Draw pooling on a small grid: each window in its own colour, and the pooled output.

    ``x`` is (H, W) (at most 16x16); ``stride`` defaults to ``kernel_size``; ``mode`` is
    "max" (the winning cell of each window is bold) or "avg". Windows that do not overlap are
    filled with their output cell's colour. Overlapping windows (stride < kernel) are outlined
    in that colour instead, each slightly inset, and cells are shaded gray by how many windows
    they lie in. Numbers come from ``cnnlab.ops.max_pool2d`` / ``avg_pool2d``. ``alt``
    replaces the default alt text. Returns the Figure.
    """
    where = "plot_pool_grid"
    alt = check_text(alt, "alt", where)
    if mode not in ("max", "avg"):
        raise ValueError(message(where, '`mode` "max" or "avg"', repr(mode),
                                 'Use mode="avg" for average pooling.'))
    grid, (kh, kw), (sh, sw) = pool_grid_args(x, kernel_size, stride, where)
    out = (ops.max_pool2d if mode == "max" else ops.avg_pool2d)(grid, (kh, kw), (sh, sw))
    (rows, cols), (ho, wo) = grid.shape, out.shape
    overlap = kh > sh or kw > sw  # a cell can lie in several windows
    # window (i, j) gets colour (i * shift + j) % n; this shift makes touching windows differ
    n = len(_POOL_COLOURS)
    shift = next(s for s in range(wo + 1, wo + n + 1) if s % n not in (n - 1, 0, 1))
    colour = (np.arange(ho)[:, None] * shift + np.arange(wo)) % n
    fills = np.full(grid.shape, CELL, dtype=object)  # each window in its output cell's colour
    cover = np.zeros(grid.shape, dtype=int)  # how many windows each cell lies in
    bold = np.zeros(grid.shape, dtype=bool)
    for i, j in np.ndindex(ho, wo):
        window = np.s_[i * sh:i * sh + kh, j * sw:j * sw + kw]
        fills[window] = _POOL_COLOURS[colour[i, j]]
        cover[window] += 1
        if mode == "max":
            a, b = np.unravel_index(np.argmax(grid[window]), (kh, kw))
            bold[i * sh + a, j * sw + b] = True
    if overlap:  # a cell's one fill would show one of its windows at random: shade by count
        fills = np.array(_SHARED)[np.minimum(cover, len(_SHARED) - 1)]
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(0.55 * (cols + wo) + 3.5, 0.55 * rows + 2.0),
                             width_ratios=[cols, 1.6, wo], layout="constrained")
    draw_grid(axes[0], grid, fills, bold=bold if mode == "max" else None)
    draw_grid(axes[2], out, np.array(_POOL_COLOURS)[colour])
    for i, j in np.ndindex(ho, wo):
        if overlap:  # outlines in the output cell's hue, insets alternating so edges stay apart
            edge = _POOL_EDGES[colour[i, j]]
            outline(axes[0], i * sh, j * sw, kh, kw, edge, inset=0.08 + 0.1 * ((i + j) % 2))
            outline(axes[2], i, j, 1, 1, edge, inset=0.08)
        else:
            outline(axes[0], i * sh, j * sw, kh, kw, "#404040")
    axes[0].set_title(f"input ({size_text(grid.shape)})", fontsize=11)
    name = "max" if mode == "max" else "average"
    _operator(axes[1], "\u2192")
    axes[1].set_title(f"{name} of\neach window", fontsize=10)
    axes[2].set_title(f"output ({size_text(out.shape)})", fontsize=11)
    note = ("\nthe windows overlap: each is outlined in its output cell's colour; gray cells "
            "lie in 2+ windows" if overlap else "")
    fig.suptitle(f"{name} pooling {kh}x{kw}, stride {pair_text(sh, sw)}\ninput "
                 f"({size_text(grid.shape)}) -> output ({size_text(out.shape)}), no weights to "
                 f"learn{note}")
    shown = ("each window outlined in its output cell's colour (they overlap; gray cells lie "
             "in 2 or more)" if overlap else "each window filled with its output cell's colour")
    winner = ", the maximum of each window in bold" if mode == "max" else ""
    return describe_figure(fig, alt or (
        f"{name.capitalize()} pooling diagram, {kh}x{kw} windows with stride "
        f"{pair_text(sh, sw)}: the {size_text(grid.shape)} input grid ({rows_text(grid)}), "
        f"{shown}{winner}; an arrow to the {size_text(out.shape)} output grid "
        f"({rows_text(out)}), the {name} of each window.").replace(" ()", ""))
