"""Shared test setup: a headless matplotlib, figures closed after each test, no network, and the
5x5 worked example of lessons 01 and 02.

torch and matplotlib are imported only when a test needs them, so notebook-only runs stay quick.
Notebook kernels (nbval) are separate processes: nothing here changes what they draw.
"""

from __future__ import annotations

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
