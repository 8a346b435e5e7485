"""Lesson 06 keeps its facts and its measured experiments in its stored outputs.

nbval proves that a re-run reproduces the stored outputs; these tests prove that the stored
outputs hold the right facts, that the shift experiment is not confounded (every network
learned, three seeds each, the tables agree), that the prose claims only what the averaged
numbers show, and that the exercises follow the course's layout.
"""

from __future__ import annotations

import re
from pathlib import Path

from notebook_text import cells, missing_facts, outputs_text, source, stored_text

L06 = "06_building_a_cnn.ipynb"
FACTS = [
    "channel 0 after BatchNorm (train mode): mean 0.000, std 1.000",
    "eval mode: image 0 alone vs inside its batch, largest difference 0.000",
    "MLP parameters: 17098",
    "CNN parameters: 6274",
    "CNN         6,274",
    "test accuracy, mean of 3 seeds",
    "shift (pixels)         0     2     4     6     8    10    12   params",
    "lowest and highest of the 3 seeds",
    "largest difference, conv(shift(x)) vs shift(conv(x)): 0.0",
    "Total params: 1,610,258",
    "Total params: 24,954",
]
LABELS = ("MLP", "CNN + Flatten", "CNN + global max", "CNN + global avg")
GLOBAL = ("CNN + global max", "CNN + global avg")
SHIFTS = (0, 2, 4, 6, 8, 10, 12)


def _row(text: str, label: str) -> list[float]:
    """The mean percentages on the line of the shift table that starts with ``label``."""
    line = next(line for line in text.splitlines()
                if line.startswith(f"{label} ") and len(re.findall(r"\d+%", line)) == 7)
    return [float(v) for v in re.findall(r"(\d+)%", line)]


def _ranges(text: str, label: str) -> list[tuple[float, float]]:
    """The (lowest, highest) seed on the line of the range table that starts with ``label``."""
    line = next(line for line in text.splitlines()
                if line.startswith(f"{label} ") and len(re.findall(r"\d+%-\d+%", line)) == 7)
    return [(float(a), float(b)) for a, b in re.findall(r"(\d+)%-(\d+)%", line)]


def _before_remeasuring(text: str, label: str) -> tuple[float, float]:
    """Unshifted accuracy with BatchNorm's running averages, and after re-measuring them."""
    table = text[text.index("unshifted test accuracy, mean of 3 seeds"):]
    line = next(line for line in table.splitlines()
                if line.startswith(f"{label} ") and len(re.findall(r"\d+%", line)) == 2)
    before, after = re.findall(r"(\d+)%", line)
    return float(before), float(after)


def _prose() -> str:
    return next(source(c) for c in cells(L06) if c["cell_type"] == "markdown"
                and source(c).startswith("What the tables show"))


def test_facts_are_in_stored_outputs():
    assert not missing_facts(L06, FACTS), "re-run the lesson top to bottom"


def test_shift_experiment_is_stored_and_not_confounded():
    text = stored_text(L06)
    rows = {label: _row(text, label) for label in LABELS}
    ranges = {label: _ranges(text, label) for label in LABELS}
    # every model learned the unshifted digits, so a drop under shifts is about position
    assert min(values[0] for values in rows.values()) >= 70, rows
    # the two tables describe the same runs: each mean lies between its lowest and highest seed
    for label in LABELS:
        for mean, (low, high) in zip(rows[label], ranges[label], strict=True):
            assert low <= mean <= high, (label, mean, low, high)
    # the unshifted column is the "re-measured" column of the BatchNorm table
    for label in LABELS:
        assert _before_remeasuring(text, label)[1] == rows[label][0], label
    source_code = "".join(source(c) for c in cells(L06) if c["cell_type"] == "code")
    assert "seeds = (0, 1, 2)" in source_code and "torch.manual_seed(seed)" in source_code
    table_at = next(i for i, c in enumerate(cells(L06)) if "shift (pixels)" in outputs_text(c))
    before = "".join(source(c) for c in cells(L06)[:table_at] if c["cell_type"] == "markdown")
    assert "chance" not in before.split("## 5.")[-1], (
        "the prose before the experiment must not state its outcome")


def test_prose_claims_only_what_the_averaged_numbers_show():
    text, prose = stored_text(L06), " ".join(_prose().split())
    rows = {label: _row(text, label) for label in LABELS}
    ranges = {label: _ranges(text, label) for label in LABELS}
    first = [rows[label][0] for label in LABELS]
    assert f"({min(first):.0f}% to {max(first):.0f}% on average)" in prose
    far = [v for label in ("MLP", "CNN + Flatten") for s, v in zip(SHIFTS, rows[label],
                                                                   strict=True) if s >= 6]
    assert max(far) <= 25, "the MLP and the Flatten head should be near chance from 6 pixels"
    assert f"between {min(far):.0f}% and {max(far):.0f}% on average" in prose
    pooled = [v for label in GLOBAL for v in rows[label]]
    worst = min(low for label in GLOBAL for low, _ in ranges[label])
    assert min(pooled) >= 70 and worst >= 50
    assert f"between {min(pooled):.0f}% and {max(pooled):.0f}% on average at every shift" in prose
    assert f"never falls below {worst:.0f}%" in prose
    # "max and average pooling do equally well": close means, overlapping seeds, every shift
    gap = max(abs(a - b) for a, b in zip(*(rows[label] for label in GLOBAL), strict=True))
    assert gap <= 5 and f"differ by at most {gap:.0f} points" in prose
    for (low_a, high_a), (low_b, high_b) in zip(*(ranges[label] for label in GLOBAL),
                                                strict=True):
        assert low_a <= high_b and low_b <= high_a, "the ranges should overlap at every shift"
    before = _before_remeasuring(text, "CNN + global avg")[0]
    assert f"recognised only {before:.0f}% of the unshifted digits" in prose
    # the 4-pixel rhythm of the two poolings
    for label in GLOBAL:
        by_shift = dict(zip(SHIFTS, rows[label], strict=True))
        assert min(by_shift[s] for s in (0, 4, 8, 12)) > max(by_shift[s] for s in (2, 6, 10))


def test_numbers_in_the_prose_are_printed_above_it():
    all_cells = cells(L06)
    at = next(i for i, c in enumerate(all_cells)
              if c["cell_type"] == "markdown" and source(c).startswith("What the tables show"))
    printed = "".join(outputs_text(c) for c in all_cells[:at] if c["cell_type"] == "code")
    numbers = [n for n in re.findall(r"(\d+(?:\.\d+)?)%", source(all_cells[at])) if n != "10"]
    assert numbers, "the prose should quote the measured accuracies"
    missing = [n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}%", printed)]
    assert not missing, f"the prose quotes {missing}%, which no cell above printed"


def test_readme_quotes_the_stored_shift_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    text = stored_text(L06)
    for label in LABELS:
        quoted = next(line for line in readme.splitlines() if line.startswith(f"| {label} |")
                      and line.count("%") == 7)
        assert [float(v) for v in re.findall(r"(\d+)%", quoted)] == _row(text, label), label
        ranges = [(float(a), float(b)) for a, b in re.findall(r"\((\d+)-(\d+)\)", quoted)]
        assert ranges == _ranges(text, label), label
