"""Figures of images, feature maps and filters. Each function returns its Figure.

Images are PyTorch-style: (H, W), (C, H, W) or (1, C, H, W), as tensors or NumPy arrays;
batches are (N, C, H, W). Panels of many images share one tiling helper (``_tile_figure``).
Titles say what each panel shows; inputs and outputs are labelled. The numbered grid
diagrams live in ``cnnlab.diagrams``, learning curves in ``cnnlab.curves``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cnnlab._checks import (
    as_float_tensor,
    as_int,
    describe,
    image_chw,
    is_tensor,
    layout_hint,
    looks_hwc,
    message,
)
from cnnlab.figures import check_text, describe_figure
from cnnlab.grids import KERNEL, as_grid, draw_grid, rows_text, size_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

__all__ = ["plot_conv", "plot_convs", "plot_feature_maps", "plot_filters", "plot_images"]


def _pyplot() -> Any:
    import matplotlib.pyplot as plt

    return plt


# --- input checks ---------------------------------------------------------------------------

def _conv_layer(layer: Any, where: str) -> Any:
    weight = getattr(layer, "weight", None)
    if not callable(layer) or weight is None or getattr(weight, "dim", lambda: 0)() != 4:
        raise TypeError(message(where, "a convolution layer such as nn.Conv2d(3, 7, 5)",
                                describe(layer),
                                "Build the layer first; for a bare weight tensor use "
                                "plot_filters(weight)."))
    return layer


def _columns(ncols: int | None, count: int, where: str) -> int:
    if ncols is None:
        return max(1, math.ceil(math.sqrt(count)))
    return min(as_int(ncols, "ncols", where, minimum=1), count)


def _grid_text(count: int, ncols: int) -> str:
    """How ``count`` panels in rows of ``ncols`` are laid out, for alt text."""
    nrows = math.ceil(count / ncols)
    if nrows == 1:
        return f"in one row of {count}"
    return f"in {nrows} rows of {ncols}"


def _kind(chw: torch.Tensor) -> str:
    return "RGB" if chw.shape[0] == 3 else "gray"


# --- drawing helpers ------------------------------------------------------------------------

def _display_array(chw: torch.Tensor) -> np.ndarray:
    """A (C, H, W) tensor as what imshow draws: (H, W, 3) in [0, 1] for RGB, else (H, W).

    RGB values outside [0, 1] are contrast-stretched: the brightest and darkest 1% are
    clipped, so a few extreme pixels (often at the zero-padded border) do not wash out the rest.
    """
    array = chw.numpy()
    if array.shape[0] != 3:
        return array[0]
    if array.min() < 0 or array.max() > 1:
        low, high = np.percentile(array, [1, 99])
        array = np.clip((array - low) / (high - low), 0, 1) if high > low else array * 0
    return array.transpose(1, 2, 0)


def _show_image(ax: Axes, chw: torch.Tensor, title: str, signed: bool = False) -> AxesImage:
    """imshow a (C, H, W) tensor: RGB for 3 channels, a colormap for 1 (signed: red/blue)."""
    ax.axis("off")
    ax.set_title(title)
    array = _display_array(chw)
    if signed and array.ndim == 2:
        limit = float(np.percentile(np.abs(array), 99)) or 1.0
        return ax.imshow(array, cmap="RdBu_r", vmin=-limit, vmax=limit)
    return ax.imshow(array, cmap="gray")


def _tile_figure(tiles: Sequence[tuple[np.ndarray, str]], ncols: int | None,
                 cell: tuple[float, float], title: str, where: str,
                 fontsize: float = 9) -> Figure:
    """One panel per (image, label) in rows of ``ncols``; the one tiling helper of cnnlab.

    Each image is (H, W) (gray, scaled to its own range) or (H, W, 3) (RGB in [0, 1]); an
    empty label gives no panel title. ``cell`` is one panel's (width, height) in inches.
    """
    count = len(tiles)
    ncols = _columns(ncols, count, where)
    nrows = math.ceil(count / ncols)
    fig, axes = _pyplot().subplots(nrows, ncols, squeeze=False, layout="constrained",
                                   figsize=(cell[0] * ncols, cell[1] * nrows + 0.6))
    flat = axes.ravel()
    for ax, (image, label) in zip(flat, tiles, strict=False):
        ax.imshow(image, cmap="gray")
        ax.axis("off")
        if label:
            ax.set_title(label, fontsize=fontsize)
    for ax in flat[count:]:
        fig.delaxes(ax)
    fig.suptitle(title)
    return fig


# --- images and feature maps ----------------------------------------------------------------

def plot_conv(image: Any, kernel: Any, title: str | None = None,
              alt: str | None = None) -> Figure:
    """Show an image beside the image filtered with one 2-D kernel; returns the Figure.

    ``image`` is (H, W), (C, H, W) or (1, C, H, W) with 1 or 3 channels (tensor or array);
    ``kernel`` is (kH, kW). The kernel is applied to each channel separately, with zero
    padding that keeps the size (``padding="same"``). Panels: input, kernel (with its numbers
    when it is at most 7x7), output. A one-channel output of a kernel with negative weights is
    drawn red (positive) / blue (negative) around white zero; an RGB output outside [0, 1] is
    contrast-stretched for display (the extreme 1% of values clipped). ``alt`` replaces the
    default alt text (see ``cnnlab.describe_figure``).
    """
    where = "plot_conv"
    alt = check_text(alt, "alt", where)
    x = image_chw(image, where)
    k = as_grid(kernel, "kernel", where,
                "plot_conv takes one 2-D kernel such as [[0, 1, 0], [1, -4, 1], [0, 1, 0]]; "
                "for a Conv2d layer use plot_convs, or pick one slice with weight[0, 0].")
    kh, kw = k.shape
    weight = torch.from_numpy(k.astype(np.float32)).view(1, 1, kh, kw)
    with torch.no_grad():  # each channel as a separate one-channel image
        out = torch.nn.functional.conv2d(x.unsqueeze(1), weight, padding="same")
    out = out[:, 0]

    fig, axes = _pyplot().subplots(1, 3, figsize=(11, 4), width_ratios=[4, 2, 4],
                                   layout="constrained")
    _show_image(axes[0], x, f"input ({size_text(tuple(x.shape))})")
    if max(kh, kw) <= 7:
        draw_grid(axes[1], k, KERNEL)
    else:
        axes[1].imshow(k, cmap="gray")
        axes[1].axis("off")
    axes[1].set_title(f"kernel ({kh}x{kw})")
    note = ""
    if x.shape[0] == 3 and (out.min() < 0 or out.max() > 1):
        note = "\ncontrast-stretched for display"
    image_artist = _show_image(axes[2], out, f"output ({size_text(tuple(out.shape))}){note}",
                               signed=bool((k < 0).any()))
    if out.shape[0] == 1:
        fig.colorbar(image_artist, ax=axes[2], shrink=0.8)
    title = title or ("input * kernel = output (the kernel slides over every pixel of each "
                      "channel)")
    fig.suptitle(title)
    numbers = f" ({rows_text(k)})" if max(kh, kw) <= 7 else ", drawn as a gray image"
    if out.shape[0] == 3:
        look = "in colour" + (", contrast-stretched for display" if note else "")
    elif (k < 0).any():
        look = "red where positive and blue where negative around white zero, with a colour bar"
    else:
        look = "in gray, with a colour bar"
    return describe_figure(fig, alt or (
        f"Three panels. Left: the input image, {size_text(tuple(x.shape))} ({_kind(x)}). "
        f"Middle: the {kh}x{kw} kernel{numbers}. Right: the output, "
        f"{size_text(tuple(out.shape))}, the image filtered by the kernel, drawn {look}. "
        f"Title: {title}."))


def plot_convs(image: Any, conv_layer: Any, ncols: int | None = None,
               alt: str | None = None) -> Figure:
    """Apply a Conv2d layer to an image and show the input and every output channel.

    ``image`` is (H, W), (C, H, W) or (1, C, H, W) with C = ``conv_layer.in_channels``.
    One panel per output channel, each titled with its index and size; returns the Figure.
    ``alt`` replaces the default alt text.
    """
    where = "plot_convs"
    alt = check_text(alt, "alt", where)
    layer = _conv_layer(conv_layer, where)
    in_channels = layer.weight.shape[1] * getattr(layer, "groups", 1)
    x = image_chw(image, where, channels=None)
    if x.shape[0] != in_channels:
        fixes = {(1, 3): 'Load the photo in colour: load_image(name, mode="rgb").',
                 (3, 1): 'Load the photo in gray: load_image(name, mode="gray").'}
        hint = layout_hint(tuple(x.shape), "image") or fixes.get(
            (x.shape[0], in_channels), "Give the layer as many input channels as the image has.")
        raise ValueError(message(where, f"an image with {in_channels} channel(s), as the layer "
                                 f"has in_channels={in_channels}",
                                 f"shape {tuple(x.shape)} ({x.shape[0]} channels)", hint))
    with torch.no_grad():
        maps = layer(x.unsqueeze(0).to(layer.weight.dtype))[0].float().cpu()
    shown = x if x.shape[0] in (1, 3) else x[:1]
    tiles = [(_display_array(shown), f"input ({size_text(tuple(x.shape))})")]
    tiles += [(m.numpy(), f"output channel {c}") for c, m in enumerate(maps)]
    title = (f"{type(layer).__name__}: {in_channels} input channel(s) -> {maps.shape[0]} output "
             f"channels of {size_text(tuple(maps.shape[1:]))}")
    fig = _tile_figure(tiles, ncols, (2.6, 2.4), title, where, fontsize=10)
    kh, kw = layer.weight.shape[2:]
    return describe_figure(fig, alt or (
        f"{len(tiles)} panels {_grid_text(len(tiles), _columns(ncols, len(tiles), where))}: "
        f"the input image ({size_text(tuple(x.shape))}, {_kind(shown)}), then output channels "
        f"0 to {maps.shape[0] - 1} of a {type(layer).__name__} layer with {kh}x{kw} kernels, "
        f"each {size_text(tuple(maps.shape[1:]))} in gray scaled to its own range. "
        f"Title: {title}."))


def plot_feature_maps(maps: Any, ncols: int | None = None, title: str | None = None,
                      panel_size: float | None = None, alt: str | None = None) -> Figure:
    """Show every channel of a feature map (C, H, W) or (1, C, H, W) in a grid; returns the Figure.

    ``ncols`` defaults to a square grid (64 maps -> 8x8). Each map is scaled to its own range
    (gray colormap); axes are hidden, up to 16 maps are titled with their channel index.
    ``panel_size`` is one panel's side in inches (default 2.4 up to 16 maps, else 1.4); a
    smaller one keeps a figure of many noisy maps light in a saved notebook. ``alt`` replaces
    the default alt text.
    """
    where = "plot_feature_maps"
    alt = check_text(alt, "alt", where)
    x = image_chw(maps, where, channels=None)
    # Maps may have any number of channels, and (64, 1, 1) or (16, 3, 3) are channels first;
    # only a photo (channels last by the layout rule, both sides over 4 pixels) is refused.
    if looks_hwc(tuple(x.shape)) and min(x.shape[:2]) > 4:
        raise ValueError(message(where, "channels first, (C, H, W)",
                                 f"shape {tuple(x.shape)}, which looks like HWC",
                                 layout_hint(tuple(x.shape), "maps")))
    count = x.shape[0]
    tiles = [(m.numpy(), f"channel {c}" if count <= 16 else "") for c, m in enumerate(x)]
    side = 1.4 if count > 16 else 2.4
    if panel_size is not None:
        if isinstance(panel_size, bool) or not isinstance(panel_size, numbers.Real):
            raise TypeError(message(where, "`panel_size` as a number of inches",
                                    describe(panel_size), "Try panel_size=1.0."))
        if not panel_size > 0:
            raise ValueError(message(where, "`panel_size` > 0 (inches per panel)",
                                     repr(panel_size), "Try panel_size=1.0."))
        side = float(panel_size)
    size = size_text(tuple(x.shape[1:]))
    title = title or f"{count} feature maps of {size} (each scaled to its own range)"
    fig = _tile_figure(tiles, ncols, (side, side), title, where)
    named = f", titled channel 0 to channel {count - 1}" if 1 < count <= 16 else ""
    return describe_figure(fig, alt or (
        f"{count} feature map{'s' if count > 1 else ''} of {size} "
        f"{_grid_text(count, _columns(ncols, count, where))}{named}, each drawn in gray on its "
        f"own scale (dark: low, light: high). Title: {title}."))


def plot_images(images: Any, labels: Any = None, classes: Any = None, ncols: int = 8,
                title: str | None = None, alt: str | None = None) -> Figure:
    """Show a batch of images (N, C, H, W), C in 1 or 3, in rows of ``ncols``; returns the Figure.

    ``labels`` (N,) become panel titles, as names from ``classes`` when given. ``alt``
    replaces the default alt text.
    """
    where = "plot_images"
    alt = check_text(alt, "alt", where)
    x = as_float_tensor(images, "images", where)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        hint = (layout_hint(tuple(x.shape), "images") if x.dim() == 4 else "") or (
            "For a single image use plot_feature_maps or add a batch axis with x[None].")
        raise ValueError(message(where, "a batch of shape (N, C, H, W) with C = 1 or 3",
                                 f"shape {tuple(x.shape)}", hint))
    names = [""] * x.shape[0]
    if labels is not None:
        indices = [int(v) for v in as_float_tensor(labels, "labels", where).reshape(-1)]
        if len(indices) != x.shape[0]:
            raise ValueError(message(where, f"one label per image ({x.shape[0]})",
                                     f"{len(indices)} labels",
                                     "Pass labels[:n] with images[:n]."))
        names = [str(classes[v] if classes is not None else v) for v in indices]
    tiles = [(_display_array(image.clamp(0, 1) if image.shape[0] == 3 else image), name)
             for image, name in zip(x, names, strict=True)]
    count, size = x.shape[0], size_text(tuple(x.shape[2:]))
    title = title or f"{count} images of {size}"
    fig = _tile_figure(tiles, ncols, (1.5, 1.6), title, where)
    shown = ", ".join(names[:24]) + (", ..." if count > 24 else "")
    return describe_figure(fig, alt or (
        f"{count} {_kind(x[0])} image{'s' if count > 1 else ''} of {size} "
        f"{_grid_text(count, _columns(ncols, count, where))}"
        + (f", labelled {shown}" if labels is not None else "") + f". Title: {title}."))


def plot_filters(weight: Any, ncols: int | None = None, title: str | None = None,
                 alt: str | None = None) -> Figure:
    """Show the filters of a conv weight (O, C, kH, kW) (or a Conv2d layer) as small images.

    With C == 3 each filter is an RGB tile, min-max normalised on its own; otherwise the first
    input channel of each filter is shown in gray. ``title`` replaces the default one, which
    says how many filters of which shape are drawn and how; ``alt`` replaces the default alt
    text. Returns the Figure.
    """
    where = "plot_filters"
    alt = check_text(alt, "alt", where)
    if hasattr(weight, "weight") and not is_tensor(weight):
        weight = _conv_layer(weight, where).weight
    w = as_float_tensor(weight, "weight", where)
    if w.dim() != 4:
        hint = ("A single kernel (kH, kW) is shown best with plot_conv or plot_conv_grid."
                if w.dim() == 2 else "Pass layer.weight of an nn.Conv2d.")
        raise ValueError(message(where, "a weight of shape (out_channels, in_channels, kH, kW)",
                                 f"shape {tuple(w.shape)} (rank {w.dim()})", hint))
    count, channels, kh, kw = w.shape
    if channels == 3:
        low = w.amin(dim=(1, 2, 3), keepdim=True)
        span = w.amax(dim=(1, 2, 3), keepdim=True) - low
        shown = torch.where(span > 0, (w - low) / span.clamp_min(1e-12), 0.0)
        arrays = [tile.permute(1, 2, 0).numpy() for tile in shown]
    else:
        arrays = [tile[0].numpy() for tile in w]
    tiles = [(a, f"filter {o}" if count <= 16 else "") for o, a in enumerate(arrays)]
    how = ("as RGB, each rescaled to 0..1" if channels == 3
           else f"input channel 0 of {channels}, gray")
    side = 1.0 if count > 16 else 1.8
    title = title or f"{count} filters of {channels}x{kh}x{kw} ({how})"
    fig = _tile_figure(tiles, ncols, (side, side), title, where)
    look = ("as small colour images, each rescaled to 0..1" if channels == 3
            else f"as small gray images of input channel 0 of {channels}")
    return describe_figure(fig, alt or (
        f"{count} convolution filter{'s' if count > 1 else ''} of shape {channels}x{kh}x{kw} "
        f"{_grid_text(count, _columns(ncols, count, where))}, drawn {look}. Title: {title}."))
