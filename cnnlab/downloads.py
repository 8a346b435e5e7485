"""``cnnlab download``: pre-fetch what the lessons would otherwise need the network for."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

DATASETS = ("mnist", "fashion-mnist", "cifar10")
TARGETS = ("alexnet", *DATASETS, "all")


def main(argv: Sequence[str] = ()) -> int:
    """Download AlexNet's ImageNet weights and/or torchvision datasets; returns an exit status."""
    parser = argparse.ArgumentParser(
        prog="cnnlab download",
        description="Pre-fetch AlexNet weights (into torch.hub's cache) and datasets (into "
        "the folder `cnnlab doctor` shows) so that a classroom can work offline.",
    )
    parser.add_argument("targets", nargs="+", choices=TARGETS, metavar="TARGET",
                        help=f"one or more of: {', '.join(TARGETS)}")
    args = parser.parse_args(argv)
    targets = list(TARGETS[:-1]) if "all" in args.targets else list(dict.fromkeys(args.targets))
    failures = 0
    for target in targets:
        try:
            if target == "alexnet":
                from cnnlab.alexnet import download_alexnet

                where = download_alexnet()
            else:
                from cnnlab.data import download_dataset

                where = download_dataset(target)
        except Exception as error:  # noqa: BLE001 - one failed download must not stop the rest
            failures += 1
            print(f"{target}: FAILED: " + " ".join([str(error), *getattr(error, "__notes__", [])]))
        else:
            print(f"{target}: ready in {where}")
    return 1 if failures else 0
