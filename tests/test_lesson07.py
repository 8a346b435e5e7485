"""Lesson 07 keeps its facts in its stored outputs and passes nbval with or without the weights.

The facts: AlexNet's sizes and channel history, one plain sentence saying which network's
filters are shown, how the stand-in learned (from its record), no classification made with
random weights, the filter counts and the transfer-learning accuracies quoted in the prose, and
exercises in the course's layout. The weights: the plain notebook run
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
from notebook_text import (
    cells,
    figures,
    missing_facts,
    outputs_text,
    png_size,
    source,
    stored_text,
)

from cnnlab import paths
from cnnlab.alexnet import load_alexnet, weights_filename, weights_path
from cnnlab.first_layer import (
    FirstLayerNet,
    colour_share,
    load_first_layer_net,
    load_first_layer_record,
    orientation_strength,
    roughness,
)

L07 = "07_alexnet_features.ipynb"
FACTS = [
    "Total params: 61,100,840",
    "total       61,100,840",
    "first conv: (1, 64, 86, 51)  predicted: (1, 64, 86, 51)",
    "features:   (1, 256, 9, 5)  predicted: (1, 256, 9, 5)",
    "learned maps (1, 64, 86, 51)  random maps (1, 64, 86, 51)",
    "first stage, one 64x64 image: (1, 64, 7, 7)",
    "raw pixels + head:",
]


def _markdown() -> str:
    return " ".join("".join(source(c) for c in cells(L07) if c["cell_type"] == "markdown").split())


def _cell_printing(text: str) -> dict:
    return next(c for c in cells(L07) if c["cell_type"] == "code" and text in outputs_text(c))


def test_facts_are_in_stored_outputs():
    assert not missing_facts(L07, FACTS), "re-run the lesson top to bottom"


def test_one_plain_sentence_says_which_network_is_shown():
    text = stored_text(L07)
    assert len(re.findall(r"^Learned filters below: ", text, re.M)) == 1, text[:300]
    assert "Warning" not in text, "say which network is shown once, not in a warning"


def test_channels_of_the_three_alexnets_are_told_apart():
    text = _markdown()
    for fact in ("96-256-384-384-256", "64-192-384-384-256", "64-192-384-256-256",
                 "*based on* that 2014 network", "cuda-convnet2", "463 and 704"):
        assert fact in text, fact
    assert "It is the variant of" not in text


def test_the_stand_in_is_described_from_its_record():
    record = load_first_layer_record()
    text = stored_text(L07)
    assert f"photos: {', '.join(record['data'])}\n" in text
    seen = record["epochs"] * record["steps_per_epoch"] * record["images_per_step"]
    assert f"turned crops seen in training: {seen:,}\n" in text
    assert f"{record['held_out_rotation_accuracy']:.1%} (guessing: 25%)" in text
    prose = _markdown()
    assert "**self-supervised**" in prose and "without labels" in prose
    assert f"{len(record['data'])} photos" in stored_text(L07)  # "trained ... on 5 photos"
    for step in ("0, 90, 180 or 270 degrees", "the labels come out of the data"):
        assert step in prose, step


def test_no_classification_is_stored_from_random_weights():
    cell = next(c for c in cells(L07) if c["cell_type"] == "code"
                and "probabilities = model(x)" in source(c))
    code = source(cell)
    # the network classifies only in the ImageNet branch
    assert code.index("if have_imagenet:") < code.index("model(x)") < code.index("else:")
    printed = outputs_text(cell)
    assert "%" not in printed and "cnnlab download alexnet" in printed, printed


def _count_table() -> dict[str, tuple[int, int]]:
    text = outputs_text(_cell_printing("of the 64 filters"))
    rows = {}
    for line in text.splitlines()[1:]:
        found = re.match(r"(\S.*?)\s+(\d+)\s+(\d+)$", line)
        if found:
            rows[found[1]] = (int(found[2]), int(found[3]))
    return rows


def test_filter_counts_are_recomputed_and_quoted():
    # the stored run shows the stand-in; rebuild its learned and random twins as the lesson does
    with torch.random.fork_rng():
        torch.manual_seed(0)
        learned = load_first_layer_net().features[0].weight.detach()
        random = FirstLayerNet().features[0].weight.detach()
    expected = {}
    for name, weight in (("learned", learned), ("random", random)):
        smooth = roughness(weight) < 0.5
        expected[name] = (int(smooth.sum()),
                          int((smooth & (orientation_strength(weight) > 0.5)).sum()),
                          int((smooth & (colour_share(weight) > 0.5)).sum()))
    rows = _count_table()
    assert list(rows) == ["smooth (roughness below 0.5)", "oriented edges or bars",
                          "colour filters"]
    assert tuple(learned_n for learned_n, _ in rows.values()) == expected["learned"]
    assert tuple(random_n for _, random_n in rows.values()) == expected["random"]
    smooth, oriented, colour = expected["learned"]
    prose = _markdown()
    assert (f"all {smooth} learned filters are smooth, {oriented} of them are oriented edges or "
            f"bars, and only {colour} are colour filters") in prose
    assert expected["random"][0] == 0 and "none of the 64 random filters is smooth" in prose
    assert colour < oriented, "the prose says: many edge detectors, few colour ones"
    medians = (f"median roughness: learned {roughness(learned).median():.2f}, "
               f"random {roughness(random).median():.2f}")
    assert medians in stored_text(L07)
    assert "colour blobs" not in prose


def test_learned_and_random_are_shown_at_the_same_count_and_size():
    shown = [out for c in cells(L07) if c["cell_type"] == "code" for out in figures(c)]
    alts = [" ".join("".join(out["data"]["text/plain"]).split()) for out in shown]
    layouts = ["64 convolution filters of shape 3x11x11 in 8 rows of 8",
               "64 feature maps of 86x51 in 8 rows of 8"]
    for layout in layouts:  # learned, then random: the same grid at the same pixel size
        pair = [out for out, alt in zip(shown, alts, strict=True) if alt.startswith(layout)]
        assert len(pair) == 2, alts
        assert png_size(pair[0]) == png_size(pair[1])


def test_transfer_keeps_the_first_stage_and_says_so():
    text = stored_text(L07)
    assert "layers kept: Conv2d, ReLU, MaxPool2d | features per image: 64" in text
    assert "`features[:3]`" in _markdown()




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
