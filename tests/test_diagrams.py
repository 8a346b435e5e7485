"""Tests for cnnlab.diagrams: the numbers drawn in each grid are the right ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from cnnlab.diagrams import WINDOW, plot_channel_sum, plot_conv_grid, plot_pool_grid


def torch_conv(x, k, **options):
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    k = torch.as_tensor(np.asarray(k, dtype=np.float32))
    return F.conv2d(x[None, None], k[None, None], **options)[0, 0].numpy()


def cells(ax):
    return [t for t in ax.texts if t.get_gid() == "cell"]


def numbers(ax):
    """The numbers written in a grid diagram's cells, row by row."""
    return [float(t.get_text()) for t in cells(ax)]


def shaded(ax):
    """Grid coordinates (row, column) of the cells shaded as the window or its output cell."""
    return [(int(p.get_y()), int(p.get_x())) for p in ax.patches
            if p.get_fill() and p.get_facecolor() == to_rgba(WINDOW)]


def test_conv_grid_draws_input_kernel_and_torch_output(example):
    grid, kernel = example.x, example.k
    fig = plot_conv_grid(grid, kernel)
    assert isinstance(fig, Figure)
    ax_in, _, ax_k, _, ax_out = fig.axes
    assert numbers(ax_in) == np.ravel(grid).tolist()
    assert numbers(ax_k) == np.ravel(kernel).tolist()
    assert numbers(ax_out) == np.ravel(example.out).tolist()
    np.testing.assert_array_equal(torch_conv(grid, kernel), example.out)
    assert shaded(ax_in) == [(r, c) for r in range(3) for c in range(3)]  # the window
    assert shaded(ax_out) == [(0, 0)]  # the cell it produces
    # the title writes out the sum of products and its value, 12
    products = [f"{x}*{k}" for x, k in zip(np.ravel(np.array(grid)[:3, :3]), np.ravel(kernel),
                                           strict=True)]
    title = fig.get_suptitle()
    assert all(p in title for p in products) and title.endswith("= 12")


def test_conv_grid_padding_ring_stride_and_position(example):
    grid, kernel = example.x, example.k
    fig = plot_conv_grid(grid, kernel, padding=1, stride=2, position=(1, 2))
    ax_in, _, _, _, ax_out = fig.axes
    drawn = cells(ax_in)
    assert len(drawn) == 49  # the padded input is 7x7
    ring = [t for t in drawn if t.get_color() != "black"]  # padding zeros in gray
    assert len(ring) == 24 and {t.get_text() for t in ring} == {"0"}
    expected = torch_conv(grid, kernel, padding=1, stride=2)
    assert numbers(ax_out) == expected.ravel().tolist()
    assert shaded(ax_out) == [(1, 2)]
    # the window of output (1, 2) starts one stride down and two right: padded row 2, column 4
    assert shaded(ax_in) == [(r, c) for r in range(2, 5) for c in range(4, 7)]
    assert fig.get_suptitle().endswith(f"= {expected[1, 2]:g}")


def test_conv_grid_dilation_matches_torch(example):
    grid = example.x
    fig = plot_conv_grid(grid, [[1, 0], [0, 1]], dilation=2, position=(1, 1))
    expected = torch_conv(grid, np.eye(2), dilation=2)
    assert numbers(fig.axes[4]) == expected.ravel().tolist()
    assert shaded(fig.axes[0]) == [(1, 1), (1, 3), (3, 1), (3, 3)]  # every other cell


def test_conv_grid_errors(example):
    grid, kernel = example.x, example.k
    with pytest.raises(ValueError, match="plot_channel_sum"):
        plot_conv_grid(np.ones((3, 5, 5)), kernel)
    with pytest.raises(ValueError, match="kernel"):
        plot_conv_grid(grid, [1, 2, 3])
    with pytest.raises(ValueError, match="position"):
        plot_conv_grid(grid, kernel, position=(3, 0))
    with pytest.raises(TypeError, match="position"):
        plot_conv_grid(grid, kernel, position=0)
    with pytest.raises(ValueError, match="plot_conv"):
        plot_conv_grid(np.ones((20, 20)), kernel)
    with pytest.raises(ValueError, match="stride"):
        plot_conv_grid(grid, kernel, stride=0)
    with pytest.raises(ValueError, match="padding"):
        plot_conv_grid(grid, kernel, padding=-1)
    with pytest.raises(ValueError, match="larger|no larger"):
        plot_conv_grid([[1, 2], [3, 4]], kernel)


def test_channel_sum_partial_maps_add_up_to_the_output():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (3, 4, 4))
    w = rng.integers(-1, 2, (3, 2, 2))
    fig = plot_channel_sum(x, w, bias=1)
    grids = [ax for ax in fig.axes if cells(ax)]
    assert len(grids) == 3 * 3 + 1  # per channel: input, kernel slice, partial map; the output
    partials = []
    for c in range(3):
        ax_x, ax_w, ax_p = grids[3 * c:3 * c + 3]
        assert numbers(ax_x) == x[c].ravel().tolist()
        assert numbers(ax_w) == w[c].ravel().tolist()
        partials.append(torch_conv(x[c], w[c]))
        assert numbers(ax_p) == partials[c].ravel().tolist()
    out = F.conv2d(torch.tensor(x)[None].float(), torch.tensor(w)[None].float(),
                   bias=torch.tensor([1.0]))[0, 0].numpy()
    np.testing.assert_allclose(sum(partials) + 1, out)
    assert numbers(grids[-1]) == out.ravel().tolist()
    assert fig.get_suptitle().endswith(f"= {out[0, 0]:g}")


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
    "grid",
    [[[3, 0, 5, 2], [1, 2, 7, 5], [4, 3, 2, 1], [3, 1, 0, 4]],
     [[1, 3, 2, 9], [7, 4, 1, 5], [8, 5, 2, 3], [4, 2, 1, 4]]],
)
def test_pool_grid_max_marks_each_window_winner(grid):
    fig = plot_pool_grid(grid)
    ax_in, _, ax_out = fig.axes
    expected = F.max_pool2d(torch.tensor(grid)[None].float(), 2)[0].ravel().tolist()
    assert numbers(ax_out) == expected
    bold = [float(t.get_text()) for t in cells(ax_in) if t.get_fontweight() == "bold"]
    assert sorted(bold) == sorted(expected)
    # four windows in four colours, each repeated in its output cell
    in_colours = [p.get_facecolor() for p in ax_in.patches if p.get_fill()]
    out_colours = [p.get_facecolor() for p in ax_out.patches if p.get_fill()]
    assert len(set(out_colours)) == 4
    assert [in_colours[r * 4 + c] for r in (0, 2) for c in (0, 2)] == out_colours


def test_pool_grid_avg_and_stride():
    grid = [[1, 3, 2, 9], [7, 4, 1, 5], [8, 5, 2, 3], [4, 2, 1, 4]]
    fig = plot_pool_grid(grid, mode="avg")
    assert numbers(fig.axes[2]) == [3.75, 4.25, 4.75, 2.5]
    x = np.arange(25).reshape(5, 5)
    fig = plot_pool_grid(x, kernel_size=3, stride=1)
    expected = F.max_pool2d(torch.tensor(x)[None].float(), 3, stride=1)[0]
    assert numbers(fig.axes[2]) == expected.ravel().tolist()


def test_pool_grid_errors():
    with pytest.raises(ValueError, match="mode"):
        plot_pool_grid([[1, 2], [3, 4]], mode="min")
    with pytest.raises(ValueError, match=r"x\[c\]"):
        plot_pool_grid(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="kernel_size"):
        plot_pool_grid([[1, 2], [3, 4]], kernel_size=3)


@pytest.mark.parametrize(("shape", "k", "s"), [((7, 7), 3, 2), ((16, 16), 3, 2), ((5, 6), 3, 1),
                                               ((6, 6), (2, 3), (2, 1))])
def test_pool_grid_overlapping_windows_are_outlined_not_overwritten(shape, k, s):
    x = np.random.default_rng(0).integers(0, 10, shape)
    fig = plot_pool_grid(x, kernel_size=k, stride=s)
    ax_in, _, ax_out = fig.axes
    (kh, kw), (sh, sw) = np.broadcast_to(k, 2), np.broadcast_to(s, 2)
    out, idx = F.max_pool2d(torch.tensor(x)[None].float(), (kh, kw), (sh, sw),
                            return_indices=True)
    ho, wo = out.shape[1:]
    # each window is one outline (slightly inset) in the colour of its output cell's outline
    edges = {(round(p.get_y()), round(p.get_x())): p.get_edgecolor() for p in ax_in.patches
             if not p.get_fill()}
    assert all((round(p.get_height()), round(p.get_width())) == (kh, kw)
               for p in ax_in.patches if not p.get_fill())
    assert sorted(edges) == [(i * sh, j * sw) for i in range(ho) for j in range(wo)]
    out_edges = {(round(p.get_y()), round(p.get_x())): p.get_edgecolor()
                 for p in ax_out.patches if not p.get_fill()}
    assert {(i * sh, j * sw): e for (i, j), e in out_edges.items()} == edges
    for i, j in np.ndindex(ho, wo):  # windows that touch (8-neighbours) differ in colour
        for di, dj in ((0, 1), (1, -1), (1, 0), (1, 1)):
            if 0 <= i + di < ho and 0 <= j + dj < wo:
                assert edges[(i * sh, j * sw)] != edges[((i + di) * sh, (j + dj) * sw)]
    # a cell's fill is not one of its windows' colours: it shows how many windows hold it
    cover = np.zeros(shape, dtype=int)
    for i, j in np.ndindex(ho, wo):
        cover[i * sh:i * sh + kh, j * sw:j * sw + kw] += 1
    fills = np.array([p.get_facecolor() for p in ax_in.patches if p.get_fill()]).reshape(
        *shape, 4)
    brightness = fills[..., :3].mean(axis=-1)
    assert np.all(brightness[cover <= 1] == 1.0) and np.all(brightness[cover >= 2] < 1.0)
    for low, high in ((2, 3), (3, 4)):
        if (cover == low).any() and (cover == high).any():
            assert brightness[cover == low].min() > brightness[cover == high].max()
    assert f"{out.max():g}" in {t.get_text() for t in cells(ax_out)}
    assert numbers(ax_out) == out.ravel().tolist()
    bold = {divmod(int(t), shape[1]) for t in idx.ravel()}
    drawn = [(n // shape[1], n % shape[1]) for n, t in enumerate(cells(ax_in))
             if t.get_fontweight() == "bold"]
    assert set(drawn) == bold


def test_grid_size_limit_is_shared_by_diagrams_and_animations():
    from cnnlab.animations import animate_pool

    for call in (lambda: plot_pool_grid(np.ones((17, 4))), lambda: animate_pool(np.ones((17, 4)))):
        with pytest.raises(ValueError, match=r"at most 16x16 cells.*got 17x4.*5x5 or 7x7"):
            call()
