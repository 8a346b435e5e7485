"""Lesson 08 keeps its facts (matrix view, routing, gradient checks, receptive fields) stored.

Like FACTS in tests/test_notebooks.py: nbval proves a re-run reproduces the stored outputs, these
tests prove the stored outputs are the right ones, and that the exercises start unanswered with
their solutions one click away.
"""

from __future__ import annotations

import json
import re

import torch
import torch.nn.functional as F
from notebook_text import NOTEBOOKS, cells, code_cells, missing_facts, outputs_text, source

L08 = "08_gradients_through_convolution.ipynb"


def _strided_input_gradient_facts() -> list[str]:
    """Input 6x6, kernel 3, stride 2, padding 1: the transposed convolution needs output_padding.

    Computed with PyTorch here, then looked for in the stored outputs.
    """
    kernel, dout = torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3)
    sizes = [n for n in range(3, 10)
             if F.conv2d(torch.zeros(1, 1, n, n), kernel, stride=2, padding=1).shape[-1] == 3]
    back = F.conv_transpose2d(dout, kernel, stride=2, padding=1).shape[-1]
    padded = F.conv_transpose2d(dout, kernel, stride=2, padding=1, output_padding=1).shape[-1]
    assert (sizes, back, padded) == ([5, 6], 5, 6)  # the curriculum's fact
    return [f"input sizes that give a 3x3 output (k=3, s=2, p=1): {sizes}",
            f"transposed size rule: (3 - 1) * 2 - 2 * 1 + 3 = {back}",
            f"F.conv_transpose2d(dout, K, stride=2, padding=1): ({back}, {back})",
            f"with output_padding=1: ({padded}, {padded}) | equals autograd: True",
            "torch.nn.grad.conv2d_input equals autograd: True",
            "cnnlab.conv2d_backward equals autograd: True"]


FACTS = [
    # the 9x25 matrix: locality and weight sharing
    "M has shape (9, 25)",
    "M @ x, as 3x3: [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
    "equal: True",
    "entries per row inside the window:  [9, 9, 9, 9, 9, 9, 9, 9, 9]",
    "entries per row outside (always 0): [16, 16, 16, 16, 16, 16, 16, 16, 16]",
    "every row holds the kernel, in reading order: True",
    # its transpose is the input gradient and the transposed convolution
    "M.T @ dout equals cnnlab.conv2d_backward: True",
    "M.T @ dout equals F.conv_transpose2d: True",
    "M.T @ dout equals nn.ConvTranspose2d: True",
    "M.T @ dout equals autograd: True",
    "full correlation with the flipped kernel equals dx: True",
    "conv_transpose2d(stride=2, padding=1) equals autograd: True",
    # a strided convolution: several input sizes share one output size (output_padding)
    *_strided_input_gradient_facts(),
    # dW and db
    "equals cnnlab: True  equals autograd: True",
    "dx, dW, db equal autograd: True True True",
    # pooling
    "[[1. 0. 0. 0.]\n [0. 0. 2. 0.]\n [3. 0. 0. 0.]\n [0. 0. 0. 4.]]\nequals autograd: True",
    "ties: x = [[5.0, 5.0], [1.0, 5.0]] -> dx = [[1.0, 0.0], [0.0, 0.0]]",
    "overlap: the centre collects 4.0 | equals autograd: True",
    "[[0.25 0.25 0.5  0.5 ]",
    # numerical gradient checks: the three of section 5 and the right dx of the bug hunt
    "dx: relative error below 1e-8: True\ndW: relative error below 1e-8: True\n"
    "db: relative error below 1e-8: True",
    "right dx:  relative error below 1e-8: True",
    # receptive fields through AlexNet's features: measured == formula
    *[f"{name:6s} {module:10s} {k:6d} {s:6d} {p:7d}  {jump:4d}  {field:8d}  {field:7d}"
      for name, module, k, s, p, jump, field in [
          ("conv1", "Conv2d", 11, 4, 2, 1, 11), ("pool1", "MaxPool2d", 3, 2, 0, 4, 19),
          ("conv2", "Conv2d", 5, 1, 2, 8, 51), ("pool2", "MaxPool2d", 3, 2, 0, 8, 67),
          ("conv3", "Conv2d", 3, 1, 1, 16, 99), ("conv4", "Conv2d", 3, 1, 1, 16, 131),
          ("conv5", "Conv2d", 3, 1, 1, 16, 163), ("pool5", "MaxPool2d", 3, 2, 0, 16, 195)]],
    # 3x3 stacks
    "2 x 3x3: sees 5x5 (formula 5) | 73,728 weights = 18 C^2",
    "1 x 5x5: sees 5x5 (formula 5) | 102,400 weights = 25 C^2",
    "3 x 3x3: sees 7x7 (formula 7) | 110,592 weights = 27 C^2",
    "1 x 7x7: sees 7x7 (formula 7) | 200,704 weights = 49 C^2",
    # AlexNet's first layer: the image shrinks 4 times per side in one step, on 3 channels
    f"AlexNet's conv1 (11x11, stride 4): 224x224 -> {(224 + 4 - 11) // 4 + 1}x"
    f"{(224 + 4 - 11) // 4 + 1} with {(3 * 11 * 11 + 1) * 64:,} parameters",
]


def test_facts_are_in_stored_outputs():
    assert not missing_facts(L08, FACTS), "re-run the notebook top to bottom"


def test_numerical_checks_pass_and_wrong_backwards_fail():
    text = "".join(outputs_text(c) for c in code_cells(L08))
    assert text.count("relative error below 1e-8: True") == 4
    assert "relative error below 1e-8: False" not in text
    wrong = {name: float(e) for name, e in re.findall(r"(no flip|mean db): +relative error (\S+)",
                                                      text)}
    assert set(wrong) == {"no flip", "mean db"} and min(wrong.values()) > 0.1, wrong




def test_no_errors_and_small_outputs():
    for cell in code_cells(L08):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", source(cell)[:200]
            assert len(json.dumps(out)) < 1_000_000
    assert (NOTEBOOKS / L08).stat().st_size < 2_000_000


def test_effective_receptive_field_is_a_shrinking_gaussian_middle():
    """Luo et al. 2016: the gradient sits in a roughly Gaussian middle part of the field, whose
    share of the theoretical field falls with depth."""
    text = "".join(outputs_text(c) for c in code_cells(L08))
    table = re.findall(r"^(\w+) +(\d+) +(\d+) +(\d+)%$", text, re.M)
    assert [name for name, *_ in table] == ["conv1", "pool1", "conv2", "pool2", "conv3",
                                            "conv4", "conv5", "pool5"], table
    for name, field, rows, share in table:
        assert int(rows) <= int(field) and round(100 * int(rows) / int(field)) == int(share), name
    shares = [int(share) for *_, share in table]
    assert shares == sorted(shares, reverse=True) and len(set(shares)) == len(shares), shares
    assert shares[-1] < 60, "a deep unit's effective field is a fraction of the theoretical one"
    within = dict(re.findall(r"within (\d) standard deviation\(s\) of the centre: (\d+)%", text))
    assert 60 <= int(within["1"]) <= 76 and 90 <= int(within["2"]) <= 99, within
    # the text quotes the stored numbers
    prose = "".join(source(c) for c in cells(L08) if c["cell_type"] == "markdown")
    said = (f"pool5's ({shares[-1]}%)", f"{within['1']}% of it lies within one standard deviation",
            f"{within['2']}% within two")
    assert all(phrase in prose for phrase in said), said
