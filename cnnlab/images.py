"""Bundled photos and the conversions between image layouts.

A PNG read from disk, or an array from ``plt.imread``, is laid out HWC (height, width,
channels). PyTorch wants NCHW (batch, channels, height, width). ``to_nchw`` goes one way,
``to_hwc`` goes back for ``plt.imshow``.

The layout rule for 3-D input (``looks_hwc``, defined in ``cnnlab._checks`` and used by every
module): an array (a, b, c) is HWC when its last axis has 1, 3 or 4 entries (gray, RGB, RGBA)
and its first axis is larger; otherwise it is CHW. So (266, 400, 3) is a photo in HWC,
(3, 266, 400) is CHW, (1, 28, 28) is a one-channel CHW image, and (3, 3, 3) counts as CHW.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab import paths
from cnnlab._checks import as_array, as_float_tensor, describe, looks_hwc, message

_MODES = ("rgb", "gray")
# ITU-R BT.601 luma weights, the ones Pillow's convert("L") uses.
_LUMA = (0.299, 0.587, 0.114)


def list_images() -> list[str]:
    """Names of the bundled photos, e.g. ``['astronaut', 'cat', 'coffee']``."""
    return sorted(path.stem for path in paths.img_dir().glob("*.png"))


def photo_path(name: str) -> Path:
    """The PNG file of a bundled photo, to open with other tools: ``Image.open(photo_path("cat"))``.

    The photos ship inside the package, so this works in a checkout and in any install.
    """
    available = list_images()
    if not isinstance(name, str) or name not in available:
        raise ValueError(message("photo_path", f"one of the bundled photos {available}",
                                 repr(name), "cnnlab.list_images() lists the bundled names."))
    return paths.img_dir() / f"{name}.png"


def _resolve(name_or_path: str | Path) -> Path:
    where = "load_image"
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(
            message(where, "a photo name such as 'cat' or a path to an image file",
                    describe(name_or_path),
                    "To convert an array or tensor you already have, use cnnlab.to_nchw(image).")
        )
    available = list_images()
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text in available:
        return photo_path(text)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise ValueError(
        message(where, f"one of the bundled photos {available} or the path of an existing file",
                repr(text),
                "Check the spelling; cnnlab.list_images() lists the bundled names.")
    )


def load_image(name_or_path: str | Path, mode: str = "rgb") -> torch.Tensor:
    """Load a photo as a float32 tensor (C, H, W) with values in [0, 1].

    ``name_or_path`` is a bundled photo name (see ``list_images()``: "cat", "astronaut",
    "coffee") or the path of an image file. ``mode="rgb"`` gives 3 channels (an alpha channel is
    dropped, a gray file is repeated); ``mode="gray"`` gives 1 channel, the luminance
    0.299 R + 0.587 G + 0.114 B. Add the batch axis with ``x.unsqueeze(0)`` -> (1, C, H, W).
    """
    from PIL import Image

    if mode not in _MODES:
        raise ValueError(
            message("load_image", f"`mode` to be one of {list(_MODES)}", repr(mode),
                    'Use mode="gray" for one channel or mode="rgb" for three.')
        )
    path = _resolve(name_or_path)
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as error:
        raise ValueError(
            message("load_image", "an image file Pillow can read (PNG, JPEG, ...)", str(path),
                    f"Pillow said: {error}")
        ) from error
    chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    return rgb_to_gray(chw).clamp(0.0, 1.0) if mode == "gray" else chw


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """RGB (..., 3, H, W) -> gray (..., 1, H, W): 0.299 R + 0.587 G + 0.114 B, as Pillow's "L"."""
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * weights).sum(dim=-3, keepdim=True)


def to_nchw(image: Any) -> torch.Tensor:
    """Any common image layout as a float32 tensor (N, C, H, W), ready for ``nn.Conv2d``.

    Accepted (NumPy array, tensor or nested lists):
    - (H, W)          a gray image                 -> (1, 1, H, W)
    - (H, W, C)       from a PNG, C in 1, 3, 4     -> (1, C, H, W)   (RGBA keeps 4 channels;
                      drop alpha first with image[..., :3] if the network expects 3)
    - (C, H, W)       PyTorch's unbatched layout   -> (1, C, H, W)
    - (N, C, H, W)    already a batch              -> unchanged
    A 3-D input is HWC when its last axis has 1, 3 or 4 entries and its first axis is larger,
    otherwise CHW. uint8 values (0..255) are divided by 255; other numbers are kept as they are.
    """
    where = "to_nchw"
    x = as_float_tensor(image, "image", where)
    if x.dim() == 2:
        return x.unsqueeze(0).unsqueeze(0)
    if x.dim() == 3:
        if looks_hwc(tuple(x.shape)):
            x = x.permute(2, 0, 1)
        return x.unsqueeze(0).contiguous()
    if x.dim() == 4:
        return x
    raise ValueError(
        message(where, "an image of rank 2 (H, W), 3 (H, W, C) / (C, H, W) or 4 (N, C, H, W)",
                f"rank {x.dim()} with shape {tuple(x.shape)}",
                "A 1-D vector is not an image: reshape it, e.g. x.reshape(28, 28)."
                if x.dim() < 2 else "Pick one item of the extra leading axes, e.g. x[0].")
    )


def to_hwc(image: Any) -> np.ndarray:
    """An image tensor or array as a NumPy array for ``plt.imshow``: (H, W, C) or (H, W).

    Accepts (H, W), (C, H, W), (1, C, H, W) and (H, W, C) (by the rule of ``to_nchw``), with
    C in 1, 3, 4; detaches and moves tensors to the CPU. One channel gives (H, W) (show it with
    a colormap). Values are not changed: RGB floats should lie in [0, 1] for imshow.
    """
    where = "to_hwc"
    array = as_array(image, "image", where)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(
                message(where, "one image, (1, C, H, W)", f"a batch of shape {array.shape}",
                        "Pick one image first, e.g. to_hwc(batch[0]).")
            )
        array = array[0]
    if array.ndim == 2:
        return array
    if array.ndim != 3:
        raise ValueError(
            message(where, "an image of rank 2, 3 or 4", f"shape {array.shape}",
                    "Images are (H, W), (C, H, W) or (1, C, H, W).")
        )
    hwc = array if looks_hwc(array.shape) else array.transpose(1, 2, 0)
    channels = hwc.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(
            message(where, "1, 3 or 4 channels (gray, RGB, RGBA)",
                    f"{channels} channels in shape {array.shape}",
                    "imshow cannot show that many channels at once: pick one with x[i], or "
                    "draw them all with cnnlab.plot_feature_maps(x).")
        )
    return hwc[..., 0] if channels == 1 else hwc


__all__ = ["load_image", "list_images", "photo_path", "to_nchw", "to_hwc"]
