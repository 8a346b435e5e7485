"""Time cnnlab's NumPy backward passes against torch.autograd on lesson-sized shapes.

    python benchmarks/backward.py       # prints a Markdown table and the median ratio

Both sides compute the same gradients from the same output gradient ``dout``. For torch,
``torch.autograd.grad`` on a recorded forward graph (kept with ``retain_graph=True``): the
backward pass alone, which is what the median ratio compares; a second column adds the forward
pass that autograd needs first. For cnnlab, one call of the vectorised backward function,
which gathers the input windows itself. Each timing is the best of the repeats that fill about one
second, float32 (the minimum, as timeit advises: on a busy machine slower repeats measure
other processes).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ops import best_time  # noqa: E402  (the forward benchmark's timer)

from cnnlab.backward import (  # noqa: E402
    avg_pool2d_backward,
    conv2d_backward,
    max_pool2d_backward,
)

# (description, op, input shape NCHW, out_channels or None, kernel, padding, stride)
GRID = [
    ("5x5 example, 3x3 kernel", "conv", (1, 1, 5, 5), 1, 3, 0, 1),
    ("one gray photo 100x100, 3x3", "conv", (1, 1, 100, 100), 1, 3, 1, 1),
    ("10x1x28x28, Conv2d(1, 6, 3)", "conv", (10, 1, 28, 28), 6, 3, 1, 1),
    ("16x3x32x32, Conv2d(3, 5, 5)", "conv", (16, 3, 32, 32), 5, 5, 0, 1),
    ("8x3x64x64, Conv2d(3, 16, 3) stride 2", "conv", (8, 3, 64, 64), 16, 3, 1, 2),
    ("32x16x32x32, Conv2d(16, 16, 3)", "conv", (32, 16, 32, 32), 16, 3, 1, 1),
    ("10x6x28x28, MaxPool2d(2)", "max", (10, 6, 28, 28), None, 2, 0, 2),
    ("AlexNet-like 1x64x55x55, MaxPool2d(3, 2)", "max", (1, 64, 55, 55), None, 3, 0, 2),
    ("10x6x28x28, AvgPool2d(2)", "avg", (10, 6, 28, 28), None, 2, 0, 2),
]


Case = tuple[str, Callable[[], object], Callable[[], object], Callable[[], object]]


def cases(rng: np.random.Generator) -> list[Case]:
    """(name, torch backward, torch forward+backward, cnnlab backward) for each row of GRID."""
    out = []
    for name, op, shape, out_channels, k, padding, stride in GRID:
        x = rng.standard_normal(shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        if op == "conv":
            w = rng.standard_normal((out_channels, shape[1], k, k)).astype(np.float32)
            wt = torch.from_numpy(w).requires_grad_(True)
            bt = torch.zeros(out_channels, requires_grad=True)
            dout = np.ones(F.conv2d(xt, wt, stride=stride, padding=padding).shape, np.float32)
            gt = torch.from_numpy(dout)

            def both(xt=xt, wt=wt, bt=bt, gt=gt, stride=stride, padding=padding):
                F.conv2d(xt, wt, bt, stride=stride, padding=padding).backward(gt)

            graph = F.conv2d(xt, wt, bt, stride=stride, padding=padding)

            def backward_only(graph=graph, inputs=(xt, wt, bt), gt=gt):
                torch.autograd.grad(graph, inputs, gt, retain_graph=True)

            def ours(dout=dout, x=x, w=w, stride=stride, padding=padding):
                conv2d_backward(dout, x, w, stride=stride, padding=padding)
        else:
            pool = F.max_pool2d if op == "max" else F.avg_pool2d
            backward = max_pool2d_backward if op == "max" else avg_pool2d_backward
            dout = np.ones(pool(xt, k, stride, padding).shape, np.float32)
            gt = torch.from_numpy(dout)

            def both(xt=xt, gt=gt, pool=pool, k=k, stride=stride, padding=padding):
                pool(xt, k, stride, padding).backward(gt)

            graph = pool(xt, k, stride, padding)

            def backward_only(graph=graph, xt=xt, gt=gt):
                torch.autograd.grad(graph, xt, gt, retain_graph=True)

            def ours(dout=dout, x=x, backward=backward, k=k, stride=stride, padding=padding):
                backward(dout, x, k, stride, padding)
        out.append((name, backward_only, both, ours))
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32\n")
    print("| case | torch backward | torch forward+backward | cnnlab backward | ratio | "
          "ratio to forward+backward |")
    print("|---|---:|---:|---:|---:|---:|")
    ratios, ratios_both = [], []
    for name, backward_only, both, ours in cases(rng):
        times = [best_time(run, budget=1.0) for run in (backward_only, both, ours)]
        ratios.append(times[2] / times[0])
        ratios_both.append(times[2] / times[1])
        print(f"| {name} | {times[0] * 1e3:.3f} ms | {times[1] * 1e3:.3f} ms | "
              f"{times[2] * 1e3:.3f} ms | {ratios[-1]:.2f}x | {ratios_both[-1]:.2f}x |")
    print(f"\nmedian ratio cnnlab backward / torch.autograd backward: "
          f"{statistics.median(ratios):.2f}x")
    print(f"median ratio cnnlab backward / torch forward+backward: "
          f"{statistics.median(ratios_both):.2f}x")


if __name__ == "__main__":
    main()
