"""Interactive explorers that fall back to one static figure when no widget frontend is attached.

``conv_explorer`` slides a kernel over a real photo with sliders for kernel size, padding,
stride and dilation, and shows the output size formula with the numbers filled in (the sizes
come from ``cnnlab.shapes.conv_output_size``). Its figure has two rows: the whole padded
input, kernel and output at one pixel scale; below, the input's top-left corner magnified with
the first kernel window (blue) and the next one a stride away (orange), the sum of products
that makes output[0, 0], and the output's corner with that cell marked.

When is it interactive? With ``interactive=None`` (the default) the rule is, in order:
1. the environment variable ``CNNLAB_WIDGETS`` decides if set: ``1`` interactive, ``0`` static;
2. outside a Jupyter kernel (plain Python, pytest) -> static;
3. a kernel started by a Jupyter server (JupyterLab, Notebook 7) -> interactive: the server's
   session manager sets ``JPY_SESSION_NAME`` in the kernels it starts
   (``jupyter_server/services/sessions/sessionmanager.py``, ``get_kernel_env``);
4. a kernel started by VS Code's Jupyter extension -> interactive: it sets
   ``PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING=1`` for Python kernels (vscode-jupyter,
   ``kernelEnvVarsService.node.ts``);
5. anything else -> static. nbclient, nbconvert --execute and nbval start kernels through
   jupyter_client, which sets only ``JPY_PARENT_PID`` (every local kernel gets that one, so it
   proves nothing): they get one static figure, no widget state and nothing printed.
Tip: a test run started from inside a notebook (``!pytest ...``) inherits ``JPY_SESSION_NAME``;
run it from a terminal or set ``CNNLAB_WIDGETS=0``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cnnlab._checks import as_int, describe, image_chw, is_tensor, message
from cnnlab.figures import check_text, describe_figure
from cnnlab.grids import NEXT_EDGE, WINDOW_EDGE, draw_grid, fmt
from cnnlab.images import load_image, rgb_to_gray
from cnnlab.ops import KERNEL_NAMES, named_kernel
from cnnlab.shapes import conv_output_size

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["conv_explorer"]

# slider ranges: (minimum, maximum)
RANGES = {"kernel_size": (1, 15), "padding": (0, 30), "stride": (1, 8), "dilation": (1, 5)}
# the slider labels, which the browser check looks for
LABELS = {"kernel": "kernel", "kernel_size": "kernel size", "padding": "padding",
          "stride": "stride", "dilation": "dilation"}
_PADDING_EDGE = "#b03030"
_ZOOM_EDGE = "#ffd000"
# the visible caption of the static figure (a stored notebook, nbconvert's HTML, a website)
STILL_CAPTION = ("A still picture of an interactive explorer: run this notebook in Jupyter "
                 "(JupyterLab, Notebook 7 or VS Code) to get a kernel menu and sliders for "
                 "kernel size, padding, stride and dilation.")


def _formula(n: int, kernel_size: int, stride: int = 1, padding: int = 0,
             dilation: int = 1) -> str:
    """The output-size formula with the numbers filled in; raises if the window does not fit.

    >>> _formula(5, 3, stride=2, padding=1)
    'floor((5 + 2*1 - 1*(3 - 1) - 1) / 2) + 1 = 3'
    """
    out = conv_output_size(n, kernel_size, stride=stride, padding=padding, dilation=dilation)
    return (f"floor(({n} + 2*{padding} - {dilation}*({kernel_size} - 1) - 1) / {stride}) + 1 "
            f"= {out}")


def frontend_attached() -> bool:
    """True when widgets can be shown; the rule is in this module's docstring."""
    forced = os.environ.get("CNNLAB_WIDGETS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    return bool(os.environ.get("JPY_SESSION_NAME")
                or os.environ.get("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING"))


def _gray_image(image: Any, where: str) -> torch.Tensor:
    """A photo name, path, tensor or array (H, W) / (C, H, W), C in 1 or 3, as gray (1, 1, H, W)."""
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        return load_image(image, mode="gray").unsqueeze(0)
    if not (is_tensor(image) or isinstance(image, np.ndarray)):
        raise TypeError(message(where, "a photo name such as 'cat', a path, or an image "
                                "tensor (C, H, W)", describe(image),
                                "cnnlab.list_images() lists the bundled photos."))
    x = image_chw(image, where).unsqueeze(0)
    return rgb_to_gray(x) if x.shape[1] == 3 else x


def _settings(kernel: Any, kernel_size: Any, padding: Any, stride: Any, dilation: Any,
              where: str) -> dict[str, Any]:
    if kernel not in KERNEL_NAMES:
        raise ValueError(message(where, f"`kernel` in {list(KERNEL_NAMES)}", repr(kernel),
                                 "Pick one of the listed kernel names."))
    values = {"kernel": kernel}
    for name, value in (("kernel_size", kernel_size), ("padding", padding), ("stride", stride),
                        ("dilation", dilation)):
        low, high = RANGES[name]
        number = as_int(value, name, where, minimum=low)
        if number > high:
            raise ValueError(message(where, f"`{name}` between {low} and {high} (the slider's "
                                     "range)", repr(number), "Choose a smaller value."))
        values[name] = number
    return values


# --- the figure -------------------------------------------------------------------------------

def _box(ax: Axes, top: float, left: float, height: float, width: float, colour: str,
         style: str = "-", fill: bool = False, lw: float = 2.5) -> None:
    """Outline pixels top..top+height-1, left..left+width-1 of an imshow (pixel centres)."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=fill, lw=lw,
                           edgecolor=colour, facecolor=colour + "55" if fill else "none",
                           linestyle=style, zorder=4))


def _show(ax: Axes, array: np.ndarray, signed: bool, limit: float) -> None:
    """imshow with the explorer's colours: red/blue around white zero, or gray 0..1."""
    if signed:
        ax.imshow(array, cmap="RdBu_r", vmin=-limit, vmax=limit)
    else:
        ax.imshow(array, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def _write_values(ax: Axes, array: np.ndarray, cells: list[tuple[int, int]],
                  fontsize: float) -> None:
    """Write array[i, j] with two decimals on each (i, j) of ``cells`` of an imshow."""
    for i, j in cells:
        ax.text(j, i, f"{round(float(array[i, j]), 2) + 0.0:.2f}", ha="center", va="center",
                fontsize=fontsize, gid="value", in_layout=False,
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "alpha": 0.6})


def _draw_kernel(ax: Axes, weight: np.ndarray, title: str) -> None:
    """The kernel as coloured cells (red > 0, blue < 0), with its numbers up to 7x7.

    Negative and positive weights are scaled separately, so the -1 ring of a 7x7 outline
    kernel (centre 48) is as visible as its centre.
    """
    from matplotlib import colormaps

    scale = np.where(weight < 0, weight / max(-weight.min(), 1e-12),
                     weight / max(weight.max(), 1e-12))  # -1..1, zero stays zero
    colours = colormaps["RdBu_r"]((scale + 1) / 2)
    if weight.shape[0] <= 7:
        rows, cols = weight.shape
        fills = [[tuple(colours[i, j]) for j in range(cols)] for i in range(rows)]
        text = [["white" if abs(scale[i, j]) > 0.6 else "black" for j in range(cols)]
                for i in range(rows)]
        draw_grid(ax, weight, fills, text, fontsize=10 if rows <= 5 else 8)
    else:
        ax.imshow(colours)
        ax.axis("off")
    ax.set_title(title)


def _input_row(panel: SubFigure, padded: np.ndarray, out: np.ndarray, s: dict[str, Any],
               weight: np.ndarray, zoom: tuple[int, int], signed: bool, limit: float) -> None:
    """Padded input, kernel and output at one pixel scale, the zoomed corners boxed in yellow."""
    p, st, span = s["padding"], s["stride"], s["dilation"] * (s["kernel_size"] - 1) + 1
    hp, wp = padded.shape
    ho, wo = out.shape
    ax_in, ax_k, ax_out = panel.subplots(1, 3, width_ratios=[wp, 0.3 * max(wp, wo),
                                                              max(wo, 0.3 * wp)])
    _show(ax_in, padded, False, 1.0)
    if p:
        _box(ax_in, 0, 0, hp, wp, _PADDING_EDGE, lw=2)
        _box(ax_in, p, p, hp - 2 * p, wp - 2 * p, _PADDING_EDGE, ":", lw=1)
    _box(ax_in, 0, 0, *zoom, _ZOOM_EDGE, lw=3)
    _box(ax_in, 0, 0, span, span, WINDOW_EDGE, fill=True, lw=1.5)
    ax_in.set_title(f"input ({hp - 2 * p}x{wp - 2 * p}) + padding {p} = {hp}x{wp}\n"
                    f"window {span}x{span}, stride {st}")
    _draw_kernel(ax_k, weight, f"kernel ({weight.shape[0]}x{weight.shape[1]})\n{s['kernel']}"
                 + (f", dilation {s['dilation']}" if s["dilation"] > 1 else ""))
    _show(ax_out, out, signed, limit)
    _box(ax_out, 0, 0, min(ho, 6), min(wo, 6), _ZOOM_EDGE, lw=3)
    ax_out.set_xlim(-0.5, max(wo, 0.3 * wp) - 0.5)
    ax_out.set_ylim(max(ho, hp) - 0.5, -0.5)  # the same pixel scale as the input
    ax_out.set_title(f"output ({ho}x{wo})")
    for spine in ax_out.spines.values():
        spine.set_visible(False)
    for ax in (ax_in, ax_k, ax_out):
        ax.set_anchor("N")


def _zoom_row(panel: SubFigure, padded: np.ndarray, out: np.ndarray, s: dict[str, Any],
              weight: np.ndarray, zoom: tuple[int, int], signed: bool, limit: float) -> None:
    """The corners magnified: the first window and the next, the sum, the cell it makes."""
    k, p, st, d = s["kernel_size"], s["padding"], s["stride"], s["dilation"]
    span = d * (k - 1) + 1
    ax_in, ax_sum, ax_out = panel.subplots(1, 3, width_ratios=[1, 0.9, 1])
    crop = padded[:zoom[0], :zoom[1]]
    _show(ax_in, crop, False, 1.0)
    for a in range(k):  # the pixels the kernel weights meet (every d-th one when dilated)
        for b in range(k):
            _box(ax_in, a * d, b * d, 1, 1, WINDOW_EDGE, fill=True, lw=0.8)
    _box(ax_in, 0, 0, span, span, WINDOW_EDGE, lw=3)
    if out.shape[1] > 1:  # the next window, with an arrow of one stride below the windows
        _box(ax_in, 0, st, span, span, NEXT_EDGE, "--", lw=3)
        ax_in.annotate("", xy=(st, span + 0.2), xytext=(0, span + 0.2),
                       arrowprops={"arrowstyle": "->", "color": NEXT_EDGE, "lw": 2.5})
        ax_in.text(st / 2, span + 0.6, f"stride {st}", ha="center", va="top", color=NEXT_EDGE,
                   fontsize=10, fontweight="bold")
    if p:
        _box(ax_in, p, p, zoom[0], zoom[1], _PADDING_EDGE, ":", lw=2)
    if max(zoom) <= 10:  # the pixel values under the window (too crowded beyond)
        _write_values(ax_in, crop, [(a * d, b * d) for a in range(k) for b in range(k)], 7)
    ax_in.set_title(f"padded input, top-left {zoom[0]}x{zoom[1]}\n"
                    "blue: window of output[0, 0]; orange: the next")
    values = [crop[a * d, b * d] for a in range(k) for b in range(k)]
    if k <= 3:
        rows = [" + ".join(f"{values[a * k + b]:.2f}*{fmt(weight[a, b])}" for b in range(k))
                for a in range(k)]
        terms = "\n+ ".join(rows)
    else:
        terms = f"sum of the {k * k} products\n(window pixel * kernel weight)"
    ax_sum.text(0.5, 0.5, f"output[0, 0]\n= {terms}\n= {out[0, 0]:.3f}", ha="center",
                va="center", fontsize=11, family="monospace", transform=ax_sum.transAxes)
    ax_sum.axis("off")
    ho, wo = min(out.shape[0], 6), min(out.shape[1], 6)
    _show(ax_out, out[:ho, :wo], signed, limit)
    _box(ax_out, 0, 0, 1, 1, WINDOW_EDGE, fill=True, lw=3)
    if wo > 1:
        _box(ax_out, 0, 1, 1, 1, NEXT_EDGE, "--", lw=3)
    _write_values(ax_out, out, [(i, j) for i in range(ho) for j in range(wo)], 8)
    ax_out.set_title(f"output, top-left {ho}x{wo}\n"
                     "blue: output[0, 0]; orange: the next")


def explorer_figure(x: torch.Tensor, kernel: str = "vertical edge", kernel_size: int = 3,
                    padding: int = 1, stride: int = 1, dilation: int = 1,
                    alt: str | None = None, caption: str | None = None) -> Figure:
    """One frame of the explorer for a gray image ``x`` (1, 1, H, W); returns the Figure.

    Top row: the padded input (padding outlined in red), the kernel and the output, at one
    pixel scale. Bottom row: both top-left corners magnified (the yellow boxes above), the
    first window and the next one a stride away, and the sum that makes output[0, 0]. The
    title gives the size formula for height and width. A window that does not fit is
    explained in the figure instead of raising. ``alt`` replaces the default alt text;
    ``caption`` is shown under the figure (see ``cnnlab.describe_figure``).
    """
    import matplotlib.pyplot as plt

    alt = check_text(alt, "alt", "conv_explorer")
    s = _settings(kernel, kernel_size, padding, stride, dilation, "conv_explorer")
    k, p, st, d = s["kernel_size"], s["padding"], s["stride"], s["dilation"]
    h, w = x.shape[-2:]
    try:
        lines = [f"height: {_formula(h, k, st, p, d)}", f"width:  {_formula(w, k, st, p, d)}"]
    except ValueError as error:
        fig, ax = plt.subplots(figsize=(9, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, str(error), ha="center", va="center", wrap=True, fontsize=11)
        return describe_figure(fig, alt or f"Convolution explorer: no output for these "
                               f"settings. {error}", caption)
    weight = torch.from_numpy(named_kernel(s["kernel"], k)).float()
    with torch.no_grad():
        out = torch.nn.functional.conv2d(x, weight.view(1, 1, k, k), stride=st, padding=p,
                                         dilation=d)[0, 0].numpy()
    padded = np.pad(x[0, 0].numpy(), p)
    signed = bool((weight < 0).any())
    limit = float(np.percentile(np.abs(out), 99)) or 1.0
    span = d * (k - 1) + 1
    zoom = tuple(min(n, max(10, span + st + 2)) for n in padded.shape)

    fig = plt.figure(figsize=(12, 9), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 0.95])
    _input_row(top, padded, out, s, weight.numpy(), zoom, signed, limit)
    _zoom_row(bottom, padded, out, s, weight.numpy(), zoom, signed, limit)
    fig.suptitle("output size = floor((n + 2p - d(k - 1) - 1) / s) + 1\n" + "\n".join(lines),
                 fontsize=11, family="monospace")
    return describe_figure(fig, alt or _explorer_alt(s, (h, w), out.shape, zoom, signed, lines),
                           caption)


def _explorer_alt(s: dict[str, Any], size: tuple[int, int], out_shape: tuple[int, int],
                  zoom: tuple[int, ...], signed: bool, lines: list[str]) -> str:
    """explorer_figure's default alt text: both rows of panels and the size formula."""
    k, p, st, d = s["kernel_size"], s["padding"], s["stride"], s["dilation"]
    (h, w), (ho, wo) = size, out_shape
    padded = f", padded by {p} to {h + 2 * p}x{w + 2 * p} (outlined in red)" if p else ""
    dilated = f" with dilation {d}" if d > 1 else ""
    look = "red for positive, blue for negative values" if signed else "gray"
    nxt = f" and the next window, stride {st} to the right, in orange" if wo > 1 else ""
    return (f"Convolution explorer, two rows of panels. Top: the input image in gray, {h}x{w}"
            f"{padded}; the {k}x{k} {s['kernel']} kernel{dilated}; and the {ho}x{wo} output in "
            f"{look}, at the same pixel scale. Bottom: the top-left {zoom[0]}x{zoom[1]} corner "
            f"of the padded input magnified, with the window of output[0, 0] in blue{nxt}; the "
            f"sum of products that makes output[0, 0]; and the output's top-left corner with "
            f"that cell marked. Title: "
            f"output size = floor((n + 2p - d(k - 1) - 1) / s) + 1; "
            + "; ".join(" ".join(line.split()) for line in lines) + ".")


# --- the widget -------------------------------------------------------------------------------

class _Explorer:
    """The widget version: a kernel menu and sliders, the formula, and the figure.

    Every control redraws on change; ``figure`` is the last Figure drawn.
    """

    def __init__(self, x: torch.Tensor, settings: dict[str, Any]) -> None:
        import ipywidgets as widgets

        self.x = x
        self.figure: Figure | None = None
        self.controls = {"kernel": widgets.Dropdown(options=list(KERNEL_NAMES),
                                                    value=settings["kernel"],
                                                    description=LABELS["kernel"])}
        for name, (low, high) in RANGES.items():
            self.controls[name] = widgets.IntSlider(value=settings[name], min=low, max=high,
                                                    description=LABELS[name],
                                                    continuous_update=False)
        self.formula = widgets.HTML()
        self.output = widgets.Output()
        for control in self.controls.values():
            control.observe(lambda _change: self.redraw(), names="value")
        self.widget = widgets.VBox([widgets.HBox(list(self.controls.values())[:3]),
                                    widgets.HBox(list(self.controls.values())[3:]),
                                    self.formula, self.output])

    def settings(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> None:
        """Write the formula and draw the figure for the controls' current values."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        s = self.settings()
        h, w = self.x.shape[-2:]
        args = (s["kernel_size"], s["stride"], s["padding"], s["dilation"])
        try:
            text = f"height: {_formula(h, *args)}\nwidth:  {_formula(w, *args)}"
        except ValueError as error:
            text = str(error)
        self.formula.value = f"<pre>{text}</pre>"
        with self.output:
            self.output.clear_output(wait=True)
            self.figure = explorer_figure(self.x, **s)
            display(self.figure)
            plt.close(self.figure)


def conv_explorer(image: Any = "cat", interactive: bool | None = None, *,
                  kernel: str = "vertical edge", kernel_size: int = 3, padding: int = 1,
                  stride: int = 1, dilation: int = 1, alt: str | None = None) -> Figure | None:
    """Explore kernel size, padding, stride and dilation on a photo (shown in gray).

    ``image`` is a bundled photo name ("cat"), a path, or an image tensor/array (H, W) /
    (C, H, W). The keyword settings choose the starting point (and the static figure):
    ``kernel`` one of ``cnnlab.ops.KERNEL_NAMES`` (drawn by ``cnnlab.named_kernel``),
    ``kernel_size`` 1..15, ``padding`` 0..30, ``stride`` 1..8, ``dilation`` 1..5.

    ``interactive=None`` decides by the rule in this module's docstring. Static: draws one
    figure and returns it. Interactive: displays the controls (labelled "kernel", "kernel
    size", "padding", "stride", "dilation") with the live formula and figure, and returns None.
    The static figure carries alt text (``alt`` replaces the default) and a visible caption
    saying that it is interactive in Jupyter.
    """
    where = "conv_explorer"
    alt = check_text(alt, "alt", where)
    if interactive is not None and not isinstance(interactive, bool):
        raise TypeError(message(where, "`interactive` as None, True or False",
                                describe(interactive), "None chooses automatically."))
    settings = _settings(kernel, kernel_size, padding, stride, dilation, where)
    x = _gray_image(image, where)
    if interactive is None:
        interactive = frontend_attached()
    if not interactive:
        return explorer_figure(x, **settings, alt=alt, caption=STILL_CAPTION)
    try:
        from IPython.display import display
    except ImportError as error:
        raise ImportError(message(where, "IPython and ipywidgets for interactive=True",
                                  "an import error", "pip install ipywidgets")) from error
    explorer = _Explorer(x, settings)
    display(explorer.widget)
    explorer.redraw()
    return None
