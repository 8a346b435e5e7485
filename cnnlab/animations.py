"""Animations where a picture moves: the window of a convolution or a max pool sliding over
its input, and the gradient flowing back through a max pool.

Each function returns an ``Animation``: frames drawn with Pillow (no matplotlib), encoded as
an animated GIF that a notebook shows inline. Every number comes from ``cnnlab.shapes`` /
``cnnlab.ops``. Pillow is imported only when an animation is drawn, so ``import cnnlab``
stays cheap.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab._checks import as_pair, describe, message
from cnnlab.figures import check_text
from cnnlab.grids import (
    as_grid,
    check_small,
    fmt,
    pair_text,
    pool_grid_args,
    rows_text,
    size_text,
)
from cnnlab.shapes import conv_output_size

if TYPE_CHECKING:
    from PIL import Image, ImageDraw

__all__ = ["Animation", "animate_conv", "animate_pool", "animate_pool_backward"]

# colours (RGB); every one is in the GIF palette, so cell centres keep them exactly
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (96, 96, 96)
PAD_EDGE = (150, 150, 150)
INPUT = (207, 226, 255)  # input cells
TAP = (59, 120, 216)  # input cells the kernel reads now, and the output cell they produce
SPAN = (20, 60, 140)  # outline of the window's whole span (dilation gaps inside it)
OUTPUT = (226, 244, 220)  # output cells not computed yet
DONE = (147, 196, 125)  # output cells already computed
WINDOW = (255, 214, 153)  # a pooling window
WINNER = (230, 120, 20)  # the maximum of the window (pooling), or where a gradient lands
GRAD = (255, 236, 170)  # input-gradient cells that have received a gradient
ARROW = (200, 40, 40)
_COLOURS = (WHITE, BLACK, GRID, PAD_EDGE, INPUT, TAP, SPAN, OUTPUT, DONE, WINDOW, WINNER, GRAD,
            ARROW)

CELL = 34  # pixels per grid cell
MARGIN = 16
TITLE = 26  # height of the panel titles
GAP = 56  # between panels
FRAME_MS = 700
LAST_MS = 2000  # hold the finished picture before the loop starts again


class Animation:
    """An animated picture: ``frames`` (PIL RGB images), ``gif`` (bytes), ``save(path)``.

    ``description`` is the one-line text (repr, text/plain); ``alt`` the alt text of the
    ``<img>`` in a notebook (what the frames show, for screen readers), by default the
    description. ``values`` holds, per frame, the numbers of the grid being filled in (NaN
    where nothing is shown yet) for the pooling animations, and is empty for ``animate_conv``.
    """

    def __init__(self, frames: list[Image.Image], description: str,
                 values: list[np.ndarray] | None = None, alt: str | None = None) -> None:
        self.frames, self.description, self.values = frames, description, values or []
        self.alt = check_text(alt, "alt", "Animation") or description
        self.durations = [FRAME_MS] * (len(frames) - 1) + [LAST_MS]

    @cached_property
    def gif(self) -> bytes:
        """The animated GIF, encoded once (same frames -> same bytes)."""
        return _encode_gif(self.frames, self.durations)

    def save(self, path: str | Path) -> Path:
        """Write the GIF to ``path`` (give it a .gif name) and return the path."""
        path = Path(path)
        path.write_bytes(self.gif)
        return path

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return self.description

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """text/html (an inline <img>, shown by JupyterLab and nbconvert's HTML), image/gif
        (viewers that read image outputs) and text/plain (anything else)."""
        data = base64.b64encode(self.gif).decode("ascii")
        width, height = self.frames[0].size
        alt = html.escape(self.alt, quote=True)
        return {
            "text/html": f'<img src="data:image/gif;base64,{data}" width="{width}" '
                         f'height="{height}" alt="{alt}">',
            "image/gif": data,
            "text/plain": self.description,
        }


# --- public functions -------------------------------------------------------------------------

def animate_conv(in_size: int | tuple[int, int] = 5, kernel_size: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, alt: str | None = None) -> Animation:
    """The kernel's footprint sliding over an (H, W) input, as in conv_arithmetic's figures.

    Left: the input with its padding ring (white, dashed); the cells the kernel reads are dark
    blue, its whole span outlined (dilation gaps show inside it). Right: the output, the cell
    being computed in the same blue, those done in green. One frame per output position.
    ``alt`` replaces the default alt text of the notebook's ``<img>``.
    """
    where = "animate_conv"
    alt = check_text(alt, "alt", where)
    h, w = as_pair(in_size, "in_size", where, minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = as_pair(stride, "stride", where, minimum=1)
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    dh, dw = as_pair(dilation, "dilation", where, minimum=1)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if span_h > h + 2 * ph or span_w > w + 2 * pw:
        extra = f" (dilation {pair_text(dh, dw)})" if max(dh, dw) > 1 else ""
        raise ValueError(message(
            where, f"a kernel no larger than the padded input ({h + 2 * ph}x{w + 2 * pw})",
            f"a {kh}x{kw} kernel{extra} spanning {span_h}x{span_w} cells",
            "Use a smaller kernel or dilation, or add padding."))
    check_small((h + 2 * ph, w + 2 * pw), "the padded input", where)
    ho, wo = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)

    dilated = f", dilation {pair_text(dh, dw)}" if max(dh, dw) > 1 else ""
    caption = (f"input {h}x{w}, {kh}x{kw} kernel, padding {pair_text(ph, pw)}, "
               f"stride {pair_text(sh, sw)}{dilated} -> output {ho}x{wo}")
    footers = [f"step {k + 1} of {ho * wo}: output[{k // wo}, {k % wo}]" for k in range(ho * wo)]
    pad_note = f", padding {pair_text(ph, pw)} (dashed)" if max(ph, pw) > 0 else ""
    layout = _Layout([(h + 2 * ph, w + 2 * pw), (ho, wo)], caption, footers,
                     [f"input {h}x{w}{pad_note}", f"output {ho}x{wo}"])
    padding_ring = np.ones((h + 2 * ph, w + 2 * pw), dtype=bool)
    padding_ring[ph:ph + h, pw:pw + w] = False

    def draw_step(draw: ImageDraw.ImageDraw, step: int) -> None:
        i, j = divmod(step, wo)
        taps = {(i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)}
        layout.grid(draw, 0, np.full(padding_ring.shape, np.nan), lambda r, c: (
            TAP if (r, c) in taps else WHITE if padding_ring[r, c] else INPUT), padding_ring)
        layout.outline(draw, 0, i * sh, j * sw, span_h, span_w, SPAN)
        layout.grid(draw, 1, np.full((ho, wo), np.nan), _progress(step, wo, TAP, OUTPUT))

    frames = layout.render(draw_step)
    description = (f"Animation: {kh}x{kw} kernel over {h}x{w} input, padding "
                   f"{pair_text(ph, pw)}, stride {pair_text(sh, sw)}{dilated} -> {ho}x{wo} "
                   f"output, {len(frames)} frames")
    ring = f" with a dashed ring of padding {pair_text(ph, pw)}" if max(ph, pw) else ""
    gaps = f" with dilation {pair_text(dh, dw)} (it reads cells that far apart)" if max(
        dh, dw) > 1 else ""
    return Animation(frames, description, alt=alt or (
        f"Looping animation of {len(frames)} frames: a {kh}x{kw} kernel{gaps} slides with "
        f"stride {pair_text(sh, sw)} over a {h}x{w} input{ring}, one output position per "
        f"frame. The input cells it reads are dark blue and its span is outlined; on the "
        f"right, the {ho}x{wo} output fills in cell by cell, the current cell blue, finished "
        f"ones green. Caption: {caption}."))


def animate_pool(x: Any, kernel_size: int | tuple[int, int] = 2,
                 stride: int | tuple[int, int] | None = None,
                 alt: str | None = None) -> Animation:
    """Max pooling's window moving over a small (H, W) grid of numbers.

    Left: the input, the current window shaded and its maximum (the first one in reading
    order, as in PyTorch) in orange. Right: the output filling in, one frame per output cell.
    Numbers come from ``cnnlab.max_pool2d``. ``alt`` replaces the default alt text.
    """
    alt = check_text(alt, "alt", "animate_pool")
    grid, kernel, stride, out, targets = _pool_setup("animate_pool", x, kernel_size, stride)
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out.shape
    caption = (f"max pooling {kh}x{kw}, stride {pair_text(sh, sw)}: input "
               f"{size_text(grid.shape)} -> output {size_text(out.shape)}")
    footers = [f"step {k + 1} of {ho * wo}: output[{k // wo}, {k % wo}] = max of the window = "
               f"{fmt(out[k // wo, k % wo])}" for k in range(ho * wo)]
    layout = _Layout([grid.shape, out.shape], caption, footers,
                     [f"input {size_text(grid.shape)}", f"output {size_text(out.shape)}"])
    order = np.arange(ho * wo).reshape(ho, wo)  # the output cells in reading order
    values = [np.where(order <= step, out, np.nan) for step in range(ho * wo)]

    def draw_step(draw: ImageDraw.ImageDraw, step: int) -> None:
        _draw_pool_input(layout, draw, grid, divmod(step, wo), kernel, stride, targets[step])
        layout.grid(draw, 1, values[step], _progress(step, wo, WINNER, WHITE))

    frames = layout.render(draw_step)
    description = (f"Animation: {kh}x{kw} max pooling, stride {pair_text(sh, sw)}, over "
                   f"{size_text(grid.shape)} input -> {size_text(out.shape)} output, "
                   f"{len(frames)} frames")
    return Animation(frames, description, values, alt=alt or (
        f"Looping animation of {len(frames)} frames: a {kh}x{kw} max-pooling window moves "
        f"with stride {pair_text(sh, sw)} over a {size_text(grid.shape)} grid "
        f"({rows_text(grid)}). Each frame shades the window, marks its maximum in orange and "
        f"writes it into the {size_text(out.shape)} output, which ends as "
        f"({rows_text(out)}).").replace(" ()", ""))


def animate_pool_backward(x: Any, dout: Any, kernel_size: int | tuple[int, int] = 2,
                          stride: int | tuple[int, int] | None = None,
                          alt: str | None = None) -> Animation:
    """The gradient flowing back through a max pool over a small (H, W) grid.

    Left: the input x, the window and its maximum (first in reading order, as PyTorch).
    Middle: ``dout``, the gradient of the loss with respect to the pooled output, same shape as
    that output. Right: ``dx`` filling in: each ``dout[i, j]`` travels whole to its window's
    maximum (overlapping windows add up); every other cell stays 0. One frame per output cell.
    ``alt`` replaces the default alt text.
    """
    where = "animate_pool_backward"
    alt = check_text(alt, "alt", where)
    grid, kernel, stride, out, targets = _pool_setup(where, x, kernel_size, stride)
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out.shape
    g = as_grid(dout, "dout", where, f"dout has the pooled output's shape, {ho}x{wo}.")
    if g.shape != out.shape:
        hint = ("That is the shape of x: dout is the gradient with respect to the *output*."
                if g.shape == grid.shape else
                f"Max pooling {kh}x{kw} with stride {pair_text(sh, sw)} turns "
                f"{size_text(grid.shape)} into {ho}x{wo}; dout has that shape.")
        raise ValueError(message(where, f"`dout` of shape ({ho}, {wo}), the shape of the "
                                 "pooled output", f"{describe(g)}", hint))
    caption = (f"max pooling {kh}x{kw}, stride {pair_text(sh, sw)}: each gradient goes to "
               "its window's maximum")
    footers = [f"step {k + 1} of {ho * wo}: dout[{k // wo}, {k % wo}] = {fmt(g.flat[k])} "
               f"-> dx[{r}, {c}]" for k, (r, c) in enumerate(targets)]
    layout = _Layout([grid.shape, g.shape, grid.shape], caption, footers,
                     [f"input x {size_text(grid.shape)}", f"dout {ho}x{wo}",
                      f"dx {size_text(grid.shape)}"])
    dx = np.zeros(grid.shape, dtype=np.result_type(g.dtype, np.float32))
    values = []  # dx after each step: dout[i, j] added at its window's maximum
    for step, target in enumerate(targets):
        dx[target] += g.flat[step]
        values.append(dx.copy())

    def draw_step(draw: ImageDraw.ImageDraw, step: int) -> None:
        (i, j), target = divmod(step, wo), targets[step]
        _draw_pool_input(layout, draw, grid, (i, j), kernel, stride, target)
        layout.grid(draw, 1, g, _progress(step, wo, WINNER, WHITE))
        layout.grid(draw, 2, values[step], lambda r, c: (
            WINNER if (r, c) == target else GRAD if (r, c) in targets[:step] else WHITE))
        # from dout's right edge, on row i, to the left edge of dx[target]
        layout.arrow(draw, (1, i + 0.5, wo), (2, target[0] + 0.5, target[1]))

    frames = layout.render(draw_step)
    description = (f"Animation: gradient through {kh}x{kw} max pooling, stride "
                   f"{pair_text(sh, sw)}: dout {ho}x{wo} -> dx {size_text(grid.shape)}, "
                   f"{len(frames)} frames")
    return Animation(frames, description, values, alt=alt or (
        f"Looping animation of {len(frames)} frames: the gradient flowing back through "
        f"{kh}x{kw} max pooling with stride {pair_text(sh, sw)}. Left: the input x, "
        f"{size_text(grid.shape)} ({rows_text(grid)}), with the current window and its "
        f"maximum in orange. Middle: dout, {ho}x{wo} ({rows_text(g)}). Right: dx, "
        f"{size_text(grid.shape)}, filling in: an arrow carries each dout value to its "
        f"window's maximum, where overlapping windows add up, and every other cell stays 0; "
        f"dx ends as ({rows_text(values[-1])}).").replace(" ()", ""))


# --- helpers ------------------------------------------------------------------------------------

def _pool_setup(where: str, x: Any, kernel_size: Any, stride: Any) -> tuple[
        np.ndarray, tuple[int, int], tuple[int, int], np.ndarray, list[tuple[int, int]]]:
    """Validate; return the grid, kernel, stride, ``max_pool2d``'s output and, per output
    cell in reading order, where its window's maximum is (first in reading order, as PyTorch:
    max pooling's backward pass sends that output's gradient there)."""
    from cnnlab.ops import max_pool2d

    grid, (kh, kw), (sh, sw) = pool_grid_args(x, kernel_size, stride, where)
    out = max_pool2d(grid, (kh, kw), stride=(sh, sw))
    targets = []
    for i, j in np.ndindex(out.shape):
        a, b = divmod(int(np.argmax(grid[i * sh:i * sh + kh, j * sw:j * sw + kw])), kw)
        targets.append((i * sh + a, j * sw + b))
    return grid, (kh, kw), (sh, sw), out, targets


def _progress(step: int, cols: int, now: tuple, later: tuple) -> Callable[[int, int], tuple]:
    """Fills of a grid computed in reading order: cell ``step`` now, earlier ones DONE."""
    return lambda r, c: now if r * cols + c == step else DONE if r * cols + c < step else later


def _draw_pool_input(layout: _Layout, draw: ImageDraw.ImageDraw, grid: np.ndarray,
                     ij: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     target: tuple[int, int]) -> None:
    """Panel 0: the grid, window (i, j) shaded and outlined, its maximum ``target`` orange."""
    (i, j), (kh, kw), (sh, sw) = ij, kernel, stride
    layout.grid(draw, 0, grid, lambda r, c: WINNER if (r, c) == target else WINDOW if (
        i * sh <= r < i * sh + kh and j * sw <= c < j * sw + kw) else WHITE)
    layout.outline(draw, 0, i * sh, j * sw, kh, kw, SPAN)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:  # Pillow >= 10.1 with FreeType: its built-in scalable font
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # older Pillow, or no FreeType: a bitmap font
        return ImageFont.load_default()


class _Layout:
    """Panels of grids side by side, titles above, a caption and a step line below."""

    def __init__(self, shapes: list[tuple[int, int]], caption: str, footers: list[str],
                 titles: list[str]) -> None:
        self.caption, self.footers, self.titles = caption, footers, titles
        self.cell_font, self.text_font, self.small_font = _font(14), _font(13), _font(10)
        widths = [cols * CELL + GAP for _, cols in shapes]  # each panel and the gap after it
        self.lefts = [MARGIN + sum(widths[:k]) for k in range(len(shapes))]
        self.top = MARGIN + TITLE
        self.bottom = self.top + max(r for r, _ in shapes) * CELL + 14  # the caption's top
        text_width = max(int(self.text_font.getlength(text)) for text in [caption, *footers])
        self.width = max(MARGIN + sum(widths) - GAP + MARGIN, text_width + 2 * MARGIN, 300)
        self.height = self.bottom + 2 * 20 + MARGIN

    def xy(self, panel: int, row: float, col: float) -> tuple[float, float]:
        """Pixel position of grid coordinates (row, col) of a panel (cell (i, j) is i..i+1)."""
        return self.lefts[panel] + col * CELL, self.top + row * CELL

    def cell(self, draw: ImageDraw.ImageDraw, panel: int, row: int, col: int, fill: tuple,
             text: str = "", dashed: bool = False) -> None:
        x0, y0 = self.xy(panel, row, col)
        box = (x0, y0, x0 + CELL, y0 + CELL)
        if dashed:
            draw.rectangle(box, fill=fill)
            _dashed_box(draw, box, PAD_EDGE)
        else:
            draw.rectangle(box, fill=fill, outline=GRID)
        if text:
            colour = WHITE if fill in (TAP, WINNER) else BLACK
            font = self.cell_font
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            if right - left > CELL - 6:  # long numbers such as -0.123 in a smaller font
                font = self.small_font
                left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            position = (round(x0 + (CELL - right - left) / 2),
                        round(y0 + (CELL - bottom - top) / 2))
            draw.text(position, text, fill=colour, font=font)

    def grid(self, draw: ImageDraw.ImageDraw, panel: int, values: np.ndarray,
             fill: Callable[[int, int], tuple], dashed: np.ndarray | None = None) -> None:
        """Every cell of ``values`` (rows, cols) with its number (none where NaN), filled
        with ``fill(row, col)``; cells where ``dashed`` is True get a dashed edge (padding)."""
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                text = "" if np.isnan(values[r, c]) else fmt(values[r, c])
                self.cell(draw, panel, r, c, fill(r, c), text,
                          dashed=dashed is not None and dashed[r, c])

    def outline(self, draw: ImageDraw.ImageDraw, panel: int, row: int, col: int, height: int,
                width: int, colour: tuple) -> None:
        x0, y0 = self.xy(panel, row, col)
        draw.rectangle((x0 - 1, y0 - 1, x0 + width * CELL + 1, y0 + height * CELL + 1),
                       outline=colour, width=3)

    def arrow(self, draw: ImageDraw.ImageDraw, start: tuple, end: tuple) -> None:
        """An arrow between two (panel, row, col) grid positions."""
        x0, y0 = self.xy(*start)
        x1, y1 = self.xy(*end)
        draw.line((x0, y0, x1, y1), fill=ARROW, width=3)
        length = max(float(np.hypot(x1 - x0, y1 - y0)), 1e-9)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        head = 11
        draw.polygon([(x1, y1), (x1 - head * ux + head / 2 * uy, y1 - head * uy - head / 2 * ux),
                      (x1 - head * ux - head / 2 * uy, y1 - head * uy + head / 2 * ux)],
                     fill=ARROW)

    def render(self, draw_step: Callable[[ImageDraw.ImageDraw, int], None]) -> list[Image.Image]:
        """One frame per footer: the caption, ``draw_step(draw, step)`` (the grids), the panel
        titles and the step's line below the caption."""
        from PIL import Image, ImageDraw

        frames = []
        for step, footer in enumerate(self.footers):
            image = Image.new("RGB", (self.width, self.height), WHITE)
            draw = ImageDraw.Draw(image)
            draw.text((MARGIN, self.bottom), self.caption, fill=BLACK, font=self.text_font)
            draw_step(draw, step)
            for left, text in zip(self.lefts, self.titles, strict=True):
                draw.text((left, MARGIN), text, fill=BLACK, font=self.text_font)
            draw.text((MARGIN, self.bottom + 20), footer, fill=BLACK, font=self.text_font)
            frames.append(image)
        return frames


def _dashed_box(draw: ImageDraw.ImageDraw, box: tuple, colour: tuple, dash: int = 4) -> None:
    x0, y0, x1, y1 = box
    for start in range(0, CELL, 2 * dash):
        end = min(start + dash, CELL)
        draw.line((x0 + start, y0, x0 + end, y0), fill=colour)
        draw.line((x0 + start, y1, x0 + end, y1), fill=colour)
        draw.line((x0, y0 + start, x0, y0 + end), fill=colour)
        draw.line((x1, y0 + start, x1, y0 + end), fill=colour)


def _palette() -> Image.Image:
    """A fixed palette: the diagram colours, then a grey ramp for anti-aliased text."""
    from PIL import Image

    colours = list(_COLOURS)
    colours += [(v, v, v) for v in range(0, 256, 8) if (v, v, v) not in colours]
    # blends of text (black/white) over each fill, for the anti-aliased edges of numbers
    colours += [tuple(round(f * (1 - t) + k * t) for f, k in zip(fill, ink, strict=True))
                for fill in (INPUT, TAP, OUTPUT, DONE, WINDOW, WINNER, GRAD)
                for t in (0.25, 0.5, 0.75) for ink in (BLACK, WHITE)]
    colours = list(dict.fromkeys(colours))[:256]
    flat = [v for colour in colours for v in colour]
    flat += [0] * (768 - len(flat))
    image = Image.new("P", (1, 1))
    image.putpalette(flat)
    return image


def _encode_gif(frames: list[Image.Image], durations: list[int]) -> bytes:
    palette = _palette()
    # dither=0: no dithering, so every fill keeps its exact palette colour
    indexed = [frame.quantize(palette=palette, dither=0) for frame in frames]
    buffer = io.BytesIO()
    indexed[0].save(buffer, format="GIF", save_all=True, append_images=indexed[1:],
                    duration=durations, loop=0)
    return buffer.getvalue()
