"""Input conversion, layout detection and validation shared by every cnnlab module.

Every check raises ``ValueError`` (wrong shape or value) or ``TypeError`` (wrong type) with a
message in three parts: what was expected, what was received, and the likely fix. Importing
this module does not import torch: tensors are recognised by duck typing, and the one helper
that returns a tensor (``as_float_tensor``) imports torch when called.

The layout rule, used everywhere: a 3-D shape (a, b, c) is channels-last (HWC) when its last
axis has 1, 3 or 4 entries (gray, RGB, RGBA) and its first axis is larger; otherwise it is
channels-first (CHW). A 4-D shape is NHWC when its last three axes are HWC by that rule. So
(266, 400, 3) is a photo in HWC, (3, 266, 400) is CHW, and the ambiguous (3, 3, 3) counts as CHW.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def message(where: str, expected: str, got: str, hint: str = "") -> str:
    """Format a teaching error: ``where: expected ..., got .... Hint``."""
    text = f"{where}: expected {expected}, got {got}."
    return f"{text} {hint}" if hint else text


def describe(value: Any) -> str:
    """A short description of a value for error messages (type, and shape if it has one)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        dtype = getattr(value, "dtype", None)
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"{value!r} ({type(value).__name__})"


def is_tensor(value: Any) -> bool:
    """True for a torch.Tensor, without importing torch."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def as_array(value: Any, name: str, where: str) -> np.ndarray:
    """Convert a list, NumPy array or torch tensor to a real-valued NumPy array.

    Raises TypeError for strings, None, complex, object or ragged data.
    """
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    elif isinstance(value, (str, bytes)) or value is None or isinstance(value, dict):
        raise TypeError(
            message(where, f"`{name}` as a list of numbers, a NumPy array or a torch tensor",
                    describe(value), "Pass the numbers, e.g. np.array([[1, 2], [3, 4]]).")
        )
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise TypeError(
            message(where, f"`{name}` as a rectangular array of numbers", describe(value),
                    "Every row must have the same length; check the nested lists.")
        ) from error
    if array.dtype == bool:
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(
            message(where, f"real numbers in `{name}`", f"complex dtype {array.dtype}",
                    "Convolution here works on real images; use .real or np.abs() first.")
        )
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(
            message(where, f"numbers in `{name}`", f"dtype {array.dtype} ({describe(value)})",
                    "Convert the data to numbers first, e.g. np.asarray(x, dtype=float).")
        )
    return array


def as_int(value: Any, name: str, where: str, minimum: int) -> int:
    """An integer >= minimum; rejects floats and bools with a hint."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = ""
        if isinstance(value, numbers.Real) and float(value).is_integer():
            hint = f"Use the integer {int(value)} instead of {value!r}."
        elif isinstance(value, numbers.Real):
            hint = "Sizes, strides and paddings count whole pixels; round to an integer."
        raise TypeError(message(where, f"`{name}` as an integer", describe(value), hint))
    if value < minimum:
        hints = {
            "stride": "A stride is the step between windows; 1 means every position.",
            "padding": "Padding adds rows and columns of zeros; it cannot remove them.",
            "dilation": "Dilation 1 means an ordinary, undilated kernel.",
        }
        raise ValueError(
            message(where, f"`{name}` >= {minimum}", repr(int(value)),
                    hints.get(name.split("[")[0], ""))
        )
    return int(value)


def as_pair(value: Any, name: str, where: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= minimum, returned as a pair."""
    if isinstance(value, Sequence) and not isinstance(value, str) or is_tensor(value) or (
        isinstance(value, np.ndarray)
    ):
        items = list(value)
        if len(items) != 2:
            raise ValueError(
                message(where, f"`{name}` as an int or an (h, w) pair", describe(value),
                        f"Use e.g. {name}=2 or {name}=(2, 1).")
            )
        return (as_int(items[0], f"{name}[0]", where, minimum),
                as_int(items[1], f"{name}[1]", where, minimum))
    number = as_int(value, name, where, minimum)
    return number, number


# --- layouts --------------------------------------------------------------------------------

def looks_hwc(shape: Sequence[int]) -> bool:
    """The layout rule: True when a 3-D shape is HWC, or a 4-D shape NHWC (channels last)."""
    shape = tuple(shape)
    if len(shape) == 4:
        shape = shape[1:]
    return len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] > shape[-1]


def layout_hint(shape: Sequence[int], name: str = "x") -> str:
    """The fix for a channel-count mismatch of ``name`` with this shape, or "" if none applies.

    Channels last (HWC, NHWC) -> how to move them first; 4 channels first -> drop alpha.
    """
    shape = tuple(shape)
    if looks_hwc(shape):
        if len(shape) == 3:
            return (f"It looks like an HWC image (height, width, channels), as read from a PNG; "
                    f"move the channels first with {name}.transpose(2, 0, 1) (NumPy), "
                    f"{name}.permute(2, 0, 1) (torch) or cnnlab.to_nchw({name}).")
        return (f"It looks like NHWC (channels last); convert with {name}.transpose(0, 3, 1, 2) "
                f"(NumPy) or {name}.permute(0, 3, 1, 2) (torch).")
    if len(shape) in (3, 4) and shape[-3] == 4:
        return (f"This looks like an RGBA image; drop the alpha channel with "
                f"{name}[..., :3, :, :].")
    return ""


def as_nchw(x: np.ndarray, where: str, name: str = "x") -> np.ndarray:
    """View an array (H, W), (C, H, W) or (N, C, H, W) as (N, C, H, W), or raise a teaching error.

    Leading axes of size 1 are added; nothing is copied.
    """
    if x.ndim not in (2, 3, 4):
        hints = {0: "A single number is not an image.",
                 1: f"A 1-D row is not an image; reshape it into 2-D, e.g. {name}.reshape(h, w).",
                 5: "Remove the extra axis; a batch of images is 4-D (N, C, H, W)."}
        raise ValueError(message(where, f"`{name}` of rank 2, 3 or 4 ((H, W), (C, H, W) or "
                                 "(N, C, H, W))", f"rank {x.ndim} with shape {x.shape}",
                                 hints.get(x.ndim, "")))
    if x.size == 0:
        raise ValueError(message(where, f"`{name}` with at least one channel, row and column",
                                 f"shape {x.shape}", "An axis of size 0 leaves nothing to "
                                 "compute; check how the input was sliced or built."))
    return x.reshape((1,) * (4 - x.ndim) + x.shape)


def as_float_tensor(value: Any, name: str, where: str) -> torch.Tensor:
    """A tensor, array or nested list as a detached float32 CPU tensor; uint8 0..255 -> [0, 1]."""
    import torch

    if is_tensor(value):
        if value.is_complex():
            as_array(value, name, where)  # raises the teaching TypeError
        tensor = value.detach().cpu()
    else:
        array = np.ascontiguousarray(as_array(value, name, where))
        if not array.flags.writeable:  # torch warns on read-only buffers (scikit-learn's images)
            array = array.copy()
        tensor = torch.from_numpy(array)
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    return tensor.float()


def image_chw(value: Any, where: str, channels: tuple[int, ...] | None = (1, 3),
              name: str = "image") -> torch.Tensor:
    """One image (H, W), (C, H, W) or (1, C, H, W) as a float32 tensor (C, H, W).

    ``channels`` lists the allowed C (None: any); HWC input gets the hint to move channels.
    """
    x = as_float_tensor(value, name, where)
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(message(where, "one image, (1, C, H, W)",
                                     f"a batch of shape {tuple(x.shape)}",
                                     f"Pick one image first, e.g. {name}[0]."))
        x = x[0]
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(message(where, "an image of shape (H, W), (C, H, W) or (1, C, H, W)",
                                 f"shape {tuple(x.shape)} (rank {x.dim()})",
                                 "Images and feature maps have 2, 3 or 4 axes; a flat vector "
                                 "(e.g. after nn.Flatten) has lost its layout."))
    if min(x.shape[1:]) == 0:
        raise ValueError(message(where, "an image with at least one row and column",
                                 f"shape {tuple(x.shape)}", "Check how it was sliced."))
    if channels is not None and x.shape[0] not in channels:
        allowed = " or ".join(map(str, channels))
        hint = layout_hint(tuple(x.shape), name) or f"Use an image with {allowed} channels."
        raise ValueError(message(where, f"{allowed} channels in (C, H, W)",
                                 f"shape {tuple(x.shape)}", hint))
    return x
