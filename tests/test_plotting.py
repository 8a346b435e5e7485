"""Tests for cnnlab.plotting: figures are built, labelled, non-blank and show the right data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnlab.plotting import (  # noqa: E402
    plot_channel_sum,
    plot_conv,
    plot_conv_grid,
    plot_convs,
    plot_feature_maps,
    plot_filters,
    plot_history,
    plot_images,
    plot_pool_grid,
)

X5 = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
K3 = [[0, 1, 2], [2, 2, 0], [0, 1, 2]]
OUT5 = [[12, 12, 17], [10, 17, 19], [9, 6, 14]]
BLUR = [[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]]
OUTLINE = [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def photo():
    """A small smooth RGB image (3, 24, 32) with structure in every channel."""
    rows, cols = np.mgrid[0:24, 0:32]
    return torch.tensor(np.stack([rows / 23, cols / 31, (rows + cols) % 7 / 6]),
                        dtype=torch.float32)


def images(fig):
    return [artist for ax in fig.axes for artist in ax.get_images()]


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def texts(ax):
    return [t.get_text() for t in ax.texts]


def grid_numbers(ax):
    """Numbers written in the cells of a grid diagram axis, row by row."""
    return [t.get_text() for t in ax.texts if t.get_gid() == "cell"]


def nonconstant(artist):
    data = np.asarray(artist.get_array(), dtype=float)
    return float(data.max() - data.min()) > 1e-6


# --- plot_conv ----------------------------------------------------------------------------

def test_plot_conv_rgb(photo):
    fig = plot_conv(photo, BLUR)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3  # input, kernel, output (no colorbar for RGB)
    assert titles(fig)[0] == "input (3x24x32)"
    assert titles(fig)[1] == "kernel (3x3)"
    assert titles(fig)[2].startswith("output (3x24x32)")
    shown = images(fig)
    assert [np.asarray(a.get_array()).shape for a in shown] == [(24, 32, 3), (24, 32, 3)]
    assert all(nonconstant(a) for a in shown)
    assert "0.0625" in texts(fig.axes[1]) and "0.25" in texts(fig.axes[1])
    assert fig._suptitle is not None and "output" in fig._suptitle.get_text()


def test_plot_conv_gray_signed_has_colorbar_and_values(photo):
    gray = photo[:1]
    fig = plot_conv(gray, OUTLINE, title="outline")
    assert len(fig.axes) == 4  # + colorbar
    assert fig._suptitle.get_text() == "outline"
    input_artist, output_artist = images(fig)[:2]
    assert np.asarray(input_artist.get_array()).shape == (24, 32)
    out = np.asarray(output_artist.get_array())
    expected = torch.nn.functional.conv2d(gray[None], torch.tensor(OUTLINE, dtype=torch.float32)
                                          [None, None], padding=1)[0, 0].numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert output_artist.get_cmap().name == "RdBu_r"
    vmin, vmax = output_artist.get_clim()
    assert vmin == pytest.approx(-vmax)


def test_plot_conv_accepts_hw_and_batched(photo):
    assert len(images(plot_conv(photo[0].numpy(), BLUR))) == 2
    assert len(images(plot_conv(photo[None], np.array(BLUR)))) == 2


def test_plot_conv_rgb_signed_output_is_stretched_into_0_1(photo):
    fig = plot_conv(photo, OUTLINE)
    out = np.asarray(images(fig)[1].get_array())
    assert out.min() >= 0 and out.max() <= 1 and nonconstant(images(fig)[1])
    assert "contrast-stretched" in titles(fig)[2]


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
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(3, 7, 5)
    fig = plot_convs(photo, layer)
    assert len(fig.axes) == 8  # input + 7 channels (empty grid cells removed)
    assert titles(fig)[0] == "input (3x24x32)"
    assert titles(fig)[1:] == [f"output channel {c}" for c in range(7)]
    maps = images(fig)[1:]
    assert all(np.asarray(a.get_array()).shape == (20, 28) for a in maps)
    assert all(nonconstant(a) for a in maps)
    expected = layer(photo[None])[0, 3].detach().numpy()
    np.testing.assert_allclose(np.asarray(maps[3].get_array()), expected, rtol=1e-5, atol=1e-6)
    assert "7 output channels of 20x28" in fig._suptitle.get_text()
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


def test_plot_feature_maps_square_grid():
    maps = torch.rand(1, 64, 9, 5, generator=torch.Generator().manual_seed(1))
    fig = plot_feature_maps(maps)
    assert len(fig.axes) == 64
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (8, 8)
    assert all(not ax.axison for ax in fig.axes)
    assert all(np.asarray(a.get_array()).shape == (9, 5) and nonconstant(a) for a in images(fig))
    assert "64 feature maps of 9x5" in fig._suptitle.get_text()


def test_plot_feature_maps_ncols_title_and_requires_grad():
    maps = torch.rand(7, 6, 6, requires_grad=True) * 2
    fig = plot_feature_maps(maps, ncols=4, title="seven maps")
    assert len(fig.axes) == 7
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 4)
    assert fig._suptitle.get_text() == "seven maps"
    assert titles(fig)[6] == "channel 6"


def test_plot_feature_maps_errors():
    with pytest.raises(ValueError, match="batch"):
        plot_feature_maps(torch.rand(2, 3, 5, 5))
    with pytest.raises(ValueError, match="Flatten"):
        plot_feature_maps(torch.rand(100))
    with pytest.raises(ValueError, match="permute"):
        plot_feature_maps(torch.rand(32, 32, 3))
    with pytest.raises(ValueError, match="ncols"):
        plot_feature_maps(torch.rand(3, 5, 5), ncols=0)


def test_plot_filters_rgb_tiles_are_normalised():
    weight = torch.randn(64, 3, 11, 11, generator=torch.Generator().manual_seed(2))
    fig = plot_filters(weight)
    tiles = images(fig)
    assert len(fig.axes) == 64 and len(tiles) == 64
    for tile in tiles:
        data = np.asarray(tile.get_array())
        assert data.shape == (11, 11, 3)
        assert data.min() == pytest.approx(0) and data.max() == pytest.approx(1)
    assert "64 filters of 3x11x11" in fig._suptitle.get_text()


def test_plot_filters_gray_and_layer():
    layer = torch.nn.Conv2d(5, 6, 3)
    fig = plot_filters(layer, ncols=3)
    tiles = images(fig)
    assert len(tiles) == 6
    np.testing.assert_allclose(np.asarray(tiles[2].get_array()),
                               layer.weight[2, 0].detach().numpy())
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 3)
    assert "input channel 0 of 5" in fig._suptitle.get_text()


def test_plot_filters_errors():
    with pytest.raises(ValueError, match="plot_conv"):
        plot_filters(torch.ones(3, 3))
    with pytest.raises(TypeError, match="nn.Conv2d"):
        plot_filters(torch.nn.Linear(3, 3))


# --- grid diagrams ----------------------------------------------------------------------------

def test_conv_grid_curriculum_example():
    fig = plot_conv_grid(X5, K3)
    ax_in, _, ax_k, _, ax_out = fig.axes
    assert ax_in.get_title().startswith("input (5x5)")
    assert ax_k.get_title() == "kernel (3x3)"
    assert ax_out.get_title() == "output (3x3)"
    assert grid_numbers(ax_out) == [str(v) for row in OUT5 for v in row]
    assert grid_numbers(ax_k) == [str(v) for row in K3 for v in row]
    assert grid_numbers(ax_in)[:25] == [str(v) for row in X5 for v in row]
    title = fig._suptitle.get_text()
    assert title.startswith("output[0, 0] = (3*0 + 3*1 + 2*2) + (0*2 + 0*2 + 1*0)")
    assert title.endswith("= 12")
    assert "stride 1" in texts(ax_in)  # the stride arrow's label


def test_conv_grid_padding_ring_and_highlight():
    fig = plot_conv_grid(X5, K3, padding=1, stride=2, position=(1, 2))
    ax_in, _, _, _, ax_out = fig.axes
    assert ax_in.get_title() == "input (5x5)\npadding 1, stride 2"
    assert ax_out.get_title() == "output (3x3)"
    # the padded input is 7x7: a ring of 24 zeros drawn in gray
    cell_texts = [t for t in ax_in.texts if t.get_gid() == "cell"]
    assert len(cell_texts) == 49
    ring = [t for t in cell_texts if t.get_color() == "#7a7a7a"]
    assert len(ring) == 24 and {t.get_text() for t in ring} == {"0"}
    expected = [[6, 17, 3], [8, 17, 13], [6, 4, 4]]  # F.conv2d(padding=1, stride=2)
    assert grid_numbers(ax_out) == [str(v) for row in expected for v in row]
    assert fig._suptitle.get_text().startswith("output[1, 2] = ")
    assert fig._suptitle.get_text().endswith("= 13")
    # the produced cell is shaded, the others are white
    fills = [p.get_facecolor() for p in ax_out.patches if p.get_fill()]
    shaded = [f for f in fills if f != matplotlib.colors.to_rgba("white")]
    assert len(shaded) == 1
    # the last column has no window to its right: the stride arrow points down
    assert "stride 2" in texts(ax_in)


def test_conv_grid_dilation_matches_torch():
    fig = plot_conv_grid(X5, [[1, 0], [0, 1]], dilation=2, position=(1, 1))
    expected = torch.nn.functional.conv2d(torch.tensor(X5)[None, None].float(),
                                          torch.eye(2)[None, None], dilation=2)[0, 0]
    values = [float(v) for v in grid_numbers(fig.axes[4])]
    np.testing.assert_allclose(values, expected.flatten().numpy())
    assert "dilation 2" in fig.axes[0].get_title()


def test_conv_grid_errors():
    with pytest.raises(ValueError, match="plot_channel_sum"):
        plot_conv_grid(np.ones((3, 5, 5)), K3)
    with pytest.raises(ValueError, match="kernel"):
        plot_conv_grid(X5, [1, 2, 3])
    with pytest.raises(ValueError, match="position"):
        plot_conv_grid(X5, K3, position=(3, 0))
    with pytest.raises(TypeError, match="position"):
        plot_conv_grid(X5, K3, position=0)
    with pytest.raises(ValueError, match="plot_conv"):
        plot_conv_grid(np.ones((20, 20)), K3)
    with pytest.raises(ValueError, match="stride"):
        plot_conv_grid(X5, K3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        plot_conv_grid(X5, K3, padding=-1)
    with pytest.raises(ValueError, match="larger|no larger"):
        plot_conv_grid([[1, 2], [3, 4]], K3)


def test_channel_sum_numbers():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (3, 4, 4))
    w = rng.integers(-1, 2, (3, 2, 2))
    fig = plot_channel_sum(x, w, bias=1)
    grids = [ax for ax in fig.axes if ax.get_title()]
    assert len(grids) == 3 * 3 + 1
    assert [ax.get_title() for ax in grids[:3]] == ["input channel 0 (4x4)",
                                                   "kernel slice 0 (2x2)", "partial map 0"]
    out = torch.nn.functional.conv2d(torch.tensor(x)[None].float(), torch.tensor(w)[None].float(),
                                     bias=torch.tensor([1.0]))[0, 0]
    assert grids[-1].get_title() == "output map (3x3)"
    assert grid_numbers(grids[-1]) == [str(int(v)) for v in out.flatten()]
    partial = torch.nn.functional.conv2d(torch.tensor(x[1:2])[None].float(),
                                         torch.tensor(w[1:2])[None].float())[0, 0]
    assert grid_numbers(grids[5]) == [str(int(v)) for v in partial.flatten()]
    assert fig._suptitle.get_text().endswith(f"= {int(out[0, 0])}")
    assert any("bias 1" in t for ax in fig.axes for t in texts(ax))


def test_channel_sum_errors():
    with pytest.raises(ValueError, match="plot_conv_grid"):
        plot_channel_sum(np.ones((4, 4)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="one kernel slice per input channel"):
        plot_channel_sum(np.ones((3, 4, 4)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"weight\[o\]"):
        plot_channel_sum(np.ones((3, 4, 4)), np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="bias"):
        plot_channel_sum(np.ones((3, 4, 4)), np.ones((3, 2, 2)), bias=[1, 2])


@pytest.mark.parametrize(
    ("grid", "expected"),
    [([[3, 0, 5, 2], [1, 2, 7, 5], [4, 3, 2, 1], [3, 1, 0, 4]], ["3", "7", "4", "4"]),
     ([[1, 3, 2, 9], [7, 4, 1, 5], [8, 5, 2, 3], [4, 2, 1, 4]], ["7", "9", "8", "4"])],
)
def test_pool_grid_max_examples(grid, expected):
    fig = plot_pool_grid(grid)
    ax_in, _, ax_out = fig.axes
    assert ax_in.get_title() == "input (4x4)" and ax_out.get_title() == "output (2x2)"
    assert grid_numbers(ax_out) == expected
    bold = [t.get_text() for t in ax_in.texts if t.get_fontweight() == "bold"]
    assert sorted(bold) == sorted(expected)
    # four windows, four different colours, repeated in the output cells
    colours = {p.get_facecolor() for p in ax_out.patches}
    assert len(colours) == 4
    assert "max pooling 2x2, stride 2" in fig._suptitle.get_text()


def test_pool_grid_avg_and_stride():
    fig = plot_pool_grid([[1, 3, 2, 9], [7, 4, 1, 5], [8, 5, 2, 3], [4, 2, 1, 4]], mode="avg")
    assert grid_numbers(fig.axes[2]) == ["3.75", "4.25", "4.75", "2.5"]
    fig = plot_pool_grid(np.arange(25).reshape(5, 5), kernel_size=3, stride=1)
    assert fig.axes[2].get_title() == "output (3x3)"
    assert grid_numbers(fig.axes[2])[0] == "12"


def test_pool_grid_errors():
    with pytest.raises(ValueError, match="mode"):
        plot_pool_grid([[1, 2], [3, 4]], mode="min")
    with pytest.raises(ValueError, match=r"x\[c\]"):
        plot_pool_grid(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="kernel_size"):
        plot_pool_grid([[1, 2], [3, 4]], kernel_size=3)


# --- plot_history -----------------------------------------------------------------------------

HISTORY = {"train_loss": [1.0, 0.5, 0.3], "train_acc": [0.5, 0.8, 0.9],
           "test_loss": [1.1, 0.6, 0.4], "test_acc": [0.4, 0.7, 0.85]}


class _History:
    def __init__(self, **lists):
        self.__dict__.update(lists)


def test_plot_history_one_run():
    fig = plot_history(_History(**HISTORY), title="curves")
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_title() == "loss per epoch" and ax_acc.get_title() == "accuracy per epoch"
    assert fig._suptitle.get_text() == "curves"
    lines = ax_loss.get_lines()
    assert [line.get_label() for line in lines] == ["train", "test"]
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines[1].get_ydata(), HISTORY["test_loss"])
    assert lines[1].get_linestyle() == "--"


def test_plot_history_dict_of_runs_with_empty_test():
    no_test = {**HISTORY, "test_loss": [], "test_acc": []}
    fig = plot_history({"cnn": HISTORY, "mlp": no_test})
    labels = [line.get_label() for line in fig.axes[1].get_lines()]
    assert labels == ["cnn train", "cnn test", "mlp train"]
    np.testing.assert_allclose(fig.axes[1].get_lines()[2].get_ydata(), HISTORY["train_acc"])


def test_plot_history_errors():
    with pytest.raises(TypeError, match="test_acc"):
        plot_history({"cnn": {"train_loss": [1.0], "train_acc": [0.5], "test_loss": []}})
    with pytest.raises(TypeError, match="History"):
        plot_history([1.0, 0.5])
    with pytest.raises(ValueError, match="empty"):
        plot_history({})
    with pytest.raises(ValueError, match="epoch"):
        plot_history({**HISTORY, "train_loss": []})


# --- plot_images --------------------------------------------------------------------------

def test_plot_images_rows_titles_and_colour(photo):
    batch = torch.stack([photo, 1 - photo, photo.flip(1)])
    fig = plot_images(batch, labels=[0, 2, 1], classes=["circle", "square", "cross"], ncols=2)
    assert len(fig.axes) == 3
    assert titles(fig) == ["circle", "cross", "square"]
    shown = images(fig)
    assert [a.get_array().shape for a in shown] == [(24, 32, 3)] * 3
    assert all(nonconstant(a) for a in shown)
    assert fig._suptitle.get_text() == "3 images of 24x32"


def test_plot_images_gray_without_labels():
    fig = plot_images(torch.rand(5, 1, 8, 8), title="digits")
    assert len(fig.axes) == 5 and titles(fig) == [""] * 5
    assert images(fig)[0].get_array().shape == (8, 8)
    assert fig._suptitle.get_text() == "digits"


@pytest.mark.parametrize(("batch", "labels", "words"), [
    (torch.rand(2, 8, 8, 3), None, ["(N, C, H, W)", "permute(0, 3, 1, 2)"]),
    (torch.rand(3, 8, 8), None, ["(N, C, H, W)", "x[None]"]),
    (torch.rand(2, 3, 8, 8), [1, 2, 3], ["one label per image (2)", "3 labels"]),
])
def test_plot_images_errors(batch, labels, words):
    with pytest.raises(ValueError) as info:
        plot_images(batch, labels=labels)
    assert all(word in str(info.value) for word in words), str(info.value)
