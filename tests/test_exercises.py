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
