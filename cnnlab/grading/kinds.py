"""Case kinds: one class per kind of graded case, holding everything that kind means.

A kind checks a case as the master declares it (``validate``), says whether its code runs in
the sandbox (``runs``) and judges an answer (``judge``: '' when it earns the points, else a
one-line reason). With ``reveal`` False (a hidden case, for the student) a reason says what is
wrong in words and never shows the expected value. Adding a kind means one class here and one
entry in ``KINDS``; ``master``, ``assign``, ``scoring`` and the students' ``check`` only look
kinds up.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import numpy as np

# default tolerances of "close": a float32 answer passes (its rounding is about 1e-7 per
# operation, 1e-6 after a few hundred), while any real mistake is off by far more
RTOL, ATOL = 1e-5, 1e-6


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"array {np.array2string(value.ravel(), precision=4)} shape {value.shape}"
        return f"array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, np.ndarray) else "array"


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Number, np.number)) and \
        not isinstance(value, (bool, np.bool_))


def same(expected: Any, got: Any, close: bool = True, rtol: float = RTOL, atol: float = ATOL,
         where: str = "", reveal: bool = True) -> str:
    """'' when ``got`` is the expected answer, else a one-line reason: the one comparison of
    lesson exercises, public checks and grading.

    A value counts however it is written: a list for a tuple (or a ``torch.Size``), 76.0 for
    76, an array for nested lists, text in any case with spaces around it. True and False are
    not numbers. Numbers are compared within ``rtol``/``atol`` when ``close`` (or when either
    is a float), exactly otherwise. With ``reveal`` False (a hidden case) the reason says what
    is wrong in words and never shows the expected value."""
    here = f" at {where}" if where else ""
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            return f"expected True or False{here}, got {_describe(got)} ({_kind(got)})"
        return "" if bool(got) == bool(expected) else (
            f"expected {bool(expected)}{here}, got {bool(got)}" if reveal
            else f"wrong value{here}: got {bool(got)}")
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray) and \
            not isinstance(expected, str):
        if isinstance(got, (bool, str)) or got is None:
            return f"expected a number array{here}, got {_kind(got)}"
        try:
            want, have = np.asarray(expected, dtype=float), np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return f"expected a number array{here}, got {_kind(got)}"
        if want.shape != have.shape:
            return (f"expected shape {want.shape}{here}, got shape {have.shape}" if reveal
                    else f"wrong shape{here}: got {have.shape}")
        exact = not close and np.asarray(expected).dtype.kind in "biu"
        good = have == want if exact else np.isclose(have, want, rtol=rtol, atol=atol)
        if np.all(good):
            return ""
        if not want.ndim:
            return (f"expected {float(want):.6g}{here}, got {float(have):.6g}" if reveal
                    else f"wrong value{here}: got {float(have):.6g}")
        wrong = f"{int((~good).sum())} of {want.size} values differ{here}"
        if not reveal:
            return wrong
        first = tuple(int(i) for i in np.argwhere(~good)[0])
        return f"{wrong}; first at {first}: expected {want[first]:.6g}, got {have[first]:.6g}"
    if _is_number(expected):
        if not _is_number(got):
            return f"expected a number{here}, got {_describe(got)} ({_kind(got)})"
        if close or isinstance(expected, (float, np.floating)) or \
                isinstance(got, (float, np.floating)):
            ok = math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol)
        else:
            ok = got == expected
        return "" if ok else (f"expected {_describe(expected)}{here}, got {_describe(got)}"
                              if reveal else f"wrong value{here}: got {_describe(got)}")
    if isinstance(expected, str):
        if not isinstance(got, str):
            return f"expected text{here}, got {_describe(got)} ({_kind(got)})"
        ok = got.strip().lower() == expected.strip().lower()
        return "" if ok else (f"expected {expected!r}{here}, got {got!r}" if reveal
                              else f"wrong text{here}: got {got!r}")
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"expected a {type(expected).__name__}{here}, got {_describe(got)}"
        if len(got) != len(expected):
            return (f"expected {len(expected)} items{here}, got {len(got)}: {_describe(got)}"
                    if reveal else f"wrong number of items{here}: got {_describe(got)}")
        for index, (e, g) in enumerate(zip(expected, got, strict=True)):
            problem = same(e, g, close, rtol, atol, f"{where}[{index}]", reveal)
            if problem:
                if where or isinstance(e, (list, tuple, np.ndarray)):
                    return problem
                return (f"expected {_describe(expected)}, got {_describe(got)}" if reveal
                        else f"wrong value at [{index}]: got {_describe(got)}")
        return ""
    if got == expected:
        return ""
    return (f"expected {_describe(expected)}{here}, got {_describe(got)}" if reveal
            else f"wrong value{here}: got {_describe(got)}")


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    return False


class Kind:
    """What one kind of case means; subclasses override what differs."""

    name: ClassVar[str] = ""
    runs: ClassVar[bool] = True  # its code runs in the sandbox (False: the source is checked)

    def validate(self, case: Any) -> str:
        """'' when a declared ``Case`` is complete for this kind, else what is missing."""
        return "" if case.code.strip() else "a case needs code (or static=...)"

    def judge(self, rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
        raise NotImplementedError


class Equal(Kind):
    """Exactly the expected value, type and shape included."""

    name = "equal"

    def judge(self, rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
        return same(expected, got, False, 0.0, 0.0, reveal=reveal)


class Close(Kind):
    """Numbers within ``rtol``/``atol`` of the expected ones (same types and shapes)."""

    name = "close"

    def judge(self, rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
        return same(expected, got, True, float(rules.get("rtol", RTOL)),
                    float(rules.get("atol", ATOL)), reveal=reveal)


class Auto(Close):
    """``close`` when the expected value holds floats, else ``equal``."""

    name = "auto"

    def judge(self, rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
        if _has_float(expected):
            return super().judge(rules, expected, got, reveal)
        return Equal().judge(rules, expected, got, reveal)


class Range(Kind):
    """A number between ``at_least`` and ``at_most`` (a score, an accuracy the student reports)."""

    name = "range"

    def validate(self, case: Any) -> str:
        return super().validate(case) or ("" if case.at_least is not None else
                                          "compare='range' needs at_least (and at_most)")

    def judge(self, rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
        low, high = float(rules["at_least"]), float(rules.get("at_most") or math.inf)
        if type(got) not in (int, float) or not low <= got <= high:
            return f"expected a number between {low:g} and {high:g}, got {_describe(got)}"
        return ""


class Accuracy(Kind):
    """Integer class predictions, right on at least the fraction ``at_least`` of the labels."""

    name = "accuracy"

    def validate(self, case: Any) -> str:
        from cnnlab.grading.master import MASTER

        if case.expected is MASTER or case.at_least is None:
            return "compare='accuracy' needs expected=labels and at_least=fraction"
        return super().validate(case)

    def judge(self, rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
        if isinstance(got, (list, tuple)) and all(type(v) is int for v in got):
            got = np.asarray(got)
        if not isinstance(got, np.ndarray) or got.dtype.kind not in "iu" or \
                got.shape != np.shape(expected):
            return f"expected {np.size(expected)} integer class predictions, got " \
                   f"{_describe(got)}"
        accuracy = float(np.mean(got == np.asarray(expected)))
        if accuracy < rules["at_least"]:
            return f"accuracy {accuracy:.3f} on held-out images, below {rules['at_least']:.2f}"
        return ""


class Static(Kind):
    """A rule on the submitted source (``static.RULES``), checked by the grader; nothing runs.
    Its answer is the rule's verdict: '' when the source follows it, else why not."""

    name = "static"
    runs = False

    def validate(self, case: Any) -> str:
        from cnnlab.grading.static import RULES

        if case.static not in RULES or not case.function:
            return f"static must be one of {tuple(RULES)} with function='name'"
        return ""

    def judge(self, rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
        return got if isinstance(got, str) else "not checked"


KINDS: dict[str, Kind] = {k.name: k for k in (Auto(), Equal(), Close(), Range(), Accuracy(),
                                              Static())}
COMPARES = tuple(name for name, kind in KINDS.items() if kind.runs)


def kind_of(rules: Any) -> Kind:
    """The kind of a case: a ``Case`` or its rules dict (``lab.json``)."""
    get = rules.get if isinstance(rules, dict) else lambda key, default=None: getattr(
        rules, key, default)
    return KINDS["static"] if get("static") else KINDS[get("compare", "auto")]


def judge(rules: dict, expected: Any, got: Any, reveal: bool = True) -> str:
    """'' when ``got`` earns the case's points, else a short reason (see the module docstring)."""
    return kind_of(rules).judge(rules, expected, got, reveal)
