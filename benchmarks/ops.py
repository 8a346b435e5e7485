"""Time cnnlab's NumPy convolutions against torch's F.conv2d on lesson-sized shapes.

    python benchmarks/ops.py            # prints a Markdown table and the median ratio

Each timing is the best of several repeats in this process, float32, 3x3 padding 1 unless
the row says otherwise. The loop version runs only on the small shapes (it is 1000x slower).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

import cnnlab

# (description, input shape NCHW, out_channels, kernel, padding, stride, run the loop version)
GRID = [
    ("one gray photo 100x100, 3x3", (1, 1, 100, 100), 1, 3, 1, 1, True),
    ("one RGB photo 100x100, 8 filters", (1, 3, 100, 100), 8, 3, 1, 1, False),
    ("RGB 128x128, Conv2d(3, 7, 5)", (1, 3, 128, 128), 7, 5, 0, 1, False),
    ("5x5 example with padding, stride 2", (1, 1, 5, 5), 1, 3, 1, 2, True),
    ("10x1x28x28, Conv2d(1, 6, 3)", (10, 1, 28, 28), 6, 3, 1, 1, True),
    ("16x3x32x32, Conv2d(3, 5, 5)", (16, 3, 32, 32), 5, 5, 0, 1, False),
    ("8x3x64x64, Conv2d(3, 16, 3)", (8, 3, 64, 64), 16, 3, 1, 1, False),
    ("32x16x32x32, Conv2d(16, 16, 3)", (32, 16, 32, 32), 16, 3, 1, 1, False),
]


def best_time(run: Callable[[], object], budget: float = 0.3) -> float:
    """Fastest of repeated calls filling about ``budget`` seconds (at least 5), in seconds.

    The minimum, as timeit advises: slower repeats measure other processes, not the code.
    """
    run()  # warm up
    start = time.perf_counter()
    run()
    once = max(time.perf_counter() - start, 1e-6)
    repeats = max(5, min(200, int(budget / once)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def time_case(x: np.ndarray, w: np.ndarray, padding: int, stride: int,
              loops: bool) -> tuple[float, float, float | None]:
    """Seconds for F.conv2d, cnnlab.conv2d and (if asked) cnnlab.conv2d_loops on one case."""
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    reference = best_time(lambda: F.conv2d(xt, wt, stride=stride, padding=padding))
    ours = best_time(lambda: cnnlab.conv2d(x, w, stride=stride, padding=padding))
    slow = None
    if loops:
        slow = best_time(lambda: cnnlab.conv2d_loops(x, w, stride=stride, padding=padding),
                         budget=1.0)
    return reference, ours, slow


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32\n")
    print("| case | torch F.conv2d | cnnlab.conv2d | ratio | conv2d_loops | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    ratios = []
    for name, shape, out_channels, k, padding, stride, loops in GRID:
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal((out_channels, shape[1], k, k)).astype(np.float32)
        reference, ours, slow = time_case(x, w, padding, stride, loops)
        ratios.append(ours / reference)
        loop_cells = "| - | - |" if slow is None else (
            f"| {slow * 1e3:.1f} ms | {slow / reference:,.0f}x |")
        print(f"| {name} | {reference * 1e3:.3f} ms | {ours * 1e3:.3f} ms | "
              f"{ours / reference:.2f}x {loop_cells}")
    print(f"\nmedian ratio cnnlab.conv2d / F.conv2d: {statistics.median(ratios):.2f}x "
          f"(goal: at most 2x)")


if __name__ == "__main__":
    main()
