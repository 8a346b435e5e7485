"""One-line verdicts for the exercises at the end of each lesson.

An exercise cell starts with ``answer = ...``; its check cell calls ``check_answer`` and prints
"not answered yet" until the student replaces the ``...``. Once answered, the verdict is one
line: correct, or what kind of value was expected and what came back. Nothing here raises on
a wrong answer: a mistake is a message, not a traceback.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["check_answer"]


def _is_unanswered(value: Any) -> bool:
    return value is ... or value is None


def _plain(value: Any) -> Any:
    """Tensors and torch.Size become NumPy arrays and tuples; other values stay as they are."""
    if type(value).__name__ == "Size" and isinstance(value, tuple):
        return tuple(int(v) for v in value)
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def _same(answer: Any, expected: Any, rel_tol: float, abs_tol: float) -> tuple[bool, str]:
    """Compare an answer with the expected value; return (ok, what differs)."""
    if isinstance(expected, bool):
        if not isinstance(answer, bool | np.bool_):
            return False, f"expected True or False, got {answer!r}"
        return bool(answer) == expected, ""
    if isinstance(expected, numbers.Number):
        if isinstance(answer, bool) or not isinstance(answer, numbers.Number):
            return False, f"expected a number, got {type(answer).__name__} {answer!r}"
        return math.isclose(float(answer), float(expected), rel_tol=rel_tol,
                            abs_tol=abs_tol), ""
    if isinstance(expected, str):
        if not isinstance(answer, str):
            return False, f"expected text, got {type(answer).__name__} {answer!r}"
        return answer.strip().lower() == expected.strip().lower(), ""
    if isinstance(expected, np.ndarray) or isinstance(answer, np.ndarray):
        try:
            got = np.asarray(answer, dtype=float)
        except (TypeError, ValueError):
            return False, f"expected an array, got {type(answer).__name__}"
        want = np.asarray(expected, dtype=float)
        if got.shape != want.shape:
            return False, f"expected an array of shape {want.shape}, got shape {got.shape}"
        return bool(np.allclose(got, want, rtol=rel_tol, atol=abs_tol)), ""
    if isinstance(expected, tuple | list):
        if not isinstance(answer, tuple | list):
            return False, (f"expected a {type(expected).__name__} of {len(expected)} items, "
                           f"got {type(answer).__name__} {answer!r}")
        if len(answer) != len(expected):
            return False, f"expected {len(expected)} items, got {len(answer)}"
        for got_item, want_item in zip(answer, expected, strict=True):
            ok, why = _same(_plain(got_item), _plain(want_item), rel_tol, abs_tol)
            if not ok:
                return False, why
        return True, ""
    return answer == expected, ""


def check_answer(name: str, answer: Any, expected: Any, *, rel_tol: float = 1e-6,
                 abs_tol: float = 1e-9) -> bool:
    """Print a one-line verdict on ``answer`` and return whether it is right.

    ``answer`` left as ``...`` (or ``None``) prints "not answered yet". Numbers are compared
    with a tolerance, arrays and tensors by shape then values, tuples item by item (a
    ``torch.Size`` counts as a tuple), text without case or surrounding spaces.
    """
    if _is_unanswered(answer):
        print(f"{name}: not answered yet (replace the ... with your answer and run again)")
        return False
    ok, why = _same(_plain(answer), _plain(expected), rel_tol, abs_tol)
    if ok:
        print(f"{name}: correct")
    else:
        print(f"{name}: not yet, {why or f'{answer!r} is not it'}; try again")
    return ok
