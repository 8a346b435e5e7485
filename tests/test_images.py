"""Tests for cnnlab.images: bundled photos and HWC <-> NCHW conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab._checks import image_chw, layout_hint
from cnnlab.images import list_images, load_image, looks_hwc, photo_path, to_hwc, to_nchw


def test_bundled_photos_listed():
    assert {"cat", "astronaut", "coffee"} <= set(list_images())


@pytest.mark.parametrize("name", ["cat", "astronaut", "coffee"])
def test_load_bundled_rgb(name):
    x = load_image(name)
    assert x.dtype == torch.float32
    assert x.dim() == 3 and x.shape[0] == 3
    assert max(x.shape[1:]) == 400  # downscaled by img/make_photos.py (MAX_SIDE)
    assert 0.0 <= x.min().item() < 0.2 and 0.8 < x.max().item() <= 1.0
    assert x.std().item() > 0.05  # a real photo, not a flat image


def test_cat_shape_and_gray_mode():
    rgb = load_image("cat")
    gray = load_image("cat", mode="gray")
    assert tuple(rgb.shape) == (3, 266, 400)
    assert tuple(gray.shape) == (1, 266, 400)
    expected = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    torch.testing.assert_close(gray[0], expected, atol=1e-6, rtol=0)


def test_load_path_with_alpha_drops_alpha(tmp_path):
    pixels = np.zeros((4, 5, 4), dtype=np.uint8)
    pixels[..., 0] = 255  # red
    pixels[..., 3] = 10  # almost transparent: alpha must not change the colour
    path = tmp_path / "red.png"
    Image.fromarray(pixels).save(path)
    x = load_image(path)
    assert tuple(x.shape) == (3, 4, 5)
    torch.testing.assert_close(x[0], torch.ones(4, 5))
    torch.testing.assert_close(x[1:], torch.zeros(2, 4, 5))
    assert tuple(load_image(str(path), mode="gray").shape) == (1, 4, 5)


def test_load_gray_png_gives_three_equal_channels(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(np.full((3, 3), 51, dtype=np.uint8)).save(path)
    x = load_image(path)
    torch.testing.assert_close(x, torch.full((3, 3, 3), 0.2))


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="cat") as info:
        load_image("dog")
    assert "list_images" in str(info.value) and "'dog'" in str(info.value)


def test_bad_mode_and_type():
    with pytest.raises(ValueError, match="mode"):
        load_image("cat", mode="grey")
    with pytest.raises(TypeError, match="to_nchw"):
        load_image(np.zeros((3, 3)))


def test_unreadable_file(tmp_path):
    path = tmp_path / "not_an_image.png"
    path.write_text("hello")
    with pytest.raises(ValueError, match="Pillow"):
        load_image(path)


@pytest.mark.parametrize(
    ("shape", "hwc"),
    [((266, 400, 3), True), ((28, 28, 1), True), ((5, 5, 4), True), ((3, 266, 400), False),
     ((1, 28, 28), False), ((3, 3, 3), False), ((64, 9, 5), False), ((3, 4, 4), False),
     ((8, 32, 32, 3), True), ((8, 3, 32, 32), False), ((28, 28), False)],
)
def test_layout_rule(shape, hwc):
    assert looks_hwc(shape) is hwc


def test_one_image_as_chw_for_every_module():
    """_checks.image_chw: the conversion that plotting and widgets share."""
    gray = image_chw(np.full((4, 6), 255, dtype=np.uint8), "test")
    assert gray.shape == (1, 4, 6) and gray.dtype == torch.float32 and float(gray.max()) == 1.0
    assert image_chw(torch.ones(1, 3, 4, 6, requires_grad=True), "test").shape == (3, 4, 6)
    assert image_chw(np.ones((7, 4, 6)), "test", channels=None).shape == (7, 4, 6)
    with pytest.raises(ValueError, match="permute") as info:
        image_chw(np.ones((4, 6, 3)), "test")  # HWC: the hint moves the channels
    assert "(4, 6, 3)" in str(info.value)
    with pytest.raises(ValueError, match="alpha"):
        image_chw(np.ones((4, 5, 6)), "test")  # 4 channels first: RGBA
    with pytest.raises(ValueError, match="batch"):
        image_chw(np.ones((2, 3, 4, 4)), "test")


def test_layout_hint_names_the_fix():
    assert "transpose(2, 0, 1)" in layout_hint((32, 48, 3))
    assert "permute(0, 3, 1, 2)" in layout_hint((8, 32, 48, 3))
    assert "alpha" in layout_hint((4, 32, 48))
    assert layout_hint((3, 32, 48)) == ""


def test_photo_path_is_a_png_inside_the_package():
    path = photo_path("cat")
    assert path.suffix == ".png" and path.parent.name == "photos" and path.is_file()
    assert path.parent.parent.name == "cnnlab"
    with pytest.raises(ValueError, match="cat"):
        photo_path("dog")


def test_to_nchw_from_hwc_uint8():
    hwc = np.zeros((4, 6, 3), dtype=np.uint8)
    hwc[1, 2] = (255, 0, 51)
    x = to_nchw(hwc)
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 3, 4, 6)
    torch.testing.assert_close(x[0, :, 1, 2], torch.tensor([1.0, 0.0, 0.2]))


def test_to_nchw_other_layouts():
    assert tuple(to_nchw(np.ones((5, 7))).shape) == (1, 1, 5, 7)
    assert tuple(to_nchw(torch.ones(3, 5, 7)).shape) == (1, 3, 5, 7)
    assert tuple(to_nchw(torch.ones(2, 3, 5, 7)).shape) == (2, 3, 5, 7)
    assert tuple(to_nchw(np.ones((5, 7, 4))).shape) == (1, 4, 5, 7)  # RGBA keeps alpha
    grid = [[3, 3, 2], [0, 0, 1]]  # integer lists keep their values
    torch.testing.assert_close(to_nchw(grid)[0, 0], torch.tensor(grid, dtype=torch.float32))


def test_to_nchw_roundtrip_with_to_hwc():
    photo = load_image("coffee")
    back = to_hwc(to_nchw(to_hwc(photo)))
    np.testing.assert_allclose(back, photo.permute(1, 2, 0).numpy())


def test_to_nchw_errors():
    with pytest.raises(ValueError, match="rank 1"):
        to_nchw(np.ones(10))
    with pytest.raises(ValueError, match="rank 5"):
        to_nchw(torch.ones(1, 1, 1, 2, 2))
    with pytest.raises(TypeError, match="numbers"):
        to_nchw(np.array([["a", "b"]]))
    with pytest.raises(TypeError):
        to_nchw("cat")


def test_to_hwc_shapes():
    x = torch.rand(1, 3, 4, 5, requires_grad=True)
    out = to_hwc(x * 2)
    assert isinstance(out, np.ndarray) and out.shape == (4, 5, 3)
    assert to_hwc(torch.rand(1, 4, 5)).shape == (4, 5)
    assert to_hwc(np.ones((4, 5))).shape == (4, 5)
    assert to_hwc(np.ones((4, 5, 3))).shape == (4, 5, 3)  # already HWC


def test_to_hwc_errors():
    with pytest.raises(ValueError, match="batch"):
        to_hwc(torch.rand(2, 3, 4, 5))
    with pytest.raises(ValueError, match="plot_feature_maps"):
        to_hwc(torch.rand(7, 10, 10))
    with pytest.raises(ValueError, match="rank"):
        to_hwc(np.ones(5))


def test_to_nchw_takes_read_only_arrays_without_a_warning():
    import warnings

    photo = np.zeros((6, 5, 3), dtype=np.uint8)
    photo[0, 0] = 255
    photo.flags.writeable = False  # as scikit-learn's sample images are
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = to_nchw(photo)
    assert out.shape == (1, 3, 6, 5) and out[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
