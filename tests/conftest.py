"""Shared test setup: a headless matplotlib, figures closed after each test, no network, and the
5x5 worked example of lessons 01 and 02.

torch and matplotlib are imported only when a test needs them, so notebook-only runs stay quick.
Notebook kernels (nbval) are separate processes: nothing here changes what they draw.
"""

from __future__ import annotations

import os
import socket
import sys
from types import SimpleNamespace

import pytest

# Lessons 01-02: this input and kernel give EXAMPLE_OUT (checked by hand in lesson 01).
EXAMPLE = SimpleNamespace(
    x=[[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]],
    k=[[0, 1, 2], [2, 2, 0], [0, 1, 2]],
    out=[[12, 12, 17], [10, 17, 19], [9, 6, 14]],
)


# Slowest files first. With pytest-xdist's `--dist loadfile` (pyproject.toml) each file runs
# whole on one worker (a notebook's cells share one kernel), handed out in this order: the long
# ones then start at once, side by side, instead of last with the other worker idle. This order
# holds only with `--no-loadscope-reorder`: by default xdist hands out the files with the most
# tests first (the notebooks, one test per cell).
SLOW_FIRST = ("test_grading_hostile.py", "test_browser.py", "test_site.py",
              "test_browser_labs.py", "test_grading.py", "test_grading_venv.py",
              "test_grading_variants.py", "test_lesson07.py")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core, at most 4. A third worker on two cores finished sooner
    (5.6 min against 6.0-6.3) but starved the browser check, which then timed out."""
    return max(1, min(4, os.cpu_count() or 1))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order


def pytest_configure(config: pytest.Config) -> None:
    """Draw without a display in this process (tests that import pyplot get Agg)."""
    import matplotlib

    matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every figure a test opened, so figures cannot leak from one test into the next."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def example() -> SimpleNamespace:
    """The 5x5 input ``x``, 3x3 kernel ``k`` and their convolution ``out`` (nested lists)."""
    return EXAMPLE


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every network access fail at once, as on a machine without internet.

    Returns the list of attempts, so a test can also assert that nothing tried the network.
    """
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:1]))
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    if "torch.hub" in sys.modules:
        monkeypatch.setattr(sys.modules["torch.hub"], "download_url_to_file", refuse)
    return attempts
