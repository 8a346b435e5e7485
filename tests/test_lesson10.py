"""Lesson 10 keeps its facts, its identities and its augmentation experiment in its outputs.

nbval proves that a re-run reproduces the stored outputs; these tests prove that the stored
outputs hold the right facts (computed here from the formulas, not copied), that the exact
identities of the lesson really printed equal numbers, that the prose quotes only numbers a
cell above it printed, that the augmentation table says what the prose claims, and that the
exercises follow the course's layout without giving answers away early.
"""

from __future__ import annotations

import re

from notebook_text import cells, code_cells, figures, outputs_text, source, stored_text

import cnnlab

L10 = "10_what_a_cnn_looks_at.ipynb"
SHIFTS = list(range(0, 13, 2))


def _flat(text: str) -> str:
    return " ".join(text.split())


def _markdown(predicate) -> list[tuple[int, str]]:
    return [(i, source(c)) for i, c in enumerate(cells(L10))
            if c["cell_type"] == "markdown" and predicate(source(c))]


def _printed_before(index: int) -> str:
    return "".join(outputs_text(c) for c in cells(L10)[:index] if c["cell_type"] == "code")


def test_facts_are_in_stored_outputs():
    rows = cnnlab.conv_output_size(16, 4, 1)  # 4x4 occlusion patch, stride 1, 16x16 digit
    layer6 = cnnlab.receptive_field([(3, 1), (2, 2), (3, 1)])
    layer10 = cnnlab.receptive_field([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)])
    facts = [
        "10  ReLU              (1, 32, 4, 4)",
        "11  AdaptiveAvgPool2d (1, 32, 1, 1)",
        "13  Linear            (1, 10)",
        "1,150 training, 287 validation, 360 test images",
        "cnnlab.saliency gives the same numbers: True",
        f"map shape: ({rows}, {rows}) | forward passes: {rows * rows + 1}",
        "CAM shape: (4, 4)",
        "cnnlab.class_activation_map agrees: True",
        f"receptive field of a layer-6 unit: {layer6} pixels",
        f"receptive field of a layer-10 unit: {layer10} pixels",
        f"patches: (8, 1, {layer6}, {layer6})",
        "shift (pixels)" + " " * 10 + "".join(f"{s:>6}" for s in SHIFTS),
    ]
    text = stored_text(L10)
    missing = [fact for fact in facts if fact not in text]
    assert not missing, f"stored outputs lack {missing}; re-run the lesson top to bottom"


def _pair(pattern: str) -> tuple[str, str]:
    found = re.search(pattern, stored_text(L10))
    assert found, f"no stored line matches {pattern!r}"
    return found.group(1), found.group(2)


def test_the_exact_identities_printed_equal_numbers():
    # a CAM's mean plus the bias is the logit (section 4)
    logit, cam = _pair(r"logit (-?[\d.]+) \| CAM mean \+ bias (-?[\d.]+)")
    assert logit == cam
    # one occlusion entry recomputed by hand (section 3)
    by_hand, in_map = _pair(r"drops by (-?[\d.]+); the map says (-?[\d.]+)")
    assert by_hand == in_map
    # a unit sees only its receptive field (section 6)
    whole, alone = _pair(r"whole image (-?[\d.]+), field only (-?[\d.]+)")
    assert whole == alone


def test_the_network_is_worth_explaining():
    test_acc = float(re.search(r"test accuracy ([\d.]+)%", stored_text(L10)).group(1))
    assert test_acc >= 95.0


def _table() -> dict[str, list[float]]:
    text = stored_text(L10)
    start = text.index("shift (pixels)")
    rows = {}
    for line in text[start:].splitlines()[1:]:
        values = re.findall(r"(\d+)%", line)
        if len(values) != len(SHIFTS):
            break
        rows[line[:24].strip()] = [float(v) for v in values]
    return rows


def test_augmentation_table_supports_the_prose():
    table = _table()
    assert set(table) == {"MLP", "MLP + shifts", "CNN + Flatten", "CNN + Flatten + shifts"}
    mlp, mlp_s = table["MLP"], table["MLP + shifts"]
    cnn, cnn_s = table["CNN + Flatten"], table["CNN + Flatten + shifts"]
    at6 = SHIFTS.index(6)
    # without shifts both collapse to about chance (10%) once the digit moved 6 pixels
    assert mlp[at6] <= 15 and cnn[at6] <= 15
    # with shifts neither collapses anywhere
    assert min(mlp_s) >= 75 and min(cnn_s) >= 85
    # the price at 0 pixels, and the CNN gains more than the MLP
    assert mlp_s[0] < mlp[0] and cnn_s[0] < cnn[0]
    gain = {name: sum(b - a for a, b in zip(plain, aug, strict=True))
            for name, plain, aug in (("mlp", mlp, mlp_s), ("cnn", cnn, cnn_s))}
    assert gain["cnn"] > gain["mlp"] and min(cnn_s) > max(mlp_s)
    # the prose quotes exactly these entries
    (_, prose), = _markdown(lambda s: s.startswith("What the table shows"))
    prose = _flat(prose)

    def pct(value: float) -> str:
        return f"{value:.0f}%"

    for quoted in (f"the MLP gets {pct(mlp[at6])} and the CNN with a `Flatten` head "
                   f"{pct(cnn[at6])}",
                   f"the MLP stays between {pct(min(mlp_s))} and {pct(max(mlp_s))}",
                   f"the CNN between {pct(min(cnn_s))} and {pct(max(cnn_s))}",
                   f"{pct(mlp[0])} -> {pct(mlp_s[0])} for the MLP, {pct(cnn[0])} -> "
                   f"{pct(cnn_s[0])} for the CNN"):
        assert quoted in prose, f"the prose should say {quoted!r}"
    # exercise 4, statement 4, is true by this table
    assert cnn_s[-1] > cnn[-1]


def test_prose_before_the_experiment_does_not_state_its_outcome():
    all_cells = cells(L10)
    start = next(i for i, c in enumerate(all_cells) if "\n## 7." in source(c))
    table = next(i for i, c in enumerate(all_cells) if "shift (pixels)" in outputs_text(c))
    before = "".join(source(c) for c in all_cells[start:table] if c["cell_type"] == "markdown")
    before = before[before.index("## 7."):]
    assert "%" not in before and "chance" not in before.split("**Predict**")[-1]


def test_numbers_in_the_prose_are_printed_above_it():
    checked = 0
    for index, text in _markdown(lambda s: True):
        if text.startswith(("## Wrap-up", "## Exercises", "**Exercise")):
            continue
        printed = _printed_before(index)
        for number in re.findall(r"(\d+(?:\.\d+)?)%", text):
            assert f"{number}%" in printed, f"the prose quotes {number}%, no cell above printed it"
            checked += 1
    assert checked >= 10, "the prose should quote the measured numbers"
    # other quoted results, each with the printed line that backs it
    backed = {"170 here": "forward passes: 170", "sees 18x18 pixels": "layer-10 unit: 18 pixels",
              "its 8x8 receptive field": "layer-6 unit: 8 pixels",
              "all 360 test digits": "360 test images",
              "the runner-up 2 finds": "runner-up classes: [2,",
              "the 5 read as 7s": "5 -> 7"}
    for phrase, line in backed.items():
        (index, _), = _markdown(lambda s, phrase=phrase: phrase in _flat(s))
        assert line in _printed_before(index), f"{phrase!r} is not backed by {line!r} above it"


def test_sections_objectives_and_wrap_up():
    markdown = [source(c) for c in cells(L10) if c["cell_type"] == "markdown"]
    assert "**You will learn to**" in markdown[0] and "**Why this matters.**" in markdown[0]
    heads = [h for m in markdown for h in re.findall(r"^## .*$", m, re.M)]
    assert heads[-3:] == ["## Summary", "## Wrap-up", "## Exercises"]
    numbered = [h for h in heads if re.match(r"## \d\.", h)]
    assert [h[3] for h in numbered] == [str(n) for n in range(1, 8)]
    (wrap,) = [m for m in markdown if m.startswith("## Wrap-up")]
    assert re.findall(r"^- \*\*(\d\d)\*\*", wrap, re.M) == [f"{n:02d}" for n in range(1, 11)]
    flat = _flat(wrap)
    for pointer in ("chapter 8, \"Modern Convolutional Neural Networks\"",
                    "Chapter 14, \"Computer Vision\"", "Transformers for Vision", "cs231n",
                    "CNN architectures", "visualising and understanding", "**detection**",
                    "**segmentation**", "**transfer learning**", "**transformers for vision**"):
        assert pointer in flat, f"the wrap-up should point to {pointer}"
    predicts = sum(m.count("**Predict**") for m in markdown)
    assert predicts >= 6


def test_no_answer_is_printed_before_the_exercises():
    # the layout itself is held for every lesson by tests/test_notebooks.py
    all_cells = cells(L10)
    first = next(i for i, c in enumerate(all_cells)
                 if c["cell_type"] == "markdown" and re.search(r"\*\*Exercise \d", source(c)))
    before = _printed_before(first)
    side = cnnlab.conv_output_size(16, 6, 2)
    for answer in (f"({side}, {side})", f"({28 // 4}, {28 // 4})"):
        assert answer not in before, f"{answer} is printed before the exercise asks for it"


def test_every_figure_has_a_title():
    for cell in code_cells(L10):
        if figures(cell):
            assert "title" in source(cell), f"a figure without a title:\n{source(cell)[:200]}"
