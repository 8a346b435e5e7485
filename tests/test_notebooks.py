"""Every notebook is saved the way CI checks it, and keeps the curriculum's facts in its outputs.

nbval proves that re-running a notebook reproduces its stored outputs; these tests prove that
the stored outputs are the right ones (CURRICULUM.md), so a regenerated notebook cannot silently
drop a fact, and that each notebook was saved from one clean run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(p.relative_to(NOTEBOOKS).as_posix() for p in NOTEBOOKS.rglob("*.ipynb")
             if ".ipynb_checkpoints" not in p.parts)

FACTS = {
    "01_from_dense_to_convolution.ipynb": [
        "formula 20,000,000, real layer 20,000,000",
        "3*32*32*100 = 307,200 (real layer: 307,200)",
        "16*3*3*3    = 432 (real layer: 432)",
        "(16*4 + 4) + (4*1 + 1) = 73; real model: 73",
        "(4*4 + 4) + (4*1 + 1) = 25; real model: 25",
        "conv(shifted) == shift(conv(image)): True",
    ],
    "02_the_convolution_operation.ipynb": [
        "output[0, 0] written out:         12",
        "by hand:             [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
        "cnnlab.conv2d_loops: [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
        "F.conv2d:            [[12, 12, 17], [10, 17, 19], [9, 6, 14]]",
        "ours with flipped kernel equals convolve2d: True",
        "conv2d_loops and conv2d agree with F.conv2d",
    ],
    "03_padding_and_stride.ipynb": [
        "3x3 kernel on 4x4: formula 2, nn.Conv2d 2",
        "51x51 kernel on 100x100: formula 50, nn.Conv2d 50",
        "51x51 kernel on 100x100 with padding 25: formula 100 | nn.Conv2d 100",
        "formula: 26 | nn.Conv2d: 26",
        "padding 0: formula (32, 7, 124, 124), nn.Conv2d (32, 7, 124, 124)",
        "padding 2: formula (32, 7, 128, 128), nn.Conv2d (32, 7, 128, 128)",
        "formula (16, 1, 28, 28), nn.Conv2d (16, 1, 28, 28)",
        "formula (16, 5, 30, 30), nn.Conv2d (16, 5, 30, 30)",
    ],
    "04_channels_and_layout.ipynb": [
        "all equal: True",
        "weight: torch.Size([5, 3, 2, 2])",
        "16 x 3 = 48 kernels of 3x3, grouped into 16 filters",
        "(266, 400, 3) uint8",
        "RGBA: (266, 400, 4)",
        "HWC (266, 400, 3) -> CHW (3, 266, 400) -> NCHW (1, 3, 266, 400)",
        "RuntimeError: Given groups=1",
        "It looks like an HWC image",
        "nn.Conv2d: (10, 6, 28, 28)  F.conv2d: (10, 6, 28, 28)",
        "module and function agree: True",
        "per-pixel Linear agrees: True",
    ],
    "05_pooling_and_parameters.ipynb": [
        "[[3 7]\n [4 4]]",
        "[[7 9]\n [8 4]]",
        "MaxPool2d(2) parameters: []",
        "Conv2d(1, 3, 3): weight 27 + bias 3 = 30; formula: 30",
        "Conv2d(3, 3, 3): weight 81 + bias 3 = 84; formula: 84",
        "Total params: 20,087",
        "Total params: 1,337",
        "counted:    MLP 4,238,337, CNN 49,519",
        "pool -> (5, 14, 14) (980 units)",
        "pool -> (10, 5, 5) (250 units)",
    ],
    "06_building_a_cnn.ipynb": [
        "CNN parameters: 24170",
        "CNN         24,170           98.9%",
        "largest difference, conv(shift(x)) vs shift(conv(x)): 0.0",
    ],
    "07_alexnet_features.ipynb": [
        "total                                                                                     "
        "61,100,840",
        "first conv: (1, 64, 86, 51)  predicted: (1, 64, 86, 51)",
        "features:   (1, 256, 9, 5)  predicted: (1, 256, 9, 5)",
    ],
}


def _notebook(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text())


def _code_cells(name: str) -> list[dict]:
    return [c for c in _notebook(name)["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _stored_text(name: str) -> str:
    parts = []
    for cell in _code_cells(name):
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def test_every_lesson_is_listed():
    lessons = [name for name in ALL if re.match(r"\d\d_", name)]
    assert lessons == sorted(FACTS), "add the new lesson's facts to FACTS"


@pytest.mark.parametrize("name", sorted(FACTS))
def test_facts_are_in_stored_outputs(name: str) -> None:
    text = _stored_text(name)
    missing = [fact for fact in FACTS[name] if fact not in text]
    assert not missing, f"{name}: stored outputs lack {missing}; re-run the notebook top to bottom"


@pytest.mark.parametrize("name", ALL)
def test_saved_from_one_clean_run(name: str) -> None:
    counts = [c["execution_count"] for c in _code_cells(name) if _source(c).strip()]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{name}: execution counts {counts}; save it from one top-to-bottom run "
        "(jupyter nbconvert --to notebook --execute --inplace)")


@pytest.mark.parametrize("name", ALL)
def test_kernelspec_and_relative_paths(name: str) -> None:
    assert _notebook(name)["metadata"]["kernelspec"]["name"] == "python3"
    for cell in _notebook(name)["cells"]:
        found = re.findall(r"""["'](/(?:root|home|work|tmp|Users)/[^"']*)""", _source(cell))
        assert not found, f"{name}: absolute path {found} in a cell; use a relative path"


@pytest.mark.parametrize("name", ALL)
def test_first_code_cell_imports_and_seeds(name: str) -> None:
    first = next(_source(c) for c in _code_cells(name) if "import" in _source(c))
    assert _source(_code_cells(name)[0]) == first or name.startswith("labs/"), (
        f"{name}: the first code cell should hold the imports")
    if "torch" in first:
        assert "manual_seed" in first, f"{name}: seed torch in the first code cell"


@pytest.mark.parametrize("name", ALL)
def test_ignored_outputs_give_a_reason(name: str) -> None:
    for cell in _code_cells(name):
        lines = _source(cell).splitlines()
        if lines and lines[0].strip() == "# NBVAL_IGNORE_OUTPUT":
            assert len(lines) > 1 and lines[1].lstrip().startswith("#"), (
                f"{name}: say why the output is ignored, in a comment on the line after "
                f"the marker:\n{_source(cell)[:200]}")


@pytest.mark.parametrize("name", ALL)
def test_no_figure_left_to_a_semicolon(name: str) -> None:
    # nbval runs cells with store_history=False, so IPython ignores a trailing ';' there and a
    # returned Figure would be shown twice: assign it (fig = cnnlab.plot_...(...)).
    for cell in _code_cells(name):
        lines = _source(cell).strip().splitlines()
        last = lines[-1] if lines else ""
        assert not (last.startswith("cnnlab.plot_") and last.endswith(";")), (
            f"{name}: '{last}' relies on ';', which nbval ignores; write fig = {last[:-1]}")
