"""Lesson 06 keeps its facts and its measured experiments in its stored outputs.

nbval proves that a re-run reproduces the stored outputs; these tests prove that the stored
outputs hold the right facts, that the shift experiment is not confounded, and that the prose
quotes only numbers that a cell above it printed.
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
    "shift (pixels)         0     2     4     6     8    10    12   params",
    "largest difference, conv(shift(x)) vs shift(conv(x)): 0.0",
    "Total params: 1,610,258",
    "Total params: 24,954",
]


def _row(text: str, label: str) -> list[float]:
    """The percentages on the line of the shift table that starts with ``label``."""
    line = next(line for line in text.splitlines()
                if line.startswith(label) and len(re.findall(r"\d+%", line)) == 7)
    return [float(v) for v in re.findall(r"(\d+)%", line)]


def test_facts_are_in_stored_outputs():
    assert not missing_facts(L06, FACTS), "re-run the lesson top to bottom"


def test_shift_experiment_is_stored_and_not_confounded():
    text = stored_text(L06)
    rows = {label: _row(text, label) for label in
            ("MLP ", "CNN + Flatten", "CNN + global max", "CNN + global avg")}
    # every model learned the unshifted digits, so a drop under shifts is about position
    assert min(values[0] for values in rows.values()) >= 70, rows
    table_at = next(i for i, c in enumerate(cells(L06)) if "shift (pixels)" in outputs_text(c))
    before = "".join(source(c) for c in cells(L06)[:table_at] if c["cell_type"] == "markdown")
    assert "chance" not in before.split("## 5.")[-1], (
        "the prose before the experiment must not state its outcome")


def test_numbers_in_the_prose_are_printed_above_it():
    all_cells = cells(L06)
    at = next(i for i, c in enumerate(all_cells)
              if c["cell_type"] == "markdown" and source(c).startswith("What the table shows"))
    printed = "".join(outputs_text(c) for c in all_cells[:at] if c["cell_type"] == "code")
    numbers = [n for n in re.findall(r"(\d+(?:\.\d+)?)%", source(all_cells[at])) if n != "10"]
    assert numbers, "the prose should quote the measured accuracies"
    missing = [n for n in numbers if f"{n}%" not in printed]
    assert not missing, f"the prose quotes {missing}%, which no cell above printed"


def test_readme_quotes_the_stored_shift_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    text = stored_text(L06)
    for label in ("MLP", "CNN + Flatten", "CNN + global max", "CNN + global avg"):
        quoted = next(line for line in readme.splitlines() if line.startswith(f"| {label} |")
                      and line.count("%") == 7)
        assert [float(v) for v in re.findall(r"(\d+)%", quoted)] == _row(text, label), label
