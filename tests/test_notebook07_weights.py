"""Lesson 07 must pass strict nbval both with and without the ImageNet weights on disk.

The plain notebook run (``pytest notebooks/07_alexnet_features.ipynb``) covers whichever case
this machine is in. These tests run the notebook under nbval in a subprocess for the other
case(s), pointing ``TORCH_HOME`` at a temporary folder:

- "with weights": the folder holds a fake ``alexnet-owt-7be5be79.pth`` (seeded random values),
  so ``load_alexnet("auto")`` takes the ImageNet branch;
- "without weights": the folder is empty (only needed when this machine has the real file,
  otherwise the plain notebook run already covers it).

Only cells tagged ``nbval-ignore-output`` may depend on the weights (which network is shown,
its top classes, its filters' roughness, the transfer accuracies of learned and random
features); every other output (shapes, parameter counts, the raw-pixel baseline, the
exercises) must match the stored one.
Slow by nature (one full notebook run, 10-60 s depending on the machine's load).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab import paths
from cnnlab.alexnet import load_alexnet, weights_filename, weights_path

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
