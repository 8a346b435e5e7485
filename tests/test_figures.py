"""Alt text: every cnnlab figure and animation says what it shows, and a notebook gets that text.

A described figure displays as text/html ``<img alt=...>`` (what JupyterLab and MyST-NB read)
plus text/plain, with no second copy of the PNG; a figure nobody described displays exactly as
before. Each function's default alt names its real sizes and labels; bad alt text teaches.
"""

from __future__ import annotations

import base64
import html
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt
from test_errors import assert_teaches

import cnnlab
from cnnlab import figures
from cnnlab.figures import alt_text, caption_text, describe_figure, mimebundle

X = np.array([[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]])
K = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]])
HISTORY = {"train_loss": [2.31, 0.42], "train_acc": [0.12, 0.9], "val_loss": [2.2, 0.5],
           "val_acc": [0.15, 0.875]}


@pytest.fixture
def shell():
    """An IPython shell whose PNG formatter draws Figures, as the inline backend sets it up."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats

    ip = InteractiveShell.instance()
    select_figure_formats(ip, {"png"})
    yield ip
    InteractiveShell.clear_instance()


def shown(shell, fig):
    """The outputs a notebook stores for ``display(fig)``: [(data, metadata), ...]."""
    from IPython.display import display
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        display(fig)
    return [(out.data, out.metadata) for out in captured.outputs]


def img_tag(data):
    tags = re.findall(r"<img\b[^>]*>", data["text/html"])
    assert len(tags) == 1, data["text/html"][:300]
    return tags[0]


# --- the mechanism ------------------------------------------------------------------------

def test_described_figure_displays_as_img_with_its_alt_and_no_second_png(shell):
    fig, ax = plt.subplots()
    ax.plot([1, 3, 2])
    png = shell.display_formatter.formatters["image/png"](fig)
    assert describe_figure(fig, 'Three points, "peak" <in the middle>') is fig
    [(data, metadata)] = shown(shell, fig)
    assert set(data) == {"text/html", "text/plain"}  # no image/png payload beside the <img>
    tag = img_tag(data)
    alt = re.search(r'alt="([^"]*)"', tag).group(1)
    assert html.unescape(alt) == 'Three points, "peak" <in the middle>'
    payload = re.search(r'src="data:image/png;base64,([^"]+)"', tag).group(1)
    assert payload == png  # the very PNG the inline backend would have shown
    assert base64.b64decode(payload)[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["text/plain"] == 'Three points, "peak" <in the middle>'


def test_undescribed_figure_displays_exactly_as_before(shell):
    fig, ax = plt.subplots()
    ax.plot([1, 3, 2])
    [(data, _)] = shown(shell, fig)
    assert set(data) == {"image/png", "text/plain"}
    assert data["text/plain"].startswith("<Figure size")
    assert not hasattr(fig, "_ipython_display_") and alt_text(fig) is None


def test_retina_figures_keep_their_display_size(shell):
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"retina"})
    fig, _ = plt.subplots(figsize=(4, 3))
    describe_figure(fig, "Empty axes, drawn for a retina screen")
    tag = img_tag(shown(shell, fig)[0][0])
    assert re.search(r'width="\d+" height="\d+"', tag), tag


def test_caption_is_visible_under_the_image_and_in_the_text(shell):
    fig = describe_figure(plt.figure(), "An empty figure", caption="Run it in Jupyter & see")
    [(data, _)] = shown(shell, fig)
    assert re.fullmatch(r'<figure><img [^>]*><figcaption>Run it in Jupyter &amp; see'
                        r'</figcaption></figure>', data["text/html"])
    assert data["text/plain"] == "An empty figure\nRun it in Jupyter & see"


def test_text_plain_lines_fit_the_page():
    fig = describe_figure(plt.figure(), "word " * 100)
    data, _ = mimebundle(fig)
    assert max(len(line) for line in data["text/plain"].splitlines()) <= 100


def test_outside_ipython_the_figure_draws_its_own_png():
    fig = describe_figure(plt.figure(figsize=(2, 1)), "A blank 2 by 1 inch figure")
    tag = img_tag(mimebundle(fig)[0])
    payload = re.search(r"base64,([^\"]+)", tag).group(1)
    assert base64.b64decode(payload)[:4] == b"\x89PNG"


def test_describing_again_replaces_the_text_and_pickling_still_works():
    fig = describe_figure(plt.figure(), "first")
    describe_figure(fig, "second   text\nwith a line break")
    assert alt_text(fig) == "second text with a line break" and caption_text(fig) is None
    copy = pickle.loads(pickle.dumps(fig))
    assert alt_text(copy) == "second text with a line break"


def test_nbval_sanitizer_hides_the_pixels_but_keeps_the_alt():
    from pathlib import Path

    from nbval.plugin import get_sanitize_patterns

    config = (Path(__file__).parent / "nbval_sanitize.cfg").read_text()
    fig = describe_figure(plt.figure(), "An empty figure")
    text = mimebundle(fig)[0]["text/html"]
    for regex, replace in get_sanitize_patterns(config):
        text = re.sub(regex, replace, text)
    assert text == '<img alt="An empty figure" src="data:image/png;base64,PIXELS">'


def test_importing_figures_loads_no_matplotlib():
    code = ("import sys, cnnlab, cnnlab.figures; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- default alt text: the real sizes and labels --------------------------------------------

PHOTO = torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(0))
LAYER = torch.nn.Conv2d(3, 5, 3, padding=1)

DEFAULTS = {
    "plot_conv": (lambda: cnnlab.plot_conv(PHOTO, [[-1, 0, 1]] * 3, title="edges"),
                  ["input image, 3x24x32 (RGB)", "3x3 kernel (rows -1 0 1; -1 0 1; -1 0 1)",
                   "output, 3x24x32", "Title: edges."]),
    "plot_convs": (lambda: cnnlab.plot_convs(PHOTO, LAYER, ncols=3),
                   ["6 panels in 2 rows of 3", "input image (3x24x32, RGB)",
                    "output channels 0 to 4", "3x3 kernels", "each 24x32"]),
    "plot_feature_maps": (lambda: cnnlab.plot_feature_maps(torch.rand(16, 8, 8), ncols=8),
                          ["16 feature maps of 8x8 in 2 rows of 8", "channel 0 to channel 15"]),
    "plot_images": (lambda: cnnlab.plot_images(torch.rand(3, 1, 16, 32), labels=[0, 2, 1],
                                               classes=["cat", "dog", "fish"]),
                    ["3 gray images of 16x32 in one row of 3", "labelled cat, fish, dog",
                     "Title: 3 images of 16x32."]),
    "plot_filters": (lambda: cnnlab.plot_filters(torch.rand(64, 3, 11, 11), ncols=8),
                     ["64 convolution filters of shape 3x11x11 in 8 rows of 8", "colour"]),
    "plot_history": (lambda: cnnlab.plot_history({"CNN": HISTORY, "MLP": HISTORY}),
                     ["2 runs (CNN, MLP) over 2 epochs", "CNN: training loss 2.31 to 0.42",
                      "validation accuracy 15% to 88%", "MLP:"]),
    "plot_conv_grid": (lambda: cnnlab.plot_conv_grid(X, K, padding=1),
                       ["5x5 input grid (rows 3 3 2 1 0; 0 0 1 3 1;",
                        "ring of padding zeros 1 cell wide", "3x3 kernel (rows 0 1 2; 2 2 0; "
                        "0 1 2)", "5x5 output grid (rows 6 14 17 11 3;", "top-left window",
                        "stride 1 to the right", "output[0, 0] = "]),
    "plot_channel_sum": (lambda: cnnlab.plot_channel_sum(np.arange(18).reshape(2, 3, 3),
                                                         np.ones((2, 2, 2)), bias=1),
                         ["channel 0 (rows 0 1 2; 3 4 5; 6 7 8) * kernel slice 0 (rows 1 1; "
                          "1 1) = partial map 0 (rows 8 12; 20 24)", "plus the bias 1",
                          "2x2 output map (rows 53 61; 77 85)"]),
    "plot_pool_grid": (lambda: cnnlab.plot_pool_grid(X, 3, 2),
                       ["Max pooling diagram, 3x3 windows with stride 2", "5x5 input grid",
                        "they overlap", "2x2 output grid (rows 3 3; 3 3)"]),
    "conv_explorer": (lambda: cnnlab.conv_explorer(PHOTO, False, kernel="outline",
                                                   kernel_size=5, padding=2, stride=3),
                      ["input image in gray, 24x32, padded by 2 to 28x36", "5x5 outline kernel",
                       "8x11 output", "stride 3 to the right",
                       "height: floor((24 + 2*2 - 1*(5 - 1) - 1) / 3) + 1 = 8"]),
}


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_default_alt_names_the_real_sizes_and_labels(name):
    make, words = DEFAULTS[name]
    text = alt_text(make())
    missing = [word for word in words if word not in text]
    assert not missing, f"{missing} missing from: {text}"


def test_explorer_still_picture_says_it_is_interactive_in_jupyter():
    fig = cnnlab.conv_explorer(PHOTO, interactive=False)
    assert "interactive" in caption_text(fig) and "Jupyter" in caption_text(fig)
    assert "<figcaption>A still picture of an interactive explorer" in mimebundle(fig)[0][
        "text/html"]


def test_explorer_settings_that_do_not_fit_are_described():
    fig = cnnlab.conv_explorer(PHOTO, False, kernel_size=15, dilation=5, padding=0)
    assert "no output for these settings" in alt_text(fig)


ANIMATIONS = {
    "animate_conv": (lambda **kw: cnnlab.animate_conv(5, 3, stride=2, padding=1, **kw),
                     ["9 frames", "3x3 kernel slides with stride 2 over a 5x5 input",
                      "padding 1", "3x3 output"]),
    "animate_pool": (lambda **kw: cnnlab.animate_pool(X, 3, 2, **kw),
                     ["4 frames", "3x3 max-pooling window", "5x5 grid (rows 3 3 2 1 0;",
                      "2x2 output, which ends as (rows 3 3; 3 3)"]),
    "animate_pool_backward": (lambda **kw: cnnlab.animate_pool_backward(X, np.ones((2, 2)), 3,
                                                                        2, **kw),
                              ["4 frames", "dout, 2x2 (rows 1 1; 1 1)", "dx, 5x5",
                               "dx ends as (rows 1 0 0 0 0; 0 0 0 1 0; 1 0 0 0 1;"]),
}


@pytest.mark.parametrize("name", list(ANIMATIONS))
def test_animation_img_carries_its_alt(name):
    make, words = ANIMATIONS[name]
    anim = make()
    tag = img_tag(anim._repr_mimebundle_())
    alt = html.unescape(re.search(r'alt="([^"]*)"', tag).group(1))
    assert alt == anim.alt and alt != anim.description
    missing = [word for word in words if word not in alt]
    assert not missing, f"{missing} missing from: {alt}"
    custom = make(alt="My own words")
    assert 'alt="My own words"' in custom._repr_mimebundle_()["text/html"]
    assert repr(custom) == repr(anim)  # the text/plain line is unchanged


# --- alt given by the caller ----------------------------------------------------------------

CALLS = {
    "plot_conv": lambda alt: cnnlab.plot_conv(PHOTO, K, alt=alt),
    "plot_convs": lambda alt: cnnlab.plot_convs(PHOTO, LAYER, alt=alt),
    "plot_feature_maps": lambda alt: cnnlab.plot_feature_maps(torch.rand(4, 5, 5), alt=alt),
    "plot_images": lambda alt: cnnlab.plot_images(torch.rand(2, 1, 8, 8), alt=alt),
    "plot_filters": lambda alt: cnnlab.plot_filters(torch.rand(4, 1, 3, 3), alt=alt),
    "plot_history": lambda alt: cnnlab.plot_history(HISTORY, alt=alt),
    "plot_conv_grid": lambda alt: cnnlab.plot_conv_grid(X, K, alt=alt),
    "plot_channel_sum": lambda alt: cnnlab.plot_channel_sum(np.ones((2, 3, 3)),
                                                            np.ones((2, 2, 2)), alt=alt),
    "plot_pool_grid": lambda alt: cnnlab.plot_pool_grid(X, alt=alt),
    "conv_explorer": lambda alt: cnnlab.conv_explorer(PHOTO, False, alt=alt),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_alt_argument_replaces_the_default(name):
    assert alt_text(CALLS[name]("My own description.")) == "My own description."


@pytest.mark.parametrize("name", list(CALLS) + list(ANIMATIONS))
def test_alt_that_is_not_text_teaches_before_drawing(name):
    call = CALLS.get(name) or (lambda alt: ANIMATIONS[name][0](alt=alt))
    before = plt.get_fignums()
    assert_teaches(lambda: call(3), TypeError, [f"{name}: expected `alt` as a str",
                                                "got 3 (int)", "Write a sentence"])
    assert_teaches(lambda: call(["a"]), TypeError, ["a list of length 1"])
    assert_teaches(lambda: call("  "), ValueError, ["`alt` with some text", "alt=None"])
    assert plt.get_fignums() == before  # no half-drawn figure left for the notebook to show


def test_describe_figure_errors():
    fig = plt.figure()
    assert_teaches(lambda: describe_figure("fig.png", "x"), TypeError,
                   ["a matplotlib Figure", "'fig.png' (str)", "describe_figure(fig, alt)"])
    assert_teaches(lambda: describe_figure(fig, None), TypeError, ["`alt` as a str", "None"])
    assert_teaches(lambda: describe_figure(fig, b"bytes"), TypeError, ["(bytes)"])
    assert_teaches(lambda: describe_figure(fig, "ok", caption=1), TypeError,
                   ["`caption` as a str"])
    assert figures.alt_text(fig) is None  # nothing attached by a failed call
