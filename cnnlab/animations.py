"""Animations where a picture moves: the window of a convolution or a max pool sliding over
its input, and the gradient flowing back through a max pool.

Each function returns an ``Animation``: frames drawn with Pillow (no matplotlib), encoded as
an animated GIF. In a notebook it shows as an ``<img>`` in ``text/html`` (JupyterLab and the
static HTML export) and as ``image/gif`` (viewers that read image outputs), with a short
``text/plain`` description. Every number comes from ``cnnlab.shapes`` / ``cnnlab.ops``.
Pillow is imported only when an animation is drawn, so ``import cnnlab`` stays cheap.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab._checks import as_pair, describe, message
from cnnlab.diagrams import as_grid, fmt, size_text
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
_MAX_CELLS = 16  # larger grids cannot show readable numbers or fit a notebook
FRAME_MS = 700
LAST_MS = 2000  # hold the finished picture before the loop starts again


class Animation:
    """An animated picture: ``frames`` (PIL RGB images), ``gif`` (bytes), ``save(path)``.

    ``values`` holds, per frame, the numbers of the grid being filled in (NaN where nothing is
    shown yet) for the pooling animations, and is empty for ``animate_conv``.
    """

    def __init__(self, frames: list[Image.Image], description: str,
                 values: list[np.ndarray] | None = None, duration_ms: int = FRAME_MS,
                 last_ms: int = LAST_MS) -> None:
        self.frames = frames
        self.description = description
        self.values = values or []
        self.durations = [duration_ms] * (len(frames) - 1) + [last_ms]
        self._gif: bytes | None = None

    @property
    def gif(self) -> bytes:
        """The animated GIF, encoded once (same frames -> same bytes)."""
        if self._gif is None:
            self._gif = _encode_gif(self.frames, self.durations)
        return self._gif

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
        alt = html.escape(self.description, quote=True)
        return {
            "text/html": f'<img src="data:image/gif;base64,{data}" width="{width}" '
                         f'height="{height}" alt="{alt}">',
            "image/gif": data,
            "text/plain": self.description,
        }


# --- public functions -------------------------------------------------------------------------

def animate_conv(in_size: int | tuple[int, int] = 5, kernel_size: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1) -> Animation:
    """The kernel's footprint sliding over an (H, W) input, as in conv_arithmetic's figures.

    Left: the input with its padding ring (white, dashed); the cells the kernel reads are dark
    blue, its whole span outlined (dilation gaps show inside it). Right: the output, the cell
    being computed in the same blue, those done in green. One frame per output position.
    """
    where = "animate_conv"
    h, w = as_pair(in_size, "in_size", where, minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = as_pair(stride, "stride", where, minimum=1)
    ph, pw = as_pair(padding, "padding", where, minimum=0)
    dh, dw = as_pair(dilation, "dilation", where, minimum=1)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if span_h > h + 2 * ph or span_w > w + 2 * pw:
        extra = f" (dilation {_pair_text(dh, dw)})" if max(dh, dw) > 1 else ""
        raise ValueError(message(
            where, f"a kernel no larger than the padded input ({h + 2 * ph}x{w + 2 * pw})",
            f"a {kh}x{kw} kernel{extra} spanning {span_h}x{span_w} cells",
            "Use a smaller kernel or dilation, or add padding."))
    _check_small((h + 2 * ph, w + 2 * pw), "the padded input", where)
    ho = conv_output_size(h, kh, sh, ph, dh)
    wo = conv_output_size(w, kw, sw, pw, dw)

    caption = (f"input {h}x{w}, {kh}x{kw} kernel, padding {_pair_text(ph, pw)}, "
               f"stride {_pair_text(sh, sw)}")
    if max(dh, dw) > 1:
        caption += f", dilation {_pair_text(dh, dw)}"
    caption += f" -> output {ho}x{wo}"
    footers = [f"step {k + 1} of {ho * wo}: output[{k // wo}, {k % wo}]" for k in range(ho * wo)]
    layout = _Layout([(h + 2 * ph, w + 2 * pw), (ho, wo)], caption, footers)
    frames = []
    for step in range(ho * wo):
        i, j = divmod(step, wo)
        image, draw = layout.new_frame()
        taps = {(i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)}
        for r in range(h + 2 * ph):
            for c in range(w + 2 * pw):
                padded = not (ph <= r < ph + h and pw <= c < pw + w)
                fill = TAP if (r, c) in taps else WHITE if padded else INPUT
                layout.cell(draw, 0, r, c, fill, dashed=padded)
        layout.outline(draw, 0, i * sh, j * sw, span_h, span_w, SPAN)
        for r in range(ho):
            for c in range(wo):
                fill = TAP if (r, c) == (i, j) else DONE if r * wo + c < step else OUTPUT
                layout.cell(draw, 1, r, c, fill)
        pad_note = f", padding {_pair_text(ph, pw)} (dashed)" if max(ph, pw) > 0 else ""
        layout.title(draw, 0, f"input {h}x{w}{pad_note}")
        layout.title(draw, 1, f"output {ho}x{wo}")
        layout.footer(draw, footers[step])
        frames.append(image)
    description = (f"Animation: {kh}x{kw} kernel over {h}x{w} input, padding "
                   f"{_pair_text(ph, pw)}, stride {_pair_text(sh, sw)}"
                   + (f", dilation {_pair_text(dh, dw)}" if max(dh, dw) > 1 else "")
                   + f" -> {ho}x{wo} output, {len(frames)} frames")
    return Animation(frames, description)


def animate_pool(x: Any, kernel_size: int | tuple[int, int] = 2,
                 stride: int | tuple[int, int] | None = None) -> Animation:
    """Max pooling's window moving over a small (H, W) grid of numbers.

    Left: the input, the current window shaded and its maximum (the first one in reading
    order, as in PyTorch) in orange. Right: the output filling in, one frame per output cell.
    Numbers come from ``cnnlab.max_pool2d``.
    """
    where = "animate_pool"
    grid, (kh, kw), (sh, sw), out = _pool_setup(where, x, kernel_size, stride)
    ho, wo = out.shape
    caption = (f"max pooling {kh}x{kw}, stride {_pair_text(sh, sw)}: input "
               f"{size_text(grid.shape)} -> output {size_text(out.shape)}")
    footers = [f"step {k + 1} of {ho * wo}: output[{k // wo}, {k % wo}] = max of the window = "
               f"{fmt(out[k // wo, k % wo])}" for k in range(ho * wo)]
    layout = _Layout([grid.shape, out.shape], caption, footers)
    frames, values = [], []
    shown = np.full(out.shape, np.nan)
    for step in range(ho * wo):
        i, j = divmod(step, wo)
        a, b = _first_max(grid[i * sh:i * sh + kh, j * sw:j * sw + kw])
        shown[i, j] = out[i, j]
        image, draw = layout.new_frame()
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                inside = i * sh <= r < i * sh + kh and j * sw <= c < j * sw + kw
                fill = WINNER if (r, c) == (i * sh + a, j * sw + b) else WINDOW if inside else WHITE
                layout.cell(draw, 0, r, c, fill, fmt(grid[r, c]))
        layout.outline(draw, 0, i * sh, j * sw, kh, kw, SPAN)
        _draw_values(layout, draw, 1, shown, (i, j), WINNER, DONE)
        layout.title(draw, 0, f"input {size_text(grid.shape)}")
        layout.title(draw, 1, f"output {size_text(out.shape)}")
        layout.footer(draw, footers[step])
        frames.append(image)
        values.append(shown.copy())
    description = (f"Animation: {kh}x{kw} max pooling, stride {_pair_text(sh, sw)}, over "
                   f"{size_text(grid.shape)} input -> {size_text(out.shape)} output, "
                   f"{len(frames)} frames")
    return Animation(frames, description, values)


def animate_pool_backward(x: Any, dout: Any, kernel_size: int | tuple[int, int] = 2,
                          stride: int | tuple[int, int] | None = None) -> Animation:
    """The gradient flowing back through a max pool over a small (H, W) grid.

    Left: the input x, the window and its maximum (first in reading order, as PyTorch).
    Middle: ``dout``, the gradient of the loss with respect to the pooled output, same shape as
    that output. Right: ``dx`` filling in: each ``dout[i, j]`` travels whole to its window's
    maximum (overlapping windows add up); every other cell stays 0. One frame per output cell.
    """
    where = "animate_pool_backward"
    grid, (kh, kw), (sh, sw), out = _pool_setup(where, x, kernel_size, stride)
    ho, wo = out.shape
    g = as_grid(dout, "dout", where, f"dout has the pooled output's shape, {ho}x{wo}.")
    if g.shape != out.shape:
        hint = ("That is the shape of x: dout is the gradient with respect to the *output*."
                if g.shape == grid.shape else
                f"Max pooling {kh}x{kw} with stride {_pair_text(sh, sw)} turns "
                f"{size_text(grid.shape)} into {ho}x{wo}; dout has that shape.")
        raise ValueError(message(where, f"`dout` of shape ({ho}, {wo}), the shape of the "
                                 "pooled output", f"{describe(g)}", hint))
    caption = (f"max pooling {kh}x{kw}, stride {_pair_text(sh, sw)}: each gradient goes to "
               "its window's maximum")
    targets = [_target(grid, k // wo, k % wo, (kh, kw), (sh, sw)) for k in range(ho * wo)]
    footers = [f"step {k + 1} of {ho * wo}: dout[{k // wo}, {k % wo}] = {fmt(g.flat[k])} "
               f"-> dx[{r}, {c}]" for k, (r, c) in enumerate(targets)]
    layout = _Layout([grid.shape, g.shape, grid.shape], caption, footers)
    dx = np.zeros(grid.shape, dtype=np.result_type(g.dtype, np.float32))
    received = np.zeros(grid.shape, dtype=bool)
    frames, values = [], []
    for step in range(ho * wo):
        i, j = divmod(step, wo)
        target = targets[step]
        dx[target] += g[i, j]
        received[target] = True
        image, draw = layout.new_frame()
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                inside = i * sh <= r < i * sh + kh and j * sw <= c < j * sw + kw
                fill = WINNER if (r, c) == target else WINDOW if inside else WHITE
                layout.cell(draw, 0, r, c, fill, fmt(grid[r, c]))
        layout.outline(draw, 0, i * sh, j * sw, kh, kw, SPAN)
        for r in range(ho):
            for c in range(wo):
                fill = WINNER if (r, c) == (i, j) else DONE if r * wo + c < step else WHITE
                layout.cell(draw, 1, r, c, fill, fmt(g[r, c]))
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                fill = WINNER if (r, c) == target else GRAD if received[r, c] else WHITE
                layout.cell(draw, 2, r, c, fill, fmt(dx[r, c]))
        # from dout's right edge, on row i, to the left edge of dx[target]
        layout.arrow(draw, (1, i + 0.5, wo), (2, target[0] + 0.5, target[1]))
        layout.title(draw, 0, f"input x {size_text(grid.shape)}")
        layout.title(draw, 1, f"dout {ho}x{wo}")
        layout.title(draw, 2, f"dx {size_text(grid.shape)}")
        layout.footer(draw, footers[step])
        frames.append(image)
        values.append(dx.copy())
    description = (f"Animation: gradient through {kh}x{kw} max pooling, stride "
                   f"{_pair_text(sh, sw)}: dout {ho}x{wo} -> dx {size_text(grid.shape)}, "
                   f"{len(frames)} frames")
    return Animation(frames, description, values)


# --- helpers ------------------------------------------------------------------------------------

def _pair_text(a: int, b: int) -> str:
    return str(a) if a == b else f"({a}, {b})"


def _check_small(shape: tuple[int, int], name: str, where: str) -> None:
    if max(shape) > _MAX_CELLS:
        raise ValueError(message(where, f"{name} of at most {_MAX_CELLS}x{_MAX_CELLS} cells",
                                 f"{shape[0]}x{shape[1]}", "Animations are for small examples; "
                                 "use sizes like the lessons' 5x5 or 7x7."))


def _pool_setup(where: str, x: Any, kernel_size: Any,
                stride: Any) -> tuple[np.ndarray, tuple[int, int], tuple[int, int], np.ndarray]:
    """Validate; return the grid, kernel, stride and ``max_pool2d``'s output."""
    from cnnlab.ops import max_pool2d

    grid = as_grid(x, "x", where, "Animations draw one channel: pass x[c] (or x[n, c]).")
    _check_small(grid.shape, "`x`", where)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = (kh, kw) if stride is None else as_pair(stride, "stride", where, minimum=1)
    if kh > grid.shape[0] or kw > grid.shape[1]:
        raise ValueError(message(where, f"a pooling window no larger than x "
                                 f"({size_text(grid.shape)})", f"kernel_size=({kh}, {kw})",
                                 "Use a smaller window or a larger grid."))
    return grid, (kh, kw), (sh, sw), max_pool2d(grid, (kh, kw), stride=(sh, sw))


def _first_max(window: np.ndarray) -> tuple[int, int]:
    """Row and column of the window's maximum; ties go to the first in reading order."""
    r, c = divmod(int(np.argmax(window)), window.shape[1])
    return r, c


def _target(grid: np.ndarray, i: int, j: int, kernel: tuple[int, int],
            stride: tuple[int, int]) -> tuple[int, int]:
    """Where output (i, j)'s gradient goes: its window's maximum, in the grid's coordinates."""
    (kh, kw), (sh, sw) = kernel, stride
    a, b = _first_max(grid[i * sh:i * sh + kh, j * sw:j * sw + kw])
    return i * sh + a, j * sw + b


def _draw_values(layout: _Layout, draw: ImageDraw.ImageDraw, panel: int, shown: np.ndarray,
                 current: tuple[int, int], now: tuple, done: tuple) -> None:
    for r in range(shown.shape[0]):
        for c in range(shown.shape[1]):
            blank = np.isnan(shown[r, c])
            fill = now if (r, c) == current else WHITE if blank else done
            layout.cell(draw, panel, r, c, fill, "" if blank else fmt(shown[r, c]))


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:  # Pillow >= 10.1 with FreeType: its built-in scalable font
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # older Pillow, or no FreeType: a bitmap font
        return ImageFont.load_default()


class _Layout:
    """Panels of grids side by side, titles above, a caption and a step line below."""

    def __init__(self, shapes: list[tuple[int, int]], caption: str,
                 footers: list[str]) -> None:
        self.shapes = shapes
        self.caption = caption
        self.cell_font, self.text_font, self.small_font = _font(14), _font(13), _font(10)
        self.lefts = []
        left = MARGIN
        for _, cols in shapes:
            self.lefts.append(left)
            left += cols * CELL + GAP
        self.top = MARGIN + TITLE
        rows = max(r for r, _ in shapes)
        text_width = max(int(self.text_font.getlength(text)) for text in [caption, *footers])
        self.width = max(left - GAP + MARGIN, text_width + 2 * MARGIN, 300)
        self.height = self.top + rows * CELL + 14 + 2 * 20 + MARGIN

    def new_frame(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        from PIL import Image, ImageDraw

        image = Image.new("RGB", (self.width, self.height), WHITE)
        draw = ImageDraw.Draw(image)
        rows = max(r for r, _ in self.shapes)
        draw.text((MARGIN, self.top + rows * CELL + 14), self.caption, fill=BLACK,
                  font=self.text_font)
        return image, draw

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

    def title(self, draw: ImageDraw.ImageDraw, panel: int, text: str) -> None:
        draw.text((self.lefts[panel], MARGIN), text, fill=BLACK, font=self.text_font)

    def footer(self, draw: ImageDraw.ImageDraw, text: str) -> None:
        rows = max(r for r, _ in self.shapes)
        draw.text((MARGIN, self.top + rows * CELL + 14 + 20), text, fill=BLACK,
                  font=self.text_font)


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
    for fill in (INPUT, TAP, OUTPUT, DONE, WINDOW, WINNER, GRAD):
        for t in (0.25, 0.5, 0.75):
            for ink in (BLACK, WHITE):
                mix = zip(fill, ink, strict=True)
                colours.append(tuple(round(f * (1 - t) + k * t) for f, k in mix))
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
