"""Lessons 06 and 07 keep their facts in their stored outputs, and store what students should see.

nbval proves that re-running a lesson reproduces its stored outputs; these tests prove that the
stored outputs hold the right facts (the curriculum's numbers, the measured experiments), that
exercises are stored unanswered with their solutions collapsed, and that nothing meant for the
test harness shows to students.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
L06, L07 = "06_building_a_cnn.ipynb", "07_alexnet_features.ipynb"
INSTALL_CELL = (
    'import importlib.util, subprocess, sys; _ = importlib.util.find_spec("cnnlab") or '
    'subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "cnnlab"])  '
    "# hosted runtimes (Colab, Kaggle): installs cnnlab first, see the README"
)

FACTS = {
    L06: [
        "channel 0 after BatchNorm (train mode): mean -0.000, std 0.999",
        "eval mode: image 0 alone vs inside its batch, largest difference 0.000",
        "MLP parameters: 17098",
        "CNN parameters: 6274",
        "CNN         6,274",
        "shift (pixels)         0     2     4     6     8    10    12   params",
        "largest difference, conv(shift(x)) vs shift(conv(x)): 0.0",
        "Total params: 1,610,258",
        "Total params: 24,954",
    ],
    L07: [
        "Total params: 61,100,840",
        "total       61,100,840",
        "first conv: (1, 64, 86, 51)  predicted: (1, 64, 86, 51)",
        "features:   (1, 256, 9, 5)  predicted: (1, 256, 9, 5)",
        "learned maps (1, 64, 86, 51)  random maps (1, 64, 86, 51)",
        "Learned filters below: cnnlab's small network",
        "raw pixels + head:",
    ],
}


def _cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / name).read_text())["cells"]


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


def _code(name: str) -> list[dict]:
    return [c for c in _cells(name) if c["cell_type"] == "code"]


def _row(text: str, label: str) -> list[float]:
    """The percentages on the line of the shift table that starts with ``label``."""
    line = next(line for line in text.splitlines()
                if line.startswith(label) and len(re.findall(r"\d+%", line)) == 7)
    return [float(v) for v in re.findall(r"(\d+)%", line)]


@pytest.mark.parametrize("name", [L06, L07])
def test_facts_are_in_stored_outputs(name):
    text = "".join(_text(c) for c in _code(name))
    missing = [fact for fact in FACTS[name] if fact not in text]
    assert not missing, f"{name}: stored outputs lack {missing}; re-run the lesson top to bottom"


def test_lesson06_shift_experiment_is_stored_and_described():
    text = "".join(_text(c) for c in _code(L06))
    rows = {label: _row(text, label) for label in
            ("MLP ", "CNN + Flatten", "CNN + global max", "CNN + global avg")}
    assert all(len(values) == 7 for values in rows.values()), rows
    # every model learned the unshifted digits: the experiment is not confounded
    assert min(values[0] for values in rows.values()) >= 70, rows
    table_at = next(i for i, c in enumerate(_cells(L06)) if "shift (pixels)" in _text(c))
    before = "".join(_source(c) for c in _cells(L06)[:table_at] if c["cell_type"] == "markdown")
    assert "chance" not in before.split("## 5.")[-1], (
        "the prose before the experiment must not state its outcome")


def test_lesson07_transfer_accuracies_are_stored():
    text = "".join(_text(c) for c in _code(L07))
    found = {kind: re.search(rf"{kind} \+ head: +test accuracy ([\d.]+)%", text)
             for kind in ("learned features", "random features", "raw pixels")}
    assert all(found.values()), f"missing transfer results: {found}"


@pytest.mark.parametrize("name", [L06, L07])
def test_install_cell_then_imports(name):
    code = _code(name)
    assert _source(code[0]) == INSTALL_CELL
    assert _text(code[0]) == "", "the install cell must print nothing where cnnlab is installed"
    assert "import torch" in _source(code[1]) and "manual_seed" in _source(code[1])


@pytest.mark.parametrize("name", [L06, L07])
def test_kernelspec_matches_jupyterlab(name):
    kernelspec = json.loads((NOTEBOOKS / name).read_text())["metadata"]["kernelspec"]
    assert kernelspec == {"display_name": "Python 3 (ipykernel)", "language": "python",
                          "name": "python3"}


@pytest.mark.parametrize("name", [L06, L07])
def test_no_harness_jargon_for_students(name):
    for cell in _cells(name):
        assert "NBVAL_" not in _source(cell).upper(), _source(cell)[:120]
        assert "(not compared" not in _source(cell)


@pytest.mark.parametrize("name", [L06, L07])
def test_printed_lines_fit_the_page(name):
    for cell in _code(name):
        long = [line for line in _text(cell).splitlines()
                if len(line) > 100 and "Warning" not in line]
        assert not long, f"{name}: printed lines over 100 characters: {long[:2]}"


BAR_XFAIL = pytest.mark.xfail(
    reason="cnnlab.fit's tqdm.auto widget stores its first state as text/plain ('0%| 0/6'); "
           "fit needs a bar whose stored text is the finished one (asked of train.py's owner)")


@pytest.mark.parametrize("name", [pytest.param(L06, marks=BAR_XFAIL), L07])
def test_stored_progress_bars_are_finished(name):
    for cell in _code(name):
        for out in cell.get("outputs", []):
            plain = "".join(out.get("data", {}).get("text/plain", ""))
            assert not re.search(r"\b0%\|", plain), f"{name}: a stored bar reads {plain!r}"


@pytest.mark.parametrize("name", [L06, L07])
def test_exercises_start_unanswered_with_collapsed_solutions(name):
    code = _code(name)
    solutions = [i for i, c in enumerate(code) if _source(c).startswith("# Solution")]
    assert len(solutions) >= 4, f"{name}: expected at least 4 exercises"
    for i in solutions:
        exercise, solution = code[i - 1], code[i]
        assert re.search(r"^answer_\w+ = \.\.\.", _source(exercise), re.M), _source(exercise)
        assert "not answered yet" in _text(exercise)
        assert solution["metadata"].get("jupyter", {}).get("source_hidden") is True
        verdicts = _text(solution)
        assert "correct" in verdicts and "not yet" not in verdicts, verdicts


@pytest.mark.parametrize(("name", "opening", "chance"), [
    (L06, "What the table shows", "10"),
    (L07, "Read the three accuracies", "25"),
])
def test_numbers_in_the_prose_are_printed_above_it(name, opening, chance):
    cells = _cells(name)
    at = next(i for i, c in enumerate(cells)
              if c["cell_type"] == "markdown" and _source(c).startswith(opening))
    printed = "".join(_text(c) for c in cells[:at] if c["cell_type"] == "code")
    numbers = [n for n in re.findall(r"(\d+(?:\.\d+)?)%", _source(cells[at])) if n != chance]
    assert numbers, "the prose should quote the measured accuracies"
    missing = [n for n in numbers if f"{n}%" not in printed]
    assert not missing, f"{name}: the prose quotes {missing}%, which no cell above printed"
