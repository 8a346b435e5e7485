"""Grids of numbers: checking them, saying them in words, drawing them cell by cell.

The primitives that ``cnnlab.diagrams``, ``plotting``, ``widgets`` and ``animations`` share: a
small 2-D grid from any array-like (``as_grid``, ``check_small``, ``pool_grid_args``), its
sizes and numbers as text for titles and alt text (``size_text``, ``pair_text``, ``rows_text``,
``fmt``), and matplotlib drawing of numbered cells (``draw_grid``, ``outline``). Not public
API: nothing here is exported from ``cnnlab``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab._checks import as_array, as_pair, message

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__: list[str] = []

# colours shared by the grid diagrams, the animations and the explorer
CELL = "white"
WINDOW = "#bcd7ff"  # cells under the kernel, and the output cell they produce
WINDOW_EDGE = "#1f5fbf"
NEXT_EDGE = "#e07b00"  # the next window, one stride away
KERNEL = "#ffe6a8"
MAX_CELLS = 16  # larger grids cannot show readable numbers or fit a notebook


# --- grid primitives ------------------------------------------------------------------------

def as_grid(value: Any, name: str, where: str, hint: str = "") -> np.ndarray:
    """A small 2-D array of numbers for the grid diagrams."""
    array = as_array(value, name, where)
    if array.ndim != 2:
        raise ValueError(message(where, f"`{name}` as a 2-D grid (rows, columns)",
                                 f"shape {array.shape} (rank {array.ndim})", hint))
    if min(array.shape) == 0:
        raise ValueError(message(where, f"`{name}` with at least one row and column",
                                 f"shape {array.shape}"))
    return array


def check_small(shape: tuple[int, ...], name: str, where: str) -> None:
    """Raise unless a drawn grid (diagram or animation) of ``shape`` (rows, cols) is small."""
    if max(shape) > MAX_CELLS:
        raise ValueError(message(where, f"{name} of at most {MAX_CELLS}x{MAX_CELLS} cells, so "
                                 "the numbers stay readable", f"{shape[0]}x{shape[1]}",
                                 "Grids of numbers are for small examples like the lessons' "
                                 "5x5 or 7x7; for real images use plot_conv (pixels)."))


def pool_grid_args(x: Any, kernel_size: Any, stride: Any,
                   where: str) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Validate a pooling drawing: a small 2-D grid ``x``, its window (kH, kW) and the stride
    (sH, sW), which defaults to the window."""
    grid = as_grid(x, "x", where, f"{where} draws one channel: pass x[c] (or x[n, c]).")
    check_small(grid.shape, "`x`", where)
    kh, kw = as_pair(kernel_size, "kernel_size", where, minimum=1)
    sh, sw = (kh, kw) if stride is None else as_pair(stride, "stride", where, minimum=1)
    if kh > grid.shape[0] or kw > grid.shape[1]:
        raise ValueError(message(where, f"a pooling window no larger than x "
                                 f"({size_text(grid.shape)})", f"kernel_size=({kh}, {kw})",
                                 "Use a smaller window or a larger grid."))
    return grid, (kh, kw), (sh, sw)


def size_text(shape: tuple[int, ...]) -> str:
    """A shape as text: (3, 24, 32) -> '3x24x32'."""
    return "x".join(str(s) for s in shape)


def pair_text(a: int, b: int) -> str:
    """An (h, w) setting as text: '2' when both are 2, else '(2, 1)'."""
    return str(a) if a == b else f"({a}, {b})"


def rows_text(values: np.ndarray, limit: int = 49) -> str:
    """A small grid's numbers for alt text, row by row: 'rows 1 2; 3 4' ('' past ``limit``)."""
    if values.size > limit:
        return ""
    return "rows " + "; ".join(" ".join(fmt(v) for v in row) for row in values)


def fmt(value: float) -> str:
    """A number as short text: integers without decimals, others with 3 significant digits."""
    value = float(value)
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


# --- drawing -------------------------------------------------------------------------------

def draw_grid(ax: Axes, values: np.ndarray, fills: Any = None, text_colours: Any = None,
              bold: Any = None, fontsize: float | None = None) -> None:
    """Draw ``values`` (rows, cols) as numbered cells, cell (i, j) spanning x j..j+1, y i..i+1.

    Row 0 is at the top; ``fills`` is one colour or one per cell, ``text_colours`` and
    ``bold`` one per cell (rows x cols nested lists or arrays).
    """
    from matplotlib.patches import Rectangle

    rows, cols = values.shape
    texts = [[fmt(v) for v in row] for row in values]
    if fontsize is None:
        longest = max(len(t) for row in texts for t in row)
        fontsize = 12 if longest <= 2 else 10 if longest <= 4 else 8
    for i in range(rows):
        for j in range(cols):
            fill = fills if isinstance(fills, str) else CELL if fills is None else fills[i][j]
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=fill, edgecolor="#606060", lw=0.8))
            ax.text(j + 0.5, i + 0.5, texts[i][j], ha="center", va="center", fontsize=fontsize,
                    color="black" if text_colours is None else text_colours[i][j],
                    fontweight="bold" if bold is not None and bold[i][j] else "normal",
                    gid="cell", in_layout=False)  # inside the axes: layout need not measure it
    ax.set_xlim(-0.15, cols + 0.15)
    ax.set_ylim(rows + 0.15, -0.15)
    ax.set_aspect("equal")
    ax.set_anchor("N")  # grids of different heights line up at the top
    ax.axis("off")


def outline(ax: Axes, top: int, left: int, height: int, width: int, colour: str,
            style: str = "-", inset: float = 0.0) -> None:
    """Outline the cells rows top..top+height-1, columns left..left+width-1 (grid coordinates),
    ``inset`` cells inside their edge."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((left + inset, top + inset), width - 2 * inset, height - 2 * inset,
                           fill=False, edgecolor=colour, lw=3, linestyle=style, zorder=5))
