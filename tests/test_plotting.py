"""Tests for cnnlab.plotting: each figure shows the right data (image arrays, sizes, curves)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from cnnlab.curves import plot_history
from cnnlab.plotting import (
    plot_conv,
    plot_convs,
    plot_feature_maps,
    plot_filters,
    plot_images,
)

BLUR = [[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]]
OUTLINE = [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]


@pytest.fixture
def photo():
    """A small smooth RGB image (3, 24, 32) with structure in every channel."""
    rows, cols = np.mgrid[0:24, 0:32]
    return torch.tensor(np.stack([rows / 23, cols / 31, (rows + cols) % 7 / 6]),
                        dtype=torch.float32)


def shown(fig):
    """The arrays drawn by imshow, panel by panel."""
    return [np.asarray(a.get_array()) for ax in fig.axes for a in ax.get_images()]


def cell_numbers(ax):
    return [float(t.get_text()) for t in ax.texts if t.get_gid() == "cell"]


def grid_shape(fig):
    return fig.axes[0].get_subplotspec().get_gridspec().get_geometry()


# --- plot_conv ----------------------------------------------------------------------------

def test_plot_conv_rgb_shows_input_kernel_numbers_and_blurred_output(photo):
    fig = plot_conv(photo, BLUR)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3  # input, kernel, output (no colorbar for RGB)
    image, out = shown(fig)
    np.testing.assert_allclose(image, photo.permute(1, 2, 0).numpy())
    expected = F.conv2d(photo[:, None], torch.tensor(BLUR)[None, None], padding=1)[:, 0]
    np.testing.assert_allclose(out, expected.permute(1, 2, 0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cell_numbers(fig.axes[1]), np.ravel(BLUR), rtol=1e-3)
    assert "3x24x32" in fig.axes[0].get_title() and "3x24x32" in fig.axes[2].get_title()
    assert fig.get_suptitle()


def test_plot_conv_gray_signed_output_is_centred_on_zero(photo):
    gray = photo[:1]
    fig = plot_conv(gray, OUTLINE, title="outline")
    assert len(fig.axes) == 4  # + colorbar
    assert fig.get_suptitle() == "outline"  # the caller's title is used as given
    output_artist = fig.axes[2].get_images()[0]
    expected = F.conv2d(gray[None], torch.tensor(OUTLINE, dtype=torch.float32)[None, None],
                        padding=1)[0, 0].numpy()
    np.testing.assert_allclose(output_artist.get_array(), expected, rtol=1e-5, atol=1e-6)
    vmin, vmax = output_artist.get_clim()
    assert vmin == pytest.approx(-vmax) and vmax > 0
    assert output_artist.norm(0.0) == pytest.approx(0.5)  # zero sits in the colormap's middle


def test_plot_conv_accepts_hw_and_batched(photo):
    assert shown(plot_conv(photo[0].numpy(), BLUR))[0].shape == (24, 32)
    assert shown(plot_conv(photo[None], np.array(BLUR)))[0].shape == (24, 32, 3)


def test_plot_conv_rgb_signed_output_is_stretched_into_0_1(photo):
    out = shown(plot_conv(photo, OUTLINE))[1]
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.05
    raw = F.conv2d(photo[:, None], torch.tensor(OUTLINE, dtype=torch.float32)[None, None],
                   padding=1)
    assert raw.min() < 0 < raw.max()  # so the stretch did real work


def test_plot_conv_errors(photo):
    with pytest.raises(ValueError, match="plot_convs"):
        plot_conv(photo, torch.ones(1, 3, 3, 3))
    with pytest.raises(ValueError, match="permute"):
        plot_conv(photo.permute(1, 2, 0), BLUR)  # HWC where CHW is expected
    with pytest.raises(ValueError, match="alpha"):
        plot_conv(torch.rand(4, 8, 8), BLUR)
    with pytest.raises(ValueError, match="batch"):
        plot_conv(torch.rand(2, 3, 8, 8), BLUR)
    with pytest.raises(ValueError, match="rank 1"):
        plot_conv(torch.rand(8), BLUR)
    with pytest.raises(TypeError, match="numbers"):
        plot_conv(photo, "blur")


# --- plot_convs, plot_feature_maps, plot_filters --------------------------------------------

def test_plot_convs_one_panel_per_channel(photo):
    layer = torch.nn.Conv2d(3, 7, 5)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(7, 3, 5, 5, generator=torch.Generator().manual_seed(0)))
    fig = plot_convs(photo, layer)
    assert len(fig.axes) == 8 and grid_shape(fig) == (3, 3)  # input + 7 maps; one cell removed
    arrays = shown(fig)
    np.testing.assert_allclose(arrays[0], photo.permute(1, 2, 0).numpy())
    expected = layer(photo[None])[0].detach().numpy()
    for c in range(7):
        np.testing.assert_allclose(arrays[c + 1], expected[c], rtol=1e-5, atol=1e-5)
    assert layer.weight.grad is None


def test_plot_convs_errors(photo):
    with pytest.raises(ValueError, match='mode="rgb"'):
        plot_convs(photo[:1], torch.nn.Conv2d(3, 2, 3))
    with pytest.raises(ValueError, match="permute"):
        plot_convs(photo.permute(1, 2, 0), torch.nn.Conv2d(3, 2, 3))
    with pytest.raises(TypeError, match="nn.Conv2d"):
        plot_convs(photo, torch.nn.ReLU())
    with pytest.raises(TypeError, match="plot_filters"):
        plot_convs(photo, torch.ones(2, 3, 3, 3))


def test_plot_feature_maps_square_grid_of_every_channel():
    maps = torch.rand(1, 64, 9, 5, generator=torch.Generator().manual_seed(1))
    fig = plot_feature_maps(maps)
    assert len(fig.axes) == 64 and grid_shape(fig) == (8, 8)
    assert all(not ax.axison for ax in fig.axes)
    arrays = shown(fig)
    for c in (0, 17, 63):
        np.testing.assert_allclose(arrays[c], maps[0, c].numpy())


def test_plot_feature_maps_ncols_and_requires_grad():
    maps = torch.rand(7, 6, 6, requires_grad=True) * 2
    fig = plot_feature_maps(maps, ncols=4, title="seven maps")
    assert len(fig.axes) == 7 and grid_shape(fig) == (2, 4)
    np.testing.assert_allclose(shown(fig)[6], maps[6].detach().numpy())
    assert fig.get_suptitle() == "seven maps"


def test_plot_feature_maps_errors():
    with pytest.raises(ValueError, match="batch"):
        plot_feature_maps(torch.rand(2, 3, 5, 5))
    with pytest.raises(ValueError, match="Flatten"):
        plot_feature_maps(torch.rand(100))
    with pytest.raises(ValueError, match="permute"):
        plot_feature_maps(torch.rand(32, 32, 3))
    with pytest.raises(ValueError, match="ncols"):
        plot_feature_maps(torch.rand(3, 5, 5), ncols=0)


def test_plot_feature_maps_panel_size_sets_the_figure_size():
    maps = torch.rand(64, 9, 5, generator=torch.Generator().manual_seed(3))
    default, small = plot_feature_maps(maps), plot_feature_maps(maps, panel_size=1.0)
    width, height = small.get_size_inches()
    assert width == pytest.approx(8 * 1.0) and height == pytest.approx(8 * 1.0 + 0.6)
    assert default.get_size_inches()[0] == pytest.approx(8 * 1.4)
    np.testing.assert_allclose(shown(small)[5], maps[5].numpy())  # the same maps, smaller
    with pytest.raises(ValueError, match="panel_size"):
        plot_feature_maps(maps, panel_size=0)
    with pytest.raises(TypeError, match="panel_size"):
        plot_feature_maps(maps, panel_size="1")


def test_plot_filters_rgb_tiles_are_each_normalised():
    weight = torch.randn(64, 3, 11, 11, generator=torch.Generator().manual_seed(2))
    tiles = shown(plot_filters(weight))
    assert len(tiles) == 64
    for o in (0, 31, 63):
        w = weight[o].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(tiles[o], (w - w.min()) / (w.max() - w.min()), atol=1e-6)


def test_plot_filters_gray_and_layer():
    layer = torch.nn.Conv2d(5, 6, 3)
    fig = plot_filters(layer, ncols=3)
    tiles = shown(fig)
    assert len(tiles) == 6 and grid_shape(fig) == (2, 3)
    np.testing.assert_allclose(tiles[2], layer.weight[2, 0].detach().numpy())


def test_plot_filters_title_replaces_the_default():
    weight = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(4))
    default = plot_filters(weight).get_suptitle()
    assert default == "4 filters of 3x5x5 (as RGB, each rescaled to 0..1)"
    fig = plot_filters(weight, ncols=2, title="four random filters")
    assert fig.get_suptitle() == "four random filters" and grid_shape(fig) == (2, 2)


def test_plot_filters_errors():
    with pytest.raises(ValueError, match="plot_conv"):
        plot_filters(torch.ones(3, 3))
    with pytest.raises(TypeError, match="nn.Conv2d"):
        plot_filters(torch.nn.Linear(3, 3))


# --- plot_history -----------------------------------------------------------------------------

HISTORY = {"train_loss": [1.0, 0.5, 0.3], "train_acc": [0.5, 0.8, 0.9],
           "val_loss": [1.1, 0.6, 0.4], "val_acc": [0.4, 0.7, 0.85]}


class _History:
    def __init__(self, **lists):
        self.__dict__.update(lists)


def test_plot_history_one_run():
    fig = plot_history(_History(**HISTORY))
    ax_loss, ax_acc = fig.axes
    train, val = ax_loss.get_lines()
    np.testing.assert_allclose(train.get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(train.get_ydata(), HISTORY["train_loss"])
    np.testing.assert_allclose(val.get_ydata(), HISTORY["val_loss"])
    np.testing.assert_allclose(ax_acc.get_lines()[1].get_ydata(), HISTORY["val_acc"])
    assert train.get_linestyle() == "-" and val.get_linestyle() == "--"
    # the dashed curves are the validation split unless eval_label says otherwise
    assert [line.get_label() for line in ax_loss.get_lines()] == ["train", "validation"]
    assert fig.get_suptitle() == "learning curves (solid: train, dashed: validation)"


def test_plot_history_names_the_evaluation_split():
    fig = plot_history({"cnn": HISTORY}, eval_label="test")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["cnn train", "cnn test"]


def test_plot_history_dict_of_runs_with_empty_validation():
    no_val = {**HISTORY, "val_loss": [], "val_acc": []}
    fig = plot_history({"cnn": HISTORY, "mlp": no_val})
    lines = fig.axes[1].get_lines()
    assert len(lines) == 3  # cnn train, cnn validation, mlp train
    assert lines[0].get_color() != lines[2].get_color()  # one colour per run
    np.testing.assert_allclose(lines[2].get_ydata(), HISTORY["train_acc"])


def test_plot_history_errors():
    with pytest.raises(TypeError, match="val_acc"):
        plot_history({"cnn": {"train_loss": [1.0], "train_acc": [0.5], "val_loss": []}})
    with pytest.raises(TypeError, match="History"):
        plot_history([1.0, 0.5])
    with pytest.raises(ValueError, match="empty"):
        plot_history({})
    with pytest.raises(ValueError, match="epoch"):
        plot_history({**HISTORY, "train_loss": []})


# --- plot_images --------------------------------------------------------------------------

def test_plot_images_rows_labels_and_colour(photo):
    batch = torch.stack([photo, 1 - photo, photo.flip(1)])
    fig = plot_images(batch, labels=[0, 2, 1], classes=["circle", "square", "cross"], ncols=2)
    assert len(fig.axes) == 3 and grid_shape(fig) == (2, 2)
    assert [ax.get_title() for ax in fig.axes] == ["circle", "cross", "square"]
    for array, image in zip(shown(fig), batch, strict=True):
        np.testing.assert_allclose(array, image.permute(1, 2, 0).numpy())


def test_plot_images_gray_without_labels():
    batch = torch.rand(5, 1, 8, 8)
    fig = plot_images(batch)
    assert [ax.get_title() for ax in fig.axes] == [""] * 5
    np.testing.assert_allclose(shown(fig)[4], batch[4, 0].numpy())


@pytest.mark.parametrize(("batch", "labels", "words"), [
    (torch.rand(2, 8, 8, 3), None, ["(N, C, H, W)", "permute(0, 3, 1, 2)"]),
    (torch.rand(3, 8, 8), None, ["(N, C, H, W)", "x[None]"]),
    (torch.rand(2, 3, 8, 8), [1, 2, 3], ["one label per image (2)", "3 labels"]),
])
def test_plot_images_errors(batch, labels, words):
    with pytest.raises(ValueError) as info:
        plot_images(batch, labels=labels)
    assert all(word in str(info.value) for word in words), str(info.value)
