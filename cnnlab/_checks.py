"""Input validation shared by cnnlab's public functions.

Every check raises ``ValueError`` (wrong shape or value) or ``TypeError`` (wrong type) with a
message in three parts: what was expected, what was received, and the likely fix. Nothing here
imports torch: tensors are recognised by duck typing.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np


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
