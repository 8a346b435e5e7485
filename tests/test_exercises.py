"""check_answer: one line per verdict, never a traceback for a wrong answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.exercises import check_answer


@pytest.mark.parametrize("unanswered", [..., None])
def test_unanswered_says_so(unanswered, capsys) -> None:
    assert check_answer("q", unanswered, 3) is False
    assert "not answered yet" in capsys.readouterr().out


@pytest.mark.parametrize(("answer", "expected"), [
    (30, 30), (0.1 + 0.2, 0.3), (torch.Size([1, 64, 86, 51]), (1, 64, 86, 51)),
    ([2, 3], (2, 3)), (np.array([[1.0, 2.0]]), torch.tensor([[1.0, 2.0]])),
    (torch.tensor([0.5, 1.5]), np.array([0.5, 1.5])), (True, True), (" Max ", "max"),
])
def test_right_answers_pass(answer, expected, capsys) -> None:
    assert check_answer("q", answer, expected) is True
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "correct" in out


@pytest.mark.parametrize(("answer", "expected", "detail"), [
    (31, 30, "31"), ("30", 30, "expected a number"), (True, 1, "expected a number"),
    (1, True, "True or False"), ((1, 2), (1, 2, 3), "wrong number of items"),
    (np.ones((2, 2)), np.ones(4), "wrong shape: got (2, 2)"),
    ([1, 2], (1, 3), "wrong value at [1]: got [1, 2]"),
    (np.array([1.0, 2.0]), np.array([1.0, 2.1]), "1 of 2 values differ"),
    ("min", "max", "wrong text: got 'min'"),
])
def test_wrong_answers_get_one_line(answer, expected, detail, capsys) -> None:
    """What is wrong, in words: an exercise never prints its own answer."""
    assert check_answer("q", answer, expected) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "not yet" in out and detail in out


@pytest.mark.parametrize(("answer", "expected"), [
    (12_289_000, 12_289_000), ((4, 8, 16, 16), (4, 8, 16, 16)),
    ([[8, 6], [7, 9]], [[8, 6], [7, 9]]),
])
def test_a_right_answer_is_not_repeated(answer, expected, capsys) -> None:
    """A verdict is "correct" and nothing else: a stored solution shows no answer."""
    assert check_answer("Exercise 1", answer, expected) is True
    assert capsys.readouterr().out == "Exercise 1: correct\n"


@pytest.mark.parametrize(("answer", "expected", "hidden"), [
    (12_288_000, 12_289_000, ["12289000", "12,289,000"]), ((4, 8, 16, 17), (4, 8, 16, 16), ["16)"]),
    ("max", "mean", ["mean"]), (np.zeros((2, 2)), np.eye(2), ["1."]),
])
def test_a_wrong_answer_never_shows_the_expected_value(answer, expected, hidden, capsys) -> None:
    assert check_answer("Exercise 1", answer, expected) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1: not yet") and not any(text in out for text in hidden), out


def test_a_whole_number_is_compared_exactly(capsys):
    assert not check_answer("Exercise 1", 12_289_001, 12_289_000)
    assert check_answer("Exercise 1", 12_289_000.0, 12_289_000)  # written as a float: fine
    assert check_answer("Exercise 2", 0.1 + 0.2, 0.3)  # floats within the tolerance
    out = capsys.readouterr().out
    assert "Exercise 1: not yet" in out and "12,289,000" not in out and "12289000" not in out
