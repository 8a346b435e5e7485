"""Tests for cnnlab.widgets: the explorer's figure shows the right data, and redraws on change."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from cnnlab import widgets
from cnnlab.images import load_image
from cnnlab.ops import named_kernel
from cnnlab.shapes import conv_output_size
from cnnlab.widgets import conv_explorer, explorer_figure, frontend_attached

SMALL = torch.rand(3, 40, 60, generator=torch.Generator().manual_seed(0))
SOBEL_X = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def gray(x):
    """(3, H, W) -> (1, 1, H, W) with the luma weights the explorer uses."""
    return (x * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0)[None, None]


def panel_arrays(fig):
    """The imshow arrays: padded input, output, input zoom, output zoom (kernel <= 7: no image)."""
    return [np.asarray(a.get_array()) for ax in fig.axes for a in ax.get_images()]


def values_written(ax):
    return [float(t.get_text()) for t in ax.texts if t.get_gid() == "value"]


def widget_count() -> int:
    from ipywidgets.widgets import widget

    return len(widget._instances)


@pytest.mark.parametrize(("n", "k", "s", "p", "d"), [(5, 3, 1, 0, 1), (5, 3, 2, 1, 1),
                                                      (100, 25, 3, 0, 1), (7, 3, 1, 0, 2)])
def test_formula_text_ends_with_the_shapes_result(n, k, s, p, d):
    text = widgets._formula(n, k, s, p, d)
    assert text.endswith(f"= {conv_output_size(n, k, stride=s, padding=p, dilation=d)}")
    assert f"{n} + 2*{p}" in text and f"{d}*({k} - 1)" in text and f"/ {s})" in text


def test_default_figure_edge_kernel_padding_and_visible_window(monkeypatch, capsys):
    monkeypatch.delenv("CNNLAB_WIDGETS", raising=False)
    before = widget_count()
    fig = conv_explorer("cat")  # headless: one static figure, no widgets, nothing printed
    assert isinstance(fig, Figure) and plt.get_fignums() == [fig.number]
    assert widget_count() == before and capsys.readouterr() == ("", "")

    cat = load_image("cat", mode="gray")[None]
    padded = F.pad(cat, (1, 1, 1, 1))[0, 0].numpy()
    out = F.conv2d(cat, SOBEL_X[None, None], padding=1)[0, 0].numpy()
    full_in, full_out, zoom_in, zoom_out = panel_arrays(fig)
    np.testing.assert_allclose(full_in, padded, atol=1e-6)
    np.testing.assert_allclose(full_out, out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(zoom_in, padded[:10, :10], atol=1e-6)
    np.testing.assert_allclose(zoom_out, out[:6, :6], rtol=1e-4, atol=1e-5)
    # the kernel is drawn as numbers, and the zooms write the window's pixels and the output
    ax_in, ax_k, _, ax_zin, ax_sum, ax_zout = fig.axes
    assert [float(t.get_text()) for t in ax_k.texts] == SOBEL_X.ravel().tolist()
    np.testing.assert_allclose(values_written(ax_zin), padded[:3, :3].ravel(), atol=0.006)
    np.testing.assert_allclose(values_written(ax_zout), out[:6, :6].ravel(), atol=0.006)
    assert f"{out[0, 0]:.3f}" in ax_sum.texts[0].get_text()
    # the window is a visible patch: 3x3 pixels in the input, a whole cell in the output zoom
    window = [p for p in ax_zin.patches if p.get_fill()]
    assert len(window) == 9 and all(p.get_width() == 1 for p in window)
    assert any(p.get_fill() and (p.get_x(), p.get_y()) == (-0.5, -0.5) for p in ax_zout.patches)


def test_static_settings_are_used():
    fig = conv_explorer(SMALL, interactive=False, kernel="blur", kernel_size=5, padding=2,
                        stride=3, dilation=2)
    full_in, full_out, *_ = panel_arrays(fig)  # kernels up to 7x7 are numbers, not images
    blur = torch.from_numpy(named_kernel("blur", 5)).float()
    expected = F.conv2d(gray(SMALL), blur[None, None], stride=3, padding=2,
                        dilation=2)[0, 0].numpy()
    assert full_in.shape == (44, 64)  # padded input
    np.testing.assert_allclose(full_out, expected, rtol=1e-5, atol=1e-6)


def test_large_kernel_is_an_image_and_dilated_taps_are_marked():
    fig = conv_explorer(SMALL, interactive=False, kernel="outline", kernel_size=9, dilation=2,
                        padding=0)
    full_in, kernel, full_out, zoom_in, _ = panel_arrays(fig)
    assert kernel.shape == (9, 9, 4)  # RGBA colours, no numbers
    red, blue = kernel[..., 0], kernel[..., 2]
    assert red[4, 4] > 2 * blue[4, 4] and blue[0, 0] > 2 * red[0, 0]  # +80 red, -1 as blue
    np.testing.assert_allclose(kernel[0, 0], kernel[8, 3])  # every -1 the same colour
    taps = [(p.get_y() + 0.5, p.get_x() + 0.5) for p in fig.axes[3].patches if p.get_fill()]
    assert sorted(taps) == [(a, b) for a in range(0, 17, 2) for b in range(0, 17, 2)]
    assert full_out.shape == (40 - 16, 60 - 16)


def test_window_too_large_is_explained_not_raised():
    fig = explorer_figure(torch.rand(1, 1, 10, 10), kernel_size=15, dilation=5)
    assert "no larger than the padded input" in fig.axes[0].texts[0].get_text()


def test_slider_change_redraws_figure_and_formula(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    before = widget_count()
    assert conv_explorer(SMALL, interactive=True) is None
    assert widget_count() > before
    assert type(shown[0]).__name__ == "VBox" and isinstance(shown[1], Figure)

    explorer = widgets._Explorer(widgets._gray_image(SMALL, "test"),
                                 widgets._settings("vertical edge", 3, 1, 1, 1, "test"))
    labels = {c.description for c in explorer.controls.values()}
    assert {"kernel size", "padding", "stride", "dilation"} <= labels  # what the browser finds
    explorer.redraw()
    first, formula = explorer.figure, explorer.formula.value
    assert panel_arrays(first)[1].shape == (40, 60)
    explorer.controls["stride"].value = 4  # the slider's observer redraws
    second = explorer.figure
    assert second is not first and explorer.formula.value != formula
    h, w = (conv_output_size(n, 3, stride=4, padding=1) for n in (40, 60))
    assert panel_arrays(second)[1].shape == (h, w) == (10, 15)
    assert f"= {h}" in explorer.formula.value and f"= {w}" in explorer.formula.value
    explorer.controls["kernel"].value = "horizontal edge"
    expected = F.conv2d(gray(SMALL), SOBEL_X.T[None, None], stride=4, padding=1)[0, 0]
    np.testing.assert_allclose(panel_arrays(explorer.figure)[1], expected.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_detection_rule(monkeypatch):
    for name in ("CNNLAB_WIDGETS", "JPY_SESSION_NAME", "PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING"):
        monkeypatch.delenv(name, raising=False)
    assert frontend_attached() is False  # pytest is not a Jupyter kernel
    monkeypatch.setenv("JPY_SESSION_NAME", "/tmp/x.ipynb")
    assert frontend_attached() is False  # still no kernel
    monkeypatch.setenv("CNNLAB_WIDGETS", "1")
    assert frontend_attached() is True
    monkeypatch.setenv("CNNLAB_WIDGETS", "0")
    assert frontend_attached() is False

    class FakeKernelShell:
        kernel = object()

    monkeypatch.delenv("CNNLAB_WIDGETS")
    monkeypatch.setattr("IPython.get_ipython", lambda: FakeKernelShell())
    assert frontend_attached() is True  # JPY_SESSION_NAME: started by a Jupyter server
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.setenv("JPY_PARENT_PID", "123")  # nbclient / nbval set only this one
    assert frontend_attached() is False
    monkeypatch.setenv("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING", "1")  # VS Code
    assert frontend_attached() is True


def test_bad_arguments():
    with pytest.raises(ValueError, match="kernel"):
        conv_explorer(SMALL, interactive=False, kernel="sharpen")
    with pytest.raises(ValueError, match="between 1 and 15"):
        conv_explorer(SMALL, interactive=False, kernel_size=21)
    with pytest.raises(ValueError, match="stride"):
        conv_explorer(SMALL, interactive=False, stride=0)
    with pytest.raises(TypeError, match="integer"):
        conv_explorer(SMALL, interactive=False, padding=1.5)
    with pytest.raises(TypeError, match="interactive"):
        conv_explorer(SMALL, interactive="yes")
    with pytest.raises(ValueError, match="list_images"):
        conv_explorer("dog", interactive=False)
    with pytest.raises(ValueError, match="permute"):
        conv_explorer(SMALL.permute(1, 2, 0), interactive=False)
    with pytest.raises(TypeError, match="photo name"):
        conv_explorer(42, interactive=False)
