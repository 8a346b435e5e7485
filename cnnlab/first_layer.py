"""A small network with AlexNet's first layer, trained offline so lesson 07 shows learned filters.

Without the ImageNet weights (no network, a fresh CI runner) AlexNet's first layer is random
noise. This module ships a stand-in that learned its filters from real photos:

- ``FirstLayerNet``: ``features`` starts with AlexNet's first layer, ``Conv2d(3, 64, 11,
  stride=4, padding=2)``, then two smaller convolutions; ``head`` predicts one of 4 rotations.
- ``load_first_layer_net()``: that network with the shipped weights (``cnnlab/weights/``).
- ``train_first_layer()``: how the weights were made. ``python -m cnnlab.first_layer``
  retrains them and rewrites the record ``first_layer.json`` beside them, which
  ``load_first_layer_record()`` reads.
- ``roughness``, ``orientation_strength``, ``colour_share``: one number per filter, so that
  a lesson can count smooth, oriented and colour filters instead of describing a picture.

The training is self-supervised on the photos that install with the project (cnnlab's
bundled photos and scikit-learn's two sample images): the network sees heavily augmented
random crops turned by 0, 90, 180 or 270 degrees and must say which turn it was (RotNet,
Gidaris et al., ICLR 2018). Asano, Rupprecht and Vedaldi (ICLR 2020) showed that a handful
of images, or even one, suffice for a first layer learned this way.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab._checks import describe, message
from cnnlab.images import rgb_to_gray

__all__ = ["FirstLayerNet", "colour_share", "load_first_layer_net", "load_first_layer_record",
           "orientation_strength", "roughness", "train_first_layer"]

WEIGHTS_FILE = "first_layer.pt"
RECORD_FILE = "first_layer.json"
# ImageNet's per-channel statistics: inputs are normalised exactly as for torchvision's AlexNet
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP = 96  # training crops are CROP x CROP pixels


class FirstLayerNet(nn.Module):
    """AlexNet's first layer plus two small conv layers, and a 4-way rotation head.

    ``features``: (N, 3, H, W) ImageNet-normalised images -> (N, 128, h, w) maps;
    ``features[0]`` is ``Conv2d(3, 64, 11, stride=4, padding=2)``, as in torchvision's AlexNet,
    so a 350x210 photo gives (1, 64, 86, 51) first-layer maps. ``head``: global average pooling
    and ``Linear(128, 4)`` -> (N, 4) rotation logits. H, W >= 63.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),  # AlexNet's first layer
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 96, kernel_size=5, padding=2, bias=False),
            nn.BatchNorm2d(96),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 128, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def weights_dir() -> Path:
    """The folder of shipped weights inside the installed package (``cnnlab/weights``)."""
    return Path(str(resources.files("cnnlab") / "weights"))


def load_first_layer_net(path: str | Path | None = None) -> FirstLayerNet:
    """``FirstLayerNet`` with the shipped weights (or those saved at ``path``), in eval mode.

    The file holds a float16 state_dict; parameters come back as float32.
    """
    where = "load_first_layer_net"
    if path is not None and not isinstance(path, (str, Path)):
        raise TypeError(message(where, "None (the shipped weights) or a path to a .pt file",
                                describe(path), "Call load_first_layer_net() with no argument."))
    file = weights_dir() / WEIGHTS_FILE if path is None else Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(message(
            where, f"a weights file at {file}", "no such file",
            "Reinstall cnnlab, or recreate the weights with `python -m cnnlab.first_layer`."))
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise ValueError(message(
            where, "a file saved with torch.save(net.state_dict(), path)",
            f"{file}, which torch.load cannot read ({type(error).__name__}: {error})",
            "Recreate it with `python -m cnnlab.first_layer`.")) from error
    if not isinstance(state, dict):
        raise ValueError(message(where, "a state_dict (parameter name -> tensor)",
                                 f"{describe(state)} in {file}",
                                 "Save net.state_dict(), not the whole network."))
    net = FirstLayerNet()
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v
                             for k, v in state.items()})
    except RuntimeError as error:
        raise ValueError(message(
            where, "the parameters of FirstLayerNet (features.0.weight ... head.2.bias)",
            f"a state_dict in {file} that does not fit", f"Is it another model's file? {error}",
        )) from error
    return net.eval()


def load_first_layer_record() -> dict[str, Any]:
    """The record saved beside the shipped weights (``first_layer.json``) as a dict.

    It says how they were made: ``data`` (photo name -> [3, H, W]), ``data_note``, ``seed``,
    ``epochs``, ``steps_per_epoch``, ``crops_per_step``, ``images_per_step``,
    ``held_out_rotation_accuracy`` and more (see ``train_first_layer``).
    """
    file = weights_dir() / RECORD_FILE
    if not file.is_file():
        raise FileNotFoundError(message(
            "load_first_layer_record", f"the record at {file}", "no such file",
            "Reinstall cnnlab, or recreate it with `python -m cnnlab.first_layer`."))
    return json.loads(file.read_text())

def _filters(weight: Any, where: str) -> torch.Tensor:
    """A conv weight (O, C, kH, kW) as a float64 tensor, or a ValueError naming the shape."""
    w = torch.as_tensor(weight).detach().double()
    if w.ndim != 4 or min(w.shape[2:]) < 2:
        raise ValueError(message(where, "a weight of shape (O, C, kH, kW) with kH, kW >= 2",
                                 f"shape {tuple(w.shape)}", "Pass conv.weight."))
    return w


def roughness(weight: Any) -> torch.Tensor:
    """How noisy each filter is: (O, C, kH, kW) -> (O,), about 1 for white noise, near 0 if smooth.

    Per filter: the mean squared difference between horizontal and vertical neighbours,
    divided by twice the mean square (after removing each channel's mean). Independent random
    values give 1 on average; oriented edges, stripes wider than a pixel and colour blobs give
    much less.
    """
    w = _filters(weight, "roughness")
    w = w - w.mean(dim=(2, 3), keepdim=True)
    dx = (w[..., :, 1:] - w[..., :, :-1]).pow(2).flatten(1).mean(1)
    dy = (w[..., 1:, :] - w[..., :-1, :]).pow(2).flatten(1).mean(1)
    power = w.pow(2).flatten(1).mean(1).clamp_min(1e-30)
    return ((dx + dy) / 2 / (2 * power)).float()


def orientation_strength(weight: Any) -> torch.Tensor:
    """How much one direction dominates each filter: (O, C, kH, kW) -> (O,), from 0 to 1.

    The coherence of the filter's structure tensor: the gradients of all its channels, summed
    as outer products, give two eigenvalues l1 >= l2; the strength is (l1 - l2) / (l1 + l2).
    A straight edge or stripe (in any colour) gives 1, a round blob 0; independent random
    weights of 11x11 give about 0.1.
    """
    w = _filters(weight, "orientation_strength")
    gx = w[..., :, 1:] - w[..., :, :-1]  # horizontal differences, (O, C, kH, kW - 1)
    gy = w[..., 1:, :] - w[..., :-1, :]  # vertical differences, (O, C, kH - 1, kW)
    gx = (gx[..., 1:, :] + gx[..., :-1, :]) / 2  # both at the centres of 2x2 squares
    gy = (gy[..., :, 1:] + gy[..., :, :-1]) / 2
    jxx, jyy, jxy = ((a * b).flatten(1).sum(1) for a, b in ((gx, gx), (gy, gy), (gx, gy)))
    spread = torch.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2)
    return (spread / (jxx + jyy).clamp_min(1e-30)).float()


def colour_share(weight: Any) -> torch.Tensor:
    """How much of each filter tells colours apart: (O, C, kH, kW) -> (O,), from 0 to 1.

    The share of the filter's energy (sum of squares) left after subtracting, at every pixel,
    the mean over its C input channels. The same pattern in every channel (a filter that sees
    only brightness) gives 0; red against green gives 1; a pattern in one channel of three
    gives 2/3, and so do independent random weights.
    """
    w = _filters(weight, "colour_share")
    colour = w - w.mean(dim=1, keepdim=True)
    return (colour.pow(2).flatten(1).sum(1) / w.pow(2).flatten(1).sum(1).clamp_min(1e-30)).float()


def training_photos() -> dict[str, torch.Tensor]:
    """The training images, name -> (3, H, W) in [0, 1]: cnnlab's photos and sklearn's two."""
    from sklearn.datasets import load_sample_images

    from cnnlab.images import list_images, load_image, to_nchw

    photos = {name: load_image(name) for name in list_images()}
    sample = load_sample_images()
    for file, array in zip(sample.filenames, sample.images, strict=True):
        photos["sklearn:" + Path(file).stem] = to_nchw(array)[0]  # HWC uint8 -> CHW in [0, 1]
    return photos


def random_crops(photos: list[torch.Tensor], n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` augmented CROP x CROP crops -> (n, 3, CROP, CROP), ImageNet-normalised.

    Each crop: a random photo, a random square covering 15-100 % of its shorter side at a random
    place, a random left-right flip, then random brightness, contrast, saturation and
    sometimes gray. No rotation: the rotation is the label.
    """
    def uniform(lo: float, hi: float, size: int = n) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(size, generator=generator)

    which = torch.randint(len(photos), (n,), generator=generator)
    crops = torch.empty(n, 3, CROP, CROP)
    side = uniform(0.15, 1.0)
    flip = torch.rand(n, generator=generator) < 0.5
    cx, cy = uniform(-1, 1), uniform(-1, 1)
    for k in range(len(photos)):
        idx = (which == k).nonzero().flatten()
        if idx.numel() == 0:
            continue
        photo = photos[k]
        h, w = photo.shape[1:]
        short = min(h, w)
        sx, sy = side[idx] * short / w, side[idx] * short / h  # half-widths in [-1, 1] units
        theta = torch.zeros(idx.numel(), 2, 3)
        theta[:, 0, 0] = torch.where(flip[idx], -sx, sx)
        theta[:, 1, 1] = sy
        theta[:, 0, 2] = cx[idx] * (1 - sx)
        theta[:, 1, 2] = cy[idx] * (1 - sy)
        grid = F.affine_grid(theta, [idx.numel(), 3, CROP, CROP], align_corners=False)
        crops[idx] = F.grid_sample(photo.expand(idx.numel(), -1, -1, -1), grid,
                                   mode="bilinear", align_corners=False)
    gray = rgb_to_gray(crops)
    saturation = uniform(0.0, 1.6).view(n, 1, 1, 1) * (torch.rand(n, 1, 1, 1,
                                                                  generator=generator) > 0.2)
    crops = gray + saturation * (crops - gray)
    mean = crops.mean(dim=(1, 2, 3), keepdim=True)
    crops = mean + uniform(0.5, 1.5).view(n, 1, 1, 1) * (crops - mean)
    crops = (crops * uniform(0.6, 1.4).view(n, 1, 1, 1)).clamp(0, 1)
    return (crops - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD).view(1, 3, 1, 1)


def rotations(crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 3, S, S) -> (4n, 3, S, S) turned by 0, 90, 180, 270 degrees, and labels 0-3 (4n,)."""
    turned = torch.cat([torch.rot90(crops, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(crops.shape[0])
    return turned, labels


def rotation_accuracy(net: nn.Module, crops: torch.Tensor) -> float:
    """Fraction of the 4 * len(crops) turned crops whose turn ``net`` names correctly."""
    net.eval()
    x, y = rotations(crops)
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


def train_first_layer(epochs: int = 16, steps_per_epoch: int = 25, batch: int = 32,
                      seed: int = 0, threads: int = 2, lr: float = 2e-3,
                      init_scale: float = 0.1,
                      log: bool = True) -> tuple[FirstLayerNet, dict[str, Any]]:
    """Train ``FirstLayerNet`` by rotation prediction; returns the net and the record.

    Each step draws ``batch`` fresh crops and turns each 4 ways (4 * batch images). The
    accuracy is measured on 256 held-out crops (another seed) of the same photos. The first
    layer starts from PyTorch's random init times ``init_scale``: with a small start, what the
    filters show at the end is what they learned, not leftover initial noise.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    named = training_photos()
    photos = list(named.values())
    generator = torch.Generator().manual_seed(seed)
    held_out = random_crops(photos, 256, torch.Generator().manual_seed(seed + 1000))
    net = FirstLayerNet()
    with torch.no_grad():
        net.features[0].weight.mul_(init_scale)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-2)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    start = time.perf_counter()
    history = []
    for epoch in range(epochs):
        net.train()
        losses = []
        for _ in range(steps_per_epoch):
            x, y = rotations(random_crops(photos, batch, generator))
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        acc = rotation_accuracy(net, held_out)
        rough = roughness(net.features[0].weight).median().item()
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
                        "held_out_accuracy": round(acc, 4), "roughness_median": round(rough, 4)})
        if log:
            print(f"epoch {epoch + 1:>3}/{epochs}  loss {np.mean(losses):.3f}  "
                  f"held-out rotation accuracy {acc:.1%}  filter roughness {rough:.3f}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random_rough = roughness(FirstLayerNet().features[0].weight).median().item()
    record = {
        "what": "FirstLayerNet: Conv2d(3, 64, 11, stride 4, padding 2) as in AlexNet, "
                "then two small conv layers; trained by rotation prediction (RotNet)",
        "data": {name: list(t.shape) for name, t in named.items()},
        "data_note": "cnnlab's bundled photos and scikit-learn's load_sample_images(); "
                     f"random {CROP}x{CROP} crops (15-100% of the shorter side), flips, colour "
                     "jitter; each crop turned 0/90/180/270 degrees, the turn is the label",
        "seed": seed, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
        "crops_per_step": batch, "images_per_step": 4 * batch,
        "first_layer_init": f"PyTorch's default init times {init_scale}",
        "optimizer": f"AdamW lr {lr} (one-cycle), weight_decay 0.05",
        "threads": threads, "train_seconds": round(seconds, 1),
        "held_out_rotation_accuracy": round(history[-1]["held_out_accuracy"], 4),
        "held_out_note": "256 other random crops of the same photos, each turned 4 ways; "
                         "chance is 25%",
        "first_layer_roughness_median": round(roughness(net.features[0].weight).median().item(),
                                              4),
        "random_init_roughness_median": round(random_rough, 4),
        "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(),
        "history": history,
    }
    return net.eval(), record


def save(net: FirstLayerNet, record: dict[str, Any], folder: Path) -> Path:
    """Write ``first_layer.pt`` (float16 state_dict) and ``first_layer.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    path = folder / WEIGHTS_FILE
    torch.save(state, path)
    record = {**record, "weights_file": WEIGHTS_FILE, "weights_bytes": path.stat().st_size,
              "weights_dtype": "float16"}
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m cnnlab.first_layer [--epochs N] [--out FOLDER]``: retrain and save."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25, help="steps per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--init-scale", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "weights")
    args = parser.parse_args(argv)
    net, record = train_first_layer(epochs=args.epochs, steps_per_epoch=args.steps,
                                    seed=args.seed, threads=args.threads, lr=args.lr,
                                    init_scale=args.init_scale)
    path = save(net, record, args.out)
    print(f"saved {path} ({path.stat().st_size / 1e3:.0f} kB) and {args.out / RECORD_FILE}; "
          f"trained in {record['train_seconds']:.0f} s, held-out rotation accuracy "
          f"{record['held_out_rotation_accuracy']:.1%}, filter roughness "
          f"{record['first_layer_roughness_median']:.2f} (random init "
          f"{record['random_init_roughness_median']:.2f})")


if __name__ == "__main__":
    main()
