"""cnnlab.animations: frame counts, highlighted cells (pixel colours), GIF size and encoding,
the notebook mime bundle, the max-pool gradient against cnnlab.backward and autograd, errors."""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnnlab import animations as an
from cnnlab.animations import Animation, animate_conv, animate_pool, animate_pool_backward

FILLS = {an.WHITE, an.INPUT, an.TAP, an.OUTPUT, an.DONE, an.WINDOW, an.WINNER, an.GRAD}
X4 = np.array([[1, 3, 2, 1], [4, 2, 0, 5], [7, 1, 3, 3], [2, 8, 6, 4]])


def panel_lefts(*widths: int) -> list[int]:
    """Left pixel of each panel, for panels ``widths`` cells wide (the layout's geometry)."""
    lefts, left = [], an.MARGIN
    for cols in widths:
        lefts.append(left)
        left += cols * an.CELL + an.GAP
    return lefts


def centre(frame: Image.Image, left: int, row: int, col: int) -> tuple:
    """Colour at the centre of cell (row, col) of the panel starting at ``left``."""
    top = an.MARGIN + an.TITLE
    return frame.getpixel((left + col * an.CELL + an.CELL // 2, top + row * an.CELL + an.CELL // 2))


def fill(frame: Image.Image, left: int, row: int, col: int) -> tuple:
    """The fill of a numbered cell: sampled near its four corners, away from the number.

    The arrow of the backward animation may cross a corner, so the fill is the one colour of
    FILLS found there; a cell showing two different fills fails.
    """
    top = an.MARGIN + an.TITLE
    x0, y0, inset = left + col * an.CELL, top + row * an.CELL, 5
    seen = {frame.getpixel((x, y)) for x in (x0 + inset, x0 + an.CELL - inset)
            for y in (y0 + inset, y0 + an.CELL - inset)} & FILLS
    assert len(seen) == 1, f"cell ({row}, {col}) shows fills {seen}"
    return seen.pop()


def torch_pool(x: np.ndarray, k: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's max pool: values and the row-major index of each window's winner."""
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, dtype=torch.float64)[None, None]
    out, idx = torch.nn.functional.max_pool2d(t, k, s, return_indices=True)
    return out[0, 0].numpy(), idx[0, 0].numpy()


# --- animate_conv ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "frames"), [
    ({"in_size": 5, "kernel_size": 3}, 9),  # lesson 02: 5x5 -> 3x3
    ({"in_size": 5, "kernel_size": 3, "padding": 1, "stride": 2}, 9),  # lesson 03: 7x7 padded
    ({"in_size": 7, "kernel_size": 3, "dilation": 2}, 9),  # span 5 -> 3x3
    ({"in_size": (6, 5), "kernel_size": (3, 2), "stride": (2, 1)}, 2 * 4),
    ({"in_size": 4, "kernel_size": 1}, 16),
])
def test_conv_one_frame_per_output_position(kwargs, frames):
    anim = animate_conv(**kwargs)
    assert len(anim) == len(anim.frames) == frames
    assert f"{frames} frames" in repr(anim)
    decoded = Image.open(io.BytesIO(anim.gif))
    assert decoded.n_frames == frames


def test_conv_frame_highlights_window_and_output_cell():
    anim = animate_conv(5, 3, stride=2, padding=1)  # padded 7x7, output 3x3
    left_in, left_out = panel_lefts(7, 3)
    frame = anim.frames[4]  # output[1, 1]: the window starts at padded (2, 2)
    for r in range(7):
        for c in range(7):
            if 2 <= r <= 4 and 2 <= c <= 4:
                expected = an.TAP
            elif r in (0, 6) or c in (0, 6):
                expected = an.WHITE  # padding ring
            else:
                expected = an.INPUT
            assert centre(frame, left_in, r, c) == expected, (r, c)
    for r in range(3):
        for c in range(3):
            expected = an.TAP if (r, c) == (1, 1) else an.DONE if r * 3 + c < 4 else an.OUTPUT
            assert centre(frame, left_out, r, c) == expected, (r, c)


def test_conv_dilation_leaves_gaps_inside_the_window():
    anim = animate_conv(7, 3, dilation=2)
    left_in, _ = panel_lefts(7, 3)
    frame = anim.frames[0]  # taps at rows/cols 0, 2, 4; 1 and 3 are gaps
    for r in range(7):
        for c in range(7):
            expected = an.TAP if r in (0, 2, 4) and c in (0, 2, 4) else an.INPUT
            assert centre(frame, left_in, r, c) == expected, (r, c)


def test_conv_caption_names_input_and_output_sizes():
    anim = animate_conv(5, 3, stride=2, padding=1)
    assert repr(anim) == ("Animation: 3x3 kernel over 5x5 input, padding 1, stride 2 -> 3x3 "
                          "output, 9 frames")


# --- animate_pool ----------------------------------------------------------------------------

def test_pool_marks_first_maximum_and_fills_output():
    x = np.array([[5, 5, 0, 2], [1, 5, 2, 2], [0, 1, 9, 3], [4, 4, 3, 9]])  # ties in 3 windows
    out, idx = torch_pool(x, 2, 2)
    anim = animate_pool(x, 2)
    assert len(anim) == 4
    left_in, left_out = panel_lefts(4, 2)
    for step in range(4):
        i, j = divmod(step, 2)
        winner = divmod(int(idx[i, j]), 4)
        frame = anim.frames[step].convert("RGB")
        for r in range(4):
            for c in range(4):
                inside = 2 * i <= r < 2 * i + 2 and 2 * j <= c < 2 * j + 2
                expected = an.WINNER if (r, c) == winner else an.WINDOW if inside else an.WHITE
                assert fill(frame, left_in, r, c) == expected, (step, r, c)
        shown = anim.values[step]
        for r in range(2):
            for c in range(2):
                k = r * 2 + c
                expected = an.WINNER if k == step else an.DONE if k < step else an.WHITE
                assert fill(frame, left_out, r, c) == expected, (step, r, c)
                if k <= step:
                    assert shown[r, c] == out[r, c]
                else:
                    assert np.isnan(shown[r, c])


def test_pool_overlapping_windows_and_default_stride():
    anim = animate_pool(np.arange(25).reshape(5, 5), kernel_size=3, stride=1)
    assert len(anim) == 9
    np.testing.assert_array_equal(anim.values[-1], [[12, 13, 14], [17, 18, 19], [22, 23, 24]])
    assert len(animate_pool(X4)) == 4  # stride defaults to the kernel size


# --- animate_pool_backward -------------------------------------------------------------------

@pytest.mark.parametrize(("x", "k", "s"), [
    (X4, 2, 2),  # the lesson's example
    (np.array([[1, 1, 0], [1, 1, 2], [3, 2, 2]]), 2, 1),  # ties and overlapping windows
    (np.random.default_rng(0).integers(0, 4, (6, 7)), 3, 2),
])
def test_backward_last_frame_equals_max_pool_backward(x, k, s):
    from cnnlab.backward import max_pool2d_backward

    torch = pytest.importorskip("torch")
    out, _ = torch_pool(x, k, s)
    dout = np.random.default_rng(1).normal(size=out.shape).round(2)
    anim = animate_pool_backward(x, dout, k, s)
    assert len(anim) == out.size
    expected = max_pool2d_backward(dout, x.astype(float), k, s)
    np.testing.assert_allclose(anim.values[-1], expected, rtol=1e-6, atol=1e-12)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.max_pool2d(xt[None, None], k, s).backward(
        torch.tensor(dout, dtype=torch.float64)[None, None])
    np.testing.assert_allclose(anim.values[-1], xt.grad.numpy(), rtol=1e-6, atol=1e-12)


def test_backward_frames_route_each_gradient_to_the_argmax():
    dout = np.array([[0.5, -1.0], [2.0, 1.5]])
    _, idx = torch_pool(X4, 2, 2)
    anim = animate_pool_backward(X4, dout)
    left_x, left_g, left_dx = panel_lefts(4, 2, 4)
    winners = [divmod(int(idx[i, j]), 4) for i in range(2) for j in range(2)]
    for step, target in enumerate(winners):
        frame = anim.frames[step]
        for r in range(4):
            for c in range(4):
                expected = (an.WINNER if (r, c) == target else
                            an.GRAD if (r, c) in winners[:step] else an.WHITE)
                assert fill(frame, left_dx, r, c) == expected, (step, r, c)
                assert (anim.values[step][r, c] != 0) == ((r, c) in winners[:step + 1])
        assert fill(frame, left_x, *target) == an.WINNER
        assert fill(frame, left_g, *divmod(step, 2)) == an.WINNER
    assert anim.values[0].sum() == 0.5 and anim.values[-1].sum() == dout.sum()


# --- the GIF and the notebook display --------------------------------------------------------

LESSON_SETTINGS = {
    "conv 5x5 k3": lambda: animate_conv(5, 3),
    "conv 5x5 k3 p1 s2": lambda: animate_conv(5, 3, stride=2, padding=1),
    "conv 7x7 k3 d2": lambda: animate_conv(7, 3, dilation=2),
    "pool 4x4 k2": lambda: animate_pool(X4, 2),
    "pool backward 4x4 k2": lambda: animate_pool_backward(X4, [[0.5, -1], [2, 1.5]], 2),
}


@pytest.mark.parametrize("name", list(LESSON_SETTINGS))
def test_gif_small_stable_and_readable(name):
    anim = LESSON_SETTINGS[name]()
    assert len(anim.gif) < 1_000_000
    assert anim.gif == LESSON_SETTINGS[name]().gif  # same picture, same bytes: nbval-stable
    decoded = Image.open(io.BytesIO(anim.gif))
    assert decoded.format == "GIF" and decoded.n_frames == len(anim)
    assert decoded.info["loop"] == 0 and decoded.info["duration"] >= 500
    # the encoded colours are the drawn ones (fixed palette, no dithering)
    decoded.seek(len(anim) - 1)
    last = decoded.convert("RGB")
    assert last.size == anim.frames[-1].size
    corner = (an.MARGIN + an.CELL // 2, an.MARGIN + an.TITLE + 4)
    assert last.getpixel(corner) == anim.frames[-1].getpixel(corner)


def test_mime_bundle_renders_everywhere():
    anim = animate_conv(5, 3, stride=2, padding=1)
    bundle = anim._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/gif", "text/plain"}
    assert base64.b64decode(bundle["image/gif"]) == anim.gif
    assert bundle["text/html"].startswith(f'<img src="data:image/gif;base64,{bundle["image/gif"]}"')
    assert bundle["text/plain"] == repr(anim)
    assert bundle == anim._repr_mimebundle_()


def test_save_writes_the_gif(tmp_path):
    path = animate_pool(X4).save(tmp_path / "pool.gif")
    assert path.read_bytes()[:6] == b"GIF89a"
    assert isinstance(Image.open(path), Image.Image)


def test_import_does_not_load_pillow():
    code = ("import sys, cnnlab, cnnlab.animations; "
            "assert 'PIL' not in sys.modules, 'Pillow imported at import time'; "
            "assert set(cnnlab.animations.__all__) == {'Animation', 'animate_conv', "
            "'animate_pool', 'animate_pool_backward'}")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_animation_is_a_plain_class():
    frames = [Image.new("RGB", (4, 4), an.WHITE) for _ in range(3)]
    anim = Animation(frames, "three white frames")
    assert anim.durations == [an.FRAME_MS, an.FRAME_MS, an.LAST_MS]
    assert repr(anim) == "three white frames" and anim.values == []


# --- teaching errors -------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda: animate_conv(5, 3, stride=0), ValueError, ["`stride` >= 1", "got 0"]),
    (lambda: animate_conv(5, 1.5), TypeError, ["`kernel_size` as an integer"]),
    (lambda: animate_conv(3, 5), ValueError, ["no larger than the padded input (3x3)",
                                              "add padding"]),
    (lambda: animate_conv(5, 3, dilation=3), ValueError, ["spanning 7x7", "dilation 3"]),
    (lambda: animate_conv(20, 3), ValueError, ["at most 16x16", "got 20x20"]),
    (lambda: animate_pool(np.zeros((2, 4, 4))), ValueError, ["2-D grid", "x[c]"]),
    (lambda: animate_pool(X4, 5), ValueError, ["no larger than x (4x4)"]),
    (lambda: animate_pool(X4, 2, stride=0), ValueError, ["`stride` >= 1"]),
    (lambda: animate_pool_backward(X4, np.ones((4, 4))), ValueError,
     ["`dout` of shape (2, 2)", "shape of x"]),
    (lambda: animate_pool_backward(X4, np.ones((3, 3))), ValueError,
     ["`dout` of shape (2, 2)", "turns 4x4 into 2x2"]),
    (lambda: animate_pool_backward(X4, "gradient"), TypeError, ["`dout`"]),
])
def test_teaching_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    text = str(info.value)
    assert "expected" in text and "got" in text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
