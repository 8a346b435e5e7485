"""Lessons 04 and 05 keep the facts of CURRICULUM.md sections 4-6 in their stored outputs.

nbval checks that re-running a notebook reproduces its stored outputs; these tests check that
the stored outputs are the right ones, so a regenerated notebook cannot silently drop a fact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

FACTS = {
    "04_channels_and_layout.ipynb": [
        "all equal: True",                       # channel sum = cnnlab.conv2d = F.conv2d
        "weight: torch.Size([5, 3, 2, 2])",      # Conv2d(3, 5, 2)
        "16 x 3 = 48 kernels of 3x3, grouped into 16 filters",
        "(266, 400, 3) uint8",                   # a PNG is HWC
        "RGBA: (266, 400, 4)",
        "HWC (266, 400, 3) -> CHW (3, 266, 400) -> NCHW (1, 3, 266, 400)",
        "unbatched: (7, 262, 396)  batched: (1, 7, 262, 396)",
        "RuntimeError: Given groups=1",          # torch's error for an HWC photo
        "It looks like an HWC image",            # cnnlab's teaching error
        "nn.Conv2d: (10, 6, 28, 28)  F.conv2d: (10, 6, 28, 28)",
        "module and function agree: True",
        "per-pixel Linear agrees: True",
    ],
    "05_pooling_and_parameters.ipynb": [
        "[[3 7]\n [4 4]]",
        "[[7 9]\n [8 4]]",
        "MaxPool2d(2) parameters: []",
        "(4, 8, 32, 32) -> (4, 8, 16, 16)",
        "pooled maps equal:   True",
        "Conv2d(1, 3, 3): weight 27 + bias 3 = 30; formula: 30",
        "Conv2d(3, 3, 3): weight 81 + bias 3 = 84; formula: 84",
        "100x100: conv layers 86, linear layer 20,001",
        "200x200: conv layers 86, linear layer 80,001",
        "Total params: 20,087",
        "Total params: 1,337",
        "[1, 1250]",
        "counted:    MLP 4,238,337, CNN 49,519",
        "pool -> (5, 14, 14) (980 units)",
        "pool -> (10, 5, 5) (250 units)",
    ],
}


def _cells(name: str) -> list[dict]:
    return [c for c in json.loads((NOTEBOOKS / name).read_text())["cells"]
            if c["cell_type"] == "code"]


def _stored_text(name: str) -> str:
    parts = []
    for cell in _cells(name):
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_facts_are_in_stored_outputs(name: str) -> None:
    text = _stored_text(name)
    missing = [fact for fact in FACTS[name] if fact not in text]
    assert not missing, f"{name}: stored outputs lack {missing}; re-run the notebook top to bottom"


@pytest.mark.parametrize("name", sorted(FACTS))
def test_saved_from_one_clean_run(name: str) -> None:
    counts = [c["execution_count"] for c in _cells(name)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{name}: execution counts {counts}; save it from one top-to-bottom run "
        "(jupyter nbconvert --to notebook --execute --inplace)")


@pytest.mark.parametrize("name", sorted(FACTS))
def test_no_figure_repr_twice(name: str) -> None:
    # nbval runs cells with store_history=False, so IPython ignores a trailing ';' there and a
    # returned Figure would be shown twice: assign the figure (fig = cnnlab.plot_...(...)).
    for cell in _cells(name):
        last = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        last = last.strip().splitlines()[-1] if last.strip() else ""
        assert not (last.startswith("cnnlab.plot_") and last.endswith(";")), (
            f"{name}: '{last}' relies on ';', which nbval ignores; write fig = {last[:-1]}")
