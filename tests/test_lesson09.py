"""Lesson 09 keeps its facts and its measured experiments in its stored outputs.

nbval proves that a re-run reproduces the stored outputs; these tests prove that the stored
outputs are the right ones: every count printed three ways (formula, module, torchinfo) agrees
with cnnlab's formulas recomputed here, the residual and BatchNorm experiment shows what the
prose says it shows, the prose quotes only numbers printed above it, and the exercises start
unanswered with their solutions collapsed and no answer printed before its question.
"""

from __future__ import annotations

import json
import math
import re

import torch
import torchvision
from notebook_text import NOTEBOOKS, cells, code_cells, missing_facts, outputs_text, source
from torch import nn

import cnnlab

L09 = "09_modern_building_blocks.ipynb"
FACTS = [
    # VGG block: shape and receptive field (two 3x3 convs see 5x5, the 2x2 pool adds 1)
    "output shape: (1, 128, 8, 8)",
    "receptive field: 6 pixels",
    # NiN: a 1x1 conv is a per-pixel Linear; conv1x1 then GAP == GAP then Linear
    "1x1 conv equals a Linear at every pixel: True",
    "1x1 conv then GAP equals GAP then Linear: True",
    # residual blocks: identity shortcut when the shape is kept, projection otherwise
    "ResidualBlock(16)                output (8, 16, 20, 20), shortcut: 0 parameters",
    "ResidualBlock(16, 32, stride=2)  output (8, 32, 10, 10), shortcut: 576 parameters",
    "with F = 0 the block returns relu(x): True",
    # the experiment's twins differ only by the skips
    "same names and values of every weight: True",
    "17 conv layers, 9,514 parameters in each network",
    "a uniform guess over 10 classes: loss ln 10 = 2.303, accuracy 10%",
    # grouped convolution = convolutions side by side
    "groups=2 equals two convolutions side by side: True",
]
NUMBER = r"[\d,]+"


def _text() -> str:
    """Every stored output, one cell per block of lines (a figure's text has no newline)."""
    return "\n".join(outputs_text(c) for c in code_cells(L09))


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def test_facts_are_in_stored_outputs():
    assert not missing_facts(L09, FACTS), "re-run the lesson top to bottom"


def test_vgg_counts_agree_with_the_formulas():
    text = _text()
    expected = cnnlab.conv2d_params(64, 128, 3) + cnnlab.conv2d_params(128, 128, 3)
    found = re.search(rf"parameters: formula ({NUMBER}) \| count_params ({NUMBER}) \| "
                      rf"torchinfo ({NUMBER})", text)
    assert found and {_int(v) for v in found.groups()} == {expected}
    work = re.search(rf"mult-adds: formula ({NUMBER}) \| torchinfo ({NUMBER})", text)
    assert work and {_int(v) for v in work.groups()} == {expected * 16 * 16}
    with torch.device("meta"):
        vgg16 = torchvision.models.vgg16()
    features = cnnlab.count_params(vgg16.features)
    assert f"our five blocks:  (1, 512, 7, 7), {features:,} parameters" in text
    assert f"VGG-16 features:  (1, 512, 7, 7), {features:,} parameters" in text
    assert f"VGG-16 in all:    {cnnlab.count_params(vgg16):,} parameters" in text
    share = cnnlab.count_params(vgg16.classifier) / cnnlab.count_params(vgg16)
    assert f"three dense layers: {share:.0%} of the parameters" in text


def test_nin_head_table_agrees_three_ways():
    text = _text()
    dense = (cnnlab.linear_params(512 * 7 * 7, 4096) + cnnlab.linear_params(4096, 4096)
             + cnnlab.linear_params(4096, 1000))
    nin = cnnlab.conv2d_params(512, 1000, 1)
    for label, params, work in (("dense head", dense, dense), ("NiN head", nin, nin * 49)):
        row = re.search(rf"^{label} +({NUMBER}) +({NUMBER}) +({NUMBER}) +({NUMBER}) +({NUMBER})$",
                        text, re.M)
        assert row, label
        values = [_int(v) for v in row.groups()]
        assert values == [params] * 3 + [work] * 2, (label, values)
    assert f"the NiN head has {dense / nin:.0f}x fewer parameters" in text


def test_grouped_table_halves_weights_and_work():
    rows = re.findall(rf"^(conv\d) +([12]) +\(([\d, ]+)\) +({NUMBER}) +({NUMBER}) +({NUMBER}) +"
                      rf"({NUMBER})$", _text(), re.M)
    layers = {"conv2": (96, 256, 5, 27), "conv4": (384, 384, 3, 13), "conv5": (384, 256, 3, 13)}
    assert sorted((name, int(g)) for name, g, *_ in rows) == [
        (name, g) for name in sorted(layers) for g in (1, 2)]
    for name, groups, shape, params, info_params, work, info_work in rows:
        c_in, c_out, k, size = layers[name]
        groups = int(groups)
        expected = cnnlab.grouped_conv2d_params(c_in, c_out, k, groups=groups)
        assert _int(params) == _int(info_params) == expected
        assert _int(work) == _int(info_work) == expected * size * size
        assert tuple(int(v) for v in shape.split(",")) == (c_out, c_in // groups, k, k)
    weights = {(name, int(g)): _int(p) for name, g, _, p, *_ in rows}
    for name, (_, c_out, _, _) in layers.items():  # biases aside, groups=2 halves the weights
        assert weights[name, 1] - c_out == 2 * (weights[name, 2] - c_out)


def test_depthwise_separable_table():
    text = _text()
    c, o, k = 64, 128, 3
    for label, weights in (("Conv2d", c * o * k * k), ("DepthwiseSeparable", c * k * k + c * o)):
        row = re.search(rf"^{label} +({NUMBER}) +({NUMBER}) +({NUMBER}) +\(1, 128, 16, 16\) +"
                        rf"({NUMBER})$", text, re.M)
        assert row, label
        assert [_int(v) for v in row.groups()] == [weights] * 3 + [weights * 16 * 16]
    ratio = (c * k * k + c * o) / (c * o * k * k)
    assert f"fraction of the weights: {ratio:.4f}; 1/O + 1/k^2 = {1 / o + 1 / k**2:.4f}" in text


def _report(text: str) -> dict[str, tuple[list[float], float]]:
    """{network: (training loss per epoch, final validation accuracy)} from the last table."""
    rows = {}
    for name in ("plain", "residual", "plain + BN", "residual + BN"):
        found = re.findall(rf"^{re.escape(name)} +((?:\d\.\d{{3}} +)+)(\d+\.\d)%$", text, re.M)
        assert found, f"no row for {name}"
        losses, accuracy = found[-1]
        rows[name] = [float(v) for v in losses.split()], float(accuracy) / 100
        assert all(f == found[0] for f in found), f"{name}: the two tables disagree"
    return rows


def test_residual_and_batchnorm_experiment_shows_what_the_prose_says():
    rows = _report(_text())
    assert {len(losses) for losses, _ in rows.values()} == {4}
    final = {name: losses[-1] for name, (losses, _) in rows.items()}
    accuracy = {name: acc for name, (_, acc) in rows.items()}
    # the plain stack does not learn: it ends at the loss of a uniform guess, at chance
    assert abs(final["plain"] - math.log(10)) < 0.02 and accuracy["plain"] < 0.15
    # with skips it learns (slowly); BatchNorm rescues the plain stack; both together best
    assert final["residual"] < final["plain"] - 0.1 and accuracy["residual"] > accuracy["plain"]
    assert final["plain + BN"] < final["residual"]
    assert final["residual + BN"] == min(final.values())
    assert accuracy["residual + BN"] == max(accuracy.values())


def test_gradient_norms_and_feature_spread():
    text = _text()
    norms = dict(re.findall(r"^(plain|residual) +first conv \S+, last conv \S+, last/first (\S+)$",
                            text, re.M))
    assert set(norms) == {"plain", "residual"}
    assert float(norms["plain"]) >= 1e3 and float(norms["residual"]) <= 10
    spread = dict(re.findall(r"^(plain|residual) +spread of the features over 64 digits "
                             r"\(std\): (\S+)$", text, re.M))
    assert float(spread["plain"]) < 1e-6 < 1e-3 < float(spread["residual"])
    ratios = dict(re.findall(r"(plain \+ BN|residual \+ BN) (\d[\d.e+-]*)", text))
    assert all(float(r) <= 10 for r in ratios.values()) and len(ratios) == 2
    he = re.search(r"plain, He initialisation: first conv (\S+), last conv (\S+)$", text, re.M)
    assert he and float(he[2]) / float(he[1]) <= 100


def test_numbers_in_the_prose_are_printed_above_it():
    # decimals, percentages, powers of ten and numbers with thousands separators
    pattern = re.compile(r"\d+(?:\.\d+)?e[+-]\d+|\d+\.\d+%?|\d+%|\d{1,3}(?:,\d{3})+")
    all_cells = cells(L09)
    first_code = next(i for i, c in enumerate(all_cells) if c["cell_type"] == "code")
    checked = 0
    for i, cell in enumerate(all_cells[first_code:], start=first_code):
        if cell["cell_type"] != "markdown":
            continue
        printed = "".join(outputs_text(c) for c in all_cells[:i] if c["cell_type"] == "code")
        quoted = pattern.findall(source(cell))
        missing = [n for n in quoted  # the whole number, not a part of a longer one
                   if not re.search(rf"(?<![\d.,]){re.escape(n)}(?!\d|[.,]\d)", printed)]
        assert not missing, f"cell {i} quotes {missing}, which no cell above printed"
        checked += len(quoted)
    assert checked >= 15, "the prose should quote the measured results"
    dense_layer = "Linear(in_features=25088, out_features=4096"  # quoted as 25088 and 4096
    assert dense_layer in _text()




def test_no_answer_is_printed_before_its_exercise():
    answers = {
        1: cnnlab.count_params(nn.Conv2d(48, 96, 3, groups=4)),
        2: tuple(cnnlab.ResidualBlock(24, 48, stride=2)(torch.zeros(4, 24, 15, 15)).shape),
        3: (cnnlab.conv2d_mult_adds(32, 32, 3, 8, groups=32, bias=False)
            + cnnlab.conv2d_mult_adds(32, 64, 1, 8)),
    }
    all_cells = cells(L09)
    for number, value in answers.items():
        at = next(i for i, c in enumerate(all_cells) if c["cell_type"] == "markdown"
                  and f"**Exercise {number}" in source(c))
        before = "".join(outputs_text(c) for c in all_cells[:at] if c["cell_type"] == "code")
        forms = [str(value)] + ([f"{value:,}"] if isinstance(value, int) else [])
        assert not [f for f in forms if f in before], f"exercise {number}'s answer is printed"


def test_no_errors_and_small_outputs():
    for cell in code_cells(L09):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", source(cell)[:200]
            assert len(json.dumps(out)) < 1_000_000
        assert not cell.get("metadata", {}).get("tags"), "no output of this lesson is unstable"
    assert (NOTEBOOKS / L09).stat().st_size < 2_000_000
