"""Lesson 07 keeps its facts in its stored outputs and passes nbval with or without the weights.

The facts: AlexNet's sizes, one plain sentence saying which network's filters are shown, and
the transfer-learning accuracies quoted in the prose. The weights: the plain notebook run
(``pytest notebooks/07_alexnet_features.ipynb``) covers whichever case this machine is in; the
tests below run the notebook under nbval in a subprocess for the other case(s), pointing
``TORCH_HOME`` at a temporary folder:

- "with weights": the folder holds a fake ``alexnet-owt-7be5be79.pth`` (seeded random values),
  so the lesson takes the ImageNet branch;
- "without weights": the folder is empty (only needed when this machine has the real file,
  otherwise the plain notebook run already covers it).

Only cells tagged ``nbval-ignore-output`` may depend on the weights (which network is shown,
its top classes, its filters' roughness, the transfer accuracies of learned and random
features); every other output (shapes, parameter counts, the raw-pixel baseline, the
exercises) must match the stored one. Slow by nature (one full notebook run, 10-60 s).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from notebook_text import cells, missing_facts, outputs_text, source, stored_text

from cnnlab import paths
from cnnlab.alexnet import load_alexnet, weights_filename, weights_path

L07 = "07_alexnet_features.ipynb"
FACTS = [
    "Total params: 61,100,840",
    "total       61,100,840",
    "first conv: (1, 64, 86, 51)  predicted: (1, 64, 86, 51)",
    "features:   (1, 256, 9, 5)  predicted: (1, 256, 9, 5)",
    "learned maps (1, 64, 86, 51)  random maps (1, 64, 86, 51)",
    "raw pixels + head:",
]


def test_facts_are_in_stored_outputs():
    assert not missing_facts(L07, FACTS), "re-run the lesson top to bottom"


def test_one_plain_sentence_says_which_network_is_shown():
    text = stored_text(L07)
    assert len(re.findall(r"^Learned filters below: ", text, re.M)) == 1, text[:300]
    assert "Warning" not in text, "say which network is shown once, not in a warning"


def test_transfer_accuracies_are_stored_and_quoted_from_the_cells():
    text = stored_text(L07)
    found = {kind: re.search(rf"{kind} \+ head: +test accuracy ([\d.]+)%", text)
             for kind in ("learned features", "random features", "raw pixels")}
    assert all(found.values()), f"missing transfer results: {found}"
    all_cells = cells(L07)
    at = next(i for i, c in enumerate(all_cells) if c["cell_type"] == "markdown"
              and source(c).startswith("Read the three accuracies"))
    printed = "".join(outputs_text(c) for c in all_cells[:at] if c["cell_type"] == "code")
    numbers = [n for n in re.findall(r"(\d+(?:\.\d+)?)%", source(all_cells[at])) if n != "25"]
    assert numbers, "the prose should quote the measured accuracies"
    missing = [n for n in numbers if f"{n}%" not in printed]
    assert not missing, f"the prose quotes {missing}%, which no cell above printed"


NOTEBOOK = "notebooks/07_alexnet_features.ipynb"


def fake_imagenet_state_dict(seed: int = 1) -> dict[str, torch.Tensor]:
    """AlexNet-shaped weights that are not the seed-0 random model.

    The convolutions get small seeded Gaussian values (realistic feature maps, 10 MB); the big
    Linear layers get one random row repeated with ``expand`` so the saved file stays small.
    """
    from torchvision.models import alexnet

    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in alexnet(weights=None).state_dict().items()}
    state = {}
    for key, shape in shapes.items():
        if key.startswith("features."):
            state[key] = 0.05 * torch.randn(shape, generator=generator)
        else:
            state[key] = 0.01 * torch.randn(shape[-1], generator=generator).expand(shape)
    return state


def run_notebook(torch_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TORCH_HOME": str(torch_home)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", NOTEBOOK, "-q", "-p", "no:cacheprovider"],
        cwd=paths.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def test_notebook07_with_imagenet_weights_present(tmp_path, monkeypatch):
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    state = fake_imagenet_state_dict()
    torch.save(state, folder / weights_filename())
    # the notebook's kernel inherits TORCH_HOME: check here that it leads to the ImageNet branch
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = load_alexnet()
    assert model.cnnlab_weights == "imagenet"
    torch.testing.assert_close(model.features[0].weight, state["features.0.weight"])
    result = run_notebook(tmp_path)
    assert result.returncode == 0, (
        "lesson 07 fails nbval when the ImageNet weights are present; an output that depends "
        "on the weights is compared (tag that cell nbval-ignore-output):\n"
        + result.stdout[-6000:] + result.stderr[-2000:])


@pytest.mark.skipif(not weights_path().is_file(),
                    reason="no ImageNet weights here: the plain notebook run covers this case")
def test_notebook07_without_weights(tmp_path):
    result = run_notebook(tmp_path)
    assert result.returncode == 0, (
        "lesson 07 fails nbval without the ImageNet weights:\n"
        + result.stdout[-6000:] + result.stderr[-2000:])
