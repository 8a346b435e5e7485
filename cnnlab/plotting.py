"""Every figure the lessons draw. Each function builds one figure and returns it.

Figures are made with ``matplotlib.pyplot`` so Jupyter shows them inline; end the notebook line
with ``;`` to hide the ``<Figure ...>`` text. Titles say what each panel shows, and inputs and
outputs are always labelled.

Images are PyTorch-style: (H, W), (C, H, W) or (1, C, H, W), as tensors or NumPy arrays.
The grid diagrams (``plot_conv_grid``, ``plot_channel_sum``, ``plot_pool_grid``) draw small
arrays with their numbers; every number comes from ``cnnlab.ops``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from cnnlab import ops
from cnnlab._checks import as_array, as_int, as_pair, describe, is_tensor, message
from cnnlab.images import looks_hwc

# colours of the grid diagrams
_CELL = "white"
_PAD = "#d9d9d9"  # padding zeros
_PAD_TEXT = "#7a7a7a"
_WINDOW = "#bcd7ff"  # cells under the kernel, and the output cell they produce
_WINDOW_EDGE = "#1f5fbf"
_NEXT_EDGE = "#e07b00"  # the next window, one stride away
_KERNEL = "#ffe6a8"
_POOL_COLOURS = ("#bcd7ff", "#ffd0a8", "#c6ecc1", "#f3c4e6", "#fff1a8", "#d3ccf5", "#c9eef0",
                 "#f5c9c9")
_MAX_GRID = 16  # larger grids cannot show readable numbers


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


# --- input checks ---------------------------------------------------------------------------

def _to_tensor(value: Any, name: str, where: str) -> torch.Tensor:
    """A tensor/array/list as a detached float32 CPU tensor (uint8 scaled to [0, 1])."""
    if is_tensor(value):
        if value.is_complex():
            as_array(value, name, where)  # raises the teaching TypeError
        tensor = value.detach().cpu()
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(as_array(value, name, where)))
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    return tensor.float()


def _image_chw(image: Any, where: str, channels: tuple[int, ...] | None = (1, 3)) -> torch.Tensor:
    """An image (H, W), (C, H, W) or (1, C, H, W) as a float tensor (C, H, W).

    ``channels`` lists the allowed C (None: any). An HWC image gets a hint to move channels.
    """
    x = _to_tensor(image, "image", where)
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(message(where, "one image, (1, C, H, W)",
                                     f"a batch of shape {tuple(x.shape)}",
                                     "Pick one image first, e.g. images[0]."))
        x = x[0]
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(message(where, "an image of shape (H, W), (C, H, W) or (1, C, H, W)",
                                 f"shape {tuple(x.shape)} (rank {x.dim()})",
                                 "Images and feature maps have 2, 3 or 4 axes; a flat vector "
                                 "(e.g. after nn.Flatten) has lost its layout."))
    if min(x.shape[1:]) == 0:
        raise ValueError(message(where, "an image with at least one row and column",
                                 f"shape {tuple(x.shape)}", "Check how it was sliced."))
    if channels is not None and x.shape[0] not in channels:
        hint = f"Use an image with {' or '.join(map(str, channels))} channels."
        if looks_hwc(tuple(x.shape)):
            hint = ("This looks like an HWC image (height, width, channels) as read from a PNG; "
                    "move the channels first with image.permute(2, 0, 1), or use "
                    "cnnlab.to_nchw(image).")
        elif x.shape[0] == 4:
            hint = "This looks like RGBA; drop the alpha channel with image[:3]."
        raise ValueError(message(where, f"{' or '.join(map(str, channels))} channels in "
                                 "(C, H, W)", f"shape {tuple(x.shape)}", hint))
    return x


def _grid(value: Any, name: str, where: str, hint: str = "") -> np.ndarray:
    """A small 2-D array of numbers for the grid diagrams."""
    array = as_array(value, name, where)
    if array.ndim != 2:
        raise ValueError(message(where, f"`{name}` as a 2-D grid (rows, columns)",
                                 f"shape {array.shape} (rank {array.ndim})", hint))
    if min(array.shape) == 0:
        raise ValueError(message(where, f"`{name}` with at least one row and column",
                                 f"shape {array.shape}"))
    return array


def _check_small(shape: tuple[int, ...], name: str, where: str) -> None:
    if max(shape) > _MAX_GRID:
        raise ValueError(message(where, f"`{name}` of at most {_MAX_GRID}x{_MAX_GRID} cells so "
                                 "the numbers stay readable", f"{shape[0]}x{shape[1]}",
                                 "For real images use plot_conv, which draws pixels "
                                 "instead of numbers."))


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _fmt(value: float) -> str:
    """A number as short text: integers without decimals, others with 3 significant digits."""
    value = float(value)
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


# --- drawing helpers ------------------------------------------------------------------------

def _draw_grid(ax: Any, values: np.ndarray, fills: Any = None, text_colours: Any = None,
               bold: Any = None, fontsize: float | None = None) -> None:
    """Draw ``values`` as a table of numbered cells (row 0 at the top), axes hidden."""
    from matplotlib.patches import Rectangle

    rows, cols = values.shape
    texts = [[_fmt(v) for v in row] for row in values]
    if fontsize is None:
        longest = max(len(t) for row in texts for t in row)
        fontsize = 12 if longest <= 2 else 10 if longest <= 4 else 8
    for i in range(rows):
        for j in range(cols):
            fill = _CELL if fills is None else fills[i][j]
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=fill, edgecolor="#606060", lw=0.8))
            ax.text(j + 0.5, i + 0.5, texts[i][j], ha="center", va="center", fontsize=fontsize,
                    color="black" if text_colours is None else text_colours[i][j],
                    fontweight="bold" if bold is not None and bold[i][j] else "normal",
                    gid="cell")
    ax.set_xlim(-0.15, cols + 0.15)
    ax.set_ylim(rows + 0.15, -0.15)
    ax.set_aspect("equal")
    ax.set_anchor("N")  # grids of different heights line up at the top
    ax.axis("off")


def _operator(ax: Any, symbol: str) -> None:
    ax.text(0.5, 0.5, symbol, ha="center", va="center", fontsize=22, transform=ax.transAxes)
    ax.axis("off")


def _show_image(ax: Any, chw: torch.Tensor, title: str, signed: bool = False) -> Any:
    """imshow a (C, H, W) tensor: RGB for 3 channels, a colormap for 1 (signed: red/blue).

    Values outside [0, 1] (RGB) or a signed map are contrast-stretched for display: the
    brightest and darkest 1% of values are clipped, so a few extreme pixels (often at the
    zero-padded border) do not wash out the rest.
    """
    ax.axis("off")
    ax.set_title(title)
    array = chw.numpy()
    if array.shape[0] == 3:
        if array.min() < 0 or array.max() > 1:
            low, high = np.percentile(array, [1, 99])
            array = np.clip((array - low) / (high - low), 0, 1) if high > low else array * 0
        return ax.imshow(array.transpose(1, 2, 0))
    if signed:
        limit = float(np.percentile(np.abs(array[0]), 99)) or 1.0
        return ax.imshow(array[0], cmap="RdBu_r", vmin=-limit, vmax=limit)
    return ax.imshow(array[0], cmap="gray")


# --- images and feature maps ----------------------------------------------------------------

def plot_conv(image: Any, kernel: Any, title: str | None = None) -> Any:
    """Show an image beside the image filtered with one 2-D kernel; returns the Figure.

    ``image`` is (H, W), (C, H, W) or (1, C, H, W) with 1 or 3 channels (tensor or array);
    ``kernel`` is (kH, kW). The kernel is applied to each channel separately, with zero
    padding that keeps the size (``padding="same"``). Panels: input, kernel (with its numbers
    when it is at most 7x7), output. A one-channel output of a kernel with negative weights is
    drawn red (positive) / blue (negative) around white zero; an RGB output outside [0, 1] is
    contrast-stretched for display (the extreme 1% of values clipped).
    """
    where = "plot_conv"
    x = _image_chw(image, where)
    k = _grid(kernel, "kernel", where,
              "plot_conv takes one 2-D kernel such as [[0, 1, 0], [1, -4, 1], [0, 1, 0]]; "
              "for a Conv2d layer use plot_convs, or pick one slice with weight[0, 0].")
    kh, kw = k.shape
    weight = torch.from_numpy(k.astype(np.float32)).view(1, 1, kh, kw)
    with torch.no_grad():  # each channel as a separate one-channel image
        out = torch.nn.functional.conv2d(x.unsqueeze(1), weight, padding="same")
    out = out[:, 0]
    signed = bool((k < 0).any())

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), width_ratios=[4, 2, 4],
                             layout="constrained")
    _show_image(axes[0], x, f"input ({_size(tuple(x.shape))})")
    if max(kh, kw) <= 7:
        _draw_grid(axes[1], k, fills=[[_KERNEL] * kw] * kh)
    else:
        axes[1].imshow(k, cmap="gray")
        axes[1].axis("off")
    axes[1].set_title(f"kernel ({kh}x{kw})")
    note = ""
    if x.shape[0] == 3 and (out.min() < 0 or out.max() > 1):
        note = "\ncontrast-stretched for display"
    image_artist = _show_image(axes[2], out, f"output ({_size(tuple(out.shape))}){note}",
                               signed=signed)
    if out.shape[0] == 1:
        fig.colorbar(image_artist, ax=axes[2], shrink=0.8)
    fig.suptitle(title or "input * kernel = output (the kernel slides over every pixel of "
                 "each channel)")
    return fig


def _conv_layer(layer: Any, where: str) -> Any:
    weight = getattr(layer, "weight", None)
    if not callable(layer) or weight is None or getattr(weight, "dim", lambda: 0)() != 4:
        raise TypeError(message(where, "a convolution layer such as nn.Conv2d(3, 7, 5)",
                                describe(layer),
                                "Build the layer first; for a bare weight tensor use "
                                "plot_filters(weight)."))
    return layer


def plot_convs(image: Any, conv_layer: Any, ncols: int | None = None) -> Any:
    """Apply a Conv2d layer to an image and show the input and every output channel.

    ``image`` is (H, W), (C, H, W) or (1, C, H, W) with C = ``conv_layer.in_channels``.
    One panel per output channel, each titled with its index and size; returns the Figure.
    """
    where = "plot_convs"
    layer = _conv_layer(conv_layer, where)
    in_channels = layer.weight.shape[1] * getattr(layer, "groups", 1)
    x = _image_chw(image, where, channels=None)
    if x.shape[0] != in_channels:
        hint = "Give the layer as many input channels as the image has."
        if looks_hwc(tuple(x.shape)) and x.shape[2] == in_channels:
            hint = ("The image looks HWC (height, width, channels); use image.permute(2, 0, 1) "
                    "or cnnlab.to_nchw(image).")
        elif x.shape[0] == 1 and in_channels == 3:
            hint = 'Load the photo in colour: load_image(name, mode="rgb").'
        elif x.shape[0] == 3 and in_channels == 1:
            hint = 'Load the photo in gray: load_image(name, mode="gray").'
        raise ValueError(message(where, f"an image with {in_channels} channel(s), as the layer "
                                 f"has in_channels={in_channels}",
                                 f"shape {tuple(x.shape)} ({x.shape[0]} channels)", hint))
    with torch.no_grad():
        maps = layer(x.unsqueeze(0).to(layer.weight.dtype))[0].float().cpu()
    count = maps.shape[0]
    ncols = _columns(ncols, count + 1, where)
    nrows = math.ceil((count + 1) / ncols)
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.4 * nrows + 0.6),
                             layout="constrained", squeeze=False)
    flat = axes.ravel()
    shown = x if x.shape[0] in (1, 3) else x[:1]
    _show_image(flat[0], shown, f"input ({_size(tuple(x.shape))})")
    for c in range(count):
        flat[c + 1].imshow(maps[c].numpy(), cmap="gray")
        flat[c + 1].set_title(f"output channel {c}", fontsize=10)
        flat[c + 1].axis("off")
    for ax in flat[count + 1:]:
        fig.delaxes(ax)
    fig.suptitle(f"{type(layer).__name__}: {in_channels} input channel(s) -> {count} output "
                 f"channels of {_size(tuple(maps.shape[1:]))}")
    return fig


def _columns(ncols: int | None, count: int, where: str) -> int:
    if ncols is None:
        return max(1, math.ceil(math.sqrt(count)))
    return min(as_int(ncols, "ncols", where, minimum=1), count)


def plot_feature_maps(maps: Any, ncols: int | None = None, title: str | None = None) -> Any:
    """Show every channel of a feature map (C, H, W) or (1, C, H, W) in a grid; returns the Figure.

    ``ncols`` defaults to a square grid (64 maps -> 8x8). Each map is scaled to its own range
    (gray colormap); axes are hidden, small maps are titled with their channel index.
    """
    where = "plot_feature_maps"
    x = _image_chw(maps, where, channels=None)
    if x.shape[-1] in (1, 3) and min(x.shape[0], x.shape[1]) > 4:
        raise ValueError(message(where, "channels first, (C, H, W)",
                                 f"shape {tuple(x.shape)}, which looks like HWC",
                                 "Move the channels first with maps.permute(2, 0, 1)."))
    count = x.shape[0]
    ncols = _columns(ncols, count, where)
    nrows = math.ceil(count / ncols)
    side = 1.4 if count > 16 else 2.4
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols, side * nrows + 0.6),
                             layout="constrained", squeeze=False)
    flat = axes.ravel()
    for c in range(count):
        flat[c].imshow(x[c].numpy(), cmap="gray")
        flat[c].axis("off")
        if count <= 16:
            flat[c].set_title(f"channel {c}", fontsize=9)
    for ax in flat[count:]:
        fig.delaxes(ax)
    fig.suptitle(title or f"{count} feature maps of {_size(tuple(x.shape[1:]))} "
                 "(each scaled to its own range)")
    return fig


def plot_images(images: Any, labels: Any = None, classes: Any = None, ncols: int = 8,
                title: str | None = None) -> Any:
    """Show a batch of images (N, C, H, W), C in 1 or 3, in rows of ``ncols``; returns the Figure.

    ``labels`` (N,) become panel titles, as names from ``classes`` when given.
    """
    where = "plot_images"
    x = _to_tensor(images, "images", where)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        hint = ("Move the channels first with images.permute(0, 3, 1, 2)."
                if x.dim() == 4 and x.shape[-1] in (1, 3) else
                "For a single image use plot_feature_maps or add a batch axis with x[None].")
        raise ValueError(message(where, "a batch of shape (N, C, H, W) with C = 1 or 3",
                                 f"shape {tuple(x.shape)}", hint))
    names = None
    if labels is not None:
        names = [int(v) for v in _to_tensor(labels, "labels", where).reshape(-1)]
        if len(names) != x.shape[0]:
            raise ValueError(message(where, f"one label per image ({x.shape[0]})",
                                     f"{len(names)} labels", "Pass labels[:n] with images[:n]."))
        if classes is not None:
            names = [classes[v] for v in names]
    ncols = _columns(ncols, x.shape[0], where)
    nrows = math.ceil(x.shape[0] / ncols)
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.6 * nrows + 0.5),
                             layout="constrained", squeeze=False)
    flat = axes.ravel()
    for i, image in enumerate(x):
        if image.shape[0] == 3:
            flat[i].imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
        else:
            flat[i].imshow(image[0].numpy(), cmap="gray")
        flat[i].axis("off")
        if names is not None:
            flat[i].set_title(str(names[i]), fontsize=9)
    for ax in flat[x.shape[0]:]:
        fig.delaxes(ax)
    fig.suptitle(title or f"{x.shape[0]} images of {_size(tuple(x.shape[2:]))}")
    return fig


def plot_filters(weight: Any, ncols: int | None = None) -> Any:
    """Show the filters of a conv weight (O, C, kH, kW) (or a Conv2d layer) as small images.

    With C == 3 each filter is an RGB tile, min-max normalised on its own; otherwise the first
    input channel of each filter is shown in gray. Returns the Figure.
    """
    where = "plot_filters"
    if hasattr(weight, "weight") and not is_tensor(weight):
        weight = _conv_layer(weight, where).weight
    w = _to_tensor(weight, "weight", where)
    if w.dim() != 4:
        hint = ("A single kernel (kH, kW) is shown best with plot_conv or plot_conv_grid."
                if w.dim() == 2 else "Pass layer.weight of an nn.Conv2d.")
        raise ValueError(message(where, "a weight of shape (out_channels, in_channels, kH, kW)",
                                 f"shape {tuple(w.shape)} (rank {w.dim()})", hint))
    count, channels, kh, kw = w.shape
    ncols = _columns(ncols, count, where)
    nrows = math.ceil(count / ncols)
    side = 1.0 if count > 16 else 1.8
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols, side * nrows + 0.6),
                             layout="constrained", squeeze=False)
    flat = axes.ravel()
    for o in range(count):
        if channels == 3:
            tile = w[o]
            low, high = tile.min(), tile.max()
            tile = (tile - low) / (high - low) if high > low else torch.zeros_like(tile)
            flat[o].imshow(tile.permute(1, 2, 0).numpy())
        else:
            flat[o].imshow(w[o, 0].numpy(), cmap="gray")
        flat[o].axis("off")
        if count <= 16:
            flat[o].set_title(f"filter {o}", fontsize=9)
    for ax in flat[count:]:
        fig.delaxes(ax)
    how = ("as RGB, each rescaled to 0..1" if channels == 3
           else f"input channel 0 of {channels}, gray")
    fig.suptitle(f"{count} filters of {channels}x{kh}x{kw} ({how})")
    return fig


# --- grid diagrams ----------------------------------------------------------------------------

def _window_cells(top: int, left: int, kh: int, kw: int, dh: int, dw: int) -> list[tuple]:
    return [(top + a * dh, left + b * dw) for a in range(kh) for b in range(kw)]


def _outline(ax: Any, top: int, left: int, height: int, width: int, colour: str,
             style: str = "-") -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((left, top), width, height, fill=False, edgecolor=colour, lw=3,
                           linestyle=style, zorder=5))


def plot_conv_grid(x: Any, kernel: Any, padding: Any = 0, stride: Any = 1, dilation: Any = 1,
                   position: tuple[int, int] = (0, 0)) -> Any:
    """Draw one step of a convolution with all its numbers; returns the Figure.

    ``x`` (H, W) and ``kernel`` (kH, kW) are small grids (at most 16x16 with padding). Panels:
    the input with its padding as a ring of gray zeros, the kernel window at output
    ``position`` = (row, column) shaded blue (each cell also shows the kernel weight it meets,
    small), the next window one stride away outlined in orange with an arrow; the kernel; and
    the output with the produced cell shaded. The title writes out the sum of products.
    Numbers come from ``cnnlab.ops.conv2d``.
    """
    where = "plot_conv_grid"
    grid = _grid(x, "x", where, "plot_conv_grid draws one channel; for several channels use "
                 "plot_channel_sum(x, weight).")
    k = _grid(kernel, "kernel", where, "The kernel is one 2-D grid (kH, kW), e.g. "
              "[[0, 1, 2], [2, 2, 0], [0, 1, 2]].")
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    sh, sw = as_pair(stride, "stride", where, minimum=1)
    dh, dw = as_pair(dilation, "dilation", where, minimum=1)
    out = ops.conv2d(grid, k, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    padded = np.pad(grid, ((ph, ph), (pw, pw)))
    _check_small(padded.shape, "x with its padding", where)
    _check_small(k.shape, "kernel", where)
    i, j = _position(position, out.shape, where)
    kh, kw = k.shape
    top, left = i * sh, j * sw
    window = _window_cells(top, left, kh, kw, dh, dw)

    rows, cols = padded.shape
    is_pad = np.ones(padded.shape, dtype=bool)
    is_pad[ph:ph + grid.shape[0], pw:pw + grid.shape[1]] = False
    fills = [[_PAD if is_pad[r, c] else _CELL for c in range(cols)] for r in range(rows)]
    colours = [[_PAD_TEXT if is_pad[r, c] else "black" for c in range(cols)]
               for r in range(rows)]
    for r, c in window:
        fills[r][c] = _WINDOW

    plt = _pyplot()
    height = max(rows, kh, out.shape[0])
    fig, axes = plt.subplots(1, 5, figsize=(0.55 * (cols + kw + out.shape[1]) + 3.0,
                                            0.55 * height + 1.8),
                             width_ratios=[cols + 1, 1.2, kw, 1.2, out.shape[1]],
                             layout="constrained")
    ax_in, ax_times, ax_k, ax_eq, ax_out = axes
    _draw_grid(ax_in, padded, fills, colours)
    for (r, c), weight in zip(window, k.ravel(), strict=True):
        ax_in.text(c + 0.93, r + 0.93, _fmt(weight), ha="right", va="bottom", fontsize=7,
                   color=_WINDOW_EDGE)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    _outline(ax_in, top, left, span_h, span_w, _WINDOW_EDGE)
    _draw_stride(ax_in, (i, j), out.shape, (sh, sw), (span_h, span_w))
    extras = [f"padding {ph}" if ph == pw else f"padding ({ph}, {pw})",
              f"stride {sh}" if sh == sw else f"stride ({sh}, {sw})"]
    if (dh, dw) != (1, 1):
        extras.append(f"dilation {dh}" if dh == dw else f"dilation ({dh}, {dw})")
    ax_in.set_title(f"input ({_size(grid.shape)})\n" + ", ".join(extras), fontsize=11)

    _operator(ax_times, "*")
    _draw_grid(ax_k, k, [[_KERNEL] * kw for _ in range(kh)])
    ax_k.set_title(f"kernel ({_size(k.shape)})", fontsize=11)
    _operator(ax_eq, "=")
    out_fills = [[_CELL] * out.shape[1] for _ in range(out.shape[0])]
    out_fills[i][j] = _WINDOW
    _draw_grid(ax_out, out, out_fills)
    _outline(ax_out, i, j, 1, 1, _WINDOW_EDGE)
    ax_out.set_title(f"output ({_size(out.shape)})", fontsize=11)

    values = [padded[r, c] for r, c in window]
    fig.suptitle(_sum_of_products(f"output[{i}, {j}]", values, k, out[i, j]), fontsize=11)
    return fig


def _position(position: Any, out_shape: tuple[int, int], where: str) -> tuple[int, int]:
    if not isinstance(position, (tuple, list)) or len(position) != 2:
        raise TypeError(message(where, "`position` as a (row, column) pair of the output",
                                describe(position), "For the top-left output use (0, 0)."))
    i = as_int(position[0], "position[0]", where, minimum=0)
    j = as_int(position[1], "position[1]", where, minimum=0)
    if i >= out_shape[0] or j >= out_shape[1]:
        raise ValueError(message(where, f"a `position` inside the output of shape "
                                 f"{_size(out_shape)} (rows 0..{out_shape[0] - 1}, columns "
                                 f"0..{out_shape[1] - 1})", f"position=({i}, {j})",
                                 "Positions count output cells, starting at 0."))
    return i, j


def _draw_stride(ax: Any, ij: tuple[int, int], out_shape: tuple[int, int],
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
    _outline(ax, top + step[0], left + step[1], span[0], span[1], _NEXT_EDGE, "--")
    rows, cols = ax.get_ylim()[0] - 0.15, ax.get_xlim()[1] - 0.15  # grid size
    if step[0] == 0:  # arrow above the grid, from this window's column to the next one's
        start, end = (left + 0.5, -0.35), (left + step[1] + 0.5, -0.35)
        label = {"x": (start[0] + end[0]) / 2, "y": -0.5, "ha": "center", "va": "bottom"}
    else:  # arrow right of the grid, from this window's row to the next one's
        start, end = (cols + 0.35, top + 0.5), (cols + 0.35, top + step[0] + 0.5)
        label = {"x": cols + 0.5, "y": (start[1] + end[1]) / 2, "ha": "left", "va": "center",
                 "rotation": 90}
    ax.annotate("", xy=end, xytext=start, annotation_clip=False,
                arrowprops={"arrowstyle": "->", "color": _NEXT_EDGE, "lw": 2})
    x, y = label.pop("x"), label.pop("y")
    ax.text(x, y, f"stride {max(step)}", color=_NEXT_EDGE, fontsize=9, clip_on=False, **label)
    ax.set_xlim(ax.get_xlim()[0], cols + 1.0)
    ax.set_ylim(rows + 0.15, -0.9)


def _sum_of_products(label: str, values: list, kernel: np.ndarray, result: float,
                     bias: float | None = None) -> str:
    """'label = (a*w + ...) + (...) = result', one bracket per kernel row (if not too long)."""
    kh, kw = kernel.shape
    if kh * kw > 25:
        terms = f"sum of {kh * kw} products"
    else:
        rows = []
        for a in range(kh):
            products = [f"{_fmt(values[a * kw + b])}*{_fmt(kernel[a, b])}" for b in range(kw)]
            rows.append("(" + " + ".join(products) + ")" if kw > 1 else products[0])
        per_line = 3 if kw <= 3 else 1
        lines = [" + ".join(rows[n:n + per_line]) for n in range(0, kh, per_line)]
        terms = "\n+ ".join(lines)
    if bias is not None:
        terms += f" + bias {_fmt(bias)}"
    return f"{label} = {terms} = {_fmt(result)}"


def plot_channel_sum(x: Any, weight: Any, bias: Any = None) -> Any:
    """How a multi-channel convolution makes ONE output map; returns the Figure.

    ``x`` is (C, H, W), ``weight`` is (C, kH, kW) (or (1, C, kH, kW)), ``bias`` a number or
    None; no padding, stride 1. One row per input channel: channel c * kernel slice c =
    partial map c. On the right: the sum of the partial maps (+ bias) = the output map.
    All grids show their numbers (at most 16x16 each).
    """
    where = "plot_channel_sum"
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
    _check_small(inp.shape[1:], "each channel of x", where)
    channels = inp.shape[0]
    partials = [ops.conv2d(inp[c], w[c]) for c in range(channels)]
    total = ops.conv2d(inp, w[None], bias=None if bias is None else [b])

    plt = _pyplot()
    h, wid = inp.shape[1:]
    kh, kw = w.shape[1:]
    ho, wo = total.shape[1:]
    fig = plt.figure(figsize=(0.5 * (wid + kw + 2 * wo) + 4.5, (0.5 * h + 0.9) * channels + 1),
                     layout="constrained")
    spec = fig.add_gridspec(channels, 7, width_ratios=[wid, 1.2, kw, 1.2, wo, 2.2, wo])
    for c in range(channels):
        ax = fig.add_subplot(spec[c, 0])
        _draw_grid(ax, inp[c])
        ax.set_title(f"input channel {c} ({h}x{wid})", fontsize=10)
        _operator(fig.add_subplot(spec[c, 1]), "*")
        ax = fig.add_subplot(spec[c, 2])
        _draw_grid(ax, w[c], [[_KERNEL] * kw for _ in range(kh)])
        ax.set_title(f"kernel slice {c} ({kh}x{kw})", fontsize=10)
        _operator(fig.add_subplot(spec[c, 3]), "=")
        ax = fig.add_subplot(spec[c, 4])
        _draw_grid(ax, partials[c], [[_WINDOW] * wo for _ in range(ho)])
        ax.set_title(f"partial map {c}", fontsize=10)
    sum_text = "sum over\nchannels" + (f"\n+ bias {_fmt(b)}" if bias is not None else "")
    ax = fig.add_subplot(spec[:, 5])
    ax.text(0.5, 0.5, sum_text + "\n=", ha="center", va="center", fontsize=12,
            transform=ax.transAxes)
    ax.axis("off")
    ax = fig.add_subplot(spec[:, 6])
    _draw_grid(ax, total[0], [[_WINDOW] * wo for _ in range(ho)])
    ax.set_title(f"output map ({ho}x{wo})", fontsize=10)
    first = " + ".join(_fmt(p[0, 0]) for p in partials)
    bias_text = f" + {_fmt(b)}" if bias is not None else ""
    fig.suptitle(f"{channels} input channels, one filter of shape {channels}x{kh}x{kw} -> one "
                 f"output map; e.g. output[0, 0] = {first}{bias_text} = {_fmt(total[0, 0, 0])}")
    return fig


def plot_pool_grid(x: Any, kernel_size: Any = 2, stride: Any = None, mode: str = "max") -> Any:
    """Draw pooling on a small grid: each window in its own colour, and the pooled output.

    ``x`` is (H, W) (at most 16x16); ``stride`` defaults to ``kernel_size``; ``mode`` is
    "max" (the winning cell of each window is bold) or "avg". Numbers come from
    ``cnnlab.ops.max_pool2d`` / ``avg_pool2d``. Returns the Figure.
    """
    where = "plot_pool_grid"
    if mode not in ("max", "avg"):
        raise ValueError(message(where, '`mode` "max" or "avg"', repr(mode),
                                 'Use mode="avg" for average pooling.'))
    grid = _grid(x, "x", where, "plot_pool_grid draws one channel: pass x[c] for channel c.")
    _check_small(grid.shape, "x", where)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = (kh, kw) if stride is None else as_pair(stride, "stride", where, minimum=1)
    pool = ops.max_pool2d if mode == "max" else ops.avg_pool2d
    out = pool(grid, (kh, kw), stride=(sh, sw))
    ho, wo = out.shape

    rows, cols = grid.shape
    fills = [[_CELL] * cols for _ in range(rows)]
    bold = np.zeros(grid.shape, dtype=bool)
    out_fills = [[_CELL] * wo for _ in range(ho)]
    for i in range(ho):
        for j in range(wo):
            colour = _POOL_COLOURS[(i * wo + j + i) % len(_POOL_COLOURS)]
            out_fills[i][j] = colour
            block = grid[i * sh:i * sh + kh, j * sw:j * sw + kw]
            for a in range(kh):
                for b in range(kw):
                    fills[i * sh + a][j * sw + b] = colour
            if mode == "max":
                a, b = np.unravel_index(np.argmax(block), block.shape)
                bold[i * sh + a, j * sw + b] = True
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(0.55 * (cols + wo) + 3.5, 0.55 * rows + 2.0),
                             width_ratios=[cols, 1.6, wo], layout="constrained")
    _draw_grid(axes[0], grid, fills, bold=bold if mode == "max" else None)
    for i in range(ho):
        for j in range(wo):
            _outline(axes[0], i * sh, j * sw, kh, kw, "#404040")
    axes[0].set_title(f"input ({_size(grid.shape)})", fontsize=11)
    name = "max" if mode == "max" else "average"
    _operator(axes[1], "\u2192")
    axes[1].set_title(f"{name} of\neach window", fontsize=10)
    _draw_grid(axes[2], out, out_fills)
    axes[2].set_title(f"output ({_size(out.shape)})", fontsize=11)
    step = f"stride {sh}" if sh == sw else f"stride ({sh}, {sw})"
    fig.suptitle(f"{name} pooling {kh}x{kw}, {step}\ninput ({_size(grid.shape)}) -> "
                 f"output ({_size(out.shape)}), no weights to learn")
    return fig


# --- training curves --------------------------------------------------------------------------

_HISTORY_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc")


def _history_lists(history: Any, name: str, where: str) -> dict[str, list[float]]:
    lists = {}
    for key in _HISTORY_KEYS:
        if isinstance(history, Mapping):
            value = history.get(key)
        else:
            value = getattr(history, key, None)
        if value is None:
            raise TypeError(message(where, "a History (attributes or keys train_loss, "
                                    "train_acc, test_loss, test_acc) or a dict name -> History",
                                    f"{name}: {describe(history)} without `{key}`",
                                    "Pass what cnnlab.fit returns, or a dict of those."))
        try:
            lists[key] = [float(v) for v in value]
        except (TypeError, ValueError) as error:
            raise TypeError(message(where, f"`{key}` as a list of per-epoch numbers",
                                    f"{name}: {describe(value)}")) from error
    if not lists["train_loss"]:
        raise ValueError(message(where, "at least one epoch in `train_loss`",
                                 f"{name}: an empty list", "Train for an epoch first."))
    return lists


def plot_history(histories: Any, title: str | None = None) -> Any:
    """Learning curves: loss (left) and accuracy (right) per epoch; returns the Figure.

    ``histories`` is one History or a dict name -> History. A History has attributes or keys
    ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``: lists of per-epoch floats (the
    test lists may be empty). Train is drawn solid, test dashed, one colour per run.
    """
    where = "plot_history"
    if isinstance(histories, Mapping) and not all(k in histories for k in _HISTORY_KEYS):
        runs = dict(histories)
        if not runs:
            raise ValueError(message(where, "at least one History", "an empty dict"))
    else:
        runs = {"": histories}
    data = {name: _history_lists(h, repr(name) if name else "history", where)
            for name, h in runs.items()}
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for index, (name, lists) in enumerate(data.items()):
        colour = f"C{index}"
        prefix = f"{name} " if name else ""
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            for split, style in (("train", "-"), ("test", "--")):
                values = lists[f"{split}_{metric}"]
                if values:
                    epochs = range(1, len(values) + 1)
                    ax.plot(epochs, values, style, color=colour, marker="o", markersize=3,
                            label=f"{prefix}{split}")
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label} per epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title or "learning curves (solid: train, dashed: test)")
    return fig
