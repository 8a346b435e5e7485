"""Interactive explorers that fall back to one static figure when no widget frontend is attached.

``conv_explorer`` slides a kernel over a real photo with sliders for kernel size, padding,
stride and dilation, and shows the output size formula with the numbers filled in.

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
from typing import Any

import numpy as np
import torch

from cnnlab._checks import as_int, describe, is_tensor, message
from cnnlab.images import load_image, looks_hwc
from cnnlab.shapes import conv_output_size

KERNELS = ("identity", "blur", "vertical edge", "horizontal edge", "outline")
# slider ranges: (minimum, maximum)
RANGES = {"kernel_size": (1, 15), "padding": (0, 30), "stride": (1, 8), "dilation": (1, 5)}
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def make_kernel(name: str, size: int) -> torch.Tensor:
    """A (size, size) float kernel by name: one of ``KERNELS``.

    blur: binomial weights summing to 1 (size 3 gives the 1/16, 1/8, 1/4 blur); vertical /
    horizontal edge: Sobel-like, smoothing one way and differencing the other (size 3 gives
    Sobel); outline: -1 everywhere and size*size - 1 in the centre (sums to 0); identity: 1 in
    the centre. For even sizes the "centre" is the cell at (size // 2, size // 2).
    """
    where = "make_kernel"
    if name not in KERNELS:
        raise ValueError(message(where, f"a kernel name in {list(KERNELS)}", repr(name),
                                 "Pick one of the listed names."))
    size = as_int(size, "kernel_size", where, minimum=1)
    centre = size // 2
    if name == "identity":
        kernel = torch.zeros(size, size)
        kernel[centre, centre] = 1.0
        return kernel
    if name == "outline":
        kernel = -torch.ones(size, size)
        kernel[centre, centre] = size * size - 1.0
        return kernel
    smooth = _binomial(size)
    if name == "blur":
        return torch.outer(smooth, smooth) / smooth.sum() ** 2
    slope = torch.arange(size, dtype=torch.float32) - (size - 1) / 2  # -1, 0, 1 for size 3
    if name == "vertical edge":  # responds to left-right changes: vertical edges
        return torch.outer(smooth, slope)
    return torch.outer(slope, smooth)


def _binomial(size: int) -> torch.Tensor:
    """Row ``size - 1`` of Pascal's triangle: 1 2 1 for size 3."""
    from math import comb

    return torch.tensor([float(comb(size - 1, i)) for i in range(size)])


def size_formula(n: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1) -> str:
    """The output-size formula with the numbers filled in, as text.

    >>> size_formula(5, 3, stride=2, padding=1)
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
    """A photo name, path, tensor or array as a gray (1, 1, H, W) float tensor."""
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        return load_image(image, mode="gray").unsqueeze(0)
    if not (is_tensor(image) or isinstance(image, np.ndarray)):
        raise TypeError(message(where, "a photo name such as 'cat', a path, or an image "
                                "tensor (C, H, W)", describe(image),
                                "cnnlab.list_images() lists the bundled photos."))
    x = torch.as_tensor(np.asarray(image.detach().cpu() if is_tensor(image) else image))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        hint = ("This looks like HWC; use image.permute(2, 0, 1)." if x.dim() == 3
                and looks_hwc(tuple(x.shape)) else "Give a gray or RGB image.")
        raise ValueError(message(where, "an image (H, W), (1, H, W) or (3, H, W)",
                                 f"shape {tuple(x.shape)}", hint))
    x = x.unsqueeze(0)
    return (x * _LUMA).sum(dim=1, keepdim=True) if x.shape[1] == 3 else x


def _settings(kernel: Any, kernel_size: Any, padding: Any, stride: Any, dilation: Any,
              where: str) -> dict[str, Any]:
    if kernel not in KERNELS:
        raise ValueError(message(where, f"`kernel` in {list(KERNELS)}", repr(kernel),
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


def explorer_figure(x: torch.Tensor, kernel: str = "outline", kernel_size: int = 3,
                    padding: int = 0, stride: int = 1, dilation: int = 1) -> Any:
    """One frame of the explorer for a gray image ``x`` (1, 1, H, W); returns the Figure.

    Panels at the same pixel scale: the padded input (padding in dark red, the first kernel
    window outlined in blue and the next one, a stride away, in orange), the kernel, and the
    output. The title gives the size formula for height and width.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    where = "conv_explorer"
    s = _settings(kernel, kernel_size, padding, stride, dilation, where)
    k, p, st, d = s["kernel_size"], s["padding"], s["stride"], s["dilation"]
    h, w = x.shape[-2:]
    try:
        lines = [f"height: {size_formula(h, k, st, p, d)}",
                 f"width:  {size_formula(w, k, st, p, d)}"]
    except ValueError as error:  # the window does not fit: show why instead of failing
        fig, ax = plt.subplots(figsize=(9, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, str(error), ha="center", va="center", wrap=True, fontsize=11)
        return fig
    weight = make_kernel(s["kernel"], k).view(1, 1, k, k)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(x, weight, stride=st, padding=p, dilation=d)[0, 0]
    padded = torch.nn.functional.pad(x[0, 0], (p, p, p, p))
    ho, wo = out.shape
    wp = w + 2 * p
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), layout="constrained",
                             width_ratios=[wp, 0.3 * max(wp, wo), max(wo, 0.3 * wp)])
    ax_in, ax_k, ax_out = axes
    ax_in.imshow(padded.numpy(), cmap="gray", vmin=0, vmax=1)
    if p:
        ax_in.add_patch(Rectangle((-0.5, -0.5), wp, h + 2 * p, fill=False, edgecolor="#b03030",
                                  lw=2))
        ax_in.add_patch(Rectangle((p - 0.5, p - 0.5), w, h, fill=False, edgecolor="#b03030",
                                  lw=1, linestyle=":"))
    span = d * (k - 1) + 1
    ax_in.add_patch(Rectangle((-0.5, -0.5), span, span, fill=False, edgecolor="#1f5fbf", lw=2))
    if wo > 1:
        ax_in.add_patch(Rectangle((st - 0.5, -0.5), span, span, fill=False, edgecolor="#e07b00",
                                  lw=2, linestyle="--"))
    ax_in.set_title(f"input ({h}x{w}) + padding {p} = {h + 2 * p}x{wp}\n"
                    f"window {span}x{span}, stride {st}")
    ax_k.imshow(weight[0, 0].numpy(), cmap="RdBu_r",
                vmin=-float(weight.abs().max()), vmax=float(weight.abs().max()))
    ax_k.set_title(f"kernel ({k}x{k})\n{s['kernel']}" + (f", dilation {d}" if d > 1 else ""))
    signed = s["kernel"] not in ("identity", "blur")
    if signed:
        limit = float(np.percentile(out.abs().numpy(), 99)) or 1.0
        ax_out.imshow(out.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    else:
        ax_out.imshow(out.numpy(), cmap="gray", vmin=0, vmax=1)
    ax_out.set_xlim(-0.5, max(wo, 0.3 * wp) - 0.5)
    ax_out.set_ylim(max(ho, h + 2 * p) - 0.5, -0.5)  # same pixel scale as the input
    ax_out.set_title(f"output ({ho}x{wo})")
    for ax in axes:
        ax.set_anchor("N")
        ax.set_xticks([])
        ax.set_yticks([])
    for spine in ax_out.spines.values():
        spine.set_visible(False)
    fig.suptitle("output size = floor((n + 2p - d(k - 1) - 1) / s) + 1\n" + "\n".join(lines),
                 fontsize=11, family="monospace")
    return fig


class _Explorer:
    """The widget version: sliders, a kernel menu, the formula and the figure."""

    def __init__(self, x: torch.Tensor, settings: dict[str, Any]) -> None:
        import ipywidgets as widgets

        self.x = x
        self.controls = {"kernel": widgets.Dropdown(options=list(KERNELS),
                                                    value=settings["kernel"],
                                                    description="kernel")}
        for name, (low, high) in RANGES.items():
            self.controls[name] = widgets.IntSlider(value=settings[name], min=low, max=high,
                                                    description=name.replace("_", " "),
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

    def update(self, **settings: Any) -> Any:
        """Draw the figure for these settings, set the formula text; returns the Figure."""
        h, w = self.x.shape[-2:]
        s = settings
        try:
            self.formula.value = (
                "<pre>height: " + size_formula(h, s["kernel_size"], s["stride"], s["padding"],
                                               s["dilation"])
                + "\nwidth:  " + size_formula(w, s["kernel_size"], s["stride"], s["padding"],
                                              s["dilation"]) + "</pre>")
        except ValueError as error:
            self.formula.value = f"<pre>{error}</pre>"
        return explorer_figure(self.x, **settings)

    def redraw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        with self.output:
            self.output.clear_output(wait=True)
            fig = self.update(**self.settings())
            display(fig)
            plt.close(fig)


def conv_explorer(image: Any = "cat", interactive: bool | None = None, *,
                  kernel: str = "outline", kernel_size: int = 3, padding: int = 0,
                  stride: int = 1, dilation: int = 1) -> Any:
    """Explore kernel size, padding, stride and dilation on a photo (shown in gray).

    ``image`` is a bundled photo name ("cat"), a path, or an image tensor/array (H, W) /
    (C, H, W). The keyword settings choose the starting point (and the static figure):
    ``kernel`` in ``KERNELS``, ``kernel_size`` 1..15, ``padding`` 0..30, ``stride`` 1..8,
    ``dilation`` 1..5.

    ``interactive=None`` decides by the rule in this module's docstring. Static: draws one
    figure and returns it (end the notebook line with ``;``). Interactive: displays the
    sliders with the live figure and formula and returns None.
    """
    where = "conv_explorer"
    if interactive is not None and not isinstance(interactive, bool):
        raise TypeError(message(where, "`interactive` as None, True or False",
                                describe(interactive), "None chooses automatically."))
    settings = _settings(kernel, kernel_size, padding, stride, dilation, where)
    x = _gray_image(image, where)
    if interactive is None:
        interactive = frontend_attached()
    if not interactive:
        return explorer_figure(x, **settings)
    try:
        from IPython.display import display
    except ImportError as error:
        raise ImportError(message(where, "IPython and ipywidgets for interactive=True",
                                  "an import error", "pip install ipywidgets")) from error
    explorer = _Explorer(x, settings)
    display(explorer.widget)
    explorer.redraw()
    return None
