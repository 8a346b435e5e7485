"""Tests for cnnlab.widgets: static fallback, the widget's update function, the size formula."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnlab import widgets  # noqa: E402
from cnnlab.widgets import (  # noqa: E402
    conv_explorer,
    explorer_figure,
    frontend_attached,
    make_kernel,
    size_formula,
)

SMALL = torch.rand(3, 40, 60, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def widget_count() -> int:
    from ipywidgets.widgets import widget

    return len(widget._instances)


def test_size_formula_numbers():
    assert size_formula(5, 3) == "floor((5 + 2*0 - 1*(3 - 1) - 1) / 1) + 1 = 3"
    assert size_formula(5, 3, stride=2, padding=1).endswith("= 3")
    assert size_formula(100, 25, stride=3).endswith("= 26")
    assert size_formula(100, 51, padding=25).endswith("= 100")
    assert size_formula(7, 3, dilation=2) == "floor((7 + 2*0 - 2*(3 - 1) - 1) / 1) + 1 = 3"
    with pytest.raises(ValueError, match="padding"):
        size_formula(4, 7)


def test_make_kernel_values():
    torch.testing.assert_close(make_kernel("blur", 3) * 16,
                               torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]))
    torch.testing.assert_close(make_kernel("vertical edge", 3),
                               torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]))
    torch.testing.assert_close(make_kernel("horizontal edge", 3), make_kernel("vertical edge", 3).T)
    outline = make_kernel("outline", 5)
    assert outline.sum().item() == pytest.approx(0) and outline[2, 2].item() == 24
    assert make_kernel("identity", 1).tolist() == [[1.0]]
    for size in (1, 2, 6, 15):
        assert make_kernel("blur", size).sum().item() == pytest.approx(1)
    with pytest.raises(ValueError, match="kernel name"):
        make_kernel("sharpen", 3)


def test_headless_returns_one_figure_and_no_widgets(monkeypatch, capsys):
    monkeypatch.delenv("CNNLAB_WIDGETS", raising=False)
    before = widget_count()
    fig = conv_explorer("cat")
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == [fig.number]
    assert widget_count() == before
    assert capsys.readouterr() == ("", "")
    title = fig._suptitle.get_text()
    assert "height: floor((266 + 2*0 - 1*(3 - 1) - 1) / 1) + 1 = 264" in title
    assert "width:  floor((400 + 2*0 - 1*(3 - 1) - 1) / 1) + 1 = 398" in title
    ax_in, ax_k, ax_out = fig.axes
    assert ax_in.get_title().startswith("input (266x400)")
    assert ax_out.get_title() == "output (264x398)"
    out = np.asarray(ax_out.get_images()[0].get_array())
    assert out.shape == (264, 398) and out.std() > 0


def test_static_settings_are_used():
    fig = conv_explorer(SMALL, interactive=False, kernel="blur", kernel_size=5, padding=2,
                        stride=3, dilation=2)
    ax_in, ax_k, ax_out = fig.axes
    h = (40 + 4 - 2 * 4 - 1) // 3 + 1
    w = (60 + 4 - 2 * 4 - 1) // 3 + 1
    assert ax_out.get_title() == f"output ({h}x{w})"
    assert np.asarray(ax_in.get_images()[0].get_array()).shape == (44, 64)  # padded input
    assert np.asarray(ax_k.get_images()[0].get_array()).shape == (5, 5)
    expected = torch.nn.functional.conv2d(
        (SMALL * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0)[None, None],
        make_kernel("blur", 5)[None, None], stride=3, padding=2, dilation=2)[0, 0]
    np.testing.assert_allclose(np.asarray(ax_out.get_images()[0].get_array()), expected.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_window_too_large_is_explained_not_raised():
    x = torch.rand(1, 1, 10, 10)
    fig = explorer_figure(x, kernel_size=15, dilation=5)
    assert "no larger than the padded input" in fig.axes[0].texts[0].get_text()


def test_interactive_builds_widget_and_update(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    before = widget_count()
    assert conv_explorer(SMALL, interactive=True) is None
    assert widget_count() > before
    box = shown[0]
    assert type(box).__name__ == "VBox"
    assert any(isinstance(o, Figure) for o in shown[1:])  # the first frame was drawn

    explorer = widgets._Explorer(widgets._gray_image(SMALL, "test"),
                                 widgets._settings("outline", 3, 0, 1, 1, "test"))
    assert set(explorer.controls) == {"kernel", "kernel_size", "padding", "stride", "dilation"}
    fig = explorer.update(kernel="vertical edge", kernel_size=3, padding=1, stride=2, dilation=1)
    assert explorer.formula.value == ("<pre>height: floor((40 + 2*1 - 1*(3 - 1) - 1) / 2) + 1 = 20"
                                      "\nwidth:  floor((60 + 2*1 - 1*(3 - 1) - 1) / 2) + 1 = 30"
                                      "</pre>")
    assert fig.axes[2].get_title() == "output (20x30)"
    explorer.controls["stride"].value = 4  # a slider change redraws through the Output widget
    assert explorer.settings()["stride"] == 4


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
