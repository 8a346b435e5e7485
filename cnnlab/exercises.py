"""One-line verdicts for the exercises at the end of each lesson.

An exercise cell starts with ``answer = ...``; its check cell calls ``check_answer`` and prints
"not answered yet" until the student replaces the ``...``. Once answered, the verdict is one
line: correct, or what kind of value was expected and what came back. Nothing here raises on
a wrong answer: a mistake is a message, not a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_answer"]


def _is_unanswered(value: Any) -> bool:
    return value is ... or value is None


def _plain(value: Any) -> Any:
    """Tensors and torch.Size become NumPy arrays and tuples, inside lists and tuples too;
    other values stay as they are."""
    if type(value).__name__ == "Size" and isinstance(value, tuple):
        return tuple(int(v) for v in value)
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def check_answer(name: str, answer: Any, expected: Any, *, rel_tol: float = 1e-6,
                 abs_tol: float = 1e-9) -> bool:
    """Print a one-line verdict on ``answer`` and return whether it is right.

    ``answer`` left as ``...`` (or ``None``) prints "not answered yet". The comparison is the
    labs' own (``cnnlab.grading.kinds.same``): whole numbers exactly, floats with a tolerance,
    arrays and tensors by shape then values, tuples and lists item by item (a ``torch.Size``
    counts as a tuple), text without case or surrounding spaces.
    """
    if _is_unanswered(answer):
        print(f"{name}: not answered yet (replace the ... with your answer and run again)")
        return False
    from cnnlab.grading.kinds import same  # the one comparison of exercises and labs

    # whole numbers exactly (12,289,001 is not 12,289,000), anything with a float in it within
    # the tolerance; an exercise never gives its answer away
    why = same(_plain(expected), _plain(answer), close=False, rtol=rel_tol, atol=abs_tol,
               reveal=False)
    if not why:
        print(f"{name}: correct")
    else:
        print(f"{name}: not yet, {why}; try again")
    return not why
